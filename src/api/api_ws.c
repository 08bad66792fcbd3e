/*
 * api_ws.c - GET /api/v1/ws: the WebSocket handshake (RFC 6455 4.2) and the
 * glue between three pieces that know nothing of each other:
 *   the transport (http/server.h tunnels: bytes, writes, one deadline),
 *   the protocol session (ws/websocket.h: frames, keepalive, close codes),
 *   the realtime hub (realtime/hub.h: which events this client gets).
 *
 * Handshake order: a valid WebSocket request (400/426), an allowed Origin
 * (403: cross-site WebSocket hijacking), valid query parameters (400), then
 * a token (401). The token comes from the Authorization header, else from a
 * subprotocol "bearer.<JWT>" (browsers cannot set headers; the reply names
 * "bearer" when the client offered it, else the entry it sent, because a
 * browser fails a handshake whose reply names a protocol it did not offer),
 * else from ?token=. A token must not have expired: the socket is closed
 * with 4001 at its exp, so one past it would only open to close.
 *
 * The hub is attached when the tunnel opens (on_open), so nothing is written
 * before the 101. Connection limits are the hub's: past them the socket is
 * closed with 1013 (all connections) or 1008 (one user's).
 */
#include "api.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/json.h"
#include "../base/logger.h"
#include "../base/mem.h"
#include "../http/server.h"
#include "../realtime/hub.h"
#include "../ws/websocket.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* One WebSocket connection. */
struct api_ws_conn {
    struct api *api;                   /* owner (config, hub) */
    void *transport;                   /* the http tunnel */
    struct ws_session *session;        /* protocol state */
    struct hub_subscriber *subscriber; /* NULL until attached, and after detach */
    char user_id[UUID_STRING_BYTES];   /* the authenticated user */
    int64_t since;                     /* ?since=, -1 when absent */
    uint64_t expiry_due_ms;            /* loop time of the token's exp; 0 once acted on */
    uint64_t session_due_ms;           /* the session's requested deadline; 0 = none */
    int paused;                        /* reading stopped: our queue is far over its limit */
    struct ws_io io;                   /* the session's view of the transport */
    struct ws_handler handler;         /* the session's view of this file */
};

/* ---- Handshake checks ----------------------------------------------------------- */

/* Walks the elements of every line of a comma-separated header (RFC 9110
 * 5.6.1), whitespace trimmed: `each` gets each element and returns 1 to
 * stop. Returns 1 when `each` stopped the walk. */
typedef int (*ws_element_fn)(void *arg, const char *element, size_t length);

static int ws_header_elements(const struct request *request, const char *name,
                              ws_element_fn each, void *arg) {
    size_t name_length = strlen(name);
    for (uint32_t index = 0; index < request->header_count; index++) {
        const struct request_header *header = &request->headers[index];
        if (header->name_length != name_length ||
            strncasecmp(request->head.data + header->name_offset, name, name_length) != 0) {
            continue;
        }
        const char *cursor = request->head.data + header->value_offset;
        const char *end = cursor + header->value_length;
        while (cursor < end) {
            while (cursor < end && (*cursor == ' ' || *cursor == '\t' || *cursor == ',')) cursor++;
            const char *start = cursor;
            while (cursor < end && *cursor != ',') cursor++;
            const char *last = cursor;
            while (last > start && (last[-1] == ' ' || last[-1] == '\t')) last--;
            if (last > start && each(arg, start, (size_t)(last - start))) return 1;
        }
    }
    return 0;
}

static int ws_element_equals(void *arg, const char *element, size_t length) {
    const char *token = arg;
    return strlen(token) == length && strncasecmp(element, token, length) == 0;
}

/* 1 when a comma-separated header lists `token` (case-insensitive). */
static int ws_header_has_token(const struct request *request, const char *name,
                               const char *token) {
    return ws_header_elements(request, name, ws_element_equals, (void *)token);
}

/* What ws_subprotocol_token looks for in Sec-WebSocket-Protocol. */
struct ws_subprotocols {
    char *token;       /* receives the JWT of the first "bearer.<JWT>" */
    size_t token_size; /* bytes of token */
    char *entry;       /* receives that whole entry */
    size_t entry_size; /* bytes of entry */
    int found;         /* a bearer.<JWT> entry was copied */
    int plain;         /* "bearer" itself was offered */
};

