/* registry.c: the plugins folder (tq_host_dir: $TQHOST_PLUGINS, the host configuration, the
 * installed one): listing its plugins and
 * loading one by name. Each sub-folder with a manifest.yaml is a plugin; lib/ holds the Lua
 * modules scripts share. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tqhost/plugin.h"

const char *tq_plugin_dir(void) { return tq_host_dir(TQ_DIR_PLUGINS); }

static int by_name(const void *a, const void *b) {
  const tq_plugin *pa = *(tq_plugin *const *)a, *pb = *(tq_plugin *const *)b;
  return strcmp(pa->name, pb->name);
}

/* Whether plugins_dir/name is a folder with a manifest. */
static int is_plugin(const char *plugins_dir, const char *name) {
  char path[4096];
  struct stat st;
  if (name[0] == '.' || strcmp(name, "lib") == 0)
    return 0;
  snprintf(path, sizeof path, "%s/%s/manifest.yaml", plugins_dir, name);
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

tq_code tq_plugin_list(const char *plugins_dir, tq_plugin ***out, size_t *n, tq_diags *diags,
                       tq_err *err) {
  DIR *d = opendir(plugins_dir);
  *out = NULL;
  *n = 0;
  if (d == NULL)
    return tq_err_set(
        err, errno == ENOENT ? TQ_ENOTFOUND : TQ_EIO,
        "plugins folder %s: %s (set TQHOST_PLUGINS, or folders.plugins in the host configuration)",
        plugins_dir, strerror(errno));
  /* Without the schema no plugin can load: a setup failure, not a list of skipped plugins. */
  cJSON *schema = NULL;
  tq_code rc = tq_schema_load("operation.schema.json", &schema, err);
  cJSON_Delete(schema);
  if (rc != TQ_OK) {
    closedir(d);
    return rc;
  }
  struct dirent *e;
  while (rc == TQ_OK && (e = readdir(d)) != NULL) {
    if (!is_plugin(plugins_dir, e->d_name))
      continue;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", plugins_dir, e->d_name);
    tq_plugin *p = NULL;
    tq_err perr;
    if (tq_plugin_load(dir, &p, diags, &perr) != TQ_OK)
      continue; /* reported in diags; one broken plugin must not hide the others */
    tq_plugin **grown = realloc(*out, (*n + 1) * sizeof *grown);
    if (grown == NULL) {
      tq_plugin_free(p);
      rc = tq_err_set(err, TQ_ENOMEM, "plugin list: out of memory");
      break;
    }
    *out = grown;
    grown[(*n)++] = p;
  }
  closedir(d);
  if (rc != TQ_OK) {
    tq_plugin_list_free(*out, *n);
    *out = NULL;
    *n = 0;
    return rc;
  }
  if (*n > 1)
    qsort(*out, *n, sizeof **out, by_name);
  return TQ_OK;
}

void tq_plugin_list_free(tq_plugin **list, size_t n) {
  for (size_t i = 0; i < n; i++)
    tq_plugin_free(list[i]);
  free(list);
}

tq_code tq_plugin_find(const char *plugins_dir, const char *name, tq_plugin **out, tq_err *err) {
  if (strchr(name, '/') || !is_plugin(plugins_dir, name))
    return tq_err_set(err, TQ_ENOTFOUND, "no plugin '%s' in %s (see tqhost plugin list)", name,
                      plugins_dir);
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s", plugins_dir, name);
  return tq_plugin_load(dir, out, NULL, err);
}
