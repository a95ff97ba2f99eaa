/* taxii.c: the TAXII 2.1 family of rstsim: discovery (/taxii2/), one API root (/taxii2/api/),
 * RST's four collections (stixgen.c) with Get Objects, the manifest, Get an Object and its
 * versions. It checks its own credentials (HTTP Basic, --taxii-user) and the Accept header,
 * filters (added_after exclusive, match[type|id|version|spec_version]), orders entries by
 * (date_added, id) and pages them with `limit`, `more` and stateless `next` cursors that
 * expire after --taxii-next-ttl-ms idle and refuse changed parameters (400, as medallion); or,
 * with --taxii-medallion-next, medallion's own cursors: one id per walk, the same on every
 * page, with the position kept here. --taxii-downgrade makes discovery point at http://.
 * Pages are rendered per request from entry indexes: no collection is ever held as text. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "stixgen.h"

#define TAXII_CT "application/taxii+json;version=2.1"
#define STIX_CT "application/stix+json;version=2.1"
#define API_ROOT "/taxii2/api/"
#define DEFAULT_LIMIT 100
#define MAX_VERSION_TIMES 16
#define PAGE_MAX_BYTES (512u << 20)

/* Set once by sim_taxii_init before the server starts, read-only afterwards: each
 * collection's entry order by (date_added, id), and the key of the cursors' MACs. */
static uint32_t *order[SIM_N_COLLS];
static uint32_t n_entries;
static uint64_t cursor_key;

/* ---- start-up: the order of entries ------------------------------------------------------ */
typedef struct keyed {
  char id[96];
  uint32_t index;
} keyed;

static int keyed_cmp(const void *a, const void *b) {
  return strcmp(((const keyed *)a)->id, ((const keyed *)b)->id);
}

/* date_added never decreases with the index, so only tie groups need sorting, by id. */
static tq_code order_build(const sim_config *cfg, const sim_coll *coll, uint32_t *out,
                           tq_err *err) {
  keyed *group = NULL;
  size_t cap = 0;
  for (uint32_t i = 0; i < n_entries;) {
    uint32_t lo, hi;
    sim_stix_tie_group(i, n_entries, &lo, &hi);
    if (hi - lo > cap) {
      free(group);
      cap = hi - lo;
      group = malloc(cap * sizeof *group);
      if (group == NULL)
        return tq_err_set(err, TQ_ENOMEM, "taxii: no memory to order '%s'", coll->title);
    }
    for (uint32_t j = lo; j < hi; j++) {
      sim_entry e;
      sim_stix_entry(cfg, coll, j, &e);
      tq_strlcpy(group[j - lo].id, e.id, sizeof group[0].id);
      group[j - lo].index = j;
    }
    qsort(group, hi - lo, sizeof *group, keyed_cmp);
    for (uint32_t j = lo; j < hi; j++)
      out[j] = group[j - lo].index;
    i = hi;
  }
  free(group);
  return TQ_OK;
}

tq_code sim_taxii_init(const sim_config *cfg, tq_err *err) {
  n_entries = cfg->taxii_objects;
  /* Cursors are valid for this process only, like a server's in-memory sessions. */
  uint64_t salt[3] = {cfg->seed, (uint64_t)tq_time_now_us(), (uint64_t)getpid()};
  cursor_key = sim_hash(salt, sizeof salt, 0xcbf29ce484222325ULL);
  for (int c = 0; c < SIM_N_COLLS; c++) {
    order[c] = malloc(((size_t)n_entries + 1) * sizeof *order[c]);
    if (order[c] == NULL) {
      sim_taxii_cleanup();
      return tq_err_set(err, TQ_ENOMEM, "taxii: no memory for %u entries", n_entries);
    }
    if (order_build(cfg, &sim_colls[c], order[c], err) != TQ_OK) {
      sim_taxii_cleanup();
      return err ? err->code : TQ_ENOMEM;
    }
  }
  return TQ_OK;
}

void sim_taxii_cleanup(void) {
  for (int c = 0; c < SIM_N_COLLS; c++) {
    free(order[c]);
    order[c] = NULL;
  }
}

/* ---- replies ------------------------------------------------------------------------------ */
/* A TAXII error resource (spec 1.1: http_status is a string equal to the status). */
static tq_code taxii_error(sim_reply *out, unsigned status, const char *title, const char *desc,
                           tq_err *err) {
  char code[8];
  snprintf(code, sizeof code, "%u", status);
  int ok = 1;
  cJSON *o = cJSON_CreateObject();
  sim_j_str(o, "title", title, &ok);
  sim_j_str(o, "description", desc, &ok);
  sim_j_str(o, "http_status", code, &ok);
  if (!ok) {
    cJSON_Delete(o);
    o = NULL;
  }
  tq_code rc = sim_reply_json(out, status, o, err);
  out->content_type = TAXII_CT;
  return rc;
}

