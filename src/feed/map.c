/* map.c: STIX 2.1 objects -> threat library objects (the table is in docs/feeds.md). A page
 * is mapped in two phases: first every object that becomes a library object, then what
 * refers to others (relationships, report and note object_refs), so that references inside
 * one page resolve whatever their order; references to objects of later pages wait in
 * stix_pending and are linked when those arrive. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed_int.h"

/* STIX SDO types with a library object type; value is the SDO's name unless said below. */
static const struct {
  const char *stix, *tq;
} SDO_TYPES[] = {
    {"malware", "malware"},
    {"tool", "tool"},
    {"intrusion-set", "intrusion_set"},
    {"threat-actor", "adversary"},
    {"campaign", "campaign"},
    {"attack-pattern", "attack_pattern"},
    {"vulnerability", "vulnerability"},
    {"identity", "identity"},
    {"location", "location"},
    {"report", "report"},
    {"note", "note"},
    {"course-of-action", "course_of_action"},
};
#define N_SDO_TYPES (sizeof SDO_TYPES / sizeof SDO_TYPES[0])

/* Meta objects that carry no threat data of their own. */
static int is_meta_ignored(const char *type) {
  return strcmp(type, "extension-definition") == 0 || strcmp(type, "language-content") == 0;
}

static const char *tq_type_of(const char *stix_type) {
  for (size_t i = 0; i < N_SDO_TYPES; i++)
    if (strcmp(SDO_TYPES[i].stix, stix_type) == 0)
      return SDO_TYPES[i].tq;
  return NULL;
}

/* ---- attributes under construction ----------------------------------------------------- */

typedef struct attrs {
  tq_attr_in *v;
  size_t n, cap;
  char **owned; /* formatted values, freed with the list */
  size_t n_owned, cap_owned;
  int tlp;
} attrs;

static void attrs_free(attrs *a) {
  for (size_t i = 0; i < a->n_owned; i++)
    free(a->owned[i]);
  free(a->owned);
  free(a->v);
  memset(a, 0, sizeof *a);
}

/* Adds name=value; value is borrowed (it must outlive the list) unless own is set, in which
 * case the list takes it. */
static tq_code attr_add(attrs *a, const char *name, char *value, int own) {
  if (value == NULL)
    return TQ_ENOMEM;
  if (own) {
    if (a->n_owned == a->cap_owned) {
      size_t cap = a->cap_owned ? a->cap_owned * 2 : 8;
      char **v = realloc(a->owned, cap * sizeof *v);
      if (v == NULL) {
        free(value);
        return TQ_ENOMEM;
      }
      a->owned = v;
      a->cap_owned = cap;
    }
    a->owned[a->n_owned++] = value;
  }
  if (*value == '\0')
    return TQ_OK;
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 16;
    tq_attr_in *v = realloc(a->v, cap * sizeof *v);
    if (v == NULL)
      return TQ_ENOMEM;
    a->v = v;
    a->cap = cap;
  }
  a->v[a->n++] = (tq_attr_in){.name = name, .value = value, .source = NULL, .tlp = a->tlp};
  return TQ_OK;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *s = NULL;
  if (vasprintf(&s, f, ap) < 0)
    s = NULL;
  va_end(ap);
  return s;
}

static char *time_text(tq_stix_time t) {
  char buf[TQ_STIX_TIME_LEN];
  tq_stix_time_format(t, buf);
  return tq_strdup(buf);
}

/* An x_ property's scalar as text (owned), or NULL for objects/null. */
static char *scalar_text(const cJSON *v) {
  if (cJSON_IsString(v))
    return tq_strdup(v->valuestring);
  if (cJSON_IsBool(v))
    return tq_strdup(cJSON_IsTrue(v) ? "true" : "false");
  if (cJSON_IsNumber(v))
    return v->valuedouble == (double)(int64_t)v->valuedouble
               ? fmt("%lld", (long long)v->valuedouble)
               : fmt("%g", v->valuedouble);
  if (cJSON_IsObject(v) || cJSON_IsArray(v))
    return cJSON_PrintUnformatted(v);
  return NULL;
}

