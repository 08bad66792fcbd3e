/*
 * websocket.c - one server-side WebSocket session (RFC 6455) over wslay's
 * event API, driven by bytes and times handed in by its owner.
 *
 * wslay parses and frames; this file adds what wslay leaves to its user or
 * what Docket wants stricter: data frames are not buffered by wslay (so its
 * allocations stay at two contexts, one outgoing message and control frames
 * of at most 125 bytes) but assembled here with the UTF-8 check, the message
 * ceiling over all fragments, the binary refusal and the rate limit; the
 * keepalive and close timers; the send-queue backpressure; and dropping the
 * wslay context whenever the session is quiescent (see websocket.h).
 *
 * Re-entrancy: handler->on_text runs inside wslay_event_recv, and may send
 * or close. Sending from there is safe because wslay keeps its input and
 * output state apart; what must wait until wslay_event_recv has returned is
 * freeing its context (in_recv guards that) and deciding how the session
 * ends (session_settle, after every call into wslay).
 */
#include "websocket.h"

#include "../base/base64.h"
#include "../base/check.h"
#include "../base/err.h"
#include "../base/mem.h"

#include <mbedtls/sha1.h>
#include <string.h>
#include <wslay/wslay.h>

/* First allocation of a message buffer: every message clients send today
 * (resume, ping) fits, and growth doubles from here. */
#define WS_MESSAGE_INITIAL_BYTES 256

/* The session's own copy of the UTF-8 state across chunks and fragments:
 * continuation bytes still expected and the range the next one must fall
 * in (Unicode table 3-7 narrows the first continuation byte after E0, ED,
 * F0 and F4 to exclude overlongs, surrogates and code points > U+10FFFF). */
struct ws_utf8 {
    uint8_t need; /* continuation bytes still expected */
    uint8_t low;  /* smallest allowed next byte while need > 0 */
    uint8_t high; /* largest allowed next byte while need > 0 */
};

/* Bytes framed per transport write: a typical event message (about 1 KiB)
 * and several queued behind it in one write; larger messages take several. */
#define WS_FLUSH_BYTES (16 * 1024)

struct ws_session {
    struct ws_limits limits;       /* copied from ws_session_open */
    struct ws_io io;               /* the transport */
    struct ws_handler handler;     /* the owner */
    struct ws_session_stats stats; /* counters for the owner's metrics */
    wslay_event_context_ptr wslay; /* NULL while quiescent */
    char *message;                 /* text message being assembled (mem_alloc), or NULL */
    uint32_t message_length;       /* bytes of it received so far */
    uint32_t message_capacity;     /* bytes allocated for it (one more than text, for a NUL) */
    const uint8_t *input;          /* bytes of the current feed not yet handed to wslay */
    size_t input_length;           /* how many of them */
    int64_t unframed_bytes;     /* bytes handed to wslay minus header+payload of frames started */
    uint64_t now_ms;            /* latest time the owner passed in */
    uint64_t last_input_ms;     /* when the peer last sent a byte */
    uint64_t close_deadline_ms; /* end of the close wait (closing only) */
    uint64_t armed_deadline_ms; /* what io->set_deadline last asked for, 0 for none */
    uint64_t rate_checked_ms;   /* when rate_tokens was last refilled */
    uint32_t rate_tokens;       /* token bucket in thousandths of a message */
    uint16_t close_code;        /* code of the close frame we sent first (closing/failing) */
    uint8_t frame_opcode;       /* opcode of the frame being received */
    uint8_t message_opcode;     /* first frame's opcode of the open data message, or 0xff */
    struct ws_utf8 utf8;        /* UTF-8 state of the open text message */
    struct ws_utf8 close_utf8;  /* UTF-8 state of the reason of a close frame being received */
    uint8_t close_offset;       /* payload bytes of that close frame seen (<= 125) */
    unsigned ended : 1;         /* on_end ran */
    unsigned closing : 1;       /* the owner started the close handshake */
    unsigned failing : 1;       /* bad input or an internal error: close sent, ending */
    unsigned frame_open : 1;    /* a frame started and has not ended */
    unsigned frame_fin : 1;     /* that frame ends its message */
    unsigned in_recv : 1;       /* inside wslay_event_recv: its context must stay */
    unsigned refused : 1;       /* a send returned ERR_AGAIN; on_writable owed */
    unsigned ping_sent : 1;     /* a keepalive ping went out since the peer's last byte */
};

