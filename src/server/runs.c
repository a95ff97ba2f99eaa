/* runs.c: the server's long work: bulk runs, workflow runs, feed polls and the scheduler, each
 * on a thread of its own with its own library writer connection (WAL, busy timeout), its own
 * Lua runtime and net (tq_action_run makes them): the engine thread never runs them, so it
 * keeps answering operations and writes while a run goes on. Rate limits are shared all
 * the same: providers' token buckets are process-wide (net_policy.c), by name and rate.
 *
 * A request that starts a run suspends its connection and the run's thread answers it: 202
 * with the run's id once the run's row exists (tq_action_opts.started), or the error that kept
 * it from starting. A run stops at its stop flag ("interrupted", checkpointed): on cancel and
 * on SIGTERM. At start, the scheduler thread resumes the runs the server had started and that
 * did not end (not cancelled), then ticks (tq_workflow_tick: due feeds and workflows, and
 * interrupted workflow runs) every TQHOST_TICK_S seconds (default 60; 0: never). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_int.h"
#include "runs_int.h"
#include "tqhost/workflow.h"

#define MAX_TASKS 8 /* runs, workflow runs and polls at once (the scheduler apart) */

typedef enum { T_ACTION, T_RESUME, T_WORKFLOW, T_FEED, T_SCHED } task_kind;

typedef struct task {
  struct tq_runs *rn;
  task_kind kind;
  pthread_t thread;
  volatile int stop;
  int64_t run_id; /* under rn->mu: the run in progress (0: none yet) */
  int finished;   /* under rn->mu: the thread ended (joined when reaped) */
  tq_runs_start_req req;
  void *conn;  /* the suspended connection to answer; NULL once answered */
  tq_lib *lib; /* the thread's connection */
  struct task *next;
} task;

struct tq_runs {
  tq_srv *srv;
  char *db_path;
  const char *plugins_dir;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  task *tasks; /* under mu */
  int stopping;
  int stopped; /* tq_runs_stop ran (the stopping thread's) */
  int64_t tick_s;
  task *sched;
};

/* The gauge of runs and polls in progress (under rn->mu). */
static void gauge(tq_runs *rn) {
  size_t n = 0;
  for (task *t = rn->tasks; t; t = t->next)
    n += !t->finished && t->kind != T_SCHED;
  tq_metric_set("tqhost_runs_active", "", (double)n);
}

/* ---- the start request ------------------------------------------------------------------- */

void tq_runs_req_free(tq_runs_start_req *q) {
  free(q->action);
  free(q->collection);
  for (size_t i = 0; i < q->n_values; i++)
    free(q->values[i]);
  free(q->values);
  for (size_t i = 0; i < q->n_sets; i++) {
    free((char *)q->sets[i].key);
    if (q->sets[i].value)
      explicit_bzero((char *)q->sets[i].value, strlen(q->sets[i].value));
    free((char *)q->sets[i].value);
  }
  free(q->sets);
  free(q->name);
  memset(q, 0, sizeof *q);
}

/* ---- answers ------------------------------------------------------------------------------- */

/* Answers t's connection (once), from any thread. */
static void task_answer(task *t, tq_resp *rs) {
  pthread_mutex_lock(&t->rn->mu);
  void *conn = t->conn;
  t->conn = NULL;
  pthread_mutex_unlock(&t->rn->mu);
  if (conn)
    tq_srv_conn_answer(conn, rs);
  tq_resp_free(rs);
}

static void answer_started(task *t, int64_t run_id) {
  tq_resp rs = {0};
  cJSON *d = cJSON_CreateObject();
  if (run_id > 0)
    cJSON_AddNumberToObject(d, "id", (double)run_id);
  else
    cJSON_AddNullToObject(d, "id");
  cJSON_AddStringToObject(d, "state", "running");
  tq_resp_data(&rs, 202, d);
  task_answer(t, &rs);
}

/* Why a run could not start, as the API says it: the input's fault 400 (naming the field the
 * message starts with), a run that is someone else's 409, the rest by its code. */
static void answer_failed(task *t, const tq_err *err) {
  tq_resp rs = {0};
  if (err->code == TQ_EDENIED)
    tq_resp_fail(&rs, 409, "%s", err->msg);
  else if (err->code == TQ_ENOTFOUND && t->kind != T_RESUME)
    tq_resp_invalid(&rs, t->kind == T_FEED ? "name" : "collection", "%s", err->msg);
  else
    tq_resp_err(&rs, "settings", err);
  task_answer(t, &rs);
}

