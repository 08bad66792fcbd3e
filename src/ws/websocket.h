/*
 * websocket.h - one server-side WebSocket session (RFC 6455) on top of wslay,
 * independent of sockets and loops: bytes from the peer go in through
 * ws_session_feed, bytes for the peer come out through the `ws_io` the
 * owner supplies, and time is passed in (now_ms), so every behaviour is
 * testable without a loop and fuzzable.
 *
 * What the session enforces (the owner only sees complete, valid messages):
 *   - RFC 6455 framing through wslay's event API: masking required of the
 *     client, fragmentation reassembled, control frames answered (ping ->
 *     pong, close -> close echo), RSV bits and bad opcodes -> 1002;
 *   - text messages must be valid UTF-8 (1007); binary messages are refused
 *     (1003); a message longer than limits.max_message_bytes -> 1009;
 *   - more than limits.messages_per_second data messages from the client
 *     (token bucket, burst of one second) -> 1008;
 *   - keepalive: a ping every ping_interval_ms of silence from the peer; no
 *     byte from the peer for ping_interval_ms + pong_timeout_ms -> the
 *     session ends as a dead peer (no close frame; the transport is closed);
 *   - the close handshake: ws_session_close sends a close frame with a code
 *     and reason, waits up to WS_CLOSE_WAIT_MS for the peer's close, then has
 *     the transport closed. A close from the peer is echoed and the transport
 *     closed gracefully. Bad input from the peer (every case above with a
 *     close code) fails the connection (RFC 6455 7.1.7): the close frame goes
 *     out and the transport is closed gracefully at once, without waiting.
 *
 * Memory: an idle session (no partial frame, nothing queued) holds no wslay
 * context; one is created when bytes arrive or a message is sent and freed
 * again once the session is quiescent. wslay's context carries two 4 KiB
 * buffers, and 100,000 idle connections must fit in well under 1 GiB.
 * Quiescent means: every byte fed belongs to a frame that ended (counted
 * from wslay's frame start/end callbacks: a client frame's header length
 * follows from its payload length, since wslay insists on masking and on the
 * shortest length encoding), no fragmented message is open, wslay has
 * nothing queued, and no close is in progress. Text messages are assembled
 * in the session's own buffer (wslay runs without buffering for data
 * frames), grown as bytes arrive and freed after delivery, so a peer's
 * claimed length costs nothing until its bytes come.
 *
 * Outgoing data: ws_session_send_text frames a text message and writes it to
 * the transport at once. The transport's queued byte count (io->queued) is
 * the session's send queue; when it is above limits.send_queue_bytes the
 * send is refused with ERR_AGAIN and nothing is queued (the caller decides:
 * the realtime hub switches the subscriber to catch-up). When the queue
 * drains below half of the limit after such a refusal, handler->on_writable
 * runs.
 */
#ifndef DOCKET_WS_WEBSOCKET_H
#define DOCKET_WS_WEBSOCKET_H

#include <stddef.h>
#include <stdint.h>

/* Close codes Docket sends (RFC 6455 7.4.1 and the private range). */
#define WS_CLOSE_NORMAL 1000           /* the client closed, or a normal end */
#define WS_CLOSE_GOING_AWAY 1001       /* server shutdown */
#define WS_CLOSE_PROTOCOL_ERROR 1002   /* framing broke the RFC */
#define WS_CLOSE_UNSUPPORTED_DATA 1003 /* a binary message */
#define WS_CLOSE_ABNORMAL 1006         /* never sent: on_end's code when no close was exchanged */
#define WS_CLOSE_INVALID_PAYLOAD 1007  /* text that is not UTF-8 */
#define WS_CLOSE_POLICY 1008           /* message rate, per-user connection limit */
#define WS_CLOSE_TOO_BIG 1009          /* message over ws.max_message_bytes */
#define WS_CLOSE_INTERNAL 1011         /* the server failed */
#define WS_CLOSE_TRY_AGAIN 1013        /* the server's WebSocket connection limit */
#define WS_CLOSE_TOKEN_EXPIRED 4001    /* reconnect with a fresh token */
#define WS_CLOSE_RESUME 4008           /* fell too far behind: reconnect with ?since= */

/* Time allowed for the peer's close frame after ours. */
#define WS_CLOSE_WAIT_MS 2000

/* Longest close reason we send (a control frame holds 125 bytes, 2 of them
 * the code). */
#define WS_CLOSE_REASON_BYTES 123

/* A peer that pings while the transport holds more than this many times
 * limits.send_queue_bytes is not reading its socket: each ping would add a
 * pong to a queue nobody drains (data sends stop at 1x, so only control
 * frames get past it), so the connection fails with 1008 instead. */
#define WS_PONG_QUEUE_FACTOR 2

/* Zero for messages_per_second or ping_interval_ms switches that check off
 * (the configuration never produces zero; tests use it). */
struct ws_limits {
    size_t max_message_bytes;     /* client message ceiling (1009 beyond) */
    uint32_t messages_per_second; /* client data messages allowed per second (1008 beyond) */
    uint64_t ping_interval_ms;    /* a ping after this much silence from the peer */
    uint64_t pong_timeout_ms;     /* then this long for any byte before the peer is dead */
    size_t send_queue_bytes;      /* transport bytes queued beyond which sends are refused */
};

