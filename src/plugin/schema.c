/* schema.c: a small JSON Schema (draft 2020-12) validator for exactly the keywords the
 * schemas of schemas/ use (listed in plugin.h), plus finding and loading those schemas. No
 * JSON Schema library for C is packaged in Debian; this one reports every violation with the
 * instance node, so YAML callers can point at file:line:col. */
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tqhost/plugin.h"

#define PATH_MAX_LEN 512

typedef struct vctx {
  const cJSON *root; /* for $ref */
  tq_schema_error_fn fn;
  void *ud;
  size_t n;
  int depth;
} vctx;

static void report(vctx *v, const cJSON *node, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report(vctx *v, const cJSON *node, const char *path, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  v->n++;
  if (v->fn)
    v->fn(v->ud, node, path, msg);
}

static const char *json_type(const cJSON *x) {
  if (cJSON_IsObject(x))
    return "object";
  if (cJSON_IsArray(x))
    return "array";
  if (cJSON_IsString(x))
    return "string";
  if (cJSON_IsBool(x))
    return "boolean";
  if (cJSON_IsNull(x))
    return "null";
  if (cJSON_IsNumber(x))
    return x->valuedouble == floor(x->valuedouble) ? "integer" : "number";
  return "invalid";
}

static int type_is(const cJSON *x, const char *want) {
  const char *t = json_type(x);
  return strcmp(t, want) == 0 || (strcmp(want, "number") == 0 && strcmp(t, "integer") == 0);
}

/* A short text of a scalar for messages. */
static void scalar_text(const cJSON *x, char *out, size_t n) {
  if (cJSON_IsString(x))
    snprintf(out, n, "'%s'", x->valuestring);
  else if (cJSON_IsNumber(x))
    snprintf(out, n, "%g", x->valuedouble);
  else
    snprintf(out, n, "%s", json_type(x));
}

static void child_path(char *out, const char *path, const char *key, int index) {
  if (key)
    snprintf(out, PATH_MAX_LEN, "%s%s%s", path, *path ? "." : "", key);
  else
    snprintf(out, PATH_MAX_LEN, "%s[%d]", path, index);
}

static void validate(vctx *v, const cJSON *s, const cJSON *x, const char *path);

static void check_type(vctx *v, const cJSON *t, const cJSON *x, const char *path, int *ok) {
  if (cJSON_IsString(t)) {
    *ok = type_is(x, t->valuestring);
  } else {
    *ok = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, t) { *ok |= cJSON_IsString(e) && type_is(x, e->valuestring); }
  }
  if (!*ok) {
    char *want = cJSON_PrintUnformatted(t);
    report(v, x, path, "is %s, expected %s", json_type(x), want ? want : "?");
    free(want);
  }
}

static void check_enum(vctx *v, const cJSON *e, const cJSON *x, const char *path) {
  const cJSON *opt;
  cJSON_ArrayForEach(opt, e) {
    if (cJSON_Compare(opt, x, 1))
      return;
  }
  char got[160];
  scalar_text(x, got, sizeof got);
  char *list = cJSON_PrintUnformatted(e);
  report(v, x, path, "%s is not one of %s", got, list ? list : "the allowed values");
  free(list);
}

static void check_pattern(vctx *v, const char *pat, const cJSON *x, const char *path) {
  regex_t re;
  if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0) {
    report(v, x, path, "schema pattern '%s' does not compile", pat);
    return;
  }
  if (regexec(&re, x->valuestring, 0, NULL, 0) != 0)
    report(v, x, path, "'%s' does not match %s", x->valuestring, pat);
  regfree(&re);
}

static void check_object(vctx *v, const cJSON *s, const cJSON *x, const char *path) {
  char sub[PATH_MAX_LEN];
  const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
  const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
  const cJSON *extra = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
  const cJSON *k;
  cJSON_ArrayForEach(k, req) {
    if (cJSON_IsString(k) && !cJSON_GetObjectItemCaseSensitive(x, k->valuestring))
      report(v, x, path, "missing required field '%s'", k->valuestring);
  }
  const cJSON *m;
  cJSON_ArrayForEach(m, x) {
    const cJSON *ps = props ? cJSON_GetObjectItemCaseSensitive(props, m->string) : NULL;
    child_path(sub, path, m->string, 0);
    if (ps)
      validate(v, ps, m, sub);
    else if (cJSON_IsFalse(extra))
      report(v, m, sub, "unknown field '%s'", m->string);
    else if (cJSON_IsObject(extra))
      validate(v, extra, m, sub);
  }
}