static void on_started(void *ud, int64_t run_id) {
  task *t = ud;
  pthread_mutex_lock(&t->rn->mu);
  t->run_id = run_id;
  int answer = t->conn != NULL;
  pthread_mutex_unlock(&t->rn->mu);
  if (t->kind == T_SCHED || !answer)
    return;
  char id[32], detail[300];
  snprintf(id, sizeof id, "run %lld", (long long)run_id);
  if (t->kind == T_RESUME)
    snprintf(detail, sizeof detail, "resumed");
  else if (t->kind == T_WORKFLOW)
    snprintf(detail, sizeof detail, "workflow %s", t->req.name);
  else if (t->req.retry_of)
    snprintf(detail, sizeof detail, "action %s over the failed items of run %lld", t->req.action,
             (long long)t->req.retry_of);
  else if (t->req.collection)
    snprintf(detail, sizeof detail, "action %s over collection %s", t->req.action,
             t->req.collection);
  else
    snprintf(detail, sizeof detail, "action %s over %zu values", t->req.action, t->req.n_values);
  tq_err err;
  if (tq_auth_audit(t->lib, t->req.who, t->kind == T_RESUME ? "run.resume" : "run.start", id,
                    detail, t->req.addr, &err) != TQ_OK)
    tq_log(TQ_LOG_WARN, "server", "audit of %s: %s", id, err.msg);
  answer_started(t, run_id);
}

/* ---- the threads ------------------------------------------------------------------------------
 */

/* The registry as the action loader's plugin source (tq_action_plugin_source): the active
 * version of name, held (a reference to its registry) until the action is freed. */
static int reg_plugin_get(const char *plugins_dir, const char *name, const tq_plugin **p,
                          const tq_plugin_src **src, void **hold) {
  tq_plugin_reg *r = tq_plugin_reg_get(plugins_dir ? plugins_dir : tq_plugin_dir());
  const tq_plugin_slot *sl = r ? tq_plugin_reg_find(r, name) : NULL;
  if (sl == NULL || sl->p == NULL) {
    tq_plugin_reg_put(r);
    return 0;
  }
  *p = sl->p;
  *src = sl->src;
  *hold = r;
  return 1;
}

static void reg_plugin_release(void *hold) { tq_plugin_reg_put(hold); }

static void base_opts(task *t, tq_action_opts *o) {
  memset(o, 0, sizeof *o);
  o->db_path = t->rn->db_path;
  o->plugins_dir = t->rn->plugins_dir;
  o->stop = &t->stop;
  o->origin = t->kind == T_SCHED ? "schedule" : "api";
  o->started = on_started;
  o->started_ud = t;
}

static void run_action(task *t, tq_err *err) {
  tq_action *a = NULL;
  tq_action_opts o;
  base_opts(t, &o);
  o.collection = t->req.collection;
  o.values = (const char *const *)t->req.values;
  o.n_values = t->req.n_values;
  o.overrides = t->req.sets;
  o.n_overrides = t->req.n_sets;
  o.concurrency = t->req.concurrency;
  o.retry_failed = t->req.retry_of;
  tq_run_summary sum;
  if (tq_action_find(tq_action_dir(), t->req.action, &a, err) == TQ_OK &&
      tq_action_run(t->lib, a, &o, &sum, err) == TQ_OK)
    tq_log(TQ_LOG_INFO, "server", "run %lld (%s): %s", (long long)sum.run_id, t->req.action,
           sum.status);
  tq_action_free(a);
}

static void run_resume(task *t, tq_err *err) {
  tq_action_opts o;
  base_opts(t, &o);
  tq_run_summary sum;
  if (tq_action_resume(t->lib, t->req.run_id, &o, &sum, err) == TQ_OK)
    tq_log(TQ_LOG_INFO, "server", "run %lld resumed: %s", (long long)sum.run_id, sum.status);
}

