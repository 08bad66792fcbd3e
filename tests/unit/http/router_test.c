/* router_test.c - proves routing by method and pattern, parameter capture,
 * HEAD served by GET routes, and 405 with the Allow list. */
#include "../../../src/http/router.h"
#include "test.h"

#include <string.h>

static enum exchange_status handler_a(struct exchange *exchange) {
    (void)exchange;
    return EXCHANGE_DONE;
}
static enum exchange_status handler_b(struct exchange *exchange) {
    (void)exchange;
    return EXCHANGE_DONE;
}

static const struct route routes[] = {
    {"GET", "/api/v1/tasks", handler_a},
    {"POST", "/api/v1/tasks", handler_b},
    {"GET", "/api/v1/tasks/{id}", handler_a},
    {"POST", "/api/v1/tasks/{id}/complete", handler_b},
};

static enum router_result match(const char *method, const char *path, struct exchange *exchange,
                                const struct route **route, char *allow) {
    static struct request request;
    memset(&request, 0, sizeof request);
    strcpy(request.method, method);
    memset(exchange, 0, sizeof *exchange);
    exchange->request = &request;
    exchange->path = path;
    exchange->path_length = strlen(path);
    return router_match(routes, sizeof routes / sizeof routes[0], exchange, route, allow, 64);
}

TEST(router_matches_method_and_captures) {
    struct exchange exchange;
    const struct route *route = NULL;
    char allow[64];
    EXPECT_EQ_INT(match("POST", "/api/v1/tasks/abc-1/complete", &exchange, &route, allow),
                  ROUTER_FOUND);
    EXPECT(route == &routes[3]);
    char id[16];
    EXPECT_STR(exchange_param(&exchange, "id", id, sizeof id), "abc-1");
    EXPECT(exchange_param(&exchange, "id", id, 3) == NULL); /* too small: refused, not cut */
    EXPECT(exchange_param(&exchange, "nope", id, sizeof id) == NULL);
}

TEST(router_head_uses_get) {
    struct exchange exchange;
    const struct route *route = NULL;
    char allow[64];
    EXPECT_EQ_INT(match("HEAD", "/api/v1/tasks", &exchange, &route, allow), ROUTER_FOUND);
    EXPECT(route == &routes[0]);
}

TEST(router_405_lists_allowed_methods) {
    struct exchange exchange;
    const struct route *route = NULL;
    char allow[64];
    EXPECT_EQ_INT(match("DELETE", "/api/v1/tasks", &exchange, &route, allow),
                  ROUTER_METHOD_NOT_ALLOWED);
    EXPECT_STR(allow, "GET, HEAD, POST");
}

TEST(router_404_for_unknown_and_partial_paths) {
    struct exchange exchange;
    const struct route *route = NULL;
    char allow[64];
    EXPECT_EQ_INT(match("GET", "/api/v1/task", &exchange, &route, allow), ROUTER_NOT_FOUND);
    EXPECT_EQ_INT(match("GET", "/api/v1/tasks/", &exchange, &route, allow), ROUTER_NOT_FOUND);
    EXPECT_EQ_INT(match("GET", "/api/v1/tasks/a/b", &exchange, &route, allow), ROUTER_NOT_FOUND);
    EXPECT_EQ_INT(match("GET", "", &exchange, &route, allow), ROUTER_NOT_FOUND);
}
