/*
 * server.c - connections on libuv: reading, parsing, dispatch, ordered
 * responses, deadlines, lingering close, TLS and graceful shutdown.
 *
 * Lifecycle of a connection (libuv's init -> start -> close-with-callback):
 *   accept -> reading -> [request complete] busy -> response queued -> reading
 *   any error, deadline or Connection: close -> closing -> both handles closed
 *   and no handler pending -> freed.
 * A handler that finishes after its connection closed only frees it.
 */
#include "server.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/limits.h"
#include "../base/logger.h"
#include "../base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <time.h>

/* Bytes of responses queued on one socket before we stop answering further
 * pipelined requests until the client reads (slow-read defence). */
#define HTTP_WRITE_QUEUE_BYTES_MAX (1024u * 1024)

/* After an error response we half-close and discard input for this long so
 * the client receives the response instead of a reset (lingering close). */
#define HTTP_LINGER_MS 2000

/* Unparsed input kept while a request is being handled (pipelining). */
#define HTTP_INPUT_BYTES_MAX (LIMIT_HTTP_PIPELINE_BYTES + 2 * 64 * 1024)

enum http_phase {
    HTTP_PHASE_IDLE,    /* between requests */
    HTTP_PHASE_HEAD,    /* receiving headers; deadline fixed at the first byte */
    HTTP_PHASE_BODY,    /* receiving a body; deadline moves with each read */
    HTTP_PHASE_BUSY,    /* a handler is running; no deadline */
    HTTP_PHASE_WRITING, /* waiting for the client to read queued responses */
    HTTP_PHASE_LINGER,  /* half-closed after an error; discarding input */
    HTTP_PHASE_TUNNEL,  /* switched protocols; the tunnel sets its own deadline */
};

struct http_conn {
    uv_tcp_t tcp;                  /* the socket; tcp.data = this */
    uv_timer_t timer;              /* the one deadline of the current phase */
    struct http_server *server;    /* owner */
    struct http_conn *previous;    /* server->connections list */
    struct http_conn *next;        /* server->connections list */
    struct request_parser parser;  /* request assembly */
    struct buf input;              /* plaintext received but not yet parsed */
    struct exchange exchange;      /* the request being answered */
    struct tls_session *tls;       /* NULL for plain HTTP */
    enum http_phase phase;         /* what the timer guards */
    size_t write_bytes_queued;     /* bytes handed to uv_write and not yet written */
    int handles_open;              /* tcp and timer handles not yet closed */
    int busy;                      /* a handler has the exchange */
    int in_dispatch;               /* inside conn_dispatch: finish must not re-enter parsing */
    int reading;                   /* uv_read_start is active */
    int closing;                   /* close started */
    int draining;                  /* server shutting down: close after this response */
    int close_after_write;         /* close (lingering) once the queue is empty */
    int request_started;           /* bytes arrived since the last response (incl. TLS handshake) */
    uint64_t deadline_ms;          /* loop time the current phase expires; 0 = none */
    uint64_t timer_due_ms;         /* loop time the uv timer is armed for */
    int rejected;                  /* accepted only to answer 503 */
    const struct http_tunnel_ops *tunnel_ops; /* after a 101: the new protocol; else NULL */
    void *tunnel_arg;              /* passed to tunnel_ops */
    int tunnel_done;               /* http_tunnel_close was called: no more on_read */
};

struct http_write {
    uv_write_t request;     /* libuv write request; request.data = this */
    struct http_conn *conn; /* connection written to */
    struct buf head;        /* serialised head, or TLS ciphertext */
    struct buf body;        /* owned body moved from the response */
    size_t bytes;           /* total bytes in this write */
};

static void conn_process(struct http_conn *conn);
static void conn_close(struct http_conn *conn);
static void conn_linger(struct http_conn *conn);
static void conn_finish(struct exchange *exchange);

/* ---- Small helpers ---------------------------------------------------- */

static const char *http_date(struct http_server *server) {
    time_t now = time(NULL);
    if ((int64_t)now != server->date_second) {
        struct tm utc;
        gmtime_r(&now, &utc);
        strftime(server->date, sizeof server->date, "%a, %d %b %Y %H:%M:%S GMT", &utc);
        server->date_second = (int64_t)now;
    }
    return server->date;
}

int http_server_parse_address(const char *text, struct sockaddr_storage *address) {
    char host[64];
    const char *port_text = NULL;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host) {
            return ERR_INVAL;
        }
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port_text = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL || (size_t)(colon - text) >= sizeof host) return ERR_INVAL;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port_text = colon + 1;
    }
    char *end = NULL;
    long port = strtol(port_text, &end, 10);
    if (*port_text == '\0' || *end != '\0' || port < 0 || port > 65535) return ERR_INVAL;
    if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)address) == 0) return 0;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)address) == 0) return 0;
    return ERR_INVAL;
}

