/* cmd_op.c: `tqhost op list|run`: the operations an analyst can run on one indicator, and
 * running one: resolve plugin and operation, build the object view (from the library or
 * transient), run the script with its config, secrets and network policy, print what it
 * shows, and with --apply write its change set in one transaction. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_int.h"
#include "tqhost/plugin.h"

/* ---- list ------------------------------------------------------------------------------------ */

static void op_types(const tq_plugin_op *op, char *out, size_t n) {
  out[0] = '\0';
  char **v = op->n_indicator_types ? op->indicator_types : op->object_types;
  size_t count = op->n_indicator_types ? op->n_indicator_types : op->n_object_types;
  for (size_t i = 0; i < count; i++) {
    size_t len = strlen(out);
    snprintf(out + len, n - len, "%s%s", i ? ", " : "", v[i]);
  }
}

static cJSON *op_json(const tq_plugin *p, const tq_plugin_op *op) {
  cJSON *o = cJSON_CreateObject();
  char name[300];
  snprintf(name, sizeof name, "%s:%s", p->name, op->name);
  cJSON_AddStringToObject(o, "name", name);
  cJSON_AddStringToObject(o, "label", op->label ? op->label : op->name);
  cJSON *ot = cJSON_AddArrayToObject(o, "object_types");
  for (size_t i = 0; i < op->n_object_types; i++)
    cJSON_AddItemToArray(ot, cJSON_CreateString(op->object_types[i]));
  cJSON *it = cJSON_AddArrayToObject(o, "indicator_types");
  for (size_t i = 0; i < op->n_indicator_types; i++)
    cJSON_AddItemToArray(it, cJSON_CreateString(op->indicator_types[i]));
  return o;
}

static void print_ops(cli *c, tq_plugin **list, size_t n, const char *type) {
  cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
  if (!arr)
    printf("%-32s %-32s %s\n", "operation", "label", "types");
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < list[i]->n_ops; k++) {
      const tq_plugin_op *op = &list[i]->ops[k];
      if (type && !tq_plugin_op_accepts(op, "indicator", type))
        continue;
      char name[300], types[1024];
      snprintf(name, sizeof name, "%s:%s", list[i]->name, op->name);
      op_types(op, types, sizeof types);
      if (arr)
        cJSON_AddItemToArray(arr, op_json(list[i], op));
      else
        printf("%-32s %-32s %s\n", name, op->label ? op->label : op->name, types);
    }
  }
  if (arr)
    cli_print_json(arr);
}

static int op_list(cli *c, int argc, char **argv) {
  static const struct option opts[] = {{"type", required_argument, 0, 't'}, {0, 0, 0, 0}};
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost op list [VALUE] [--type T]\n"
                    "Lists the operations of every plugin (plugin:operation, label, types). With\n"
                    "VALUE, only those that accept its indicator type (from the library, else\n"
                    "detected).\n");
  const char *type = NULL;
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    if (ch != 't')
      return EXIT_USAGE;
    type = optarg;
  }
  if (argc - optind > 1)
    return cli_usage_error(c, "takes at most one VALUE");
  tq_plugin_target t = {0};
  tq_err err;
  tq_lib *lib = access(c->db_path, F_OK) == 0 ? cli_lib(c, 0) : NULL;
  if (optind < argc && tq_plugin_target_resolve(lib, type, argv[optind], &t, &err) != TQ_OK)
    return cli_fail(c, &err);
  tq_plugin **list = NULL;
  size_t n = 0;
  int rc = EXIT_OK;
  if (tq_plugin_list(tq_plugin_dir(), &list, &n, NULL, &err) != TQ_OK)
    rc = cli_fail(c, &err);
  else
    print_ops(c, list, n, optind < argc ? tq_plugin_target_obj(&t)->indicator_type : NULL);
  tq_plugin_list_free(list, n);
  tq_plugin_target_free(&t);
  return rc;
}

/* ---- run: output
 * --------------------------------------------------------------------------------- */

