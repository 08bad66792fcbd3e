/* websocket_test.c - proves the WebSocket session delivers exactly the
 * valid text messages a masked client sends (whole, fragmented, byte by
 * byte), fails every kind of bad input with its RFC 6455 close code, runs
 * the close handshake, keepalive and dead-peer timers on fake time, applies
 * send-queue backpressure, holds no wslay context while idle, and survives
 * every allocation failing in turn. The client side is a small frame builder
 * and parser here, independent of wslay. */
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "../../../src/ws/websocket.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

/* ---- Fake transport and owner ------------------------------------------------------ */

struct fake {
    uint8_t out[1 << 18];       /* every byte the session wrote */
    size_t out_length;          /* bytes in out */
    size_t out_read;            /* parse cursor of next_frame */
    size_t queued;              /* what io->queued reports */
    int write_fails;            /* io->write fails while set */
    int closes;                 /* io->close calls */
    int graceful;               /* its last argument */
    uint64_t deadline;          /* last io->set_deadline */
    int deadline_calls;         /* how many there were */
    char text[4096];            /* last text message */
    size_t text_length;         /* its length */
    int texts;                  /* on_text calls */
    int writables;              /* on_writable calls */
    int ends;                   /* on_end calls */
    uint16_t end_code;          /* its code */
    int callbacks_after_end;    /* any handler call after on_end */
    int reply_on_text;          /* on_text answers with send_text("ack") */
    int close_on_text;          /* on_text calls ws_session_close(4001) */
    int reply_result;           /* what that send_text returned */
    struct ws_session *session; /* the session under test */
};

static struct fake fake;

static int fake_write(void *arg, const void *data, size_t length) {
    (void)arg;
    if (fake.write_fails)
        return ERR_IO;
    if (fake.out_length + length > sizeof fake.out)
        return ERR_NOSPC;
    memcpy(fake.out + fake.out_length, data, length);
    fake.out_length += length;
    return 0;
}

static size_t fake_queued(void *arg) {
    (void)arg;
    return fake.queued;
}

static void fake_close(void *arg, int graceful) {
    (void)arg;
    fake.closes++;
    fake.graceful = graceful;
}

static void fake_set_deadline(void *arg, uint64_t due_ms) {
    (void)arg;
    fake.deadline = due_ms;
    fake.deadline_calls++;
}

static void fake_on_text(void *arg, const char *data, size_t length) {
    (void)arg;
    if (fake.ends)
        fake.callbacks_after_end++;
    if (length < sizeof fake.text) {
        memcpy(fake.text, data, length);
        fake.text[length] = '\0';
    }
    fake.text_length = length;
    fake.texts++;
    if (fake.reply_on_text)
        fake.reply_result = ws_session_send_text(fake.session, "ack", 3);
    if (fake.close_on_text)
        ws_session_close(fake.session, WS_CLOSE_TOKEN_EXPIRED, "expired", 0);
}

static void fake_on_writable(void *arg) {
    (void)arg;
    if (fake.ends)
        fake.callbacks_after_end++;
    fake.writables++;
}

static void fake_on_end(void *arg, uint16_t code) {
    (void)arg;
    if (fake.ends)
        fake.callbacks_after_end++;
    fake.ends++;
    fake.end_code = code;
}

static const struct ws_limits test_limits = {
    .max_message_bytes = 1024,
    .messages_per_second = 5,
    .ping_interval_ms = 1000,
    .pong_timeout_ms = 500,
    .send_queue_bytes = 4096,
};

static struct ws_session *open_with(const struct ws_limits *limits, uint64_t now_ms) {
    memset(&fake, 0, sizeof fake);
    struct ws_io io = {fake_write, fake_queued, fake_close, fake_set_deadline, NULL};
    struct ws_handler handler = {fake_on_text, fake_on_writable, fake_on_end, NULL};
    struct ws_session *session = NULL;
    if (ws_session_open(&session, limits, &io, &handler, now_ms) != 0)
        return NULL;
    fake.session = session;
    return session;
}

static struct ws_session *open_session(void) {
    return open_with(&test_limits, 1000);
}

/* ---- Client frames ----------------------------------------------------------------- */

enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

/* A client frame: masked with the RFC 6455 5.7 example key unless `masked`
 * is 0; the shortest length encoding. Returns its size. */
static size_t build_frame(uint8_t *out, int fin, int rsv, int opcode, int masked,
                          const void *payload, size_t length) {
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t at = 0;
    out[at++] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | opcode);
    uint8_t mask_bit = masked ? 0x80 : 0;
    if (length < 126) {
        out[at++] = (uint8_t)(mask_bit | length);
    } else if (length < 65536) {
        out[at++] = mask_bit | 126;
        out[at++] = (uint8_t)(length >> 8);
        out[at++] = (uint8_t)length;
    } else {
        out[at++] = mask_bit | 127;
        for (int shift = 56; shift >= 0; shift -= 8)
            out[at++] = (uint8_t)(length >> shift);
    }
    if (masked) {
        memcpy(out + at, key, 4);
        at += 4;
    }
    const uint8_t *bytes = payload;
    for (size_t index = 0; index < length; index++)
        out[at + index] = masked ? bytes[index] ^ key[index % 4] : bytes[index];
    return at + length;
}

static uint8_t frame_buffer[70000];