static void http_format_address(const struct sockaddr_storage *address, char *out, size_t size) {
    char host[64] = "";
    int port = 0;
    if (address->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;
        uv_ip6_name(v6, host, sizeof host);
        port = ntohs(v6->sin6_port);
        snprintf(out, size, "[%s]:%d", host, port);
    } else {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
        uv_ip4_name(v4, host, sizeof host);
        port = ntohs(v4->sin_port);
        snprintf(out, size, "%s:%d", host, port);
    }
}

/* ---- Deadlines -------------------------------------------------------- */

static void conn_on_timer(uv_timer_t *timer);

static void conn_set_phase(struct http_conn *conn, enum http_phase phase) {
    const struct http_server_options *options = &conn->server->options;
    /* The idle and header deadlines are fixed when their phase begins: bytes that do not
     * advance the request (empty lines, a trickled TLS handshake) must not extend them.
     * The body deadline is between reads, so it restarts. */
    if (phase == conn->phase && (phase == HTTP_PHASE_HEAD || phase == HTTP_PHASE_IDLE)) return;
    conn->phase = phase;
    uint64_t timeout_ms = 0;
    switch (phase) {
    case HTTP_PHASE_IDLE: timeout_ms = options->idle_timeout_ms; break;
    case HTTP_PHASE_HEAD: timeout_ms = options->header_timeout_ms; break;
    case HTTP_PHASE_BODY: timeout_ms = options->body_timeout_ms; break;
    case HTTP_PHASE_WRITING: timeout_ms = options->idle_timeout_ms; break;
    case HTTP_PHASE_LINGER: timeout_ms = HTTP_LINGER_MS; break;
    case HTTP_PHASE_BUSY: break;
    case HTTP_PHASE_TUNNEL: break;
    }
    /* Deadlines are lazy: the uv timer is restarted only when the new deadline is earlier
     * than the one it is armed for; a timer that fires early re-arms itself for the rest
     * (conn_on_timer). A keep-alive request then costs no timer-heap operation at all. */
    if (timeout_ms == 0) {
        conn->deadline_ms = 0;
        return;
    }
    uint64_t now = uv_now(conn->server->loop);
    conn->deadline_ms = now + timeout_ms;
    if (uv_is_active((uv_handle_t *)&conn->timer) && conn->timer_due_ms <= conn->deadline_ms) {
        return;
    }
    conn->timer_due_ms = conn->deadline_ms;
    uv_timer_start(&conn->timer, conn_on_timer, timeout_ms, 0);
}

/* ---- Writing ---------------------------------------------------------- */

static void conn_on_write(uv_write_t *request, int status) {
    struct http_write *write = request->data;
    struct http_conn *conn = write->conn;
    conn->write_bytes_queued -= write->bytes;
    buf_free(&write->head);
    buf_free(&write->body);
    mem_free(write);
    if (conn->closing) return;
    if (status < 0) {
        conn_close(conn);
        return;
    }
    if (conn->tunnel_ops != NULL && !conn->tunnel_done) {
        conn->tunnel_ops->on_drained(conn->tunnel_arg);
        return;
    }
    if (conn->write_bytes_queued > 0) return;
    if (conn->close_after_write) {
        /* Half-close and drain rather than close: closing a socket with unread input
         * makes the kernel send a reset, which can destroy the response in flight. */
        conn_linger(conn);
        return;
    }
    if (conn->phase == HTTP_PHASE_WRITING) conn_process(conn);
}