static int ws_element_bearer(void *arg, const char *element, size_t length) {
    struct ws_subprotocols *wanted = arg;
    if (length == 6 && memcmp(element, "bearer", 6) == 0) wanted->plain = 1;
    if (!wanted->found && length > 7 && memcmp(element, "bearer.", 7) == 0 &&
        length < wanted->entry_size && length - 7 < wanted->token_size) {
        memcpy(wanted->entry, element, length);
        wanted->entry[length] = '\0';
        memcpy(wanted->token, element + 7, length - 7);
        wanted->token[length - 7] = '\0';
        wanted->found = 1;
    }
    return 0;
}

/* Finds the "bearer.<JWT>" entry of Sec-WebSocket-Protocol: copies the JWT
 * into token and the whole entry into entry; *plain_out = 1 when "bearer"
 * itself was offered too. 1 when found. */
static int ws_subprotocol_token(const struct request *request, char *token, size_t token_size,
                                char *entry, size_t entry_size, int *plain_out) {
    struct ws_subprotocols wanted = {token, token_size, entry, entry_size, 0, 0};
    ws_header_elements(request, "sec-websocket-protocol", ws_element_bearer, &wanted);
    *plain_out = wanted.plain;
    return wanted.found;
}

/* Origin (RFC 6454) of a browser's request: allowed when absent (not a
 * browser: no ambient credentials to hijack, since Docket never reads
 * cookies), when it is this server's own origin, or when listed. */
