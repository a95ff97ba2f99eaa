/* main.c: rstsim's entry point: options, start-up ("rstsim listening on 127.0.0.1:PORT" on
 * stdout once ready), and a clean stop on SIGTERM/SIGINT with optional counters on stderr.
 * rstsim simulates the RST Cloud APIs for tqhost's tests and demos; it is not the product. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define DAY 86400
#define DEFAULT_NOW 1767225600 /* 2026-01-01T00:00:00Z: bodies must not change with the day */

static const char usage[] =
    "usage: rstsim [options]\n"
    "Simulates the RST Cloud REST API (IoC Lookup, Noise Control, Whois, Report Hub, auth)\n"
    "and its TAXII 2.1 server (discovery at /taxii2/: Threat Feed and Report Hub collections)\n"
    "on 127.0.0.1 with deterministic data. Prints 'rstsim listening on 127.0.0.1:PORT'.\n"
    "\n"
    "  --port N              port, 0 = any free port (default 0)\n"
    "  --threads N           worker threads (default 2)\n"
    "  --seed N              data and fault seed (default 1)\n"
    "  --hit-ratio P         share of IoC values found, 0..1 (default 0.7)\n"
    "  --whois-nodata P      share of domains without WHOIS data, 0..1 (default 0.1)\n"
    "  --api-key K           accept only key K (default: any non-empty key)\n"
    "  --now T               the simulated today: Unix seconds, YYYY-MM-DD or 'today'\n"
    "                        (default 2026-01-01; rounded down to midnight UTC)\n"
    "  --latency-ms N        delay every answer by N ms (default 0)\n"
    "  --jitter-ms N         plus a uniform 0..N ms (default 0)\n"
    "  --fault-429 P         answer 429 + Retry-After with probability P\n"
    "  --fault-500 P         answer 500\n"
    "  --fault-503 P         answer 503 + Retry-After\n"
    "  --fault-reset P       close the connection without an answer\n"
    "  --fault-stall P       hold the answer for --stall-ms\n"
    "  --fault-truncate P    send the JSON body cut in the middle\n"
    "  --fault-malformed P   send a body that is not JSON\n"
    "  --stall-ms N          how long a stall lasts (default 60000)\n"
    "  --retry-after S       Retry-After of 429/503 answers, seconds (default 1)\n"
    "  --rate-limit N        requests per key per second, then 429 (default 0 = none)\n"
    "  --quota N             requests per key for the process, then 429 'Limit Exceeded'\n"
    "                        (default 0 = none)\n"
    "  --batch-pending-ms N  a Noise Control batch answers 301 for N ms (default 1000)\n"
    "  --batch-pending-polls N  ... and for its first N result polls (default 0)\n"
    "  --taxii-objects N     TAXII: entries (object versions) per collection (default 2000)\n"
    "  --taxii-user U        TAXII: require HTTP Basic auth with user U ...\n"
    "  --taxii-password P    ... and password P (default: no credentials needed)\n"
    "  --taxii-next-ttl-ms N TAXII: a 'next' cursor expires after N ms idle (default 30000)\n"
    "  --taxii-page-max N    TAXII: the server's cap on 'limit' (default 1000)\n"
    "  --taxii-medallion-next  TAXII: like medallion, answer one constant 'next' for every\n"
    "                        page of a walk (the position is kept by the server)\n"
    "  --taxii-downgrade M   TAXII: M = api-root: discovery lists an http:// API root;\n"
    "                        M = redirect: discovery answers 302 to its http:// URL\n"
    "  --tls-cert FILE       serve HTTPS with this PEM certificate (chain) ...\n"
    "  --tls-key FILE        ... and this PEM private key\n"
    "  --stats               print counters to stderr at exit\n"
    "  --help                this text\n";

enum {
  OPT_PORT = 256,
  OPT_THREADS,
  OPT_SEED,
  OPT_HIT,
  OPT_NODATA,
  OPT_KEY,
  OPT_NOW,
  OPT_LAT,
  OPT_JIT,
  OPT_F429,
  OPT_F500,
  OPT_F503,
  OPT_FRESET,
  OPT_FSTALL,
  OPT_FTRUNC,
  OPT_FMAL,
  OPT_STALL,
  OPT_RETRY,
  OPT_RATE,
  OPT_QUOTA,
  OPT_PMS,
  OPT_PPOLLS,
  OPT_TX_OBJECTS,
  OPT_TX_USER,
  OPT_TX_PASS,
  OPT_TX_TTL,
  OPT_TX_PAGE,
  OPT_TX_MEDALLION,
  OPT_TX_DOWNGRADE,
  OPT_TLS_CERT,
  OPT_TLS_KEY,
  OPT_STATS,
  OPT_HELP
};

