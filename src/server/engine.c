/* engine.c: the engine thread. It owns the writable library connection, the tq_net (with
 * the library as its response cache), the Lua runtime and the plugins group's state; jobs
 * from the HTTP threads run here in order. The loop: take the queued jobs and run them,
 * step the Lua runtime while runs are active (a queued job ends the net wait through
 * tq_net_wakeup), answer 504 for jobs past their deadline, free the jobs that answered.
 *
 * Threads: tq_req_engine and tq_engine_depth are called from HTTP threads; everything else
 * (tq_job_*, tq_engine_lib/lua/net/slot) from the engine thread only. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server_int.h"

#define JOB_DEADLINE_MS 120000 /* a job that never answers gets 504 after this */

struct tq_job {
  tq_job *next; /* the queue, then the engine's live list */
  tq_job_fn fn;
  void *ud;
  void (*free_ud)(void *);
  tq_principal who;
  char remote[64];
  tq_resp rs;
  void *conn; /* the suspended connection; NULL once answered */
  int64_t deadline_ms;
  int done;
};

struct tq_engine {
  tq_srv *srv;
  const tq_server_opts *opts;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  tq_job *q_head, *q_tail; /* under mu */
  size_t q_len;            /* under mu */
  int stopping;            /* under mu: answer what remains and leave once idle */
  int64_t stop_deadline_ms;
  int started; /* under mu: 1 ready, -1 failed */
  tq_err start_err;
  tq_job *live;             /* engine thread: jobs run and not yet freed */
  size_t n_live_unanswered; /* engine thread */
  tq_lib *lib;
  tq_net *net;
  tq_lua *lua;
  void *slot;
  void (*slot_destroy)(void *);
};

/* ---- the engine thread's side ------------------------------------------------------------ */

void *tq_job_ud(tq_job *job) { return job->ud; }
const tq_principal *tq_job_who(const tq_job *job) { return &job->who; }
const char *tq_job_remote(const tq_job *job) { return job->remote; }
tq_resp *tq_job_resp(tq_job *job) { return &job->rs; }
tq_lib *tq_engine_lib(tq_engine *eng) { return eng->lib; }
tq_lua *tq_engine_lua(tq_engine *eng) { return eng->lua; }
tq_net *tq_engine_net(tq_engine *eng) { return eng->net; }
tq_srv *tq_engine_srv(tq_engine *eng) { return eng->srv; }

void **tq_engine_slot(tq_engine *eng, void (**destroy)(void *)) {
  if (destroy)
    eng->slot_destroy = *destroy ? *destroy : eng->slot_destroy;
  return &eng->slot;
}

/* Hands the answer to the connection (once). */
static void answer(tq_job *job, tq_resp *rs) {
  if (job->conn == NULL)
    return;
  void *conn = job->conn;
  job->conn = NULL;
  tq_srv_conn_answer(conn, rs);
}

void tq_job_done(tq_job *job) {
  if (job->done)
    return;
  job->done = 1;
  if (job->rs.status == 0)
    tq_resp_fail(&job->rs, 500, "internal error: the job gave no answer");
  answer(job, &job->rs);
}

static void job_free(tq_job *job) {
  if (job->free_ud)
    job->free_ud(job->ud);
  tq_resp_free(&job->rs);
  free(job);
}

static tq_code engine_open(tq_engine *eng, tq_err *err) {
  tq_code rc = tq_lib_open(eng->opts->db_path, TQ_LIB_OPEN_CREATE, &eng->lib, err);
  if (rc != TQ_OK)
    return rc;
  rc = tq_net_new(eng->lib, &eng->net, err);
  if (rc != TQ_OK)
    return rc;
  tq_lua_opts lo;
  tq_lua_opts_init(&lo);
  lo.net = eng->net;
  lo.lib = eng->lib;
  lo.replay_file = eng->opts->replay_file;
  return tq_lua_new(&lo, &eng->lua, err);
}

