/*
 * api.h - the public HTTP API under /api/v1 (../shared/API.md): accounts,
 * tasks, events, audit and admin routes, on top of the command layer
 * (tasks/service.h) for writes and the projections (tasks/query.h) for
 * reads.
 *
 * Every handler follows the same order: authenticate (bearer JWT, then the
 * user must exist: a token outlives nothing it names), parse and validate
 * the request completely (a bad query parameter or body field is a 400/422
 * naming it, and nothing changes), then read or run a command. Writes
 * answer when their events are durable and applied (EXCHANGE_PENDING until
 * then).
 *
 * Password hashing (signup, login, password change) is CPU-heavy by design
 * (PBKDF2, 600k iterations): it runs on the libuv thread pool, at most
 * LIMIT_PASSWORD_HASHES_RUNNING at a time so the pool keeps threads for the
 * event log's fsyncs, with a bounded queue behind it (503 past it).
 */
#ifndef DOCKET_API_API_H
#define DOCKET_API_API_H

#include "../auth/jwt.h"
#include "../base/clock.h"
#include "../base/map.h"
#include "../config/config.h"
#include "../http/router.h"
#include "../store/db.h"
#include "../tasks/service.h"

#include <uv.h>

struct api_hash_job;
struct deadletter;
struct hub;
struct webpush_vapid;

/* Failed logins of one username or one address, for throttling. */
struct api_throttle {
    int64_t window_start_s; /* start of the current window */
    int failures;           /* failures in it */
};

struct api {
    const struct config *config;      /* settings */
    uv_loop_t *loop;                  /* for the hash pool */
    struct clock *clock;              /* token times, throttling windows */
    struct db *db;                    /* projections (reads) */
    struct service *service;          /* commands (writes) */
    struct evlog *evlog;              /* for admin consumer listings */
    struct jwt_config jwt;            /* our tokens */
    struct jwt_config jwt_external;   /* an external issuer's tokens (key_count 0: none) */
    struct api_hash_job *hash_queue_head; /* hash jobs waiting for a slot */
    struct api_hash_job *hash_queue_tail;
    int hash_running;                 /* jobs on the pool now */
    int hash_queued;                  /* jobs waiting */
    struct map throttle_users;        /* username -> struct api_throttle */
    struct map throttle_addresses;    /* client address -> struct api_throttle */
    const char *openapi;              /* the embedded OpenAPI document, or NULL */
    size_t openapi_length;
    uint64_t logins_throttled;        /* counters for /metrics */
    struct map token_cache;           /* verified token text -> struct api_token */
    struct hub *hub;                  /* realtime fan-out (set by the server; NULL: no /ws) */
    uint64_t ws_handshakes_refused;   /* upgrades answered with an HTTP error */
    struct deadletter *deadletter;    /* the DLQ (set by the server; NULL: admin/dlq is 503) */
    const struct webpush_vapid *vapid; /* Web Push key (set by the server; NULL: push is 503) */
};

/* A token that passed jwt_verify. Every request of a session presents the
 * same bytes, and checking the HMAC again was a quarter of a request's CPU;
 * the same bytes verify the same way, so only the expiry is checked again. */
struct api_token {
    char subject[LIMIT_JWT_SUBJECT_BYTES + 1]; /* sub */
    int64_t expires_at_s;                      /* exp */
    int external;                              /* from the external issuer */
};
/* Tokens remembered; past it the cache starts over. Tokens longer than
 * API_TOKEN_CACHE_BYTES are verified every time (ours are ~300 bytes). */
#define API_TOKEN_CACHE_ENTRIES 4096
#define API_TOKEN_CACHE_BYTES 1024

/* Loads the signing secret (creating <data_dir>/jwt-secret when needed) and
 * the external issuer's key. Returns 0 or ERR_CONFIG (logged). */
int api_init(struct api *api, const struct config *config, uv_loop_t *loop, struct db *db,
             struct service *service, struct evlog *evlog);
void api_free(struct api *api);

/* The API's routes; handlers expect exchange->context to point at a
 * struct whose first member is the struct api. */
extern const struct route api_routes[];
extern const size_t api_route_count;

/* ---- Shared by the api_*.c files ------------------------------------------- */

/* The authenticated caller. */
struct api_caller {
    struct user_record user; /* as stored now (role and timezone current) */
};

static inline struct api *api_of(struct exchange *exchange) {
    return (struct api *)exchange->context;
}

