/*
 * outbound_test.c - the outbound connection against real sockets on
 * 127.0.0.1: a scripted server in the same libuv loop (loop_server.h), plain
 * and TLS, with the throwaway CA under tests/data/tls/.
 */
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "../../../src/net/outbound.h"
#include "../test.h"
#include "loop_server.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

/* What the client does once it can. */
enum client_script {
    SCRIPT_ECHO,        /* write "hello\n", close once it comes back */
    SCRIPT_FLOOD,       /* write 64 KiB chunks until refused */
    SCRIPT_STARTTLS,    /* READY -> STARTTLS -> GO -> TLS -> secret -> ok */
    SCRIPT_WAIT,        /* do nothing: the deadline ends it */
};

struct client {
    enum client_script script;   /* see the enum */
    struct outbound *connection; /* the connection under test */
    struct loop_server *server;  /* stopped when the client closes */
    int opened;                  /* on_open calls */
    int tls_done;                /* on_tls calls */
    int closes;                  /* on_close calls */
    int status;                  /* on_close status */
    char error[512];             /* on_close sentence */
    char received[8192];         /* plaintext received */
    size_t received_length;      /* bytes in received */
    int writes_accepted;         /* SCRIPT_FLOOD: writes that returned 0 */
    int write_refused;           /* SCRIPT_FLOOD: the refusing code */
    int write_after_refusal;     /* SCRIPT_FLOOD: code of one more write */
    uint64_t closed_at_ms;       /* uv_now at on_close */
};

static void client_on_open(void *arg, struct outbound *connection) {
    struct client *client = arg;
    client->opened++;
    if (client->script == SCRIPT_ECHO) outbound_write(connection, "hello\n", 6);
    if (client->script != SCRIPT_FLOOD) return;
    static char chunk[64 * 1024];
    memset(chunk, 'x', sizeof chunk);
    for (int round = 0; round < 64; round++) {
        int rc = outbound_write(connection, chunk, sizeof chunk);
        if (rc != 0) {
            client->write_refused = rc;
            client->write_after_refusal = outbound_write(connection, "x", 1);
            return;
        }
        client->writes_accepted++;
    }
}

static int client_has(const struct client *client, const char *text) {
    size_t length = strlen(text);
    return client->received_length >= length &&
           memcmp(client->received + client->received_length - length, text, length) == 0;
}

static void client_on_read(void *arg, struct outbound *connection, const char *data,
                           size_t length) {
    struct client *client = arg;
    if (client->received_length + length > sizeof client->received) length = 0;
    memcpy(client->received + client->received_length, data, length);
    client->received_length += length;
    if (client->script == SCRIPT_ECHO && client_has(client, "hello\n")) outbound_close(connection);
    if (client->script != SCRIPT_STARTTLS) return;
    if (client_has(client, "READY\n")) outbound_write(connection, "STARTTLS\n", 9);
    if (client_has(client, "GO\n")) outbound_start_tls(connection);
    if (client_has(client, "ok\n")) outbound_close(connection);
}

static void client_on_tls(void *arg, struct outbound *connection) {
    struct client *client = arg;
    client->tls_done++;
    outbound_write(connection, "secret\n", 7);
}

static uv_loop_t *client_loop; /* for closed_at_ms */

static void client_on_close(void *arg, int status, const char *error) {
    struct client *client = arg;
    client->closes++;
    client->status = status;
    snprintf(client->error, sizeof client->error, "%s", error);
    client->closed_at_ms = uv_now(client_loop);
    loop_server_stop(client->server);
}

static const struct outbound_ops client_ops = {
    .on_open = client_on_open,
    .on_read = client_on_read,
    .on_tls = client_on_tls,
    .on_close = client_on_close,
};

/* Server behaviour: echo, or the STARTTLS script. */
struct server_state {
    struct tls_server_config *starttls_config; /* switch to TLS after "STARTTLS\n" */
    int secret_over_tls;                       /* "secret" arrived through TLS */
    int secret_in_clear;                       /* "secret" arrived in plaintext */
};

static void server_on_accept(void *arg, struct loop_peer *peer) {
    struct server_state *state = arg;
    if (state != NULL && state->starttls_config != NULL) loop_peer_send_text(peer, "READY\n");
}

