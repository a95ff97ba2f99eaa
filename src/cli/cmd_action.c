/* cmd_action.c: `tqhost action list|run|runs|resume`: Actions (actions/<name>.yaml) run in
 * bulk over a data collection or explicit values, their job history, and resuming a run that
 * was interrupted or killed. The work is src/workflow's; this file parses, prints, sums up. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "tqhost/workflow.h"

static const char ACTION_HELP[] =
    "usage: tqhost action list\n"
    "       tqhost action run ACTION (--collection NAME | VALUE... | --retry-failed RUN_ID)\n"
    "                             [--set KEY=VALUE]... [--concurrency N] [--rate N] [--dry-run]\n"
    "                             [--max-auth-failures N]\n"
    "       tqhost action runs [RUN_ID [--failed]] [--limit N]\n"
    "       tqhost action resume RUN_ID [--set KEY=VALUE]... [--concurrency N] [--rate N]\n"
    "\n"
    "Actions are actions/<name>.yaml ($TQHOST_ACTIONS). A run walks the collection in id order,\n"
    "commits results in batches with a checkpoint and can be resumed after a crash or Ctrl-C.\n"
    "  --set KEY=VALUE  a setting of the action for this run (a password is recorded sealed);\n"
    "                   VALUE - reads it from stdin, env:NAME from $NAME\n"
    "  --concurrency N  lookups at once (default: the action's)\n"
    "  --rate N         requests per second (default: the action's network.rate_limit)\n"
    "  --dry-run        run the lookups but write nothing (no run is recorded)\n"
    "  --retry-failed RUN_ID  a new run over the items that failed in run RUN_ID, with its\n"
    "                   settings\n"
    "  --max-auth-failures N  stop the run after N answers 401/403 in a row (default 5)\n"
    "  --failed         (runs RUN_ID) the failed items: value and reason, one a line\n"
    "Objects whose type the action does not accept are counted skipped, not failed.\n"
    "Exit status: 0 when the run is done and no item failed; 1 when an item failed, or the\n"
    "run failed, was interrupted or could not start; 2 for a usage error.\n";

/* ---- list ---------------------------------------------------------------------------------------
 */

static cJSON *action_json(const tq_action *a) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "name", tq_action_name(a));
  cJSON_AddStringToObject(j, "label", tq_action_label(a));
  cJSON_AddStringToObject(j, "version", tq_action_version(a));
  cJSON_AddStringToObject(j, "plugin", tq_action_plugin_name(a));
  cJSON_AddStringToObject(j, "description", tq_action_description(a));
  size_t n = 0;
  const char *const *types = tq_action_indicator_types(a, &n);
  cJSON *arr = cJSON_AddArrayToObject(j, "indicator_types");
  for (size_t i = 0; i < n; i++)
    cJSON_AddItemToArray(arr, cJSON_CreateString(types[i]));
  cJSON_AddNumberToObject(j, "concurrency", tq_action_concurrency(a));
  cJSON_AddNumberToObject(j, "batch_size", tq_action_batch_size(a));
  const tq_plugin_field *f = tq_action_fields(a, &n);
  cJSON *cfg = cJSON_AddArrayToObject(j, "config");
  for (size_t i = 0; i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", f[i].key);
    cJSON_AddStringToObject(o, "type", tq_field_type_name(f[i].type));
    if (f[i].def)
      cJSON_AddStringToObject(o, "default", f[i].def);
    cJSON_AddItemToArray(cfg, o);
  }
  return j;
}

static void action_print(const tq_action *a) {
  size_t n = 0;
  const char *const *types = tq_action_indicator_types(a, &n);
  printf("%-28s %-8s %-20s  %s\n", tq_action_name(a), tq_action_version(a),
         tq_action_plugin_name(a), tq_action_label(a));
  printf("  accepts:");
  for (size_t i = 0; i < n; i++)
    printf("%s %s", i ? "," : "", types[i]);
  printf("%s\n  settings:", n ? "" : " any indicator");
  const tq_plugin_field *f = tq_action_fields(a, &n);
  for (size_t i = 0; i < n; i++) {
    const char *shown = f[i].type == TQ_FIELD_PASSWORD ? "(secret)" : f[i].def ? f[i].def : "";
    printf(" %s=%s", f[i].key, shown);
  }
  printf("\n");
}

