/* redact.c: masking a script's secrets in the text it leaves behind (log lines, errors,
 * tracebacks, change-set values, show output). A server that echoes the API key, or a script
 * that upper-cases, reverses or cuts it, must not get it out in clear, so the rule is wider
 * than "the secret as it is":
 *
 *   every run of REDACT_WINDOW (8) or more consecutive bytes of a secret, or of the secret
 *   reversed, compared without regard to ASCII case, is replaced by "********"; a secret
 *   shorter than the window (but at least TQ_LUA_REDACT_MIN bytes) is matched whole, also
 *   reversed and in any case. Hits that overlap or touch give one mask.
 *
 * Each secret's windows are packed into 64-bit words (8 bytes fit exactly), sorted once when
 * the script loads; a text is scanned with a rolling word, so the cost is linear in the text
 * whatever the secret's length. */
#include <stdlib.h>
#include <string.h>

#include "lua_int.h"

#define REDACT_WINDOW 8

typedef struct redact_secret {
  size_t width;    /* bytes per window: min(secret length, REDACT_WINDOW) */
  uint64_t *grams; /* sorted, unique: every window of the secret and of its reverse */
  size_t n_grams;
} redact_secret;

struct redact_set {
  redact_secret *items;
  size_t n;
};

static unsigned char fold(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static uint64_t width_mask(size_t width) {
  return width >= 8 ? UINT64_MAX : (((uint64_t)1 << (8 * width)) - 1);
}

static int gram_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The windows of v (len bytes, read backwards when reverse) into g; returns how many. */
static size_t grams_of(const char *v, size_t len, size_t width, int reverse, uint64_t *g) {
  uint64_t word = 0, mask = width_mask(width);
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)v[reverse ? len - 1 - i : i];
    word = ((word << 8) | fold(c)) & mask;
    if (i + 1 >= width)
      g[n++] = word;
  }
  return n;
}

static tq_code secret_prepare(const char *v, redact_secret *out) {
  size_t len = strlen(v);
  out->width = len < REDACT_WINDOW ? len : REDACT_WINDOW;
  size_t per = len - out->width + 1;
  out->grams = malloc(2 * per * sizeof *out->grams);
  if (out->grams == NULL)
    return TQ_ENOMEM;
  size_t n = grams_of(v, len, out->width, 0, out->grams);
  n += grams_of(v, len, out->width, 1, out->grams + n);
  qsort(out->grams, n, sizeof *out->grams, gram_cmp);
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (u == 0 || out->grams[u - 1] != out->grams[i])
      out->grams[u++] = out->grams[i];
  out->n_grams = u;
  return TQ_OK;
}

tq_code redact_set_new(const tq_lua_kv *secrets, size_t n, redact_set **out) {
  redact_set *r = calloc(1, sizeof *r);
  if (r == NULL || (r->items = calloc(n ? n : 1, sizeof *r->items)) == NULL) {
    free(r);
    return TQ_ENOMEM;
  }
  *out = r;
  for (size_t i = 0; i < n; i++) {
    /* A shorter secret would match everyday text (a key "k" inside "attack_pattern"). */
    if (secrets[i].value == NULL || strlen(secrets[i].value) < TQ_LUA_REDACT_MIN)
      continue;
    if (secret_prepare(secrets[i].value, &r->items[r->n]) != TQ_OK)
      return TQ_ENOMEM; /* the caller frees *out */
    r->n++;
  }
  return TQ_OK;
}

void redact_set_free(redact_set *r) {
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n; i++)
    free(r->items[i].grams);
  free(r->items);
  free(r);
}

/* Scans s for the windows of one secret. With hit NULL, returns 1 at the first match; else
 * sets hit[k] for every byte k of every match and returns whether there was one. */
static int scan(const redact_secret *sec, const char *s, size_t len, unsigned char *hit) {
  uint64_t word = 0, mask = width_mask(sec->width);
  int any = 0;
  for (size_t i = 0; i < len; i++) {
    word = ((word << 8) | fold((unsigned char)s[i])) & mask;
    if (i + 1 < sec->width ||
        bsearch(&word, sec->grams, sec->n_grams, sizeof word, gram_cmp) == NULL)
      continue;
    if (hit == NULL)
      return 1;
    memset(hit + i + 1 - sec->width, 1, sec->width);
    any = 1;
  }
  return any;
}

int redact_needed(const tq_lua_script *script, const char *s) {
  const redact_set *r = script ? script->redact : NULL;
  if (r == NULL || s == NULL)
    return 0;
  size_t len = strlen(s);
  for (size_t i = 0; i < r->n; i++)
    if (scan(&r->items[i], s, len, NULL))
      return 1;
  return 0;
}

/* s (len bytes) with every hit of r replaced by mask, malloc'd; NULL on ENOMEM. */
static char *mask_with(const redact_set *r, const char *s, size_t len, const char *mask,
                       size_t *out_len) {
  unsigned char *hit = calloc(len ? len : 1, 1);
  if (hit == NULL)
    return NULL;
  for (size_t i = 0; i < r->n; i++)
    scan(&r->items[i], s, len, hit);
  tq_buf b;
  tq_buf_init(&b, 0);
  tq_code rc = tq_buf_add(&b, "", 0);
  for (size_t k = 0; k < len && rc == TQ_OK; k++) {
    if (!hit[k])
      rc = tq_buf_addc(&b, s[k]);
    else if (k == 0 || !hit[k - 1])
      rc = tq_buf_adds(&b, mask);
  }
  free(hit);
  if (rc != TQ_OK) {
    tq_buf_free(&b);
    return NULL;
  }
  if (out_len)
    *out_len = b.len;
  return tq_buf_take(&b);
}

char *redact_dup(const tq_lua_script *script, const char *s) {
  if (s == NULL)
    return NULL;
  if (!redact_needed(script, s))
    return tq_strdup(s);
  return mask_with(script->redact, s, strlen(s), SECRET_MASK, NULL);
}

char *tq_lua_mask(const tq_lua_kv *secrets, size_t n, const char *s, size_t len, const char *mask,
                  size_t *out_len) {
  redact_set *r = NULL;
  char *out = NULL;
  if (redact_set_new(secrets, n, &r) == TQ_OK)
    out = mask_with(r, s, len, mask, out_len);
  redact_set_free(r);
  return out;
}

tq_code redact_json(const tq_lua_script *script, cJSON *j) {
  for (cJSON *it = j; it; it = it->next) {
    if (it->string && !(it->type & cJSON_StringIsConst) && redact_needed(script, it->string)) {
      char *masked = redact_dup(script, it->string);
      char *key = masked ? cJSON_malloc(strlen(masked) + 1) : NULL;
      if (key == NULL) {
        free(masked);
        return TQ_ENOMEM;
      }
      strcpy(key, masked);
      free(masked);
      cJSON_free(it->string);
      it->string = key;
    }
    if (cJSON_IsString(it) && redact_needed(script, it->valuestring)) {
      char *masked = redact_dup(script, it->valuestring);
      char *set = masked ? cJSON_SetValuestring(it, masked) : NULL;
      free(masked);
      if (set == NULL)
        return TQ_ENOMEM;
    }
    if (it->child && redact_json(script, it->child) != TQ_OK)
      return TQ_ENOMEM;
  }
  return TQ_OK;
}
