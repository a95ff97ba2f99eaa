/* api_runs.c: the routes of actions, bulk runs (start, progress, cancel, resume), workflows, feeds. */
#include "server_int.h"

const tq_route tq_routes_runs[] = {
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