static void run_workflow(task *t, tq_err *err) {
  tq_workflow *w = NULL;
  tq_action_opts o;
  base_opts(t, &o);
  if (tq_workflow_get(t->lib, t->req.name, &w, err) != TQ_OK)
    return;
  size_t failed = 0;
  tq_code rc = tq_workflow_run(t->lib, w, &o, tq_time_now(), NULL, NULL, &failed, err);
  tq_log(TQ_LOG_INFO, "server", "workflow %s: %s (%zu action(s) failed)", w->name,
         rc == TQ_OK ? "ran" : err->msg, failed);
  tq_workflow_free(w);
  if (rc == TQ_OK)
    tq_err_clear(err);
}

static void run_feed(task *t, tq_err *err) {
  tq_feed_poll_opts po;
  tq_feed_poll_opts_init(&po);
  tq_feed_summary sum;
  memset(&sum, 0, sizeof sum);
  tq_code rc = tq_feed_poll(t->lib, NULL, t->req.name, &po, &sum, err);
  tq_log(TQ_LOG_INFO, "server", "feed %s polled: %s", t->req.name, rc == TQ_OK ? "ok" : err->msg);
  tq_feed_summary_free(&sum);
  tq_err_clear(err);
}

/* Waits up to s seconds or until the manager stops; 1 when stopping. */
static int sched_wait(tq_runs *rn, int64_t s) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += s;
  pthread_mutex_lock(&rn->mu);
  while (!rn->stopping) {
    if (pthread_cond_timedwait(&rn->cv, &rn->mu, &ts) != 0)
      break;
  }
  int stopping = rn->stopping;
  pthread_mutex_unlock(&rn->mu);
  return stopping;
}

static tq_code spawn(tq_runs *rn, task *t, tq_err *err);

/* The scheduler: resumes the server's unfinished runs, then ticks. */
static void run_sched(task *t, tq_err *err) {
  tq_runs *rn = t->rn;
  int64_t *ids = NULL;
  size_t n = 0;
  if (tq_run_resumable(t->lib, &ids, &n, err) != TQ_OK)
    tq_log(TQ_LOG_WARN, "server", "runs to resume: %s", err->msg);
  for (size_t i = 0; i < n; i++) {
    task *r = calloc(1, sizeof *r);
    if (r == NULL)
      break;
    r->kind = T_RESUME;
    r->req.run_id = ids[i];
    tq_strlcpy(r->req.who, "-", sizeof r->req.who);
    tq_err e;
    if (spawn(rn, r, &e) != TQ_OK)
      tq_log(TQ_LOG_WARN, "server", "resuming run %lld: %s", (long long)ids[i], e.msg);
    else
      tq_log(TQ_LOG_INFO, "server", "resuming run %lld", (long long)ids[i]);
  }
  free(ids);
  while (rn->tick_s > 0 && !t->stop) {
    tq_action_opts o;
    base_opts(t, &o);
    tq_tick_counts c;
    tq_err e;
    if (tq_workflow_tick(t->lib, &o, tq_time_now(), NULL, NULL, NULL, NULL, &c, &e) != TQ_OK)
      tq_log(TQ_LOG_WARN, "server", "tick: %s", e.msg);
    else if (c.feeds || c.workflows)
      tq_log(TQ_LOG_INFO, "server", "tick: %zu feed(s) polled, %zu workflow(s) run", c.feeds,
             c.workflows);
    pthread_mutex_lock(&rn->mu);
    t->run_id = 0;
    if (!rn->stopping)
      t->stop = 0; /* a cancel stops the tick's run in progress, not the scheduler */
    pthread_mutex_unlock(&rn->mu);
    if (sched_wait(rn, rn->tick_s))
      break;
  }
}

static void *task_main(void *arg) {
  task *t = arg;
  tq_err err;
  tq_err_clear(&err);
  if (tq_lib_open(t->rn->db_path, TQ_LIB_OPEN_EXISTING, &t->lib, &err) == TQ_OK) {
    switch (t->kind) {
    case T_ACTION: run_action(t, &err); break;
    case T_RESUME: run_resume(t, &err); break;
    case T_WORKFLOW: run_workflow(t, &err); break;
    case T_FEED: run_feed(t, &err); break;
    case T_SCHED: run_sched(t, &err); break;
    }
  }
  pthread_mutex_lock(&t->rn->mu);
  int pending = t->conn != NULL;
  pthread_mutex_unlock(&t->rn->mu);
  if (pending && err.code != TQ_OK)
    answer_failed(t, &err);
  else if (pending) /* a workflow whose actions all failed to start: it ran, no run is live */
    answer_started(t, 0);
  if (err.code != TQ_OK && t->kind == T_RESUME && t->conn == NULL)
    tq_log(TQ_LOG_WARN, "server", "run %lld: %s", (long long)t->req.run_id, err.msg);
  if (t->lib)
    tq_lib_close(t->lib);
  t->lib = NULL;
  pthread_mutex_lock(&t->rn->mu);
  t->finished = 1;
  t->run_id = 0;
  gauge(t->rn);
  pthread_mutex_unlock(&t->rn->mu);
  return NULL;
}

