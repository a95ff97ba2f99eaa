/* fuzz_route.c: libFuzzer harness for the server's route matching (server/router.c) over the
 * real route tables. Input: "METHOD RAWPATH" (split at the first space; no space: the whole
 * input is the path, method GET); a NUL ends the path as it would end a C string. Checks:
 * the answer is 200/400/404/405 with a reason on every refusal; a 200 names a route of the
 * method (HEAD: GET) whose {params} are each non-empty, hold no '/' and live in the match;
 * matching the same input again gives the same answer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

static size_t count_params(const char *pattern) {
  size_t n = 0;
  for (const char *p = pattern; (p = strchr(p, '{')) != NULL; p++)
    n++;
  return n;
}

static int same(const tq_route_match *a, const tq_route_match *b) {
  if (a->route != b->route || a->n_params != b->n_params || strcmp(a->path, b->path) != 0 ||
      strcmp(a->why, b->why) != 0)
    return 0;
  for (size_t i = 0; i < a->n_params; i++)
    if (strcmp(a->params[i], b->params[i]) != 0)
      return 0;
  return 1;
}

static tq_route_match m1, m2;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *in = malloc(size + 1);
  if (in == NULL)
    return 0;
  memcpy(in, data, size);
  in[size] = '\0';
  const char *method = "GET", *path = in;
  char *sp = memchr(in, ' ', size);
  if (sp != NULL) {
    *sp = '\0';
    method = in;
    path = sp + 1;
  }
  int rc = tq_route_find(tq_route_tables, method, path, &m1);
  switch (rc) {
  case 200: break;
  case 400:
  case 404:
  case 405:
    if (m1.route != NULL || m1.why[0] == '\0' || m1.n_params != 0)
      abort();
    break;
  default: abort();
  }
  if (rc == 200) {
    const tq_route *r = m1.route;
    if (r == NULL || r->fn == NULL)
      abort();
    if (strcmp(r->method, method) != 0 &&
        !(strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0))
      abort();
    if (m1.n_params != count_params(r->pattern) || m1.n_params > TQ_REQ_MAX_PARAMS)
      abort();
    for (size_t i = 0; i < m1.n_params; i++) {
      const char *p = m1.params[i];
      if (p == NULL || p < m1.buf || p >= m1.buf + sizeof m1.buf)
        abort();
      if (p[0] == '\0' || strchr(p, '/') != NULL) {
        fprintf(stderr, "param %zu of %s is '%s'\n", i, r->pattern, p);
        abort();
      }
    }
  }
  if (tq_route_find(tq_route_tables, method, path, &m2) != rc || !same(&m1, &m2))
    abort();
  free(in);
  return 0;
}
