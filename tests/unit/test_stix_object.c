/* test_stix_object.c: STIX objects as a feed delivers them: valid objects of each type the
 * mapper reads, missing or malformed properties named in the error, ids, timestamps compared
 * as instants, UUIDv5 known vectors, canonical JSON, envelopes and bundles with a bad object
 * in the middle, and a page-sized timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tqhost/stix.h"

#define COMMON                                                                                     \
  "\"spec_version\": \"2.1\", \"created\": \"2024-01-02T03:04:05.000Z\", "                         \
  "\"modified\": \"2024-01-02T03:04:05.000Z\""

/* Parses one object from JSON text; returns its code and leaves the message in err. */
static tq_code parse_one(const char *json, cJSON **root, tq_stix_object *obj, tq_err *err) {
  *root = cJSON_Parse(json);
  assert_non_null(*root);
  return tq_stix_object_parse(*root, obj, err);
}

static void test_indicator_is_parsed_with_common_properties(void **state) {
  (void)state;
  const char *json =
      "{\"type\": \"indicator\", \"id\": "
      "\"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\", " COMMON
      ", \"name\": \"bad ip\", \"pattern\": \"[ipv4-addr:value = '10.0.0.1']\", "
      "\"pattern_type\": \"stix\", \"valid_from\": \"2024-01-02T03:04:05Z\", "
      "\"valid_until\": \"2024-02-02T03:04:05.5+01:00\", \"revoked\": true, \"confidence\": 85, "
      "\"labels\": [\"malicious-activity\", \"c2\"], \"indicator_types\": "
      "[\"malicious-activity\"], "
      "\"object_marking_refs\": [\"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da\"], "
      "\"external_references\": [{\"source_name\": \"rst\", \"url\": \"https://x/y\"}], "
      "\"kill_chain_phases\": [{\"kill_chain_name\": \"lockheed\", \"phase_name\": \"c2\"}], "
      "\"x_rst_score\": 77}";
  cJSON *root;
  tq_stix_object o;
  tq_err err = {0};
  assert_int_equal(parse_one(json, &root, &o, &err), TQ_OK);
  assert_int_equal(o.kind, TQ_STIX_SDO);
  assert_string_equal(o.type, "indicator");
  assert_string_equal(o.id, "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f");
  assert_string_equal(o.spec_version, "2.1");
  assert_string_equal(o.pattern, "[ipv4-addr:value = '10.0.0.1']");
  assert_string_equal(o.pattern_type, "stix");
  assert_string_equal(o.name, "bad ip");
  assert_true(o.has_valid_until);
  assert_int_equal(o.valid_until.seconds - o.valid_from.seconds, 31 * 86400 - 3600);
  assert_int_equal(o.valid_until.nanos, 500000000);
  assert_true(o.revoked);
  assert_int_equal(o.confidence, 85);
  assert_int_equal(o.labels.n, 2);
  assert_string_equal(o.labels.v[1], "c2");
  assert_int_equal(o.types.n, 1);
  assert_string_equal(tq_stix_tlp_from_marking_ref(o.object_marking_refs.v[0]), "TLP:GREEN");
  assert_int_equal(o.n_external_references, 1);
  assert_string_equal(o.external_references[0].url, "https://x/y");
  assert_null(o.external_references[0].external_id);
  assert_int_equal(o.n_kill_chain_phases, 1);
  assert_string_equal(o.kill_chain_phases[0].phase_name, "c2");
  assert_int_equal(cJSON_GetObjectItem(o.json, "x_rst_score")->valueint, 77);
  tq_stix_object_clear(&o);
  cJSON_Delete(root);
}

