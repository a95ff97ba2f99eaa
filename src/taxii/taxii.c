/* taxii.c: the TAXII 2.1 client's resources: the client (auth header, net providers per
 * host), discovery, API roots, collections and one Get Objects request with its X-TAXII
 * headers, and the error messages that tell a user what to check. The pass walker is in
 * walk.c. Calls only net, stix (timestamps) and core. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "tqhost/taxii.h"

struct tq_taxii {
  tq_net *net;
  char *name;
  char *discovery_url;
  char *auth_header; /* "Authorization: Basic ..." or NULL; holds the only copy of the secret */
  char *ca_file;
  int verify_tls;
  int64_t timeout_ms;
  int retry_max;
  size_t max_body;
};

static const int RETRY_ON[] = {429, 500, 502, 503, 504};

void tq_taxii_opts_init(tq_taxii_opts *o) {
  memset(o, 0, sizeof *o);
  o->verify_tls = 1;
  o->retry_max = -1;
}

/* RFC 4648 base64 of in[0..n) into a malloc'd string. */
static char *base64(const unsigned char *in, size_t n) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = malloc((n + 2) / 3 * 4 + 1);
  if (out == NULL)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)in[i] << 16;
    if (i + 1 < n)
      v |= (unsigned)in[i + 1] << 8;
    if (i + 2 < n)
      v |= in[i + 2];
    out[o++] = tab[(v >> 18) & 63];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? tab[v & 63] : '=';
  }
  out[o] = '\0';
  return out;
}

static tq_code basic_auth(const char *user, const char *pass, char **out, tq_err *err) {
  tq_buf b;
  tq_buf_init(&b, 0);
  tq_code rc = tq_buf_printf(&b, "%s:%s", user, pass ? pass : "");
  char *enc = rc == TQ_OK ? base64((const unsigned char *)b.data, b.len) : NULL;
  /* The clear credentials must not linger in freed memory. */
  if (b.data)
    explicit_bzero(b.data, b.len);
  tq_buf_free(&b);
  if (enc == NULL)
    return tq_err_set(err, TQ_ENOMEM, "taxii: out of memory building the Authorization header");
  size_t len = strlen(enc) + 32;
  *out = malloc(len);
  if (*out)
    snprintf(*out, len, "Authorization: Basic %s", enc);
  explicit_bzero(enc, strlen(enc));
  free(enc);
  return *out ? TQ_OK : tq_err_set(err, TQ_ENOMEM, "taxii: out of memory");
}

tq_code tq_taxii_new(tq_net *net, const char *name, const tq_taxii_opts *o, tq_taxii **out,
                     tq_err *err) {
  if (o->discovery_url == NULL || *o->discovery_url == '\0')
    return tq_err_set(err, TQ_EINVAL, "taxii %s: no discovery URL", name);
  tq_taxii *t = calloc(1, sizeof *t);
  if (t == NULL)
    return tq_err_set(err, TQ_ENOMEM, "taxii: out of memory");
  t->net = net;
  t->name = tq_strdup(name ? name : "taxii");
  t->discovery_url = tq_strdup(o->discovery_url);
  t->ca_file = o->ca_file && *o->ca_file ? tq_strdup(o->ca_file) : NULL;
  t->verify_tls = o->verify_tls;
  t->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 60000;
  t->retry_max = o->retry_max >= 0 ? o->retry_max : 4;
  t->max_body = o->max_body ? o->max_body : (size_t)256 << 20;
  tq_code rc = TQ_OK;
  if (t->name == NULL || t->discovery_url == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "taxii: out of memory");
  if (rc == TQ_OK && o->username && *o->username)
    rc = basic_auth(o->username, o->password, &t->auth_header, err);
  if (rc != TQ_OK) {
    tq_taxii_free(t);
    return rc;
  }
  *out = t;
  return TQ_OK;
}