static tq_code taxii_json(sim_reply *out, cJSON *o, int ok, tq_err *err) {
  if (!ok) {
    cJSON_Delete(o);
    o = NULL;
  }
  tq_code rc = sim_reply_json(out, 200, o, err);
  out->content_type = TAXII_CT;
  return rc;
}

/* ---- credentials and content negotiation ---------------------------------------------------- */
static void base64(const char *in, char *out, size_t cap) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(in), o = 0;
  for (size_t i = 0; i < n && o + 5 < cap; i += 3) {
    unsigned v = (unsigned char)in[i] << 16;
    if (i + 1 < n)
      v |= (unsigned char)in[i + 1] << 8;
    if (i + 2 < n)
      v |= (unsigned char)in[i + 2];
    out[o++] = tab[(v >> 18) & 63];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? tab[v & 63] : '=';
  }
  out[o] = '\0';
}

/* HTTP Basic with --taxii-user/--taxii-password; without them every request is accepted. */
static int authorized(const sim_config *cfg, const sim_request *rq) {
  if (cfg->taxii_user == NULL)
    return 1;
  const char *h = sim_request_header(rq, "Authorization");
  if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
    return 0;
  h += 6;
  while (*h == ' ')
    h++;
  char plain[512], want[700];
  snprintf(plain, sizeof plain, "%s:%s", cfg->taxii_user, cfg->taxii_password);
  base64(plain, want, sizeof want);
  return strcmp(h, want) == 0;
}

/* One Accept item "application/taxii+json[;version=2.1]" (any case, spaces allowed). */
static int accept_item_ok(const char *item, size_t len) {
  static const char type[] = "application/taxii+json";
  while (len && (*item == ' ' || *item == '\t'))
    item++, len--;
  if (len < sizeof type - 1 || strncasecmp(item, type, sizeof type - 1) != 0)
    return 0;
  const char *p = item + sizeof type - 1, *end = item + len;
  while (p < end && *p == ' ')
    p++;
  if (p == end)
    return 1; /* no version: "the latest the server supports" */
  if (*p != ';')
    return 0;
  for (p++; p < end && *p == ' '; p++)
    ;
  size_t rest = (size_t)(end - p);
  while (rest && p[rest - 1] == ' ')
    rest--;
  return rest == 11 && strncasecmp(p, "version=2.1", 11) == 0;
}

/* Like medallion: some comma-separated item must be a TAXII 2.1 media range; no Accept,
 * wildcard-only or TAXII 2.0 media types get 406. */
static int accept_ok(const sim_request *rq) {
  const char *h = sim_request_header(rq, "Accept");
  while (h && *h) {
    const char *comma = strchr(h, ',');
    size_t len = comma ? (size_t)(comma - h) : strlen(h);
    if (accept_item_ok(h, len))
      return 1;
    h = comma ? comma + 1 : NULL;
  }
  return 0;
}

/* 401 or 406 into out; returns 1 when the request may go on. */
static int gatekeep(const sim_config *cfg, const sim_request *rq, sim_reply *out, tq_err *err) {
  if (!authorized(cfg, rq)) {
    taxii_error(out, 401, "Unauthorized",
                cfg->taxii_user ? "HTTP Basic credentials missing or not accepted" : "", err);
    sim_reply_header(out, "WWW-Authenticate", "Basic realm=\"rstsim TAXII\"");
    return 0;
  }
  if (!accept_ok(rq)) {
    taxii_error(out, 406, "Not Acceptable",
                "the Accept header must allow application/taxii+json;version=2.1", err);
    return 0;
  }
  return 1;
}

/* ---- paths ---------------------------------------------------------------------------------- */
typedef enum endpoint {
  EP_NONE,
  EP_API_ROOT,
  EP_COLLECTIONS,
  EP_COLLECTION,
  EP_OBJECTS,
  EP_MANIFEST,
  EP_OBJECT,
  EP_VERSIONS,
  EP_STATUS
} endpoint;

typedef struct target {
  endpoint ep;
  int coll; /* index into sim_colls, -1 when the id is unknown */
  char object_id[128];
} target;

#define MAX_SEGMENTS 7

/* Splits tail ("api/collections/ID/objects/") into decoded segments; 0 when the path does
 * not end in '/' or has too many or empty segments. */
static int split_path(const char *tail, char seg[MAX_SEGMENTS][128], int *n) {
  size_t len = strlen(tail);
  *n = 0;
  if (len == 0 || tail[len - 1] != '/')
    return 0;
  for (const char *p = tail; *p;) {
    const char *slash = strchr(p, '/');
    if (slash == p || *n == MAX_SEGMENTS)
      return 0;
    char *dec = sim_url_decode(p, (size_t)(slash - p));
    if (dec == NULL)
      return 0;
    tq_strlcpy(seg[(*n)++], dec, 128);
    free(dec);
    p = slash + 1;
  }
  return 1;
}