/* x_ custom properties: one attribute named after the property per scalar value;
 * x_mitre_id (Report Hub's attack patterns) becomes "MITRE ID". */
static tq_code custom_attrs(attrs *a, const cJSON *json) {
  const cJSON *it = NULL;
  tq_code rc = TQ_OK;
  cJSON_ArrayForEach(it, json) {
    if (rc != TQ_OK || it->string == NULL || strncmp(it->string, "x_", 2) != 0)
      continue;
    const char *name = strcmp(it->string, "x_mitre_id") == 0 ? "MITRE ID" : it->string;
    if (cJSON_IsArray(it)) {
      const cJSON *e = NULL;
      cJSON_ArrayForEach(e, it) {
        char *s = scalar_text(e);
        if (s && rc == TQ_OK)
          rc = attr_add(a, name, s, 1);
      }
    } else {
      char *s = scalar_text(it);
      if (s)
        rc = attr_add(a, name, s, 1);
    }
  }
  return rc;
}

static int is_mitre(const char *source_name) {
  return strncmp(source_name, "mitre-", 6) == 0 || strcmp(source_name, "mitre") == 0;
}

static tq_code extref_attrs(attrs *a, const tq_stix_object *o) {
  tq_code rc = TQ_OK;
  for (size_t i = 0; rc == TQ_OK && i < o->n_external_references; i++) {
    const tq_stix_extref *r = &o->external_references[i];
    if (r->external_id && is_mitre(r->source_name))
      rc = attr_add(a, "MITRE ID", (char *)r->external_id, 0);
    if (rc != TQ_OK)
      break;
    if (r->url)
      rc = attr_add(a, "External Reference", (char *)r->url, 0);
    else if (r->external_id && !is_mitre(r->source_name))
      rc = attr_add(a, "External Reference", fmt("%s: %s", r->source_name, r->external_id), 1);
  }
  return rc;
}

/* The attributes every mapped object gets from its common properties. */
static tq_code common_attrs(attrs *a, const tq_stix_object *o) {
  tq_code rc = TQ_OK;
  if (o->confidence >= 0)
    rc = attr_add(a, "Confidence", fmt("%d", o->confidence), 1);
  if (rc == TQ_OK && o->revoked)
    rc = attr_add(a, "Revoked", "true", 0);
  for (size_t i = 0; rc == TQ_OK && i < o->n_kill_chain_phases; i++)
    rc = attr_add(
        a, "Kill Chain Phase",
        fmt("%s:%s", o->kill_chain_phases[i].kill_chain_name, o->kill_chain_phases[i].phase_name),
        1);
  for (size_t i = 0; rc == TQ_OK && i < o->aliases.n; i++)
    rc = attr_add(a, "Alias", (char *)o->aliases.v[i], 0);
  for (size_t i = 0; rc == TQ_OK && i < o->types.n; i++)
    rc = attr_add(a, "Category", (char *)o->types.v[i], 0);
  if (rc == TQ_OK && o->has_valid_until)
    rc = attr_add(a, "Valid Until", time_text(o->valid_until), 1);
  if (rc == TQ_OK)
    rc = extref_attrs(a, o);
  if (rc == TQ_OK)
    rc = custom_attrs(a, o->json);
  return rc;
}

/* ---- TLP ------------------------------------------------------------------------------- */

/* The most restrictive TLP among the object's markings (ThreatQ ids: red 1 .. white 4). */
static int object_tlp(const tq_feed_ingest *in, const tq_stix_object *o) {
  int best = 0;
  for (size_t i = 0; i < o->object_marking_refs.n; i++) {
    const char *ref = o->object_marking_refs.v[i];
    const char *name = tq_stix_tlp_from_marking_ref(ref);
    int tlp = name ? tq_lib_tlp_from_name(name) : 0;
    for (size_t k = 0; !name && k < in->n_markings; k++)
      if (strcmp(in->markings[k].id, ref) == 0)
        tlp = in->markings[k].tlp;
    if (tlp > 0 && (best == 0 || tlp < best))
      best = tlp;
  }
  return best;
}

