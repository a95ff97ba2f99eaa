/* keys.c: per-API-key accounting of rstsim: a fixed one-second window for --rate-limit and a
 * running count for the quota that /v1/auth/check reports. One mutex-guarded hash table; the
 * table is process state by nature (it outlives requests), so it lives here and nowhere else. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define KEY_BUCKETS 4096
#define KEY_MAX_ENTRIES 100000 /* beyond this, new keys share one overflow entry */

typedef struct key_entry {
  struct key_entry *next;
  char *key;
  int64_t window; /* monotonic second of the current window */
  unsigned in_window;
  uint64_t used;
} key_entry;

static struct {
  pthread_mutex_t lock;
  key_entry *buckets[KEY_BUCKETS];
  key_entry overflow;
  size_t count;
} g_keys = {.lock = PTHREAD_MUTEX_INITIALIZER};

tq_code sim_keys_init(tq_err *err) {
  (void)err;
  memset(g_keys.buckets, 0, sizeof g_keys.buckets);
  g_keys.count = 0;
  g_keys.overflow.key = "(overflow)";
  return TQ_OK;
}

void sim_keys_free(void) {
  for (size_t i = 0; i < KEY_BUCKETS; i++) {
    key_entry *e = g_keys.buckets[i];
    while (e) {
      key_entry *next = e->next;
      free(e->key);
      free(e);
      e = next;
    }
    g_keys.buckets[i] = NULL;
  }
  g_keys.count = 0;
}

/* Finds key's entry, creating it when create is set; call with the lock held. */
static key_entry *key_find(const char *key, int create) {
  size_t b = sim_hash(key, strlen(key), 0xcbf29ce484222325ULL) % KEY_BUCKETS;
  for (key_entry *e = g_keys.buckets[b]; e; e = e->next)
    if (strcmp(e->key, key) == 0)
      return e;
  if (!create)
    return NULL;
  if (g_keys.count >= KEY_MAX_ENTRIES)
    return &g_keys.overflow;
  key_entry *e = calloc(1, sizeof *e);
  char *copy = tq_strdup(key);
  if (e == NULL || copy == NULL) {
    free(e);
    free(copy);
    return &g_keys.overflow;
  }
  e->key = copy;
  e->next = g_keys.buckets[b];
  g_keys.buckets[b] = e;
  g_keys.count++;
  return e;
}

sim_admit sim_keys_admit(const sim_config *cfg, const char *key) {
  int64_t second = tq_mono_ms() / 1000;
  sim_admit verdict = SIM_ADMIT_OK;
  pthread_mutex_lock(&g_keys.lock);
  key_entry *e = key_find(key, 1);
  if (e->window != second) {
    e->window = second;
    e->in_window = 0;
  }
  if (cfg->rate_limit && e->in_window >= cfg->rate_limit)
    verdict = SIM_ADMIT_RATE;
  else if (cfg->quota && e->used >= cfg->quota)
    verdict = SIM_ADMIT_QUOTA;
  else {
    e->in_window++;
    e->used++;
  }
  pthread_mutex_unlock(&g_keys.lock);
  return verdict;
}

uint64_t sim_keys_used(const char *key) {
  pthread_mutex_lock(&g_keys.lock);
  key_entry *e = key_find(key, 0);
  uint64_t used = e ? e->used : 0;
  pthread_mutex_unlock(&g_keys.lock);
  return used;
}
