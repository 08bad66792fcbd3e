/*
 * smtp_test.c - the SMTP client against a scripted relay on 127.0.0.1 in the
 * same libuv loop (tests/unit/net/loop_server.h), with STARTTLS through the
 * throwaway test CA; and the message builder on its own.
 */
#include "../../../src/base/base64.h"
#include "../../../src/base/buf.h"
#include "../../../src/base/clock.h"
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "../../../src/net/outbound.h"
#include "../../../src/notify/smtp.h"
#include "../net/loop_server.h"
#include "../test.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

/* The relay's script and what it saw. */
struct fake_relay {
    const char *greeting;         /* first reply */
    const char *ehlo_plain;       /* EHLO reply before TLS */
    const char *ehlo_tls;         /* EHLO reply inside TLS */
    const char *starttls_reply;   /* reply to STARTTLS (NULL: "220 go\r\n") */
    const char *rcpt_reply;       /* reply to RCPT TO (NULL: "250 ok\r\n") */
    struct tls_server_config *tls; /* for STARTTLS */
    struct buf line;              /* the command line being read */
    struct buf transcript;        /* "C:<line>\n" per command, "T" prefix inside TLS */
    struct buf data;              /* DATA lines as on the wire (still dot-stuffed) */
    int in_data;                  /* between 354 and "." */
    int login_step;               /* AUTH LOGIN: 1 user expected, 2 password expected */
};

/* What the client reported. */
struct outcome {
    int done_calls;        /* done() calls */
    int status;            /* its status */
    bool permanent;        /* its permanent flag */
    char error[512];       /* its sentence */
    struct loop_server *server; /* stopped when done fires */
};

static void relay_reply(struct loop_peer *peer, const char *text) {
    loop_peer_send_text(peer, text);
}

static void relay_on_accept(void *arg, struct loop_peer *peer) {
    struct fake_relay *relay = arg;
    relay_reply(peer, relay->greeting != NULL ? relay->greeting : "220 fake ESMTP\r\n");
}

static void relay_on_command(struct fake_relay *relay, struct loop_peer *peer, const char *line) {
    if (relay->in_data) {
        if (strcmp(line, ".") == 0) {
            relay->in_data = 0;
            relay_reply(peer, "250 2.0.0 queued\r\n");
            return;
        }
        if (buf_printf(&relay->data, "%s\r\n", line) != 0) loop_peer_close(peer);
        return;
    }
    if (buf_printf(&relay->transcript, "%sC:%s\n", peer->tls != NULL ? "T" : "", line) != 0) {
        loop_peer_close(peer);
        return;
    }
    if (relay->login_step == 1) {
        relay->login_step = 2;
        relay_reply(peer, "334 UGFzc3dvcmQ6\r\n");
    } else if (relay->login_step == 2) {
        relay->login_step = 0;
        relay_reply(peer, "235 2.7.0 ok\r\n");
    } else if (strncmp(line, "EHLO ", 5) == 0) {
        relay_reply(peer, peer->tls != NULL ? relay->ehlo_tls : relay->ehlo_plain);
    } else if (strcmp(line, "STARTTLS") == 0) {
        relay_reply(peer, relay->starttls_reply != NULL ? relay->starttls_reply : "220 go\r\n");
        loop_peer_start_tls(peer, relay->tls);
    } else if (strncmp(line, "AUTH PLAIN ", 11) == 0) {
        relay_reply(peer, "235 2.7.0 ok\r\n");
    } else if (strcmp(line, "AUTH LOGIN") == 0) {
        relay->login_step = 1;
        relay_reply(peer, "334 VXNlcm5hbWU6\r\n");
    } else if (strncmp(line, "MAIL FROM:", 10) == 0) {
        relay_reply(peer, "250 2.1.0 ok\r\n");
    } else if (strncmp(line, "RCPT TO:", 8) == 0) {
        relay_reply(peer, relay->rcpt_reply != NULL ? relay->rcpt_reply : "250 2.1.5 ok\r\n");
    } else if (strcmp(line, "DATA") == 0) {
        relay->in_data = 1;
        relay_reply(peer, "354 go ahead\r\n");
    } else if (strcmp(line, "QUIT") == 0) {
        relay_reply(peer, "221 bye\r\n");
    } else {
        relay_reply(peer, "500 what\r\n");
    }
}