static void test_each_type_parses_when_complete(void **state) {
  (void)state;
  static const char *objects[] = {
      "{\"type\": \"malware\", \"id\": \"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\", " COMMON
      ", \"is_family\": true, \"name\": \"Emotet\"}",
      "{\"type\": \"malware\", \"id\": \"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\", " COMMON
      "}",
      "{\"type\": \"report\", \"id\": \"report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3\", " COMMON
      ", \"name\": \"r\", \"published\": \"2024-01-01T00:00:00Z\", \"object_refs\": "
      "[\"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\"]}",
      "{\"type\": \"relationship\", \"id\": "
      "\"relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad\", " COMMON
      ", \"relationship_type\": \"indicates\", "
      "\"source_ref\": \"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\", "
      "\"target_ref\": \"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\"}",
      "{\"type\": \"threat-actor\", \"id\": "
      "\"threat-actor--56f3f0db-b5d5-431c-ae56-c18f02caf500\", " COMMON ", \"name\": \"APT\"}",
      "{\"type\": \"intrusion-set\", \"id\": "
      "\"intrusion-set--4e78f46f-a023-4e5f-bc24-71b3ca22ec29\", " COMMON
      ", \"name\": \"IS\", \"aliases\": [\"a\", \"b\"]}",
      "{\"type\": \"attack-pattern\", \"id\": "
      "\"attack-pattern--7e33a43e-e34b-40ec-89da-36c9bb2cacd5\", " COMMON
      ", \"name\": \"Spearphishing\", \"external_references\": [{\"source_name\": "
      "\"mitre-attack\", \"external_id\": \"T1566\"}]}",
      "{\"type\": \"vulnerability\", \"id\": "
      "\"vulnerability--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061\", " COMMON
      ", \"name\": \"CVE-2021-44228\"}",
      "{\"type\": \"sighting\", \"id\": \"sighting--ee20065d-2555-424f-ad9e-0f8fd2c6b5e0\", " COMMON
      ", \"sighting_of_ref\": \"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\"}",
      "{\"type\": \"marking-definition\", \"spec_version\": \"2.1\", \"id\": "
      "\"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da\", \"created\": "
      "\"2017-01-20T00:00:00.000Z\", \"definition_type\": \"tlp\", \"definition\": {\"tlp\": "
      "\"green\"}}",
      "{\"type\": \"domain-name\", \"id\": \"domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7\", "
      "\"value\": \"example.com\"}",
      "{\"type\": \"file\", \"id\": \"file--fcf7cc3b-40aa-5905-8ed6-612be9a4a7d2\", "
      "\"hashes\": {\"MD5\": \"3773a88f65a5e780c8dff9cdc3a056f3\"}}",
      "{\"type\": \"x-mitre-tactic\", \"id\": "
      "\"x-mitre-tactic--ffd5bcee-6e16-4dd2-8eca-7b3beedf33ca\", "
      "\"x_mitre_shortname\": \"execution\"}",
  };
  static const tq_stix_kind kinds[] = {
      TQ_STIX_SDO, TQ_STIX_SDO, TQ_STIX_SDO,  TQ_STIX_SRO, TQ_STIX_SDO, TQ_STIX_SDO,   TQ_STIX_SDO,
      TQ_STIX_SDO, TQ_STIX_SRO, TQ_STIX_META, TQ_STIX_SCO, TQ_STIX_SCO, TQ_STIX_CUSTOM};
  for (size_t i = 0; i < sizeof objects / sizeof *objects; i++) {
    cJSON *root;
    tq_stix_object o;
    tq_err err = {0};
    if (parse_one(objects[i], &root, &o, &err) != TQ_OK)
      fail_msg("object %zu: %s", i, err.msg);
    assert_int_equal(o.kind, kinds[i]);
    tq_stix_object_clear(&o);
    cJSON_Delete(root);
  }
}

static void test_mapper_fields_of_relationship_report_malware_sco(void **state) {
  (void)state;
  cJSON *root;
  tq_stix_object o;
  const char *rel = "{\"type\": \"relationship\", \"id\": "
                    "\"relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad\", " COMMON
                    ", \"relationship_type\": \"uses\", \"source_ref\": "
                    "\"intrusion-set--4e78f46f-a023-4e5f-bc24-71b3ca22ec29\", \"target_ref\": "
                    "\"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\"}";
  assert_int_equal(parse_one(rel, &root, &o, NULL), TQ_OK);
  assert_string_equal(o.relationship_type, "uses");
  assert_string_equal(o.target_ref, "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b");
  tq_stix_object_clear(&o);
  cJSON_Delete(root);
  const char *mal = "{\"type\": \"malware\", \"id\": \"malware--31b940d4-6f7f-459a-80ea-"
                    "9c1f17b5891b\", " COMMON ", \"is_family\": false}";
  assert_int_equal(parse_one(mal, &root, &o, NULL), TQ_OK);
  assert_int_equal(o.is_family, 0);
  tq_stix_object_clear(&o);
  cJSON_Delete(root);
  const char *url = "{\"type\": \"url\", \"id\": \"url--c1477287-23ac-5971-a010-5c287877fa60\", "
                    "\"value\": \"http://x/\"}";
  assert_int_equal(parse_one(url, &root, &o, NULL), TQ_OK);
  assert_string_equal(o.value, "http://x/");
  assert_null(o.spec_version);
  assert_int_equal(o.confidence, -1);
  tq_stix_object_clear(&o);
  cJSON_Delete(root);
}

