/* api_objects.c: the routes of indicators (CRUD, consume, attributes, sources, tags, scores,
 * related objects), the other object types by ThreatQ's collection names and plural spellings
 * (list, get, create, change, delete, related, relate), sources, and the lookup tables. Reads run
 * on the HTTP thread against rq->rd; every write is one engine job in one transaction: the
 * request's JSON is checked and turned into the library's inputs here (a 400 names the field), the
 * engine only writes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_input.h"
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

/* Reads object param of the given type with the parts given (TQ_LIB_PART_*) on rq->rd; NULL
 * after a 404 (unknown id, or an object of another type) or another error. */
static tq_object *read_object(tq_req *rq, size_t param, const char *type, unsigned parts,
                              tq_resp *rs) {
  int64_t id = tq_req_id(rq, param, rs);
  if (id == 0)
    return NULL;
  tq_object *o = NULL;
  tq_err err;
  tq_err_clear(&err);
  if (tq_lib_object_get_parts(rq->rd, id, parts, &o, &err) != TQ_OK) {
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
  tq_object *o = read_object(rq, 0, type, tq_render_parts(with), rs);
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

/* GET /api/{collection}?value=&limit=&offset= (not indicators: their list is the search
 * group's). */
static void api_object_list(tq_req *rq, tq_resp *rs) {
  const char *type = route_type(rq);
  int64_t limit = 0, offset = 0, total = 0;
  unsigned with = 0;
  if (type == NULL)
    return tq_resp_fail(rs, 404, "no such collection");
  if (!tq_req_page(rq, 100, 1000, &limit, &offset, rs) || !tq_render_with(rq, &with, rs))
    return;
  const char *value = tq_req_arg(rq, "value");
  if (value == NULL)
    value = tq_req_arg(rq, "name");
  if (value == NULL)
    value = tq_req_arg(rq, "title");
  int64_t *ids = NULL;
  size_t n = 0;
  tq_err err;
  tq_err_clear(&err);
  if (tq_lib_object_page(rq->rd, type, value, limit, offset, &ids, &n, &total, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr && i < n; i++) {
    tq_object *o = NULL;
    if ((with & (TQ_WITH_ATTRIBUTES | TQ_WITH_SOURCES | TQ_WITH_TAGS))
            ? tq_lib_object_get_parts(rq->rd, ids[i], tq_render_parts(with), &o, &err) != TQ_OK
            : tq_lib_object_head(rq->rd, ids[i], &o, &err) != TQ_OK)
      continue; /* deleted meanwhile */
    cJSON_AddItemToArray(arr, tq_render_object(o, with));
    tq_object_free(o);
  }
  free(ids);
  tq_resp_list(rs, arr, total, limit, offset);
}

/* GET /api/indicators/{id}/attributes */
static void api_attrs_get(tq_req *rq, tq_resp *rs) {
  tq_object *o = read_object(rq, 0, "indicator", TQ_LIB_PART_ATTRS, rs);
  if (o == NULL)
    return;
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr && i < o->n_attrs; i++)
    cJSON_AddItemToArray(arr, tq_render_attribute(o, &o->attrs[i]));
  tq_resp_list(rs, arr, (int64_t)o->n_attrs, (int64_t)o->n_attrs, 0);
  tq_object_free(o);
}

/* GET /api/indicators/{id}/sources and /tags: the with= part alone. */
static void part_list(tq_req *rq, tq_resp *rs, unsigned part, const char *key) {
  tq_object *o = read_object(rq, 0, "indicator", tq_render_parts(part), rs);
  if (o == NULL)
    return;
  cJSON *j = tq_render_object(o, part);
  cJSON *arr = j ? cJSON_DetachItemFromObjectCaseSensitive(j, key) : NULL;
  cJSON_Delete(j);
  int n = cJSON_GetArraySize(arr);
  tq_resp_list(rs, arr, n, n, 0);
  tq_object_free(o);
}
static void api_sources_get(tq_req *rq, tq_resp *rs) {
  part_list(rq, rs, TQ_WITH_SOURCES, "sources");
}
static void api_tags_get(tq_req *rq, tq_resp *rs) { part_list(rq, rs, TQ_WITH_TAGS, "tags"); }

static int link_cmp(const void *a, const void *b) {
  const tq_link *x = *(const tq_link *const *)a, *y = *(const tq_link *const *)b;
  if (x->other_id != y->other_id)
    return x->other_id < y->other_id ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* The related objects of o of type other, one per object (whatever the number of links
 * between them) in id order, each with its "pivot" (the first link), a page of them. */
static cJSON *related_json(tq_lib *lib, const tq_object *o, const char *other, int64_t limit,
                           int64_t offset, int64_t *total) {
  cJSON *arr = cJSON_CreateArray();
  const tq_link **v = calloc(o->n_links + 1, sizeof *v);
  size_t n = 0;
  int64_t shown = 0;
  *total = 0;
  if (arr == NULL || v == NULL) {
    free(v);
    return arr;
  }
  for (size_t i = 0; i < o->n_links; i++)
    if (strcmp(o->links[i].other_type, other) == 0)
      v[n++] = &o->links[i];
  qsort(v, n, sizeof *v, link_cmp);
  for (size_t i = 0; i < n; i++) {
    const tq_link *l = v[i];
    if (i > 0 && v[i - 1]->other_id == l->other_id)
      continue;
    if ((*total)++ < offset || shown >= limit)
      continue;
    tq_object *r = NULL;
    tq_err err;
    if (tq_lib_object_head(lib, l->other_id, &r, &err) != TQ_OK)
      continue;
    shown++;
    cJSON *j = tq_render_object(r, 0);
    cJSON *pivot = cJSON_AddObjectToObject(j, "pivot");
    cJSON_AddNumberToObject(pivot, "id", (double)l->id);
    if (l->link_type)
      cJSON_AddStringToObject(pivot, "type", l->link_type);
    cJSON_AddStringToObject(pivot, "source", l->source ? l->source : "");
    cJSON_AddItemToArray(arr, j);
    tq_object_free(r);
  }
  free(v);
  return arr;
}

/* GET /api/{collection}/{id}/{other} */
static void api_related_get(tq_req *rq, tq_resp *rs) {
  const char *type = route_type(rq);
  const char *other = rq->n_params > 1 ? tq_lib_object_type_by_collection(rq->params[1]) : NULL;
  int64_t limit = 0, offset = 0, total = 0;
  if (type == NULL)
    return tq_resp_fail(rs, 404, "no such collection");
  if (other == NULL) {
    char *esc = tq_str_escape_dup(rq->n_params > 1 ? rq->params[1] : "", TQ_ESC_QUOTE);
    tq_resp_fail(rs, 404, "'%.64s' is not a collection of related objects", esc ? esc : "");
    free(esc);
    return;
  }
  if (!tq_req_page(rq, 100, 1000, &limit, &offset, rs))
    return;
  tq_object *o = read_object(rq, 0, type, TQ_LIB_PART_LINKS, rs);
  if (o == NULL)
    return;
  cJSON *arr = related_json(rq->rd, o, other, limit, offset, &total);
  tq_object_free(o);
  tq_resp_list(rs, arr, total, limit, offset);
}

/* ---- sources (read) ----------------------------------------------------------------------- */

static const char *expire_text(int days) {
  return days == TQ_EXPIRE_NEVER ? "never" : days == TQ_EXPIRE_NONE ? "none" : NULL;
}

static cJSON *source_row_json(const tq_source *s) {
  cJSON *j = cJSON_CreateObject();
  if (j == NULL)
    return NULL;
  cJSON_AddNumberToObject(j, "id", (double)s->id);
  cJSON_AddStringToObject(j, "name", s->name);
  cJSON_AddStringToObject(j, "source_type", s->kind);
  if (s->tlp > 0) {
    cJSON_AddNumberToObject(j, "tlp_id", s->tlp);
    cJSON_AddStringToObject(j, "tlp_name", tq_lib_tlp_name(s->tlp));
  } else {
    cJSON_AddNullToObject(j, "tlp_id");
    cJSON_AddNullToObject(j, "tlp_name");
  }
  cJSON_AddNumberToObject(j, "score", s->score);
  if (expire_text(s->expire_days))
    cJSON_AddStringToObject(j, "expire_days", expire_text(s->expire_days));
  else
    cJSON_AddNumberToObject(j, "expire_days", s->expire_days);
  cJSON_AddNumberToObject(j, "revoked_decrease", s->revoked_decrease);
  cJSON_AddNumberToObject(j, "objects", (double)s->objects);
  return j;
}

/* GET /api/sources (?name=, '%' a wildcard as ThreatQ's) */
static int name_matches(const char *p, const char *s) {
  const char *star = NULL, *ss = NULL; /* greedy with one backtrack point: O(len p * len s) */
  while (*s) {
    if (*p == '%') {
      star = p++;
      ss = s;
    } else if (*p && *p == *s) {
      p++;
      s++;
    } else if (star) {
      p = star + 1;
      s = ++ss;
    } else {
      return 0;
    }
  }
  while (*p == '%')
    p++;
  return *p == '\0';
}

static void api_sources_list(tq_req *rq, tq_resp *rs) {
  int64_t limit = 0, offset = 0;
  if (!tq_req_page(rq, 100, 1000, &limit, &offset, rs))
    return;
  const char *name = tq_req_arg(rq, "name");
  if (name && strlen(name) > TQ_LIB_MAX_NAME)
    return tq_resp_invalid(rs, "name", "longer than %d bytes", TQ_LIB_MAX_NAME);
  tq_source *all = NULL;
  size_t n = 0;
  tq_err err;
  tq_err_clear(&err);
  if (tq_lib_source_list(rq->rd, &all, &n, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  cJSON *arr = cJSON_CreateArray();
  int64_t total = 0, shown = 0;
  for (size_t i = 0; arr && i < n; i++) {
    if (name && !name_matches(name, all[i].name))
      continue;
    if (total++ >= offset && shown < limit) {
      cJSON_AddItemToArray(arr, source_row_json(&all[i]));
      shown++;
    }
  }
  free(all);
  tq_resp_list(rs, arr, total, limit, offset);
}

/* ---- request bodies -> library inputs ------------------------------------------------------
 * Checked on the HTTP thread; the inputs point into the request's JSON, which the job keeps.
 * A 400 names the body's field; in a list body the message names the item. */

typedef tq_api_obj_in in_obj; /* api_input.h */

void tq_api_obj_in_free(in_obj *o) {
  free(o->srcs);
  free(o->attrs);
  free(o->tags);
}

/* "item 3: " in a list body, "" for one object. */
typedef struct where {
  char at[32];
} where;
static where item_at(long idx) {
  where w = {{0}};
  if (idx >= 0)
    snprintf(w.at, sizeof w.at, "item %ld: ", idx);
  return w;
}

/* Whether v is a JSON number that is a whole number in [lo, hi] (into *out); no cast before
 * the bounds are known. */
static int whole_in(const cJSON *v, int lo, int hi, int *out) {
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
      v->valuedouble != floor(v->valuedouble))
    return 0;
  *out = (int)v->valuedouble;
  return 1;
}

/* A name given as "x" or {"name": "x"}; NULL after a 400. */
static const char *name_of(const cJSON *v, const char *field, const char *what, const where *w,
                           tq_resp *rs) {
  if (cJSON_IsObject(v))
    v = cJSON_GetObjectItemCaseSensitive(v, "name");
  if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
    tq_resp_invalid(rs, field, "%s%s must be a non-empty string or {\"name\": string}", w->at,
                    what);
    return NULL;
  }
  return v->valuestring;
}

/* A TLP from "tlp" (name or id) or "tlp_id" of a source object; 0 when none; -1 after a 400. */
static int tlp_of(const cJSON *src, const char *field, const where *w, tq_resp *rs) {
  if (!cJSON_IsObject(src))
    return 0;
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(src, "tlp");
  if (t == NULL || cJSON_IsNull(t))
    t = cJSON_GetObjectItemCaseSensitive(src, "tlp_id");
  if (t == NULL || cJSON_IsNull(t))
    return 0;
  if (cJSON_IsObject(t)) /* {"name": "AMBER"} */
    t = cJSON_GetObjectItemCaseSensitive(t, "name");
  int tlp = -1;
  if (cJSON_IsString(t))
    tlp = tq_lib_tlp_from_name(t->valuestring);
  else if (!whole_in(t, 1, 4, &tlp))
    tlp = -1;
  if (tlp < 0)
    tq_resp_invalid(rs, field, "%stlp must be red, amber, green, white or 1..4", w->at);
  return tlp;
}

/* A JSON array's elements (v may be one element: taken as a list of one); NULL v: none. */
static int as_list(const cJSON *v, const char *field, const where *w, tq_resp *rs) {
  if (v == NULL || cJSON_IsNull(v) || cJSON_IsArray(v))
    return 1;
  tq_resp_invalid(rs, field, "%smust be a list", w->at);
  return 0;
}

/* Sources of a body: names into out (n), the most restrictive TLP given into *tlp. */
static int parse_sources(const cJSON *v, const char **out, size_t *n, int *tlp, const where *w,
                         tq_resp *rs) {
  const cJSON *s;
  *n = 0;
  *tlp = 0;
  cJSON_ArrayForEach(s, v) {
    const char *name = name_of(s, "sources", "each source", w, rs);
    int t = name ? tlp_of(s, "sources", w, rs) : -1;
    if (name == NULL || t < 0)
      return 0;
    if (t > 0 && (*tlp == 0 || t < *tlp))
      *tlp = t;
    out[(*n)++] = name;
  }
  return 1;
}

static int parse_attrs(const cJSON *v, tq_attr_in *out, size_t *n, const where *w, tq_resp *rs) {
  const cJSON *a;
  *n = 0;
  cJSON_ArrayForEach(a, v) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(a, "name");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(a, "value");
    if (!cJSON_IsObject(a) || !cJSON_IsString(name) || name->valuestring[0] == '\0' ||
        !cJSON_IsString(value)) {
      tq_resp_invalid(rs, "attributes",
                      "%seach attribute must be {\"name\": string, \"value\": string}", w->at);
      return 0;
    }
    tq_attr_in *o = &out[(*n)++];
    memset(o, 0, sizeof *o);
    o->name = name->valuestring;
    o->value = value->valuestring;
    const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(a, "sources");
    if (!as_list(srcs, "attributes", w, rs))
      return 0;
    const cJSON *s0 = cJSON_GetArraySize(srcs) > 0 ? cJSON_GetArrayItem(srcs, 0) : NULL;
    if (s0 && (o->source = name_of(s0, "attributes", "an attribute's source", w, rs)) == NULL)
      return 0;
    int tlp = s0 ? tlp_of(s0, "attributes", w, rs) : tlp_of(a, "attributes", w, rs);
    if (tlp < 0)
      return 0;
    o->tlp = tlp;
  }
  return 1;
}

int tq_api_parse_attrs(const cJSON *list, tq_attr_in *out, size_t *n, tq_resp *rs) {
  where w = item_at(-1);
  return parse_attrs(list, out, n, &w, rs);
}

static int parse_tags(const cJSON *v, const char **out, size_t *n, const where *w, tq_resp *rs) {
  const cJSON *t;
  *n = 0;
  cJSON_ArrayForEach(t, v) {
    if ((out[*n] = name_of(t, "tags", "each tag", w, rs)) == NULL)
      return 0;
    (*n)++;
  }
  return 1;
}

/* An indicator type from "type" (name or {"name"}) or "type_id"; NULL when none; *bad after
 * a 400. */
static const char *parse_itype(const cJSON *j, const where *w, tq_resp *rs, int *bad) {
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
  const cJSON *tid = cJSON_GetObjectItemCaseSensitive(j, "type_id");
  *bad = 0;
  if (t && !cJSON_IsNull(t)) {
    const char *name = name_of(t, "type", "type", w, rs);
    const char *canon = name ? tq_lib_indicator_type_canon(name, NULL) : NULL;
    if (name && canon == NULL) {
      char *esc = tq_str_escape_dup(name, TQ_ESC_QUOTE);
      tq_resp_invalid(rs, "type", "%s'%.64s' is not an indicator type (GET /api/indicator/types)",
                      w->at, esc ? esc : "");
      free(esc);
    }
    *bad = canon == NULL;
    return canon;
  }
  if (tid && !cJSON_IsNull(tid)) {
    const char *name = NULL;
    int n = 0;
    if (whole_in(tid, 1, 1000, &n))
      name = tq_lib_indicator_type_at((size_t)n - 1);
    if (name == NULL) {
      tq_resp_invalid(rs, "type_id", "%smust be the id of an indicator type", w->at);
      *bad = 1;
    }
    return name;
  }
  return NULL;
}

/* A status from "status" (name, {"name"} or {"id"}) or "status_id"; NULL when none. */
static const char *parse_status(const cJSON *j, const where *w, tq_resp *rs, int *bad) {
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "status");
  const cJSON *sid = cJSON_GetObjectItemCaseSensitive(j, "status_id");
  *bad = 0;
  if (cJSON_IsObject(s) && cJSON_GetObjectItemCaseSensitive(s, "id")) {
    sid = cJSON_GetObjectItemCaseSensitive(s, "id");
    s = NULL;
  }
  if (s && !cJSON_IsNull(s)) {
    const char *name = name_of(s, "status", "status", w, rs);
    int id = name ? tq_lib_status_from_name(name) : 0;
    if (name && id == 0)
      tq_resp_invalid(rs, "status", "%snot one of Active, Expired, Indirect, Review, Whitelisted",
                      w->at);
    *bad = id == 0;
    return id ? tq_lib_status_name(id) : NULL;
  }
  if (sid && !cJSON_IsNull(sid)) {
    const char *name = NULL;
    int n = 0;
    if (whole_in(sid, 1, 1000, &n))
      name = tq_lib_status_name(n);
    if (name == NULL) {
      tq_resp_invalid(rs, "status_id", "%smust be a status id 1..5", w->at);
      *bad = 1;
    }
    return name;
  }
  return NULL;
}

/* An optional string member; *bad after a 400. */
static const char *opt_str(const cJSON *j, const char *key, const where *w, tq_resp *rs, int *bad) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  *bad = 0;
  if (v == NULL || cJSON_IsNull(v))
    return NULL;
  if (!cJSON_IsString(v)) {
    tq_resp_invalid(rs, key, "%smust be a string", w->at);
    *bad = 1;
    return NULL;
  }
  return v->valuestring;
}