/* Queues head and body. Takes ownership of *body (left empty). */
static int conn_send(struct http_conn *conn, struct buf *head, struct buf *body,
                     const char *static_body, size_t static_length) {
    struct http_write *write = mem_calloc(1, sizeof *write);
    if (write == NULL) return ERR_NOMEM;
    write->conn = conn;
    write->request.data = write;
    write->head = *head;
    buf_init(head, head->limit);
    if (body != NULL) {
        write->body = *body;
        buf_init(body, body->limit);
    }
    const char *body_data = static_body != NULL ? static_body : write->body.data;
    size_t body_length = static_body != NULL ? static_length : write->body.length;
    uv_buf_t buffers[2];
    unsigned buffer_count = 0;
    if (conn->tls != NULL) {
        int rc = tls_session_write(conn->tls, write->head.data, write->head.length);
        if (rc == 0 && body_length > 0) rc = tls_session_write(conn->tls, body_data, body_length);
        buf_free(&write->head);
        buf_free(&write->body);
        if (rc != 0) {
            mem_free(write);
            return rc;
        }
        write->head = conn->tls->out; /* move the ciphertext into the write */
        buf_init(&conn->tls->out, write->head.limit);
        buffers[buffer_count++] = uv_buf_init(write->head.data, (unsigned)write->head.length);
    } else {
        buffers[buffer_count++] = uv_buf_init(write->head.data, (unsigned)write->head.length);
        if (body_length > 0) buffers[buffer_count++] = uv_buf_init((char *)body_data,
                                                                   (unsigned)body_length);
    }
    for (unsigned index = 0; index < buffer_count; index++) write->bytes += buffers[index].len;
    if (write->bytes == 0) {
        buf_free(&write->head);
        mem_free(write);
        return 0;
    }
    int rc = uv_write(&write->request, (uv_stream_t *)&conn->tcp, buffers, buffer_count,
                      conn_on_write);
    if (rc != 0) {
        buf_free(&write->head);
        buf_free(&write->body);
        mem_free(write);
        return ERR_IO;
    }
    conn->write_bytes_queued += write->bytes;
    return 0;
}

/* Flushes TLS handshake bytes waiting in the session's out buffer. */
static int conn_flush_tls(struct http_conn *conn) {
    if (conn->tls == NULL || conn->tls->out.length == 0) return 0;
    struct buf empty;
    buf_init(&empty, LIMIT_HTTP_HEADER_BYTES);
    return conn_send(conn, &empty, NULL, NULL, 0);
}

static int conn_send_response(struct http_conn *conn, struct response *response, int keep_alive,
                              int http_minor, int head_only) {
    struct buf head;
    buf_init(&head, 2 * LIMIT_HTTP_HEADER_BYTES);
    int rc = response_serialize_head(response, &head, keep_alive, http_minor,
                                     http_date(conn->server));
    if (rc != 0) {
        buf_free(&head);
        return rc;
    }
    if (head_only) return conn_send(conn, &head, NULL, NULL, 0);
    if (response->static_body != NULL) {
        return conn_send(conn, &head, NULL, response->static_body, response->static_body_length);
    }
    return conn_send(conn, &head, &response->body, NULL, 0);
}

/* Answers a request that cannot be handled (parse error, limit, deadline)
 * with problem+json, then closes with a lingering close. */
static void conn_send_error(struct http_conn *conn, int status, const char *detail) {
    struct response response;
    response_init(&response);
    int rc = response_problem(&response, status, detail, NULL, 0);
    if (rc == 0) rc = conn_send_response(conn, &response, 0, 1, 0);
    response_free(&response);
    conn->server->stats.parse_errors_total += status != 408;
    if (rc != 0 || conn->write_bytes_queued == 0) {
        conn_close(conn);
        return;
    }
    conn->close_after_write = 1;
}

/* ---- Closing ---------------------------------------------------------- */

static void conn_maybe_free(struct http_conn *conn) {
    if (conn->handles_open > 0 || conn->busy) return;
    request_parser_free(&conn->parser);
    response_free(&conn->exchange.response);
    buf_free(&conn->input);
    if (conn->tls != NULL) {
        tls_session_free(conn->tls);
        mem_free(conn->tls);
    }
    mem_free(conn);
}

static void server_maybe_closed(struct http_server *server);

static void conn_on_handle_closed(uv_handle_t *handle) {
    struct http_conn *conn = handle->data;
    conn->handles_open--;
    if (conn->handles_open == 0) {
        struct http_server *server = conn->server;
        if (conn->tunnel_ops != NULL) {
            const struct http_tunnel_ops *ops = conn->tunnel_ops;
            conn->tunnel_ops = NULL;
            server->stats.tunnels_open--;
            ops->on_closed(conn->tunnel_arg);
        }
        conn_maybe_free(conn);
        server_maybe_closed(server);
    }
}

static void conn_close(struct http_conn *conn) {
    if (conn->closing) return;
    conn->closing = 1;
    struct http_server *server = conn->server;
    if (conn->previous != NULL) conn->previous->next = conn->next;
    else server->connections = conn->next;
    if (conn->next != NULL) conn->next->previous = conn->previous;
    conn->previous = conn->next = NULL;
    if (!conn->rejected) server->stats.connections_open--;
    uv_close((uv_handle_t *)&conn->tcp, conn_on_handle_closed);
    uv_close((uv_handle_t *)&conn->timer, conn_on_handle_closed);
}

static void conn_on_shutdown(uv_shutdown_t *request, int status) {
    (void)status;
    mem_free(request);
}

