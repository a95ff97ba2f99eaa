/* cmd_feed.c: `tqhost feed add|list|show|poll|enable|disable|delete`: TAXII 2.1 collections
 * (and RST Report Hub's REST API) as feeds of the threat library, with presets for RST
 * Cloud's collections. The work is in the feed part; this file parses and prints. */
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "tqhost/feed.h"

/* `feed poll` exit status of a pass that committed what came but stopped before the end of
 * the collection (page cap, a server loop): not a failure, not done either (docs/feeds.md). */
#define FEED_EXIT_INCOMPLETE 3

static const char FEED_HELP[] =
    "usage: tqhost feed add NAME [--preset rst-high|rst-medium|rst-low|rst-report-hub]\n"
    "                         --discovery URL --collection ID-or-TITLE --source NAME\n"
    "                         [--kind taxii|rst-reports] [--username U --password-env VAR]\n"
    "                         [--ca-file F] [--verify yes|no] [--score N]\n"
    "                         [--expire-days N|never] [--revoked-decrease N] [--every 1h]\n"
    "                         [--page-size N] [--overlap 60s] [--match-type T1,T2]\n"
    "       tqhost feed list | show NAME | poll NAME [--max-pages N]\n"
    "       tqhost feed enable NAME | disable NAME | delete NAME\n"
    "feed poll exits 0 when the pass reached the end of the collection, 1 on failure and 3\n"
    "when it stopped before the end (what came is kept; the next poll continues).\n"
    "A preset fills the discovery URL, collection, source and the source's score, expiration\n"
    "and revoked decrease; any option overrides it. The password (or for --kind rst-reports the\n"
    "X-Api-Key) is read from the variable named by --password-env at poll time, never stored.\n"
    "--score, --expire-days and --revoked-decrease set the feed's source (tqhost source).\n";

/* What `feed add` collects besides the definition: the source's settings. */
typedef struct add_args {
  tq_feed f;
  tq_source_opts src;
  const char *preset;
} add_args;

static int apply_preset(cli *c, add_args *a) {
  tq_err err;
  if (tq_feed_preset_apply(a->preset, &a->f, &a->src, &err) != TQ_OK)
    return cli_usage_error(c, "--%s", err.msg);
  return EXIT_OK;
}

/* Copies optarg into a fixed field, refusing what does not fit. */
static int set_field(cli *c, char *dst, size_t n, const char *opt) {
  if (strlen(optarg) >= n)
    return cli_usage_error(c, "%s: value longer than %zu bytes", opt, n - 1);
  tq_strlcpy(dst, optarg, n);
  return EXIT_OK;
}

static int duration_s(cli *c, const char *opt, int64_t *out) {
  int64_t ms = 0;
  tq_err err;
  if (tq_parse_duration_ms(optarg, &ms, &err) != TQ_OK)
    return cli_usage_error(c, "%s: %s", opt, err.msg);
  *out = ms / 1000;
  return EXIT_OK;
}

static int int_opt(cli *c, const char *opt, long long lo, long long hi, int *out) {
  long long v;
  tq_err err;
  if (tq_parse_int(optarg, lo, hi, &v, opt, &err) != TQ_OK)
    return cli_usage_error(c, "%s", err.msg);
  *out = (int)v;
  return EXIT_OK;
}

static int add_option(cli *c, int ch, add_args *a) {
  tq_feed *f = &a->f;
  switch (ch) {
  case 'd': return set_field(c, f->discovery, sizeof f->discovery, "--discovery");
  case 'c': return set_field(c, f->collection, sizeof f->collection, "--collection");
  case 'u': return set_field(c, f->username, sizeof f->username, "--username");
  case 'p': return set_field(c, f->password_env, sizeof f->password_env, "--password-env");
  case 'a': return set_field(c, f->ca_file, sizeof f->ca_file, "--ca-file");
  case 's': return set_field(c, f->source, sizeof f->source, "--source");
  case 'k': return set_field(c, f->kind, sizeof f->kind, "--kind");
  case 't': return set_field(c, f->match_type, sizeof f->match_type, "--match-type");
  case 'v':
    if (strcmp(optarg, "yes") && strcmp(optarg, "no"))
      return cli_usage_error(c, "--verify: '%s' is not yes or no", optarg);
    f->verify = strcmp(optarg, "yes") == 0;
    return EXIT_OK;
  case 'S': return int_opt(c, "--score", 0, 10, &a->src.score);
  case 'r': return int_opt(c, "--revoked-decrease", 0, 10, &a->src.revoked_decrease);
  case 'n': return int_opt(c, "--page-size", 1, 100000, &f->page_size);
  case 'e':
    if (strcmp(optarg, "never") == 0) {
      a->src.expire_days = TQ_EXPIRE_NEVER;
      return EXIT_OK;
    }
    return int_opt(c, "--expire-days", 1, 36500, &a->src.expire_days);
  case 'E': return duration_s(c, "--every", &f->every_s);
  case 'o': return duration_s(c, "--overlap", &f->overlap_s);
  default: return EXIT_USAGE;
  }
}

