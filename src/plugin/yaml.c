/* yaml.c: YAML files read with libyaml's event parser into cJSON trees, keeping where each
 * node starts (1-based line and column) so that later checks can name file:line:col. Also
 * the diagnostics list used by every file check of this part. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "tqhost/plugin.h"

#define YAML_MAX_FILE (4u << 20) /* a manifest is a few KiB; refuse anything absurd */
#define YAML_MAX_DEPTH 64

void tq_diags_add(tq_diags *d, const char *fmt, ...) {
  if (d == NULL)
    return;
  char **grown = realloc(d->msgs, (d->n + 1) * sizeof *grown);
  if (grown == NULL)
    return;
  d->msgs = grown;
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) >= 0)
    d->msgs[d->n++] = msg;
  va_end(ap);
}

void tq_diags_free(tq_diags *d) {
  for (size_t i = 0; i < d->n; i++)
    free(d->msgs[i]);
  free(d->msgs);
  d->msgs = NULL;
  d->n = 0;
}

typedef struct yparse {
  yaml_parser_t parser;
  tq_ydoc *doc;
  tq_err *err;
} yparse;

static tq_code mark_add(tq_ydoc *d, const cJSON *node, yaml_mark_t m) {
  if (d->n_marks == d->cap_marks) {
    size_t cap = d->cap_marks ? d->cap_marks * 2 : 64;
    tq_ymark *grown = realloc(d->marks, cap * sizeof *grown);
    if (grown == NULL)
      return TQ_ENOMEM;
    d->marks = grown;
    d->cap_marks = cap;
  }
  d->marks[d->n_marks++] = (tq_ymark){node, (int)m.line + 1, (int)m.column + 1};
  return TQ_OK;
}

int tq_ydoc_pos(const tq_ydoc *d, const cJSON *node, int *line, int *col) {
  *line = *col = 0;
  for (size_t i = 0; d && i < d->n_marks; i++) {
    if (d->marks[i].node == node) {
      *line = d->marks[i].line;
      *col = d->marks[i].col;
      return 1;
    }
  }
  return 0;
}

static tq_code perr(yparse *p, yaml_mark_t m, const char *what) {
  return tq_err_set(p->err, TQ_EINVAL, "%s:%d:%d: %s", p->doc->path, (int)m.line + 1,
                    (int)m.column + 1, what);
}

static tq_code next_event(yparse *p, yaml_event_t *ev) {
  if (yaml_parser_parse(&p->parser, ev))
    return TQ_OK;
  yaml_mark_t m = p->parser.problem_mark;
  return tq_err_set(p->err, TQ_EINVAL, "%s:%d:%d: YAML syntax: %s%s%s", p->doc->path,
                    (int)m.line + 1, (int)m.column + 1,
                    p->parser.problem ? p->parser.problem : "error", p->parser.context ? " " : "",
                    p->parser.context ? p->parser.context : "");
}

/* The YAML 1.2 core schema for a plain scalar: null, booleans, integers, floats; anything
 * else (and any quoted scalar) is a string. */
static cJSON *scalar_node(const yaml_event_t *ev) {
  const char *s = (const char *)ev->data.scalar.value;
  if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return cJSON_CreateString(s);
  if (*s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
      strcmp(s, "NULL") == 0)
    return cJSON_CreateNull();
  if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
    return cJSON_CreateTrue();
  if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
    return cJSON_CreateFalse();
  char *end = NULL;
  errno = 0;
  long long i = strtoll(s, &end, 10);
  if (end != s && *end == '\0' && errno == 0)
    return cJSON_CreateNumber((double)i);
  double d = strtod(s, &end);
  int numeric = (s[0] >= '0' && s[0] <= '9') ||
                ((s[0] == '-' || s[0] == '+' || s[0] == '.') && s[1] >= '0' && s[1] <= '9');
  if (end != s && *end == '\0' && errno == 0 && numeric)
    return cJSON_CreateNumber(d);
  return cJSON_CreateString(s);
}

static tq_code parse_node(yparse *p, yaml_event_t *ev, int depth, cJSON **out);

static tq_code parse_mapping(yparse *p, int depth, cJSON *obj) {
  yaml_event_t ev;
  tq_code rc;
  for (;;) {
    if ((rc = next_event(p, &ev)) != TQ_OK)
      return rc;
    if (ev.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&ev);
      return TQ_OK;
    }
    if (ev.type != YAML_SCALAR_EVENT) {
      rc = perr(p, ev.start_mark, "mapping keys must be plain scalars");
      yaml_event_delete(&ev);
      return rc;
    }
    char *key = tq_strdup((const char *)ev.data.scalar.value);
    yaml_mark_t km = ev.start_mark;
    yaml_event_delete(&ev);
    if (key == NULL)
      return tq_err_set(p->err, TQ_ENOMEM, "%s: out of memory", p->doc->path);
    if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
      char what[300];
      snprintf(what, sizeof what, "duplicate key '%s'", key);
      free(key);
      return perr(p, km, what);
    }
    cJSON *val = NULL;
    if ((rc = next_event(p, &ev)) == TQ_OK)
      rc = parse_node(p, &ev, depth + 1, &val);
    if (rc == TQ_OK && !cJSON_AddItemToObject(obj, key, val)) { /* it copies the key */
      cJSON_Delete(val);
      rc = tq_err_set(p->err, TQ_ENOMEM, "%s: out of memory", p->doc->path);
    }
    free(key);
    if (rc != TQ_OK)
      return rc;
  }
}

