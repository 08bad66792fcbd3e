/*
 * httpc.h - one outbound HTTP/1.1 POST on the loop (http:// or https://
 * through outbound.h), for Web Push and webhooks. The response is parsed
 * with llhttp; only the status and the first HTTPC_BODY_KEPT bytes of the
 * body are kept (for error messages). `Connection: close`, no redirects
 * followed (a 3xx is a failure), no proxies.
 */
#ifndef DOCKET_NOTIFY_HTTPC_H
#define DOCKET_NOTIFY_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct uv_loop_s;
struct outbound_trust;

#define HTTPC_URL_BYTES_MAX 2048
#define HTTPC_HEADERS_MAX 16
#define HTTPC_BODY_KEPT 512
/* Response bytes read at most (head and body); past it ERR_LIMIT. A push
 * service or webhook answers in a few hundred bytes. */
#define HTTPC_RESPONSE_BYTES_MAX (1024 * 1024)
/* Request body bytes at most (Web Push bodies are <= 4096, webhooks small). */
#define HTTPC_REQUEST_BODY_BYTES_MAX (512 * 1024)

/* A URL split up. Only http and https, a host (name, IPv4 or [IPv6]), an
 * optional port, and a path with query ("/" when absent). No user info, no
 * fragment. */
struct httpc_url {
    bool tls;           /* https */
    char host[256];     /* without brackets */
    uint16_t port;      /* explicit or 80/443 */
    char path[HTTPC_URL_BYTES_MAX]; /* path and query, starts with "/" */
};

/* Parses `text`. 0 or ERR_INVAL with `message` (a phrase for a 422:
 * "must be an https URL"). `allow_http` admits http://. */
int httpc_url_parse(const char *text, size_t length, bool allow_http, struct httpc_url *out,
                    const char **message);

/* The origin "scheme://host[:port]" (port only when not the default, IPv6
 * in brackets): the VAPID audience of a push endpoint. 0 or ERR_LIMIT. */
int httpc_url_origin(const struct httpc_url *url, char *out, size_t out_size);

struct httpc_header {
    const char *name;  /* e.g. "Content-Encoding" */
    const char *value; /* no CR or LF (ERR_INVAL otherwise) */
};

struct httpc_request {
    const struct httpc_url *url;
    const struct httpc_header *headers; /* header_count extra headers */
    size_t header_count;                /* <= HTTPC_HEADERS_MAX */
    const char *content_type;           /* Content-Type */
    const void *body;                   /* request body */
    size_t body_length;                 /* its bytes (Content-Length) */
    int64_t timeout_ms;                 /* whole exchange */
};

/* Called once. `status` 0 with `http_status` set when a response arrived
 * (any code; the caller decides what is success), else a negative code and
 * a sentence in `error`. `body` holds up to HTTPC_BODY_KEPT bytes. */
typedef void (*httpc_done)(void *arg, int status, int http_status, const char *body,
                           size_t body_length, const char *error);

/* Starts the POST. 0 (done fires exactly once, never before this returns) or
 * a negative code (done does not fire): ERR_INVAL for a header name that is
 * not a token, one this module writes itself (Host, Content-Length,
 * Content-Type, Connection, Transfer-Encoding), a value or content type with
 * CR, LF or another control character, https without `trust`, or a
 * timeout <= 0; ERR_LIMIT past HTTPC_HEADERS_MAX or
 * HTTPC_REQUEST_BODY_BYTES_MAX. 1xx responses are skipped; a failure after
 * the start is reported through `done` (ERR_TIMEOUT, ERR_IO, ERR_TLS,
 * ERR_NOTFOUND, ERR_PARSE for a malformed response, ERR_LIMIT past
 * HTTPC_RESPONSE_BYTES_MAX). */
int httpc_post(struct uv_loop_s *loop, struct outbound_trust *trust,
               const struct httpc_request *request, httpc_done done, void *arg);

#endif
