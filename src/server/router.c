/* router.c: route matching over every table of routes.c, the role check before a handler
 * runs, and the request helpers that need no HTTP library (body as JSON, ids, paging).
 * Matching works on the raw (still percent-encoded) path, each segment decoded on its own; an
 * encoded "/" is refused (400) so that no {param} a handler receives ever holds a '/'. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

/* ---- matching --------------------------------------------------------------------------- */

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Decodes s[0..n) into out (at least n+1 bytes). -1 for a bad escape or an encoded NUL, -2
 * for an encoded '/'. */
static int pct_decode(const char *s, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      out[o++] = s[i];
      continue;
    }
    if (i + 2 >= n)
      return -1;
    int hi = hexval((unsigned char)s[i + 1]);
    int lo = hexval((unsigned char)s[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
      return -1;
    if (hi * 16 + lo == '/')
      return -2;
    out[o++] = (char)(hi * 16 + lo);
    i += 2;
  }
  out[o] = '\0';
  return (int)o;
}

/* Splits the raw path into decoded segments stored in m->buf. Returns the count, or -1 with
 * m->why set (bad escape, encoded '/', "." or ".." segment, too long). */
#define MAX_SEGS 16
static int split(const char *raw, tq_route_match *m, const char **segs) {
  if (raw[0] != '/') {
    snprintf(m->why, sizeof m->why, "the path must start with '/'");
    return -1;
  }
  size_t used = 0, path_used = 0;
  int n = 0;
  const char *p = raw + 1;
  m->path[0] = '\0';
  for (;;) {
    const char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (n == MAX_SEGS || used + len + 1 > sizeof m->buf) {
      snprintf(m->why, sizeof m->why, "the path is too long");
      return -1;
    }
    char *seg = m->buf + used;
    int dl = pct_decode(p, len, seg);
    if (dl == -2) {
      snprintf(m->why, sizeof m->why, "an encoded '/' (%%2F) is not allowed in the path");
      return -1;
    }
    if (dl < 0) {
      snprintf(m->why, sizeof m->why, "bad percent-encoding in the path");
      return -1;
    }
    if (strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0) {
      snprintf(m->why, sizeof m->why, "path segments '.' and '..' are not allowed");
      return -1;
    }
    segs[n++] = seg;
    used += (size_t)dl + 1;
    int w = snprintf(m->path + path_used, sizeof m->path - path_used, "/%s", seg);
    if (w > 0)
      path_used += (size_t)w < sizeof m->path - path_used ? (size_t)w : 0;
    if (end == NULL)
      break;
    p = end + 1;
  }
  return n;
}

/* Whether pattern matches the n segments; param segments must be non-empty. */
static int pattern_matches(const char *pattern, const char **segs, int n) {
  const char *p = pattern;
  if (*p != '/')
    return 0;
  for (int i = 0; i < n; i++) {
    if (*p != '/')
      return 0;
    p++;
    const char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
      if (segs[i][0] == '\0')
        return 0;
    } else if (strlen(segs[i]) != len || strncmp(p, segs[i], len) != 0) {
      return 0;
    }
    p += len;
  }
  return *p == '\0';
}

/* Segment i of a pattern is a {param}. */
static int seg_is_param(const char *pattern, int i) {
  const char *p = pattern;
  for (int k = 0; k <= i; k++) {
    p = strchr(p, '/');
    if (p == NULL)
      return 0;
    p++;
  }
  return *p == '{';
}

/* 1 when a beats b: at the first segment where one is literal and the other a param, the
 * literal one. */
static int beats(const char *a, const char *b, int n) {
  for (int i = 0; i < n; i++) {
    int pa = seg_is_param(a, i), pb = seg_is_param(b, i);
    if (pa != pb)
      return pb;
  }
  return 0;
}