/* One object of a create/consume body into o (type: the route's object type). */
int tq_api_parse_object(const cJSON *j, const char *type, long idx, in_obj *o, tq_resp *rs) {
  where w = item_at(idx);
  memset(o, 0, sizeof *o);
  if (!cJSON_IsObject(j)) {
    tq_resp_invalid(rs, "request", "%san object is expected", w.at);
    return 0;
  }
  int indicator = strcmp(type, "indicator") == 0, bad = 0;
  o->in.object_type = type;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
  const char *alt = strcmp(type, "event") == 0 || strcmp(type, "report") == 0 ? "title" : "name";
  if (v == NULL && !indicator)
    v = cJSON_GetObjectItemCaseSensitive(j, alt);
  if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
    tq_resp_invalid(rs, v == NULL && !indicator ? alt : "value", "%smust be a non-empty string",
                    w.at);
    return 0;
  }
  o->in.value = v->valuestring;
  if (indicator) {
    o->in.indicator_type = parse_itype(j, &w, rs, &bad);
    if (bad)
      return 0;
    o->in.status = parse_status(j, &w, rs, &bad);
    if (bad)
      return 0;
  }
  o->in.description = opt_str(j, "description", &w, rs, &bad);
  if (bad)
    return 0;
  const char *pub = opt_str(j, "published_at", &w, rs, &bad);
  if (bad)
    return 0;
  tq_err err;
  if (pub && tq_time_parse(pub, &o->in.published_at, NULL, &err) != TQ_OK) {
    tq_resp_invalid(rs, "published_at", "%snot a date (YYYY-MM-DD hh:mm:ss)", w.at);
    return 0;
  }
  const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(j, "sources");
  const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(j, "attributes");
  const cJSON *tags = cJSON_GetObjectItemCaseSensitive(j, "tags");
  if (!as_list(srcs, "sources", &w, rs) || !as_list(attrs, "attributes", &w, rs) ||
      !as_list(tags, "tags", &w, rs))
    return 0;
  size_t ns = (size_t)cJSON_GetArraySize(srcs), na = (size_t)cJSON_GetArraySize(attrs),
         nt = (size_t)cJSON_GetArraySize(tags);
  o->srcs = calloc(ns + 1, sizeof *o->srcs);
  o->attrs = calloc(na + 1, sizeof *o->attrs);
  o->tags = calloc(nt + 1, sizeof *o->tags);
  if (o->srcs == NULL || o->attrs == NULL || o->tags == NULL) {
    tq_resp_fail(rs, 500, "out of memory");
    return 0;
  }
  int tlp = 0;
  if (!parse_sources(srcs, o->srcs, &o->in.n_sources, &tlp, &w, rs) ||
      !parse_attrs(attrs, o->attrs, &o->in.n_attrs, &w, rs) ||
      !parse_tags(tags, o->tags, &o->in.n_tags, &w, rs))
    return 0;
  o->in.sources = o->srcs;
  o->in.attrs = o->attrs;
  o->in.tags = o->tags;
  o->in.source_tlp = tlp;
  return 1;
}

