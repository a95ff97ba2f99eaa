/* checkpoint.c: WAL checkpoints on a thread of their own. A long write (a feed poll, a bulk
 * run) commits often; with SQLite's automatic checkpoint the committing thread stops after a
 * commit to copy the WAL back into the database. Here the commit only signals (the WAL hook)
 * and a second connection on its own thread does a PASSIVE checkpoint, which never blocks the
 * writer, while the writer goes on. */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

struct tq_lib_checkpointer {
  tq_lib *lib;
  sqlite3 *db; /* the checkpointer's own connection */
  int frames;  /* WAL frames after a commit that ask for a checkpoint */
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int want, stop, busy;
};

/* The WAL only starts over from its beginning when a write begins after a checkpoint that
 * copied all of it; a writer that begins again at once never sees that, and the WAL would
 * grow by everything written. So past LIB_CKPT_CAP_FACTOR times the threshold the writer
 * waits for the checkpoint thread and copies the rest itself (little: the thread copied the
 * earlier commits), and its next write starts the WAL over. */
#define LIB_CKPT_CAP_FACTOR 4

static int on_commit(void *ud, sqlite3 *db, const char *name, int frames) {
  tq_lib_checkpointer *c = ud;
  if (frames < c->frames)
    return SQLITE_OK;
  pthread_mutex_lock(&c->mu);
  if (frames >= c->frames * LIB_CKPT_CAP_FACTOR) {
    while (c->busy)
      pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
  }
  c->want = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return SQLITE_OK;
}

static void *checkpoint_main(void *arg) {
  tq_lib_checkpointer *c = arg;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (!c->want && !c->stop)
      pthread_cond_wait(&c->cv, &c->mu);
    if (c->stop)
      break;
    c->want = 0;
    c->busy = 1;
    pthread_mutex_unlock(&c->mu);
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
      tq_log(TQ_LOG_WARN, "library", "background checkpoint: %s", sqlite3_errmsg(c->db));
    pthread_mutex_lock(&c->mu);
    c->busy = 0;
    pthread_cond_broadcast(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

tq_code tq_lib_checkpointer_start(tq_lib *lib, int frames, tq_lib_checkpointer **out, tq_err *err) {
  *out = NULL;
  tq_lib_checkpointer *c = calloc(1, sizeof *c);
  if (c == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  c->lib = lib;
  c->frames = frames > 0 ? frames : 1000;
  const char *path = sqlite3_db_filename(lib->db, "main");
  if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK) {
    tq_code rc = tq_err_set(err, TQ_EDB, "%s: opening the checkpoint connection: %s", path,
                            sqlite3_errmsg(c->db));
    sqlite3_close(c->db);
    free(c);
    return rc;
  }
  sqlite3_busy_timeout(c->db, 1000);
  /* A connection learns that the file is in WAL mode from its first read; until then a
   * checkpoint is a no-op. */
  sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  if (pthread_create(&c->th, NULL, checkpoint_main, c) != 0) {
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    sqlite3_close(c->db);
    free(c);
    return tq_err_set(err, TQ_EINTERNAL, "cannot start the checkpoint thread");
  }
  sqlite3_wal_hook(lib->db, on_commit, c); /* replaces the automatic checkpoint */
  *out = c;
  return TQ_OK;
}

void tq_lib_checkpointer_stop(tq_lib_checkpointer *c) {
  if (c == NULL)
    return;
  sqlite3_wal_autocheckpoint(c->lib->db, LIB_WAL_AUTOCHECKPOINT); /* the hook back to SQLite's */
  pthread_mutex_lock(&c->mu);
  c->stop = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  pthread_join(c->th, NULL);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  sqlite3_close(c->db);
  free(c);
}
