/* record.c: `tqhost plugin test DIR --record BASE_URL`: each T.run of a spec that names a
 * replay file runs once against the live API at BASE_URL (the plugin's base URL field pointed
 * there), every exchange is kept with its secrets removed, and the file is written; the spec
 * then gets a replay of what was written, as later runs without --record will.
 *
 * What never reaches a fixture: the text of any secret (the spec's, --set's: every password
 * field) raw or percent-encoded, replaced by "{{secret:KEY}}", which replay matches against the
 * run's own secret; any run of 8 bytes of one of them, any case, reversed (the rule of
 * src/lua/redact.c), and the value of every header, query parameter or request JSON field whose
 * name says credential (tq_net_secret_name), cookies included, replaced by "{{redacted}}",
 * which replay matches as any value. BASE_URL itself is written back as the spec's base URL.
 *
 * A recording fails, and writes nothing, when an exchange got no answer (API down, refused,
 * timeout, TLS), a 5xx or a 429 after the manifest's retries, or a binary body. A fixture that
 * existed before the command is replayed, not recorded, unless --force. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "record.h"

#define MARK_REDACTED "{{redacted}}"

/* ---- BASE_URL ------------------------------------------------------------------------------ */

tq_code rec_check_base(const char *url, tq_err *err) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL, *frag = NULL;
  tq_code rc = TQ_OK;
  if (u == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
    rc = tq_err_set(err, TQ_EINVAL, "--record '%s': BASE_URL must be an http:// or https:// URL",
                    url);
  else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
    rc = tq_err_set(err, TQ_EINVAL, "--record '%s': BASE_URL has no host", url);
  else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
    rc =
        tq_err_set(err, TQ_EINVAL,
                   "--record: BASE_URL must not hold credentials (give them with --set KEY=VALUE)");
  else if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
           curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK)
    rc = tq_err_set(err, TQ_EINVAL, "--record '%s': BASE_URL must not have a query or a fragment",
                    url);
  curl_free(scheme);
  curl_free(host);
  curl_free(user);
  curl_free(query);
  curl_free(frag);
  curl_url_cleanup(u);
  return rc;
}

/* ---- redaction ------------------------------------------------------------------------------ */

/* The recorder of one live run. */
typedef struct recorder {
  const char *live_base, *orig_base; /* BASE_URL and the spec's base URL it stands for */
  const tq_lua_kv *secrets;          /* every secret text to remove (spec's and --set's) */
  size_t n_secrets;
  tq_lua_kv *learned; /* values the request sent under credential names (key NULL): removed
                         everywhere too, the answer included (an echo) */
  size_t n_learned;
  cJSON *list;       /* the exchanges, redacted */
  char failed[1024]; /* why the recording failed; "" */
  int oom;
} recorder;

/* Replaces every occurrence of from (non-empty) in b's text by to. */
static tq_code buf_replace(tq_buf *b, const char *from, const char *to) {
  size_t flen = strlen(from);
  if (flen == 0 || b->data == NULL || memmem(b->data, b->len, from, flen) == NULL)
    return TQ_OK;
  tq_buf out;
  tq_buf_init(&out, 0);
  tq_code rc = tq_buf_add(&out, "", 0);
  const char *p = b->data, *end = b->data + b->len;
  while (rc == TQ_OK && p < end) {
    const char *hit = memmem(p, (size_t)(end - p), from, flen);
    size_t keep = hit ? (size_t)(hit - p) : (size_t)(end - p);
    rc = tq_buf_add(&out, p, keep);
    if (rc == TQ_OK && hit)
      rc = tq_buf_adds(&out, to);
    p = hit ? hit + flen : end;
  }
  if (rc != TQ_OK) {
    tq_buf_free(&out);
    return rc;
  }
  tq_buf_free(b);
  *b = out;
  return TQ_OK;
}

/* Replaces each value of kv (raw and percent-encoded) in b by its marker: "{{secret:KEY}}",
 * or "{{redacted}}" for a key NULL. Values shorter than TQ_LUA_REDACT_MIN are left to the
 * rules by name: they would match ordinary words. */
