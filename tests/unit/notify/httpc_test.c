/* httpc_test.c - proves that httpc_url_parse() accepts exactly the http(s)
 * URLs it documents (a table of good and bad ones, with the 422 phrase), and
 * that httpc_post() sends a well-formed request and reads real responses
 * from a scripted server on 127.0.0.1 in the test's own loop: status and a
 * bounded body, chunked and close-delimited bodies, interim 100 responses,
 * TLS with the test CA, and each failure (timeout, connection refused,
 * malformed or truncated response, header injection refused up front). */
#include "../../../src/base/err.h"
#include "../../../src/net/outbound.h"
#include "../../../src/notify/httpc.h"
#include "../net/loop_server.h"
#include "../test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* ---- URLs ---------------------------------------------------------------- */

struct url_case {
    const char *text;     /* input */
    bool allow_http;      /* flag */
    bool tls;             /* expected scheme */
    const char *host;     /* expected host, NULL: must fail */
    unsigned port;        /* expected port */
    const char *path;     /* expected path, or the expected message when failing */
};

static const struct url_case url_cases[] = {
    {"https://fcm.googleapis.com/fcm/send/abc:def", false, true, "fcm.googleapis.com", 443,
     "/fcm/send/abc:def"},
    {"HTTPS://Push.Example.NET:8443/p?x=1&y=%20", false, true, "push.example.net", 8443,
     "/p?x=1&y=%20"},
    {"https://example.com", false, true, "example.com", 443, "/"},
    {"https://example.com?q=1", false, true, "example.com", 443, "/?q=1"},
    {"https://[::1]:9000/x", false, true, "::1", 9000, "/x"},
    {"https://[2001:db8::1]/", false, true, "2001:db8::1", 443, "/"},
    {"https://127.0.0.1:1/", false, true, "127.0.0.1", 1, "/"},
    {"http://localhost:8080/hook", true, false, "localhost", 8080, "/hook"},
    {"http://localhost/hook", true, false, "localhost", 80, "/hook"},
    {"http://localhost/hook", false, false, NULL, 0, "must be an https URL"},
    {"ftp://example.com/", true, false, NULL, 0, "must be an http or https URL"},
    {"example.com/path", false, false, NULL, 0, "must be an https URL"},
    {"https:/example.com", false, false, NULL, 0, "must be an https URL"},
    {"https://", false, false, NULL, 0, "must have a host"},
    {"https:///path", false, false, NULL, 0, "must have a host"},
    {"https://:443/", false, false, NULL, 0, "must have a host"},
    {"https://user:pw@example.com/", false, false, NULL, 0, "must not contain user information"},
    {"https://example.com/#frag", false, false, NULL, 0, "must not contain a fragment"},
    {"https://example.com:0/", false, false, NULL, 0, "must have a port between 1 and 65535"},
    {"https://example.com:65536/", false, false, NULL, 0, "must have a port between 1 and 65535"},
    {"https://example.com:/", false, false, NULL, 0, "must have a port between 1 and 65535"},
    {"https://example.com:8a/", false, false, NULL, 0, "must have a port between 1 and 65535"},
    {"https://exa mple.com/", false, false, NULL, 0,
     "must not contain spaces, control or non-ASCII characters"},
    {"https://example.com/\r\nX: y", false, false, NULL, 0,
     "must not contain spaces, control or non-ASCII characters"},
    {"https://exa%41mple.com/", false, false, NULL, 0, "must have a valid host name or IP address"},
    {"https://[::1/", false, false, NULL, 0, "must have a valid host name or IP address"},
    {"https://[nothex]/", false, false, NULL, 0, "must have a valid host name or IP address"},
    {"https://[::1]x/", false, false, NULL, 0, "must have a valid host name or IP address"},
};