typedef struct bad_case {
  const char *json;
  const char *message;
} bad_case;

#define IND_ID "\"id\": \"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\""
#define IND_WHO "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"

static const bad_case bad_cases[] = {
    {"{\"type\": \"indicator\", " IND_ID ", " COMMON
     ", \"pattern_type\": \"stix\", \"valid_from\": \"2024-01-01T00:00:00Z\"}",
     IND_WHO ": 'pattern': required property is missing"},
    {"{\"type\": \"indicator\", " IND_ID ", " COMMON
     ", \"pattern\": \"[a:b = 1]\", \"valid_from\": \"2024-01-01T00:00:00Z\"}",
     IND_WHO ": 'pattern_type': required property is missing"},
    {"{\"type\": \"indicator\", " IND_ID ", " COMMON
     ", \"pattern\": \"[a:b = 1]\", \"pattern_type\": \"stix\"}",
     IND_WHO ": 'valid_from': required property is missing"},
    {"{\"type\": \"indicator\", " IND_ID ", " COMMON
     ", \"pattern\": \"[a:b = 1]\", \"pattern_type\": \"stix\", \"valid_from\": "
     "\"2024-01-01T00:00:00Z\", \"valid_until\": \"2023-01-01T00:00:00Z\"}",
     IND_WHO ": 'valid_until': must be later than valid_from"},
    {"{\"type\": \"indicator\", " IND_ID ", \"spec_version\": \"2.1\", \"modified\": "
     "\"2024-01-02T03:04:05.000Z\", \"pattern\": \"[a:b = 1]\", \"pattern_type\": \"stix\", "
     "\"valid_from\": \"2024-01-01T00:00:00Z\"}",
     IND_WHO ": 'created': required property is missing"},
    {"{\"type\": \"indicator\", " IND_ID ", \"created\": \"2024-01-02T03:04:05.000Z\", "
     "\"modified\": \"2024-01-02T03:04:05.000Z\"}",
     IND_WHO ": 'spec_version': required property is missing"},
    {"{\"type\": \"indicator\", " IND_ID ", \"spec_version\": \"2.1\", \"created\": "
     "\"2024-13-02T03:04:05.000Z\", \"modified\": \"2024-01-02T03:04:05.000Z\"}",
     IND_WHO ": 'created': '2024-13-02T03:04:05.000Z' is not a timestamp: no such date"},
    {"{\"type\": \"indicator\", \"id\": \"indicator--not-a-uuid\", " COMMON "}",
     "indicator--not-a-uuid: 'id': id 'indicator--not-a-uuid': 'not-a-uuid' is not a UUID"},
    {"{\"type\": \"indicator\", \"id\": \"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\", " COMMON
     "}",
     "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b: 'id': id "
     "'malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b' does not start with the object's type "
     "'indicator--'"},
    {"{\"type\": \"indicator\", " COMMON "}", "indicator: 'id': required property is missing"},
    {"{\"id\": \"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\"}",
     IND_WHO ": 'type': required property is missing"},
    {"{\"type\": \"Indicator\", " IND_ID "}", IND_WHO ": 'type': 'Indicator' may hold only a-z, "
                                                      "0-9 and '-'"},
    {"{\"type\": \"malware\", \"id\": \"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\", " COMMON
     ", \"is_family\": true}",
     "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b: 'name': required when is_family is true"},
    {"{\"type\": \"report\", \"id\": \"report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3\", " COMMON
     ", \"name\": \"r\", \"published\": \"2024-01-01T00:00:00Z\", \"object_refs\": []}",
     "report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3: 'object_refs': required property is empty"},
    {"{\"type\": \"report\", \"id\": \"report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3\", " COMMON
     ", \"name\": \"r\", \"object_refs\": [\"x--1\"]}",
     "report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3: 'published': required property is missing"},
    {"{\"type\": \"relationship\", \"id\": "
     "\"relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad\", " COMMON
     ", \"relationship_type\": \"uses\", \"source_ref\": \"intrusion-set--4e78f46f-a023-"
     "4e5f-bc24-71b3ca22ec29\"}",
     "relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad: 'target_ref': required property is "
     "missing"},
    {"{\"type\": \"relationship\", \"id\": "
     "\"relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad\", " COMMON
     ", \"relationship_type\": \"uses\", \"source_ref\": \"nope\", \"target_ref\": \"x\"}",
     "relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad: 'source_ref': id 'nope' is not "
     "<type>--<UUID>"},
    {"{\"type\": \"threat-actor\", \"id\": "
     "\"threat-actor--56f3f0db-b5d5-431c-ae56-c18f02caf500\", " COMMON ", \"name\": \"\"}",
     "threat-actor--56f3f0db-b5d5-431c-ae56-c18f02caf500: 'name': required property is empty"},
    {"{\"type\": \"attack-pattern\", \"id\": \"attack-pattern--7e33a43e-e34b-40ec-89da-"
     "36c9bb2cacd5\", " COMMON ", \"name\": \"x\", \"external_references\": [{\"url\": \"u\"}]}",
     "attack-pattern--7e33a43e-e34b-40ec-89da-36c9bb2cacd5: 'external_references': item 0 has "
     "no string source_name"},
    {"{\"type\": \"tool\", \"id\": \"tool--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\", " COMMON
     ", \"name\": \"t\", \"labels\": [\"a\", 3]}",
     "tool--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f: 'labels': item 1 must be a string"},
    {"{\"type\": \"tool\", \"id\": \"tool--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\", " COMMON
     ", \"name\": \"t\", \"confidence\": 101}",
     "tool--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f: 'confidence': must be an integer 0..100"},
    {"{\"type\": \"ipv4-addr\", \"id\": \"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd\"}",
     "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd: 'value': required property is missing"},
    {"{\"type\": \"marking-definition\", \"spec_version\": \"2.1\", \"id\": "
     "\"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da\"}",
     "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da: 'created': required property "
     "is missing"},
};