static tq_code replace_values(tq_buf *b, const tq_lua_kv *kv, size_t n) {
  tq_code rc = TQ_OK;
  for (size_t i = 0; rc == TQ_OK && i < n; i++) {
    const char *v = kv[i].value;
    if (v == NULL || strlen(v) < TQ_LUA_REDACT_MIN)
      continue;
    char mark[200];
    if (kv[i].key)
      snprintf(mark, sizeof mark, "{{secret:%s}}", kv[i].key);
    else
      snprintf(mark, sizeof mark, "%s", MARK_REDACTED);
    char *esc = curl_easy_escape(NULL, v, 0);
    rc = buf_replace(b, v, mark);
    if (rc == TQ_OK && esc)
      rc = buf_replace(b, esc, mark);
    curl_free(esc);
  }
  return rc;
}

/* s (len bytes) as it may be written: BASE_URL back to the spec's base URL, each secret and
 * learned value (raw and percent-encoded) to its marker, then the windows rule over both.
 * malloc'd, NULL on ENOMEM. */
static char *rec_text(recorder *r, const char *s, size_t len, size_t *out_len) {
  tq_buf b;
  tq_buf_init(&b, 0);
  tq_code rc = tq_buf_add(&b, s, len);
  if (rc == TQ_OK)
    rc = buf_replace(&b, r->live_base, r->orig_base);
  if (rc == TQ_OK)
    rc = replace_values(&b, r->secrets, r->n_secrets);
  if (rc == TQ_OK)
    rc = replace_values(&b, r->learned, r->n_learned);
  size_t n = r->n_secrets + r->n_learned;
  tq_lua_kv *all = rc == TQ_OK ? calloc(n ? n : 1, sizeof *all) : NULL;
  char *out = NULL;
  if (all) {
    memcpy(all, r->secrets, r->n_secrets * sizeof *all);
    memcpy(all + r->n_secrets, r->learned, r->n_learned * sizeof *all);
    out = tq_lua_mask(all, n, b.data, b.len, MARK_REDACTED, out_len);
  }
  free(all);
  tq_buf_free(&b);
  if (out == NULL)
    r->oom = 1;
  return out;
}

/* Keeps a copy of v (len bytes; percent-decoded when decode) among the learned values. */
static void learn(recorder *r, const char *v, size_t len, int decode) {
  char *copy = decode ? curl_easy_unescape(NULL, v, (int)len, NULL) : NULL;
  char *val = decode ? (copy ? tq_strdup(copy) : NULL) : tq_strndup(v, len);
  curl_free(copy);
  tq_lua_kv *g = val ? realloc(r->learned, (r->n_learned + 1) * sizeof *g) : NULL;
  if (g == NULL) {
    free(val);
    r->oom = 1;
    return;
  }
  r->learned = g;
  g[r->n_learned++] = (tq_lua_kv){NULL, val};
}

/* The values of credential-named parameters of a query or form text q (len bytes). */
static void learn_query(recorder *r, const char *q, size_t len) {
  const char *end = q + len;
  while (q < end) {
    const char *amp = memchr(q, '&', (size_t)(end - q));
    const char *stop = amp ? amp : end;
    const char *eq = memchr(q, '=', (size_t)(stop - q));
    if (eq) {
      char *name = curl_easy_unescape(NULL, q, (int)(eq - q), NULL);
      if (name && tq_net_secret_name(name, strlen(name)))
        learn(r, eq + 1, (size_t)(stop - eq - 1), 1);
      curl_free(name);
    }
    q = amp ? amp + 1 : end;
  }
}

static void learn_json(recorder *r, const cJSON *j) {
  for (const cJSON *it = j ? j->child : NULL; it; it = it->next) {
    if (it->string && cJSON_IsString(it) && tq_net_secret_name(it->string, strlen(it->string)))
      learn(r, it->valuestring, strlen(it->valuestring), 0);
    learn_json(r, it);
  }
}

