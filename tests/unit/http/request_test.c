/* request_test.c - proves the request parser assembles requests byte by byte,
 * handles pipelining and chunked bodies, and maps each limit to its status
 * (413, 414, 431, 400). */
#include "../../../src/http/request.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

static enum request_parse_result feed_all(struct request_parser *parser, const char *text,
                                          size_t *consumed_total) {
    size_t length = strlen(text);
    size_t consumed = 0;
    enum request_parse_result result = request_parser_feed(parser, text, length, &consumed);
    if (consumed_total != NULL) *consumed_total = consumed;
    return result;
}

TEST(request_parses_simple_get) {
    struct request_parser parser;
    request_parser_init(&parser, 1024);
    size_t consumed = 0;
    const char *text = "GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nAccept: */*\r\n\r\n";
    EXPECT_EQ_INT(feed_all(&parser, text, &consumed), REQUEST_COMPLETE);
    EXPECT_EQ_INT(consumed, strlen(text));
    EXPECT_STR(parser.request.method, "GET");
    EXPECT_STR(request_url(&parser.request), "/healthz?x=1");
    EXPECT_STR(request_header(&parser.request, "host"), "a");
    EXPECT_STR(request_header(&parser.request, "ACCEPT"), "*/*");
    EXPECT_STR(request_header(&parser.request, "x-empty"), "");
    EXPECT(request_header(&parser.request, "missing") == NULL);
    EXPECT(parser.request.keep_alive);
    request_parser_free(&parser);
}

TEST(request_parses_byte_by_byte) {
    struct request_parser parser;
    request_parser_init(&parser, 1024);
    const char *text = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    enum request_parse_result result = REQUEST_NEED_MORE;
    for (size_t index = 0; text[index] != '\0'; index++) {
        size_t consumed = 0;
        result = request_parser_feed(&parser, text + index, 1, &consumed);
        EXPECT_EQ_INT(consumed, 1);
        if (result == REQUEST_COMPLETE) EXPECT(text[index + 1] == '\0');
    }
    EXPECT_EQ_INT(result, REQUEST_COMPLETE);
    EXPECT_STR(request_header(&parser.request, "content-length"), "5");
    EXPECT_EQ_INT(parser.request.body.length, 5);
    EXPECT(memcmp(parser.request.body.data, "hello", 5) == 0);
    request_parser_free(&parser);
}

TEST(request_stops_after_each_pipelined_request) {
    struct request_parser parser;
    request_parser_init(&parser, 1024);
    const char *text = "GET /one HTTP/1.1\r\nHost: h\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\n\r\n";
    size_t consumed = 0;
    EXPECT_EQ_INT(feed_all(&parser, text, &consumed), REQUEST_COMPLETE);
    EXPECT_STR(request_url(&parser.request), "/one");
    request_parser_next(&parser);
    size_t second = 0;
    EXPECT_EQ_INT(request_parser_feed(&parser, text + consumed, strlen(text) - consumed, &second),
                  REQUEST_COMPLETE);
    EXPECT_STR(request_url(&parser.request), "/two");
    EXPECT_EQ_INT(consumed + second, strlen(text));
    request_parser_free(&parser);
}

TEST(request_decodes_chunked_body) {
    struct request_parser parser;
    request_parser_init(&parser, 1024);
    const char *text = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    EXPECT_EQ_INT(feed_all(&parser, text, NULL), REQUEST_COMPLETE);
    EXPECT_EQ_INT(parser.request.body.length, 11);
    EXPECT(memcmp(parser.request.body.data, "hello world", 11) == 0);
    request_parser_free(&parser);
}

TEST(request_refuses_large_declared_body) {
    struct request_parser parser;
    request_parser_init(&parser, 10);
    const char *text = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n";
    EXPECT_EQ_INT(feed_all(&parser, text, NULL), REQUEST_ERROR);
    EXPECT_EQ_INT(parser.error_status, 413);
    request_parser_free(&parser);
}

TEST(request_refuses_large_chunked_body) {
    struct request_parser parser;
    request_parser_init(&parser, 10);
    const char *text = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "8\r\n12345678\r\n8\r\n12345678\r\n";
    EXPECT_EQ_INT(feed_all(&parser, text, NULL), REQUEST_ERROR);
    EXPECT_EQ_INT(parser.error_status, 413);
    request_parser_free(&parser);
}