static void test_bad_objects_name_the_property(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
    cJSON *root;
    tq_stix_object o;
    tq_err err = {0};
    if (parse_one(bad_cases[i].json, &root, &o, &err) != TQ_EINVAL)
      fail_msg("case %zu accepted: %s", i, bad_cases[i].json);
    if (strcmp(err.msg, bad_cases[i].message) != 0)
      fail_msg("case %zu:\n got: %s\nwant: %s", i, err.msg, bad_cases[i].message);
    assert_null(o.labels.v); /* cleared on failure */
    cJSON_Delete(root);
  }
}

static void test_timestamps_compare_as_instants(void **state) {
  (void)state;
  static const char *same[] = {
      "2024-05-06T07:08:09.1Z",      "2024-05-06T07:08:09.100Z",
      "2024-05-06T07:08:09.100000Z", "2024-05-06T07:08:09.100000000Z",
      "2024-05-06T09:08:09.1+02:00", "2024-05-06T02:08:09.1-0500",
      "2024-05-06t07:08:09.1z",      "2024-05-06T07:08:09.1000000000001Z",
  };
  tq_stix_time ref, t;
  tq_err err = {0};
  assert_int_equal(tq_stix_time_parse(same[0], &ref, &err), TQ_OK);
  assert_int_equal(ref.seconds, 1714979289);
  assert_int_equal(ref.nanos, 100000000);
  for (size_t i = 1; i < sizeof same / sizeof *same; i++) {
    if (tq_stix_time_parse(same[i], &t, &err) != TQ_OK)
      fail_msg("%s: %s", same[i], err.msg);
    if (tq_stix_time_cmp(t, ref) != 0)
      fail_msg("%s is not the same instant as %s", same[i], same[0]);
  }
  /* 0 to 9 fractional digits, each keeping its precision */
  static const char *digits[] = {"2024-05-06T07:08:09Z",          "2024-05-06T07:08:09.1Z",
                                 "2024-05-06T07:08:09.12Z",       "2024-05-06T07:08:09.123Z",
                                 "2024-05-06T07:08:09.1234Z",     "2024-05-06T07:08:09.12345Z",
                                 "2024-05-06T07:08:09.123456Z",   "2024-05-06T07:08:09.1234567Z",
                                 "2024-05-06T07:08:09.12345678Z", "2024-05-06T07:08:09.123456789Z"};
  static const int32_t nanos[] = {0,         100000000, 120000000, 123000000, 123400000,
                                  123450000, 123456000, 123456700, 123456780, 123456789};
  tq_stix_time prev = {0, 0};
  for (size_t i = 0; i < 10; i++) {
    assert_int_equal(tq_stix_time_parse(digits[i], &t, NULL), TQ_OK);
    assert_int_equal(t.nanos, nanos[i]);
    if (i > 0)
      assert_true(tq_stix_time_cmp(prev, t) < 0);
    prev = t;
  }
  tq_stix_time a, b;
  tq_stix_time_parse("2024-05-06T07:08:09.000000001Z", &a, NULL);
  tq_stix_time_parse("2024-05-06T07:08:09.000000002Z", &b, NULL);
  assert_true(tq_stix_time_cmp(a, b) < 0 && tq_stix_time_cmp(b, a) > 0);
  tq_stix_time_parse("2024-05-06T07:08:09.999Z", &a, NULL);
  tq_stix_time_parse("2024-05-06T08:08:09.5+01:00", &b, NULL);
  assert_true(tq_stix_time_cmp(a, b) > 0);
}

