/* test_taxii_server.h: a small TAXII 2.1 server on 127.0.0.1 (libmicrohttpd, port 0) for the
 * taxii and feed unit tests: discovery with a relative API root, one collection, Get Objects
 * sorted by date_added with added_after (strict), limit, match[type] and `next`, the
 * X-TAXII-Date-Added headers, Basic auth, the Accept check (406), and switches that make it
 * misbehave the ways real servers do: expired cursors, the same cursor again, more without
 * next, a garbled page. Header-only: each test program includes it once. */
#ifndef TEST_TAXII_SERVER_H
#define TEST_TAXII_SERVER_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_COLL_ID "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
#define TS_COLL_TITLE "Test Collection"
#define TS_MAX_OBJECTS 100000
#define TS_MEDALLION_NEXT "2d3c0b4e-5f61-4a72-8b93-a4b5c6d7e8f9"

typedef struct ts_object {
  char *json;
  char date_added[28];
  char type[64];
} ts_object;

static struct {
  struct MHD_Daemon *d;
  unsigned port;
  pthread_mutex_t mu;
  ts_object objs[TS_MAX_OBJECTS];
  size_t n;
  int max_page;            /* server cap on limit (0 = none) */
  const char *user, *pass; /* Basic auth required when user is set */
  int only_taxii20;        /* answers 406 unless Accept is the TAXII 2.0 type */
  int expire_next_after;   /* the n-th request carrying next gets 400 (0 = never) */
  int next_requests;
  int same_next; /* every page says next = "stuck" */
  int medallion; /* like medallion: one constant next for every page of a walk, the
                    position kept by the server */
  size_t medallion_pos;
  /* The gate: the gate_request-th objects request waits (gate_waiting set) until gate_open,
   * so that a test can run another poll while one is in flight. */
  pthread_cond_t cv;
  int gate_request, gate_waiting, gate_open;
  int no_next;      /* more=true without next (added_after paging) */
  int garbled_page; /* the n-th objects request gets a body that is not JSON */
  int objects_requests;
  int last_limit;
  char last_accept[256];
  char last_after[64];
} TS = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Adds an object (a JSON text) with its date_added; objects must be added in date order. */
static void ts_add(const char *date_added, const char *json) {
  ts_object *o = &TS.objs[TS.n++];
  o->json = strdup(json);
  snprintf(o->date_added, sizeof o->date_added, "%s", date_added);
  const char *t = strstr(json, "\"type\":\"");
  o->type[0] = '\0';
  if (t) {
    t += 8;
    size_t k = 0;
    while (t[k] && t[k] != '"' && k < sizeof o->type - 1) {
      o->type[k] = t[k];
      k++;
    }
    o->type[k] = '\0';
  }
}

static void ts_reset(void) {
  pthread_mutex_lock(&TS.mu);
  for (size_t i = 0; i < TS.n; i++)
    free(TS.objs[i].json);
  TS.n = 0;
  TS.max_page = 0;
  TS.user = TS.pass = NULL;
  TS.only_taxii20 = TS.expire_next_after = TS.next_requests = 0;
  TS.same_next = TS.no_next = TS.garbled_page = TS.objects_requests = 0;
  TS.medallion = 0;
  TS.medallion_pos = 0;
  TS.gate_request = TS.gate_waiting = TS.gate_open = 0;
  TS.last_limit = 0;
  TS.last_accept[0] = '\0';
  TS.last_after[0] = '\0';
  pthread_mutex_unlock(&TS.mu);
}

static enum MHD_Result ts_reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                                const char *body, const char *first, const char *last) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", ctype);
  if (first && last) {
    MHD_add_response_header(r, "X-TAXII-Date-Added-First", first);
    MHD_add_response_header(r, "X-TAXII-Date-Added-Last", last);
  }
  if (status == 401)
    MHD_add_response_header(r, "WWW-Authenticate", "Basic realm=\"Authentication Required\"");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

#define TS_TAXII "application/taxii+json;version=2.1"

static int ts_type_ok(const ts_object *o, const char *match) {
  if (match == NULL)
    return 1;
  size_t n = strlen(o->type);
  for (const char *p = match; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, o->type, n) == 0)
      return 1;
    p += len + (e ? 1 : 0);
  }
  return 0;
}

