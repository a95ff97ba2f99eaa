/* render.c: the one JSON shape of an object in every answer of the API (render.h): ThreatQ's
 * field names, its "YYYY-MM-DD hh:mm:ss" dates, and the with= parts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

static const struct {
  const char *name;
  unsigned bit;
} WITH_NAMES[] = {
    {"attributes", TQ_WITH_ATTRIBUTES},
    {"sources", TQ_WITH_SOURCES},
    {"score", TQ_WITH_SCORE},
    {"tags", TQ_WITH_TAGS},
    {"type", TQ_WITH_TYPE},
    {"status", TQ_WITH_STATUS},
};

int tq_render_with(const tq_req *rq, unsigned *with, tq_resp *rs) {
  *with = 0;
  const char *arg = tq_req_arg(rq, "with");
  if (arg == NULL)
    return 1;
  const char *p = arg;
  while (*p) {
    size_t n = strcspn(p, ",");
    while (n > 0 && *p == ' ')
      p++, n--;
    size_t m = n;
    while (m > 0 && p[m - 1] == ' ')
      m--;
    if (m > 0) {
      size_t i = 0;
      for (; i < sizeof WITH_NAMES / sizeof WITH_NAMES[0]; i++)
        if (strlen(WITH_NAMES[i].name) == m && strncmp(WITH_NAMES[i].name, p, m) == 0)
          break;
      if (i == sizeof WITH_NAMES / sizeof WITH_NAMES[0]) {
        tq_resp_invalid(rs, "with",
                        "'%.*s' is not one of attributes, sources, score, tags, type, status",
                        (int)(m > 64 ? 64 : m), p);
        return 0;
      }
      *with |= WITH_NAMES[i].bit;
    }
    p += n;
    if (*p == ',')
      p++;
  }
  return 1;
}

unsigned tq_render_parts(unsigned with) {
  return ((with & TQ_WITH_SOURCES) ? TQ_LIB_PART_SOURCES : 0) |
         ((with & TQ_WITH_ATTRIBUTES) ? TQ_LIB_PART_ATTRS : 0) |
         ((with & TQ_WITH_TAGS) ? TQ_LIB_PART_TAGS : 0);
}

static void add_date(cJSON *j, const char *key, int64_t t) {
  if (t <= 0) {
    cJSON_AddNullToObject(j, key);
    return;
  }
  char buf[20];
  tq_time_format(t, buf);
  cJSON_AddStringToObject(j, key, buf);
}

static void add_str(cJSON *j, const char *key, const char *s) {
  if (s)
    cJSON_AddStringToObject(j, key, s);
  else
    cJSON_AddNullToObject(j, key);
}

/* ThreatQ's field that names an object of this type besides "value". */
static const char *name_field(const char *object_type) {
  if (strcmp(object_type, "adversary") == 0 || strcmp(object_type, "malware") == 0 ||
      strcmp(object_type, "signature") == 0)
    return "name";
  if (strcmp(object_type, "event") == 0 || strcmp(object_type, "report") == 0)
    return "title";
  return NULL;
}

static cJSON *source_json(int64_t id, const char *name, int tlp) {
  cJSON *s = cJSON_CreateObject();
  if (s == NULL)
    return NULL;
  cJSON_AddNumberToObject(s, "id", (double)id);
  cJSON_AddNumberToObject(s, "source_id", (double)id);
  cJSON_AddStringToObject(s, "name", name);
  if (tlp > 0) {
    cJSON_AddNumberToObject(s, "tlp_id", tlp);
    cJSON_AddStringToObject(s, "tlp_name", tq_lib_tlp_name(tlp));
  } else {
    cJSON_AddNullToObject(s, "tlp_id");
    cJSON_AddNullToObject(s, "tlp_name");
  }
  return s;
}

cJSON *tq_render_attribute(const tq_object *o, const tq_attr *a) {
  cJSON *j = cJSON_CreateObject();
  if (j == NULL)
    return NULL;
  cJSON_AddNumberToObject(j, "id", (double)a->id);
  cJSON_AddStringToObject(j, "name", a->name);
  cJSON_AddStringToObject(j, "value", a->value);
  if (o)
    cJSON_AddNumberToObject(
        j, strcmp(o->object_type, "indicator") == 0 ? "indicator_id" : "object_id", (double)o->id);
  cJSON *srcs = cJSON_AddArrayToObject(j, "sources");
  cJSON_AddItemToArray(srcs, source_json(a->source_id, a->source ? a->source : "", a->tlp));
  return j;
}

