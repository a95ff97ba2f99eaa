/* watch.c: the budget hook, armed on demand. A count hook set on a coroutine makes Lua's VM
 * call into the debug machinery before every instruction (the hook's count only decides when
 * the hook function itself runs), which cost ~20% of a typical run. Most runs execute well
 * under a millisecond between two yields, so the hook is not set when a run starts: each
 * runtime has a watchdog thread that, when one resume (or a run's first chunk) has been
 * executing for a tick or longer, signals the runtime's thread; the handler sets the count
 * hook on the coroutine executing there, and from then on the budgets are enforced as before
 * (instructions counted, the deadline checked, a kill re-armed on every instruction). A run
 * whose executions are each shorter than a tick gets the hook once they add up to one.
 * lua_sethook is meant to be called from a signal handler (Lua's own interpreter does it on
 * SIGINT); setting it from another thread would race with the VM's frames.
 *
 * Cost: no syscall on the resume path (two atomic increments, a thread-local store and, until
 * the run has its hook, two vDSO clock reads); the watchdog wakes once per tick while runs
 * execute and parks after WATCH_IDLE_TICKS quiet ticks. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "lua_int.h"

#define WATCH_TICK_NS 1000000L /* 1 ms */
#define WATCH_IDLE_TICKS 100

/* The coroutine executing on this thread, for the signal handler. */
static _Thread_local lua_State *volatile tl_running;

static pthread_once_t g_handler_once = PTHREAD_ONCE_INIT;
static int g_signo;

static void on_watch_signal(int sig) {
  (void)sig;
  int saved = errno;
  lua_State *co = tl_running;
  if (co && lua_gethookmask(co) == 0)
    hook_arm_count(co);
  errno = saved;
}

static void handler_install(void) {
  g_signo = SIGRTMIN + 2;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_watch_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(g_signo, &sa, NULL) != 0)
    g_signo = 0;
}

static void *watch_main(void *arg) {
  tq_lua *rt = arg;
  uint64_t last = atomic_load(&rt->watch_seq), armed = 0;
  int quiet = 0;
  pthread_mutex_lock(&rt->watch_mu);
  while (!rt->watch_stop) {
    if (quiet >= WATCH_IDLE_TICKS) {
      /* Park unless a resume began meanwhile (watch_enter reads watch_parked after it bumps
       * the sequence, so one of the two sees the other). */
      atomic_store(&rt->watch_parked, 1);
      if (atomic_load(&rt->watch_seq) == last && !rt->watch_stop)
        pthread_cond_wait(&rt->watch_cv, &rt->watch_mu);
      atomic_store(&rt->watch_parked, 0);
      quiet = 0;
      last = atomic_load(&rt->watch_seq);
      continue;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += WATCH_TICK_NS;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&rt->watch_cv, &rt->watch_mu, &ts);
    uint64_t seq = atomic_load(&rt->watch_seq);
    if ((seq & 1) && seq == last && seq != armed) {
      pthread_kill(rt->watch_owner, g_signo); /* the same execution for a whole tick */
      armed = seq;
    }
    quiet = (seq == last && !(seq & 1)) ? quiet + 1 : 0;
    last = seq;
  }
  pthread_mutex_unlock(&rt->watch_mu);
  return NULL;
}

void watch_init(tq_lua *rt) {
  atomic_init(&rt->watch_seq, 0);
  atomic_init(&rt->watch_parked, 0);
  pthread_mutex_init(&rt->watch_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the ticks' deadlines are monotonic */
  pthread_cond_init(&rt->watch_cv, &ca);
  pthread_condattr_destroy(&ca);
}

/* Starts the watchdog on the first execution; 0 when it cannot run (no signal, no thread):
 * then every coroutine gets its hook at once, as it would without a watchdog. */
static int watch_start(tq_lua *rt) {
  pthread_once(&g_handler_once, handler_install);
  rt->watch_tried = 1;
  sigset_t mask;
  if (g_signo == 0 || pthread_sigmask(SIG_BLOCK, NULL, &mask) != 0 ||
      sigismember(&mask, g_signo) == 1)
    return 0;                       /* a thread that blocks the signal would never get its hooks */
  rt->watch_owner = pthread_self(); /* one runtime, one thread */
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int ok = pthread_create(&rt->watch_thread, &attr, watch_main, rt) == 0;
  pthread_attr_destroy(&attr);
  rt->watch_running = ok;
  return ok;
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A run that yields before each tick would never get its hook from the watchdog: its
 * unhooked executions are timed and add up, and once they reach a tick the run gets the hook
 * at its next execution, for the rest of its life (a hook stays set across yields). */
void watch_enter(tq_lua *rt, tq_lua_run *run) {
  lua_State *co = run->co;
  if (!rt->watch_running && (rt->watch_tried || !watch_start(rt))) {
    if (lua_gethookmask(co) == 0)
      hook_arm(co, run);
    return;
  }
  if (lua_gethookmask(co) == 0) {
    if (run->unhooked_ns >= WATCH_TICK_NS)
      hook_arm(co, run);
    else
      run->exec_t0_ns = mono_ns();
  }
  tl_running = co;
  atomic_fetch_add(&rt->watch_seq, 1); /* odd: executing */
  if (atomic_load(&rt->watch_parked)) {
    pthread_mutex_lock(&rt->watch_mu);
    pthread_cond_signal(&rt->watch_cv);
    pthread_mutex_unlock(&rt->watch_mu);
  }
}

void watch_leave(tq_lua *rt, tq_lua_run *run) {
  if (!rt->watch_running)
    return;
  tl_running = NULL;
  atomic_fetch_add(&rt->watch_seq, 1); /* even: not executing */
  if (run->exec_t0_ns) {
    run->unhooked_ns += mono_ns() - run->exec_t0_ns;
    run->exec_t0_ns = 0;
  }
}

void watch_free(tq_lua *rt) {
  if (rt->watch_running) {
    pthread_mutex_lock(&rt->watch_mu);
    rt->watch_stop = 1;
    pthread_cond_signal(&rt->watch_cv);
    pthread_mutex_unlock(&rt->watch_mu);
    pthread_join(rt->watch_thread, NULL);
    rt->watch_running = 0;
  }
  pthread_mutex_destroy(&rt->watch_mu);
  pthread_cond_destroy(&rt->watch_cv);
}
