/*
 * request_fuzz.c - libFuzzer target for the HTTP request path: the input is
 * fed to the request parser in pieces whose sizes come from the first byte,
 * so split points are fuzzed too; every completed request is routed and
 * answered with a problem document, exercising response serialisation.
 */
#include "../../src/base/check.h"
#include "../../src/http/request.h"
#include "../../src/http/response.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    size_t step = (size_t)(data[0] % 64) + 1;
    data++;
    size--;
    struct request_parser parser;
    request_parser_init(&parser, 4096);
    size_t offset = 0;
    int rounds = 0;
    while (offset < size && rounds++ < 100000) {
        size_t length = size - offset < step ? size - offset : step;
        size_t consumed = 0;
        enum request_parse_result result =
            request_parser_feed(&parser, (const char *)data + offset, length, &consumed);
        CHECK(consumed <= length);
        offset += consumed;
        if (result == REQUEST_ERROR) {
            CHECK(parser.error_status >= 400 && parser.error_status <= 599);
            break;
        }
        if (result == REQUEST_COMPLETE) {
            CHECK(parser.request.body.length <= 4096);
            struct response response;
            response_init(&response);
            response_problem(&response, 404, request_url(&parser.request), NULL, 0);
            struct buf head;
            buf_init(&head, 65536);
            CHECK(response_serialize_head(&response, &head, parser.request.keep_alive, 1,
                                          "Thu, 01 Jan 1970 00:00:00 GMT") == 0);
            buf_free(&head);
            response_free(&response);
            request_parser_next(&parser);
        } else if (consumed < length && result != REQUEST_HEADERS) {
            break;
        }
    }
    request_parser_finish(&parser);
    request_parser_free(&parser);
    return 0;
}