static void relay_on_data(void *arg, struct loop_peer *peer, const char *data, size_t length) {
    struct fake_relay *relay = arg;
    for (size_t index = 0; index < length; index++) {
        if (data[index] != '\n') {
            if (buf_append(&relay->line, &data[index], 1) != 0) {
                loop_peer_close(peer); /* an injected allocation failure: end at once */
                return;
            }
            continue;
        }
        size_t line = relay->line.length;
        if (line > 0 && relay->line.data[line - 1] == '\r') line--;
        if (relay->line.data == NULL) buf_append(&relay->line, "", 0);
        if (relay->line.data == NULL) return;
        relay->line.data[line] = '\0';
        relay_on_command(relay, peer, relay->line.data);
        buf_reset(&relay->line);
    }
}

static const struct loop_server_ops relay_ops = {
    .on_accept = relay_on_accept,
    .on_data = relay_on_data,
};

static void outcome_done(void *arg, int status, bool permanent, const char *error) {
    struct outcome *outcome = arg;
    outcome->done_calls++;
    outcome->status = status;
    outcome->permanent = permanent;
    snprintf(outcome->error, sizeof outcome->error, "%s", error);
    loop_server_stop_accepting(outcome->server);
}

static const char EHLO_STARTTLS[] = "250-fake.test greets you\r\n250-PIPELINING\r\n"
                                    "250-SIZE 10240000\r\n250-STARTTLS\r\n250 8BITMIME\r\n";
static const char EHLO_AUTH_BOTH[] = "250-fake.test\r\n250-SIZE 10240000\r\n"
                                     "250-AUTH LOGIN PLAIN\r\n250 8BITMIME\r\n";

static const struct smtp_message default_message = {
    .to = "bob@example.org",
    .subject = "Dentist at 10:00",
    .body = "Bring the forms.\n",
    .message_id = "<r-1@docket>",
};

static struct smtp_relay relay_settings(uint16_t port) {
    return (struct smtp_relay){
        .host = "localhost",
        .port = port,
        .starttls = true,
        .username = "alice",
        .password = "s3cret",
        .from = "docket@example.org",
        .timeout_ms = 5000,
        .helo_name = "client.test",
    };
}

/* Runs one send against the fake relay. `tweak` may change the relay settings.
 * Returns smtp_send's code; the outcome and the relay's records are filled in. */
static int run_send(struct fake_relay *relay, struct outcome *outcome,
                    const struct smtp_message *message, void (*tweak)(struct smtp_relay *)) {
    struct tls_server_config config;
    if (loop_tls_server_config(&config, "localhost") != 0) return ERR_TLS;
    relay->tls = &config;
    buf_init(&relay->line, 4096);
    buf_init(&relay->transcript, 64 * 1024);
    buf_init(&relay->data, 1024 * 1024);
    char path[1024];
    char error[256];
    struct outbound_trust *trust = NULL;
    int rc = outbound_trust_open(&trust, loop_tls_path("ca.pem", path, sizeof path), error,
                                 sizeof error);
    uv_loop_t loop;
    uv_loop_init(&loop);
    uint16_t port = 0;
    if (rc == 0) rc = loop_server_start(&outcome->server, &loop, NULL, &relay_ops, relay, &port);
    struct smtp_relay settings = relay_settings(port);
    if (tweak != NULL) tweak(&settings);
    if (rc == 0) rc = smtp_send(&loop, trust, &settings, message, outcome_done, outcome);
    int done_inside_send = outcome->done_calls;
    if (rc != 0) loop_server_stop(outcome->server);
    int run = loop_run_bounded(&loop, 10);
    int closed = uv_loop_close(&loop);
    loop_server_free(outcome->server);
    outbound_trust_close(trust);
    tls_server_config_free(&config);
    buf_free(&relay->line);
    if (run != 0 || closed != 0 || done_inside_send != 0) return ERR_BUSY;
    return rc;
}

static void relay_free(struct fake_relay *relay) {
    buf_free(&relay->transcript);
    buf_free(&relay->data);
}

static bool has(const struct buf *buf, const char *text) {
    return buf->data != NULL && strstr(buf->data, text) != NULL;
}