/* The idle-memory budget (websocket.h) counts on a small session. */
_Static_assert(sizeof(struct ws_session) <= 256, "struct ws_session grew past 256 bytes");

#define WS_NO_MESSAGE 0xffu

static void session_settle(struct ws_session *session, int wslay_result);

/* ---- UTF-8 --------------------------------------------------------------------- */

static void utf8_reset(struct ws_utf8 *state) {
    state->need = 0;
    state->low = 0x80;
    state->high = 0xbf;
}

/* The leading byte's sequence: continuation bytes needed and the range of
 * the first one. 0 for a byte that cannot start a sequence. */
static int utf8_lead(struct ws_utf8 *state, uint8_t byte) {
    state->low = 0x80;
    state->high = 0xbf;
    if (byte >= 0xc2 && byte <= 0xdf) {
        state->need = 1;
    } else if (byte >= 0xe0 && byte <= 0xef) {
        state->need = 2;
        if (byte == 0xe0)
            state->low = 0xa0; /* below: overlong */
        if (byte == 0xed)
            state->high = 0x9f; /* above: surrogates */
    } else if (byte >= 0xf0 && byte <= 0xf4) {
        state->need = 3;
        if (byte == 0xf0)
            state->low = 0x90; /* below: overlong */
        if (byte == 0xf4)
            state->high = 0x8f; /* above: beyond U+10FFFF */
    } else {
        return 0;
    }
    return 1;
}

/* Advances `state` over `length` bytes; -1 at the first impossible byte. */
static int utf8_step(struct ws_utf8 *state, const uint8_t *data, size_t length) {
    size_t index = 0;
    while (index < length) {
        uint8_t byte = data[index];
        if (state->need > 0) {
            if (byte < state->low || byte > state->high)
                return -1;
            state->need--;
            state->low = 0x80;
            state->high = 0xbf;
            index++;
        } else if (byte < 0x80) {
            /* ASCII runs are the common case: skip eight at a time. */
            index++;
            while (index + 8 <= length) {
                uint64_t word;
                memcpy(&word, data + index, 8);
                if ((word & 0x8080808080808080ull) != 0)
                    break;
                index += 8;
            }
        } else {
            if (!utf8_lead(state, byte))
                return -1;
            index++;
        }
    }
    return 0;
}

int ws_utf8_valid(const void *data, size_t length) {
    CHECK(data != NULL || length == 0);
    struct ws_utf8 state;
    utf8_reset(&state);
    return utf8_step(&state, data, length) == 0 && state.need == 0;
}

/* ---- Handshake ------------------------------------------------------------------- */

int ws_accept_key(const char *key, size_t key_length, char out[29]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    CHECK(out != NULL);
    uint8_t nonce[18];
    size_t nonce_length = 0;
    if (key == NULL || key_length != 24)
        return ERR_INVAL;
    if (base64_decode(BASE64_STANDARD, key, key_length, nonce, sizeof nonce, &nonce_length) != 0 ||
        nonce_length != 16) {
        return ERR_INVAL;
    }
    unsigned char joined[24 + sizeof guid - 1];
    memcpy(joined, key, 24);
    memcpy(joined + 24, guid, sizeof guid - 1);
    unsigned char digest[20];
    if (mbedtls_sha1(joined, sizeof joined, digest) != 0)
        return ERR_INVAL;
    size_t written = 0;
    int rc = base64_encode(BASE64_STANDARD, digest, sizeof digest, out, 29, &written);
    CHECK(rc == 0 && written == 28);
    return 0;
}

