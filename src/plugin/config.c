/* config.c: a plugin's configuration: values checked against the manifest's field types,
 * stored in the library's settings (scope "plugin:NAME"), password fields sealed with
 * libsodium's crypto_secretbox under a key file kept next to the library (mode 0600). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tqhost/plugin.h"

#define SEAL_PREFIX "sb1:"
#define SECRET_MAX 4096

char *tq_plugin_key_path(const char *db_path) {
  const char *env = getenv("TQHOST_KEY_FILE");
  char *out = NULL;
  if (env && *env)
    return tq_strdup(env);
  if (asprintf(&out, "%s.key", db_path) < 0)
    return NULL;
  return out;
}

/* ---- field values ------------------------------------------------------------------------- */

static tq_code check_url(const tq_plugin_field *f, const char *v, tq_err *err) {
  const char *rest = NULL;
  if (strncmp(v, "https://", 8) == 0)
    rest = v + 8;
  else if (strncmp(v, "http://", 7) == 0)
    rest = v + 7;
  if (rest == NULL || *rest == '\0' || *rest == '/' || strpbrk(v, " \t\r\n"))
    return tq_err_set(err, TQ_EINVAL, "%s: '%s' is not an http(s) URL with a host", f->key, v);
  return TQ_OK;
}

static tq_code check_bool(const tq_plugin_field *f, const char *v, const char **norm, tq_err *err) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (tq_str_ieq(v, yes[i]))
      return *norm = "true", TQ_OK;
    if (tq_str_ieq(v, no[i]))
      return *norm = "false", TQ_OK;
  }
  return tq_err_set(err, TQ_EINVAL, "%s: '%s' is not a boolean (true or false)", f->key, v);
}

static tq_code check_select(const tq_plugin_field *f, const char *v, tq_err *err) {
  char list[400] = "";
  for (size_t i = 0; i < f->n_options; i++) {
    if (strcmp(f->options[i], v) == 0)
      return TQ_OK;
    size_t len = strlen(list);
    snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", f->options[i]);
  }
  return tq_err_set(err, TQ_EINVAL, "%s: '%s' is not one of: %s", f->key, v, list);
}

static tq_code check_integer(const tq_plugin_field *f, const char *v, tq_err *err) {
  long long n;
  tq_err e;
  if (tq_parse_int(v, LLONG_MIN, LLONG_MAX, &n, f->key, &e) != TQ_OK)
    return tq_err_set(err, TQ_EINVAL, "%s: '%s' is not an integer", f->key, v);
  return TQ_OK;
}

static tq_code check_number(const tq_plugin_field *f, const char *v, tq_err *err) {
  char *end = NULL;
  errno = 0;
  double d = strtod(v, &end);
  if (*v == '\0' || isspace((unsigned char)*v) || *end != '\0' || errno == ERANGE || !isfinite(d) ||
      strpbrk(v, "xXnN")) /* no hex, inf or nan */
    return tq_err_set(err, TQ_EINVAL, "%s: '%s' is not a number", f->key, v);
  return TQ_OK;
}

/* A list: comma-separated items, each trimmed and not empty; *out is "a,b,c". */
static tq_code check_list(const tq_plugin_field *f, const char *v, char **out, tq_err *err) {
  char *norm = malloc(strlen(v) + 1), *w = norm;
  if (norm == NULL)
    return tq_err_set(err, TQ_ENOMEM, "%s: out of memory", f->key);
  for (const char *p = v;;) {
    size_t len = strcspn(p, ",");
    const char *a = p, *b = p + len;
    while (a < b && isspace((unsigned char)*a))
      a++;
    while (b > a && isspace((unsigned char)b[-1]))
      b--;
    if (a == b) {
      free(norm);
      return tq_err_set(err, TQ_EINVAL,
                        "%s: '%s' is not a list (comma-separated items, none empty)", f->key, v);
    }
    if (w != norm)
      *w++ = ',';
    memcpy(w, a, (size_t)(b - a));
    w += b - a;
    if (p[len] == '\0')
      break;
    p += len + 1;
  }
  *w = '\0';
  *out = norm;
  return TQ_OK;
}