TEST(smtp_starttls_auth_plain_delivers) {
    /* Proves the whole conversation: greeting, EHLO, STARTTLS, EHLO again inside TLS,
     * AUTH PLAIN with base64("\0alice\0s3cret") inside TLS, MAIL, RCPT, DATA, the
     * message, QUIT, and done(0) exactly once. */
    struct fake_relay relay = {.ehlo_plain = EHLO_STARTTLS, .ehlo_tls = EHLO_AUTH_BOTH};
    struct outcome outcome = {0};
    EXPECT_EQ_INT(run_send(&relay, &outcome, &default_message, NULL), 0);
    const char *expected = "C:EHLO client.test\nC:STARTTLS\nTC:EHLO client.test\n"
                           "TC:AUTH PLAIN AGFsaWNlAHMzY3JldA==\n";
    bool prefix = relay.transcript.data != NULL &&
                  strncmp(relay.transcript.data, expected, strlen(expected)) == 0;
    bool envelope = has(&relay.transcript, "TC:MAIL FROM:<docket@example.org> SIZE=") &&
                    has(&relay.transcript, "TC:RCPT TO:<bob@example.org>\nTC:DATA\nTC:QUIT\n");
    if (!prefix || !envelope) fprintf(stderr, "    transcript:\n%s", relay.transcript.data);
    bool message = has(&relay.data, "Subject: Dentist at 10:00\r\n") &&
                   has(&relay.data, "Message-ID: <r-1@docket>\r\n") &&
                   has(&relay.data, "\r\n\r\nBring the forms.\r\n");
    relay_free(&relay);
    EXPECT(prefix);
    EXPECT(envelope);
    EXPECT(message);
    EXPECT_EQ_INT(outcome.done_calls, 1);
    EXPECT_EQ_INT(outcome.status, 0);
    EXPECT(!outcome.permanent);
}

TEST(smtp_auth_login_when_only_login_offered) {
    /* Proves AUTH LOGIN is used when the relay offers only LOGIN: the user name and
     * password go base64-encoded in answer to the two 334 prompts. */
    struct fake_relay relay = {.ehlo_plain = EHLO_STARTTLS,
                               .ehlo_tls = "250-fake.test\r\n250 AUTH=LOGIN\r\n"};
    struct outcome outcome = {0};
    EXPECT_EQ_INT(run_send(&relay, &outcome, &default_message, NULL), 0);
    bool login = has(&relay.transcript, "TC:AUTH LOGIN\nTC:YWxpY2U=\nTC:czNjcmV0\nTC:MAIL FROM:");
    bool no_plain = !has(&relay.transcript, "AUTH PLAIN");
    if (!login) fprintf(stderr, "    transcript:\n%s", relay.transcript.data);
    relay_free(&relay);
    EXPECT(login);
    EXPECT(no_plain);
    EXPECT_EQ_INT(outcome.done_calls, 1);
    EXPECT_EQ_INT(outcome.status, 0);
}

TEST(smtp_starttls_required_but_not_offered_never_sends_password) {
    /* Proves that when STARTTLS is required and not offered the send fails before
     * AUTH and MAIL: neither the password nor its base64 ever reach the relay. */
    struct fake_relay relay = {.ehlo_plain = EHLO_AUTH_BOTH, .ehlo_tls = EHLO_AUTH_BOTH};
    struct outcome outcome = {0};
    EXPECT_EQ_INT(run_send(&relay, &outcome, &default_message, NULL), 0);
    bool leaked = has(&relay.transcript, "AUTH") || has(&relay.transcript, "czNjcmV0") ||
                  has(&relay.transcript, "s3cret") || has(&relay.transcript, "MAIL");
    relay_free(&relay);
    EXPECT(!leaked);
    EXPECT_EQ_INT(outcome.done_calls, 1);
    EXPECT_EQ_INT(outcome.status, ERR_TLS);
    EXPECT(!outcome.permanent);
    EXPECT(strstr(outcome.error, "STARTTLS") != NULL);
}

TEST(smtp_auth_offered_only_before_tls_is_not_used) {
    /* Proves only the capabilities announced inside TLS count (RFC 3207 4.2): AUTH
     * offered before STARTTLS but not after fails permanently, credentials unsent. */
    struct fake_relay relay = {
        .ehlo_plain = "250-fake.test\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n",
        .ehlo_tls = "250-fake.test\r\n250 8BITMIME\r\n"};
    struct outcome outcome = {0};
    EXPECT_EQ_INT(run_send(&relay, &outcome, &default_message, NULL), 0);
    bool upgraded = has(&relay.transcript, "C:STARTTLS\nTC:EHLO client.test\n");
    bool leaked = has(&relay.transcript, "AUTH") || has(&relay.transcript, "MAIL");
    relay_free(&relay);
    EXPECT(upgraded);
    EXPECT(!leaked);
    EXPECT_EQ_INT(outcome.status, ERR_UNSUPPORTED);
    EXPECT(outcome.permanent);
}