static int parse_add(cli *c, int argc, char **argv, add_args *a) {
  static const struct option opts[] = {{"preset", required_argument, 0, 'P'},
                                       {"discovery", required_argument, 0, 'd'},
                                       {"collection", required_argument, 0, 'c'},
                                       {"username", required_argument, 0, 'u'},
                                       {"password-env", required_argument, 0, 'p'},
                                       {"ca-file", required_argument, 0, 'a'},
                                       {"verify", required_argument, 0, 'v'},
                                       {"source", required_argument, 0, 's'},
                                       {"score", required_argument, 0, 'S'},
                                       {"expire-days", required_argument, 0, 'e'},
                                       {"revoked-decrease", required_argument, 0, 'r'},
                                       {"every", required_argument, 0, 'E'},
                                       {"kind", required_argument, 0, 'k'},
                                       {"page-size", required_argument, 0, 'n'},
                                       {"overlap", required_argument, 0, 'o'},
                                       {"match-type", required_argument, 0, 't'},
                                       {0, 0, 0, 0}};
  /* The preset first, so that every other option overrides it wherever it appears. */
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], "--preset") == 0)
      a->preset = argv[i + 1];
    else if (strncmp(argv[i], "--preset=", 9) == 0)
      a->preset = argv[i] + 9;
  if (a->preset && apply_preset(c, a) != EXIT_OK)
    return EXIT_USAGE;
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    if (ch == 'P')
      continue;
    if (ch == '?' || add_option(c, ch, a) != EXIT_OK)
      return EXIT_USAGE;
  }
  if (optind + 1 != argc)
    return cli_usage_error(c, "needs exactly one NAME");
  if (strlen(argv[optind]) >= sizeof a->f.name)
    return cli_usage_error(c, "feed name too long");
  tq_strlcpy(a->f.name, argv[optind], sizeof a->f.name);
  return EXIT_OK;
}

static int feed_add(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(FEED_HELP);
  add_args a;
  tq_feed_init(&a.f);
  tq_source_opts_init(&a.src);
  a.preset = NULL;
  int rc = parse_add(c, argc, argv, &a);
  if (rc != EXIT_OK)
    return rc;
  tq_err err;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  if (tq_feed_add(c->lib, &a.f, &a.src, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "added", a.f.name);
    return cli_print_json(j);
  }
  printf("added feed '%s' (%s %s, collection '%s', source '%s')\n", a.f.name, a.f.kind,
         a.f.discovery, a.f.collection, a.f.source);
  return EXIT_OK;
}

static int feed_list(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(FEED_HELP);
  if (argc != 1)
    return cli_usage_error(c, "takes no arguments");
  tq_feed *v = NULL;
  size_t n = 0;
  tq_err err;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  if (tq_feed_list(c->lib, &v, &n, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
      cJSON_AddItemToArray(arr, tq_feed_json(&v[i]));
    cli_print_json(arr);
  } else {
    printf("%-20s %-11s %-8s %-10s %-28s %s\n", "name", "kind", "enabled", "last", "checkpoint",
           "source");
    for (size_t i = 0; i < n; i++)
      printf("%-20s %-11s %-8s %-10s %-28s %s\n", v[i].name, v[i].kind, v[i].enabled ? "yes" : "no",
             tq_feed_state_name(v[i].last_ok), v[i].checkpoint[0] ? v[i].checkpoint : "-",
             cli_txt(v[i].source));
  }
  free(v);
  return EXIT_OK;
}

static int one_name(cli *c, int argc, char **argv) {
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 2)
    return cli_usage_error(c, "needs exactly one NAME");
  return cli_lib(c, 0) ? EXIT_OK : EXIT_FAIL;
}