static int coll_find(const char *id) {
  for (int c = 0; c < SIM_N_COLLS; c++)
    if (strcmp(sim_colls[c].id, id) == 0)
      return c;
  return -1;
}

static target route(const char *tail) {
  char seg[MAX_SEGMENTS][128] = {{0}};
  int n;
  target t = {.ep = EP_NONE, .coll = -1};
  if (!split_path(tail, seg, &n) || strcmp(seg[0], "api") != 0)
    return t;
  if (n == 1) {
    t.ep = EP_API_ROOT;
    return t;
  }
  if (strcmp(seg[1], "status") == 0) {
    t.ep = n == 3 ? EP_STATUS : EP_NONE;
    return t;
  }
  if (strcmp(seg[1], "collections") != 0)
    return t;
  if (n == 2) {
    t.ep = EP_COLLECTIONS;
    return t;
  }
  t.coll = coll_find(seg[2]);
  if (n == 3)
    t.ep = EP_COLLECTION;
  else if (n == 4 && strcmp(seg[3], "objects") == 0)
    t.ep = EP_OBJECTS;
  else if (n == 4 && strcmp(seg[3], "manifest") == 0)
    t.ep = EP_MANIFEST;
  else if (n == 5 && strcmp(seg[3], "objects") == 0)
    t.ep = EP_OBJECT;
  else if (n == 6 && strcmp(seg[3], "objects") == 0 && strcmp(seg[5], "versions") == 0)
    t.ep = EP_VERSIONS;
  if (n >= 5)
    tq_strlcpy(t.object_id, seg[4], sizeof t.object_id);
  return t;
}

/* ---- the small resources ------------------------------------------------------------------ */
static tq_code discovery(const sim_config *cfg, const sim_request *rq, sim_reply *out,
                         tq_err *err) {
  if (!gatekeep(cfg, rq, out, err))
    return TQ_OK;
  /* --taxii-downgrade: this very server, named over plain http:// (Host as the client sent it) */
  const char *host = sim_request_header(rq, "Host");
  char plain[96] = "";
  if (cfg->taxii_downgrade && host)
    snprintf(plain, sizeof plain, "http://%.60s%s", host,
             strcmp(cfg->taxii_downgrade, "redirect") == 0 ? "/taxii2/" : API_ROOT);
  if (plain[0] && strcmp(cfg->taxii_downgrade, "redirect") == 0) {
    tq_code rc = taxii_error(out, 302, "Found", "moved to plain HTTP", err);
    sim_reply_header(out, "Location", plain);
    return rc;
  }
  int ok = 1;
  cJSON *o = cJSON_CreateObject();
  sim_j_str(o, "title", "RST Cloud TAXII 2.1 (rstsim)", &ok);
  sim_j_str(o, "description", "RST Threat Feed and RST Report Hub collections, simulated", &ok);
  sim_j_str(o, "contact", "support@rstcloud.net", &ok);
  sim_j_str(o, "default", plain[0] ? plain : API_ROOT, &ok);
  cJSON *roots = sim_j_arr(o, "api_roots", &ok);
  sim_j_push_str(roots, plain[0] ? plain : API_ROOT, &ok);
  return taxii_json(out, o, ok, err);
}

static tq_code api_root(sim_reply *out, tq_err *err) {
  int ok = 1;
  cJSON *o = cJSON_CreateObject();
  sim_j_str(o, "title", "RST Cloud", &ok);
  sim_j_str(o, "description", "RST Threat Feed (high, medium, low risk) and RST Report Hub", &ok);
  cJSON *versions = sim_j_arr(o, "versions", &ok);
  sim_j_push_str(versions, TAXII_CT, &ok);
  sim_j_int(o, "max_content_length", 10485760, &ok);
  return taxii_json(out, o, ok, err);
}

static cJSON *collection_json(const sim_coll *c, int *ok) {
  cJSON *o = cJSON_CreateObject();
  sim_j_str(o, "id", c->id, ok);
  sim_j_str(o, "title", c->title, ok);
  sim_j_str(o, "description", c->description, ok);
  sim_j_str(o, "alias", c->alias, ok);
  sim_j_bool(o, "can_read", 1, ok);
  sim_j_bool(o, "can_write", 0, ok);
  cJSON *types = sim_j_arr(o, "media_types", ok);
  sim_j_push_str(types, STIX_CT, ok);
  return o;
}