static void tweak_plaintext(struct smtp_relay *relay) {
    relay->starttls = false;
}

TEST(smtp_auth_without_tls_is_refused) {
    /* Proves that with STARTTLS switched off but AUTH configured, the client refuses
     * to send credentials in the clear (and sends no mail). */
    struct fake_relay relay = {.ehlo_plain = EHLO_AUTH_BOTH, .ehlo_tls = EHLO_AUTH_BOTH};
    struct outcome outcome = {0};
    EXPECT_EQ_INT(run_send(&relay, &outcome, &default_message, tweak_plaintext), 0);
    bool leaked = has(&relay.transcript, "AUTH") || has(&relay.transcript, "MAIL");
    relay_free(&relay);
    EXPECT(!leaked);
    EXPECT_EQ_INT(outcome.status, ERR_DENIED);
    EXPECT_EQ_INT(outcome.done_calls, 1);
}

static void tweak_no_auth_plaintext(struct smtp_relay *relay) {
    relay->starttls = false;
    relay->username = NULL;
}

TEST(smtp_plaintext_without_auth_delivers) {
    /* Proves a relay without TLS or AUTH (a local MTA) gets the mail directly. */
    struct fake_relay relay = {.ehlo_plain = "250 fake.test\r\n", .ehlo_tls = ""};
    struct outcome outcome = {0};
    EXPECT_EQ_INT(run_send(&relay, &outcome, &default_message, tweak_no_auth_plaintext), 0);
    bool direct = has(&relay.transcript, "C:EHLO client.test\nC:MAIL FROM:<docket@example.org>\n");
    relay_free(&relay);
    EXPECT(direct);
    EXPECT_EQ_INT(outcome.status, 0);
}

TEST(smtp_rcpt_550_is_permanent_with_reply_in_sentence) {
    /* Proves a 5xx reply fails the send as permanent, naming the step and the reply. */
    struct fake_relay relay = {.ehlo_plain = EHLO_STARTTLS,
                               .ehlo_tls = EHLO_AUTH_BOTH,
                               .rcpt_reply = "550 5.1.1 no such user\r\n"};
    struct outcome outcome = {0};
    EXPECT_EQ_INT(run_send(&relay, &outcome, &default_message, NULL), 0);
    bool no_data = !has(&relay.transcript, "DATA");
    relay_free(&relay);
    EXPECT(no_data);
    EXPECT_EQ_INT(outcome.done_calls, 1);
    EXPECT_EQ_INT(outcome.status, ERR_DENIED);
    EXPECT(outcome.permanent);
    EXPECT_STR(outcome.error, "RCPT TO: 550 5.1.1 no such user");
}

TEST(smtp_421_greeting_is_transient) {
    /* Proves a 4xx reply (421 at the greeting) is a transient failure. */
    struct fake_relay relay = {.greeting = "421 4.3.2 busy, try later\r\n",
                               .ehlo_plain = EHLO_STARTTLS,
                               .ehlo_tls = EHLO_AUTH_BOTH};
    struct outcome outcome = {0};
    EXPECT_EQ_INT(run_send(&relay, &outcome, &default_message, NULL), 0);
    relay_free(&relay);
    EXPECT_EQ_INT(outcome.done_calls, 1);
    EXPECT_EQ_INT(outcome.status, ERR_AGAIN);
    EXPECT(!outcome.permanent);
    EXPECT_STR(outcome.error, "greeting: 421 4.3.2 busy, try later");
}

TEST(smtp_multiline_ehlo_size_limit_is_read) {
    /* Proves capabilities are read from every line of a multi-line EHLO reply: a
     * SIZE below the message size fails the send before MAIL FROM. */
    struct fake_relay relay = {.ehlo_plain = EHLO_STARTTLS,
                               .ehlo_tls = "250-fake.test\r\n250-AUTH PLAIN\r\n250-SIZE 100\r\n"
                                           "250 HELP\r\n"};
    struct outcome outcome = {0};
    EXPECT_EQ_INT(run_send(&relay, &outcome, &default_message, NULL), 0);
    bool authenticated = has(&relay.transcript, "TC:AUTH PLAIN");
    bool mailed = has(&relay.transcript, "MAIL");
    relay_free(&relay);
    EXPECT(authenticated);
    EXPECT(!mailed);
    EXPECT_EQ_INT(outcome.status, ERR_LIMIT);
    EXPECT(outcome.permanent);
}

