/* net_loop.c: the one event loop of a tq_net: curl's multi socket API on an epoll set, curl's
 * timer, the min-heap of requests waiting out a backoff, and tq_net_run, which runs the
 * completion callbacks in its own frame once curl has returned. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net_int.h"

#define NET_EPOLL_BATCH 64

/* ---- the backoff heap: O(log n) per retry, O(1) to read the next deadline ---------------- */

static void heap_swap(tq_net *net, size_t a, size_t b) {
  net_req *t = net->heap[a];
  net->heap[a] = net->heap[b];
  net->heap[b] = t;
  net->heap[a]->heap_idx = a;
  net->heap[b]->heap_idx = b;
}

tq_code net_heap_push(tq_net *net, net_req *req) {
  if (net->heap_len == net->heap_cap) {
    size_t cap = net->heap_cap ? net->heap_cap * 2 : 64;
    net_req **h = realloc(net->heap, cap * sizeof *h);
    if (h == NULL)
      return TQ_ENOMEM;
    net->heap = h;
    net->heap_cap = cap;
  }
  size_t i = net->heap_len++;
  net->heap[i] = req;
  req->heap_idx = i;
  while (i > 0 && net->heap[(i - 1) / 2]->wake_us > net->heap[i]->wake_us) {
    heap_swap(net, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  return TQ_OK;
}

static net_req *heap_pop(tq_net *net) {
  net_req *top = net->heap[0];
  net->heap[0] = net->heap[--net->heap_len];
  net->heap[0]->heap_idx = 0;
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < net->heap_len && net->heap[l]->wake_us < net->heap[m]->wake_us)
      m = l;
    if (r < net->heap_len && net->heap[r]->wake_us < net->heap[m]->wake_us)
      m = r;
    if (m == i)
      break;
    heap_swap(net, i, m);
    i = m;
  }
  return top;
}

void net_heap_clear(tq_net *net) {
  free(net->heap);
  net->heap = NULL;
  net->heap_len = net->heap_cap = 0;
}

/* Backoffs that are over go back to the front of their provider's queue: they waited. */
static void heap_fire(tq_net *net, int64_t now_us) {
  while (net->heap_len && net->heap[0]->wake_us <= now_us) {
    net_req *req = heap_pop(net);
    net_provider_enqueue(req->prov, req, 1);
  }
}

/* ---- curl's callbacks: they only record what curl asks for ------------------------------ */

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  tq_net *net = userp;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    /* The descriptor may be closed already; then the kernel dropped it from the set. */
    epoll_ctl(net->epfd, EPOLL_CTL_DEL, s, NULL);
    return 0;
  }
  struct epoll_event ev = {0};
  ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
  ev.data.fd = s;
  int op = socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(net->epfd, op, s, &ev) != 0) {
    op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(net->epfd, op, s, &ev) != 0)
      return -1;
  }
  if (socketp == NULL)
    curl_multi_assign(net->multi, s, net); /* marks s as in the set */
  return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp) {
  tq_net *net = userp;
  (void)multi;
  net->curl_deadline_us = timeout_ms < 0 ? -1 : net_now_us() + (int64_t)timeout_ms * 1000;
  return 0;
}