static tq_code collections(sim_reply *out, tq_err *err) {
  int ok = 1;
  cJSON *o = cJSON_CreateObject();
  cJSON *arr = sim_j_arr(o, "collections", &ok);
  for (int c = 0; c < SIM_N_COLLS; c++) {
    cJSON *one = collection_json(&sim_colls[c], &ok);
    if (arr == NULL || one == NULL || !cJSON_AddItemToArray(arr, one)) {
      cJSON_Delete(one);
      ok = 0;
    }
  }
  return taxii_json(out, o, ok, err);
}

/* ---- query parameters ------------------------------------------------------------------------ */
typedef struct params {
  char *added_after, *limit, *next, *m_type, *m_id, *m_version, *m_spec;
} params;

static void params_free(params *p) {
  free(p->added_after), free(p->limit), free(p->next), free(p->m_type), free(p->m_id);
  free(p->m_version), free(p->m_spec);
}

/* Reads the raw query: keys and values are percent-decoded (so match%5Btype%5D works);
 * each known parameter at most once (spec 1.4); unknown ones are ignored. Returns 0 with why
 * set when the query is malformed. */
static int params_parse(const char *query, params *p, char *why, size_t why_n) {
  static const char *const names[] = {"added_after",        "limit",     "next",
                                      "match[type]",        "match[id]", "match[version]",
                                      "match[spec_version]"};
  char **slots[] = {&p->added_after, &p->limit,     &p->next,  &p->m_type,
                    &p->m_id,        &p->m_version, &p->m_spec};
  for (const char *q = query; q && *q;) {
    const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
    const char *eq = memchr(q, '=', (size_t)(end - q));
    char *key = sim_url_decode(q, (size_t)((eq ? eq : end) - q));
    char *val = eq ? sim_url_decode(eq + 1, (size_t)(end - eq - 1)) : tq_strdup("");
    int used = 0;
    for (size_t i = 0; key && val && i < sizeof names / sizeof names[0]; i++) {
      if (strcmp(key, names[i]) != 0)
        continue;
      if (*slots[i]) {
        snprintf(why, why_n, "the parameter '%s' is given twice", names[i]);
        free(key), free(val);
        return 0;
      }
      *slots[i] = val;
      used = 1;
    }
    if (key == NULL || val == NULL) {
      snprintf(why, why_n, "out of memory reading the query");
      free(key), free(val);
      return 0;
    }
    if (!used)
      free(val);
    free(key);
    q = amp ? amp + 1 : NULL;
  }
  return 1;
}

/* ---- filters ----------------------------------------------------------------------------------
 */
typedef struct filter {
  int has_after;
  int64_t after_us;
  long limit;
  const char *types, *ids; /* comma lists, NULL: any */
  int v_last, v_first, v_all;
  int64_t v_times[MAX_VERSION_TIMES];
  int n_times;
  int spec_none; /* match[spec_version] leaves out 2.1: nothing matches */
} filter;

/* Whether the comma list holds exactly tok. */
static int list_has(const char *list, const char *tok) {
  size_t n = strlen(tok);
  for (const char *p = list; p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (len == n && strncmp(p, tok, n) == 0)
      return 1;
    p = comma ? comma + 1 : NULL;
  }
  return 0;
}

/* Every item of the comma list is non-empty and made of chars in allowed (or holds "--" when
 * need_dashes). */
static int list_valid(const char *list, const char *allowed, int need_dashes) {
  for (const char *p = list;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (len == 0 || strspn(p, allowed) < len)
      return 0;
    if (need_dashes && (memmem(p, len, "--", 2) == NULL))
      return 0;
    if (!comma)
      return 1;
    p = comma + 1;
  }
}

/* A TAXII/STIX timestamp: YYYY-MM-DDTHH:MM:SS[.fraction]Z, UTC only. */
static int parse_timestamp(const char *s, int64_t *us) {
  size_t n = strlen(s);
  if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
      s[n - 1] != 'Z')
    return 0;
  if (n > 20 && (s[19] != '.' || n == 21 || strspn(s + 20, "0123456789") != n - 21))
    return 0;
  int64_t secs;
  int32_t frac;
  if (tq_time_parse(s, &secs, &frac, NULL) != TQ_OK)
    return 0;
  *us = secs * 1000000 + frac;
  return 1;
}

static int parse_versions(const char *list, filter *f, char *why, size_t why_n) {
  int n_items = 0;
  for (const char *p = list; p; n_items++) {
    const char *comma = strchr(p, ',');
    char tok[64];
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    snprintf(tok, sizeof tok, "%.*s", (int)(len < 63 ? len : 63), p);
    if (strcmp(tok, "last") == 0)
      f->v_last = 1;
    else if (strcmp(tok, "first") == 0)
      f->v_first = 1;
    else if (strcmp(tok, "all") == 0)
      f->v_all = 1;
    else if (f->n_times < MAX_VERSION_TIMES && parse_timestamp(tok, &f->v_times[f->n_times]))
      f->n_times++;
    else {
      snprintf(why, why_n, "match[version]: '%s' is not last, first, all or a timestamp", tok);
      return 0;
    }
    p = comma ? comma + 1 : NULL;
  }
  if (f->v_all && n_items > 1) {
    snprintf(why, why_n, "match[version]: 'all' cannot be combined with other values");
    return 0;
  }
  return 1;
}

