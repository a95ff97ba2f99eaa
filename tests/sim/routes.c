/* routes.c: the route families rstsim serves, in match order (TAXII 2.1 is taxii.c). A new
 * API family is one new file with its sim_route array, declared in sim.h and listed here. */
#include <stddef.h>

#include "sim.h"

const sim_route *const sim_route_families[] = {sim_routes_auth,
                                               sim_routes_ioc,
                                               sim_routes_benign,
                                               sim_routes_whois,
                                               sim_routes_reports,
                                               sim_routes_taxii,
                                               NULL};
