/* cmd_serve.c: `tqhost serve`: the library and the plugins behind the REST API
 * (src/server/). Prints one ready line on stdout once it listens; tests read the URL there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "tqhost/plugin.h"
#include "tqhost/server.h"

static const char SERVE_HELP[] =
    "usage: tqhost serve [--listen ADDR:PORT] [--tls-cert FILE --tls-key FILE]\n"
    "                    [--insecure-http [--insecure-http]] [--threads N] [--web DIR]\n"
    "                    [--print-routes]\n"
    "\n"
    "Serves the library over a ThreatQ-shaped REST API (docs/api.md) until SIGTERM or\n"
    "SIGINT, then stops accepting, lets the requests in flight finish and exits 0.\n"
    "\n"
    "  --listen ADDR:PORT  where to listen (default 127.0.0.1:8443; port 0 picks a free one;\n"
    "                      IPv6 as [::1]:8443)\n"
    "  --tls-cert FILE     the certificate (PEM; a chain may follow it)\n"
    "  --tls-key FILE      its private key (PEM)\n"
    "                      Without both: a self-signed certificate for localhost, 127.0.0.1\n"
    "                      and ::1, made on first start and kept as <db>.tls.crt and\n"
    "                      <db>.tls.key (mode 0600) beside the library.\n"
    "  --insecure-http     plain HTTP, on a loopback address only; given twice, on any\n"
    "                      address (tokens then cross the network in clear)\n"
    "  --threads N         HTTP threads (default 4)\n"
    "  --max-body SIZE     request body cap (default 8MiB)\n"
    "  --max-connections N connections at once (default 256)\n"
    "  --timeout SECONDS   a request must arrive within this, and an idle connection\n"
    "                      is closed after it (default 30)\n"
    "  --replay FILE       plugins' HTTP answers from a recording (tests, demos)\n"
    "  --web DIR           the web UI's files, served at / (default: $TQHOST_WEB, the host\n"
    "                      configuration's folders.web, else the installed web folder)\n"
    "  --print-routes      print METHOD PATTERN ROLE for every route and exit\n"
    "\n"
    "The host configuration (/etc/tqhost/tqhost.yaml or $TQHOST_CONFIG; docs/install.md)\n"
    "gives the defaults of --listen, --tls-cert and --tls-key (server.listen, tls_cert,\n"
    "tls_key), the library (library), the folders and the log level; options win over it.\n"
    "\n"
    "When it listens it prints exactly one line on stdout:\n"
    "  tqhost serving on https://127.0.0.1:8443 (sha256 fingerprint 3fa4...)\n"
    "  tqhost serving on http://127.0.0.1:8080 (plain HTTP)\n"
    "With --json, that line is a JSON object: {\"listening\", \"sha256_fingerprint\"}.\n"
    "Access log lines (TQHOST_LOG=info) and errors go to stderr.\n";

static void on_ready(void *ud, const char *url, const char *fingerprint) {
  cli *c = ud;
  if (c->json) { /* one JSON document, the ready line's facts */
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "listening", url);
    if (fingerprint && *fingerprint)
      cJSON_AddStringToObject(j, "sha256_fingerprint", fingerprint);
    char *line = cJSON_PrintUnformatted(j); /* one line: readers wait for it */
    if (line)
      printf("%s\n", line);
    free(line);
    cJSON_Delete(j);
    c->json_printed = 1;
    fflush(stdout);
    return;
  }
  if (fingerprint && *fingerprint)
    printf("tqhost serving on %s (sha256 fingerprint %s)\n", url, fingerprint);
  else
    printf("tqhost serving on %s (plain HTTP)\n", url);
  fflush(stdout);
}

static void print_route(void *ud, const char *method, const char *pattern, tq_role role) {
  (void)ud;
  printf("%s %s %s\n", method, pattern, tq_role_name(role));
}

static int num_opt(cli *c, const char *name, const char *v, long long lo, long long hi,
                   long long *out) {
  tq_err err;
  tq_err_clear(&err);
  if (tq_parse_int(v, lo, hi, out, name, &err) != TQ_OK)
    return cli_usage_error(c, "%s", err.msg);
  return EXIT_OK;
}

int cli_cmd_serve(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(SERVE_HELP);
  static const struct option opts[] = {{"listen", required_argument, 0, 'l'},
                                       {"tls-cert", required_argument, 0, 'c'},
                                       {"tls-key", required_argument, 0, 'k'},
                                       {"insecure-http", no_argument, 0, 'i'},
                                       {"threads", required_argument, 0, 't'},
                                       {"max-body", required_argument, 0, 'b'},
                                       {"max-connections", required_argument, 0, 'm'},
                                       {"timeout", required_argument, 0, 'T'},
                                       {"replay", required_argument, 0, 'r'},
                                       {"print-routes", no_argument, 0, 'p'},
                                       {"web", required_argument, 0, 'w'},
                                       {0, 0, 0, 0}};
  tq_server_opts o;
  tq_server_opts_init(&o);
  int ch, print_routes = 0;
  long long v;
  tq_err err;
  tq_err_clear(&err);
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    switch (ch) {
    case 'l': o.listen = optarg; break;
    case 'c': o.tls_cert = optarg; break;
    case 'k': o.tls_key = optarg; break;
    case 'i': o.insecure_http++; break;
    case 't':
      if (num_opt(c, "--threads", optarg, 1, 256, &v) != EXIT_OK)
        return EXIT_USAGE;
      o.http_threads = (int)v;
      break;
    case 'b': {
      uint64_t sz;
      if (tq_parse_size(optarg, &sz, &err) != TQ_OK || sz == 0 || sz > (1ull << 30))
        return cli_usage_error(c, "--max-body '%s': a size from 1 byte to 1GiB", optarg);
      o.max_body = (size_t)sz;
      break;
    }
    case 'm':
      if (num_opt(c, "--max-connections", optarg, 1, 100000, &v) != EXIT_OK)
        return EXIT_USAGE;
      o.max_conns = (unsigned)v;
      break;
    case 'T':
      if (num_opt(c, "--timeout", optarg, 1, 3600, &v) != EXIT_OK)
        return EXIT_USAGE;
      o.conn_timeout_s = (unsigned)v;
      break;
    case 'r': o.replay_file = optarg; break;
    case 'p': print_routes = 1; break;
    case 'w': o.web_dir = optarg; break;
    default: return EXIT_USAGE;
    }
  }
  if (optind != argc)
    return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
  if (print_routes) {
    tq_server_routes(print_route, NULL);
    return EXIT_OK;
  }
  if (o.insecure_http > 2)
    o.insecure_http = 2;
  /* The host configuration's server settings, where the command line gives none. */
  if (c->host && o.listen == NULL)
    o.listen = c->host->listen;
  if (c->host && o.tls_cert == NULL && o.tls_key == NULL && !o.insecure_http) {
    o.tls_cert = c->host->tls_cert;
    o.tls_key = c->host->tls_key;
  }
  o.db_path = c->db_path;
  o.on_ready = on_ready;
  o.ud = c;
  if (tq_server_run(&o, &err) != TQ_OK)
    return cli_fail(c, &err);
  return EXIT_OK;
}