void tq_taxii_free(tq_taxii *t) {
  if (t == NULL)
    return;
  if (t->auth_header)
    explicit_bzero(t->auth_header, strlen(t->auth_header));
  free(t->auth_header);
  free(t->name);
  free(t->discovery_url);
  free(t->ca_file);
  free(t);
}

/* The provider for url's host: each host gets its own allow-list of exactly itself, so a
 * redirect can never carry the Authorization header to another server. */
static tq_code provider_for(tq_taxii *t, const char *url, tq_net_provider **out, tq_err *err) {
  CURLU *u = curl_url();
  char *host = NULL, *port = NULL;
  tq_code rc = TQ_OK;
  if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    rc = tq_err_set(err, TQ_EINVAL, "taxii %s: '%.300s' is not a URL", t->name, url);
    goto done;
  }
  curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
  char hostport[300], pname[400];
  snprintf(hostport, sizeof hostport, "%s:%s", host, port ? port : "");
  snprintf(pname, sizeof pname, "taxii:%s:%s", t->name, hostport);
  const char *allow[] = {hostport};
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.allow_hosts = allow;
  pol.n_allow_hosts = 1;
  pol.retry_max = t->retry_max;
  pol.retry_on = RETRY_ON;
  pol.n_retry_on = sizeof RETRY_ON / sizeof RETRY_ON[0];
  pol.timeout_ms = t->timeout_ms;
  pol.max_body = t->max_body;
  pol.ca_file = t->ca_file;
  pol.verify_tls = t->verify_tls;
  pol.max_conns = 4;
  rc = tq_net_provider_get(t->net, pname, &pol, out, err);
done:
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

