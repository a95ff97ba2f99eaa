/* sim.h: internal contracts of rstsim, the RST Cloud API simulator used by tests and demos
 * (never part of the tqhost product). One route family per file (ioc.c, benign.c, whois.c,
 * reports.c, auth.c, taxii.c with stixgen.c); http.c is the libmicrohttpd glue (auth, rate limit,
 * faults, latency); data.c is the deterministic data model; routes.c lists the families. */
#ifndef RSTSIM_SIM_H
#define RSTSIM_SIM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "tqhost/core.h"

/* ---- configuration (filled once by main.c, read-only afterwards) ------------------------ */
typedef struct sim_config {
  unsigned port;          /* 0 = pick a free port */
  unsigned threads;       /* MHD worker threads */
  uint64_t seed;          /* data and fault seed */
  double hit_ratio;       /* share of IoC values that are found */
  double whois_nodata;    /* share of registrable domains without WHOIS data */
  const char *api_key;    /* NULL = accept any non-empty key */
  int64_t now;            /* the simulator's "today" (Unix seconds, midnight UTC) */
  unsigned latency_ms;    /* added to every answer */
  unsigned jitter_ms;     /* plus uniform [0, jitter_ms] */
  unsigned stall_ms;      /* how long a stalled answer is held */
  unsigned retry_after_s; /* Retry-After of 429/503 answers */
  double fault_429, fault_500, fault_503, fault_reset, fault_stall, fault_truncate, fault_malformed;
  unsigned rate_limit;    /* requests per key per second, 0 = unlimited */
  unsigned quota;         /* requests per key per process, 0 = unlimited */
  unsigned pending_ms;    /* a benign batch stays pending this long ... */
  unsigned pending_polls; /* ... and for this many result polls */
  int stats;              /* print counters to stderr at exit */
  /* TAXII 2.1 (taxii.c) */
  unsigned taxii_objects;      /* entries (object versions) per collection */
  const char *taxii_user;      /* NULL = TAXII needs no credentials */
  const char *taxii_password;  /* with taxii_user */
  unsigned taxii_next_ttl_ms;  /* a `next` cursor expires after this long idle */
  unsigned taxii_page_max;     /* the server's cap on `limit` */
  int taxii_medallion_next;    /* one constant `next` per walk, position kept here (medallion) */
  const char *taxii_downgrade; /* NULL, "api-root" (http:// API root) or "redirect" (302 to
                                  http://) from discovery */
  /* TLS (http.c): PEM text read by main.c from --tls-cert / --tls-key; NULL = plain HTTP */
  char *tls_cert_pem, *tls_key_pem;
} sim_config;

/* ---- one request as a route handler sees it -------------------------------------------- */
struct MHD_Connection;
typedef struct sim_request {
  const char *method;
  const char *path;  /* raw (still percent-encoded) path, no query */
  const char *tail;  /* the part of path after the route's prefix (raw) */
  const char *query; /* raw query string without '?', "" when none */
  const char *body;  /* request body (NUL-terminated), "" when none */
  size_t body_len;
  const char *api_key;         /* the X-Api-Key value (NULL on routes without key auth) */
  struct MHD_Connection *conn; /* for sim_request_header */
} sim_request;

/* A request header (name in any case) or NULL; valid while the handler runs (http.c). */
const char *sim_request_header(const sim_request *rq, const char *name);

/* What a handler answers. body is malloc'd and owned by the reply (sim_reply_free). */
#define SIM_MAX_HEADERS 4
typedef struct sim_reply {
  unsigned status;
  char *body;
  size_t body_len;
  const char *content_type; /* static string */
  const char *hdr_name[SIM_MAX_HEADERS];
  char hdr_value[SIM_MAX_HEADERS][96];
  int n_headers;
} sim_reply;

/* Route handler: fills out (status + body). Returns TQ_OK, or an error code with err set when
 * the reply could not be built (the dispatcher then answers 500 with err's message). */
typedef tq_code (*sim_handler)(const sim_config *cfg, const sim_request *rq, sim_reply *out,
                               tq_err *err);

typedef enum sim_match { SIM_EXACT, SIM_PREFIX } sim_match;
typedef enum sim_auth { SIM_AUTH_APIKEY, SIM_AUTH_NONE } sim_auth;

typedef struct sim_route {
  const char *method; /* "GET", "POST", ... */
  const char *path;   /* exact path, or prefix ending in '/' */
  sim_match match;
  sim_auth auth;
  sim_handler fn;
  const char *name; /* counter name in --stats */
} sim_route;

