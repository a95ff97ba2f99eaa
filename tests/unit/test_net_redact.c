/* test_net_redact.c: what a log line or a recording may show of a URL (src/net/net_redact.c):
 * credential-named query parameters and user:password@ masked, the rest untouched; and the
 * masking rule of run output applied to any text (tq_lua_mask, src/lua/redact.c), which the
 * recorder of `plugin test --record` uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tqhost/lua.h"
#include "tqhost/net.h"

static void masked_is(const char *url, const char *want) {
  char *got = tq_net_url_mask(url, "***");
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
}

static void credential_query_values_are_masked_and_the_rest_kept(void **state) {
  (void)state;
  masked_is("https://api.example/v1/ioc?apikey=s3cr3t&value=1.2.3.4",
            "https://api.example/v1/ioc?apikey=***&value=1.2.3.4");
  masked_is("https://h/x?access_token=a&Token=b&sig=c&value=d&password=e&session_id=f",
            "https://h/x?access_token=***&Token=***&sig=***&value=d&password=***&session_id=***");
  masked_is("https://h/x?api%5Fkey=zz&q=1", "https://h/x?api%5Fkey=***&q=1");
}

static void urls_without_credentials_are_unchanged(void **state) {
  (void)state;
  masked_is("https://api.example/v1/ioc?value=1.2.3.4", "https://api.example/v1/ioc?value=1.2.3.4");
  masked_is("https://api.example/v1/whois/example.com", "https://api.example/v1/whois/example.com");
  masked_is("https://h/x?flag&value=", "https://h/x?flag&value=");
}

static void a_fragment_is_kept_and_a_question_mark_in_it_is_not_a_query(void **state) {
  (void)state;
  masked_is("https://h/x?key=1#frag", "https://h/x?key=***#frag");
  masked_is("https://h/x#a?key=1", "https://h/x#a?key=1");
}

static void the_password_of_user_info_is_masked(void **state) {
  (void)state;
  masked_is("https://user:pa55@h/x?value=1", "https://user:***@h/x?value=1");
  masked_is("https://user@h/x", "https://user@h/x");
}

static void credential_names_follow_the_word_rule(void **state) {
  (void)state;
  const char *yes[] = {"X-Api-Key",     "Authorization", "Cookie",       "Set-Cookie",
                       "client_secret", "passwd",        "X-Auth-Token", "Bearer"};
  const char *no[] = {"Content-Type", "Accept", "value", "X-Request-Id", "Retry-After"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    assert_true(tq_net_secret_name(yes[i], strlen(yes[i])));
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    assert_false(tq_net_secret_name(no[i], strlen(no[i])));
}

static void mask_finds_a_secret_in_any_case_reversed_and_in_part(void **state) {
  (void)state;
  tq_lua_kv secrets[] = {{"api_key", "Abcdef0123456789"}};
  const char *text = "echo ABCDEF0123456789 / 9876543210fedcbA / part 0123456789 / ok";
  size_t len = 0;
  char *got = tq_lua_mask(secrets, 1, text, strlen(text), "{{redacted}}", &len);
  assert_non_null(got);
  assert_string_equal(got, "echo {{redacted}} / {{redacted}} / part {{redacted}} / ok");
  assert_int_equal(len, strlen(got));
  free(got);
  /* shorter than TQ_LUA_REDACT_MIN: ordinary words stay */
  tq_lua_kv tiny[] = {{"k", "ke"}};
  got = tq_lua_mask(tiny, 1, "keep the key", 12, "*", NULL);
  assert_string_equal(got, "keep the key");
  free(got);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(credential_query_values_are_masked_and_the_rest_kept),
      cmocka_unit_test(urls_without_credentials_are_unchanged),
      cmocka_unit_test(a_fragment_is_kept_and_a_question_mark_in_it_is_not_a_query),
      cmocka_unit_test(the_password_of_user_info_is_masked),
      cmocka_unit_test(credential_names_follow_the_word_rule),
      cmocka_unit_test(mask_finds_a_secret_in_any_case_reversed_and_in_part),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
