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
    "actions' configuration (password fields are stored sealed like `plugin configure`'s and\n"
    "shown as ********; VALUE - reads it from stdin, env:NAME from $NAME). Times are UTC. `tick` "
    "runs every due workflow once and polls\n"
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
  for (size_t i = 0; i < w->n_settings; i++) /* a password shows as the mask, never sealed */
    cJSON_AddStringToObject(s, w->settings[i].key,
                            w->sealed && w->sealed[i] ? TQ_SECRET_MASK : w->settings[i].value);
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

/* Wipes and frees the values of --set (read by cli_value_from: they may be secrets). */
static void sets_free(tq_lua_kv *sets, size_t n) {
  for (size_t i = 0; i < n; i++) {
    explicit_bzero((char *)sets[i].value, strlen(sets[i].value));
    free((char *)sets[i].value);
  }
}

/* workflow add, with w's arrays given by the caller (which frees the --set values). */
static int wf_add_into(cli *c, int argc, char **argv, tq_workflow *wp) {
  static const struct option opts[] = {{"collection", required_argument, 0, 'c'},
                                       {"action", required_argument, 0, 'a'},
                                       {"set", required_argument, 0, 's'},
                                       {"every", required_argument, 0, 'e'},
                                       {"daily", required_argument, 0, 'd'},
                                       {"weekly", required_argument, 0, 'w'},
                                       {0, 0, 0, 0}};
  tq_workflow w = *wp;
  char **actions = w.actions;
  tq_lua_kv *sets = w.settings;
  const char *every = NULL, *daily = NULL, *wday = NULL, *wtime = NULL;
  int ch, stdin_used = 0;
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
      char *value = NULL;
      int vrc = cli_value_from(c, optarg, eq + 1, &stdin_used, &value);
      if (vrc != EXIT_OK)
        return vrc;
      sets[w.n_settings++] = (tq_lua_kv){.key = optarg, .value = value};
      wp->n_settings = w.n_settings;
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
  char *key_path = tq_plugin_key_path(c->db_path);
  tq_code rc = key_path ? tq_workflow_add(c->lib, &w, key_path, &err)
                        : tq_err_set(&err, TQ_ENOMEM, "out of memory");
  free(key_path);
  if (rc != TQ_OK)
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

static int wf_add(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(WF_HELP);
  char *actions[32];
  tq_lua_kv sets[64];
  tq_workflow w = {.actions = actions, .settings = sets};
  int rc = wf_add_into(c, argc, argv, &w);
  sets_free(sets, w.n_settings);
  return rc;
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
      printf("%-24s %-8s %-28s %-20s %-20s %s ->", cli_txt(all[i]->name),
             all[i]->enabled ? "yes" : "no", cJSON_GetObjectItem(j, "schedule")->valuestring,
             cJSON_GetObjectItem(j, "last_run_at")->valuestring,
             cJSON_GetObjectItem(j, "next_run_at")->valuestring, cli_txt(all[i]->collection));
      for (size_t k = 0; k < all[i]->n_actions; k++)
        printf(" %s", cli_txt(all[i]->actions[k]));
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
    cJSON_AddNumberToObject(j, "skipped", (double)sum->skipped);
    cJSON_AddNumberToObject(j, "seconds", sum->seconds);
    if (rc != TQ_OK)
      cJSON_AddStringToObject(j, "error", err->msg[0] ? err->msg : sum->error);
    cJSON_AddItemToArray(arr, j);
    return;
  }
  if (rc != TQ_OK && sum->run_id == 0) {
    printf("workflow %s: action %s failed: %s\n", cli_txt(w->name), cli_txt(action),
           cli_txt(err->msg));
    return;
  }
  printf("workflow %s: action %s: run %lld %s: %lld items, %lld enriched, %lld not found, "
         "%lld failed, %lld skipped (%.1f s)%s%s\n",
         cli_txt(w->name), cli_txt(action), (long long)sum->run_id, sum->status,
         (long long)sum->total, (long long)sum->enriched, (long long)sum->not_found,
         (long long)sum->failed, (long long)sum->skipped, sum->seconds, sum->error[0] ? ": " : "",
         cli_txt(sum->error));
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
    printf("feed %s: poll failed: %s\n", cli_txt(feed), cli_txt(err->msg));
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
  tq_tick_counts n;
  cJSON *fj = c->json ? cJSON_CreateArray() : NULL, *wj = c->json ? cJSON_CreateArray() : NULL;
  int rc = EXIT_OK;
  tq_action_opts o;
  base_opts(c, &o);
  if (tq_workflow_tick(c->lib, &o, tq_time_now(), on_feed, fj, on_step, wj, &n, &err) != TQ_OK)
    rc = cli_fail(c, &err);
  if (c->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "feeds", fj);
    cJSON_AddItemToObject(j, "workflows", wj);
    cli_print_json(j);
  } else {
    printf("tick: %zu feeds polled (%zu failed), %zu workflows run (%zu actions failed)\n", n.feeds,
           n.feeds_failed, n.workflows, n.actions_failed);
  }
  if (rc == EXIT_OK && (n.feeds_failed || n.actions_failed))
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
      printf("%-12s %s\n", it->string, cli_txt(it->valuestring));
    else if (cJSON_IsBool(it))
      printf("%-12s %s\n", it->string, cJSON_IsTrue(it) ? "yes" : "no");
  }
  printf("%-12s", "actions");
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "actions")) printf(" %s", cli_txt(it->valuestring));
  printf("\n%-12s", "settings");
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "settings"))
      printf(" %s=%s", cli_txt(it->string), cli_txt(it->valuestring));
  printf("\nactivity (newest first)\n");
  cJSON_ArrayForEach(it, log) {
#define N_(k) (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(it, k))
#define S_(k) cJSON_GetStringValue(cJSON_GetObjectItem(it, k))
    printf("  run %lld  %s  %s  %s: %lld items, %lld enriched, %lld not found, %lld failed, "
           "%lld skipped (%.1f s)\n",
           N_("run_id"), S_("started_at"), cli_txt(S_("action")), S_("status"), N_("requested"),
           N_("enriched"), N_("not_found"), N_("failed"), N_("skipped"),
           cJSON_GetNumberValue(cJSON_GetObjectItem(it, "seconds")));
    if (S_("error"))
      printf("    error: %s\n", cli_txt(S_("error")));
#undef N_
#undef S_
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
