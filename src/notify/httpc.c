/*
 * httpc.c - one outbound HTTP/1.1 POST (see httpc.h): URL parsing, the
 * request text, and the response read with llhttp in HTTP_RESPONSE mode over
 * an outbound.h connection.
 *
 * An exchange lives from httpc_post() until the connection's on_close, where
 * `done` fires exactly once and the exchange is freed. The response ends the
 * exchange as soon as llhttp reports it complete (the parser is paused and
 * the connection closed, so trailing bytes are never read); a response
 * delimited by the connection's end (no Content-Length, not chunked) is
 * completed by llhttp_finish() in on_close. Interim 1xx responses are
 * skipped. Everything is bounded: the request by OUTBOUND_WRITE_QUEUE_MAX,
 * the response by HTTPC_RESPONSE_BYTES_MAX (ERR_LIMIT past it), the time by
 * the request's timeout (outbound's deadline, ERR_TIMEOUT).
 */
#include "httpc.h"

#include "../base/buf.h"
#include "../base/check.h"
#include "../base/err.h"
#include "../base/mem.h"
#include "../net/outbound.h"

#include <llhttp.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- URLs ---------------------------------------------------------------- */

/* Splits "host[:port]" or "[v6][:port]" into `out`. */
static int httpc_authority_parse(const char *text, size_t length, struct httpc_url *out,
                                 const char **message) {
    const char *host = text;
    size_t host_length = length;
    const char *port = NULL;
    if (length > 0 && text[0] == '[') {
        const char *close = memchr(text, ']', length);
        char v6[INET6_ADDRSTRLEN + 1];
        unsigned char address[16];
        size_t inner = close != NULL ? (size_t)(close - text - 1) : 0;
        if (close == NULL || inner == 0 || inner >= sizeof v6) goto bad_host;
        memcpy(v6, text + 1, inner);
        v6[inner] = '\0';
        if (inet_pton(AF_INET6, v6, address) != 1) goto bad_host;
        host = text + 1;
        host_length = inner;
        size_t rest = length - inner - 2;
        if (rest > 0 && close[1] != ':') goto bad_host;
        if (rest > 0) port = close + 2;
    } else {
        const char *colon = memchr(text, ':', length);
        if (colon != NULL) {
            host_length = (size_t)(colon - text);
            port = colon + 1;
        }
        if (host_length == 0) {
            *message = "must have a host";
            return ERR_INVAL;
        }
        for (size_t index = 0; index < host_length; index++) {
            unsigned char c = (unsigned char)host[index];
            if (!isalnum(c) && c != '.' && c != '-' && c != '_') goto bad_host;
        }
    }
    if (host_length >= sizeof out->host) goto bad_host;
    for (size_t index = 0; index < host_length; index++)
        out->host[index] = (char)tolower((unsigned char)host[index]);
    out->host[host_length] = '\0';
    if (port != NULL) {
        size_t port_length = length - (size_t)(port - text);
        unsigned long value = 0;
        for (size_t index = 0; index < port_length && value <= 65535; index++) {
            if (!isdigit((unsigned char)port[index])) port_length = 0;
            else value = value * 10 + (unsigned long)(port[index] - '0');
        }
        if (port_length == 0 || port_length > 5 || value == 0 || value > 65535) {
            *message = "must have a port between 1 and 65535";
            return ERR_INVAL;
        }
        out->port = (uint16_t)value;
    }
    return 0;
bad_host:
    *message = "must have a valid host name or IP address";
    return ERR_INVAL;
}

/* Checks the characters: visible ASCII only, no fragment. */
static int httpc_url_characters(const char *text, size_t length, const char **message) {
    if (length >= HTTPC_URL_BYTES_MAX) {
        *message = "must be at most 2047 characters";
        return ERR_INVAL;
    }
    for (size_t index = 0; index < length; index++) {
        unsigned char c = (unsigned char)text[index];
        if (c <= 0x20 || c >= 0x7f) {
            *message = "must not contain spaces, control or non-ASCII characters";
            return ERR_INVAL;
        }
        if (c == '#') {
            *message = "must not contain a fragment";
            return ERR_INVAL;
        }
    }
    return 0;
}

