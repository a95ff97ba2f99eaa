/* run_progress.c: the progress bar of a bulk run on stderr, drawn only when asked for and
 * stderr is a terminal: done/total, rate, ETA, failures, redrawn at most five times a second
 * on one line. */
#include <stdio.h>
#include <unistd.h>

#include "run_int.h"

#define BAR_WIDTH 24

static void fmt_eta(double s, char *out, size_t n) {
  if (s < 0 || s > 99 * 3600.0) {
    snprintf(out, n, "--:--");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}

void run_progress_draw(runner *r, int force) {
  if (!r->progress)
    return;
  int64_t now = tq_mono_ms();
  if (!force && now - r->last_draw_ms < 200)
    return;
  r->last_draw_ms = now;
  int64_t done = r->committed_before + r->done_session;
  int64_t total = r->row.total > done ? r->row.total : done;
  double secs = (double)(now - r->t0_ms) / 1000.0;
  double rate = secs > 0 ? (double)r->done_session / secs : 0;
  char eta[32];
  fmt_eta(rate > 0 ? (double)(total - done) / rate : -1, eta, sizeof eta);
  char bar[BAR_WIDTH + 1];
  int filled = total > 0 ? (int)(done * BAR_WIDTH / total) : 0;
  for (int i = 0; i < BAR_WIDTH; i++)
    bar[i] = i < filled ? '#' : '.';
  bar[BAR_WIDTH] = '\0';
  fprintf(stderr, "\r[%s] %lld/%lld %5.1f%%  %.0f/s  ETA %s  failed %lld \033[K", bar,
          (long long)done, (long long)total,
          total > 0 ? 100.0 * (double)done / (double)total : 100.0, rate, eta,
          (long long)(r->failed_before + r->failed_session));
  fflush(stderr);
}

void run_progress_end(runner *r) {
  if (!r->progress)
    return;
  run_progress_draw(r, 1);
  fputc('\n', stderr);
  fflush(stderr);
}