static int by_key(const void *a, const void *b) {
  return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* Calls row(key, leaf, ud) for each leaf of a show value: object keys sorted and joined with
 * '.', arrays of objects indexed, arrays of scalars kept whole (one row). */
typedef void (*show_row_fn)(const char *key, const cJSON *leaf, void *ud);

static void show_walk(const cJSON *v, const char *prefix, show_row_fn row, void *ud) {
  char key[256];
  if (cJSON_IsArray(v) && cJSON_IsObject(v->child)) {
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
      /* a key past 255 bytes is cut, not dropped: it is only a label */
      if (snprintf(key, sizeof key, "%s[%d]", prefix, i++) >= (int)sizeof key)
        key[sizeof key - 1] = '\0';
      show_walk(e, key, row, ud);
    }
    return;
  }
  if (!cJSON_IsObject(v)) {
    row(*prefix ? prefix : "result", v, ud);
    return;
  }
  int n = cJSON_GetArraySize(v), k = 0;
  const cJSON **kids = calloc(n ? (size_t)n : 1, sizeof *kids);
  if (kids == NULL)
    return;
  const cJSON *e;
  cJSON_ArrayForEach(e, v) { kids[k++] = e; }
  qsort(kids, (size_t)n, sizeof *kids, by_key);
  for (k = 0; k < n; k++) {
    if (snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", kids[k]->string) >=
        (int)sizeof key)
      key[sizeof key - 1] = '\0';
    show_walk(kids[k], key, row, ud);
  }
  free(kids);
}

static void widest(const char *key, const cJSON *leaf, void *ud) {
  (void)leaf;
  int *w = ud;
  if ((int)strlen(key) > *w)
    *w = (int)strlen(key);
}

static void print_row(const char *key, const cJSON *v, void *ud) {
  printf("  %-*s  ", *(int *)ud, cli_txt(key));
  if (cJSON_IsString(v)) {
    fputs(cli_txt(v->valuestring), stdout);
  } else if (cJSON_IsArray(v)) {
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
      char *s = cJSON_IsString(e) ? NULL : cJSON_PrintUnformatted(e);
      printf("%s%s", e == v->child ? "" : ", ", s ? s : cli_txt(e->valuestring));
      free(s);
    }
  } else {
    char *s = cJSON_PrintUnformatted(v);
    fputs(s ? s : "", stdout);
    free(s);
  }
  putchar('\n');
}

/* Prints a show value as an aligned key/value table. */
static void show_table(const cJSON *v) {
  int w = 6;
  show_walk(v, "", widest, &w);
  if (w > 40)
    w = 40;
  show_walk(v, "", print_row, &w);
}

/* What one run did and where, for printing. */
typedef struct op_outcome {
  const tq_plugin *p;
  const tq_plugin_op *op;
  const tq_object *obj;
  const tq_op_result *res;
  int apply;   /* --apply given */
  int applied; /* written */
  tq_apply_summary sum;
  const char *apply_error; /* why nothing was written despite --apply; NULL if none */
} op_outcome;

static int print_run_json(cli *c, const op_outcome *o) {
  tq_op_outcome out = {.plugin = o->p->name,
                       .operation = o->op->name,
                       .obj = o->obj,
                       .res = o->res,
                       .applied = o->applied,
                       .object_id = o->sum.object_id,
                       .apply_error = o->apply_error};
  return cli_print_json(tq_op_outcome_json(&out));
}

static void counts_text(const tq_changeset *cs, char *out, size_t n) {
  snprintf(out, n, "%zu attribute%s, %zu tag%s, %zu link%s, %zu related indicator%s%s%s%s%s",
           cs->n_attrs, cs->n_attrs == 1 ? "" : "s", cs->n_tags, cs->n_tags == 1 ? "" : "s",
           cs->n_links, cs->n_links == 1 ? "" : "s", cs->n_indicators,
           cs->n_indicators == 1 ? "" : "s", cs->score >= 0 ? ", a score" : "",
           cs->status ? ", status " : "", cs->status ? cs->status : "", "");
}

