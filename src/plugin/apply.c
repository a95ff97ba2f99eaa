/* apply.c: a run's change set checked and written to the library in one transaction: the
 * object itself (created when new), attributes and tags, links to other objects, related
 * indicators, the manual score and the status. The plugin's label is the source of all of it
 * (a source of kind "plugin"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/ioc.h"
#include "tqhost/plugin.h"

/* How a link target names its type: an object type ("malware") or an indicator type
 * ("FQDN"); *object_type and *indicator_type get the split (indicator_type may be NULL). */
static tq_code link_kind(const tq_cs_link *l, const char **object_type, const char **indicator_type,
                         tq_err *err) {
  if (tq_lib_object_type_valid(l->object_type)) {
    *object_type = l->object_type;
    *indicator_type = NULL;
    return TQ_OK;
  }
  const char *canon = tq_lib_indicator_type_canon(l->object_type, NULL);
  if (canon == NULL)
    return tq_err_set(err, TQ_EINVAL,
                      "change set: link to '%s': '%s' is neither an object type nor an "
                      "indicator type",
                      l->value, l->object_type);
  *object_type = "indicator";
  *indicator_type = canon;
  return TQ_OK;
}

/* Checks a typed indicator value when ioc knows the type (other types are stored as given). */
static tq_code check_indicator(const char *type, const char *value, const char *what, tq_err *err) {
  const char *canon = tq_lib_indicator_type_canon(type, NULL);
  if (canon == NULL)
    return tq_err_set(err, TQ_EINVAL, "change set: %s '%s': '%s' is not an indicator type", what,
                      value, type);
  tq_ioc_type t = tq_ioc_type_from_name(canon);
  if (t == TQ_IOC_UNKNOWN)
    return *value
               ? TQ_OK
               : tq_err_set(err, TQ_EINVAL, "change set: %s of type %s: empty value", what, type);
  char *norm = NULL;
  tq_code rc = tq_ioc_normalize(t, value, &norm, err);
  free(norm);
  if (rc != TQ_OK)
    tq_err_prefix(err, "change set: %s: ", what);
  return rc;
}

tq_code tq_plugin_changeset_check(const tq_changeset *cs, tq_err *err) {
  for (size_t i = 0; i < cs->n_attrs; i++)
    if (cs->attrs[i].name[0] == '\0')
      return tq_err_set(err, TQ_EINVAL, "change set: attribute %zu has an empty name", i + 1);
  for (size_t i = 0; i < cs->n_tags; i++)
    if (cs->tags[i][0] == '\0')
      return tq_err_set(err, TQ_EINVAL, "change set: tag %zu is empty", i + 1);
  for (size_t i = 0; i < cs->n_links; i++) {
    const char *ot = NULL, *it = NULL;
    tq_code rc = link_kind(&cs->links[i], &ot, &it, err);
    if (rc == TQ_OK && it)
      rc = check_indicator(it, cs->links[i].value, "link", err);
    else if (rc == TQ_OK && cs->links[i].value[0] == '\0')
      rc = tq_err_set(err, TQ_EINVAL, "change set: link to a %s with an empty value", ot);
    if (rc != TQ_OK)
      return rc;
  }
  for (size_t i = 0; i < cs->n_indicators; i++) {
    tq_code rc = check_indicator(cs->indicators[i].indicator_type, cs->indicators[i].value,
                                 "related indicator", err);
    if (rc != TQ_OK)
      return rc;
  }
  if (cs->score > 10)
    return tq_err_set(err, TQ_EINVAL, "change set: score %d is not in 0..10", cs->score);
  if (cs->status && tq_lib_status_from_name(cs->status) == 0)
    return tq_err_set(err, TQ_EINVAL, "change set: '%s' is not a status", cs->status);
  return TQ_OK;
}

static tq_code put_main(tq_lib *lib, const char *label, const tq_object *obj, tq_apply_summary *out,
                        tq_err *err) {
  if (obj->id > 0) {
    out->object_id = obj->id;
    return TQ_OK;
  }
  const char *srcs[1] = {label};
  tq_object_in in = {.object_type = obj->object_type,
                     .indicator_type = obj->indicator_type,
                     .value = obj->value,
                     .sources = srcs,
                     .n_sources = 1};
  return tq_lib_object_put(lib, &in, &out->object_id, &out->object_created, err);
}

/* Links: every target first (created if new), then every link, so that the rows the targets
 * queue are written once for the set rather than once per link. The error reported is the
 * one the link-by-link order would meet first: a failed target at k is reported after the
 * links before k are tried. */