/* What the request sent under credential names: its query, headers and body. */
static void learn_request(recorder *r, const tq_lua_exchange *x) {
  const char *q = strchr(x->url, '?');
  if (q)
    learn_query(r, q + 1, strcspn(q + 1, "#"));
  for (size_t i = 0; i < x->n_headers; i++) {
    const char *line = x->headers[i], *colon = strchr(line, ':');
    if (colon == NULL || !tq_net_secret_name(line, (size_t)(colon - line)))
      continue;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
      v++;
    learn(r, v, strlen(v), 0);
    const char *sp = strchr(v, ' '); /* "Bearer TOKEN": the token alone too */
    if (sp)
      learn(r, sp + 1, strlen(sp + 1), 0);
  }
  if (x->body && x->body_len) {
    cJSON *j = cJSON_ParseWithLength(x->body, x->body_len);
    if (j)
      learn_json(r, j);
    else
      learn_query(r, x->body, x->body_len);
    cJSON_Delete(j);
  }
}

static char *rec_str(recorder *r, const char *s) { return rec_text(r, s, strlen(s), NULL); }

/* A URL: rec_text, then credential parameters by name. */
static char *rec_url(recorder *r, const char *url) {
  char *t = rec_str(r, url);
  char *m = t ? tq_net_url_mask(t, MARK_REDACTED) : NULL;
  free(t);
  if (m == NULL)
    r->oom = 1;
  return m;
}

/* Whether v is exactly one secret marker, optionally after a scheme word ("Bearer {{...}}"). */
static int only_marker(const char *v) {
  const char *sp = strchr(v, ' ');
  if (sp && strchr(sp + 1, ' ') == NULL)
    v = sp + 1;
  size_t n = strlen(v);
  return strncmp(v, "{{secret:", 9) == 0 && n > 11 && strcmp(v + n - 2, "}}") == 0 &&
         strstr(v + 9, "{{") == NULL && strstr(v + 9, "}}") == v + n - 2;
}

/* A header value: a credential header keeps only a secret marker, else "{{redacted}}". */
static char *rec_header(recorder *r, const char *name, size_t nlen, const char *v, size_t vlen) {
  char *t = rec_text(r, v, vlen, NULL);
  if (t && tq_net_secret_name(name, nlen) && !only_marker(t)) {
    free(t);
    t = tq_strdup(MARK_REDACTED);
  }
  if (t == NULL)
    r->oom = 1;
  return t;
}

/* Every key and string of the children of parent through rec_text; values of
 * credential-named fields (by_name) replaced whole by the marker. */
static void rec_json(recorder *r, cJSON *parent, int by_name) {
  cJSON *it = parent->child;
  while (it && !r->oom) {
    cJSON *next = it->next;
    if (it->string && !(it->type & cJSON_StringIsConst)) {
      char *k = rec_str(r, it->string);
      char *ck = k ? cJSON_malloc(strlen(k) + 1) : NULL;
      if (ck) {
        strcpy(ck, k);
        cJSON_free(it->string);
        it->string = ck;
      } else {
        r->oom = 1;
      }
      free(k);
    }
    if (by_name && it->string && tq_net_secret_name(it->string, strlen(it->string)) &&
        !cJSON_IsObject(it) && !cJSON_IsArray(it)) {
      cJSON *m = cJSON_CreateString(MARK_REDACTED);
      char *name = m ? cJSON_malloc(strlen(it->string) + 1) : NULL;
      if (name)
        strcpy(name, it->string);
      if (m)
        m->string = name; /* the field keeps its name; cJSON_Delete frees it with m */
      if (name == NULL || !cJSON_ReplaceItemViaPointer(parent, it, m)) {
        cJSON_Delete(m);
        r->oom = 1;
      }
    } else if (cJSON_IsString(it)) {
      char *v = rec_str(r, it->valuestring);
      if (v == NULL || cJSON_SetValuestring(it, v) == NULL)
        r->oom = 1;
      free(v);
    } else if (it->child) {
      rec_json(r, it, by_name);
    }
    it = next;
  }
}