TEST(smtp_malformed_multiline_reply_fails) {
    /* Proves a multi-line reply whose lines carry different codes is a protocol error. */
    struct fake_relay relay = {.ehlo_plain = "250-fake.test\r\n251 STARTTLS\r\n",
                               .ehlo_tls = EHLO_AUTH_BOTH};
    struct outcome outcome = {0};
    EXPECT_EQ_INT(run_send(&relay, &outcome, &default_message, NULL), 0);
    relay_free(&relay);
    EXPECT_EQ_INT(outcome.status, ERR_PARSE);
    EXPECT(!outcome.permanent);
}

TEST(smtp_data_before_tls_after_starttls_is_rejected) {
    /* Proves plaintext the relay sends after its 220 to STARTTLS (a command
     * injection in the style of CVE-2011-0411) fails the send instead of being
     * read as a reply. */
    struct fake_relay relay = {.ehlo_plain = EHLO_STARTTLS,
                               .ehlo_tls = EHLO_AUTH_BOTH,
                               .starttls_reply = "220 go\r\n250 injected\r\n"};
    struct outcome outcome = {0};
    EXPECT_EQ_INT(run_send(&relay, &outcome, &default_message, NULL), 0);
    bool authenticated = has(&relay.transcript, "AUTH");
    relay_free(&relay);
    EXPECT(!authenticated);
    EXPECT_EQ_INT(outcome.status, ERR_PARSE);
}

TEST(smtp_dot_stuffing_on_the_wire) {
    /* Proves lines starting with "." are doubled on the wire (a lone "." line would
     * otherwise end the message early) and the relay stores the whole body. */
    struct smtp_message message = default_message;
    message.body = "first\n.\n.foo\nlast\n";
    struct fake_relay relay = {.ehlo_plain = EHLO_STARTTLS, .ehlo_tls = EHLO_AUTH_BOTH};
    struct outcome outcome = {0};
    EXPECT_EQ_INT(run_send(&relay, &outcome, &message, NULL), 0);
    bool stuffed = has(&relay.data, "\r\n\r\nfirst\r\n..\r\n..foo\r\nlast\r\n");
    relay_free(&relay);
    EXPECT(stuffed);
    EXPECT_EQ_INT(outcome.status, 0);
}

TEST(smtp_header_injection_and_bad_addresses_rejected_before_connecting) {
    /* Proves CR/LF in a header value, malformed addresses and Message-IDs are refused
     * with ERR_INVAL by smtp_send itself: done never fires, no connection is made. */
    struct smtp_message bad[6];
    for (int index = 0; index < 6; index++) bad[index] = default_message;
    bad[0].subject = "Hi\r\nBcc: victim@example.org";
    bad[1].subject = "Hi\nthere";
    bad[2].to = "bob@example.org\r\nRCPT TO:<x@example.org>";
    bad[3].to = "bob@@example.org";
    bad[4].message_id = "<r 1@docket>";
    bad[5].to = "<bob@example.org>";
    for (int index = 0; index < 6; index++) {
        struct fake_relay relay = {.ehlo_plain = EHLO_STARTTLS, .ehlo_tls = EHLO_AUTH_BOTH};
        struct outcome outcome = {0};
        EXPECT_EQ_INT(run_send(&relay, &outcome, &bad[index], NULL), ERR_INVAL);
        relay_free(&relay);
        EXPECT_EQ_INT(outcome.done_calls, 0);
    }
}