/* A marking-definition of the feed: remembers the TLP it names under its own id (TLP 1.0
 * definition_type "tlp", or the TLP 2.0 extension). */
static tq_code note_marking(tq_feed_ingest *in, const tq_stix_object *o) {
  const cJSON *def = cJSON_GetObjectItemCaseSensitive(o->json, "definition");
  const cJSON *lvl = cJSON_GetObjectItemCaseSensitive(def, "tlp");
  if (!cJSON_IsString(lvl)) {
    const cJSON *ext = cJSON_GetObjectItemCaseSensitive(o->json, "extensions");
    const cJSON *e = NULL;
    cJSON_ArrayForEach(e, ext) {
      const cJSON *t2 = cJSON_GetObjectItemCaseSensitive(e, "tlp_2_0");
      if (cJSON_IsString(t2))
        lvl = t2;
    }
  }
  int tlp = cJSON_IsString(lvl) ? tq_lib_tlp_from_name(lvl->valuestring) : 0;
  if (tlp <= 0 || tq_stix_tlp_from_marking_ref(o->id))
    return TQ_OK;
  if (in->n_markings == in->cap_markings) {
    size_t cap = in->cap_markings ? in->cap_markings * 2 : 8;
    feed_marking *v = realloc(in->markings, cap * sizeof *v);
    if (v == NULL)
      return TQ_ENOMEM;
    in->markings = v;
    in->cap_markings = cap;
  }
  tq_strlcpy(in->markings[in->n_markings].id, o->id, TQ_STIX_ID_MAX);
  in->markings[in->n_markings++].tlp = tlp;
  return TQ_OK;
}

/* ---- writing --------------------------------------------------------------------------- */

static int64_t stix_seconds(int has, tq_stix_time t) { return has ? t.seconds : 0; }

/* Writes one library object for STIX object o and maps o's id to it. *bad is set (and the
 * object reported) when the library refuses the value. */
static tq_code put_one(tq_feed_ingest *in, const tq_stix_object *o, tq_object_in *obj, int tlp,
                       int *bad, tq_err *err) {
  obj->source_tlp = tlp;
  int64_t id = 0;
  int created = 0;
  tq_err e;
  tq_err_clear(&e);
  tq_code rc = tq_lib_object_put(in->lib, obj, &id, &created, &e);
  if (rc == TQ_EINVAL) {
    *bad = 1;
    feed_bad_add(in->sum, o->id, e.msg);
    return TQ_OK;
  }
  if (rc != TQ_OK) {
    if (err)
      *err = e;
    return rc;
  }
  int is_ind = obj->object_type == NULL || strcmp(obj->object_type, "indicator") == 0;
  in->sum->objects_created += created;
  in->sum->objects_updated += !created;
  if (is_ind) {
    in->sum->indicators_created += created;
    in->sum->indicators_updated += !created;
  }
  return feed_ref_put(in, o->id, id, err);
}

/* Whether an observable's literal can be an indicator's value: a string, or the integer of an
 * ASN ([autonomous-system:number = 15169]; the library writes it AS15169). */
static int literal_is_value(const tq_stix_observable *ob) {
  if (ob->value->kind == TQ_STIX_LIT_STRING)
    return 1;
  return ob->value->kind == TQ_STIX_LIT_INT && strcmp(ob->indicator_type, "ASN") == 0;
}

