/*
 * api.c - what every API handler shares: the route table, start-up (token
 * keys), authentication, query-string parsing, idempotency hashing and the
 * rendering of results and problems.
 */
#include "api.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/mem.h"
#include "../base/random.h"

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <yyjson.h>

const struct route api_routes[] = {
    {"POST", "/api/v1/auth/signup", api_signup},
    {"POST", "/api/v1/auth/login", api_login},
    {"GET", "/api/v1/me", api_me_get},
    {"PATCH", "/api/v1/me", api_me_patch},
    {"POST", "/api/v1/tasks", api_task_create},
    {"GET", "/api/v1/tasks", api_task_list},
    {"GET", "/api/v1/tasks/{id}", api_task_get},
    {"PATCH", "/api/v1/tasks/{id}", api_task_patch},
    {"DELETE", "/api/v1/tasks/{id}", api_task_delete},
    {"POST", "/api/v1/tasks/{id}/complete", api_task_complete},
    {"POST", "/api/v1/tasks/{id}/uncomplete", api_task_uncomplete},
    {"GET", "/api/v1/tasks/{id}/events", api_task_events},
    {"GET", "/api/v1/events", api_events},
    {"GET", "/api/v1/audit", api_audit},
    {"GET", "/api/v1/admin/users", api_admin_users},
    {"GET", "/api/v1/admin/consumers", api_admin_consumers},
    {"GET", "/api/v1/admin/dlq", api_admin_dlq_list},
    {"POST", "/api/v1/admin/dlq/{id}/redrive", api_admin_dlq_redrive},
    {"GET", "/api/v1/openapi.json", api_openapi},
    {"GET", "/api/v1/ws", api_ws},
    {"GET", "/api/v1/push/vapid", api_push_vapid},
    {"POST", "/api/v1/push/subscriptions", api_push_subscribe},
    {"GET", "/api/v1/push/subscriptions", api_push_list},
    {"DELETE", "/api/v1/push/subscriptions/{id}", api_push_unsubscribe},
};
const size_t api_route_count = sizeof api_routes / sizeof api_routes[0];

/* ---- Start-up --------------------------------------------------------------- */

/* Reads a secret file (32..128 bytes). */
static int api_read_secret(const char *path, uint8_t *secret, size_t *length) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_from_errno(errno);
    ssize_t got = read(fd, secret, LIMIT_JWT_SECRET_BYTES_MAX + 1);
    close(fd);
    if (got < LIMIT_JWT_SECRET_BYTES_MIN || got > LIMIT_JWT_SECRET_BYTES_MAX) return ERR_INVAL;
    *length = (size_t)got;
    return 0;
}

/* Creates <data_dir>/jwt-secret with 32 random bytes, mode 0600, durably. */
static int api_create_secret(const char *path) {
    uint8_t secret[32];
    int rc = random_fill(secret, sizeof secret);
    if (rc != 0) return rc;
    char temporary[4200];
    snprintf(temporary, sizeof temporary, "%s.tmp", path);
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return err_from_errno(errno);
    int ok = write(fd, secret, sizeof secret) == (ssize_t)sizeof secret && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(temporary, path) != 0) {
        unlink(temporary);
        return ERR_IO;
    }
    return 0;
}

static int api_load_keys(struct api *api, const struct config *config) {
    char path[4200];
    if (config->auth_jwt_secret_file[0] != '\0') {
        snprintf(path, sizeof path, "%s", config->auth_jwt_secret_file);
    } else {
        snprintf(path, sizeof path, "%s/jwt-secret", config->data_dir);
        if (access(path, F_OK) != 0 && api_create_secret(path) != 0) {
            LOG_ERROR("api", "cannot create the token secret", "path=%s", path);
            return ERR_CONFIG;
        }
    }
    uint8_t secret[LIMIT_JWT_SECRET_BYTES_MAX + 1];
    size_t length = 0;
    jwt_config_init(&api->jwt);
    if (api_read_secret(path, secret, &length) != 0 ||
        jwt_config_add_key(&api->jwt, "", secret, length) != 0 ||
        jwt_config_set_issuer(&api->jwt, config->auth_issuer) != 0 ||
        jwt_config_set_audience(&api->jwt, config->auth_audience) != 0 ||
        jwt_config_set_leeway(&api->jwt, config->auth_leeway_s) != 0) {
        LOG_ERROR("api", "unusable token secret (32..128 bytes) or issuer/audience", "path=%s",
                  path);
        return ERR_CONFIG;
    }
    jwt_config_init(&api->jwt_external);
    if (config->auth_external_issuer[0] == '\0') return 0;
    if (api_read_secret(config->auth_external_secret_file, secret, &length) != 0 ||
        jwt_config_add_key(&api->jwt_external, "", secret, length) != 0 ||
        jwt_config_set_issuer(&api->jwt_external, config->auth_external_issuer) != 0 ||
        jwt_config_set_audience(&api->jwt_external, config->auth_external_audience) != 0 ||
        jwt_config_set_leeway(&api->jwt_external, config->auth_leeway_s) != 0) {
        LOG_ERROR("api", "unusable external issuer settings (secret file 32..128 bytes)",
                  "path=%s", config->auth_external_secret_file);
        return ERR_CONFIG;
    }
    return 0;
}

