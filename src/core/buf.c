/* buf.c: a growable byte buffer with a hard maximum (see core.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/core.h"

void tq_buf_init(tq_buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max ? max : SIZE_MAX;
}

void tq_buf_free(tq_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void tq_buf_reset(tq_buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

/* Ensures room for n more bytes plus the terminating NUL. */
static tq_code buf_reserve(tq_buf *b, size_t n) {
  if (n > b->max || b->len > b->max - n)
    return TQ_ELIMIT;
  size_t need = b->len + n + 1;
  if (need <= b->cap)
    return TQ_OK;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = realloc(b->data, cap);
  if (p == NULL)
    return TQ_ENOMEM;
  b->data = p;
  b->cap = cap;
  return TQ_OK;
}

tq_code tq_buf_add(tq_buf *b, const void *p, size_t n) {
  tq_code rc = buf_reserve(b, n);
  if (rc != TQ_OK)
    return rc;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return TQ_OK;
}

tq_code tq_buf_adds(tq_buf *b, const char *s) { return tq_buf_add(b, s, strlen(s)); }

tq_code tq_buf_addc(tq_buf *b, char c) { return tq_buf_add(b, &c, 1); }

tq_code tq_buf_vprintf(tq_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return TQ_EINVAL;
  tq_code rc = buf_reserve(b, (size_t)n);
  if (rc != TQ_OK)
    return rc;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return TQ_OK;
}

tq_code tq_buf_printf(tq_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tq_code rc = tq_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

char *tq_buf_take(tq_buf *b) {
  char *p = b->data;
  if (p == NULL)
    p = calloc(1, 1);
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}