/* Whether every observable of a parsed pattern can stand alone as a typed indicator. */
static int pattern_is_iocs(const tq_stix_pattern *p) {
  if (!p->simple || p->n_observables == 0)
    return 0;
  for (size_t i = 0; i < p->n_observables; i++) {
    const tq_stix_observable *ob = &p->observables[i];
    if (!ob->independent || ob->negated || ob->indicator_type == NULL || ob->value == NULL ||
        !literal_is_value(ob) || (ob->op != TQ_STIX_OP_EQ && ob->op != TQ_STIX_OP_IN))
      return 0;
  }
  return 1;
}

/* An indicator: one library indicator per ORed observable of a simple STIX pattern; anything
 * else (AND, FOLLOWEDBY, qualifiers, untyped observables, other pattern languages) is kept
 * whole as a signature whose value is the pattern. */
static tq_code map_indicator(tq_feed_ingest *in, const tq_stix_object *o, tq_object_in *obj,
                             attrs *a, int *bad, tq_err *err) {
  tq_stix_pattern *p = NULL;
  int is_stix = o->pattern_type == NULL || strcmp(o->pattern_type, "stix") == 0;
  if (is_stix) {
    tq_err perr;
    tq_err_clear(&perr);
    if (tq_stix_pattern_parse(o->pattern, strlen(o->pattern), &p, NULL, &perr) != TQ_OK) {
      *bad = 1;
      feed_bad_add(in->sum, o->id, perr.msg);
      return TQ_OK;
    }
  }
  tq_code rc = TQ_OK;
  obj->published_at = stix_seconds(o->has_valid_from, o->valid_from);
  if (p && pattern_is_iocs(p)) {
    obj->object_type = "indicator";
    int n_bad = 0;
    for (size_t i = 0; rc == TQ_OK && i < p->n_observables; i++) {
      int one_bad = 0;
      obj->indicator_type = p->observables[i].indicator_type;
      obj->value = p->observables[i].value->text;
      rc = put_one(in, o, obj, a->tlp, &one_bad, err);
      n_bad += one_bad;
    }
    /* Each refused value is listed; the object is malformed only when none was kept. */
    *bad = n_bad == (int)p->n_observables;
  } else {
    obj->object_type = "signature";
    obj->value = o->pattern;
    rc = attr_add(a, "Pattern Type", (char *)(o->pattern_type ? o->pattern_type : "stix"), 0);
    obj->attrs = a->v;
    obj->n_attrs = a->n;
    if (rc == TQ_OK)
      rc = put_one(in, o, obj, a->tlp, bad, err);
  }
  tq_stix_pattern_free(p);
  return rc;
}

/* Whether o is an ATT&CK object its producer retired: x_mitre_deprecated true. */
static int is_deprecated(const tq_stix_object *o) {
  return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o->json, "x_mitre_deprecated"));
}

/* The value a non-indicator SDO is known by. */
static const char *sdo_value(const tq_stix_object *o) {
  if (o->name && *o->name)
    return o->name;
  const char *keys[] = {"abstract", "country", "region", "city", "content", NULL};
  for (size_t i = 0; keys[i]; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o->json, keys[i]);
    if (cJSON_IsString(v) && *v->valuestring)
      return v->valuestring;
  }
  return NULL;
}

/* An SCO with a ThreatQ indicator type: file hashes (one indicator each) and name, else the
 * SCO's main value. *mapped is 0 when nothing of it has a type. */
static tq_code map_sco(tq_feed_ingest *in, const tq_stix_object *o, tq_object_in *obj, int *bad,
                       int *mapped, tq_err *err) {
  tq_code rc = TQ_OK;
  obj->object_type = "indicator";
  const cJSON *hashes = cJSON_GetObjectItemCaseSensitive(o->json, "hashes");
  const cJSON *h = NULL;
  cJSON_ArrayForEach(h, hashes) {
    char path[300];
    snprintf(path, sizeof path, "hashes.'%s'", h->string ? h->string : "");
    const char *it =
        cJSON_IsString(h) ? tq_stix_indicator_type(o->type, path, h->valuestring) : NULL;
    if (it == NULL || rc != TQ_OK)
      continue;
    obj->indicator_type = it;
    obj->value = h->valuestring;
    *mapped = 1;
    rc = put_one(in, o, obj, 0, bad, err);
  }
  const char *path = strcmp(o->type, "file") == 0 ? "name" : "value";
  const char *it = o->value ? tq_stix_indicator_type(o->type, path, o->value) : NULL;
  if (rc == TQ_OK && it) {
    obj->indicator_type = it;
    obj->value = o->value;
    *mapped = 1;
    rc = put_one(in, o, obj, 0, bad, err);
  }
  return rc;
}

