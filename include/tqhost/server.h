/* server.h: `tqhost serve`, the threat library and the plugins behind a ThreatQ-shaped REST
 * API over HTTPS (DESIGN.md section 7, docs/api.md): users, OAuth-style tokens and roles,
 * an audit log; reads on the HTTP threads, runs and writes on the engine thread.
 *
 * Ownership: strings in tq_server_opts are borrowed for the duration of tq_server_run.
 * Threads: tq_server_run owns the process's HTTP threads and engine thread until it returns. */
#ifndef TQHOST_SERVER_H
#define TQHOST_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "tqhost/core.h"
#include "tqhost/library.h"

/* ---- roles ------------------------------------------------------------------------------- */
typedef enum tq_role {
  TQ_ROLE_NONE = 0,     /* not authenticated: only the open routes (health, token, openapi) */
  TQ_ROLE_READONLY = 1, /* "read-only": reads */
  TQ_ROLE_ANALYST = 2,  /* "analyst": reads, run operations and apply, run actions/workflows,
                           write objects */
  TQ_ROLE_ADMIN = 3     /* "admin": everything (users, plugin config, sources, audit log) */
} tq_role;
const char *tq_role_name(tq_role r);      /* "read-only" "analyst" "admin"; "none" */
tq_role tq_role_from_name(const char *s); /* TQ_ROLE_NONE when unknown */

/* ---- users, API clients, tokens, audit (src/server/auth*.c, tables owned by server/) --------
 * Every function takes a writable library handle unless it says "read". Passwords and client
 * secrets are hashed with crypto_pwhash (Argon2id); tokens are 256-bit random, stored as their
 * SHA-256. Errors: TQ_EEXIST, TQ_ENOTFOUND naming the user/client, TQ_EINVAL for a bad name,
 * role or an empty password. */
tq_code tq_auth_migrate(tq_lib *lib, tq_err *err); /* the server part's tables */
typedef struct tq_user {
  int64_t id;
  char name[128];
  tq_role role;
  int is_client; /* an OAuth client (client credentials), not a person */
  int64_t created_at;
  int disabled; /* cannot log in; its tokens do not work (filled by get and list) */
} tq_user;
tq_code tq_auth_user_add(tq_lib *lib, const char *name, tq_role role, const char *password,
                         tq_err *err);
tq_code tq_auth_user_passwd(tq_lib *lib, const char *name, const char *password, tq_err *err);
tq_code tq_auth_user_role(tq_lib *lib, const char *name, tq_role role, tq_err *err);
/* Disables (its tokens revoked) or enables again the user or client. */
tq_code tq_auth_user_set_disabled(tq_lib *lib, const char *name, int disabled, tq_err *err);
/* Deletes the user or client and revokes its tokens. */
tq_code tq_auth_user_delete(tq_lib *lib, const char *name, tq_err *err);
/* Users and clients, by name (read). *out malloc'd (free()). */
tq_code tq_auth_user_list(tq_lib *lib, tq_user **out, size_t *n, tq_err *err);
/* A new API client: *client_id and *secret (malloc'd) are printed once; only hashes stay. */
tq_code tq_auth_client_add(tq_lib *lib, const char *name, tq_role role, char **client_id,
                           char **secret, tq_err *err);
/* One audit record: who (user name or "-"), what ("login", "login_failed", "user.add",
 * "plugin.config", "operation.apply", "run.start", "run.cancel", ...), target and detail (no
 * secret ever), from addr (may be NULL). Within the caller's transaction if one is open. */
tq_code tq_auth_audit(tq_lib *lib, const char *who, const char *what, const char *target,
                      const char *detail, const char *addr, tq_err *err);

/* ---- the server ------------------------------------------------------------------------------ */
typedef struct tq_server_opts {
  const char *db_path;     /* the library (created if missing) */
  const char *plugins_dir; /* NULL: tq_plugin_dir() */
  const char *actions_dir; /* NULL: the default */
  const char *listen;      /* "ADDR:PORT"; NULL: "127.0.0.1:8443" */
  const char *tls_cert;    /* PEM files; both NULL: a self-signed pair kept beside the library */
  const char *tls_key;
  int insecure_http;       /* 1: plain HTTP on loopback only; 2 (flag repeated): any address */
  int http_threads;        /* 0: 4 */
  size_t max_body;         /* request body cap in bytes; 0: 8 MiB */
  unsigned max_conns;      /* 0: 256 */
  unsigned conn_timeout_s; /* idle/slow connection timeout; 0: 30 */
  const char *replay_file; /* test/demo: plugins' HTTP from a recording (no network) */
  const char *web_dir;     /* the web UI's static files; NULL: the default folder (web.c) */
  /* Called once the server listens (port resolved: "ADDR:PORT" given as 0 picks one), with
   * the base URL and the certificate's SHA-256 fingerprint ("" over plain HTTP). */
  void (*on_ready)(void *ud, const char *base_url, const char *fingerprint);
  void *ud;
} tq_server_opts;
void tq_server_opts_init(tq_server_opts *o);
/* Serves until SIGTERM/SIGINT (or tq_server_stop): stops accepting, lets what is in flight
 * finish (runs are given their deadline, then cancelled and recorded as such), exits TQ_OK. */
tq_code tq_server_run(const tq_server_opts *o, tq_err *err);
/* Asks a running tq_server_run to stop (async-signal-safe). */
void tq_server_stop(void);
/* Every route the server answers, in the order of its tables: fn(ud, method, pattern, role)
 * (`tqhost serve --print-routes`, the contract test against schemas/openapi.yaml). */
void tq_server_routes(void (*fn)(void *ud, const char *method, const char *pattern, tq_role role),
                      void *ud);

#endif