/* ---- engine jobs ------------------------------------------------------------------------------
 */

typedef enum job_kind {
  J_CREATE,
  J_CONSUME,
  J_EDIT,
  J_DELETE,
  J_ATTR_ADD,
  J_ATTR_EDIT,
  J_ATTR_DEL,
  J_SRC_ADD,
  J_SRC_DEL,
  J_TAG_ADD,
  J_TAG_DEL,
  J_SCORE,
  J_RELATE,
  J_SOURCE_ADD,
  J_SOURCE_PUT,
} job_kind;

typedef struct obj_job {
  job_kind kind;
  const char *type;  /* the route's object type (static) */
  const char *other; /* J_RELATE: the other collection's type (static) */
  cJSON *body;       /* the request's JSON: the inputs below point into it */
  in_obj *objs;      /* J_CREATE, J_CONSUME */
  size_t n;
  int list_body; /* the body was a list (answer a list) */
  int64_t id, id2;
  int64_t *ids; /* J_RELATE: n ids */
  tq_attr_in *attrs;
  const char **names; /* J_SRC_ADD, J_TAG_ADD: n names */
  int tlp;            /* J_SRC_ADD, J_ATTR_EDIT (-1: unchanged) */
  const char *value, *source;
  tq_object_edit edit;
  int manual; /* J_SCORE: -1 back to generated */
  char src_name[TQ_LIB_MAX_NAME + 1];
  tq_source_opts sopts;
  char who[128];
  char addr[64];
} obj_job;

static void job_free(void *p) {
  obj_job *j = p;
  if (j == NULL)
    return;
  for (size_t i = 0; j->objs && i < j->n; i++)
    tq_api_obj_in_free(&j->objs[i]);
  free(j->objs);
  free(j->ids);
  free(j->attrs);
  free(j->names);
  cJSON_Delete(j->body);
  free(j);
}

static obj_job *job_new(const tq_req *rq, job_kind kind, const char *type, tq_resp *rs) {
  obj_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    tq_resp_fail(rs, 500, "out of memory");
    return NULL;
  }
  j->kind = kind;
  j->type = type;
  j->tlp = -1;
  tq_strlcpy(j->who, rq->who.name[0] ? rq->who.name : "Analyst", sizeof j->who);
  tq_strlcpy(j->addr, rq->remote ? rq->remote : "", sizeof j->addr);
  return j;
}

