/* criteria.c: ThreatQ's criteria/filters language ({"criteria": {...}, "filters": {...}} with
 * "+and", "+or", "+equals", "+not", "+neq", "+gt", "+gte", "+lt", "+lte", "+like") compiled to
 * ONE SQL boolean expression over `objects o` with bound parameters (a value is never pasted
 * into the SQL text), with limits on size, depth and terms; a fault is TQ_EINVAL naming the
 * JSON path where it is ("filters.+or[1].score.+gte"). Also the pages of a compiled document
 * (sorted, or keyset after an id) and the keyword search. docs/api.md describes the language. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

typedef enum { P_INT, P_DBL, P_TEXT } param_kind;
typedef struct param {
  param_kind kind;
  int64_t i;
  double d;
  char *s;
} param;

/* A term of the SQL text (bytes start..end) whose plan depends on how many objects it passes,
 * which only the library can tell: a page or count query rewrites it (see planned_sql). A
 * score comparison (op, d), or a set membership "o.id IN (SELECT ... WHERE cond)" (field f;
 * cond at bytes cond_start..cond_end, its parameters p0..p1-1). */
typedef struct plan_term {
  size_t start, end;
  int set; /* 0: a score comparison; 1: a set membership */
  int op;  /* op_kind (score) */
  double d;
  int f; /* field_kind (set) */
  size_t cond_start, cond_end, p0, p1;
} plan_term;

struct tq_criteria {
  tq_buf sql;      /* the boolean expression */
  plan_term *plan; /* in text order, never overlapping */
  size_t n_plan, cap_plan;
  param *params; /* bound in order, one per '?' */
  size_t n_params, cap_params;
  size_t terms;    /* leaf comparisons */
  char *canonical; /* the document with sorted keys, no blanks */
};

/* The compiler's state: the output, the current JSON path (for errors) and the limits. */
typedef struct comp {
  tq_criteria *c;
  char path[512];
  size_t plen;
  int depth;
  char *where;
  size_t where_len;
  tq_err *err;
  int64_t now;
} comp;

/* ---- paths and errors ---------------------------------------------------------------------- */

static size_t path_push_key(comp *k, const char *key) {
  size_t old = k->plen;
  int n = snprintf(k->path + k->plen, sizeof k->path - k->plen, "%s%s", k->plen ? "." : "", key);
  if (n > 0)
    k->plen = k->plen + (size_t)n < sizeof k->path ? k->plen + (size_t)n : sizeof k->path - 1;
  return old;
}

static size_t path_push_index(comp *k, int i) {
  size_t old = k->plen;
  int n = snprintf(k->path + k->plen, sizeof k->path - k->plen, "[%d]", i);
  if (n > 0)
    k->plen = k->plen + (size_t)n < sizeof k->path ? k->plen + (size_t)n : sizeof k->path - 1;
  return old;
}

static void path_pop(comp *k, size_t old) {
  k->plen = old;
  k->path[old] = '\0';
}

static tq_code fail(comp *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static tq_code fail(comp *k, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const char *where = k->plen ? k->path : "criteria";
  if (k->where && k->where_len)
    tq_strlcpy(k->where, where, k->where_len);
  return tq_err_set(k->err, TQ_EINVAL, "%s: %s", where, msg);
}

/* ---- output ---------------------------------------------------------------------------------- */

static tq_code emit(comp *k, const char *s) {
  return tq_buf_adds(&k->c->sql, s) == TQ_OK ? TQ_OK
                                             : tq_err_set(k->err, TQ_ENOMEM, "out of memory");
}

static tq_code add_param(comp *k, param p) {
  tq_criteria *c = k->c;
  if (c->n_params == c->cap_params) {
    size_t cap = c->cap_params ? c->cap_params * 2 : 8;
    param *np = realloc(c->params, cap * sizeof *np);
    if (np == NULL) {
      free(p.s);
      return tq_err_set(k->err, TQ_ENOMEM, "out of memory");
    }
    c->params = np;
    c->cap_params = cap;
  }
  c->params[c->n_params++] = p;
  return emit(k, "?");
}

static tq_code param_int(comp *k, int64_t v) { return add_param(k, (param){P_INT, v, 0, NULL}); }
static tq_code param_dbl(comp *k, double v) { return add_param(k, (param){P_DBL, 0, v, NULL}); }
static tq_code param_text(comp *k, const char *s, size_t n) {
  char *d = tq_strndup(s, n);
  if (d == NULL)
    return tq_err_set(k->err, TQ_ENOMEM, "out of memory");
  return add_param(k, (param){P_TEXT, 0, 0, d});
}

static tq_code add_plan(comp *k, plan_term t) {
  tq_criteria *c = k->c;
  if (c->n_plan == c->cap_plan) {
    size_t cap = c->cap_plan ? c->cap_plan * 2 : 4;
    plan_term *np = realloc(c->plan, cap * sizeof *np);
    if (np == NULL)
      return tq_err_set(k->err, TQ_ENOMEM, "out of memory");
    c->plan = np;
    c->cap_plan = cap;
  }
  c->plan[c->n_plan++] = t;
  return TQ_OK;
}

/* ---- operators and fields -------------------------------------------------------------------- */

typedef enum { OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE, OP_LIKE } op_kind;

static const struct {
  const char *name;
  op_kind op;
} OPS[] = {{"+equals", OP_EQ}, {"+eq", OP_EQ},  {"+not", OP_NE},  {"+neq", OP_NE},
           {"+gt", OP_GT},     {"+gte", OP_GE}, {"+lt", OP_LT},   {"+lte", OP_LE},
           {"+like", OP_LIKE}, {"is", OP_EQ},   {"like", OP_LIKE}};

static const char *const OP_SQL[] = {" = ", " <> ", " > ", " >= ", " < ", " <= ", " LIKE "};

typedef enum {
  F_ID,
  F_VALUE,
  F_TYPE_NAME,
  F_TYPE_ID,
  F_STATUS_NAME,
  F_STATUS_ID,
  F_SCORE,
  F_SOURCE,
  F_TAG,
  F_ATTRIBUTE,
  F_DATE
} field_kind;

static const struct {
  const char *name;
  field_kind kind;
  const char *column; /* for scalar fields */
} FIELDS[] = {
    {"id", F_ID, "o.id"},
    {"value", F_VALUE, "o.value"},
    {"type_name", F_TYPE_NAME, "o.itype_id"},
    {"type", F_TYPE_NAME, "o.itype_id"},
    {"type_id", F_TYPE_ID, "o.itype_id"},
    {"status_name", F_STATUS_NAME, "o.status"},
    {"status", F_STATUS_NAME, "o.status"},
    {"status_id", F_STATUS_ID, "o.status"},
    {"score", F_SCORE, "o.score"},
    {"source", F_SOURCE, NULL},
    {"source_name", F_SOURCE, NULL},
    {"tag", F_TAG, NULL},
    {"tag_name", F_TAG, NULL},
    {"attribute", F_ATTRIBUTE, NULL},
    {"created_at", F_DATE, "o.created_at"},
    {"updated_at", F_DATE, "o.updated_at"},
    {"published_at", F_DATE, "o.published_at"},
    {"expires_at", F_DATE, "o.expires_at"},
};

static int find_op(const char *name, op_kind *op) {
  for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
    if (strcmp(OPS[i].name, name) == 0) {
      *op = OPS[i].op;
      return 1;
    }
  return 0;
}

/* A user's pattern as LIKE text with ESCAPE '\': '%' is the wildcard; "\%" is a literal
 * percent sign; '_' and every other '\' are literal. *wild says whether any wildcard is left
 * (without one, the caller compares for equality with the unescaped text instead). Returns
 * malloc'd text (the LIKE pattern when *wild, else the literal value). */
char *lib_like_pattern(const char *s, size_t n, int *wild) {
  char *out = malloc(2 * n + 1), *lit = malloc(n + 1);
  if (out == NULL || lit == NULL) {
    free(out);
    free(lit);
    return NULL;
  }
  size_t o = 0, l = 0;
  *wild = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (ch == '\\' && i + 1 < n && s[i + 1] == '%') {
      out[o++] = '\\';
      out[o++] = '%';
      lit[l++] = '%';
      i++;
    } else if (ch == '%') {
      out[o++] = '%';
      lit[l++] = '%';
      *wild = 1;
    } else {
      if (ch == '_' || ch == '\\')
        out[o++] = '\\';
      out[o++] = ch;
      lit[l++] = ch;
    }
  }
  out[o] = lit[l] = '\0';
  if (*wild) {
    free(lit);
    return out;
  }
  free(out);
  return lit;
}

