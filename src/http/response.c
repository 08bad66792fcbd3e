/*
 * response.c - response building and serialisation. Bodies are sized with
 * Content-Length (never chunked): every Docket response is assembled before it
 * is sent, which keeps the write path simple and bounded.
 */
#include "response.h"

#include "../base/check.h"
#include "../base/err.h"

#include <stdlib.h>
#include <string.h>
#include <yyjson.h>

/* Response bodies are assembled in memory; this caps one of them. */
#define RESPONSE_BODY_LIMIT (64u * 1024 * 1024)
#define RESPONSE_HEADER_LIMIT (16u * 1024)

void response_init(struct response *response) {
    memset(response, 0, sizeof *response);
    buf_init(&response->headers, RESPONSE_HEADER_LIMIT);
    buf_init(&response->body, RESPONSE_BODY_LIMIT);
}

void response_reset(struct response *response) {
    response->status = 0;
    response->content_type = NULL;
    response->static_body = NULL;
    response->static_body_length = 0;
    response->close = 0;
    buf_reset(&response->headers);
    buf_reset(&response->body);
}

void response_free(struct response *response) {
    buf_free(&response->headers);
    buf_free(&response->body);
}

int response_header(struct response *response, const char *name, const char *value) {
    CHECK(strpbrk(name, "\r\n") == NULL);
    if (strpbrk(value, "\r\n") != NULL) return ERR_INVAL;
    size_t before = response->headers.length;
    int rc = buf_append_str(&response->headers, name);
    if (rc == 0) rc = buf_append(&response->headers, ": ", 2);
    if (rc == 0) rc = buf_append_str(&response->headers, value);
    if (rc == 0) rc = buf_append(&response->headers, "\r\n", 2);
    if (rc != 0) response->headers.length = before; /* no half-written header line */
    if (response->headers.data != NULL) response->headers.data[response->headers.length] = '\0';
    return rc;
}

int response_set_body(struct response *response, int status, const char *content_type,
                      const char *data, size_t length) {
    response->status = status;
    response->content_type = content_type;
    response->static_body = NULL;
    response->static_body_length = 0;
    buf_reset(&response->body);
    return buf_append(&response->body, data, length);
}

void response_set_static(struct response *response, int status, const char *content_type,
                         const char *data, size_t length) {
    response->status = status;
    response->content_type = content_type;
    response->static_body = data;
    response->static_body_length = length;
    buf_reset(&response->body);
}

int response_problem(struct response *response, int status, const char *detail,
                     const struct problem_field *fields, size_t field_count) {
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    if (doc == NULL) return ERR_NOMEM;
    yyjson_mut_val *root = yyjson_mut_obj(doc);
    yyjson_mut_doc_set_root(doc, root);
    yyjson_mut_obj_add_str(doc, root, "type", "about:blank");
    yyjson_mut_obj_add_str(doc, root, "title", response_reason(status));
    yyjson_mut_obj_add_int(doc, root, "status", status);
    yyjson_mut_obj_add_str(doc, root, "detail", detail != NULL ? detail : response_reason(status));
    if (field_count > 0) {
        yyjson_mut_val *errors = yyjson_mut_obj_add_arr(doc, root, "errors");
        for (size_t index = 0; index < field_count && errors != NULL; index++) {
            yyjson_mut_val *entry = yyjson_mut_arr_add_obj(doc, errors);
            if (entry == NULL) break;
            yyjson_mut_obj_add_str(doc, entry, "field", fields[index].field);
            yyjson_mut_obj_add_str(doc, entry, "message", fields[index].message);
        }
    }
    size_t length = 0;
    char *json = yyjson_mut_write(doc, 0, &length);
    yyjson_mut_doc_free(doc);
    if (json == NULL) return ERR_NOMEM;
    int rc = response_set_body(response, status, "application/problem+json", json, length);
    free(json);
    return rc;
}

int response_json(struct response *response, int status, yyjson_mut_doc *document) {
    size_t length = 0;
    char *json = yyjson_mut_write(document, 0, &length);
    if (json == NULL) return ERR_NOMEM;
    int rc = response_set_body(response, status, "application/json", json, length);
    free(json);
    return rc;
}

const char *response_body(const struct response *response, size_t *length_out) {
    if (response->static_body != NULL) {
        *length_out = response->static_body_length;
        return response->static_body;
    }
    *length_out = response->body.length;
    return response->body.data;
}

int response_serialize_head(const struct response *response, struct buf *out, int keep_alive,
                            int http_minor, const char *date) {
    CHECK(response->status >= 100 && response->status <= 599);
    size_t body_length = 0;
    response_body(response, &body_length);
    /* Plain appends, not printf: this runs once per response and musl's printf
     * machinery was the largest user-space cost of a keep-alive request. */
    int rc = buf_reserve(out, 160 + response->headers.length);
    if (rc == 0) rc = buf_append_str(out, http_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
    if (rc == 0) rc = buf_append_uint(out, (unsigned)response->status);
    if (rc == 0) rc = buf_append(out, " ", 1);
    if (rc == 0) rc = buf_append_str(out, response_reason(response->status));
    if (rc == 0) rc = buf_append_str(out, "\r\nServer: docket\r\nDate: ");
    if (rc == 0) rc = buf_append_str(out, date);
    if (rc == 0 && response->content_type != NULL) {
        rc = buf_append_str(out, "\r\nContent-Type: ");
        if (rc == 0) rc = buf_append_str(out, response->content_type);
    }
    /* 1xx, 204 and 304 responses never carry a body or its length. */
    int bodiless = response->status < 200 || response->status == 204 || response->status == 304;
    if (rc == 0 && !bodiless) {
        rc = buf_append_str(out, "\r\nContent-Length: ");
        if (rc == 0) rc = buf_append_uint(out, body_length);
    }
    if (rc == 0) rc = buf_append(out, "\r\n", 2);
    if (rc == 0 && response->headers.length > 0) {
        rc = buf_append(out, response->headers.data, response->headers.length);
    }
    if (rc == 0 && !keep_alive) rc = buf_append_str(out, "Connection: close\r\n");
    if (rc == 0 && keep_alive && http_minor == 0) {
        rc = buf_append_str(out, "Connection: keep-alive\r\n");
    }
    if (rc == 0) rc = buf_append(out, "\r\n", 2);
    return rc;
}

const char *response_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}