TEST(smtp_address_validation) {
    /* Proves the address check accepts ordinary dot-atom addresses and refuses the
     * shapes that would break the envelope or the header. */
    EXPECT(smtp_address_valid("a@b"));
    EXPECT(smtp_address_valid("first.last+tag@mail.example.org"));
    EXPECT(smtp_address_valid("o'neil@example.org"));
    EXPECT(!smtp_address_valid(""));
    EXPECT(!smtp_address_valid("@example.org"));
    EXPECT(!smtp_address_valid("bob@"));
    EXPECT(!smtp_address_valid("bob"));
    EXPECT(!smtp_address_valid(".bob@example.org"));
    EXPECT(!smtp_address_valid("bo..b@example.org"));
    EXPECT(!smtp_address_valid("bob@exa mple.org"));
    EXPECT(!smtp_address_valid("bob@-example.org"));
    EXPECT(!smtp_address_valid("bob@example..org"));
    EXPECT(!smtp_address_valid("bob>@example.org"));
    EXPECT(!smtp_address_valid("b\xc3\xb6@example.org"));
}

static int build(const struct smtp_message *message, int64_t seconds, struct buf *out) {
    buf_init(out, SMTP_DATA_BYTES_MAX);
    return smtp_message_build("docket@example.org", message, seconds, out);
}

