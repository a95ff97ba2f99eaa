/* cmd_indicator.c: `tqhost indicator add|get|list|import|set|types`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

#define DEFAULT_SOURCE "Analyst"

static const char ADD_HELP[] =
    "usage: tqhost indicator add VALUE [--type T] [--source S] [--status S]\n"
    "                            [--attribute NAME=VALUE]... [--tag T]... [--description D]\n"
    "Adds an indicator (or merges into the one with the same type and canonical value).\n"
    "The type is detected when not given; the default source is '" DEFAULT_SOURCE "'.\n";

/* Collected options of add and set. */
typedef struct ind_opts {
  const char *type, *source, *status, *description;
  const char *score, *expires; /* set only */
  tq_attr_in attrs[64];
  size_t n_attrs;
  const char *tags[64];
  size_t n_tags;
} ind_opts;

static int parse_attr(cli *c, ind_opts *o, char *arg) {
  char *eq = strchr(arg, '=');
  if (eq == NULL || eq == arg)
    return cli_usage_error(c, "--attribute '%s' is not NAME=VALUE", arg);
  if (o->n_attrs == sizeof o->attrs / sizeof o->attrs[0])
    return cli_usage_error(c, "too many --attribute options (64 at most)");
  *eq = '\0';
  o->attrs[o->n_attrs++] = (tq_attr_in){.name = arg, .value = eq + 1};
  return EXIT_OK;
}

/* Parses the options of add and set (each passes the subset it accepts) into o, then checks
 * that exactly one VALUE follows. */
static int ind_opts_parse(cli *c, int argc, char **argv, const struct option *opts, ind_opts *o) {
  int ch, rc;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    switch (ch) {
    case 't': o->type = optarg; break;
    case 's': o->source = optarg; break;
    case 'S': o->status = optarg; break;
    case 'd': o->description = optarg; break;
    case 'c': o->score = optarg; break;
    case 'e': o->expires = optarg; break;
    case 'a':
      if ((rc = parse_attr(c, o, optarg)) != EXIT_OK)
        return rc;
      break;
    case 'g':
      if (o->n_tags == 64)
        return cli_usage_error(c, "too many --tag options (64 at most)");
      o->tags[o->n_tags++] = optarg;
      break;
    default: return EXIT_USAGE;
    }
  }
  if (optind + 1 != argc)
    return cli_usage_error(c, "needs exactly one VALUE");
  return EXIT_OK;
}