cJSON *tq_render_object(const tq_object *o, unsigned with) {
  cJSON *j = cJSON_CreateObject();
  if (j == NULL)
    return NULL;
  int indicator = strcmp(o->object_type, "indicator") == 0;
  cJSON_AddNumberToObject(j, "id", (double)o->id);
  cJSON_AddStringToObject(j, "value", o->value);
  const char *nf = name_field(o->object_type);
  if (nf)
    cJSON_AddStringToObject(j, nf, o->value);
  cJSON_AddStringToObject(j, "object_code", o->object_type);
  if (indicator) {
    int type_id = 0;
    for (size_t i = 0; o->indicator_type && tq_lib_indicator_type_at(i); i++)
      if (strcmp(tq_lib_indicator_type_at(i), o->indicator_type) == 0)
        type_id = (int)i + 1;
    if (type_id)
      cJSON_AddNumberToObject(j, "type_id", type_id);
    else
      cJSON_AddNullToObject(j, "type_id");
    cJSON_AddNumberToObject(j, "status_id", o->status);
    add_str(j, "class", o->indicator_class);
    if (with & TQ_WITH_TYPE) {
      cJSON *t = cJSON_AddObjectToObject(j, "type");
      cJSON_AddNumberToObject(t, "id", type_id);
      add_str(t, "name", o->indicator_type);
      add_str(t, "class", o->indicator_class);
    }
    if (with & TQ_WITH_STATUS) {
      cJSON *s = cJSON_AddObjectToObject(j, "status");
      cJSON_AddNumberToObject(s, "id", o->status);
      add_str(s, "name", tq_lib_status_name(o->status));
    }
  }
  add_str(j, "description", o->description);
  if (with & TQ_WITH_SCORE) {
    cJSON *s = cJSON_AddObjectToObject(j, "score");
    char gen[32];
    snprintf(gen, sizeof gen, "%.2f", o->score_generated);
    cJSON_AddNumberToObject(s, "indicator_id", (double)o->id);
    cJSON_AddStringToObject(s, "generated_score", gen);
    if (o->score_manual >= 0)
      cJSON_AddNumberToObject(s, "manual_score", o->score_manual);
    else
      cJSON_AddNullToObject(s, "manual_score");
    cJSON_AddNumberToObject(s, "score", o->score);
  } else {
    cJSON_AddNumberToObject(j, "score", o->score);
  }
  add_date(j, "created_at", o->created_at);
  add_date(j, "updated_at", o->updated_at);
  add_date(j, "published_at", o->published_at);
  add_date(j, "expires_at", o->expires_at);
  if (with & TQ_WITH_SOURCES) {
    cJSON *arr = cJSON_AddArrayToObject(j, "sources");
    for (size_t i = 0; i < o->n_sources; i++)
      cJSON_AddItemToArray(arr, source_json(o->source_ids ? o->source_ids[i] : 0, o->sources[i],
                                            o->source_tlps ? o->source_tlps[i] : 0));
  }
  if (with & TQ_WITH_ATTRIBUTES) {
    cJSON *arr = cJSON_AddArrayToObject(j, "attributes");
    for (size_t i = 0; i < o->n_attrs; i++)
      cJSON_AddItemToArray(arr, tq_render_attribute(o, &o->attrs[i]));
  }
  if (with & TQ_WITH_TAGS) {
    cJSON *arr = cJSON_AddArrayToObject(j, "tags");
    for (size_t i = 0; i < o->n_tags; i++) {
      cJSON *t = cJSON_CreateObject();
      cJSON_AddNumberToObject(t, "id", o->tag_ids ? (double)o->tag_ids[i] : 0);
      cJSON_AddStringToObject(t, "name", o->tags[i]);
      cJSON_AddItemToArray(arr, t);
    }
  }
  return j;
}
