/*
 * outbound.h - one outbound TCP connection on the libuv loop, optionally TLS
 * (from the start, or upgraded in the middle for SMTP's STARTTLS), for the
 * notification channels' clients (SMTP, HTTP for Web Push and webhooks).
 *
 * Lifecycle (libuv style): outbound_connect() resolves the host
 * (uv_getaddrinfo), connects, and, with OUTBOUND_TLS, completes the handshake
 * (certificate verified against the trust store, SNI and host-name check)
 * before on_open fires. Reads arrive as plaintext through on_read. Writes
 * copy into a bounded queue. Exactly one on_close fires per connection,
 * whatever happened (error, timeout, peer close, outbound_close), after
 * which the caller may free its state; the struct outbound itself is freed
 * by this module after on_close returns.
 *
 * The process must ignore SIGPIPE (server.c does), as for every libuv socket:
 * a write to a connection the peer has closed is then an error, not a signal.
 *
 * A deadline covers the whole connection (connect, TLS, protocol): past it the
 * connection closes with ERR_TIMEOUT. Nothing here grows without bound: the
 * write queue and the read buffer have ceilings (OUTBOUND_*_MAX), past which
 * the connection closes with ERR_LIMIT.
 */
#ifndef DOCKET_NET_OUTBOUND_H
#define DOCKET_NET_OUTBOUND_H

#include <stddef.h>
#include <stdint.h>

struct uv_loop_s;
struct outbound;
struct outbound_trust;

/* Bytes queued for writing, and received plaintext not yet consumed, at most.
 * Plaintext is handed to on_read as it arrives (nothing accumulates here; TLS
 * input waiting for decryption is bounded by tls.c), so OUTBOUND_READ_MAX is
 * the ceiling the protocol clients on top (SMTP, HTTP) apply to what they keep. */
#define OUTBOUND_WRITE_QUEUE_MAX (1024 * 1024)
#define OUTBOUND_READ_MAX (1024 * 1024)

/* A host name is at most 253 characters (RFC 1035 2.3.4, without the final dot). */
#define OUTBOUND_HOST_BYTES_MAX 253

enum outbound_flags {
    OUTBOUND_TLS = 1 << 0, /* TLS from the first byte (https, smtps) */
};

struct outbound_ops {
    /* Connected (and, with OUTBOUND_TLS, handshake done). */
    void (*on_open)(void *arg, struct outbound *connection);
    /* Plaintext received. The bytes are valid during the call only. */
    void (*on_read)(void *arg, struct outbound *connection, const char *data, size_t length);
    /* outbound_start_tls() finished its handshake. */
    void (*on_tls)(void *arg, struct outbound *connection);
    /* The end: status 0 after outbound_close() or an orderly peer close,
     * else a negative code (ERR_TIMEOUT, ERR_TLS, ERR_IO, ERR_LIMIT, ERR_NOTFOUND
     * for a name that does not resolve). `error` is a sentence for logs and
     * the dead-letter queue ("connect 127.0.0.1:2525: connection refused"). */
    void (*on_close)(void *arg, int status, const char *error);
};

/* The CA certificates outbound TLS trusts: `ca_file` (PEM) or, when NULL or
 * "", the system bundle (the first of the usual Debian/RHEL/Alpine paths that
 * exists). One trust store is shared by every connection. Returns 0,
 * ERR_NOTFOUND (no bundle), ERR_TLS (unparsable), ERR_NOMEM; `error` gets a
 * sentence. */
int outbound_trust_open(struct outbound_trust **out, const char *ca_file, char *error,
                        size_t error_size);
void outbound_trust_close(struct outbound_trust *trust);

/* Starts a connection to host:port. `trust` is required for TLS (now or
 * later). `deadline_ms` is relative, from now. Returns 0 (then on_close
 * will fire exactly once) or a negative code (nothing fires). */
int outbound_connect(struct uv_loop_s *loop, struct outbound_trust *trust, const char *host,
                     uint16_t port, unsigned flags, int64_t deadline_ms,
                     const struct outbound_ops *ops, void *arg, struct outbound **out);

/* Queues plaintext (encrypted when TLS is on). Bytes written before the
 * connection is ready (before on_open, or during a STARTTLS handshake) wait and
 * go out first once it is; a connection that fails before then sends none of
 * them. ERR_LIMIT also ends the connection (on_close with ERR_LIMIT follows).
 * 0, ERR_LIMIT, ERR_NOMEM, ERR_CLOSED (after outbound_close or the end). */
int outbound_write(struct outbound *connection, const char *data, size_t length);

/* Upgrades the plaintext connection to TLS for `host` (STARTTLS); on_tls
 * fires when done. Bytes read before the call are not replayed into TLS. */
int outbound_start_tls(struct outbound *connection);

/* Closes after queued bytes are written (TLS close_notify first); on_close
 * follows with status 0, never inside this call. Later input is discarded.
 * Before the connection is ready it simply abandons the attempt. Idempotent. */
void outbound_close(struct outbound *connection);

#endif
