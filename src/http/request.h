/*
 * request.h - HTTP/1.1 request parsing on top of llhttp, with Docket's limits.
 *
 * A `struct request_parser` consumes bytes from a connection and produces one
 * complete `struct request` at a time. After a request is complete the parser
 * stops (pipelined bytes behind it stay unconsumed) until request_parser_next()
 * is called, so responses are produced strictly in request order. Every limit
 * violation ends parsing with the HTTP status the client must receive
 * (400, 413, 414, 431). The module has no I/O, which makes it a fuzz target.
 */
#ifndef DOCKET_HTTP_REQUEST_H
#define DOCKET_HTTP_REQUEST_H

#include "../base/buf.h"
#include "../base/limits.h"

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

struct request_header {
    uint32_t name_offset;  /* start of the name in request.head */
    uint32_t name_length;  /* bytes of the name */
    uint32_t value_offset; /* start of the value in request.head */
    uint32_t value_length; /* bytes of the value */
};

struct request {
    char method[16];       /* "GET", "POST", ... */
    struct buf head;       /* URL and header bytes, NUL-separated; bounded */
    uint32_t url_length;   /* bytes of the URL at head.data[0] */
    uint32_t header_count; /* entries used in headers[] */
    struct request_header headers[LIMIT_HTTP_HEADER_COUNT]; /* in arrival order */
    struct buf body;       /* the body, de-chunked; bounded by the body limit */
    int keep_alive;        /* connection may serve another request after this one */
    int upgrade;           /* the client asked to switch protocols (WebSocket) */
    int expect_continue;   /* "Expect: 100-continue" was sent */
    int http_minor;        /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
};

enum request_parse_result {
    REQUEST_NEED_MORE = 0, /* all input consumed; no complete request yet */
    REQUEST_HEADERS = 1,   /* headers complete and body pending: a chance to send 100 Continue */
    REQUEST_COMPLETE = 2,  /* a whole request is ready in parser->request */
    REQUEST_ERROR = 3,     /* input is unusable; see error_status/error_detail */
};

enum request_parser_state {
    REQUEST_STATE_IDLE,     /* between requests: nothing received yet */
    REQUEST_STATE_HEAD,     /* receiving the request line and headers */
    REQUEST_STATE_BODY,     /* headers done, receiving the body */
    REQUEST_STATE_COMPLETE, /* a request is complete and waiting for request_parser_next */
    REQUEST_STATE_FAILED,   /* a parse error happened; the connection must close */
};

struct request_parser {
    llhttp_t llhttp;                /* the underlying state machine */
    llhttp_settings_t settings;     /* callbacks into this module */
    struct request request;         /* the request being assembled */
    enum request_parser_state state; /* where in the request we are */
    size_t max_body_bytes;          /* body limit (413 beyond) */
    size_t header_bytes;            /* header name+value bytes of the current request */
    int last_was_value;             /* the previous header callback was a value */
    int headers_announced;          /* REQUEST_HEADERS was already returned for this request */
    int error_status;               /* HTTP status to answer with after REQUEST_ERROR */
    const char *error_detail;       /* sentence for the problem+json detail */
};

void request_parser_init(struct request_parser *parser, size_t max_body_bytes);
void request_parser_free(struct request_parser *parser);

/* Feeds bytes. `consumed_out` tells how many were used; the rest must be fed
 * again after request_parser_next() (pipelining). */
enum request_parse_result request_parser_feed(struct request_parser *parser, const char *data,
                                              size_t length, size_t *consumed_out);

/* Releases the completed request and prepares for the next one. */
void request_parser_next(struct request_parser *parser);

/* Tells llhttp the stream ended (client half-closed). Returns REQUEST_ERROR
 * if a request was cut off mid-way, REQUEST_NEED_MORE otherwise. */
enum request_parse_result request_parser_finish(struct request_parser *parser);

/* The URL as received (path and query), NUL-terminated. */
const char *request_url(const struct request *request);

/* First value of a header, compared case-insensitively; NULL if absent. The
 * value is NUL-terminated. */
const char *request_header(const struct request *request, const char *name);

#endif