/* "title: description" of a TAXII error body when it is one, else the start of the body. */
static void error_detail(const tq_net_response *r, char *out, size_t n) {
  out[0] = '\0';
  cJSON *j = r->body ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
  const cJSON *title = cJSON_GetObjectItemCaseSensitive(j, "title");
  const cJSON *desc = cJSON_GetObjectItemCaseSensitive(j, "description");
  if (cJSON_IsString(title))
    snprintf(out, n, " (server says: %.150s%s%.150s)", title->valuestring,
             cJSON_IsString(desc) ? ": " : "", cJSON_IsString(desc) ? desc->valuestring : "");
  else if (r->body && r->body_len)
    snprintf(out, n, " (server says: %.120s)", r->body);
  for (char *p = out; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  cJSON_Delete(j);
}

/* Turns a failed response into an error that names the URL and what to check. */
static tq_code http_error(tq_taxii *t, const char *url, const tq_net_response *r, tq_err *err) {
  char detail[360];
  error_detail(r, detail, sizeof detail);
  switch (r->status) {
  case 401:
    return tq_err_set(err, TQ_EDENIED,
                      "taxii %s: %.300s: HTTP 401 Unauthorized%s: check the feed's username and "
                      "that its password variable is set and right",
                      t->name, url, detail);
  case 403:
    return tq_err_set(err, TQ_EDENIED,
                      "taxii %s: %.300s: HTTP 403 Forbidden%s: the account may not read this API "
                      "root or collection; check its permissions with the provider",
                      t->name, url, detail);
  case 404:
    return tq_err_set(err, TQ_ENOTFOUND,
                      "taxii %s: %.300s: HTTP 404 Not Found%s: check the discovery URL and the "
                      "collection id; TAXII servers also answer 404 to wrong credentials",
                      t->name, url, detail);
  case 406:
    return tq_err_set(err, TQ_EINVAL,
                      "taxii %s: %.300s: HTTP 406 Not Acceptable%s: the server does not serve "
                      "'" TQ_TAXII_MEDIA_TYPE "'; is it a TAXII 2.1 server (not 2.0)?",
                      t->name, url, detail);
  default: break;
  }
  if (r->fail == TQ_NET_TIMEOUT)
    return tq_err_set(err, TQ_ETIMEOUT, "taxii %s: %s", t->name, r->error);
  if (r->fail == TQ_NET_TLS)
    return tq_err_set(err, TQ_ENET, "taxii %s: %s (check --ca-file, or --verify no for a test)",
                      t->name, r->error);
  if (r->fail == TQ_NET_BLOCKED)
    return tq_err_set(err, TQ_EDENIED, "taxii %s: %s", t->name, r->error);
  if (r->fail != TQ_NET_HTTP)
    return tq_err_set(err, TQ_ENET, "taxii %s: %s", t->name, r->error);
  return tq_err_set(err, r->status == 400 ? TQ_EINVAL : TQ_ENET,
                    "taxii %s: %.300s: HTTP %d after %d attempt(s)%s", t->name, url, r->status,
                    r->attempts, detail);
}

/* Whether a 2xx response says it is JSON (TAXII or plain: servers differ). */
static int is_json_response(const tq_net_response *r) {
  char *ct = tq_net_response_header(r, "Content-Type");
  int ok = ct == NULL || strcasestr(ct, "json") != NULL;
  free(ct);
  return ok;
}

/* One GET with the TAXII headers; *out is the response (the caller frees it) when TQ_OK. */
static tq_code taxii_get(tq_taxii *t, const char *url, tq_net_response **out, tq_err *err) {
  tq_net_provider *prov = NULL;
  tq_code rc = provider_for(t, url, &prov, err);
  if (rc != TQ_OK)
    return rc;
  const char *headers[3] = {"Accept: " TQ_TAXII_MEDIA_TYPE, "User-Agent: tqhost/0.1 (TAXII 2.1)",
                            t->auth_header};
  tq_net_request req = {
      .url = url, .headers = headers, .n_headers = t->auth_header ? 3 : 2, .no_cache = 1};
  tq_net_response *resp = NULL;
  rc = tq_net_fetch(t->net, prov, &req, &resp, err);
  if (rc != TQ_OK)
    return rc;
  if (resp->fail != TQ_NET_OK) {
    rc = http_error(t, url, resp, err);
    if (resp->status == 400) {
      *out = resp; /* the walker needs to see it */
      return rc;
    }
    tq_net_response_free(resp);
    return rc;
  }
  if (!is_json_response(resp)) {
    char *ct = tq_net_response_header(resp, "Content-Type");
    rc = tq_err_set(err, TQ_EINVAL,
                    "taxii %s: %.300s: answered Content-Type '%.100s', not TAXII JSON: is this "
                    "a TAXII 2.1 URL?",
                    t->name, url, ct ? ct : "");
    free(ct);
    tq_net_response_free(resp);
    return rc;
  }
  *out = resp;
  return TQ_OK;
}

/* GETs url and parses the body as a JSON object. */
static tq_code get_json(tq_taxii *t, const char *url, cJSON **out, tq_err *err) {
  tq_net_response *resp = NULL;
  tq_code rc = taxii_get(t, url, &resp, err);
  if (rc != TQ_OK) {
    tq_net_response_free(resp);
    return rc;
  }
  cJSON *j = cJSON_ParseWithLength(resp->body, resp->body_len);
  tq_net_response_free(resp);
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    return tq_err_set(err, TQ_EINVAL, "taxii %s: %.300s: the answer is not a JSON object", t->name,
                      url);
  }
  *out = j;
  return TQ_OK;
}