int api_init(struct api *api, const struct config *config, uv_loop_t *loop, struct db *db,
             struct service *service, struct evlog *evlog) {
    memset(api, 0, sizeof *api);
    api->config = config;
    api->loop = loop;
    api->clock = clock_system();
    api->db = db;
    api->service = service;
    api->evlog = evlog;
    map_init(&api->throttle_users, LIMIT_LOGIN_THROTTLE_ENTRIES);
    map_init(&api->throttle_addresses, LIMIT_LOGIN_THROTTLE_ENTRIES);
    map_init(&api->token_cache, API_TOKEN_CACHE_ENTRIES);
    return api_load_keys(api, config);
}

static void api_free_throttle(struct map *map) {
    size_t cursor = 0;
    struct map_slot *slot;
    while ((slot = map_next(map, &cursor)) != NULL) mem_free(slot->value);
    map_free(map);
}

void api_free(struct api *api) {
    api_free_throttle(&api->throttle_users);
    api_free_throttle(&api->throttle_addresses);
    api_free_throttle(&api->token_cache);
}

/* ---- Responses ------------------------------------------------------------------ */

void api_send_json(struct exchange *exchange, int status, const struct buf *body) {
    if (response_set_body(&exchange->response, status, "application/json", body->data,
                          body->length) != 0) {
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
    }
    response_header(&exchange->response, "Cache-Control", "no-store");
}

void api_send_problem(struct exchange *exchange, int status, const char *detail,
                      const struct task_errors *errors) {
    struct problem_field fields[TASK_ERRORS_MAX];
    size_t count = 0;
    for (size_t index = 0; errors != NULL && index < errors->count && index < TASK_ERRORS_MAX;
         index++) {
        fields[count].field = errors->items[index].field;
        fields[count].message = errors->items[index].message;
        count++;
    }
    response_problem(&exchange->response, status, detail, count > 0 ? fields : NULL, count);
    response_header(&exchange->response, "Cache-Control", "no-store");
}

void api_send_field_error(struct exchange *exchange, int status, const char *detail,
                          const char *field, const char *message) {
    struct problem_field one = {field, message};
    response_problem(&exchange->response, status, detail, &one, 1);
    response_header(&exchange->response, "Cache-Control", "no-store");
}

/* ETag: "<version>", formatted by hand (this is on every write). */
static void api_set_etag(struct exchange *exchange, int64_t version) {
    char digits[24];
    size_t count = 0;
    uint64_t value = version > 0 ? (uint64_t)version : 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0 && count < sizeof digits);
    char etag[32];
    size_t used = 0;
    etag[used++] = '"';
    while (count > 0) etag[used++] = digits[--count];
    etag[used++] = '"';
    etag[used] = '\0';
    response_header(&exchange->response, "ETag", etag);
}

/* A replayed body carries the id and version the first response had. */
static void api_replay_headers(const struct command_result *result, char *id, size_t id_size,
                               int64_t *version) {
    yyjson_doc *doc = yyjson_read(result->body.data, result->body.length, 0);
    yyjson_val *root = yyjson_doc_get_root(doc);
    const char *text = yyjson_get_str(yyjson_obj_get(root, "id"));
    if (text != NULL) snprintf(id, id_size, "%s", text);
    yyjson_val *number = yyjson_obj_get(root, "version");
    if (yyjson_is_int(number)) *version = yyjson_get_sint(number);
    yyjson_doc_free(doc);
}

