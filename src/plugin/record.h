/* record.h: inside the plugin part, what test.c uses of record.c (`plugin test --record`). */
#ifndef TQ_PLUGIN_RECORD_H
#define TQ_PLUGIN_RECORD_H

#include "tqhost/plugin.h"

typedef struct rec_session rec_session;

/* TQ_EINVAL unless url is an http(s) URL with a host, no credentials, query or fragment. */
tq_code rec_check_base(const char *url, tq_err *err);
/* A recording session for one `plugin test` command: BASE_URL (checked), --force, the --set
 * pairs (copied). Free with rec_session_free. */
tq_code rec_session_new(const char *base, int force, const tq_lua_kv *set, size_t n_set,
                        rec_session **out, tq_err *err);
void rec_session_free(rec_session *s);
/* Checks the --set keys against p's fields and normalises their values (typed fields). */
tq_code rec_session_check(const rec_session *s, const tq_plugin *p, tq_err *err);
/* T.run in record mode: rq as the spec asked (replay_file = the fixture). A fixture recorded
 * by this session, or missing, or any with --force, is recorded live and written; then (as
 * for a kept fixture) *res is the replay of the file. Errors name the fixture and why
 * nothing was written. */
tq_code rec_run(rec_session *s, const tq_op_request *rq, tq_op_result *res, tq_err *err);

#endif
