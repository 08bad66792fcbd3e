/*
 * request.c - the llhttp callbacks that assemble a `struct request`, and the
 * limit checks that turn oversized input into the right status code. llhttp
 * runs in strict mode (no lenient flags): the request-smuggling family of
 * llhttp CVEs came back every time leniency was switched on.
 */
#include "request.h"

#include "../base/check.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static struct request_parser *request_parser_of(llhttp_t *llhttp) {
    return (struct request_parser *)llhttp->data;
}

static int request_fail(struct request_parser *parser, int status, const char *detail) {
    parser->error_status = status;
    parser->error_detail = detail;
    return -1;
}

static int request_on_message_begin(llhttp_t *llhttp) {
    struct request_parser *parser = request_parser_of(llhttp);
    parser->state = REQUEST_STATE_HEAD;
    return 0;
}

static int request_on_url(llhttp_t *llhttp, const char *at, size_t length) {
    struct request_parser *parser = request_parser_of(llhttp);
    struct request *request = &parser->request;
    if (request->url_length + length > LIMIT_HTTP_URL_BYTES) {
        return request_fail(parser, 414, "The request URL is longer than the server accepts.");
    }
    if (buf_append(&request->head, at, length) != 0) {
        return request_fail(parser, 503, "Out of memory while reading the request.");
    }
    request->url_length += (uint32_t)length;
    return 0;
}

static int request_on_url_complete(llhttp_t *llhttp) {
    struct request_parser *parser = request_parser_of(llhttp);
    if (buf_append(&parser->request.head, "", 1) != 0) {
        return request_fail(parser, 503, "Out of memory while reading the request.");
    }
    return 0;
}

/* Appends header bytes, enforcing the byte limit (431). */
static int request_append_header_bytes(struct request_parser *parser, const char *at,
                                       size_t length) {
    parser->header_bytes += length;
    if (parser->header_bytes > LIMIT_HTTP_HEADER_BYTES) {
        return request_fail(parser, 431, "The request headers are larger than the server accepts.");
    }
    if (buf_append(&parser->request.head, at, length) != 0) {
        return request_fail(parser, 503, "Out of memory while reading the request.");
    }
    return 0;
}

static int request_on_header_field(llhttp_t *llhttp, const char *at, size_t length) {
    struct request_parser *parser = request_parser_of(llhttp);
    struct request *request = &parser->request;
    if (parser->last_was_value || request->header_count == 0) {
        if (request->header_count >= LIMIT_HTTP_HEADER_COUNT) {
            return request_fail(parser, 431,
                                "The request has more header fields than the server accepts.");
        }
        struct request_header *header = &request->headers[request->header_count++];
        header->name_offset = (uint32_t)request->head.length;
        header->name_length = 0;
        header->value_offset = 0;
        header->value_length = 0;
        parser->last_was_value = 0;
    }
    int rc = request_append_header_bytes(parser, at, length);
    if (rc != 0) return rc;
    request->headers[request->header_count - 1].name_length += (uint32_t)length;
    return 0;
}

static int request_on_header_field_complete(llhttp_t *llhttp) {
    struct request_parser *parser = request_parser_of(llhttp);
    struct request *request = &parser->request;
    if (request_append_header_bytes(parser, "", 1) != 0) return -1;
    request->headers[request->header_count - 1].value_offset = (uint32_t)request->head.length;
    parser->last_was_value = 1;
    return 0;
}

static int request_on_header_value(llhttp_t *llhttp, const char *at, size_t length) {
    struct request_parser *parser = request_parser_of(llhttp);
    struct request *request = &parser->request;
    CHECK(request->header_count > 0);
    int rc = request_append_header_bytes(parser, at, length);
    if (rc != 0) return rc;
    request->headers[request->header_count - 1].value_length += (uint32_t)length;
    return 0;
}