/* Joins finished tasks (under mu); returns how many live ones remain (the scheduler apart). */
static size_t reap(tq_runs *rn) {
  size_t live = 0;
  for (task **pp = &rn->tasks; *pp;) {
    task *t = *pp;
    if (t->finished) {
      pthread_join(t->thread, NULL);
      *pp = t->next;
      tq_runs_req_free(&t->req);
      free(t);
      continue;
    }
    if (t->kind != T_SCHED)
      live++;
    pp = &t->next;
  }
  return live;
}

/* Starts t's thread (t is the manager's from here on, also on failure). */
static tq_code spawn(tq_runs *rn, task *t, tq_err *err) {
  t->rn = rn;
  pthread_mutex_lock(&rn->mu);
  size_t live = reap(rn);
  tq_code rc = TQ_OK;
  if (rn->stopping)
    rc = tq_err_set(err, TQ_ELIMIT, "the server is shutting down");
  else if (t->kind != T_SCHED && live >= MAX_TASKS)
    rc = tq_err_set(err, TQ_ELIMIT, "%d runs and polls are in progress already: try again later",
                    MAX_TASKS);
  else if (pthread_create(&t->thread, NULL, task_main, t) != 0)
    rc = tq_err_set(err, TQ_EIO, "cannot start a thread for the run");
  if (rc == TQ_OK) {
    t->next = rn->tasks;
    rn->tasks = t;
    gauge(rn);
  }
  pthread_mutex_unlock(&rn->mu);
  if (rc != TQ_OK) {
    tq_runs_req_free(&t->req);
    free(t);
  }
  return rc;
}

/* ---- the manager --------------------------------------------------------------------------- */

tq_code tq_runs_start(tq_srv *srv, tq_runs **out, tq_err *err) {
  *out = NULL;
  const tq_server_opts *so = tq_srv_opts(srv);
  tq_lib *lib = NULL;
  /* The parts' tables, before any HTTP thread reads them on its read-only connection. */
  tq_code rc = tq_lib_open(so->db_path, TQ_LIB_OPEN_EXISTING, &lib, err);
  if (rc == TQ_OK)
    rc = tq_workflow_migrate(lib, err);
  if (rc == TQ_OK) /* the server's tables; the login brake as the library kept it */
    rc = tq_auth_brake_load(lib, err);
  if (lib)
    tq_lib_close(lib);
  if (rc != TQ_OK)
    return rc;
  tq_runs *rn = calloc(1, sizeof *rn);
  if (rn == NULL || (rn->db_path = tq_strdup(so->db_path)) == NULL) {
    free(rn);
    return tq_err_set(err, TQ_ENOMEM, "server: out of memory");
  }
  rn->srv = srv;
  rn->plugins_dir = so->plugins_dir;
  /* Every action the server loads (API runs, workflows, resumes, GET /api/actions) takes its
   * plugin's active version from the registry the operation routes use. */
  tq_action_plugin_source(reg_plugin_get, reg_plugin_release);
  rn->tick_s = 60;
  const char *env = getenv("TQHOST_TICK_S");
  long long v;
  tq_err e;
  if (env && *env && tq_parse_int(env, 0, 7 * 86400, &v, "TQHOST_TICK_S", &e) == TQ_OK)
    rn->tick_s = v;
  pthread_mutex_init(&rn->mu, NULL);
  pthread_cond_init(&rn->cv, NULL);
  tq_metric_help("tqhost_runs_active", "gauge",
                 "bulk runs, workflow runs and feed polls in progress (the scheduler apart)");
  tq_metric_set("tqhost_runs_active", "", 0);
  task *s = calloc(1, sizeof *s);
  if (s) {
    s->kind = T_SCHED;
    rn->sched = s;
    if (spawn(rn, s, &e) != TQ_OK) {
      rn->sched = NULL;
      tq_log(TQ_LOG_WARN, "server", "scheduler: %s", e.msg);
    }
  }
  *out = rn;
  return TQ_OK;
}