void api_send_result(struct exchange *exchange, const struct command_result *result,
                     const char *location_prefix) {
    if (result->status >= 400) {
        api_send_problem(exchange, result->status, result->detail, &result->errors);
        if (result->retry_after_s > 0) {
            char seconds[16];
            snprintf(seconds, sizeof seconds, "%d", result->retry_after_s);
            response_header(&exchange->response, "Retry-After", seconds);
        }
        if (result->status == 412 && result->version > 0) api_set_etag(exchange, result->version);
        return;
    }
    char id[UUID_STRING_BYTES];
    memcpy(id, result->id, sizeof id);
    id[sizeof id - 1] = '\0';
    int64_t version = result->version;
    if (result->replayed && result->body.length > 0) {
        api_replay_headers(result, id, sizeof id, &version);
    }
    if (result->status == 204) {
        response_set_static(&exchange->response, 204, NULL, "", 0);
    } else {
        api_send_json(exchange, result->status, &result->body);
    }
    if (version > 0 && result->status != 204) api_set_etag(exchange, version);
    if (result->status == 201 && location_prefix != NULL && id[0] != '\0') {
        char location[128];
        size_t prefix = strlen(location_prefix);
        size_t length = strlen(id);
        if (prefix + length < sizeof location) {
            memcpy(location, location_prefix, prefix);
            memcpy(location + prefix, id, length + 1);
            response_header(&exchange->response, "Location", location);
        }
    }
    if (result->replayed) response_header(&exchange->response, "Idempotent-Replayed", "true");
}

/* ---- Authentication ---------------------------------------------------------------- */

static void api_unauthorized(struct exchange *exchange, const char *detail) {
    response_problem(&exchange->response, 401, detail, NULL, 0);
    response_header(&exchange->response, "WWW-Authenticate", "Bearer realm=\"docket\"");
    response_header(&exchange->response, "Cache-Control", "no-store");
}

/* An external issuer's subject maps to the Docket user named
 * "<issuer-host-free subject>"; it must already exist (created by an admin
 * with `docket user add`), so a foreign token never creates accounts. */
static int api_external_user(struct api *api, const struct jwt_claims *claims,
                             struct user_record *user) {
    return query_user_by_name(api->db, claims->subject, user);
}

static void api_remember_token(struct api *api, const char *token, size_t length,
                               const struct jwt_claims *claims, int external) {
    if (length > API_TOKEN_CACHE_BYTES) return;
    struct api_token *entry = map_get(&api->token_cache, token, length);
    if (entry == NULL) {
        if (api->token_cache.count >= API_TOKEN_CACHE_ENTRIES) {
            api_free_throttle(&api->token_cache); /* frees values and the map */
            map_init(&api->token_cache, API_TOKEN_CACHE_ENTRIES);
        }
        entry = mem_alloc(sizeof *entry);
        if (entry == NULL) return;
        if (map_put(&api->token_cache, token, length, entry) != 0) {
            mem_free(entry);
            return;
        }
    }
    snprintf(entry->subject, sizeof entry->subject, "%s", claims->subject);
    entry->expires_at_s = claims->expires_at_s;
    entry->external = external;
}

int api_authenticate(struct exchange *exchange, struct api_caller *caller) {
    const char *header = request_header(exchange->request, "authorization");
    if (header == NULL) {
        api_unauthorized(exchange, "A bearer token is required.");
        return -1;
    }
    if (strncasecmp(header, "Bearer ", 7) != 0) {
        api_unauthorized(exchange, "The Authorization header must be \"Bearer <token>\".");
        return -1;
    }
    const char *token = header + 7;
    while (*token == ' ') token++;
    int64_t expires_at_s = 0;
    return api_authenticate_token(exchange, token, caller, &expires_at_s);
}