/* Route families: arrays terminated by an entry with fn == NULL (one per file). */
extern const sim_route sim_routes_ioc[];
extern const sim_route sim_routes_benign[];
extern const sim_route sim_routes_whois[];
extern const sim_route sim_routes_reports[];
extern const sim_route sim_routes_auth[];
extern const sim_route sim_routes_taxii[];
/* routes.c: the families in match order, NULL-terminated. */
extern const sim_route *const sim_route_families[];

/* ---- replies (http.c) -------------------------------------------------------------------- */
/* Takes ownership of json (deleted here) and prints it as the reply body. */
tq_code sim_reply_json(sim_reply *out, unsigned status, cJSON *json, tq_err *err);
/* A JSON error body {"message": msg}. */
tq_code sim_reply_message(sim_reply *out, unsigned status, const char *msg, tq_err *err);
/* Copies text as the body with the given static content type. */
tq_code sim_reply_bytes(sim_reply *out, unsigned status, const char *ctype, const char *p, size_t n,
                        tq_err *err);
void sim_reply_header(sim_reply *out, const char *name, const char *value);
void sim_reply_free(sim_reply *out);

/* ---- query strings (http.c) -------------------------------------------------------------
 * Finds parameter name in a raw query string and returns its value decoded (%XX decoded,
 * '+' kept literal: see README) in a malloc'd string; NULL when absent or out of memory. */
char *sim_query_get(const char *query, const char *name);
/* Percent-decodes n bytes of s into a malloc'd string ('+' kept); NULL on out of memory. */
char *sim_url_decode(const char *s, size_t n);

/* ---- per-key accounting (keys.c) --------------------------------------------------------- */
typedef enum sim_admit { SIM_ADMIT_OK, SIM_ADMIT_RATE, SIM_ADMIT_QUOTA } sim_admit;
tq_code sim_keys_init(tq_err *err);
void sim_keys_free(void);
/* Counts one request of key now; says whether the rate limit or quota refuses it. */
sim_admit sim_keys_admit(const sim_config *cfg, const char *key);
/* Requests counted so far for key (0 when unknown). */
uint64_t sim_keys_used(const char *key);

/* ---- delayed resume (timer.c) ------------------------------------------------------------ */
struct MHD_Connection;
tq_code sim_timer_start(tq_err *err);
/* Resumes conn (already suspended by the caller) at monotonic time due_ms. On error conn is
 * resumed at once, so a connection is never left suspended. */
tq_code sim_timer_add(struct MHD_Connection *conn, int64_t due_ms, tq_err *err);
/* Resumes every waiting connection now (shutdown) and stops the thread. */
void sim_timer_stop(void);

/* ---- server (http.c) ---------------------------------------------------------------------
 * The running simulator: the MHD daemon plus counters. cfg must outlive it. */
typedef struct sim_server sim_server;
tq_code sim_http_start(const sim_config *cfg, sim_server **out, unsigned *port, tq_err *err);
/* Stops accepting, resumes delayed connections, stops the daemon, prints the counters to
 * stats when non-NULL (requests per route, faults, refusals) and frees srv. */
void sim_http_stop(sim_server *srv, FILE *stats);

/* ---- deterministic data (data.c) ---------------------------------------------------------
 * A stream is a PRNG seeded from (seed, topic, value): the same triple always yields the same
 * draws, and different topics are independent so that adding a field never shifts others. */
typedef struct sim_stream {
  uint64_t state;
} sim_stream;

void sim_stream_init(sim_stream *s, uint64_t seed, const char *topic, const char *value);
uint64_t sim_next(sim_stream *s);
double sim_unit(sim_stream *s); /* uniform in [0, 1) */
/* Uniform integer in [lo, hi] (inclusive). */
long sim_range(sim_stream *s, long lo, long hi);
/* One word of a NULL-terminated vocabulary. */
const char *sim_pick(sim_stream *s, const char *const *vocab);
/* Adds min..max distinct words of vocab to a new JSON string array (by reference: the
 * vocabulary must outlive the array, as the static ones here do). */
