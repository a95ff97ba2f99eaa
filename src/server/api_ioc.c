/* api_ioc.c: what a typed value is, for the web UI's search box: GET /api/ioc/parse?value=
 * refangs it, detects its indicator type and gives its canonical form, with the same functions
 * the library stores values with (src/ioc/). Read-only, no library access. */
#include <stdlib.h>
#include <string.h>

#include "server_int.h"
#include "tqhost/ioc.h"

#define PARSE_VALUE_MAX 4096

static void api_ioc_parse(tq_req *rq, tq_resp *rs) {
  const char *value = tq_req_arg(rq, "value");
  if (value == NULL || *value == '\0') {
    tq_resp_invalid(rs, "value", "required: the text to classify");
    return;
  }
  if (strlen(value) > PARSE_VALUE_MAX) {
    tq_resp_invalid(rs, "value", "over %d bytes", PARSE_VALUE_MAX);
    return;
  }
  char *refanged = tq_ioc_refang(value);
  if (refanged == NULL) {
    tq_resp_fail(rs, 500, "out of memory");
    return;
  }
  tq_ioc_type type = TQ_IOC_UNKNOWN;
  char *canonical = NULL;
  tq_err err;
  tq_err_clear(&err);
  tq_code rc = tq_ioc_classify(value, &type, &canonical, &err);
  cJSON *d = cJSON_CreateObject();
  if (d == NULL) {
    free(refanged);
    free(canonical);
    tq_resp_fail(rs, 500, "out of memory");
    return;
  }
  cJSON_AddStringToObject(d, "value", value);
  cJSON_AddStringToObject(d, "refanged", refanged);
  char *trimmed = tq_strdup(value); /* white space around it is no defanging */
  cJSON_AddBoolToObject(d, "defanged",
                        trimmed == NULL || strcmp(refanged, tq_str_trim(trimmed)) != 0);
  free(trimmed);
  if (rc == TQ_OK && type != TQ_IOC_UNKNOWN) {
    cJSON_AddStringToObject(d, "type", tq_ioc_type_name(type));
    cJSON_AddStringToObject(d, "canonical", canonical);
    cJSON_AddNullToObject(d, "reason");
  } else {
    cJSON_AddNullToObject(d, "type");
    cJSON_AddNullToObject(d, "canonical");
    cJSON_AddStringToObject(d, "reason", rc != TQ_OK ? err.msg : "no indicator type matches");
  }
  free(refanged);
  free(canonical);
  tq_resp_data(rs, 200, d);
}

const tq_route tq_routes_ioc[] = {
    {"GET", "/api/ioc/parse", TQ_ROLE_READONLY, api_ioc_parse},
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