/* Checks the parameters and fills f; returns 0 with why set on a bad one (400). */
static int filter_build(const sim_config *cfg, const params *p, filter *f, char *why,
                        size_t why_n) {
  memset(f, 0, sizeof *f);
  f->limit = DEFAULT_LIMIT;
  if (p->limit) {
    long long v;
    if (tq_parse_int(p->limit, 1, 1000000000, &v, "limit", NULL) != TQ_OK) {
      snprintf(why, why_n, "limit: '%.40s' is not an integer > 0", p->limit);
      return 0;
    }
    f->limit = (long)v;
  }
  if (f->limit > (long)cfg->taxii_page_max)
    f->limit = (long)cfg->taxii_page_max; /* the server's cap (spec 1.4: MAY hold fewer) */
  if (p->added_after && !(f->has_after = parse_timestamp(p->added_after, &f->after_us))) {
    snprintf(why, why_n, "added_after: '%.60s' is not a timestamp like 2026-01-01T00:00:00.000000Z",
             p->added_after);
    return 0;
  }
  if (p->m_type && !list_valid(p->m_type, "abcdefghijklmnopqrstuvwxyz0123456789-", 0)) {
    snprintf(why, why_n, "match[type]: '%.60s' is not a list of STIX types", p->m_type);
    return 0;
  }
  if (p->m_id && !list_valid(p->m_id, "abcdefghijklmnopqrstuvwxyz0123456789-ABCDEF", 1)) {
    snprintf(why, why_n, "match[id]: '%.60s' is not a list of STIX ids", p->m_id);
    return 0;
  }
  if (p->m_spec && !list_valid(p->m_spec, "0123456789.", 0)) {
    snprintf(why, why_n, "match[spec_version]: '%.60s' is not a list of versions", p->m_spec);
    return 0;
  }
  f->types = p->m_type;
  f->ids = p->m_id;
  f->spec_none = p->m_spec && !list_has(p->m_spec, "2.1");
  if (p->m_version)
    return parse_versions(p->m_version, f, why, why_n);
  f->v_last = 1; /* the default (spec 1.4) */
  return 1;
}

static int version_matches(const sim_coll *coll, const filter *f, uint32_t idx,
                           const sim_entry *e) {
  if (f->v_all)
    return 1;
  if (f->v_last && !sim_stix_superseded(coll, idx, n_entries))
    return 1;
  if (f->v_first && !sim_stix_is_revocation(coll, idx))
    return 1;
  for (int i = 0; i < f->n_times; i++)
    if (e && e->version_us == f->v_times[i])
      return 1;
  return 0;
}

/* Whether entry idx passes f; cheap tests first, the entry's id and version only if needed. */
static int entry_matches(const sim_config *cfg, const sim_coll *coll, const filter *f,
                         uint32_t idx) {
  if (f->spec_none || (f->types && !list_has(f->types, sim_stix_type(coll, idx))))
    return 0;
  if (f->ids == NULL && f->n_times == 0)
    return version_matches(coll, f, idx, NULL);
  sim_entry e;
  sim_stix_entry(cfg, coll, idx, &e);
  if (f->ids && !list_has(f->ids, e.id))
    return 0;
  return version_matches(coll, f, idx, &e);
}

/* ---- cursors ---------------------------------------------------------------------------------
 * `next` is stateless: the position to resume at, when it was issued (monotonic ms), a hash of
 * the request's other parameters, and a MAC over the three. Each page issues a fresh cursor,
 * so "issued" measures idleness. */
typedef enum cursor_verdict {
  CURSOR_OK,
  CURSOR_BAD,
  CURSOR_EXPIRED,
  CURSOR_CHANGED
} cursor_verdict;

static uint64_t cursor_mac(uint32_t pos, uint64_t issued, uint64_t phash) {
  uint64_t parts[4] = {cursor_key, pos, issued, phash};
  return sim_hash(parts, sizeof parts, 0x84222325cbf29ce4ULL);
}

static void cursor_make(uint32_t pos, uint64_t phash, char out[64]) {
  uint64_t issued = (uint64_t)tq_mono_ms() & 0xffffffffffffULL;
  snprintf(out, 64, "%08x%012llx%016llx%016llx", pos, (unsigned long long)issued,
           (unsigned long long)phash, (unsigned long long)cursor_mac(pos, issued, phash));
}

