/*
 * exchange.h - one request and its response, as a handler sees them.
 *
 * The transport (http/server.c) owns the exchange; handlers read the request,
 * fill the response and return EXCHANGE_DONE, or return EXCHANGE_PENDING and
 * call exchange_finish() later (for instance once events are durable). A
 * handler never touches the socket, so handlers are testable without a loop.
 */
#ifndef DOCKET_HTTP_EXCHANGE_H
#define DOCKET_HTTP_EXCHANGE_H

#include "../base/limits.h"
#include "request.h"
#include "response.h"

#include <stddef.h>

enum exchange_status {
    EXCHANGE_DONE = 0,    /* the response is complete; send it now */
    EXCHANGE_PENDING = 1, /* the handler will call exchange_finish() later */
};

struct exchange_param {
    const char *name;     /* pattern name without braces: "id" */
    size_t name_length;   /* bytes of name */
    const char *value;    /* points into the request path */
    size_t value_length;  /* bytes of value */
};

struct exchange {
    const struct request *request; /* the parsed request (valid until finish) */
    struct response response;      /* what will be sent */
    const char *path;              /* URL path, without the query */
    size_t path_length;            /* bytes of path */
    const char *query;             /* text after '?', or "" */
    size_t param_count;            /* entries used in params[] */
    struct exchange_param params[LIMIT_ROUTE_PARAMS]; /* captured "{name}" segments */
    void *context;                 /* the application object routes were registered with */
    void (*finish)(struct exchange *exchange); /* set by the transport */
    void *transport;               /* the connection, opaque to handlers */
    char peer_address[48];         /* client IP address text ("" if unknown) */
};

typedef enum exchange_status (*exchange_handler)(struct exchange *exchange);

/* Completes a pending exchange: the transport sends the response. */
static inline void exchange_finish(struct exchange *exchange) {
    exchange->finish(exchange);
}

/* Value of a captured path parameter, copied NUL-terminated into `out`;
 * returns NULL if absent or longer than out_size - 1. */
const char *exchange_param(const struct exchange *exchange, const char *name, char *out,
                           size_t out_size);

#endif
