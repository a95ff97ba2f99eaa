/* log.c: structured log lines on stderr. The level is the one piece of process-wide state,
 * set once at start-up before any thread runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/core.h"

static tq_log_level g_level = TQ_LOG_WARN;
static int g_level_read;

static void log_read_env(void) {
  const char *e = getenv("TQHOST_LOG");
  if (e == NULL)
    return;
  if (strcmp(e, "debug") == 0)
    g_level = TQ_LOG_DEBUG;
  else if (strcmp(e, "info") == 0)
    g_level = TQ_LOG_INFO;
  else if (strcmp(e, "error") == 0)
    g_level = TQ_LOG_ERROR;
}

void tq_log_set_level(tq_log_level level) {
  g_level = level;
  g_level_read = 1;
}

int tq_log_enabled(tq_log_level level) {
  if (!g_level_read) {
    g_level_read = 1;
    log_read_env();
  }
  return level >= g_level;
}

void tq_log(tq_log_level level, const char *part, const char *fmt, ...) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  if (!tq_log_enabled(level))
    return;
  char msg[1024], safe[4 * sizeof msg]; /* an escape is at most 6 bytes for 2: \u0080 */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  tq_str_escape(safe, sizeof safe, msg, TQ_ESC_QUOTE);
  fprintf(stderr, "level=%s part=%s msg=\"%s\"\n", names[level], part, safe);
}
