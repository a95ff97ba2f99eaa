/* cmd_source.c: `tqhost source add|list|set`: TLP, score sensitivity, expiration policy and
 * revoked score decrease per source. */
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

static const char SOURCE_HELP[] =
    "usage: tqhost source add|set NAME [--score N] [--expire-days N|never|none]\n"
    "                                [--revoked-decrease N] [--tlp red|amber|green|white]\n"
    "                                [--kind user|feed|plugin]\n"
    "       tqhost source list\n"
    "--score is the source's score sensitivity (0-10): an indicator's generated score is the\n"
    "highest sensitivity among its sources plus attribute rule deltas. --expire-days sets the\n"
    "source's expiration policy; the latest date among sources wins, 'never' wins over all.\n";

static int source_opts(cli *c, int argc, char **argv, tq_source_opts *o) {
  static const struct option opts[] = {{"score", required_argument, 0, 's'},
                                       {"expire-days", required_argument, 0, 'e'},
                                       {"revoked-decrease", required_argument, 0, 'r'},
                                       {"tlp", required_argument, 0, 't'},
                                       {"kind", required_argument, 0, 'k'},
                                       {0, 0, 0, 0}};
  tq_err err;
  long long v;
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    switch (ch) {
    case 's':
      if (tq_parse_int(optarg, 0, 10, &v, "--score", &err))
        return cli_usage_error(c, "%s", err.msg);
      o->score = (int)v;
      break;
    case 'r':
      if (tq_parse_int(optarg, 0, 10, &v, "--revoked-decrease", &err))
        return cli_usage_error(c, "%s", err.msg);
      o->revoked_decrease = (int)v;
      break;
    case 'e':
      if (strcmp(optarg, "never") == 0)
        o->expire_days = TQ_EXPIRE_NEVER;
      else if (strcmp(optarg, "none") == 0)
        o->expire_days = TQ_EXPIRE_NONE;
      else if (tq_parse_int(optarg, 1, 36500, &v, "--expire-days", &err))
        return cli_usage_error(c, "%s (or never, none)", err.msg);
      else
        o->expire_days = (int)v;
      break;
    case 't':
      o->tlp = tq_lib_tlp_from_name(optarg);
      if (o->tlp < 0)
        return cli_usage_error(c, "--tlp: '%s' is not red, amber, green or white", optarg);
      break;
    case 'k': o->kind = optarg; break;
    default: return EXIT_USAGE;
    }
  }
  if (optind + 1 != argc)
    return cli_usage_error(c, "needs exactly one NAME");
  return EXIT_OK;
}

static cJSON *source_json(const tq_source *s) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "name", s->name);
  cJSON_AddStringToObject(j, "kind", s->kind);
  cJSON_AddStringToObject(j, "tlp", tq_lib_tlp_name(s->tlp));
  cJSON_AddNumberToObject(j, "score", s->score);
  if (s->expire_days == TQ_EXPIRE_NEVER)
    cJSON_AddStringToObject(j, "expire_days", "never");
  else if (s->expire_days == TQ_EXPIRE_NONE)
    cJSON_AddNullToObject(j, "expire_days");
  else
    cJSON_AddNumberToObject(j, "expire_days", s->expire_days);
  cJSON_AddNumberToObject(j, "revoked_decrease", s->revoked_decrease);
  cJSON_AddNumberToObject(j, "objects", (double)s->objects);
  return j;
}

static void source_line(const tq_source *s) {
  char exp[16];
  if (s->expire_days == TQ_EXPIRE_NEVER)
    strcpy(exp, "never");
  else if (s->expire_days == TQ_EXPIRE_NONE)
    strcpy(exp, "-");
  else
    snprintf(exp, sizeof exp, "%dd", s->expire_days);
  printf("%-32s %-7s %-6s %5d %8s %8d %9lld\n", cli_txt(s->name), s->kind,
         s->tlp ? tq_lib_tlp_name(s->tlp) : "-", s->score, exp, s->revoked_decrease,
         (long long)s->objects);
}

static int source_put(cli *c, int argc, char **argv, int create) {
  if (cli_wants_help(argc, argv))
    return cli_help(SOURCE_HELP);
  tq_source_opts o;
  tq_source_opts_init(&o);
  int rc = source_opts(c, argc, argv, &o);
  if (rc != EXIT_OK)
    return rc;
  const char *name = argv[optind];
  tq_err err;
  tq_source s;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  if (!create && tq_lib_source_get(c->lib, name, &s, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (tq_lib_source_put(c->lib, name, &o, create, NULL, &err) != TQ_OK ||
      tq_lib_source_get(c->lib, name, &s, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json)
    return cli_print_json(source_json(&s));
  printf("%s source '%s'\n", create ? "added" : "updated", name);
  source_line(&s);
  return EXIT_OK;
}

static int source_add(cli *c, int argc, char **argv) { return source_put(c, argc, argv, 1); }
static int source_set(cli *c, int argc, char **argv) { return source_put(c, argc, argv, 0); }

static int source_list(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(SOURCE_HELP);
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  tq_source *all = NULL;
  size_t n = 0;
  tq_err err;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  if (tq_lib_source_list(c->lib, &all, &n, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
      cJSON_AddItemToArray(arr, source_json(&all[i]));
    cli_print_json(arr);
  } else {
    printf("%-32s %-7s %-6s %5s %8s %8s %9s\n", "name", "kind", "tlp", "score", "expires",
           "revoked", "objects");
    for (size_t i = 0; i < n; i++)
      source_line(&all[i]);
  }
  free(all);
  return EXIT_OK;
}

int cli_cmd_source(cli *c, int argc, char **argv) {
  static const cli_cmd cmds[] = {{"add", source_add, "create a source"},
                                 {"set", source_set, "change a source"},
                                 {"list", source_list, "list sources"},
                                 {NULL, NULL, NULL}};
  return cli_dispatch(c, "source", cmds, argc - 1, argv + 1);
}
