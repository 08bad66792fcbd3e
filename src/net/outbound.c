/*
 * outbound.c - one outbound TCP connection, optionally TLS (see outbound.h).
 *
 * Layers, top to bottom:
 *   public API     trust store, connect, write, start_tls, close;
 *   connecting     uv_getaddrinfo, then each resolved address in turn (a
 *                  failed attempt closes the socket and the next address gets
 *                  a fresh one);
 *   data path      reads go to on_read (plain) or through the TLS session;
 *                  writes are copied (or encrypted) into uv_write requests
 *                  whose bytes count against OUTBOUND_WRITE_QUEUE_MAX until
 *                  libuv reports them written;
 *   teardown       one path for every ending: record the first status and
 *                  sentence, close the handles, fire on_close from the last
 *                  close callback (never inside an API call), then free.
 *
 * Re-entrancy: every callback may call back into this module (write, close,
 * start_tls). Teardown only marks and closes handles; the struct lives until
 * the last libuv callback, so code up the stack may still read it and checks
 * `closing` after each callback it makes. A name resolution still running in
 * the thread pool when the deadline passes does not hold up on_close; the
 * struct then waits for the resolver's callback before it is freed.
 */
#include "outbound.h"

#include "../base/buf.h"
#include "../base/check.h"
#include "../base/err.h"
#include "../base/mem.h"
#include "tls.h"

#include <uv.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Bytes read from the socket at once; also the size of the plaintext chunks
 * TLS hands to on_read (a TLS record holds at most 16 KiB). */
#define OUTBOUND_READ_CHUNK_BYTES (64 * 1024)
#define OUTBOUND_PLAIN_CHUNK_BYTES (16 * 1024)

/* Sentences for on_close. */
#define OUTBOUND_ERROR_BYTES 320

struct outbound_trust {
    struct tls_client_config config; /* the client TLS configuration and CA store */
};

/* Where a connection is; decides what reads mean and whether writes go out. */
enum outbound_phase {
    OUTBOUND_RESOLVING,  /* waiting for uv_getaddrinfo */
    OUTBOUND_CONNECTING, /* a TCP connect is in flight */
    OUTBOUND_HANDSHAKE,  /* TLS from the start: handshake before on_open */
    OUTBOUND_OPEN,       /* application data flows */
    OUTBOUND_UPGRADING,  /* STARTTLS handshake before on_tls */
};

/* One uv_write and the bytes it owns. */
struct outbound_write_request {
    uv_write_t request;          /* libuv request; data points at this struct */
    struct outbound *connection; /* owner, for the queue accounting */
    struct buf bytes;            /* what is written (plaintext or ciphertext) */
};

struct outbound {
    uv_loop_t *loop;                  /* the loop everything runs on */
    struct outbound_trust *trust;     /* CA store for TLS; NULL if never TLS */
    const struct outbound_ops *ops;   /* the caller's callbacks */
    void *arg;                        /* first argument of every callback */
    char *host;                       /* host name as given (SNI, name check) */
    uint16_t port;                    /* remote port */
    unsigned flags;                   /* enum outbound_flags */
    int64_t deadline_ms;              /* the relative deadline, for messages */
    enum outbound_phase phase;        /* see the enum */
    uv_getaddrinfo_t resolve_request; /* the name lookup */
    int resolving;                    /* resolve_request has not called back yet */
    struct addrinfo *addresses;       /* lookup result, freed with the struct */
    struct addrinfo *next_address;    /* next one to try */
    char address_text[64];            /* address of the current attempt */
    uv_tcp_t tcp;                     /* the socket of the current attempt */
    int tcp_initialized;              /* tcp is initialised and not yet closed */
    uv_connect_t connect_request;     /* the connect in flight */
    uv_timer_t timer;                 /* fires at the deadline */
    uv_shutdown_t shutdown_request;   /* graceful end after outbound_close */
    struct tls_session *tls;          /* NULL while plaintext */
    struct buf pending;               /* plaintext written before the connection was ready */
    size_t write_bytes_queued;        /* bytes handed to uv_write, not yet written */
    int handles_open;                 /* tcp + timer handles not yet closed */
    int close_requested;              /* outbound_close was called */
    int closing;                      /* teardown started: no more callbacks but on_close */
    int close_fired;                  /* on_close has run (or must never run) */
    int status;                       /* the status on_close will report */
    char error[OUTBOUND_ERROR_BYTES]; /* the sentence on_close will report */
    char read_chunk[OUTBOUND_READ_CHUNK_BYTES];   /* libuv reads into this */
    char plain_chunk[OUTBOUND_PLAIN_CHUNK_BYTES]; /* TLS decrypts into this */
};