/* Half-close, then discard input until EOF or the linger deadline. */
static void conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer);
static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buffer);

static void conn_linger(struct http_conn *conn) {
    conn->close_after_write = 0;
    if (conn->tls != NULL) {
        /* RFC 8446 6.1: announce the end of data so clients can tell it from truncation. */
        tls_session_close(conn->tls);
        conn_flush_tls(conn);
    }
    uv_shutdown_t *request = mem_alloc(sizeof *request);
    if (request == NULL || uv_shutdown(request, (uv_stream_t *)&conn->tcp, conn_on_shutdown) != 0) {
        mem_free(request);
        conn_close(conn);
        return;
    }
    conn_set_phase(conn, HTTP_PHASE_LINGER);
    if (!conn->reading &&
        uv_read_start((uv_stream_t *)&conn->tcp, conn_on_alloc, conn_on_read) == 0) {
        conn->reading = 1;
    }
}

static void conn_on_timer(uv_timer_t *timer) {
    struct http_conn *conn = timer->data;
    if (conn->closing || conn->deadline_ms == 0) return;
    uint64_t now = uv_now(conn->server->loop);
    if (now < conn->deadline_ms) { /* armed for an earlier deadline that has since moved */
        conn->timer_due_ms = conn->deadline_ms;
        uv_timer_start(&conn->timer, conn_on_timer, conn->deadline_ms - now, 0);
        return;
    }
    conn->deadline_ms = 0;
    switch (conn->phase) {
    case HTTP_PHASE_HEAD:
    case HTTP_PHASE_BODY:
        conn->server->stats.timeouts_total++;
        conn_send_error(conn, 408, "The request was not received in time.");
        break;
    case HTTP_PHASE_WRITING:
        conn->server->stats.timeouts_total++;
        conn_close(conn);
        break;
    case HTTP_PHASE_TUNNEL:
        if (!conn->tunnel_done) conn->tunnel_ops->on_deadline(conn->tunnel_arg);
        break;
    default:
        conn_close(conn);
        break;
    }
}

/* ---- Dispatch --------------------------------------------------------- */

static void conn_prepare_exchange(struct http_conn *conn) {
    struct exchange *exchange = &conn->exchange;
    response_reset(&exchange->response);
    exchange->request = &conn->parser.request;
    const char *url = request_url(exchange->request);
    /* Absolute form ("GET http://host/path"): servers must accept it (RFC 9112 3.2.2). */
    if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) {
        const char *authority = strstr(url, "://") + 3;
        const char *slash = strchr(authority, '/');
        url = slash != NULL ? slash : "/";
    }
    const char *question = strchr(url, '?');
    exchange->path = url;
    exchange->path_length = question != NULL ? (size_t)(question - url) : strlen(url);
    exchange->query = question != NULL ? question + 1 : "";
    exchange->param_count = 0;
    exchange->context = conn->server->options.context;
    exchange->finish = conn_finish;
    exchange->transport = conn;
    exchange->upgrade_ops = NULL;
    exchange->upgrade_arg = NULL;
    exchange->tls = conn->tls != NULL;
}

static enum exchange_status conn_route(struct http_conn *conn) {
    struct exchange *exchange = &conn->exchange;
    const struct http_server_options *options = &conn->server->options;
    const struct route *route = NULL;
    char allow[128];
    enum router_result result = router_match(options->routes, options->route_count, exchange,
                                             &route, allow, sizeof allow);
    if (result == ROUTER_FOUND) return route->handler(exchange);
    if (result == ROUTER_METHOD_NOT_ALLOWED) {
        response_problem(&exchange->response, 405, "This resource does not support the method.",
                         NULL, 0);
        response_header(&exchange->response, "Allow", allow);
        return EXCHANGE_DONE;
    }
    if (options->fallback != NULL) return options->fallback(exchange);
    response_problem(&exchange->response, 404, "No resource exists at this path.", NULL, 0);
    return EXCHANGE_DONE;
}

static void conn_dispatch(struct http_conn *conn) {
    conn->busy = 1;
    conn->in_dispatch = 1;
    conn_set_phase(conn, HTTP_PHASE_BUSY);
    conn_prepare_exchange(conn);
    if (conn_route(conn) == EXCHANGE_DONE) conn_finish(&conn->exchange);
    conn->in_dispatch = 0;
}

static void conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer);
static void conn_resume_reading(struct http_conn *conn);

/* Sends the 101 and hands the connection to the tunnel: the parser's and
 * the response's buffers are released (a WebSocket may stay open for days
 * and idle memory is what limits how many fit), and input that arrived
 * behind the request is the tunnel's first read. */