/* Every character literal (keyword search): the LIKE text of s with '%', '_', '\' escaped. */
static char *like_literal(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(2 * n + 1);
  if (out == NULL)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' || s[i] == '_' || s[i] == '\\')
      out[o++] = '\\';
    out[o++] = s[i];
  }
  out[o] = '\0';
  return out;
}

static tq_code count_term(comp *k) {
  if (++k->c->terms > TQ_CRITERIA_MAX_TERMS)
    return fail(k, "more than %d conditions in the document", TQ_CRITERIA_MAX_TERMS);
  return TQ_OK;
}

static tq_code check_string(comp *k, const cJSON *v) {
  size_t n = strlen(v->valuestring);
  if (n > TQ_CRITERIA_MAX_STRING)
    return fail(k, "a string of %zu bytes; at most %d", n, TQ_CRITERIA_MAX_STRING);
  size_t bad = tq_utf8_invalid_at(v->valuestring, n);
  if (bad < n)
    return fail(k, "invalid UTF-8 at byte %zu", bad);
  return TQ_OK;
}

/* A number in an integer field: a JSON number or a string of digits. */
static tq_code want_int(comp *k, const cJSON *v, int64_t lo, int64_t hi, int64_t *out) {
  double d;
  if (cJSON_IsNumber(v))
    d = v->valuedouble;
  else if (cJSON_IsString(v)) {
    char *end = NULL;
    const char *s = v->valuestring;
    while (*s == ' ')
      s++;
    if (*s == '\0')
      return fail(k, "expected a number, got an empty string");
    d = strtod(s, &end);
    while (end && *end == ' ')
      end++;
    if (end == NULL || *end != '\0')
      return fail(k, "expected a number, got a string that is not one");
  } else
    return fail(k, "expected a number");
  if (!(d >= (double)lo && d <= (double)hi))
    return fail(k, "%g is outside %lld..%lld", d, (long long)lo, (long long)hi);
  *out = (int64_t)d;
  return TQ_OK;
}

static tq_code want_number(comp *k, const cJSON *v, double lo, double hi, double *out) {
  int64_t unused;
  if (cJSON_IsString(v)) {
    tq_code rc = want_int(k, v, (int64_t)lo - 1, (int64_t)hi + 1, &unused);
    if (rc != TQ_OK)
      return rc;
    *out = strtod(v->valuestring, NULL);
  } else if (cJSON_IsNumber(v))
    *out = v->valuedouble;
  else
    return fail(k, "expected a number");
  if (!(*out >= lo && *out <= hi))
    return fail(k, "%g is outside %g..%g", *out, lo, hi);
  return TQ_OK;
}

/* A date: a number (Unix seconds), "YYYY-MM-DD[ hh:mm:ss]", RFC 3339, or "now" optionally
 * followed by "+N"/"-N" and a unit (seconds, minutes, hours, days, weeks). */
static tq_code want_date(comp *k, const cJSON *v, int64_t *out) {
  if (cJSON_IsNumber(v))
    return want_int(k, v, 0, INT64_C(253402300799), out);
  if (!cJSON_IsString(v))
    return fail(k, "expected a date");
  const char *s = v->valuestring;
  if (strncasecmp(s, "now", 3) == 0) {
    s += 3;
    while (*s == ' ')
      s++;
    int64_t t = k->now;
    if (*s == '+' || *s == '-') {
      int sign = *s == '-' ? -1 : 1;
      s++;
      while (*s == ' ')
        s++;
      char *end;
      long long n = strtoll(s, &end, 10);
      if (end == s || n < 0 || n > 100000)
        return fail(k, "a relative date is \"now-N days\" (N in 0..100000)");
      while (*end == ' ')
        end++;
      static const struct {
        const char *u;
        int64_t s;
      } units[] = {{"second", 1}, {"minute", 60}, {"hour", 3600}, {"day", 86400}, {"week", 604800}};
      int64_t mult = 0;
      for (size_t i = 0; i < 5; i++) {
        size_t ul = strlen(units[i].u);
        if (strncasecmp(end, units[i].u, ul) == 0 &&
            (end[ul] == '\0' || ((end[ul] == 's' || end[ul] == 'S') && end[ul + 1] == '\0')))
          mult = units[i].s;
      }
      if (mult == 0)
        return fail(k, "unknown unit in a relative date (seconds, minutes, hours, days, weeks)");
      t += sign * n * mult;
    } else if (*s != '\0')
      return fail(k, "a relative date is \"now\" or \"now-N days\"");
    *out = t;
    return TQ_OK;
  }
  tq_err e;
  int64_t t;
  if (tq_time_parse(s, &t, NULL, &e) != TQ_OK)
    return fail(k, "not a date (YYYY-MM-DD, YYYY-MM-DD hh:mm:ss, RFC 3339, Unix seconds or now)");
  *out = t;
  return TQ_OK;
}