/* A body as "json" (when it parses) or "body" of o. by_name: credential fields of a request
 * body (JSON or form) go whole. */
static void rec_body(recorder *r, cJSON *o, const char *body, size_t len, int by_name) {
  cJSON *j = len ? cJSON_ParseWithLength(body, len) : NULL;
  if (j && (cJSON_IsObject(j) || cJSON_IsArray(j))) {
    rec_json(r, j, by_name);
    cJSON_AddItemToObject(o, "json", j);
    return;
  }
  cJSON_Delete(j);
  char *t = rec_text(r, body, len, NULL);
  if (t && by_name && strchr(t, '=') && !strchr(t, ' ') && !strchr(t, '{')) { /* a form */
    char *q = NULL;
    if (asprintf(&q, "?%s", t) >= 0) {
      char *m = tq_net_url_mask(q, MARK_REDACTED);
      free(t);
      t = m ? tq_strdup(m + 1) : NULL;
      free(m);
    }
    free(q);
  }
  if (t == NULL) {
    r->oom = 1;
    return;
  }
  cJSON_AddStringToObject(o, "body", t);
  free(t);
}

/* Response headers worth replaying; the others change on every answer or describe the
 * transfer, which replay does not repeat. */
static int header_kept(const char *name, size_t n) {
  static const char *const drop[] = {"date",
                                     "connection",
                                     "keep-alive",
                                     "content-length",
                                     "transfer-encoding",
                                     "content-encoding",
                                     "server",
                                     NULL};
  for (const char *const *d = drop; *d; d++)
    if (strlen(*d) == n && strncasecmp(*d, name, n) == 0)
      return 0;
  return 1;
}

/* The raw response header block as an object (repeated names joined with ", "). */
static cJSON *rec_resp_headers(recorder *r, const char *raw) {
  cJSON *h = cJSON_CreateObject();
  const char *p = raw ? raw : "";
  while (h && *p && !r->oom) {
    size_t len = strcspn(p, "\r\n");
    const char *colon = memchr(p, ':', len);
    if (colon && strncmp(p, "HTTP/", 5) != 0 && header_kept(p, (size_t)(colon - p))) {
      const char *v = colon + 1;
      while (v < p + len && (*v == ' ' || *v == '\t'))
        v++;
      char name[128];
      snprintf(name, sizeof name, "%.*s", (int)(colon - p), p);
      char *val = rec_header(r, p, (size_t)(colon - p), v, (size_t)(p + len - v));
      cJSON *old = cJSON_GetObjectItem(h, name);
      if (val && old) {
        char *joined = NULL;
        if (asprintf(&joined, "%s, %s", old->valuestring, val) >= 0)
          cJSON_SetValuestring(old, joined);
        free(joined);
      } else if (val) {
        cJSON_AddStringToObject(h, name, val);
      }
      free(val);
    }
    p += len;
    while (*p == '\r' || *p == '\n')
      p++;
  }
  return h;
}

/* The request part: the script's header lines and body. */
static cJSON *rec_request(recorder *r, const tq_lua_exchange *x) {
  cJSON *o = cJSON_CreateObject();
  cJSON *h = cJSON_AddObjectToObject(o, "headers");
  for (size_t i = 0; h && i < x->n_headers; i++) {
    const char *line = x->headers[i], *colon = strchr(line, ':');
    if (colon == NULL)
      continue;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
      v++;
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(colon - line), line);
    char *val = rec_header(r, line, (size_t)(colon - line), v, strlen(v));
    if (val)
      cJSON_AddStringToObject(h, name, val);
    free(val);
  }
  if (o && x->body)
    rec_body(r, o, x->body, x->body_len, 1);
  return o;
}

/* What to say of an exchange in a message: method and URL with credentials masked. */
static void exchange_where(recorder *r, const tq_lua_exchange *x, char *out, size_t n) {
  char *m = tq_net_url_mask(x->url, "********");
  char *t = m ? tq_lua_mask(r->secrets, r->n_secrets, m, strlen(m), "********", NULL) : NULL;
  snprintf(out, n, "%s %s", x->method, t ? t : "(url)");
  free(m);
  free(t);
}

