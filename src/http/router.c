/*
 * router.c - segment-by-segment pattern matching over the route table.
 */
#include "router.h"

#include "../base/check.h"

#include <stdio.h>
#include <string.h>

const char *exchange_param(const struct exchange *exchange, const char *name, char *out,
                           size_t out_size) {
    size_t name_length = strlen(name);
    for (size_t index = 0; index < exchange->param_count; index++) {
        const struct exchange_param *param = &exchange->params[index];
        if (param->name_length != name_length || memcmp(param->name, name, name_length) != 0) {
            continue;
        }
        if (param->value_length + 1 > out_size) return NULL;
        memcpy(out, param->value, param->value_length);
        out[param->value_length] = '\0';
        return out;
    }
    return NULL;
}

/* Matches one pattern; captures into `params` (count in *count_out). */
static int router_pattern_matches(const char *pattern, const char *path, size_t path_length,
                                  struct exchange_param *params, size_t *count_out) {
    size_t count = 0;
    const char *path_end = path + path_length;
    while (*pattern != '\0') {
        if (*pattern != '/' || path >= path_end || *path != '/') return 0;
        pattern++;
        path++;
        const char *pattern_segment_end = strchr(pattern, '/');
        if (pattern_segment_end == NULL) pattern_segment_end = pattern + strlen(pattern);
        const char *path_segment_end = memchr(path, '/', (size_t)(path_end - path));
        if (path_segment_end == NULL) path_segment_end = path_end;
        size_t pattern_length = (size_t)(pattern_segment_end - pattern);
        size_t segment_length = (size_t)(path_segment_end - path);
        if (pattern_length >= 2 && pattern[0] == '{' && pattern[pattern_length - 1] == '}') {
            if (segment_length == 0 || count >= LIMIT_ROUTE_PARAMS) return 0;
            params[count].name = pattern + 1;
            params[count].name_length = pattern_length - 2;
            params[count].value = path;
            params[count].value_length = segment_length;
            count++;
        } else if (pattern_length != segment_length || memcmp(pattern, path, segment_length) != 0) {
            return 0;
        }
        pattern = pattern_segment_end;
        path = path_segment_end;
    }
    if (path != path_end) return 0;
    *count_out = count;
    return 1;
}

static int router_method_matches(const char *route_method, const char *method) {
    if (strcmp(route_method, method) == 0) return 1;
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

static void router_allow_add(char *allow, size_t allow_size, const char *method) {
    if (allow == NULL || allow_size == 0 || strstr(allow, method) != NULL) return;
    size_t used = strlen(allow);
    snprintf(allow + used, allow_size - used, "%s%s", used > 0 ? ", " : "", method);
}

enum router_result router_match(const struct route *routes, size_t route_count,
                                struct exchange *exchange, const struct route **route_out,
                                char *allow, size_t allow_size) {
    CHECK(exchange->request != NULL);
    if (allow != NULL && allow_size > 0) allow[0] = '\0';
    int path_matched = 0;
    for (size_t index = 0; index < route_count; index++) {
        struct exchange_param params[LIMIT_ROUTE_PARAMS];
        size_t count = 0;
        if (!router_pattern_matches(routes[index].pattern, exchange->path, exchange->path_length,
                                    params, &count)) {
            continue;
        }
        if (router_method_matches(routes[index].method, exchange->request->method)) {
            memcpy(exchange->params, params, count * sizeof params[0]);
            exchange->param_count = count;
            *route_out = &routes[index];
            return ROUTER_FOUND;
        }
        path_matched = 1;
        router_allow_add(allow, allow_size, routes[index].method);
        if (strcmp(routes[index].method, "GET") == 0) router_allow_add(allow, allow_size, "HEAD");
    }
    return path_matched ? ROUTER_METHOD_NOT_ALLOWED : ROUTER_NOT_FOUND;
}