static cursor_verdict cursor_read(const sim_config *cfg, const char *tok, uint64_t phash,
                                  uint32_t *pos) {
  unsigned p;
  unsigned long long issued, h, mac;
  int used = 0;
  if (strlen(tok) != 52 || strspn(tok, "0123456789abcdef") != 52 ||
      sscanf(tok, "%8x%12llx%16llx%16llx%n", &p, &issued, &h, &mac, &used) != 4 || used != 52)
    return CURSOR_BAD;
  if (cursor_mac(p, issued, h) != mac || p > n_entries)
    return CURSOR_BAD;
  uint64_t now = (uint64_t)tq_mono_ms() & 0xffffffffffffULL;
  if (now - issued > cfg->taxii_next_ttl_ms)
    return CURSOR_EXPIRED;
  if (h != phash)
    return CURSOR_CHANGED;
  *pos = p;
  return CURSOR_OK;
}

/* ---- medallion's cursors (--taxii-medallion-next) ------------------------------------------
 * medallion's memory backend keeps a walk's position under one id and answers that same id as
 * `next` on every page until the walk ends: a client that takes a repeated `next` for a loop
 * stops after two pages. A fixed table of walks; the oldest gives way when it is full. */
#define MED_WALKS 256
typedef struct med_walk {
  char id[40];
  uint32_t pos;
  uint64_t phash, used_ms;
  int live;
} med_walk;
static med_walk med[MED_WALKS];
static pthread_mutex_t med_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t med_counter;

/* The position of walk id; CURSOR_OK with *pos, or why not (an expired walk is forgotten). */
static cursor_verdict med_read(const sim_config *cfg, const char *id, uint64_t phash,
                               uint32_t *pos) {
  cursor_verdict v = CURSOR_BAD;
  uint64_t now = (uint64_t)tq_mono_ms();
  pthread_mutex_lock(&med_mu);
  for (int i = 0; i < MED_WALKS; i++) {
    if (!med[i].live || strcmp(med[i].id, id) != 0)
      continue;
    if (now - med[i].used_ms > cfg->taxii_next_ttl_ms) {
      med[i].live = 0;
      v = CURSOR_EXPIRED;
    } else if (med[i].phash != phash) {
      v = CURSOR_CHANGED;
    } else {
      *pos = med[i].pos;
      v = CURSOR_OK;
    }
    break;
  }
  pthread_mutex_unlock(&med_mu);
  return v;
}

/* After a page of walk id ("" for a new walk): keeps its position when there is more (out is
 * the id to answer as next, the same for the whole walk) and forgets it at the end. */
static void med_write(const char *id, int more, uint32_t pos, uint64_t phash, char out[64]) {
  uint64_t now = (uint64_t)tq_mono_ms();
  pthread_mutex_lock(&med_mu);
  int slot = -1, oldest = 0;
  for (int i = 0; i < MED_WALKS && *id; i++)
    if (med[i].live && strcmp(med[i].id, id) == 0)
      slot = i;
  if (slot < 0 && more) {
    for (int i = 0; i < MED_WALKS && slot < 0; i++)
      if (!med[i].live)
        slot = i;
      else if (med[i].used_ms < med[oldest].used_ms)
        oldest = i;
    if (slot < 0)
      slot = oldest;
    uint64_t parts[2] = {cursor_key, ++med_counter};
    uint64_t a = sim_hash(parts, sizeof parts, 1), b = sim_hash(parts, sizeof parts, 2);
    snprintf(med[slot].id, sizeof med[slot].id, "%08x-%04x-4%03x-8%03x-%012llx",
             (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
             (unsigned)(b >> 48) & 0xfff, (unsigned long long)b & 0xffffffffffffULL);
    med[slot].phash = phash;
  }
  if (slot >= 0) {
    med[slot].live = more;
    med[slot].pos = pos;
    med[slot].used_ms = now;
    tq_strlcpy(out, med[slot].id, 64);
  }
  pthread_mutex_unlock(&med_mu);
}

/* Hash of what a cursor must be sent back with: endpoint, collection, object id and every
 * filter. `limit` is left out: a page size change does not change what the cursor means. */
static uint64_t params_hash(const target *t, const params *p) {
  const char *parts[] = {t->object_id, p->added_after, p->m_type, p->m_id, p->m_version, p->m_spec};
  uint64_t h = sim_hash(&t->ep, sizeof t->ep, 0xcbf29ce484222325ULL);
  h = sim_hash(&t->coll, sizeof t->coll, h);
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    h = sim_hash(parts[i] ? "+" : "-", 1, h);
    h = sim_hash(parts[i] ? parts[i] : "", parts[i] ? strlen(parts[i]) + 1 : 0, h);
  }
  return h;
}

