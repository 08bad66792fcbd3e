/*
 * smtp.c - one e-mail through an SMTP relay (see smtp.h for the contract).
 *
 * Layers, top to bottom:
 *   public API      smtp_send (validate, build the message, connect);
 *   conversation    a state machine driven by complete replies: each state
 *                   names the command it sent and the reply it expects;
 *   reply reader    bytes -> lines (bounded) -> multi-line replies with one
 *                   code; EHLO lines also fill in the capabilities;
 *   message         Date/From/To/Subject/Message-ID/MIME headers, RFC 2047
 *                   subject, quoted-printable body, dot-stuffing.
 *
 * The result is decided once (success after the 250 that follows the dot, or
 * the first failure) and reported from the connection's on_close, so `done`
 * fires exactly once, after smtp_send returned, and the session is freed
 * right after it. Credentials are sent only inside TLS, and wiped from memory
 * when the session ends.
 */
#include "smtp.h"

#include "../base/base64.h"
#include "../base/buf.h"
#include "../base/check.h"
#include "../base/clock.h"
#include "../base/err.h"
#include "../base/mem.h"
#include "../base/timefmt.h"
#include "../net/outbound.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* One command line we send (the longest is AUTH PLAIN with two credentials). */
#define SMTP_COMMAND_BYTES 1200
/* Sentences for `done`. */
#define SMTP_ERROR_BYTES 512
/* Quoted-printable lines are at most 76 characters (RFC 2045 6.7 rule 5). */
#define SMTP_QP_LINE_MAX 76
/* RFC 2047 encoded words are at most 75 characters; 45 bytes of UTF-8 make 60
 * base64 characters, plus "=?UTF-8?B?" and "?=". */
#define SMTP_ENCODED_WORD_BYTES 45

/* Where the conversation is: what was sent last, so which reply comes next. */
enum smtp_state {
    SMTP_GREETING,       /* connected; expect 220 */
    SMTP_EHLO,           /* EHLO sent; expect 250 */
    SMTP_STARTTLS,       /* STARTTLS sent; expect 220 */
    SMTP_TLS,            /* TLS handshake running; no reply expected */
    SMTP_AUTH_USER,      /* AUTH LOGIN sent; expect 334 for the user name */
    SMTP_AUTH_PASSWORD,  /* user name sent; expect 334 for the password */
    SMTP_AUTH_RESULT,    /* credentials sent; expect 235 */
    SMTP_MAIL,           /* MAIL FROM sent; expect 250 */
    SMTP_RCPT,           /* RCPT TO sent; expect 250 or 251 */
    SMTP_DATA,           /* DATA sent; expect 354 */
    SMTP_MESSAGE,        /* message and dot sent; expect 250 */
    SMTP_QUIT,           /* QUIT sent (or closing); replies are ignored */
};

/* Extensions the relay announced in its last EHLO reply. */
enum smtp_capability {
    SMTP_CAN_STARTTLS = 1 << 0,   /* RFC 3207 */
    SMTP_CAN_AUTH_PLAIN = 1 << 1, /* RFC 4616 through RFC 4954 */
    SMTP_CAN_AUTH_LOGIN = 1 << 2, /* the LOGIN mechanism */
    SMTP_CAN_8BITMIME = 1 << 3,   /* RFC 6152 (noted; we send 7-bit) */
    SMTP_CAN_SIZE = 1 << 4,       /* RFC 1870 */
};

