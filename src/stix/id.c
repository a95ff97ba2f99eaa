/* id.c: STIX identifiers: checking "<type>--<UUID>", random UUIDv4 ids, UUIDv5 ids (SHA-1
 * from OpenSSL's libcrypto), RFC 8785 canonical JSON and the deterministic ids of SCOs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>

#include "stix_int.h"

const uint8_t tq_stix_sco_namespace[16] = {0x00, 0xab, 0xed, 0xb4, 0xaa, 0x42, 0x46, 0x6c,
                                           0x9c, 0x01, 0xfe, 0xd2, 0x33, 0x15, 0xa9, 0xb7};
const uint8_t tq_stix_tqhost_namespace[16] = {0x85, 0x2f, 0x22, 0x3f, 0xb2, 0x06, 0x54, 0x2d,
                                              0xaa, 0xa8, 0x0a, 0x06, 0x3b, 0x22, 0x00, 0xcf};

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

const char *stix_type_problem(const char *type, size_t n) {
  if (n < 3 || n > 250)
    return "must be 3 to 250 characters";
  for (size_t i = 0; i < n; i++) {
    char c = type[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return "may hold only a-z, 0-9 and '-'";
    if (c == '-' && i + 1 < n && type[i + 1] == '-')
      return "may not hold \"--\"";
  }
  return NULL;
}

tq_code tq_stix_id_check(const char *id, const char *type, tq_err *err) {
  if (id == NULL)
    return tq_err_set(err, TQ_EINVAL, "id is missing");
  const char *sep = strstr(id, "--");
  if (sep == NULL)
    return tq_err_set(err, TQ_EINVAL, "id '%.100s' is not <type>--<UUID>", id);
  size_t tlen = (size_t)(sep - id);
  const char *why = stix_type_problem(id, tlen);
  if (why)
    return tq_err_set(err, TQ_EINVAL, "id '%.100s': the type %s", id, why);
  if (type && (strlen(type) != tlen || memcmp(type, id, tlen) != 0))
    return tq_err_set(err, TQ_EINVAL, "id '%.100s' does not start with the object's type '%s--'",
                      id, type);
  const char *u = sep + 2;
  static const int dash_at[4] = {8, 13, 18, 23};
  size_t ulen = strlen(u);
  int ok = ulen == 36;
  for (size_t i = 0, k = 0; ok && i < 36; i++) {
    if (k < 4 && (int)i == dash_at[k]) {
      ok = u[i] == '-';
      k++;
    } else {
      ok = is_hex(u[i]);
    }
  }
  if (!ok)
    return tq_err_set(err, TQ_EINVAL, "id '%.100s': '%.40s' is not a UUID", id, u);
  return TQ_OK;
}

static tq_code format_id(const char *type, const uint8_t u[16], char out[TQ_STIX_ID_MAX],
                         tq_err *err) {
  const char *why = type ? stix_type_problem(type, strlen(type)) : "is missing";
  if (why)
    return tq_err_set(err, TQ_EINVAL, "STIX type '%.60s' %s", type ? type : "", why);
  snprintf(out, TQ_STIX_ID_MAX,
           "%s--%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", type, u[0],
           u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
           u[15]);
  return TQ_OK;
}

tq_code tq_stix_id_random(const char *type, char out[TQ_STIX_ID_MAX], tq_err *err) {
  uint8_t u[16];
  size_t got = 0;
  while (got < sizeof u) {
    ssize_t n = getrandom(u + got, sizeof u - got, 0);
    if (n < 0)
      return tq_err_set(err, TQ_EIO, "getrandom failed while making a UUIDv4");
    got += (size_t)n;
  }
  u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
  u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
  return format_id(type, u, out, err);
}

tq_code tq_stix_id_v5(const char *type, const uint8_t ns[16], const void *name, size_t len,
                      char out[TQ_STIX_ID_MAX], tq_err *err) {
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) && EVP_DigestUpdate(ctx, ns, 16) &&
           EVP_DigestUpdate(ctx, name, len) && EVP_DigestFinal_ex(ctx, md, &mdlen);
  EVP_MD_CTX_free(ctx);
  if (!ok || mdlen < 16)
    return tq_err_set(err, TQ_EINTERNAL, "SHA-1 (libcrypto) failed while making a UUIDv5");
  md[6] = (uint8_t)((md[6] & 0x0f) | 0x50);
  md[8] = (uint8_t)((md[8] & 0x3f) | 0x80);
  return format_id(type, md, out, err);
}

tq_code tq_stix_id_tqhost(const char *type, const char *name, char out[TQ_STIX_ID_MAX],
                          tq_err *err) {
  if (name == NULL)
    return tq_err_set(err, TQ_EINVAL, "a tqhost id needs a name");
  return tq_stix_id_v5(type, tq_stix_tqhost_namespace, name, strlen(name), out, err);
}

/* ---- RFC 8785 canonical JSON ------------------------------------------------------------ */

