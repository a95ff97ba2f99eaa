/* action_batch.c: the protocol of batch entries (a bulk API such as Noise Control's batch
 * lookup). The runner hands one call a list of objects as a JSON text in obj.description; the
 * entry answers with ctx:show{items = {...}}, one entry per object:
 *   {id = <object id>, found = true|false, reason = "<why it failed>" (failed only),
 *    changes = {attributes = {{name=, value=}...}, links = {{object_type=, value=,
 *               link_type=, description=}...}, indicators = {{type=, value=,
 *               attributes = {name = value}}...}, score = n, status = "..."}}
 * Here: building the list and reading the answer back into one change set per object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action_int.h"

char *action_batch_items_json(const int64_t *ids, char *const *values, const int *scores,
                              size_t n) {
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr && i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
      cJSON_Delete(o);
      cJSON_Delete(arr);
      return NULL;
    }
    cJSON_AddNumberToObject(o, "id", (double)ids[i]);
    cJSON_AddStringToObject(o, "value", values[i]);
    cJSON_AddNumberToObject(o, "score", scores[i]);
  }
  char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
  cJSON_Delete(arr);
  return s;
}

static const char *str_of(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Copies s (NULL stays NULL); *oom set when a copy fails. */
static char *dup_or_null(const char *s, int *oom) {
  if (s == NULL)
    return NULL;
  char *d = tq_strdup(s);
  *oom |= d == NULL;
  return d;
}

static void read_attrs(const cJSON *arr, tq_cs_attr **out, size_t *n, int *oom) {
  int count = cJSON_GetArraySize(arr);
  if (count <= 0 || (*out = calloc((size_t)count, sizeof **out)) == NULL) {
    *oom |= count > 0;
    return;
  }
  const cJSON *a;
  cJSON_ArrayForEach(a, arr) {
    const char *name = str_of(a, "name"), *value = str_of(a, "value");
    if (name && value) {
      (*out)[*n].name = dup_or_null(name, oom);
      (*out)[*n].value = dup_or_null(value, oom);
      (*n)++;
    }
  }
}

/* {name = value} of a related indicator. */
static void read_attr_map(const cJSON *map, tq_cs_attr **out, size_t *n, int *oom) {
  int count = cJSON_GetArraySize(map);
  if (!cJSON_IsObject(map) || count <= 0 || (*out = calloc((size_t)count, sizeof **out)) == NULL) {
    *oom |= cJSON_IsObject(map) && count > 0;
    return;
  }
  const cJSON *a;
  cJSON_ArrayForEach(a, map) {
    if (cJSON_IsString(a)) {
      (*out)[*n].name = dup_or_null(a->string, oom);
      (*out)[*n].value = dup_or_null(a->valuestring, oom);
      (*n)++;
    }
  }
}

static void read_links(const cJSON *arr, tq_changeset *cs, int *oom) {
  int count = cJSON_GetArraySize(arr);
  if (count <= 0 || (cs->links = calloc((size_t)count, sizeof *cs->links)) == NULL) {
    *oom |= count > 0;
    return;
  }
  const cJSON *l;
  cJSON_ArrayForEach(l, arr) {
    if (str_of(l, "object_type") && str_of(l, "value")) {
      tq_cs_link *d = &cs->links[cs->n_links++];
      d->object_type = dup_or_null(str_of(l, "object_type"), oom);
      d->value = dup_or_null(str_of(l, "value"), oom);
      d->link_type = dup_or_null(str_of(l, "link_type"), oom);
      d->description = dup_or_null(str_of(l, "description"), oom);
    }
  }
}

static void read_indicators(const cJSON *arr, tq_changeset *cs, int *oom) {
  int count = cJSON_GetArraySize(arr);
  if (count <= 0 || (cs->indicators = calloc((size_t)count, sizeof *cs->indicators)) == NULL) {
    *oom |= count > 0;
    return;
  }
  const cJSON *i;
  cJSON_ArrayForEach(i, arr) {
    if (str_of(i, "type") && str_of(i, "value")) {
      tq_cs_indicator *d = &cs->indicators[cs->n_indicators++];
      d->indicator_type = dup_or_null(str_of(i, "type"), oom);
      d->value = dup_or_null(str_of(i, "value"), oom);
      read_attr_map(cJSON_GetObjectItemCaseSensitive(i, "attributes"), &d->attrs, &d->n_attrs, oom);
    }
  }
}

static void read_changes(const cJSON *ch, tq_changeset *cs, int *oom) {
  read_attrs(cJSON_GetObjectItemCaseSensitive(ch, "attributes"), &cs->attrs, &cs->n_attrs, oom);
  read_links(cJSON_GetObjectItemCaseSensitive(ch, "links"), cs, oom);
  read_indicators(cJSON_GetObjectItemCaseSensitive(ch, "indicators"), cs, oom);
  const cJSON *score = cJSON_GetObjectItemCaseSensitive(ch, "score");
  if (cJSON_IsNumber(score))
    cs->score = score->valueint < 0 ? 0 : score->valueint;
  cs->status = dup_or_null(str_of(ch, "status"), oom);
}

tq_code action_batch_parse(const cJSON *show, batch_item **out, size_t *n, tq_err *err) {
  *out = NULL;
  *n = 0;
  const cJSON *items = cJSON_GetObjectItemCaseSensitive(show, "items");
  if (!cJSON_IsArray(items))
    return tq_err_set(err, TQ_EINVAL, "the batch entry did not show a list 'items'");
  int count = cJSON_GetArraySize(items);
  if (count == 0)
    return TQ_OK;
  batch_item *list = calloc((size_t)count, sizeof *list);
  if (list == NULL)
    return tq_err_set(err, TQ_ENOMEM, "batch result: out of memory");
  int oom = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, items) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    if (!cJSON_IsNumber(id))
      continue;
    batch_item *b = &list[(*n)++];
    tq_changeset_init(&b->cs);
    b->id = (int64_t)id->valuedouble;
    b->found = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(it, "found"));
    b->reason = dup_or_null(str_of(it, "reason"), &oom);
    read_changes(cJSON_GetObjectItemCaseSensitive(it, "changes"), &b->cs, &oom);
  }
  *out = list;
  if (oom) {
    for (size_t i = 0; i < *n; i++)
      batch_item_free(&list[i]);
    free(list);
    *out = NULL;
    *n = 0;
    return tq_err_set(err, TQ_ENOMEM, "batch result: out of memory");
  }
  return TQ_OK;
}

void batch_item_free(batch_item *it) {
  free(it->reason);
  it->reason = NULL;
  tq_changeset_free(&it->cs);
}
