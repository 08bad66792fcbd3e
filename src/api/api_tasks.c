/*
 * api_tasks.c - the task routes: create, list (search, filters, sorts,
 * cursor pagination), get, patch, delete, complete and uncomplete.
 * Writes go through the command layer and answer when durable and applied.
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

#define API_TASKS_LOCATION "/api/v1/tasks/"

/* ---- Writes ----------------------------------------------------------------------- */

static void api_task_written(void *arg, const struct command_result *result) {
    struct exchange *exchange = arg;
    api_send_result(exchange, result, API_TASKS_LOCATION);
    exchange_finish(exchange);
}

/* The task id path parameter; a malformed id answers 404 like an unknown one. */
static int api_task_id(struct exchange *exchange, char id[UUID_STRING_BYTES]) {
    char raw[64];
    const char *text = exchange_param(exchange, "id", raw, sizeof raw);
    if (text == NULL || uuid_parse(text, strlen(text), id) != 0) {
        response_problem(&exchange->response, 404, "No task with this id exists.", NULL, 0);
        return -1;
    }
    return 0;
}

/* If-Match (RFC 9110 13.1.1): "*" or a list of entity tags; ours are
 * strong tags "<version>". Weak tags (W/"3") and strong tags that are not
 * versions are well formed but never match; anything else is a malformed
 * header: 400, nothing changes. */
static int api_if_match(struct exchange *exchange, struct command *command) {
    const char *header = request_header(exchange->request, "if-match");
    if (header == NULL) return 0;
    command->has_if_match = true;
    const char *cursor = header;
    while (*cursor != '\0') {
        while (*cursor == ' ' || *cursor == '\t' || *cursor == ',') cursor++;
        if (*cursor == '\0') break;
        const char *end = cursor;
        while (*end != '\0' && *end != ',') end++;
        size_t length = (size_t)(end - cursor);
        while (length > 0 && (cursor[length - 1] == ' ' || cursor[length - 1] == '\t')) length--;
        const char *tag = cursor;
        size_t tag_length = length;
        bool weak = length >= 2 && cursor[0] == 'W' && cursor[1] == '/';
        if (weak) {
            tag += 2;
            tag_length -= 2;
        }
        bool quoted = tag_length >= 2 && tag[0] == '"' && tag[tag_length - 1] == '"' &&
                      memchr(tag + 1, '"', tag_length - 2) == NULL;
        if (length == 1 && cursor[0] == '*') {
            command->if_match_any = true;
        } else if (!quoted) {
            api_send_field_error(exchange, 400, "Malformed If-Match header.", "If-Match",
                                 "must be * or a list of entity tags like \"3\"");
            return -1;
        } else if (!weak && tag_length >= 3 && tag_length - 2 <= 18 &&
                   command->if_match_count < SERVICE_IF_MATCH_MAX) {
            int64_t version = 0;
            bool digits = true;
            for (size_t index = 1; digits && index + 1 < tag_length; index++) {
                if (tag[index] < '0' || tag[index] > '9') digits = false;
                else version = version * 10 + (tag[index] - '0');
            }
            if (digits && version > 0) command->if_match_versions[command->if_match_count++] = version;
        }
        cursor = end;
    }
    return 0;
}

static enum exchange_status api_task_command(struct exchange *exchange, enum command_kind kind,
                                             int needs_body) {
    struct api *api = api_of(exchange);
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    char id[UUID_STRING_BYTES] = "";
    if (kind != COMMAND_TASK_CREATE && api_task_id(exchange, id) != 0) return EXCHANGE_DONE;
    if (needs_body && api_require_json(exchange) != 0) return EXCHANGE_DONE;
    struct command command = {
        .kind = kind,
        .user_id = caller.user.id,
        .actor = caller.user.id,
        .task_id = id,
        .body = exchange->request->body.data != NULL ? exchange->request->body.data : "",
        .body_length = exchange->request->body.length,
        .timezone = caller.user.timezone, /* a new task's default */
    };
    char hash[65];
    if (api_idempotency(exchange, &command, hash) != 0) return EXCHANGE_DONE;
    if (kind != COMMAND_TASK_CREATE && api_if_match(exchange, &command) != 0) return EXCHANGE_DONE;
    service_execute(api->service, &command, api_task_written, exchange);
    return EXCHANGE_PENDING;
}