/* ---- Ending ---------------------------------------------------------------------- */

static void session_drop_message(struct ws_session *session) {
    mem_free(session->message);
    session->message = NULL;
    session->message_length = 0;
    session->message_capacity = 0;
    session->message_opcode = WS_NO_MESSAGE;
    utf8_reset(&session->utf8);
}

/* Frees the wslay context if nothing in it is needed any more: the session
 * ended, or it is quiescent (websocket.h). Never inside wslay_event_recv. */
static void session_release(struct ws_session *session) {
    wslay_event_context_ptr context = session->wslay;
    if (context == NULL || session->in_recv)
        return;
    if (!session->ended) {
        if (session->closing || session->failing || session->frame_open)
            return;
        if (session->unframed_bytes != 0 || session->message_opcode != WS_NO_MESSAGE)
            return;
        if (wslay_event_get_queued_msg_count(context) != 0 || wslay_event_want_write(context))
            return;
        if (!wslay_event_get_read_enabled(context) || !wslay_event_get_write_enabled(context))
            return;
    }
    wslay_event_context_free(context);
    session->wslay = NULL;
}

/* The one way out: io->close, then on_end, each exactly once. The caller
 * touches nothing in the session after this returns except to return. */
static void session_end(struct ws_session *session, uint16_t code, int graceful) {
    if (session->ended)
        return;
    session->ended = 1;
    if (session->armed_deadline_ms != 0) {
        session->armed_deadline_ms = 0;
        session->io.set_deadline(session->io.io_arg, 0);
    }
    session_drop_message(session);
    if (session->wslay != NULL) {
        /* Inside wslay_event_recv the context is freed on the way out; until
         * then it must neither parse nor send anything more. */
        wslay_event_shutdown_read(session->wslay);
        wslay_event_shutdown_write(session->wslay);
    }
    session_release(session);
    session->io.close(session->io.io_arg, graceful);
    session->handler.on_end(session->handler.arg, code);
}

/* ---- wslay callbacks --------------------------------------------------------------- */