TEST(httpc_url_parse_table) {
    /* Each good URL splits into scheme, host (lowercase, no brackets), port and
     * path; each bad one fails with its phrase. */
    for (size_t index = 0; index < sizeof url_cases / sizeof url_cases[0]; index++) {
        const struct url_case *c = &url_cases[index];
        struct httpc_url url;
        const char *message = NULL;
        int rc = httpc_url_parse(c->text, strlen(c->text), c->allow_http, &url, &message);
        if (c->host == NULL) {
            if (rc != ERR_INVAL || message == NULL || strcmp(message, c->path) != 0)
                fprintf(stderr, "    case %zu %s: rc %d message %s\n", index, c->text, rc,
                        message != NULL ? message : "(null)");
            EXPECT_EQ_INT(rc, ERR_INVAL);
            EXPECT_STR(message, c->path);
            continue;
        }
        if (rc != 0) fprintf(stderr, "    case %zu %s: %s\n", index, c->text, message);
        EXPECT_EQ_INT(rc, 0);
        EXPECT_EQ_INT(url.tls, c->tls);
        EXPECT_STR(url.host, c->host);
        EXPECT_EQ_INT(url.port, c->port);
        EXPECT_STR(url.path, c->path);
    }
}

TEST(httpc_url_parse_length_limit_and_origin) {
    /* A URL of 2047 characters parses, 2048 does not; the origin has the port
     * only when it is not the default, and IPv6 hosts in brackets. */
    static char text[HTTPC_URL_BYTES_MAX + 1];
    memcpy(text, "https://a.example/", 18);
    memset(text + 18, 'p', sizeof text - 18);
    struct httpc_url url;
    const char *message = NULL;
    EXPECT_EQ_INT(httpc_url_parse(text, HTTPC_URL_BYTES_MAX - 1, false, &url, &message), 0);
    EXPECT_EQ_INT(strlen(url.path), HTTPC_URL_BYTES_MAX - 1 - 17);
    EXPECT_EQ_INT(httpc_url_parse(text, HTTPC_URL_BYTES_MAX, false, &url, &message), ERR_INVAL);
    EXPECT_STR(message, "must be at most 2047 characters");
    EXPECT_EQ_INT(httpc_url_parse(NULL, 0, true, &url, &message), ERR_INVAL);
    static const char *const inputs[] = {"https://Push.Example.com/a/b", "https://h:8443/",
                                         "http://h:80/x", "https://[::1]:9/", "https://[::1]/"};
    static const char *const origins[] = {"https://push.example.com", "https://h:8443",
                                          "http://h", "https://[::1]:9", "https://[::1]"};
    for (size_t index = 0; index < 5; index++) {
        char origin[300];
        EXPECT_EQ_INT(httpc_url_parse(inputs[index], strlen(inputs[index]), true, &url, &message),
                      0);
        EXPECT_EQ_INT(httpc_url_origin(&url, origin, sizeof origin), 0);
        EXPECT_STR(origin, origins[index]);
    }
    char small[8];
    EXPECT_EQ_INT(httpc_url_origin(&url, small, sizeof small), ERR_LIMIT);
}

/* ---- Exchanges against a scripted server --------------------------------- */

/* What the server does once it has read a whole request. */
struct script {
    const char *pieces[4];   /* written one after another (NULL ends) */
    bool close_after;        /* close the connection after writing */
    bool silent;             /* never answer */
    int requests;            /* whole requests seen */
    char request[8192];      /* the first request's bytes */
    struct loop_server *server; /* to stop when the client is done */
};

/* The outcome seen by the done callback. */
struct outcome {
    int calls;               /* done calls (must end at 1) */
    int status;              /* status argument */
    int http_status;         /* http_status argument */
    char body[HTTPC_BODY_KEPT + 1]; /* body bytes */
    size_t body_length;      /* their count */
    char error[512];         /* the sentence */
    struct loop_server *server; /* stopped on done */
};

