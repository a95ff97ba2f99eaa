/* cmd_workflow.c: `tqhost workflow add|list|show|run|enable|disable|delete|tick`. */
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "tqhost/feed.h"
#include "tqhost/workflow.h"

static const char WF_HELP[] =
    "usage: tqhost workflow add NAME --collection C --action A [--action B]...\n"
    "                           [--set KEY=VALUE]... [--every 1h|6h|24h|2d|14d|30d |\n"
    "                            --daily HH:MM | --weekly DAY HH:MM]\n"
    "       tqhost workflow list | show NAME | run NAME | enable NAME | disable NAME |\n"
    "                       delete NAME | tick\n"
    "A workflow runs its actions in order over its data collection; --set overrides the\n"
    "actions' configuration. Times are UTC. `tick` runs every due workflow once and polls\n"
    "every due feed (run it from cron, e.g. every minute).\n";

static void time_text(int64_t t, char out[20]) {
  if (t)
    tq_time_format(t, out);
  else
    strcpy(out, "-");
}

static cJSON *wf_json(const tq_workflow *w) {
  cJSON *j = cJSON_CreateObject();
  char buf[64];
  cJSON_AddStringToObject(j, "name", w->name);
  cJSON_AddStringToObject(j, "collection", w->collection);
  cJSON *a = cJSON_AddArrayToObject(j, "actions");
  for (size_t i = 0; i < w->n_actions; i++)
    cJSON_AddItemToArray(a, cJSON_CreateString(w->actions[i]));
  cJSON *s = cJSON_AddObjectToObject(j, "settings");
  for (size_t i = 0; i < w->n_settings; i++)
    cJSON_AddStringToObject(s, w->settings[i].key, w->settings[i].value);
  tq_schedule_describe(&w->schedule, buf, sizeof buf);
  cJSON_AddStringToObject(j, "schedule", buf);
  cJSON_AddBoolToObject(j, "enabled", w->enabled);
  char t[20];
  time_text(w->last_run_at, t);
  cJSON_AddStringToObject(j, "last_run_at", t);
  time_text(w->enabled ? w->next_run_at : 0, t);
  cJSON_AddStringToObject(j, "next_run_at", t);
  return j;
}

static int wf_add(cli *c, int argc, char **argv) {
  static const struct option opts[] = {{"collection", required_argument, 0, 'c'},
                                       {"action", required_argument, 0, 'a'},
                                       {"set", required_argument, 0, 's'},
                                       {"every", required_argument, 0, 'e'},
                                       {"daily", required_argument, 0, 'd'},
                                       {"weekly", required_argument, 0, 'w'},
                                       {0, 0, 0, 0}};
  if (cli_wants_help(argc, argv))
    return cli_help(WF_HELP);
  char *actions[32];
  tq_lua_kv sets[64];
  tq_workflow w = {.actions = actions, .settings = sets};
  const char *every = NULL, *daily = NULL, *wday = NULL, *wtime = NULL;
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    switch (ch) {
    case 'c': w.collection = optarg; break;
    case 'a':
      if (w.n_actions == 32)
        return cli_usage_error(c, "too many --action options (32 at most)");
      actions[w.n_actions++] = optarg;
      break;
    case 's': {
      char *eq = strchr(optarg, '=');
      if (eq == NULL || eq == optarg)
        return cli_usage_error(c, "--set '%s' is not KEY=VALUE", optarg);
      if (w.n_settings == 64)
        return cli_usage_error(c, "too many --set options (64 at most)");
      *eq = '\0';
      sets[w.n_settings++] = (tq_lua_kv){.key = optarg, .value = eq + 1};
      break;
    }
    case 'e': every = optarg; break;
    case 'd': daily = optarg; break;
    case 'w':
      wday = optarg;
      if (optind >= argc)
        return cli_usage_error(c, "--weekly needs DAY HH:MM");
      wtime = argv[optind++];
      break;
    default: return EXIT_USAGE;
    }
  }
  if (optind + 1 != argc)
    return cli_usage_error(c, "needs exactly one NAME");
  if (w.collection == NULL)
    return cli_usage_error(c, "--collection is required");
  w.name = argv[optind];
  tq_err err;
  if (tq_schedule_from_cli(every, daily, wday, wtime, &w.schedule, &err) != TQ_OK)
    return cli_usage_error(c, "%s", err.msg);
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  if (tq_workflow_add(c->lib, &w, &err) != TQ_OK)
    return cli_fail(c, &err);
  tq_workflow *back = NULL;
  if (tq_workflow_get(c->lib, w.name, &back, &err) != TQ_OK)
    return cli_fail(c, &err);
  cJSON *j = wf_json(back);
  tq_workflow_free(back);
  if (c->json)
    return cli_print_json(j);
  char *s = cJSON_PrintUnformatted(j);
  printf("added workflow '%s': %s\n", w.name, s);
  free(s);
  cJSON_Delete(j);
  return EXIT_OK;
}