/* A write's error: rolled back already; a bad value is the request's fault (400). */
static void write_failed(tq_resp *rs, const char *field, const tq_err *err) {
  tq_resp_err(rs, field, err);
}

/* The object id of type on the writer, or a 404. */
static int object_is(tq_lib *lib, int64_t id, const char *type, tq_resp *rs) {
  tq_object *o = NULL;
  tq_err err;
  tq_err_clear(&err);
  if (tq_lib_object_head(lib, id, &o, &err) != TQ_OK) {
    if (err.code == TQ_ENOTFOUND)
      tq_resp_fail(rs, 404, "no %s with id %lld", type, (long long)id);
    else
      tq_resp_err(rs, NULL, &err);
    return 0;
  }
  int same = strcmp(o->object_type, type) == 0;
  tq_object_free(o);
  if (!same)
    tq_resp_fail(rs, 404, "no %s with id %lld", type, (long long)id);
  return same;
}

/* The object as answered after a write (read back on the writer). */
static cJSON *written(tq_lib *lib, int64_t id, unsigned with) {
  tq_object *o = NULL;
  tq_err err;
  if (tq_lib_object_get(lib, id, &o, &err) != TQ_OK)
    return NULL;
  cJSON *j = tq_render_object(o, with);
  tq_object_free(o);
  return j;
}

#define ALL_WITH                                                                                   \
  (TQ_WITH_ATTRIBUTES | TQ_WITH_SOURCES | TQ_WITH_SCORE | TQ_WITH_TAGS | TQ_WITH_TYPE |            \
   TQ_WITH_STATUS)

/* s as a JSON string into b (the library's texts are valid UTF-8). */
static void json_str(tq_buf *b, const char *s) {
  tq_buf_addc(b, '"');
  for (const char *run = s;; s++) {
    unsigned char c = (unsigned char)*s;
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    tq_buf_add(b, run, (size_t)(s - run));
    if (c == '\0')
      break;
    if (c == '"' || c == '\\') {
      tq_buf_addc(b, '\\');
      tq_buf_addc(b, (char)c);
    } else {
      tq_buf_printf(b, "\\u%04x", c);
    }
    run = s + 1;
  }
  tq_buf_addc(b, '"');
}

/* The answer of a consume: {"data": [{"id", "value" (canonical), "created"}...]} in the order
 * given, written as text (a thousand objects a request: no JSON tree). */
static void consume_answer(const int64_t *ids, char *const *values, const char *created, size_t n,
                           tq_resp *rs) {
  tq_buf b;
  tq_buf_init(&b, 0);
  tq_buf_adds(&b, "{\"data\":[");
  for (size_t i = 0; i < n; i++) {
    tq_buf_printf(&b, "%s{\"id\":%lld,\"value\":", i ? "," : "", (long long)ids[i]);
    json_str(&b, values[i] ? values[i] : "");
    tq_buf_printf(&b, ",\"created\":%s}", created[i] ? "true" : "false");
  }
  tq_buf_adds(&b, "]}");
  size_t len = b.len;
  char *text = tq_buf_take(&b);
  if (text == NULL)
    return tq_resp_fail(rs, 500, "out of memory");
  tq_resp_raw(rs, 200, "application/json", text, len);
  free(text);
}

/* The body field a library refusal is about, from the start of its message. */
static const char *refused_field(const char *msg) {
  static const char *const map[][2] = {
      {"tag", "tags"},       {"empty tag", "tags"},          {"attribute", "attributes"},
      {"source", "sources"}, {"description", "description"}, {"status", "status"},
      {"'", "value"},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strncmp(msg, map[i][0], strlen(map[i][0])) == 0)
      return map[i][1];
  return "value";
}

/* J_CREATE and J_CONSUME: every object in one transaction through the library's batched
 * writer; one refused object refuses the request (400 naming it) and nothing is written. */