static void engine_close(tq_engine *eng) {
  if (eng->slot && eng->slot_destroy)
    eng->slot_destroy(eng->slot);
  eng->slot = NULL;
  if (eng->lua)
    tq_lua_free(eng->lua);
  if (eng->net)
    tq_net_free(eng->net);
  if (eng->lib)
    tq_lib_close(eng->lib);
  eng->lua = NULL;
  eng->net = NULL;
  eng->lib = NULL;
}

/* Frees answered jobs, answers 504 for those past their deadline (kept until they call
 * tq_job_done: their callbacks still hold them), or 503 for all of them when force. */
static void sweep(tq_engine *eng, int force) {
  int64_t now = tq_mono_ms();
  size_t unanswered = 0;
  for (tq_job **pp = &eng->live; *pp;) {
    tq_job *job = *pp;
    if (job->done) {
      *pp = job->next;
      job_free(job);
      continue;
    }
    if (job->conn && (force || now >= job->deadline_ms)) {
      tq_resp rs = {0};
      if (force)
        tq_resp_fail(&rs, 503, "the server is shutting down");
      else
        tq_resp_fail(&rs, 504, "the job did not answer within %d s", JOB_DEADLINE_MS / 1000);
      answer(job, &rs);
    }
    if (job->conn)
      unanswered++;
    pp = &job->next;
  }
  eng->n_live_unanswered = unanswered;
}

static void *engine_main(void *arg) {
  tq_engine *eng = arg;
  tq_err err = {0};
  tq_code rc = engine_open(eng, &eng->start_err);
  pthread_mutex_lock(&eng->mu);
  eng->started = rc == TQ_OK ? 1 : -1;
  pthread_cond_broadcast(&eng->cv);
  pthread_mutex_unlock(&eng->mu);
  if (rc != TQ_OK)
    return NULL;
  int64_t metrics_ms = 0;
  for (;;) {
    pthread_mutex_lock(&eng->mu);
    while (eng->q_head == NULL && !eng->stopping && tq_lua_active(eng->lua) == 0 &&
           eng->n_live_unanswered == 0) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += 1;
      pthread_cond_timedwait(&eng->cv, &eng->mu, &ts);
    }
    tq_job *batch = eng->q_head;
    eng->q_head = eng->q_tail = NULL;
    eng->q_len = 0;
    int stopping = eng->stopping;
    int64_t stop_deadline = eng->stop_deadline_ms;
    pthread_mutex_unlock(&eng->mu);
    tq_metric_set("tqhost_engine_queue_depth", "", 0);

    while (batch) {
      tq_job *job = batch;
      batch = job->next;
      job->next = eng->live;
      eng->live = job;
      job->fn(eng, job);
    }
    if (tq_lua_active(eng->lua) > 0) {
      if (tq_lua_step(eng->lua, 50, &err) != TQ_OK)
        tq_log(TQ_LOG_WARN, "server", "engine: %s", err.msg);
    } else if (eng->n_live_unanswered > 0) {
      struct timespec ts = {0, 20 * 1000000};
      nanosleep(&ts, NULL); /* jobs waiting on something other than Lua: poll gently */
    }
    int64_t now_ms = tq_mono_ms();
    if (now_ms - metrics_ms >= 200) { /* the providers' counters, five times a second at most */
      tq_metrics_from_net(eng->net);
      metrics_ms = now_ms;
    }
    int force = stopping && now_ms >= stop_deadline;
    sweep(eng, force);
    if (stopping && eng->live == NULL && tq_lua_active(eng->lua) == 0) {
      pthread_mutex_lock(&eng->mu);
      int empty = eng->q_head == NULL;
      pthread_mutex_unlock(&eng->mu);
      if (empty)
        break;
    }
    if (force && eng->n_live_unanswered == 0) {
      pthread_mutex_lock(&eng->mu);
      int empty = eng->q_head == NULL;
      pthread_mutex_unlock(&eng->mu);
      if (empty)
        break; /* jobs that never answer are freed at close, with the runtime */
    }
  }
  return NULL;
}