static void test_bad_timestamps_are_rejected_with_reason(void **state) {
  (void)state;
  static const char *bad[] = {"2024-05-06",
                              "2024-05-06T07:08Z",
                              "2024-05-06T07:08:09.Z",
                              "2024-02-30T00:00:00Z",
                              "2024-05-06T24:00:00Z",
                              "2024-05-06T07:08:09Zjunk",
                              "2024-05-06T07:08:09+5",
                              "yesterday"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    tq_stix_time t;
    tq_err err = {0};
    if (tq_stix_time_parse(bad[i], &t, &err) != TQ_EINVAL)
      fail_msg("%s accepted", bad[i]);
    assert_non_null(strstr(err.msg, bad[i]));
  }
  tq_stix_time t;
  assert_int_equal(tq_stix_time_parse("2016-12-31T23:59:60Z", &t, NULL), TQ_OK); /* leap s */
}

static void test_time_format_round_trips(void **state) {
  (void)state;
  static const char *texts[] = {"2024-05-06T07:08:09.000Z", "2024-05-06T07:08:09.120Z",
                                "1969-12-31T23:59:59.123456Z", "2024-02-29T00:00:00.000000001Z"};
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    tq_stix_time t;
    char out[TQ_STIX_TIME_LEN];
    assert_int_equal(tq_stix_time_parse(texts[i], &t, NULL), TQ_OK);
    tq_stix_time_format(t, out);
    assert_string_equal(out, texts[i]);
  }
}

static void test_sco_ids_match_known_vectors(void **state) {
  (void)state;
  char id[TQ_STIX_ID_MAX];
  tq_err err = {0};
  /* python-stix2's DomainName(value="example.com") */
  assert_int_equal(tq_stix_id_sco_value("domain-name", "value", "example.com", id, &err), TQ_OK);
  assert_string_equal(id, "domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7");
  assert_int_equal(tq_stix_id_sco_value("domain-name", "value", "control.example.com", id, &err),
                   TQ_OK);
  assert_string_equal(id, "domain-name--427e3664-0043-5865-b454-97df26649bde");
  /* file: one hash (MD5 first) plus name, keys sorted: {"hashes":{"MD5":..},"name":..} */
  cJSON *file = cJSON_Parse("{\"type\": \"file\", \"name\": \"foo.exe\", \"size\": 3, "
                            "\"hashes\": {\"SHA-256\": \"ab\", \"MD5\": "
                            "\"3773a88f65a5e780c8dff9cdc3a056f3\"}}");
  assert_int_equal(tq_stix_id_sco(file, id, &err), TQ_OK);
  assert_string_equal(id, "file--fcf7cc3b-40aa-5905-8ed6-612be9a4a7d2");
  cJSON_Delete(file);
  cJSON *as = cJSON_Parse("{\"type\": \"autonomous-system\", \"number\": 15139}");
  assert_int_equal(tq_stix_id_sco(as, id, &err), TQ_OK);
  assert_string_equal(id, "autonomous-system--3aa27478-50b5-5ab8-9da9-cdc12b657fff");
  cJSON_Delete(as);
  /* a process has no ID Contributing Properties: a random v4 id */
  cJSON *proc = cJSON_Parse("{\"type\": \"process\", \"pid\": 4}");
  assert_int_equal(tq_stix_id_sco(proc, id, &err), TQ_OK);
  assert_int_equal(id[strlen("process--") + 14], '4');
  cJSON_Delete(proc);
}