/* What the session needs from its transport. Calls happen synchronously from
 * inside ws_session_* functions. */
struct ws_io {
    /* Queues bytes for the peer (copied). 0, or a negative code: the session
     * then treats the transport as broken and ends. */
    int (*write)(void *io_arg, const void *data, size_t length);
    /* Bytes handed to write and not yet taken by the peer's socket. */
    size_t (*queued)(void *io_arg);
    /* Closes the transport after the bytes already queued are written
     * (graceful 1) or at once (0). Called exactly once; the owner's
     * on_closed follows when the transport is gone, not from here. */
    void (*close)(void *io_arg, int graceful);
    /* Asks for ws_session_on_deadline at loop time due_ms (0: none). */
    void (*set_deadline)(void *io_arg, uint64_t due_ms);
    void *io_arg;
};

/* What the session reports to its owner. on_writable may be NULL. The
 * owner must not free the session from inside any of these callbacks. */
struct ws_handler {
    /* A complete text message, valid UTF-8, at most max_message_bytes. The
     * owner may call ws_session_send_text or ws_session_close from here. */
    void (*on_text)(void *arg, const char *data, size_t length);
    /* A send was refused with ERR_AGAIN and the queue is now below half. */
    void (*on_writable)(void *arg);
    /* The session ended for good (`code` sent or received, or 1006 for a
     * dead peer / broken transport); io->close has been called. Called once;
     * no handler callback follows it. Which code: after a close exchange, or
     * a close-wait timeout, the code the session sent if it closed first
     * (ws_session_close, or a failure it or wslay detected), else the
     * peer's (1005 when the peer's close carried none); 1006 when the peer
     * went silent, a write failed or the transport closed first. */
    void (*on_end)(void *arg, uint16_t code);
    void *arg;
};

struct ws_session;

struct ws_session_stats {
    uint64_t messages_received; /* data messages delivered to on_text */
    uint64_t messages_sent;     /* data messages written */
    uint64_t pings_sent;        /* keepalive pings */
};

/* ---- Handshake (RFC 6455 4.2) ------------------------------------------------ */

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key +
 * GUID)). `key` must be the base64 of 16 bytes (24 characters); ERR_INVAL
 * otherwise. `out` receives 28 characters and a NUL. */
int ws_accept_key(const char *key, size_t key_length, char out[29]);

/* 1 when `data` is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF, no truncated sequence), else 0. The
 * same check the session applies to text messages, exposed for tests. */
int ws_utf8_valid(const void *data, size_t length);

/* ---- Session ------------------------------------------------------------------ */

/* Creates a session that has just completed its handshake (the 101 is the
 * transport's business). ERR_NOMEM. The keepalive deadline is armed. */
int ws_session_open(struct ws_session **out, const struct ws_limits *limits, const struct ws_io *io,
                    const struct ws_handler *handler, uint64_t now_ms);

/* Bytes from the peer, in order. Complete messages reach handler->on_text
 * before this returns. After the session ended, input is ignored. */
void ws_session_feed(struct ws_session *session, const void *data, size_t length, uint64_t now_ms);

/* Frames and writes one text message (`data` must be UTF-8; not checked).
 * 0; ERR_AGAIN when the send queue is over limits.send_queue_bytes (nothing
 * written); ERR_CLOSED after the close handshake began; ERR_NOMEM/ERR_IO. */
int ws_session_send_text(struct ws_session *session, const char *data, size_t length);

/* Starts the close handshake with `code` (one a close frame may carry: 1000-
 * 1003, 1007-1014, 3000-4999) and a reason (may be NULL; truncated to
 * WS_CLOSE_REASON_BYTES at a character boundary) at loop time now_ms, from
 * which the close wait is counted: a peer that has been silent for a while
 * still gets its WS_CLOSE_WAIT_MS to read what is queued. A time before the
 * session's last known one is ignored (callers inside the session's own
 * callbacks pass 0). Idempotent: only the first call sends; it does nothing
 * once the session is failing or ended. */
void ws_session_close(struct ws_session *session, uint16_t code, const char *reason,
                      uint64_t now_ms);

/* The transport's queue shrank (some bytes reached the peer's socket). */
void ws_session_on_drained(struct ws_session *session, uint64_t now_ms);

/* The deadline requested through io->set_deadline passed (or the owner's
 * timer fired early: the session re-arms). */
void ws_session_on_deadline(struct ws_session *session, uint64_t now_ms);

/* The transport is gone (peer reset, EOF, server closing it): ends the
 * session (on_end with 1006 unless a close was already exchanged, in which
 * case the session had already ended and this does nothing). io->close is
 * still called first, keeping its exactly-once rule. */
void ws_session_on_transport_closed(struct ws_session *session);

/* 1 once the session ended (on_end ran). */
int ws_session_ended(const struct ws_session *session);

/* 1 while a wslay context is held (for tests of the idle-memory rule). */
int ws_session_has_context(const struct ws_session *session);

const struct ws_session_stats *ws_session_stats(const struct ws_session *session);

/* Frees the session. Call only after on_end returned (not from inside a
 * handler callback), or to discard a session whose transport never
 * existed. */
void ws_session_free(struct ws_session *session);

#endif