int api_authenticate_token(struct exchange *exchange, const char *token,
                           struct api_caller *caller, int64_t *expires_at_s) {
    struct api *api = api_of(exchange);
    int64_t now_s = api->clock->wall_ns(api->clock) / 1000000000;
    size_t token_length = strlen(token);
    struct api_token *cached = token_length <= API_TOKEN_CACHE_BYTES
                                   ? map_get(&api->token_cache, token, token_length)
                                   : NULL;
    if (cached != NULL && now_s < cached->expires_at_s + api->config->auth_leeway_s) {
        *expires_at_s = cached->expires_at_s;
        int found = cached->external ? query_user_by_name(api->db, cached->subject, &caller->user)
                                     : query_user_by_id(api->db, cached->subject, &caller->user);
        if (found != 0) {
            api_unauthorized(exchange, "The token names no existing user.");
            return -1;
        }
        return 0;
    }
    struct jwt_claims claims;
    enum jwt_failure failure = JWT_FAILURE_NONE;
    int rc = jwt_verify(&api->jwt, token, strlen(token), now_s, &claims, &failure);
    int external = 0;
    if (rc == ERR_DENIED && api->jwt_external.key_count > 0) {
        enum jwt_failure external_failure;
        if (jwt_verify(&api->jwt_external, token, strlen(token), now_s, &claims,
                       &external_failure) == 0) {
            rc = 0;
            external = 1;
        }
    }
    if (rc != 0) {
        LOG_DEBUG("api", "token refused", "reason=%s", jwt_failure_name(failure));
        api_unauthorized(exchange, rc == ERR_DENIED ? "The token is invalid or expired."
                                                    : "The token could not be checked.");
        return -1;
    }
    rc = external ? api_external_user(api, &claims, &caller->user)
                  : query_user_by_id(api->db, claims.subject, &caller->user);
    if (rc != 0) {
        api_unauthorized(exchange, "The token names no existing user.");
        return -1;
    }
    api_remember_token(api, token, token_length, &claims, external);
    *expires_at_s = claims.expires_at_s;
    return 0;
}

int api_require_admin(struct exchange *exchange, const struct api_caller *caller) {
    if (strcmp(caller->user.role, "admin") == 0) return 0;
    response_problem(&exchange->response, 403, "This route is for administrators.", NULL, 0);
    return -1;
}

int api_issue_token(struct api *api, const struct user_record *user, char *out, size_t size) {
    struct jwt_claims claims;
    memset(&claims, 0, sizeof claims);
    snprintf(claims.subject, sizeof claims.subject, "%s", user->id);
    snprintf(claims.role, sizeof claims.role, "%s", user->role);
    int64_t now_s = api->clock->wall_ns(api->clock) / 1000000000;
    claims.issued_at_s = now_s;
    claims.expires_at_s = now_s + api->config->auth_token_ttl_s;
    size_t length = 0;
    return jwt_sign(&api->jwt, &claims, out, size, &length);
}

/* ---- Requests ------------------------------------------------------------------------ */

int api_require_json(struct exchange *exchange) {
    const char *type = request_header(exchange->request, "content-type");
    size_t length = 0;
    if (type != NULL) {
        const char *end = strchr(type, ';');
        length = end != NULL ? (size_t)(end - type) : strlen(type);
        while (length > 0 && type[length - 1] == ' ') length--;
    }
    if (type == NULL || length != 16 || strncasecmp(type, "application/json", 16) != 0) {
        api_send_field_error(exchange, 400, "The body must be JSON.", "Content-Type",
                             "must be application/json");
        return -1;
    }
    return 0;
}

static int api_hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [text, text+length) into out; '+' is a space. -1 on a
 * bad escape or a NUL. */
static int api_decode(const char *text, size_t length, char *out, size_t *out_length) {
    size_t used = 0;
    for (size_t index = 0; index < length; index++) {
        char c = text[index];
        if (c == '+') c = ' ';
        else if (c == '%') {
            if (index + 2 >= length) return -1;
            int high = api_hex_value(text[index + 1]);
            int low = api_hex_value(text[index + 2]);
            if (high < 0 || low < 0) return -1;
            c = (char)(high * 16 + low);
            index += 2;
        }
        if (c == '\0') return -1;
        out[used++] = c;
    }
    out[used] = '\0';
    *out_length = used;
    return 0;
}

