/*
 * api_push.c - the Web Push routes: the server's VAPID public key (the
 * browser's applicationServerKey) and the caller's push subscriptions.
 *
 *   GET    /api/v1/push/vapid                -> {"public_key": "<b64url>"}
 *   POST   /api/v1/push/subscriptions        PushSubscription.toJSON() -> 201
 *                                            (200 with the existing one for an
 *                                            endpoint already subscribed)
 *   GET    /api/v1/push/subscriptions        -> {"items": [...], "next_cursor": null}
 *   DELETE /api/v1/push/subscriptions/{id}   -> 204 (404 unknown or another user's)
 *
 * Writes append push.subscribed / push.unsubscribed through the command layer
 * (COMMAND_EVENT_APPEND) and answer once the projection has applied them; a
 * new subscription is read back by endpoint, so two racing POSTs of one
 * endpoint both answer with the one that was stored first.
 */
#include "api.h"

#include "../base/base64.h"
#include "../base/err.h"
#include "../base/json.h"
#include "../base/mem.h"
#include "../base/timefmt.h"
#include "../base/uuid.h"
#include "../notify/httpc.h"
#include "../notify/push_store.h"
#include "../notify/webpush.h"

#include <yyjson.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define API_PUSH_LOCATION "/api/v1/push/subscriptions/"
#define API_PUSH_JSON_DEPTH 4 /* {"keys":{...}} nests two deep; a little slack */

/* Ids of new subscriptions; the API runs on the loop thread only. */
static struct uuid_v7_generator api_push_ids = {.last_time_ms = -1};

/* ---- Rendering ------------------------------------------------------------------------ */

/* Adds {"id","endpoint","created_at"} for one subscription to `array`. */
static bool api_push_item(yyjson_mut_doc *doc, yyjson_mut_val *array,
                          const struct push_subscription *subscription) {
    char created[TIMEFMT_TIME_BYTES];
    timefmt_time_format(subscription->created_ns, created);
    yyjson_mut_val *item = yyjson_mut_obj(doc);
    return item != NULL && yyjson_mut_obj_add_strcpy(doc, item, "id", subscription->id) &&
           yyjson_mut_obj_add_strcpy(doc, item, "endpoint", subscription->endpoint) &&
           yyjson_mut_obj_add_strcpy(doc, item, "created_at", created) &&
           (array == NULL ? (yyjson_mut_doc_set_root(doc, item), true)
                          : yyjson_mut_arr_append(array, item));
}

/* Sends `doc` as the JSON body with `status`, then frees it. */
static void api_push_send_doc(struct exchange *exchange, int status, yyjson_mut_doc *doc,
                              bool ok) {
    size_t length = 0;
    char *text = ok ? yyjson_mut_write_opts(doc, 0, &json_allocator, &length, NULL) : NULL;
    struct buf body = {.data = text, .length = length, .capacity = length, .limit = length};
    if (text == NULL) response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
    else api_send_json(exchange, status, &body);
    mem_free(text);
    yyjson_mut_doc_free(doc);
}

static void api_push_send_one(struct exchange *exchange, int status,
                              const struct push_subscription *subscription) {
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    bool ok = doc != NULL && api_push_item(doc, NULL, subscription);
    api_push_send_doc(exchange, status, doc, ok);
    if (ok && status == 201) {
        char location[sizeof API_PUSH_LOCATION + UUID_STRING_BYTES];
        snprintf(location, sizeof location, "%s%s", API_PUSH_LOCATION, subscription->id);
        response_header(&exchange->response, "Location", location);
    }
}

/* ---- GET /push/vapid ------------------------------------------------------------------ */

enum exchange_status api_push_vapid(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    if (api->vapid == NULL) {
        response_problem(&exchange->response, 503, "Web Push is not available on this server.",
                         NULL, 0);
        return EXCHANGE_DONE;
    }
    struct buf body;
    buf_init(&body, 256);
    if (buf_printf(&body, "{\"public_key\":\"%s\"}", api->vapid->public_key_b64url) != 0)
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
    else
        api_send_json(exchange, 200, &body);
    buf_free(&body);
    return EXCHANGE_DONE;
}

/* ---- POST /push/subscriptions --------------------------------------------------------- */

/* A validated subscription request. */
struct api_push_input {
    const char *endpoint;                       /* as sent (points into the parsed body) */
    char p256dh[PUSH_P256DH_TEXT_BYTES];        /* canonical base64url */
    char auth[PUSH_AUTH_TEXT_BYTES];            /* canonical base64url */
};