tq_code net_loop_init(tq_net *net, tq_err *err) {
  net->curl_deadline_us = -1;
  net->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (net->epfd < 0)
    return tq_err_set(err, TQ_EIO, "net: epoll_create1: %s", strerror(errno));
  net->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (net->wakefd < 0)
    return tq_err_set(err, TQ_EIO, "net: eventfd: %s", strerror(errno));
  struct epoll_event wev = {0};
  wev.events = EPOLLIN;
  wev.data.fd = net->wakefd;
  if (epoll_ctl(net->epfd, EPOLL_CTL_ADD, net->wakefd, &wev) != 0)
    return tq_err_set(err, TQ_EIO, "net: epoll_ctl(eventfd): %s", strerror(errno));
  net->multi = curl_multi_init();
  if (net->multi == NULL)
    return tq_err_set(err, TQ_ENOMEM, "net: curl_multi_init failed");
  curl_multi_setopt(net->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(net->multi, CURLMOPT_SOCKETDATA, net);
  curl_multi_setopt(net->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(net->multi, CURLMOPT_TIMERDATA, net);
  return TQ_OK;
}

void net_loop_free(tq_net *net) {
  if (net->multi)
    curl_multi_cleanup(net->multi);
  net->multi = NULL;
  if (net->epfd >= 0)
    close(net->epfd);
  net->epfd = -1;
  if (net->wakefd >= 0)
    close(net->wakefd);
  net->wakefd = -1;
}

/* ---- driving ----------------------------------------------------------------------------- */

static void socket_action(tq_net *net, curl_socket_t s, int mask) {
  int running = 0;
  net->in_curl = 1;
  curl_multi_socket_action(net->multi, s, mask, &running);
  net->in_curl = 0;
}

static void read_completions(tq_net *net) {
  CURLMsg *msg;
  int left = 0;
  while ((msg = curl_multi_info_read(net->multi, &left)) != NULL)
    if (msg->msg == CURLMSG_DONE)
      net_transfer_done(net, msg->easy_handle, msg->data.result);
}

/* Moves time forward: over backoffs, curl's timer, admissions. Returns the next deadline
 * (monotonic us) anything in the loop waits for, or -1 when nothing does. */
static int64_t loop_step(tq_net *net) {
  int64_t now = net_now_us();
  heap_fire(net, now);
  if (net->curl_deadline_us >= 0 && net->curl_deadline_us <= now) {
    net->curl_deadline_us = -1;
    socket_action(net, CURL_SOCKET_TIMEOUT, 0);
  }
  read_completions(net);
  int64_t next = net->heap_len ? net->heap[0]->wake_us : -1;
  for (tq_net_provider *p = net->providers; p; p = p->next) {
    if (p->q_head)
      net_provider_pump(net, p, now);
    if (p->q_head && p->wake_us && (next < 0 || p->wake_us < next))
      next = p->wake_us;
  }
  if (net->curl_deadline_us >= 0 && (next < 0 || net->curl_deadline_us < next))
    next = net->curl_deadline_us;
  return next;
}

static void wait_events(tq_net *net, int wait_ms) {
  struct epoll_event evs[NET_EPOLL_BATCH];
  int n = epoll_wait(net->epfd, evs, NET_EPOLL_BATCH, wait_ms);
  for (int i = 0; i < n; i++) {
    if (evs[i].data.fd == net->wakefd) {
      uint64_t v;
      while (read(net->wakefd, &v, sizeof v) == (ssize_t)sizeof v)
        ;
      net->woken = 1;
      continue;
    }
    int mask = 0;
    if (evs[i].events & EPOLLIN)
      mask |= CURL_CSELECT_IN;
    if (evs[i].events & EPOLLOUT)
      mask |= CURL_CSELECT_OUT;
    if (evs[i].events & (EPOLLERR | EPOLLHUP))
      mask |= CURL_CSELECT_ERR;
    socket_action(net, evs[i].data.fd, mask);
  }
  if (n > 0)
    read_completions(net);
}

tq_code tq_net_flush(tq_net *net, tq_err *err) {
  if (net->in_run)
    return tq_err_set(err, TQ_EINTERNAL, "net: tq_net_flush called from a completion callback");
  net->in_run = 1;
  loop_step(net); /* admits: new transfers set curl's timer to now */
  loop_step(net); /* curl's timer: connections are picked and requests written */
  net->in_run = 0;
  return TQ_OK;
}

/* Runs the callbacks of every request completed so far. The list is detached first so that a
 * callback may submit (its completions wait for the next round). Returns how many ran. */
static size_t deliver(tq_net *net) {
  net_req *list = net->done_head;
  size_t n = 0;
  net->done_head = net->done_tail = NULL;
  while (list) {
    net_req *req = list;
    list = req->next;
    tq_net_response *resp = req->resp;
    tq_net_done_fn done = req->done;
    void *ud = req->ud;
    req->resp = NULL;
    net_req_recycle(net, req);
    net->pending--;
    done(ud, resp);
    n++;
  }
  return n;
}

tq_code tq_net_run(tq_net *net, int64_t timeout_ms, tq_err *err) {
  if (net->in_run)
    return tq_err_set(err, TQ_EINTERNAL, "net: tq_net_run called from a completion callback");
  int64_t deadline = net_now_us() + (timeout_ms > 0 ? timeout_ms : 0) * 1000;
  net->in_run = 1;
  int polled = 0; /* a zero timeout still reads the sockets once */
  for (;;) {
    int64_t next = loop_step(net);
    if (net->done_head) {
      deliver(net);
      break;
    }
    int64_t now = net_now_us();
    if (net->pending == 0 || (now >= deadline && polled) || net->woken)
      break;
    if (next < 0 || next > deadline)
      next = deadline;
    int64_t wait_ms = next > now ? (next - now + 999) / 1000 : 0;
    wait_events(net, wait_ms > INT_MAX ? INT_MAX : (int)wait_ms);
    polled = 1;
  }
  net->in_run = 0;
  net->woken = 0;
  net_cache_tick(net); /* after the callbacks: their runs go on first */
  return TQ_OK;
}

void tq_net_wakeup(tq_net *net) {
  uint64_t one = 1;
  if (net && net->wakefd >= 0) {
    ssize_t w = write(net->wakefd, &one, sizeof one);
    (void)w; /* EAGAIN: the counter is already non-zero, a wake is pending */
  }
}