tq_code tq_plugin_field_check(const tq_plugin_field *f, const char *value, char **norm,
                              tq_err *err) {
  const char *out = value;
  tq_code rc = TQ_OK;
  switch (f->type) {
  case TQ_FIELD_URL: rc = check_url(f, value, err); break;
  case TQ_FIELD_INTEGER: rc = check_integer(f, value, err); break;
  case TQ_FIELD_NUMBER: rc = check_number(f, value, err); break;
  case TQ_FIELD_LIST: return check_list(f, value, norm, err);
  case TQ_FIELD_BOOLEAN: rc = check_bool(f, value, &out, err); break;
  case TQ_FIELD_SELECT: rc = check_select(f, value, err); break;
  case TQ_FIELD_PASSWORD:
    if (*value == '\0' || strlen(value) > SECRET_MAX)
      rc = tq_err_set(err, TQ_EINVAL, "%s: a password must be 1 to %d characters", f->key,
                      SECRET_MAX);
    break;
  case TQ_FIELD_STRING: break;
  }
  if (rc != TQ_OK)
    return rc;
  if ((*norm = tq_strdup(out)) == NULL)
    return tq_err_set(err, TQ_ENOMEM, "%s: out of memory", f->key);
  return TQ_OK;
}

/* ---- the key file ------------------------------------------------------------------------- */

static tq_code key_create(const char *path, unsigned char key[crypto_secretbox_KEYBYTES],
                          tq_err *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return tq_err_set(err, TQ_EIO, "key file %s: cannot create: %s", path, strerror(errno));
  crypto_secretbox_keygen(key);
  ssize_t n = write(fd, key, crypto_secretbox_KEYBYTES);
  int rc = close(fd);
  if (n != crypto_secretbox_KEYBYTES || rc != 0) {
    unlink(path);
    return tq_err_set(err, TQ_EIO, "key file %s: write failed", path);
  }
  return TQ_OK;
}

/* Reads the key; creates the file when create and it does not exist. */
static tq_code key_read(const char *path, int create, unsigned char key[crypto_secretbox_KEYBYTES],
                        tq_err *err) {
  if (sodium_init() < 0)
    return tq_err_set(err, TQ_EINTERNAL, "libsodium failed to initialise");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create)
    return key_create(path, key, err);
  if (fd < 0)
    return tq_err_set(err, errno == ENOENT ? TQ_ENOTFOUND : TQ_EIO,
                      "key file %s: %s (secrets cannot be decrypted without it)", path,
                      strerror(errno));
  struct stat st;
  tq_code rc = TQ_OK;
  if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0)
    rc = tq_err_set(err, TQ_EDENIED, "key file %s: readable by others (chmod 600 it)", path);
  else if (read(fd, key, crypto_secretbox_KEYBYTES) != crypto_secretbox_KEYBYTES ||
           st.st_size != crypto_secretbox_KEYBYTES)
    rc = tq_err_set(err, TQ_ECORRUPT, "key file %s: not a %d-byte key", path,
                    crypto_secretbox_KEYBYTES);
  close(fd);
  return rc;
}

tq_code tq_plugin_secret_seal(const char *key_path, const char *plain, char **out, tq_err *err) {
  unsigned char key[crypto_secretbox_KEYBYTES];
  size_t plen = strlen(plain);
  size_t blen = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plen;
  unsigned char *box = NULL;
  char *text = NULL;
  tq_code rc = key_read(key_path, 1, key, err);
  if (rc != TQ_OK)
    goto fail;
  size_t tlen = sodium_base64_encoded_len(blen, sodium_base64_VARIANT_ORIGINAL);
  box = malloc(blen);
  text = malloc(strlen(SEAL_PREFIX) + tlen);
  if (box == NULL || text == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "sealing a secret: out of memory");
    goto fail;
  }
  randombytes_buf(box, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, (const unsigned char *)plain, plen, box,
                        key);
  strcpy(text, SEAL_PREFIX);
  sodium_bin2base64(text + strlen(SEAL_PREFIX), tlen, box, blen, sodium_base64_VARIANT_ORIGINAL);
  *out = text;
  text = NULL;
fail:
  sodium_memzero(key, sizeof key);
  free(box);
  free(text);
  return rc;
}