/* Checks one member of "keys" and writes its canonical text. */
static void api_push_key(yyjson_val *keys, const char *name, struct task_errors *errors,
                         char *out, size_t out_size) {
    char field[16];
    snprintf(field, sizeof field, "keys.%s", name);
    yyjson_val *value = yyjson_obj_get(keys, name);
    if (value == NULL) {
        task_errors_add(errors, field, "is required");
        return;
    }
    if (!yyjson_is_str(value)) {
        task_errors_add(errors, field, "must be a base64url string");
        return;
    }
    uint8_t bytes[WEBPUSH_P256_PUBLIC_BYTES];
    const char *message = NULL;
    bool p256dh = strcmp(name, "p256dh") == 0;
    int rc = p256dh ? webpush_p256dh_parse(yyjson_get_str(value), bytes, &message)
                    : webpush_auth_parse(yyjson_get_str(value), bytes, &message);
    if (rc != 0) {
        task_errors_add(errors, field, message);
        return;
    }
    base64_encode(BASE64_URL, bytes, p256dh ? WEBPUSH_P256_PUBLIC_BYTES : WEBPUSH_AUTH_BYTES, out,
                  out_size, NULL);
}

/* Validates the body: endpoint, keys.p256dh, keys.auth (and nothing else but
 * expirationTime, which is accepted and ignored). */
static void api_push_validate(struct api *api, yyjson_val *root, struct api_push_input *input,
                              struct task_errors *errors) {
    size_t index, max;
    yyjson_val *key, *value;
    yyjson_obj_foreach(root, index, max, key, value) {
        const char *name = yyjson_get_str(key);
        if (strcmp(name, "endpoint") != 0 && strcmp(name, "keys") != 0 &&
            strcmp(name, "expirationTime") != 0)
            task_errors_add(errors, name, "is not a field of a push subscription");
    }
    yyjson_val *endpoint = yyjson_obj_get(root, "endpoint");
    struct httpc_url url;
    const char *message = NULL;
    if (endpoint == NULL) task_errors_add(errors, "endpoint", "is required");
    else if (!yyjson_is_str(endpoint)) task_errors_add(errors, "endpoint", "must be a string");
    else if (httpc_url_parse(yyjson_get_str(endpoint), yyjson_get_len(endpoint),
                             api->config->notify_allow_http != 0, &url, &message) != 0)
        task_errors_add(errors, "endpoint", message);
    else input->endpoint = yyjson_get_str(endpoint);
    yyjson_val *expiration = yyjson_obj_get(root, "expirationTime");
    if (expiration != NULL && !yyjson_is_null(expiration) && !yyjson_is_num(expiration))
        task_errors_add(errors, "expirationTime", "must be null or a number");
    yyjson_val *keys = yyjson_obj_get(root, "keys");
    if (keys == NULL) {
        task_errors_add(errors, "keys", "is required");
        return;
    }
    if (!yyjson_is_obj(keys)) {
        task_errors_add(errors, "keys", "must be an object with p256dh and auth");
        return;
    }
    yyjson_obj_foreach(keys, index, max, key, value) {
        const char *name = yyjson_get_str(key);
        if (strcmp(name, "p256dh") != 0 && strcmp(name, "auth") != 0) {
            char field[64];
            snprintf(field, sizeof field, "keys.%.50s", name);
            task_errors_add(errors, field, "is not a key of a push subscription");
        }
    }
    api_push_key(keys, "p256dh", errors, input->p256dh, sizeof input->p256dh);
    api_push_key(keys, "auth", errors, input->auth, sizeof input->auth);
}

/* Parses the JSON body; on failure the 400 is set and NULL returned. */
static yyjson_doc *api_push_read_body(struct exchange *exchange) {
    if (api_require_json(exchange) != 0) return NULL;
    const struct buf *body = &exchange->request->body;
    const char *text = body->data != NULL ? body->data : "";
    if (!json_depth_ok(text, body->length, API_PUSH_JSON_DEPTH)) {
        api_send_field_error(exchange, 400, "The body is not a JSON object.", "",
                             "nests too deeply");
        return NULL;
    }
    yyjson_read_err error;
    yyjson_doc *doc = yyjson_read_opts((char *)text, body->length, 0, &json_allocator, &error);
    if (doc == NULL || !yyjson_is_obj(yyjson_doc_get_root(doc))) {
        api_send_field_error(exchange, 400, "The body is not a JSON object.", "",
                             doc == NULL ? error.msg : "must be a JSON object");
        yyjson_doc_free(doc);
        return NULL;
    }
    return doc;
}