static ssize_t session_on_recv(wslay_event_context_ptr context, uint8_t *buffer, size_t length,
                               int flags, void *user_data) {
    (void)flags;
    struct ws_session *session = user_data;
    if (session->ended || session->input_length == 0) {
        wslay_event_set_error(context, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t count = length < session->input_length ? length : session->input_length;
    memcpy(buffer, session->input, count);
    session->input += count;
    session->input_length -= count;
    session->unframed_bytes += (int64_t)count;
    return (ssize_t)count;
}

static ssize_t session_on_send(wslay_event_context_ptr context, const uint8_t *data, size_t length,
                               int flags, void *user_data) {
    (void)flags;
    struct ws_session *session = user_data;
    if (session->ended || session->io.write(session->io.io_arg, data, length) != 0) {
        wslay_event_set_error(context, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)length;
}

/* Bad input (or no memory) while parsing: queue our close frame and stop
 * parsing; session_settle sends it and ends the session. */
static void session_fail(struct ws_session *session, uint16_t code, const char *reason) {
    if (session->ended || session->failing || session->closing)
        return;
    session->failing = 1;
    session->close_code = code;
    if (session->wslay == NULL)
        return;
    /* NO_MORE_MSG (wslay already queued its own close) and NOMEM both leave
     * settle to end the session without our frame. */
    (void)wslay_event_queue_close(session->wslay, code, (const uint8_t *)reason, strlen(reason));
    wslay_event_shutdown_read(session->wslay);
}

/* Takes one data message from the token bucket; 0 when it is empty. */
static int session_rate_take(struct ws_session *session) {
    uint32_t rate = session->limits.messages_per_second;
    if (rate == 0)
        return 1;
    uint64_t capacity = (uint64_t)rate * 1000;
    uint64_t elapsed = session->now_ms - session->rate_checked_ms;
    if (session->now_ms < session->rate_checked_ms)
        elapsed = 0;
    uint64_t tokens = elapsed >= 1000 ? capacity : session->rate_tokens + elapsed * rate;
    if (tokens > capacity)
        tokens = capacity;
    session->rate_checked_ms = session->now_ms;
    if (tokens < 1000) {
        session->rate_tokens = (uint32_t)tokens;
        return 0;
    }
    session->rate_tokens = (uint32_t)(tokens - 1000);
    return 1;
}

/* Header bytes of a client frame: wslay accepted it, so it was masked and
 * its length used the shortest encoding. */
static uint64_t client_header_bytes(uint64_t payload_length) {
    uint64_t extended = payload_length < 126 ? 0 : payload_length < 65536 ? 2 : 8;
    return 2 + extended + 4;
}

/* The first frame of a data message, or a continuation: the checks that
 * come before any of its payload is kept. */
static void session_data_frame_start(struct ws_session *session, uint8_t opcode,
                                     uint64_t payload_length) {
    if (opcode != WSLAY_CONTINUATION_FRAME) {
        if (opcode == WSLAY_BINARY_FRAME) {
            session_fail(session, WS_CLOSE_UNSUPPORTED_DATA, "binary messages are not supported");
            return;
        }
        if (!session_rate_take(session)) {
            session_fail(session, WS_CLOSE_POLICY, "message rate exceeded");
            return;
        }
        CHECK(session->message_opcode == WS_NO_MESSAGE && session->message_length == 0);
        session->message_opcode = opcode;
        utf8_reset(&session->utf8);
    }
    /* wslay compares each frame with the ceiling, not the whole message. */
    if (session->message_length + payload_length > session->limits.max_message_bytes) {
        session_fail(session, WS_CLOSE_TOO_BIG, "message too big");
    }
}

static void session_on_frame_start(wslay_event_context_ptr context,
                                   const struct wslay_event_on_frame_recv_start_arg *arg,
                                   void *user_data) {
    (void)context;
    struct ws_session *session = user_data;
    session->frame_open = 1;
    session->frame_fin = arg->fin;
    session->frame_opcode = arg->opcode;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        session->close_offset = 0;
        utf8_reset(&session->close_utf8);
    }
    session->unframed_bytes -=
        (int64_t)(client_header_bytes(arg->payload_length) + arg->payload_length);
    if (session->ended || session->failing || session->closing)
        return;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->payload_length == 1) {
        /* wslay reads a 1-byte close as one without a code; RFC 6455 5.5.1
         * allows 0 or at least 2. */
        session_fail(session, WS_CLOSE_PROTOCOL_ERROR, "close frame of one byte");
    } else if (arg->opcode == WSLAY_PING &&
               session->io.queued(session->io.io_arg) >
                   WS_PONG_QUEUE_FACTOR * session->limits.send_queue_bytes) {
        session_fail(session, WS_CLOSE_POLICY, "peer does not read");
    } else if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME ||
               arg->opcode == WSLAY_CONTINUATION_FRAME) {
        session_data_frame_start(session, arg->opcode, arg->payload_length);
    }
}

/* Appends payload bytes to the message buffer, growing it by doubling up to
 * the message ceiling (never past what has arrived plus the NUL). */
static int session_append(struct ws_session *session, const uint8_t *data, size_t length) {
    size_t needed = (size_t)session->message_length + length + 1;
    CHECK(needed <= session->limits.max_message_bytes + 1);
    if (needed > session->message_capacity) {
        size_t capacity = session->message_capacity == 0 ? WS_MESSAGE_INITIAL_BYTES
                                                         : (size_t)session->message_capacity * 2;
        if (capacity > session->limits.max_message_bytes + 1)
            capacity = session->limits.max_message_bytes + 1;
        if (capacity < needed)
            capacity = needed;
        char *grown = mem_realloc(session->message, capacity);
        if (grown == NULL)
            return ERR_NOMEM;
        session->message = grown;
        session->message_capacity = (uint32_t)capacity;
    }
    memcpy(session->message + session->message_length, data, length);
    session->message_length += (uint32_t)length;
    session->message[session->message_length] = '\0';
    return 0;
}

