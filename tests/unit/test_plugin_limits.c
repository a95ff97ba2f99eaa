/* test_plugin_limits.c: a manifest's limits and durations with values past any sense (1e300,
 * -1, NaN, infinity, 0) are refused with an error naming the field, and never reach an
 * undefined conversion (the sanitizer build aborts on one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tqhost/plugin.h"

/* Writes a manifest with the given limits/network lines as <tmp>/limits/manifest.yaml and
 * loads it; returns the diagnostics joined (static buffer), "" when it loaded. */
static const char *load_with(const char *extra) {
  static char root[] = "/tmp/tq_limits_XXXXXX";
  static int made = 0;
  static char out[8192];
  if (!made && mkdtemp(root) == NULL)
    fail_msg("mkdtemp");
  made = 1;
  char dir[300], path[400];
  snprintf(dir, sizeof dir, "%s/limits", root);
  mkdir(dir, 0700);
  snprintf(path, sizeof path, "%s/manifest.yaml", dir);
  FILE *f = fopen(path, "w");
  fprintf(f,
          "name: limits\nlabel: Limits\nversion: 1.0.0\nscript: op.lua\noperations:\n"
          "  - { name: a, entry: a, object_types: [indicator] }\n%s",
          extra);
  fclose(f);
  tq_plugin *p = NULL;
  tq_err err = {0};
  tq_diags d = {0};
  out[0] = '\0';
  if (tq_plugin_load(dir, &p, &d, &err) != TQ_OK) {
    for (size_t i = 0; i < d.n; i++) {
      strncat(out, d.msgs[i], sizeof out - strlen(out) - 2);
      strcat(out, "\n");
    }
    if (d.n == 0)
      snprintf(out, sizeof out, "%s", err.msg);
  }
  tq_diags_free(&d);
  tq_plugin_free(p);
  return out;
}

static void expect_refused(const char *extra, const char *want) {
  const char *got = load_with(extra);
  if (strstr(got, want) == NULL)
    fail_msg("manifest with\n%swanted an error with '%s', got:\n%s", extra, want, got);
}

static void a_memory_limit_of_zero_is_refused_in_words(void **state) {
  (void)state;
  /* The message was e.msg of a parse that had not failed: uninitialised bytes. */
  expect_refused("limits: { memory: 0 }\n", "limits.memory: '0' is below the minimum of 64KiB");
}

static void memory_limits_past_any_size_are_refused(void **state) {
  (void)state;
  expect_refused("limits: { memory: 1e300 }\n", "limits.memory:");
  expect_refused("limits: { memory: 99999999999999999999999999999 }\n",
                 "is too large a size (at most 1TiB)");
  expect_refused("limits: { memory: -1 }\n", "limits.memory:");
  expect_refused("limits: { memory: .nan }\n", "limits.memory:");
  expect_refused("limits: { memory: .inf }\n", "limits.memory:");
  expect_refused("limits: { memory: 99999999999999999999GiB }\n", "too large a size");
}

static void instruction_limits_past_any_count_are_refused(void **state) {
  (void)state;
  const char *want = "limits.instructions: must be a whole number from 1 to";
  expect_refused("limits: { instructions: 1e300 }\n", want);
  expect_refused("limits: { instructions: -1 }\n", want);
  expect_refused("limits: { instructions: 1e16 }\n", want);
  expect_refused("limits: { instructions: .nan }\n", "limits.instructions:");
  expect_refused("limits: { instructions: .inf }\n", "limits.instructions:");
  expect_refused("limits: { instructions: -.inf }\n", "limits.instructions:");
}

static void durations_past_any_time_are_refused(void **state) {
  (void)state;
  expect_refused("limits: { timeout: 99999999999999999999999999d }\n",
                 "limits.timeout: '99999999999999999999999999d' is too long a duration");
  expect_refused("limits: { timeout: 1e300s }\n", "limits.timeout:");
  expect_refused("limits: { timeout: nan }\n", "limits.timeout:");
  expect_refused("limits: { timeout: infs }\n", "limits.timeout:");
  expect_refused("network: { cache_ttl: 99999999999999999999999h }\n",
                 "network.cache_ttl: '99999999999999999999999h' is too long a duration");
}

static void sane_limits_still_load(void **state) {
  (void)state;
  assert_string_equal(load_with("limits: { memory: 64KiB, instructions: 1000000, timeout: 2d }\n"),
                      "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_memory_limit_of_zero_is_refused_in_words),
      cmocka_unit_test(memory_limits_past_any_size_are_refused),
      cmocka_unit_test(instruction_limits_past_any_count_are_refused),
      cmocka_unit_test(durations_past_any_time_are_refused),
      cmocka_unit_test(sane_limits_still_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
