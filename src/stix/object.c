/* object.c: STIX 2.1 objects from cJSON: the per-type required properties (spec section 2.5 of
 * taxii-stix.md), the common properties a mapper reads, TAXII envelopes and bundles, and the
 * standard TLP marking ids. Objects borrow their strings from the cJSON tree. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stix_int.h"

/* The types tqhost knows, their kind and their type-specific required properties (STIX 2.1
 * property tables of sections 4, 5, 6 and 7). Types of other properties are checked when
 * the property is read. */
typedef struct type_rule {
  const char *type;
  tq_stix_kind kind;
  const char *required[5];
} type_rule;

static const type_rule type_rules[] = {
    {"attack-pattern", TQ_STIX_SDO, {"name"}},
    {"campaign", TQ_STIX_SDO, {"name"}},
    {"course-of-action", TQ_STIX_SDO, {"name"}},
    {"grouping", TQ_STIX_SDO, {"context", "object_refs"}},
    {"identity", TQ_STIX_SDO, {"name"}},
    {"incident", TQ_STIX_SDO, {"name"}},
    {"indicator", TQ_STIX_SDO, {"pattern", "pattern_type", "valid_from"}},
    {"infrastructure", TQ_STIX_SDO, {"name"}},
    {"intrusion-set", TQ_STIX_SDO, {"name"}},
    {"location", TQ_STIX_SDO, {NULL}},
    {"malware", TQ_STIX_SDO, {NULL}}, /* is_family tolerated absent; name when it is true */
    {"malware-analysis", TQ_STIX_SDO, {"product"}},
    {"note", TQ_STIX_SDO, {"content", "object_refs"}},
    {"observed-data", TQ_STIX_SDO, {"first_observed", "last_observed", "number_observed"}},
    {"opinion", TQ_STIX_SDO, {"opinion", "object_refs"}},
    {"report", TQ_STIX_SDO, {"name", "published", "object_refs"}},
    {"threat-actor", TQ_STIX_SDO, {"name"}},
    {"tool", TQ_STIX_SDO, {"name"}},
    {"vulnerability", TQ_STIX_SDO, {"name"}},
    {"relationship", TQ_STIX_SRO, {"relationship_type", "source_ref", "target_ref"}},
    {"sighting", TQ_STIX_SRO, {"sighting_of_ref"}},
    {"artifact", TQ_STIX_SCO, {NULL}},
    {"autonomous-system", TQ_STIX_SCO, {"number"}},
    {"directory", TQ_STIX_SCO, {"path"}},
    {"domain-name", TQ_STIX_SCO, {"value"}},
    {"email-addr", TQ_STIX_SCO, {"value"}},
    {"email-message", TQ_STIX_SCO, {"is_multipart"}},
    {"file", TQ_STIX_SCO, {NULL}}, /* hashes or name */
    {"ipv4-addr", TQ_STIX_SCO, {"value"}},
    {"ipv6-addr", TQ_STIX_SCO, {"value"}},
    {"mac-addr", TQ_STIX_SCO, {"value"}},
    {"mutex", TQ_STIX_SCO, {"name"}},
    {"network-traffic", TQ_STIX_SCO, {"protocols"}},
    {"process", TQ_STIX_SCO, {NULL}},
    {"software", TQ_STIX_SCO, {"name"}},
    {"url", TQ_STIX_SCO, {"value"}},
    {"user-account", TQ_STIX_SCO, {NULL}},
    {"windows-registry-key", TQ_STIX_SCO, {NULL}},
    {"x509-certificate", TQ_STIX_SCO, {NULL}},
    {"marking-definition", TQ_STIX_META, {NULL}},
    {"language-content", TQ_STIX_META, {"object_ref", "object_modified", "contents"}},
    {"extension-definition", TQ_STIX_META, {"name", "schema", "version", "extension_types"}},
};

/* The object being checked and where its first error goes. */
typedef struct checker {
  const cJSON *json;
  const char *who; /* id, else type, else "object" */
  tq_stix_object *obj;
  tq_err *err;
} checker;

__attribute__((format(printf, 3, 4))) static tq_code bad(checker *c, const char *prop,
                                                         const char *fmt, ...) {
  char what[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return tq_err_set(c->err, TQ_EINVAL, "%.120s: '%s': %s", c->who, prop, what);
}

static const cJSON *prop(checker *c, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->json, name);
  return cJSON_IsNull(v) ? NULL : v;
}

