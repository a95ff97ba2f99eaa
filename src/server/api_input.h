/* api_input.h: the parsers that turn a request's JSON body into library inputs (api_objects.c,
 * api_runs.c), reachable without the HTTP server so that tests/fuzz/fuzz_api_input.c can feed
 * them any JSON. Internal to the server part. Each returns 1, or 0 after filling rs with a 400
 * {"data": {"errors": {FIELD: [message]}}} naming the field. The inputs filled point into the
 * JSON given (borrowed: keep it alive while they are used) unless said otherwise. */
#ifndef TQ_SERVER_API_INPUT_H
#define TQ_SERVER_API_INPUT_H

#include "runs_int.h"
#include "server_int.h"
#include "tqhost/feed.h"
#include "tqhost/plugin.h"
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

/* ---- bodies parsed for one handler each (fuzzapi) ------------------------------------------ */

/* PUT /api/indicators/{id}/scores: the object body {"manual_score": 0..10 | "7" | null} into
 * *manual (0..10, or -1 for null: the generated score). */
int tq_api_score(const cJSON *body, int *manual, tq_resp *rs);
/* POST /api/{collection}/{id}/{other}: {"id": n} or a list of them into ids (room for
 * cJSON_GetArraySize(body) entries, or 1 when body is no list; owned by the caller), *n of
 * them, each 1..2^53-1. */
int tq_api_relate_ids(const cJSON *body, int64_t *ids, size_t *n, tq_resp *rs);
/* POST /api/actions/{name}/runs: the body into q (zeroed by the caller; q owns the copies it
 * gets: values, settings; tq_runs_req_free frees them, also after a refusal) and *coll (the
 * collection's name, borrowed from body, NULL when values are given; whether it exists is the
 * caller's check). Settings are checked against fields (n_fields, borrowed: the action's). */
int tq_api_run_start(const cJSON *body, const tq_plugin_field *fields, size_t n_fields,
                     tq_runs_start_req *q, const char **coll, tq_resp *rs);
/* POST /api/plugins/{name}/operations/{op}/run: an object_id (0 when none), or a value (with
 * an optional type), and apply. *value and *type are malloc'd copies (NULL when absent) that
 * the caller frees, also after a refusal. */
typedef struct tq_api_op_run_in {
  int64_t object_id;
  char *value, *type;
  int apply;
} tq_api_op_run_in;
int tq_api_op_run(const cJSON *body, tq_api_op_run_in *in, tq_resp *rs);
/* POST /api/plugins/{name}/operations/{op}/apply: {"run_id"} into *run_id (borrowed from
 * body); a refusal is a 400 naming the field, or a 404 when it is no run_id at all. */
int tq_api_apply_run_id(const cJSON *body, const char **run_id, tq_resp *rs);
/* PUT /api/plugins/{name}/config: the object body of FIELD: value (each a config field of p,
 * once) into *kvs (malloc'd: keys and normalised values malloc'd too; free with
 * tq_api_kvs_free, also after a refusal), *n of them. */
int tq_api_plugin_config(const cJSON *body, const tq_plugin *p, tq_lua_kv **kvs, size_t *n,
                         tq_resp *rs);
/* Frees kvs[0..n) (values wiped first: they may be secrets) and kvs. */
void tq_api_kvs_free(tq_lua_kv *kvs, size_t n);
/* POST /api/search/query (creating: {"name", "criteria", "filters"} or {"name", "api_query"})
 * and PUT /api/search/query/{id} (any of name, criteria with filters, api_query): *name (a
 * malloc'd copy, NULL when not given), *doc (the criteria's canonical document, malloc'd, NULL
 * when a change keeps them) and hash (room for 33: 32 hex digits of the canonical document, ""
 * without). The caller frees *name and *doc, also after a refusal. */
int tq_api_saved_search(const cJSON *body, int creating, char **name, char **doc, char hash[33],
                        tq_resp *rs);

#endif
