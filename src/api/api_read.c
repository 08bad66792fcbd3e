/*
 * api_read.c - the read-only routes over the event projections: a task's
 * history, the caller's event stream, the audit trail, and the admin
 * listings (users, event-log consumers).
 */
#include "api.h"

#include "../base/err.h"
#include "../base/mem.h"
#include "../base/timefmt.h"
#include "../base/uuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs a list query into a body and sends it (400 for ERR_INVAL). */
static void api_send_list(struct exchange *exchange, int rc, struct buf *body,
                          const struct task_errors *errors, const char *not_found) {
    if (rc == 0) api_send_json(exchange, 200, body);
    else if (rc == ERR_INVAL) api_send_problem(exchange, 400, "Bad query parameter.", errors);
    else if (rc == ERR_NOTFOUND) response_problem(&exchange->response, 404, not_found, NULL, 0);
    else response_problem(&exchange->response, 503, "The list could not be read.", NULL, 0);
    buf_free(body);
}

static struct api_query *api_params(struct exchange *exchange, const char *const *allowed) {
    struct api_query *params = mem_alloc(sizeof *params);
    if (params == NULL) {
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
        return NULL;
    }
    if (api_query_parse(exchange, params, allowed) != 0) {
        mem_free(params);
        return NULL;
    }
    return params;
}

enum exchange_status api_task_events(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    char raw[64], id[UUID_STRING_BYTES];
    const char *text = exchange_param(exchange, "id", raw, sizeof raw);
    if (text == NULL || uuid_parse(text, strlen(text), id) != 0) {
        response_problem(&exchange->response, 404, "No task with this id exists.", NULL, 0);
        return EXCHANGE_DONE;
    }
    static const char *const allowed[] = {"limit", "cursor", NULL};
    struct api_query *params = api_params(exchange, allowed);
    if (params == NULL) return EXCHANGE_DONE;
    size_t limit = 0;
    int failed = 0;
    const char *cursor = api_query_get(exchange, params, "cursor", &failed);
    if (!failed && api_query_limit(exchange, params, &limit) == 0) {
        struct buf body;
        buf_init(&body, 64 * 1024 * 1024);
        struct task_errors errors = {.count = 0};
        int rc = query_task_events(api->db, caller.user.id, id, limit, cursor, &body, &errors);
        api_send_list(exchange, rc, &body, &errors, "No task with this id exists.");
    }
    mem_free(params);
    return EXCHANGE_DONE;
}

/* A non-negative decimal integer parameter. */
static int api_param_integer(struct exchange *exchange, const char *name, const char *text,
                             int64_t *out) {
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0) {
        api_send_field_error(exchange, 400, "Bad query parameter.", name,
                             "must be a whole number >= 0");
        return -1;
    }
    *out = value;
    return 0;
}

enum exchange_status api_events(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    static const char *const allowed[] = {"since", "limit", "cursor", NULL};
    struct api_query *params = api_params(exchange, allowed);
    if (params == NULL) return EXCHANGE_DONE;
    int failed = 0;
    int64_t since = 0;
    size_t limit = 0;
    const char *text = api_query_get(exchange, params, "since", &failed);
    /* The cursor of this list is the last sequence returned: the same as since. */
    const char *cursor = failed ? NULL : api_query_get(exchange, params, "cursor", &failed);
    if (!failed && text != NULL && api_param_integer(exchange, "since", text, &since) != 0) failed = 1;
    if (!failed && cursor != NULL && api_param_integer(exchange, "cursor", cursor, &since) != 0) {
        failed = 1;
    }
    if (!failed && api_query_limit(exchange, params, &limit) == 0) {
        struct buf body;
        buf_init(&body, 64 * 1024 * 1024);
        int rc = query_events_since(api->db, caller.user.id, since, limit, &body);
        api_send_list(exchange, rc, &body, NULL, "");
    }
    mem_free(params);
    return EXCHANGE_DONE;
}