/* wslay 1.1.1 checks a close reason's UTF-8 from the third byte of every
 * chunk, not of the payload, so a close frame split across reads escapes
 * its check; this one counts from the payload's start. */
static void session_close_reason_chunk(struct ws_session *session, const uint8_t *data,
                                       size_t length) {
    size_t skip = session->close_offset >= 2 ? 0 : (size_t)(2 - session->close_offset);
    if (skip > length)
        skip = length;
    session->close_offset = (uint8_t)(session->close_offset + length);
    if (utf8_step(&session->close_utf8, data + skip, length - skip) != 0)
        session_fail(session, WS_CLOSE_INVALID_PAYLOAD, "close reason is not UTF-8");
}

static void session_on_frame_chunk(wslay_event_context_ptr context,
                                   const struct wslay_event_on_frame_recv_chunk_arg *arg,
                                   void *user_data) {
    (void)context;
    struct ws_session *session = user_data;
    if (session->ended || session->failing || session->closing)
        return;
    if (session->frame_opcode == WSLAY_CONNECTION_CLOSE) {
        session_close_reason_chunk(session, arg->data, arg->data_length);
        return;
    }
    if (session->message_opcode != WSLAY_TEXT_FRAME || arg->data_length == 0)
        return;
    if (session->frame_opcode != WSLAY_TEXT_FRAME &&
        session->frame_opcode != WSLAY_CONTINUATION_FRAME) {
        return; /* a control frame between fragments */
    }
    if (utf8_step(&session->utf8, arg->data, arg->data_length) != 0) {
        session_fail(session, WS_CLOSE_INVALID_PAYLOAD, "text is not UTF-8");
        return;
    }
    if (session_append(session, arg->data, arg->data_length) != 0) {
        session_fail(session, WS_CLOSE_INTERNAL, "out of memory");
    }
}

/* A text message is complete: hand it over and forget it. */
static void session_deliver(struct ws_session *session) {
    if (session->utf8.need != 0) {
        session_fail(session, WS_CLOSE_INVALID_PAYLOAD, "text ends inside a character");
        return;
    }
    char *message = session->message;
    uint32_t length = session->message_length;
    session->message = NULL;
    session_drop_message(session);
    session->stats.messages_received++;
    session->handler.on_text(session->handler.arg, message != NULL ? message : "", length);
    mem_free(message);
}

static void session_on_frame_end(wslay_event_context_ptr context, void *user_data) {
    (void)context;
    struct ws_session *session = user_data;
    session->frame_open = 0;
    if (session->frame_opcode == WSLAY_CONNECTION_CLOSE && session->close_utf8.need != 0 &&
        !session->ended && !session->failing && !session->closing) {
        session_fail(session, WS_CLOSE_INVALID_PAYLOAD, "close reason ends inside a character");
        return;
    }
    int data_frame = session->frame_opcode == WSLAY_TEXT_FRAME ||
                     session->frame_opcode == WSLAY_CONTINUATION_FRAME;
    if (!data_frame || !session->frame_fin)
        return;
    if (session->ended || session->failing || session->closing) {
        session_drop_message(session);
        return;
    }
    if (session->message_opcode == WSLAY_TEXT_FRAME)
        session_deliver(session);
}

static const struct wslay_event_callbacks session_callbacks = {
    .recv_callback = session_on_recv,
    .send_callback = session_on_send,
    .genmask_callback = NULL, /* a server never masks */
    .on_frame_recv_start_callback = session_on_frame_start,
    .on_frame_recv_chunk_callback = session_on_frame_chunk,
    .on_frame_recv_end_callback = session_on_frame_end,
    .on_msg_recv_callback = NULL, /* text is delivered at its last frame's end */
};

/* ---- Context, sending, timers --------------------------------------------------------- */