static void conn_start_tunnel(struct http_conn *conn, const struct http_tunnel_ops *ops,
                              void *arg) {
    struct http_server *server = conn->server;
    server->stats.requests_total++;
    int rc = conn_send_response(conn, &conn->exchange.response, 1, 1, 0);
    response_free(&conn->exchange.response);
    request_parser_free(&conn->parser);
    conn->tunnel_ops = ops;
    conn->tunnel_arg = arg;
    server->stats.tunnels_open++;
    if (rc != 0) {
        conn_close(conn); /* on_closed follows from the handle callbacks */
        return;
    }
    conn->deadline_ms = 0;
    conn->phase = HTTP_PHASE_TUNNEL;
    ops->on_open(arg);
    if (conn->closing || conn->tunnel_done) return;
    if (conn->input.length > 0) {
        struct buf early = conn->input;
        buf_init(&conn->input, early.limit);
        ops->on_read(arg, early.data, early.length);
        buf_free(&early);
    } else {
        buf_free(&conn->input);
    }
    if (!conn->closing && !conn->tunnel_done) conn_resume_reading(conn);
}

/* Sends the exchange's response and moves on to the next request. */
static void conn_finish(struct exchange *exchange) {
    struct http_conn *conn = exchange->transport;
    CHECK(conn->busy);
    conn->busy = 0;
    const struct http_tunnel_ops *upgrade = exchange->upgrade_ops;
    exchange->upgrade_ops = NULL;
    if (conn->closing) {
        if (upgrade != NULL) upgrade->on_closed(exchange->upgrade_arg);
        conn_maybe_free(conn);
        return;
    }
    struct response *response = &exchange->response;
    const struct request *request = exchange->request;
    if (response->status == 0) {
        response_problem(response, 500, "The handler produced no response.", NULL, 0);
    }
    if (upgrade != NULL) {
        if (response->status == 101) {
            conn_start_tunnel(conn, upgrade, exchange->upgrade_arg);
            return;
        }
        upgrade->on_closed(exchange->upgrade_arg); /* the upgrade was refused */
    }
    int keep_alive = request->keep_alive && !response->close && !conn->draining &&
                     !conn->server->shutting_down && !request->upgrade;
    int head_only = strcmp(request->method, "HEAD") == 0;
    conn->server->stats.requests_total++;
    int rc = conn_send_response(conn, response, keep_alive, request->http_minor, head_only);
    if (rc != 0) {
        conn_close(conn);
        return;
    }
    if (!keep_alive) {
        conn->close_after_write = 1;
        if (conn->reading) uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->reading = 0;
        return;
    }
    request_parser_next(&conn->parser);
    conn->request_started = conn->input.length > 0; /* a pipelined request has begun */
    conn_set_phase(conn, HTTP_PHASE_IDLE);
    if (!conn->in_dispatch) conn_process(conn);
}

/* ---- Reading and parsing ---------------------------------------------- */

static void conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer) {
    (void)suggested;
    struct http_conn *conn = handle->data;
    *buffer = uv_buf_init(conn->server->read_buffer, sizeof conn->server->read_buffer);
}

static void conn_resume_reading(struct http_conn *conn) {
    if (conn->reading || conn->closing || conn->close_after_write) return;
    if (uv_read_start((uv_stream_t *)&conn->tcp, conn_on_alloc, conn_on_read) == 0) {
        conn->reading = 1;
    }
}

static void conn_pause_reading(struct http_conn *conn) {
    if (!conn->reading) return;
    uv_read_stop((uv_stream_t *)&conn->tcp);
    conn->reading = 0;
}

static void conn_send_continue(struct http_conn *conn) {
    struct buf head;
    buf_init(&head, 64);
    if (buf_append_str(&head, "HTTP/1.1 100 Continue\r\n\r\n") != 0 ||
        conn_send(conn, &head, NULL, NULL, 0) != 0) {
        buf_free(&head);
    }
}