static int api_audit_parse(struct exchange *exchange, const struct api_query *params,
                           const struct api_caller *caller, struct audit_query *query,
                           char task_id[UUID_STRING_BYTES], char user_id[UUID_STRING_BYTES]) {
    int failed = 0;
    const char *from = api_query_get(exchange, params, "from", &failed);
    const char *to = failed ? NULL : api_query_get(exchange, params, "to", &failed);
    const char *task = failed ? NULL : api_query_get(exchange, params, "task", &failed);
    const char *user = failed ? NULL : api_query_get(exchange, params, "user", &failed);
    query->cursor = failed ? NULL : api_query_get(exchange, params, "cursor", &failed);
    if (failed) return -1;
    const char *message = NULL;
    if (from != NULL && timefmt_time_parse(from, strlen(from), &query->from_ns, &message) != 0) {
        api_send_field_error(exchange, 400, "Bad query parameter.", "from", message);
        return -1;
    }
    query->has_from = from != NULL;
    if (to != NULL && timefmt_time_parse(to, strlen(to), &query->to_ns, &message) != 0) {
        api_send_field_error(exchange, 400, "Bad query parameter.", "to", message);
        return -1;
    }
    query->has_to = to != NULL;
    if (task != NULL && uuid_parse(task, strlen(task), task_id) != 0) {
        api_send_field_error(exchange, 400, "Bad query parameter.", "task", "must be a task id");
        return -1;
    }
    query->task_id = task != NULL ? task_id : NULL;
    int admin = strcmp(caller->user.role, "admin") == 0;
    if (user != NULL && uuid_parse(user, strlen(user), user_id) != 0) {
        api_send_field_error(exchange, 400, "Bad query parameter.", "user", "must be a user id");
        return -1;
    }
    if (user != NULL && !admin && strcmp(user_id, caller->user.id) != 0) {
        response_problem(&exchange->response, 403,
                         "Only administrators may read other users' audit entries.", NULL, 0);
        return -1;
    }
    query->user_id = user != NULL ? user_id : (admin ? NULL : caller->user.id);
    for (size_t index = 0; index < params->count; index++) {
        if (strcmp(params->params[index].name, "type") != 0) continue;
        if (query->type_count >= LIMIT_LIST_FILTER_VALUES || params->params[index].value[0] == '\0') {
            api_send_field_error(exchange, 400, "Bad query parameter.", "type",
                                 "must be an event type, at most 20 times");
            return -1;
        }
        query->types[query->type_count++] = params->params[index].value;
    }
    return api_query_limit(exchange, params, &query->limit);
}

enum exchange_status api_audit(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    static const char *const allowed[] = {"from", "to", "type", "task", "user", "limit", "cursor",
                                          NULL};
    struct api_query *params = api_params(exchange, allowed);
    if (params == NULL) return EXCHANGE_DONE;
    struct audit_query query;
    memset(&query, 0, sizeof query);
    char task_id[UUID_STRING_BYTES], user_id[UUID_STRING_BYTES];
    if (api_audit_parse(exchange, params, &caller, &query, task_id, user_id) == 0) {
        struct buf body;
        buf_init(&body, 64 * 1024 * 1024);
        struct task_errors errors = {.count = 0};
        int rc = query_audit(api->db, &query, &body, &errors);
        api_send_list(exchange, rc, &body, &errors, "");
    }
    mem_free(params);
    return EXCHANGE_DONE;
}

enum exchange_status api_admin_users(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    if (api_require_admin(exchange, &caller) != 0) return EXCHANGE_DONE;
    struct buf body;
    buf_init(&body, 64 * 1024 * 1024);
    int rc = query_user_list(api->db, &body);
    api_send_list(exchange, rc, &body, NULL, "");
    return EXCHANGE_DONE;
}

enum exchange_status api_admin_consumers(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    if (api_require_admin(exchange, &caller) != 0) return EXCHANGE_DONE;
    struct buf body;
    buf_init(&body, 1024 * 1024);
    int rc = buf_append_str(&body, "{\"items\":[");
    int first = 1;
    for (size_t topic_index = 0; rc == 0 && topic_index < evlog_topic_count(api->evlog);
         topic_index++) {
        struct evlog_topic *topic = evlog_topic_at(api->evlog, topic_index);
        static struct evlog_consumer_info infos[LIMIT_EVLOG_CONSUMERS];
        size_t count = evlog_consumer_list(topic, infos, LIMIT_EVLOG_CONSUMERS);
        for (size_t index = 0; rc == 0 && index < count && index < LIMIT_EVLOG_CONSUMERS; index++) {
            rc = buf_printf(&body,
                            "%s{\"topic\":\"%s\",\"name\":\"%s\",\"offset\":%lld,\"lag\":%lld,"
                            "\"required\":%s}",
                            first ? "" : ",", evlog_topic_name(topic), infos[index].name,
                            (long long)infos[index].offset, (long long)infos[index].lag,
                            infos[index].required ? "true" : "false");
            first = 0;
        }
    }
    if (rc == 0) rc = buf_append_str(&body, "],\"next_cursor\":null}");
    api_send_list(exchange, rc, &body, NULL, "");
    return EXCHANGE_DONE;
}