static void outbound_tls_advance(struct outbound *connection);
static void outbound_try_next_address(struct outbound *connection);

/* ---- Trust store ------------------------------------------------------- */

int outbound_trust_open(struct outbound_trust **out, const char *ca_file, char *error,
                        size_t error_size) {
    CHECK(out != NULL && error != NULL && error_size > 0);
    *out = NULL;
    error[0] = '\0';
    struct outbound_trust *trust = mem_calloc(1, sizeof *trust);
    if (trust == NULL) {
        snprintf(error, error_size, "out of memory loading the CA bundle");
        return ERR_NOMEM;
    }
    int rc = tls_client_config_init(&trust->config, ca_file, error, error_size);
    if (rc != 0) {
        mem_free(trust);
        return rc;
    }
    *out = trust;
    return 0;
}

void outbound_trust_close(struct outbound_trust *trust) {
    if (trust == NULL) return;
    tls_client_config_free(&trust->config);
    mem_free(trust);
}

/* ---- Teardown ---------------------------------------------------------- */

static void outbound_free(struct outbound *connection) {
    if (connection->addresses != NULL) uv_freeaddrinfo(connection->addresses);
    if (connection->tls != NULL) {
        tls_session_free(connection->tls);
        mem_free(connection->tls);
    }
    buf_free(&connection->pending);
    mem_free(connection->host);
    mem_free(connection);
}

/* Fires on_close once every handle is closed, and frees the struct once the
 * resolver has called back too. */
static void outbound_maybe_finish(struct outbound *connection) {
    if (connection->handles_open > 0) return;
    if (!connection->close_fired) {
        connection->close_fired = 1;
        connection->ops->on_close(connection->arg, connection->status,
                                  connection->status == 0 && connection->error[0] == '\0'
                                      ? "closed"
                                      : connection->error);
    }
    if (!connection->resolving) outbound_free(connection);
}

static void outbound_on_handle_closed(uv_handle_t *handle) {
    struct outbound *connection = handle->data;
    if (handle == (uv_handle_t *)&connection->tcp) connection->tcp_initialized = 0;
    connection->handles_open--;
    CHECK(connection->handles_open >= 0);
    if (connection->closing) {
        outbound_maybe_finish(connection);
        return;
    }
    /* Only a failed connect attempt closes the socket without teardown. */
    CHECK(handle == (uv_handle_t *)&connection->tcp);
    outbound_try_next_address(connection);
}

/* The one way a connection ends. The first status and sentence win. */
static void outbound_teardown(struct outbound *connection, int status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void outbound_teardown(struct outbound *connection, int status, const char *format, ...) {
    if (connection->closing) return;
    connection->closing = 1;
    connection->status = status;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(connection->error, sizeof connection->error, format, arguments);
    va_end(arguments);
    if (connection->resolving) uv_cancel((uv_req_t *)&connection->resolve_request);
    if (connection->tcp_initialized && !uv_is_closing((uv_handle_t *)&connection->tcp))
        uv_close((uv_handle_t *)&connection->tcp, outbound_on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&connection->timer))
        uv_close((uv_handle_t *)&connection->timer, outbound_on_handle_closed);
}

static const char *outbound_phase_text(enum outbound_phase phase) {
    switch (phase) {
    case OUTBOUND_RESOLVING: return "resolving the name";
    case OUTBOUND_CONNECTING: return "connecting";
    case OUTBOUND_HANDSHAKE: return "in the TLS handshake";
    case OUTBOUND_OPEN: return "waiting for the peer";
    case OUTBOUND_UPGRADING: return "in the STARTTLS handshake";
    }
    return "?";
}