/* Makes sure a wslay context exists: ERR_NOMEM when wslay cannot get one. */
static int session_context(struct ws_session *session) {
    if (session->wslay != NULL)
        return 0;
    wslay_event_context_ptr context = NULL;
    if (wslay_event_context_server_init(&context, &session_callbacks, session) != 0)
        return ERR_NOMEM;
    /* Data frames are assembled here, so wslay allocates no payload. */
    wslay_event_config_set_no_buffering(context, 1);
    /* wslay checks single frames against this (the session checks whole
     * messages); a control frame of 125 bytes must always pass. */
    uint64_t ceiling = session->limits.max_message_bytes;
    wslay_event_config_set_max_recv_msg_length(context, ceiling < 125 ? 125 : ceiling);
    session->wslay = context;
    session->unframed_bytes = 0;
    session->frame_open = 0;
    return 0;
}

/* Writes whatever wslay has queued. ERR_IO when the transport refused. */
static int session_flush(struct ws_session *session) {
    /* wslay_event_write frames into our buffer, so a message (header and
     * payload) and everything queued with it reach the transport as one
     * write: one syscall and one queue entry per flush, not two per frame. */
    uint8_t buffer[WS_FLUSH_BYTES];
    for (int round = 0; session->wslay != NULL && wslay_event_want_write(session->wslay);
         round++) {
        CHECK(round < (1 << 20));
        ssize_t written = wslay_event_write(session->wslay, buffer, sizeof buffer);
        if (written < 0)
            return ERR_IO;
        if (written == 0)
            break;
        if (session->io.write(session->io.io_arg, buffer, (size_t)written) != 0)
            return ERR_IO;
    }
    return 0;
}

/* The earliest thing the session waits for, 0 for nothing. */
static uint64_t session_due(const struct ws_session *session) {
    if (session->ended)
        return 0;
    if (session->closing)
        return session->close_deadline_ms;
    if (session->limits.ping_interval_ms == 0)
        return 0;
    uint64_t due = session->last_input_ms + session->limits.ping_interval_ms;
    return session->ping_sent ? due + session->limits.pong_timeout_ms : due;
}

/* Asks for the deadline only when it moves earlier (or away): every byte
 * from the peer postpones the keepalive, and re-arming the owner's timer for
 * each read would cost more than one early wake-up per interval. */
static void session_arm(struct ws_session *session) {
    uint64_t due = session_due(session);
    uint64_t armed = session->armed_deadline_ms;
    if (due == armed)
        return;
    if (due != 0 && armed != 0 && due > armed)
        return;
    session->armed_deadline_ms = due;
    session->io.set_deadline(session->io.io_arg, due);
}

/* A close frame with `code` built here rather than by wslay (see
 * session_settle). */
static int session_write_close(struct ws_session *session, uint16_t code) {
    const uint8_t frame[4] = {0x88, 0x02, (uint8_t)(code >> 8), (uint8_t)code};
    return session->io.write(session->io.io_arg, frame, sizeof frame);
}

/* After every call into wslay: send what it queued, end the session if the
 * close is done or the input failed, drop the context if it is idle. */
static void session_settle(struct ws_session *session, int wslay_result) {
    if (session->ended) {
        session_release(session);
        return;
    }
    if (wslay_result == WSLAY_ERR_CALLBACK_FAILURE && !session->failing && !session->closing) {
        /* wslay's frame layer rejected a header (fragmented or long control
         * frame, non-minimal or 2^63 length): wslay then queues a close
         * without a code, but this is a protocol error and says 1002. The
         * queued close is discarded with the context. */
        if (session_write_close(session, WS_CLOSE_PROTOCOL_ERROR) != 0) {
            session_end(session, WS_CLOSE_ABNORMAL, 0);
            return;
        }
        session_end(session, WS_CLOSE_PROTOCOL_ERROR, 1);
        return;
    }
    if (wslay_result != 0)
        session_fail(session, WS_CLOSE_INTERNAL, "internal error");
    if (session_flush(session) != 0) {
        session_end(session, WS_CLOSE_ABNORMAL, 0);
        return;
    }
    wslay_event_context_ptr context = session->wslay;
    if (session->failing || (context != NULL && !wslay_event_get_read_enabled(context))) {
        /* Read stops only for a close from the peer, a failure wslay found,
         * or ours: each ends the session now that our close is out. */
        uint16_t code = session->close_code;
        if (!session->failing && !session->closing) {
            code = wslay_event_get_close_received(context)
                       ? wslay_event_get_status_code_received(context)
                       : wslay_event_get_status_code_sent(context);
        }
        session_end(session, code, 1);
        return;
    }
    session_release(session);
    session_arm(session);
}