static void server_on_data(void *arg, struct loop_peer *peer, const char *data, size_t length) {
    struct server_state *state = arg;
    if (state == NULL || state->starttls_config == NULL) {
        loop_peer_send(peer, data, length);
        return;
    }
    if (memmem(data, length, "secret", 6) != NULL) {
        if (peer->tls != NULL) state->secret_over_tls = 1;
        else state->secret_in_clear = 1;
        loop_peer_send_text(peer, "ok\n");
    }
    if (peer->tls == NULL && memmem(data, length, "STARTTLS\n", 9) != NULL) {
        loop_peer_send_text(peer, "GO\n");
        loop_peer_start_tls(peer, state->starttls_config);
    }
}

static const struct loop_server_ops server_ops = {
    .on_accept = server_on_accept,
    .on_data = server_on_data,
};

static struct outbound_trust *trust_open(const char *ca_name) {
    char path[1024];
    char error[256];
    struct outbound_trust *trust = NULL;
    int rc = outbound_trust_open(&trust, loop_tls_path(ca_name, path, sizeof path), error,
                                 sizeof error);
    if (rc != 0) fprintf(stderr, "    trust: %s\n", error);
    return trust;
}

/* Runs one client against a fresh server; the server config and trust are the caller's. */
static int run_client(struct client *client, struct loop_server_options *options,
                      struct server_state *state, struct outbound_trust *trust,
                      const char *host, unsigned flags, int64_t deadline_ms,
                      struct loop_server **server_out) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    client_loop = &loop;
    uint16_t port = 0;
    int rc = loop_server_start(&client->server, &loop, options, &server_ops, state, &port);
    if (rc == 0)
        rc = outbound_connect(&loop, trust, host, port, flags, deadline_ms, &client_ops, client,
                              &client->connection);
    if (rc != 0) loop_server_stop(client->server);
    if (rc == 0 && client->closes != 0) rc = ERR_INVAL; /* on_close inside connect */
    int run = loop_run_bounded(&loop, 10);
    int closed = uv_loop_close(&loop);
    *server_out = client->server;
    if (rc != 0) return rc;
    if (run != 0) return run;
    return closed == 0 ? 0 : ERR_BUSY;
}

TEST(outbound_plain_echo_closes_once_with_status_0) {
    /* Proves a plain connection resolves "localhost", connects, writes, reads the
     * echo, and ends with exactly one on_close (status 0) after outbound_close. */
    struct client client = {.script = SCRIPT_ECHO};
    struct loop_server *server = NULL;
    EXPECT_EQ_INT(run_client(&client, NULL, NULL, NULL, "localhost", 0, 5000, &server), 0);
    struct loop_peer *peer = loop_server_first_peer(server);
    EXPECT(peer != NULL && peer->received.length == 6);
    EXPECT(memcmp(peer->received.data, "hello\n", 6) == 0);
    loop_server_free(server);
    EXPECT_EQ_INT(client.opened, 1);
    EXPECT_EQ_INT(client.closes, 1);
    EXPECT_EQ_INT(client.status, 0);
    EXPECT(client.received_length == 6);
}

TEST(outbound_refused_port_reports_io_error_sentence) {
    /* Proves a closed port ends in one on_close with ERR_IO and a sentence naming the
     * address and "connection refused", and on_open never fires. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct loop_server *probe = NULL;
    uint16_t port = 0;
    EXPECT_EQ_INT(loop_server_start(&probe, &loop, NULL, &server_ops, NULL, &port), 0);
    loop_server_stop(probe);
    uv_run(&loop, UV_RUN_DEFAULT);
    loop_server_free(probe);
    client_loop = &loop;
    struct client client = {.script = SCRIPT_ECHO};
    EXPECT_EQ_INT(outbound_connect(&loop, NULL, "127.0.0.1", port, 0, 5000, &client_ops, &client,
                                   &client.connection),
                  0);
    EXPECT_EQ_INT(loop_run_bounded(&loop, 10), 0);
    EXPECT_EQ_INT(uv_loop_close(&loop), 0);
    EXPECT_EQ_INT(client.closes, 1);
    EXPECT_EQ_INT(client.opened, 0);
    EXPECT_EQ_INT(client.status, ERR_IO);
    EXPECT(strstr(client.error, "connect 127.0.0.1:") != NULL);
    EXPECT(strstr(client.error, "connection refused") != NULL);
}

TEST(outbound_deadline_ends_silent_tls_handshake_with_timeout) {
    /* Proves the deadline covers the TLS handshake: a server that accepts and never
     * answers ends the connection with ERR_TIMEOUT at the deadline, not before. */
    struct outbound_trust *trust = trust_open("ca.pem");
    EXPECT(trust != NULL);
    struct client client = {.script = SCRIPT_WAIT};
    struct loop_server_options options = {.no_read = 1};
    struct loop_server *server = NULL;
    uv_loop_t probe;
    uv_loop_init(&probe);
    uint64_t started = uv_now(&probe);
    uv_loop_close(&probe);
    EXPECT_EQ_INT(
        run_client(&client, &options, NULL, trust, "localhost", OUTBOUND_TLS, 200, &server), 0);
    loop_server_free(server);
    outbound_trust_close(trust);
    EXPECT_EQ_INT(client.closes, 1);
    EXPECT_EQ_INT(client.opened, 0);
    EXPECT_EQ_INT(client.status, ERR_TIMEOUT);
    EXPECT(strstr(client.error, "TLS handshake") != NULL);
    EXPECT(client.closed_at_ms >= started + 190);
}