static int same_exchange(const cJSON *a, const char *method, const char *url) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(a, "method");
  const cJSON *u = cJSON_GetObjectItemCaseSensitive(a, "url");
  return cJSON_IsString(m) && cJSON_IsString(u) && strcmp(m->valuestring, method) == 0 &&
         strcmp(u->valuestring, url) == 0;
}

/* tq_lua_record_fn: one exchange, checked and kept redacted. */
static void rec_exchange(void *ud, const tq_lua_exchange *x) {
  recorder *r = ud;
  const tq_net_response *resp = x->resp;
  char where[700];
  if (r->failed[0] || r->oom)
    return;
  exchange_where(r, x, where, sizeof where);
  if (resp->fail != TQ_NET_OK && resp->fail != TQ_NET_HTTP) {
    char *why =
        tq_lua_mask(r->secrets, r->n_secrets, resp->error, strlen(resp->error), "********", NULL);
    snprintf(r->failed, sizeof r->failed, "%s: no answer (%s: %s)", where,
             tq_net_fail_name(resp->fail), why ? why : "");
    free(why);
    return;
  }
  if (resp->status >= 500 || resp->status == 429) {
    snprintf(r->failed, sizeof r->failed, "%s: the API answered HTTP %d", where, resp->status);
    return;
  }
  if (resp->body && memchr(resp->body, '\0', resp->body_len)) {
    snprintf(r->failed, sizeof r->failed,
             "%s: the answer is binary (%zu bytes): a fixture holds text only", where,
             resp->body_len);
    return;
  }
  learn_request(r, x);
  char *url = rec_url(r, x->url);
  if (url == NULL)
    return;
  cJSON *e = NULL;
  for (cJSON *it = r->list->child; it && e == NULL; it = it->next)
    if (same_exchange(it, x->method, url))
      e = it; /* merged requests: one exchange */
  if (e == NULL) {
    e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "method", x->method);
    cJSON_AddStringToObject(e, "url", url);
    cJSON_AddItemToObject(e, "request", rec_request(r, x));
    cJSON_AddNumberToObject(e, "status", resp->status);
    cJSON_AddItemToObject(e, "headers", rec_resp_headers(r, resp->headers));
    rec_body(r, e, resp->body ? resp->body : "", resp->body ? resp->body_len : 0, 0);
    cJSON_AddItemToArray(r->list, e);
  }
  free(url);
}

/* ---- the session --------------------------------------------------------------------------- */

struct rec_session {
  char *live_base;
  int force;
  tq_lua_kv *set; /* --set KEY=VALUE, copies */
  size_t n_set;
  struct rec_fixture {
    char *path;  /* as the spec names it (relative to the plugin folder, the cwd) */
    cJSON *list; /* what was written */
  } * fixtures;  /* recorded by this command */
  size_t n_fixtures;
  char failed[1200]; /* the first recording that failed: the later ones are not tried */
  char **kept;       /* existing fixtures replayed (said once each) */
  size_t n_kept;
};

tq_code rec_session_new(const char *base, int force, const tq_lua_kv *set, size_t n_set,
                        rec_session **out, tq_err *err) {
  tq_code rc = rec_check_base(base, err);
  if (rc != TQ_OK)
    return rc;
  rec_session *s = calloc(1, sizeof *s);
  if (s == NULL || (s->live_base = tq_strdup(base)) == NULL ||
      (s->set = calloc(n_set ? n_set : 1, sizeof *s->set)) == NULL) {
    rec_session_free(s);
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  s->force = force;
  for (size_t i = 0; i < n_set; i++) {
    s->set[i].key = tq_strdup(set[i].key);
    s->set[i].value = tq_strdup(set[i].value);
    s->n_set++;
    if (!s->set[i].key || !s->set[i].value) {
      rec_session_free(s);
      return tq_err_set(err, TQ_ENOMEM, "out of memory");
    }
  }
  *out = s;
  return TQ_OK;
}

void rec_session_free(rec_session *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->n_set; i++) {
    free((char *)s->set[i].key);
    if (s->set[i].value)
      explicit_bzero((char *)s->set[i].value, strlen(s->set[i].value));
    free((char *)s->set[i].value);
  }
  free(s->set);
  for (size_t i = 0; i < s->n_fixtures; i++) {
    free(s->fixtures[i].path);
    cJSON_Delete(s->fixtures[i].list);
  }
  free(s->fixtures);
  for (size_t i = 0; i < s->n_kept; i++)
    free(s->kept[i]);
  free(s->kept);
  free(s->live_base);
  free(s);
}

