/* writer.c: writing many objects in batched transactions: the one batching both bulk ways in
 * use, `tqhost indicator import` (tq_lib_import, 50,000 rows a transaction) and the service's
 * POST /api/indicators/consume (one transaction per request). */
#include <stdlib.h>

#include "internal.h"

struct tq_lib_writer {
  tq_lib *lib;
  size_t per_tx; /* objects per transaction; 0: one transaction */
  size_t in_tx;  /* objects written in the open transaction */
  int open;      /* a transaction is open */
  int failed;    /* a database failure rolled the open transaction back */
  tq_lib_writer_stats st;
};

tq_code tq_lib_writer_open(tq_lib *lib, size_t per_tx, tq_lib_writer **out, tq_err *err) {
  tq_lib_writer *w = calloc(1, sizeof *w);
  if (w == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  w->lib = lib;
  w->per_tx = per_tx;
  *out = w;
  return TQ_OK;
}

tq_code tq_lib_writer_put(tq_lib_writer *w, const tq_object_in *in, int64_t *id, int *created,
                          char **value, tq_err *err) {
  if (w->failed)
    return tq_err_set(err, TQ_EINTERNAL, "the writer failed already");
  if (!w->open) {
    tq_code rc = tq_lib_begin(w->lib, err);
    if (rc != TQ_OK) {
      w->failed = 1;
      return rc;
    }
    w->open = 1;
  }
  int new = 0;
  tq_code rc = lib_object_put_value(w->lib, in, id, &new, value, err);
  if (rc == TQ_EINVAL) {
    w->st.refused++;
    return rc;
  }
  if (rc != TQ_OK) {
    tq_lib_rollback(w->lib);
    w->open = 0;
    w->failed = 1;
    return rc;
  }
  new ? w->st.added++ : w->st.merged++;
  if (created)
    *created = new;
  if (w->per_tx && ++w->in_tx >= w->per_tx) {
    w->in_tx = 0;
    w->open = 0;
    rc = tq_lib_commit(w->lib, err);
    if (rc != TQ_OK) {
      w->failed = 1;
      return rc;
    }
    w->st.committed = w->st.added + w->st.merged;
  }
  return TQ_OK;
}

const tq_lib_writer_stats *tq_lib_writer_stats_get(const tq_lib_writer *w) { return &w->st; }

tq_code tq_lib_writer_close(tq_lib_writer *w, int commit, tq_err *err) {
  if (w == NULL)
    return TQ_OK;
  tq_code rc = TQ_OK;
  if (w->open && commit) {
    rc = tq_lib_commit(w->lib, err);
  } else if (w->open) {
    tq_lib_rollback(w->lib);
  }
  free(w);
  return rc;
}