TEST(request_refuses_long_url) {
    struct request_parser parser;
    request_parser_init(&parser, 10);
    static char text[LIMIT_HTTP_URL_BYTES + 64];
    int length = snprintf(text, sizeof text, "GET /");
    memset(text + length, 'a', LIMIT_HTTP_URL_BYTES);
    strcpy(text + length + LIMIT_HTTP_URL_BYTES, " HTTP/1.1\r\n\r\n");
    EXPECT_EQ_INT(feed_all(&parser, text, NULL), REQUEST_ERROR);
    EXPECT_EQ_INT(parser.error_status, 414);
    request_parser_free(&parser);
}

TEST(request_refuses_too_many_headers) {
    struct request_parser parser;
    request_parser_init(&parser, 10);
    static char text[8192];
    int length = snprintf(text, sizeof text, "GET / HTTP/1.1\r\n");
    for (int index = 0; index <= LIMIT_HTTP_HEADER_COUNT; index++) {
        length += snprintf(text + length, sizeof text - (size_t)length, "X-%d: v\r\n", index);
    }
    snprintf(text + length, sizeof text - (size_t)length, "\r\n");
    EXPECT_EQ_INT(feed_all(&parser, text, NULL), REQUEST_ERROR);
    EXPECT_EQ_INT(parser.error_status, 431);
    request_parser_free(&parser);
}

TEST(request_refuses_huge_header_value) {
    struct request_parser parser;
    request_parser_init(&parser, 10);
    static char text[LIMIT_HTTP_HEADER_BYTES + 128];
    int length = snprintf(text, sizeof text, "GET / HTTP/1.1\r\nX-Big: ");
    memset(text + length, 'b', LIMIT_HTTP_HEADER_BYTES);
    strcpy(text + length + LIMIT_HTTP_HEADER_BYTES, "\r\n\r\n");
    EXPECT_EQ_INT(feed_all(&parser, text, NULL), REQUEST_ERROR);
    EXPECT_EQ_INT(parser.error_status, 431);
    request_parser_free(&parser);
}

TEST(request_refuses_smuggling_shapes) {
    /* Each of these was accepted by some lenient llhttp at some point. */
    const char *cases[] = {
        "GET / HTTP/1.1\r\nHost : h\r\n\r\n",                                     /* space before colon */
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "GET / HTTP/1.1\nHost: h\n\n",                                           /* bare LF */
        "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",                          /* obs-fold */
        "GARBAGE\r\n\r\n",
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        struct request_parser parser;
        request_parser_init(&parser, 1024);
        enum request_parse_result result = feed_all(&parser, cases[index], NULL);
        int status = parser.error_status;
        request_parser_free(&parser);
        if (result != REQUEST_ERROR || status != 400) {
            fprintf(stderr, "    case %zu was accepted\n", index);
        }
        EXPECT_EQ_INT(result, REQUEST_ERROR);
        EXPECT_EQ_INT(status, 400);
    }
}

TEST(request_announces_headers_for_expect_continue) {
    struct request_parser parser;
    request_parser_init(&parser, 1024);
    const char *text = "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    EXPECT_EQ_INT(feed_all(&parser, text, NULL), REQUEST_HEADERS);
    EXPECT(parser.request.expect_continue);
    size_t consumed = 0;
    EXPECT_EQ_INT(request_parser_feed(&parser, "ok", 2, &consumed), REQUEST_COMPLETE);
    request_parser_free(&parser);
}

TEST(request_requires_one_host_and_http1) {
    const char *cases[] = {
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    };
    const int statuses[] = {400, 400, 505};
    for (size_t index = 0; index < 3; index++) {
        struct request_parser parser;
        request_parser_init(&parser, 1024);
        enum request_parse_result result = feed_all(&parser, cases[index], NULL);
        int status = parser.error_status;
        request_parser_free(&parser);
        EXPECT_EQ_INT(result, REQUEST_ERROR);
        EXPECT_EQ_INT(status, statuses[index]);
    }
}

TEST(request_http10_closes_by_default) {
    struct request_parser parser;
    request_parser_init(&parser, 1024);
    EXPECT_EQ_INT(feed_all(&parser, "GET / HTTP/1.0\r\n\r\n", NULL), REQUEST_COMPLETE);
    EXPECT(!parser.request.keep_alive);
    EXPECT_EQ_INT(parser.request.http_minor, 0);
    request_parser_free(&parser);
}

TEST(request_truncated_stream_is_an_error) {
    struct request_parser parser;
    request_parser_init(&parser, 1024);
    EXPECT_EQ_INT(feed_all(&parser, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc", NULL),
                  REQUEST_HEADERS);
    EXPECT_EQ_INT(request_parser_finish(&parser), REQUEST_ERROR);
    request_parser_free(&parser);
}