tq_code rec_session_check(const rec_session *s, const tq_plugin *p, tq_err *err) {
  for (size_t i = 0; i < s->n_set; i++) {
    const tq_plugin_field *f = tq_plugin_field_find(p, s->set[i].key);
    char *norm = NULL;
    if (f == NULL)
      return tq_err_set(err, TQ_EINVAL, "--set %s: not a config field of plugin %s", s->set[i].key,
                        p->name);
    if (tq_plugin_field_check(f, s->set[i].value, &norm, err) != TQ_OK) {
      tq_err_prefix(err, "--set: ");
      return TQ_EINVAL;
    }
    free((char *)s->set[i].value);
    s->set[i].value = norm;
  }
  return TQ_OK;
}

/* The url field BASE_URL stands for: base_url, else the plugin's only url field. */
static const tq_plugin_field *base_field(const tq_plugin *p, tq_err *err) {
  const tq_plugin_field *only = NULL;
  size_t n = 0;
  for (size_t i = 0; i < p->n_fields; i++) {
    if (p->fields[i].type != TQ_FIELD_URL)
      continue;
    if (strcmp(p->fields[i].key, "base_url") == 0)
      return &p->fields[i];
    only = &p->fields[i];
    n++;
  }
  if (n == 1)
    return only;
  tq_err_set(err, TQ_EINVAL,
             "--record: plugin %s has %s url config field: BASE_URL replaces the field "
             "base_url, or the only field of type url",
             p->name, n ? "more than one" : "no");
  return NULL;
}

static struct rec_fixture *session_fixture(rec_session *s, const char *path) {
  for (size_t i = 0; i < s->n_fixtures; i++)
    if (strcmp(s->fixtures[i].path, path) == 0)
      return &s->fixtures[i];
  return NULL;
}

static int session_kept(rec_session *s, const char *path) {
  for (size_t i = 0; i < s->n_kept; i++)
    if (strcmp(s->kept[i], path) == 0)
      return 1;
  char **k = realloc(s->kept, (s->n_kept + 1) * sizeof *k);
  if (k) {
    s->kept = k;
    if ((k[s->n_kept] = tq_strdup(path)) != NULL)
      s->n_kept++;
  }
  return 0;
}

/* kv with (key, value) set: replaced where key is, else appended. Strings borrowed. */
static tq_code kv_put(tq_lua_kv **kv, size_t *n, const char *key, const char *value) {
  for (size_t i = 0; i < *n; i++)
    if (strcmp((*kv)[i].key, key) == 0) {
      (*kv)[i].value = value;
      return TQ_OK;
    }
  tq_lua_kv *g = realloc(*kv, (*n + 1) * sizeof *g);
  if (g == NULL)
    return TQ_ENOMEM;
  *kv = g;
  g[(*n)++] = (tq_lua_kv){key, value};
  return TQ_OK;
}

/* BASE_URL written like the spec's base URL: with or without its final '/'. */
static char *live_like(const char *live, const char *orig) {
  size_t ll = strlen(live), lo = strlen(orig);
  int want = lo > 0 && orig[lo - 1] == '/';
  int has = ll > 0 && live[ll - 1] == '/';
  char *out = NULL;
  if (want == has)
    return tq_strdup(live);
  if (want)
    return asprintf(&out, "%s/", live) < 0 ? NULL : out;
  return tq_strndup(live, ll - 1);
}

