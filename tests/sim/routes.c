/* routes.c: the route families rstsim serves, in match order. A new API family (e.g. TAXII
 * 2.1) is one new file with its sim_route array, declared in sim.h and listed here. */
#include <stddef.h>

#include "sim.h"

const sim_route *const sim_route_families[] = {
    sim_routes_auth, sim_routes_ioc, sim_routes_benign, sim_routes_whois, sim_routes_reports, NULL};