struct smtp_session {
    struct outbound *connection; /* the relay connection */
    enum smtp_state state;       /* see the enum */
    unsigned capabilities;       /* enum smtp_capability bits, from the last EHLO */
    unsigned long long size_max; /* SIZE limit announced (0: none) */
    int tls_active;              /* STARTTLS completed */
    bool starttls_required;      /* relay->starttls */
    char *host;                  /* relay host, for messages */
    char *helo_name;             /* EHLO argument */
    char *username;              /* NULL: no AUTH */
    char *password;              /* AUTH password (wiped at the end) */
    char *from;                  /* envelope sender */
    char *to;                    /* envelope recipient */
    struct buf data;             /* the dot-stuffed message, sent after 354 */
    struct buf line;             /* the reply line being read */
    int reply_code;              /* code of the multi-line reply in progress (0: none) */
    int reply_lines;             /* lines of that reply so far */
    char reply_text[256];        /* text of its first line, for messages */
    int decided;                 /* the result is known */
    int result;                  /* 0 or the negative code for done */
    bool permanent;              /* the failure was a 5xx reply */
    char error[SMTP_ERROR_BYTES]; /* the sentence for done */
    smtp_done done;              /* the caller's callback */
    void *arg;                   /* its argument */
};

static const char *smtp_step_name(enum smtp_state state);

/* ---- Validation ---------------------------------------------------------- */

static bool smtp_is_atext(unsigned char c) {
    return isalnum(c) || (c != 0 && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

/* A host name: dot-separated labels of letters, digits and inner hyphens. */
static bool smtp_domain_valid(const char *domain) {
    size_t label = 0;
    const char *start = domain;
    for (const char *cursor = domain;; cursor++) {
        unsigned char c = (unsigned char)*cursor;
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || cursor[-1] == '-' || *start == '-') return false;
            if (c == '\0') return true;
            label = 0;
            start = cursor + 1;
            continue;
        }
        if (!isalnum(c) && c != '-') return false;
        label++;
    }
}

bool smtp_address_valid(const char *address) {
    if (address == NULL) return false;
    size_t length = strlen(address);
    const char *at = strrchr(address, '@');
    if (length == 0 || length > SMTP_ADDRESS_BYTES_MAX || at == NULL || at == address ||
        at - address > 64)
        return false;
    char previous = '.';
    for (const char *cursor = address; cursor < at; cursor++) {
        if (*cursor == '.' && previous == '.') return false; /* leading or doubled dot */
        if (*cursor != '.' && !smtp_is_atext((unsigned char)*cursor)) return false;
        previous = *cursor;
    }
    if (previous == '.') return false;
    return smtp_domain_valid(at + 1);
}

/* Printable ASCII or UTF-8, no control characters (CR, LF and NUL among them). */
static bool smtp_header_value_valid(const char *value, size_t length_max) {
    size_t length = 0;
    for (const unsigned char *cursor = (const unsigned char *)value; *cursor; cursor++) {
        if (*cursor < 0x20 || *cursor == 0x7f) return false;
        if (++length > length_max) return false;
    }
    return true;
}

static bool smtp_message_id_valid(const char *id) {
    size_t length = id != NULL ? strlen(id) : 0;
    if (length < 5 || length > SMTP_MESSAGE_ID_BYTES_MAX || id[0] != '<' || id[length - 1] != '>')
        return false;
    for (size_t index = 1; index + 1 < length; index++) {
        unsigned char c = (unsigned char)id[index];
        if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>') return false;
    }
    return strchr(id, '@') != NULL;
}

/* ---- Message ------------------------------------------------------------- */