/* One comparison "col op value" of a scalar field. */
static tq_code scalar_term(comp *k, field_kind f, const char *col, op_kind op, const cJSON *v) {
  tq_code rc = count_term(k);
  if (rc != TQ_OK)
    return rc;
  int ordered = op == OP_GT || op == OP_GE || op == OP_LT || op == OP_LE;
  if (op == OP_LIKE && f != F_VALUE)
    return fail(k, "+like applies to value, source, tag and attribute only");
  if (ordered && (f == F_VALUE || f == F_TYPE_NAME || f == F_STATUS_NAME || f == F_TYPE_ID ||
                  f == F_STATUS_ID))
    return fail(k, "this field takes +equals, +not%s only", f == F_VALUE ? ", +like" : "");
  int64_t i = 0;
  double d = 0;
  switch (f) {
  case F_VALUE: {
    if (!cJSON_IsString(v))
      return fail(k, "expected a string");
    if ((rc = check_string(k, v)) != TQ_OK)
      return rc;
    const char *s = v->valuestring;
    if (op == OP_EQ || op == OP_LIKE) {
      /* '%' is a wildcard in a plain or +like value ("\%": a literal percent). */
      int wild = 0;
      char *p = lib_like_pattern(s, strlen(s), &wild);
      if (p == NULL)
        return tq_err_set(k->err, TQ_ENOMEM, "out of memory");
      rc = emit(k, col);
      if (rc == TQ_OK)
        rc = emit(k, wild ? " LIKE " : " = ");
      if (rc == TQ_OK)
        rc = param_text(k, p, strlen(p));
      if (rc == TQ_OK && wild)
        rc = emit(k, " ESCAPE '\\'");
      free(p);
      return rc;
    }
    if ((rc = emit(k, col)) == TQ_OK && (rc = emit(k, OP_SQL[op])) == TQ_OK)
      rc = param_text(k, s, strlen(s));
    return rc;
  }
  case F_TYPE_NAME: {
    if (!cJSON_IsString(v))
      return fail(k, "expected an indicator type name");
    const char *canon = tq_lib_indicator_type_canon(v->valuestring, NULL);
    if (canon == NULL)
      return fail(k, "not an indicator type");
    i = lib_itype_id(canon);
    break;
  }
  case F_STATUS_NAME: {
    if (!cJSON_IsString(v))
      return fail(k, "expected a status name");
    i = tq_lib_status_from_name(v->valuestring);
    if (i == 0)
      return fail(k, "not a status (Active, Expired, Indirect, Review, Whitelisted)");
    break;
  }
  case F_TYPE_ID:
    if ((rc = want_int(k, v, 1, 34, &i)) != TQ_OK)
      return rc;
    break;
  case F_STATUS_ID:
    if ((rc = want_int(k, v, 1, 5, &i)) != TQ_OK)
      return rc;
    break;
  case F_ID:
    if ((rc = want_int(k, v, 0, INT64_C(1) << 53, &i)) != TQ_OK)
      return rc;
    break;
  case F_SCORE:
    if ((rc = want_number(k, v, -100, 100, &d)) != TQ_OK)
      return rc;
    break;
  case F_DATE:
    if ((rc = want_date(k, v, &i)) != TQ_OK)
      return rc;
    break;
  default: return fail(k, "internal: not a scalar field");
  }
  size_t start = k->c->sql.len;
  if ((rc = emit(k, col)) != TQ_OK || (rc = emit(k, OP_SQL[op])) != TQ_OK)
    return rc;
  if (f != F_SCORE)
    return param_int(k, i);
  if ((rc = param_dbl(k, d)) != TQ_OK || op == OP_NE)
    return rc;
  return add_plan(k, (plan_term){.start = start, .end = k->c->sql.len, .op = (int)op, .d = d});
}

/* A name condition inside an EXISTS over a set (source, tag, attribute name or value): text
 * col equals / is like the value ('%' wildcards as in value). */
static tq_code text_match(comp *k, const char *col, op_kind op, const cJSON *v) {
  if (!cJSON_IsString(v))
    return fail(k, "expected a string");
  tq_code rc = check_string(k, v);
  if (rc != TQ_OK || (rc = count_term(k)) != TQ_OK)
    return rc;
  if (op != OP_EQ && op != OP_LIKE && op != OP_NE)
    return fail(k, "this field takes +equals, +not, +like only");
  int wild = 0;
  char *p = lib_like_pattern(v->valuestring, strlen(v->valuestring), &wild);
  if (p == NULL)
    return tq_err_set(k->err, TQ_ENOMEM, "out of memory");
  rc = emit(k, col);
  if (rc == TQ_OK)
    rc = emit(k, wild ? " LIKE " : " = ");
  if (rc == TQ_OK)
    rc = param_text(k, p, strlen(p));
  if (rc == TQ_OK && wild)
    rc = emit(k, " ESCAPE '\\'");
  free(p);
  return rc;
}

static tq_code set_exists(comp *k, field_kind f, op_kind op, const cJSON *v);

/* The sets (source, tag, attribute): the subquery of the uncorrelated IN that a criteria
 * document compiles to, and the correlated EXISTS a query is rewritten to when the set is
 * large (planned_sql); the condition on the set's rows follows each, then ")" or "))". */
