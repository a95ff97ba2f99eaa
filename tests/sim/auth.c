/* auth.c: GET /v1/auth/check of rstsim (spec sections 1.2 and 7): says the key is valid and
 * reports the key's quota: requests counted by this process against --quota (or a nominal
 * 10000 when no quota is enforced), per DAY. */
#include "sim.h"

#define NOMINAL_LIMIT 10000

static tq_code auth_check(const sim_config *cfg, const sim_request *rq, sim_reply *out,
                          tq_err *err) {
  long long used = (long long)sim_keys_used(rq->api_key); /* this request included */
  long long limit = cfg->quota ? cfg->quota : NOMINAL_LIMIT;
  int ok = 1;
  cJSON *o = cJSON_CreateObject();
  cJSON *check = sim_j_obj(o, "check", &ok);
  sim_j_str(check, "name", "CheckApiKey", &ok);
  sim_j_str(check, "status", "valid", &ok);
  cJSON *quota = sim_j_obj(o, "quota", &ok);
  sim_j_int(quota, "used", used, &ok);
  sim_j_int(quota, "limit", limit, &ok);
  sim_j_int(quota, "remaining", used < limit ? limit - used : 0, &ok);
  sim_j_str(quota, "period", "DAY", &ok);
  if (!ok) {
    cJSON_Delete(o);
    o = NULL;
  }
  return sim_reply_json(out, 200, o, err);
}

const sim_route sim_routes_auth[] = {
    {"GET", "/v1/auth/check", SIM_EXACT, SIM_AUTH_APIKEY, auth_check, "auth.check"}, {0}};