cJSON *sim_pick_array(sim_stream *s, const char *const *vocab, int min, int max);
/* Lower-case hex of n random bytes into out (2n+1 bytes). */
void sim_hex(sim_stream *s, char *out, size_t n);
/* A name-based-looking UUID (version digit 3) for (seed, topic, value). */
void sim_uuid3(uint64_t seed, const char *topic, const char *value, char out[37]);
/* A random UUID v4 from the stream. */
void sim_uuid4(sim_stream *s, char out[37]);
uint64_t sim_hash(const void *p, size_t n, uint64_t h);

typedef enum sim_ioc_type {
  SIM_IOC_UNKNOWN,
  SIM_IOC_IPV4,
  SIM_IOC_IPV6,
  SIM_IOC_DOMAIN,
  SIM_IOC_URL,
  SIM_IOC_MD5,
  SIM_IOC_SHA1,
  SIM_IOC_SHA256
} sim_ioc_type;

sim_ioc_type sim_ioc_classify(const char *value);
const char *sim_ioc_type_name(sim_ioc_type t); /* "ipv4", ..., "sha256" */
/* Noise Control's coarser vocabulary: ip, domain, url, hash. */
const char *sim_ioc_family_name(sim_ioc_type t);
/* Whether value is found: pinned outcomes first (README), else the hit ratio. */
int sim_ioc_is_hit(const sim_config *cfg, const char *value, sim_ioc_type t);

/* Vocabularies drawn from the RST spec (NULL-terminated). */
extern const char *const sim_vocab_threats[];
extern const char *const sim_vocab_ttps[];
extern const char *const sim_vocab_cves[];
extern const char *const sim_vocab_industries[];
extern const char *const sim_vocab_sources[];
extern const char *const sim_vocab_registrars[];
extern const char *const sim_vocab_registrants[];
extern const char *const sim_vocab_words[];
extern const char *const sim_vocab_tlds[];

/* Writes "YYYY-MM-DD HH:MM:SS" / "YYYY-MM-DDTHH:MM:SSZ" for t. */
void sim_fmt_time(int64_t t, char out[20]);
void sim_fmt_iso(int64_t t, char out[21]);
/* JSON building with one sticky flag: each helper clears *ok when it fails (out of memory,
 * or a NULL parent left by an earlier failure), so a builder checks *ok once at the end.
 * Keys k must be string literals (or otherwise outlive the JSON): they are not copied. */
void sim_j_str(cJSON *o, const char *k, const char *v, int *ok);
void sim_j_int(cJSON *o, const char *k, long long v, int *ok);
/* Decimal string of v: the IoC API's string-typed scalars. */
void sim_j_int_str(cJSON *o, const char *k, long long v, int *ok);
/* "i.ff" from hundredths (7071 -> "70.71"). */
void sim_j_cents_str(cJSON *o, const char *k, long long hundredths, int *ok);
void sim_j_bool(cJSON *o, const char *k, int v, int *ok);
void sim_j_null(cJSON *o, const char *k, int *ok);
cJSON *sim_j_obj(cJSON *o, const char *k, int *ok);
cJSON *sim_j_arr(cJSON *o, const char *k, int *ok);
/* Adds item under k (taking ownership); a NULL item clears *ok. */
void sim_j_put(cJSON *o, const char *k, cJSON *item, int *ok);
void sim_j_push_str(cJSON *arr, const char *v, int *ok);
/* A fake but well-formed domain name from the stream: "<word><word>.<tld>". */
void sim_fake_domain(sim_stream *s, char *out, size_t n);
/* A public-looking IPv4 address from the stream (never loopback, private or multicast). */
uint32_t sim_fake_ipv4(sim_stream *s);
void sim_ipv4_str(uint32_t ip, char out[16]);

/* ---- shared between families ------------------------------------------------------------- */
/* whois.c: the registrable domain of host (Public Suffix List), malloc'd; NULL if none. */
char *sim_registrable_domain(const char *host);
/* whois.c: whether the registrable domain has WHOIS data, and its dates (Unix seconds). */
typedef struct sim_whois_facts {
  int havedata;
  int64_t created, updated, expires;
  const char *registrar;
  const char *registrant;
} sim_whois_facts;
void sim_whois_facts_get(const sim_config *cfg, const char *regdomain, sim_whois_facts *out);
/* benign.c: forgets every batch job (at exit, after the server stopped). */
void sim_benign_cleanup(void);
/* taxii.c: builds the collections' orderings (before the server starts) and frees them. */
tq_code sim_taxii_init(const sim_config *cfg, tq_err *err);
void sim_taxii_cleanup(void);

#endif