static const char *const SET_SQL[3][2] = {
    {"SELECT os.object_id FROM object_sources os JOIN sources s ON s.id=os.source_id WHERE ",
     "EXISTS(SELECT 1 FROM object_sources os JOIN sources s ON s.id=os.source_id"
     " WHERE os.object_id=o.id AND ("},
    {"SELECT ot.object_id FROM object_tags ot JOIN tags t ON t.id=ot.tag_id WHERE ",
     "EXISTS(SELECT 1 FROM object_tags ot JOIN tags t ON t.id=ot.tag_id"
     " WHERE ot.object_id=o.id AND ("},
    {"SELECT a.object_id FROM attributes a WHERE ",
     "EXISTS(SELECT 1 FROM attributes a WHERE a.object_id=o.id AND ("}};

/* The IN subquery (form 0) or the EXISTS (form 1) of set field f. */
static const char *set_sql(int f, int form) {
  return SET_SQL[f == F_SOURCE ? 0 : f == F_TAG ? 1 : 2][form];
}

/* The conditions on an attribute's name and value inside its EXISTS: a string (the name) or
 * {"name": cond, "value": cond} where cond is a string, a list (any of) or {"+op": string}. */
static tq_code attr_cond(comp *k, const char *col, const cJSON *v) {
  tq_code rc;
  if (cJSON_IsString(v))
    return text_match(k, col, OP_EQ, v);
  if (cJSON_IsArray(v)) {
    if (cJSON_GetArraySize(v) == 0 || cJSON_GetArraySize(v) > TQ_CRITERIA_MAX_LIST)
      return fail(k, "a list of 1..%d strings", TQ_CRITERIA_MAX_LIST);
    rc = emit(k, "(");
    int i = 0;
    for (const cJSON *it = v->child; it && rc == TQ_OK; it = it->next, i++) {
      size_t old = path_push_index(k, i);
      if (i)
        rc = emit(k, " OR ");
      if (rc == TQ_OK)
        rc = text_match(k, col, OP_EQ, it);
      if (rc == TQ_OK)
        path_pop(k, old);
    }
    return rc == TQ_OK ? emit(k, ")") : rc;
  }
  if (!cJSON_IsObject(v) || v->child == NULL)
    return fail(k, "expected a string, a list or {\"+operator\": string}");
  rc = emit(k, "(");
  int first = 1;
  for (const cJSON *it = v->child; it && rc == TQ_OK; it = it->next) {
    size_t old = path_push_key(k, it->string);
    op_kind op;
    if (!find_op(it->string, &op))
      return fail(k, "unknown operator (+equals, +not, +neq, +like)");
    if (!first)
      rc = emit(k, " AND ");
    first = 0;
    if (rc == TQ_OK && op == OP_NE) {
      rc = emit(k, "NOT ");
      op = OP_EQ;
    }
    if (rc == TQ_OK)
      rc = text_match(k, col, op, it);
    if (rc == TQ_OK)
      path_pop(k, old);
  }
  return rc == TQ_OK ? emit(k, ")") : rc;
}

/* IN (or NOT IN for +not) the objects of a set-valued field matching one value v. */
static tq_code set_exists(comp *k, field_kind f, op_kind op, const cJSON *v) {
  if (op != OP_EQ && op != OP_NE && op != OP_LIKE)
    return fail(k, "this field takes +equals, +not, +neq, +like only");
  /* An uncorrelated IN: the set's matching object ids are found once (through the by-source
   * and by-tag indexes), not probed once per object; a query rewrites a large set as a
   * correlated EXISTS (lib_criteria_sql_planned). */
  plan_term t = {.start = k->c->sql.len, .set = 1, .f = (int)f};
  tq_code rc = emit(k, op == OP_NE ? "o.id NOT IN (" : "o.id IN (");
  if (rc != TQ_OK)
    return rc;
  op_kind m = OP_EQ;
  rc = emit(k, set_sql((int)f, 0));
  t.cond_start = k->c->sql.len;
  t.p0 = k->c->n_params;
  if (rc == TQ_OK && f == F_SOURCE) {
    rc = text_match(k, "s.name", m, v);
  } else if (rc == TQ_OK && f == F_TAG) {
    rc = text_match(k, "t.name", m, v);
  } else if (rc == TQ_OK) {
    if (cJSON_IsString(v))
      rc = text_match(k, "a.name", m, v);
    else if (cJSON_IsObject(v)) {
      const cJSON *name = NULL, *val = NULL;
      for (const cJSON *it = v->child; it; it = it->next) {
        if (strcmp(it->string, "name") == 0)
          name = it;
        else if (strcmp(it->string, "value") == 0)
          val = it;
        else {
          size_t old = path_push_key(k, it->string);
          (void)old;
          return fail(k, "an attribute condition has \"name\" and \"value\" only");
        }
      }
      if (name == NULL && val == NULL)
        return fail(k, "an attribute condition needs \"name\" or \"value\"");
      if (name) {
        size_t old = path_push_key(k, "name");
        if ((rc = attr_cond(k, "a.name", name)) != TQ_OK)
          return rc;
        path_pop(k, old);
      }
      if (name && val)
        rc = emit(k, " AND ");
      if (rc == TQ_OK && val) {
        size_t old = path_push_key(k, "value");
        if ((rc = attr_cond(k, "a.value", val)) != TQ_OK)
          return rc;
        path_pop(k, old);
      }
    } else
      return fail(k, "expected an attribute name or {\"name\": ..., \"value\": ...}");
  }
  t.cond_end = k->c->sql.len;
  t.p1 = k->c->n_params;
  if (rc == TQ_OK)
    rc = emit(k, ")");
  t.end = k->c->sql.len;
  return rc == TQ_OK && op != OP_NE ? add_plan(k, t) : rc;
}