static const struct option options[] = {
    {"port", required_argument, NULL, OPT_PORT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"hit-ratio", required_argument, NULL, OPT_HIT},
    {"whois-nodata", required_argument, NULL, OPT_NODATA},
    {"api-key", required_argument, NULL, OPT_KEY},
    {"now", required_argument, NULL, OPT_NOW},
    {"latency-ms", required_argument, NULL, OPT_LAT},
    {"jitter-ms", required_argument, NULL, OPT_JIT},
    {"fault-429", required_argument, NULL, OPT_F429},
    {"fault-500", required_argument, NULL, OPT_F500},
    {"fault-503", required_argument, NULL, OPT_F503},
    {"fault-reset", required_argument, NULL, OPT_FRESET},
    {"fault-stall", required_argument, NULL, OPT_FSTALL},
    {"fault-truncate", required_argument, NULL, OPT_FTRUNC},
    {"fault-malformed", required_argument, NULL, OPT_FMAL},
    {"stall-ms", required_argument, NULL, OPT_STALL},
    {"retry-after", required_argument, NULL, OPT_RETRY},
    {"rate-limit", required_argument, NULL, OPT_RATE},
    {"quota", required_argument, NULL, OPT_QUOTA},
    {"batch-pending-ms", required_argument, NULL, OPT_PMS},
    {"batch-pending-polls", required_argument, NULL, OPT_PPOLLS},
    {"taxii-objects", required_argument, NULL, OPT_TX_OBJECTS},
    {"taxii-user", required_argument, NULL, OPT_TX_USER},
    {"taxii-password", required_argument, NULL, OPT_TX_PASS},
    {"taxii-next-ttl-ms", required_argument, NULL, OPT_TX_TTL},
    {"taxii-page-max", required_argument, NULL, OPT_TX_PAGE},
    {"taxii-medallion-next", no_argument, NULL, OPT_TX_MEDALLION},
    {"taxii-downgrade", required_argument, NULL, OPT_TX_DOWNGRADE},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"stats", no_argument, NULL, OPT_STATS},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

static tq_code parse_prob(const char *s, const char *opt, double *out, tq_err *err) {
  char *end = NULL;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= 0.0 && v <= 1.0))
    return tq_err_set(err, TQ_EINVAL, "--%s: '%s' is not a probability in [0, 1]", opt, s);
  *out = v;
  return TQ_OK;
}

static tq_code parse_uint(const char *s, const char *opt, long long max, unsigned *out,
                          tq_err *err) {
  long long v = 0;
  char what[48];
  snprintf(what, sizeof what, "--%s", opt);
  tq_code code = tq_parse_int(s, 0, max, &v, what, err);
  if (code == TQ_OK)
    *out = (unsigned)v;
  return code;
}

static tq_code parse_now(const char *s, int64_t *out, tq_err *err) {
  int64_t t = 0;
  long long secs = 0;
  if (strcmp(s, "today") == 0)
    t = tq_time_now();
  else if (tq_parse_int(s, 0, 4102444800LL, &secs, "--now", NULL) == TQ_OK)
    t = secs;
  else if (tq_time_parse(s, &t, NULL, NULL) != TQ_OK)
    return tq_err_set(err, TQ_EINVAL, "--now: '%s' is not Unix seconds, a date or 'today'", s);
  *out = t - t % DAY;
  return TQ_OK;
}

static tq_code parse_seed(const char *s, uint64_t *out, tq_err *err) {
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || *end != '\0' || *s == '-')
    return tq_err_set(err, TQ_EINVAL, "--seed: '%s' is not an unsigned integer", s);
  *out = v;
  return TQ_OK;
}