static void send_frame(struct ws_session *session, int fin, int opcode, const void *payload,
                       size_t length, uint64_t now_ms) {
    size_t size = build_frame(frame_buffer, fin, 0, opcode, 1, payload, length);
    ws_session_feed(session, frame_buffer, size, now_ms);
}

static void send_text(struct ws_session *session, const char *text, uint64_t now_ms) {
    send_frame(session, 1, OP_TEXT, text, strlen(text), now_ms);
}

static void send_close(struct ws_session *session, uint16_t code, const char *reason,
                       uint64_t now_ms) {
    uint8_t payload[125];
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    size_t length = strlen(reason);
    memcpy(payload + 2, reason, length);
    send_frame(session, 1, OP_CLOSE, payload, length + 2, now_ms);
}

/* ---- Server frames ----------------------------------------------------------------- */

struct server_frame {
    int fin;                /* FIN bit */
    int rsv;                /* RSV bits */
    int opcode;             /* opcode */
    int masked;             /* MASK bit (a server must not set it) */
    size_t length;          /* payload length */
    const uint8_t *payload; /* payload in fake.out */
};

/* The next frame the session wrote; 0 when none is complete. */
static int next_frame(struct server_frame *frame) {
    const uint8_t *at = fake.out + fake.out_read;
    size_t available = fake.out_length - fake.out_read;
    if (available < 2)
        return 0;
    frame->fin = at[0] >> 7;
    frame->rsv = (at[0] >> 4) & 7;
    frame->opcode = at[0] & 15;
    frame->masked = at[1] >> 7;
    size_t length = at[1] & 127;
    size_t header = 2;
    if (length == 126) {
        if (available < 4)
            return 0;
        length = (size_t)at[2] << 8 | at[3];
        header = 4;
    } else if (length == 127) {
        if (available < 10)
            return 0;
        length = 0;
        for (int index = 0; index < 8; index++)
            length = length << 8 | at[2 + index];
        header = 10;
    }
    if (available < header + length)
        return 0;
    frame->length = length;
    frame->payload = at + header;
    fake.out_read += header + length;
    return 1;
}

static int frame_close_code(const struct server_frame *frame) {
    if (frame->opcode != OP_CLOSE || frame->length < 2)
        return -1;
    return frame->payload[0] << 8 | frame->payload[1];
}

/* The session's next output is a close frame with `code`, it ended with
 * `code` and closed the transport gracefully, and nothing follows. */
static int failed_with(struct ws_session *session, uint16_t code) {
    struct server_frame frame;
    while (next_frame(&frame)) {
        if (frame.opcode != OP_CLOSE)
            continue;
        return frame_close_code(&frame) == code && !frame.masked &&
               fake.out_read == fake.out_length && fake.ends == 1 && fake.end_code == code &&
               fake.closes == 1 && fake.graceful == 1 && ws_session_ended(session) &&
               !ws_session_has_context(session) && fake.callbacks_after_end == 0;
    }
    return 0;
}

/* ---- Handshake and UTF-8 ----------------------------------------------------------- */

TEST(ws_accept_key_matches_rfc6455_example) {
    /* RFC 6455 section 1.3 works this exact example. */
    char out[29];
    EXPECT_EQ_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
    EXPECT_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(ws_accept_key_refuses_keys_that_are_not_16_base64_bytes) {
    /* Wrong length, bad alphabet, bad padding and 15 or 17 bytes are refused. */
    char out[29];
    EXPECT_EQ_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=", 23, out), ERR_INVAL);
    EXPECT_EQ_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ===", 25, out), ERR_INVAL);
    EXPECT_EQ_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZ*==", 24, out), ERR_INVAL);
    EXPECT_EQ_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZSE=", 24, out), ERR_INVAL);
    EXPECT_EQ_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 0, out), ERR_INVAL);
    EXPECT_EQ_INT(ws_accept_key(NULL, 24, out), ERR_INVAL);
}

TEST(ws_utf8_valid_follows_rfc3629) {
    /* Every boundary of Unicode table 3-7: the smallest and largest
     * sequences of each length pass; overlongs, surrogates, code points
     * above U+10FFFF, stray continuation bytes and truncations fail. */
    static const char *const good[] = {
        "",
        "plain ascii text, longer than eight bytes",
        "\x7f",
        "\xc2\x80",
        "\xdf\xbf",
        "\xe0\xa0\x80",
        "\xed\x9f\xbf",
        "\xee\x80\x80",
        "\xef\xbf\xbf",
        "\xf0\x90\x80\x80",
        "\xf4\x8f\xbf\xbf",
        "\xce\xba\xe1\xbd\xb9\xcf\x83",
    };
    static const char *const bad[] = {
        "\x80",
        "\xbf",
        "\xc0\xaf",
        "\xc1\xbf",
        "\xe0\x80\xaf",
        "\xe0\x9f\xbf",
        "\xed\xa0\x80",
        "\xed\xbf\xbf",
        "\xf0\x80\x80\xaf",
        "\xf0\x8f\xbf\xbf",
        "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80",
        "\xff",
        "\xfe",
        "\xc2",
        "\xe2\x82",
        "\xf0\x9f\x98",
        "abc\xc2",
        "\xc2\x41",
        "12345678\xe2\x28\xa1",
    };
    for (size_t index = 0; index < sizeof good / sizeof good[0]; index++)
        EXPECT(ws_utf8_valid(good[index], strlen(good[index])));
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++)
        EXPECT(!ws_utf8_valid(bad[index], strlen(bad[index])));
}