/* A string property: *out stays NULL when absent. */
static tq_code get_str(checker *c, const char *name, const char **out) {
  const cJSON *v = prop(c, name);
  if (v == NULL)
    return TQ_OK;
  if (!cJSON_IsString(v))
    return bad(c, name, "must be a string");
  *out = v->valuestring;
  return TQ_OK;
}

static tq_code get_ref(checker *c, const char *name, const char **out) {
  tq_code rc = get_str(c, name, out);
  tq_err sub;
  if (rc == TQ_OK && *out && tq_stix_id_check(*out, NULL, &sub) != TQ_OK)
    return bad(c, name, "%s", sub.msg);
  return rc;
}

static tq_code get_time(checker *c, const char *name, int *has, tq_stix_time *out) {
  const cJSON *v = prop(c, name);
  if (v == NULL)
    return TQ_OK;
  if (!cJSON_IsString(v))
    return bad(c, name, "must be a timestamp string");
  const char *why = stix_time_scan(v->valuestring, strlen(v->valuestring), 0, out);
  if (why)
    return bad(c, name, "'%.64s' is not a timestamp: %s", v->valuestring, why);
  *has = 1;
  return TQ_OK;
}

/* A list of strings; refs: each must be an id. */
static tq_code get_strs(checker *c, const char *name, int refs, tq_stix_strs *out) {
  const cJSON *v = prop(c, name);
  if (v == NULL)
    return TQ_OK;
  if (!cJSON_IsArray(v))
    return bad(c, name, "must be a list of %s", refs ? "ids" : "strings");
  size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
  if (n == 0)
    return TQ_OK;
  out->v = malloc(n * sizeof *out->v);
  if (out->v == NULL)
    return tq_err_set(c->err, TQ_ENOMEM, "%.120s: out of memory", c->who);
  tq_err sub;
  for (const cJSON *e = v->child; e; e = e->next, i++) {
    if (!cJSON_IsString(e))
      return bad(c, name, "item %zu must be a string", i);
    if (refs && tq_stix_id_check(e->valuestring, NULL, &sub) != TQ_OK)
      return bad(c, name, "item %zu: %s", i, sub.msg);
    out->v[out->n++] = e->valuestring;
  }
  return TQ_OK;
}

static tq_code check_required(checker *c, const type_rule *rule) {
  for (size_t i = 0; rule && i < 5 && rule->required[i]; i++) {
    const cJSON *v = prop(c, rule->required[i]);
    if (v == NULL)
      return bad(c, rule->required[i], "required property is missing");
    if ((cJSON_IsString(v) && v->valuestring[0] == '\0') || (cJSON_IsArray(v) && v->child == NULL))
      return bad(c, rule->required[i], "required property is empty");
  }
  return TQ_OK;
}

static tq_code get_extrefs(checker *c) {
  const cJSON *v = prop(c, "external_references");
  tq_stix_object *o = c->obj;
  if (v == NULL)
    return TQ_OK;
  if (!cJSON_IsArray(v))
    return bad(c, "external_references", "must be a list of objects");
  size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
  if (n == 0)
    return TQ_OK;
  o->external_references = calloc(n, sizeof *o->external_references);
  if (o->external_references == NULL)
    return tq_err_set(c->err, TQ_ENOMEM, "%.120s: out of memory", c->who);
  for (const cJSON *e = v->child; e; e = e->next, i++) {
    tq_stix_extref *r = &o->external_references[o->n_external_references];
    const cJSON *sn = cJSON_GetObjectItemCaseSensitive(e, "source_name");
    if (!cJSON_IsObject(e) || !cJSON_IsString(sn))
      return bad(c, "external_references", "item %zu has no string source_name", i);
    r->source_name = sn->valuestring;
    const char *keys[3] = {"external_id", "url", "description"};
    const char **dst[3] = {&r->external_id, &r->url, &r->description};
    for (int k = 0; k < 3; k++) {
      const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, keys[k]);
      if (f && !cJSON_IsNull(f) && !cJSON_IsString(f))
        return bad(c, "external_references", "item %zu: %s must be a string", i, keys[k]);
      *dst[k] = cJSON_IsString(f) ? f->valuestring : NULL;
    }
    o->n_external_references++;
  }
  return TQ_OK;
}