TEST(outbound_deadline_ends_open_connection) {
    /* Proves the deadline also covers an open connection whose peer stays silent. */
    struct client client = {.script = SCRIPT_WAIT};
    struct loop_server_options options = {.no_read = 1};
    struct loop_server *server = NULL;
    EXPECT_EQ_INT(run_client(&client, &options, NULL, NULL, "127.0.0.1", 0, 100, &server), 0);
    loop_server_free(server);
    EXPECT_EQ_INT(client.opened, 1);
    EXPECT_EQ_INT(client.closes, 1);
    EXPECT_EQ_INT(client.status, ERR_TIMEOUT);
}

TEST(outbound_write_queue_limit_closes_with_limit) {
    /* Proves writes to a peer that does not read are refused with ERR_LIMIT once
     * OUTBOUND_WRITE_QUEUE_MAX bytes wait, later writes get ERR_CLOSED, and the
     * connection ends with one on_close(ERR_LIMIT). */
    struct client client = {.script = SCRIPT_FLOOD};
    struct loop_server_options options = {.no_read = 1};
    struct loop_server *server = NULL;
    EXPECT_EQ_INT(run_client(&client, &options, NULL, NULL, "127.0.0.1", 0, 5000, &server), 0);
    loop_server_free(server);
    EXPECT_EQ_INT(client.write_refused, ERR_LIMIT);
    EXPECT_EQ_INT(client.writes_accepted, OUTBOUND_WRITE_QUEUE_MAX / (64 * 1024));
    EXPECT_EQ_INT(client.write_after_refusal, ERR_CLOSED);
    EXPECT_EQ_INT(client.closes, 1);
    EXPECT_EQ_INT(client.status, ERR_LIMIT);
}

