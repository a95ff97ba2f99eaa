/* cmd_plugin.c: `tqhost plugin list|check|configure|test|new|pack|keygen|install|remove`: the
 * Operation plugins of the plugins folder (tq_plugin_dir), their manifests, their
 * configuration (secrets masked in every output), their busted specs, skeletons and packages. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_int.h"
#include "tqhost/plugin.h"
#include "tqhost/workflow.h"

/* The library if its file exists, quietly NULL otherwise: listing plugins needs no library. */
static tq_lib *lib_if_any(cli *c) {
  if (c->lib == NULL && access(c->db_path, F_OK) == 0)
    return cli_lib(c, 0);
  return c->lib;
}

/* ---- list ------------------------------------------------------------------------------------ */

static cJSON *plugin_json(const tq_plugin *p, const tq_plugin_config *cfg) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", p->name);
  cJSON_AddStringToObject(o, "label", p->label);
  cJSON_AddStringToObject(o, "version", p->version);
  char *origin = tq_pkg_origin(p);
  cJSON_AddStringToObject(o, "origin", origin ? origin : "bundled");
  free(origin);
  cJSON *ops = cJSON_AddArrayToObject(o, "operations");
  for (size_t i = 0; i < p->n_ops; i++)
    cJSON_AddItemToArray(ops, cJSON_CreateString(p->ops[i].name));
  cJSON_AddBoolToObject(o, "configured", cfg->n_missing == 0);
  cJSON *missing = cJSON_AddArrayToObject(o, "missing");
  for (size_t i = 0; i < cfg->n_missing; i++)
    cJSON_AddItemToArray(missing, cJSON_CreateString(cfg->missing[i]));
  return o;
}

static void plugin_line(const tq_plugin *p, const tq_plugin_config *cfg) {
  char ops[256] = "";
  for (size_t i = 0; i < p->n_ops; i++) {
    size_t len = strlen(ops);
    snprintf(ops + len, sizeof ops - len, "%s%s", i ? "," : "", p->ops[i].name);
  }
  char conf[200] = "yes";
  if (cfg->n_missing)
    snprintf(conf, sizeof conf, "no (needs %s)", cfg->missing[0]);
  char *origin = tq_pkg_origin(p);
  printf("%-22s %-26s %-8s %-18s %-28s %s\n", p->name, p->label, p->version, ops, conf,
         origin ? origin : "bundled");
  free(origin);
}

static int plugin_list(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost plugin list\n"
                    "Lists the plugins of the plugins folder ($TQHOST_PLUGINS, else the host\n"
                    "configuration's folders.plugins, else the installed one): name, label,\n"
                    "version, operations, whether every required config field is set, and the\n"
                    "origin: bundled, or the package file it was installed from.\n");
  if (argc > 1)
    return cli_usage_error(c, "unexpected argument '%s'", argv[1]);
  tq_plugin **list = NULL;
  size_t n = 0;
  tq_diags diags = {0};
  tq_err err;
  if (tq_plugin_list(tq_plugin_dir(), &list, &n, &diags, &err) != TQ_OK)
    return cli_fail(c, &err);
  for (size_t i = 0; i < diags.n; i++)
    cli_error(c, "skipped", "skipped: %s", diags.msgs[i]);
  tq_lib *lib = lib_if_any(c);
  cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
  if (!c->json)
    printf("%-22s %-26s %-8s %-18s %-28s %s\n", "name", "label", "version", "operations",
           "configured", "origin");
  int rc = EXIT_OK;
  for (size_t i = 0; i < n && rc == EXIT_OK; i++) {
    tq_plugin_config cfg;
    /* Secrets are not opened here: a listing never needs their text. */
    if (tq_plugin_config_load(lib, list[i], NULL, 0, &cfg, &err) != TQ_OK) {
      rc = cli_fail(c, &err);
      break;
    }
    if (arr)
      cJSON_AddItemToArray(arr, plugin_json(list[i], &cfg));
    else
      plugin_line(list[i], &cfg);
    tq_plugin_config_free(&cfg);
  }
  tq_plugin_list_free(list, n);
  tq_diags_free(&diags);
  if (arr)
    return rc == EXIT_OK ? cli_print_json(arr) : (cJSON_Delete(arr), rc);
  return rc;
}

/* ---- check ------------------------------------------------------------------------------------
 */