int httpc_url_parse(const char *text, size_t length, bool allow_http, struct httpc_url *out,
                    const char **message) {
    CHECK(out != NULL && message != NULL);
    memset(out, 0, sizeof *out);
    const char *scheme_message =
        allow_http ? "must be an http or https URL" : "must be an https URL";
    if (text == NULL) {
        *message = scheme_message;
        return ERR_INVAL;
    }
    if (httpc_url_characters(text, length, message) != 0) return ERR_INVAL;
    size_t offset = 0;
    if (length >= 8 && strncasecmp(text, "https://", 8) == 0) {
        out->tls = true;
        out->port = 443;
        offset = 8;
    } else if (allow_http && length >= 7 && strncasecmp(text, "http://", 7) == 0) {
        out->port = 80;
        offset = 7;
    } else {
        *message = scheme_message;
        return ERR_INVAL;
    }
    size_t end = offset;
    while (end < length && text[end] != '/' && text[end] != '?') end++;
    if (memchr(text + offset, '@', end - offset) != NULL) {
        *message = "must not contain user information";
        return ERR_INVAL;
    }
    if (httpc_authority_parse(text + offset, end - offset, out, message) != 0) return ERR_INVAL;
    const char *path = text + end;
    size_t path_length = length - end;
    size_t prefix = path_length == 0 || path[0] == '?' ? 1 : 0;
    CHECK(prefix + path_length < sizeof out->path);
    if (prefix) out->path[0] = '/';
    memcpy(out->path + prefix, path, path_length);
    out->path[prefix + path_length] = '\0';
    return 0;
}

/* Writes "host" or "[v6]" followed by ":port" unless it is the default. */
static int httpc_host_port(const struct httpc_url *url, char *out, size_t out_size) {
    bool v6 = strchr(url->host, ':') != NULL;
    bool default_port = url->port == (url->tls ? 443 : 80);
    int n = default_port ? snprintf(out, out_size, v6 ? "[%s]" : "%s", url->host)
                         : snprintf(out, out_size, v6 ? "[%s]:%u" : "%s:%u", url->host,
                                    (unsigned)url->port);
    return n < 0 || (size_t)n >= out_size ? ERR_LIMIT : 0;
}

int httpc_url_origin(const struct httpc_url *url, char *out, size_t out_size) {
    CHECK(url != NULL && out != NULL && out_size > 0);
    const char *scheme = url->tls ? "https://" : "http://";
    size_t scheme_length = strlen(scheme);
    if (out_size <= scheme_length) return ERR_LIMIT;
    memcpy(out, scheme, scheme_length);
    int rc = httpc_host_port(url, out + scheme_length, out_size - scheme_length);
    if (rc != 0) out[0] = '\0';
    return rc;
}

/* ---- The request --------------------------------------------------------- */