static int ws_origin_allowed(struct api *api, struct exchange *exchange) {
    const char *origin = request_header(exchange->request, "origin");
    if (origin == NULL) return 1;
    size_t origin_length = strlen(origin);
    const char *host = request_header(exchange->request, "host");
    const char *scheme = exchange->tls ? "https://" : "http://";
    size_t scheme_length = strlen(scheme);
    if (host != NULL && host[0] != '\0' && origin_length == scheme_length + strlen(host) &&
        strncasecmp(origin, scheme, scheme_length) == 0 &&
        strcasecmp(origin + scheme_length, host) == 0) {
        return 1;
    }
    const char *cursor = api->config->ws_allowed_origins;
    while (cursor != NULL && *cursor != '\0') {
        while (*cursor == ' ' || *cursor == ',') cursor++;
        const char *start = cursor;
        while (*cursor != '\0' && *cursor != ',') cursor++;
        const char *last = cursor;
        while (last > start && last[-1] == ' ') last--;
        size_t length = (size_t)(last - start);
        if (length == 1 && start[0] == '*') return 1;
        if (length > 0 && length == origin_length && strncasecmp(start, origin, length) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Validates the upgrade request and computes Sec-WebSocket-Accept. -1 with
 * the response set on failure. */
static int ws_check_handshake(struct exchange *exchange, char accept[29]) {
    const struct request *request = exchange->request;
    if (!ws_header_has_token(request, "upgrade", "websocket") ||
        !ws_header_has_token(request, "connection", "upgrade")) {
        api_send_field_error(exchange, 400, "This endpoint only speaks WebSocket.", "Upgrade",
                             "must be \"websocket\" with \"Connection: Upgrade\"");
        return -1;
    }
    const char *version = request_header(request, "sec-websocket-version");
    if (version == NULL || strcmp(version, "13") != 0) {
        api_send_field_error(exchange, 426, "Only WebSocket version 13 is supported.",
                             "Sec-WebSocket-Version", "must be 13");
        response_header(&exchange->response, "Sec-WebSocket-Version", "13");
        return -1;
    }
    const char *key = request_header(request, "sec-websocket-key");
    if (key == NULL || ws_accept_key(key, strlen(key), accept) != 0) {
        api_send_field_error(exchange, 400, "The WebSocket key is missing or malformed.",
                             "Sec-WebSocket-Key", "must be the base64 of 16 bytes");
        return -1;
    }
    return 0;
}

/* ?since=N: -1 when absent; -2 with the response set when invalid. */
static int64_t ws_since(struct exchange *exchange, const struct api_query *query) {
    int failed = 0;
    const char *text = api_query_get(exchange, query, "since", &failed);
    if (failed) return -2;
    if (text == NULL) return -1;
    int64_t value = 0;
    size_t length = strlen(text);
    for (size_t index = 0; index < length; index++) {
        if (text[index] < '0' || text[index] > '9' || length > 18) {
            api_send_field_error(exchange, 400, "The query parameter is invalid.", "since",
                                 "must be a sequence number (an integer >= 0)");
            return -2;
        }
        value = value * 10 + (text[index] - '0');
    }
    if (length == 0) {
        api_send_field_error(exchange, 400, "The query parameter is invalid.", "since",
                             "must be a sequence number (an integer >= 0)");
        return -2;
    }
    return value;
}

/* ---- Session and hub glue ---------------------------------------------------------- */

static void ws_conn_apply_deadline(struct api_ws_conn *conn) {
    uint64_t due = conn->session_due_ms;
    if (conn->expiry_due_ms != 0 && (due == 0 || conn->expiry_due_ms < due)) {
        due = conn->expiry_due_ms;
    }
    http_tunnel_set_deadline(conn->transport, due);
}

static int ws_io_write(void *arg, const void *data, size_t length) {
    struct api_ws_conn *conn = arg;
    return http_tunnel_write(conn->transport, data, length);
}

static size_t ws_io_queued(void *arg) {
    struct api_ws_conn *conn = arg;
    return http_tunnel_queued(conn->transport);
}

static void ws_io_close(void *arg, int graceful) {
    struct api_ws_conn *conn = arg;
    http_tunnel_close(conn->transport, graceful);
}

static void ws_io_set_deadline(void *arg, uint64_t due_ms) {
    struct api_ws_conn *conn = arg;
    conn->session_due_ms = due_ms;
    ws_conn_apply_deadline(conn);
}

static int ws_hub_send(void *arg, const char *text, size_t length) {
    struct api_ws_conn *conn = arg;
    return ws_session_send_text(conn->session, text, length);
}

static void ws_hub_close(void *arg, uint16_t code, const char *reason) {
    struct api_ws_conn *conn = arg;
    ws_session_close(conn->session, code, reason, http_tunnel_now(conn->transport));
}

static const struct hub_subscriber_ops ws_hub_ops = {ws_hub_send, ws_hub_close};

/* {"type":"error","code":...,"detail":...[,"field":...][,"last_sequence":N]} */
static void ws_send_error(struct api_ws_conn *conn, const char *code, const char *detail,
                          const char *field, int64_t last_sequence) {
    char text[512];
    int length = snprintf(text, sizeof text, "{\"type\":\"error\",\"code\":\"%s\",\"detail\":\"%s\"",
                          code, detail);
    if (field != NULL && length > 0 && (size_t)length < sizeof text) {
        length += snprintf(text + length, sizeof text - (size_t)length, ",\"field\":\"%s\"", field);
    }
    if (last_sequence >= 0 && length > 0 && (size_t)length < sizeof text) {
        length += snprintf(text + length, sizeof text - (size_t)length,
                           ",\"last_sequence\":%lld", (long long)last_sequence);
    }
    if (length <= 0 || (size_t)length + 2 > sizeof text) return;
    text[length++] = '}';
    ws_session_send_text(conn->session, text, (size_t)length);
}

/* The user's last sequence, for a since_ahead error. */
static int64_t ws_last_sequence(struct api_ws_conn *conn) {
    struct user_record user;
    if (query_user_by_id(conn->api->db, conn->user_id, &user) != 0) return 0;
    return user.last_sequence;
}

static void ws_conn_attach(struct api_ws_conn *conn) {
    struct api *api = conn->api;
    uint64_t now = http_tunnel_now(conn->transport);
    int rc = hub_attach(api->hub, conn->user_id, conn->since, &ws_hub_ops, conn, now,
                        &conn->subscriber);
    if (rc == ERR_RANGE) {
        ws_send_error(conn, "since_ahead", "since is past your last sequence; continuing live",
                      "since", ws_last_sequence(conn));
        rc = hub_attach(api->hub, conn->user_id, -1, &ws_hub_ops, conn, now, &conn->subscriber);
    }
    if (rc == 0) return;
    conn->subscriber = NULL;
    if (rc == ERR_LIMIT) {
        ws_session_close(conn->session, WS_CLOSE_TRY_AGAIN, "the server's connection limit",
                         http_tunnel_now(conn->transport));
    } else if (rc == ERR_BUSY) {
        ws_session_close(conn->session, WS_CLOSE_POLICY, "too many connections for this user",
                         http_tunnel_now(conn->transport));
    } else {
        LOG_WARN("ws", "attach failed", "error=%s", err_name(rc));
        ws_session_close(conn->session, WS_CLOSE_INTERNAL, "could not subscribe",
                         http_tunnel_now(conn->transport));
    }
}

/* ---- Client messages ------------------------------------------------------------------ */

static void ws_on_resume(struct api_ws_conn *conn, yyjson_val *root) {
    yyjson_val *since = yyjson_obj_get(root, "since");
    if (since == NULL || !yyjson_is_int(since) || (yyjson_is_sint(since) &&
                                                   yyjson_get_sint(since) < 0)) {
        ws_send_error(conn, "invalid_field", "since must be a sequence number (an integer >= 0)",
                      "since", -1);
        return;
    }
    uint64_t value = yyjson_is_uint(since) ? yyjson_get_uint(since)
                                           : (uint64_t)yyjson_get_sint(since);
    if (conn->subscriber == NULL) return; /* closing */
    int64_t wanted = value > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)value;
    int rc = hub_resume(conn->subscriber, wanted, http_tunnel_now(conn->transport));
    if (rc == ERR_RANGE) {
        ws_send_error(conn, "since_ahead", "since is past your last sequence; continuing live",
                      "since", ws_last_sequence(conn));
    } else if (rc != 0) {
        ws_session_close(conn->session, WS_CLOSE_INTERNAL, "resume failed", 0);
    }
}

static void ws_on_text(void *arg, const char *data, size_t length) {
    struct api_ws_conn *conn = arg;
    yyjson_doc *doc = NULL;
    if (json_depth_ok(data, length, 8)) {
        doc = yyjson_read_opts((char *)data, length, 0, &json_allocator, NULL);
    }
    yyjson_val *root = doc != NULL ? yyjson_doc_get_root(doc) : NULL;
    if (root == NULL || !yyjson_is_obj(root)) {
        ws_send_error(conn, "invalid_json", "messages must be JSON objects", NULL, -1);
        yyjson_doc_free(doc);
        return;
    }
    const char *type = yyjson_get_str(yyjson_obj_get(root, "type"));
    if (type != NULL && strcmp(type, "ping") == 0) {
        static const char pong[] = "{\"type\":\"pong\"}";
        ws_session_send_text(conn->session, pong, sizeof pong - 1);
    } else if (type != NULL && strcmp(type, "resume") == 0) {
        ws_on_resume(conn, root);
    } else {
        ws_send_error(conn, "unknown_type", "type must be resume or ping", "type", -1);
    }
    yyjson_doc_free(doc);
}

static void ws_on_writable(void *arg) {
    struct api_ws_conn *conn = arg;
    if (conn->subscriber != NULL) hub_writable(conn->subscriber, http_tunnel_now(conn->transport));
}

static void ws_on_end(void *arg, uint16_t code) {
    struct api_ws_conn *conn = arg;
    (void)code;
    if (conn->subscriber != NULL) {
        struct hub_subscriber *subscriber = conn->subscriber;
        conn->subscriber = NULL;
        hub_detach(subscriber);
    }
}

/* ---- Tunnel callbacks ---------------------------------------------------------------- */

static void ws_tunnel_open(void *arg) {
    struct api_ws_conn *conn = arg;
    ws_conn_apply_deadline(conn);
    ws_conn_attach(conn);
}

static void ws_tunnel_read(void *arg, const char *data, size_t length) {
    struct api_ws_conn *conn = arg;
    ws_session_feed(conn->session, data, length, http_tunnel_now(conn->transport));
    /* Pongs and close echoes are written even when the client does not read; a
     * client that sends pings and never reads would grow our queue, so its input
     * waits while the queue is twice its limit. */
    size_t limit = (size_t)conn->api->config->ws_send_queue_bytes;
    if (!conn->paused && !ws_session_ended(conn->session) &&
        http_tunnel_queued(conn->transport) > 2 * limit) {
        conn->paused = 1;
        http_tunnel_pause(conn->transport, 1);
    }
}

static void ws_tunnel_drained(void *arg) {
    struct api_ws_conn *conn = arg;
    size_t limit = (size_t)conn->api->config->ws_send_queue_bytes;
    if (conn->paused && http_tunnel_queued(conn->transport) <= limit) {
        conn->paused = 0;
        http_tunnel_pause(conn->transport, 0);
    }
    ws_session_on_drained(conn->session, http_tunnel_now(conn->transport));
}

static void ws_tunnel_deadline(void *arg) {
    struct api_ws_conn *conn = arg;
    uint64_t now = http_tunnel_now(conn->transport);
    if (conn->expiry_due_ms != 0 && now >= conn->expiry_due_ms) {
        conn->expiry_due_ms = 0;
        ws_session_close(conn->session, WS_CLOSE_TOKEN_EXPIRED,
                         "token expired; reconnect with a fresh token", now);
    }
    ws_session_on_deadline(conn->session, now);
    if (!ws_session_ended(conn->session)) ws_conn_apply_deadline(conn);
}

static void ws_tunnel_shutdown(void *arg) {
    struct api_ws_conn *conn = arg;
    ws_session_close(conn->session, WS_CLOSE_GOING_AWAY, "server shutting down",
                     http_tunnel_now(conn->transport));
}

static void ws_tunnel_closed(void *arg) {
    struct api_ws_conn *conn = arg;
    ws_session_on_transport_closed(conn->session); /* on_end detaches from the hub */
    ws_on_end(conn, 1006);
    ws_session_free(conn->session);
    mem_free(conn);
}

static const struct http_tunnel_ops ws_tunnel_ops = {
    ws_tunnel_open, ws_tunnel_read, ws_tunnel_drained, ws_tunnel_deadline, ws_tunnel_shutdown,
    ws_tunnel_closed,
};

/* ---- The handshake handler ------------------------------------------------------------- */

/* The token of the request (see the file comment), copied into `token`;
 * `protocol` receives the Sec-WebSocket-Protocol to answer ("" for none). */
static int ws_find_token(struct exchange *exchange, const struct api_query *query, char *token,
                         size_t token_size, char *protocol, size_t protocol_size) {
    protocol[0] = '\0';
    const char *header = request_header(exchange->request, "authorization");
    if (header != NULL && strncasecmp(header, "Bearer ", 7) == 0) {
        const char *value = header + 7;
        while (*value == ' ') value++;
        if (strlen(value) >= token_size) return -1;
        snprintf(token, token_size, "%s", value);
        return 0;
    }
    int plain = 0;
    char entry[LIMIT_HTTP_HEADER_BYTES / 4];
    if (ws_subprotocol_token(exchange->request, token, token_size, entry, sizeof entry, &plain)) {
        snprintf(protocol, protocol_size, "%s", plain ? "bearer" : entry);
        return 0;
    }
    int failed = 0;
    const char *value = api_query_get(exchange, query, "token", &failed);
    if (failed || value == NULL || strlen(value) >= token_size) return -1;
    snprintf(token, token_size, "%s", value);
    return 0;
}

static enum exchange_status ws_refuse(struct api *api) {
    api->ws_handshakes_refused++;
    return EXCHANGE_DONE;
}

static int ws_respond(struct exchange *exchange, const char *accept, const char *protocol) {
    struct response *response = &exchange->response;
    response->status = 101;
    response->content_type = NULL;
    int rc = response_header(response, "Upgrade", "websocket");
    if (rc == 0) rc = response_header(response, "Connection", "Upgrade");
    if (rc == 0) rc = response_header(response, "Sec-WebSocket-Accept", accept);
    if (rc == 0 && protocol[0] != '\0') rc = response_header(response, "Sec-WebSocket-Protocol",
                                                             protocol);
    return rc;
}

static struct api_ws_conn *ws_conn_new(struct api *api, struct exchange *exchange,
                                       const char *user_id, int64_t since,
                                       int64_t expires_at_s) {
    struct api_ws_conn *conn = mem_calloc(1, sizeof *conn);
    if (conn == NULL) return NULL;
    const struct config *config = api->config;
    conn->api = api;
    conn->transport = exchange->transport;
    conn->since = since;
    snprintf(conn->user_id, sizeof conn->user_id, "%s", user_id);
    conn->io = (struct ws_io){ws_io_write, ws_io_queued, ws_io_close, ws_io_set_deadline, conn};
    conn->handler = (struct ws_handler){ws_on_text, ws_on_writable, ws_on_end, conn};
    struct ws_limits limits = {
        .max_message_bytes = (size_t)config->ws_max_message_bytes,
        .messages_per_second = (uint32_t)config->ws_messages_per_second,
        .ping_interval_ms = (uint64_t)config->ws_ping_interval_ms,
        .pong_timeout_ms = (uint64_t)config->ws_pong_timeout_ms,
        .send_queue_bytes = (size_t)config->ws_send_queue_bytes,
    };
    uint64_t now_ms = http_tunnel_now(exchange->transport);
    int64_t wall_ms = api->clock->wall_ns(api->clock) / 1000000;
    int64_t left_ms = expires_at_s * 1000 - wall_ms;
    conn->expiry_due_ms = now_ms + (uint64_t)(left_ms > 1 ? left_ms : 1);
    if (ws_session_open(&conn->session, &limits, &conn->io, &conn->handler, now_ms) != 0) {
        mem_free(conn);
        return NULL;
    }
    return conn;
}

enum exchange_status api_ws(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    char accept[29];
    if (ws_check_handshake(exchange, accept) != 0) return ws_refuse(api);
    if (!ws_origin_allowed(api, exchange)) {
        api_send_field_error(exchange, 403, "WebSockets from this origin are not allowed.",
                             "Origin", "is not this server's origin nor in ws.allowed_origins");
        return ws_refuse(api);
    }
    static const char *const allowed[] = {"token", "since", NULL};
    struct api_query query;
    if (api_query_parse(exchange, &query, allowed) != 0) return ws_refuse(api);
    int64_t since = ws_since(exchange, &query);
    if (since == -2) return ws_refuse(api);
    int repeated = 0;
    api_query_get(exchange, &query, "token", &repeated); /* a repeated token is a 400 */
    if (repeated) return ws_refuse(api);
    char token[API_TOKEN_CACHE_BYTES * 4];
    char protocol[sizeof token + 8];
    if (ws_find_token(exchange, &query, token, sizeof token, protocol, sizeof protocol) != 0) {
        response_problem(&exchange->response, 401,
                         "A bearer token is required (header, subprotocol bearer.<JWT> or "
                         "?token=).", NULL, 0);
        response_header(&exchange->response, "WWW-Authenticate", "Bearer realm=\"docket\"");
        return ws_refuse(api);
    }
    struct api_caller caller;
    int64_t expires_at_s = 0;
    if (api_authenticate_token(exchange, token, &caller, &expires_at_s) != 0) {
        return ws_refuse(api);
    }
    if (expires_at_s * 1000 <= api->clock->wall_ns(api->clock) / 1000000) {
        response_problem(&exchange->response, 401, "The token has expired.", NULL, 0);
        response_header(&exchange->response, "WWW-Authenticate", "Bearer realm=\"docket\"");
        return ws_refuse(api);
    }
    if (api->hub == NULL) {
        response_problem(&exchange->response, 503, "Realtime sync is not running.", NULL, 0);
        return ws_refuse(api);
    }
    struct api_ws_conn *conn = ws_conn_new(api, exchange, caller.user.id, since, expires_at_s);
    if (conn == NULL || ws_respond(exchange, accept, protocol) != 0) {
        if (conn != NULL) {
            ws_session_free(conn->session);
            mem_free(conn);
        }
        response_reset(&exchange->response);
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
        return ws_refuse(api);
    }
    exchange_upgrade(exchange, &ws_tunnel_ops, conn);
    return EXCHANGE_DONE;
}
