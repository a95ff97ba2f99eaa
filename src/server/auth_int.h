/* auth_int.h: what auth.c (users, clients, tokens and audit in the library) offers to
 * auth_api.c (the HTTP side: token endpoint, bearer check, user and audit routes) and to the
 * unit tests. Nothing here touches HTTP. Functions marked "read" work on a read-only
 * connection (an HTTP thread's rq->rd); the others write and belong on the engine thread (or
 * the CLI). */
#ifndef TQ_AUTH_INT_H
#define TQ_AUTH_INT_H

#include <stdint.h>

#include "tqhost/server.h"

#define TQ_AUTH_TOKEN_LEN 43 /* 32 random bytes, base64url without padding */
#define TQ_AUTH_ACCESS_TTL_S 3600
#define TQ_AUTH_REFRESH_TTL_S (14 * 86400)
#define TQ_AUTH_MAX_PASSWORD 1024 /* bytes */

/* Migrates the server tables when they are behind and no transaction is open (cheap when
 * current); TQ_EINTERNAL when behind inside a transaction. */
tq_code tq_auth_ensure(tq_lib *lib, tq_err *err);

/* A fresh 256-bit token, base64url (libsodium's randombytes). */
void tq_auth_token_new(char out[TQ_AUTH_TOKEN_LEN + 1]);
/* The hex SHA-256 of a token: what the tokens table keys on. */
void tq_auth_token_hash(const char *token, char hex[65]);
/* Whether s has a token's shape (base64url, TQ_AUTH_TOKEN_LEN characters). */
int tq_auth_token_wellformed(const char *s);

/* The checks every writer applies (TQ_EINVAL naming the field). */
tq_code tq_auth_check_name(const char *name, tq_err *err);
tq_code tq_auth_check_password(const char *password, tq_err *err);

/* Argon2id (crypto_pwhash_str, INTERACTIVE limits) of a password, CPU only: an HTTP thread
 * hashes, the engine stores. TQ_EINVAL for an empty or too long password. */
#define TQ_AUTH_HASH_MAX 128 /* crypto_pwhash_STRBYTES */
tq_code tq_auth_pw_hash(const char *password, char out[TQ_AUTH_HASH_MAX], tq_err *err);
/* tq_auth_user_add and tq_auth_user_passwd with the hash made already. */
tq_code tq_auth_user_add_hashed(tq_lib *lib, const char *name, tq_role role, const char *hash,
                                tq_err *err);
tq_code tq_auth_user_passwd_hashed(tq_lib *lib, const char *name, const char *hash, tq_err *err);
/* Read: how many enabled admins there are (people and clients). */
tq_code tq_auth_admin_count(tq_lib *lib, int64_t *n, tq_err *err);

/* Read: one user or client by id (name NULL) or by name (id 0). TQ_ENOTFOUND naming it. */
tq_code tq_auth_user_get(tq_lib *lib, int64_t id, const char *name, tq_user *out, tq_err *err);

/* Read, CPU only (Argon2id): a person's name and password, or a client's id and secret.
 * Unknown names, disabled accounts and wrong passwords all take one hash verification and get
 * the same TQ_EDENIED "wrong user name or password" (or "wrong client credentials"). */
tq_code tq_auth_check_login(tq_lib *lib, const char *name, const char *password, tq_user *out,
                            tq_err *err);
tq_code tq_auth_check_client(tq_lib *lib, const char *client_id, const char *secret, tq_user *out,
                             tq_err *err);

/* Read: the user behind an access token. TQ_ENOTFOUND when unknown or revoked, TQ_ETIMEOUT
 * when expired. */
tq_code tq_auth_lookup(tq_lib *lib, const char *token, tq_user *out, tq_err *err);

/* An access and refresh token pair. */
typedef struct tq_auth_pair {
  char access[TQ_AUTH_TOKEN_LEN + 1];
  char refresh[TQ_AUTH_TOKEN_LEN + 1];
  int64_t expires_in; /* the access token's, seconds */
} tq_auth_pair;
/* Issues a pair for user_id in a new family (tokens expired for good are purged). */
tq_code tq_auth_issue(tq_lib *lib, int64_t user_id, int64_t access_ttl, int64_t refresh_ttl,
                      tq_auth_pair *out, tq_err *err);
/* Rotates a refresh token: the old one is revoked, a new pair is issued in its family and *who
 * gets its user. A revoked token presented again (*reused = 1) revokes its whole family (the
 * revocation is committed) and gets TQ_EDENIED; unknown TQ_ENOTFOUND; expired TQ_ETIMEOUT. */
tq_code tq_auth_refresh(tq_lib *lib, const char *refresh_token, int64_t access_ttl,
                        int64_t refresh_ttl, tq_user *who, tq_auth_pair *out, int *reused,
                        tq_err *err);

/* Sign-out: revokes the access token's whole family (its refresh token and every token of the
 * chain since the login). TQ_ENOTFOUND for an unknown token. */
tq_code tq_auth_revoke(tq_lib *lib, const char *access_token, tq_err *err);

/* Text from outside made fit for the audit log and JSON: control characters escaped, bytes
 * that are not UTF-8 shown as \xHH, cut at max bytes. malloc'd; NULL when out of memory. */
char *tq_auth_clean(const char *s, size_t max);

/* The failed-login brake's counters kept in the library (auth_api.c, table login_brake):
 * at server start (a writer, before any HTTP thread), the memory counters are replaced with
 * the library's rows that still matter (locked, or failed within the window; expired rows
 * removed), so that a restart lifts no lock. */
tq_code tq_auth_brake_load(tq_lib *lib, tq_err *err);

#endif