static void run_put(tq_lib *lib, obj_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  tq_lib_writer *w = NULL;
  int64_t *ids = calloc(j->n + 1, sizeof *ids);
  char *created = calloc(j->n + 1, 1);
  char **values = j->kind == J_CONSUME ? calloc(j->n + 1, sizeof *values) : NULL;
  tq_code rc = TQ_OK;
  if (ids == NULL || created == NULL || (j->kind == J_CONSUME && values == NULL) ||
      tq_lib_writer_open(lib, 0, &w, &err) != TQ_OK) {
    tq_resp_fail(rs, 500, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < j->n; i++) {
    int c = 0;
    rc = tq_lib_writer_put(w, &j->objs[i].in, &ids[i], &c, values ? &values[i] : NULL, &err);
    created[i] = (char)c;
    if (rc != TQ_OK) {
      tq_lib_writer_close(w, 0, NULL);
      if (rc == TQ_EINVAL && j->list_body)
        tq_resp_invalid(rs, "request", "item %zu: %s", i, err.msg);
      else if (rc == TQ_EINVAL)
        tq_resp_invalid(rs, refused_field(err.msg), "%s", err.msg);
      else
        write_failed(rs, NULL, &err);
      goto out;
    }
  }
  if ((rc = tq_lib_writer_close(w, 1, &err)) != TQ_OK) {
    write_failed(rs, NULL, &err);
    goto out;
  }
  if (j->kind == J_CONSUME) {
    consume_answer(ids, values, created, j->n, rs);
    goto out;
  }
  cJSON *arr = cJSON_CreateArray();
  {
    for (size_t i = 0; arr && i < j->n; i++)
      cJSON_AddItemToArray(arr, written(lib, ids[i], ALL_WITH));
    /* ThreatQ answers a list for indicators, one object for the other types */
    if (!j->list_body && strcmp(j->type, "indicator") != 0) {
      cJSON *one = cJSON_DetachItemFromArray(arr, 0);
      cJSON_Delete(arr);
      arr = one;
    }
    tq_resp_data(rs, 201, arr);
  }
out:
  for (size_t i = 0; values && i < j->n; i++)
    free(values[i]);
  free(values);
  free(ids);
  free(created);
}

static void run_edit(tq_lib *lib, obj_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  if (!object_is(lib, j->id, j->type, rs))
    return;
  if (tq_lib_object_edit(lib, j->id, &j->edit, &err) != TQ_OK)
    return write_failed(rs, err.code == TQ_EEXIST ? "value" : NULL, &err);
  tq_resp_data(rs, 200, written(lib, j->id, ALL_WITH));
}

static void run_delete(tq_lib *lib, obj_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  tq_object *o = NULL;
  if (!object_is(lib, j->id, j->type, rs))
    return;
  if (tq_lib_object_head(lib, j->id, &o, &err) != TQ_OK)
    return write_failed(rs, NULL, &err);
  char target[96], detail[256];
  snprintf(target, sizeof target, "%s %lld", j->type, (long long)j->id);
  snprintf(detail, sizeof detail, "%s%s%.200s", o->indicator_type ? o->indicator_type : "",
           o->indicator_type ? " " : "", o->value);
  tq_object_free(o);
  char what[64];
  snprintf(what, sizeof what, "%s.delete", j->type);
  if (tq_lib_begin(lib, &err) != TQ_OK)
    return write_failed(rs, NULL, &err);
  if (tq_lib_object_delete(lib, j->id, &err) != TQ_OK ||
      tq_auth_audit(lib, j->who, what, target, detail, j->addr, &err) != TQ_OK ||
      tq_lib_commit(lib, &err) != TQ_OK) {
    tq_lib_rollback(lib);
    return write_failed(rs, NULL, &err);
  }
  tq_resp_raw(rs, 204, "application/json", "", 0);
}

/* The attribute rows of id matching the given name/value pairs (what an add wrote). */
static cJSON *attrs_matching(tq_lib *lib, int64_t id, const tq_attr_in *in, size_t n) {
  tq_object *o = NULL;
  tq_err err;
  cJSON *arr = cJSON_CreateArray();
  if (arr == NULL || tq_lib_object_get(lib, id, &o, &err) != TQ_OK)
    return arr;
  for (size_t i = 0; i < o->n_attrs; i++)
    for (size_t k = 0; k < n; k++)
      if (strcmp(o->attrs[i].name, in[k].name) == 0 &&
          strcmp(o->attrs[i].value, in[k].value) == 0) {
        cJSON_AddItemToArray(arr, tq_render_attribute(o, &o->attrs[i]));
        break;
      }
  tq_object_free(o);
  return arr;
}

static void run_attr_add(tq_lib *lib, obj_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  if (!object_is(lib, j->id, j->type, rs))
    return;
  for (size_t i = 0; i < j->n; i++)
    if (j->attrs[i].source == NULL)
      j->attrs[i].source = j->who;
  if (tq_lib_annotate(lib, j->id, j->attrs, j->n, NULL, 0, &err) != TQ_OK)
    return write_failed(rs, "attributes", &err);
  cJSON *arr = attrs_matching(lib, j->id, j->attrs, j->n);
  int n = cJSON_GetArraySize(arr);
  if (j->list_body)
    return tq_resp_data(rs, 201, arr);
  cJSON *one = n > 0 ? cJSON_DetachItemFromArray(arr, 0) : NULL;
  cJSON_Delete(arr);
  tq_resp_data(rs, 201, one);
}

static void run_attr_edit(tq_lib *lib, obj_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  if (!object_is(lib, j->id, j->type, rs))
    return;
  if (tq_lib_attribute_edit(lib, j->id, j->id2, j->value, j->source, j->tlp, &err) != TQ_OK)
    return write_failed(rs, NULL, &err);
  tq_object *o = NULL;
  if (tq_lib_object_get(lib, j->id, &o, &err) != TQ_OK)
    return write_failed(rs, NULL, &err);
  for (size_t i = 0; i < o->n_attrs; i++)
    if (o->attrs[i].id == j->id2) {
      tq_resp_data(rs, 200, tq_render_attribute(o, &o->attrs[i]));
      break;
    }
  tq_object_free(o);
}

static void run_remove(tq_lib *lib, obj_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  if (!object_is(lib, j->id, j->type, rs))
    return;
  tq_code rc = j->kind == J_ATTR_DEL  ? tq_lib_attribute_delete(lib, j->id, j->id2, &err)
               : j->kind == J_SRC_DEL ? tq_lib_object_source_remove(lib, j->id, j->id2, &err)
                                      : tq_lib_tag_remove(lib, j->id, j->id2, &err);
  if (rc != TQ_OK)
    return write_failed(rs, NULL, &err);
  tq_resp_raw(rs, 204, "application/json", "", 0);
}

static void run_names_add(tq_lib *lib, obj_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  if (!object_is(lib, j->id, j->type, rs))
    return;
  if (tq_lib_begin(lib, &err) != TQ_OK)
    return write_failed(rs, NULL, &err);
  tq_code rc = TQ_OK;
  for (size_t i = 0; rc == TQ_OK && i < j->n; i++)
    rc = j->kind == J_SRC_ADD
             ? tq_lib_object_source_add(lib, j->id, j->names[i], j->tlp < 0 ? 0 : j->tlp, &err)
             : tq_lib_tag_add(lib, j->id, j->names[i], &err);
  if (rc == TQ_OK)
    rc = tq_lib_commit(lib, &err);
  else
    tq_lib_rollback(lib);
  if (rc != TQ_OK)
    return write_failed(rs, j->kind == J_SRC_ADD ? "sources" : "tags", &err);
  unsigned part = j->kind == J_SRC_ADD ? TQ_WITH_SOURCES : TQ_WITH_TAGS;
  cJSON *o = written(lib, j->id, part);
  cJSON *arr =
      o ? cJSON_DetachItemFromObjectCaseSensitive(o, j->kind == J_SRC_ADD ? "sources" : "tags")
        : NULL;
  cJSON_Delete(o);
  tq_resp_data(rs, 201, arr);
}

static void run_score(tq_lib *lib, obj_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  if (!object_is(lib, j->id, "indicator", rs))
    return;
  if (tq_lib_score_set(lib, j->id, j->manual, &err) != TQ_OK)
    return write_failed(rs, "manual_score", &err);
  cJSON *o = written(lib, j->id, TQ_WITH_SCORE);
  cJSON *s = o ? cJSON_DetachItemFromObjectCaseSensitive(o, "score") : NULL;
  cJSON_Delete(o);
  tq_resp_data(rs, 200, s);
}

static void run_relate(tq_lib *lib, obj_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  if (!object_is(lib, j->id, j->type, rs))
    return;
  for (size_t i = 0; i < j->n; i++) {
    if (j->ids[i] == j->id)
      return tq_resp_invalid(rs, "id", "an object cannot be related to itself (id %lld)",
                             (long long)j->id);
    if (!object_is(lib, j->ids[i], j->other, rs))
      return;
  }
  if (tq_lib_begin(lib, &err) != TQ_OK)
    return write_failed(rs, NULL, &err);
  tq_code rc = TQ_OK;
  for (size_t i = 0; rc == TQ_OK && i < j->n; i++)
    rc = tq_lib_link(lib, j->id, j->ids[i], j->who, NULL, &err);
  if (rc == TQ_OK)
    rc = tq_lib_commit(lib, &err);
  else
    tq_lib_rollback(lib);
  if (rc != TQ_OK)
    return write_failed(rs, NULL, &err);
  tq_object *o = NULL;
  if (tq_lib_object_get(lib, j->id, &o, &err) != TQ_OK)
    return write_failed(rs, NULL, &err);
  int64_t total = 0;
  cJSON *all = related_json(lib, o, j->other, INT64_MAX, 0, &total);
  tq_object_free(o);
  cJSON *arr = cJSON_CreateArray(), *it;
  cJSON_ArrayForEach(it, all) { /* only the ones this request named */
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    for (size_t i = 0; id && i < j->n; i++)
      if ((int64_t)id->valuedouble == j->ids[i]) {
        cJSON_AddItemToArray(arr, cJSON_Duplicate(it, 1));
        break;
      }
  }
  cJSON_Delete(all);
  tq_resp_data(rs, 201, arr);
}

static void run_source_put(tq_lib *lib, obj_job *j, tq_resp *rs) {
  tq_err err;
  tq_err_clear(&err);
  tq_source s;
  char name[sizeof s.name];
  if (j->kind == J_SOURCE_PUT) { /* by id */
    tq_source *all = NULL;
    size_t n = 0;
    name[0] = '\0';
    if (tq_lib_source_list(lib, &all, &n, &err) != TQ_OK)
      return write_failed(rs, NULL, &err);
    for (size_t i = 0; i < n; i++)
      if (all[i].id == j->id)
        tq_strlcpy(name, all[i].name, sizeof name);
    free(all);
    if (name[0] == '\0')
      return tq_resp_fail(rs, 404, "no source with id %lld", (long long)j->id);
  } else {
    tq_strlcpy(name, j->src_name, sizeof name);
  }
  char detail[160];
  snprintf(detail, sizeof detail, "tlp=%d score=%d expire_days=%d revoked_decrease=%d",
           j->sopts.tlp, j->sopts.score, j->sopts.expire_days, j->sopts.revoked_decrease);
  if (tq_lib_begin(lib, &err) != TQ_OK)
    return write_failed(rs, NULL, &err);
  if (tq_lib_source_put(lib, name, &j->sopts, j->kind == J_SOURCE_ADD, NULL, &err) != TQ_OK ||
      tq_auth_audit(lib, j->who, j->kind == J_SOURCE_ADD ? "source.add" : "source.update", name,
                    detail, j->addr, &err) != TQ_OK ||
      tq_lib_commit(lib, &err) != TQ_OK) {
    tq_lib_rollback(lib);
    return write_failed(rs, err.code == TQ_EEXIST ? "name" : NULL, &err);
  }
  if (tq_lib_source_get(lib, name, &s, &err) != TQ_OK)
    return write_failed(rs, NULL, &err);
  tq_resp_data(rs, j->kind == J_SOURCE_ADD ? 201 : 200, source_row_json(&s));
}

static void run_job(tq_engine *eng, tq_job *job) {
  obj_job *j = tq_job_ud(job);
  tq_resp *rs = tq_job_resp(job);
  tq_lib *lib = tq_engine_lib(eng);
  switch (j->kind) {
  case J_CREATE:
  case J_CONSUME: run_put(lib, j, rs); break;
  case J_EDIT: run_edit(lib, j, rs); break;
  case J_DELETE: run_delete(lib, j, rs); break;
  case J_ATTR_ADD: run_attr_add(lib, j, rs); break;
  case J_ATTR_EDIT: run_attr_edit(lib, j, rs); break;
  case J_ATTR_DEL:
  case J_SRC_DEL:
  case J_TAG_DEL: run_remove(lib, j, rs); break;
  case J_SRC_ADD:
  case J_TAG_ADD: run_names_add(lib, j, rs); break;
  case J_SCORE: run_score(lib, j, rs); break;
  case J_RELATE: run_relate(lib, j, rs); break;
  case J_SOURCE_ADD:
  case J_SOURCE_PUT: run_source_put(lib, j, rs); break;
  }
  tq_job_done(job);
}

/* ---- handlers of writes (HTTP thread): check, then hand over ------------------------------- */

static void to_engine(tq_req *rq, tq_resp *rs, obj_job *j) {
  tq_req_engine(rq, rs, run_job, j, job_free);
}

/* A body that must be an object (or, list_ok, a list of objects); NULL after a 400. */
static cJSON *body_json(tq_req *rq, int list_ok, tq_resp *rs) {
  cJSON *b = tq_req_json(rq, rs);
  if (b && !cJSON_IsObject(b) && !(list_ok && cJSON_IsArray(b))) {
    tq_resp_invalid(rs, "request",
                    list_ok ? "an object or a list of objects is expected"
                            : "a JSON object is expected");
    cJSON_Delete(b);
    return NULL;
  }
  return b;
}

/* Objects of a create or consume body into j; 0 after a 400. */
static int objects_of(obj_job *j, tq_resp *rs) {
  int list = cJSON_IsArray(j->body);
  size_t n = list ? (size_t)cJSON_GetArraySize(j->body) : 1;
  if (n == 0) {
    tq_resp_invalid(rs, "request", "the list is empty");
    return 0;
  }
  j->list_body = list;
  j->objs = calloc(n, sizeof *j->objs);
  if (j->objs == NULL) {
    tq_resp_fail(rs, 500, "out of memory");
    return 0;
  }
  const cJSON *it = list ? j->body->child : j->body;
  for (size_t i = 0; i < n; i++, it = it->next) {
    j->n = i + 1;
    if (!tq_api_parse_object(it, j->type, list ? (long)i : -1, &j->objs[i], rs))
      return 0;
    if (j->objs[i].in.n_sources == 0) { /* ThreatQ: the caller's login is the source */
      j->objs[i].srcs[0] = j->who;
      j->objs[i].in.n_sources = 1;
    }
  }
  return 1;
}

static void create_or_consume(tq_req *rq, tq_resp *rs, job_kind kind, const char *type) {
  if (type == NULL)
    return tq_resp_fail(rs, 404, "no such collection");
  obj_job *j = job_new(rq, kind, type, rs);
  if (j == NULL)
    return;
  if ((j->body = body_json(rq, 1, rs)) == NULL || !objects_of(j, rs)) {
    job_free(j);
    return;
  }
  if (kind == J_CONSUME && !j->list_body) {
    job_free(j);
    return tq_resp_invalid(rs, "request", "consume takes a list of objects");
  }
  to_engine(rq, rs, j);
}

static void api_object_create(tq_req *rq, tq_resp *rs) {
  create_or_consume(rq, rs, J_CREATE, route_type(rq));
}
static void api_consume(tq_req *rq, tq_resp *rs) {
  create_or_consume(rq, rs, J_CONSUME, route_type(rq));
}

/* A job on object param 0 of the route's type, with the body when has_body; NULL after a
 * 400/404. */
static obj_job *job_on(tq_req *rq, job_kind kind, int has_body, int list_ok, tq_resp *rs) {
  const char *type = route_type(rq);
  if (type == NULL) {
    tq_resp_fail(rs, 404, "no such collection");
    return NULL;
  }
  int64_t id = tq_req_id(rq, 0, rs);
  if (id == 0)
    return NULL;
  obj_job *j = job_new(rq, kind, type, rs);
  if (j == NULL)
    return NULL;
  j->id = id;
  if (has_body && (j->body = body_json(rq, list_ok, rs)) == NULL) {
    job_free(j);
    return NULL;
  }
  return j;
}

/* Fails with 400 when body has a member not in allowed (NULL-terminated). */
static int only_keys(const cJSON *body, const char *const *allowed, tq_resp *rs) {
  const cJSON *it;
  cJSON_ArrayForEach(it, body) {
    int ok = 0;
    for (size_t i = 0; allowed[i] && !ok; i++)
      ok = strcmp(allowed[i], it->string) == 0;
    if (!ok) {
      char *esc = tq_str_escape_dup(it->string, TQ_ESC_QUOTE);
      tq_resp_invalid(rs, esc ? esc : "request", "not a field that can be changed here");
      free(esc);
      return 0;
    }
  }
  return 1;
}

/* The body of PUT /api/indicators/{id}: value, type/type_id, status/status_id, description. */
int tq_api_object_edit(const cJSON *body, const char *type, tq_object_edit *e, tq_resp *rs) {
  static const char *const allowed[] = {"value",     "type",  "type_id", "status",
                                        "status_id", "name",  "title",   "description",
                                        "id",        "class", NULL};
  where w = item_at(-1);
  int bad = 0, indicator = strcmp(type, "indicator") == 0;
  tq_object_edit_init(e);
  if (!only_keys(body, allowed, rs))
    return 0;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "value");
  const char *key = "value";
  if (v == NULL && !indicator) {
    key = strcmp(type, "event") == 0 || strcmp(type, "report") == 0 ? "title" : "name";
    v = cJSON_GetObjectItemCaseSensitive(body, key);
  }
  if (v && (!cJSON_IsString(v) || v->valuestring[0] == '\0')) {
    tq_resp_invalid(rs, key, "must be a non-empty string");
    return 0;
  }
  e->value = v ? v->valuestring : NULL;
  if (indicator) {
    e->indicator_type = parse_itype(body, &w, rs, &bad);
    if (!bad)
      e->status = parse_status(body, &w, rs, &bad);
  }
  if (!bad)
    e->description = opt_str(body, "description", &w, rs, &bad);
  return !bad;
}