enum exchange_status api_task_create(struct exchange *exchange) {
    return api_task_command(exchange, COMMAND_TASK_CREATE, 1);
}
enum exchange_status api_task_patch(struct exchange *exchange) {
    return api_task_command(exchange, COMMAND_TASK_PATCH, 1);
}
enum exchange_status api_task_delete(struct exchange *exchange) {
    return api_task_command(exchange, COMMAND_TASK_DELETE, 0);
}
enum exchange_status api_task_complete(struct exchange *exchange) {
    return api_task_command(exchange, COMMAND_TASK_COMPLETE, 0);
}
enum exchange_status api_task_uncomplete(struct exchange *exchange) {
    return api_task_command(exchange, COMMAND_TASK_UNCOMPLETE, 0);
}

/* ---- Reads ---------------------------------------------------------------------------- */

enum exchange_status api_task_get(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    char id[UUID_STRING_BYTES];
    if (api_task_id(exchange, id) != 0) return EXCHANGE_DONE;
    struct task task;
    memset(&task, 0, sizeof task);
    int rc = query_task_get(api->db, caller.user.id, id, &task);
    if (rc != 0) {
        response_problem(&exchange->response, rc == ERR_NOTFOUND ? 404 : 503,
                         rc == ERR_NOTFOUND ? "No task with this id exists."
                                            : "The task could not be read.",
                         NULL, 0);
        task_free(&task);
        return EXCHANGE_DONE;
    }
    size_t length = 0;
    char *json = task_to_json_string(&task, &length);
    if (json == NULL ||
        response_set_body(&exchange->response, 200, "application/json", json, length) != 0) {
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
    } else {
        char etag[32];
        snprintf(etag, sizeof etag, "\"%lld\"", (long long)task.version);
        response_header(&exchange->response, "ETag", etag);
        response_header(&exchange->response, "Cache-Control", "no-store");
    }
    mem_free(json);
    task_free(&task);
    return EXCHANGE_DONE;
}

static int api_bad_param(struct exchange *exchange, const char *name, const char *message) {
    api_send_field_error(exchange, 400, "Bad query parameter.", name, message);
    return -1;
}

static int api_list_time(struct exchange *exchange, const char *name, const char *text,
                         bool *has, int64_t *out) {
    if (text == NULL) return 0;
    const char *message = NULL;
    if (timefmt_time_parse(text, strlen(text), out, &message) != 0) {
        return api_bad_param(exchange, name, message != NULL ? message : "must be an RFC 3339 time");
    }
    *has = true;
    return 0;
}

static int api_list_sort(struct exchange *exchange, const char *text,
                         struct task_list_query *query) {
    if (text == NULL) return 0;
    static const struct {
        const char *name;   /* parameter value without "-" */
        enum task_sort sort; /* what it selects */
    } sorts[] = {{"due", TASK_SORT_DUE},         {"priority", TASK_SORT_PRIORITY},
                 {"created", TASK_SORT_CREATED}, {"updated", TASK_SORT_UPDATED},
                 {"title", TASK_SORT_TITLE}};
    query->descending = text[0] == '-';
    const char *name = query->descending ? text + 1 : text;
    for (size_t index = 0; index < sizeof sorts / sizeof sorts[0]; index++) {
        if (strcmp(sorts[index].name, name) == 0) {
            query->sort = sorts[index].sort;
            return 0;
        }
    }
    return api_bad_param(exchange, "sort",
                         "must be due, priority, created, updated or title, optionally with -");
}

