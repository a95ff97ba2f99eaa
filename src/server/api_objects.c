/* api_objects.c: the routes of indicators (CRUD, consume, attributes, sources, tags, scores,
 * related objects), the other object types by ThreatQ's collection names (list, get, create,
 * relate), sources, and the lookup tables. Reads run on the HTTP thread against rq->rd; every
 * write is one engine job in one transaction: the request's JSON is checked and turned into
 * the library's inputs here (a 400 names the field), the engine only writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "render.h"
#include "server_int.h"

/* ---- reads --------------------------------------------------------------------------------- */

/* The object type the route's collection segment names ("/api/reports/..." -> "report"). */
static const char *route_type(const tq_req *rq) {
  char coll[64];
  const char *p = rq->route->pattern + strlen("/api/");
  size_t n = strcspn(p, "/");
  if (n >= sizeof coll)
    return NULL;
  memcpy(coll, p, n);
  coll[n] = '\0';
  return tq_lib_object_type_by_collection(coll);
}

/* Reads object param of the given type on rq->rd; NULL after a 404 (unknown id, or an object
 * of another type) or another error. */
static tq_object *read_object(tq_req *rq, size_t param, const char *type, tq_resp *rs) {
  int64_t id = tq_req_id(rq, param, rs);
  if (id == 0)
    return NULL;
  tq_object *o = NULL;
  tq_err err;
  tq_err_clear(&err);
  if (tq_lib_object_get(rq->rd, id, &o, &err) != TQ_OK) {
    if (err.code == TQ_ENOTFOUND)
      tq_resp_fail(rs, 404, "no %s with id %lld", type, (long long)id);
    else
      tq_resp_err(rs, NULL, &err);
    return NULL;
  }
  if (strcmp(o->object_type, type) != 0) {
    tq_resp_fail(rs, 404, "no %s with id %lld", type, (long long)id);
    tq_object_free(o);
    return NULL;
  }
  return o;
}

static void api_object_get(tq_req *rq, tq_resp *rs) {
  unsigned with = 0;
  const char *type = route_type(rq);
  if (type == NULL)
    return tq_resp_fail(rs, 404, "no such collection");
  if (!tq_render_with(rq, &with, rs))
    return;
  tq_object *o = read_object(rq, 0, type, rs);
  if (o == NULL)
    return;
  tq_resp_data(rs, 200, tq_render_object(o, with));
  tq_object_free(o);
}

/* GET /api/indicator/types (?name=) */
static void api_indicator_types(tq_req *rq, tq_resp *rs) {
  const char *name = tq_req_arg(rq, "name");
  cJSON *arr = cJSON_CreateArray();
  const char *t;
  for (size_t i = 0; arr && (t = tq_lib_indicator_type_at(i)) != NULL; i++) {
    const char *klass = NULL;
    tq_lib_indicator_type_canon(t, &klass);
    if (name && strcasecmp(name, t) != 0)
      continue;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "id", (double)(i + 1));
    cJSON_AddStringToObject(j, "name", t);
    cJSON_AddStringToObject(j, "class", klass ? klass : "");
    cJSON_AddItemToArray(arr, j);
  }
  int n = cJSON_GetArraySize(arr);
  tq_resp_list(rs, arr, n, n, 0);
}

/* GET /api/indicator/statuses */
static void api_indicator_statuses(tq_req *rq, tq_resp *rs) {
  (void)rq;
  cJSON *arr = cJSON_CreateArray();
  for (int i = 1; arr && tq_lib_status_name(i); i++) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "id", i);
    cJSON_AddStringToObject(j, "name", tq_lib_status_name(i));
    cJSON_AddItemToArray(arr, j);
  }
  int n = cJSON_GetArraySize(arr);
  tq_resp_list(rs, arr, n, n, 0);
}

/* GET /api/objects */
static void api_object_types(tq_req *rq, tq_resp *rs) {
  (void)rq;
  cJSON *arr = cJSON_CreateArray();
  const char *name, *display, *coll, *plural;
  for (size_t i = 0; arr && tq_lib_object_type_info(i, &name, &display, &coll, &plural); i++) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "id", (double)(i + 1));
    cJSON_AddStringToObject(j, "code", name);
    cJSON_AddStringToObject(j, "name", name);
    cJSON_AddStringToObject(j, "display_name", display);
    char pl[96];
    snprintf(pl, sizeof pl, "%s%s", display,
             strcmp(name, "malware") == 0 ? "" : (display[strlen(display) - 1] == 'y' ? "" : "s"));
    if (display[strlen(display) - 1] == 'y' && strcmp(name, "malware") != 0)
      snprintf(pl, sizeof pl, "%.*sies", (int)strlen(display) - 1, display);
    cJSON_AddStringToObject(j, "display_name_plural", pl);
    cJSON_AddStringToObject(j, "collection", coll);
    cJSON_AddItemToArray(arr, j);
  }
  int n = cJSON_GetArraySize(arr);
  tq_resp_list(rs, arr, n, n, 0);
}

#define RO TQ_ROLE_READONLY
#define AN TQ_ROLE_ANALYST
#define AD TQ_ROLE_ADMIN

const tq_route tq_routes_objects[] = {
    {"GET", "/api/indicator/types", RO, api_indicator_types},
    {"GET", "/api/indicator/statuses", RO, api_indicator_statuses},
    {"GET", "/api/objects", RO, api_object_types},
    {"GET", "/api/indicators/{id}", RO, api_object_get},
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