static void outbound_on_deadline(uv_timer_t *timer) {
    struct outbound *connection = timer->data;
    outbound_teardown(connection, ERR_TIMEOUT, "%s:%u: timed out after %lld ms %s",
                      connection->host, connection->port, (long long)connection->deadline_ms,
                      outbound_phase_text(connection->phase));
}

/* ---- Writing ------------------------------------------------------------ */

static void outbound_on_write(uv_write_t *request, int status) {
    struct outbound_write_request *write = request->data;
    struct outbound *connection = write->connection;
    CHECK(connection->write_bytes_queued >= write->bytes.length);
    connection->write_bytes_queued -= write->bytes.length;
    buf_free(&write->bytes);
    mem_free(write);
    if (status < 0 && status != UV_ECANCELED) {
        outbound_teardown(connection, ERR_IO, "write to %s:%u: %s", connection->host,
                          connection->port, uv_strerror(status));
    }
}

/* Hands `bytes` (taken over: left empty) to libuv. */
static int outbound_submit(struct outbound *connection, struct buf *bytes) {
    if (bytes->length == 0) return 0;
    struct outbound_write_request *write = mem_calloc(1, sizeof *write);
    if (write == NULL) return ERR_NOMEM;
    write->connection = connection;
    write->request.data = write;
    write->bytes = *bytes;
    buf_init(bytes, bytes->limit);
    uv_buf_t buffer = uv_buf_init(write->bytes.data, (unsigned)write->bytes.length);
    int rc = uv_write(&write->request, (uv_stream_t *)&connection->tcp, &buffer, 1,
                      outbound_on_write);
    if (rc != 0) {
        buf_free(&write->bytes);
        mem_free(write);
        return ERR_IO;
    }
    connection->write_bytes_queued += buffer.len;
    return 0;
}

/* Puts the ciphertext the TLS session produced on the wire. */
static int outbound_flush_tls(struct outbound *connection) {
    if (connection->tls == NULL || connection->tls->out.length == 0) return 0;
    return outbound_submit(connection, &connection->tls->out);
}

/* Sends plaintext now (the connection is open). */
static int outbound_send(struct outbound *connection, const char *data, size_t length) {
    if (connection->tls != NULL) {
        int rc = tls_session_write(connection->tls, data, length);
        return rc != 0 ? rc : outbound_flush_tls(connection);
    }
    struct buf bytes;
    buf_init(&bytes, OUTBOUND_WRITE_QUEUE_MAX);
    int rc = buf_append(&bytes, data, length);
    if (rc == 0) rc = outbound_submit(connection, &bytes);
    buf_free(&bytes);
    return rc;
}

static void outbound_fail_write(struct outbound *connection, int rc) {
    int status = rc == ERR_NOMEM || rc == ERR_LIMIT ? rc : ERR_IO;
    outbound_teardown(connection, status, "write to %s:%u failed: %s", connection->host,
                      connection->port, err_str(rc));
}

/* The connection became ready: what was written early goes out first. */
static int outbound_flush_pending(struct outbound *connection) {
    if (connection->pending.length == 0) return 0;
    struct buf pending = connection->pending;
    buf_init(&connection->pending, OUTBOUND_WRITE_QUEUE_MAX);
    int rc = outbound_send(connection, pending.data, pending.length);
    buf_free(&pending);
    if (rc != 0) outbound_fail_write(connection, rc);
    return rc;
}

int outbound_write(struct outbound *connection, const char *data, size_t length) {
    CHECK(connection != NULL && (data != NULL || length == 0));
    if (connection->closing || connection->close_requested) return ERR_CLOSED;
    if (length == 0) return 0;
    size_t queued = connection->write_bytes_queued + connection->pending.length;
    if (length > OUTBOUND_WRITE_QUEUE_MAX || queued > OUTBOUND_WRITE_QUEUE_MAX - length) {
        outbound_teardown(connection, ERR_LIMIT,
                          "%s:%u: more than %d bytes waiting to be written (peer not reading)",
                          connection->host, connection->port, OUTBOUND_WRITE_QUEUE_MAX);
        return ERR_LIMIT;
    }
    if (connection->phase != OUTBOUND_OPEN) {
        int rc = buf_append(&connection->pending, data, length);
        if (rc != 0) outbound_fail_write(connection, rc);
        return rc;
    }
    int rc = outbound_send(connection, data, length);
    if (rc != 0) outbound_fail_write(connection, rc);
    return rc;
}

