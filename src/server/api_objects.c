/* api_objects.c: the routes of indicators (list, CRUD, consume, attributes, sources, tags, scores, related), the other object types, sources, lookup tables. */
#include "server_int.h"

const tq_route tq_routes_objects[] = {
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