static tq_code get_kill_chain(checker *c) {
  const cJSON *v = prop(c, "kill_chain_phases");
  tq_stix_object *o = c->obj;
  if (v == NULL)
    return TQ_OK;
  if (!cJSON_IsArray(v))
    return bad(c, "kill_chain_phases", "must be a list of objects");
  size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
  if (n == 0)
    return TQ_OK;
  o->kill_chain_phases = calloc(n, sizeof *o->kill_chain_phases);
  if (o->kill_chain_phases == NULL)
    return tq_err_set(c->err, TQ_ENOMEM, "%.120s: out of memory", c->who);
  for (const cJSON *e = v->child; e; e = e->next, i++) {
    const cJSON *kc = cJSON_GetObjectItemCaseSensitive(e, "kill_chain_name");
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "phase_name");
    if (!cJSON_IsString(kc) || !cJSON_IsString(ph))
      return bad(c, "kill_chain_phases", "item %zu needs string kill_chain_name and phase_name", i);
    o->kill_chain_phases[o->n_kill_chain_phases].kill_chain_name = kc->valuestring;
    o->kill_chain_phases[o->n_kill_chain_phases++].phase_name = ph->valuestring;
  }
  return TQ_OK;
}

/* type, id and the kind-dependent common properties (section 3.2 table). */
static tq_code check_common(checker *c, const type_rule **rule) {
  tq_stix_object *o = c->obj;
  const cJSON *t = prop(c, "type"), *id = prop(c, "id");
  if (cJSON_IsString(id))
    c->who = id->valuestring;
  if (!cJSON_IsString(t))
    return bad(c, "type", t ? "must be a string" : "required property is missing");
  o->type = t->valuestring;
  if (!cJSON_IsString(id))
    c->who = o->type;
  const char *why = stix_type_problem(o->type, strlen(o->type));
  if (why)
    return bad(c, "type", "'%.60s' %s", o->type, why);
  if (!cJSON_IsString(id))
    return bad(c, "id", id ? "must be a string" : "required property is missing");
  tq_err sub;
  if (tq_stix_id_check(id->valuestring, o->type, &sub) != TQ_OK)
    return bad(c, "id", "%s", sub.msg);
  o->id = id->valuestring;
  o->kind = TQ_STIX_CUSTOM;
  for (size_t i = 0; i < sizeof type_rules / sizeof *type_rules; i++)
    if (strcmp(type_rules[i].type, o->type) == 0) {
      *rule = &type_rules[i];
      o->kind = type_rules[i].kind;
    }
  int versioned = o->kind == TQ_STIX_SDO || o->kind == TQ_STIX_SRO ||
                  (o->kind == TQ_STIX_META && strcmp(o->type, "marking-definition") != 0);
  int needs_created = versioned || o->kind == TQ_STIX_META;
  tq_code rc = get_str(c, "spec_version", &o->spec_version);
  if (rc == TQ_OK && o->spec_version == NULL && needs_created)
    rc = bad(c, "spec_version", "required property is missing");
  rc = rc ? rc : get_time(c, "created", &o->has_created, &o->created);
  rc = rc ? rc : get_time(c, "modified", &o->has_modified, &o->modified);
  if (rc == TQ_OK && needs_created && !o->has_created)
    rc = bad(c, "created", "required property is missing");
  if (rc == TQ_OK && versioned && !o->has_modified)
    rc = bad(c, "modified", "required property is missing");
  return rc;
}

static tq_code check_optional_common(checker *c) {
  tq_stix_object *o = c->obj;
  tq_code rc = get_ref(c, "created_by_ref", &o->created_by_ref);
  const cJSON *v = prop(c, "revoked");
  if (rc == TQ_OK && v && !cJSON_IsBool(v))
    rc = bad(c, "revoked", "must be true or false");
  o->revoked = cJSON_IsTrue(v);
  v = prop(c, "confidence");
  o->confidence = -1;
  if (rc == TQ_OK && v) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 100) ||
        v->valuedouble != (double)(int)v->valuedouble)
      rc = bad(c, "confidence", "must be an integer 0..100");
    else
      o->confidence = (int)v->valuedouble;
  }
  rc = rc ? rc : get_strs(c, "labels", 0, &o->labels);
  rc = rc ? rc : get_strs(c, "object_marking_refs", 1, &o->object_marking_refs);
  rc = rc ? rc : get_extrefs(c);
  rc = rc ? rc : get_kill_chain(c);
  rc = rc ? rc : get_str(c, "name", &o->name);
  rc = rc ? rc : get_str(c, "description", &o->description);
  rc = rc ? rc : get_strs(c, "aliases", 0, &o->aliases);
  if (rc == TQ_OK && strlen(o->type) < 60) {
    char types[80];
    snprintf(types, sizeof types, "%s_types", o->type);
    for (char *p = types; *p; p++)
      *p = *p == '-' ? '_' : *p;
    rc = get_strs(c, types, 0, &o->types);
  }
  return rc;
}