/* ---- Reading ------------------------------------------------------------ */

static void outbound_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer) {
    (void)suggested;
    struct outbound *connection = handle->data;
    *buffer = uv_buf_init(connection->read_chunk, sizeof connection->read_chunk);
}

/* The TLS handshake just finished: from now on writes go out directly. */
static void outbound_tls_ready(struct outbound *connection) {
    enum outbound_phase was = connection->phase;
    connection->phase = OUTBOUND_OPEN;
    if (outbound_flush_pending(connection) != 0) return;
    if (was == OUTBOUND_HANDSHAKE) connection->ops->on_open(connection->arg, connection);
    else if (connection->ops->on_tls != NULL) connection->ops->on_tls(connection->arg, connection);
}

static void outbound_tls_failed(struct outbound *connection, int rc) {
    if (rc == ERR_CLOSED) {
        int handshaking = !connection->tls->handshake_done;
        outbound_teardown(connection, handshaking ? ERR_TLS : 0, "%s:%u %s", connection->host,
                          connection->port,
                          handshaking ? "closed the connection in the TLS handshake"
                                      : "closed the TLS session");
        return;
    }
    if (rc == ERR_NOMEM || rc == ERR_LIMIT) {
        outbound_teardown(connection, rc, "TLS with %s:%u: %s", connection->host,
                          connection->port, err_str(rc));
        return;
    }
    char reason[256];
    tls_session_describe_error(connection->tls, reason, sizeof reason);
    outbound_teardown(connection, ERR_TLS, "TLS with %s:%u: %s", connection->host,
                      connection->port, reason);
}

/* Runs the handshake and decryption over what the session holds, sending
 * whatever ciphertext it produces. At most one pass per decrypted chunk, and
 * each pass consumes input, so the loop ends with the input. */
static void outbound_tls_advance(struct outbound *connection) {
    struct tls_session *tls = connection->tls;
    for (;;) {
        int was_done = tls->handshake_done;
        int plain = tls_session_read(tls, connection->plain_chunk, sizeof connection->plain_chunk);
        int rc = outbound_flush_tls(connection);
        if (rc != 0) {
            outbound_fail_write(connection, rc);
            return;
        }
        if (!was_done && tls->handshake_done) {
            outbound_tls_ready(connection);
            if (connection->closing || connection->close_requested) return;
        }
        if (plain == 0) return;
        if (plain < 0) {
            outbound_tls_failed(connection, plain);
            return;
        }
        connection->ops->on_read(connection->arg, connection, connection->plain_chunk,
                                 (size_t)plain);
        if (connection->closing || connection->close_requested) return;
    }
}

static void outbound_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buffer) {
    struct outbound *connection = stream->data;
    if (connection->closing || nread == 0) return;
    if (nread < 0) {
        int early = connection->phase != OUTBOUND_OPEN;
        if (nread == UV_EOF && (!early || connection->close_requested)) {
            outbound_teardown(connection, 0, "%s:%u closed the connection", connection->host,
                              connection->port);
        } else {
            outbound_teardown(connection, early && connection->tls != NULL ? ERR_TLS : ERR_IO,
                              "%s:%u (%s): %s %s", connection->host, connection->port,
                              connection->address_text,
                              nread == UV_EOF ? "connection closed" : uv_strerror((int)nread),
                              outbound_phase_text(connection->phase));
        }
        return;
    }
    if (connection->close_requested) return; /* the caller is done: discard */
    if (connection->tls == NULL) {
        connection->ops->on_read(connection->arg, connection, buffer->base, (size_t)nread);
        return;
    }
    int rc = tls_session_feed(connection->tls, buffer->base, (size_t)nread);
    if (rc != 0) {
        outbound_teardown(connection, rc == ERR_NOMEM ? ERR_NOMEM : ERR_LIMIT,
                          "TLS with %s:%u: %s", connection->host, connection->port,
                          rc == ERR_NOMEM ? "out of memory" : "too much unprocessed input");
        return;
    }
    outbound_tls_advance(connection);
}

/* ---- TLS ---------------------------------------------------------------- */