static void print_changes(const tq_changeset *cs) {
  for (size_t i = 0; i < cs->n_attrs; i++)
    printf("  attribute  %s = %s\n", cli_txt(cs->attrs[i].name), cli_txt(cs->attrs[i].value));
  for (size_t i = 0; i < cs->n_tags; i++)
    printf("  tag        %s\n", cli_txt(cs->tags[i]));
  for (size_t i = 0; i < cs->n_links; i++)
    printf("  link       %s %s%s%s\n", cs->links[i].object_type, cli_txt(cs->links[i].value),
           cs->links[i].link_type ? " as " : "",
           cs->links[i].link_type ? cli_txt(cs->links[i].link_type) : "");
  for (size_t i = 0; i < cs->n_indicators; i++)
    printf("  indicator  %s %s (%zu attributes)\n", cs->indicators[i].indicator_type,
           cli_txt(cs->indicators[i].value), cs->indicators[i].n_attrs);
  if (cs->score >= 0)
    printf("  score      %d\n", cs->score);
  if (cs->status)
    printf("  status     %s\n", cs->status);
}

static void print_run_text(const op_outcome *o) {
  const tq_op_result *r = o->res;
  printf("%s: %s on %s %s: %s\n", o->p->label, o->op->label ? o->op->label : o->op->name,
         o->obj->indicator_type ? o->obj->indicator_type : o->obj->object_type,
         cli_txt(o->obj->value), tq_lua_status_name(r->status));
  if (r->cs.show) {
    printf("\n");
    show_table(r->cs.show);
  }
  if (r->status != TQ_LUA_OK)
    return;
  char counts[300];
  counts_text(&r->cs, counts, sizeof counts);
  if (r->cs.n_attrs + r->cs.n_tags + r->cs.n_links + r->cs.n_indicators > 0 || r->cs.score >= 0 ||
      r->cs.status) {
    printf("\nchanges:\n");
    print_changes(&r->cs);
  }
  if (o->applied)
    printf("\nwritten to %s %lld%s: %s (source '%s')\n",
           o->obj->object_type ? o->obj->object_type : "indicator", (long long)o->sum.object_id,
           o->sum.object_created ? " (created)" : "", counts, o->p->label);
  else if (!o->apply)
    printf("\ndry run: %s not written (use --apply)\n", counts);
}

/* ---- run
 * ------------------------------------------------------------------------------------------- */

static const char RUN_HELP[] =
    "usage: tqhost op run NAME[:OPERATION] VALUE [--type T] [--apply] [--json]\n"
    "Runs an operation of plugin NAME on the indicator VALUE (from the library if it is there,\n"
    "else typed and normalised). Prints what the operation shows and the changes it asks for.\n"
    "Without --apply nothing is written; with --apply the object (created if missing), its\n"
    "attributes, tags, links, related indicators, score and status are written in one\n"
    "transaction, with the plugin's label as source.\n"
    "Exit status 1 when the operation fails (its reason is printed) or raises an error.\n";

/* Says which required fields have no value and the command that sets them. */
static int missing_config(cli *c, const tq_plugin *p, const tq_plugin_config *cfg) {
  char fields[1024] = "", sets[1024] = "";
  size_t nf = 0, ns = 0;
  for (size_t i = 0; i < cfg->n_missing; i++) {
    nf += (size_t)snprintf(fields + nf, nf < sizeof fields ? sizeof fields - nf : 0, "%s %s",
                           i ? "," : "", cfg->missing[i]);
    ns += (size_t)snprintf(sets + ns, ns < sizeof sets ? sizeof sets - ns : 0, " %s=...",
                           cfg->missing[i]);
  }
  cli_error(c, "not configured",
            "plugin %s is not configured: required field%s%s ha%s no value; run: tqhost plugin "
            "configure %s%s",
            p->name, cfg->n_missing == 1 ? "" : "s", fields, cfg->n_missing == 1 ? "s" : "ve",
            p->name, sets);
  return EXIT_FAIL;
}