static int act_list(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(ACTION_HELP);
  if (argc > 1)
    return cli_usage_error(c, "takes no arguments");
  tq_action **list = NULL;
  size_t n = 0;
  tq_diags diags = {0};
  tq_err err;
  if (tq_action_list(tq_action_dir(), &list, &n, &diags, &err) != TQ_OK) {
    tq_diags_free(&diags);
    return cli_fail(c, &err);
  }
  for (size_t i = 0; i < diags.n; i++)
    cli_error(c, "skipped", "skipped: %s", diags.msgs[i]);
  cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
  for (size_t i = 0; i < n; i++) {
    if (arr)
      cJSON_AddItemToArray(arr, action_json(list[i]));
    else
      action_print(list[i]);
  }
  int rc = diags.n ? EXIT_FAIL : EXIT_OK;
  tq_diags_free(&diags);
  tq_action_list_free(list, n);
  if (arr)
    cli_print_json(arr);
  return rc;
}

/* ---- run and resume -----------------------------------------------------------------------------
 */

typedef struct run_args {
  tq_action_opts o;
  tq_lua_kv *sets;
  size_t n_sets;
  const char **values;
} run_args;

static void run_args_free(run_args *ra) {
  for (size_t i = 0; i < ra->n_sets; i++) { /* read by cli_value_from: may be a secret */
    explicit_bzero((char *)ra->sets[i].value, strlen(ra->sets[i].value));
    free((char *)ra->sets[i].value);
  }
  free(ra->sets);
  free(ra->values);
}

/* Parses the options common to run and resume into ra; positional arguments stay. */
static int run_opts(cli *c, int argc, char **argv, run_args *ra) {
  static const struct option opts[] = {{"collection", required_argument, NULL, 'c'},
                                       {"set", required_argument, NULL, 's'},
                                       {"concurrency", required_argument, NULL, 'n'},
                                       {"rate", required_argument, NULL, 'r'},
                                       {"dry-run", no_argument, NULL, 'd'},
                                       {"retry-failed", required_argument, NULL, 'R'},
                                       {"max-auth-failures", required_argument, NULL, 'A'},
                                       {NULL, 0, NULL, 0}};
  if ((ra->sets = calloc((size_t)argc, sizeof *ra->sets)) == NULL)
    return EXIT_FAIL;
  int ch, stdin_used = 0;
  long long n;
  tq_err err;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    char *eq = NULL, *value = NULL;
    switch (ch) {
    case 'c': ra->o.collection = optarg; break;
    case 'd': ra->o.dry_run = 1; break;
    case 's':
      if ((eq = strchr(optarg, '=')) == NULL || eq == optarg)
        return cli_usage_error(c, "--set needs KEY=VALUE, got '%s'", optarg);
      *eq = '\0';
      if ((n = cli_value_from(c, optarg, eq + 1, &stdin_used, &value)) != EXIT_OK)
        return (int)n;
      ra->sets[ra->n_sets++] = (tq_lua_kv){optarg, value};
      break;
    case 'n':
      if (tq_parse_int(optarg, 1, 1024, &n, "--concurrency", &err) != TQ_OK)
        return cli_usage_error(c, "%s", err.msg);
      ra->o.concurrency = (int)n;
      break;
    case 'r':
      if (tq_parse_int(optarg, 1, 1000000, &n, "--rate", &err) != TQ_OK)
        return cli_usage_error(c, "%s", err.msg);
      ra->o.rate_per_s = (double)n;
      break;
    case 'R':
      if (tq_parse_int(optarg, 1, LLONG_MAX, &n, "--retry-failed", &err) != TQ_OK)
        return cli_usage_error(c, "%s", err.msg);
      ra->o.retry_failed = n;
      break;
    case 'A':
      if (tq_parse_int(optarg, 1, 1000000, &n, "--max-auth-failures", &err) != TQ_OK)
        return cli_usage_error(c, "%s", err.msg);
      ra->o.max_auth_failures = (int)n;
      break;
    default: return EXIT_USAGE;
    }
  }
  ra->o.overrides = ra->sets;
  ra->o.n_overrides = ra->n_sets;
  ra->o.db_path = c->db_path;
  ra->o.progress = !c->json;
  return EXIT_OK;
}

static cJSON *reasons_json(const tq_run_reason *r, size_t n) {
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "outcome", r[i].outcome);
    cJSON_AddStringToObject(o, "reason", r[i].reason);
    cJSON_AddNumberToObject(o, "count", (double)r[i].count);
    cJSON_AddNumberToObject(o, "example_id", (double)r[i].example_id);
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