/* Resolves ref against base with curl's URL API and makes sure the path ends in '/'. */
static tq_code resolve_url(const char *base, const char *ref, char **out, tq_err *err) {
  CURLU *u = curl_url();
  char *s = NULL;
  tq_code rc = TQ_OK;
  if (u == NULL || curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
      curl_url_set(u, CURLUPART_URL, ref, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK) {
    rc = tq_err_set(err, TQ_EINVAL, "taxii: API root '%.200s' does not resolve against '%.200s'",
                    ref, base);
  } else {
    size_t len = strlen(s);
    *out = malloc(len + 2);
    if (*out == NULL) {
      rc = tq_err_set(err, TQ_ENOMEM, "taxii: out of memory");
    } else {
      memcpy(*out, s, len + 1);
      if (len == 0 || s[len - 1] != '/')
        strcat(*out, "/");
    }
  }
  curl_free(s);
  curl_url_cleanup(u);
  return rc;
}

/* A discovery document fetched over HTTPS may not send the client to plain HTTP: TAXII 2.1
 * section 4.1.1 says an API root is an absolute HTTPS URL (or relative), and following an
 * http:// one would send the Authorization header, and every page, in clear. */
static tq_code check_no_downgrade(const tq_taxii *t, const char *root, tq_err *err) {
  if (!tq_str_startswith(t->discovery_url, "https://") || tq_str_startswith(root, "https://"))
    return TQ_OK;
  return tq_err_set(err, TQ_EDENIED,
                    "taxii %s: the discovery document at %.200s lists the API root '%.200s', "
                    "which is not HTTPS: refused (TAXII 2.1 section 4.1.1 requires HTTPS API "
                    "roots; following it would send the credentials and the data in clear)",
                    t->name, t->discovery_url, root);
}

static void free_strs(char **v, size_t n) {
  for (size_t i = 0; v && i < n; i++)
    free(v[i]);
  free(v);
}

tq_code tq_taxii_discover(tq_taxii *t, char ***roots, size_t *n, tq_err *err) {
  cJSON *j = NULL;
  tq_code rc = get_json(t, t->discovery_url, &j, err);
  if (rc != TQ_OK)
    return rc;
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "api_roots");
  const cJSON *def = cJSON_GetObjectItemCaseSensitive(j, "default");
  size_t cap = (size_t)cJSON_GetArraySize(list) + 1, len = 0;
  char **v = calloc(cap, sizeof *v);
  if (v == NULL) {
    cJSON_Delete(j);
    return tq_err_set(err, TQ_ENOMEM, "taxii: out of memory");
  }
  /* The default first, then the others in the server's order (skipping the default). */
  if (cJSON_IsString(def))
    rc = resolve_url(t->discovery_url, def->valuestring, &v[len++], err);
  if (rc == TQ_OK && len)
    rc = check_no_downgrade(t, v[len - 1], err);
  const cJSON *it = NULL;
  cJSON_ArrayForEach(it, list) {
    if (rc != TQ_OK)
      break;
    if (!cJSON_IsString(it) ||
        (cJSON_IsString(def) && strcmp(it->valuestring, def->valuestring) == 0))
      continue;
    rc = resolve_url(t->discovery_url, it->valuestring, &v[len++], err);
    if (rc == TQ_OK)
      rc = check_no_downgrade(t, v[len - 1], err);
  }
  cJSON_Delete(j);
  if (rc == TQ_OK && len == 0)
    rc = tq_err_set(err, TQ_ENOTFOUND, "taxii %s: %.300s: the discovery document lists no API root",
                    t->name, t->discovery_url);
  if (rc != TQ_OK) {
    free_strs(v, len);
    return rc;
  }
  *roots = v;
  *n = len;
  return TQ_OK;
}

void tq_taxii_collection_clear(tq_taxii_collection *c) {
  free(c->id);
  free(c->title);
  free(c->alias);
  free(c->objects_url);
  memset(c, 0, sizeof *c);
}