static int feed_show(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(FEED_HELP);
  int rc = one_name(c, argc, argv);
  if (rc != EXIT_OK)
    return rc;
  tq_feed f;
  tq_err err;
  if (tq_feed_get(c->lib, argv[1], &f, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json)
    return cli_print_json(tq_feed_json(&f));
  printf("feed %s (%s, %s)\n", f.name, f.kind, f.enabled ? "enabled" : "disabled");
  printf("  url          %s\n", cli_txt(f.discovery));
  if (f.collection[0])
    printf("  collection   %s\n", cli_txt(f.collection));
  printf("  source       %s\n", cli_txt(f.source));
  if (f.username[0])
    printf("  username     %s (password from $%s)\n", f.username, f.password_env);
  else if (f.password_env[0])
    printf("  api key      from $%s\n", f.password_env);
  printf("  tls          verify %s%s%s\n", f.verify ? "yes" : "no", f.ca_file[0] ? ", CA " : "",
         f.ca_file);
  printf("  every        %llds, page size %d, overlap %llds\n", (long long)f.every_s, f.page_size,
         (long long)f.overlap_s);
  printf("  checkpoint   %s\n", f.checkpoint[0] ? f.checkpoint : "(none: from the start)");
  printf("  last poll    %s", tq_feed_state_name(f.last_ok));
  if (f.last_poll_at) {
    char t[20];
    tq_time_format(f.last_poll_at, t);
    printf(" at %s", t);
  }
  printf("\n");
  if (f.last_error[0])
    printf("  %-12s %s\n", f.last_ok == TQ_FEED_INCOMPLETE ? "why" : "last error",
           cli_txt(f.last_error));
  if (f.last_summary[0])
    printf("  last summary %s\n", cli_txt(f.last_summary));
  return EXIT_OK;
}

static int feed_poll(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(FEED_HELP);
  static const struct option opts[] = {{"max-pages", required_argument, 0, 'm'}, {0, 0, 0, 0}};
  tq_feed_poll_opts o;
  tq_feed_poll_opts_init(&o);
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    if (ch != 'm' || int_opt(c, "--max-pages", 1, 10000000, &o.max_pages) != EXIT_OK)
      return EXIT_USAGE;
  }
  if (optind + 1 != argc)
    return cli_usage_error(c, "needs exactly one NAME");
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  tq_feed_summary sum;
  tq_err err;
  tq_err_clear(&err);
  tq_code rc = tq_feed_poll(c->lib, NULL, argv[optind], &o, &sum, &err);
  if (c->json) {
    cJSON *j = tq_feed_summary_json(&sum, 0);
    if (rc != TQ_OK)
      cJSON_AddStringToObject(j, "error", err.msg);
    cli_print_json(j);
  } else if (sum.pages || rc == TQ_OK) {
    tq_feed_summary_print(&sum, stdout);
  }
  int complete = sum.complete;
  char stopped[sizeof sum.stopped];
  tq_strlcpy(stopped, sum.stopped, sizeof stopped);
  tq_feed_summary_free(&sum);
  if (rc != TQ_OK)
    return cli_fail(c, &err);
  if (complete)
    return EXIT_OK;
  cli_error(c, "incomplete",
            "feed %s: incomplete: %s; what came is committed and the next poll continues from "
            "the checkpoint",
            argv[optind], stopped[0] ? stopped : "the pass stopped before the end");
  return FEED_EXIT_INCOMPLETE;
}

static int feed_switch(cli *c, int argc, char **argv, int enabled) {
  if (cli_wants_help(argc, argv))
    return cli_help(FEED_HELP);
  int rc = one_name(c, argc, argv);
  if (rc != EXIT_OK)
    return rc;
  tq_err err;
  if (tq_feed_set_enabled(c->lib, argv[1], enabled, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (!c->json)
    printf("feed '%s' %s\n", argv[1], enabled ? "enabled" : "disabled");
  return EXIT_OK;
}

static int feed_enable(cli *c, int argc, char **argv) { return feed_switch(c, argc, argv, 1); }
static int feed_disable(cli *c, int argc, char **argv) { return feed_switch(c, argc, argv, 0); }

static int feed_delete(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(FEED_HELP);
  int rc = one_name(c, argc, argv);
  if (rc != EXIT_OK)
    return rc;
  tq_err err;
  if (tq_feed_delete(c->lib, argv[1], &err) != TQ_OK)
    return cli_fail(c, &err);
  if (!c->json)
    printf("deleted feed '%s' (its objects stay in the library)\n", argv[1]);
  return EXIT_OK;
}

int cli_cmd_feed(cli *c, int argc, char **argv) {
  static const cli_cmd cmds[] = {{"add", feed_add, "define a feed (or from a preset)"},
                                 {"list", feed_list, "list feeds"},
                                 {"show", feed_show, "one feed, its checkpoint and last poll"},
                                 {"poll", feed_poll, "poll a feed now"},
                                 {"enable", feed_enable, "include a feed in scheduled polls"},
                                 {"disable", feed_disable, "leave a feed out of scheduled polls"},
                                 {"delete", feed_delete, "delete a feed definition"},
                                 {NULL, NULL, NULL}};
  return cli_dispatch(c, "feed", cmds, argc - 1, argv + 1);
}