tq_code tq_plugin_secret_open(const char *key_path, const char *sealed, char **out, tq_err *err) {
  unsigned char key[crypto_secretbox_KEYBYTES];
  size_t slen = strlen(sealed);
  unsigned char *box = malloc(slen + 1);
  char *plain = NULL;
  size_t blen = 0;
  tq_code rc = TQ_OK;
  if (box == NULL)
    return tq_err_set(err, TQ_ENOMEM, "opening a secret: out of memory");
  if (!tq_str_startswith(sealed, SEAL_PREFIX) ||
      sodium_base642bin(box, slen, sealed + strlen(SEAL_PREFIX), slen - strlen(SEAL_PREFIX), NULL,
                        &blen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      blen < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
    rc = tq_err_set(err, TQ_ECORRUPT, "a stored secret is not in the sealed form");
    goto fail;
  }
  if ((rc = key_read(key_path, 0, key, err)) != TQ_OK)
    goto fail;
  size_t plen = blen - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
  if ((plain = malloc(plen + 1)) == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "opening a secret: out of memory");
    goto fail;
  }
  if (crypto_secretbox_open_easy((unsigned char *)plain, box + crypto_secretbox_NONCEBYTES,
                                 blen - crypto_secretbox_NONCEBYTES, box, key) != 0) {
    rc = tq_err_set(err, TQ_ECORRUPT,
                    "a stored secret does not open with key file %s (another library's key?)",
                    key_path);
    goto fail;
  }
  plain[plen] = '\0';
  *out = plain;
  plain = NULL;
fail:
  sodium_memzero(key, sizeof key);
  free(box);
  free(plain);
  return rc;
}

/* ---- storing and loading ------------------------------------------------------------------ */

static void scope_of(const tq_plugin *p, char *out, size_t n) {
  snprintf(out, n, "plugin:%s", p->name);
}

/* Checks one pair and gives the text to store (sealed for passwords). */
static tq_code value_to_store(const tq_plugin *p, const char *key_path, const tq_lua_kv *kv,
                              char **stored, int *secret, tq_err *err) {
  const tq_plugin_field *f = tq_plugin_field_find(p, kv->key);
  char *norm = NULL;
  if (f == NULL) {
    char keys[400] = "";
    for (size_t i = 0; i < p->n_fields; i++) {
      size_t len = strlen(keys);
      snprintf(keys + len, sizeof keys - len, "%s%s", i ? ", " : "", p->fields[i].key);
    }
    return tq_err_set(err, TQ_EINVAL, "'%s' is not a config field of plugin %s (fields: %s)",
                      kv->key, p->name, p->n_fields ? keys : "none");
  }
  tq_code rc = tq_plugin_field_check(f, kv->value, &norm, err);
  if (rc != TQ_OK)
    return rc;
  *secret = f->type == TQ_FIELD_PASSWORD;
  if (!*secret) {
    *stored = norm;
    return TQ_OK;
  }
  rc = tq_plugin_secret_seal(key_path, norm, stored, err);
  sodium_memzero(norm, strlen(norm));
  free(norm);
  return rc;
}

tq_code tq_plugin_configure(tq_lib *lib, const tq_plugin *p, const char *key_path,
                            const tq_lua_kv *kvs, size_t n, tq_err *err) {
  char scope[200];
  scope_of(p, scope, sizeof scope);
  char **stored = calloc(n ? n : 1, sizeof *stored);
  int *secret = calloc(n ? n : 1, sizeof *secret);
  tq_code rc = TQ_OK;
  if (stored == NULL || secret == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "configure: out of memory");
    goto fail;
  }
  for (size_t i = 0; i < n && rc == TQ_OK; i++)
    rc = value_to_store(p, key_path, &kvs[i], &stored[i], &secret[i], err);
  if (rc != TQ_OK || (rc = tq_lib_begin(lib, err)) != TQ_OK)
    goto fail;
  for (size_t i = 0; i < n && rc == TQ_OK; i++)
    rc = tq_lib_setting_put(lib, scope, kvs[i].key, stored[i], secret[i], err);
  if (rc == TQ_OK)
    rc = tq_lib_commit(lib, err);
  else
    tq_lib_rollback(lib);
fail:
  for (size_t i = 0; stored && i < n; i++)
    free(stored[i]);
  free(stored);
  free(secret);
  return rc;
}

static tq_code kv_push(tq_lua_kv **arr, size_t *n, const char *key, char *value) {
  tq_lua_kv *grown = realloc(*arr, (*n + 1) * sizeof *grown);
  char *k = tq_strdup(key);
  if (grown == NULL || k == NULL) {
    if (grown)
      *arr = grown;
    free(k);
    free(value);
    return TQ_ENOMEM;
  }
  *arr = grown;
  grown[(*n)++] = (tq_lua_kv){k, value};
  return TQ_OK;
}

