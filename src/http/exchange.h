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
    const struct http_tunnel_ops *upgrade_ops; /* set by exchange_upgrade, else NULL */
    void *upgrade_arg;                         /* passed to upgrade_ops */
    int tls;                                   /* the connection is TLS (wss/https) */
};

typedef enum exchange_status (*exchange_handler)(struct exchange *exchange);

/* A connection that switched protocols (101, RFC 9110 15.2.2): from then on
 * its bytes are the application's. Every callback runs on the loop thread;
 * `arg` is what exchange_upgrade was given. `transport` arguments of the
 * http_tunnel_* functions (http/server.h) are exchange->transport. */
struct http_tunnel_ops {
    /* The 101 is queued and the connection is the tunnel's now: the first
     * moment the application may write. */
    void (*on_open)(void *arg);
    /* Plaintext bytes from the peer (TLS already removed). */
    void (*on_read)(void *arg, const char *data, size_t length);
    /* A write completed: http_tunnel_queued() shrank. */
    void (*on_drained)(void *arg);
    /* The deadline set with http_tunnel_set_deadline passed. */
    void (*on_deadline)(void *arg);
    /* The server is shutting down: say goodbye and call http_tunnel_close.
     * The server closes the connection itself when its grace period ends. */
    void (*on_shutdown)(void *arg);
    /* The connection is gone (peer closed, reset, error, or after
     * http_tunnel_close); the transport must not be used any more. Called
     * exactly once, also when the 101 could not be sent. */
    void (*on_closed)(void *arg);
};

/* Completes a pending exchange: the transport sends the response. */
static inline void exchange_finish(struct exchange *exchange) {
    exchange->finish(exchange);
}

/* Asks the transport to hand the connection over once this exchange's
 * response, which must be a 101, is queued. A response with another status
 * cancels it: on_closed still runs once, when the connection is gone. */
static inline void exchange_upgrade(struct exchange *exchange, const struct http_tunnel_ops *ops,
                                    void *arg) {
    exchange->upgrade_ops = ops;
    exchange->upgrade_arg = arg;
}

/* Value of a captured path parameter, copied NUL-terminated into `out`;
 * returns NULL if absent or longer than out_size - 1. */
const char *exchange_param(const struct exchange *exchange, const char *name, char *out,
                           size_t out_size);

#endif