/* Reads a whole PEM file into *out (malloc'd, NUL-terminated): MHD takes TLS material as text. */
static tq_code read_pem(const char *path, const char *opt, char **out, tq_err *err) {
  tq_code code = TQ_OK;
  tq_buf b;
  tq_buf_init(&b, 1u << 20);
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return tq_err_set(err, TQ_EIO, "--%s: cannot open '%s'", opt, path);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (tq_buf_add(&b, chunk, n) != TQ_OK) {
      code = tq_err_set(err, TQ_ELIMIT, "--%s: '%s' is over 1 MiB", opt, path);
      goto fail;
    }
  if (ferror(f) || b.len == 0 || strstr(b.data, "-----BEGIN ") == NULL) {
    code = tq_err_set(err, TQ_EINVAL, "--%s: '%s' is empty, unreadable or not PEM", opt, path);
    goto fail;
  }
  fclose(f);
  free(*out); /* the option given twice: the last one wins */
  *out = tq_buf_take(&b);
  return TQ_OK;
fail:
  fclose(f);
  tq_buf_free(&b);
  return code;
}

static tq_code set_string(const char *arg, const char *opt, const char **out, tq_err *err) {
  if (*arg == '\0')
    return tq_err_set(err, TQ_EINVAL, "--%s: the value must not be empty", opt);
  *out = arg;
  return TQ_OK;
}

/* Applies one option; *exit_now is set by --help. */
static tq_code apply_option(sim_config *c, int opt, const char *arg, int *exit_now, tq_err *err) {
  const char *name = NULL;
  for (size_t i = 0; options[i].name; i++)
    if (options[i].val == opt)
      name = options[i].name;
  switch (opt) {
  case OPT_PORT: return parse_uint(arg, name, 65535, &c->port, err);
  case OPT_THREADS: return parse_uint(arg, name, 64, &c->threads, err);
  case OPT_SEED: return parse_seed(arg, &c->seed, err);
  case OPT_HIT: return parse_prob(arg, name, &c->hit_ratio, err);
  case OPT_NODATA: return parse_prob(arg, name, &c->whois_nodata, err);
  case OPT_KEY:
    if (*arg == '\0')
      return tq_err_set(err, TQ_EINVAL, "--api-key: the key must not be empty");
    c->api_key = arg;
    return TQ_OK;
  case OPT_NOW: return parse_now(arg, &c->now, err);
  case OPT_LAT: return parse_uint(arg, name, 3600000, &c->latency_ms, err);
  case OPT_JIT: return parse_uint(arg, name, 3600000, &c->jitter_ms, err);
  case OPT_F429: return parse_prob(arg, name, &c->fault_429, err);
  case OPT_F500: return parse_prob(arg, name, &c->fault_500, err);
  case OPT_F503: return parse_prob(arg, name, &c->fault_503, err);
  case OPT_FRESET: return parse_prob(arg, name, &c->fault_reset, err);
  case OPT_FSTALL: return parse_prob(arg, name, &c->fault_stall, err);
  case OPT_FTRUNC: return parse_prob(arg, name, &c->fault_truncate, err);
  case OPT_FMAL: return parse_prob(arg, name, &c->fault_malformed, err);
  case OPT_STALL: return parse_uint(arg, name, 3600000, &c->stall_ms, err);
  case OPT_RETRY: return parse_uint(arg, name, 86400, &c->retry_after_s, err);
  case OPT_RATE: return parse_uint(arg, name, 100000000, &c->rate_limit, err);
  case OPT_QUOTA: return parse_uint(arg, name, 4000000000LL, &c->quota, err);
  case OPT_PMS: return parse_uint(arg, name, 3600000, &c->pending_ms, err);
  case OPT_PPOLLS: return parse_uint(arg, name, 1000000, &c->pending_polls, err);
  case OPT_TX_OBJECTS: return parse_uint(arg, name, 10000000, &c->taxii_objects, err);
  case OPT_TX_USER: return set_string(arg, name, &c->taxii_user, err);
  case OPT_TX_PASS: return set_string(arg, name, &c->taxii_password, err);
  case OPT_TX_TTL: return parse_uint(arg, name, 86400000, &c->taxii_next_ttl_ms, err);
  case OPT_TX_PAGE: return parse_uint(arg, name, 100000, &c->taxii_page_max, err);
  case OPT_TX_MEDALLION: c->taxii_medallion_next = 1; return TQ_OK;
  case OPT_TX_DOWNGRADE:
    if (strcmp(arg, "api-root") && strcmp(arg, "redirect"))
      return tq_err_set(err, TQ_EINVAL, "--taxii-downgrade: '%s' is not api-root or redirect", arg);
    c->taxii_downgrade = arg;
    return TQ_OK;
  case OPT_TLS_CERT: return read_pem(arg, name, &c->tls_cert_pem, err);
  case OPT_TLS_KEY: return read_pem(arg, name, &c->tls_key_pem, err);
  case OPT_STATS: c->stats = 1; return TQ_OK;
  case OPT_HELP: *exit_now = 1; return TQ_OK;
  default: return tq_err_set(err, TQ_EINVAL, "unknown option (see --help)");
  }
}