static void reasons_print(const tq_run_reason *r, size_t n, const char *outcome,
                          const char *title) {
  int shown = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(r[i].outcome, outcome) != 0)
      continue;
    if (!shown++)
      printf("  %s:\n", title);
    printf("    %8lld  %s\n", (long long)r[i].count, cli_txt(r[i].reason));
  }
}

/* The summary of a run: counts, and the reasons of failures grouped. */
static int print_summary(cli *c, const tq_run_summary *s) {
  tq_run_reason *reasons = NULL;
  size_t n = 0;
  tq_err err;
  if (s->run_id > 0 && tq_run_reasons(c->lib, s->run_id, &reasons, &n, &err) != TQ_OK)
    cli_fail(c, &err);
  if (c->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "run_id", (double)s->run_id);
    cJSON_AddStringToObject(j, "status", s->status);
    cJSON_AddNumberToObject(j, "total", (double)s->total);
    cJSON_AddNumberToObject(j, "enriched", (double)s->enriched);
    cJSON_AddNumberToObject(j, "not_found", (double)s->not_found);
    cJSON_AddNumberToObject(j, "failed", (double)s->failed);
    cJSON_AddNumberToObject(j, "skipped", (double)s->skipped);
    cJSON_AddNumberToObject(j, "seconds", s->seconds);
    if (s->error[0])
      cJSON_AddStringToObject(j, "error", s->error);
    cJSON_AddItemToObject(j, "reasons", reasons_json(reasons, n));
    cli_print_json(j);
  } else {
    int64_t done = s->enriched + s->not_found + s->failed + s->skipped;
    printf("run %lld: %s, %lld of %lld items in %.1f s\n", (long long)s->run_id, s->status,
           (long long)done, (long long)s->total, s->seconds);
    printf("  enriched   %10lld\n  not found  %10lld\n  failed     %10lld\n"
           "  skipped    %10lld\n",
           (long long)s->enriched, (long long)s->not_found, (long long)s->failed,
           (long long)s->skipped);
    reasons_print(reasons, n, "failed", "failed, by reason");
    reasons_print(reasons, n, "skipped", "skipped, by reason");
    if (s->error[0])
      printf("  error: %s\n", cli_txt(s->error));
    if (strcmp(s->status, "interrupted") == 0 || strcmp(s->status, "failed") == 0)
      printf("  resume with: tqhost action resume %lld\n", (long long)s->run_id);
    if (s->failed > 0 && s->run_id > 0)
      printf("  failed items: tqhost action runs %lld --failed; retry them: tqhost action run "
             "ACTION --retry-failed %lld\n",
             (long long)s->run_id, (long long)s->run_id);
  }
  tq_run_reasons_free(reasons, n);
  /* 0 only when every item was enriched, not found or skipped. */
  return strcmp(s->status, "done") == 0 && s->failed == 0 ? EXIT_OK : EXIT_FAIL;
}

static int act_run(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(ACTION_HELP);
  run_args ra;
  memset(&ra, 0, sizeof ra);
  tq_action *a = NULL;
  tq_err err;
  int rc = run_opts(c, argc, argv, &ra);
  if (rc == EXIT_OK && optind >= argc)
    rc = cli_usage_error(c, "needs an ACTION");
  if (rc == EXIT_OK) {
    ra.o.n_values = (size_t)(argc - optind - 1);
    ra.o.values = (const char *const *)&argv[optind + 1];
    if ((ra.o.collection != NULL) + (ra.o.n_values != 0) + (ra.o.retry_failed > 0) != 1)
      rc = cli_usage_error(c, "give --collection NAME, VALUES or --retry-failed RUN_ID (one of "
                              "them)");
  }
  if (rc == EXIT_OK && tq_action_find(tq_action_dir(), argv[optind], &a, &err) != TQ_OK)
    rc = cli_fail(c, &err);
  if (rc == EXIT_OK && cli_lib(c, 0) == NULL)
    rc = EXIT_FAIL;
  tq_run_summary sum;
  if (rc == EXIT_OK && tq_action_run(c->lib, a, &ra.o, &sum, &err) != TQ_OK)
    rc = cli_fail(c, &err);
  if (rc == EXIT_OK)
    rc = print_summary(c, &sum);
  tq_action_free(a);
  run_args_free(&ra);
  return rc;
}

static int parse_run_id(cli *c, const char *s, int64_t *id) {
  long long n;
  tq_err err;
  if (tq_parse_int(s, 1, LLONG_MAX, &n, "RUN_ID", &err) != TQ_OK)
    return cli_usage_error(c, "%s", err.msg);
  *id = n;
  return EXIT_OK;
}