/* PUT /api/indicators/{id} */
static void api_object_put(tq_req *rq, tq_resp *rs) {
  obj_job *j = job_on(rq, J_EDIT, 1, 0, rs);
  if (j == NULL)
    return;
  if (!tq_api_object_edit(j->body, j->type, &j->edit, rs))
    return job_free(j);
  to_engine(rq, rs, j);
}

static void api_object_delete(tq_req *rq, tq_resp *rs) {
  obj_job *j = job_on(rq, J_DELETE, 0, 0, rs);
  if (j)
    to_engine(rq, rs, j);
}

/* POST /api/indicators/{id}/attributes: {name, value, sources?} or a list of them. */
static void api_attrs_post(tq_req *rq, tq_resp *rs) {
  obj_job *j = job_on(rq, J_ATTR_ADD, 1, 1, rs);
  if (j == NULL)
    return;
  j->list_body = cJSON_IsArray(j->body);
  cJSON *list = j->list_body ? j->body : NULL;
  if (!j->list_body) { /* one attribute: parse it as a list of one */
    list = cJSON_CreateArray();
    cJSON_AddItemReferenceToArray(list, j->body);
  }
  size_t n = (size_t)cJSON_GetArraySize(list);
  int ok = n > 0;
  if (!ok)
    tq_resp_invalid(rs, "request", "the list is empty");
  if (ok && (j->attrs = calloc(n, sizeof *j->attrs)) == NULL) {
    tq_resp_fail(rs, 500, "out of memory");
    ok = 0;
  }
  if (ok)
    ok = tq_api_parse_attrs(list, j->attrs, &j->n, rs);
  if (!j->list_body)
    cJSON_Delete(list); /* the reference only */
  if (!ok)
    return job_free(j);
  to_engine(rq, rs, j);
}