/* Options that only make sense together. */
static tq_code check_combinations(const sim_config *c, tq_err *err) {
  if ((c->tls_cert_pem == NULL) != (c->tls_key_pem == NULL))
    return tq_err_set(err, TQ_EINVAL, "--tls-cert and --tls-key must be given together");
  if ((c->taxii_user == NULL) != (c->taxii_password == NULL))
    return tq_err_set(err, TQ_EINVAL, "--taxii-user and --taxii-password must be given together");
  if (c->taxii_page_max == 0)
    return tq_err_set(err, TQ_EINVAL, "--taxii-page-max: must be at least 1");
  if (c->taxii_next_ttl_ms == 0)
    return tq_err_set(err, TQ_EINVAL, "--taxii-next-ttl-ms: must be at least 1");
  return TQ_OK;
}

static tq_code parse_args(int argc, char **argv, sim_config *c, int *exit_now, tq_err *err) {
  *c = (sim_config){.threads = 2,
                    .seed = 1,
                    .hit_ratio = 0.7,
                    .whois_nodata = 0.1,
                    .now = DEFAULT_NOW,
                    .stall_ms = 60000,
                    .retry_after_s = 1,
                    .pending_ms = 1000,
                    .taxii_objects = 2000,
                    .taxii_next_ttl_ms = 30000,
                    .taxii_page_max = 1000};
  int opt;
  opterr = 0; /* our own message names the option */
  while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    if (opt == '?')
      return tq_err_set(err, TQ_EINVAL, "unknown option or missing value: '%s' (see --help)",
                        argv[optind - 1]);
    tq_code code = apply_option(c, opt, optarg, exit_now, err);
    if (code != TQ_OK || *exit_now)
      return code;
  }
  if (optind < argc)
    return tq_err_set(err, TQ_EINVAL, "unexpected argument '%s' (see --help)", argv[optind]);
  if (c->threads == 0)
    c->threads = 1;
  return check_combinations(c, err);
}

static void free_tls(sim_config *c) {
  free(c->tls_cert_pem);
  free(c->tls_key_pem);
  c->tls_cert_pem = c->tls_key_pem = NULL;
}

int main(int argc, char **argv) {
  sim_config cfg;
  tq_err err = {0};
  int exit_now = 0;
  sim_server *srv = NULL;
  unsigned port = 0;
  if (parse_args(argc, argv, &cfg, &exit_now, &err) != TQ_OK) {
    fprintf(stderr, "rstsim: %s\n", err.msg);
    free_tls(&cfg);
    return 2;
  }
  if (exit_now) {
    fputs(usage, stdout);
    free_tls(&cfg);
    return 0;
  }
  /* Block the stop signals before any thread starts, so that only sigwait below sees them. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (sim_taxii_init(&cfg, &err) != TQ_OK || sim_keys_init(&err) != TQ_OK ||
      sim_timer_start(&err) != TQ_OK)
    goto fail;
  if (sim_http_start(&cfg, &srv, &port, &err) != TQ_OK)
    goto fail;
  printf("rstsim listening on 127.0.0.1:%u\n", port);
  fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  sim_http_stop(srv, cfg.stats ? stderr : NULL);
  sim_benign_cleanup();
  sim_taxii_cleanup();
  sim_keys_free();
  free_tls(&cfg);
  return 0;
fail:
  fprintf(stderr, "rstsim: %s\n", err.msg);
  sim_timer_stop();
  sim_taxii_cleanup();
  free_tls(&cfg);
  return 1;
}
