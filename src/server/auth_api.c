/* auth_api.c: the HTTP side of users and tokens: the bearer check every authenticated request
 * goes through (tq_auth_bearer), POST /api/token (password, client_credentials and
 * refresh_token grants, answered in OAuth's shape), the failed-login brake, and the routes of
 * users and the audit log. Password and secret checks (Argon2id, CPU only) run on the HTTP
 * thread against rq->rd; every write (tokens, users, audit rows) is a job for the engine. */
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth_int.h"
#include "server_int.h"
#include "tqhost/plugin.h"

/* ---- the bearer check ------------------------------------------------------------------------ */

static void unauthorized(tq_resp *rs, const char *error, const char *msg) {
  char hdr[160];
  if (error)
    snprintf(hdr, sizeof hdr, "Bearer realm=\"tqhost\", error=\"%s\"", error);
  else
    snprintf(hdr, sizeof hdr, "Bearer realm=\"tqhost\"");
  tq_resp_fail(rs, 401, "%s", msg);
  free(rs->www_authenticate);
  rs->www_authenticate = tq_strdup(hdr);
}

int tq_auth_bearer(tq_req *rq, tq_resp *rs) {
  memset(&rq->who, 0, sizeof rq->who);
  const char *h = tq_req_header(rq, "Authorization");
  if (h == NULL) {
    unauthorized(rs, NULL, "authentication required: Authorization: Bearer <token>");
    return 0;
  }
  while (*h == ' ')
    h++;
  if (strncasecmp(h, "Bearer", 6) != 0 || h[6] != ' ') {
    unauthorized(rs, "invalid_request", "Authorization: not a Bearer token");
    return 0;
  }
  h += 7;
  while (*h == ' ')
    h++;
  char token[TQ_AUTH_TOKEN_LEN + 1];
  size_t n = strcspn(h, " \t");
  if (n != TQ_AUTH_TOKEN_LEN || h[n + strspn(h + n, " \t")] != '\0') {
    unauthorized(rs, "invalid_token", "the access token is invalid");
    return 0;
  }
  memcpy(token, h, n);
  token[n] = '\0';
  tq_user u;
  tq_err err;
  tq_err_clear(&err);
  tq_code rc = tq_auth_lookup(rq->rd, token, &u, &err);
  if (rc == TQ_ETIMEOUT)
    unauthorized(rs, "invalid_token", "the access token expired");
  else if (rc == TQ_ENOTFOUND)
    unauthorized(rs, "invalid_token", "the access token is invalid");
  else if (rc != TQ_OK)
    tq_resp_err(rs, NULL, &err);
  if (rc != TQ_OK)
    return 0;
  rq->who.user_id = u.id;
  tq_strlcpy(rq->who.name, u.name, sizeof rq->who.name);
  rq->who.role = u.role;
  rq->who.is_client = u.is_client;
  return 1;
}

/* ---- settings
 * ------------------------------------------------------------------------------------ */

static pthread_once_t SETTINGS_ONCE = PTHREAD_ONCE_INIT;
static int64_t ACCESS_TTL_S = TQ_AUTH_ACCESS_TTL_S;
static int LOCK_BASE_S = 30;

/* $TQHOST_TOKEN_TTL (seconds), else the host configuration's server.token_ttl, else 1 h;
 * $TQHOST_LOGIN_DELAY (seconds): the first lockout's length (tests). */
static void settings_load(void) {
  long long v;
  tq_err err;
  const char *env = getenv("TQHOST_TOKEN_TTL");
  if (env && *env) {
    if (tq_parse_int(env, 1, 30LL * 86400, &v, "TQHOST_TOKEN_TTL", &err) == TQ_OK)
      ACCESS_TTL_S = v;
    else
      tq_log(TQ_LOG_WARN, "server", "%s; the token lifetime stays %llds", err.msg,
             (long long)ACCESS_TTL_S);
  } else {
    tq_host_config hc;
    if (tq_host_config_find(&hc, &err) == TQ_OK && hc.token_ttl_s > 0)
      ACCESS_TTL_S = hc.token_ttl_s;
    tq_host_config_free(&hc);
  }
  env = getenv("TQHOST_LOGIN_DELAY");
  if (env && *env && tq_parse_int(env, 1, 3600, &v, "TQHOST_LOGIN_DELAY", &err) == TQ_OK)
    LOCK_BASE_S = (int)v;
}

/* tqhost_logins_total{grant, outcome}: ok, failed (a wrong name, password or secret),
 * locked (refused by the brake before any check). No name in the labels. */
static pthread_once_t METRIC_ONCE = PTHREAD_ONCE_INIT;
static void metric_help(void) {
  tq_metric_help("tqhost_logins_total", "counter",
                 "token requests by grant and outcome (ok, failed, locked)");
}
static void count_login(const char *grant, const char *outcome) {
  char labels[96];
  pthread_once(&METRIC_ONCE, metric_help);
  snprintf(labels, sizeof labels, "grant=\"%s\",outcome=\"%s\"", grant, outcome);
  tq_metric_add("tqhost_logins_total", labels, 1);
}

static int64_t access_ttl(void) {
  pthread_once(&SETTINGS_ONCE, settings_load);
  return ACCESS_TTL_S;
}

/* ---- the failed-login brake
 * ------------------------------------------------------------------------ Counters per
 * user name (or client id) and per client address: MAX_FAILS failures within WINDOW lock the key
 * for a delay that doubles at each lock (LOCK_BASE_S, up to an hour) and falls back once a window
 * passes without failure. A locked key is refused with 429 before any password is checked. A
 * successful login clears its user's counter. Checks in flight count too: once a key has failed,
 * its failures plus its checks running at once may not pass MAX_FAILS, so that guesses sent in
 * parallel (one per HTTP thread) do not all pass before the first failure counts.
 *
 * The check reads memory only (no SQL before the password hash). The library keeps a copy
 * (table login_brake of store.c) so that a restart lifts no lock: the engine job that follows
 * every password check (the audit row of J_LOGIN, J_LOGIN_FAILED) writes the keys' state as
 * memory holds it then (brake_persist), and tq_auth_brake_load puts the rows back into memory
 * at server start. Times are monotonic in memory, wall clock in the library. */
#define BRAKE_SLOTS 1024
#define BRAKE_KEY 160
#define BRAKE_WINDOW_MS (15 * 60 * 1000)
#define BRAKE_MAX_DELAY_S 3600
#define BRAKE_USER_FAILS 5
#define BRAKE_ADDR_FAILS 20

typedef struct brake_slot {
  char key[BRAKE_KEY];
  int fails;
  int level;
  int pending; /* checks admitted and not finished */
  int64_t first_ms, last_ms, until_ms;
} brake_slot;

static brake_slot BRAKE[BRAKE_SLOTS];
static pthread_mutex_t BRAKE_MU = PTHREAD_MUTEX_INITIALIZER;

static void brake_key(char out[BRAKE_KEY], char kind, const char *s) {
  snprintf(out, BRAKE_KEY, "%c:%s", kind, s ? s : "");
}

/* The slot of key (made when make, evicting the least recently failed unlocked one; never one
 * with checks in flight). Under BRAKE_MU. */
