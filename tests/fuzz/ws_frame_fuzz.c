/*
 * ws_frame_fuzz.c - libFuzzer target for the WebSocket session: the input
 * after two header bytes is what a client sends, fed in pieces whose size
 * comes from the first byte; the second byte chooses what the owner does in
 * between (sends, replies and closes from on_text, advancing time through
 * the deadlines, a full send queue, a failing transport, a tiny rate).
 *
 * Invariants (CHECK): every delivered text is UTF-8 by an independent
 * decoder and within the ceiling; the bytes written parse as unmasked
 * server frames with legal opcodes, at most one close frame and nothing
 * after it; io->close runs once, before on_end, which runs once, and no
 * callback follows it; an ended session holds no wslay context; a live one
 * always has a deadline armed.
 */
#include "../../src/base/check.h"
#include "../../src/base/err.h"
#include "../../src/ws/websocket.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    OPTION_SEND_BETWEEN = 1 << 0,  /* ws_session_send_text between pieces */
    OPTION_REPLY = 1 << 1,         /* on_text answers with a send */
    OPTION_CLOSE_ON_TEXT = 1 << 2, /* the third on_text closes the session */
    OPTION_TIME = 1 << 3,          /* time runs and deadlines fire */
    OPTION_QUEUE = 1 << 4,         /* the send queue fills and drains */
    OPTION_OWNER_CLOSE = 1 << 5,   /* the owner closes halfway through */
    OPTION_WRITE_FAILS = 1 << 6,   /* the transport breaks after a while */
    OPTION_SLOW_RATE = 1 << 7,     /* one message a second */
};

/* State of one run. */
struct fuzz_state {
    uint8_t out[1 << 16];       /* bytes written, while they fit */
    size_t out_length;          /* bytes in out */
    int out_overflow;           /* more was written than out holds */
    int write_failed;           /* a write was refused: the output may end mid-frame */
    size_t written;             /* all bytes written */
    size_t write_budget;        /* with OPTION_WRITE_FAILS: bytes before writes fail */
    size_t queued;              /* what io->queued reports */
    int closes;                 /* io->close calls */
    int ends;                   /* on_end calls */
    int after_end;              /* handler calls after on_end */
    int texts;                  /* on_text calls */
    uint64_t deadline;          /* last io->set_deadline */
    unsigned options;           /* OPTION_* */
    struct ws_session *session; /* the session */
};

static struct fuzz_state state;

#define FUZZ_MAX_MESSAGE 512

/* UTF-8 by decoding each code point (a different method from the
 * session's range table, so the two check each other). */