/* ---- selecting a page ------------------------------------------------------------------------ */
typedef struct page {
  uint32_t *idx; /* generator indexes of the selected entries, in order */
  size_t n;
  int more;
  uint32_t next_pos; /* where the next page starts (when more) */
} page;

/* First position whose date_added is after t (all entries of a tie group share it). */
static uint32_t lower_bound(const sim_config *cfg, int64_t t) {
  uint32_t lo = 0, hi = n_entries;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (sim_stix_added_us(cfg, mid) > t)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

static tq_code page_select(const sim_config *cfg, int coll, const filter *f, uint32_t start,
                           page *pg, tq_err *err) {
  memset(pg, 0, sizeof *pg);
  pg->idx = malloc((size_t)f->limit * sizeof *pg->idx);
  if (pg->idx == NULL)
    return tq_err_set(err, TQ_ENOMEM, "taxii: no memory for a page of %ld", f->limit);
  for (uint32_t p = start; p < n_entries; p++) {
    uint32_t idx = order[coll][p];
    if (!entry_matches(cfg, &sim_colls[coll], f, idx))
      continue;
    if (pg->n == (size_t)f->limit) {
      pg->more = 1;
      pg->next_pos = p;
      break;
    }
    pg->idx[pg->n++] = idx;
  }
  return TQ_OK;
}

/* ---- rendering ------------------------------------------------------------------------------- */
typedef enum render { R_OBJECTS, R_MANIFEST, R_VERSIONS } render;

static tq_code render_item(const sim_config *cfg, const sim_coll *coll, render how,
                           const sim_entry *e, tq_buf *b, tq_err *err) {
  char t[32], v[32];
  if (how == R_OBJECTS)
    return sim_stix_write(cfg, coll, e, b, err);
  sim_taxii_time(e->version_us, v);
  v[23] = 'Z', v[24] = '\0'; /* STIX precision: milliseconds */
  if (how == R_VERSIONS)
    return tq_buf_printf(b, "\"%s\"", v) == TQ_OK
               ? TQ_OK
               : tq_err_set(err, TQ_ENOMEM, "taxii: versions page over its cap");
  sim_taxii_time(e->added_us, t);
  if (tq_buf_printf(
          b, "{\"id\":\"%s\",\"date_added\":\"%s\",\"version\":\"%s\",\"media_type\":\"%s\"}",
          e->id, t, v, STIX_CT) != TQ_OK)
    return tq_err_set(err, TQ_ENOMEM, "taxii: manifest page over its cap");
  return TQ_OK;
}

/* Writes the envelope (or manifest / versions resource) of pg into out, with the
 * X-TAXII-Date-Added-First/-Last headers; an empty page is {} without them (as medallion). */
static tq_code render_page(const sim_config *cfg, int coll, render how, const page *pg,
                           const char *next, sim_reply *out, tq_err *err) {
  tq_buf b;
  tq_code rc = TQ_OK;
  tq_buf_init(&b, PAGE_MAX_BYTES);
  sim_entry e;
  char first[32] = "", last[32] = "";
  if (pg->n > 0 && tq_buf_printf(&b, "{\"more\":%s,%s%s%s\"%s\":[", pg->more ? "true" : "false",
                                 next ? "\"next\":\"" : "", next ? next : "", next ? "\"," : "",
                                 how == R_VERSIONS ? "versions" : "objects") != TQ_OK)
    goto nomem;
  for (size_t i = 0; i < pg->n; i++) {
    sim_stix_entry(cfg, &sim_colls[coll], pg->idx[i], &e);
    if (i == 0)
      sim_taxii_time(e.added_us, first);
    if ((i > 0 && tq_buf_addc(&b, ',') != TQ_OK))
      goto nomem;
    rc = render_item(cfg, &sim_colls[coll], how, &e, &b, err);
    if (rc != TQ_OK)
      goto fail;
    if (i + 1 == pg->n)
      sim_taxii_time(e.added_us, last);
  }
  if (tq_buf_adds(&b, pg->n > 0 ? "]}" : "{}") != TQ_OK)
    goto nomem;
  free(out->body);
  out->status = 200;
  out->body_len = b.len;
  out->body = tq_buf_take(&b);
  out->content_type = TAXII_CT;
  if (pg->n > 0) {
    sim_reply_header(out, "X-TAXII-Date-Added-First", first);
    sim_reply_header(out, "X-TAXII-Date-Added-Last", last);
  }
  return TQ_OK;
nomem:
  rc = tq_err_set(err, TQ_ENOMEM, "taxii: page of '%s' over %u bytes", sim_colls[coll].title,
                  PAGE_MAX_BYTES);
fail:
  tq_buf_free(&b);
  return rc;
}

/* ---- the listing endpoints ------------------------------------------------------------------- */
/* Whether the collection holds the object at all (Get an Object answers 404 otherwise). */
static int object_exists(const sim_config *cfg, int coll, const char *id) {
  filter any = {.v_all = 1, .ids = id};
  for (uint32_t i = 0; i < n_entries; i++)
    if (entry_matches(cfg, &sim_colls[coll], &any, i))
      return 1;
  return 0;
}

static tq_code listing(const sim_config *cfg, const target *t, const params *p, sim_reply *out,
                       tq_err *err) {
  filter f;
  char why[200];
  if (!filter_build(cfg, p, &f, why, sizeof why))
    return taxii_error(out, 400, "Bad Request", why, err);
  if (t->ep == EP_OBJECT || t->ep == EP_VERSIONS)
    f.ids = t->object_id;
  if (t->ep == EP_VERSIONS) /* every version, whatever match[version] says */
    f.v_all = 1, f.v_last = f.v_first = f.n_times = 0;
  if ((t->ep == EP_OBJECT || t->ep == EP_VERSIONS) && !object_exists(cfg, t->coll, t->object_id))
    return taxii_error(out, 404, "Not Found", "no such object in this collection", err);
  uint64_t phash = params_hash(t, p);
  uint32_t start = f.has_after ? lower_bound(cfg, f.after_us) : 0;
  if (p->next) {
    static const char *const msg[] = {"", "'next' not valid", "'next' not valid: expired",
                                      "params changed over subsequent transaction"};
    cursor_verdict v = cfg->taxii_medallion_next ? med_read(cfg, p->next, phash, &start)
                                                 : cursor_read(cfg, p->next, phash, &start);
    if (v != CURSOR_OK)
      return taxii_error(out, 400, "Bad Request", msg[v], err);
  }
  page pg;
  tq_code rc = page_select(cfg, t->coll, &f, start, &pg, err);
  if (rc == TQ_OK) {
    char next[64] = "";
    if (cfg->taxii_medallion_next)
      med_write(p->next ? p->next : "", pg.more, pg.next_pos, phash, next);
    else if (pg.more)
      cursor_make(pg.next_pos, phash, next);
    render how = t->ep == EP_MANIFEST ? R_MANIFEST : t->ep == EP_VERSIONS ? R_VERSIONS : R_OBJECTS;
    rc = render_page(cfg, t->coll, how, &pg, pg.more ? next : NULL, out, err);
  }
  free(pg.idx);
  return rc;
}

/* ---- handlers ----------------------------------------------------------------------------------
 */
static tq_code taxii_get(const sim_config *cfg, const sim_request *rq, sim_reply *out,
                         tq_err *err) {
  if (!gatekeep(cfg, rq, out, err))
    return TQ_OK;
  target t = route(rq->tail);
  switch (t.ep) {
  case EP_NONE: return taxii_error(out, 404, "Not Found", "no such TAXII resource", err);
  case EP_STATUS: return taxii_error(out, 404, "Not Found", "no such status", err);
  case EP_API_ROOT: return api_root(out, err);
  case EP_COLLECTIONS: return collections(out, err);
  default: break;
  }
  if (t.coll < 0)
    return taxii_error(out, 404, "Not Found", "no such collection", err);
  if (t.ep == EP_COLLECTION) {
    int ok = 1;
    return taxii_json(out, collection_json(&sim_colls[t.coll], &ok), ok, err);
  }
  params p = {0};
  char why[200];
  tq_code rc = params_parse(rq->query, &p, why, sizeof why)
                   ? listing(cfg, &t, &p, out, err)
                   : taxii_error(out, 400, "Bad Request", why, err);
  params_free(&p);
  return rc;
}

/* The collections are read-only (can_write false): a POST of objects is refused with 403. */
static tq_code taxii_post(const sim_config *cfg, const sim_request *rq, sim_reply *out,
                          tq_err *err) {
  if (!gatekeep(cfg, rq, out, err))
    return TQ_OK;
  target t = route(rq->tail);
  if (t.ep == EP_OBJECTS && t.coll >= 0)
    return taxii_error(out, 403, "Forbidden", "this collection is read-only (can_write false)",
                       err);
  if (t.ep == EP_OBJECTS)
    return taxii_error(out, 404, "Not Found", "no such collection", err);
  return taxii_error(out, 405, "Method Not Allowed", "only GET is served here", err);
}

const sim_route sim_routes_taxii[] = {
    {"GET", "/taxii2/", SIM_EXACT, SIM_AUTH_NONE, discovery, "taxii.discovery"},
    {"GET", "/taxii2/", SIM_PREFIX, SIM_AUTH_NONE, taxii_get, "taxii.get"},
    {"POST", "/taxii2/", SIM_PREFIX, SIM_AUTH_NONE, taxii_post, "taxii.post"},
    {NULL, NULL, SIM_EXACT, SIM_AUTH_NONE, NULL, NULL}};