static tq_code jcs_string(const char *s, tq_buf *out) {
  tq_code rc = tq_buf_addc(out, '"');
  for (const unsigned char *p = (const unsigned char *)s; rc == TQ_OK && *p; p++) {
    switch (*p) {
    case '"': rc = tq_buf_adds(out, "\\\""); break;
    case '\\': rc = tq_buf_adds(out, "\\\\"); break;
    case '\b': rc = tq_buf_adds(out, "\\b"); break;
    case '\f': rc = tq_buf_adds(out, "\\f"); break;
    case '\n': rc = tq_buf_adds(out, "\\n"); break;
    case '\r': rc = tq_buf_adds(out, "\\r"); break;
    case '\t': rc = tq_buf_adds(out, "\\t"); break;
    default: rc = *p < 0x20 ? tq_buf_printf(out, "\\u%04x", *p) : tq_buf_addc(out, (char)*p);
    }
  }
  return rc == TQ_OK ? tq_buf_addc(out, '"') : rc;
}

/* ECMAScript Number::toString, which RFC 8785 prescribes: the shortest digits that round-trip,
 * plain notation for decimal exponents -6..20, else d.ddde+N. */
static tq_code jcs_number(double v, tq_buf *out, tq_err *err) {
  if (!isfinite(v))
    return tq_err_set(err, TQ_EINVAL, "canonical JSON has no form for NaN or infinity");
  if (v == 0)
    return tq_buf_addc(out, '0');
  char e[40], digs[20];
  int prec = 1;
  for (; prec <= 17; prec++) {
    snprintf(e, sizeof e, "%.*e", prec - 1, v);
    if (strtod(e, NULL) == v)
      break;
  }
  const char *p = e;
  tq_code rc = TQ_OK;
  if (*p == '-') {
    rc = tq_buf_addc(out, '-');
    p++;
  }
  int k = 0;
  for (; *p && *p != 'e'; p++)
    if (*p != '.')
      digs[k++] = *p;
  while (k > 1 && digs[k - 1] == '0')
    k--;
  digs[k] = '\0';
  int n = atoi(p + 1) + 1; /* v = 0.digs x 10^n */
  if (k <= n && n <= 21) {
    rc = rc ? rc : tq_buf_adds(out, digs);
    for (int i = k; rc == TQ_OK && i < n; i++)
      rc = tq_buf_addc(out, '0');
  } else if (0 < n && n <= 21) {
    rc = rc ? rc : tq_buf_printf(out, "%.*s.%s", n, digs, digs + n);
  } else if (-6 < n && n <= 0) {
    rc = rc ? rc : tq_buf_adds(out, "0.");
    for (int i = 0; rc == TQ_OK && i < -n; i++)
      rc = tq_buf_addc(out, '0');
    rc = rc ? rc : tq_buf_adds(out, digs);
  } else {
    rc = rc ? rc
            : tq_buf_printf(out, "%c%s%se%c%d", digs[0], k > 1 ? "." : "", digs + 1,
                            n - 1 < 0 ? '-' : '+', abs(n - 1));
  }
  return rc;
}