static void test_v4_and_tqhost_ids(void **state) {
  (void)state;
  char a[TQ_STIX_ID_MAX], b[TQ_STIX_ID_MAX];
  assert_int_equal(tq_stix_id_random("report", a, NULL), TQ_OK);
  assert_int_equal(tq_stix_id_random("report", b, NULL), TQ_OK);
  assert_string_not_equal(a, b);
  assert_int_equal(tq_stix_id_check(a, "report", NULL), TQ_OK);
  assert_int_equal(a[strlen("report--") + 14], '4');
  assert_non_null(strchr("89ab", a[strlen("report--") + 19]));
  assert_int_equal(tq_stix_id_tqhost("indicator", "IP Address:10.0.0.1", a, NULL), TQ_OK);
  assert_int_equal(tq_stix_id_tqhost("indicator", "IP Address:10.0.0.1", b, NULL), TQ_OK);
  assert_string_equal(a, b);
  assert_int_equal(a[strlen("indicator--") + 14], '5');
  /* the namespace is what the header says: UUIDv5(DNS, "stix.tqhost") */
  static const uint8_t dns[16] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                  0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
  assert_int_equal(tq_stix_id_v5("x-ns", dns, "stix.tqhost", 11, a, NULL), TQ_OK);
  assert_string_equal(a, "x-ns--852f223f-b206-542d-aaa8-063b22e00cf6");
  tq_err err = {0};
  assert_int_equal(tq_stix_id_random("Bad Type", a, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "Bad Type"));
}

static void test_canonical_json(void **state) {
  (void)state;
  cJSON *v = cJSON_Parse("{\"b\": [1, 2.5, -0.000001, 1e21, 1e-7, 100, true, null], "
                         "\"a\": {\"z\": \"q\\\"\\\\\\n\\u0001\\u00e9\", \"y\": false}}");
  tq_buf out;
  tq_buf_init(&out, 0);
  assert_int_equal(tq_stix_json_canonical(v, &out, NULL), TQ_OK);
  assert_string_equal(out.data, "{\"a\":{\"y\":false,\"z\":\"q\\\"\\\\\\n\\u0001\xc3\xa9\"},"
                                "\"b\":[1,2.5,-0.000001,1e+21,1e-7,100,true,null]}");
  tq_buf_free(&out);
  cJSON_Delete(v);
}

static void test_envelope_with_a_bad_object_in_the_middle(void **state) {
  (void)state;
  const char *env =
      "{\"more\": true, \"next\": \"abc\", \"objects\": ["
      "{\"type\": \"indicator\", " IND_ID ", " COMMON ", \"pattern\": \"[a:b = 1]\", "
      "\"pattern_type\": \"stix\", \"valid_from\": \"2024-01-01T00:00:00Z\"},"
      "{\"type\": \"indicator\", \"id\": "
      "\"indicator--00000000-17d4-4cbf-938f-98ee46b3cd3f\", " COMMON
      ", \"pattern_type\": \"stix\", \"valid_from\": \"2024-01-01T00:00:00Z\"},"
      "42,"
      "{\"type\": \"malware\", \"id\": \"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b\", " COMMON
      ", \"is_family\": true, \"name\": \"Emotet\"}]}";
  tq_stix_page page;
  tq_err err = {0};
  assert_int_equal(tq_stix_page_parse(env, strlen(env), 0, &page, &err), TQ_OK);
  assert_false(page.is_bundle);
  assert_true(page.more);
  assert_string_equal(page.next, "abc");
  assert_int_equal(page.n_objects, 2);
  assert_string_equal(page.objects[0].type, "indicator");
  assert_string_equal(page.objects[1].name, "Emotet");
  assert_int_equal(page.n_bad, 2);
  assert_int_equal(page.bad[0].index, 1);
  assert_string_equal(page.bad[0].id, "indicator--00000000-17d4-4cbf-938f-98ee46b3cd3f");
  assert_string_equal(page.bad[0].message,
                      "object 1: indicator--00000000-17d4-4cbf-938f-98ee46b3cd3f: 'pattern': "
                      "required property is missing");
  assert_int_equal(page.bad[1].index, 2);
  assert_null(page.bad[1].id);
  assert_string_equal(page.bad[1].message, "object 2: object: not a JSON object");
  tq_stix_page_free(&page);
}

