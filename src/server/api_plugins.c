/* api_plugins.c: the routes of plugins and their config, the operations of an indicator, operation runs and apply. */
#include "server_int.h"

const tq_route tq_routes_plugins[] = {
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
