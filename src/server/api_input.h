/* api_input.h: the parsers that turn a request's JSON body into library inputs (api_objects.c,
 * api_runs.c), reachable without the HTTP server so that tests/fuzz/fuzz_api_input.c can feed
 * them any JSON. Internal to the server part. Each returns 1, or 0 after filling rs with a 400
 * {"data": {"errors": {FIELD: [message]}}} naming the field. The inputs filled point into the
 * JSON given (borrowed: keep it alive while they are used) unless said otherwise. */
#ifndef TQ_SERVER_API_INPUT_H
#define TQ_SERVER_API_INPUT_H

#include "server_int.h"
#include "tqhost/feed.h"
#include "tqhost/workflow.h"

/* One object of a create/consume body: in points into the JSON; the three arrays are owned
 * (tq_api_obj_in_free frees them, not the strings). */
typedef struct tq_api_obj_in {
  tq_object_in in;
  const char **srcs; /* n_sources + 1 slots: the caller may add its own source */
  tq_attr_in *attrs;
  const char **tags;
} tq_api_obj_in;
void tq_api_obj_in_free(tq_api_obj_in *o);

/* POST /api/{collection}: one object j of the object type (static name: "indicator",
 * "adversary", ...); idx >= 0 names "item idx" of a list body in the message. Free o with
 * tq_api_obj_in_free whatever the answer. */
int tq_api_parse_object(const cJSON *j, const char *type, long idx, tq_api_obj_in *o, tq_resp *rs);
/* POST .../attributes: the array list of {name, value, sources?/tlp?} into out (room for
 * cJSON_GetArraySize(list) entries, owned by the caller), *n of them. */
int tq_api_parse_attrs(const cJSON *list, tq_attr_in *out, size_t *n, tq_resp *rs);
/* PUT /api/indicators/{id}/attributes/{aid}: a new value, source and tlp (NULL, NULL, -1:
 * unchanged); at least one is given. */
int tq_api_attr_edit(const cJSON *body, const char **value, const char **source, int *tlp,
                     tq_resp *rs);
/* POST /api/indicators/{id}/sources (sources: 1, each may give a "tlp", the most restrictive
 * into *tlp, -1 for none) and .../tags (0): body a name, {"name"} or a list of them, into
 * names (room for cJSON_GetArraySize(body) entries, or 1 when body is no list), *n of them. */
int tq_api_names(const cJSON *body, int sources, const char **names, size_t *n, int *tlp,
                 tq_resp *rs);
/* PUT /api/{collection}/{id}: the object body into e (initialised here). */
int tq_api_object_edit(const cJSON *body, const char *type, tq_object_edit *e, tq_resp *rs);
/* POST /api/sources, PUT /api/sources/{id}: the settings of a source body into o (initialised
 * here); the name is not checked here. */
int tq_api_source_opts(const cJSON *body, tq_source_opts *o, tq_resp *rs);
/* POST /api/workflows (creating) and PUT /api/workflows/{id}: body over w's current members
 * (w owns what it holds: copies, freed by tq_workflow_free); *with_settings when the body
 * gives settings (or creates). */
int tq_api_workflow_from_body(const cJSON *body, int creating, tq_workflow *w, int *with_settings,
                              tq_resp *rs);
/* POST /api/feeds: {"name", "preset"} and/or {"url", "collection", "source"}, options, into
 * f and src (initialised here; src->kind "feed"; copies, nothing borrowed but src->kind,
 * static). Whether the feed exists already is the caller's check. */
int tq_api_feed_from_body(const cJSON *body, tq_feed *f, tq_source_opts *src, tq_resp *rs);

#endif
