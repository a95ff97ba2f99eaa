/* routes.c: every route table of the server. Each group's file adds its table here. */
#include "server_int.h"

const tq_route *const tq_route_tables[] = {tq_routes_core, tq_routes_auth, NULL};