static int wf_list(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(WF_HELP);
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  tq_workflow **all = NULL;
  size_t n = 0;
  tq_err err;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  if (tq_workflow_list(c->lib, &all, &n, &err) != TQ_OK)
    return cli_fail(c, &err);
  cJSON *arr = cJSON_CreateArray();
  if (!c->json)
    printf("%-24s %-8s %-28s %-20s %-20s %s\n", "name", "enabled", "schedule", "last run",
           "next run", "collection -> actions");
  for (size_t i = 0; i < n; i++) {
    cJSON *j = wf_json(all[i]);
    if (c->json) {
      cJSON_AddItemToArray(arr, j);
    } else {
      printf("%-24s %-8s %-28s %-20s %-20s %s ->", all[i]->name, all[i]->enabled ? "yes" : "no",
             cJSON_GetObjectItem(j, "schedule")->valuestring,
             cJSON_GetObjectItem(j, "last_run_at")->valuestring,
             cJSON_GetObjectItem(j, "next_run_at")->valuestring, all[i]->collection);
      for (size_t k = 0; k < all[i]->n_actions; k++)
        printf(" %s", all[i]->actions[k]);
      printf("\n");
      cJSON_Delete(j);
    }
    tq_workflow_free(all[i]);
  }
  free(all);
  if (c->json)
    return cli_print_json(arr);
  cJSON_Delete(arr);
  return EXIT_OK;
}

/* Prints each action's outcome as a workflow runs. */
static void on_step(void *ud, const tq_workflow *w, const char *action, tq_code rc,
                    const tq_err *err, const tq_run_summary *sum) {
  cJSON *arr = ud;
  if (arr) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "workflow", w->name);
    cJSON_AddStringToObject(j, "action", action);
    cJSON_AddNumberToObject(j, "run_id", (double)sum->run_id);
    cJSON_AddStringToObject(j, "status", rc == TQ_OK ? sum->status : "failed");
    cJSON_AddNumberToObject(j, "total", (double)sum->total);
    cJSON_AddNumberToObject(j, "enriched", (double)sum->enriched);
    cJSON_AddNumberToObject(j, "not_found", (double)sum->not_found);
    cJSON_AddNumberToObject(j, "failed", (double)sum->failed);
    cJSON_AddNumberToObject(j, "seconds", sum->seconds);
    if (rc != TQ_OK)
      cJSON_AddStringToObject(j, "error", err->msg[0] ? err->msg : sum->error);
    cJSON_AddItemToArray(arr, j);
    return;
  }
  if (rc != TQ_OK && sum->run_id == 0) {
    printf("workflow %s: action %s failed: %s\n", w->name, action, err->msg);
    return;
  }
  printf("workflow %s: action %s: run %lld %s: %lld items, %lld enriched, %lld not found, "
         "%lld failed (%.1f s)%s%s\n",
         w->name, action, (long long)sum->run_id, sum->status, (long long)sum->total,
         (long long)sum->enriched, (long long)sum->not_found, (long long)sum->failed, sum->seconds,
         sum->error[0] ? ": " : "", sum->error);
}

static void base_opts(cli *c, tq_action_opts *o) {
  memset(o, 0, sizeof *o);
  o->progress = !c->json;
  o->db_path = c->db_path;
}

static int wf_run(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(WF_HELP);
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 2)
    return cli_usage_error(c, "needs exactly one NAME");
  tq_err err;
  tq_workflow *w = NULL;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  if (tq_workflow_get(c->lib, argv[1], &w, &err) != TQ_OK)
    return cli_fail(c, &err);
  tq_action_opts o;
  base_opts(c, &o);
  cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
  size_t failed = 0;
  tq_code rc = tq_workflow_run(c->lib, w, &o, tq_time_now(), on_step, arr, &failed, &err);
  tq_workflow_free(w);
  if (arr)
    cli_print_json(arr);
  if (rc != TQ_OK)
    return cli_fail(c, &err);
  return failed ? EXIT_FAIL : EXIT_OK;
}

static void on_feed(void *ud, const char *feed, tq_code rc, const tq_err *err,
                    const tq_feed_summary *sum) {
  cJSON *arr = ud;
  if (arr) {
    cJSON *j = tq_feed_summary_json(sum, 1);
    cJSON_AddStringToObject(j, "status", rc == TQ_OK ? "done" : "failed");
    if (rc != TQ_OK)
      cJSON_AddStringToObject(j, "error", err->msg);
    cJSON_AddItemToArray(arr, j);
  } else if (rc != TQ_OK) {
    printf("feed %s: poll failed: %s\n", feed, err->msg);
  } else {
    tq_feed_summary_print(sum, stdout);
  }
}

