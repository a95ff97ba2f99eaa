/* cli_int.h: what the command files of the cli part share: the invocation context, option
 * parsing helpers and output helpers. */
#ifndef TQ_CLI_INT_H
#define TQ_CLI_INT_H

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>

#include "tqhost/core.h"
#include "tqhost/library.h"

/* Exit statuses. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct cli {
  const char *db_path;
  int json;
  const char *prog; /* "tqhost indicator add" for messages */
  tq_lib *lib;      /* opened on demand by cli_lib */
  int json_printed; /* a JSON document went to stdout (cli_print_json) */
  /* The host configuration (tq_host_config_find), read before the command runs; its strings
   * live until tq_cli_main returns. db_path comes from it when neither --db nor $TQHOST_DB
   * names the library. NULL for help and version. */
  const struct tq_host_config *host;
} cli;

typedef int (*cli_cmd_fn)(cli *c, int argc, char **argv);

typedef struct cli_cmd {
  const char *name;
  cli_cmd_fn fn;
  const char *summary;
} cli_cmd;

/* Runs the sub-command argv[0] among cmds (NULL-terminated); prints help for --help or none. */
int cli_dispatch(cli *c, const char *group, const cli_cmd *cmds, int argc, char **argv);

/* Opens the library (existing unless create); prints the error and returns NULL on failure. */
tq_lib *cli_lib(cli *c, int create);

/* Prints "<prog>: <message> (see '<prog> --help')" on stderr (with --json an error object
 * with code "EUSAGE") and returns EXIT_USAGE. */
int cli_usage_error(cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints one error or warning on stderr as every command does: "PROG: message" (escaped), or
 * with --json one line {"error": {"code": CODE, "message": ..., "command": PROG}}. */
void cli_error(cli *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints an error (its message; with --json an error object with its code's name) on stderr
 * and returns EXIT_FAIL. */
int cli_fail(cli *c, const tq_err *err);
/* Whether argv has --help / -h before any "--". */
int cli_wants_help(int argc, char **argv);
/* Prints the help text of a command on stdout and returns EXIT_OK. */
int cli_help(const char *text);

/* For a command that takes no options: prints a usage error and returns EXIT_USAGE for an
 * argument before "--" that looks like one ("-x", "--x"; a negative number is an argument);
 * EXIT_OK otherwise. */
int cli_no_options(cli *c, int argc, char **argv);

/* Parses the options of a command with getopt_long. Returns the option char, -1 at the end,
 * or '?' after printing an error about an unknown option or a missing argument. */
int cli_getopt(cli *c, int argc, char **argv, const struct option *opts);

/* The value of a KEY=VALUE argument into *out (malloc'd): VALUE itself, or one line of stdin
 * for "-" (its end of line cut; once per command: *stdin_used), or $NAME for "env:NAME". A
 * missing variable or an empty stdin is a usage error naming KEY. Keeps secrets out of argv. */
int cli_value_from(cli *c, const char *key, const char *value, int *stdin_used, char **out);

/* Prints a cJSON value on stdout (pretty), frees it and notes on c that the command printed
 * its JSON; returns EXIT_OK. Commands call it as cli_print_json(v): every command function
 * has its cli *c in scope. */
int cli_json_out(cli *c, cJSON *v);
#define cli_print_json(v) cli_json_out(c, (v))

/* s as it may go to a terminal: s itself when it holds no control character, else an
 * escaped copy (tq_str_escape: \n, \x1b, ...) that stays valid for the next 15 calls. For
 * every text from outside (values, names, messages) printed by a text (not --json) output;
 * JSON output is escaped by cJSON. */
const char *cli_txt(const char *s);
/* The same, keeping \n and \t: multi-line text (a traceback). */
const char *cli_txt_lines(const char *s);

/* The JSON view of an object (sources, attributes, tags, links included). */
cJSON *cli_object_json(const tq_object *o);
/* The human view of an object on stdout. */
void cli_object_print(const tq_object *o);
/* One line for a list: id, type, value, status, score. */
void cli_object_line(const tq_object *o);

/* Walks q with a keyset cursor (limit 0 = all): appends each object's JSON to arr, or prints
 * one line each when arr is NULL. */
int cli_walk_query(cli *c, const tq_query *q, long long limit, cJSON *arr);

/* Parses query options (--object-type --type --status --score-min --score-max --source --tag
 * --attribute NAME[=VALUE] --updated-since) from argv into q. Unknown options are errors.
 * Remaining positional arguments are left at argv[optind...]. */
int cli_query_opts(cli *c, int argc, char **argv, tq_query *q, int *limit);

/* The command groups. */
int cli_cmd_init(cli *c, int argc, char **argv);
int cli_cmd_indicator(cli *c, int argc, char **argv);
int cli_cmd_source(cli *c, int argc, char **argv);
int cli_cmd_collection(cli *c, int argc, char **argv);
int cli_cmd_expire(cli *c, int argc, char **argv);
int cli_cmd_score(cli *c, int argc, char **argv);
int cli_cmd_feed(cli *c, int argc, char **argv);
int cli_cmd_plugin(cli *c, int argc, char **argv);
int cli_cmd_op(cli *c, int argc, char **argv);
int cli_cmd_action(cli *c, int argc, char **argv);
int cli_cmd_workflow(cli *c, int argc, char **argv);
int cli_cmd_serve(cli *c, int argc, char **argv);
int cli_cmd_user(cli *c, int argc, char **argv);
int cli_cmd_client(cli *c, int argc, char **argv);

#endif