static int method_eq(const char *route_method, const char *method) {
  if (strcmp(route_method, method) == 0)
    return 1;
  return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

int tq_route_find(const tq_route *const *tables, const char *method, const char *raw_path,
                  tq_route_match *m) {
  const char *segs[MAX_SEGS];
  memset(m, 0, sizeof *m);
  int n = split(raw_path, m, segs);
  if (n < 0)
    return 400;
  const tq_route *best = NULL;
  int path_known = 0;
  for (size_t t = 0; tables[t]; t++)
    for (const tq_route *r = tables[t]; r->method; r++) {
      if (!pattern_matches(r->pattern, segs, n))
        continue;
      path_known = 1;
      if (!method_eq(r->method, method))
        continue;
      if (best == NULL || beats(r->pattern, best->pattern, n))
        best = r;
    }
  if (best == NULL) {
    snprintf(m->why, sizeof m->why, path_known ? "method %s not allowed on %s" : "no route %s",
             path_known ? method : m->path, m->path);
    return path_known ? 405 : 404;
  }
  m->route = best;
  for (int i = 0; i < n && m->n_params < TQ_REQ_MAX_PARAMS; i++)
    if (seg_is_param(best->pattern, i))
      m->params[m->n_params++] = segs[i];
  return 200;
}

/* Routes the request, checks the caller's role and runs the handler. */
void tq_route_dispatch(tq_req *rq, tq_resp *rs, const tq_route_match *m) {
  const tq_route *r = m->route;
  rq->route = r;
  if (r->role > TQ_ROLE_NONE) {
    if (!tq_auth_bearer(rq, rs)) {
      if (rs->status == 0)
        tq_resp_fail(rs, 401, "authentication required");
      return;
    }
    if (rq->who.role < r->role) {
      tq_resp_fail(rs, 403, "%s %s needs the role %s (yours: %s)", r->method, r->pattern,
                   tq_role_name(r->role), tq_role_name(rq->who.role));
      return;
    }
  }
  r->fn(rq, rs);
}

void tq_server_routes(void (*fn)(void *ud, const char *method, const char *pattern, tq_role role),
                      void *ud) {
  for (size_t t = 0; tq_route_tables[t]; t++)
    for (const tq_route *r = tq_route_tables[t]; r->method; r++)
      fn(ud, r->method, r->pattern, r->role);
}

/* ---- request helpers -------------------------------------------------------------------- */

/* Where the body (valid JSON) has the escape \u0000 in a string: cJSON decodes it into a NUL
 * that ends the C string, so "adm\u0000x" would reach a handler as "adm". The escape counts
 * when an odd run of backslashes leads to its 'u' ("\\u0000" is a backslash, then text).
 * (size_t)-1 when there is none. */
static size_t json_nul_escape(const char *b, size_t n) {
  for (size_t i = 0; i + 5 < n; i++) {
    if (b[i] != '\\' || b[i + 1] != 'u' || memcmp(b + i + 2, "0000", 4) != 0)
      continue;
    size_t run = 0;
    while (run <= i && b[i - run] == '\\')
      run++;
    if (run % 2 == 1)
      return i;
  }
  return (size_t)-1;
}

cJSON *tq_req_json(const tq_req *rq, tq_resp *rs) {
  if (rq->body == NULL || rq->body_len == 0) {
    tq_resp_invalid(rs, "request", "the request body is empty; a JSON document is expected");
    return NULL;
  }
  const char *end = NULL;
  /* The body is NUL-terminated: cJSON's trailing-text check needs to see that NUL, so the
   * length given includes it (a NUL inside the body still ends the document there: refused). */
  cJSON *j = cJSON_ParseWithLengthOpts(rq->body, rq->body_len + 1, &end, 1);
  if (j != NULL && (size_t)(end - rq->body) != rq->body_len) { /* stopped at a NUL inside */
    cJSON_Delete(j);
    j = NULL;
  }
  if (j == NULL) {
    size_t at = end && end >= rq->body ? (size_t)(end - rq->body) : 0;
    tq_resp_invalid(rs, "request", "malformed JSON at byte %zu of the body", at);
    return NULL;
  }
  size_t nul_at = json_nul_escape(rq->body, rq->body_len);
  if (nul_at != (size_t)-1) {
    cJSON_Delete(j);
    tq_resp_invalid(rs, "request",
                    "a string holds a NUL character (\\u0000) at byte %zu of the body: C strings "
                    "would cut it there",
                    nul_at);
    return NULL;
  }
  return j;
}

/* The name of the n-th {param} of the route's pattern into out. */
static void param_name(const tq_req *rq, size_t idx, char *out, size_t n) {
  snprintf(out, n, "id");
  if (rq->route == NULL)
    return;
  const char *p = rq->route->pattern;
  size_t k = 0;
  while ((p = strchr(p, '{')) != NULL) {
    const char *e = strchr(p, '}');
    if (e == NULL)
      return;
    if (k++ == idx) {
      size_t len = (size_t)(e - p - 1);
      if (len >= n)
        len = n - 1;
      memcpy(out, p + 1, len);
      out[len] = '\0';
      return;
    }
    p = e;
  }
}

/* Parses a positive int64 in full; 0 when it is not one. */
static int64_t positive_id(const char *s) {
  if (s == NULL || !isdigit((unsigned char)s[0]))
    return 0;
  errno = 0;
  char *end = NULL;
  long long v = strtoll(s, &end, 10);
  if (errno || *end != '\0' || v <= 0)
    return 0;
  return (int64_t)v;
}

int64_t tq_req_id(const tq_req *rq, size_t param, tq_resp *rs) {
  char name[64];
  param_name(rq, param, name, sizeof name);
  const char *s = param < rq->n_params ? rq->params[param] : NULL;
  int64_t v = positive_id(s);
  if (v == 0) {
    char *esc = tq_str_escape_dup(s ? s : "", TQ_ESC_QUOTE);
    tq_resp_invalid(rs, name, "'%.64s' is not a positive integer id", esc ? esc : "");
    free(esc);
  }
  return v;
}

#define TQ_REQ_OFFSET_MAX 9007199254740991LL /* 2^53 - 1 */

/* A non-negative integer argument; values past max clamp; returns 0 after a 400. */
static int arg_count(const tq_req *rq, const char *name, int64_t def, int64_t max, int64_t *out,
                     tq_resp *rs) {
  const char *s = tq_req_arg(rq, name);
  *out = def;
  if (s == NULL || *s == '\0')
    return 1;
  for (const char *p = s; *p; p++)
    if (!isdigit((unsigned char)*p)) {
      char *esc = tq_str_escape_dup(s, TQ_ESC_QUOTE);
      tq_resp_invalid(rs, name, "'%.64s' is not a non-negative integer", esc ? esc : "");
      free(esc);
      return 0;
    }
  errno = 0;
  unsigned long long v = strtoull(s, NULL, 10);
  *out = errno || v > (unsigned long long)max ? max : (int64_t)v;
  return 1;
}

int tq_req_page(const tq_req *rq, int64_t def, int64_t max, int64_t *limit, int64_t *offset,
                tq_resp *rs) {
  if (!arg_count(rq, "limit", def, max, limit, rs))
    return 0;
  if (*limit < 1)
    *limit = 1;
  if (!arg_count(rq, "offset", 0, INT64_MAX, offset, rs))
    return 0;
  if (*offset > TQ_REQ_OFFSET_MAX) { /* past any library, and past JSON's exact integers */
    tq_resp_invalid(rs, "offset", "%lld is past the largest offset, %lld", (long long)*offset,
                    (long long)TQ_REQ_OFFSET_MAX);
    return 0;
  }
  return 1;
}
