/*
 * loop_server.h - a scripted TCP server on 127.0.0.1 (port 0) in the test's
 * own libuv loop, plaintext or TLS (from the start, or switched on mid-stream
 * for STARTTLS), so the outbound connection and the SMTP client are tested
 * against real sockets without threads. The test's callbacks decide what the
 * server answers; every peer records the plaintext it received.
 */
#ifndef DOCKET_TEST_LOOP_SERVER_H
#define DOCKET_TEST_LOOP_SERVER_H

#include "../../../src/base/buf.h"
#include "../../../src/net/tls.h"

#include <stdint.h>
#include <uv.h>

struct loop_server;

/* One accepted connection. */
struct loop_peer {
    struct loop_server *server;  /* owner */
    uv_tcp_t tcp;                /* the accepted socket */
    struct tls_session *tls;     /* NULL while plaintext */
    struct buf received;         /* all plaintext received (bounded, 4 MiB) */
    size_t raw_bytes;            /* bytes read from the socket, ciphertext included */
    int tls_failed;              /* the TLS handshake or a record failed */
    int eof;                     /* the client closed its side */
    int closing;                 /* uv_close was called */
    void *user;                  /* the test's per-peer state */
    struct loop_peer *next;      /* the server's list */
};

struct loop_server_ops {
    /* A client connected (the server may greet it). May be NULL. */
    void (*on_accept)(void *arg, struct loop_peer *peer);
    /* Plaintext arrived (already appended to peer->received). May be NULL. */
    void (*on_data)(void *arg, struct loop_peer *peer, const char *data, size_t length);
};

/* Options of one server. */
struct loop_server_options {
    struct tls_server_config *tls; /* TLS from the first byte; NULL: plaintext */
    int no_read;                   /* never read from accepted sockets */
};

/* Starts listening; *port receives the port. 0 or a negative code. */
int loop_server_start(struct loop_server **out, uv_loop_t *loop,
                      const struct loop_server_options *options,
                      const struct loop_server_ops *ops, void *arg, uint16_t *port);

/* Sends plaintext (encrypted when the peer is in TLS). */
int loop_peer_send(struct loop_peer *peer, const char *data, size_t length);
int loop_peer_send_text(struct loop_peer *peer, const char *text);

/* Everything received from now on is TLS (STARTTLS on the server side). */
int loop_peer_start_tls(struct loop_peer *peer, struct tls_server_config *config);

/* Closes one peer now. */
void loop_peer_close(struct loop_peer *peer);

/* Closes the listener and every peer (idempotent). */
void loop_server_stop(struct loop_server *server);

/* Closes the listener only: peers close when their client does (so bytes the
 * client wrote just before closing are still read). */
void loop_server_stop_accepting(struct loop_server *server);

/* Frees the server and its peers after loop_server_stop and a run of the loop. */
void loop_server_free(struct loop_server *server);

/* The first peer accepted (NULL if none). */
struct loop_peer *loop_server_first_peer(struct loop_server *server);

/* Accepted connections so far. */
int loop_server_accepted(const struct loop_server *server);

/* Absolute path of a file under tests/data/tls/. */
const char *loop_tls_path(const char *name, char *out, size_t out_size);

/* Loads tests/data/tls/<name>.pem and .key into `config`; 0 or a negative code. */
int loop_tls_server_config(struct tls_server_config *config, const char *name);

/* Runs the loop until nothing is active, at most `seconds` of wall time
 * (a stuck test fails instead of hanging). 0 when the loop ran dry. */
int loop_run_bounded(uv_loop_t *loop, int seconds);

#endif
