/* api_search.c: the routes of keyword search, the criteria language (POST /api/indicators/query), saved searches (data collections), hash queries with cursorMark, the score explained. */
#include "server_int.h"

const tq_route tq_routes_search[] = {
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