static void check_array(vctx *v, const cJSON *s, const cJSON *x, const char *path) {
  const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
  const cJSON *lo = cJSON_GetObjectItemCaseSensitive(s, "minItems");
  const cJSON *hi = cJSON_GetObjectItemCaseSensitive(s, "maxItems");
  int n = cJSON_GetArraySize(x);
  if (cJSON_IsNumber(lo) && n < lo->valuedouble)
    report(v, x, path, "has %d items, at least %g needed", n, lo->valuedouble);
  if (cJSON_IsNumber(hi) && n > hi->valuedouble)
    report(v, x, path, "has %d items, at most %g allowed", n, hi->valuedouble);
  if (!cJSON_IsObject(items))
    return;
  char sub[PATH_MAX_LEN];
  int i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, x) {
    child_path(sub, path, NULL, i++);
    validate(v, items, e, sub);
  }
}

static void check_string(vctx *v, const cJSON *s, const cJSON *x, const char *path) {
  const cJSON *lo = cJSON_GetObjectItemCaseSensitive(s, "minLength");
  const cJSON *hi = cJSON_GetObjectItemCaseSensitive(s, "maxLength");
  const cJSON *pat = cJSON_GetObjectItemCaseSensitive(s, "pattern");
  size_t n = strlen(x->valuestring);
  if (cJSON_IsNumber(lo) && (double)n < lo->valuedouble)
    report(v, x, path, "is shorter than %g characters", lo->valuedouble);
  if (cJSON_IsNumber(hi) && (double)n > hi->valuedouble)
    report(v, x, path, "is longer than %g characters", hi->valuedouble);
  if (cJSON_IsString(pat))
    check_pattern(v, pat->valuestring, x, path);
}

static void check_number(vctx *v, const cJSON *s, const cJSON *x, const char *path) {
  const cJSON *lo = cJSON_GetObjectItemCaseSensitive(s, "minimum");
  const cJSON *hi = cJSON_GetObjectItemCaseSensitive(s, "maximum");
  if (cJSON_IsNumber(lo) && x->valuedouble < lo->valuedouble)
    report(v, x, path, "%g is below the minimum %g", x->valuedouble, lo->valuedouble);
  if (cJSON_IsNumber(hi) && x->valuedouble > hi->valuedouble)
    report(v, x, path, "%g is above the maximum %g", x->valuedouble, hi->valuedouble);
}

static const char *const KNOWN[] = {"type",     "required",  "properties", "additionalProperties",
                                    "enum",     "const",     "items",      "minItems",
                                    "maxItems", "minLength", "maxLength",  "minimum",
                                    "maximum",  "pattern",   "$ref",       "$defs",
                                    "$schema",  "$id",       "title",      "description",
                                    "default",  "examples",  "$comment",   NULL};

static void check_keywords(vctx *v, const cJSON *s, const cJSON *x, const char *path) {
  const cJSON *k;
  cJSON_ArrayForEach(k, s) {
    int known = 0;
    for (size_t i = 0; KNOWN[i] && !known; i++)
      known = strcmp(KNOWN[i], k->string) == 0;
    if (!known)
      report(v, x, path, "schema keyword '%s' is not supported by this validator", k->string);
  }
}

/* Resolves "#/$defs/NAME" against the root schema. */
static const cJSON *resolve_ref(vctx *v, const char *ref) {
  if (strncmp(ref, "#/$defs/", 8) != 0)
    return NULL;
  return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(v->root, "$defs"),
                                          ref + 8);
}

