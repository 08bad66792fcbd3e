/*
 * loop_server.c - the scripted test server (see loop_server.h).
 */
#include "loop_server.h"

#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOP_RECEIVED_MAX (4 * 1024 * 1024)

struct loop_server {
    uv_loop_t *loop;                     /* the test's loop */
    uv_tcp_t listener;                   /* bound to 127.0.0.1:0 */
    struct loop_server_options options;  /* as given */
    const struct loop_server_ops *ops;   /* the test's callbacks */
    void *arg;                           /* their first argument */
    struct loop_peer *peers;             /* every accepted peer, newest first */
    int accepted;                        /* count of peers */
    int stopped;                         /* loop_server_stop ran */
    int handles_open;                    /* listener + peers not yet closed */
};

struct loop_write {
    uv_write_t request; /* libuv request */
    struct buf bytes;   /* owned bytes */
};

static void loop_on_write(uv_write_t *request, int status) {
    (void)status;
    struct loop_write *write = request->data;
    buf_free(&write->bytes);
    free(write);
}

/* Writes raw bytes (taken over from `bytes`). */
static int loop_write_raw(struct loop_peer *peer, struct buf *bytes) {
    if (bytes->length == 0 || peer->closing) return 0;
    struct loop_write *write = calloc(1, sizeof *write);
    if (write == NULL) return ERR_NOMEM;
    write->request.data = write;
    write->bytes = *bytes;
    buf_init(bytes, bytes->limit);
    uv_buf_t buffer = uv_buf_init(write->bytes.data, (unsigned)write->bytes.length);
    if (uv_write(&write->request, (uv_stream_t *)&peer->tcp, &buffer, 1, loop_on_write) != 0) {
        buf_free(&write->bytes);
        free(write);
        return ERR_IO;
    }
    return 0;
}

/* A failure on the server side (allocation tests share the mem.h seam) closes the
 * peer, so the client sees the end at once instead of waiting for its deadline. */
int loop_peer_send(struct loop_peer *peer, const char *data, size_t length) {
    int rc = 0;
    if (peer->tls != NULL) {
        rc = tls_session_write(peer->tls, data, length);
        if (rc == 0) rc = loop_write_raw(peer, &peer->tls->out);
    } else {
        struct buf bytes;
        buf_init(&bytes, LOOP_RECEIVED_MAX);
        rc = buf_append(&bytes, data, length);
        if (rc == 0) rc = loop_write_raw(peer, &bytes);
        buf_free(&bytes);
    }
    if (rc != 0) loop_peer_close(peer);
    return rc;
}

int loop_peer_send_text(struct loop_peer *peer, const char *text) {
    return loop_peer_send(peer, text, strlen(text));
}

static void loop_on_closed(uv_handle_t *handle) {
    struct loop_server *server = handle->data;
    server->handles_open--;
}

static void loop_on_peer_closed(uv_handle_t *handle) {
    struct loop_peer *peer = handle->data;
    peer->server->handles_open--;
}

void loop_peer_close(struct loop_peer *peer) {
    if (peer->closing) return;
    peer->closing = 1;
    uv_close((uv_handle_t *)&peer->tcp, loop_on_peer_closed);
}

int loop_peer_start_tls(struct loop_peer *peer, struct tls_server_config *config) {
    struct tls_session *tls = calloc(1, sizeof *tls);
    int rc = tls == NULL ? ERR_NOMEM : tls_session_init(tls, config);
    if (rc != 0) {
        free(tls);
        peer->tls_failed = 1;
        loop_peer_close(peer);
        return rc;
    }
    peer->tls = tls;
    return 0;
}

static void loop_deliver(struct loop_peer *peer, const char *data, size_t length) {
    if (buf_append(&peer->received, data, length) != 0) {
        loop_peer_close(peer);
        return;
    }
    if (peer->server->ops->on_data != NULL)
        peer->server->ops->on_data(peer->server->arg, peer, data, length);
}

static void loop_take_tls(struct loop_peer *peer, const char *data, size_t length) {
    static char plain[16 * 1024];
    if (tls_session_feed(peer->tls, data, length) != 0) {
        peer->tls_failed = 1;
        loop_peer_close(peer);
        return;
    }
    for (int round = 0; round < 4096 && !peer->closing; round++) {
        struct tls_session *tls = peer->tls;
        int got = tls_session_read(tls, plain, sizeof plain);
        if (loop_write_raw(peer, &tls->out) != 0) {
            loop_peer_close(peer);
            return;
        }
        if (got == 0) return;
        if (got < 0) {
            if (got != ERR_CLOSED) peer->tls_failed = 1;
            loop_peer_close(peer);
            return;
        }
        loop_deliver(peer, plain, (size_t)got);
        if (peer->tls != tls) return; /* switched inside the callback: not possible, but safe */
    }
}

static void loop_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer) {
    (void)handle;
    (void)suggested;
    static char chunk[64 * 1024];
    *buffer = uv_buf_init(chunk, sizeof chunk);
}

static void loop_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buffer) {
    struct loop_peer *peer = stream->data;
    if (nread == 0 || peer->closing) return;
    if (nread < 0) {
        peer->eof = 1;
        loop_peer_close(peer);
        return;
    }
    peer->raw_bytes += (size_t)nread;
    if (peer->tls != NULL) {
        loop_take_tls(peer, buffer->base, (size_t)nread);
        return;
    }
    /* Plain: hand over line by line is the callback's business; a STARTTLS switch
     * inside the callback makes the rest of this chunk TLS. */
    loop_deliver(peer, buffer->base, (size_t)nread);
}