/* The envelope of one Get Objects request. */
static enum MHD_Result ts_objects(struct MHD_Connection *c) {
  const char *after = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "added_after");
  const char *limit_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
  const char *next = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "next");
  const char *match = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "match[type]");
  int limit = limit_s ? atoi(limit_s) : 100;
  snprintf(TS.last_after, sizeof TS.last_after, "%s", after ? after : "");
  TS.last_limit = limit;
  if (TS.max_page && limit > TS.max_page)
    limit = TS.max_page;
  if (++TS.objects_requests == TS.garbled_page)
    return ts_reply(c, 200, TS_TAXII, "{\"objects\": [ {\"type\": trunc", NULL, NULL);
  if (TS.objects_requests == TS.gate_request) {
    TS.gate_waiting = 1;
    pthread_cond_broadcast(&TS.cv);
    while (!TS.gate_open)
      pthread_cond_wait(&TS.cv, &TS.mu); /* other requests are served meanwhile */
  }
  size_t start = 0;
  if (next) {
    if (++TS.next_requests == TS.expire_next_after)
      return ts_reply(c, 400, TS_TAXII,
                      "{\"title\":\"ProcessingError\",\"description\":\"'next' not valid\","
                      "\"http_status\":\"400\"}",
                      NULL, NULL);
    if (TS.medallion)
      start = strcmp(next, TS_MEDALLION_NEXT) == 0 ? TS.medallion_pos : (size_t)-1;
    else
      start = strcmp(next, "stuck") == 0 ? 0 : (size_t)strtoul(next + 1, NULL, 10);
  }
  /* The filtered list's positions [start, start + limit). */
  size_t *idx = malloc((TS.n + 1) * sizeof *idx), m = 0;
  for (size_t i = 0; i < TS.n; i++)
    if ((after == NULL || strcmp(TS.objs[i].date_added, after) > 0) &&
        ts_type_ok(&TS.objs[i], match))
      idx[m++] = i;
  size_t end = start + (size_t)limit < m ? start + (size_t)limit : m;
  if (start >= end) {
    free(idx);
    return ts_reply(c, 200, TS_TAXII, "{}", NULL, NULL);
  }
  size_t cap = 256;
  for (size_t k = start; k < end; k++)
    cap += strlen(TS.objs[idx[k]].json) + 2;
  char *body = malloc(cap), *p = body;
  int more = end < m;
  p += sprintf(p, "{\"more\":%s", more ? "true" : "false");
  if (TS.medallion)
    TS.medallion_pos = end;
  if (more && !TS.no_next && TS.medallion)
    p += sprintf(p, ",\"next\":\"" TS_MEDALLION_NEXT "\"");
  else if (more && !TS.no_next && TS.same_next)
    p += sprintf(p, ",\"next\":\"stuck\"");
  else if (more && !TS.no_next)
    p += sprintf(p, ",\"next\":\"o%zu\"", end);
  p += sprintf(p, ",\"objects\":[");
  for (size_t k = start; k < end; k++)
    p += sprintf(p, "%s%s", k > start ? "," : "", TS.objs[idx[k]].json);
  sprintf(p, "]}");
  char first[28], last[28];
  snprintf(first, sizeof first, "%s", TS.objs[idx[start]].date_added);
  snprintf(last, sizeof last, "%s", TS.objs[idx[end - 1]].date_added);
  free(idx);
  enum MHD_Result r = ts_reply(c, 200, TS_TAXII, body, first, last);
  free(body);
  return r;
}

/* RST Report Hub's REST API: one report on 2024-05-01, none on other days (404). */
#define TS_REPORT_ID "20240501_example_com_report_0x1234567"
static enum MHD_Result ts_reports(struct MHD_Connection *c) {
  const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Api-Key");
  const char *date = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "date");
  const char *id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "id");
  TS.objects_requests++;
  if (key == NULL || strcmp(key, "hub-key") != 0)
    return ts_reply(c, 403, "application/json", "{\"message\":\"Forbidden\"}", NULL, NULL);
  if (date && strcmp(date, "20240501") == 0)
    return ts_reply(c, 200, "application/json", "[{\"id\":\"" TS_REPORT_ID "\"}]", NULL, NULL);
  if (id && strcmp(id, TS_REPORT_ID) == 0)
    return ts_reply(
        c, 200, "application/json",
        "{\"type\":\"bundle\",\"id\":\"bundle--f462f3db-52f7-417c-9527-089381ba4d69\","
        "\"objects\":[{\"type\":\"report\",\"spec_version\":\"2.1\",\"id\":\"report--"
        "22222222-2222-4222-8222-222222222222\",\"created\":\"2024-05-01T00:00:00.000Z\","
        "\"modified\":\"2024-05-01T00:00:00.000Z\",\"name\":\"Lumma returns\",\"published\":"
        "\"2024-05-01T00:00:00Z\",\"object_refs\":[\"malware--33333333-3333-4333-8333-"
        "333333333333\"]},{\"type\":\"malware\",\"spec_version\":\"2.1\",\"id\":\"malware--"
        "33333333-3333-4333-8333-333333333333\",\"created\":\"2024-05-01T00:00:00.000Z\","
        "\"modified\":\"2024-05-01T00:00:00.000Z\",\"name\":\"Lumma\",\"is_family\":true}]}",
        NULL, NULL);
  return ts_reply(c, 404, "application/json", "{\"message\":\"No reports found\"}", NULL, NULL);
}