static brake_slot *brake_find(const char *key, int make, int64_t now) {
  brake_slot *victim = NULL;
  for (size_t i = 0; i < BRAKE_SLOTS; i++) {
    brake_slot *b = &BRAKE[i];
    if (b->key[0] && strcmp(b->key, key) == 0)
      return b;
    if (!make || b->pending > 0)
      continue;
    int b_free = b->key[0] == '\0' || (b->until_ms <= now && now - b->last_ms > BRAKE_WINDOW_MS);
    if (victim == NULL || (b_free && victim->key[0]) ||
        (!b_free && victim->key[0] && b->until_ms <= now &&
         (victim->until_ms > now || b->last_ms < victim->last_ms)))
      victim = b;
  }
  if (victim) {
    memset(victim, 0, sizeof *victim);
    tq_strlcpy(victim->key, key, sizeof victim->key);
  }
  return victim;
}

/* Seconds key must wait (0: it may try now, given one more check in flight). Under BRAKE_MU. */
static int brake_wait_locked(const char *key, int max_fails, int64_t now) {
  brake_slot *b = brake_find(key, 0, now);
  if (b == NULL)
    return 0;
  if (b->until_ms > now)
    return (int)((b->until_ms - now + 999) / 1000);
  int fails = now - b->first_ms > BRAKE_WINDOW_MS ? 0 : b->fails;
  if (fails > 0 && fails + b->pending >= max_fails)
    return 1; /* the checks in flight may lock it: ask again in a second */
  return 0;
}

/* Admits one check for the user key k1 and the address key k2: 0 when admitted (each key's
 * pending count raised: brake_fail, brake_success or brake_leave lowers it), else the seconds
 * to wait. */
static int brake_enter(const char *k1, const char *k2) {
  int64_t now = tq_mono_ms();
  pthread_mutex_lock(&BRAKE_MU);
  int w1 = brake_wait_locked(k1, BRAKE_USER_FAILS, now);
  int w2 = brake_wait_locked(k2, BRAKE_ADDR_FAILS, now);
  int wait = w1 > w2 ? w1 : w2;
  if (wait == 0) {
    brake_slot *b = brake_find(k1, 1, now);
    if (b)
      b->pending++;
    if ((b = brake_find(k2, 1, now)) != NULL)
      b->pending++;
  }
  pthread_mutex_unlock(&BRAKE_MU);
  return wait;
}

static void leave_locked(brake_slot *b) {
  if (b && b->pending > 0)
    b->pending--;
}

/* A check admitted by brake_enter ended without an answer on the password. */
static void brake_leave(const char *key) {
  pthread_mutex_lock(&BRAKE_MU);
  leave_locked(brake_find(key, 0, tq_mono_ms()));
  pthread_mutex_unlock(&BRAKE_MU);
}

/* Counts a failure of key (ending its admitted check); the seconds of the lock it started, 0
 * when none. */
static int brake_fail(const char *key, int max_fails) {
  int64_t now = tq_mono_ms();
  int locked = 0;
  pthread_once(&SETTINGS_ONCE, settings_load);
  pthread_mutex_lock(&BRAKE_MU);
  brake_slot *b = brake_find(key, 1, now);
  if (b) {
    leave_locked(b);
    if (b->last_ms && now - b->last_ms > BRAKE_WINDOW_MS)
      b->level = 0;
    if (b->fails == 0 || now - b->first_ms > BRAKE_WINDOW_MS) {
      b->fails = 0;
      b->first_ms = now;
    }
    b->fails++;
    b->last_ms = now;
    if (b->fails >= max_fails) {
      int64_t delay = (int64_t)LOCK_BASE_S << (b->level < 12 ? b->level : 12);
      locked = (int)(delay < BRAKE_MAX_DELAY_S ? delay : BRAKE_MAX_DELAY_S);
      b->until_ms = now + (int64_t)locked * 1000;
      b->level++;
      b->fails = 0;
    }
  }
  pthread_mutex_unlock(&BRAKE_MU);
  return locked;
}

/* A right password for key: its check ends and its failures are forgotten. */
static void brake_success(const char *key) {
  pthread_mutex_lock(&BRAKE_MU);
  brake_slot *b = brake_find(key, 0, tq_mono_ms());
  if (b) {
    int pending = b->pending > 0 ? b->pending - 1 : 0;
    char k[BRAKE_KEY];
    tq_strlcpy(k, b->key, sizeof k);
    memset(b, 0, sizeof *b);
    if (pending > 0) { /* other checks still run: keep the slot for them */
      tq_strlcpy(b->key, k, sizeof b->key);
      b->pending = pending;
    }
  }
  pthread_mutex_unlock(&BRAKE_MU);
}

/* ---- the brake in the library ------------------------------------------------------------- */

static int64_t wall_ms(void) { return tq_time_now_us() / 1000; }

/* A monotonic time as wall clock and back (0 stays 0: "never"). */
static int64_t to_wall(int64_t mono, int64_t now_mono, int64_t now_wall) {
  return mono ? now_wall - (now_mono - mono) : 0;
}
static int64_t to_mono(int64_t wall, int64_t now_mono, int64_t now_wall) {
  return wall ? now_mono - (now_wall - wall) : 0;
}

static tq_code brake_sql(tq_lib *lib, const char *sql, const char *key, int64_t a, int64_t b,
                         int64_t c, int64_t d, int64_t e, tq_err *err) {
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) {
    int n = sqlite3_bind_parameter_count(st), i = 1;
    if (key)
      sqlite3_bind_text(st, i++, key, -1, SQLITE_STATIC);
    const int64_t v[5] = {a, b, c, d, e};
    for (int k = 0; i <= n && k < 5; k++)
      sqlite3_bind_int64(st, i++, v[k]);
    rc = sqlite3_step(st);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    return tq_err_set(err, TQ_EDB, "the login brake in the library: %s", sqlite3_errmsg(db));
  return TQ_OK;
}

/* Rows that no longer matter (lock over, no failure within the window) are removed, and the
 * oldest beyond BRAKE_SLOTS. */
static tq_code brake_trim(tq_lib *lib, int64_t now_wall, tq_err *err) {
  tq_code rc = brake_sql(lib, "DELETE FROM login_brake WHERE until_ms <= ?1 AND last_ms < ?2", NULL,
                         now_wall, now_wall - BRAKE_WINDOW_MS, 0, 0, 0, err);
  if (rc == TQ_OK)
    rc = brake_sql(lib,
                   "DELETE FROM login_brake WHERE (SELECT count(*) FROM login_brake) > ?2"
                   " AND key IN (SELECT key FROM login_brake"
                   " ORDER BY until_ms > ?1 DESC, last_ms DESC LIMIT -1 OFFSET ?2)",
                   NULL, now_wall, BRAKE_SLOTS, 0, 0, 0, err);
  return rc;
}

/* On the engine thread, after a password check of key: the library's row made what memory
 * holds now (removed when memory no longer has the key, or nothing of it matters). */