static int plugin_check(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost plugin check DIR\n"
                    "Validates DIR/manifest.yaml against schemas/operation.schema.json, compiles\n"
                    "the script and checks that every operation's entry exists, then checks\n"
                    "every action file DIR/actions/*.yaml as `tqhost action check` does (its\n"
                    "plugin looked up in DIR's parent folder). Prints OK, or\n"
                    "every error as FILE:LINE:COLUMN: FIELD: WHAT (exit status 1).\n");
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 2)
    return cli_usage_error(c, "needs exactly one plugin folder");
  tq_diags d = {0};
  tq_plugin *p = NULL;
  tq_err err;
  size_t n_actions = 0;
  if (tq_plugin_check(argv[1], &p, &d, &err) == TQ_ENOMEM)
    return cli_fail(c, &err);
  if (p)
    n_actions = tq_action_check_dir(argv[1], &d);
  int rc = d.n ? EXIT_FAIL : EXIT_OK;
  if (c->json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", d.n == 0);
    cJSON *errs = cJSON_AddArrayToObject(o, "errors");
    for (size_t i = 0; i < d.n; i++)
      cJSON_AddItemToArray(errs, cJSON_CreateString(d.msgs[i]));
    cli_print_json(o);
  } else if (d.n == 0) {
    printf("OK %s %s: %zu operation%s, %zu action file%s\n", p->name, p->version, p->n_ops,
           p->n_ops == 1 ? "" : "s", n_actions, n_actions == 1 ? "" : "s");
  } else {
    for (size_t i = 0; i < d.n; i++)
      fprintf(stderr, "%s\n", d.msgs[i]);
    fprintf(stderr, "%s: %zu error%s\n", c->prog, d.n, d.n == 1 ? "" : "s");
  }
  tq_diags_free(&d);
  tq_plugin_free(p);
  return rc;
}

/* ---- configure --------------------------------------------------------------------------------
 */

int cli_value_from(cli *c, const char *key, const char *value, int *stdin_used, char **out) {
  *out = NULL;
  if (strcmp(value, "-") == 0) {
    if (*stdin_used)
      return cli_usage_error(c, "%s=-: only one value can be read from stdin", key);
    *stdin_used = 1;
    size_t cap = 0;
    ssize_t n = getline(out, &cap, stdin);
    if (n <= 0) {
      free(*out);
      *out = NULL;
      return cli_usage_error(c, "%s=-: no line to read on stdin", key);
    }
    while (n > 0 && ((*out)[n - 1] == '\n' || (*out)[n - 1] == '\r'))
      (*out)[--n] = '\0';
    return EXIT_OK;
  }
  if (strncmp(value, "env:", 4) == 0) {
    const char *name = value + 4, *v = *name ? getenv(name) : NULL;
    if (v == NULL)
      return cli_usage_error(c, "%s=env:%s: the environment variable %s is not set", key, name,
                             *name ? name : "(no name)");
    *out = tq_strdup(v);
  } else {
    *out = tq_strdup(value);
  }
  return *out ? EXIT_OK : EXIT_FAIL;
}

/* Wipes and frees the n values read by cli_value_from. */
static void values_free(tq_lua_kv *kvs, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (kvs[i].value) {
      explicit_bzero((char *)kvs[i].value, strlen(kvs[i].value));
      free((char *)kvs[i].value);
    }
  free(kvs);
}

/* Prints the effective configuration: secrets as the mask, defaults marked. */
static int print_config(cli *c, const tq_plugin *p, tq_lib *lib) {
  tq_plugin_config cfg;
  tq_err err;
  if (tq_plugin_config_load(lib, p, NULL, 0, &cfg, &err) != TQ_OK)
    return cli_fail(c, &err);
  cJSON *o = c->json ? cJSON_CreateObject() : NULL;
  for (size_t i = 0; i < p->n_fields; i++) {
    const tq_plugin_field *f = &p->fields[i];
    const char *v = tq_plugin_config_get(&cfg, f->key);
    if (o)
      cJSON_AddItemToObject(o, f->key, v ? cJSON_CreateString(v) : cJSON_CreateNull());
    else
      printf("%-20s %-9s %s%s\n", f->key, tq_field_type_name(f->type), v ? v : "(not set)",
             !v && f->required ? " (required)" : "");
  }
  tq_plugin_config_free(&cfg);
  return o ? cli_print_json(o) : EXIT_OK;
}