/* What the command's callback needs to answer. */
struct api_push_pending {
    struct exchange *exchange;            /* the request being answered */
    char user_id[UUID_STRING_BYTES];      /* the caller */
    char id[UUID_STRING_BYTES];           /* the id this request proposed */
    char *endpoint;                       /* to read the stored row back (owned) */
};

static void api_push_subscribed(void *arg, const struct command_result *result) {
    struct api_push_pending *pending = arg;
    struct exchange *exchange = pending->exchange;
    if (result->status >= 400) {
        api_send_result(exchange, result, NULL);
    } else {
        struct push_subscription stored;
        int rc = push_store_find_endpoint(api_of(exchange)->db, pending->user_id,
                                          pending->endpoint, &stored);
        if (rc != 0)
            response_problem(&exchange->response, 503,
                             "The subscription could not be read back; retry.", NULL, 0);
        else
            api_push_send_one(exchange, strcmp(stored.id, pending->id) == 0 ? 201 : 200, &stored);
    }
    mem_free(pending->endpoint);
    mem_free(pending);
    exchange_finish(exchange);
}

/* The push.subscribed data object. NULL on allocation failure. */
static char *api_push_event_data(const struct api_push_input *input, const char *id,
                                 const char *created_at, size_t *length) {
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    yyjson_mut_val *root = doc != NULL ? yyjson_mut_obj(doc) : NULL;
    yyjson_mut_val *keys = doc != NULL ? yyjson_mut_obj(doc) : NULL;
    char *text = NULL;
    if (root != NULL && keys != NULL && yyjson_mut_obj_add_strcpy(doc, root, "id", id) &&
        yyjson_mut_obj_add_strcpy(doc, root, "endpoint", input->endpoint) &&
        yyjson_mut_obj_add_strcpy(doc, keys, "p256dh", input->p256dh) &&
        yyjson_mut_obj_add_strcpy(doc, keys, "auth", input->auth) &&
        yyjson_mut_obj_add_val(doc, root, "keys", keys) &&
        yyjson_mut_obj_add_strcpy(doc, root, "created_at", created_at)) {
        yyjson_mut_doc_set_root(doc, root);
        text = yyjson_mut_write_opts(doc, 0, &json_allocator, length, NULL);
    }
    yyjson_mut_doc_free(doc);
    return text;
}

/* Appends push.subscribed for a new id; the answer comes in api_push_subscribed. */
static enum exchange_status api_push_append(struct exchange *exchange, const char *user_id,
                                            const struct api_push_input *input) {
    struct api *api = api_of(exchange);
    int64_t now_ns = api->clock->wall_ns(api->clock);
    struct api_push_pending *pending = mem_calloc(1, sizeof *pending);
    char created_at[TIMEFMT_TIME_BYTES];
    timefmt_time_format(now_ns, created_at);
    size_t length = 0;
    char *data = NULL;
    if (pending != NULL) {
        pending->exchange = exchange;
        snprintf(pending->user_id, sizeof pending->user_id, "%s", user_id);
        pending->endpoint = mem_strdup(input->endpoint);
    }
    int rc = pending == NULL || pending->endpoint == NULL ? ERR_NOMEM
             : uuid_v7_generate(&api_push_ids, now_ns / 1000000, pending->id);
    if (rc == 0) data = api_push_event_data(input, pending->id, created_at, &length);
    if (rc != 0 || data == NULL) {
        if (pending != NULL) mem_free(pending->endpoint);
        mem_free(pending);
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
        return EXCHANGE_DONE;
    }
    struct command command = {
        .kind = COMMAND_EVENT_APPEND,
        .user_id = user_id,
        .actor = user_id,
        .event_type = "push.subscribed",
        .subject = pending->id,
        .body = data,
        .body_length = length,
    };
    service_execute(api->service, &command, api_push_subscribed, pending);
    mem_free(data);
    return EXCHANGE_PENDING;
}

