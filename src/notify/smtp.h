/*
 * smtp.h - sends one e-mail through an SMTP relay (RFC 5321) on the loop:
 * EHLO, STARTTLS (RFC 3207, through outbound_start_tls) and EHLO again, AUTH
 * PLAIN or LOGIN (RFC 4954; PLAIN preferred when offered), MAIL FROM,
 * RCPT TO, DATA with dot-stuffing, QUIT. One message per connection.
 *
 * With starttls required and the relay not offering it, or AUTH configured
 * and not offered (or offered only before TLS), the send fails: credentials
 * never cross the wire in the clear. Replies are parsed as multi-line
 * (250-...) with bounded line and reply lengths.
 *
 * The message is built here from its parts: Date, From, To, Subject (RFC 2047
 * encoded when not ASCII), Message-ID (the caller's, so a receiver can spot a
 * resend), MIME-Version, Content-Type text/plain; charset=utf-8, quoted-printable
 * body. Header injection is impossible: CR and LF in any header value are
 * rejected (ERR_INVAL) before connecting.
 */
#ifndef DOCKET_NOTIFY_SMTP_H
#define DOCKET_NOTIFY_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct clock;
struct uv_loop_s;
struct outbound_trust;

/* Bounds. A reply line is at most 512 bytes with its CRLF (RFC 5321 4.5.3.1.5);
 * we accept twice that from lenient relays. EHLO lists a dozen extensions. */
#define SMTP_REPLY_LINE_BYTES_MAX 1024
#define SMTP_REPLY_LINES_MAX 64
/* An address is at most 254 bytes (RFC 5321 4.5.3.1 path limit minus the <>). */
#define SMTP_ADDRESS_BYTES_MAX 254
/* Subject and Message-ID before encoding; a reminder title is far shorter. */
#define SMTP_SUBJECT_BYTES_MAX 998
#define SMTP_MESSAGE_ID_BYTES_MAX 250
/* AUTH user name and password each (RFC 4616 allows 255 octets). */
#define SMTP_CREDENTIAL_BYTES_MAX 255
/* Body before quoted-printable (which at most triples it): the whole DATA stays
 * under OUTBOUND_WRITE_QUEUE_MAX. */
#define SMTP_BODY_BYTES_MAX (256 * 1024)
#define SMTP_DATA_BYTES_MAX (900 * 1024)
/* The conversation deadline when the relay sets none. */
#define SMTP_TIMEOUT_MS_DEFAULT 60000

struct smtp_relay {
    const char *host;     /* relay host */
    uint16_t port;        /* relay port */
    bool starttls;        /* STARTTLS required */
    const char *username; /* NULL or "": no AUTH */
    const char *password; /* AUTH password */
    const char *from;     /* envelope and From: address */
    int64_t timeout_ms;   /* whole conversation (<= 0: SMTP_TIMEOUT_MS_DEFAULT) */
    const char *helo_name; /* EHLO argument; NULL: the host name, else "docket" */
    struct clock *clock;   /* Date header; NULL: the system clock */
};

struct smtp_message {
    const char *to;         /* one recipient address */
    const char *subject;    /* UTF-8 */
    const char *body;       /* UTF-8 text; lines end with \n (sent as CRLF) */
    const char *message_id; /* "<key@docket>" style; required */
};

/* Called once: status 0 when the relay accepted the message (250 after the
 * dot), else a negative code with a sentence naming the step and the
 * relay's reply ("RCPT TO: 550 5.1.1 no such user"). `permanent` is true for
 * 5xx replies (retrying will not help). */
typedef void (*smtp_done)(void *arg, int status, bool permanent, const char *error);

/* Starts sending. Returns 0 (done will fire exactly once, never before
 * smtp_send returns) or a negative code (ERR_INVAL for a bad address or
 * header value; done does not fire). */
int smtp_send(struct uv_loop_s *loop, struct outbound_trust *trust, const struct smtp_relay *relay,
              const struct smtp_message *message, smtp_done done, void *arg);

/* Builds the DATA payload (headers, blank line, quoted-printable body), with
 * CRLF line ends, dot-stuffed and ending in ".\r\n", into `out` (appended).
 * `unix_seconds` dates it. 0, ERR_INVAL (a header value with CR or LF, a bad
 * address or Message-ID), ERR_LIMIT, ERR_NOMEM. smtp_send uses it. */
int smtp_message_build(const char *from, const struct smtp_message *message,
                       int64_t unix_seconds, struct buf *out);

/* true when `address` is an ASCII local@domain SMTP accepts without quoting:
 * a dot-atom local part and a host name (RFC 5321 4.1.2), within
 * SMTP_ADDRESS_BYTES_MAX. */
bool smtp_address_valid(const char *address);

#endif
