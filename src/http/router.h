/*
 * router.h - maps (method, path) to a handler using a static route table.
 *
 * Patterns are literal segments and "{name}" captures: "/api/v1/tasks/{id}".
 * A path that matches some pattern under another method is a 405 with an
 * Allow header; HEAD is served by GET routes. The table is scanned linearly:
 * Docket has tens of routes, and a scan of short strings beats a trie here.
 */
#ifndef DOCKET_HTTP_ROUTER_H
#define DOCKET_HTTP_ROUTER_H

#include "exchange.h"

#include <stddef.h>

struct route {
    const char *method;       /* "GET", "POST", ... */
    const char *pattern;      /* "/api/v1/tasks/{id}" */
    exchange_handler handler; /* called on a match */
};

enum router_result {
    ROUTER_FOUND = 0,              /* *route_out is set and params captured */
    ROUTER_NOT_FOUND = 1,          /* no pattern matches the path */
    ROUTER_METHOD_NOT_ALLOWED = 2, /* patterns match but not for this method; allow filled */
};

/* Matches the exchange's method and path. On ROUTER_FOUND the exchange's
 * params are filled. `allow` receives "GET, POST" on 405. */
enum router_result router_match(const struct route *routes, size_t route_count,
                                struct exchange *exchange, const struct route **route_out,
                                char *allow, size_t allow_size);

#endif