/* field op v where v may be a list: any of (equals, like) or none of (not). */
static tq_code field_op(comp *k, field_kind f, const char *col, op_kind op, const cJSON *v) {
  int set = f == F_SOURCE || f == F_TAG || f == F_ATTRIBUTE;
  if (cJSON_IsArray(v)) {
    int n = cJSON_GetArraySize(v);
    if (n == 0 || n > TQ_CRITERIA_MAX_LIST)
      return fail(k, "a list of 1..%d values", TQ_CRITERIA_MAX_LIST);
    if (op != OP_EQ && op != OP_NE && op != OP_LIKE)
      return fail(k, "a list goes with +equals, +not or +like only");
    tq_code rc = emit(k, "(");
    int i = 0;
    for (const cJSON *it = v->child; it && rc == TQ_OK; it = it->next, i++) {
      size_t old = path_push_index(k, i);
      if (i)
        rc = emit(k, op == OP_NE ? " AND " : " OR ");
      if (rc == TQ_OK)
        rc = set ? set_exists(k, f, op, it) : scalar_term(k, f, col, op, it);
      if (rc == TQ_OK)
        path_pop(k, old);
    }
    return rc == TQ_OK ? emit(k, ")") : rc;
  }
  if (cJSON_IsNull(v) || cJSON_IsBool(v) || (cJSON_IsObject(v) && !set) || cJSON_IsRaw(v))
    return fail(k, "expected %s", f == F_VALUE ? "a string" : "a value of this field");
  return set ? set_exists(k, f, op, v) : scalar_term(k, f, col, op, v);
}

/* A field's condition: a value (equals), a list (any of) or {"+op": value, ...} (all of). */
static tq_code field_cond(comp *k, const char *name, const cJSON *v) {
  size_t fi = 0, nf = sizeof FIELDS / sizeof FIELDS[0];
  while (fi < nf && strcmp(FIELDS[fi].name, name) != 0)
    fi++;
  if (fi == nf)
    return fail(k, "unknown field (id, value, type_name, type_id, status_name, status_id, "
                   "score, source, tag, attribute, created_at, updated_at, published_at, "
                   "expires_at, +and, +or)");
  field_kind f = FIELDS[fi].kind;
  const char *col = FIELDS[fi].column;
  /* An object of operators ("+gte", ...; also "is" and "like" as ThreatQ's clients send them);
   * for attribute, {"name", "value"} is the other form. */
  op_kind op0;
  int ops = cJSON_IsObject(v) && v->child && v->child->string &&
            (v->child->string[0] == '+' || find_op(v->child->string, &op0));
  if (!ops)
    return field_op(k, f, col, OP_EQ, v);
  tq_code rc = emit(k, "(");
  int first = 1;
  for (const cJSON *it = v->child; it && rc == TQ_OK; it = it->next) {
    size_t old = path_push_key(k, it->string);
    op_kind op;
    if (!find_op(it->string, &op))
      return fail(k, "unknown operator (+equals, +not, +neq, +gt, +gte, +lt, +lte, +like)");
    if (!first)
      rc = emit(k, " AND ");
    first = 0;
    if (rc == TQ_OK)
      rc = field_op(k, f, col, op, it);
    if (rc == TQ_OK)
      path_pop(k, old);
  }
  return rc == TQ_OK ? emit(k, ")") : rc;
}

static tq_code expr(comp *k, const cJSON *v, int is_or);

/* "+and"/"+or": a list of expressions, or an object whose keys are the expressions. Empty:
 * no condition. */
static tq_code group(comp *k, const cJSON *v, int is_or) {
  if (cJSON_IsObject(v))
    return expr(k, v, is_or);
  if (!cJSON_IsArray(v))
    return fail(k, "expected a list of conditions");
  if (cJSON_GetArraySize(v) > TQ_CRITERIA_MAX_TERMS)
    return fail(k, "more than %d conditions in the document", TQ_CRITERIA_MAX_TERMS);
  if (v->child == NULL)
    return emit(k, "1");
  tq_code rc = emit(k, "(");
  int i = 0;
  for (const cJSON *it = v->child; it && rc == TQ_OK; it = it->next, i++) {
    size_t old = path_push_index(k, i);
    if (i)
      rc = emit(k, is_or ? " OR " : " AND ");
    if (rc == TQ_OK && !cJSON_IsObject(it))
      return fail(k, "expected an object of conditions");
    if (rc == TQ_OK)
      rc = expr(k, it, 0);
    if (rc == TQ_OK)
      path_pop(k, old);
  }
  return rc == TQ_OK ? emit(k, ")") : rc;
}

/* An object of conditions: each key a field or "+and"/"+or"; the keys combine with AND (OR
 * when the object is the value of "+or"). */
static tq_code expr(comp *k, const cJSON *v, int is_or) {
  if (++k->depth > TQ_CRITERIA_MAX_DEPTH)
    return fail(k, "nested deeper than %d levels", TQ_CRITERIA_MAX_DEPTH);
  tq_code rc;
  if (v->child == NULL)
    rc = emit(k, "1");
  else {
    rc = emit(k, "(");
    int first = 1;
    for (const cJSON *it = v->child; it && rc == TQ_OK; it = it->next) {
      size_t old = path_push_key(k, it->string);
      if (!first)
        rc = emit(k, is_or ? " OR " : " AND ");
      first = 0;
      if (rc != TQ_OK)
        break;
      if (strcmp(it->string, "+and") == 0)
        rc = group(k, it, 0);
      else if (strcmp(it->string, "+or") == 0)
        rc = group(k, it, 1);
      else if (it->string[0] == '+')
        return fail(k, "unknown operator here (+and, +or, or a field name)");
      else
        rc = field_cond(k, it->string, it);
      if (rc == TQ_OK)
        path_pop(k, old);
    }
    if (rc == TQ_OK)
      rc = emit(k, ")");
  }
  k->depth--;
  return rc;
}

/* ---- the canonical form (sorted keys) ------------------------------------------------------- */

