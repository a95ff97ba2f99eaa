/* net_key.c: URL parsing for the net part and the key that names a request in the response
 * cache and in the in-flight merge table.
 *
 * key = METHOD " " scheme "://" host[":" port] path " " hex(SHA-256(query, header lines, body))
 *
 * The clear part is the normalised URL without its query; the query, every request header
 * ("name:value", name lower-cased, value trimmed, sorted by name then value) and the body go only
 * through SHA-256, because both a query string and a header may carry an API key and the key
 * is stored in the library in clear. */
#include <ctype.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net_int.h"

tq_code net_url_parse(const char *url, CURLU **out, tq_err *err) {
  CURLU *u = curl_url();
  char *scheme = NULL;
  tq_code rc = TQ_OK;
  if (u == NULL)
    return tq_err_set(err, TQ_ENOMEM, "net: out of memory parsing a URL");
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (uc != CURLUE_OK) {
    rc = tq_err_set(err, TQ_EINVAL, "net: url '%.200s': %s", url, curl_url_strerror(uc));
    goto fail;
  }
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
    rc = tq_err_set(err, TQ_EINVAL, "net: url '%.200s': scheme must be http or https", url);
    goto fail;
  }
  curl_free(scheme);
  *out = u;
  return TQ_OK;
fail:
  curl_free(scheme);
  curl_url_cleanup(u);
  return rc;
}

void net_url_display(CURLU *u, char *out, size_t n) {
  char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
  curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  curl_url_get(u, CURLUPART_HOST, &host, 0);
  curl_url_get(u, CURLUPART_PORT, &port, CURLU_NO_DEFAULT_PORT);
  curl_url_get(u, CURLUPART_PATH, &path, 0);
  for (char *h = host; h && *h; h++)
    *h = (char)tolower((unsigned char)*h);
  snprintf(out, n, "%s://%s%s%s%s", scheme ? scheme : "?", host ? host : "?", port ? ":" : "",
           port ? port : "", path ? path : "/");
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(path);
}

/* A header line split for the key: name (to be lower-cased) and trimmed value. */
typedef struct key_header {
  const char *name, *value;
  size_t nlen, vlen;
} key_header;

static key_header key_header_split(const char *line) {
  key_header h = {.name = line};
  const char *colon = strchr(line, ':');
  h.nlen = colon ? (size_t)(colon - line) : strlen(line);
  const char *v = colon ? colon + 1 : "";
  while (*v == ' ' || *v == '\t')
    v++;
  size_t vlen = strlen(v);
  while (vlen && isspace((unsigned char)v[vlen - 1]))
    vlen--;
  h.value = v;
  h.vlen = vlen;
  return h;
}

/* Headers in the key's order: by lower-cased name, then by value, so that the order a script
 * lists them in (a Lua table's, which varies) does not change the key. */
static int key_header_cmp(const void *pa, const void *pb) {
  const key_header *a = pa, *b = pb;
  size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;
  int c = strncasecmp(a->name, b->name, n);
  if (c == 0 && a->nlen != b->nlen)
    c = a->nlen < b->nlen ? -1 : 1;
  if (c != 0)
    return c;
  n = a->vlen < b->vlen ? a->vlen : b->vlen;
  c = memcmp(a->value, b->value, n);
  if (c == 0 && a->vlen != b->vlen)
    c = a->vlen < b->vlen ? -1 : 1;
  return c;
}

/* Feeds the secret-bearing parts of the request to the digest; 0 on failure. */
static int key_digest(EVP_MD_CTX *md, CURLU *u, const char *const *headers, size_t n_headers,
                      const char *body, size_t body_len) {
  char *query = NULL;
  int ok = 1;
  key_header *hs = malloc((n_headers ? n_headers : 1) * sizeof *hs);
  if (hs == NULL)
    return 0;
  for (size_t i = 0; i < n_headers; i++)
    hs[i] = key_header_split(headers[i]);
  qsort(hs, n_headers, sizeof *hs, key_header_cmp);
  if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK)
    ok &= EVP_DigestUpdate(md, query, strlen(query));
  curl_free(query);
  ok &= EVP_DigestUpdate(md, "\n", 1);
  for (size_t i = 0; i < n_headers; i++) {
    char lower[256]; /* the name lowercased, in pieces of the buffer's size */
    for (size_t at = 0; at < hs[i].nlen; at += sizeof lower) {
      size_t k = hs[i].nlen - at < sizeof lower ? hs[i].nlen - at : sizeof lower;
      for (size_t j = 0; j < k; j++)
        lower[j] = (char)tolower((unsigned char)hs[i].name[at + j]);
      ok &= EVP_DigestUpdate(md, lower, k);
    }
    ok &= EVP_DigestUpdate(md, ":", 1);
    ok &= EVP_DigestUpdate(md, hs[i].value, hs[i].vlen);
    ok &= EVP_DigestUpdate(md, "\n", 1);
  }
  free(hs);
  ok &= EVP_DigestUpdate(md, "\n", 1);
  if (body_len)
    ok &= EVP_DigestUpdate(md, body, body_len);
  return ok;
}

/* SHA-256 fetched once: OpenSSL 3 looks the algorithm up again on every EVP_sha256() init,
 * which costs more than hashing a request. */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL); }

tq_code net_key_build(CURLU *u, const char *method, const char *const *headers, size_t n_headers,
                      const char *body, size_t body_len, char **out, tq_err *err) {
  pthread_once(&sha256_once, sha256_fetch);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  char where[1024], hex[2 * EVP_MAX_MD_SIZE + 1];
  tq_buf key;
  tq_buf_init(&key, 0);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (md == NULL || sha256 == NULL || !EVP_DigestInit_ex(md, sha256, NULL) ||
      !key_digest(md, u, headers, n_headers, body, body_len) ||
      !EVP_DigestFinal_ex(md, digest, &dlen))
    goto fail;
  for (unsigned int i = 0; i < dlen; i++) {
    static const char xd[] = "0123456789abcdef";
    hex[2 * i] = xd[digest[i] >> 4];
    hex[2 * i + 1] = xd[digest[i] & 15];
  }
  hex[2 * dlen] = '\0';
  net_url_display(u, where, sizeof where);
  if (tq_buf_printf(&key, "%s %s %s", method, where, hex) != TQ_OK)
    goto fail;
  EVP_MD_CTX_free(md);
  *out = tq_buf_take(&key);
  return *out ? TQ_OK : tq_err_set(err, TQ_ENOMEM, "net: out of memory building a cache key");
fail:
  EVP_MD_CTX_free(md);
  tq_buf_free(&key);
  return tq_err_set(err, TQ_ENOMEM, "net: cannot hash the request for its cache key");
}

tq_code tq_net_cache_key(const tq_net_request *req, char **out, tq_err *err) {
  CURLU *u = NULL;
  char method[16];
  const char *m = req->method ? req->method : "GET";
  size_t i = 0;
  for (; m[i] && i < sizeof method - 1; i++)
    method[i] = (char)toupper((unsigned char)m[i]);
  method[i] = '\0';
  tq_code rc = net_url_parse(req->url ? req->url : "", &u, err);
  if (rc != TQ_OK)
    return rc;
  rc = net_key_build(u, method, req->headers, req->n_headers, req->body, req->body_len, out, err);
  curl_url_cleanup(u);
  return rc;
}