/* Starts a client handshake on the open socket (sends the ClientHello). */
static int outbound_tls_begin(struct outbound *connection) {
    CHECK(connection->tls == NULL && connection->trust != NULL);
    struct tls_session *tls = mem_calloc(1, sizeof *tls);
    if (tls == NULL) return ERR_NOMEM;
    int rc = tls_client_session_init(tls, &connection->trust->config, connection->host);
    if (rc != 0) {
        mem_free(tls);
        return rc;
    }
    connection->tls = tls;
    outbound_tls_advance(connection);
    return 0;
}

int outbound_start_tls(struct outbound *connection) {
    CHECK(connection != NULL);
    if (connection->closing || connection->close_requested) return ERR_CLOSED;
    if (connection->phase != OUTBOUND_OPEN || connection->tls != NULL ||
        connection->trust == NULL)
        return ERR_INVAL;
    connection->phase = OUTBOUND_UPGRADING;
    int rc = outbound_tls_begin(connection);
    if (rc != 0) {
        outbound_teardown(connection, rc, "%s:%u: cannot start TLS: %s", connection->host,
                          connection->port, err_str(rc));
    }
    return rc;
}

/* ---- Connecting --------------------------------------------------------- */

static void outbound_on_connect(uv_connect_t *request, int status) {
    struct outbound *connection = request->data;
    if (connection->closing) return;
    if (status < 0) {
        snprintf(connection->error, sizeof connection->error, "connect %s:%u: %s",
                 connection->address_text, connection->port, uv_strerror(status));
        uv_close((uv_handle_t *)&connection->tcp, outbound_on_handle_closed);
        return;
    }
    uv_tcp_nodelay(&connection->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&connection->tcp, outbound_on_alloc, outbound_on_read);
    if (rc != 0) {
        outbound_teardown(connection, ERR_IO, "read from %s:%u: %s", connection->host,
                          connection->port, uv_strerror(rc));
        return;
    }
    if (connection->flags & OUTBOUND_TLS) {
        connection->phase = OUTBOUND_HANDSHAKE;
        rc = outbound_tls_begin(connection);
        if (rc != 0) {
            outbound_teardown(connection, rc, "%s:%u: cannot start TLS: %s", connection->host,
                              connection->port, err_str(rc));
        }
        return;
    }
    connection->phase = OUTBOUND_OPEN;
    if (outbound_flush_pending(connection) != 0) return;
    connection->ops->on_open(connection->arg, connection);
}

/* Starts a connect to the next resolved address; ends the connection when
 * none is left (with the last attempt's sentence). */
static void outbound_try_next_address(struct outbound *connection) {
    CHECK(!connection->tcp_initialized);
    while (connection->next_address != NULL) {
        struct addrinfo *address = connection->next_address;
        connection->next_address = address->ai_next;
        if (address->ai_family != AF_INET && address->ai_family != AF_INET6) continue;
        uv_ip_name(address->ai_addr, connection->address_text, sizeof connection->address_text);
        int rc = uv_tcp_init(connection->loop, &connection->tcp);
        if (rc != 0) {
            snprintf(connection->error, sizeof connection->error, "socket for %s: %s",
                     connection->address_text, uv_strerror(rc));
            break;
        }
        connection->tcp.data = connection;
        connection->tcp_initialized = 1;
        connection->handles_open++;
        connection->connect_request.data = connection;
        rc = uv_tcp_connect(&connection->connect_request, &connection->tcp, address->ai_addr,
                            outbound_on_connect);
        if (rc == 0) return;
        snprintf(connection->error, sizeof connection->error, "connect %s:%u: %s",
                 connection->address_text, connection->port, uv_strerror(rc));
        uv_close((uv_handle_t *)&connection->tcp, outbound_on_handle_closed);
        return;
    }
    char last[OUTBOUND_ERROR_BYTES];
    snprintf(last, sizeof last, "%s", connection->error);
    if (last[0] != '\0')
        outbound_teardown(connection, ERR_IO, "%s", last);
    else
        outbound_teardown(connection, ERR_IO, "%s:%u: no address to connect to",
                          connection->host, connection->port);
}