/* The body of PUT /api/indicators/{id}/attributes/{aid}: {value?, sources?/tlp?}. */
int tq_api_attr_edit(const cJSON *body, const char **value, const char **source, int *tlp,
                     tq_resp *rs) {
  static const char *const allowed[] = {"value", "sources", "tlp", "tlp_id", "name", "id", NULL};
  *value = *source = NULL;
  *tlp = -1;
  if (!only_keys(body, allowed, rs))
    return 0;
  where w = item_at(-1);
  int bad = 0;
  *value = opt_str(body, "value", &w, rs, &bad);
  const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(body, "sources");
  if (!bad && !as_list(srcs, "sources", &w, rs))
    bad = 1;
  const cJSON *s0 = !bad && cJSON_GetArraySize(srcs) > 0 ? cJSON_GetArrayItem(srcs, 0) : NULL;
  if (s0 && (*source = name_of(s0, "sources", "a source", &w, rs)) == NULL)
    bad = 1;
  if (!bad) {
    int t = tlp_of(s0 ? s0 : body, "tlp", &w, rs);
    bad = t < 0;
    *tlp = t > 0 ? t : -1;
  }
  if (!bad && *value == NULL && *source == NULL && *tlp < 0) {
    tq_resp_invalid(rs, "request", "nothing to change: give value, sources or tlp");
    bad = 1;
  }
  return !bad;
}

/* PUT /api/indicators/{id}/attributes/{aid} */
static void api_attr_put(tq_req *rq, tq_resp *rs) {
  obj_job *j = job_on(rq, J_ATTR_EDIT, 1, 0, rs);
  if (j == NULL || (j->id2 = tq_req_id(rq, 1, rs)) == 0 ||
      !tq_api_attr_edit(j->body, &j->value, &j->source, &j->tlp, rs))
    return job_free(j);
  to_engine(rq, rs, j);
}

static void api_sub_delete(tq_req *rq, tq_resp *rs, job_kind kind) {
  obj_job *j = job_on(rq, kind, 0, 0, rs);
  if (j == NULL || (j->id2 = tq_req_id(rq, 1, rs)) == 0)
    return job_free(j);
  to_engine(rq, rs, j);
}
static void api_attr_delete(tq_req *rq, tq_resp *rs) { api_sub_delete(rq, rs, J_ATTR_DEL); }
static void api_source_delete(tq_req *rq, tq_resp *rs) { api_sub_delete(rq, rs, J_SRC_DEL); }
static void api_tag_delete(tq_req *rq, tq_resp *rs) { api_sub_delete(rq, rs, J_TAG_DEL); }

/* The items of a .../sources or .../tags body into names; see api_input.h. */
int tq_api_names(const cJSON *body, int sources, const char **names, size_t *n, int *tlp,
                 tq_resp *rs) {
  const char *field = sources ? "sources" : "tags";
  where w = item_at(-1);
  size_t max = cJSON_IsArray(body) ? (size_t)cJSON_GetArraySize(body) : 1;
  *n = 0;
  *tlp = -1;
  const cJSON *it = cJSON_IsArray(body) ? body->child : body;
  for (; it && *n < max; it = cJSON_IsArray(body) ? it->next : NULL) {
    const char *name = name_of(it, "name", field, &w, rs);
    int t = name && sources ? tlp_of(it, "tlp", &w, rs) : 0;
    if (name == NULL || t < 0)
      return 0;
    names[(*n)++] = name;
    if (t > 0 && (*tlp <= 0 || t < *tlp))
      *tlp = t;
  }
  return 1;
}

/* POST .../sources and .../tags: {"name"} or a list of them (or of strings). */
static void names_post(tq_req *rq, tq_resp *rs, job_kind kind) {
  obj_job *j = job_on(rq, kind, 0, 0, rs);
  if (j == NULL)
    return;
  if ((j->body = tq_req_json(rq, rs)) == NULL)
    return job_free(j);
  size_t n = cJSON_IsArray(j->body) ? (size_t)cJSON_GetArraySize(j->body) : 1;
  if (n == 0) {
    tq_resp_invalid(rs, "request", "the list is empty");
    return job_free(j);
  }
  if ((j->names = calloc(n, sizeof *j->names)) == NULL) {
    tq_resp_fail(rs, 500, "out of memory");
    return job_free(j);
  }
  if (!tq_api_names(j->body, kind == J_SRC_ADD, j->names, &j->n, &j->tlp, rs))
    return job_free(j);
  to_engine(rq, rs, j);
}
static void api_sources_post(tq_req *rq, tq_resp *rs) { names_post(rq, rs, J_SRC_ADD); }
static void api_tags_post(tq_req *rq, tq_resp *rs) { names_post(rq, rs, J_TAG_ADD); }

/* {"manual_score": 0..10 | "7" | null}; 0 after a 400. */
int tq_api_score(const cJSON *body, int *manual, tq_resp *rs) {
  static const char *const allowed[] = {"manual_score", "indicator_id", NULL};
  if (!only_keys(body, allowed, rs))
    return 0;
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "manual_score");
  double v = -1;
  if (m == NULL) {
    tq_resp_invalid(rs, "manual_score", "required: a score 0..10, or null for the generated one");
    return 0;
  }
  if (cJSON_IsNumber(m))
    v = m->valuedouble;
  else if (cJSON_IsString(m) && m->valuestring[0]) { /* ThreatQ's clients send "7" too */
    char *end = NULL;
    v = strtod(m->valuestring, &end);
    if (*end)
      v = -2;
  } else if (!cJSON_IsNull(m))
    v = -2;
  if (!cJSON_IsNull(m) && !(v >= 0 && v <= 10 && v == floor(v))) {
    tq_resp_invalid(rs, "manual_score", "must be an integer 0..10, or null");
    return 0;
  }
  *manual = cJSON_IsNull(m) ? -1 : (int)v;
  return 1;
}

/* PUT /api/indicator/{id}/scores: {"manual_score": 0..10 | null} */
static void api_score_put(tq_req *rq, tq_resp *rs) {
  int64_t id = tq_req_id(rq, 0, rs);
  if (id == 0)
    return;
  obj_job *j = job_new(rq, J_SCORE, "indicator", rs);
  if (j == NULL)
    return;
  j->id = id;
  if ((j->body = body_json(rq, 0, rs)) == NULL || !tq_api_score(j->body, &j->manual, rs))
    return job_free(j);
  to_engine(rq, rs, j);
}

/* {"id": n} or a list of them; 0 after a 400. */
int tq_api_relate_ids(const cJSON *body, int64_t *ids, size_t *n, tq_resp *rs) {
  int list = cJSON_IsArray(body);
  *n = 0;
  if (list && cJSON_GetArraySize(body) == 0) {
    tq_resp_invalid(rs, "request", "the list is empty");
    return 0;
  }
  const cJSON *it = list ? body->child : body;
  for (; it; it = list ? it->next : NULL) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    if (!cJSON_IsNumber(id) || id->valuedouble < 1 || id->valuedouble > 9007199254740991.0 ||
        id->valuedouble != (double)(int64_t)id->valuedouble) {
      tq_resp_invalid(rs, "id", "%s must be {\"id\": a positive integer}",
                      list ? "each item" : "the body");
      return 0;
    }
    ids[(*n)++] = (int64_t)id->valuedouble;
  }
  return 1;
}