/* True once `received` holds a head and Content-Length bytes of body. */
static bool request_whole(const struct buf *received) {
    const char *data = received->data;
    const char *end = data != NULL ? memmem(data, received->length, "\r\n\r\n", 4) : NULL;
    if (end == NULL) return false;
    const char *length = memmem(data, (size_t)(end - data), "Content-Length: ", 16);
    if (length == NULL) return false;
    size_t body = (size_t)strtoul(length + 16, NULL, 10);
    return received->length >= (size_t)(end + 4 - data) + body;
}

static void script_on_data(void *arg, struct loop_peer *peer, const char *data, size_t length) {
    (void)data;
    (void)length;
    struct script *script = arg;
    if (peer->user != NULL || !request_whole(&peer->received)) return;
    peer->user = script;
    script->requests++;
    size_t copy = peer->received.length < sizeof script->request - 1 ? peer->received.length
                                                                      : sizeof script->request - 1;
    memcpy(script->request, peer->received.data, copy);
    script->request[copy] = '\0';
    if (script->silent) return;
    for (int index = 0; index < 4 && script->pieces[index] != NULL; index++)
        loop_peer_send_text(peer, script->pieces[index]);
    if (script->close_after) loop_peer_close(peer);
}

static const struct loop_server_ops script_ops = {.on_accept = NULL, .on_data = script_on_data};

static void outcome_done(void *arg, int status, int http_status, const char *body,
                         size_t body_length, const char *error) {
    struct outcome *outcome = arg;
    outcome->calls++;
    outcome->status = status;
    outcome->http_status = http_status;
    outcome->body_length = body_length;
    if (body_length > 0) memcpy(outcome->body, body, body_length);
    outcome->body[body_length] = '\0';
    snprintf(outcome->error, sizeof outcome->error, "%s", error != NULL ? error : "");
    if (outcome->server != NULL) loop_server_stop(outcome->server);
}

/* One POST of `body` with two extra headers to a fresh server running
 * `script`; the result lands in `outcome`. Returns httpc_post's code. */
static int exchange_run(struct script *script, struct outcome *outcome, const char *host,
                        struct loop_server_options *options, struct outbound_trust *trust,
                        int64_t timeout_ms, const struct httpc_header *headers,
                        size_t header_count) {
    memset(outcome, 0, sizeof *outcome);
    uv_loop_t loop;
    uv_loop_init(&loop);
    uint16_t port = 0;
    struct loop_server_options plain = {0};
    int rc = loop_server_start(&script->server, &loop, options != NULL ? options : &plain,
                               &script_ops, script, &port);
    if (rc != 0) return rc;
    outcome->server = script->server;
    char text[128];
    snprintf(text, sizeof text, "%s://%s:%u/push/abc?x=1", trust != NULL ? "https" : "http", host,
             (unsigned)port);
    struct httpc_url url;
    const char *message = NULL;
    rc = httpc_url_parse(text, strlen(text), true, &url, &message);
    static const char payload[] = "{\"hello\":\"world\"}";
    struct httpc_request request = {.url = &url,
                                    .headers = headers,
                                    .header_count = header_count,
                                    .content_type = "application/json",
                                    .body = payload,
                                    .body_length = strlen(payload),
                                    .timeout_ms = timeout_ms};
    if (rc == 0) rc = httpc_post(&loop, trust, &request, outcome_done, outcome);
    int calls_on_return = outcome->calls;
    if (rc != 0) loop_server_stop(script->server);
    int run = loop_run_bounded(&loop, 10);
    loop_server_free(script->server);
    int closed = uv_loop_close(&loop);
    if (rc != 0) return rc;
    if (calls_on_return != 0 || run != 0 || closed != 0) return ERR_BUSY;
    return 0;
}