static void conn_process(struct http_conn *conn) {
    for (int round = 0; !conn->busy && !conn->closing && !conn->close_after_write &&
                        conn->tunnel_ops == NULL;
         round++) {
        CHECK(round < 1000000);
        if (conn->write_bytes_queued > HTTP_WRITE_QUEUE_BYTES_MAX) {
            conn_pause_reading(conn);
            conn_set_phase(conn, HTTP_PHASE_WRITING);
            return;
        }
        size_t consumed = 0;
        enum request_parse_result result =
            request_parser_feed(&conn->parser, conn->input.data, conn->input.length, &consumed);
        if (consumed > 0) buf_consume(&conn->input, consumed);
        switch (result) {
        case REQUEST_NEED_MORE: {
            enum request_parser_state state = conn->parser.state;
            enum http_phase phase = HTTP_PHASE_HEAD;
            if (state == REQUEST_STATE_BODY) phase = HTTP_PHASE_BODY;
            if (state == REQUEST_STATE_IDLE && !conn->request_started) phase = HTTP_PHASE_IDLE;
            conn_set_phase(conn, phase);
            conn_resume_reading(conn);
            return;
        }
        case REQUEST_HEADERS:
            if (conn->parser.request.expect_continue) conn_send_continue(conn);
            break;
        case REQUEST_COMPLETE:
            conn_dispatch(conn);
            break;
        case REQUEST_ERROR:
            conn_pause_reading(conn);
            conn_send_error(conn, conn->parser.error_status, conn->parser.error_detail);
            return;
        }
    }
    if (conn->busy && conn->input.length >= LIMIT_HTTP_PIPELINE_BYTES) conn_pause_reading(conn);
}

static int conn_take_plaintext(struct http_conn *conn, const char *data, size_t length) {
    if (conn->tls == NULL) return buf_append(&conn->input, data, length);
    int rc = tls_session_feed(conn->tls, data, length);
    while (rc == 0) {
        int plain = tls_session_read(conn->tls, conn->server->plain_buffer,
                                     sizeof conn->server->plain_buffer);
        if (plain <= 0) {
            rc = plain;
            break;
        }
        rc = buf_append(&conn->input, conn->server->plain_buffer, (size_t)plain);
    }
    int flush = conn_flush_tls(conn);
    return rc != 0 ? rc : flush;
}

/* Tunnel input: straight from the shared read buffer, or decrypted into
 * conn->input (released again at once, so an idle tunnel holds nothing). */
static void conn_tunnel_read(struct http_conn *conn, const char *data, size_t length) {
    if (conn->tunnel_done) return;
    if (conn->tls == NULL) {
        conn->tunnel_ops->on_read(conn->tunnel_arg, data, length);
        return;
    }
    int rc = conn_take_plaintext(conn, data, length);
    if (rc != 0) {
        conn_close(conn);
        return;
    }
    struct buf plain = conn->input;
    buf_init(&conn->input, plain.limit);
    if (plain.length > 0) conn->tunnel_ops->on_read(conn->tunnel_arg, plain.data, plain.length);
    buf_free(&plain);
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buffer) {
    struct http_conn *conn = stream->data;
    if (conn->closing) return;
    if (nread == 0) return;
    if (nread < 0) {
        /* EOF or reset. A request cut off mid-way has nobody left to answer. */
        conn_close(conn);
        return;
    }
    if (conn->phase == HTTP_PHASE_LINGER) return; /* discard */
    if (conn->tunnel_ops != NULL) {
        conn_tunnel_read(conn, buffer->base, (size_t)nread);
        return;
    }
    conn->request_started = 1;
    int rc = conn_take_plaintext(conn, buffer->base, (size_t)nread);
    if (rc != 0) {
        conn_close(conn);
        return;
    }
    if (conn->phase == HTTP_PHASE_BODY) conn_set_phase(conn, HTTP_PHASE_BODY); /* reset deadline */
    if (conn->busy) {
        if (conn->input.length >= LIMIT_HTTP_PIPELINE_BYTES) conn_pause_reading(conn);
        return;
    }
    conn_process(conn);
}

/* ---- Accepting -------------------------------------------------------- */

static void conn_start_close_after_write(struct http_conn *conn) {
    if (conn->write_bytes_queued == 0) conn_close(conn);
    else conn->close_after_write = 1;
}

/* The client's address without the port, for per-address limits (login
 * throttling) and logs. */
static void conn_record_peer(struct http_conn *conn) {
    struct sockaddr_storage address;
    int length = (int)sizeof address;
    char *out = conn->exchange.peer_address;
    out[0] = '\0';
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&address, &length) != 0) return;
    if (address.ss_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)&address, out, sizeof conn->exchange.peer_address);
    } else if (address.ss_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)&address, out, sizeof conn->exchange.peer_address);
    }
}