/* Authenticates; on failure the response (401) is set and -1 returned. */
int api_authenticate(struct exchange *exchange, struct api_caller *caller);
/* The same for a token that came another way (the WebSocket subprotocol or
 * query); *expires_at_s receives its exp. */
int api_authenticate_token(struct exchange *exchange, const char *token,
                           struct api_caller *caller, int64_t *expires_at_s);
/* Admin check after api_authenticate; 403 set and -1 returned if not. */
int api_require_admin(struct exchange *exchange, const struct api_caller *caller);

/* Sets a JSON body from a buf. */
void api_send_json(struct exchange *exchange, int status, const struct buf *body);
/* problem+json with field errors. */
void api_send_problem(struct exchange *exchange, int status, const char *detail,
                      const struct task_errors *errors);
/* One field error. */
void api_send_field_error(struct exchange *exchange, int status, const char *detail,
                          const char *field, const char *message);
/* Renders a command result (success JSON + ETag/Location, or a problem). */
void api_send_result(struct exchange *exchange, const struct command_result *result,
                     const char *location_prefix);

/* A JSON body is required: Content-Type application/json (charset utf-8
 * allowed). On failure 400 is set and -1 returned. */
int api_require_json(struct exchange *exchange);

/* Query string parsing: at most API_QUERY_PARAMS parameters, percent-
 * decoded; unknown names are rejected by the caller's allow-list. */
#define API_QUERY_PARAMS 64
struct api_query_param {
    char *name;  /* decoded name */
    char *value; /* decoded value */
};
struct api_query {
    struct api_query_param params[API_QUERY_PARAMS]; /* in order */
    size_t count;                                    /* used */
    char storage[LIMIT_HTTP_URL_BYTES + 2];          /* decoded bytes */
};
/* Parses exchange->query; every name must be in `allowed` (NULL-terminated).
 * On failure 400 naming the parameter is set and -1 returned. */
int api_query_parse(struct exchange *exchange, struct api_query *query,
                    const char *const *allowed);
/* Value of the only occurrence of `name`, NULL if absent; a repeated
 * single-valued parameter is a 400 (sets *failed). */
const char *api_query_get(struct exchange *exchange, const struct api_query *query,
                          const char *name, int *failed);
/* limit (1..LIMIT_LIST_MAX, default LIMIT_LIST_DEFAULT); 400 on a bad value. */
int api_query_limit(struct exchange *exchange, const struct api_query *query, size_t *limit);

/* Fills the command's idempotency fields from the Idempotency-Key header:
 * `hash` receives the hex SHA-256 of method, path and body. -1 with 400 set
 * for a key that is empty, too long or not visible ASCII. */
int api_idempotency(struct exchange *exchange, struct command *command, char hash[65]);

/* Issues a token for `user` into out. */
int api_issue_token(struct api *api, const struct user_record *user, char *out, size_t size);

/* Handlers, by file. */
enum exchange_status api_signup(struct exchange *exchange);
enum exchange_status api_login(struct exchange *exchange);
enum exchange_status api_me_get(struct exchange *exchange);
enum exchange_status api_me_patch(struct exchange *exchange);
enum exchange_status api_task_create(struct exchange *exchange);
enum exchange_status api_task_list(struct exchange *exchange);
enum exchange_status api_task_get(struct exchange *exchange);
enum exchange_status api_task_patch(struct exchange *exchange);
enum exchange_status api_task_delete(struct exchange *exchange);
enum exchange_status api_task_complete(struct exchange *exchange);
enum exchange_status api_task_uncomplete(struct exchange *exchange);
enum exchange_status api_task_events(struct exchange *exchange);
enum exchange_status api_events(struct exchange *exchange);
enum exchange_status api_audit(struct exchange *exchange);
enum exchange_status api_admin_users(struct exchange *exchange);
enum exchange_status api_admin_consumers(struct exchange *exchange);
enum exchange_status api_admin_dlq_list(struct exchange *exchange);
enum exchange_status api_admin_dlq_redrive(struct exchange *exchange);
enum exchange_status api_openapi(struct exchange *exchange);
enum exchange_status api_ws(struct exchange *exchange);
enum exchange_status api_push_vapid(struct exchange *exchange);
enum exchange_status api_push_subscribe(struct exchange *exchange);
enum exchange_status api_push_list(struct exchange *exchange);
enum exchange_status api_push_unsubscribe(struct exchange *exchange);

#endif