TEST(outbound_unresolvable_name_fails_once) {
    /* Proves a name that cannot resolve (RFC 6761 .invalid) ends in one on_close with
     * an error (ERR_NOTFOUND, or the deadline if the resolver hangs), never on_open. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    client_loop = &loop;
    struct client client = {.script = SCRIPT_ECHO};
    EXPECT_EQ_INT(outbound_connect(&loop, NULL, "no-such-host.invalid", 25, 0, 3000, &client_ops,
                                   &client, &client.connection),
                  0);
    EXPECT_EQ_INT(loop_run_bounded(&loop, 20), 0);
    EXPECT_EQ_INT(uv_loop_close(&loop), 0);
    EXPECT_EQ_INT(client.closes, 1);
    EXPECT_EQ_INT(client.opened, 0);
    EXPECT(client.status == ERR_NOTFOUND || client.status == ERR_IO ||
           client.status == ERR_TIMEOUT);
    EXPECT(strstr(client.error, "no-such-host.invalid") != NULL);
}

TEST(outbound_invalid_arguments_fire_nothing) {
    /* Proves refused arguments return ERR_INVAL and no callback ever fires. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct client client = {.script = SCRIPT_ECHO};
    struct outbound *connection = NULL;
    EXPECT_EQ_INT(outbound_connect(&loop, NULL, "", 25, 0, 1000, &client_ops, &client, &connection),
                  ERR_INVAL);
    EXPECT_EQ_INT(
        outbound_connect(&loop, NULL, "localhost", 0, 0, 1000, &client_ops, &client, &connection),
        ERR_INVAL);
    EXPECT_EQ_INT(outbound_connect(&loop, NULL, "localhost", 25, OUTBOUND_TLS, 1000, &client_ops,
                                   &client, &connection),
                  ERR_INVAL);
    EXPECT_EQ_INT(
        outbound_connect(&loop, NULL, "localhost", 25, 0, 0, &client_ops, &client, &connection),
        ERR_INVAL);
    EXPECT_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    EXPECT_EQ_INT(uv_loop_close(&loop), 0);
    EXPECT(connection == NULL);
    EXPECT_EQ_INT(client.closes + client.opened, 0);
}

TEST(outbound_close_before_open_fires_close_later_once) {
    /* Proves outbound_close right after connect does not call on_close inside the
     * call, then calls it exactly once with status 0, and on_open never fires. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    client_loop = &loop;
    struct client client = {.script = SCRIPT_ECHO};
    EXPECT_EQ_INT(outbound_connect(&loop, NULL, "127.0.0.1", 9, 0, 1000, &client_ops, &client,
                                   &client.connection),
                  0);
    outbound_close(client.connection);
    outbound_close(client.connection);
    EXPECT_EQ_INT(client.closes, 0);
    EXPECT_EQ_INT(loop_run_bounded(&loop, 10), 0);
    EXPECT_EQ_INT(uv_loop_close(&loop), 0);
    EXPECT_EQ_INT(client.closes, 1);
    EXPECT_EQ_INT(client.opened, 0);
    EXPECT_EQ_INT(client.status, 0);
}

/* TLS echo against a server presenting `certificate`, the client trusting `ca`. */
static int run_tls(struct client *client, const char *certificate, const char *ca,
                   const char *host, struct loop_server **server) {
    struct tls_server_config config;
    if (loop_tls_server_config(&config, certificate) != 0) return ERR_TLS;
    struct outbound_trust *trust = trust_open(ca);
    if (trust == NULL) {
        tls_server_config_free(&config);
        return ERR_TLS;
    }
    struct loop_server_options options = {.tls = &config};
    int rc = run_client(client, &options, NULL, trust, host, OUTBOUND_TLS, 5000, server);
    outbound_trust_close(trust);
    tls_server_config_free(&config);
    return rc;
}

TEST(outbound_tls_handshake_with_the_right_ca_echoes) {
    /* Proves a TLS connection verifies the server against the configured CA and
     * carries data both ways, for a DNS name and for an IP address in the SAN. */
    const char *hosts[] = {"localhost", "127.0.0.1"};
    for (int index = 0; index < 2; index++) {
        struct client client = {.script = SCRIPT_ECHO};
        struct loop_server *server = NULL;
        EXPECT_EQ_INT(run_tls(&client, "localhost", "ca.pem", hosts[index], &server), 0);
        struct loop_peer *peer = loop_server_first_peer(server);
        int server_got_hello = peer != NULL && peer->received.length == 6 &&
                               memcmp(peer->received.data, "hello\n", 6) == 0;
        loop_server_free(server);
        EXPECT(server_got_hello);
        EXPECT_EQ_INT(client.opened, 1);
        EXPECT_EQ_INT(client.closes, 1);
        EXPECT_EQ_INT(client.status, 0);
        EXPECT(client.received_length == 6);
    }
}

/* Connects with TLS expecting a failure; a write before on_open must not leak. */
static void expect_tls_rejected(const char *certificate, const char *ca, const char *reason) {
    struct client client = {.script = SCRIPT_WAIT};
    struct tls_server_config config;
    EXPECT_EQ_INT(loop_tls_server_config(&config, certificate), 0);
    struct outbound_trust *trust = trust_open(ca);
    EXPECT(trust != NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    client_loop = &loop;
    struct loop_server_options options = {.tls = &config};
    uint16_t port = 0;
    EXPECT_EQ_INT(loop_server_start(&client.server, &loop, &options, &server_ops, NULL, &port), 0);
    EXPECT_EQ_INT(outbound_connect(&loop, trust, "localhost", port, OUTBOUND_TLS, 5000,
                                   &client_ops, &client, &client.connection),
                  0);
    EXPECT_EQ_INT(outbound_write(client.connection, "secret\n", 7), 0);
    EXPECT_EQ_INT(loop_run_bounded(&loop, 10), 0);
    EXPECT_EQ_INT(uv_loop_close(&loop), 0);
    struct loop_peer *peer = loop_server_first_peer(client.server);
    size_t server_plaintext = peer != NULL ? peer->received.length : 99;
    loop_server_free(client.server);
    outbound_trust_close(trust);
    tls_server_config_free(&config);
    EXPECT_EQ_INT(server_plaintext, 0);
    EXPECT_EQ_INT(client.opened, 0);
    EXPECT_EQ_INT(client.closes, 1);
    EXPECT_EQ_INT(client.status, ERR_TLS);
    if (strstr(client.error, reason) == NULL) fprintf(stderr, "    error: %s\n", client.error);
    EXPECT(strstr(client.error, reason) != NULL);
}

TEST(outbound_tls_wrong_ca_fails_and_sends_nothing) {
    /* Proves a server certificate from an untrusted CA fails with ERR_TLS, on_open
     * never fires and the plaintext written early never reaches the server. */
    expect_tls_rejected("localhost", "other-ca.pem", "not correctly signed");
}

TEST(outbound_tls_host_name_mismatch_fails) {
    /* Proves a certificate signed by the trusted CA but for another name fails. */
    expect_tls_rejected("wrong-name", "ca.pem", "CN");
}

TEST(outbound_starttls_upgrade_mid_stream) {
    /* Proves outbound_start_tls upgrades a plaintext conversation: the line after the
     * upgrade reaches the server only through TLS, and on_tls fires once. */
    struct tls_server_config config;
    EXPECT_EQ_INT(loop_tls_server_config(&config, "localhost"), 0);
    struct outbound_trust *trust = trust_open("ca.pem");
    EXPECT(trust != NULL);
    struct server_state state = {.starttls_config = &config};
    struct client client = {.script = SCRIPT_STARTTLS};
    struct loop_server *server = NULL;
    int rc = run_client(&client, NULL, &state, trust, "localhost", 0, 5000, &server);
    loop_server_free(server);
    outbound_trust_close(trust);
    tls_server_config_free(&config);
    EXPECT_EQ_INT(rc, 0);
    EXPECT_EQ_INT(client.opened, 1);
    EXPECT_EQ_INT(client.tls_done, 1);
    EXPECT_EQ_INT(client.closes, 1);
    EXPECT_EQ_INT(client.status, 0);
    EXPECT_EQ_INT(state.secret_over_tls, 1);
    EXPECT_EQ_INT(state.secret_in_clear, 0);
}

TEST(outbound_allocation_failures_close_once_without_leaks) {
    /* Proves that with every allocation failing in turn (client and test server share
     * the seam), a TLS echo either is refused at connect or ends in exactly one
     * on_close; the sanitizer build checks nothing leaks. */
    struct tls_server_config config;
    EXPECT_EQ_INT(loop_tls_server_config(&config, "localhost"), 0);
    struct outbound_trust *trust = trust_open("ca.pem");
    EXPECT(trust != NULL);
    int completed = 0;
    for (long budget = 0; budget < 200 && !completed; budget++) {
        struct client client = {.script = SCRIPT_ECHO};
        struct loop_server_options options = {.tls = &config};
        struct loop_server *server = NULL;
        uv_loop_t loop;
        uv_loop_init(&loop);
        client_loop = &loop;
        uint16_t port = 0;
        EXPECT_EQ_INT(loop_server_start(&server, &loop, &options, &server_ops, NULL, &port), 0);
        client.server = server;
        mem_fail_after(budget);
        /* A short deadline: a failure inside the test server can leave the client
         * waiting for an answer that never comes. */
        int rc = outbound_connect(&loop, trust, "127.0.0.1", port, OUTBOUND_TLS, 500,
                                  &client_ops, &client, &client.connection);
        if (rc != 0) loop_server_stop(server);
        int run = loop_run_bounded(&loop, 10);
        mem_fail_after(-1);
        EXPECT_EQ_INT(run, 0);
        EXPECT_EQ_INT(uv_loop_close(&loop), 0);
        loop_server_free(server);
        EXPECT(rc == 0 || rc == ERR_NOMEM);
        EXPECT_EQ_INT(client.closes, rc == 0 ? 1 : 0);
        completed = rc == 0 && client.status == 0 && client.received_length == 6;
    }
    outbound_trust_close(trust);
    tls_server_config_free(&config);
    EXPECT(completed);
}