static int request_on_header_value_complete(llhttp_t *llhttp) {
    struct request_parser *parser = request_parser_of(llhttp);
    struct request *request = &parser->request;
    /* An empty value gets no on_header_value call: its offset is set here. */
    struct request_header *header = &request->headers[request->header_count - 1];
    if (header->value_length == 0) header->value_offset = (uint32_t)request->head.length;
    return request_append_header_bytes(parser, "", 1);
}

static int request_header_count(const struct request *request, const char *name) {
    size_t name_length = strlen(name);
    int count = 0;
    for (uint32_t index = 0; index < request->header_count; index++) {
        const struct request_header *header = &request->headers[index];
        count += header->name_length == name_length &&
                 strncasecmp(request->head.data + header->name_offset, name, name_length) == 0;
    }
    return count;
}

static int request_on_headers_complete(llhttp_t *llhttp) {
    struct request_parser *parser = request_parser_of(llhttp);
    struct request *request = &parser->request;
    snprintf(request->method, sizeof request->method, "%s",
             llhttp_method_name((llhttp_method_t)llhttp->method));
    request->http_minor = llhttp->http_minor;
    request->upgrade = llhttp->upgrade;
    const char *expect = request_header(request, "expect");
    request->expect_continue = expect != NULL && strcasecmp(expect, "100-continue") == 0;
    if (llhttp->http_major != 1) {
        return request_fail(parser, 505, "Only HTTP/1.0 and HTTP/1.1 are supported.");
    }
    /* RFC 9112 3.2: an HTTP/1.1 request has exactly one Host; HTTP/1.0 at most one. */
    int host_count = request_header_count(request, "host");
    if (host_count > 1 || (host_count == 0 && llhttp->http_minor == 1)) {
        return request_fail(parser, 400, "The request needs exactly one Host header.");
    }
    if ((llhttp->flags & F_CONTENT_LENGTH) && llhttp->content_length > parser->max_body_bytes) {
        return request_fail(parser, 413, "The request body is larger than the server accepts.");
    }
    parser->state = REQUEST_STATE_BODY;
    return 0;
}

static int request_on_body(llhttp_t *llhttp, const char *at, size_t length) {
    struct request_parser *parser = request_parser_of(llhttp);
    struct request *request = &parser->request;
    if (request->body.length + length > parser->max_body_bytes) {
        return request_fail(parser, 413, "The request body is larger than the server accepts.");
    }
    if (buf_append(&request->body, at, length) != 0) {
        return request_fail(parser, 503, "Out of memory while reading the request body.");
    }
    return 0;
}

static int request_on_message_complete(llhttp_t *llhttp) {
    struct request_parser *parser = request_parser_of(llhttp);
    parser->request.keep_alive = llhttp_should_keep_alive(llhttp);
    parser->state = REQUEST_STATE_COMPLETE;
    return HPE_PAUSED;
}

static void request_reset(struct request_parser *parser) {
    struct request *request = &parser->request;
    buf_reset(&request->head);
    buf_reset(&request->body);
    request->method[0] = '\0';
    request->url_length = 0;
    request->header_count = 0;
    request->keep_alive = 0;
    request->upgrade = 0;
    request->expect_continue = 0;
    request->http_minor = 1;
    parser->header_bytes = 0;
    parser->last_was_value = 0;
    parser->headers_announced = 0;
    parser->state = REQUEST_STATE_IDLE;
}

void request_parser_init(struct request_parser *parser, size_t max_body_bytes) {
    memset(parser, 0, sizeof *parser);
    llhttp_settings_init(&parser->settings);
    parser->settings.on_message_begin = request_on_message_begin;
    parser->settings.on_url = request_on_url;
    parser->settings.on_url_complete = request_on_url_complete;
    parser->settings.on_header_field = request_on_header_field;
    parser->settings.on_header_field_complete = request_on_header_field_complete;
    parser->settings.on_header_value = request_on_header_value;
    parser->settings.on_header_value_complete = request_on_header_value_complete;
    parser->settings.on_headers_complete = request_on_headers_complete;
    parser->settings.on_body = request_on_body;
    parser->settings.on_message_complete = request_on_message_complete;
    llhttp_init(&parser->llhttp, HTTP_REQUEST, &parser->settings);
    parser->llhttp.data = parser;
    parser->max_body_bytes = max_body_bytes;
    buf_init(&parser->request.head, LIMIT_HTTP_URL_BYTES + LIMIT_HTTP_HEADER_BYTES +
                                        2 * LIMIT_HTTP_HEADER_COUNT + 2);
    buf_init(&parser->request.body, max_body_bytes);
    request_reset(parser);
}

