/*
 * server.h - the HTTP/1.1 transport on libuv: listener, connections, limits,
 * timeouts, optional TLS, and graceful shutdown.
 *
 * Requests on one connection are answered strictly in order, one at a time:
 * the parser pauses after each complete request, the handler runs (now or
 * later, see exchange.h), the response is queued, and parsing resumes with any
 * pipelined bytes. Every per-connection buffer has a ceiling from limits.h or
 * the configuration, and every phase of a request has a deadline:
 *   idle keep-alive  -> closed silently after idle_timeout_ms
 *   headers          -> 408 after header_timeout_ms from the first byte
 *   body             -> 408 when no byte arrives for body_timeout_ms
 *   unread responses -> closed when the client reads nothing for idle_timeout_ms
 */
#ifndef DOCKET_HTTP_SERVER_H
#define DOCKET_HTTP_SERVER_H

#include "../net/tls.h"
#include "router.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_server_options {
    const char *listen;             /* "HOST:PORT", "[v6]:PORT"; port 0 = any */
    size_t max_connections;         /* open connections; more get 503 */
    size_t max_body_bytes;          /* request body ceiling (413) */
    uint64_t header_timeout_ms;     /* see the table above */
    uint64_t body_timeout_ms;       /* see the table above */
    uint64_t idle_timeout_ms;       /* see the table above */
    struct tls_server_config *tls;  /* NULL: plain HTTP */
    const struct route *routes;     /* route table, static */
    size_t route_count;             /* entries in routes */
    exchange_handler fallback;      /* for paths no route matched (web assets); may be NULL */
    void *context;                  /* passed to handlers as exchange->context */
};

struct http_server_stats {
    uint64_t connections_open;     /* currently open */
    uint64_t connections_total;    /* accepted since start */
    uint64_t connections_rejected; /* refused with 503 (max_connections) */
    uint64_t requests_total;       /* requests answered */
    uint64_t timeouts_total;       /* connections ended by a deadline */
    uint64_t parse_errors_total;   /* requests refused as malformed or oversized */
    uint64_t tunnels_open;         /* connections that switched protocols (WebSockets) */
};

struct http_conn;

struct http_server {
    uv_loop_t *loop;                     /* the one event loop */
    uv_tcp_t listener;                   /* accepting socket */
    uv_timer_t grace_timer;              /* shutdown deadline */
    struct http_server_options options;  /* copied at start */
    struct http_conn *connections;       /* every open connection (doubly linked) */
    struct http_server_stats stats;      /* counters for /metrics */
    char bound_address[64];              /* the address actually bound, "127.0.0.1:8080" */
    char date[40];                       /* cached IMF-fixdate for the Date header */
    int64_t date_second;                 /* the second `date` was formatted for */
    int handles_open;                    /* listener and grace timer not yet closed */
    int shutting_down;                   /* http_server_shutdown was called */
    void (*on_closed)(struct http_server *server); /* called once everything is closed */
    char read_buffer[64 * 1024];         /* shared by all connections: reads are processed at once */
    char plain_buffer[16 * 1024];        /* TLS plaintext scratch */
};

/* Binds and listens. Returns 0 or a negative code; `error` gets a sentence. */
int http_server_start(struct http_server *server, uv_loop_t *loop,
                      const struct http_server_options *options, char *error, size_t error_size);

/* Stops accepting, lets in-flight requests finish (their responses carry
 * Connection: close), closes idle connections at once, and after grace_ms
 * closes whatever is left. `on_closed` runs when all handles are closed.
 * Called again with grace_ms 0, it closes the remaining connections at once. */
void http_server_shutdown(struct http_server *server, uint64_t grace_ms,
                          void (*on_closed)(struct http_server *server));

/* ---- Tunnels (connections that switched protocols, see exchange.h) ---- */

/* Queues bytes for the peer (copied; encrypted first under TLS). 0, or a
 * negative code once the connection is closing or the write failed. */
int http_tunnel_write(void *transport, const void *data, size_t length);
/* Bytes queued and not yet taken by the socket. */
size_t http_tunnel_queued(void *transport);
/* Stops (1) or restarts (0) reading from the peer. */
void http_tunnel_pause(void *transport, int paused);
/* on_deadline runs at loop time due_ms (0 cancels). */
void http_tunnel_set_deadline(void *transport, uint64_t due_ms);
/* The loop's time in ms (the clock deadlines use). */
uint64_t http_tunnel_now(void *transport);
/* Closes: graceful 1 writes what is queued first, then half-closes and
 * drains the input for a moment (lingering close); 0 closes at once.
 * on_closed follows when the connection is gone. No further on_read. */
void http_tunnel_close(void *transport, int graceful);

/* Parses "HOST:PORT" / "[v6]:PORT" into a socket address. */
int http_server_parse_address(const char *text, struct sockaddr_storage *address);

#endif