static int ts_authorized(struct MHD_Connection *c) {
  if (TS.user == NULL)
    return 1;
  char *pass = NULL;
  char *user = MHD_basic_auth_get_username_password(c, &pass);
  int ok = user && pass && strcmp(user, TS.user) == 0 && strcmp(pass, TS.pass) == 0;
  MHD_free(user);
  MHD_free(pass);
  return ok;
}

static enum MHD_Result ts_handler(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)cls, (void)method, (void)version, (void)upload, (void)upload_size, (void)con_cls;
  pthread_mutex_lock(&TS.mu);
  const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
  snprintf(TS.last_accept, sizeof TS.last_accept, "%s", accept ? accept : "");
  enum MHD_Result r;
  char path[256];
  snprintf(path, sizeof path, "/api1/collections/%s/objects/", TS_COLL_ID);
  if (strcmp(url, "/v1/reports") == 0)
    r = ts_reports(c);
  else if (!ts_authorized(c))
    r = ts_reply(c, 401, "text/html", "Unauthorized Access", NULL, NULL);
  else if (TS.only_taxii20 || accept == NULL || strstr(accept, "application/taxii+json") == NULL)
    r = ts_reply(c, 406, TS_TAXII,
                 "{\"title\":\"ProcessingError\",\"description\":\"Media type not acceptable\","
                 "\"http_status\":\"406\"}",
                 NULL, NULL);
  else if (strcmp(url, "/taxii2/") == 0)
    r = ts_reply(c, 200, TS_TAXII,
                 "{\"title\":\"test\",\"default\":\"/api1/\",\"api_roots\":[\"/api1/\"]}", NULL,
                 NULL);
  else if (strcmp(url, "/api1/collections/") == 0)
    r = ts_reply(c, 200, TS_TAXII,
                 "{\"collections\":[{\"id\":\"" TS_COLL_ID "\",\"title\":\"" TS_COLL_TITLE
                 "\",\"can_read\":true,\"can_write\":false}]}",
                 NULL, NULL);
  else if (strcmp(url, path) == 0)
    r = ts_objects(c);
  else
    r = ts_reply(c, 404, "text/plain", "not found", NULL, NULL);
  pthread_mutex_unlock(&TS.mu);
  return r;
}

static int ts_start(void) {
  setenv("no_proxy", "127.0.0.1,localhost", 1);
  TS.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                          NULL, ts_handler, NULL, MHD_OPTION_SOCK_ADDR,
                          (const struct sockaddr *)&(struct sockaddr_in){
                              .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)},
                          MHD_OPTION_END);
  if (TS.d == NULL)
    return -1;
  TS.port = MHD_get_daemon_info(TS.d, MHD_DAEMON_INFO_BIND_PORT)->port;
  return 0;
}

static void ts_stop(void) {
  ts_reset();
  MHD_stop_daemon(TS.d);
  TS.d = NULL;
}

static const char *ts_discovery(void) {
  static char buf[128];
  snprintf(buf, sizeof buf, "http://127.0.0.1:%u/taxii2/", TS.port);
  return buf;
}

/* A TAXII timestamp for second s of 2024-05-01 (plus us microseconds). */
static const char *ts_date(int s, int us) {
  static char buf[8][64];
  static int k;
  char *b = buf[k++ % 8];
  snprintf(b, 64, "2024-05-01T%02d:%02d:%02d.%06dZ", s / 3600, (s / 60) % 60, s % 60, us);
  return b;
}

#endif
