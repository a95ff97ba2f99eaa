/* arena.c: the bump allocator behind a parsed pattern: a list of blocks freed at once, so that
 * a pattern of any size costs a few mallocs and one free walk. */
#include <stdlib.h>
#include <string.h>

#include "stix_int.h"

typedef struct block {
  struct block *prev;
  size_t used, size;
  _Alignas(16) unsigned char data[];
} block;

struct tq_stix_arena {
  block *top;
};

tq_stix_arena *stix_arena_new(void) { return calloc(1, sizeof(tq_stix_arena)); }

void stix_arena_free(tq_stix_arena *a) {
  if (a == NULL)
    return;
  for (block *b = a->top, *prev; b; b = prev) {
    prev = b->prev;
    free(b);
  }
  free(a);
}

void *stix_arena_alloc(tq_stix_arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (a->top == NULL || a->top->size - a->top->used < n) {
    /* Blocks double up to 64 KiB so that a small pattern costs one malloc and a huge one
     * few. */
    size_t size = a->top ? a->top->size * 2 : 2048;
    if (size > 65536)
      size = 65536;
    if (size < n)
      size = n;
    block *b = malloc(sizeof *b + size);
    if (b == NULL)
      return NULL;
    b->prev = a->top;
    b->used = 0;
    b->size = size;
    a->top = b;
  }
  void *p = a->top->data + a->top->used;
  a->top->used += n;
  memset(p, 0, n);
  return p;
}

char *stix_arena_strndup(tq_stix_arena *a, const char *s, size_t n) {
  char *p = stix_arena_alloc(a, n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}