static int key_cmp(const void *a, const void *b) {
  return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

static tq_code canon(const cJSON *v, tq_buf *b) {
  if (cJSON_IsObject(v)) {
    size_t n = 0;
    for (const cJSON *it = v->child; it; it = it->next)
      n++;
    const cJSON **keys = calloc(n ? n : 1, sizeof *keys);
    if (keys == NULL)
      return TQ_ENOMEM;
    n = 0;
    for (const cJSON *it = v->child; it; it = it->next)
      keys[n++] = it;
    qsort(keys, n, sizeof *keys, key_cmp);
    tq_code rc = tq_buf_addc(b, '{');
    for (size_t i = 0; i < n && rc == TQ_OK; i++) {
      cJSON *ks = cJSON_CreateString(keys[i]->string);
      char *kt = ks ? cJSON_PrintUnformatted(ks) : NULL;
      cJSON_Delete(ks);
      if (kt == NULL)
        rc = TQ_ENOMEM;
      else {
        rc = (i ? tq_buf_addc(b, ',') : TQ_OK) | tq_buf_adds(b, kt) | tq_buf_addc(b, ':');
        free(kt);
      }
      if (rc == TQ_OK)
        rc = canon(keys[i], b);
    }
    free(keys);
    return rc == TQ_OK ? tq_buf_addc(b, '}') : TQ_ENOMEM;
  }
  if (cJSON_IsArray(v)) {
    tq_code rc = tq_buf_addc(b, '[');
    for (const cJSON *it = v->child; it && rc == TQ_OK; it = it->next) {
      if (it != v->child)
        rc = tq_buf_addc(b, ',');
      if (rc == TQ_OK)
        rc = canon(it, b);
    }
    return rc == TQ_OK ? tq_buf_addc(b, ']') : TQ_ENOMEM;
  }
  char *t = cJSON_PrintUnformatted(v);
  if (t == NULL)
    return TQ_ENOMEM;
  tq_code rc = tq_buf_adds(b, t);
  free(t);
  return rc;
}

/* ---- the public side ------------------------------------------------------------------------ */

void tq_criteria_free(tq_criteria *c) {
  if (c == NULL)
    return;
  tq_buf_free(&c->sql);
  free(c->plan);
  for (size_t i = 0; i < c->n_params; i++)
    free(c->params[i].s);
  free(c->params);
  free(c->canonical);
  free(c);
}

/* cJSON's own nesting cap is far above ours: a document nested deeper than our limit is
 * refused by a scan before it is parsed (no recursion on hostile depth). */
static int max_nesting(const char *s, size_t n, int *nul) {
  int d = 0, max = 0, in_str = 0;
  *nul = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (ch == '\0')
      *nul = 1;
    if (in_str) {
      if (ch == '\\') {
        /* cJSON would cut the string at an escaped NUL: refuse it instead. */
        if (i + 5 < n && s[i + 1] == 'u' && strncmp(s + i + 2, "0000", 4) == 0)
          *nul = 1;
        i++;
      } else if (ch == '"')
        in_str = 0;
    } else if (ch == '"')
      in_str = 1;
    else if (ch == '{' || ch == '[') {
      if (++d > max)
        max = d;
    } else if (ch == '}' || ch == ']')
      d--;
  }
  return max;
}

tq_code tq_criteria_compile(const char *json, size_t len, tq_criteria **out, char *where,
                            size_t where_len, tq_err *err) {
  *out = NULL;
  if (where && where_len)
    where[0] = '\0';
  comp k = {.where = where, .where_len = where_len, .err = err, .now = tq_time_now()};
  if (len > TQ_CRITERIA_MAX_BYTES)
    return fail(&k, "the document is %zu bytes; at most %d", len, TQ_CRITERIA_MAX_BYTES);
  /* Each +and/+or level is two JSON levels (a list of objects) plus the operator object. */
  int nul = 0;
  if (max_nesting(json, len, &nul) > 3 * TQ_CRITERIA_MAX_DEPTH + 4)
    return fail(&k, "nested deeper than %d levels", TQ_CRITERIA_MAX_DEPTH);
  if (nul)
    return fail(&k, "a NUL character (\\u0000) in the document");
  const char *end = NULL;
  cJSON *doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
  if (doc == NULL) {
    size_t at = end && end >= json ? (size_t)(end - json) : 0;
    return fail(&k, "not valid JSON (near byte %zu)", at);
  }
  if (!cJSON_IsObject(doc)) {
    cJSON_Delete(doc);
    return fail(&k, "the document must be an object with \"criteria\" and/or \"filters\"");
  }
  tq_criteria *c = calloc(1, sizeof *c);
  if (c == NULL) {
    cJSON_Delete(doc);
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  tq_buf_init(&c->sql, 0);
  k.c = c;
  tq_code rc = TQ_OK;
  int parts = 0;
  for (const cJSON *it = doc->child; it && rc == TQ_OK; it = it->next) {
    size_t old = path_push_key(&k, it->string);
    if (strcmp(it->string, "criteria") == 0 || strcmp(it->string, "filters") == 0) {
      if (!cJSON_IsObject(it)) {
        rc = fail(&k, "expected an object of conditions");
        break;
      }
      rc = emit(&k, parts++ ? " AND " : "(");
      if (rc == TQ_OK)
        rc = expr(&k, it, 0);
    } else if (strcmp(it->string, "fields") == 0) {
      if (!cJSON_IsArray(it))
        rc = fail(&k, "expected a list of field names");
    } else
      rc = fail(&k, "unknown key (criteria, filters, fields)");
    if (rc == TQ_OK)
      path_pop(&k, old);
  }
  if (rc == TQ_OK)
    rc = emit(&k, parts ? ")" : "1");
  if (rc == TQ_OK) {
    /* The canonical text leaves "fields" out: it does not change which objects match. */
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "fields");
    tq_buf b;
    tq_buf_init(&b, 0);
    if (canon(doc, &b) != TQ_OK || (c->canonical = tq_buf_take(&b)) == NULL) {
      tq_buf_free(&b);
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
    }
  }
  cJSON_Delete(doc);
  if (rc != TQ_OK) {
    tq_criteria_free(c);
    return rc;
  }
  *out = c;
  return TQ_OK;
}

const char *tq_criteria_sql(const tq_criteria *c) { return c->sql.data ? c->sql.data : "1"; }
const char *tq_criteria_canonical(const tq_criteria *c) { return c->canonical; }
size_t tq_criteria_params(const tq_criteria *c) { return c->n_params; }

int tq_criteria_bind(const tq_criteria *c, sqlite3_stmt *st, int first) {
  int i = first;
  for (size_t p = 0; p < c->n_params; p++, i++) {
    const param *pr = &c->params[p];
    if (pr->kind == P_INT)
      sqlite3_bind_int64(st, i, pr->i);
    else if (pr->kind == P_DBL)
      sqlite3_bind_double(st, i, pr->d);
    else
      sqlite3_bind_text(st, i, pr->s, -1, SQLITE_TRANSIENT);
  }
  return i;
}

/* ---- pages ------------------------------------------------------------------------------------
 */