/* Writes list to path through a temporary file in the same folder and a rename. */
static tq_code fixture_write(const char *path, const cJSON *list, tq_err *err) {
  char tmp[PATH_MAX + 32], dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) {
    *slash = '\0';
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
      return tq_err_set(err, TQ_EIO, "%s: cannot make the folder: %s", dir, strerror(errno));
  }
  snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
  char *text = cJSON_Print(list);
  int fd = text ? mkstemp(tmp) : -1;
  if (fd < 0) {
    free(text);
    return tq_err_set(err, TQ_EIO, "%s: cannot write: %s", path,
                      text ? strerror(errno) : "out of memory");
  }
  size_t len = strlen(text);
  int ok = fchmod(fd, 0644) == 0 && write(fd, text, len) == (ssize_t)len &&
           write(fd, "\n", 1) == 1 && fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  free(text);
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return tq_err_set(err, TQ_EIO, "%s: cannot write: %s", path, strerror(errno));
  }
  return TQ_OK;
}

/* Adds the exchanges of fresh that list does not have (same method and URL) to list. */
static void merge_into(cJSON *list, cJSON *fresh) {
  cJSON *it = fresh->child;
  while (it) {
    cJSON *next = it->next;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(it, "method");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(it, "url");
    int dup = 0;
    for (cJSON *o = list->child; o && !dup; o = o->next)
      dup = same_exchange(o, m->valuestring, u->valuestring);
    if (!dup)
      cJSON_AddItemToArray(list, cJSON_DetachItemViaPointer(fresh, it));
    it = next;
  }
}

/* The live run: config with BASE_URL and --set's values, the recorder attached. */
static tq_code live_run(rec_session *s, const tq_op_request *rq, const tq_plugin_field *bf,
                        const char *orig, recorder *r, tq_err *err) {
  tq_plugin_config cfg = *rq->cfg;
  cfg.config = NULL;
  cfg.secrets = NULL;
  cfg.n_config = cfg.n_secrets = 0;
  tq_lua_kv *all = NULL; /* every secret text to remove */
  size_t n_all = 0;
  char *live = live_like(s->live_base, orig);
  tq_code rc = live ? TQ_OK : TQ_ENOMEM;
  for (size_t i = 0; rc == TQ_OK && i < rq->cfg->n_config; i++)
    rc = kv_put(&cfg.config, &cfg.n_config, rq->cfg->config[i].key, rq->cfg->config[i].value);
  for (size_t i = 0; rc == TQ_OK && i < rq->cfg->n_secrets; i++) {
    rc = kv_put(&cfg.secrets, &cfg.n_secrets, rq->cfg->secrets[i].key, rq->cfg->secrets[i].value);
    if (rc == TQ_OK) /* the spec's own secret too: a real key may have been written there */
      rc = kv_put(&all, &n_all, rq->cfg->secrets[i].key, rq->cfg->secrets[i].value);
  }
  for (size_t i = 0; rc == TQ_OK && i < s->n_set; i++) {
    const tq_plugin_field *f = tq_plugin_field_find(rq->plugin, s->set[i].key);
    if (f->type == TQ_FIELD_PASSWORD) {
      rc = kv_put(&cfg.secrets, &cfg.n_secrets, s->set[i].key, s->set[i].value);
      if (rc == TQ_OK && (all = realloc(all, (n_all + 1) * sizeof *all)) == NULL)
        rc = TQ_ENOMEM;
      if (rc == TQ_OK)
        all[n_all++] = s->set[i];
    } else {
      rc = kv_put(&cfg.config, &cfg.n_config, s->set[i].key, s->set[i].value);
    }
  }
  if (rc == TQ_OK)
    rc = kv_put(&cfg.config, &cfg.n_config, bf->key, live);
  if (rc != TQ_OK) {
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
    goto done;
  }
  *r = (recorder){.live_base = live,
                  .orig_base = orig,
                  .secrets = all,
                  .n_secrets = n_all,
                  .list = cJSON_CreateArray()};
  tq_op_request live_rq = *rq;
  live_rq.cfg = &cfg;
  live_rq.replay_file = NULL;
  live_rq.record = rec_exchange;
  live_rq.record_ud = r;
  tq_op_result res;
  rc =
      r->list ? tq_plugin_op_run(&live_rq, &res, err) : tq_err_set(err, TQ_ENOMEM, "out of memory");
  if (rc == TQ_OK)
    tq_op_result_free(&res);
  if (rc == TQ_OK && r->oom)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory recording");
done:
  r->live_base = NULL; /* freed below */
  r->secrets = NULL;
  for (size_t i = 0; i < r->n_learned; i++)
    free((char *)r->learned[i].value);
  free(r->learned);
  r->learned = NULL;
  free(live);
  free(all);
  free(cfg.config);
  free(cfg.secrets);
  return rc;
}