static void test_bundle_and_page_level_errors(void **state) {
  (void)state;
  const char *bundle = "{\"type\": \"bundle\", \"id\": \"bundle--5d0092c5-5f74-4287-9642-"
                       "33f4c354e56d\", \"objects\": [{\"type\": \"ipv4-addr\", \"id\": "
                       "\"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd\", \"value\": "
                       "\"198.51.100.3\"}]}";
  tq_stix_page page;
  tq_err err = {0};
  assert_int_equal(tq_stix_page_parse(bundle, strlen(bundle), 0, &page, &err), TQ_OK);
  assert_true(page.is_bundle);
  assert_int_equal(page.n_objects, 1);
  assert_string_equal(page.objects[0].value, "198.51.100.3");
  tq_stix_page_free(&page);
  assert_int_equal(tq_stix_page_parse("{}", 2, 0, &page, &err), TQ_OK);
  assert_int_equal(page.n_objects + page.n_bad, 0);
  tq_stix_page_free(&page);
  assert_int_equal(tq_stix_page_parse("{\"objects\": [1,", 15, 0, &page, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "not JSON"));
  assert_int_equal(tq_stix_page_parse("{\"objects\": {}}", 15, 0, &page, &err), TQ_EINVAL);
  assert_string_equal(err.msg, "STIX page: 'objects' must be a list");
  const char *three = "{\"objects\": [1, 2, 3]}";
  assert_int_equal(tq_stix_page_parse(three, strlen(three), 2, &page, &err), TQ_ELIMIT);
  assert_non_null(strstr(err.msg, "more than the limit 2"));
}

/* A page of 1,000 indicators parsed, checked and their patterns parsed. */
static void test_thousand_indicator_page_is_fast(void **state) {
  (void)state;
  tq_buf b;
  tq_buf_init(&b, 0);
  tq_buf_adds(&b, "{\"more\": false, \"objects\": [");
  for (int i = 0; i < 1000; i++)
    tq_buf_printf(&b,
                  "%s{\"type\": \"indicator\", \"id\": \"indicator--%08x-17d4-4cbf-938f-"
                  "98ee46b3cd3f\", " COMMON ", \"pattern\": \"[ipv4-addr:value = '10.0.%d.%d']\", "
                  "\"pattern_type\": \"stix\", \"valid_from\": \"2024-01-01T00:00:00.123456Z\", "
                  "\"labels\": [\"x\"], \"confidence\": 50}",
                  i ? "," : "", (unsigned)i, i / 256, i % 256);
  tq_buf_adds(&b, "]}");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  tq_stix_page page;
  assert_int_equal(tq_stix_page_parse(b.data, b.len, 0, &page, NULL), TQ_OK);
  size_t iocs = 0;
  for (size_t i = 0; i < page.n_objects; i++) {
    tq_stix_pattern *p = NULL;
    const char *pat = page.objects[i].pattern;
    assert_int_equal(tq_stix_pattern_parse(pat, strlen(pat), &p, NULL, NULL), TQ_OK);
    iocs += p->n_observables;
    tq_stix_pattern_free(p);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  print_message("page of 1000 indicators (%zu bytes) parsed with patterns in %.2f ms\n", b.len, ms);
  assert_int_equal(page.n_objects, 1000);
  assert_int_equal(iocs, 1000);
  assert_true(ms < 2000.0); /* generous: sanitizers slow this down ~10x */
  tq_stix_page_free(&page);
  tq_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_indicator_is_parsed_with_common_properties),
      cmocka_unit_test(test_each_type_parses_when_complete),
      cmocka_unit_test(test_mapper_fields_of_relationship_report_malware_sco),
      cmocka_unit_test(test_bad_objects_name_the_property),
      cmocka_unit_test(test_timestamps_compare_as_instants),
      cmocka_unit_test(test_bad_timestamps_are_rejected_with_reason),
      cmocka_unit_test(test_time_format_round_trips),
      cmocka_unit_test(test_sco_ids_match_known_vectors),
      cmocka_unit_test(test_v4_and_tqhost_ids),
      cmocka_unit_test(test_canonical_json),
      cmocka_unit_test(test_envelope_with_a_bad_object_in_the_middle),
      cmocka_unit_test(test_bundle_and_page_level_errors),
      cmocka_unit_test(test_thousand_indicator_page_is_fast),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
