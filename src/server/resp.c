/* resp.c: the answers a handler fills: ThreatQ's data envelope, its two error shapes, raw
 * bodies, and the mapping from a tq_err to an HTTP status. Pure: no I/O, no MHD. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events_int.h"
#include "server_int.h"

void tq_resp_free(tq_resp *rs) {
  if (rs == NULL)
    return;
  cJSON_Delete(rs->json);
  free(rs->body);
  free(rs->www_authenticate);
  tq_events_stream_free(rs->stream);
  free(rs->etag);
  memset(rs, 0, sizeof *rs);
}

/* Drops what a previous fill left so that the last fill wins without leaking. */
static void reset(tq_resp *rs) {
  cJSON_Delete(rs->json);
  free(rs->body);
  tq_events_stream_free(rs->stream);
  rs->stream = NULL;
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

/* s as UTF-8 into out (n bytes): a byte that is no UTF-8 as "\xHH", cut at a whole character
 * (found by fuzz_api_input: a body's key that is no UTF-8, echoed as a refused field, or a
 * message cut at its buffer inside a character, made an answer no client reads as JSON). */
static const char *utf8_fit(const char *s, char *out, size_t n) {
  size_t len = strlen(s), at = 0, w = 0;
  while (at < len) {
    size_t ok = tq_utf8_invalid_at(s + at, len - at); /* bytes of whole characters */
    if (w + ok >= n) {                                /* cut: back to a character start */
      ok = n - 1 - w;
      while (ok > 0 && ((unsigned char)s[at + ok] & 0xC0) == 0x80)
        ok--;
      memcpy(out + w, s + at, ok);
      w += ok;
      break;
    }
    memcpy(out + w, s + at, ok);
    w += ok;
    at += ok;
    if (at < len) {
      if (w + 4 >= n)
        break;
      snprintf(out + w, 5, "\\x%02x", (unsigned char)s[at]);
      w += 4;
      at++;
    }
  }
  out[w] = '\0';
  return out;
}

void tq_resp_invalid(tq_resp *rs, const char *field, const char *fmt, ...) {
  char msg[1024], fit[1024], ffit[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  reset(rs);
  cJSON *env = cJSON_CreateObject();
  cJSON *data = cJSON_AddObjectToObject(env, "data");
  cJSON *errors = cJSON_AddObjectToObject(data, "errors");
  cJSON *list = cJSON_AddArrayToObject(errors, field && *field ? utf8_fit(field, ffit, sizeof ffit)
                                                               : "request");
  cJSON_AddItemToArray(list, cJSON_CreateString(utf8_fit(msg, fit, sizeof fit)));
  rs->status = 400;
  rs->json = env;
}

static void fail_v(tq_resp *rs, int status, const char *fmt, va_list ap) {
  char msg[1024], fit[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  reset(rs);
  cJSON *env = cJSON_CreateObject();
  cJSON *list = cJSON_AddArrayToObject(env, "errors");
  cJSON_AddItemToArray(list, cJSON_CreateString(utf8_fit(msg, fit, sizeof fit)));
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

/* ---- serialising ------------------------------------------------------------------------------
 * cJSON_PrintUnformatted's output, faster: cJSON 1.7.15 prints every number with
 * sprintf("%1.15g") and reads it back with sscanf, and an object of the API has a dozen
 * integers (ids, scores, TLPs). Integers below 10^15 (all digits under %1.15g too) are printed
 * here directly; any other
 * number as cJSON does (15 significant digits when they give the value back, else 17;
 * NaN and infinities as null). Strings are escaped as cJSON escapes them. */

static tq_code print_string(tq_buf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  if (s == NULL)
    return tq_buf_adds(b, "\"\"");
  tq_code rc = tq_buf_addc(b, '"');
  const char *run = s;
  for (const unsigned char *p = (const unsigned char *)s; rc == TQ_OK; p++) {
    unsigned char c = *p;
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    rc = tq_buf_add(b, run, (size_t)((const char *)p - run));
    if (c == '\0' || rc != TQ_OK)
      break;
    char esc[7] = {'\\', 0};
    size_t n = 2;
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    default:
      memcpy(esc + 1, "u00", 3);
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      n = 6;
    }
    rc = tq_buf_add(b, esc, n);
    run = (const char *)p + 1;
  }
  return rc == TQ_OK ? tq_buf_addc(b, '"') : rc;
}

static tq_code print_number(tq_buf *b, double d) {
  char num[32];
  if (isnan(d) || isinf(d))
    return tq_buf_adds(b, "null");
  if (d == floor(d) && fabs(d) < 1e15 && !(d == 0 && signbit(d))) {
    long long v = (long long)d;
    char *p = num + sizeof num;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    *--p = '\0';
    do
      *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
      *--p = '-';
    return tq_buf_adds(b, p);
  }
  double back = 0;
  snprintf(num, sizeof num, "%1.15g", d);
  /* cJSON's test of "gives the value back": equal within one DBL_EPSILON, relative */
  if (sscanf(num, "%lg", &back) != 1 ||
      !(fabs(back - d) <= (fabs(back) > fabs(d) ? fabs(back) : fabs(d)) * DBL_EPSILON))
    snprintf(num, sizeof num, "%1.17g", d);
  return tq_buf_adds(b, num);
}

static tq_code print_value(tq_buf *b, const cJSON *j, int depth) {
  if (depth > 1000)
    return TQ_ELIMIT;
  switch (j->type & 0xff) {
  case cJSON_NULL: return tq_buf_adds(b, "null");
  case cJSON_False: return tq_buf_adds(b, "false");
  case cJSON_True: return tq_buf_adds(b, "true");
  case cJSON_Number: return print_number(b, j->valuedouble);
  case cJSON_String: return print_string(b, j->valuestring);
  case cJSON_Raw: return j->valuestring ? tq_buf_adds(b, j->valuestring) : TQ_EINVAL;
  case cJSON_Array:
  case cJSON_Object: {
    int obj = (j->type & 0xff) == cJSON_Object;
    tq_code rc = tq_buf_addc(b, obj ? '{' : '[');
    for (const cJSON *c = j->child; c && rc == TQ_OK; c = c->next) {
      if (c != j->child)
        rc = tq_buf_addc(b, ',');
      if (rc == TQ_OK && obj) {
        rc = print_string(b, c->string);
        if (rc == TQ_OK)
          rc = tq_buf_addc(b, ':');
      }
      if (rc == TQ_OK)
        rc = print_value(b, c, depth + 1);
    }
    return rc == TQ_OK ? tq_buf_addc(b, obj ? '}' : ']') : rc;
  }
  default: return TQ_EINVAL;
  }
}

char *tq_resp_print(const cJSON *json, size_t *len) {
  tq_buf b;
  tq_buf_init(&b, 0);
  if (json == NULL || print_value(&b, json, 0) != TQ_OK || b.data == NULL) {
    tq_buf_free(&b);
    return NULL;
  }
  *len = b.len;
  return b.data; /* tq_buf's data is malloc'd and NUL-terminated */
}