static int cmp_member(const void *a, const void *b) {
  const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
  return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

static tq_code jcs_object(const cJSON *v, tq_buf *out, tq_err *err) {
  size_t n = 0;
  for (const cJSON *c = v->child; c; c = c->next)
    n++;
  const cJSON **members = n ? malloc(n * sizeof *members) : NULL;
  tq_code rc = TQ_OK;
  if (n && members == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory in canonical JSON");
  size_t i = 0;
  for (const cJSON *c = v->child; c; c = c->next)
    members[i++] = c;
  /* UTF-8 byte order is code point order; RFC 8785 sorts by UTF-16 units, which differs only
   * between keys above U+FFFF and keys in U+E000..U+FFFF: none in STIX. */
  if (n > 1)
    qsort(members, n, sizeof *members, cmp_member);
  rc = tq_buf_addc(out, '{');
  for (i = 0; rc == TQ_OK && i < n; i++) {
    if (i)
      rc = tq_buf_addc(out, ',');
    rc = rc ? rc : jcs_string(members[i]->string ? members[i]->string : "", out);
    rc = rc ? rc : tq_buf_addc(out, ':');
    rc = rc ? rc : tq_stix_json_canonical(members[i], out, err);
  }
  rc = rc ? rc : tq_buf_addc(out, '}');
  free(members);
  return rc;
}

tq_code tq_stix_json_canonical(const cJSON *v, tq_buf *out, tq_err *err) {
  tq_code rc;
  if (cJSON_IsObject(v)) {
    rc = jcs_object(v, out, err);
  } else if (cJSON_IsArray(v)) {
    rc = tq_buf_addc(out, '[');
    for (const cJSON *c = v->child; rc == TQ_OK && c; c = c->next) {
      if (c != v->child)
        rc = tq_buf_addc(out, ',');
      rc = rc ? rc : tq_stix_json_canonical(c, out, err);
    }
    rc = rc ? rc : tq_buf_addc(out, ']');
  } else if (cJSON_IsString(v)) {
    rc = jcs_string(v->valuestring, out);
  } else if (cJSON_IsNumber(v)) {
    rc = jcs_number(v->valuedouble, out, err);
  } else if (cJSON_IsBool(v)) {
    rc = tq_buf_adds(out, cJSON_IsTrue(v) ? "true" : "false");
  } else if (cJSON_IsNull(v)) {
    rc = tq_buf_adds(out, "null");
  } else {
    rc = tq_err_set(err, TQ_EINVAL, "canonical JSON: not a JSON value");
  }
  if (rc == TQ_ENOMEM && err && err->code != TQ_ENOMEM)
    tq_err_set(err, TQ_ENOMEM, "out of memory in canonical JSON");
  return rc;
}

/* ---- SCO ids --------------------------------------------------------------------------- */

/* ID Contributing Properties per SCO type (STIX 2.1 section 6, each type's table). */
static const struct {
  const char *type;
  const char *props[8];
} sco_props[] = {
    {"artifact", {"hashes", "payload_bin"}},
    {"autonomous-system", {"number"}},
    {"directory", {"path"}},
    {"domain-name", {"value"}},
    {"email-addr", {"value"}},
    {"email-message", {"from_ref", "subject", "body"}},
    {"file", {"hashes", "name", "extensions", "parent_directory_ref"}},
    {"ipv4-addr", {"value"}},
    {"ipv6-addr", {"value"}},
    {"mac-addr", {"value"}},
    {"mutex", {"name"}},
    {"network-traffic",
     {"start", "end", "src_ref", "dst_ref", "src_port", "dst_port", "protocols", "extensions"}},
    {"software", {"name", "cpe", "swid", "vendor", "version"}},
    {"url", {"value"}},
    {"user-account", {"account_type", "user_id", "account_login"}},
    {"windows-registry-key", {"key", "values"}},
    {"x509-certificate", {"hashes", "serial_number"}},
};

/* python-stix2's _choose_one_hash, which every STIX producer follows. */
static const cJSON *choose_one_hash(const cJSON *hashes) {
  static const char *order[] = {"MD5", "SHA-1", "SHA-256", "SHA-512"};
  for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(hashes, order[i]);
    if (h)
      return h;
  }
  return hashes->child;
}

static tq_code sco_name(const cJSON *sco, const char *const *props, tq_buf *name, tq_err *err) {
  cJSON *pick = cJSON_CreateObject();
  tq_code rc = TQ_OK;
  if (pick == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory in an SCO id");
  for (size_t i = 0; i < 8 && props[i]; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sco, props[i]);
    if (v == NULL)
      continue;
    if (strcmp(props[i], "hashes") == 0 && cJSON_IsObject(v)) {
      const cJSON *h = choose_one_hash(v);
      if (h == NULL)
        continue;
      cJSON *one = cJSON_AddObjectToObject(pick, "hashes");
      if (one == NULL || !cJSON_AddItemReferenceToObject(one, h->string, (cJSON *)h))
        goto oom;
    } else if (!cJSON_AddItemReferenceToObject(pick, props[i], (cJSON *)v)) {
      goto oom;
    }
  }
  if (pick->child)
    rc = tq_stix_json_canonical(pick, name, err);
  cJSON_Delete(pick);
  return rc;
oom:
  cJSON_Delete(pick);
  return tq_err_set(err, TQ_ENOMEM, "out of memory in an SCO id");
}

tq_code tq_stix_id_sco(const cJSON *sco, char out[TQ_STIX_ID_MAX], tq_err *err) {
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(sco, "type");
  if (!cJSON_IsString(type))
    return tq_err_set(err, TQ_EINVAL, "SCO id: the object has no string 'type'");
  const char *t = type->valuestring;
  tq_buf name;
  tq_buf_init(&name, 0);
  tq_code rc = TQ_OK;
  for (size_t i = 0; i < sizeof sco_props / sizeof *sco_props; i++)
    if (strcmp(sco_props[i].type, t) == 0)
      rc = sco_name(sco, sco_props[i].props, &name, err);
  if (rc == TQ_OK && name.len > 0)
    rc = tq_stix_id_v5(t, tq_stix_sco_namespace, name.data, name.len, out, err);
  else if (rc == TQ_OK)
    rc = tq_stix_id_random(t, out, err);
  tq_buf_free(&name);
  return rc;
}

tq_code tq_stix_id_sco_value(const char *type, const char *prop, const char *value,
                             char out[TQ_STIX_ID_MAX], tq_err *err) {
  if (type == NULL || prop == NULL || value == NULL)
    return tq_err_set(err, TQ_EINVAL, "SCO id: type, property and value are needed");
  cJSON *o = cJSON_CreateObject();
  tq_code rc = TQ_ENOMEM;
  if (o && cJSON_AddStringToObject(o, "type", type) && cJSON_AddStringToObject(o, prop, value))
    rc = tq_stix_id_sco(o, out, err);
  else
    tq_err_set(err, TQ_ENOMEM, "out of memory in an SCO id");
  cJSON_Delete(o);
  return rc;
}