static void server_on_connection(uv_stream_t *listener, int status) {
    struct http_server *server = listener->data;
    if (status < 0 || server->shutting_down) return;
    struct http_conn *conn = mem_calloc(1, sizeof *conn);
    if (conn == NULL) return;
    conn->server = server;
    uv_tcp_init(server->loop, &conn->tcp);
    uv_timer_init(server->loop, &conn->timer);
    conn->tcp.data = conn;
    conn->timer.data = conn;
    conn->handles_open = 2;
    request_parser_init(&conn->parser, server->options.max_body_bytes);
    buf_init(&conn->input, HTTP_INPUT_BYTES_MAX);
    response_init(&conn->exchange.response);
    conn->next = server->connections;
    if (conn->next != NULL) conn->next->previous = conn;
    server->connections = conn;
    server->stats.connections_open++;
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
        conn_close(conn);
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    conn_record_peer(conn);
    server->stats.connections_total++;
    if (server->stats.connections_open > server->options.max_connections) {
        /* Over the ceiling: answer 503 in plain text-free problem+json and go. */
        server->stats.connections_open--;
        conn->rejected = 1;
        server->stats.connections_rejected++;
        if (server->options.tls == NULL) {
            conn_send_error(conn, 503, "The server has reached its connection limit.");
        }
        if (!conn->closing) conn_start_close_after_write(conn);
        return;
    }
    if (server->options.tls != NULL) {
        conn->tls = mem_alloc(sizeof *conn->tls);
        if (conn->tls == NULL || tls_session_init(conn->tls, server->options.tls) != 0) {
            mem_free(conn->tls);
            conn->tls = NULL;
            conn_close(conn);
            return;
        }
    }
    conn->phase = HTTP_PHASE_BUSY; /* so the first set_phase arms the idle deadline */
    conn_set_phase(conn, HTTP_PHASE_IDLE);
    conn_resume_reading(conn);
}

int http_server_start(struct http_server *server, uv_loop_t *loop,
                      const struct http_server_options *options, char *error, size_t error_size) {
    memset(server, 0, offsetof(struct http_server, read_buffer));
    server->loop = loop;
    server->options = *options;
    server->date_second = -1;
    struct sockaddr_storage address;
    memset(&address, 0, sizeof address);
    if (http_server_parse_address(options->listen, &address) != 0) {
        snprintf(error, error_size, "listen address '%s' is not HOST:PORT", options->listen);
        return ERR_CONFIG;
    }
    uv_tcp_init(loop, &server->listener);
    uv_timer_init(loop, &server->grace_timer);
    server->listener.data = server;
    server->grace_timer.data = server;
    server->handles_open = 2;
    int rc = uv_tcp_bind(&server->listener, (const struct sockaddr *)&address, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&server->listener, 1024, server_on_connection);
    if (rc != 0) {
        snprintf(error, error_size, "cannot listen on %s: %s", options->listen, uv_strerror(rc));
        server->shutting_down = 1;
        uv_close((uv_handle_t *)&server->listener, NULL);
        uv_close((uv_handle_t *)&server->grace_timer, NULL);
        server->handles_open = 0;
        return ERR_IO;
    }
    struct sockaddr_storage bound;
    int bound_length = (int)sizeof bound;
    uv_tcp_getsockname(&server->listener, (struct sockaddr *)&bound, &bound_length);
    http_format_address(&bound, server->bound_address, sizeof server->bound_address);
    return 0;
}

/* ---- Shutdown --------------------------------------------------------- */

static void server_maybe_closed(struct http_server *server) {
    if (!server->shutting_down || server->connections != NULL) return;
    if (uv_is_active((uv_handle_t *)&server->grace_timer)) uv_timer_stop(&server->grace_timer);
    if (server->handles_open == 1 && !uv_is_closing((uv_handle_t *)&server->grace_timer)) {
        uv_close((uv_handle_t *)&server->grace_timer, NULL);
        server->handles_open = 0;
    }
    if (server->handles_open == 0 && server->on_closed != NULL) {
        void (*on_closed)(struct http_server *) = server->on_closed;
        server->on_closed = NULL;
        on_closed(server);
    }
}

static void server_on_listener_closed(uv_handle_t *handle) {
    struct http_server *server = handle->data;
    server->handles_open--;
    server_maybe_closed(server);
}

static void server_on_grace_expired(uv_timer_t *timer) {
    struct http_server *server = timer->data;
    LOG_WARN("http", "shutdown grace period over; closing remaining connections", NULL);
    while (server->connections != NULL) conn_close(server->connections);
    server_maybe_closed(server);
}