static tq_code brake_persist(tq_lib *lib, const char *key, tq_err *err) {
  int64_t now = tq_mono_ms(), now_wall = wall_ms();
  brake_slot b;
  memset(&b, 0, sizeof b);
  int have = 0;
  pthread_mutex_lock(&BRAKE_MU);
  brake_slot *s = brake_find(key, 0, now);
  if (s) {
    b = *s;
    have = b.until_ms > now || (b.last_ms && now - b.last_ms <= BRAKE_WINDOW_MS);
  }
  pthread_mutex_unlock(&BRAKE_MU);
  tq_code rc;
  if (!have)
    rc = brake_sql(lib, "DELETE FROM login_brake WHERE key=?1", key, 0, 0, 0, 0, 0, err);
  else
    rc = brake_sql(lib,
                   "INSERT INTO login_brake(key,fails,level,first_ms,last_ms,until_ms)"
                   " VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(key) DO UPDATE SET"
                   " fails=excluded.fails, level=excluded.level, first_ms=excluded.first_ms,"
                   " last_ms=excluded.last_ms, until_ms=excluded.until_ms",
                   key, b.fails, b.level, to_wall(b.first_ms, now, now_wall),
                   to_wall(b.last_ms, now, now_wall), to_wall(b.until_ms, now, now_wall), err);
  if (rc == TQ_OK && have)
    rc = brake_trim(lib, now_wall, err);
  return rc;
}

tq_code tq_auth_brake_load(tq_lib *lib, tq_err *err) {
  tq_code rc = tq_auth_migrate(lib, err);
  int64_t now = tq_mono_ms(), now_wall = wall_ms();
  if (rc == TQ_OK)
    rc = brake_trim(lib, now_wall, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db,
                         "SELECT key,fails,level,first_ms,last_ms,until_ms FROM login_brake"
                         " ORDER BY until_ms > ?1 DESC, last_ms DESC LIMIT ?2",
                         -1, &st, NULL) != SQLITE_OK)
    return tq_err_set(err, TQ_EDB, "the login brake in the library: %s", sqlite3_errmsg(db));
  sqlite3_bind_int64(st, 1, now_wall);
  sqlite3_bind_int(st, 2, BRAKE_SLOTS);
  pthread_mutex_lock(&BRAKE_MU);
  memset(BRAKE, 0, sizeof BRAKE);
  size_t n = 0;
  int step;
  while (n < BRAKE_SLOTS && (step = sqlite3_step(st)) == SQLITE_ROW) {
    const char *key = (const char *)sqlite3_column_text(st, 0);
    if (key == NULL || *key == '\0' || strlen(key) >= BRAKE_KEY)
      continue;
    brake_slot *b = &BRAKE[n++];
    tq_strlcpy(b->key, key, sizeof b->key);
    b->fails = sqlite3_column_int(st, 1);
    b->level = sqlite3_column_int(st, 2);
    b->first_ms = to_mono(sqlite3_column_int64(st, 3), now, now_wall);
    b->last_ms = to_mono(sqlite3_column_int64(st, 4), now, now_wall);
    b->until_ms = to_mono(sqlite3_column_int64(st, 5), now, now_wall);
    /* A lock never outlasts the longest delay, whatever the wall clock did meanwhile. */
    if (b->until_ms > now + (int64_t)BRAKE_MAX_DELAY_S * 1000)
      b->until_ms = now + (int64_t)BRAKE_MAX_DELAY_S * 1000;
  }
  pthread_mutex_unlock(&BRAKE_MU);
  sqlite3_finalize(st);
  if (n)
    tq_log(TQ_LOG_INFO, "server", "login brake: %zu counter(s) kept from before the start", n);
  return TQ_OK;
}

/* ---- answers in OAuth's shape
 * ---------------------------------------------------------------------- */

/* ThreatQ's error shape plus OAuth's "error" code (RFC 6749 5.2). */
static void oauth_fail(tq_resp *rs, int status, const char *code, const char *msg) {
  tq_resp_fail(rs, status, "%s", msg);
  if (rs->json)
    cJSON_AddStringToObject(rs->json, "error", code);
}

static void oauth_invalid(tq_resp *rs, const char *field, const char *msg) {
  tq_resp_invalid(rs, field, "%s", msg);
  if (rs->json)
    cJSON_AddStringToObject(rs->json, "error", "invalid_request");
}

static void oauth_tokens(tq_resp *rs, const tq_auth_pair *p) {
  cJSON *j = cJSON_CreateObject();
  if (j == NULL || !cJSON_AddStringToObject(j, "access_token", p->access) ||
      !cJSON_AddStringToObject(j, "token_type", "Bearer") ||
      !cJSON_AddNumberToObject(j, "expires_in", (double)p->expires_in) ||
      !cJSON_AddStringToObject(j, "refresh_token", p->refresh)) {
    cJSON_Delete(j);
    tq_resp_fail(rs, 500, "out of memory");
    return;
  }
  tq_resp_free(rs);
  rs->status = 200;
  rs->json = j;
}

static cJSON *user_json(const tq_user *u) {
  char when[20];
  tq_time_format(u->created_at, when);
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "id", (double)u->id);
  cJSON_AddStringToObject(j, "name", u->name);
  cJSON_AddStringToObject(j, "role", tq_role_name(u->role));
  cJSON_AddStringToObject(j, "kind", u->is_client ? "client" : "person");
  cJSON_AddBoolToObject(j, "disabled", u->disabled);
  cJSON_AddStringToObject(j, "created_at", when);
  return j;
}

/* ---- engine jobs
 * ---------------------------------------------------------------------------------- Every write of
 * this file: issuing tokens, audit rows, user changes. One job struct for all; its secrets are
 * wiped when it is freed. */
typedef enum job_kind {
  J_LOGIN,
  J_LOGIN_FAILED,
  J_REFRESH,
  J_USER_ADD,
  J_USER_PUT,
  J_USER_DELETE,
  J_CLIENT_ADD,
  J_REVOKE
} job_kind;

typedef struct auth_job {
  job_kind kind;
  int64_t user_id;
  char name[TQ_AUTH_MAX_PASSWORD + 1]; /* a user's name, or a failed login's as given */
  char who[128];                       /* the caller */
  char addr[64];
  char detail[128];
  int client;                          /* the login is a client's (client_credentials) */
  int locked_s;                        /* J_LOGIN_FAILED: the lock this failure started */
  tq_role role;                        /* J_USER_ADD, J_USER_PUT (TQ_ROLE_NONE: unchanged) */
  char hash[TQ_AUTH_HASH_MAX];         /* J_USER_ADD, J_USER_PUT ("": unchanged) */
  char refresh[TQ_AUTH_TOKEN_LEN + 1]; /* J_REFRESH; J_REVOKE: the access token */
  int64_t ttl;
  int disabled;                          /* J_USER_PUT: -1 unchanged, 0 enable, 1 disable */
  char ukey[BRAKE_KEY], akey[BRAKE_KEY]; /* J_LOGIN, J_LOGIN_FAILED: the brake's keys */
} auth_job;

static void job_free(void *p) {
  if (p) {
    sodium_memzero(p, sizeof(auth_job));
    free(p);
  }
}

static auth_job *job_new(const tq_req *rq, job_kind kind, tq_resp *rs) {
  auth_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    tq_resp_fail(rs, 500, "out of memory");
    return NULL;
  }
  j->kind = kind;
  tq_strlcpy(j->who, rq->who.name[0] ? rq->who.name : "-", sizeof j->who);
  tq_strlcpy(j->addr, rq->remote ? rq->remote : "", sizeof j->addr);
  j->ttl = access_ttl();
  return j;
}

