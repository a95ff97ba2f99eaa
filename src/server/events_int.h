/* events_int.h: between events.c (run progress as server-sent events: the hub thread, the
 * streams, the tickets), server.c (which starts and stops the hub and makes a stream's
 * libmicrohttpd response) and api_runs.c (the routes). */
#ifndef TQ_EVENTS_INT_H
#define TQ_EVENTS_INT_H

#include <microhttpd.h>

#include "auth_int.h"
#include "server_int.h"
#include "tqhost/workflow.h"

typedef struct tq_events tq_events;
/* Starts the hub thread (its own read-only connection to db_path, opened on first use). */
tq_code tq_events_start(const char *db_path, tq_events **out, tq_err *err);
/* Queues every open stream's final event and joins the hub; new streams are refused. */
void tq_events_stop(tq_events *ev);
void tq_events_free(tq_events *ev);    /* after MHD stopped */
tq_events *tq_srv_events(tq_srv *srv); /* borrowed; NULL when not started */

/* A new stream of run r's progress, its first event queued; NULL (err: TQ_ELIMIT past the cap
 * or while stopping) when it cannot be. The caller puts it in tq_resp.stream (which owns it). */
void *tq_events_open(tq_events *ev, const tq_run_info *r, tq_err *err);
/* The stream's response for mc (server.c's queue); NULL (the stream freed) when MHD cannot
 * make one. The response owns the stream from here on. */
struct MHD_Response *tq_events_response(void *stream, struct MHD_Connection *mc);
/* Frees a stream that never became a response (tq_resp_free). */
void tq_events_stream_free(void *stream);

/* A single-use ticket for run_id's stream on behalf of who, good for *ttl_s seconds: out gets
 * the ticket (only its hash is kept). TQ_ELIMIT when too many are waiting. */
tq_code tq_events_ticket(tq_events *ev, int64_t run_id, const tq_principal *who,
                         char out[TQ_AUTH_TOKEN_LEN + 1], int64_t *ttl_s, tq_err *err);
/* Takes (uses up) ticket tk: 1 with its run and user, 0 when unknown, used or expired. */
int tq_events_ticket_take(tq_events *ev, const char *tk, int64_t *run_id, tq_principal *who);

#endif
