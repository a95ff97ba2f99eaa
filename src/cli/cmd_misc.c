/* cmd_misc.c: `tqhost init`, `tqhost expire`, `tqhost score rule`. */
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

int cli_cmd_init(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost [--db PATH] init\n"
                    "Creates the library file (or brings an existing one to the current "
                    "schema).\nA file that is not a tqhost library is refused and left "
                    "untouched.\n");
  if (argc != 1)
    return cli_usage_error(c, "takes no arguments");
  if (cli_lib(c, 1) == NULL)
    return EXIT_FAIL;
  int version = tq_lib_schema_version(c->lib);
  if (c->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "db", c->db_path);
    cJSON_AddNumberToObject(j, "schema_version", version);
    return cli_print_json(j);
  }
  printf("library %s ready (schema version %d)\n", c->db_path, version);
  return EXIT_OK;
}

int cli_cmd_expire(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost expire\n"
                    "Moves every indicator whose expiration date has passed to Expired.\n");
  if (argc != 1)
    return cli_usage_error(c, "takes no arguments");
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  int64_t n = 0;
  tq_err err;
  if (tq_lib_expire_due(c->lib, tq_time_now(), &n, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "expired", (double)n);
    return cli_print_json(j);
  }
  printf("expired %lld indicators\n", (long long)n);
  return EXIT_OK;
}

static int score_rule(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost score rule NAME[=VALUE] DELTA\n"
                    "An attribute NAME (with VALUE, or any value) adds DELTA (may be negative) "
                    "to the generated score.\n");
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 3)
    return cli_usage_error(c, "needs NAME[=VALUE] DELTA");
  char *name = strdup(argv[1]);
  char *eq = strchr(name, '=');
  char *end = NULL;
  double delta = strtod(argv[2], &end);
  if (end == argv[2] || *end || delta < -10 || delta > 10) {
    free(name);
    return cli_usage_error(c, "DELTA '%s' is not a number in -10..10", argv[2]);
  }
  if (eq)
    *eq = '\0';
  tq_err err;
  int rc = EXIT_OK;
  if (cli_lib(c, 0) == NULL)
    rc = EXIT_FAIL;
  else if (tq_lib_score_rule_put(c->lib, name, eq ? eq + 1 : NULL, delta, &err) != TQ_OK)
    rc = cli_fail(c, &err);
  else if (c->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "attribute", name);
    if (eq)
      cJSON_AddStringToObject(j, "value", eq + 1);
    else
      cJSON_AddNullToObject(j, "value");
    cJSON_AddNumberToObject(j, "delta", delta);
    cli_print_json(j);
  } else
    printf("attribute %s%s%s scores %+g\n", name, eq ? "=" : "", eq ? eq + 1 : "", delta);
  free(name);
  return rc;
}

int cli_cmd_score(cli *c, int argc, char **argv) {
  static const cli_cmd cmds[] = {{"rule", score_rule, "add or change an attribute score rule"},
                                 {NULL, NULL, NULL}};
  return cli_dispatch(c, "score", cmds, argc - 1, argv + 1);
}
