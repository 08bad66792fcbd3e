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
#include <stdint.h>

struct uv_loop_s;
struct outbound_trust;

struct smtp_relay {
    const char *host;     /* relay host */
    uint16_t port;        /* relay port */
    bool starttls;        /* STARTTLS required */
    const char *username; /* NULL or "": no AUTH */
    const char *password; /* AUTH password */
    const char *from;     /* envelope and From: address */
    int64_t timeout_ms;   /* whole conversation */
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

#endif