/* POST /api/{collection}/{id}/{other}: {"id": n} or a list of them: links. */
static void api_relate(tq_req *rq, tq_resp *rs) {
  obj_job *j = job_on(rq, J_RELATE, 1, 1, rs);
  if (j == NULL)
    return;
  j->other = rq->n_params > 1 ? tq_lib_object_type_by_collection(rq->params[1]) : NULL;
  if (j->other == NULL) {
    char *esc = tq_str_escape_dup(rq->n_params > 1 ? rq->params[1] : "", TQ_ESC_QUOTE);
    tq_resp_fail(rs, 404, "'%.64s' is not a collection of objects", esc ? esc : "");
    free(esc);
    return job_free(j);
  }
  size_t n = cJSON_IsArray(j->body) ? (size_t)cJSON_GetArraySize(j->body) : 1;
  if ((j->ids = calloc(n ? n : 1, sizeof *j->ids)) == NULL) {
    tq_resp_fail(rs, 503, "out of memory");
    return job_free(j);
  }
  if (!tq_api_relate_ids(j->body, j->ids, &j->n, rs))
    return job_free(j);
  to_engine(rq, rs, j);
}

/* ---- sources (write) ---------------------------------------------------------------------- */

/* An integer member within [lo, hi]; 1 when absent (left TQ_UNSET), 0 after a 400. */
static int int_member(const cJSON *body, const char *key, int lo, int hi, int *out, tq_resp *rs) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
  if (v == NULL)
    return 1;
  if (!whole_in(v, lo, hi, out)) {
    tq_resp_invalid(rs, key, "must be an integer %d..%d", lo, hi);
    return 0;
  }
  return 1;
}

/* The settings of a source body into o; 0 after a 400. */
int tq_api_source_opts(const cJSON *body, tq_source_opts *o, tq_resp *rs) {
  static const char *const allowed[] = {
      "name", "tlp", "tlp_id", "score", "expire_days", "revoked_decrease", "id", NULL};
  where w = item_at(-1);
  tq_source_opts_init(o);
  if (!only_keys(body, allowed, rs))
    return 0;
  int tlp = tlp_of(body, "tlp", &w, rs);
  if (tlp < 0)
    return 0;
  if (tlp > 0)
    o->tlp = tlp;
  if (!int_member(body, "score", 0, 10, &o->score, rs) ||
      !int_member(body, "revoked_decrease", 0, 10, &o->revoked_decrease, rs))
    return 0;
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(body, "expire_days");
  if (cJSON_IsString(e) && strcmp(e->valuestring, "never") == 0)
    o->expire_days = TQ_EXPIRE_NEVER;
  else if (cJSON_IsString(e) && strcmp(e->valuestring, "none") == 0)
    o->expire_days = TQ_EXPIRE_NONE;
  else if (cJSON_IsNull(e))
    o->expire_days = TQ_EXPIRE_NONE;
  else if (e && !whole_in(e, 1, 36500, &o->expire_days)) {
    tq_resp_invalid(rs, "expire_days", "must be days 1..36500, \"never\" or \"none\"");
    return 0;
  }
  return 1;
}

/* POST /api/sources (admin): {"name", "tlp"?, "score"?, "expire_days"?, "revoked_decrease"?} */
static void api_source_create(tq_req *rq, tq_resp *rs) {
  obj_job *j = job_new(rq, J_SOURCE_ADD, NULL, rs);
  if (j == NULL)
    return;
  where w = item_at(-1);
  const char *name = NULL;
  if ((j->body = body_json(rq, 0, rs)) == NULL ||
      (name = name_of(cJSON_GetObjectItemCaseSensitive(j->body, "name"), "name", "name", &w, rs)) ==
          NULL ||
      !tq_api_source_opts(j->body, &j->sopts, rs))
    return job_free(j);
  if (strlen(name) >= sizeof(((tq_source *)0)->name)) {
    tq_resp_invalid(rs, "name", "longer than %zu bytes", sizeof(((tq_source *)0)->name) - 1);
    return job_free(j);
  }
  tq_strlcpy(j->src_name, name, sizeof j->src_name);
  to_engine(rq, rs, j);
}

/* PUT /api/sources/{id} (admin) */
static void api_source_update(tq_req *rq, tq_resp *rs) {
  int64_t id = tq_req_id(rq, 0, rs);
  if (id == 0)
    return;
  obj_job *j = job_new(rq, J_SOURCE_PUT, NULL, rs);
  if (j == NULL)
    return;
  j->id = id;
  if ((j->body = body_json(rq, 0, rs)) == NULL || !tq_api_source_opts(j->body, &j->sopts, rs))
    return job_free(j);
  if (cJSON_GetObjectItemCaseSensitive(j->body, "name")) {
    tq_resp_invalid(rs, "name", "a source cannot be renamed");
    return job_free(j);
  }
  to_engine(rq, rs, j);
}

/* ---- the table ------------------------------------------------------------------------------ */

#define RO TQ_ROLE_READONLY
#define AN TQ_ROLE_ANALYST
#define AD TQ_ROLE_ADMIN

/* list, create, get, change, delete, related, relate of one collection of the other types */
#define COLLECTION(c)                                                                              \
  {"GET", "/api/" c, RO, api_object_list}, {"POST", "/api/" c, AN, api_object_create},             \
      {"GET", "/api/" c "/{id}", RO, api_object_get},                                              \
      {"PUT", "/api/" c "/{id}", AN, api_object_put},                                              \
      {"DELETE", "/api/" c "/{id}", AN, api_object_delete},                                        \
      {"GET", "/api/" c "/{id}/{other}", RO, api_related_get}, {                                   \
    "POST", "/api/" c "/{id}/{other}", AN, api_relate                                              \
  }

const tq_route tq_routes_objects[] = {
    {"GET", "/api/indicator/types", RO, api_indicator_types},
    {"GET", "/api/indicator/statuses", RO, api_indicator_statuses},
    {"GET", "/api/objects", RO, api_object_types},
    /* indicators (their list is the search group's) */
    {"POST", "/api/indicators", AN, api_object_create},
    {"POST", "/api/indicators/consume", AN, api_consume},
    {"GET", "/api/indicators/{id}", RO, api_object_get},
    {"PUT", "/api/indicators/{id}", AN, api_object_put},
    {"DELETE", "/api/indicators/{id}", AN, api_object_delete},
    {"GET", "/api/indicators/{id}/attributes", RO, api_attrs_get},
    {"POST", "/api/indicators/{id}/attributes", AN, api_attrs_post},
    {"PUT", "/api/indicators/{id}/attributes/{aid}", AN, api_attr_put},
    {"DELETE", "/api/indicators/{id}/attributes/{aid}", AN, api_attr_delete},
    {"GET", "/api/indicators/{id}/sources", RO, api_sources_get},
    {"POST", "/api/indicators/{id}/sources", AN, api_sources_post},
    {"DELETE", "/api/indicators/{id}/sources/{source_id}", AN, api_source_delete},
    {"GET", "/api/indicators/{id}/tags", RO, api_tags_get},
    {"POST", "/api/indicators/{id}/tags", AN, api_tags_post},
    {"DELETE", "/api/indicators/{id}/tags/{tag_id}", AN, api_tag_delete},
    {"PUT", "/api/indicator/{id}/scores", AN, api_score_put},
    {"GET", "/api/indicators/{id}/{other}", RO, api_related_get},
    {"POST", "/api/indicators/{id}/{other}", AN, api_relate},
    /* the other object types: ThreatQ's collection names, and plural spellings */
    COLLECTION("adversaries"),
    COLLECTION("malware"),
    COLLECTION("attack_pattern"),
    COLLECTION("attack_patterns"),
    COLLECTION("vulnerability"),
    COLLECTION("vulnerabilities"),
    COLLECTION("report"),
    COLLECTION("reports"),
    COLLECTION("campaign"),
    COLLECTION("campaigns"),
    COLLECTION("tool"),
    COLLECTION("tools"),
    COLLECTION("intrusion_set"),
    COLLECTION("intrusion_sets"),
    COLLECTION("identity"),
    COLLECTION("identities"),
    COLLECTION("events"),
    COLLECTION("note"),
    COLLECTION("notes"),
    COLLECTION("signatures"),
    COLLECTION("location"),
    COLLECTION("locations"),
    COLLECTION("course_of_action"),
    COLLECTION("courses_of_action"),
    /* sources */
    {"GET", "/api/sources", RO, api_sources_list},
    {"POST", "/api/sources", AD, api_source_create},
    {"PUT", "/api/sources/{id}", AD, api_source_update},
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