/* ---- Session ----------------------------------------------------------------------- */

int ws_session_open(struct ws_session **out, const struct ws_limits *limits, const struct ws_io *io,
                    const struct ws_handler *handler, uint64_t now_ms) {
    CHECK(out != NULL && limits != NULL && io != NULL && handler != NULL);
    CHECK(io->write != NULL && io->queued != NULL && io->close != NULL && io->set_deadline != NULL);
    CHECK(handler->on_text != NULL && handler->on_end != NULL);
    /* Message lengths are kept in 32 bits; the token bucket in thousandths. */
    CHECK(limits->max_message_bytes < UINT32_MAX);
    CHECK(limits->messages_per_second <= 1000000);
    *out = NULL;
    struct ws_session *session = mem_calloc(1, sizeof *session);
    if (session == NULL)
        return ERR_NOMEM;
    session->limits = *limits;
    session->io = *io;
    session->handler = *handler;
    session->now_ms = now_ms;
    session->last_input_ms = now_ms;
    session->rate_checked_ms = now_ms;
    session->rate_tokens = limits->messages_per_second * 1000;
    session->message_opcode = WS_NO_MESSAGE;
    utf8_reset(&session->utf8);
    session_arm(session);
    *out = session;
    return 0;
}

void ws_session_feed(struct ws_session *session, const void *data, size_t length, uint64_t now_ms) {
    CHECK(session != NULL && (data != NULL || length == 0));
    session->now_ms = now_ms;
    if (session->ended || length == 0)
        return;
    session->last_input_ms = now_ms;
    session->ping_sent = 0;
    if (session_context(session) != 0) {
        session_end(session, WS_CLOSE_INTERNAL, 0);
        return;
    }
    CHECK(!session->in_recv);
    session->input = data;
    session->input_length = length;
    session->in_recv = 1;
    int rc = wslay_event_recv(session->wslay);
    session->in_recv = 0;
    session->input = NULL;
    session->input_length = 0;
    session_settle(session, rc);
}

int ws_session_send_text(struct ws_session *session, const char *data, size_t length) {
    CHECK(session != NULL && (data != NULL || length == 0));
    if (session->ended || session->closing || session->failing)
        return ERR_CLOSED;
    if (session->io.queued(session->io.io_arg) > session->limits.send_queue_bytes) {
        session->refused = 1;
        return ERR_AGAIN;
    }
    if (session_context(session) != 0)
        return ERR_NOMEM;
    struct wslay_event_msg message = {
        .opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)data, .msg_length = length};
    int rc = wslay_event_queue_msg(session->wslay, &message);
    if (rc != 0) {
        session_release(session);
        return rc == WSLAY_ERR_NOMEM ? ERR_NOMEM : ERR_CLOSED;
    }
    if (session_flush(session) != 0) {
        session_end(session, WS_CLOSE_ABNORMAL, 0);
        return ERR_IO;
    }
    session->stats.messages_sent++;
    session_release(session);
    return 0;
}

/* The reason's length cut to what a close frame holds, at a character
 * boundary (a cut inside a character would make the frame invalid). */
static size_t close_reason_length(const char *reason) {
    if (reason == NULL)
        return 0;
    size_t length = strnlen(reason, WS_CLOSE_REASON_BYTES + 1);
    if (length <= WS_CLOSE_REASON_BYTES)
        return length;
    length = WS_CLOSE_REASON_BYTES;
    while (length > 0 && ((uint8_t)reason[length] & 0xc0) == 0x80)
        length--;
    return length;
}

