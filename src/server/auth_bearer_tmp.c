/* auth_bearer_tmp.c: TEMPORARY stand-in until the auth helper's auth.c lands on main: every
 * token is refused with 401. Deleted when main has the real tq_auth_bearer. */
#include <string.h>

#include "server_int.h"

int tq_auth_bearer(tq_req *rq, tq_resp *rs) {
  (void)rq;
  tq_resp_fail(rs, 401, "authentication is not available in this build");
  return 0;
}

const char *tq_role_name(tq_role r) {
  switch (r) {
  case TQ_ROLE_READONLY: return "read-only";
  case TQ_ROLE_ANALYST: return "analyst";
  case TQ_ROLE_ADMIN: return "admin";
  default: return "none";
  }
}

tq_role tq_role_from_name(const char *s) {
  if (s && strcmp(s, "read-only") == 0)
    return TQ_ROLE_READONLY;
  if (s && strcmp(s, "analyst") == 0)
    return TQ_ROLE_ANALYST;
  if (s && strcmp(s, "admin") == 0)
    return TQ_ROLE_ADMIN;
  return TQ_ROLE_NONE;
}