TEST(smtp_message_headers_and_date) {
    /* Proves the header block: RFC 5322 Date in UTC (checked against Python's
     * email.utils.formatdate for 1795485172), From, To, Message-ID, MIME headers,
     * blank line, body, final dot. */
    struct buf out;
    EXPECT_EQ_INT(build(&default_message, 1795485172, &out), 0);
    const char *expected = "Date: Tue, 24 Nov 2026 01:52:52 +0000\r\n"
                           "From: docket@example.org\r\nTo: bob@example.org\r\n"
                           "Subject: Dentist at 10:00\r\nMessage-ID: <r-1@docket>\r\n"
                           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                           "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                           "Bring the forms.\r\n.\r\n";
    bool same = out.data != NULL && strcmp(out.data, expected) == 0;
    if (!same) fprintf(stderr, "    built:\n%s", out.data);
    buf_free(&out);
    EXPECT(same);
    EXPECT_EQ_INT(build(&default_message, 0, &out), 0);
    same = strncmp(out.data, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n", 39) == 0;
    buf_free(&out);
    EXPECT(same);
}

/* Decodes every "=?UTF-8?B?...?=" word of the Subject header and concatenates them. */
static int decode_subject(const char *message, char *out, size_t out_size, size_t *word_max) {
    const char *cursor = strstr(message, "Subject:");
    const char *end = strstr(message, "\r\nMessage-ID:");
    size_t used = 0;
    *word_max = 0;
    while (cursor != NULL && (cursor = strstr(cursor, "=?UTF-8?B?")) != NULL && cursor < end) {
        const char *close = strstr(cursor + 10, "?=");
        if (close == NULL) return ERR_PARSE;
        size_t word = (size_t)(close + 2 - cursor);
        if (word > *word_max) *word_max = word;
        size_t got = 0;
        int rc = base64_decode(BASE64_STANDARD, cursor + 10, (size_t)(close - cursor - 10),
                               out + used, out_size - used - 1, &got);
        if (rc != 0) return rc;
        used += got;
        cursor = close + 2;
    }
    out[used] = '\0';
    return 0;
}

TEST(smtp_non_ascii_subject_is_rfc2047_encoded) {
    /* Proves a UTF-8 subject becomes RFC 2047 B-encoded words of at most 75
     * characters, folded, never splitting a character, decoding back to the
     * original; and no raw 8-bit byte stays in the headers. */
    const char *subjects[] = {
        "Zahnarzt \xe2\x80\x93 M\xc3\xbcller \xf0\x9f\xa6\xb7",
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 and a long tail to force several encoded words",
    };
    for (int index = 0; index < 2; index++) {
        struct smtp_message message = default_message;
        message.subject = subjects[index];
        struct buf out;
        EXPECT_EQ_INT(build(&message, 0, &out), 0);
        char decoded[2048];
        size_t word_max = 0;
        int rc = decode_subject(out.data, decoded, sizeof decoded, &word_max);
        const char *header_end = strstr(out.data, "\r\n\r\n");
        bool seven_bit = true;
        for (const char *cursor = out.data; cursor < header_end; cursor++)
            seven_bit = seven_bit && (unsigned char)*cursor < 0x80;
        bool folded = index == 0 || strstr(out.data, "?=\r\n =?UTF-8?B?") != NULL;
        buf_free(&out);
        EXPECT_EQ_INT(rc, 0);
        EXPECT_STR(decoded, subjects[index]);
        EXPECT(word_max <= 75);
        EXPECT(seven_bit);
        EXPECT(folded);
    }
}

TEST(smtp_body_is_quoted_printable) {
    /* Proves the body encoding (RFC 2045 6.7): UTF-8 and "=" escaped, trailing
     * spaces escaped, lines of at most 76 characters through soft breaks, CRLF line
     * ends whether the caller used \n or \r\n. */
    struct smtp_message message = default_message;
    message.body = "Gr\xc3\xbc\xc3\x9f" "e = hi \r\n"
                   "0123456789012345678901234567890123456789012345678901234567890123456789"
                   "0123456789\n";
    struct buf out;
    EXPECT_EQ_INT(build(&message, 0, &out), 0);
    const char *body = strstr(out.data, "\r\n\r\n") + 4;
    const char *expected = "Gr=C3=BC=C3=9Fe =3D hi=20\r\n"
                           "012345678901234567890123456789012345678901234567890123456789012345678"
                           "901234=\r\n56789\r\n.\r\n";
    bool same = strcmp(body, expected) == 0;
    if (!same) fprintf(stderr, "    body:\n%s", body);
    buf_free(&out);
    EXPECT(same);
}

static void tweak_short_timeout(struct smtp_relay *relay) {
    relay->timeout_ms = 200;
}

TEST(smtp_silent_relay_times_out_transiently) {
    /* Proves a relay that never greets ends the send at the deadline, transient. */
    struct fake_relay relay = {.greeting = "", .ehlo_plain = EHLO_STARTTLS,
                               .ehlo_tls = EHLO_AUTH_BOTH};
    struct outcome outcome = {0};
    EXPECT_EQ_INT(run_send(&relay, &outcome, &default_message, tweak_short_timeout), 0);
    relay_free(&relay);
    EXPECT_EQ_INT(outcome.done_calls, 1);
    EXPECT_EQ_INT(outcome.status, ERR_TIMEOUT);
    EXPECT(!outcome.permanent);
    EXPECT(strstr(outcome.error, "greeting") != NULL);
}

TEST(smtp_allocation_failures_report_once_without_leaks) {
    /* Proves that with every allocation failing in turn (the client and the fake relay
     * share the seam) smtp_send either refuses with ERR_NOMEM or reports exactly once,
     * until a budget is large enough for the whole STARTTLS + AUTH conversation to
     * succeed; the sanitizer build checks nothing leaks. */
    int succeeded = 0;
    long budget = 0;
    for (; budget < 2000 && !succeeded; budget++) {
        struct fake_relay relay = {.ehlo_plain = EHLO_STARTTLS, .ehlo_tls = EHLO_AUTH_BOTH};
        struct outcome outcome = {0};
        struct tls_server_config config;
        EXPECT_EQ_INT(loop_tls_server_config(&config, "localhost"), 0);
        relay.tls = &config;
        buf_init(&relay.line, 4096);
        buf_init(&relay.transcript, 64 * 1024);
        buf_init(&relay.data, 1024 * 1024);
        char path[1024];
        char error[256];
        struct outbound_trust *trust = NULL;
        EXPECT_EQ_INT(outbound_trust_open(&trust, loop_tls_path("ca.pem", path, sizeof path),
                                          error, sizeof error),
                      0);
        uv_loop_t loop;
        uv_loop_init(&loop);
        uint16_t port = 0;
        EXPECT_EQ_INT(loop_server_start(&outcome.server, &loop, NULL, &relay_ops, &relay, &port),
                      0);
        struct smtp_relay settings = relay_settings(port);
        settings.timeout_ms = 1000; /* the fake relay may fail to answer */
        mem_fail_after(budget);
        int rc = smtp_send(&loop, trust, &settings, &default_message, outcome_done, &outcome);
        if (rc != 0) loop_server_stop(outcome.server);
        int run = loop_run_bounded(&loop, 10);
        mem_fail_after(-1);
        int closed = uv_loop_close(&loop);
        loop_server_free(outcome.server);
        outbound_trust_close(trust);
        tls_server_config_free(&config);
        buf_free(&relay.line);
        relay_free(&relay);
        EXPECT_EQ_INT(run, 0);
        EXPECT_EQ_INT(closed, 0);
        EXPECT(rc == 0 || rc == ERR_NOMEM);
        EXPECT_EQ_INT(outcome.done_calls, rc == 0 ? 1 : 0);
        succeeded = rc == 0 && outcome.status == 0;
    }
    EXPECT(succeeded);
    EXPECT(budget > 10);
}