static int plugin_configure(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost plugin configure NAME [KEY=VALUE]...\n"
                    "Sets config fields of plugin NAME (keys from its manifest; values checked by\n"
                    "the field's type: url, integer, boolean, select, password) and prints the\n"
                    "configuration. Password fields are encrypted with the key file <db>.key\n"
                    "($TQHOST_KEY_FILE), created on first use, and shown as " TQ_SECRET_MASK ".\n"
                    "A value - reads one line from stdin, env:NAME reads $NAME, so that a secret\n"
                    "stays out of argv and the shell history:\n"
                    "  tqhost plugin configure rst-ioc-lookup api_key=- < keyfile\n"
                    "  tqhost plugin configure rst-ioc-lookup api_key=env:RST_API_KEY\n"
                    "Without KEY=VALUE, only prints the configuration.\n");
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc < 2)
    return cli_usage_error(c, "needs a plugin NAME");
  size_t n = (size_t)argc - 2;
  tq_lua_kv *kvs = calloc(n ? n : 1, sizeof *kvs);
  if (kvs == NULL)
    return EXIT_FAIL;
  int rc = EXIT_OK, stdin_used = 0;
  for (size_t i = 0; i < n && rc == EXIT_OK; i++) {
    char *eq = strchr(argv[i + 2], '=');
    if (eq == NULL || eq == argv[i + 2]) {
      rc = cli_usage_error(c, "'%s' is not KEY=VALUE", argv[i + 2]);
      break;
    }
    *eq = '\0';
    kvs[i].key = argv[i + 2];
    rc = cli_value_from(c, kvs[i].key, eq + 1, &stdin_used, (char **)&kvs[i].value);
  }
  if (rc != EXIT_OK) {
    values_free(kvs, n);
    return rc;
  }
  tq_plugin *p = NULL;
  tq_err err;
  char *key_path = tq_plugin_key_path(c->db_path);
  if (tq_plugin_find(tq_plugin_dir(), argv[1], &p, &err) != TQ_OK)
    rc = cli_fail(c, &err);
  else if (cli_lib(c, 0) == NULL)
    rc = EXIT_FAIL;
  else if (n && tq_plugin_configure(c->lib, p, key_path, kvs, n, &err) != TQ_OK)
    rc = cli_fail(c, &err);
  else
    rc = print_config(c, p, c->lib);
  free(key_path);
  values_free(kvs, n);
  tq_plugin_free(p);
  return rc;
}

/* ---- test -------------------------------------------------------------------------------------
 */

static int plugin_test(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(
        "usage: tqhost plugin test DIR [--record BASE_URL [--force] [--set KEY=VALUE]...]\n"
        "Runs DIR/spec/*_spec.lua with busted inside the host; the specs use\n"
        "require \"tqhost.test\" to run the plugin's entries on recorded HTTP.\n"
        "  --record BASE_URL  run each T.run that names a replay file once against the live\n"
        "                     API at BASE_URL (http or https; it replaces the plugin's\n"
        "                     base_url) and write that file, secrets removed; the spec then\n"
        "                     checks the replay. A fixture that exists is kept (replayed).\n"
        "  --force            record the fixtures that exist too\n"
        "  --set KEY=VALUE    a config value for the live runs (the real api_key: VALUE - reads\n"
        "                     it from stdin, env:NAME from $NAME); never written to a fixture\n"
        "Exit status: busted's (0 when every spec passed).\n");
  static const struct option opts[] = {{"record", required_argument, NULL, 'r'},
                                       {"force", no_argument, NULL, 'f'},
                                       {"set", required_argument, NULL, 's'},
                                       {0}};
  tq_plugin_record_opts o = {0};
  tq_lua_kv *sets = calloc((size_t)argc, sizeof *sets);
  int stdin_used = 0, ch, rc = EXIT_OK;
  if (sets == NULL)
    return EXIT_FAIL;
  o.set = sets;
  while (rc == EXIT_OK && (ch = cli_getopt(c, argc, argv, opts)) != -1) {
    if (ch == 'r') {
      o.base_url = optarg;
    } else if (ch == 'f') {
      o.force = 1;
    } else if (ch == 's') {
      char *eq = strchr(optarg, '=');
      char *value = NULL;
      if (eq == NULL || eq == optarg)
        rc = cli_usage_error(c, "--set needs KEY=VALUE, got '%s'", optarg);
      else
        *eq = '\0';
      if (rc == EXIT_OK && (rc = cli_value_from(c, optarg, eq + 1, &stdin_used, &value)) == EXIT_OK)
        sets[o.n_set++] = (tq_lua_kv){optarg, value};
    } else {
      rc = EXIT_USAGE;
    }
  }
  if (rc == EXIT_OK && argc - optind != 1)
    rc = cli_usage_error(c, "needs exactly one plugin folder");
  if (rc == EXIT_OK && o.base_url == NULL && (o.force || o.n_set))
    rc = cli_usage_error(c, "--force and --set go with --record BASE_URL");
  if (rc == EXIT_OK) {
    tq_err err;
    fflush(stdout);
    int status = o.base_url ? tq_plugin_test_record(argv[optind], &o, &err)
                            : tq_plugin_test(argv[optind], &err);
    rc = status < 0 ? cli_fail(c, &err) : status == 0 ? EXIT_OK : EXIT_FAIL;
  }
  values_free(sets, o.n_set);
  return rc;
}