/* The value of field f: the stored one (opened if a secret), else the default, else NULL. */
static tq_code field_value(tq_lib *lib, const tq_plugin *p, const tq_plugin_field *f,
                           const char *key_path, int want_secrets, char **out, tq_err *err) {
  char scope[200];
  scope_of(p, scope, sizeof scope);
  char *v = NULL;
  int secret = 0;
  *out = NULL;
  tq_code rc = lib ? tq_lib_setting_get(lib, scope, f->key, &v, &secret, err) : TQ_ENOTFOUND;
  if (rc == TQ_ENOTFOUND) {
    if (f->def && (*out = tq_strdup(f->def)) == NULL)
      return tq_err_set(err, TQ_ENOMEM, "config: out of memory");
    return TQ_OK;
  }
  if (rc != TQ_OK)
    return rc;
  if (!secret) {
    /* a value stored before its field's type changed: refused here, never a silent string */
    char *norm = NULL;
    rc = tq_plugin_field_check(f, v, &norm, err);
    free(v);
    if (rc != TQ_OK)
      return tq_err_prefix(err,
                           "plugin %s: stored config field %s is not a valid %s (store it "
                           "again with `tqhost plugin configure %s %s=...`): ",
                           p->name, f->key, tq_field_type_name(f->type), p->name, f->key);
    *out = norm;
    return TQ_OK;
  }
  if (want_secrets)
    rc = tq_plugin_secret_open(key_path, v, out, err);
  else
    *out = tq_strdup(TQ_SECRET_MASK);
  free(v);
  if (rc != TQ_OK)
    tq_err_prefix(err, "plugin %s, field %s: ", p->name, f->key);
  return rc;
}

tq_code tq_plugin_config_load(tq_lib *lib, const tq_plugin *p, const char *key_path,
                              int want_secrets, tq_plugin_config *out, tq_err *err) {
  memset(out, 0, sizeof *out);
  tq_code rc = TQ_OK;
  for (size_t i = 0; i < p->n_fields && rc == TQ_OK; i++) {
    const tq_plugin_field *f = &p->fields[i];
    char *v = NULL;
    if ((rc = field_value(lib, p, f, key_path, want_secrets, &v, err)) != TQ_OK)
      break;
    if (v == NULL && f->required) {
      char **grown = realloc(out->missing, (out->n_missing + 1) * sizeof *grown);
      if (grown == NULL || (grown[out->n_missing] = tq_strdup(f->key)) == NULL)
        rc = TQ_ENOMEM;
      if (grown)
        out->missing = grown;
      if (rc == TQ_OK)
        out->n_missing++;
    } else if (v && f->type == TQ_FIELD_PASSWORD) {
      rc = kv_push(&out->secrets, &out->n_secrets, f->key, v);
    } else if (v) {
      rc = kv_push(&out->config, &out->n_config, f->key, v);
    }
    if (rc == TQ_ENOMEM)
      tq_err_set(err, TQ_ENOMEM, "config: out of memory");
  }
  if (rc != TQ_OK)
    tq_plugin_config_free(out);
  return rc;
}

static void kv_free(tq_lua_kv *kv, size_t n, int wipe) {
  for (size_t i = 0; i < n; i++) {
    if (wipe && kv[i].value)
      sodium_memzero((char *)kv[i].value, strlen(kv[i].value));
    free((char *)kv[i].key);
    free((char *)kv[i].value);
  }
  free(kv);
}

void tq_plugin_config_free(tq_plugin_config *c) {
  kv_free(c->config, c->n_config, 0);
  kv_free(c->secrets, c->n_secrets, 1);
  for (size_t i = 0; i < c->n_missing; i++)
    free(c->missing[i]);
  free(c->missing);
  memset(c, 0, sizeof *c);
}

tq_code tq_plugin_config_kinds(const tq_plugin *p, const tq_plugin_config *c, tq_lua_kind **out,
                               tq_err *err) {
  *out = calloc(c->n_config ? c->n_config : 1, sizeof **out);
  if (*out == NULL)
    return tq_err_set(err, TQ_ENOMEM, "config: out of memory");
  for (size_t i = 0; i < c->n_config; i++) {
    const tq_plugin_field *f = NULL;
    for (size_t k = 0; k < c->n_own_fields && f == NULL; k++)
      if (c->own_fields[k].key && strcmp(c->own_fields[k].key, c->config[i].key) == 0)
        f = &c->own_fields[k];
    if (f == NULL)
      f = tq_plugin_field_find(p, c->config[i].key);
    (*out)[i] = f ? tq_field_kind(f->type) : TQ_LUA_TEXT;
  }
  return TQ_OK;
}

const char *tq_plugin_config_get(const tq_plugin_config *c, const char *key) {
  for (size_t i = 0; i < c->n_config; i++)
    if (strcmp(c->config[i].key, key) == 0)
      return c->config[i].value;
  for (size_t i = 0; i < c->n_secrets; i++)
    if (strcmp(c->secrets[i].key, key) == 0)
      return c->secrets[i].value;
  return NULL;
}
