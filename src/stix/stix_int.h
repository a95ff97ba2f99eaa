/* stix_int.h: what the files of src/stix share and nobody else sees. */
#ifndef TQ_STIX_INT_H
#define TQ_STIX_INT_H

#include <stddef.h>

#include "tqhost/stix.h"

/* Scans s[0..len) as a timestamp; strict is the pattern literal's form. NULL on success,
 * else a static reason. */
const char *stix_time_scan(const char *s, size_t len, int strict, tq_stix_time *out);

/* STIX 2.1 section 3.1: a type is 3..250 of [a-z0-9-] and holds no "--". NULL when type[0..n)
 * is one, else a static reason ("must be 3 to 250 characters"). */
const char *stix_type_problem(const char *type, size_t n);

/* A bump allocator: a pattern and all its nodes are freed at once. */
typedef struct tq_stix_arena tq_stix_arena;
tq_stix_arena *stix_arena_new(void);
void stix_arena_free(tq_stix_arena *a);
/* Zeroed, aligned memory; NULL when memory runs out. */
void *stix_arena_alloc(tq_stix_arena *a, size_t n);
char *stix_arena_strndup(tq_stix_arena *a, const char *s, size_t n);

/* Fills p->observables and p->simple from p->root (observable.c). */
tq_code stix_pattern_extract(tq_stix_pattern *p, tq_err *err);

#endif