static void validate(vctx *v, const cJSON *s, const cJSON *x, const char *path) {
  if (!cJSON_IsObject(s) || ++v->depth > 64) {
    if (v->depth > 64)
      report(v, x, path, "schema nesting too deep (a $ref cycle?)");
    v->depth--;
    return;
  }
  check_keywords(v, s, x, path);
  const cJSON *ref = cJSON_GetObjectItemCaseSensitive(s, "$ref");
  if (cJSON_IsString(ref)) {
    const cJSON *target = resolve_ref(v, ref->valuestring);
    if (target)
      validate(v, target, x, path);
    else
      report(v, x, path, "schema $ref '%s' not found", ref->valuestring);
  }
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "type");
  int ok = 1;
  if (t)
    check_type(v, t, x, path, &ok);
  if (ok) { /* a value of the wrong type gets one message, not one per keyword */
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(s, "enum");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(s, "const");
    if (cJSON_IsArray(e))
      check_enum(v, e, x, path);
    if (c && !cJSON_Compare(c, x, 1)) {
      char want[160];
      scalar_text(c, want, sizeof want);
      report(v, x, path, "must be %s", want);
    }
    if (cJSON_IsObject(x))
      check_object(v, s, x, path);
    else if (cJSON_IsArray(x))
      check_array(v, s, x, path);
    else if (cJSON_IsString(x))
      check_string(v, s, x, path);
    else if (cJSON_IsNumber(x))
      check_number(v, s, x, path);
  }
  v->depth--;
}

size_t tq_schema_validate(const cJSON *schema, const cJSON *instance, tq_schema_error_fn fn,
                          void *ud) {
  vctx v = {.root = schema, .fn = fn, .ud = ud};
  validate(&v, schema, instance, "");
  return v.n;
}

typedef struct ydiag {
  const tq_ydoc *doc;
  tq_diags *diags;
} ydiag;

static void ydoc_report(void *ud, const cJSON *node, const char *path, const char *msg) {
  ydiag *y = ud;
  int line, col;
  tq_ydoc_pos(y->doc, node, &line, &col);
  tq_diags_add(y->diags, "%s:%d:%d: %s: %s", y->doc->path, line, col, *path ? path : "(top)", msg);
}

size_t tq_schema_check_ydoc(const cJSON *schema, const tq_ydoc *doc, tq_diags *diags) {
  ydiag y = {doc, diags};
  return tq_schema_validate(schema, doc->root, ydoc_report, &y);
}

/* ---- finding schemas ----------------------------------------------------------------------- */

static tq_code read_json(const char *path, cJSON **out, tq_err *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return tq_err_set(err, TQ_ENOTFOUND, "%s: cannot open", path);
  tq_buf b;
  tq_buf_init(&b, 1u << 20);
  char chunk[4096];
  size_t n;
  tq_code rc = TQ_OK;
  while (rc == TQ_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
    rc = tq_buf_add(&b, chunk, n);
  fclose(f);
  if (rc == TQ_OK) {
    *out = cJSON_Parse(b.data ? b.data : "");
    if (*out == NULL)
      rc = tq_err_set(err, TQ_ECORRUPT, "%s: not valid JSON", path);
  } else {
    rc = tq_err_set(err, TQ_ELIMIT, "%s: larger than 1 MiB", path);
  }
  tq_buf_free(&b);
  return rc;
}

/* The folders searched are tq_host_dir's (datadir.c): $TQHOST_SCHEMAS, else beside the
 * executable, else the installed data folder. */
tq_code tq_schema_path(const char *name, char *out, size_t n, tq_err *err) {
  char dirs[TQ_HOST_DIR_MAX][4096], searched[1024] = "";
  int nd = 0;
  tq_host_dir_candidates(TQ_DIR_SCHEMAS, dirs, &nd, NULL);
  size_t used = 0;
  for (int i = 0; i < nd; i++) {
    snprintf(out, n, "%s/%s", dirs[i], name);
    if (access(out, F_OK) == 0)
      return TQ_OK;
    int w = snprintf(searched + used, sizeof searched - used, "%s%s", i ? ", " : "", dirs[i]);
    if (w > 0 && (size_t)w < sizeof searched - used)
      used += (size_t)w;
  }
  if (n)
    out[0] = '\0';
  return tq_err_set(err, TQ_ENOTFOUND,
                    "schema %s not found in: %s (install the schemas there, or set "
                    "TQHOST_SCHEMAS to the schemas folder)",
                    name, nd ? searched : "(no folder)");
}

tq_code tq_schema_load(const char *name, cJSON **out, tq_err *err) {
  char path[PATH_MAX + 256];
  tq_code rc = tq_schema_path(name, path, sizeof path, err);
  if (rc != TQ_OK)
    return rc;
  return read_json(path, out, err);
}