/* ---- new --------------------------------------------------------------------------------------
 */

static const char NEW_HELP[] =
    "usage: tqhost plugin new NAME [--operation] [--action] [--dir DIR] [--force]\n"
    "Writes a working plugin skeleton in DIR/NAME (DIR: $TQHOST_PLUGINS, default ./plugins):\n"
    "manifest.yaml, operation.lua (an Operation 'lookup' calling GET {base_url}/lookup),\n"
    "spec/lookup_spec.lua with one recorded exchange (spec/fixtures/hit.json) and README.md.\n"
    "It passes 'tqhost plugin check' and 'tqhost plugin test' as written. The templates are\n"
    "compiled into tqhost (src/plugin/scaffold.c).\n"
    "  --operation  the Operation (the default; always written)\n"
    "  --action     also actions/NAME-action.yaml, a bulk Action running 'lookup'\n"
    "  --dir DIR    the folder to create NAME in\n"
    "  --force      write over an existing DIR/NAME\n"
    "NAME: lower-case letters, digits and '-' (^[a-z0-9][a-z0-9-]{0,63}$).\n"
    "Next steps: docs/plugins.md, \"Your first plugin\".\n";

static int plugin_new(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(NEW_HELP);
  static const struct option opts[] = {{"operation", no_argument, NULL, 'o'},
                                       {"action", no_argument, NULL, 'a'},
                                       {"dir", required_argument, NULL, 'd'},
                                       {"force", no_argument, NULL, 'f'},
                                       {NULL, 0, NULL, 0}};
  tq_plugin_new_opts o = {0};
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    if (ch == '?')
      return EXIT_USAGE;
    if (ch == 'a')
      o.action = 1;
    else if (ch == 'd')
      o.dir = optarg;
    else if (ch == 'f')
      o.force = 1;
  }
  if (argc - optind != 1)
    return cli_usage_error(c, "needs exactly one plugin NAME");
  o.name = argv[optind];
  tq_err err;
  char path[4096];
  if (tq_plugin_new(&o, path, sizeof path, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", o.name);
    cJSON_AddStringToObject(j, "path", path);
    cJSON_AddBoolToObject(j, "action", o.action);
    return cli_print_json(j);
  }
  printf("created %s\n", cli_txt(path));
  printf("next: tqhost plugin check %s && tqhost plugin test %s\n", cli_txt(path), cli_txt(path));
  return EXIT_OK;
}

/* ---- packages ---------------------------------------------------------------------------------
 */

static int plugin_pack(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost plugin pack DIR [-o|--output FILE] [--sign KEYFILE]\n"
                    "Writes NAME-VERSION.tqp (or FILE): DIR's files, the plugins/lib modules\n"
                    "listed in the manifest's requires.lib, MANIFEST.sha256 and, with --sign,\n"
                    "an Ed25519 signature of it made with KEYFILE (from plugin keygen).\n");
  static const struct option opts[] = {
      {"output", required_argument, NULL, 'o'}, {"sign", required_argument, NULL, 's'}, {0}};
  const char *out = NULL, *key = NULL;
  static char output_opt[] = "--output"; /* cli_getopt parses long options only */
  for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (strcmp(argv[i], "-o") == 0)
      argv[i] = output_opt;
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    if (ch == 'o')
      out = optarg;
    else if (ch == 's')
      key = optarg;
    else
      return EXIT_USAGE;
  }
  if (argc - optind != 1)
    return cli_usage_error(c, "needs exactly one plugin folder");
  char *written = NULL;
  tq_err err;
  if (tq_pkg_pack(argv[optind], out, key, &written, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", written);
    cJSON_AddBoolToObject(o, "signed", key != NULL);
    free(written);
    return cli_print_json(o);
  }
  printf("%s%s\n", written, key ? " (signed)" : "");
  free(written);
  return EXIT_OK;
}