void request_parser_free(struct request_parser *parser) {
    buf_free(&parser->request.head);
    buf_free(&parser->request.body);
}

static enum request_parse_result request_error_from_llhttp(struct request_parser *parser,
                                                           llhttp_errno_t code) {
    parser->state = REQUEST_STATE_FAILED;
    if (parser->error_status == 0) {
        parser->error_status = 400;
        parser->error_detail = llhttp_get_error_reason(&parser->llhttp);
        if (parser->error_detail == NULL) parser->error_detail = llhttp_errno_name(code);
    }
    return REQUEST_ERROR;
}

enum request_parse_result request_parser_feed(struct request_parser *parser, const char *data,
                                              size_t length, size_t *consumed_out) {
    *consumed_out = 0;
    if (parser->state == REQUEST_STATE_FAILED) return REQUEST_ERROR;
    if (parser->state == REQUEST_STATE_COMPLETE) return REQUEST_COMPLETE;
    if (length == 0) return REQUEST_NEED_MORE;
    llhttp_errno_t code = llhttp_execute(&parser->llhttp, data, length);
    if (code == HPE_OK) {
        *consumed_out = length;
    } else if (code == HPE_PAUSED || code == HPE_PAUSED_UPGRADE) {
        const char *stop = llhttp_get_error_pos(&parser->llhttp);
        *consumed_out = stop != NULL ? (size_t)(stop - data) : length;
        if (code == HPE_PAUSED_UPGRADE) parser->request.upgrade = 1;
    } else {
        const char *stop = llhttp_get_error_pos(&parser->llhttp);
        *consumed_out = stop != NULL && stop >= data ? (size_t)(stop - data) : length;
        return request_error_from_llhttp(parser, code);
    }
    if (parser->state == REQUEST_STATE_COMPLETE) return REQUEST_COMPLETE;
    if (parser->state == REQUEST_STATE_BODY && !parser->headers_announced) {
        parser->headers_announced = 1;
        return REQUEST_HEADERS;
    }
    return REQUEST_NEED_MORE;
}

void request_parser_next(struct request_parser *parser) {
    CHECK(parser->state == REQUEST_STATE_COMPLETE);
    request_reset(parser);
    llhttp_resume(&parser->llhttp);
}

enum request_parse_result request_parser_finish(struct request_parser *parser) {
    if (parser->state == REQUEST_STATE_FAILED) return REQUEST_ERROR;
    if (parser->state == REQUEST_STATE_IDLE || parser->state == REQUEST_STATE_COMPLETE) {
        return REQUEST_NEED_MORE;
    }
    llhttp_errno_t code = llhttp_finish(&parser->llhttp);
    if (code != HPE_OK && code != HPE_PAUSED) return request_error_from_llhttp(parser, code);
    if (parser->state == REQUEST_STATE_COMPLETE) return REQUEST_COMPLETE;
    parser->state = REQUEST_STATE_FAILED;
    parser->error_status = 400;
    parser->error_detail = "The connection ended in the middle of a request.";
    return REQUEST_ERROR;
}

const char *request_url(const struct request *request) {
    return request->head.data != NULL ? request->head.data : "";
}

const char *request_header(const struct request *request, const char *name) {
    size_t name_length = strlen(name);
    for (uint32_t index = 0; index < request->header_count; index++) {
        const struct request_header *header = &request->headers[index];
        if (header->name_length == name_length &&
            strncasecmp(request->head.data + header->name_offset, name, name_length) == 0) {
            return request->head.data + header->value_offset;
        }
    }
    return NULL;
}
