/*
 * api_admin.c - the dead-letter queue's admin routes (API.md "Operations"):
 *   GET  /api/v1/admin/dlq?state=&limit=&cursor=  newest first, keyset pages
 *   POST /api/v1/admin/dlq/{id}/redrive           202 with the entry
 * Both are for admins only (401 without a token, 403 for other users) and
 * validate like the other list routes: an unknown, repeated or bad query
 * parameter is a 400 problem naming it.
 */
#include "api.h"

#include "../base/err.h"
#include "../base/mem.h"
#include "../base/uuid.h"
#include "../consumer/deadletter.h"

#include <string.h>

/* Largest DLQ list body: a page stops at DEADLETTER_LIST_BYTES_MAX of items,
 * and the last item may carry a whole event-log record on top. */
#define API_ADMIN_DLQ_BODY_BYTES (16u * 1024 * 1024)

/* Authenticates an admin and checks the DLQ is there. -1 with the response
 * set otherwise. */
static int api_admin_dlq_begin(struct exchange *exchange) {
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return -1;
    if (api_require_admin(exchange, &caller) != 0) return -1;
    if (api_of(exchange)->deadletter == NULL) {
        response_problem(&exchange->response, 503, "The dead-letter queue is not available.",
                         NULL, 0);
        return -1;
    }
    return 0;
}

/* Reads state, cursor and limit. -1 with a 400 naming the parameter. */
static int api_admin_dlq_params(struct exchange *exchange, const struct api_query *params,
                                const char **state, const char **cursor, size_t *limit) {
    int failed = 0;
    *state = api_query_get(exchange, params, "state", &failed);
    if (!failed) *cursor = api_query_get(exchange, params, "cursor", &failed);
    if (failed) return -1;
    if (*state != NULL && !deadletter_state_valid(*state)) {
        api_send_field_error(exchange, 400, "Bad query parameter.", "state",
                             "must be dead, redriving, redriven or failed_again");
        return -1;
    }
    return api_query_limit(exchange, params, limit);
}

enum exchange_status api_admin_dlq_list(struct exchange *exchange) {
    if (api_admin_dlq_begin(exchange) != 0) return EXCHANGE_DONE;
    static const char *const allowed[] = {"state", "cursor", "limit", NULL};
    struct api_query *params = mem_alloc(sizeof *params);
    if (params == NULL) {
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
        return EXCHANGE_DONE;
    }
    const char *state = NULL, *cursor = NULL;
    size_t limit = 0;
    if (api_query_parse(exchange, params, allowed) == 0 &&
        api_admin_dlq_params(exchange, params, &state, &cursor, &limit) == 0) {
        struct buf body;
        buf_init(&body, API_ADMIN_DLQ_BODY_BYTES);
        int rc = deadletter_list_json(api_of(exchange)->deadletter, state, limit, cursor, &body);
        if (rc == 0) api_send_json(exchange, 200, &body);
        else if (rc == ERR_INVAL)
            api_send_field_error(exchange, 400, "Bad query parameter.", "cursor",
                                 "is not a cursor this list returned");
        else response_problem(&exchange->response, 503, "The list could not be read.", NULL, 0);
        buf_free(&body);
    }
    mem_free(params);
    return EXCHANGE_DONE;
}

enum exchange_status api_admin_dlq_redrive(struct exchange *exchange) {
    if (api_admin_dlq_begin(exchange) != 0) return EXCHANGE_DONE;
    char raw[64], id[UUID_STRING_BYTES];
    const char *text = exchange_param(exchange, "id", raw, sizeof raw);
    if (text == NULL || uuid_parse(text, strlen(text), id) != 0) {
        response_problem(&exchange->response, 404, "No dead-letter entry with this id exists.",
                         NULL, 0);
        return EXCHANGE_DONE;
    }
    struct buf body;
    buf_init(&body, API_ADMIN_DLQ_BODY_BYTES);
    int rc = deadletter_redrive(api_of(exchange)->deadletter, id, &body);
    if (rc == 0) api_send_json(exchange, 202, &body);
    else if (rc == ERR_NOTFOUND)
        response_problem(&exchange->response, 404, "No dead-letter entry with this id exists.",
                         NULL, 0);
    else if (rc == ERR_CONFLICT)
        response_problem(&exchange->response, 409,
                         "This entry is already being redriven or was redriven.", NULL, 0);
    else
        response_problem(&exchange->response, 503,
                         "The entry's consumer cannot take it now; it stays in the queue.", NULL,
                         0);
    buf_free(&body);
    return EXCHANGE_DONE;
}
