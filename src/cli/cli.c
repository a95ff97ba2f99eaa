/* cli.c: the tqhost command line: global options, dispatch to the command groups, and the
 * helpers that every command uses for errors, help and output. */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "tq_version.h" /* TQ_VERSION, generated at build time (cmake/version.cmake) */
#include "tqhost/cli.h"
#include "tqhost/workflow.h"

static const char MAIN_USAGE[] =
    "usage: tqhost [--db PATH] [--json] COMMAND [ARGS...]\n"
    "\n"
    "A ThreatQ-style threat-intelligence host: a threat library, TAXII feeds, and enrichment\n"
    "plugins written in Lua.\n"
    "\n"
    "Global options (also after the command):\n"
    "  --db PATH   the library file (default ./tqhost.db, or $TQHOST_DB)\n"
    "  --json      machine-readable output: one JSON document on stdout; errors as\n"
    "              {\"error\": {\"code\": ..., \"message\": ...}} on stderr\n"
    "  --help      help (also after any command: 'tqhost feed --help', 'tqhost feed add --help')\n"
    "  --version   the version of tqhost\n"
    "\n"
    "Commands:\n";

static const char MAIN_FOOTER[] = "\nExit status: 0 success, 1 failure, 2 usage error.\n";

static int cmd_version(cli *c, int argc, char **argv);
static int cmd_help(cli *c, int argc, char **argv);

/* The commands; 'tqhost --help' lists them from here, and each group lists its own table. */
static const cli_cmd TOP[] = {
    {"init", cli_cmd_init, "create the library file"},
    {"indicator", cli_cmd_indicator, "indicators: add, get, list, import, set, types"},
    {"source", cli_cmd_source, "sources: TLP, score sensitivity, expiration, revoked decrease"},
    {"collection", cli_cmd_collection, "data collections (saved queries)"},
    {"score", cli_cmd_score, "attribute scoring rules"},
    {"expire", cli_cmd_expire, "move due indicators to Expired"},
    {"feed", cli_cmd_feed, "TAXII 2.1 feeds (RST presets)"},
    {"plugin", cli_cmd_plugin, "Operation plugins ($TQHOST_PLUGINS, the installed ones)"},
    {"op", cli_cmd_op, "run an operation on one indicator"},
    {"action", cli_cmd_action, "Actions: bulk enrichment of a collection ($TQHOST_ACTIONS)"},
    {"workflow", cli_cmd_workflow, "workflows on a schedule"},
    {"serve", cli_cmd_serve, "the REST API over HTTPS (users, tokens, operations)"},
    {"user", cli_cmd_user, "users of 'tqhost serve': add, list, passwd, role, delete"},
    {"client", cli_cmd_client, "OAuth API clients of 'tqhost serve'"},
    {"version", cmd_version, "the version of tqhost"},
    {"help", cmd_help, "the help of a command: 'tqhost help plugin new'"},
    {NULL, NULL, NULL},
};

/* Prints one error on stderr: "PROG: message", or with --json one line
 * {"error": {"code": CODE, "message": MESSAGE}}. */
static void print_error(cli *c, const char *code, const char *msg) {
  if (!c->json) {
    fprintf(stderr, "%s: %s\n", c->prog, cli_txt(msg));
    return;
  }
  cJSON *j = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(j, "error");
  cJSON_AddStringToObject(e, "code", code);
  cJSON_AddStringToObject(e, "message", msg);
  cJSON_AddStringToObject(e, "command", c->prog);
  char *s = cJSON_PrintUnformatted(j);
  if (s)
    fprintf(stderr, "%s\n", s);
  free(s);
  cJSON_Delete(j);
}

void cli_error(cli *c, const char *code, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  print_error(c, code, msg);
}

int cli_usage_error(cli *c, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n < sizeof msg)
    snprintf(msg + n, sizeof msg - (size_t)n, " (see '%s --help')", c->prog);
  print_error(c, "EUSAGE", msg);
  return EXIT_USAGE;
}

int cli_fail(cli *c, const tq_err *err) {
  print_error(c, tq_code_name(err->code), err->msg[0] ? err->msg : tq_code_name(err->code));
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

int cli_no_options(cli *c, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0)
      break;
    char *end = NULL;
    if (argv[i][0] != '-' || argv[i][1] == '\0')
      continue;
    (void)strtod(argv[i], &end);
    if (*end != '\0')
      return cli_usage_error(c, "unknown option '%s'", argv[i]);
  }
  return EXIT_OK;
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

/* The list of a command table, the part of every group's help that 'tqhost --help' and the
 * command-line tests read. */
static void print_commands(FILE *out, const cli_cmd *cmds) {
  for (const cli_cmd *k = cmds; k->name; k++)
    fprintf(out, "  %-12s %s\n", k->name, k->summary);
}