/* Phase 1 for one object: its library object(s). *kept is 0 when nothing was written (then
 * the version is not recorded as seen, so that a corrected copy is taken later). */
static tq_code map_object(tq_feed_ingest *in, const tq_stix_object *o, int *kept, int *bad_out,
                          tq_err *err) {
  attrs a;
  memset(&a, 0, sizeof a);
  a.tlp = object_tlp(in, o);
  const char *source = in->source;
  tq_object_in obj = {.sources = &source, .n_sources = 1, .description = o->description};
  int bad = 0, mapped = 1;
  tq_code rc = common_attrs(&a, o);
  if (rc != TQ_OK) {
    attrs_free(&a);
    return tq_err_set(err, TQ_ENOMEM, "feed: out of memory mapping %s", o->id);
  }
  obj.attrs = a.v;
  obj.n_attrs = a.n;
  obj.tags = o->labels.v;
  obj.n_tags = o->labels.n;
  if (strcmp(o->type, "indicator") == 0) {
    rc = map_indicator(in, o, &obj, &a, &bad, err);
  } else if (o->kind == TQ_STIX_SCO) {
    rc = map_sco(in, o, &obj, &bad, &mapped, err);
  } else if ((obj.object_type = tq_type_of(o->type)) != NULL) {
    obj.value = sdo_value(o);
    obj.published_at =
        o->has_published ? o->published.seconds : stix_seconds(o->has_created, o->created);
    if (strcmp(o->type, "note") == 0) {
      const cJSON *c = cJSON_GetObjectItemCaseSensitive(o->json, "content");
      obj.description = cJSON_IsString(c) ? c->valuestring : NULL;
    }
    /* Named objects are one library object per (type, name), so a revoked or deprecated
     * object must not share it with the current one of the same name (ATT&CK keeps both: the
     * old technique revoked-by the new, often under the same name): its Revoked attribute
     * would lower the current object's score. It is kept apart under "<name> (revoked)" or
     * "<name> (deprecated)". */
    char *apart = NULL;
    if (obj.value && (o->revoked || is_deprecated(o))) {
      apart = fmt("%s (%s)", obj.value, o->revoked ? "revoked" : "deprecated");
      obj.value = apart;
      if (apart == NULL)
        rc = tq_err_set(err, TQ_ENOMEM, "feed: out of memory mapping %s", o->id);
    }
    if (rc == TQ_OK && obj.value == NULL) {
      bad = 1;
      feed_bad_add(in->sum, o->id, "no name (or other value) to know the object by");
    } else if (rc == TQ_OK) {
      rc = put_one(in, o, &obj, a.tlp, &bad, err);
    }
    free(apart);
  } else {
    mapped = 0;
  }
  attrs_free(&a);
  if (rc == TQ_OK && !mapped) {
    in->sum->unknown++;
    rc = feed_count_add(&in->sum->unknown_types, &in->sum->n_unknown_types, o->type, 1) == TQ_OK
             ? TQ_OK
             : tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
  }
  *kept = rc == TQ_OK && mapped && !bad;
  *bad_out = bad;
  return rc;
}