static int plugin_keygen(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help(
        "usage: tqhost plugin keygen FILE\n"
        "Writes an Ed25519 key pair: FILE (secret, mode 0600, for plugin pack --sign)\n"
        "and FILE.pub (public: copy it into the trusted keys folder of installers,\n"
        "$TQHOST_TRUSTED_KEYS or PLUGINS/../trusted-keys). FILE is never overwritten.\n");
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 2)
    return cli_usage_error(c, "needs exactly one key FILE");
  tq_err err;
  if (tq_pkg_keygen(argv[1], &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "secret", argv[1]);
    char pub[4200];
    snprintf(pub, sizeof pub, "%s.pub", argv[1]);
    cJSON_AddStringToObject(o, "public", pub);
    return cli_print_json(o);
  }
  printf("%s (secret) and %s.pub (public)\n", argv[1], argv[1]);
  return EXIT_OK;
}

static int plugin_install(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost plugin install FILE [--force] [--allow-unsigned] [--test]\n"
                    "Checks the package FILE before writing anything (regular files and folders\n"
                    "only, no absolute or .. path, no link or device, size caps, SHA-256 digests,\n"
                    "signature by a key of $TQHOST_TRUSTED_KEYS or PLUGINS/../trusted-keys, the\n"
                    "manifest's schema), then installs it in the plugins folder (as plugin list)\n"
                    "atomically. The configuration, kept in the library, stays.\n"
                    "  --force           install an older version over a newer one\n"
                    "  --allow-unsigned  accept a package without signature\n"
                    "  --test            run the package's specs first; refuse if they fail\n");
  static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
                                       {"allow-unsigned", no_argument, NULL, 'u'},
                                       {"test", no_argument, NULL, 't'},
                                       {0}};
  tq_pkg_install_opts o = {0};
  int ch;
  while ((ch = cli_getopt(c, argc, argv, opts)) != -1) {
    if (ch == 'f')
      o.force = 1;
    else if (ch == 'u')
      o.allow_unsigned = 1;
    else if (ch == 't')
      o.run_tests = 1;
    else
      return EXIT_USAGE;
  }
  if (argc - optind != 1)
    return cli_usage_error(c, "needs exactly one package FILE");
  tq_pkg_result r;
  tq_err err;
  if (tq_pkg_install(tq_plugin_dir(), argv[optind], &o, &r, &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", r.name);
    cJSON_AddStringToObject(j, "version", r.version);
    cJSON_AddItemToObject(
        j, "previous", r.old_version[0] ? cJSON_CreateString(r.old_version) : cJSON_CreateNull());
    cJSON_AddStringToObject(j, "signer", r.signer);
    return cli_print_json(j);
  }
  printf("installed %s %s%s%s (%s)\n", r.name, r.version, r.old_version[0] ? " over " : "",
         r.old_version, r.signer);
  return EXIT_OK;
}

static int plugin_remove(cli *c, int argc, char **argv) {
  if (cli_wants_help(argc, argv))
    return cli_help("usage: tqhost plugin remove NAME\n"
                    "Removes the plugin folder NAME from $TQHOST_PLUGINS. Its configuration\n"
                    "stays in the library for a later install.\n");
  if (cli_no_options(c, argc, argv))
    return EXIT_USAGE;
  if (argc != 2)
    return cli_usage_error(c, "needs exactly one plugin NAME");
  tq_err err;
  if (tq_pkg_remove(tq_plugin_dir(), argv[1], &err) != TQ_OK)
    return cli_fail(c, &err);
  if (c->json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "removed", argv[1]);
    return cli_print_json(o);
  }
  printf("removed %s\n", argv[1]);
  return EXIT_OK;
}

int cli_cmd_plugin(cli *c, int argc, char **argv) {
  static const cli_cmd cmds[] = {
      {"list", plugin_list, "the plugins, their operations and configuration state"},
      {"check", plugin_check, "validate a plugin folder (manifest, script, entries)"},
      {"configure", plugin_configure, "set config fields (secrets encrypted)"},
      {"test", plugin_test, "run a plugin's busted specs"},
      {"new", plugin_new, "write a working plugin skeleton (manifest, script, spec, README)"},
      {"pack", plugin_pack, "make NAME-VERSION.tqp from a plugin folder (optionally signed)"},
      {"keygen", plugin_keygen, "make an Ed25519 key pair for signing packages"},
      {"install", plugin_install, "check and install a .tqp package"},
      {"remove", plugin_remove, "remove an installed plugin (its config stays)"},
      {NULL, NULL, NULL}};
  return cli_dispatch(c, "plugin", cmds, argc - 1, argv + 1);
}