/* RFC 9110 tchar. */
static bool httpc_token_char(unsigned char c) {
    return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Headers this module writes itself; a caller's copy would conflict. */
static bool httpc_header_reserved(const char *name) {
    static const char *const reserved[] = {"host", "content-length", "content-type",
                                           "connection", "transfer-encoding"};
    for (size_t index = 0; index < sizeof reserved / sizeof reserved[0]; index++)
        if (strcasecmp(name, reserved[index]) == 0) return true;
    return false;
}

/* A header value: no CR, LF or other control character but tab. */
static bool httpc_value_valid(const char *value) {
    for (const unsigned char *c = (const unsigned char *)value; *c != '\0'; c++)
        if ((*c < 0x20 && *c != '\t') || *c == 0x7f) return false;
    return true;
}

static int httpc_request_check(const struct httpc_request *request) {
    if (request->url == NULL || request->timeout_ms <= 0) return ERR_INVAL;
    if (request->header_count > HTTPC_HEADERS_MAX) return ERR_LIMIT;
    if (request->header_count > 0 && request->headers == NULL) return ERR_INVAL;
    if (request->body == NULL && request->body_length > 0) return ERR_INVAL;
    if (request->body_length > HTTPC_REQUEST_BODY_BYTES_MAX) return ERR_LIMIT;
    if (request->content_type != NULL && !httpc_value_valid(request->content_type))
        return ERR_INVAL;
    for (size_t index = 0; index < request->header_count; index++) {
        const struct httpc_header *header = &request->headers[index];
        if (header->name == NULL || header->value == NULL || header->name[0] == '\0')
            return ERR_INVAL;
        for (const char *c = header->name; *c != '\0'; c++)
            if (!httpc_token_char((unsigned char)*c)) return ERR_INVAL;
        if (httpc_header_reserved(header->name) || !httpc_value_valid(header->value))
            return ERR_INVAL;
    }
    return 0;
}

/* The whole request (head and body) into `out`. */
static int httpc_request_build(const struct httpc_request *request, struct buf *out) {
    char host[sizeof request->url->host + 8];
    int rc = httpc_host_port(request->url, host, sizeof host);
    if (rc == 0)
        rc = buf_printf(out, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Docket\r\n",
                        request->url->path, host);
    if (rc == 0 && request->content_type != NULL)
        rc = buf_printf(out, "Content-Type: %s\r\n", request->content_type);
    for (size_t index = 0; rc == 0 && index < request->header_count; index++)
        rc = buf_printf(out, "%s: %s\r\n", request->headers[index].name,
                        request->headers[index].value);
    if (rc == 0)
        rc = buf_printf(out, "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                        request->body_length);
    if (rc == 0 && request->body_length > 0)
        rc = buf_append(out, request->body, request->body_length);
    return rc;
}

/* ---- The exchange -------------------------------------------------------- */

struct httpc_exchange {
    struct outbound *connection;   /* the socket (freed by outbound after on_close) */
    httpc_done done;               /* the caller's callback */
    void *arg;                     /* its argument */
    struct buf request;            /* request bytes, written on open */
    llhttp_t parser;               /* response parser */
    llhttp_settings_t settings;    /* its callbacks */
    int http_status;               /* the final response's status, 0 before */
    char body[HTTPC_BODY_KEPT];    /* the first bytes of its body */
    size_t body_length;            /* bytes in body */
    size_t received;               /* response bytes read so far */
    bool complete;                 /* a final response was read whole */
    int status;                    /* our own failure (parse, limit, write), 0 if none */
    char error[256];               /* its sentence */
};

static struct httpc_exchange *httpc_of(llhttp_t *parser) {
    return parser->data;
}

static int httpc_on_message_begin(llhttp_t *parser) {
    httpc_of(parser)->body_length = 0;
    return 0;
}

static int httpc_on_body(llhttp_t *parser, const char *at, size_t length) {
    struct httpc_exchange *exchange = httpc_of(parser);
    size_t room = sizeof exchange->body - exchange->body_length;
    size_t take = length < room ? length : room;
    memcpy(exchange->body + exchange->body_length, at, take);
    exchange->body_length += take;
    return 0;
}

static int httpc_on_message_complete(llhttp_t *parser) {
    struct httpc_exchange *exchange = httpc_of(parser);
    if (parser->status_code < 200) return 0; /* interim (100 Continue, 103): keep reading */
    exchange->http_status = parser->status_code;
    exchange->complete = true;
    return HPE_PAUSED;
}

/* Records our failure (the first wins) and closes the connection. */
static void httpc_fail(struct httpc_exchange *exchange, int status, const char *text) {
    if (exchange->status == 0) {
        exchange->status = status;
        snprintf(exchange->error, sizeof exchange->error, "%s", text);
    }
    outbound_close(exchange->connection);
}

static void httpc_on_open(void *arg, struct outbound *connection) {
    struct httpc_exchange *exchange = arg;
    exchange->connection = connection;
    int rc = outbound_write(connection, exchange->request.data, exchange->request.length);
    buf_free(&exchange->request);
    if (rc != 0) httpc_fail(exchange, rc, "the request could not be queued");
}

static void httpc_on_read(void *arg, struct outbound *connection, const char *data,
                          size_t length) {
    struct httpc_exchange *exchange = arg;
    exchange->connection = connection;
    if (exchange->complete || exchange->status != 0) return;
    exchange->received += length;
    if (exchange->received > HTTPC_RESPONSE_BYTES_MAX) {
        httpc_fail(exchange, ERR_LIMIT, "the response is larger than 1 MiB");
        return;
    }
    llhttp_errno_t code = llhttp_execute(&exchange->parser, data, length);
    if (code == HPE_PAUSED && exchange->complete) {
        outbound_close(connection);
    } else if (code != HPE_OK) {
        char text[200];
        const char *reason = llhttp_get_error_reason(&exchange->parser);
        snprintf(text, sizeof text, "malformed HTTP response: %s",
                 reason != NULL ? reason : llhttp_errno_name(code));
        httpc_fail(exchange, ERR_PARSE, text);
    }
}

static void httpc_on_close(void *arg, int status, const char *error) {
    struct httpc_exchange *exchange = arg;
    /* A response delimited by the connection's end completes only now. */
    if (!exchange->complete && exchange->status == 0 && status == 0)
        (void)llhttp_finish(&exchange->parser);
    if (exchange->complete) {
        exchange->done(exchange->arg, 0, exchange->http_status, exchange->body,
                       exchange->body_length, NULL);
    } else if (exchange->status != 0) {
        exchange->done(exchange->arg, exchange->status, 0, NULL, 0, exchange->error);
    } else if (status != 0) {
        exchange->done(exchange->arg, status, 0, NULL, 0, error);
    } else {
        exchange->done(exchange->arg, ERR_IO, 0, NULL, 0,
                       "the server closed the connection before a complete response");
    }
    buf_free(&exchange->request);
    mem_free(exchange);
}

static const struct outbound_ops httpc_outbound_ops = {
    .on_open = httpc_on_open,
    .on_read = httpc_on_read,
    .on_tls = NULL,
    .on_close = httpc_on_close,
};

int httpc_post(struct uv_loop_s *loop, struct outbound_trust *trust,
               const struct httpc_request *request, httpc_done done, void *arg) {
    CHECK(loop != NULL && request != NULL && done != NULL);
    int rc = httpc_request_check(request);
    if (rc != 0) return rc;
    if (request->url->tls && trust == NULL) return ERR_INVAL;
    struct httpc_exchange *exchange = mem_calloc(1, sizeof *exchange);
    if (exchange == NULL) return ERR_NOMEM;
    exchange->done = done;
    exchange->arg = arg;
    buf_init(&exchange->request, OUTBOUND_WRITE_QUEUE_MAX);
    rc = httpc_request_build(request, &exchange->request);
    if (rc != 0) {
        buf_free(&exchange->request);
        mem_free(exchange);
        return rc;
    }
    llhttp_settings_init(&exchange->settings);
    exchange->settings.on_message_begin = httpc_on_message_begin;
    exchange->settings.on_body = httpc_on_body;
    exchange->settings.on_message_complete = httpc_on_message_complete;
    llhttp_init(&exchange->parser, HTTP_RESPONSE, &exchange->settings);
    exchange->parser.data = exchange;
    rc = outbound_connect(loop, trust, request->url->host, request->url->port,
                          request->url->tls ? OUTBOUND_TLS : 0, request->timeout_ms,
                          &httpc_outbound_ops, exchange, &exchange->connection);
    if (rc != 0) {
        buf_free(&exchange->request);
        mem_free(exchange);
    }
    return rc;
}
