/* response_test.c - proves responses serialise with the right framing
 * (Content-Length, bodiless statuses, Connection) and problem+json carries
 * type, title, status, detail and field errors. */
#include "../../../src/http/response.h"
#include "test.h"

#include <string.h>
#include <yyjson.h>

static const char *date = "Mon, 23 Nov 2026 19:00:00 GMT";

TEST(response_head_has_length_and_type) {
    struct response response;
    response_init(&response);
    response_set_body(&response, 200, "application/json", "{}", 2);
    response_header(&response, "ETag", "\"1\"");
    struct buf out;
    buf_init(&out, 4096);
    EXPECT_EQ_INT(response_serialize_head(&response, &out, 1, 1, date), 0);
    EXPECT(strncmp(out.data, "HTTP/1.1 200 OK\r\n", 17) == 0);
    EXPECT(strstr(out.data, "Content-Type: application/json\r\n") != NULL);
    EXPECT(strstr(out.data, "Content-Length: 2\r\n") != NULL);
    EXPECT(strstr(out.data, "ETag: \"1\"\r\n") != NULL);
    EXPECT(strstr(out.data, "Connection") == NULL);
    EXPECT(strcmp(out.data + out.length - 4, "\r\n\r\n") == 0);
    buf_free(&out);
    response_free(&response);
}

TEST(response_304_has_no_length_and_close_is_announced) {
    struct response response;
    response_init(&response);
    response_set_static(&response, 304, NULL, "", 0);
    struct buf out;
    buf_init(&out, 4096);
    EXPECT_EQ_INT(response_serialize_head(&response, &out, 0, 1, date), 0);
    EXPECT(strstr(out.data, "Content-Length") == NULL);
    EXPECT(strstr(out.data, "Connection: close\r\n") != NULL);
    buf_free(&out);
    response_free(&response);
}

TEST(response_refuses_header_injection) {
    struct response response;
    response_init(&response);
    EXPECT(response_header(&response, "X-Test", "a\r\nSet-Cookie: x") != 0);
    EXPECT_EQ_INT(response.headers.length, 0);
    response_free(&response);
}

TEST(response_problem_is_rfc9457) {
    struct response response;
    response_init(&response);
    struct problem_field fields[] = {{"reminders.0.before", "must be an ISO 8601 duration"}};
    EXPECT_EQ_INT(response_problem(&response, 422, "Invalid task.", fields, 1), 0);
    EXPECT_STR(response.content_type, "application/problem+json");
    yyjson_doc *doc = yyjson_read(response.body.data, response.body.length, 0);
    EXPECT(doc != NULL);
    yyjson_val *root = yyjson_doc_get_root(doc);
    EXPECT_EQ_INT(yyjson_get_int(yyjson_obj_get(root, "status")), 422);
    EXPECT_STR(yyjson_get_str(yyjson_obj_get(root, "title")), "Unprocessable Content");
    EXPECT_STR(yyjson_get_str(yyjson_obj_get(root, "detail")), "Invalid task.");
    EXPECT_STR(yyjson_get_str(yyjson_obj_get(root, "type")), "about:blank");
    yyjson_val *first = yyjson_arr_get(yyjson_obj_get(root, "errors"), 0);
    EXPECT_STR(yyjson_get_str(yyjson_obj_get(first, "field")), "reminders.0.before");
    yyjson_doc_free(doc);
    response_free(&response);
}