int api_query_parse(struct exchange *exchange, struct api_query *query,
                    const char *const *allowed) {
    query->count = 0;
    size_t used = 0;
    const char *cursor = exchange->query;
    while (*cursor != '\0') {
        const char *end = strchr(cursor, '&');
        size_t length = end != NULL ? (size_t)(end - cursor) : strlen(cursor);
        if (length > 0) {
            const char *equals = memchr(cursor, '=', length);
            size_t name_length = equals != NULL ? (size_t)(equals - cursor) : length;
            if (query->count >= API_QUERY_PARAMS || used + length + 2 > sizeof query->storage) {
                api_send_field_error(exchange, 400, "Too many query parameters.", "query",
                                     "has too many parameters");
                return -1;
            }
            struct api_query_param *param = &query->params[query->count];
            size_t decoded = 0;
            param->name = query->storage + used;
            if (api_decode(cursor, name_length, param->name, &decoded) != 0) {
                api_send_field_error(exchange, 400, "A query parameter is malformed.", "query",
                                     "has a malformed percent-escape");
                return -1;
            }
            used += decoded + 1;
            param->value = query->storage + used;
            size_t value_length = equals != NULL ? length - name_length - 1 : 0;
            if (api_decode(equals != NULL ? equals + 1 : "", value_length, param->value,
                           &decoded) != 0) {
                api_send_field_error(exchange, 400, "A query parameter is malformed.", param->name,
                                     "has a malformed percent-escape");
                return -1;
            }
            used += decoded + 1;
            int known = 0;
            for (size_t index = 0; allowed[index] != NULL; index++) {
                if (strcmp(allowed[index], param->name) == 0) known = 1;
            }
            if (!known) {
                api_send_field_error(exchange, 400, "Unknown query parameter.", param->name,
                                     "is not a parameter of this route");
                return -1;
            }
            query->count++;
        }
        if (end == NULL) break;
        cursor = end + 1;
    }
    return 0;
}

const char *api_query_get(struct exchange *exchange, const struct api_query *query,
                          const char *name, int *failed) {
    const char *found = NULL;
    for (size_t index = 0; index < query->count; index++) {
        if (strcmp(query->params[index].name, name) != 0) continue;
        if (found != NULL) {
            api_send_field_error(exchange, 400, "A query parameter is repeated.", name,
                                 "may be given only once");
            *failed = 1;
            return NULL;
        }
        found = query->params[index].value;
    }
    return found;
}

int api_query_limit(struct exchange *exchange, const struct api_query *query, size_t *limit) {
    int failed = 0;
    const char *text = api_query_get(exchange, query, "limit", &failed);
    if (failed) return -1;
    *limit = LIMIT_LIST_DEFAULT;
    if (text == NULL) return 0;
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || value < 1 ||
        value > LIMIT_LIST_MAX) {
        api_send_field_error(exchange, 400, "Bad query parameter.", "limit",
                             "must be a whole number from 1 to 500");
        return -1;
    }
    *limit = (size_t)value;
    return 0;
}

int api_idempotency(struct exchange *exchange, struct command *command, char hash[65]) {
    const char *key = request_header(exchange->request, "idempotency-key");
    if (key == NULL) return 0;
    size_t length = strlen(key);
    int visible = length > 0 && length <= LIMIT_IDEMPOTENCY_KEY_BYTES;
    for (size_t index = 0; visible && index < length; index++) {
        if (key[index] < 0x21 || key[index] > 0x7e) visible = 0;
    }
    if (!visible) {
        api_send_field_error(exchange, 400, "Bad Idempotency-Key.", "Idempotency-Key",
                             "must be 1 to 255 visible ASCII characters");
        return -1;
    }
    mbedtls_sha256_context sha;
    uint8_t digest[32];
    mbedtls_sha256_init(&sha);
    mbedtls_sha256_starts(&sha, 0);
    const struct request *request = exchange->request;
    mbedtls_sha256_update(&sha, (const uint8_t *)request->method, strlen(request->method) + 1);
    mbedtls_sha256_update(&sha, (const uint8_t *)exchange->path, exchange->path_length);
    mbedtls_sha256_update(&sha, (const uint8_t *)"\n", 1);
    if (request->body.length > 0) {
        mbedtls_sha256_update(&sha, (const uint8_t *)request->body.data, request->body.length);
    }
    mbedtls_sha256_finish(&sha, digest);
    mbedtls_sha256_free(&sha);
    for (int index = 0; index < 32; index++) {
        snprintf(hash + index * 2, 3, "%02x", digest[index]);
    }
    command->idempotency_key = key;
    command->request_hash = hash;
    return 0;
}

enum exchange_status api_openapi(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    if (api->openapi == NULL) {
        response_problem(&exchange->response, 404, "The OpenAPI document is not built in.", NULL, 0);
        return EXCHANGE_DONE;
    }
    response_set_static(&exchange->response, 200, "application/json", api->openapi,
                        api->openapi_length);
    response_header(&exchange->response, "Cache-Control", "no-cache");
    return EXCHANGE_DONE;
}
