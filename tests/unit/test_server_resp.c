/* test_server_resp.c: the answers of resp.c are UTF-8 whatever a handler echoes in them (a
 * body's key that is no UTF-8 named as the refused field, a message cut at its buffer inside a
 * character): bad bytes are shown as \xHH, a cut falls between characters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/server/server_int.h"

static int utf8(const char *s) { return tq_utf8_invalid_at(s, strlen(s)) == strlen(s); }

static void test_invalid_field_and_message_are_escaped(void **state) {
  (void)state;
  tq_resp rs = {0};
  tq_resp_invalid(&rs, "k\xc2", "bad \xff value");
  assert_int_equal(rs.status, 400);
  const cJSON *errors =
      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rs.json, "data"), "errors");
  assert_non_null(errors);
  assert_string_equal(errors->child->string, "k\\xc2");
  assert_string_equal(errors->child->child->valuestring, "bad \\xff value");
  tq_resp_free(&rs);
}

static void test_long_message_is_cut_between_characters(void **state) {
  (void)state;
  char big[3001];
  for (size_t i = 0; i < 3000; i += 2)
    memcpy(big + i, "\xc3\xa9", 2); /* é: the 1023 bytes the buffer holds end inside one */
  big[3000] = '\0';
  tq_resp rs = {0};
  tq_resp_invalid(&rs, "f", "%s", big);
  const cJSON *errors =
      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rs.json, "data"), "errors");
  const char *msg = errors->child->child->valuestring;
  assert_true(utf8(msg));
  assert_true(strlen(msg) > 1000 && strlen(msg) < 1024);
  tq_resp_fail(&rs, 404, "%s", big);
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(rs.json, "errors");
  assert_int_equal(rs.status, 404);
  assert_true(utf8(list->child->valuestring));
  assert_true(strlen(list->child->valuestring) > 1000);
  tq_resp_free(&rs);
}

static void test_valid_text_is_unchanged(void **state) {
  (void)state;
  tq_resp rs = {0};
  tq_resp_invalid(&rs, "naïve", "déjà vu: %d", 7);
  const cJSON *errors =
      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rs.json, "data"), "errors");
  assert_string_equal(errors->child->string, "naïve");
  assert_string_equal(errors->child->child->valuestring, "déjà vu: 7");
  tq_resp_free(&rs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_invalid_field_and_message_are_escaped),
      cmocka_unit_test(test_long_message_is_cut_between_characters),
      cmocka_unit_test(test_valid_text_is_unchanged),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