static bool starts_with(const char *text, const char *prefix) {
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

static const struct httpc_header two_headers[] = {{"TTL", "60"}, {"Urgency", "high"}};

TEST(httpc_post_sends_request_and_reads_status_and_body) {
    /* The request line, Host with port, Content-Type, the extra headers,
     * Content-Length, Connection: close and the body reach the server; the
     * 201 and its body come back through done, called once. */
    struct script script = {.pieces = {"HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello"}};
    struct outcome outcome;
    EXPECT_EQ_INT(exchange_run(&script, &outcome, "127.0.0.1", NULL, NULL, 5000, two_headers, 2),
                  0);
    EXPECT_EQ_INT(outcome.calls, 1);
    EXPECT_EQ_INT(outcome.status, 0);
    EXPECT_EQ_INT(outcome.http_status, 201);
    EXPECT_STR(outcome.body, "hello");
    EXPECT(starts_with(script.request, "POST /push/abc?x=1 HTTP/1.1\r\nHost: 127.0.0.1:"));
    EXPECT(strstr(script.request, "\r\nContent-Type: application/json\r\n") != NULL);
    EXPECT(strstr(script.request, "\r\nTTL: 60\r\nUrgency: high\r\n") != NULL);
    EXPECT(strstr(script.request, "\r\nContent-Length: 17\r\n") != NULL);
    EXPECT(strstr(script.request, "\r\nConnection: close\r\n") != NULL);
    const char *end = strstr(script.request, "\r\n\r\n");
    EXPECT(end != NULL);
    EXPECT_STR(end + 4, "{\"hello\":\"world\"}");
}

TEST(httpc_post_keeps_only_the_first_bytes_of_a_long_body) {
    /* A 3000-byte error body comes back cut to HTTPC_BODY_KEPT bytes, the first ones. */
    static char response[4096];
    int n = snprintf(response, sizeof response,
                     "HTTP/1.1 410 Gone\r\nContent-Length: 3000\r\n\r\n");
    for (int index = 0; index < 3000; index++) response[n + index] = (char)('a' + index % 26);
    response[n + 3000] = '\0';
    struct script script = {.pieces = {response}};
    struct outcome outcome;
    EXPECT_EQ_INT(exchange_run(&script, &outcome, "127.0.0.1", NULL, NULL, 5000, NULL, 0), 0);
    EXPECT_EQ_INT(outcome.calls, 1);
    EXPECT_EQ_INT(outcome.status, 0);
    EXPECT_EQ_INT(outcome.http_status, 410);
    EXPECT_EQ_INT(outcome.body_length, HTTPC_BODY_KEPT);
    EXPECT(memcmp(outcome.body, response + n, HTTPC_BODY_KEPT) == 0);
}

TEST(httpc_post_reads_chunked_close_delimited_and_after_100_continue) {
    /* A chunked body in several writes, a body ended by the close, and a 100
     * Continue before the final response all give the final status and body. */
    struct script chunked = {.pieces = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                                        "3\r\nabc\r\n", "4\r\ndefg\r\n", "0\r\n\r\n"}};
    struct outcome outcome;
    EXPECT_EQ_INT(exchange_run(&chunked, &outcome, "127.0.0.1", NULL, NULL, 5000, NULL, 0), 0);
    EXPECT_EQ_INT(outcome.calls, 1);
    EXPECT_EQ_INT(outcome.status, 0);
    EXPECT_EQ_INT(outcome.http_status, 200);
    EXPECT_STR(outcome.body, "abcdefg");
    struct script until_close = {.pieces = {"HTTP/1.1 202 Accepted\r\n\r\nqueued"},
                                 .close_after = true};
    EXPECT_EQ_INT(exchange_run(&until_close, &outcome, "127.0.0.1", NULL, NULL, 5000, NULL, 0), 0);
    EXPECT_EQ_INT(outcome.status, 0);
    EXPECT_EQ_INT(outcome.http_status, 202);
    EXPECT_STR(outcome.body, "queued");
    struct script interim = {.pieces = {"HTTP/1.1 100 Continue\r\n\r\n",
                                        "HTTP/1.1 204 No Content\r\n\r\n"}};
    EXPECT_EQ_INT(exchange_run(&interim, &outcome, "127.0.0.1", NULL, NULL, 5000, NULL, 0), 0);
    EXPECT_EQ_INT(outcome.status, 0);
    EXPECT_EQ_INT(outcome.http_status, 204);
    EXPECT_EQ_INT(outcome.body_length, 0);
}