int cli_dispatch(cli *c, const char *group, const cli_cmd *cmds, int argc, char **argv) {
  char prog[128];
  if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
    FILE *out = argc < 1 ? stderr : stdout;
    fprintf(out, "usage: %s COMMAND [ARGS...]\n\nCommands:\n", c->prog);
    print_commands(out, cmds);
    if (argc < 1)
      return cli_usage_error(c, "needs a command");
    return EXIT_OK;
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
  } else if (tq_workflow_migrate(c->lib, &err) != TQ_OK) { /* the parts' own tables */
    cli_fail(c, &err);
    tq_lib_close(c->lib);
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

int cli_json_out(cli *c, cJSON *v) {
  char *s = cJSON_Print(v);
  if (s) {
    json_put(s);
    free(s);
  }
  cJSON_Delete(v);
  c->json_printed = 1;
  return EXIT_OK;
}

static int cmd_version(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost version (or tqhost --version)\n"
                    "Prints the version of tqhost (project version + git describe of the build).\n"
                    "With --json also the folders it uses (schemas, plugins, actions, web: from\n"
                    "the environment, the host configuration or the installed ones) and the\n"
                    "host configuration file it reads.\n");
  if (argc != 1)
    return cli_usage_error(c, "takes no arguments");
  if (c->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "version", TQ_VERSION);
    cJSON *f = cJSON_AddObjectToObject(j, "folders");
    for (int k = 0; k < TQ_DIR_N; k++) { /* canonical when it exists: no "bin/.." */
      const char *d = tq_host_dir((tq_host_dir_kind)k);
      char real[PATH_MAX];
      cJSON_AddStringToObject(f, tq_host_dir_name((tq_host_dir_kind)k),
                              realpath(d, real) ? real : d);
    }
    int named = 0;
    cJSON_AddStringToObject(j, "config", tq_host_config_path(&named));
    return cli_print_json(j);
  }
  printf("tqhost %s\n", TQ_VERSION);
  return EXIT_OK;
}

static void main_help(FILE *out) {
  fputs(MAIN_USAGE, out);
  print_commands(out, TOP);
  fputs(MAIN_FOOTER, out);
}

/* `tqhost help COMMAND [SUBCOMMAND]`: runs "COMMAND [SUBCOMMAND] --help" through the same
 * tables, so the text is the command's own; an unknown command is the dispatcher's usage
 * error (exit 2). Without COMMAND: the main help (with --json, the commands as JSON). */
static int cmd_help(cli *c, int argc, char **argv) {
  if (argc > 3 || (argc > 1 && cli_wants_help(argc - 1, argv + 1)))
    return argc > 3 ? cli_usage_error(c, "takes COMMAND [SUBCOMMAND]")
                    : cli_help("usage: tqhost help [COMMAND [SUBCOMMAND]]\n"
                               "Prints the help of COMMAND (the same text as 'tqhost COMMAND "
                               "--help'),\nor without COMMAND the list of commands.\n");
  for (int i = 1; i < argc; i++)
    if (argv[i][0] == '-')
      return cli_usage_error(c, "unknown option '%s'", argv[i]);
  if (argc == 1) {
    if (!c->json) {
      main_help(stdout);
      return EXIT_OK;
    }
    cJSON *arr = cJSON_CreateArray();
    for (const cli_cmd *k = TOP; k->name; k++) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "name", k->name);
      cJSON_AddStringToObject(o, "summary", k->summary);
      cJSON_AddItemToArray(arr, o);
    }
    return cli_print_json(arr);
  }
  char *v[4] = {argv[1], argc == 3 ? argv[2] : "--help", argc == 3 ? "--help" : NULL, NULL};
  c->prog = "tqhost"; /* "tqhost: unknown command 'x' (see 'tqhost --help')" */
  int rc = cli_dispatch(c, NULL, TOP, argc, v);
  c->json_printed = 1; /* help is text: no JSON 'ok' document after it */
  return rc;
}

int tq_cli_main(int argc, char **argv) {
  cli c = {.db_path = getenv("TQHOST_DB"), .json = 0, .prog = "tqhost", .lib = NULL};
  int version = 0, db_given = c.db_path && *c.db_path;
  if (!db_given)
    c.db_path = "tqhost.db";
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      c.json = 1;
    } else if (strcmp(argv[i], "--db") == 0) {
      if (i + 1 >= argc)
        return cli_usage_error(&c, "--db needs a path");
      c.db_path = argv[++i], db_given = 1;
    } else if (strncmp(argv[i], "--db=", 5) == 0) {
      c.db_path = argv[i] + 5, db_given = 1;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      main_help(stdout);
      return EXIT_OK;
    } else if (strcmp(argv[i], "--version") == 0) {
      version = 1;
    } else if (argv[i][0] == '-') {
      return cli_usage_error(&c, "unknown option '%s'", argv[i]);
    } else {
      break;
    }
  }
  if (version && i >= argc) {
    char *v[] = {"version", NULL};
    return cmd_version(&c, 1, v);
  }
  if (i >= argc) {
    main_help(stderr);
    return cli_usage_error(&c, "needs a command");
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
      c.db_path = argv[++k], db_given = 1;
    else
      rest[n++] = argv[k];
  }
  /* The host configuration: after the command line and the environment, before the defaults.
   * help (also COMMAND --help) and version work whatever the file holds. */
  tq_host_config host;
  tq_host_config_defaults(&host);
  int wants_help = n == 0 || strcmp(rest[0], "help") == 0 || strcmp(rest[0], "version") == 0;
  for (int k = 0; k < n; k++)
    wants_help |= strcmp(rest[k], "--help") == 0 || strcmp(rest[k], "-h") == 0;
  if (!wants_help) {
    tq_err err;
    tq_err_clear(&err);
    if (tq_host_config_find(&host, &err) != TQ_OK) {
      int frc = cli_fail(&c, &err);
      free(rest);
      return frc;
    }
    c.host = &host;
    if (!db_given && host.library)
      c.db_path = host.library;
    if (host.log_level >= 0 && getenv("TQHOST_LOG") == NULL)
      tq_log_set_level((tq_log_level)host.log_level);
  }
  int rc = cli_dispatch(&c, NULL, TOP, n, rest);
  c.prog = "tqhost"; /* the command's name lived in cli_dispatch's frame */
  /* With --json every command prints one JSON document: one that has nothing to report (a
   * change made, a feed enabled) says so. */
  if (c.json && rc == EXIT_OK && !c.json_printed) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddTrueToObject(j, "ok");
    cli_json_out(&c, j);
  }
  free(rest);
  tq_lib_close(c.lib);
  tq_host_config_free(&host);
  return rc;
}