static tq_code check_indicator(checker *c) {
  tq_stix_object *o = c->obj;
  tq_code rc = get_str(c, "pattern", &o->pattern);
  rc = rc ? rc : get_str(c, "pattern_type", &o->pattern_type);
  rc = rc ? rc : get_str(c, "pattern_version", &o->pattern_version);
  rc = rc ? rc : get_time(c, "valid_from", &o->has_valid_from, &o->valid_from);
  rc = rc ? rc : get_time(c, "valid_until", &o->has_valid_until, &o->valid_until);
  if (rc == TQ_OK && o->has_valid_from && o->has_valid_until &&
      tq_stix_time_cmp(o->valid_until, o->valid_from) <= 0)
    rc = bad(c, "valid_until", "must be later than valid_from");
  return rc;
}

static tq_code check_malware(checker *c) {
  tq_stix_object *o = c->obj;
  const cJSON *v = prop(c, "is_family");
  o->is_family = -1;
  if (v && !cJSON_IsBool(v))
    return bad(c, "is_family", "must be true or false");
  if (v)
    o->is_family = cJSON_IsTrue(v);
  if (o->is_family == 1 && (o->name == NULL || o->name[0] == '\0'))
    return bad(c, "name", "required when is_family is true");
  return TQ_OK;
}

/* The property that holds an SCO's main value (tq_stix_object.value). */
static const char *sco_main_property(const char *type) {
  static const char *by_type[][2] = {{"mutex", "name"},
                                     {"file", "name"},
                                     {"software", "name"},
                                     {"directory", "path"},
                                     {"windows-registry-key", "key"}};
  for (size_t i = 0; i < sizeof by_type / sizeof *by_type; i++)
    if (strcmp(by_type[i][0], type) == 0)
      return by_type[i][1];
  return "value";
}

/* Properties of the other types that a mapper reads. */
static tq_code check_specific(checker *c) {
  tq_stix_object *o = c->obj;
  tq_code rc = TQ_OK;
  if (strcmp(o->type, "indicator") == 0)
    rc = check_indicator(c);
  else if (strcmp(o->type, "malware") == 0)
    rc = check_malware(c);
  rc = rc ? rc : get_time(c, "published", &o->has_published, &o->published);
  rc = rc ? rc : get_strs(c, "object_refs", 1, &o->object_refs);
  rc = rc ? rc : get_str(c, "relationship_type", &o->relationship_type);
  rc = rc ? rc : get_ref(c, "source_ref", &o->source_ref);
  rc = rc ? rc : get_ref(c, "target_ref", &o->target_ref);
  rc = rc ? rc : get_ref(c, "sighting_of_ref", &o->sighting_of_ref);
  rc = rc ? rc : get_time(c, "first_seen", &o->has_first_seen, &o->first_seen);
  rc = rc ? rc : get_time(c, "last_seen", &o->has_last_seen, &o->last_seen);
  if (rc == TQ_OK && o->kind == TQ_STIX_SCO)
    rc = get_str(c, sco_main_property(o->type), &o->value);
  if (rc == TQ_OK && strcmp(o->type, "file") == 0 && !prop(c, "hashes") && !prop(c, "name"))
    rc = bad(c, "hashes", "a file needs hashes or name");
  return rc;
}

tq_code tq_stix_object_parse(const cJSON *json, tq_stix_object *out, tq_err *err) {
  memset(out, 0, sizeof *out);
  out->json = json;
  checker c = {json, "object", out, err};
  const type_rule *rule = NULL;
  tq_code rc;
  if (!cJSON_IsObject(json)) {
    rc = tq_err_set(err, TQ_EINVAL, "object: not a JSON object");
    goto fail;
  }
  rc = check_common(&c, &rule);
  rc = rc ? rc : check_required(&c, rule);
  rc = rc ? rc : check_optional_common(&c);
  rc = rc ? rc : check_specific(&c);
  if (rc != TQ_OK)
    goto fail;
  return TQ_OK;
fail:
  tq_stix_object_clear(out);
  return rc;
}

void tq_stix_object_clear(tq_stix_object *obj) {
  free(obj->labels.v);
  free(obj->object_marking_refs.v);
  free(obj->aliases.v);
  free(obj->types.v);
  free(obj->object_refs.v);
  free(obj->external_references);
  free(obj->kill_chain_phases);
  memset(obj, 0, sizeof *obj);
}

/* ---- pages -------------------------------------------------------------------------------- */

