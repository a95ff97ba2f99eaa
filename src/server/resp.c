/* resp.c: the answers a handler fills: ThreatQ's data envelope, its two error shapes, raw
 * bodies, and the mapping from a tq_err to an HTTP status. Pure: no I/O, no MHD. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

void tq_resp_free(tq_resp *rs) {
  if (rs == NULL)
    return;
  cJSON_Delete(rs->json);
  free(rs->body);
  free(rs->www_authenticate);
  memset(rs, 0, sizeof *rs);
}

/* Drops what a previous fill left so that the last fill wins without leaking. */
static void reset(tq_resp *rs) {
  cJSON_Delete(rs->json);
  free(rs->body);
  rs->json = NULL;
  rs->body = NULL;
  rs->body_len = 0;
  rs->ctype = NULL;
}

void tq_resp_data(tq_resp *rs, int status, cJSON *data) {
  reset(rs);
  cJSON *env = cJSON_CreateObject();
  if (env == NULL) {
    cJSON_Delete(data);
    rs->status = 500;
    return;
  }
  cJSON_AddItemToObject(env, "data", data ? data : cJSON_CreateNull());
  rs->status = status;
  rs->json = env;
}

void tq_resp_list(tq_resp *rs, cJSON *list, int64_t total, int64_t limit, int64_t offset) {
  reset(rs);
  cJSON *env = cJSON_CreateObject();
  if (env == NULL) {
    cJSON_Delete(list);
    rs->status = 500;
    return;
  }
  cJSON_AddItemToObject(env, "data", list ? list : cJSON_CreateArray());
  cJSON_AddNumberToObject(env, "total", (double)total);
  cJSON_AddNumberToObject(env, "limit", (double)limit);
  cJSON_AddNumberToObject(env, "offset", (double)offset);
  rs->status = 200;
  rs->json = env;
}

void tq_resp_invalid(tq_resp *rs, const char *field, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  reset(rs);
  cJSON *env = cJSON_CreateObject();
  cJSON *data = cJSON_AddObjectToObject(env, "data");
  cJSON *errors = cJSON_AddObjectToObject(data, "errors");
  cJSON *list = cJSON_AddArrayToObject(errors, field && *field ? field : "request");
  cJSON_AddItemToArray(list, cJSON_CreateString(msg));
  rs->status = 400;
  rs->json = env;
}

static void fail_v(tq_resp *rs, int status, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  reset(rs);
  cJSON *env = cJSON_CreateObject();
  cJSON *list = cJSON_AddArrayToObject(env, "errors");
  cJSON_AddItemToArray(list, cJSON_CreateString(msg));
  rs->status = status;
  rs->json = env;
}

void tq_resp_fail(tq_resp *rs, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fail_v(rs, status, fmt, ap);
  va_end(ap);
}

/* The field a message names: "value: must not be empty" -> "value" when the caller said so. */
static const char *message_field(const char *field, const char *msg, const char **rest) {
  *rest = msg;
  if (field == NULL)
    return "request";
  size_t n = strlen(field);
  if (strncmp(msg, field, n) == 0 && msg[n] == ':') {
    *rest = msg + n + 1;
    while (**rest == ' ')
      (*rest)++;
  }
  return field;
}

void tq_resp_err(tq_resp *rs, const char *field, const tq_err *err) {
  const char *msg = err && err->msg[0] ? err->msg : tq_code_name(err ? err->code : TQ_EINTERNAL);
  switch (err ? err->code : TQ_EINTERNAL) {
  case TQ_EINVAL: {
    const char *rest;
    const char *f = message_field(field, msg, &rest);
    tq_resp_invalid(rs, f, "%s", rest);
    return;
  }
  case TQ_ENOTFOUND: tq_resp_fail(rs, 404, "%s", msg); return;
  case TQ_EEXIST: tq_resp_fail(rs, 409, "%s", msg); return;
  case TQ_EDENIED: tq_resp_fail(rs, 403, "%s", msg); return;
  case TQ_ELIMIT:
  case TQ_ENOMEM: tq_resp_fail(rs, 413, "%s", msg); return;
  case TQ_ETIMEOUT: tq_resp_fail(rs, 504, "%s", msg); return;
  case TQ_EDB:
    if (strstr(msg, "locked") || strstr(msg, "busy")) {
      tq_resp_fail(rs, 503, "the library is busy, try again");
      rs->retry_after_s = 1;
      return;
    }
    break;
  default: break;
  }
  tq_log(TQ_LOG_ERROR, "server", "internal error answered 500: %s: %s",
         tq_code_name(err ? err->code : TQ_EINTERNAL), msg);
  tq_resp_fail(rs, 500, "internal error (see the server's log)");
}

void tq_resp_raw(tq_resp *rs, int status, const char *ctype, const char *body, size_t len) {
  reset(rs);
  rs->body = malloc(len + 1);
  if (rs->body == NULL) {
    tq_resp_fail(rs, 500, "out of memory");
    return;
  }
  if (len)
    memcpy(rs->body, body, len);
  rs->body[len] = '\0';
  rs->body_len = len;
  rs->ctype = ctype;
  rs->status = status;
}