static int act_resume(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(ACTION_HELP);
  run_args ra;
  memset(&ra, 0, sizeof ra);
  int64_t id = 0;
  tq_err err;
  int rc = run_opts(c, argc, argv, &ra);
  if (rc == EXIT_OK && (ra.o.collection || ra.o.dry_run || ra.o.retry_failed))
    rc = cli_usage_error(c, "a resume keeps the run's input and always writes");
  if (rc == EXIT_OK && optind + 1 != argc)
    rc = cli_usage_error(c, "needs exactly one RUN_ID");
  if (rc == EXIT_OK)
    rc = parse_run_id(c, argv[optind], &id);
  if (rc == EXIT_OK && cli_lib(c, 0) == NULL)
    rc = EXIT_FAIL;
  tq_run_summary sum;
  if (rc == EXIT_OK && tq_action_resume(c->lib, id, &ra.o, &sum, &err) != TQ_OK)
    rc = cli_fail(c, &err);
  if (rc == EXIT_OK)
    rc = print_summary(c, &sum);
  run_args_free(&ra);
  return rc;
}

/* ---- runs ---------------------------------------------------------------------------------------
 */

static cJSON *info_json(const tq_run_info *r) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "id", (double)r->id);
  cJSON_AddStringToObject(j, "action", r->action);
  cJSON_AddStringToObject(j, "status", r->status);
  cJSON_AddStringToObject(j, "state", r->state);
  cJSON_AddBoolToObject(j, "live", r->live);
  if (r->owner[0])
    cJSON_AddStringToObject(j, "owner", r->owner);
  if (r->retry_of)
    cJSON_AddNumberToObject(j, "retry_of", (double)r->retry_of);
  cJSON_AddStringToObject(j, "input", r->input);
  if (r->workflow_id)
    cJSON_AddNumberToObject(j, "workflow_id", (double)r->workflow_id);
  cJSON_AddNumberToObject(j, "total", (double)r->total);
  cJSON_AddNumberToObject(j, "enriched", (double)r->enriched);
  cJSON_AddNumberToObject(j, "not_found", (double)r->not_found);
  cJSON_AddNumberToObject(j, "failed", (double)r->failed);
  cJSON_AddNumberToObject(j, "skipped", (double)r->skipped);
  cJSON_AddNumberToObject(j, "last_id", (double)r->last_id);
  cJSON_AddNumberToObject(j, "seconds", r->seconds);
  char t[20];
  tq_time_format(r->started_at, t);
  cJSON_AddStringToObject(j, "started_at", t);
  if (r->error[0])
    cJSON_AddStringToObject(j, "error", r->error);
  return j;
}

static void info_line(const tq_run_info *r) {
  char t[20];
  tq_time_format(r->started_at, t);
  printf("%6lld  %-26s %-11s %s  %8lld %8lld %8lld %8lld /%8lld  %8.1fs  %s\n", (long long)r->id,
         r->action, r->state, t, (long long)r->enriched, (long long)r->not_found,
         (long long)r->failed, (long long)r->skipped, (long long)r->total, r->seconds,
         cli_txt(r->input));
  if (r->error[0])
    printf("        %s\n", cli_txt(r->error));
}

static int run_detail(cli *c, int64_t id) {
  tq_run_info info;
  tq_run_reason *reasons = NULL;
  size_t n = 0;
  tq_err err;
  if (tq_run_get(c->lib, id, &info, &err) != TQ_OK ||
      tq_run_reasons(c->lib, id, &reasons, &n, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json) {
    cJSON *j = info_json(&info);
    cJSON_AddItemToObject(j, "reasons", reasons_json(reasons, n));
    cli_print_json(j);
  } else {
    info_line(&info);
    reasons_print(reasons, n, "failed", "failed, by reason");
    reasons_print(reasons, n, "skipped", "skipped, by reason");
    reasons_print(reasons, n, "not_found", "not found");
  }
  tq_run_reasons_free(reasons, n);
  return EXIT_OK;
}

/* The failed items of a run: "VALUE<TAB>TYPE<TAB>REASON" lines, or a JSON list. */
static int run_failed(cli *c, int64_t id) {
  tq_run_info info;
  tq_run_item_info *items = NULL;
  size_t n = 0;
  tq_err err;
  if (tq_run_get(c->lib, id, &info, &err) != TQ_OK ||
      tq_run_items(c->lib, id, "failed", &items, &n, &err) != TQ_OK)
    return cli_fail(c, &err);
  cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
  for (size_t i = 0; i < n; i++) {
    if (arr) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddNumberToObject(o, "object_id", (double)items[i].object_id);
      cJSON_AddStringToObject(o, "type", items[i].indicator_type);
      cJSON_AddStringToObject(o, "value", items[i].value);
      cJSON_AddStringToObject(o, "reason", items[i].reason);
      cJSON_AddItemToArray(arr, o);
    } else {
      printf("%s\t%s\t%s\n", items[i].value[0] ? items[i].value : "(deleted)",
             items[i].indicator_type, items[i].reason);
    }
  }
  tq_run_items_free(items, n);
  return arr ? cli_print_json(arr) : EXIT_OK;
}

