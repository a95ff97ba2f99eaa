/* timer.c: rstsim's delayed resume. A connection whose answer must wait (--latency-ms,
 * --jitter-ms, --fault-stall) is suspended by http.c and handed here; one thread keeps a
 * min-heap of deadlines and resumes each connection when its time comes. So a waiting answer
 * holds no worker thread and latency never serialises requests. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <microhttpd.h>

#include "sim.h"

typedef struct timer_item {
  int64_t due_ms;
  struct MHD_Connection *conn;
} timer_item;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  pthread_t thread;
  int running;
  int stopping;
  timer_item *heap;
  size_t len, cap;
} g_timer = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void heap_swap(size_t a, size_t b) {
  timer_item t = g_timer.heap[a];
  g_timer.heap[a] = g_timer.heap[b];
  g_timer.heap[b] = t;
}

static void heap_up(size_t i) {
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (g_timer.heap[parent].due_ms <= g_timer.heap[i].due_ms)
      break;
    heap_swap(parent, i);
    i = parent;
  }
}

static void heap_down(size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < g_timer.len && g_timer.heap[l].due_ms < g_timer.heap[m].due_ms)
      m = l;
    if (r < g_timer.len && g_timer.heap[r].due_ms < g_timer.heap[m].due_ms)
      m = r;
    if (m == i)
      return;
    heap_swap(i, m);
    i = m;
  }
}

static timer_item heap_pop(void) {
  timer_item top = g_timer.heap[0];
  g_timer.heap[0] = g_timer.heap[--g_timer.len];
  heap_down(0);
  return top;
}

static struct timespec abs_mono(int64_t ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  return ts;
}

/* The thread: resumes every due connection, then sleeps until the next deadline. Resuming
 * happens under the lock, which is fine: MHD_resume_connection only flags and signals. */
static void *timer_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g_timer.lock);
  while (!g_timer.stopping) {
    int64_t now = tq_mono_ms();
    while (g_timer.len > 0 && g_timer.heap[0].due_ms <= now)
      MHD_resume_connection(heap_pop().conn);
    if (g_timer.len == 0) {
      pthread_cond_wait(&g_timer.wake, &g_timer.lock);
    } else {
      struct timespec ts = abs_mono(g_timer.heap[0].due_ms);
      int rc = pthread_cond_timedwait(&g_timer.wake, &g_timer.lock, &ts);
      (void)rc; /* ETIMEDOUT and wake-ups are both handled by the loop */
    }
  }
  while (g_timer.len > 0)
    MHD_resume_connection(heap_pop().conn);
  pthread_mutex_unlock(&g_timer.lock);
  return NULL;
}

tq_code sim_timer_start(tq_err *err) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&g_timer.wake, &attr);
  pthread_condattr_destroy(&attr);
  if (rc != 0)
    return tq_err_set(err, TQ_EIO, "timer: pthread_cond_init failed (%d)", rc);
  g_timer.stopping = 0;
  rc = pthread_create(&g_timer.thread, NULL, timer_main, NULL);
  if (rc != 0) {
    pthread_cond_destroy(&g_timer.wake);
    return tq_err_set(err, TQ_EIO, "timer: pthread_create failed (%d)", rc);
  }
  g_timer.running = 1;
  return TQ_OK;
}

tq_code sim_timer_add(struct MHD_Connection *conn, int64_t due_ms, tq_err *err) {
  tq_code code = TQ_OK;
  pthread_mutex_lock(&g_timer.lock);
  if (g_timer.stopping) {
    MHD_resume_connection(conn);
    goto done;
  }
  if (g_timer.len == g_timer.cap) {
    size_t cap = g_timer.cap ? g_timer.cap * 2 : 256;
    timer_item *p = realloc(g_timer.heap, cap * sizeof *p);
    if (p == NULL) {
      MHD_resume_connection(conn); /* answer at once rather than never */
      code = tq_err_set(err, TQ_ENOMEM, "timer: no memory for %zu waiting answers", cap);
      goto done;
    }
    g_timer.heap = p;
    g_timer.cap = cap;
  }
  g_timer.heap[g_timer.len] = (timer_item){.due_ms = due_ms, .conn = conn};
  heap_up(g_timer.len++);
  if (g_timer.heap[0].conn == conn)
    pthread_cond_signal(&g_timer.wake);
done:
  pthread_mutex_unlock(&g_timer.lock);
  return code;
}

void sim_timer_stop(void) {
  if (!g_timer.running)
    return;
  pthread_mutex_lock(&g_timer.lock);
  g_timer.stopping = 1;
  pthread_cond_signal(&g_timer.wake);
  pthread_mutex_unlock(&g_timer.lock);
  pthread_join(g_timer.thread, NULL);
  pthread_cond_destroy(&g_timer.wake);
  free(g_timer.heap);
  g_timer.heap = NULL;
  g_timer.len = g_timer.cap = 0;
  g_timer.running = 0;
}