static void loop_on_connection(uv_stream_t *listener, int status) {
    struct loop_server *server = listener->data;
    if (status < 0 || server->stopped) return;
    struct loop_peer *peer = calloc(1, sizeof *peer);
    if (peer == NULL) return;
    peer->server = server;
    buf_init(&peer->received, LOOP_RECEIVED_MAX);
    uv_tcp_init(server->loop, &peer->tcp);
    peer->tcp.data = peer;
    server->handles_open++;
    peer->next = server->peers;
    server->peers = peer;
    server->accepted++;
    if (uv_accept(listener, (uv_stream_t *)&peer->tcp) != 0) {
        loop_peer_close(peer);
        return;
    }
    peer->tcp.data = peer;
    if (server->options.tls != NULL) loop_peer_start_tls(peer, server->options.tls);
    if (!server->options.no_read)
        uv_read_start((uv_stream_t *)&peer->tcp, loop_on_alloc, loop_on_read);
    if (server->ops->on_accept != NULL) server->ops->on_accept(server->arg, peer);
}

int loop_server_start(struct loop_server **out, uv_loop_t *loop,
                      const struct loop_server_options *options,
                      const struct loop_server_ops *ops, void *arg, uint16_t *port) {
    /* As the server binary does (server.c): a write to a socket the peer closed is
     * an EPIPE error for the code under test, not a signal that ends the run. */
    signal(SIGPIPE, SIG_IGN);
    struct loop_server *server = calloc(1, sizeof *server);
    if (server == NULL) return ERR_NOMEM;
    server->loop = loop;
    if (options != NULL) server->options = *options;
    server->ops = ops;
    server->arg = arg;
    uv_tcp_init(loop, &server->listener);
    server->listener.data = server;
    server->handles_open = 1;
    struct sockaddr_in address;
    uv_ip4_addr("127.0.0.1", 0, &address);
    int rc = uv_tcp_bind(&server->listener, (const struct sockaddr *)&address, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&server->listener, 16, loop_on_connection);
    struct sockaddr_storage bound;
    int length = sizeof bound;
    if (rc == 0) rc = uv_tcp_getsockname(&server->listener, (struct sockaddr *)&bound, &length);
    if (rc != 0) {
        *out = server;
        loop_server_stop(server);
        return ERR_IO;
    }
    *port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    *out = server;
    return 0;
}

void loop_server_stop_accepting(struct loop_server *server) {
    if (server == NULL || server->stopped) return;
    server->stopped = 1;
    uv_close((uv_handle_t *)&server->listener, loop_on_closed);
}

void loop_server_stop(struct loop_server *server) {
    if (server == NULL) return;
    loop_server_stop_accepting(server);
    for (struct loop_peer *peer = server->peers; peer != NULL; peer = peer->next)
        loop_peer_close(peer);
}

void loop_server_free(struct loop_server *server) {
    if (server == NULL) return;
    struct loop_peer *peer = server->peers;
    while (peer != NULL) {
        struct loop_peer *next = peer->next;
        if (peer->tls != NULL) {
            tls_session_free(peer->tls);
            free(peer->tls);
        }
        buf_free(&peer->received);
        free(peer);
        peer = next;
    }
    free(server);
}

struct loop_peer *loop_server_first_peer(struct loop_server *server) {
    struct loop_peer *first = server->peers;
    while (first != NULL && first->next != NULL) first = first->next;
    return first;
}

int loop_server_accepted(const struct loop_server *server) {
    return server->accepted;
}

const char *loop_tls_path(const char *name, char *out, size_t out_size) {
    const char *marker = strstr(__FILE__, "tests/unit/net/");
    if (__FILE__[0] == '/' && marker != NULL)
        snprintf(out, out_size, "%.*stests/data/tls/%s", (int)(marker - __FILE__), __FILE__,
                 name);
    else
        snprintf(out, out_size, "tests/data/tls/%s", name);
    return out;
}

int loop_tls_server_config(struct tls_server_config *config, const char *name) {
    char certificate[1024];
    char key[1024];
    char file[128];
    char error[256];
    snprintf(file, sizeof file, "%s.pem", name);
    loop_tls_path(file, certificate, sizeof certificate);
    snprintf(file, sizeof file, "%s.key", name);
    loop_tls_path(file, key, sizeof key);
    int rc = tls_server_config_init(config, certificate, key, error, sizeof error);
    if (rc != 0) fprintf(stderr, "    test TLS config: %s\n", error);
    return rc;
}

static void loop_on_watchdog(uv_timer_t *timer) {
    int *expired = timer->data;
    *expired = 1;
    uv_stop(timer->loop);
}

static void loop_on_watchdog_closed(uv_handle_t *handle) {
    (void)handle;
}

int loop_run_bounded(uv_loop_t *loop, int seconds) {
    uv_timer_t watchdog;
    int expired = 0;
    uv_timer_init(loop, &watchdog);
    watchdog.data = &expired;
    uv_timer_start(&watchdog, loop_on_watchdog, (uint64_t)seconds * 1000, 0);
    uv_unref((uv_handle_t *)&watchdog);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&watchdog, loop_on_watchdog_closed);
    uv_run(loop, UV_RUN_NOWAIT);
    if (expired) fprintf(stderr, "    the loop was still busy after %d s\n", seconds);
    return expired ? ERR_TIMEOUT : 0;
}