/* Collects repeatable tag= and priority= values. */
static int api_list_repeatable(struct exchange *exchange, const struct api_query *params,
                               struct task_list_query *query) {
    for (size_t index = 0; index < params->count; index++) {
        const struct api_query_param *param = &params->params[index];
        if (strcmp(param->name, "tag") == 0) {
            if (query->tag_count >= LIMIT_LIST_FILTER_VALUES) {
                return api_bad_param(exchange, "tag", "may be given at most 20 times");
            }
            if (param->value[0] == '\0' || strlen(param->value) > LIMIT_TASK_TAG_BYTES) {
                return api_bad_param(exchange, "tag", "must be 1 to 64 bytes");
            }
            query->tags[query->tag_count++] = param->value;
        } else if (strcmp(param->name, "priority") == 0) {
            int priority = task_priority_parse(param->value, strlen(param->value));
            if (priority < 0) {
                return api_bad_param(exchange, "priority", "must be low, medium, high or urgent");
            }
            query->priorities |= 1u << priority;
        }
    }
    return 0;
}

static int api_list_parse(struct exchange *exchange, const struct api_query *params,
                          struct task_list_query *query) {
    int failed = 0;
    const char *q = api_query_get(exchange, params, "q", &failed);
    const char *status = failed ? NULL : api_query_get(exchange, params, "status", &failed);
    const char *before = failed ? NULL : api_query_get(exchange, params, "due_before", &failed);
    const char *after = failed ? NULL : api_query_get(exchange, params, "due_after", &failed);
    const char *overdue = failed ? NULL : api_query_get(exchange, params, "overdue", &failed);
    const char *sort = failed ? NULL : api_query_get(exchange, params, "sort", &failed);
    const char *cursor = failed ? NULL : api_query_get(exchange, params, "cursor", &failed);
    if (failed) return -1;
    if (q != NULL && (q[0] == '\0' || strlen(q) > LIMIT_TASK_QUERY_BYTES)) {
        return api_bad_param(exchange, "q", "must be 1 to 512 bytes");
    }
    query->text = q;
    if (status != NULL) {
        if (strcmp(status, "open") == 0) query->status = TASK_STATUS_OPEN;
        else if (strcmp(status, "completed") == 0) query->status = TASK_STATUS_COMPLETED;
        else if (strcmp(status, "all") == 0) query->status = TASK_STATUS_ALL;
        else return api_bad_param(exchange, "status", "must be open, completed or all");
    }
    if (api_list_time(exchange, "due_before", before, &query->has_due_before,
                      &query->due_before_ns) != 0 ||
        api_list_time(exchange, "due_after", after, &query->has_due_after, &query->due_after_ns) !=
            0) {
        return -1;
    }
    if (overdue != NULL) {
        if (strcmp(overdue, "true") == 0) query->overdue = true;
        else if (strcmp(overdue, "false") != 0) {
            return api_bad_param(exchange, "overdue", "must be true or false");
        }
    }
    if (cursor != NULL && (cursor[0] == '\0' || strlen(cursor) > LIMIT_LIST_CURSOR_BYTES)) {
        return api_bad_param(exchange, "cursor", "is not a cursor from a previous page");
    }
    query->cursor = cursor;
    if (api_list_sort(exchange, sort, query) != 0) return -1;
    if (api_list_repeatable(exchange, params, query) != 0) return -1;
    return api_query_limit(exchange, params, &query->limit);
}

enum exchange_status api_task_list(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    static const char *const allowed[] = {"q",       "tag",  "priority", "status", "due_before",
                                          "due_after", "overdue", "sort", "limit", "cursor",
                                          NULL};
    struct api_query *params = mem_alloc(sizeof *params);
    if (params == NULL) {
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
        return EXCHANGE_DONE;
    }
    struct task_list_query query;
    memset(&query, 0, sizeof query);
    query.owner_id = caller.user.id;
    query.now_ns = api->clock->wall_ns(api->clock);
    if (api_query_parse(exchange, params, allowed) == 0 &&
        api_list_parse(exchange, params, &query) == 0) {
        struct buf body;
        buf_init(&body, 64 * 1024 * 1024);
        struct task_errors errors = {.count = 0};
        int rc = query_task_list(api->db, &query, &body, &errors);
        if (rc == ERR_INVAL) api_send_problem(exchange, 400, "Bad query parameter.", &errors);
        else if (rc != 0) response_problem(&exchange->response, 503, "The list could not be read.", NULL, 0);
        else api_send_json(exchange, 200, &body);
        buf_free(&body);
    }
    mem_free(params);
    return EXCHANGE_DONE;
}