static int wf_tick(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(WF_HELP);
  if (argc != 1)
    return cli_usage_error(c, "takes no arguments");
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  tq_err err;
  int64_t now = tq_time_now();
  size_t feeds = 0, feeds_failed = 0, runs = 0, failed = 0;
  cJSON *fj = c->json ? cJSON_CreateArray() : NULL, *wj = c->json ? cJSON_CreateArray() : NULL;
  int rc = EXIT_OK;
  if (tq_feed_poll_due(c->lib, NULL, now, on_feed, fj, &feeds, &feeds_failed, &err) != TQ_OK)
    rc = cli_fail(c, &err);
  tq_action_opts o;
  base_opts(c, &o);
  if (rc == EXIT_OK &&
      tq_workflow_tick(c->lib, &o, now, on_step, wj, &runs, &failed, &err) != TQ_OK)
    rc = cli_fail(c, &err);
  if (c->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "feeds", fj);
    cJSON_AddItemToObject(j, "workflows", wj);
    cli_print_json(j);
  } else {
    printf("tick: %zu feeds polled (%zu failed), %zu workflows run (%zu actions failed)\n", feeds,
           feeds_failed, runs, failed);
  }
  if (rc == EXIT_OK && (feeds_failed || failed))
    rc = EXIT_FAIL;
  return rc;
}

static int wf_show(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(WF_HELP);
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 2)
    return cli_usage_error(c, "needs exactly one NAME");
  tq_err err;
  tq_workflow *w = NULL;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  if (tq_workflow_get(c->lib, argv[1], &w, &err) != TQ_OK)
    return cli_fail(c, &err);
  cJSON *j = wf_json(w);
  cJSON *log = cJSON_AddArrayToObject(j, "activity");
  tq_code rc = tq_workflow_activity(c->lib, w->id, 20, log, &err);
  tq_workflow_free(w);
  if (rc != TQ_OK) {
    cJSON_Delete(j);
    return cli_fail(c, &err);
  }
  if (c->json)
    return cli_print_json(j);
  cJSON *it;
  cJSON_ArrayForEach(it, j) {
    if (cJSON_IsString(it))
      printf("%-12s %s\n", it->string, it->valuestring);
    else if (cJSON_IsBool(it))
      printf("%-12s %s\n", it->string, cJSON_IsTrue(it) ? "yes" : "no");
  }
  printf("%-12s", "actions");
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "actions")) printf(" %s", it->valuestring);
  printf("\n%-12s", "settings");
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "settings"))
      printf(" %s=%s", it->string, it->valuestring);
  printf("\nactivity (newest first)\n");
  cJSON_ArrayForEach(it, log) {
    char *s = cJSON_PrintUnformatted(it);
    printf("  %s\n", s);
    free(s);
  }
  cJSON_Delete(j);
  return EXIT_OK;
}

static int wf_toggle(cli *c, int argc, char **argv, int what) {
  if (cli_wants_help(argc, argv))
    return cli_help(WF_HELP);
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 2)
    return cli_usage_error(c, "needs exactly one NAME");
  tq_err err;
  if (cli_lib(c, 0) == NULL)
    return EXIT_FAIL;
  tq_code rc = what < 0 ? tq_workflow_delete(c->lib, argv[1], &err)
                        : tq_workflow_set_enabled(c->lib, argv[1], what, &err);
  if (rc != TQ_OK)
    return cli_fail(c, &err);
  if (!c->json)
    printf("%s workflow '%s'\n", what < 0 ? "deleted" : what ? "enabled" : "disabled", argv[1]);
  return EXIT_OK;
}

static int wf_enable(cli *c, int argc, char **argv) { return wf_toggle(c, argc, argv, 1); }
static int wf_disable(cli *c, int argc, char **argv) { return wf_toggle(c, argc, argv, 0); }
static int wf_delete(cli *c, int argc, char **argv) { return wf_toggle(c, argc, argv, -1); }

int cli_cmd_workflow(cli *c, int argc, char **argv) {
  static const cli_cmd cmds[] = {{"add", wf_add, "create a workflow"},
                                 {"list", wf_list, "list workflows"},
                                 {"show", wf_show, "a workflow and its activity log"},
                                 {"run", wf_run, "run a workflow now"},
                                 {"enable", wf_enable, "enable its schedule"},
                                 {"disable", wf_disable, "disable its schedule"},
                                 {"delete", wf_delete, "delete a workflow"},
                                 {"tick", wf_tick, "run what is due (workflows and feeds)"},
                                 {NULL, NULL, NULL}};
  return cli_dispatch(c, "workflow", cmds, argc - 1, argv + 1);
}