static void page_add_bad(tq_stix_page *page, size_t index, const cJSON *e, const tq_err *why) {
  tq_stix_bad_object *b = &page->bad[page->n_bad++];
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
  b->index = index;
  b->id = cJSON_IsString(id) ? id->valuestring : NULL;
  b->type = cJSON_IsString(type) ? type->valuestring : NULL;
  snprintf(b->message, sizeof b->message, "object %zu: %.370s", index, why->msg);
}

static tq_code page_objects(tq_stix_page *page, const cJSON *list, size_t max, tq_err *err) {
  size_t n = (size_t)cJSON_GetArraySize(list), i = 0;
  if (max && n > max)
    return tq_err_set(err, TQ_ELIMIT, "page holds %zu objects, more than the limit %zu", n, max);
  if (n == 0)
    return TQ_OK;
  page->objects = calloc(n, sizeof *page->objects);
  page->bad = calloc(n, sizeof *page->bad);
  if (page->objects == NULL || page->bad == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory for a page of %zu objects", n);
  for (const cJSON *e = list->child; e; e = e->next, i++) {
    tq_err why;
    tq_code rc = tq_stix_object_parse(e, &page->objects[page->n_objects], &why);
    if (rc == TQ_ENOMEM)
      return tq_err_set(err, rc, "%s", why.msg);
    if (rc == TQ_OK)
      page->n_objects++;
    else
      page_add_bad(page, i, e, &why);
  }
  return TQ_OK;
}

tq_code tq_stix_page_parse(const char *text, size_t len, size_t max_objects, tq_stix_page *out,
                           tq_err *err) {
  memset(out, 0, sizeof *out);
  const char *end = NULL;
  tq_code rc = TQ_EINVAL;
  out->root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (out->root == NULL) {
    size_t at = end && end >= text ? (size_t)(end - text) : 0;
    rc = tq_err_set(err, TQ_EINVAL, "STIX page: not JSON (error near byte %zu)", at);
    goto fail;
  }
  if (!cJSON_IsObject(out->root)) {
    rc = tq_err_set(err, TQ_EINVAL, "STIX page: expected a JSON object (envelope or bundle)");
    goto fail;
  }
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(out->root, "type");
  const cJSON *objects = cJSON_GetObjectItemCaseSensitive(out->root, "objects");
  const cJSON *more = cJSON_GetObjectItemCaseSensitive(out->root, "more");
  const cJSON *next = cJSON_GetObjectItemCaseSensitive(out->root, "next");
  out->is_bundle = cJSON_IsString(type) && strcmp(type->valuestring, "bundle") == 0;
  if (type && !out->is_bundle) {
    rc = tq_err_set(err, TQ_EINVAL,
                    "STIX page: a single object (type '%.60s'), not an envelope "
                    "or bundle",
                    cJSON_IsString(type) ? type->valuestring : "?");
    goto fail;
  }
  if (objects && !cJSON_IsNull(objects) && !cJSON_IsArray(objects)) {
    rc = tq_err_set(err, TQ_EINVAL, "STIX page: 'objects' must be a list");
    goto fail;
  }
  out->more = cJSON_IsTrue(more);
  out->next = cJSON_IsString(next) ? next->valuestring : NULL;
  if (cJSON_IsArray(objects) && (rc = page_objects(out, objects, max_objects, err)) != TQ_OK)
    goto fail;
  return TQ_OK;
fail:
  tq_stix_page_free(out);
  return rc;
}

void tq_stix_page_free(tq_stix_page *page) {
  for (size_t i = 0; i < page->n_objects; i++)
    tq_stix_object_clear(&page->objects[i]);
  free(page->objects);
  free(page->bad);
  cJSON_Delete(page->root);
  memset(page, 0, sizeof *page);
}

/* ---- TLP ------------------------------------------------------------------------------------ */

const char *tq_stix_tlp_from_marking_ref(const char *id) {
  static const struct {
    const char *id, *tlp;
  } tlp[] = {
      {"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", "TLP:WHITE"},
      {"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", "TLP:GREEN"},
      {"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", "TLP:AMBER"},
      {"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", "TLP:RED"},
      {"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", "TLP:CLEAR"},
      {"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "TLP:GREEN"},
      {"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", "TLP:AMBER"},
      {"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", "TLP:AMBER+STRICT"},
      {"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", "TLP:RED"},
  };
  for (size_t i = 0; id && i < sizeof tlp / sizeof *tlp; i++)
    if (strcmp(tlp[i].id, id) == 0)
      return tlp[i].tlp;
  return NULL;
}