static const struct {
  const char *name;
  const char *col;
} SORTS[] = {{"id", "o.id"},
             {"value", "o.value"},
             {"score", "o.score"},
             {"created_at", "o.created_at"},
             {"created", "o.created_at"},
             {"updated_at", "o.updated_at"},
             {"updated", "o.updated_at"},
             {"published_at", "o.published_at"},
             {"expires_at", "o.expires_at"},
             {"status_id", "o.status"},
             {"type_id", "o.itype_id"}};

/* How many objects a term passes, counted up to PLAN_PROBE; PLAN_PROBE also when the probe
 * cannot tell within PLAN_PROBE_STEPS steps of SQLite's machine (a set with no index on its
 * condition: the probe would cost what the query costs) or fails. A score comparison reads
 * objects_score; a set reads its own subquery (the by-source and by-tag indexes). Either
 * costs at most a few hundred microseconds. */
#define PLAN_PROBE 10000
#define PLAN_PROBE_STEPS 500000

static int probe_over(void *ud) { return --*(int *)ud <= 0; }

static int64_t plan_probe(tq_lib *lib, const tq_criteria *c, const plan_term *t) {
  static const char *const SCORE_SQL[] = {
      [OP_EQ] = "SELECT count(*) FROM (SELECT 1 FROM objects WHERE score = ?1 LIMIT ?2)",
      [OP_GT] = "SELECT count(*) FROM (SELECT 1 FROM objects WHERE score > ?1 LIMIT ?2)",
      [OP_GE] = "SELECT count(*) FROM (SELECT 1 FROM objects WHERE score >= ?1 LIMIT ?2)",
      [OP_LT] = "SELECT count(*) FROM (SELECT 1 FROM objects WHERE score < ?1 LIMIT ?2)",
      [OP_LE] = "SELECT count(*) FROM (SELECT 1 FROM objects WHERE score <= ?1 LIMIT ?2)"};
  int64_t n = PLAN_PROBE;
  sqlite3_stmt *st = NULL;
  if (!t->set) {
    if ((st = lib_stmt_sql(lib, SCORE_SQL[t->op], NULL)) == NULL)
      return n;
    sqlite3_bind_double(st, 1, t->d);
    sqlite3_bind_int64(st, 2, PLAN_PROBE);
  } else {
    const char *sql = tq_criteria_sql(c);
    const char *sub = set_sql(t->f, 0);
    tq_buf q;
    tq_buf_init(&q, 0);
    if (tq_buf_printf(&q, "SELECT count(*) FROM (%s", sub) != TQ_OK ||
        tq_buf_add(&q, sql + t->cond_start, t->cond_end - t->cond_start) != TQ_OK ||
        tq_buf_printf(&q, " LIMIT %d)", PLAN_PROBE) != TQ_OK ||
        sqlite3_prepare_v2(lib->db, q.data, -1, &st, NULL) != SQLITE_OK) {
      tq_buf_free(&q);
      return n;
    }
    tq_buf_free(&q);
    tq_criteria bound = *c; /* the term's own parameters, numbered from 1 */
    bound.params = c->params + t->p0;
    bound.n_params = t->p1 - t->p0;
    tq_criteria_bind(&bound, st, 1);
  }
  int budget = PLAN_PROBE_STEPS / 1000;
  sqlite3_progress_handler(lib->db, 1000, probe_over, &budget);
  if (sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_progress_handler(lib->db, 0, NULL, NULL);
  if (t->set)
    sqlite3_finalize(st);
  else
    sqlite3_reset(st);
  return n;
}

/* c's SQL as a page or count query runs it. SQLite's planner has no statistics here (none
 * for a range: Debian's SQLite has no STAT4; an IN subquery is always guessed at 25 rows), so
 * each term whose plan depends on its size is probed (plan_probe) and told:
 * - a score comparison that fewer than PLAN_PROBE objects pass becomes likelihood(term,
 *   share), so that those few are read from objects_score (then sorted) rather than found by
 *   walking every object in id order; one that many pass is kept off the index ("+o.score":
 *   a walk in id order finds a page soon, and a count reads the table once rather than the
 *   index and then every object);
 * - a set that PLAN_PROBE objects or more are in ("source = the feed that brought them
 *   all") becomes a correlated EXISTS, probed for the objects the rest of the query visits,
 *   instead of an IN that drives the query through every member; a small set stays an IN.
 * On a million objects from one source, "score >= 5 and that source" (67 matches) went from
 * 0.8-2.7 s to milliseconds (tests/bench: bench.ui_page, "filtered"). */
tq_code lib_criteria_sql_planned(tq_lib *lib, const tq_criteria *c, tq_buf *out) {
  const char *sql = tq_criteria_sql(c);
  size_t at = 0;
  int64_t objects = -1;
  tq_code rc = TQ_OK;
  for (size_t i = 0; i < c->n_plan && rc == TQ_OK; i++) {
    const plan_term *t = &c->plan[i];
    int64_t n = plan_probe(lib, c, t);
    rc = tq_buf_add(out, sql + at, t->start - at);
    if (rc != TQ_OK)
      break;
    if (!t->set && n < PLAN_PROBE) {
      if (objects < 0) {
        objects = 0;
        sqlite3_stmt *st = lib_stmt_sql(lib, "SELECT max(id) FROM objects", NULL);
        if (st && sqlite3_step(st) == SQLITE_ROW)
          objects = sqlite3_column_int64(st, 0);
        if (st)
          sqlite3_reset(st);
      }
      double share = objects > 0 ? (double)(n > 0 ? n : 1) / (double)objects : 1.0;
      rc = tq_buf_adds(out, "likelihood(");
      if (rc == TQ_OK)
        rc = tq_buf_add(out, sql + t->start, t->end - t->start);
      if (rc == TQ_OK)
        rc = tq_buf_printf(out, ", %.9f)", share < 1.0 ? share : 1.0);
    } else if (t->set && n >= PLAN_PROBE) {
      rc = tq_buf_adds(out, set_sql(t->f, 1));
      if (rc == TQ_OK)
        rc = tq_buf_add(out, sql + t->cond_start, t->cond_end - t->cond_start);
      if (rc == TQ_OK)
        rc = tq_buf_adds(out, "))");
    } else {
      /* A score comparison that many pass is no way into the query: "+o.score" keeps the
       * planner from reading objects_score and then every object it points to. */
      if (!t->set)
        rc = tq_buf_adds(out, "+");
      if (rc == TQ_OK)
        rc = tq_buf_add(out, sql + t->start, t->end - t->start);
    }
    at = t->end;
  }
  if (rc == TQ_OK)
    rc = tq_buf_adds(out, sql + at);
  return rc;
}

tq_code tq_lib_criteria_ids(tq_lib *lib, const tq_criteria *c, const char *object_type,
                            const char *sort, int64_t after_id, int64_t limit, int64_t offset,
                            int64_t **ids, size_t *n, int64_t *total, tq_err *err) {
  *ids = NULL;
  *n = 0;
  const char *col = "o.id";
  int desc = 0;
  if (sort && *sort) {
    const char *s = sort;
    if (*s == '-' || *s == '+') {
      desc = *s == '-';
      s++;
    }
    size_t i = 0, ns = sizeof SORTS / sizeof SORTS[0];
    while (i < ns && strcmp(SORTS[i].name, s) != 0)
      i++;
    if (i == ns)
      return tq_err_set(err, TQ_EINVAL,
                        "sort: unknown key (id, value, score, created_at, updated_at, "
                        "published_at, expires_at, status_id, type_id; '-' before: descending)");
    col = SORTS[i].col;
  }
  if (after_id > 0 && (strcmp(col, "o.id") != 0 || desc))
    return tq_err_set(err, TQ_EINVAL, "sort: a cursor walks by id ascending only");
  if (limit < 0 || limit > TQ_CRITERIA_MAX_PAGE)
    limit = TQ_CRITERIA_MAX_PAGE;
  if (offset < 0)
    offset = 0;
  const char *type = object_type ? object_type : "indicator";
  tq_buf sql;
  tq_buf_init(&sql, 0);
  tq_code rc = TQ_OK;
  sqlite3_stmt *st = NULL;
  if (total) {
    if (tq_buf_adds(&sql, "SELECT count(*) FROM objects o WHERE o.type=?1 AND ") != TQ_OK ||
        lib_criteria_sql_planned(lib, c, &sql) != TQ_OK) {
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
      goto done;
    }
    if (sqlite3_prepare_v2(lib->db, sql.data, -1, &st, NULL) != SQLITE_OK) {
      rc = lib_db_err(lib, err, "counting a criteria query");
      goto done;
    }
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    tq_criteria_bind(c, st, 2);
    if (sqlite3_step(st) != SQLITE_ROW) {
      rc = lib_db_err(lib, err, "counting a criteria query");
      goto done;
    }
    *total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    tq_buf_reset(&sql);
  }
  if (limit == 0)
    goto done;
  if (tq_buf_adds(&sql, "SELECT o.id FROM objects o WHERE o.type=?1 AND o.id > ?2 AND ") != TQ_OK ||
      lib_criteria_sql_planned(lib, c, &sql) != TQ_OK ||
      tq_buf_printf(&sql, " ORDER BY %s%s%s LIMIT :lim OFFSET :off", col, desc ? " DESC" : "",
                    strcmp(col, "o.id") ? (desc ? ", o.id DESC" : ", o.id") : "") != TQ_OK) {
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
    goto done;
  }
  /* The criteria's plain '?' take the numbers after ?2 in order; :lim and :off come after. */
  if (sqlite3_prepare_v2(lib->db, sql.data, -1, &st, NULL) != SQLITE_OK) {
    rc = lib_db_err(lib, err, "reading a criteria query");
    goto done;
  }
  sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, after_id > 0 ? after_id : INT64_MIN);
  tq_criteria_bind(c, st, 3);
  sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":lim"), limit);
  sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":off"), offset);
  size_t cap = (size_t)(limit < 256 ? limit : 256);
  int64_t *arr = malloc(cap * sizeof *arr);
  if (arr == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
    goto done;
  }
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      int64_t *p = realloc(arr, cap * 2 * sizeof *p);
      if (p == NULL) {
        free(arr);
        rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
        goto done;
      }
      arr = p;
      cap *= 2;
    }
    arr[(*n)++] = sqlite3_column_int64(st, 0);
  }
  if (step != SQLITE_DONE) {
    free(arr);
    *n = 0;
    rc = lib_db_err(lib, err, "reading a criteria query");
    goto done;
  }
  *ids = arr;