static void outbound_on_resolved(uv_getaddrinfo_t *request, int status, struct addrinfo *result) {
    struct outbound *connection = request->data;
    connection->resolving = 0;
    connection->addresses = result;
    if (connection->closing) {
        /* The deadline passed (or the caller closed) while the lookup ran. */
        outbound_maybe_finish(connection);
        return;
    }
    if (status < 0) {
        int not_found = status == UV_EAI_NONAME || status == UV_EAI_NODATA ||
                        status == UV_EAI_ADDRFAMILY;
        outbound_teardown(connection, not_found ? ERR_NOTFOUND : ERR_IO, "resolve %s: %s",
                          connection->host, uv_strerror(status));
        return;
    }
    connection->phase = OUTBOUND_CONNECTING;
    connection->next_address = result;
    outbound_try_next_address(connection);
}

/* Undoes a connect that failed before it was started: on_close must not fire. */
static void outbound_abandon(struct outbound *connection) {
    connection->close_fired = 1;
    connection->closing = 1;
    uv_close((uv_handle_t *)&connection->timer, outbound_on_handle_closed);
}

int outbound_connect(struct uv_loop_s *loop, struct outbound_trust *trust, const char *host,
                     uint16_t port, unsigned flags, int64_t deadline_ms,
                     const struct outbound_ops *ops, void *arg, struct outbound **out) {
    CHECK(loop != NULL && ops != NULL && ops->on_open != NULL && ops->on_read != NULL &&
          ops->on_close != NULL);
    if (out != NULL) *out = NULL;
    if (host == NULL || host[0] == '\0' || strlen(host) > OUTBOUND_HOST_BYTES_MAX || port == 0 ||
        deadline_ms <= 0 || ((flags & OUTBOUND_TLS) && trust == NULL))
        return ERR_INVAL;
    struct outbound *connection = mem_calloc(1, sizeof *connection);
    if (connection == NULL) return ERR_NOMEM;
    connection->host = mem_strdup(host);
    if (connection->host == NULL) {
        mem_free(connection);
        return ERR_NOMEM;
    }
    connection->loop = loop;
    connection->trust = trust;
    connection->ops = ops;
    connection->arg = arg;
    connection->port = port;
    connection->flags = flags;
    connection->deadline_ms = deadline_ms;
    connection->phase = OUTBOUND_RESOLVING;
    buf_init(&connection->pending, OUTBOUND_WRITE_QUEUE_MAX);
    uv_timer_init(loop, &connection->timer);
    connection->timer.data = connection;
    connection->handles_open = 1;
    uv_timer_start(&connection->timer, outbound_on_deadline, (uint64_t)deadline_ms, 0);
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    connection->resolve_request.data = connection;
    int rc = uv_getaddrinfo(loop, &connection->resolve_request, outbound_on_resolved, host,
                            service, &hints);
    if (rc != 0) {
        outbound_abandon(connection);
        return rc == UV_ENOMEM ? ERR_NOMEM : ERR_IO;
    }
    connection->resolving = 1;
    if (out != NULL) *out = connection;
    return 0;
}

/* ---- Closing ------------------------------------------------------------ */

static void outbound_on_shutdown(uv_shutdown_t *request, int status) {
    struct outbound *connection = request->data;
    (void)status;
    outbound_teardown(connection, 0, "%s", "");
}

void outbound_close(struct outbound *connection) {
    CHECK(connection != NULL);
    if (connection->closing || connection->close_requested) return;
    connection->close_requested = 1;
    if (connection->phase != OUTBOUND_OPEN && connection->phase != OUTBOUND_UPGRADING) {
        outbound_teardown(connection, 0, "%s:%u: closed before the connection was ready",
                          connection->host, connection->port);
        return;
    }
    if (connection->tls != NULL && connection->tls->handshake_done) {
        /* RFC 8446 6.1: announce the end so the peer can tell it from truncation. */
        tls_session_close(connection->tls);
        if (outbound_flush_tls(connection) != 0) {
            outbound_teardown(connection, 0, "%s", "");
            return;
        }
    }
    connection->shutdown_request.data = connection;
    if (uv_shutdown(&connection->shutdown_request, (uv_stream_t *)&connection->tcp,
                    outbound_on_shutdown) != 0)
        outbound_teardown(connection, 0, "%s", "");
}