static tq_code collection_from_json(const char *api_root, const cJSON *it, tq_taxii_collection *c,
                                    tq_err *err) {
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
  const cJSON *title = cJSON_GetObjectItemCaseSensitive(it, "title");
  const cJSON *alias = cJSON_GetObjectItemCaseSensitive(it, "alias");
  if (!cJSON_IsString(id) || strchr(id->valuestring, '/') || strchr(id->valuestring, '?'))
    return tq_err_set(err, TQ_EINVAL, "taxii: %.300scollections/: a collection without a valid id",
                      api_root);
  memset(c, 0, sizeof *c);
  c->id = tq_strdup(id->valuestring);
  c->title = tq_strdup(cJSON_IsString(title) ? title->valuestring : "");
  c->alias = cJSON_IsString(alias) ? tq_strdup(alias->valuestring) : NULL;
  c->can_read = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "can_read"));
  c->can_write = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "can_write"));
  size_t len = strlen(api_root) + strlen(c->id ? c->id : "") + 32;
  c->objects_url = malloc(len);
  if (c->objects_url)
    snprintf(c->objects_url, len, "%scollections/%s/objects/", api_root, c->id);
  if (c->id == NULL || c->title == NULL || c->objects_url == NULL) {
    tq_taxii_collection_clear(c);
    return tq_err_set(err, TQ_ENOMEM, "taxii: out of memory");
  }
  return TQ_OK;
}

tq_code tq_taxii_collections(tq_taxii *t, const char *api_root, tq_taxii_collection **out,
                             size_t *n, tq_err *err) {
  char url[2048];
  snprintf(url, sizeof url, "%scollections/", api_root);
  cJSON *j = NULL;
  tq_code rc = get_json(t, url, &j, err);
  if (rc != TQ_OK)
    return rc;
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "collections");
  size_t cap = (size_t)cJSON_GetArraySize(list), len = 0;
  tq_taxii_collection *v = calloc(cap ? cap : 1, sizeof *v);
  if (v == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "taxii: out of memory");
  const cJSON *it = NULL;
  cJSON_ArrayForEach(it, list) {
    if (rc != TQ_OK)
      break;
    rc = collection_from_json(api_root, it, &v[len], err);
    if (rc == TQ_OK)
      len++;
  }
  cJSON_Delete(j);
  if (rc != TQ_OK) {
    for (size_t i = 0; i < len; i++)
      tq_taxii_collection_clear(&v[i]);
    free(v);
    return rc;
  }
  *out = v;
  *n = len;
  return TQ_OK;
}

/* 3 for an id match, 2 alias, 1 title, 0 none. */
static int match_rank(const tq_taxii_collection *c, const char *want) {
  if (strcmp(c->id, want) == 0)
    return 3;
  if (c->alias && strcasecmp(c->alias, want) == 0)
    return 2;
  return strcasecmp(c->title, want) == 0 ? 1 : 0;
}

/* Searches one API root; *found (rank) > 0 when out was filled. offered collects titles. */
static tq_code search_root(tq_taxii *t, const char *root, const char *want,
                           tq_taxii_collection *out, int *found, tq_buf *offered, tq_err *err) {
  tq_taxii_collection *v = NULL;
  size_t n = 0;
  tq_code rc = tq_taxii_collections(t, root, &v, &n, err);
  if (rc != TQ_OK)
    return rc;
  size_t best = n;
  for (size_t i = 0; i < n; i++) {
    int r = match_rank(&v[i], want);
    if (r > *found) {
      *found = r;
      best = i;
    }
    tq_buf_printf(offered, "%s'%s' (%s)", offered->len ? ", " : "", v[i].title, v[i].id);
  }
  if (best < n) {
    tq_taxii_collection_clear(out);
    *out = v[best];
    memset(&v[best], 0, sizeof v[best]);
  }
  for (size_t i = 0; i < n; i++)
    tq_taxii_collection_clear(&v[i]);
  free(v);
  return TQ_OK;
}

