/* cli.c: the tqhost command line: global options, dispatch to the command groups, and the
 * helpers that every command uses for errors, help and output. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "tqhost/cli.h"

static const char MAIN_HELP[] =
    "usage: tqhost [--db PATH] [--json] COMMAND [ARGS...]\n"
    "\n"
    "A ThreatQ-style threat-intelligence host: a threat library, TAXII feeds, and enrichment\n"
    "plugins written in Lua.\n"
    "\n"
    "Global options:\n"
    "  --db PATH   the library file (default ./tqhost.db, or $TQHOST_DB)\n"
    "  --json      machine-readable output\n"
    "  --help      help (also after any command)\n"
    "\n"
    "Commands:\n"
    "  init                       create the library file\n"
    "  indicator add|get|list|import|set|types\n"
    "  source add|list|set        sources: TLP, score sensitivity, expiration, revoked decrease\n"
    "  collection add|list|show|delete   data collections (saved queries)\n"
    "  score rule                 attribute scoring rules\n"
    "  expire                     move due indicators to Expired\n"
    "  feed add|list|show|poll|enable|disable|delete   TAXII 2.1 feeds (RST presets)\n"
    "  plugin list|check|configure|test   Operation plugins ($TQHOST_PLUGINS, ./plugins)\n"
    "  op list|run                run an operation on one indicator\n"
    "  action list|run|runs|resume   Actions: bulk enrichment of a collection ($TQHOST_ACTIONS)\n"
    "  workflow add|list|show|run|enable|disable|delete|tick   workflows on a schedule\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

static const cli_cmd TOP[] = {
    {"init", cli_cmd_init, "create the library file"},
    {"indicator", cli_cmd_indicator, "indicators"},
    {"source", cli_cmd_source, "sources"},
    {"collection", cli_cmd_collection, "data collections"},
    {"score", cli_cmd_score, "scoring rules"},
    {"expire", cli_cmd_expire, "expire due indicators"},
    {"feed", cli_cmd_feed, "TAXII feeds"},
    {"plugin", cli_cmd_plugin, "Operation plugins"},
    {"op", cli_cmd_op, "run operations"},
    {"action", cli_cmd_action, "bulk actions"},
    {"workflow", cli_cmd_workflow, "workflows and the scheduler"},
    {NULL, NULL, NULL},
};

int cli_usage_error(cli *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", c->prog);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (see '%s --help')\n", c->prog);
  va_end(ap);
  return EXIT_USAGE;
}

int cli_fail(cli *c, const tq_err *err) {
  fprintf(stderr, "%s: %s\n", c->prog, err->msg[0] ? cli_txt(err->msg) : tq_code_name(err->code));
  return EXIT_FAIL;
}

int cli_wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0)
      return 0;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
      return 1;
  }
  return 0;
}

int cli_help(const char *text) {
  fputs(text, stdout);
  return EXIT_OK;
}

int cli_getopt(cli *c, int argc, char **argv, const struct option *opts) {
  opterr = 0;
  int longidx = 0;
  int ch = getopt_long(argc, argv, "", opts, &longidx);
  if (ch == '?') {
    if (optopt)
      cli_usage_error(c, "option -%c needs a value or is unknown", optopt);
    else
      cli_usage_error(c, "unknown option or missing value in '%s'", argv[optind - 1]);
  } else if (ch == ':') {
    cli_usage_error(c, "option '%s' needs a value", argv[optind - 1]);
    ch = '?';
  }
  return ch;
}

int cli_dispatch(cli *c, const char *group, const cli_cmd *cmds, int argc, char **argv) {
  char prog[128];
  if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
    printf("usage: %s COMMAND [ARGS...]\n\nCommands:\n", c->prog);
    for (const cli_cmd *k = cmds; k->name; k++)
      printf("  %-12s %s\n", k->name, k->summary);
    return argc < 1 ? EXIT_USAGE : EXIT_OK;
  }
  for (const cli_cmd *k = cmds; k->name; k++) {
    if (strcmp(k->name, argv[0]) == 0) {
      snprintf(prog, sizeof prog, "%s%s%s", group ? c->prog : "tqhost", " ", k->name);
      c->prog = prog;
      optind = 0; /* a full getopt reset for each command's own options */
      return k->fn(c, argc, argv);
    }
  }
  return cli_usage_error(c, "unknown command '%s'", argv[0]);
}

tq_lib *cli_lib(cli *c, int create) {
  if (c->lib)
    return c->lib;
  tq_err err;
  tq_err_clear(&err);
  if (tq_lib_open(c->db_path, create ? TQ_LIB_OPEN_CREATE : TQ_LIB_OPEN_EXISTING, &c->lib, &err) !=
      TQ_OK) {
    cli_fail(c, &err);
    c->lib = NULL;
  }
  return c->lib;
}

/* Writes JSON text s: cJSON escapes C0 controls but not DEL nor C1 controls (UTF-8 C2 80..9F,
 * 0x9b a CSI on some terminals); they can only be inside strings, so \u escapes keep it JSON. */
static void json_put(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == 0x7f)
      fputs("\\u007f", stdout);
    else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
      printf("\\u%04x", *++p);
    else
      putchar(*p);
  }
  putchar('\n');
}

int cli_print_json(cJSON *v) {
  char *s = cJSON_Print(v);
  if (s) {
    json_put(s);
    free(s);
  }
  cJSON_Delete(v);
  return EXIT_OK;
}

int tq_cli_main(int argc, char **argv) {
  cli c = {.db_path = getenv("TQHOST_DB"), .json = 0, .prog = "tqhost", .lib = NULL};
  if (c.db_path == NULL || *c.db_path == '\0')
    c.db_path = "tqhost.db";
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      c.json = 1;
    } else if (strcmp(argv[i], "--db") == 0) {
      if (i + 1 >= argc)
        return cli_usage_error(&c, "--db needs a path");
      c.db_path = argv[++i];
    } else if (strncmp(argv[i], "--db=", 5) == 0) {
      c.db_path = argv[i] + 5;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      return cli_help(MAIN_HELP);
    } else if (argv[i][0] == '-') {
      return cli_usage_error(&c, "unknown option '%s'", argv[i]);
    } else {
      break;
    }
  }
  if (i >= argc) {
    fputs(MAIN_HELP, stderr);
    return EXIT_USAGE;
  }
  /* --json and --db may also follow the command: take them out of argv. */
  int n = 0;
  char **rest = calloc((size_t)(argc - i) + 1, sizeof *rest);
  if (rest == NULL)
    return EXIT_FAIL;
  for (int k = i; k < argc; k++) {
    if (strcmp(argv[k], "--json") == 0)
      c.json = 1;
    else if (strcmp(argv[k], "--db") == 0 && k + 1 < argc)
      c.db_path = argv[++k];
    else
      rest[n++] = argv[k];
  }
  int rc = cli_dispatch(&c, NULL, TOP, n, rest);
  free(rest);
  tq_lib_close(c.lib);
  return rc;
}