static tq_code put_links(tq_lib *lib, const char *label, const tq_changeset *cs,
                         tq_apply_summary *out, tq_err *err) {
  const char *srcs[1] = {label};
  int64_t local[64], *ids = cs->n_links <= 64 ? local : malloc(cs->n_links * sizeof *ids);
  if (ids == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  size_t n_put = 0;
  tq_code rc = TQ_OK, put_rc = TQ_OK;
  tq_err put_err;
  for (; n_put < cs->n_links; n_put++) {
    const tq_cs_link *l = &cs->links[n_put];
    const char *ot = NULL, *it = NULL;
    put_rc = link_kind(l, &ot, &it, &put_err);
    tq_object_in in = {.object_type = ot,
                       .indicator_type = it,
                       .value = l->value,
                       .description = l->description,
                       .sources = srcs,
                       .n_sources = 1};
    if (put_rc == TQ_OK)
      put_rc = tq_lib_object_put(lib, &in, &ids[n_put], NULL, &put_err);
    if (put_rc != TQ_OK)
      break;
  }
  for (size_t i = 0; rc == TQ_OK && i < n_put; i++) {
    const tq_cs_link *l = &cs->links[i];
    rc = tq_lib_link(lib, out->object_id, ids[i], label, l->link_type, err);
    if (rc != TQ_OK)
      tq_err_prefix(err, "link to %s '%s': ", l->object_type, l->value);
    else
      out->links++;
  }
  if (rc == TQ_OK && put_rc != TQ_OK) {
    *err = put_err;
    rc = tq_err_prefix(err, "link to %s '%s': ", cs->links[n_put].object_type,
                       cs->links[n_put].value);
  }
  if (ids != local)
    free(ids);
  return rc;
}

/* Related indicators: new ones get status Indirect; an existing one keeps its status. */
static tq_code put_indicators(tq_lib *lib, const char *label, const tq_changeset *cs,
                              tq_apply_summary *out, tq_err *err) {
  const char *srcs[1] = {label};
  for (size_t i = 0; i < cs->n_indicators; i++) {
    const tq_cs_indicator *ind = &cs->indicators[i];
    tq_attr_in attrs[TQ_LUA_MAX_ITEMS];
    size_t n = ind->n_attrs < TQ_LUA_MAX_ITEMS ? ind->n_attrs : TQ_LUA_MAX_ITEMS;
    for (size_t k = 0; k < n; k++)
      attrs[k] =
          (tq_attr_in){.name = ind->attrs[k].name, .value = ind->attrs[k].value, .source = label};
    int64_t id = 0;
    tq_err ignore;
    int exists =
        tq_lib_object_find(lib, NULL, ind->indicator_type, ind->value, &id, &ignore) == TQ_OK;
    tq_object_in in = {.indicator_type = ind->indicator_type,
                       .value = ind->value,
                       .status = exists ? NULL : "Indirect",
                       .sources = srcs,
                       .n_sources = 1,
                       .attrs = attrs,
                       .n_attrs = n};
    tq_code rc = tq_lib_object_put(lib, &in, &id, NULL, err);
    if (rc == TQ_OK)
      rc = tq_lib_link(lib, out->object_id, id, label, NULL, err);
    if (rc != TQ_OK)
      return tq_err_prefix(err, "related indicator %s '%s': ", ind->indicator_type, ind->value);
    out->indicators++;
  }
  return TQ_OK;
}

static tq_code put_all(tq_lib *lib, const tq_plugin *p, const tq_object *obj,
                       const tq_changeset *cs, tq_apply_summary *out, tq_err *err) {
  /* the plugin's source: created as kind "plugin" on first use, left as it is afterwards */
  tq_code rc = tq_lib_source_ensure(lib, p->label, "plugin", NULL, err);
  if (rc == TQ_OK)
    rc = put_main(lib, p->label, obj, out, err);
  if (rc == TQ_OK && (cs->n_attrs || cs->n_tags)) {
    tq_attr_in local[64], *attrs = cs->n_attrs <= 64 ? local : malloc(cs->n_attrs * sizeof *attrs);
    if (attrs == NULL)
      return tq_err_set(err, TQ_ENOMEM, "out of memory");
    for (size_t i = 0; i < cs->n_attrs; i++)
      attrs[i] =
          (tq_attr_in){.name = cs->attrs[i].name, .value = cs->attrs[i].value, .source = p->label};
    rc = tq_lib_annotate(lib, out->object_id, attrs, cs->n_attrs, (const char *const *)cs->tags,
                         cs->n_tags, err);
    if (attrs != local)
      free(attrs);
    if (rc == TQ_OK) {
      out->attrs = cs->n_attrs;
      out->tags = cs->n_tags;
    }
  }
  if (rc == TQ_OK)
    rc = put_links(lib, p->label, cs, out, err);
  if (rc == TQ_OK)
    rc = put_indicators(lib, p->label, cs, out, err);
  if (rc == TQ_OK && cs->score >= 0 &&
      (rc = tq_lib_score_set(lib, out->object_id, cs->score, err)) == TQ_OK)
    out->score_set = 1;
  if (rc == TQ_OK && cs->status &&
      (rc = tq_lib_status_set(lib, out->object_id, tq_lib_status_from_name(cs->status), err)) ==
          TQ_OK)
    out->status_set = 1;
  return rc;
}

tq_code tq_plugin_apply(tq_lib *lib, const tq_plugin *p, const tq_object *obj,
                        const tq_changeset *cs, tq_apply_summary *out, tq_err *err) {
  memset(out, 0, sizeof *out);
  tq_code rc = tq_plugin_changeset_check(cs, err);
  if (rc != TQ_OK || (rc = tq_lib_begin(lib, err)) != TQ_OK)
    return rc;
  rc = put_all(lib, p, obj, cs, out, err);
  if (rc == TQ_OK)
    return tq_lib_commit(lib, err);
  tq_lib_rollback(lib);
  memset(out, 0, sizeof *out);
  return rc;
}