tq_code tq_taxii_find_collection(tq_taxii *t, const char *want, tq_taxii_collection *out,
                                 tq_err *err) {
  char **roots = NULL;
  size_t n = 0;
  int found = 0;
  tq_buf offered;
  tq_buf_init(&offered, 4096);
  memset(out, 0, sizeof *out);
  tq_code rc = tq_taxii_discover(t, &roots, &n, err);
  for (size_t i = 0; rc == TQ_OK && i < n && found < 3; i++)
    rc = search_root(t, roots[i], want, out, &found, &offered, err);
  free_strs(roots, n);
  if (rc == TQ_OK && !found)
    rc = tq_err_set(err, TQ_ENOTFOUND,
                    "taxii %s: no collection '%s' at %.200s; the server offers: %.200s", t->name,
                    want, t->discovery_url, offered.len ? offered.data : "none");
  if (rc == TQ_OK && !out->can_read)
    rc = tq_err_set(err, TQ_EDENIED,
                    "taxii %s: collection '%s' (%s) says can_read false for this account", t->name,
                    out->title, out->id);
  if (rc != TQ_OK)
    tq_taxii_collection_clear(out);
  tq_buf_free(&offered);
  return rc;
}

/* ---- Get Objects ----------------------------------------------------------------------- */

void tq_taxii_page_resp_clear(tq_taxii_page_resp *r) {
  free(r->body);
  free(r->date_first);
  free(r->date_last);
  memset(r, 0, sizeof *r);
}

static tq_code add_param(tq_buf *u, const char *name, const char *value) {
  char *esc = curl_easy_escape(NULL, value, 0);
  if (esc == NULL)
    return TQ_ENOMEM;
  tq_code rc = tq_buf_printf(u, "%c%s=%s", strchr(u->data, '?') ? '&' : '?', name, esc);
  curl_free(esc);
  return rc;
}

/* The request URL: the same parameters in the same order on every page of a pass. */
static tq_code objects_query_url(const char *base, const tq_taxii_query *q, tq_buf *u) {
  char limit[24];
  snprintf(limit, sizeof limit, "%d", q->limit > 0 ? q->limit : 1000);
  tq_code rc = tq_buf_adds(u, base);
  if (rc == TQ_OK && q->added_after)
    rc = add_param(u, "added_after", q->added_after);
  if (rc == TQ_OK)
    rc = add_param(u, "limit", limit);
  if (rc == TQ_OK && q->match_type && *q->match_type)
    rc = add_param(u, "match%5Btype%5D", q->match_type);
  if (rc == TQ_OK && q->next)
    rc = add_param(u, "next", q->next);
  return rc;
}

tq_code tq_taxii_get_objects(tq_taxii *t, const char *objects_url, const tq_taxii_query *q,
                             tq_taxii_page_resp *out, tq_err *err) {
  tq_buf u;
  tq_buf_init(&u, 16384);
  memset(out, 0, sizeof *out);
  if (objects_query_url(objects_url, q, &u) != TQ_OK) {
    tq_buf_free(&u);
    return tq_err_set(err, TQ_ENOMEM, "taxii %s: request URL too long", t->name);
  }
  tq_net_response *resp = NULL;
  tq_code rc = taxii_get(t, u.data, &resp, err);
  tq_buf_free(&u);
  if (resp) {
    out->status = resp->status;
    out->date_first = tq_net_response_header(resp, "X-TAXII-Date-Added-First");
    out->date_last = tq_net_response_header(resp, "X-TAXII-Date-Added-Last");
    out->body = resp->body;
    out->len = resp->body_len;
    resp->body = NULL;
    tq_net_response_free(resp);
  }
  return rc;
}

/* ---- timestamps ------------------------------------------------------------------------- */

tq_code tq_taxii_time_norm(const char *text, int64_t minus_us, char out[TQ_TAXII_TIME_LEN],
                           tq_err *err) {
  tq_stix_time st;
  if (text == NULL)
    return tq_err_set(err, TQ_EINVAL, "taxii: no timestamp");
  tq_code rc = tq_stix_time_parse(text, &st, err);
  if (rc != TQ_OK)
    return rc;
  int64_t us = st.seconds * 1000000 + st.nanos / 1000 - minus_us;
  int64_t s = us / 1000000, frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    s--;
  }
  tq_time_format_iso(s, (int32_t)frac, out);
  return TQ_OK;
}
