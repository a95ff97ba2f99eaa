/* cmd_collection.c: `tqhost collection add|list|show|delete`: data collections are saved
 * queries of the library, walked with a keyset cursor. */
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

static const char COLL_HELP[] =
    "usage: tqhost collection add NAME [--object-type T] [--type T[,T...]] [--status S[,S...]]\n"
    "                                  [--score-min N] [--score-max N] [--source S] [--tag T]\n"
    "                                  [--attribute NAME[=VALUE]] [--updated-since TIME]\n"
    "       tqhost collection list\n"
    "       tqhost collection show NAME [--limit N]\n"
    "       tqhost collection delete NAME\n";

static int coll_add(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(COLL_HELP);
  tq_query q;
  tq_query_init(&q);
  int rc = cli_query_opts(c, argc, argv, &q, NULL);
  if (rc == EXIT_OK && optind + 1 != argc)
    rc = cli_usage_error(c, "needs exactly one NAME");
  if (rc == EXIT_OK && cli_lib(c, 0) == NULL)
    rc = EXIT_FAIL;
  tq_err err;
  int64_t n = 0;
  if (rc == EXIT_OK && (tq_lib_collection_put(c->lib, argv[optind], &q, 1, &err) != TQ_OK ||
                        tq_lib_query_count(c->lib, &q, &n, &err) != TQ_OK))
    rc = cli_fail(c, &err);
  if (rc == EXIT_OK) {
    char *json = tq_query_to_json(&q);
    if (c->json) {
      cJSON *j = cJSON_CreateObject();
      cJSON_AddStringToObject(j, "name", argv[optind]);
      cJSON_AddItemToObject(j, "query", cJSON_Parse(json));
      cJSON_AddNumberToObject(j, "count", (double)n);
      cli_print_json(j);
    } else {
      printf("added collection '%s': %s (%lld objects now)\n", argv[optind], json, (long long)n);
    }
    free(json);
  }
  tq_query_free(&q);
  return rc;
}

static int coll_list(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(COLL_HELP);
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  char **names = NULL;
  size_t n = 0;
  tq_err err;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  if (tq_lib_collection_list(c->lib, &names, &n, &err) != TQ_OK)
    return cli_fail(c, &err);
  cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
  for (size_t i = 0; i < n; i++) {
    tq_query q;
    int64_t count = -1;
    char *json = NULL;
    if (tq_lib_collection_get(c->lib, names[i], &q, &err) == TQ_OK) {
      tq_lib_query_count(c->lib, &q, &count, &err);
      json = tq_query_to_json(&q);
      tq_query_free(&q);
    }
    if (arr) {
      cJSON *j = cJSON_CreateObject();
      cJSON_AddStringToObject(j, "name", names[i]);
      cJSON_AddItemToObject(j, "query", json ? cJSON_Parse(json) : cJSON_CreateNull());
      cJSON_AddNumberToObject(j, "count", (double)count);
      cJSON_AddItemToArray(arr, j);
    } else {
      printf("%-28s %8lld  %s\n", cli_txt(names[i]), (long long)count, json ? json : "?");
    }
    free(json);
    free(names[i]);
  }
  free(names);
  return arr ? cli_print_json(arr) : EXIT_OK;
}

static int coll_show(cli *c, int argc, char **argv) {
  static const struct option opts[] = {{"limit", required_argument, 0, 'l'}, {0, 0, 0, 0}};
  if (cli_wants_help(argc, argv))
    return cli_help(COLL_HELP);
  long long limit = 100;
  tq_err err;
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    if (ch != 'l' || tq_parse_int(optarg, 0, 1000000000, &limit, "--limit", &err) != TQ_OK)
      return ch == 'l' ? cli_usage_error(c, "%s", err.msg) : EXIT_USAGE;
  }
  if (optind + 1 != argc)
    return cli_usage_error(c, "needs exactly one NAME");
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  tq_query q;
  if (tq_lib_collection_get(c->lib, argv[optind], &q, &err) != TQ_OK)
    return cli_fail(c, &err);
  int64_t count = 0;
  if (tq_lib_query_count(c->lib, &q, &count, &err) != TQ_OK) {
    tq_query_free(&q);
    return cli_fail(c, &err);
  }
  cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
  if (!arr)
    printf("collection '%s': %lld objects\n", argv[optind], (long long)count);
  int rc = cli_walk_query(c, &q, limit, arr);
  tq_query_free(&q);
  if (arr == NULL)
    return rc;
  if (rc != EXIT_OK) {
    cJSON_Delete(arr);
    return rc;
  }
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "name", argv[optind]);
  cJSON_AddNumberToObject(j, "count", (double)count);
  cJSON_AddItemToObject(j, "objects", arr);
  return cli_print_json(j);
}

static int coll_delete(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(COLL_HELP);
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 2)
    return cli_usage_error(c, "needs exactly one NAME");
  tq_err err;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  if (tq_lib_collection_delete(c->lib, argv[1], &err) != TQ_OK)
    return cli_fail(c, &err);
  if (!c->json)
    printf("deleted collection '%s'\n", argv[1]);
  return EXIT_OK;
}

int cli_cmd_collection(cli *c, int argc, char **argv) {
  static const cli_cmd cmds[] = {{"add", coll_add, "save a query as a collection"},
                                 {"list", coll_list, "list collections with their counts"},
                                 {"show", coll_show, "list a collection's objects"},
                                 {"delete", coll_delete, "delete a collection"},
                                 {NULL, NULL, NULL}};
  return cli_dispatch(c, "collection", cmds, argc - 1, argv + 1);
}