static int reference_utf8(const uint8_t *text, size_t length) {
    size_t index = 0;
    while (index < length) {
        uint8_t lead = text[index];
        size_t count = lead < 0x80         ? 1
                       : (lead >> 5) == 6  ? 2
                       : (lead >> 4) == 14 ? 3
                       : (lead >> 3) == 30 ? 4
                                           : 0;
        if (count == 0 || index + count > length)
            return 0;
        uint32_t point = count == 1 ? lead : lead & (0x7f >> count);
        for (size_t next = 1; next < count; next++) {
            if ((text[index + next] & 0xc0) != 0x80)
                return 0;
            point = point << 6 | (text[index + next] & 0x3f);
        }
        static const uint32_t smallest[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (point < smallest[count] || point > 0x10ffff)
            return 0;
        if (point >= 0xd800 && point <= 0xdfff)
            return 0;
        index += count;
    }
    return 1;
}

static int fuzz_write(void *arg, const void *data, size_t length) {
    (void)arg;
    CHECK(state.closes == 0 && length > 0);
    if ((state.options & OPTION_WRITE_FAILS) && state.written + length > state.write_budget) {
        state.write_failed = 1;
        return ERR_IO;
    }
    if (state.out_length + length <= sizeof state.out) {
        memcpy(state.out + state.out_length, data, length);
        state.out_length += length;
    } else {
        state.out_overflow = 1;
    }
    state.written += length;
    return 0;
}

static size_t fuzz_queued(void *arg) {
    (void)arg;
    return state.queued;
}

static void fuzz_close(void *arg, int graceful) {
    (void)arg;
    CHECK(graceful == 0 || graceful == 1);
    CHECK(state.ends == 0);
    state.closes++;
}

static void fuzz_set_deadline(void *arg, uint64_t due_ms) {
    (void)arg;
    state.deadline = due_ms;
}

static void fuzz_on_text(void *arg, const char *text, size_t length) {
    (void)arg;
    if (state.ends)
        state.after_end++;
    CHECK(length <= FUZZ_MAX_MESSAGE && text[length] == '\0');
    CHECK(reference_utf8((const uint8_t *)text, length));
    state.texts++;
    if (state.options & OPTION_REPLY) {
        int rc = ws_session_send_text(state.session, text, length);
        CHECK(rc == 0 || rc == ERR_AGAIN || rc == ERR_CLOSED || rc == ERR_IO || rc == ERR_NOMEM);
    }
    if ((state.options & OPTION_CLOSE_ON_TEXT) && state.texts == 3)
        ws_session_close(state.session, WS_CLOSE_TOKEN_EXPIRED, "token expired", 0);
}

static void fuzz_on_writable(void *arg) {
    (void)arg;
    if (state.ends)
        state.after_end++;
}

static void fuzz_on_end(void *arg, uint16_t code) {
    (void)arg;
    if (state.ends)
        state.after_end++;
    CHECK(state.closes == 1);
    CHECK(code >= 1000 && code <= 4999);
    state.ends++;
}

/* The server's bytes are frames a client accepts, and nothing follows a
 * close frame. */
static void check_output(void) {
    if (state.out_overflow || state.write_failed)
        return;
    size_t at = 0;
    int closed = 0;
    while (at + 2 <= state.out_length) {
        const uint8_t *frame = state.out + at;
        CHECK(!closed);
        CHECK((frame[0] & 0x70) == 0 && (frame[1] & 0x80) == 0);
        int opcode = frame[0] & 15;
        CHECK(opcode == 1 || opcode == 8 || opcode == 9 || opcode == 10);
        size_t length = frame[1] & 127;
        size_t header = 2;
        if (length == 126) {
            CHECK(at + 4 <= state.out_length);
            length = (size_t)frame[2] << 8 | frame[3];
            header = 4;
        } else if (length == 127) {
            CHECK(at + 10 <= state.out_length);
            length = 0;
            for (int index = 0; index < 8; index++)
                length = length << 8 | frame[2 + index];
            header = 10;
        }
        CHECK(opcode == 1 || length <= 125);
        CHECK(at + header + length <= state.out_length);
        if (opcode == 8) {
            CHECK(length != 1);
            if (length >= 2)
                CHECK(reference_utf8(frame + header + 2, length - 2));
            closed = 1;
        }
        at += header + length;
    }
    CHECK(at == state.out_length);
}

/* Invariants that hold between any two calls into the session. */
static void check_between(void) {
    CHECK(state.after_end == 0 && state.ends <= 1 && state.closes <= 1);
    if (ws_session_ended(state.session)) {
        CHECK(state.ends == 1 && !ws_session_has_context(state.session));
    } else {
        CHECK(state.ends == 0 && state.closes == 0 && state.deadline != 0);
    }
}

/* What the owner does between two pieces of input. */
static void owner_turn(size_t piece, uint64_t *now_ms) {
    if (state.options & OPTION_SEND_BETWEEN) {
        int rc = ws_session_send_text(state.session, "{\"type\":\"pong\"}", 15);
        CHECK(rc == 0 || rc == ERR_AGAIN || rc == ERR_CLOSED || rc == ERR_IO || rc == ERR_NOMEM);
    }
    if (state.options & OPTION_QUEUE) {
        state.queued = (piece % 3 == 0) ? 0 : 300000;
        ws_session_on_drained(state.session, *now_ms);
    }
    if (state.options & OPTION_TIME) {
        *now_ms += 97 * (piece % 29);
        if (state.deadline != 0 && state.deadline <= *now_ms)
            ws_session_on_deadline(state.session, *now_ms);
    }
    check_between();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    memset(&state, 0, sizeof state);
    size_t step = (size_t)(data[0] & 63) + 1;
    state.options = data[1];
    state.write_budget = (size_t)(data[0] >> 6) * 64 + 16;
    data += 2;
    size -= 2;
    struct ws_limits limits = {
        .max_message_bytes = FUZZ_MAX_MESSAGE,
        .messages_per_second = (state.options & OPTION_SLOW_RATE) ? 1 : 20,
        .ping_interval_ms = 1000,
        .pong_timeout_ms = 500,
        .send_queue_bytes = 4096,
    };
    struct ws_io io = {fuzz_write, fuzz_queued, fuzz_close, fuzz_set_deadline, NULL};
    struct ws_handler handler = {fuzz_on_text, fuzz_on_writable, fuzz_on_end, NULL};
    uint64_t now_ms = 5000;
    CHECK(ws_session_open(&state.session, &limits, &io, &handler, now_ms) == 0);
    size_t offset = 0;
    for (size_t piece = 0; offset < size; piece++) {
        size_t length = size - offset < step ? size - offset : step;
        ws_session_feed(state.session, data + offset, length, now_ms);
        offset += length;
        check_between();
        if ((state.options & OPTION_OWNER_CLOSE) && offset >= size / 2)
            ws_session_close(state.session, WS_CLOSE_GOING_AWAY, "server shutdown", now_ms);
        owner_turn(piece, &now_ms);
    }
    if (state.options & OPTION_TIME) {
        /* Let every timer run out: the session must end by itself. */
        for (int round = 0; round < 8 && !ws_session_ended(state.session); round++) {
            now_ms = state.deadline > now_ms ? state.deadline : now_ms;
            ws_session_on_deadline(state.session, now_ms);
            check_between();
        }
        CHECK(ws_session_ended(state.session));
    }
    ws_session_on_transport_closed(state.session);
    CHECK(state.ends == 1 && state.closes == 1 && state.after_end == 0);
    CHECK(!ws_session_has_context(state.session));
    check_output();
    ws_session_free(state.session);
    return 0;
}