static int act_runs(cli *c, int argc, char **argv) {
  static const struct option opts[] = {{"limit", required_argument, NULL, 'l'},
                                       {"failed", no_argument, NULL, 'f'},
                                       {NULL, 0, NULL, 0}};
  int failed = 0;
  if (cli_wants_help(argc, argv))
    return cli_help(ACTION_HELP);
  long long limit = 20;
  int ch;
  tq_err err;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    if (ch == 'f') {
      failed = 1;
      continue;
    }
    if (ch != 'l')
      return EXIT_USAGE;
    if (tq_parse_int(optarg, 0, 1000000, &limit, "--limit", &err) != TQ_OK)
      return cli_usage_error(c, "%s", err.msg);
  }
  if (optind + 1 < argc)
    return cli_usage_error(c, "takes at most one RUN_ID");
  if (failed && optind == argc)
    return cli_usage_error(c, "--failed needs a RUN_ID");
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  if (optind < argc) {
    int64_t id = 0;
    int rc = parse_run_id(c, argv[optind], &id);
    if (rc != EXIT_OK)
      return rc;
    return failed ? run_failed(c, id) : run_detail(c, id);
  }
  tq_run_info *runs = NULL;
  size_t n = 0;
  if (tq_run_list(c->lib, (size_t)limit, &runs, &n, &err) != TQ_OK)
    return cli_fail(c, &err);
  cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
  if (!arr)
    printf("%6s  %-26s %-11s %-19s  %8s %8s %8s %8s /%8s  %9s  %s\n", "id", "action", "status",
           "started", "enriched", "notfound", "failed", "skipped", "total", "duration", "input");
  for (size_t i = 0; i < n; i++) {
    if (arr)
      cJSON_AddItemToArray(arr, info_json(&runs[i]));
    else
      info_line(&runs[i]);
  }
  free(runs);
  return arr ? cli_print_json(arr) : EXIT_OK;
}

static int act_check(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost action check FILE\n"
                    "Validates the action file FILE against schemas/action.schema.json and its\n"
                    "plugin: the script returns the entry (and input.batch_entry), every\n"
                    "input.indicator_types is one the plugin's operation accepts, a setting\n"
                    "that is a plugin config field has the field's type. Prints OK, or every\n"
                    "error as FILE:LINE:COLUMN: FIELD: WHAT (exit status 1).\n");
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 2)
    return cli_usage_error(c, "needs exactly one action file");
  tq_diags d = {0};
  tq_err err;
  if (tq_action_check(argv[1], NULL, &d, &err) != TQ_OK && d.n == 0)
    tq_diags_add(&d, "%s", err.msg);
  int rc = d.n ? EXIT_FAIL : EXIT_OK;
  if (c->json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", d.n == 0);
    cJSON *errs = cJSON_AddArrayToObject(o, "errors");
    for (size_t i = 0; i < d.n; i++)
      cJSON_AddItemToArray(errs, cJSON_CreateString(d.msgs[i]));
    cli_print_json(o);
  } else if (d.n == 0) {
    printf("OK %s\n", argv[1]);
  } else {
    for (size_t i = 0; i < d.n; i++)
      fprintf(stderr, "%s\n", d.msgs[i]);
    fprintf(stderr, "%s: %zu error%s\n", c->prog, d.n, d.n == 1 ? "" : "s");
  }
  tq_diags_free(&d);
  return rc;
}

int cli_cmd_action(cli *c, int argc, char **argv) {
  static const cli_cmd cmds[] = {
      {"list", act_list, "the actions of the actions folder"},
      {"check", act_check, "validate an action file against its plugin"},
      {"run", act_run, "run an action over a collection or values"},
      {"runs", act_runs, "the history of runs (one run in detail with RUN_ID)"},
      {"resume", act_resume, "continue an interrupted or killed run"},
      {NULL, NULL, NULL},
  };
  return cli_dispatch(c, "action", cmds, argc - 1, argv + 1);
}