static int print_object(cli *c, int64_t id) {
  tq_object *o = NULL;
  tq_err err;
  if (tq_lib_object_get(c->lib, id, &o, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json)
    cli_print_json(cli_object_json(o));
  else
    cli_object_print(o);
  tq_object_free(o);
  return EXIT_OK;
}

static int ind_add(cli *c, int argc, char **argv) {
  static const struct option opts[] = {{"type", required_argument, 0, 't'},
                                       {"source", required_argument, 0, 's'},
                                       {"status", required_argument, 0, 'S'},
                                       {"attribute", required_argument, 0, 'a'},
                                       {"tag", required_argument, 0, 'g'},
                                       {"description", required_argument, 0, 'd'},
                                       {0, 0, 0, 0}};
  if (cli_wants_help(argc, argv))
    return cli_help(ADD_HELP);
  ind_opts o = {.source = DEFAULT_SOURCE};
  int rc = ind_opts_parse(c, argc, argv, opts, &o);
  if (rc != EXIT_OK)
    return rc;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  const char *srcs[1] = {o.source};
  tq_object_in in = {.indicator_type = o.type,
                     .value = argv[optind],
                     .status = o.status,
                     .description = o.description,
                     .sources = srcs,
                     .n_sources = 1,
                     .attrs = o.attrs,
                     .n_attrs = o.n_attrs,
                     .tags = o.tags,
                     .n_tags = o.n_tags};
  int64_t id = 0;
  int created = 0;
  tq_err err;
  if (tq_lib_object_put(c->lib, &in, &id, &created, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (!c->json)
    printf("%s indicator %lld\n", created ? "added" : "merged into", (long long)id);
  return print_object(c, id);
}

/* Finds VALUE (argv[optind]) with an optional --type; prints an error when absent. */
static int find_value(cli *c, const char *type, const char *value, int64_t *id) {
  tq_err err;
  if (tq_lib_object_find(c->lib, NULL, type, value, id, &err) != TQ_OK)
    return cli_fail(c, &err);
  return EXIT_OK;
}

static int ind_get(cli *c, int argc, char **argv) {
  static const struct option opts[] = {{"type", required_argument, 0, 't'}, {0, 0, 0, 0}};
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost indicator get VALUE [--type T]\n"
                    "Shows an indicator with its score, expiration, sources, attributes, tags "
                    "and related objects.\n");
  const char *type = NULL;
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    if (ch != 't')
      return EXIT_USAGE;
    type = optarg;
  }
  if (optind + 1 != argc)
    return cli_usage_error(c, "needs exactly one VALUE");
  int64_t id = 0;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  int rc = find_value(c, type, argv[optind], &id);
  return rc == EXIT_OK ? print_object(c, id) : rc;
}

/* Prints the query's objects: a JSON array with --json, else a header and one line each. */
static int print_query(cli *c, const tq_query *q, int limit) {
  cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
  if (!c->json)
    printf("%8s  %-14s %-12s %5s  %s\n", "id", "type", "status", "score", "value");
  int rc = cli_walk_query(c, q, limit, arr);
  if (arr == NULL)
    return rc;
  if (rc == EXIT_OK)
    return cli_print_json(arr);
  cJSON_Delete(arr);
  return rc;
}

static const char LIST_HELP[] =
    "usage: tqhost indicator list [--type T[,T...]] [--status S[,S...]] [--score-min N]\n"
    "                             [--score-max N] [--source S] [--tag T]\n"
    "                             [--attribute NAME[=VALUE]] [--updated-since TIME] [--limit N]\n"
    "Lists indicators in id order (default limit 100; --limit 0 for all).\n";

static int ind_list(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(LIST_HELP);
  tq_query q;
  tq_query_init(&q);
  int limit = 100;
  int rc = cli_query_opts(c, argc, argv, &q, &limit);
  if (rc == EXIT_OK && optind != argc)
    rc = cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
  if (rc == EXIT_OK && cli_lib(c, 0) == NULL)
    rc = EXIT_FAIL;
  tq_err err;
  if (rc == EXIT_OK && tq_query_validate(c->lib, &q, &err) != TQ_OK)
    rc = cli_fail(c, &err);
  if (rc == EXIT_OK)
    rc = print_query(c, &q, limit);
  tq_query_free(&q);
  return rc;
}

static const char SET_HELP[] =
    "usage: tqhost indicator set VALUE [--type T] [--status S] [--score N|generated]\n"
    "                            [--expires TIME|never|policy] [--attribute NAME=VALUE]...\n"
    "                            [--tag T]... [--source S]\n"
    "Changes an indicator: status, manual score (or back to generated), a per-indicator\n"
    "expiration exception (or back to the sources' policies), attributes, tags.\n";

static int apply_set(cli *c, int64_t id, const ind_opts *o, tq_err *err) {
  const char *score = o->score, *expires = o->expires;
  long long v;
  if (o->status) {
    int s = tq_lib_status_from_name(o->status);
    if (s == 0)
      return tq_err_set(err, TQ_EINVAL, "'%s' is not a status", o->status);
    if (tq_lib_status_set(c->lib, id, s, err) != TQ_OK)
      return err->code;
  }
  if (score) {
    if (strcmp(score, "generated") == 0)
      v = -1;
    else if (tq_parse_int(score, 0, 10, &v, "--score", err) != TQ_OK)
      return err->code;
    if (tq_lib_score_set(c->lib, id, (int)v, err) != TQ_OK)
      return err->code;
  }
  if (expires) {
    int64_t when = TQ_EXPIRE_NONE;
    if (strcmp(expires, "never") == 0)
      when = TQ_EXPIRE_NEVER;
    else if (strcmp(expires, "policy") != 0 && tq_time_parse(expires, &when, NULL, err) != TQ_OK)
      return err->code;
    if (tq_lib_expire_exception_set(c->lib, id, when, err) != TQ_OK)
      return err->code;
  }
  for (size_t i = 0; i < o->n_attrs; i++) {
    tq_attr_in a = o->attrs[i];
    a.source = o->source;
    if (tq_lib_attribute_add(c->lib, id, &a, err) != TQ_OK)
      return err->code;
  }
  for (size_t i = 0; i < o->n_tags; i++)
    if (tq_lib_tag_add(c->lib, id, o->tags[i], err) != TQ_OK)
      return err->code;
  return TQ_OK;
}

static int ind_set(cli *c, int argc, char **argv) {
  static const struct option opts[] = {
      {"type", required_argument, 0, 't'},      {"status", required_argument, 0, 'S'},
      {"score", required_argument, 0, 'c'},     {"expires", required_argument, 0, 'e'},
      {"attribute", required_argument, 0, 'a'}, {"tag", required_argument, 0, 'g'},
      {"source", required_argument, 0, 's'},    {0, 0, 0, 0}};
  if (cli_wants_help(argc, argv))
    return cli_help(SET_HELP);
  ind_opts o = {.source = DEFAULT_SOURCE};
  int rc = ind_opts_parse(c, argc, argv, opts, &o);
  if (rc != EXIT_OK)
    return rc;
  int64_t id = 0;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  if ((rc = find_value(c, o.type, argv[optind], &id)) != EXIT_OK)
    return rc;
  tq_err err;
  if (apply_set(c, id, &o, &err) != TQ_OK)
    return cli_fail(c, &err);
  return print_object(c, id);
}

static int ind_types(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost indicator types\n"
                    "Lists the indicator types (ThreatQ's names) and their class.\n");
  if (argc > 1)
    return cli_usage_error(c, "takes no arguments");
  cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
  for (size_t i = 0; tq_lib_indicator_type_at(i); i++) {
    const char *klass = NULL;
    const char *name = tq_lib_indicator_type_canon(tq_lib_indicator_type_at(i), &klass);
    if (arr) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "name", name);
      cJSON_AddStringToObject(o, "class", klass);
      cJSON_AddItemToArray(arr, o);
    } else {
      printf("%-18s %s\n", name, klass);
    }
  }
  return arr ? cli_print_json(arr) : EXIT_OK;
}

int cli_cmd_import(cli *c, int argc, char **argv);

int cli_cmd_indicator(cli *c, int argc, char **argv) {
  static const cli_cmd cmds[] = {
      {"add", ind_add, "add or merge one indicator"},
      {"get", ind_get, "show one indicator"},
      {"list", ind_list, "list indicators matching options"},
      {"import", cli_cmd_import, "import a list or a CSV file"},
      {"set", ind_set, "change status, score, expiration, attributes, tags"},
      {"types", ind_types, "the 34 indicator types and their class"},
      {NULL, NULL, NULL}};
  return cli_dispatch(c, "indicator", cmds, argc - 1, argv + 1);
}