/* ---- Messages ------------------------------------------------------------------------ */

TEST(ws_text_in_one_frame_reaches_on_text) {
    /* A masked text frame is delivered unmasked and whole; the session
     * answers nothing and keeps no wslay context afterwards. */
    struct ws_session *session = open_session();
    EXPECT(session != NULL);
    EXPECT(!ws_session_has_context(session));
    send_text(session, "{\"type\":\"ping\"}", 1000);
    EXPECT_EQ_INT(fake.texts, 1);
    EXPECT_STR(fake.text, "{\"type\":\"ping\"}");
    EXPECT_EQ_INT(fake.out_length, 0);
    EXPECT_EQ_INT(ws_session_stats(session)->messages_received, 1);
    EXPECT(!ws_session_has_context(session));
    EXPECT(!ws_session_ended(session));
    send_text(session, "", 1001);
    EXPECT_EQ_INT(fake.texts, 2);
    EXPECT_EQ_INT(fake.text_length, 0);
    ws_session_free(session);
}

TEST(ws_fragmented_text_with_interleaved_ping_is_reassembled) {
    /* Three fragments with a ping between them: one message, and the ping
     * is answered at once with a pong carrying its payload. */
    struct ws_session *session = open_session();
    send_frame(session, 0, OP_TEXT, "Hel", 3, 1000);
    EXPECT(ws_session_has_context(session));
    send_frame(session, 1, OP_PING, "abc", 3, 1000);
    struct server_frame frame;
    EXPECT(next_frame(&frame));
    EXPECT_EQ_INT(frame.opcode, OP_PONG);
    EXPECT_EQ_INT(frame.length, 3);
    EXPECT(memcmp(frame.payload, "abc", 3) == 0);
    EXPECT_EQ_INT(fake.texts, 0);
    send_frame(session, 0, OP_CONT, "lo, ", 4, 1000);
    send_frame(session, 1, OP_CONT, "w\xc3\xb6rld", 6, 1000);
    EXPECT_EQ_INT(fake.texts, 1);
    EXPECT_STR(fake.text, "Hello, w\xc3\xb6rld");
    EXPECT(!ws_session_has_context(session));
    ws_session_free(session);
}

TEST(ws_byte_at_a_time_feeding_delivers_the_same_messages) {
    /* Frames split at every byte boundary, a 16-bit length among them, give
     * the same messages; the context lives only while a frame is partial. */
    struct ws_session *session = open_session();
    uint8_t stream[1200];
    char big[300];
    memset(big, 'x', sizeof big);
    size_t length = build_frame(stream, 1, 0, OP_TEXT, 1, "first", 5);
    length += build_frame(stream + length, 1, 0, OP_TEXT, 1, big, sizeof big);
    length += build_frame(stream + length, 0, 0, OP_TEXT, 1, "a\xe2", 2);
    length += build_frame(stream + length, 1, 0, OP_CONT, 1, "\x82\xac", 2);
    int texts_seen = 0;
    for (size_t index = 0; index < length; index++) {
        ws_session_feed(session, stream + index, 1, 1000);
        if (fake.texts != texts_seen) {
            texts_seen = fake.texts;
            if (texts_seen == 1)
                EXPECT_STR(fake.text, "first");
            if (texts_seen == 2)
                EXPECT(fake.text_length == 300 && fake.text[299] == 'x');
            EXPECT(!ws_session_has_context(session));
        } else {
            EXPECT(ws_session_has_context(session));
        }
    }
    EXPECT_EQ_INT(fake.texts, 3);
    EXPECT_STR(fake.text, "a\xe2\x82\xac");
    EXPECT(!ws_session_ended(session));
    ws_session_free(session);
}

TEST(ws_several_frames_in_one_feed_are_all_delivered) {
    /* Two messages and a partial third in one read: two deliveries, and the
     * context stays for the partial one. */
    struct ws_session *session = open_session();
    uint8_t stream[64];
    size_t length = build_frame(stream, 1, 0, OP_TEXT, 1, "one", 3);
    length += build_frame(stream + length, 1, 0, OP_TEXT, 1, "two", 3);
    size_t third = build_frame(stream + length, 1, 0, OP_TEXT, 1, "three", 5);
    ws_session_feed(session, stream, length + 4, 1000);
    EXPECT_EQ_INT(fake.texts, 2);
    EXPECT_STR(fake.text, "two");
    EXPECT(ws_session_has_context(session));
    ws_session_feed(session, stream + length + 4, third - 4, 1000);
    EXPECT_EQ_INT(fake.texts, 3);
    EXPECT_STR(fake.text, "three");
    EXPECT(!ws_session_has_context(session));
    ws_session_free(session);
}

/* ---- Failures ------------------------------------------------------------------------ */

static int fails_text_with(const char *payload, size_t length, uint16_t code) {
    struct ws_session *session = open_session();
    send_frame(session, 1, OP_TEXT, payload, length, 1000);
    int ok = fake.texts == 0 && failed_with(session, code);
    ws_session_free(session);
    return ok;
}

