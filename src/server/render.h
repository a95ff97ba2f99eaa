/* render.h: objects as the API shows them, in ThreatQ's shape (render.c, owned by the objects
 * group; every group that answers objects uses these, so an indicator looks the same in
 * GET /api/indicators/{id}, a search result, a saved search page and an operation's target).
 *
 * An indicator: {"id", "value", "type_id", "status_id", "description", "score" (what counts),
 * "created_at", "updated_at", "published_at", "expires_at" (ThreatQ's "YYYY-MM-DD hh:mm:ss"
 * UTC, null when none), "class", and with= parts: "type": {"id","name","class"},
 * "status": {"id","name"}, "score": {"generated_score","manual_score","score"} (replacing the
 * plain number), "sources": [{"id","name","tlp"...}], "attributes": [{"id","name","value",
 * "sources"}], "tags": [{"name"}]}. Other objects carry "value" as their name/title field
 * ("name" for adversaries and malware, "title" for events and reports) and their type. */
#ifndef TQ_SERVER_RENDER_H
#define TQ_SERVER_RENDER_H

#include <cjson/cJSON.h>

#include "server_int.h"
#include "tqhost/library.h"

enum {
  TQ_WITH_ATTRIBUTES = 1 << 0,
  TQ_WITH_SOURCES = 1 << 1,
  TQ_WITH_SCORE = 1 << 2,
  TQ_WITH_TAGS = 1 << 3,
  TQ_WITH_TYPE = 1 << 4,
  TQ_WITH_STATUS = 1 << 5,
};

/* The request's ?with=a,b,c (ThreatQ's names: attributes, sources, score, tags, type, status);
 * absent: 0. An unknown name: 400 naming "with", returns 0 after filling rs; else 1. */
int tq_render_with(const tq_req *rq, unsigned *with, tq_resp *rs);
/* The parts of an object (TQ_LIB_PART_*) tq_render_object shows for with: what
 * tq_lib_object_get_parts must read, no more. */
unsigned tq_render_parts(unsigned with);

/* One object as JSON (owned by the caller). o must come from tq_lib_object_get(_parts) with
 * tq_render_parts(with) when with asks for attributes, sources or tags (tq_lib_object_head has
 * none of them). */
cJSON *tq_render_object(const tq_object *o, unsigned with);

/* One attribute row of o (o may be NULL): {"id","name","value","indicator_id"|"object_id",
 * "sources": [{"id","name","tlp_id","tlp_name"}]} (owned by the caller). */
cJSON *tq_render_attribute(const tq_object *o, const tq_attr *a);

#endif