/* "Tue, 24 Nov 2026 04:12:52 +0000" (RFC 5322 3.3), always in UTC. */
static int smtp_append_date(struct buf *out, int64_t unix_seconds) {
    static const char *const weekdays[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t days = unix_seconds / 86400;
    int64_t seconds = unix_seconds % 86400;
    if (seconds < 0) {
        seconds += 86400;
        days--;
    }
    int64_t year = 0;
    int month = 0;
    int day = 0;
    timefmt_civil_from_days(days, &year, &month, &day);
    int64_t weekday = ((days % 7) + 7) % 7;
    return buf_printf(out, "Date: %s, %02d %s %04lld %02d:%02d:%02d +0000\r\n", weekdays[weekday],
                      day, months[month - 1], (long long)year, (int)(seconds / 3600),
                      (int)(seconds / 60 % 60), (int)(seconds % 60));
}

static bool smtp_is_plain_ascii(const char *text) {
    for (const unsigned char *cursor = (const unsigned char *)text; *cursor; cursor++) {
        if (*cursor >= 0x7f) return false;
    }
    return true;
}

/* RFC 2047: UTF-8 "B" encoded words of at most 75 characters, never splitting a
 * character, folded onto continuation lines. */
static int smtp_append_subject(struct buf *out, const char *subject) {
    if (smtp_is_plain_ascii(subject) && strlen(subject) <= 900)
        return buf_printf(out, "Subject: %s\r\n", subject);
    int rc = buf_append_str(out, "Subject:");
    size_t length = strlen(subject);
    size_t offset = 0;
    while (rc == 0 && offset < length) {
        size_t take = length - offset < SMTP_ENCODED_WORD_BYTES ? length - offset
                                                                 : SMTP_ENCODED_WORD_BYTES;
        /* Step back to a character start: never cut before a continuation byte. */
        while (offset + take < length && take > 1 &&
               ((unsigned char)subject[offset + take] & 0xc0) == 0x80)
            take--;
        char encoded[64];
        rc = base64_encode(BASE64_STANDARD, subject + offset, take, encoded, sizeof encoded, NULL);
        if (rc == 0)
            rc = buf_printf(out, "%s=?UTF-8?B?%s?=", offset == 0 ? " " : "\r\n ", encoded);
        offset += take;
    }
    return rc != 0 ? rc : buf_append_str(out, "\r\n");
}

/* Appends one body line (without its end) quoted-printable, with soft breaks. */
static int smtp_append_qp_line(struct buf *out, const unsigned char *line, size_t length) {
    static const char hex[] = "0123456789ABCDEF";
    size_t column = 0;
    int rc = 0;
    for (size_t index = 0; index < length && rc == 0; index++) {
        unsigned char c = line[index];
        bool last = index + 1 == length;
        bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
        size_t width = literal ? 1 : 3;
        /* Keep room for the "=" of a soft break at column 76. */
        if (column + width > SMTP_QP_LINE_MAX - 1) {
            rc = buf_append(out, "=\r\n", 3);
            column = 0;
        }
        if (rc != 0) break;
        if (literal) {
            rc = buf_append(out, &line[index], 1);
        } else {
            char escaped[3] = {'=', hex[c >> 4], hex[c & 15]};
            rc = buf_append(out, escaped, 3);
        }
        column += width;
    }
    return rc != 0 ? rc : buf_append(out, "\r\n", 2);
}

/* The body: \n or \r\n end lines; every line quoted-printable. */
static int smtp_append_body(struct buf *out, const char *body) {
    const unsigned char *cursor = (const unsigned char *)body;
    size_t remaining = strlen(body);
    int rc = 0;
    while (rc == 0 && remaining > 0) {
        const unsigned char *end = memchr(cursor, '\n', remaining);
        size_t line = end != NULL ? (size_t)(end - cursor) : remaining;
        size_t consumed = end != NULL ? line + 1 : line;
        if (line > 0 && end != NULL && cursor[line - 1] == '\r') line--;
        rc = smtp_append_qp_line(out, cursor, line);
        cursor += consumed;
        remaining -= consumed;
    }
    return rc;
}

/* RFC 5321 4.5.2: a line starting with "." gets one more; then the final ".". */
static int smtp_dot_stuff(const struct buf *message, struct buf *out) {
    int rc = 0;
    size_t start = 0;
    while (rc == 0 && start < message->length) {
        const char *end = memchr(message->data + start, '\n', message->length - start);
        size_t stop = end != NULL ? (size_t)(end - message->data) + 1 : message->length;
        if (message->data[start] == '.') rc = buf_append(out, ".", 1);
        if (rc == 0) rc = buf_append(out, message->data + start, stop - start);
        start = stop;
    }
    return rc != 0 ? rc : buf_append(out, ".\r\n", 3);
}

int smtp_message_build(const char *from, const struct smtp_message *message,
                       int64_t unix_seconds, struct buf *out) {
    CHECK(message != NULL && out != NULL);
    if (!smtp_address_valid(from) || !smtp_address_valid(message->to) ||
        !smtp_message_id_valid(message->message_id) || message->subject == NULL ||
        !smtp_header_value_valid(message->subject, SMTP_SUBJECT_BYTES_MAX) ||
        message->body == NULL)
        return ERR_INVAL;
    if (strlen(message->body) > SMTP_BODY_BYTES_MAX) return ERR_LIMIT;
    struct buf plain;
    buf_init(&plain, SMTP_DATA_BYTES_MAX);
    int rc = smtp_append_date(&plain, unix_seconds);
    if (rc == 0) rc = buf_printf(&plain, "From: %s\r\nTo: %s\r\n", from, message->to);
    if (rc == 0) rc = smtp_append_subject(&plain, message->subject);
    if (rc == 0)
        rc = buf_printf(&plain,
                        "Message-ID: %s\r\nMIME-Version: 1.0\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                        message->message_id);
    if (rc == 0) rc = smtp_append_body(&plain, message->body);
    if (rc == 0) rc = smtp_dot_stuff(&plain, out);
    buf_free(&plain);
    return rc;
}

/* ---- Ending ----------------------------------------------------------------- */

/* Overwrites secrets through a volatile pointer so the stores are not optimised away. */
static void smtp_wipe_bytes(void *bytes, size_t length) {
    volatile unsigned char *cursor = bytes;
    for (size_t index = 0; index < length; index++) cursor[index] = 0;
}

static void smtp_wipe(char *secret) {
    if (secret != NULL) smtp_wipe_bytes(secret, strlen(secret));
}

static void smtp_session_free(struct smtp_session *session) {
    smtp_wipe(session->password);
    smtp_wipe(session->username);
    mem_free(session->host);
    mem_free(session->helo_name);
    mem_free(session->username);
    mem_free(session->password);
    mem_free(session->from);
    mem_free(session->to);
    buf_free(&session->data);
    buf_free(&session->line);
    mem_free(session);
}

/* Records the first result; `quit` says the relay is still listening, so we
 * say goodbye before closing. */
static void smtp_decide(struct smtp_session *session, int result, bool permanent, bool quit,
                        const char *format, ...) __attribute__((format(printf, 5, 6)));

static void smtp_decide(struct smtp_session *session, int result, bool permanent, bool quit,
                        const char *format, ...) {
    if (session->decided) return;
    session->decided = 1;
    session->result = result;
    session->permanent = permanent;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(session->error, sizeof session->error, format, arguments);
    va_end(arguments);
    session->state = SMTP_QUIT;
    if (quit) outbound_write(session->connection, "QUIT\r\n", 6);
    outbound_close(session->connection);
}

static void smtp_on_close(void *arg, int status, const char *error) {
    struct smtp_session *session = arg;
    if (!session->decided) {
        session->decided = 1;
        session->result = status != 0 ? status : ERR_IO;
        snprintf(session->error, sizeof session->error, "%s: %s",
                 smtp_step_name(session->state), error);
    }
    session->done(session->arg, session->result, session->result != 0 && session->permanent,
                  session->result == 0 ? "sent" : session->error);
    smtp_session_free(session);
}

/* ---- Commands ---------------------------------------------------------------- */

static void smtp_command(struct smtp_session *session, enum smtp_state next, const char *format,
                         ...) __attribute__((format(printf, 3, 4)));

static void smtp_command(struct smtp_session *session, enum smtp_state next, const char *format,
                         ...) {
    char line[SMTP_COMMAND_BYTES];
    va_list arguments;
    va_start(arguments, format);
    int length = vsnprintf(line, sizeof line - 2, format, arguments);
    va_end(arguments);
    CHECK(length > 0 && (size_t)length < sizeof line - 2);
    memcpy(line + length, "\r\n", 2);
    session->state = next;
    int rc = outbound_write(session->connection, line, (size_t)length + 2);
    smtp_wipe_bytes(line, sizeof line); /* it may have held credentials */
    if (rc != 0)
        smtp_decide(session, rc, false, false, "%s: cannot send to %s: %s",
                    smtp_step_name(next), session->host, err_str(rc));
}

static void smtp_send_ehlo(struct smtp_session *session) {
    session->capabilities = 0;
    session->size_max = 0;
    smtp_command(session, SMTP_EHLO, "EHLO %s", session->helo_name);
}

static void smtp_send_mail(struct smtp_session *session) {
    if ((session->capabilities & SMTP_CAN_SIZE) && session->size_max > 0 &&
        session->data.length > session->size_max) {
        smtp_decide(session, ERR_LIMIT, true, true,
                    "MAIL FROM: message of %zu bytes exceeds the relay's SIZE %llu",
                    session->data.length, session->size_max);
        return;
    }
    if (session->capabilities & SMTP_CAN_SIZE)
        smtp_command(session, SMTP_MAIL, "MAIL FROM:<%s> SIZE=%zu", session->from,
                     session->data.length);
    else
        smtp_command(session, SMTP_MAIL, "MAIL FROM:<%s>", session->from);
}

/* base64 of `length` bytes as the text of one command. */
static void smtp_send_base64(struct smtp_session *session, enum smtp_state next,
                             const char *prefix, const void *bytes, size_t length) {
    char encoded[SMTP_COMMAND_BYTES - 32];
    int rc = base64_encode(BASE64_STANDARD, bytes, length, encoded, sizeof encoded, NULL);
    CHECK(rc == 0); /* the credential bounds keep it short */
    smtp_command(session, next, "%s%s", prefix, encoded);
    smtp_wipe_bytes(encoded, sizeof encoded);
}

static void smtp_send_auth(struct smtp_session *session) {
    if (session->capabilities & SMTP_CAN_AUTH_PLAIN) {
        /* RFC 4616: authzid (empty) NUL authcid NUL password. */
        char plain[2 * SMTP_CREDENTIAL_BYTES_MAX + 2];
        size_t user = strlen(session->username);
        size_t password = strlen(session->password);
        plain[0] = '\0';
        memcpy(plain + 1, session->username, user);
        plain[1 + user] = '\0';
        memcpy(plain + 2 + user, session->password, password);
        smtp_send_base64(session, SMTP_AUTH_RESULT, "AUTH PLAIN ", plain, 2 + user + password);
        smtp_wipe_bytes(plain, sizeof plain);
        return;
    }
    if (session->capabilities & SMTP_CAN_AUTH_LOGIN) {
        smtp_command(session, SMTP_AUTH_USER, "AUTH LOGIN");
        return;
    }
    smtp_decide(session, ERR_UNSUPPORTED, true, true,
                "AUTH: relay %s offers neither PLAIN nor LOGIN", session->host);
}

/* EHLO answered: upgrade, authenticate, or go on to MAIL FROM. */
static void smtp_after_ehlo(struct smtp_session *session) {
    if (session->starttls_required && !session->tls_active) {
        if (!(session->capabilities & SMTP_CAN_STARTTLS)) {
            smtp_decide(session, ERR_TLS, false, true,
                        "STARTTLS: required, but relay %s does not offer it", session->host);
            return;
        }
        smtp_command(session, SMTP_STARTTLS, "STARTTLS");
        return;
    }
    if (session->username != NULL) {
        if (!session->tls_active) {
            smtp_decide(session, ERR_DENIED, true, true,
                        "AUTH: refusing to send credentials to %s without TLS "
                        "(enable smtp.starttls)",
                        session->host);
            return;
        }
        smtp_send_auth(session);
        return;
    }
    smtp_send_mail(session);
}

static void smtp_on_tls(void *arg, struct outbound *connection) {
    struct smtp_session *session = arg;
    (void)connection;
    if (session->decided) return;
    session->tls_active = 1;
    smtp_send_ehlo(session); /* RFC 3207 4.2: forget what was learnt before TLS */
}

/* ---- Replies ------------------------------------------------------------------ */

static const char *smtp_step_name(enum smtp_state state) {
    switch (state) {
    case SMTP_GREETING: return "greeting";
    case SMTP_EHLO: return "EHLO";
    case SMTP_STARTTLS: return "STARTTLS";
    case SMTP_TLS: return "STARTTLS";
    case SMTP_AUTH_USER:
    case SMTP_AUTH_PASSWORD:
    case SMTP_AUTH_RESULT: return "AUTH";
    case SMTP_MAIL: return "MAIL FROM";
    case SMTP_RCPT: return "RCPT TO";
    case SMTP_DATA: return "DATA";
    case SMTP_MESSAGE: return "end of DATA";
    case SMTP_QUIT: return "QUIT";
    }
    return "?";
}

/* An unexpected reply: 5xx is permanent, 4xx transient, anything else a
 * protocol error (transient: another relay instance may behave). */
static void smtp_reply_failed(struct smtp_session *session, int code) {
    int result = code >= 500 ? ERR_DENIED : code >= 400 ? ERR_AGAIN : ERR_PARSE;
    smtp_decide(session, result, code >= 500, code != 421, "%s: %d %s",
                smtp_step_name(session->state), code, session->reply_text);
}

static void smtp_on_reply(struct smtp_session *session, int code) {
    static const int expected[] = {
        [SMTP_GREETING] = 220,  [SMTP_EHLO] = 250, [SMTP_STARTTLS] = 220, [SMTP_TLS] = 0,
        [SMTP_AUTH_USER] = 334, [SMTP_AUTH_PASSWORD] = 334, [SMTP_AUTH_RESULT] = 235,
        [SMTP_MAIL] = 250,      [SMTP_RCPT] = 250, [SMTP_DATA] = 354, [SMTP_MESSAGE] = 250,
        [SMTP_QUIT] = 0,
    };
    enum smtp_state state = session->state;
    if (state == SMTP_QUIT) return;
    bool accepted = code == expected[state] || (state == SMTP_RCPT && code == 251);
    if (!accepted) {
        smtp_reply_failed(session, code);
        return;
    }
    switch (state) {
    case SMTP_GREETING: smtp_send_ehlo(session); break;
    case SMTP_EHLO: smtp_after_ehlo(session); break;
    case SMTP_STARTTLS:
        session->state = SMTP_TLS;
        if (outbound_start_tls(session->connection) != 0)
            smtp_decide(session, ERR_TLS, false, false, "STARTTLS: cannot start TLS");
        break;
    case SMTP_AUTH_USER:
        smtp_send_base64(session, SMTP_AUTH_PASSWORD, "", session->username,
                         strlen(session->username));
        break;
    case SMTP_AUTH_PASSWORD:
        smtp_send_base64(session, SMTP_AUTH_RESULT, "", session->password,
                         strlen(session->password));
        break;
    case SMTP_AUTH_RESULT: smtp_send_mail(session); break;
    case SMTP_MAIL: smtp_command(session, SMTP_RCPT, "RCPT TO:<%s>", session->to); break;
    case SMTP_RCPT: smtp_command(session, SMTP_DATA, "DATA"); break;
    case SMTP_DATA: {
        session->state = SMTP_MESSAGE;
        int rc = outbound_write(session->connection, session->data.data, session->data.length);
        if (rc != 0)
            smtp_decide(session, rc, false, false, "DATA: cannot send the message: %s",
                        err_str(rc));
        break;
    }
    case SMTP_MESSAGE:
        smtp_decide(session, 0, false, true, "sent");
        break;
    case SMTP_TLS:
    case SMTP_QUIT: break;
    }
}

/* "AUTH PLAIN LOGIN", "AUTH=LOGIN", "STARTTLS", "SIZE 10240000", "8BITMIME". */
static void smtp_note_capability(struct smtp_session *session, const char *text) {
    char keyword[16];
    size_t length = 0;
    while (text[length] != '\0' && text[length] != ' ' && text[length] != '=' &&
           length < sizeof keyword - 1) {
        keyword[length] = (char)toupper((unsigned char)text[length]);
        length++;
    }
    keyword[length] = '\0';
    const char *rest = text + length;
    if (strcmp(keyword, "STARTTLS") == 0) session->capabilities |= SMTP_CAN_STARTTLS;
    if (strcmp(keyword, "8BITMIME") == 0) session->capabilities |= SMTP_CAN_8BITMIME;
    if (strcmp(keyword, "SIZE") == 0) {
        session->capabilities |= SMTP_CAN_SIZE;
        if (*rest == ' ') session->size_max = strtoull(rest + 1, NULL, 10);
    }
    if (strcmp(keyword, "AUTH") != 0) return;
    while (*rest != '\0') {
        while (*rest == ' ' || *rest == '=') rest++;
        size_t word = strcspn(rest, " ");
        if (word == 5 && strncasecmp(rest, "PLAIN", 5) == 0)
            session->capabilities |= SMTP_CAN_AUTH_PLAIN;
        if (word == 5 && strncasecmp(rest, "LOGIN", 5) == 0)
            session->capabilities |= SMTP_CAN_AUTH_LOGIN;
        rest += word;
    }
}

/* One complete line (CRLF removed). Returns 0, or a negative code after deciding. */
static int smtp_on_line(struct smtp_session *session, char *line, size_t length) {
    bool shaped = length >= 3 && isdigit((unsigned char)line[0]) &&
                  isdigit((unsigned char)line[1]) && isdigit((unsigned char)line[2]) &&
                  (length == 3 || line[3] == ' ' || line[3] == '-');
    int code = shaped ? (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0') : 0;
    if (!shaped || (session->reply_code != 0 && code != session->reply_code)) {
        smtp_decide(session, ERR_PARSE, false, false, "%s: malformed reply from %s",
                    smtp_step_name(session->state), session->host);
        return ERR_PARSE;
    }
    const char *text = length > 4 ? line + 4 : "";
    if (session->reply_code == 0) {
        session->reply_code = code;
        snprintf(session->reply_text, sizeof session->reply_text, "%s", text);
    } else if (session->state == SMTP_EHLO) {
        smtp_note_capability(session, text);
    }
    if (++session->reply_lines > SMTP_REPLY_LINES_MAX) {
        smtp_decide(session, ERR_LIMIT, false, false, "%s: reply from %s has too many lines",
                    smtp_step_name(session->state), session->host);
        return ERR_LIMIT;
    }
    if (length > 3 && line[3] == '-') return 0; /* more lines follow */
    session->reply_code = 0;
    session->reply_lines = 0;
    smtp_on_reply(session, code);
    return 0;
}

static void smtp_on_read(void *arg, struct outbound *connection, const char *data,
                         size_t length) {
    struct smtp_session *session = arg;
    (void)connection;
    size_t offset = 0;
    while (offset < length && !session->decided) {
        if (session->state == SMTP_TLS) {
            /* Bytes after the 220 to STARTTLS but before TLS: an injection attempt
             * (CVE-2011-0411 style); they must not be read as replies. */
            smtp_decide(session, ERR_PARSE, false, false,
                        "STARTTLS: relay %s sent data before the TLS handshake", session->host);
            return;
        }
        const char *end = memchr(data + offset, '\n', length - offset);
        size_t take = end != NULL ? (size_t)(end - (data + offset)) : length - offset;
        int rc = buf_append(&session->line, data + offset, take);
        if (rc != 0) {
            smtp_decide(session, rc, false, false, "%s: reply line from %s: %s",
                        smtp_step_name(session->state), session->host,
                        rc == ERR_LIMIT ? "too long" : err_str(rc));
            return;
        }
        offset += take;
        if (end == NULL) return;
        offset++; /* the LF */
        size_t line = session->line.length;
        if (line > 0 && session->line.data[line - 1] == '\r') line--;
        session->line.data[line] = '\0';
        rc = smtp_on_line(session, session->line.data, line);
        buf_reset(&session->line);
        if (rc != 0) return;
    }
}

static void smtp_on_open(void *arg, struct outbound *connection) {
    (void)arg;
    (void)connection; /* the relay speaks first: wait for the 220 greeting */
}

static const struct outbound_ops smtp_outbound_ops = {
    .on_open = smtp_on_open,
    .on_read = smtp_on_read,
    .on_tls = smtp_on_tls,
    .on_close = smtp_on_close,
};

/* ---- Public API ---------------------------------------------------------------- */

static char *smtp_helo_name(const struct smtp_relay *relay) {
    if (relay->helo_name != NULL && relay->helo_name[0] != '\0')
        return smtp_domain_valid(relay->helo_name) ? mem_strdup(relay->helo_name) : NULL;
    char name[256];
    if (gethostname(name, sizeof name) != 0 || !smtp_domain_valid(name))
        snprintf(name, sizeof name, "docket");
    name[sizeof name - 1] = '\0';
    return mem_strdup(name);
}

static bool smtp_relay_valid(const struct smtp_relay *relay) {
    bool auth = relay->username != NULL && relay->username[0] != '\0';
    if (relay->host == NULL || relay->host[0] == '\0' || relay->port == 0) return false;
    if (!smtp_address_valid(relay->from)) return false;
    if (relay->helo_name != NULL && relay->helo_name[0] != '\0' &&
        !smtp_domain_valid(relay->helo_name))
        return false;
    if (!auth) return true;
    return relay->password != NULL && strlen(relay->username) <= SMTP_CREDENTIAL_BYTES_MAX &&
           strlen(relay->password) <= SMTP_CREDENTIAL_BYTES_MAX;
}

static int smtp_session_create(const struct smtp_relay *relay, const struct smtp_message *message,
                               struct smtp_session **out) {
    struct smtp_session *session = mem_calloc(1, sizeof *session);
    if (session == NULL) return ERR_NOMEM;
    buf_init(&session->data, SMTP_DATA_BYTES_MAX);
    buf_init(&session->line, SMTP_REPLY_LINE_BYTES_MAX);
    session->starttls_required = relay->starttls;
    session->host = mem_strdup(relay->host);
    session->helo_name = smtp_helo_name(relay);
    session->from = mem_strdup(relay->from);
    session->to = mem_strdup(message->to);
    bool failed = session->host == NULL || session->helo_name == NULL || session->from == NULL ||
                  session->to == NULL;
    if (relay->username != NULL && relay->username[0] != '\0') {
        session->username = mem_strdup(relay->username);
        session->password = mem_strdup(relay->password);
        failed = failed || session->username == NULL || session->password == NULL;
    }
    if (failed) {
        smtp_session_free(session);
        return ERR_NOMEM;
    }
    *out = session;
    return 0;
}

int smtp_send(struct uv_loop_s *loop, struct outbound_trust *trust, const struct smtp_relay *relay,
              const struct smtp_message *message, smtp_done done, void *arg) {
    CHECK(loop != NULL && relay != NULL && message != NULL && done != NULL);
    if (!smtp_relay_valid(relay)) return ERR_INVAL;
    if (relay->starttls && trust == NULL) return ERR_INVAL;
    struct smtp_session *session = NULL;
    int rc = smtp_session_create(relay, message, &session);
    if (rc != 0) return rc;
    struct clock *clock = relay->clock != NULL ? relay->clock : clock_system();
    int64_t now_seconds = clock->wall_ns(clock) / 1000000000;
    rc = smtp_message_build(relay->from, message, now_seconds, &session->data);
    if (rc != 0) {
        smtp_session_free(session);
        return rc;
    }
    session->done = done;
    session->arg = arg;
    session->state = SMTP_GREETING;
    int64_t timeout_ms = relay->timeout_ms > 0 ? relay->timeout_ms : SMTP_TIMEOUT_MS_DEFAULT;
    rc = outbound_connect(loop, trust, relay->host, relay->port, 0, timeout_ms,
                          &smtp_outbound_ops, session, &session->connection);
    if (rc != 0) {
        smtp_session_free(session);
        return rc;
    }
    return 0;
}
