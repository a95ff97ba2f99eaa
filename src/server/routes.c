/* routes.c: every route table of the server. Each group's file (api_*.c) owns its table. */
#include "server_int.h"

const tq_route *const tq_route_tables[] = {
    tq_routes_core,    tq_routes_auth, tq_routes_objects, tq_routes_search,
    tq_routes_plugins, tq_routes_runs, tq_routes_ioc,     NULL};