void ws_session_close(struct ws_session *session, uint16_t code, const char *reason,
                      uint64_t now_ms) {
    CHECK(session != NULL);
    CHECK((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
          (code >= 3000 && code <= 4999));
    if (session->ended || session->closing || session->failing)
        return;
    if (now_ms > session->now_ms)
        session->now_ms = now_ms;
    session->closing = 1;
    session->close_code = code;
    session->close_deadline_ms = session->now_ms + WS_CLOSE_WAIT_MS;
    if (session_context(session) != 0) {
        session_end(session, code, 1);
        return;
    }
    int rc = wslay_event_queue_close(session->wslay, code, (const uint8_t *)reason,
                                     close_reason_length(reason));
    if (rc == WSLAY_ERR_NOMEM) {
        session_end(session, code, 1);
        return;
    }
    /* NO_MORE_MSG: wslay already queued a close of its own (a failure it
     * found inside this very feed); settle ends the session with it. */
    if (session->in_recv) {
        if (session_flush(session) != 0)
            session_end(session, WS_CLOSE_ABNORMAL, 0);
        return;
    }
    session_settle(session, 0);
}

void ws_session_on_drained(struct ws_session *session, uint64_t now_ms) {
    CHECK(session != NULL);
    session->now_ms = now_ms;
    if (session->ended || !session->refused)
        return;
    size_t queued = session->io.queued(session->io.io_arg);
    if (queued != 0 && queued * 2 >= session->limits.send_queue_bytes)
        return;
    session->refused = 0;
    if (session->handler.on_writable != NULL)
        session->handler.on_writable(session->handler.arg);
}

/* A keepalive ping; a failure to queue it only means the peer is judged by
 * the dead-peer deadline without one. */
static void session_ping(struct ws_session *session) {
    session->ping_sent = 1;
    if (session_context(session) != 0)
        return;
    struct wslay_event_msg ping = {.opcode = WSLAY_PING, .msg = NULL, .msg_length = 0};
    if (wslay_event_queue_msg(session->wslay, &ping) == 0)
        session->stats.pings_sent++;
    session_settle(session, 0);
}

void ws_session_on_deadline(struct ws_session *session, uint64_t now_ms) {
    CHECK(session != NULL);
    session->now_ms = now_ms;
    session->armed_deadline_ms = 0; /* the owner's timer is spent */
    if (session->ended)
        return;
    if (session->closing) {
        if (now_ms >= session->close_deadline_ms) {
            session_end(session, session->close_code, 0);
            return;
        }
    } else if (session->limits.ping_interval_ms != 0) {
        uint64_t silent_ms = now_ms - session->last_input_ms;
        if (now_ms < session->last_input_ms)
            silent_ms = 0;
        if (silent_ms >= session->limits.ping_interval_ms + session->limits.pong_timeout_ms) {
            session_end(session, WS_CLOSE_ABNORMAL, 0);
            return;
        }
        if (!session->ping_sent && silent_ms >= session->limits.ping_interval_ms) {
            session_ping(session);
            if (session->ended)
                return;
        }
    }
    session_arm(session);
}

void ws_session_on_transport_closed(struct ws_session *session) {
    CHECK(session != NULL);
    if (session->ended)
        return;
    session_end(session, WS_CLOSE_ABNORMAL, 0);
}

int ws_session_ended(const struct ws_session *session) {
    CHECK(session != NULL);
    return session->ended;
}

int ws_session_has_context(const struct ws_session *session) {
    CHECK(session != NULL);
    return session->wslay != NULL;
}

const struct ws_session_stats *ws_session_stats(const struct ws_session *session) {
    CHECK(session != NULL);
    return &session->stats;
}

void ws_session_free(struct ws_session *session) {
    if (session == NULL)
        return;
    CHECK(!session->in_recv);
    if (session->wslay != NULL)
        wslay_event_context_free(session->wslay);
    mem_free(session->message);
    mem_free(session);
}