/* ---- the HTTP threads' side -------------------------------------------------------------- */

tq_code tq_engine_start(tq_srv *srv, const tq_server_opts *opts, tq_engine **out, tq_err *err) {
  tq_engine *eng = calloc(1, sizeof *eng);
  if (eng == NULL)
    return tq_err_set(err, TQ_ENOMEM, "server: out of memory");
  eng->srv = srv;
  eng->opts = opts;
  pthread_mutex_init(&eng->mu, NULL);
  pthread_cond_init(&eng->cv, NULL);
  if (pthread_create(&eng->thread, NULL, engine_main, eng) != 0) {
    free(eng);
    return tq_err_set(err, TQ_EIO, "server: cannot start the engine thread");
  }
  pthread_mutex_lock(&eng->mu);
  while (eng->started == 0)
    pthread_cond_wait(&eng->cv, &eng->mu);
  int ok = eng->started == 1;
  pthread_mutex_unlock(&eng->mu);
  if (!ok) {
    pthread_join(eng->thread, NULL);
    if (err)
      *err = eng->start_err;
    engine_close(eng);
    tq_code rc = eng->start_err.code ? eng->start_err.code : TQ_EINTERNAL;
    free(eng);
    return rc;
  }
  *out = eng;
  return TQ_OK;
}

void tq_engine_stop(tq_engine *eng, int64_t grace_ms) {
  if (eng == NULL)
    return;
  pthread_mutex_lock(&eng->mu);
  eng->stopping = 1;
  eng->stop_deadline_ms = tq_mono_ms() + grace_ms;
  pthread_cond_broadcast(&eng->cv);
  pthread_mutex_unlock(&eng->mu);
  tq_net_wakeup(eng->net);
  pthread_join(eng->thread, NULL);
  /* Jobs still queued were never run: answer them so that their connections resume. */
  while (eng->q_head) {
    tq_job *job = eng->q_head;
    eng->q_head = job->next;
    tq_resp rs = {0};
    tq_resp_fail(&rs, 503, "the server is shutting down");
    answer(job, &rs);
    job_free(job);
  }
  engine_close(eng);
  while (eng->live) {
    tq_job *job = eng->live;
    eng->live = job->next;
    job_free(job);
  }
  pthread_mutex_destroy(&eng->mu);
  pthread_cond_destroy(&eng->cv);
  free(eng);
}

size_t tq_engine_depth(tq_engine *eng) {
  pthread_mutex_lock(&eng->mu);
  size_t n = eng->q_len;
  pthread_mutex_unlock(&eng->mu);
  return n;
}

void tq_req_engine(tq_req *rq, tq_resp *rs, tq_job_fn fn, void *ud, void (*free_ud)(void *)) {
  tq_engine *eng = tq_srv_engine(rq->srv);
  tq_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    if (free_ud)
      free_ud(ud);
    tq_resp_fail(rs, 503, "out of memory");
    return;
  }
  job->fn = fn;
  job->ud = ud;
  job->free_ud = free_ud;
  job->who = rq->who;
  tq_strlcpy(job->remote, rq->remote ? rq->remote : "", sizeof job->remote);
  job->deadline_ms = tq_mono_ms() + JOB_DEADLINE_MS;
  pthread_mutex_lock(&eng->mu);
  if (eng->stopping) {
    pthread_mutex_unlock(&eng->mu);
    job_free(job);
    tq_resp_fail(rs, 503, "the server is shutting down");
    rs->retry_after_s = 5;
    return;
  }
  job->conn = tq_srv_conn_suspend(rq); /* before the engine can answer */
  if (eng->q_tail)
    eng->q_tail->next = job;
  else
    eng->q_head = job;
  eng->q_tail = job;
  eng->q_len++;
  size_t depth = eng->q_len;
  pthread_cond_signal(&eng->cv);
  pthread_mutex_unlock(&eng->mu);
  tq_metric_set("tqhost_engine_queue_depth", "", (double)depth);
  tq_net_wakeup(eng->net);
}