void http_server_shutdown(struct http_server *server, uint64_t grace_ms,
                          void (*on_closed)(struct http_server *server)) {
    if (server->shutting_down) {
        /* A second request with no grace (a second SIGTERM) closes everything now. */
        if (grace_ms == 0) server_on_grace_expired(&server->grace_timer);
        return;
    }
    server->shutting_down = 1;
    server->on_closed = on_closed;
    uv_close((uv_handle_t *)&server->listener, server_on_listener_closed);
    struct http_conn *conn = server->connections;
    while (conn != NULL) {
        struct http_conn *next = conn->next;
        if (conn->tunnel_ops != NULL) {
            conn->draining = 1;
            if (!conn->tunnel_done) conn->tunnel_ops->on_shutdown(conn->tunnel_arg);
            conn = next;
            continue;
        }
        int idle = !conn->busy && conn->parser.state == REQUEST_STATE_IDLE &&
                   conn->input.length == 0 && conn->write_bytes_queued == 0;
        if (idle) conn_close(conn);
        else conn->draining = 1;
        conn = next;
    }
    uv_timer_start(&server->grace_timer, server_on_grace_expired, grace_ms, 0);
    server_maybe_closed(server);
}

/* ---- Tunnels ------------------------------------------------------------ */

int http_tunnel_write(void *transport, const void *data, size_t length) {
    struct http_conn *conn = transport;
    CHECK(conn->tunnel_ops != NULL || conn->closing);
    if (conn->closing || conn->close_after_write || conn->phase == HTTP_PHASE_LINGER) {
        return ERR_CLOSED;
    }
    if (conn->tls == NULL && conn->write_bytes_queued == 0 && length > 0) {
        /* Nothing queued: try the socket at once. Usually it takes everything and
         * the message costs no allocation and no copy; the rest is queued. */
        uv_buf_t direct = uv_buf_init((char *)data, (unsigned)length);
        int taken = uv_try_write((uv_stream_t *)&conn->tcp, &direct, 1);
        if (taken == (int)length) return 0;
        if (taken > 0) {
            data = (const char *)data + taken;
            length -= (size_t)taken;
        } else if (taken != UV_EAGAIN) {
            conn_close(conn);
            return ERR_IO;
        }
    }
    struct buf bytes;
    buf_init(&bytes, length);
    int rc = buf_append(&bytes, data, length);
    if (rc == 0) rc = conn_send(conn, &bytes, NULL, NULL, 0);
    buf_free(&bytes);
    if (rc != 0) conn_close(conn);
    return rc;
}

size_t http_tunnel_queued(void *transport) {
    const struct http_conn *conn = transport;
    return conn->write_bytes_queued;
}

void http_tunnel_pause(void *transport, int paused) {
    struct http_conn *conn = transport;
    if (conn->closing || conn->tunnel_done) return;
    if (paused) conn_pause_reading(conn);
    else conn_resume_reading(conn);
}

void http_tunnel_set_deadline(void *transport, uint64_t due_ms) {
    struct http_conn *conn = transport;
    if (conn->closing || conn->tunnel_done || conn->phase != HTTP_PHASE_TUNNEL) return;
    conn->deadline_ms = due_ms;
    if (due_ms == 0) return;
    /* Lazy, like conn_set_phase: a later deadline leaves the armed timer alone and
     * conn_on_timer re-arms for the rest, so a keepalive pushed back on every frame
     * costs no timer-heap operation. */
    if (uv_is_active((uv_handle_t *)&conn->timer) && conn->timer_due_ms <= due_ms) return;
    uint64_t now = uv_now(conn->server->loop);
    conn->timer_due_ms = due_ms;
    uv_timer_start(&conn->timer, conn_on_timer, due_ms > now ? due_ms - now : 0, 0);
}

uint64_t http_tunnel_now(void *transport) {
    const struct http_conn *conn = transport;
    return uv_now(conn->server->loop);
}

void http_tunnel_close(void *transport, int graceful) {
    struct http_conn *conn = transport;
    if (conn->tunnel_done || conn->closing) {
        conn->tunnel_done = 1;
        return;
    }
    conn->tunnel_done = 1;
    conn->deadline_ms = 0;
    if (!graceful) {
        conn_close(conn);
        return;
    }
    if (conn->write_bytes_queued == 0) {
        conn_linger(conn);
        return;
    }
    /* A peer that stopped reading would keep the queue (and the socket) forever:
     * it gets HTTP_LINGER_MS to take what is queued, then the socket is closed. */
    conn->close_after_write = 1;
    conn_pause_reading(conn);
    conn->phase = HTTP_PHASE_WRITING;
    conn->deadline_ms = uv_now(conn->server->loop) + HTTP_LINGER_MS;
    if (!uv_is_active((uv_handle_t *)&conn->timer) || conn->timer_due_ms > conn->deadline_ms) {
        conn->timer_due_ms = conn->deadline_ms;
        uv_timer_start(&conn->timer, conn_on_timer, HTTP_LINGER_MS, 0);
    }
}