/* Runs and prints; the caller has resolved everything. */
static int run_and_print(cli *c, op_outcome *o, const tq_plugin_config *cfg, tq_err *err) {
  tq_op_request rq = {.plugin = o->p,
                      .op = o->op,
                      .obj = o->obj,
                      .cfg = cfg,
                      .plugins_dir = tq_plugin_dir(),
                      .lib = c->lib,
                      .dry_run = !o->apply};
  tq_op_result res;
  if (tq_plugin_op_run(&rq, &res, err) != TQ_OK)
    return cli_fail(c, err);
  o->res = &res;
  if (res.status == TQ_LUA_OK && o->apply) {
    if (tq_plugin_apply(c->lib, o->p, o->obj, &res.cs, &o->sum, err) == TQ_OK)
      o->applied = 1;
    else
      o->apply_error = err->msg;
  }
  if (c->json)
    print_run_json(c, o);
  else
    print_run_text(o);
  int rc = EXIT_OK;
  if (res.status != TQ_LUA_OK) {
    const char *how = res.status == TQ_LUA_FAILED ? "failed" : tq_lua_status_name(res.status);
    cli_error(c, how, "%s %s: %s", o->p->name, how,
              *res.message ? res.message : "(no reason given)");
    if (*res.traceback && !c->json) /* its lines kept, every other control character escaped */
      fprintf(stderr, "%s\n", cli_txt_lines(res.traceback));
    rc = EXIT_FAIL;
  } else if (o->apply_error) {
    cli_error(c, "not applied", "nothing written: %s", o->apply_error);
    rc = EXIT_FAIL;
  }
  tq_op_result_free(&res);
  return rc;
}

/* Splits NAME[:OPERATION] (in place). */
static void split_name(char *arg, char **op) {
  char *colon = strchr(arg, ':');
  *op = NULL;
  if (colon) {
    *colon = '\0';
    *op = colon + 1;
  }
}

static int op_run(cli *c, int argc, char **argv) {
  static const struct option opts[] = {
      {"type", required_argument, 0, 't'}, {"apply", no_argument, 0, 'a'}, {0, 0, 0, 0}};
  if (cli_wants_help(argc, argv))
    return cli_help(RUN_HELP);
  const char *type = NULL;
  op_outcome o = {0};
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    if (ch == 't')
      type = optarg;
    else if (ch == 'a')
      o.apply = 1;
    else
      return EXIT_USAGE;
  }
  if (argc - optind != 2)
    return cli_usage_error(c, "needs NAME[:OPERATION] and VALUE");
  char *op_name = NULL;
  split_name(argv[optind], &op_name);
  tq_plugin *p = NULL;
  tq_plugin_config cfg = {0};
  tq_plugin_target t = {0};
  tq_err err;
  char *key_path = tq_plugin_key_path(c->db_path);
  int rc = EXIT_OK;
  if (tq_plugin_find(tq_plugin_dir(), argv[optind], &p, &err) != TQ_OK) {
    rc = cli_fail(c, &err);
    goto done;
  }
  if (cli_lib(c, 0) == NULL) {
    rc = EXIT_FAIL;
    goto done;
  }
  if (tq_plugin_target_resolve(c->lib, type, argv[optind + 1], &t, &err) != TQ_OK) {
    rc = cli_fail(c, &err);
    goto done;
  }
  o.p = p;
  o.obj = tq_plugin_target_obj(&t);
  tq_code code =
      tq_plugin_op_pick(p, op_name, o.obj->object_type, o.obj->indicator_type, &o.op, &err);
  if (code == TQ_EINVAL && op_name == NULL) {
    rc = cli_usage_error(c, "%s", err.msg);
    goto done;
  }
  if (code != TQ_OK) {
    rc = cli_fail(c, &err);
    goto done;
  }
  if (tq_plugin_config_load(c->lib, p, key_path, 1, &cfg, &err) != TQ_OK)
    rc = cli_fail(c, &err);
  else if (cfg.n_missing)
    rc = missing_config(c, p, &cfg);
  else
    rc = run_and_print(c, &o, &cfg, &err);
done:
  tq_plugin_config_free(&cfg);
  tq_plugin_target_free(&t);
  tq_plugin_free(p);
  free(key_path);
  return rc;
}

int cli_cmd_op(cli *c, int argc, char **argv) {
  static const cli_cmd cmds[] = {
      {"list", op_list, "operations, or those that accept a value's type"},
      {"run", op_run, "run an operation on one indicator (--apply to write)"},
      {NULL, NULL, NULL}};
  return cli_dispatch(c, "op", cmds, argc - 1, argv + 1);
}
