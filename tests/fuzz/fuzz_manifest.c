/* fuzz_manifest.c: libFuzzer harness for the YAML documents a user writes: the text is parsed
 * with positions (plugin/yaml.c), checked against the operation and action schemas
 * (plugin/schema.c), and loaded as an Action file from a temporary file (the docload path
 * the host uses, workflow/action.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tqhost/plugin.h"
#include "tqhost/workflow.h"

static cJSON *schema_op, *schema_action;
static char action_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  tq_err err;
  if (tq_schema_load("operation.schema.json", &schema_op, &err) != TQ_OK ||
      tq_schema_load("action.schema.json", &schema_action, &err) != TQ_OK) {
    fprintf(stderr, "fuzz_manifest: %s\n", err.msg);
    abort();
  }
  snprintf(action_path, sizeof action_path, "/tmp/tq_fuzz_action_%d.yaml", (int)getpid());
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tq_ydoc *doc = NULL;
  tq_err err;
  tq_diags diags = {0};
  if (tq_ydoc_parse("fuzz.yaml", (const char *)data, size, &doc, &err) == TQ_OK) {
    tq_schema_check_ydoc(schema_op, doc, &diags);
    tq_schema_check_ydoc(schema_action, doc, &diags);
    tq_ydoc_free(doc);
  }
  FILE *f = fopen(action_path, "wb");
  if (f) {
    fwrite(data, 1, size, f);
    fclose(f);
    tq_action *a = NULL;
    if (tq_action_load(action_path, &a, &diags, &err) == TQ_OK)
      tq_action_free(a);
  }
  tq_diags_free(&diags);
  return 0;
}