TEST(ws_invalid_utf8_fails_with_1007) {
    /* Overlong, surrogate, beyond U+10FFFF, stray continuation and a text
     * that ends inside a character: each closes with 1007. */
    EXPECT(fails_text_with("a\xc0\xaf", 3, WS_CLOSE_INVALID_PAYLOAD));
    EXPECT(fails_text_with("\xed\xa0\x80", 3, WS_CLOSE_INVALID_PAYLOAD));
    EXPECT(fails_text_with("\xf4\x90\x80\x80", 4, WS_CLOSE_INVALID_PAYLOAD));
    EXPECT(fails_text_with("\x80", 1, WS_CLOSE_INVALID_PAYLOAD));
    EXPECT(fails_text_with("ok\xe2\x82", 4, WS_CLOSE_INVALID_PAYLOAD));
}

TEST(ws_invalid_utf8_split_across_fragments_fails_with_1007) {
    /* A character may span fragments, so validity is judged across them:
     * E2 82 | AC is fine, E2 82 | 28 and a message ending on E2 are not. */
    struct ws_session *session = open_session();
    send_frame(session, 0, OP_TEXT, "\xe2\x82", 2, 1000);
    send_frame(session, 1, OP_CONT, "(", 1, 1000);
    EXPECT(fake.texts == 0 && failed_with(session, WS_CLOSE_INVALID_PAYLOAD));
    ws_session_free(session);
    session = open_session();
    send_frame(session, 0, OP_TEXT, "ab", 2, 1000);
    send_frame(session, 1, OP_CONT, "\xe2", 1, 1000);
    EXPECT(fake.texts == 0 && failed_with(session, WS_CLOSE_INVALID_PAYLOAD));
    ws_session_free(session);
}

TEST(ws_binary_message_fails_with_1003) {
    /* Docket speaks JSON text only. */
    struct ws_session *session = open_session();
    send_frame(session, 1, OP_BINARY, "\x00\x01", 2, 1000);
    EXPECT(fake.texts == 0 && failed_with(session, WS_CLOSE_UNSUPPORTED_DATA));
    ws_session_free(session);
}

static int fails_raw_with(const uint8_t *bytes, size_t length, uint16_t code) {
    struct ws_session *session = open_session();
    ws_session_feed(session, bytes, length, 1000);
    int ok = fake.texts == 0 && failed_with(session, code);
    ws_session_free(session);
    return ok;
}

TEST(ws_framing_errors_fail_with_1002) {
    /* Unmasked client frame, RSV bits without an extension, reserved data
     * and control opcodes, a control frame over 125 bytes or fragmented, a
     * continuation with no message to continue, a new message inside a
     * fragmented one, a one-byte close and an invalid close code. */
    uint8_t frame[300];
    char filler[126];
    memset(filler, 'p', sizeof filler);
    EXPECT(fails_raw_with(frame, build_frame(frame, 1, 0, OP_TEXT, 0, "hi", 2), 1002));
    EXPECT(fails_raw_with(frame, build_frame(frame, 1, 4, OP_TEXT, 1, "hi", 2), 1002));
    EXPECT(fails_raw_with(frame, build_frame(frame, 1, 1, OP_TEXT, 1, "hi", 2), 1002));
    EXPECT(fails_raw_with(frame, build_frame(frame, 1, 0, 3, 1, "hi", 2), 1002));
    EXPECT(fails_raw_with(frame, build_frame(frame, 1, 0, 11, 1, "hi", 2), 1002));
    EXPECT(fails_raw_with(frame, build_frame(frame, 1, 0, OP_PING, 1, filler, 126), 1002));
    EXPECT(fails_raw_with(frame, build_frame(frame, 0, 0, OP_PING, 1, "hi", 2), 1002));
    EXPECT(fails_raw_with(frame, build_frame(frame, 1, 0, OP_CONT, 1, "hi", 2), 1002));
    size_t length = build_frame(frame, 0, 0, OP_TEXT, 1, "hi", 2);
    length += build_frame(frame + length, 1, 0, OP_TEXT, 1, "again", 5);
    EXPECT(fails_raw_with(frame, length, 1002));
    EXPECT(fails_raw_with(frame, build_frame(frame, 1, 0, OP_CLOSE, 1, "\x03", 1), 1002));
    EXPECT(fails_raw_with(frame, build_frame(frame, 1, 0, OP_CLOSE, 1, "\x03\xed", 2), 1002));
    EXPECT(fails_raw_with(frame, build_frame(frame, 1, 0, OP_CLOSE, 1, "\x03\xe7", 2), 1002));
}

