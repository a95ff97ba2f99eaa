/* err.c: the one error type of tqhost (see core.h). */
#include <stdio.h>
#include <string.h>

#include "tqhost/core.h"

tq_code tq_err_set(tq_err *err, tq_code code, const char *fmt, ...) {
  if (err == NULL)
    return code;
  err->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return code;
}

tq_code tq_err_prefix(tq_err *err, const char *fmt, ...) {
  if (err == NULL)
    return TQ_EINTERNAL;
  char prefix[256];
  char old[sizeof err->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err->msg, sizeof old);
  size_t n = tq_strlcpy(err->msg, prefix, sizeof err->msg);
  if (n < sizeof err->msg)
    tq_strlcpy(err->msg + n, old, sizeof err->msg - n);
  return err->code;
}

void tq_err_clear(tq_err *err) {
  if (err == NULL)
    return;
  err->code = TQ_OK;
  err->msg[0] = '\0';
}

const char *tq_code_name(tq_code code) {
  switch (code) {
  case TQ_OK: return "ok";
  case TQ_EINVAL: return "invalid";
  case TQ_ENOTFOUND: return "not found";
  case TQ_EEXIST: return "exists";
  case TQ_ENOMEM: return "out of memory";
  case TQ_EIO: return "i/o error";
  case TQ_EDB: return "database error";
  case TQ_ECORRUPT: return "corrupt";
  case TQ_ENET: return "network error";
  case TQ_ETIMEOUT: return "timeout";
  case TQ_EDENIED: return "denied";
  case TQ_ELIMIT: return "limit reached";
  case TQ_EINTERNAL: return "internal error";
  }
  return "unknown";
}