tq_code rec_run(rec_session *s, const tq_op_request *rq, tq_op_result *res, tq_err *err) {
  const char *path = rq->replay_file;
  if (path == NULL)
    return tq_plugin_op_run(rq, res, err);
  struct rec_fixture *fx = session_fixture(s, path);
  if (fx == NULL && !s->force && access(path, F_OK) == 0) {
    if (!session_kept(s, path))
      fprintf(stderr, "kept %s: it exists (--force records it again)\n", path);
    return tq_plugin_op_run(rq, res, err);
  }
  if (fx) { /* recorded by this command: ask the API again only for what the file lacks */
    tq_code rc = tq_plugin_op_run(rq, res, err);
    if (rc != TQ_OK || res->status != TQ_LUA_ERROR || res->message == NULL ||
        strstr(res->message, "no recorded response for") == NULL)
      return rc;
    tq_op_result_free(res);
  }
  if (s->failed[0]) /* an API that is down or failing is not asked again and again */
    return tq_err_set(err, TQ_ENET, "%s not recorded: an earlier recording failed (%s)", path,
                      s->failed);
  const tq_plugin_field *bf = base_field(rq->plugin, err);
  if (bf == NULL)
    return TQ_EINVAL;
  const char *orig = tq_plugin_config_get(rq->cfg, bf->key);
  if (orig == NULL)
    return tq_err_set(err, TQ_EINVAL, "--record: the spec gives no %s and the manifest no default",
                      bf->key);
  recorder r = {0};
  tq_code rc = live_run(s, rq, bf, orig, &r, err);
  if (rc == TQ_OK && r.failed[0]) {
    rc = tq_err_set(err, TQ_ENET, "recording %s failed: %s; nothing written", path, r.failed);
    snprintf(s->failed, sizeof s->failed, "%s", err->msg);
  }
  if (rc != TQ_OK)
    goto done;
  int n = cJSON_GetArraySize(r.list);
  if (n == 0) {
    fprintf(stderr, "%s: the run made no request: nothing recorded\n", path);
    cJSON_Delete(r.list);
    r.list = NULL;
    if (access(path, F_OK) == 0)
      return tq_plugin_op_run(rq, res, err);
    return tq_err_set(err, TQ_ENOTFOUND, "%s: the run made no request, and no such file", path);
  }
  if (fx == NULL) {
    struct rec_fixture *g = realloc(s->fixtures, (s->n_fixtures + 1) * sizeof *g);
    char *p = tq_strdup(path);
    if (g == NULL || p == NULL) {
      free(p);
      if (g)
        s->fixtures = g;
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
      goto done;
    }
    s->fixtures = g;
    fx = &g[s->n_fixtures++];
    *fx = (struct rec_fixture){p, r.list};
    r.list = NULL;
  } else {
    merge_into(fx->list, r.list);
  }
  rc = fixture_write(path, fx->list, err);
  if (rc == TQ_OK) {
    fprintf(stderr, "recorded %s (%d exchange%s)\n", path, cJSON_GetArraySize(fx->list),
            cJSON_GetArraySize(fx->list) == 1 ? "" : "s");
    rc = tq_plugin_op_run(rq, res, err); /* the spec sees the replay of what was written */
  }
done:
  cJSON_Delete(r.list);
  return rc;
}