static void job_fail(tq_resp *rs, tq_lib *lib, tq_err *err) {
  tq_lib_rollback(lib);
  tq_resp_err(rs, NULL, err);
}

static void run_login(tq_lib *lib, auth_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  tq_auth_pair p;
  if (tq_lib_begin(lib, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  if (tq_auth_issue(lib, j->user_id, j->ttl, TQ_AUTH_REFRESH_TTL_S, &p, &err) != TQ_OK ||
      tq_auth_audit(lib, j->name, "login", j->name, j->detail, j->addr, &err) != TQ_OK ||
      tq_lib_commit(lib, &err) != TQ_OK)
    return job_fail(rs, lib, &err);
  oauth_tokens(rs, &p);
  sodium_memzero(&p, sizeof p);
}

static void run_login_failed(tq_lib *lib, auth_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  char detail[192];
  if (j->locked_s > 0)
    snprintf(detail, sizeof detail, "%s; locked for %d s", j->detail, j->locked_s);
  else
    snprintf(detail, sizeof detail, "%s", j->detail);
  if (tq_auth_audit(lib, "-", "login_failed", j->name, detail, j->addr, &err) != TQ_OK)
    tq_log(TQ_LOG_ERROR, "server", "audit of a failed login: %s", err.msg);
  if (j->client) {
    oauth_fail(rs, 401, "invalid_client", "wrong client credentials");
    rs->www_authenticate = tq_strdup("Basic realm=\"tqhost\"");
  } else
    oauth_fail(rs, 401, "invalid_grant", "wrong user name or password");
}

static void run_refresh(tq_lib *lib, auth_job *j, tq_resp *rs) {
  tq_err err, aerr;
  tq_err_clear(&err);
  tq_auth_pair p;
  tq_user u;
  int reused = 0;
  tq_code rc =
      tq_auth_refresh(lib, j->refresh, j->ttl, TQ_AUTH_REFRESH_TTL_S, &u, &p, &reused, &err);
  count_login("refresh_token", rc == TQ_OK ? "ok" : "failed");
  if (rc == TQ_OK) {
    if (tq_auth_audit(lib, u.name, "token.refresh", u.name, NULL, j->addr, &aerr) != TQ_OK)
      tq_log(TQ_LOG_ERROR, "server", "audit of a token refresh: %s", aerr.msg);
    oauth_tokens(rs, &p);
    sodium_memzero(&p, sizeof p);
  } else if (rc == TQ_EDENIED || rc == TQ_ENOTFOUND || rc == TQ_ETIMEOUT) {
    if (reused && tq_auth_audit(lib, u.name[0] ? u.name : "-", "token.reuse", u.name,
                                "a rotated refresh token was used again: its tokens are revoked",
                                j->addr, &aerr) != TQ_OK)
      tq_log(TQ_LOG_ERROR, "server", "audit of a refresh token reuse: %s", aerr.msg);
    oauth_fail(rs, 401, "invalid_grant",
               rc == TQ_ETIMEOUT ? "the refresh token expired"
               : reused          ? "the refresh token was used already; sign in again"
                                 : "the refresh token is invalid");
  } else
    tq_resp_err(rs, NULL, &err);
}

/* Refuses a change that would leave no admin: u is the target, new_role its role after. */
static int last_admin(tq_lib *lib, const tq_user *u, tq_role new_role, tq_resp *rs) {
  int64_t n = 0;
  tq_err err;
  if (u->role != TQ_ROLE_ADMIN || new_role == TQ_ROLE_ADMIN)
    return 0;
  if (tq_auth_admin_count(lib, &n, &err) != TQ_OK) {
    tq_resp_err(rs, NULL, &err);
    return 1;
  }
  if (n <= 1) {
    tq_resp_fail(rs, 409, "user %lld is the last admin", (long long)u->id);
    return 1;
  }
  return 0;
}

static void run_user_add(tq_lib *lib, auth_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  tq_user u;
  if (tq_lib_begin(lib, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  if (tq_auth_user_add_hashed(lib, j->name, j->role, j->hash, &err) != TQ_OK ||
      tq_auth_audit(lib, j->who, "user.add", j->name, tq_role_name(j->role), j->addr, &err) !=
          TQ_OK ||
      tq_auth_user_get(lib, 0, j->name, &u, &err) != TQ_OK || tq_lib_commit(lib, &err) != TQ_OK)
    return job_fail(rs, lib, &err);
  tq_resp_data(rs, 201, user_json(&u));
}

static void run_user_put(tq_lib *lib, auth_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  tq_user u;
  if (tq_auth_user_get(lib, j->user_id, NULL, &u, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  if (j->role != TQ_ROLE_NONE && last_admin(lib, &u, j->role, rs))
    return;
  if (j->disabled == 1 && !u.disabled && last_admin(lib, &u, TQ_ROLE_NONE, rs))
    return;
  if (tq_lib_begin(lib, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  char detail[64];
  snprintf(detail, sizeof detail, "%s -> %s", tq_role_name(u.role), tq_role_name(j->role));
  if (j->role != TQ_ROLE_NONE &&
      (tq_auth_user_role(lib, u.name, j->role, &err) != TQ_OK ||
       tq_auth_audit(lib, j->who, "user.role", u.name, detail, j->addr, &err) != TQ_OK))
    return job_fail(rs, lib, &err);
  if (j->hash[0] &&
      (tq_auth_user_passwd_hashed(lib, u.name, j->hash, &err) != TQ_OK ||
       tq_auth_audit(lib, j->who, "user.passwd", u.name, NULL, j->addr, &err) != TQ_OK))
    return job_fail(rs, lib, &err);
  if (j->disabled >= 0 && (tq_auth_user_set_disabled(lib, u.name, j->disabled, &err) != TQ_OK ||
                           tq_auth_audit(lib, j->who, j->disabled ? "user.disable" : "user.enable",
                                         u.name, NULL, j->addr, &err) != TQ_OK))
    return job_fail(rs, lib, &err);
  if (tq_auth_user_get(lib, j->user_id, NULL, &u, &err) != TQ_OK ||
      tq_lib_commit(lib, &err) != TQ_OK)
    return job_fail(rs, lib, &err);
  tq_resp_data(rs, 200, user_json(&u));
}

/* A new OAuth client: its id and secret are in this answer only. */
static void run_client_add(tq_lib *lib, auth_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  tq_user u;
  char *cid = NULL, *sec = NULL;
  if (tq_lib_begin(lib, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  if (tq_auth_client_add(lib, j->name, j->role, &cid, &sec, &err) != TQ_OK ||
      tq_auth_audit(lib, j->who, "client.add", j->name, tq_role_name(j->role), j->addr, &err) !=
          TQ_OK ||
      tq_auth_user_get(lib, 0, j->name, &u, &err) != TQ_OK || tq_lib_commit(lib, &err) != TQ_OK) {
    if (sec)
      sodium_memzero(sec, strlen(sec));
    free(cid);
    free(sec);
    if (err.code == TQ_EINVAL) {
      tq_lib_rollback(lib);
      return tq_resp_invalid(rs, "name", "%s", err.msg);
    }
    return job_fail(rs, lib, &err);
  }
  cJSON *d = user_json(&u);
  cJSON_AddStringToObject(d, "client_id", cid);
  cJSON_AddStringToObject(d, "client_secret", sec);
  sodium_memzero(sec, strlen(sec));
  free(cid);
  free(sec);
  tq_resp_data(rs, 201, d);
}

static void run_user_delete(tq_lib *lib, auth_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  tq_user u;
  if (tq_auth_user_get(lib, j->user_id, NULL, &u, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  if (last_admin(lib, &u, TQ_ROLE_NONE, rs))
    return;
  if (tq_lib_begin(lib, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  if (tq_auth_user_delete(lib, u.name, &err) != TQ_OK ||
      tq_auth_audit(lib, j->who, "user.delete", u.name, u.is_client ? "client" : NULL, j->addr,
                    &err) != TQ_OK ||
      tq_lib_commit(lib, &err) != TQ_OK)
    return job_fail(rs, lib, &err);
  tq_resp_raw(rs, 204, "application/json", "", 0);
}

/* DELETE /api/token: sign-out. */
static void run_revoke(tq_lib *lib, auth_job *j, tq_resp *rs) {
  tq_err err, aerr;
  tq_err_clear(&err);
  if (tq_auth_revoke(lib, j->refresh, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  if (tq_auth_audit(lib, j->who, "logout", j->who, NULL, j->addr, &aerr) != TQ_OK)
    tq_log(TQ_LOG_ERROR, "server", "audit of a logout: %s", aerr.msg);
  tq_resp_raw(rs, 204, "application/json", "", 0);
}

static void run_job(tq_engine *eng, tq_job *job) {
  auth_job *j = tq_job_ud(job);
  tq_resp *rs = tq_job_resp(job);
  tq_lib *lib = tq_engine_lib(eng);
  tq_err err;
  tq_err_clear(&err);
  if (tq_auth_migrate(lib, &err) != TQ_OK)
    tq_resp_err(rs, NULL, &err);
  else
    switch (j->kind) {
    case J_LOGIN: run_login(lib, j, rs); break;
    case J_LOGIN_FAILED: run_login_failed(lib, j, rs); break;
    case J_REFRESH: run_refresh(lib, j, rs); break;
    case J_USER_ADD: run_user_add(lib, j, rs); break;
    case J_USER_PUT: run_user_put(lib, j, rs); break;
    case J_USER_DELETE: run_user_delete(lib, j, rs); break;
    case J_CLIENT_ADD: run_client_add(lib, j, rs); break;
    case J_REVOKE: run_revoke(lib, j, rs); break;
    }
  /* The brake's keys as memory holds them now, into the library (its outcome is not the
   * answer's: a login is not refused because the copy could not be written). */
  for (int k = 0; (j->kind == J_LOGIN || j->kind == J_LOGIN_FAILED) && k < 2; k++) {
    const char *key = k ? j->akey : j->ukey;
    if (*key && brake_persist(lib, key, &err) != TQ_OK)
      tq_log(TQ_LOG_ERROR, "server", "%s", err.msg);
  }
  tq_job_done(job);
}

static void to_engine(tq_req *rq, tq_resp *rs, auth_job *j) {
  tq_req_engine(rq, rs, run_job, j, job_free);
}

/* ---- POST /api/token
 * ------------------------------------------------------------------------------ */

enum { P_GRANT, P_CLIENT_ID, P_CLIENT_SECRET, P_USERNAME, P_EMAIL, P_PASSWORD, P_REFRESH, P_N };
static const char *const PARAM_NAMES[P_N] = {"grant_type", "client_id", "client_secret", "username",
                                             "email",      "password",  "refresh_token"};
/* The parameters that are secrets: never taken from the query string (logs, proxies). */
static int param_secret(int i) { return i == P_CLIENT_SECRET || i == P_PASSWORD || i == P_REFRESH; }
#define PARAM_MAX 4096

typedef struct token_params {
  char *v[P_N];
} token_params;

static void params_free(token_params *p) {
  for (int i = 0; i < P_N; i++)
    if (p->v[i]) {
      sodium_memzero(p->v[i], strlen(p->v[i]));
      free(p->v[i]);
      p->v[i] = NULL;
    }
}

static int param_index(const char *name, size_t n) {
  for (int i = 0; i < P_N; i++)
    if (strlen(PARAM_NAMES[i]) == n && strncmp(PARAM_NAMES[i], name, n) == 0)
      return i;
  return -1;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* application/x-www-form-urlencoded decoding of s[0..n) into a malloc'd string; NULL for a
 * bad escape or a NUL byte. */
static char *form_decode(const char *s, size_t n) {
  char *out = malloc(n + 1), *o = out;
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '+')
      *o++ = ' ';
    else if (s[i] == '%') {
      int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
      int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
        free(out);
        return NULL;
      }
      *o++ = (char)(hi * 16 + lo);
      i += 2;
    } else
      *o++ = s[i];
  }
  *o = '\0';
  return out;
}

/* Fills p from a form body; 0 after filling rs with a 400. */
static int params_form(const tq_req *rq, token_params *p, tq_resp *rs) {
  const char *s = rq->body, *end = rq->body + rq->body_len;
  while (s < end) {
    const char *amp = memchr(s, '&', (size_t)(end - s));
    const char *stop = amp ? amp : end;
    const char *eq = memchr(s, '=', (size_t)(stop - s));
    if (eq) {
      int i = param_index(s, (size_t)(eq - s));
      if (i >= 0 && p->v[i] == NULL) {
        if ((size_t)(stop - eq - 1) > PARAM_MAX * 3 ||
            (p->v[i] = form_decode(eq + 1, (size_t)(stop - eq - 1))) == NULL) {
          oauth_invalid(rs, PARAM_NAMES[i], "not a well-formed form value");
          return 0;
        }
      }
    }
    s = stop + 1;
  }
  return 1;
}

/* Whether a JSON text holds the escape \u0000 in a string: cJSON decodes it into a NUL that
 * ends the C string, so "adm\u0000x" would be read as "adm" and a password "p1\u0000rest" as
 * "p1". Outside strings a backslash is a syntax error anyway. */
static int json_has_nul(const char *s, size_t n) {
  for (size_t i = 0; i + 1 < n; i++) {
    if (s[i] != '\\')
      continue;
    if (s[i + 1] == 'u' && i + 5 < n && strncmp(s + i + 2, "0000", 4) == 0)
      return 1;
    i++; /* the escaped character (a backslash too) */
  }
  return 0;
}

/* The body as JSON, refusing \u0000 in its strings (400); NULL after filling rs. */
static cJSON *json_body(const tq_req *rq, tq_resp *rs, int oauth) {
  if (json_has_nul(rq->body, rq->body_len)) {
    if (oauth)
      oauth_invalid(rs, "request", "a JSON string holds \\u0000 (NUL): not accepted");
    else
      tq_resp_invalid(rs, "request", "a JSON string holds \\u0000 (NUL): not accepted");
    return NULL;
  }
  return tq_req_json(rq, rs);
}

/* Fills p from a JSON object body; 0 after filling rs with a 400. */
static int params_json(const tq_req *rq, token_params *p, tq_resp *rs) {
  cJSON *body = json_body(rq, rs, 1);
  if (body == NULL)
    return 0;
  int ok = 1;
  if (!cJSON_IsObject(body)) {
    oauth_invalid(rs, "request", "the body must be a JSON object");
    ok = 0;
  }
  for (int i = 0; ok && i < P_N; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, PARAM_NAMES[i]);
    if (v == NULL || cJSON_IsNull(v))
      continue;
    if (!cJSON_IsString(v)) {
      oauth_invalid(rs, PARAM_NAMES[i], "must be a string");
      ok = 0;
    } else if ((p->v[i] = tq_strdup(v->valuestring)) == NULL) {
      tq_resp_fail(rs, 500, "out of memory");
      ok = 0;
    }
  }
  /* cJSON keeps the strings it parsed: wipe them before freeing */
  const cJSON *pw = cJSON_GetObjectItemCaseSensitive(body, "password");
  if (cJSON_IsString(pw))
    sodium_memzero(pw->valuestring, strlen(pw->valuestring));
  const cJSON *sec = cJSON_GetObjectItemCaseSensitive(body, "client_secret");
  if (cJSON_IsString(sec))
    sodium_memzero(sec->valuestring, strlen(sec->valuestring));
  cJSON_Delete(body);
  return ok;
}

/* The parameters from the body (JSON or form), then the query string; 0 after a 400. */
static int params_read(const tq_req *rq, token_params *p, tq_resp *rs) {
  size_t lead = 0;
  while (lead < rq->body_len && strchr(" \t\r\n", rq->body[lead]))
    lead++;
  const char *ctype = tq_req_header(rq, "Content-Type");
  if (lead < rq->body_len) {
    int form = ctype && strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0;
    if (!(form ? params_form(rq, p, rs) : params_json(rq, p, rs)))
      return 0;
  }
  for (int i = 0; i < P_N; i++) {
    const char *q = tq_req_arg(rq, PARAM_NAMES[i]);
    if (q == NULL || p->v[i])
      continue;
    if (param_secret(i)) {
      oauth_invalid(rs, PARAM_NAMES[i],
                    "not accepted in the query string (it would be logged); "
                    "send it in the body");
      return 0;
    }
    if ((p->v[i] = tq_strdup(q)) == NULL) {
      tq_resp_fail(rs, 500, "out of memory");
      return 0;
    }
  }
  for (int i = 0; i < P_N; i++)
    if (p->v[i] && strlen(p->v[i]) > PARAM_MAX) {
      oauth_invalid(rs, PARAM_NAMES[i], "longer than 4096 bytes");
      return 0;
    }
  return 1;
}

/* HTTP Basic client_id:secret into p (values from the body win); 0 after a 400/401. */
static int params_basic(const tq_req *rq, token_params *p, tq_resp *rs) {
  const char *h = tq_req_header(rq, "Authorization");
  if (h == NULL)
    return 1;
  while (*h == ' ')
    h++;
  if (strncasecmp(h, "Basic ", 6) != 0)
    return 1;
  h += 6;
  while (*h == ' ')
    h++;
  unsigned char bin[1024];
  size_t len = 0;
  const char *end = NULL;
  if (sodium_base642bin(bin, sizeof bin - 1, h, strlen(h), " ", &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      (end && *end)) {
    oauth_fail(rs, 401, "invalid_client", "Authorization: Basic credentials are not base64");
    rs->www_authenticate = tq_strdup("Basic realm=\"tqhost\"");
    return 0;
  }
  bin[len] = '\0';
  char *colon = memchr(bin, ':', len);
  if (colon == NULL || memchr(bin, '\0', len)) {
    sodium_memzero(bin, sizeof bin);
    oauth_fail(rs, 401, "invalid_client", "Authorization: Basic needs client_id:client_secret");
    rs->www_authenticate = tq_strdup("Basic realm=\"tqhost\"");
    return 0;
  }
  *colon = '\0';
  int ok = 1;
  if (p->v[P_CLIENT_ID] == NULL && (p->v[P_CLIENT_ID] = tq_strdup((char *)bin)) == NULL)
    ok = 0;
  if (ok && p->v[P_CLIENT_SECRET] == NULL && (p->v[P_CLIENT_SECRET] = tq_strdup(colon + 1)) == NULL)
    ok = 0;
  sodium_memzero(bin, sizeof bin);
  if (!ok)
    tq_resp_fail(rs, 500, "out of memory");
  return ok;
}

/* A password or client-credentials check on this thread; the outcome goes to the engine. */
static void login(tq_req *rq, tq_resp *rs, const char *name, const char *secret, int client) {
  char ukey[BRAKE_KEY], akey[BRAKE_KEY];
  brake_key(ukey, client ? 'c' : 'u', name);
  brake_key(akey, 'a', rq->remote);
  const char *grant = client ? "client_credentials" : "password";
  int wait = brake_enter(ukey, akey);
  if (wait > 0) {
    count_login(grant, "locked");
    oauth_fail(rs, 429, "too_many_requests", "too many failed logins: try again later");
    rs->retry_after_s = wait;
    return;
  }
  tq_user u;
  tq_err err;
  tq_err_clear(&err);
  tq_code rc = client ? tq_auth_check_client(rq->rd, name, secret, &u, &err)
                      : tq_auth_check_login(rq->rd, name, secret, &u, &err);
  if (rc != TQ_OK && rc != TQ_EDENIED) {
    brake_leave(ukey);
    brake_leave(akey);
    return tq_resp_err(rs, NULL, &err);
  }
  int locked_s = 0;
  count_login(grant, rc == TQ_OK ? "ok" : "failed");
  if (rc == TQ_OK) {
    brake_success(ukey);
    brake_leave(akey);
  } else {
    int l1 = brake_fail(ukey, BRAKE_USER_FAILS), l2 = brake_fail(akey, BRAKE_ADDR_FAILS);
    locked_s = l1 > l2 ? l1 : l2;
  }
  auth_job *j = job_new(rq, rc == TQ_OK ? J_LOGIN : J_LOGIN_FAILED, rs);
  if (j == NULL)
    return;
  j->client = client;
  j->locked_s = locked_s;
  tq_strlcpy(j->ukey, ukey, sizeof j->ukey);
  if (rc != TQ_OK) /* a success leaves the address's counter as it was */
    tq_strlcpy(j->akey, akey, sizeof j->akey);
  snprintf(j->detail, sizeof j->detail, "%s", client ? "client_credentials" : "password");
  if (rc == TQ_OK) {
    j->user_id = u.id;
    tq_strlcpy(j->name, u.name, sizeof j->name);
  } else
    tq_strlcpy(j->name, name, sizeof j->name);
  to_engine(rq, rs, j);
}

static void api_token(tq_req *rq, tq_resp *rs) {
  token_params p = {{0}};
  if (!params_read(rq, &p, rs) || !params_basic(rq, &p, rs))
    goto out;
  const char *grant = p.v[P_GRANT];
  if (grant == NULL || *grant == '\0') {
    oauth_invalid(rs, "grant_type", "required: password, client_credentials or refresh_token");
  } else if (strcmp(grant, "password") == 0) {
    const char *name = p.v[P_USERNAME] ? p.v[P_USERNAME] : p.v[P_EMAIL];
    if (name == NULL || *name == '\0')
      oauth_invalid(rs, "username", "required (or email) for grant_type=password");
    else if (p.v[P_PASSWORD] == NULL || *p.v[P_PASSWORD] == '\0')
      oauth_invalid(rs, "password", "required for grant_type=password");
    else
      login(rq, rs, name, p.v[P_PASSWORD], 0);
  } else if (strcmp(grant, "client_credentials") == 0) {
    if (p.v[P_CLIENT_ID] == NULL || p.v[P_CLIENT_SECRET] == NULL) {
      oauth_fail(rs, 401, "invalid_client",
                 "client credentials required: HTTP Basic client_id:client_secret");
      rs->www_authenticate = tq_strdup("Basic realm=\"tqhost\"");
    } else
      login(rq, rs, p.v[P_CLIENT_ID], p.v[P_CLIENT_SECRET], 1);
  } else if (strcmp(grant, "refresh_token") == 0) {
    if (p.v[P_REFRESH] == NULL || *p.v[P_REFRESH] == '\0')
      oauth_invalid(rs, "refresh_token", "required for grant_type=refresh_token");
    else if (!tq_auth_token_wellformed(p.v[P_REFRESH]))
      oauth_fail(rs, 401, "invalid_grant", "the refresh token is invalid");
    else {
      auth_job *j = job_new(rq, J_REFRESH, rs);
      if (j) {
        tq_strlcpy(j->refresh, p.v[P_REFRESH], sizeof j->refresh);
        to_engine(rq, rs, j);
      }
    }
  } else {
    char *shown = tq_auth_clean(grant, 64);
    tq_resp_invalid(rs, "grant_type", "'%s' is not password, client_credentials or refresh_token",
                    shown ? shown : "?");
    if (rs->json)
      cJSON_AddStringToObject(rs->json, "error", "unsupported_grant_type");
    free(shown);
  }
out:
  params_free(&p);
}

/* DELETE /api/token: the bearer token (checked by the router already) and its family are
 * revoked. */
static void api_token_revoke(tq_req *rq, tq_resp *rs) {
  const char *h = tq_req_header(rq, "Authorization");
  while (h && *h == ' ')
    h++;
  h = h ? h + 7 : "";
  while (*h == ' ')
    h++;
  size_t n = strcspn(h, " \t");
  if (n != TQ_AUTH_TOKEN_LEN) {
    tq_resp_fail(rs, 401, "the access token is invalid");
    return;
  }
  auth_job *j = job_new(rq, J_REVOKE, rs);
  if (j) {
    memcpy(j->refresh, h, n);
    j->refresh[n] = '\0';
    to_engine(rq, rs, j);
  }
}

/* ---- users
 * ------------------------------------------------------------------------------------------ */

static void api_user_current(tq_req *rq, tq_resp *rs) {
  tq_user u;
  tq_err err;
  tq_err_clear(&err);
  if (tq_auth_user_get(rq->rd, rq->who.user_id, NULL, &u, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  tq_resp_data(rs, 200, user_json(&u));
}

static void api_users_list(tq_req *rq, tq_resp *rs) {
  int64_t limit = 0, offset = 0;
  if (!tq_req_page(rq, 100, 1000, &limit, &offset, rs))
    return;
  tq_user *all = NULL;
  size_t n = 0;
  tq_err err;
  tq_err_clear(&err);
  if (tq_auth_user_list(rq->rd, &all, &n, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = (size_t)offset; arr && i < n && i < (size_t)(offset + limit); i++)
    cJSON_AddItemToArray(arr, user_json(&all[i]));
  free(all);
  tq_resp_list(rs, arr, (int64_t)n, limit, offset);
}

/* A string member of body (NULL when absent); 0 after a 400 when present but not a string. */
static int body_str(const cJSON *body, const char *key, const char **out, tq_resp *rs) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
  *out = NULL;
  if (v == NULL)
    return 1;
  if (!cJSON_IsString(v)) {
    tq_resp_invalid(rs, key, "must be a string");
    return 0;
  }
  *out = v->valuestring;
  return 1;
}

/* Only the members named in allowed (NULL-terminated); 0 after a 400 naming another. */
static int body_only(const cJSON *body, const char *const *allowed, tq_resp *rs) {
  for (const cJSON *m = body->child; m; m = m->next) {
    int ok = 0;
    for (const char *const *a = allowed; *a && !ok; a++)
      ok = strcmp(*a, m->string) == 0;
    if (!ok) {
      char *shown = tq_auth_clean(m->string, 64);
      tq_resp_invalid(rs, "request", "unknown field '%s'", shown ? shown : "?");
      free(shown);
      return 0;
    }
  }
  return 1;
}

/* role and password of a body into j (either may be absent); 0 after a 400. */
static int body_role_password(const cJSON *body, auth_job *j, tq_resp *rs) {
  const char *role = NULL, *pw = NULL;
  tq_err err;
  if (!body_str(body, "role", &role, rs) || !body_str(body, "password", &pw, rs))
    return 0;
  if (role && (j->role = tq_role_from_name(role)) == TQ_ROLE_NONE) {
    tq_resp_invalid(rs, "role", "must be admin, analyst or read-only");
    return 0;
  }
  if (pw) {
    tq_code rc = tq_auth_pw_hash(pw, j->hash, &err);
    sodium_memzero((char *)pw, strlen(pw));
    if (rc != TQ_OK) {
      tq_resp_err(rs, "password", &err);
      return 0;
    }
  }
  return 1;
}

static cJSON *object_body(tq_req *rq, tq_resp *rs) {
  cJSON *body = json_body(rq, rs, 0);
  if (body && !cJSON_IsObject(body)) {
    cJSON_Delete(body);
    tq_resp_invalid(rs, "request", "the body must be a JSON object");
    return NULL;
  }
  return body;
}

/* The body of POST /api/users and /api/clients, only the allowed fields: a checked name, a
 * role (required) and, where allowed, a password, as a job of kind; NULL once rs holds the
 * refusal. */
static auth_job *named_job(tq_req *rq, tq_resp *rs, const char *const *allowed, job_kind kind) {
  cJSON *body = object_body(rq, rs);
  auth_job *j = NULL;
  const char *name = NULL;
  tq_err err;
  if (body == NULL || !body_only(body, allowed, rs) || !body_str(body, "name", &name, rs))
    goto fail;
  if (name == NULL) {
    tq_resp_invalid(rs, "name", "required");
    goto fail;
  }
  if (tq_auth_check_name(name, &err) != TQ_OK) {
    tq_resp_invalid(rs, "name", "%s", err.msg);
    goto fail;
  }
  if ((j = job_new(rq, kind, rs)) == NULL)
    goto fail;
  tq_strlcpy(j->name, name, sizeof j->name);
  if (!body_role_password(body, j, rs))
    goto fail;
  if (j->role == TQ_ROLE_NONE) {
    tq_resp_invalid(rs, "role", "required: admin, analyst or read-only");
    goto fail;
  }
  cJSON_Delete(body);
  return j;
fail:
  job_free(j);
  cJSON_Delete(body);
  return NULL;
}

static void api_users_add(tq_req *rq, tq_resp *rs) {
  static const char *const allowed[] = {"name", "role", "password", NULL};
  auth_job *j = named_job(rq, rs, allowed, J_USER_ADD);
  if (j == NULL)
    return;
  if (j->hash[0] == '\0') {
    tq_resp_invalid(rs, "password", "required");
    job_free(j);
    return;
  }
  to_engine(rq, rs, j);
}

static void api_users_put(tq_req *rq, tq_resp *rs) {
  static const char *const allowed[] = {"role", "password", "disabled", NULL};
  int64_t id = tq_req_id(rq, 0, rs);
  if (id == 0)
    return;
  cJSON *body = object_body(rq, rs);
  auth_job *j = NULL;
  const cJSON *dis = NULL;
  if (body == NULL || !body_only(body, allowed, rs) || (j = job_new(rq, J_USER_PUT, rs)) == NULL ||
      !body_role_password(body, j, rs))
    goto out;
  j->disabled = -1;
  dis = cJSON_GetObjectItemCaseSensitive(body, "disabled");
  if (dis && !cJSON_IsBool(dis)) {
    tq_resp_invalid(rs, "disabled", "must be true or false");
    goto out;
  }
  if (dis)
    j->disabled = cJSON_IsTrue(dis);
  if (j->role == TQ_ROLE_NONE && j->hash[0] == '\0' && j->disabled < 0)
    tq_resp_invalid(rs, "request", "nothing to change: give role, password and/or disabled");
  else {
    j->user_id = id;
    to_engine(rq, rs, j);
    j = NULL;
  }
out:
  job_free(j);
  cJSON_Delete(body);
}

static void api_users_delete(tq_req *rq, tq_resp *rs) {
  int64_t id = tq_req_id(rq, 0, rs);
  if (id == 0)
    return;
  auth_job *j = job_new(rq, J_USER_DELETE, rs);
  if (j) {
    j->user_id = id;
    to_engine(rq, rs, j);
  }
}

/* ---- OAuth clients: /api/clients ------------------------------------------------------------ */

static void api_clients_list(tq_req *rq, tq_resp *rs) {
  int64_t limit = 0, offset = 0;
  if (!tq_req_page(rq, 100, 1000, &limit, &offset, rs))
    return;
  tq_user *all = NULL;
  size_t n = 0, k = 0;
  tq_err err;
  tq_err_clear(&err);
  if (tq_auth_user_list(rq->rd, &all, &n, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr && i < n; i++) {
    if (!all[i].is_client)
      continue;
    if (k >= (size_t)offset && k < (size_t)(offset + limit))
      cJSON_AddItemToArray(arr, user_json(&all[i]));
    k++;
  }
  free(all);
  tq_resp_list(rs, arr, (int64_t)k, limit, offset);
}

static void api_clients_add(tq_req *rq, tq_resp *rs) {
  static const char *const allowed[] = {"name", "role", NULL};
  auth_job *j = named_job(rq, rs, allowed, J_CLIENT_ADD);
  if (j)
    to_engine(rq, rs, j);
}

static void api_clients_delete(tq_req *rq, tq_resp *rs) {
  int64_t id = tq_req_id(rq, 0, rs);
  if (id == 0)
    return;
  tq_user u;
  tq_err err;
  if (tq_auth_user_get(rq->rd, id, NULL, &u, &err) != TQ_OK || !u.is_client)
    return tq_resp_fail(rs, 404, "no client with id %lld", (long long)id);
  auth_job *j = job_new(rq, J_USER_DELETE, rs);
  if (j) {
    j->user_id = id;
    to_engine(rq, rs, j);
  }
}

/* ---- the audit log
 * ------------------------------------------------------------------------------------ */

static void api_audit(tq_req *rq, tq_resp *rs) {
  int64_t limit = 0, offset = 0, total = 0;
  if (!tq_req_page(rq, 100, 1000, &limit, &offset, rs))
    return;
  const char *who = tq_req_arg(rq, "who"), *what = tq_req_arg(rq, "what");
  cJSON *arr = cJSON_CreateArray();
  if (tq_lib_part_version(rq->rd, "server") == 0 || arr == NULL)
    return tq_resp_list(rs, arr, 0, limit, offset);
  sqlite3 *db = tq_lib_db(rq->rd);
  sqlite3_stmt *st = NULL, *cnt = NULL;
  const char *where = " WHERE (?1 IS NULL OR who=?1) AND (?2 IS NULL OR what=?2)";
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM audit%s", where);
  int ok = sqlite3_prepare_v2(db, sql, -1, &cnt, NULL) == SQLITE_OK;
  snprintf(sql, sizeof sql,
           "SELECT id,at,who,what,target,detail,addr FROM audit%s ORDER BY id DESC "
           "LIMIT ?3 OFFSET ?4",
           where);
  ok = ok && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK;
  if (ok) {
    for (int k = 0; k < 2; k++) {
      sqlite3_stmt *s = k ? st : cnt;
      if (who)
        sqlite3_bind_text(s, 1, who, -1, SQLITE_STATIC);
      if (what)
        sqlite3_bind_text(s, 2, what, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 3, limit);
    sqlite3_bind_int64(st, 4, offset);
    ok = sqlite3_step(cnt) == SQLITE_ROW;
    total = ok ? sqlite3_column_int64(cnt, 0) : 0;
  }
  int step = SQLITE_DONE;
  while (ok && (step = sqlite3_step(st)) == SQLITE_ROW) {
    cJSON *r = cJSON_CreateObject();
    char at[20];
    tq_time_format(sqlite3_column_int64(st, 1), at);
    cJSON_AddNumberToObject(r, "id", (double)sqlite3_column_int64(st, 0));
    cJSON_AddStringToObject(r, "at", at);
    static const char *const cols[] = {NULL, NULL, "who", "what", "target", "detail", "addr"};
    for (int c = 2; c < 7; c++) {
      const char *v = (const char *)sqlite3_column_text(st, c);
      if (v)
        cJSON_AddStringToObject(r, cols[c], v);
      else
        cJSON_AddNullToObject(r, cols[c]);
    }
    cJSON_AddItemToArray(arr, r);
  }
  if (!ok || step != SQLITE_DONE) {
    tq_err err;
    tq_err_set(&err, TQ_EDB, "reading the audit log: %s", sqlite3_errmsg(db));
    cJSON_Delete(arr);
    tq_resp_err(rs, NULL, &err);
  } else
    tq_resp_list(rs, arr, total, limit, offset);
  sqlite3_finalize(st);
  sqlite3_finalize(cnt);
}

/* ---- routes
 * --------------------------------------------------------------------------------------- */

const tq_route tq_routes_auth[] = {
    {"POST", "/api/token", TQ_ROLE_NONE, api_token},
    {"DELETE", "/api/token", TQ_ROLE_READONLY, api_token_revoke},
    {"GET", "/api/users/current", TQ_ROLE_READONLY, api_user_current},
    {"GET", "/api/users", TQ_ROLE_ADMIN, api_users_list},
    {"POST", "/api/users", TQ_ROLE_ADMIN, api_users_add},
    {"PUT", "/api/users/{id}", TQ_ROLE_ADMIN, api_users_put},
    {"DELETE", "/api/users/{id}", TQ_ROLE_ADMIN, api_users_delete},
    {"GET", "/api/audit", TQ_ROLE_ADMIN, api_audit},
    {"GET", "/api/clients", TQ_ROLE_ADMIN, api_clients_list},
    {"POST", "/api/clients", TQ_ROLE_ADMIN, api_clients_add},
    {"DELETE", "/api/clients/{id}", TQ_ROLE_ADMIN, api_clients_delete},
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