enum exchange_status api_push_subscribe(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    yyjson_doc *doc = api_push_read_body(exchange);
    if (doc == NULL) return EXCHANGE_DONE;
    struct api_push_input input;
    memset(&input, 0, sizeof input);
    struct task_errors errors = {.count = 0};
    api_push_validate(api, yyjson_doc_get_root(doc), &input, &errors);
    enum exchange_status status = EXCHANGE_DONE;
    struct push_subscription existing;
    int found = errors.count == 0
                    ? push_store_find_endpoint(api->db, caller.user.id, input.endpoint, &existing)
                    : ERR_INVAL;
    int64_t count = found == ERR_NOTFOUND ? push_store_count(api->db, caller.user.id) : 0;
    if (errors.count > 0) {
        api_send_problem(exchange, 422, "The push subscription is invalid.", &errors);
    } else if (found == 0) {
        api_push_send_one(exchange, 200, &existing);
    } else if (found != ERR_NOTFOUND || count < 0) {
        response_problem(&exchange->response, 503, "The subscriptions could not be read.", NULL,
                         0);
    } else if (count >= PUSH_SUBSCRIPTIONS_PER_USER_MAX) {
        api_send_field_error(exchange, 422, "Too many push subscriptions.", "endpoint",
                             "would exceed 16 push subscriptions for this user; delete one first");
    } else {
        status = api_push_append(exchange, caller.user.id, &input);
    }
    yyjson_doc_free(doc);
    return status;
}

/* ---- GET /push/subscriptions ---------------------------------------------------------- */

enum exchange_status api_push_list(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    static const char *const allowed[] = {"limit", NULL};
    struct api_query *query = mem_alloc(sizeof *query);
    if (query == NULL) {
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
        return EXCHANGE_DONE;
    }
    size_t limit = PUSH_SUBSCRIPTIONS_PER_USER_MAX;
    int bad = api_query_parse(exchange, query, allowed) != 0 ||
              api_query_limit(exchange, query, &limit) != 0;
    mem_free(query);
    if (bad) return EXCHANGE_DONE;
    if (limit > PUSH_SUBSCRIPTIONS_PER_USER_MAX) limit = PUSH_SUBSCRIPTIONS_PER_USER_MAX;
    struct push_subscription *items = mem_calloc(limit, sizeof *items);
    size_t count = 0;
    int rc = items != NULL ? push_store_list(api->db, caller.user.id, items, limit, &count)
                           : ERR_NOMEM;
    yyjson_mut_doc *doc = rc == 0 ? yyjson_mut_doc_new(NULL) : NULL;
    yyjson_mut_val *root = doc != NULL ? yyjson_mut_obj(doc) : NULL;
    yyjson_mut_val *array = doc != NULL ? yyjson_mut_arr(doc) : NULL;
    bool ok = root != NULL && array != NULL;
    for (size_t index = 0; ok && index < count; index++)
        ok = api_push_item(doc, array, &items[index]);
    ok = ok && yyjson_mut_obj_add_val(doc, root, "items", array) &&
         yyjson_mut_obj_add_null(doc, root, "next_cursor");
    if (ok) yyjson_mut_doc_set_root(doc, root);
    mem_free(items);
    if (rc != 0 && rc != ERR_NOMEM) {
        response_problem(&exchange->response, 503, "The subscriptions could not be read.", NULL,
                         0);
        yyjson_mut_doc_free(doc);
        return EXCHANGE_DONE;
    }
    api_push_send_doc(exchange, 200, doc, ok);
    return EXCHANGE_DONE;
}

/* ---- DELETE /push/subscriptions/{id} -------------------------------------------------- */

static void api_push_unsubscribed(void *arg, const struct command_result *result) {
    struct exchange *exchange = arg;
    if (result->status >= 400) api_send_result(exchange, result, NULL);
    else response_set_static(&exchange->response, 204, NULL, "", 0);
    exchange_finish(exchange);
}

enum exchange_status api_push_unsubscribe(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    char raw[64];
    char id[UUID_STRING_BYTES];
    const char *text = exchange_param(exchange, "id", raw, sizeof raw);
    struct push_subscription existing;
    int rc = text == NULL || uuid_parse(text, strlen(text), id) != 0
                 ? ERR_NOTFOUND
                 : push_store_get(api->db, caller.user.id, id, &existing);
    if (rc != 0) {
        response_problem(&exchange->response, rc == ERR_NOTFOUND ? 404 : 503,
                         rc == ERR_NOTFOUND ? "No push subscription with this id exists."
                                            : "The subscription could not be read.",
                         NULL, 0);
        return EXCHANGE_DONE;
    }
    push_store_unsubscribe(api->service, caller.user.id, id, caller.user.id,
                           api_push_unsubscribed, exchange);
    return EXCHANGE_PENDING;
}