/* Phase 2 for one object: its links. */
static tq_code map_refs(tq_feed_ingest *in, const tq_stix_object *o, tq_err *err) {
  tq_code rc = TQ_OK;
  if (o->relationship_type && o->source_ref && o->target_ref)
    return feed_link_refs(in, o->source_ref, o->target_ref, o->relationship_type, err);
  for (size_t i = 0; rc == TQ_OK && i < o->object_refs.n; i++) {
    const char *ref = o->object_refs.v[i];
    /* Relationships are links already and markings are not objects. */
    if (tq_str_startswith(ref, "relationship--") ||
        tq_str_startswith(ref, "marking-definition--") || tq_str_startswith(ref, "sighting--"))
      continue;
    rc = feed_link_refs(in, o->id, ref, NULL, err);
  }
  return rc;
}

static tq_stix_time version_of(const tq_stix_object *o) {
  if (o->has_modified)
    return o->modified;
  if (o->has_created)
    return o->created;
  return (tq_stix_time){0, 0};
}

static int is_link_object(const tq_stix_object *o) { return strcmp(o->type, "relationship") == 0; }

/* Phase 1 over one object, with the idempotency check. *fresh tells phase 2 to link it. */
static tq_code ingest_one(tq_feed_ingest *in, const tq_stix_page *page, size_t i, char *fresh,
                          tq_err *err) {
  const tq_stix_object *o = &page->objects[i];
  int kept = 0, bad = 0;
  tq_stix_time ver = version_of(o);
  tq_code rc = TQ_OK;
  if (feed_page_seen(in, i, ver)) {
    in->sum->skipped++;
    return TQ_OK;
  }
  if (strcmp(o->type, "marking-definition") == 0) {
    rc = note_marking(in, o) == TQ_OK ? TQ_OK : tq_err_set(err, TQ_ENOMEM, "out of memory");
    kept = 1;
  } else if (is_meta_ignored(o->type) || is_link_object(o)) {
    kept = 1;
  } else if (strcmp(o->type, "sighting") == 0) {
    kept = 0;
    in->sum->unknown++;
    rc = feed_count_add(&in->sum->unknown_types, &in->sum->n_unknown_types, o->type, 1);
  } else {
    rc = map_object(in, o, &kept, &bad, err);
  }
  in->sum->malformed += bad;
  if (rc == TQ_OK && kept) {
    *fresh = 1;
    in->sum->revoked += o->revoked;
    if (!is_link_object(o))
      rc = feed_count_add(&in->sum->by_type, &in->sum->n_by_type, o->type, 1);
    if (rc == TQ_OK)
      rc = feed_page_seen_put(in, page, i, ver, err);
  }
  return rc;
}

tq_code tq_feed_ingest_page(tq_feed_ingest *in, const tq_stix_page *page, tq_err *err) {
  tq_code rc = TQ_OK;
  for (size_t i = 0; i < page->n_bad; i++) {
    char where[64];
    snprintf(where, sizeof where, "object %zu", page->bad[i].index);
    feed_bad_add(in->sum, page->bad[i].id ? page->bad[i].id : where, page->bad[i].message);
    in->sum->malformed++;
  }
  char *fresh = calloc(page->n_objects + 1, 1);
  if (fresh == NULL)
    return tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
  rc = feed_page_begin(in, page, err);
  for (size_t i = 0; rc == TQ_OK && i < page->n_objects; i++)
    rc = ingest_one(in, page, i, &fresh[i], err);
  if (rc == TQ_OK)
    rc = feed_page_write(in, err);
  /* Phase 2: links, now that every object of the page has its library id. */
  for (size_t i = 0; rc == TQ_OK && i < page->n_objects; i++) {
    const tq_stix_object *o = &page->objects[i];
    if (fresh[i] && (is_link_object(o) || o->object_refs.n))
      rc = map_refs(in, o, err);
    if (rc == TQ_OK && fresh[i] && is_link_object(o))
      rc = feed_count_add(&in->sum->by_type, &in->sum->n_by_type, o->type, 1);
  }
  if (rc == TQ_OK)
    rc = feed_resolve_pending(in, err);
  free(fresh);
  return rc;
}
