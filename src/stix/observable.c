/* observable.c: what a mapper needs from a parsed pattern: one observable per comparison (one
 * per member of an IN set), whether each stands alone as an indicator (only OR above it), the
 * simple/complex verdict, and the ThreatQ indicator type of an (object type, path, value). */
#include <string.h>
#include <strings.h>

#include "stix_int.h"

/* ---- ThreatQ indicator types ------------------------------------------------------------- */

/* Fixed (type, path) -> ThreatQ type pairs; paths compare case-insensitively because header
 * and hash names come in any case. */
static const struct {
  const char *type, *path, *tq;
} fixed_types[] = {
    {"domain-name", "value", "FQDN"},
    {"url", "value", "URL"},
    {"email-addr", "value", "Email Address"},
    {"mac-addr", "value", "MAC Address"},
    {"email-message", "from_ref.value", "Email Address"},
    {"email-message", "sender_ref.value", "Email Address"},
    {"email-message", "to_refs[*].value", "Email Address"},
    {"email-message", "cc_refs[*].value", "Email Address"},
    {"email-message", "subject", "Email Subject"},
    {"email-message", "additional_header_fields.'X-Mailer'", "X-Mailer"},
    {"email-message", "body_multipart[*].body_raw_ref.name", "Email Attachment"},
    {"file", "name", "Filename"},
    {"file", "parent_directory_ref.path", "File Path"},
    {"directory", "path", "File Path"},
    {"mutex", "name", "Mutex"},
    {"windows-registry-key", "key", "Registry Key"},
    {"autonomous-system", "number", "ASN"},
    {"x509-certificate", "serial_number", "x509 Serial"},
    {"x509-certificate", "subject", "x509 Subject"},
    {"network-traffic", "extensions.'http-request-ext'.request_header.'User-Agent'", "User-agent"},
    {"user-account", "account_login", "Username"},
    {"user-account", "user_id", "Username"},
    {"process", "extensions.'windows-service-ext'.service_name", "Service Name"},
};

/* hashes.<name>: MD5, SHA-1, SHA1, 'sha-256', ... (hash-algorithm-ov plus common spellings). */
static const char *hash_type(const char *key) {
  char norm[16];
  size_t k = 0;
  if (*key == '\'')
    key++;
  for (; *key && *key != '\'' && k + 1 < sizeof norm; key++)
    if (*key != '-' && *key != '_')
      norm[k++] = (char)(*key >= 'a' && *key <= 'z' ? *key - 32 : *key);
  norm[k] = '\0';
  static const struct {
    const char *norm, *tq;
  } hashes[] = {{"MD5", "MD5"},        {"SHA1", "SHA-1"},     {"SHA256", "SHA-256"},
                {"SHA384", "SHA-384"}, {"SHA512", "SHA-512"}, {"SSDEEP", "Fuzzy Hash"},
                {"TLSH", "Fuzzy Hash"}};
  for (size_t i = 0; i < sizeof hashes / sizeof *hashes; i++)
    if (strcmp(norm, hashes[i].norm) == 0)
      return hashes[i].tq;
  return NULL;
}

/* An address whose SCO type is not known (network-traffic src_ref/dst_ref): by its form. */
static const char *address_type(const char *value) {
  if (value == NULL || *value == '\0')
    return NULL;
  if (strchr(value, '/'))
    return "CIDR Block";
  if (strchr(value, ':'))
    return "IPv6 Address";
  if (strspn(value, "0123456789.") == strlen(value))
    return "IP Address";
  return "FQDN";
}

const char *tq_stix_indicator_type(const char *object_type, const char *path_text,
                                   const char *value) {
  if (object_type == NULL || path_text == NULL)
    return NULL;
  int v4 = strcmp(object_type, "ipv4-addr") == 0, v6 = strcmp(object_type, "ipv6-addr") == 0;
  if ((v4 || v6) && strcmp(path_text, "value") == 0)
    return value && strchr(value, '/') ? "CIDR Block" : v4 ? "IP Address" : "IPv6 Address";
  if ((strcmp(object_type, "file") == 0 || strcmp(object_type, "artifact") == 0) &&
      strncmp(path_text, "hashes.", 7) == 0)
    return hash_type(path_text + 7);
  if (strcmp(object_type, "network-traffic") == 0 &&
      (strcmp(path_text, "dst_ref.value") == 0 || strcmp(path_text, "src_ref.value") == 0))
    return address_type(value);
  for (size_t i = 0; i < sizeof fixed_types / sizeof *fixed_types; i++)
    if (strcmp(fixed_types[i].type, object_type) == 0 &&
        strcasecmp(fixed_types[i].path, path_text) == 0)
      return fixed_types[i].tq;
  return NULL;
}

/* ---- extraction --------------------------------------------------------------------------- */

static size_t count_observables(const tq_stix_node *n) {
  if (n->kind != TQ_STIX_NODE_COMPARISON) {
    size_t total = 0;
    for (const tq_stix_node *c = n->child; c; c = c->next)
      total += count_observables(c);
    return total;
  }
  if (n->op != TQ_STIX_OP_IN)
    return 1;
  size_t k = 0;
  for (const tq_stix_literal *l = n->value; l; l = l->next)
    k++;
  return k;
}

static void add_observable(tq_stix_pattern *p, tq_stix_observable *out, const tq_stix_node *n,
                           const tq_stix_literal *value, int alone) {
  tq_stix_observable *o = &out[p->n_observables++];
  int positive = !n->negated && (n->op == TQ_STIX_OP_EQ || n->op == TQ_STIX_OP_IN);
  o->object_type = n->path.object_type;
  o->path = &n->path;
  o->op = n->op;
  o->negated = n->negated;
  o->value = value;
  o->observation = n->observation;
  o->independent = alone && positive;
  if (positive)
    o->indicator_type =
        tq_stix_indicator_type(o->object_type, n->path.text,
                               value && value->kind != TQ_STIX_LIT_BOOL ? value->text : NULL);
}

/* alone: nothing but OR joins this subtree to the whole pattern, and no qualifier. The depth
 * of this walk is bounded by the parser's nesting limit. */
static void walk(tq_stix_pattern *p, tq_stix_observable *out, const tq_stix_node *n, int alone) {
  if (n->quals)
    alone = 0;
  switch (n->kind) {
  case TQ_STIX_NODE_FOLLOWEDBY:
  case TQ_STIX_NODE_OBS_AND:
  case TQ_STIX_NODE_AND: alone = 0; break;
  case TQ_STIX_NODE_COMPARISON:
    if (n->op != TQ_STIX_OP_IN) {
      add_observable(p, out, n, n->value, alone);
      return;
    }
    for (const tq_stix_literal *l = n->value; l; l = l->next)
      add_observable(p, out, n, l, alone);
    return;
  default: break;
  }
  for (const tq_stix_node *c = n->child; c; c = c->next)
    walk(p, out, c, alone);
}

tq_code stix_pattern_extract(tq_stix_pattern *p, tq_err *err) {
  size_t n = count_observables(p->root);
  tq_stix_observable *out = n ? stix_arena_alloc(p->arena_, n * sizeof *out) : NULL;
  if (n && out == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory for a pattern's observables");
  p->n_observables = 0;
  walk(p, out, p->root, 1);
  p->observables = out;
  p->simple = p->n_observables > 0;
  for (size_t i = 0; i < p->n_observables; i++)
    p->simple &= out[i].independent;
  return TQ_OK;
}