void tq_runs_stop(tq_runs *rn) {
  if (rn == NULL || rn->stopped)
    return;
  rn->stopped = 1;
  pthread_mutex_lock(&rn->mu);
  rn->stopping = 1;
  for (task *t = rn->tasks; t; t = t->next)
    t->stop = 1;
  pthread_cond_broadcast(&rn->cv);
  pthread_mutex_unlock(&rn->mu);
  for (;;) {
    pthread_mutex_lock(&rn->mu);
    task *t = rn->tasks;
    if (t)
      rn->tasks = t->next;
    pthread_mutex_unlock(&rn->mu);
    if (t == NULL)
      break;
    pthread_join(t->thread, NULL);
    tq_runs_req_free(&t->req);
    free(t);
  }
}

void tq_runs_free(tq_runs *rn) {
  if (rn == NULL)
    return;
  tq_runs_stop(rn);
  pthread_mutex_destroy(&rn->mu);
  pthread_cond_destroy(&rn->cv);
  free(rn->db_path);
  free(rn);
}

/* ---- from the handlers ---------------------------------------------------------------------- */

static void start(tq_req *rq, tq_resp *rs, task_kind kind, tq_runs_start_req *q) {
  tq_runs *rn = tq_srv_runs(rq->srv);
  task *t = calloc(1, sizeof *t);
  if (rn == NULL || t == NULL) {
    free(t);
    tq_runs_req_free(q);
    tq_resp_fail(rs, 503, "runs are not available");
    return;
  }
  t->kind = kind;
  t->req = *q;
  memset(q, 0, sizeof *q);
  tq_strlcpy(t->req.who, rq->who.name, sizeof t->req.who);
  tq_strlcpy(t->req.addr, rq->remote ? rq->remote : "", sizeof t->req.addr);
  int answer_now = kind == T_FEED;
  char feed[128];
  tq_strlcpy(feed, t->req.name ? t->req.name : "", sizeof feed);
  void *conn = NULL;
  if (!answer_now)
    t->conn = conn = tq_srv_conn_suspend(rq); /* the run's thread answers; rs is not ours */
  tq_err err;
  tq_err_clear(&err);
  if (spawn(rn, t, &err) != TQ_OK) { /* t is freed */
    tq_resp fail = {0};
    tq_resp_fail(&fail, 503, "%s", err.msg);
    fail.retry_after_s = 5;
    if (answer_now)
      *rs = fail;
    else
      tq_srv_conn_answer(conn, &fail);
    return;
  }
  if (answer_now) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "feed", feed);
    cJSON_AddStringToObject(d, "state", "polling");
    tq_resp_data(rs, 202, d);
  }
}

void tq_runs_start_action(tq_req *rq, tq_resp *rs, tq_runs_start_req *q) {
  start(rq, rs, T_ACTION, q);
}
void tq_runs_start_resume(tq_req *rq, tq_resp *rs, tq_runs_start_req *q) {
  start(rq, rs, T_RESUME, q);
}
void tq_runs_start_workflow(tq_req *rq, tq_resp *rs, tq_runs_start_req *q) {
  start(rq, rs, T_WORKFLOW, q);
}
void tq_runs_start_poll(tq_req *rq, tq_resp *rs, tq_runs_start_req *q) { start(rq, rs, T_FEED, q); }

int tq_runs_cancel(tq_runs *rn, int64_t run_id) {
  int found = 0;
  pthread_mutex_lock(&rn->mu);
  for (task *t = rn->tasks; t; t = t->next)
    if (!t->finished && t->run_id == run_id) {
      t->stop = 1;
      found = 1;
    }
  pthread_mutex_unlock(&rn->mu);
  return found;
}

int tq_runs_live(tq_runs *rn, int64_t run_id) {
  int found = 0;
  pthread_mutex_lock(&rn->mu);
  for (task *t = rn->tasks; t; t = t->next)
    if (!t->finished && t->run_id == run_id)
      found = 1;
  pthread_mutex_unlock(&rn->mu);
  return found;
}