static tq_code parse_sequence(yparse *p, int depth, cJSON *arr) {
  yaml_event_t ev;
  tq_code rc;
  for (;;) {
    if ((rc = next_event(p, &ev)) != TQ_OK)
      return rc;
    if (ev.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&ev);
      return TQ_OK;
    }
    cJSON *val = NULL;
    if ((rc = parse_node(p, &ev, depth + 1, &val)) != TQ_OK)
      return rc;
    cJSON_AddItemToArray(arr, val);
  }
}

/* Builds the node that starts with ev (consumed) and everything under it. */
static tq_code parse_node(yparse *p, yaml_event_t *ev, int depth, cJSON **out) {
  tq_code rc = TQ_OK;
  cJSON *node = NULL;
  yaml_mark_t m = ev->start_mark;
  if (depth > YAML_MAX_DEPTH) {
    rc = perr(p, m, "nesting deeper than 64 levels");
    goto fail;
  }
  switch (ev->type) {
  case YAML_SCALAR_EVENT: node = scalar_node(ev); break;
  case YAML_MAPPING_START_EVENT: node = cJSON_CreateObject(); break;
  case YAML_SEQUENCE_START_EVENT: node = cJSON_CreateArray(); break;
  case YAML_ALIAS_EVENT: rc = perr(p, m, "aliases (*name) are not supported"); goto fail;
  default: rc = perr(p, m, "unexpected YAML event"); goto fail;
  }
  if (node == NULL || mark_add(p->doc, node, m) != TQ_OK) {
    rc = tq_err_set(p->err, TQ_ENOMEM, "%s: out of memory", p->doc->path);
    goto fail;
  }
  yaml_event_type_t type = ev->type;
  yaml_event_delete(ev);
  if (type == YAML_MAPPING_START_EVENT)
    rc = parse_mapping(p, depth, node);
  else if (type == YAML_SEQUENCE_START_EVENT)
    rc = parse_sequence(p, depth, node);
  if (rc != TQ_OK) {
    cJSON_Delete(node);
    return rc;
  }
  *out = node;
  return TQ_OK;
fail:
  yaml_event_delete(ev);
  cJSON_Delete(node);
  return rc;
}

/* Skips stream/document start events and parses the first document's root node. */
static tq_code parse_root(yparse *p) {
  yaml_event_t ev;
  tq_code rc;
  for (;;) {
    if ((rc = next_event(p, &ev)) != TQ_OK)
      return rc;
    if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT) {
      yaml_event_delete(&ev);
      continue;
    }
    if (ev.type == YAML_STREAM_END_EVENT) {
      yaml_event_delete(&ev);
      return tq_err_set(p->err, TQ_EINVAL, "%s:1:1: the file is empty", p->doc->path);
    }
    return parse_node(p, &ev, 0, &p->doc->root);
  }
}

tq_code tq_ydoc_parse(const char *name, const char *text, size_t len, tq_ydoc **out, tq_err *err) {
  yparse p = {.err = err};
  tq_code rc = TQ_ENOMEM;
  p.doc = calloc(1, sizeof *p.doc);
  if (p.doc == NULL || (p.doc->path = tq_strdup(name)) == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", name);
    goto fail;
  }
  if (!yaml_parser_initialize(&p.parser)) {
    rc = tq_err_set(err, TQ_ENOMEM, "%s: cannot start the YAML parser", name);
    goto fail;
  }
  yaml_parser_set_input_string(&p.parser, (const unsigned char *)text, len);
  rc = parse_root(&p);
  yaml_parser_delete(&p.parser);
  if (rc != TQ_OK)
    goto fail;
  *out = p.doc;
  return TQ_OK;
fail:
  tq_ydoc_free(p.doc);
  return rc;
}

tq_code tq_ydoc_load(const char *path, tq_ydoc **out, tq_err *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return tq_err_set(err, errno == ENOENT ? TQ_ENOTFOUND : TQ_EIO, "%s: %s", path,
                      strerror(errno));
  tq_buf b;
  tq_buf_init(&b, YAML_MAX_FILE);
  char chunk[8192];
  size_t n;
  tq_code rc = TQ_OK;
  while (rc == TQ_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
    rc = tq_buf_add(&b, chunk, n);
  int bad = ferror(f);
  fclose(f);
  if (rc != TQ_OK || bad) {
    tq_buf_free(&b);
    return bad ? tq_err_set(err, TQ_EIO, "%s: read error", path)
               : tq_err_set(err, TQ_ELIMIT, "%s: larger than 4 MiB", path);
  }
  rc = tq_ydoc_parse(path, b.data ? b.data : "", b.len, out, err);
  tq_buf_free(&b);
  return rc;
}

void tq_ydoc_free(tq_ydoc *d) {
  if (d == NULL)
    return;
  cJSON_Delete(d->root);
  free(d->marks);
  free(d->path);
  free(d);
}