TEST(httpc_post_times_out_when_the_server_is_silent) {
    /* A server that reads the request and never answers ends the exchange
     * with ERR_TIMEOUT after the request's timeout, done called once. */
    struct script script = {.silent = true};
    struct outcome outcome;
    uint64_t start = uv_hrtime();
    EXPECT_EQ_INT(exchange_run(&script, &outcome, "127.0.0.1", NULL, NULL, 200, NULL, 0), 0);
    uint64_t elapsed_ms = (uv_hrtime() - start) / 1000000;
    EXPECT_EQ_INT(script.requests, 1);
    EXPECT_EQ_INT(outcome.calls, 1);
    EXPECT_EQ_INT(outcome.status, ERR_TIMEOUT);
    EXPECT_EQ_INT(outcome.http_status, 0);
    EXPECT(strstr(outcome.error, "timed out") != NULL);
    EXPECT(elapsed_ms >= 150 && elapsed_ms < 5000);
}

TEST(httpc_post_reports_malformed_and_truncated_responses) {
    /* A status line that is not HTTP is ERR_PARSE; a response cut short by the
     * server's close is ERR_IO; both name the problem. */
    struct script garbage = {.pieces = {"HTTP/1.1 abc Nope\r\n\r\n"}};
    struct outcome outcome;
    EXPECT_EQ_INT(exchange_run(&garbage, &outcome, "127.0.0.1", NULL, NULL, 5000, NULL, 0), 0);
    EXPECT_EQ_INT(outcome.calls, 1);
    EXPECT_EQ_INT(outcome.status, ERR_PARSE);
    EXPECT(strstr(outcome.error, "malformed HTTP response") != NULL);
    struct script cut = {.pieces = {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"},
                         .close_after = true};
    EXPECT_EQ_INT(exchange_run(&cut, &outcome, "127.0.0.1", NULL, NULL, 5000, NULL, 0), 0);
    EXPECT_EQ_INT(outcome.calls, 1);
    EXPECT_EQ_INT(outcome.status, ERR_IO);
    EXPECT_EQ_INT(outcome.http_status, 0);
    EXPECT(strstr(outcome.error, "closed") != NULL);
}

TEST(httpc_post_reports_connection_refused) {
    /* A port with no listener (one just released) fails through done with a
     * negative code and a sentence, never before httpc_post returns. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct loop_server *server = NULL;
    uint16_t port = 0;
    struct loop_server_options plain = {0};
    EXPECT_EQ_INT(loop_server_start(&server, &loop, &plain, &script_ops, NULL, &port), 0);
    loop_server_stop(server);
    EXPECT_EQ_INT(loop_run_bounded(&loop, 5), 0);
    loop_server_free(server);
    char text[64];
    snprintf(text, sizeof text, "http://127.0.0.1:%u/", (unsigned)port);
    struct httpc_url url;
    const char *message = NULL;
    EXPECT_EQ_INT(httpc_url_parse(text, strlen(text), true, &url, &message), 0);
    struct httpc_request request = {.url = &url, .body = "x", .body_length = 1, .timeout_ms = 5000};
    struct outcome outcome;
    memset(&outcome, 0, sizeof outcome);
    EXPECT_EQ_INT(httpc_post(&loop, NULL, &request, outcome_done, &outcome), 0);
    EXPECT_EQ_INT(outcome.calls, 0);
    EXPECT_EQ_INT(loop_run_bounded(&loop, 10), 0);
    EXPECT_EQ_INT(uv_loop_close(&loop), 0);
    EXPECT_EQ_INT(outcome.calls, 1);
    EXPECT(outcome.status < 0);
    EXPECT(outcome.error[0] != '\0');
}

TEST(httpc_post_refuses_header_injection_and_bad_requests_up_front) {
    /* CR or LF in a value or the content type, a name that is not a token, a
     * header the module writes itself, too many headers, https without trust
     * and a zero timeout are refused by httpc_post itself; done never fires. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct httpc_url url;
    const char *message = NULL;
    EXPECT_EQ_INT(httpc_url_parse("http://127.0.0.1:9/", 19, true, &url, &message), 0);
    struct outcome outcome;
    memset(&outcome, 0, sizeof outcome);
    static const struct httpc_header bad[][1] = {
        {{"X-Test", "a\r\nInjected: yes"}}, {{"X-Test", "a\nb"}},  {{"X-Test", "a\rb"}},
        {{"X Test", "a"}},                  {{"X:Test", "a"}},     {{"", "a"}},
        {{"content-length", "5"}},          {{"Host", "evil"}},    {{"Transfer-Encoding", "x"}},
    };
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        struct httpc_request request = {.url = &url, .headers = bad[index], .header_count = 1,
                                        .timeout_ms = 1000};
        EXPECT_EQ_INT(httpc_post(&loop, NULL, &request, outcome_done, &outcome), ERR_INVAL);
    }
    struct httpc_request request = {.url = &url, .content_type = "text/plain\r\nX: y",
                                    .timeout_ms = 1000};
    EXPECT_EQ_INT(httpc_post(&loop, NULL, &request, outcome_done, &outcome), ERR_INVAL);
    struct httpc_header many[HTTPC_HEADERS_MAX + 1];
    for (size_t index = 0; index <= HTTPC_HEADERS_MAX; index++) many[index] = two_headers[0];
    request = (struct httpc_request){.url = &url, .headers = many,
                                     .header_count = HTTPC_HEADERS_MAX + 1, .timeout_ms = 1000};
    EXPECT_EQ_INT(httpc_post(&loop, NULL, &request, outcome_done, &outcome), ERR_LIMIT);
    request = (struct httpc_request){.url = &url, .timeout_ms = 0};
    EXPECT_EQ_INT(httpc_post(&loop, NULL, &request, outcome_done, &outcome), ERR_INVAL);
    url.tls = true;
    request = (struct httpc_request){.url = &url, .timeout_ms = 1000};
    EXPECT_EQ_INT(httpc_post(&loop, NULL, &request, outcome_done, &outcome), ERR_INVAL);
    EXPECT_EQ_INT(loop_run_bounded(&loop, 5), 0);
    EXPECT_EQ_INT(uv_loop_close(&loop), 0);
    EXPECT_EQ_INT(outcome.calls, 0);
}

TEST(httpc_post_over_tls_with_the_test_ca) {
    /* https:// to a TLS server whose certificate the test CA signed: the
     * request arrives decrypted and the response comes back. */
    struct tls_server_config config;
    EXPECT_EQ_INT(loop_tls_server_config(&config, "localhost"), 0);
    char path[1024], error[256];
    struct outbound_trust *trust = NULL;
    EXPECT_EQ_INT(outbound_trust_open(&trust, loop_tls_path("ca.pem", path, sizeof path), error,
                                      sizeof error),
                  0);
    struct loop_server_options options = {.tls = &config};
    struct script script = {.pieces = {"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"}};
    struct outcome outcome;
    int rc = exchange_run(&script, &outcome, "localhost", &options, trust, 5000, two_headers, 2);
    outbound_trust_close(trust);
    tls_server_config_free(&config);
    EXPECT_EQ_INT(rc, 0);
    EXPECT_EQ_INT(outcome.calls, 1);
    if (outcome.status != 0) fprintf(stderr, "    %s\n", outcome.error);
    EXPECT_EQ_INT(outcome.status, 0);
    EXPECT_EQ_INT(outcome.http_status, 201);
    EXPECT_STR(outcome.body, "ok");
    EXPECT(starts_with(script.request, "POST /push/abc?x=1 HTTP/1.1\r\nHost: localhost:"));
}