TEST(ws_non_minimal_length_encoding_fails_with_1002) {
    /* A 5-byte payload announced with the 16-bit length form. */
    const uint8_t frame[] = {0x81, 0xfe,    0x00,    0x05,    1,       2,      3,
                             4,    'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1};
    EXPECT(fails_raw_with(frame, sizeof frame, 1002));
}

TEST(ws_oversized_messages_fail_with_1009) {
    /* One frame over the ceiling fails at its header, before any payload
     * arrives; fragments that add up to more fail at the one that crosses. */
    struct ws_session *session = open_session();
    const uint8_t header[] = {0x81, 0xfe, 0x04, 0x01, 0, 0, 0, 0, 'x'};
    ws_session_feed(session, header, sizeof header, 1000);
    EXPECT(failed_with(session, WS_CLOSE_TOO_BIG));
    ws_session_free(session);

    static char part[600];
    memset(part, 'y', sizeof part);
    session = open_session();
    send_frame(session, 0, OP_TEXT, part, sizeof part, 1000);
    EXPECT(!ws_session_ended(session));
    send_frame(session, 1, OP_CONT, part, sizeof part, 1000);
    EXPECT(fake.texts == 0 && failed_with(session, WS_CLOSE_TOO_BIG));
    ws_session_free(session);

    session = open_session();
    send_frame(session, 0, OP_TEXT, part, 512, 1000);
    send_frame(session, 1, OP_CONT, part, 512, 1000);
    EXPECT_EQ_INT(fake.texts, 1);
    EXPECT_EQ_INT(fake.text_length, 1024);
    ws_session_free(session);
}

TEST(ws_message_rate_over_the_limit_fails_with_1008) {
    /* Five messages a second with a burst of one second: five at once pass,
     * the sixth in the same second fails; after a second five pass again. */
    struct ws_session *session = open_session();
    for (int index = 0; index < 5; index++)
        send_text(session, "m", 1000);
    EXPECT_EQ_INT(fake.texts, 5);
    send_text(session, "m", 2000);
    send_text(session, "m", 2000);
    send_text(session, "m", 2000);
    send_text(session, "m", 2000);
    send_text(session, "m", 2000);
    EXPECT_EQ_INT(fake.texts, 10);
    EXPECT(!ws_session_ended(session));
    send_text(session, "m", 2100);
    EXPECT_EQ_INT(fake.texts, 10);
    EXPECT(failed_with(session, WS_CLOSE_POLICY));
    ws_session_free(session);

    /* Refill is continuous: 200 ms bring back one message, 199 ms do not. */
    session = open_session();
    for (int index = 0; index < 5; index++)
        send_text(session, "m", 1000);
    send_text(session, "m", 1200);
    EXPECT_EQ_INT(fake.texts, 6);
    EXPECT(!ws_session_ended(session));
    send_text(session, "m", 1399);
    EXPECT_EQ_INT(fake.texts, 6);
    EXPECT(failed_with(session, WS_CLOSE_POLICY));
    ws_session_free(session);
}

TEST(ws_ping_while_not_reading_fails_with_1008) {
    /* A peer that pings while its transport queue is over twice the send
     * limit would grow it without bound with pongs. */
    struct ws_session *session = open_session();
    fake.queued = 2 * test_limits.send_queue_bytes;
    send_frame(session, 1, OP_PING, "", 0, 1000);
    struct server_frame frame;
    EXPECT(next_frame(&frame) && frame.opcode == OP_PONG);
    fake.queued = 2 * test_limits.send_queue_bytes + 1;
    send_frame(session, 1, OP_PING, "", 0, 1000);
    EXPECT(failed_with(session, WS_CLOSE_POLICY));
    ws_session_free(session);
}

/* ---- Close handshake ------------------------------------------------------------------ */

TEST(ws_peer_close_is_echoed_and_ends_the_session) {
    /* The peer's code and reason come back in our close frame, the
     * transport is closed gracefully and on_end reports the peer's code. */
    struct ws_session *session = open_session();
    send_close(session, 1000, "bye", 1000);
    struct server_frame frame;
    EXPECT(next_frame(&frame));
    EXPECT_EQ_INT(frame_close_code(&frame), 1000);
    EXPECT(frame.length == 5 && memcmp(frame.payload + 2, "bye", 3) == 0);
    EXPECT(fake.ends == 1 && fake.end_code == 1000 && fake.closes == 1 && fake.graceful == 1);
    EXPECT(!ws_session_has_context(session));
    EXPECT_EQ_INT(ws_session_send_text(session, "x", 1), ERR_CLOSED);
    send_text(session, "ignored", 1001);
    ws_session_on_deadline(session, 9999);
    ws_session_on_transport_closed(session);
    EXPECT(fake.texts == 0 && fake.ends == 1 && fake.closes == 1);
    ws_session_free(session);

    session = open_session();
    send_frame(session, 1, OP_CLOSE, "", 0, 1000);
    EXPECT(next_frame(&frame) && frame.opcode == OP_CLOSE && frame.length == 0);
    EXPECT(fake.ends == 1 && fake.end_code == 1005);
    ws_session_free(session);
}

TEST(ws_close_reason_utf8_is_checked_however_the_frame_is_split) {
    /* Fed one byte at a time (wslay alone would check none of a close
     * reason split like this): an invalid reason fails with 1007, a valid
     * one is echoed. */
    uint8_t frame[32];
    size_t length = build_frame(frame, 1, 0, OP_CLOSE, 1, "\x03\xe8\xff\xfe", 4);
    struct ws_session *session = open_session();
    for (size_t index = 0; index < length; index++)
        ws_session_feed(session, frame + index, 1, 1000);
    EXPECT(failed_with(session, WS_CLOSE_INVALID_PAYLOAD));
    ws_session_free(session);

    length = build_frame(frame, 1, 0, OP_CLOSE, 1, "\x03\xe8ok\xe2\x82", 6);
    session = open_session();
    for (size_t index = 0; index < length; index++)
        ws_session_feed(session, frame + index, 1, 1000);
    EXPECT(failed_with(session, WS_CLOSE_INVALID_PAYLOAD));
    ws_session_free(session);

    length = build_frame(frame, 1, 0, OP_CLOSE, 1, "\x03\xe8" "a\xc3\xa9", 5);
    session = open_session();
    for (size_t index = 0; index < length; index++)
        ws_session_feed(session, frame + index, 1, 1000);
    struct server_frame echo;
    EXPECT(next_frame(&echo) && frame_close_code(&echo) == 1000 && echo.length == 5);
    EXPECT(memcmp(echo.payload + 2, "a\xc3\xa9", 3) == 0);
    EXPECT(fake.ends == 1 && fake.end_code == 1000);
    ws_session_free(session);
}

TEST(ws_server_close_waits_for_the_peer_answer) {
    /* ws_session_close sends code and reason, refuses further sends, keeps
     * reading (data is dropped), and ends with its own code once the
     * peer's close arrives. */
    struct ws_session *session = open_session();
    ws_session_close(session, WS_CLOSE_GOING_AWAY, "server shutdown", 1000);
    struct server_frame frame;
    EXPECT(next_frame(&frame));
    EXPECT_EQ_INT(frame_close_code(&frame), 1001);
    EXPECT(frame.length == 17 && memcmp(frame.payload + 2, "server shutdown", 15) == 0);
    EXPECT_EQ_INT(fake.ends, 0);
    EXPECT(fake.deadline != 0 && fake.deadline <= 1000 + WS_CLOSE_WAIT_MS);
    EXPECT_EQ_INT(ws_session_send_text(session, "x", 1), ERR_CLOSED);
    ws_session_close(session, WS_CLOSE_NORMAL, "again", 1000);
    EXPECT(!next_frame(&frame));
    send_text(session, "late", 1100);
    EXPECT_EQ_INT(fake.texts, 0);
    send_close(session, 1000, "", 1200);
    EXPECT(!next_frame(&frame));
    EXPECT(fake.ends == 1 && fake.end_code == 1001 && fake.closes == 1 && fake.graceful == 1);
    EXPECT(!ws_session_has_context(session));
    ws_session_free(session);
}

TEST(ws_close_wait_counts_from_the_close_not_the_last_input) {
    /* A peer silent for a long time (a stalled reader closed with 4008) still
     * gets the whole close wait, counted from the close, to read what is
     * queued before the transport goes. */
    struct ws_session *session = open_session();
    uint64_t later = 1000 + 10 * WS_CLOSE_WAIT_MS;
    ws_session_close(session, WS_CLOSE_RESUME, "fell behind", later);
    ws_session_on_deadline(session, later + 1);
    EXPECT_EQ_INT(fake.ends, 0);
    EXPECT_EQ_INT(fake.closes, 0);
    ws_session_on_deadline(session, later + WS_CLOSE_WAIT_MS);
    EXPECT_EQ_INT(fake.ends, 1);
    EXPECT_EQ_INT(fake.end_code, WS_CLOSE_RESUME);
    ws_session_free(session);
}

TEST(ws_close_wait_times_out) {
    /* A peer that never answers our close: an early timer only re-arms,
     * the real deadline closes the transport at once with our code. */
    struct ws_session *session = open_session();
    ws_session_close(session, WS_CLOSE_RESUME, "fell behind", 1000);
    ws_session_on_deadline(session, 1000 + WS_CLOSE_WAIT_MS - 1);
    EXPECT_EQ_INT(fake.ends, 0);
    EXPECT_EQ_INT(fake.deadline, 1000 + WS_CLOSE_WAIT_MS);
    ws_session_on_deadline(session, 1000 + WS_CLOSE_WAIT_MS);
    EXPECT(fake.ends == 1 && fake.end_code == WS_CLOSE_RESUME && fake.closes == 1);
    EXPECT_EQ_INT(fake.graceful, 0);
    ws_session_free(session);
}

TEST(ws_close_reason_is_cut_at_a_character_boundary) {
    /* 122 ASCII bytes then a 2-byte character: the character does not fit
     * whole in 123 bytes and is left out rather than cut. */
    struct ws_session *session = open_session();
    char reason[200];
    memset(reason, 'r', 122);
    memcpy(reason + 122, "\xc3\xa9tail", 6);
    reason[128] = '\0';
    ws_session_close(session, WS_CLOSE_POLICY, reason, 1000);
    struct server_frame frame;
    EXPECT(next_frame(&frame));
    EXPECT_EQ_INT(frame.length, 2 + 122);
    EXPECT(ws_utf8_valid(frame.payload + 2, frame.length - 2));
    ws_session_free(session);
}

TEST(ws_close_and_send_from_inside_on_text) {
    /* The owner answers and then closes from on_text: the answer goes out
     * before the close frame, the second message in the same read is not
     * delivered, and the peer's close in that read completes the handshake. */
    struct ws_session *session = open_session();
    fake.reply_on_text = 1;
    fake.close_on_text = 1;
    uint8_t stream[64];
    size_t length = build_frame(stream, 1, 0, OP_TEXT, 1, "one", 3);
    length += build_frame(stream + length, 1, 0, OP_TEXT, 1, "two", 3);
    length += build_frame(stream + length, 1, 0, OP_CLOSE, 1, "\x03\xe8", 2);
    ws_session_feed(session, stream, length, 1000);
    EXPECT_EQ_INT(fake.texts, 1);
    EXPECT_EQ_INT(fake.reply_result, 0);
    struct server_frame frame;
    EXPECT(next_frame(&frame) && frame.opcode == OP_TEXT && frame.length == 3);
    EXPECT(next_frame(&frame) && frame_close_code(&frame) == WS_CLOSE_TOKEN_EXPIRED);
    EXPECT(!next_frame(&frame));
    EXPECT(fake.ends == 1 && fake.end_code == WS_CLOSE_TOKEN_EXPIRED && fake.graceful == 1);
    EXPECT(!ws_session_has_context(session));
    ws_session_free(session);
}

/* ---- Keepalive ------------------------------------------------------------------------ */

TEST(ws_keepalive_pings_after_silence_and_a_byte_postpones_it) {
    /* Silence for the interval sends one ping; any byte from the peer moves
     * the next one; the timer is not re-armed for every read. */
    struct ws_session *session = open_session();
    EXPECT_EQ_INT(fake.deadline, 2000);
    ws_session_on_deadline(session, 2000);
    struct server_frame frame;
    EXPECT(next_frame(&frame) && frame.opcode == OP_PING && frame.fin && !frame.masked);
    EXPECT_EQ_INT(ws_session_stats(session)->pings_sent, 1);
    EXPECT_EQ_INT(fake.deadline, 2500);
    EXPECT(!ws_session_has_context(session));
    int calls = fake.deadline_calls;
    send_frame(session, 1, OP_PONG, "", 0, 2100);
    send_text(session, "a", 2200);
    EXPECT_EQ_INT(fake.deadline_calls, calls);
    ws_session_on_deadline(session, 2500);
    EXPECT(!next_frame(&frame));
    EXPECT_EQ_INT(fake.deadline, 3200);
    ws_session_on_deadline(session, 3200);
    EXPECT(next_frame(&frame) && frame.opcode == OP_PING);
    EXPECT_EQ_INT(ws_session_stats(session)->pings_sent, 2);
    EXPECT(!ws_session_ended(session));
    ws_session_free(session);
}

TEST(ws_silent_peer_is_dead_after_interval_plus_pong_timeout) {
    /* No byte for ping_interval + pong_timeout: the transport is closed at
     * once, no close frame, on_end 1006. */
    struct ws_session *session = open_session();
    ws_session_on_deadline(session, 2000);
    struct server_frame frame;
    EXPECT(next_frame(&frame) && frame.opcode == OP_PING);
    ws_session_on_deadline(session, 2499);
    EXPECT_EQ_INT(fake.ends, 0);
    ws_session_on_deadline(session, 2500);
    EXPECT(fake.ends == 1 && fake.end_code == WS_CLOSE_ABNORMAL && fake.closes == 1);
    EXPECT_EQ_INT(fake.graceful, 0);
    EXPECT(!next_frame(&frame));
    ws_session_free(session);
}

/* ---- Sending and backpressure ------------------------------------------------------------ */

TEST(ws_send_text_frames_unmasked_text) {
    /* Short, 16-bit and 64-bit length forms, each one unmasked final text
     * frame, counted in the stats; no context is kept after a send. */
    static char big[70000];
    memset(big, 'b', sizeof big);
    struct ws_limits limits = test_limits;
    limits.send_queue_bytes = 1 << 20;
    struct ws_session *session = open_with(&limits, 1000);
    EXPECT_EQ_INT(ws_session_send_text(session, "hello", 5), 0);
    EXPECT_EQ_INT(ws_session_send_text(session, big, 300), 0);
    EXPECT_EQ_INT(ws_session_send_text(session, big, sizeof big), 0);
    size_t lengths[3] = {5, 300, sizeof big};
    for (int index = 0; index < 3; index++) {
        struct server_frame frame;
        EXPECT(next_frame(&frame));
        EXPECT(frame.fin && frame.opcode == OP_TEXT && !frame.masked && frame.rsv == 0);
        EXPECT_EQ_INT(frame.length, lengths[index]);
    }
    EXPECT_EQ_INT(ws_session_stats(session)->messages_sent, 3);
    EXPECT(!ws_session_has_context(session));
    ws_session_free(session);
}

TEST(ws_send_queue_refusal_and_on_writable) {
    /* Over the limit a send writes nothing and returns ERR_AGAIN; draining
     * to half the limit is not enough, below half calls on_writable once. */
    struct ws_session *session = open_session();
    fake.queued = 4096;
    EXPECT_EQ_INT(ws_session_send_text(session, "a", 1), 0);
    fake.queued = 4097;
    size_t written = fake.out_length;
    EXPECT_EQ_INT(ws_session_send_text(session, "b", 1), ERR_AGAIN);
    EXPECT_EQ_INT(fake.out_length, written);
    fake.queued = 2048;
    ws_session_on_drained(session, 1100);
    EXPECT_EQ_INT(fake.writables, 0);
    fake.queued = 2047;
    ws_session_on_drained(session, 1200);
    EXPECT_EQ_INT(fake.writables, 1);
    ws_session_on_drained(session, 1300);
    EXPECT_EQ_INT(fake.writables, 1);
    EXPECT_EQ_INT(ws_session_send_text(session, "c", 1), 0);
    fake.queued = 5000;
    fake.out_read = fake.out_length;
    send_frame(session, 1, OP_PING, "", 0, 1400);
    struct server_frame frame;
    EXPECT(next_frame(&frame) && frame.opcode == OP_PONG);
    ws_session_free(session);
}

TEST(ws_write_failure_ends_with_1006) {
    /* A transport that refuses bytes is broken: the send reports ERR_IO and
     * the session ends at once; so does a pong that cannot be written. */
    struct ws_session *session = open_session();
    fake.write_fails = 1;
    EXPECT_EQ_INT(ws_session_send_text(session, "x", 1), ERR_IO);
    EXPECT(fake.ends == 1 && fake.end_code == WS_CLOSE_ABNORMAL && fake.graceful == 0);
    EXPECT(!ws_session_has_context(session));
    ws_session_free(session);

    session = open_session();
    fake.write_fails = 1;
    send_frame(session, 1, OP_PING, "p", 1, 1000);
    EXPECT(fake.ends == 1 && fake.end_code == WS_CLOSE_ABNORMAL && fake.closes == 1);
    ws_session_free(session);

    session = open_session();
    fake.reply_on_text = 1;
    fake.write_fails = 1;
    uint8_t stream[32];
    size_t length = build_frame(stream, 1, 0, OP_TEXT, 1, "one", 3);
    length += build_frame(stream + length, 1, 0, OP_TEXT, 1, "two", 3);
    ws_session_feed(session, stream, length, 1000);
    EXPECT(fake.texts == 1 && fake.reply_result == ERR_IO);
    EXPECT(fake.ends == 1 && fake.callbacks_after_end == 0 && !ws_session_has_context(session));
    ws_session_free(session);
}

TEST(ws_transport_closed_ends_with_1006_once) {
    /* The transport going away mid-frame: on_end 1006, io->close once,
     * later calls are ignored. */
    struct ws_session *session = open_session();
    const uint8_t partial[] = {0x81, 0x85, 1};
    ws_session_feed(session, partial, sizeof partial, 1000);
    EXPECT(ws_session_has_context(session));
    ws_session_on_transport_closed(session);
    ws_session_on_transport_closed(session);
    EXPECT(fake.ends == 1 && fake.end_code == WS_CLOSE_ABNORMAL && fake.closes == 1);
    EXPECT(!ws_session_has_context(session));
    EXPECT_EQ_INT(fake.out_length, 0);
    ws_session_free(session);
}

/* ---- Memory ------------------------------------------------------------------------------ */

TEST(ws_context_is_dropped_when_idle_and_recreated) {
    /* Partial header, partial payload, open fragmented message: context
     * held; every complete exchange: context gone; a send or a ping creates
     * one only for its duration. */
    struct ws_session *session = open_session();
    uint8_t frame[32];
    size_t length = build_frame(frame, 1, 0, OP_TEXT, 1, "abc", 3);
    ws_session_feed(session, frame, 1, 1000);
    EXPECT(ws_session_has_context(session));
    ws_session_feed(session, frame + 1, 6, 1000);
    EXPECT(ws_session_has_context(session));
    ws_session_feed(session, frame + 7, length - 7, 1000);
    EXPECT(!ws_session_has_context(session));
    EXPECT_STR(fake.text, "abc");
    send_frame(session, 0, OP_TEXT, "x", 1, 1000);
    EXPECT(ws_session_has_context(session));
    send_frame(session, 1, OP_PING, "", 0, 1000);
    EXPECT(ws_session_has_context(session));
    send_frame(session, 1, OP_CONT, "y", 1, 1000);
    EXPECT(!ws_session_has_context(session));
    EXPECT_STR(fake.text, "xy");
    EXPECT_EQ_INT(ws_session_send_text(session, "out", 3), 0);
    EXPECT(!ws_session_has_context(session));
    send_text(session, "again", 1001);
    EXPECT(!ws_session_has_context(session));
    EXPECT_STR(fake.text, "again");
    ws_session_free(session);
}

TEST(ws_survives_every_allocation_failing_in_turn) {
    /* Each of the session's allocations fails in turn: open reports
     * ERR_NOMEM, or the session delivers the message, or it fails with 1011
     * and a close frame; never a crash or a leak (ASan checks the latter). */
    static char part[700];
    for (size_t index = 0; index < sizeof part; index++)
        part[index] = (char)('a' + index % 26);
    int completed = 0;
    for (long budget = 0; budget < 64 && !completed; budget++) {
        mem_fail_after(budget);
        struct ws_session *session = open_session();
        if (session == NULL) {
            mem_fail_after(-1);
            EXPECT_EQ_INT(budget, 0);
            continue;
        }
        send_frame(session, 0, OP_TEXT, part, 200, 1000);
        send_frame(session, 0, OP_CONT, part + 200, 200, 1000);
        send_frame(session, 1, OP_CONT, part + 400, 300, 1000);
        int sent = ws_session_send_text(session, "reply", 5);
        mem_fail_after(-1);
        if (fake.texts == 1) {
            EXPECT(fake.text_length == 700 && memcmp(fake.text, part, 700) == 0);
            EXPECT(!ws_session_ended(session) && sent == 0);
            completed = 1;
        } else {
            EXPECT(failed_with(session, WS_CLOSE_INTERNAL));
            EXPECT_EQ_INT(sent, ERR_CLOSED);
        }
        ws_session_free(session);
    }
    EXPECT(completed);
}

TEST(ws_free_discards_a_session_in_any_state) {
    /* Freeing mid-frame or mid-close releases everything (ASan checks). */
    struct ws_session *session = open_session();
    send_frame(session, 0, OP_TEXT, "abc", 3, 1000);
    ws_session_feed(session, "\x81", 1, 1000);
    ws_session_free(session);
    session = open_session();
    ws_session_close(session, WS_CLOSE_GOING_AWAY, NULL, 1000);
    EXPECT(ws_session_has_context(session));
    ws_session_free(session);
    ws_session_free(NULL);
}