done:
  sqlite3_finalize(st);
  tq_buf_free(&sql);
  return rc;
}

tq_code tq_lib_keyword_ids(tq_lib *lib, const char *text, int64_t limit, int64_t **ids, size_t *n,
                           tq_err *err) {
  *ids = NULL;
  *n = 0;
  if (limit <= 0 || limit > TQ_CRITERIA_MAX_PAGE)
    limit = TQ_CRITERIA_MAX_PAGE;
  char *lit = like_literal(text);
  size_t cap = (size_t)limit;
  int64_t *arr = malloc(cap * sizeof *arr);
  char *pat = lit ? malloc(strlen(lit) + 3) : NULL;
  if (pat == NULL || arr == NULL) {
    free(lit);
    free(pat);
    free(arr);
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  sprintf(pat, "%%%s%%", lit);
  free(lit);
  /* Exact matches first, then values that start with the text, then the rest; by id within. */
  sqlite3_stmt *st = NULL;
  tq_code rc = TQ_OK;
  if (sqlite3_prepare_v2(lib->db,
                         "SELECT id FROM objects WHERE value LIKE ?1 ESCAPE '\\' ORDER BY"
                         " (value = ?2) DESC, (substr(value, 1, length(?2)) = ?2) DESC, id"
                         " LIMIT ?3",
                         -1, &st, NULL) != SQLITE_OK) {
    rc = lib_db_err(lib, err, "searching");
    goto done;
  }
  sqlite3_bind_text(st, 1, pat, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, limit);
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW && *n < cap)
    arr[(*n)++] = sqlite3_column_int64(st, 0);
  if (step != SQLITE_DONE && step != SQLITE_ROW)
    rc = lib_db_err(lib, err, "searching");
done:
  sqlite3_finalize(st);
  free(pat);
  if (rc != TQ_OK) {
    free(arr);
    *n = 0;
  } else
    *ids = arr;
  return rc;
}
