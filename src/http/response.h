/*
 * response.h - an HTTP response under construction, and its serialisation.
 *
 * Handlers fill a `struct response` (status, content type, extra headers, a
 * body that is either owned or points at static bytes such as embedded web
 * assets); the transport serialises the head and sends head and body. Errors
 * are RFC 9457 problem+json documents built by response_problem().
 */
#ifndef DOCKET_HTTP_RESPONSE_H
#define DOCKET_HTTP_RESPONSE_H

#include "../base/buf.h"

#include <stddef.h>

struct response {
    int status;                /* HTTP status code; 0 = not set yet */
    const char *content_type;  /* static string, or NULL for no body type */
    struct buf headers;        /* extra "Name: value\r\n" lines */
    struct buf body;           /* owned body bytes (used when static_body is NULL) */
    const char *static_body;   /* body bytes owned elsewhere that outlive the response */
    size_t static_body_length; /* bytes of static_body */
    int close;                 /* send "Connection: close" and close after sending */
};

/* A validation failure of one request field, for the problem's "errors". */
struct problem_field {
    const char *field;   /* dotted path: "due", "reminders.0.before" */
    const char *message; /* what is wrong with it */
};

void response_init(struct response *response);
void response_reset(struct response *response);
void response_free(struct response *response);

/* Adds one header line; `name` and `value` must not contain CR or LF. */
int response_header(struct response *response, const char *name, const char *value);

/* Sets status, type and a copy of `data` as the body. */
int response_set_body(struct response *response, int status, const char *content_type,
                      const char *data, size_t length);

/* Sets status, type and a body that is not copied (it must outlive sending). */
void response_set_static(struct response *response, int status, const char *content_type,
                         const char *data, size_t length);

/* Sets an application/problem+json body: type, title (the reason phrase),
 * status, detail and, when fields are given, an "errors" array. */
int response_problem(struct response *response, int status, const char *detail,
                     const struct problem_field *fields, size_t field_count);

/* Serialises a yyjson document as an application/json body (the document
 * stays the caller's to free). */
struct yyjson_mut_doc;
int response_json(struct response *response, int status, struct yyjson_mut_doc *document);

/* Body bytes and length, whichever storage holds them. */
const char *response_body(const struct response *response, size_t *length_out);

/* Writes the status line and headers. `date` is an IMF-fixdate string. */
int response_serialize_head(const struct response *response, struct buf *out, int keep_alive,
                            int http_minor, const char *date);

/* Reason phrase for a status code ("Not Found"). */
const char *response_reason(int status);

#endif
