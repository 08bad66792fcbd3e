/*
 * api_auth.c - accounts: signup, login (with throttling), the caller's own
 * user (GET/PATCH /api/v1/me), and the password-hash pool on the libuv
 * thread pool that they share.
 */
#include "api.h"

#include "../auth/password.h"
#include "../base/check.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/mem.h"
#include "../notify/notify_settings.h"
#include "../tasks/timezone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yyjson.h>

/* ---- The hash pool -------------------------------------------------------------- */

enum api_hash_kind {
    API_HASH_NEW,    /* hash `password` into `hash` */
    API_HASH_VERIFY, /* check `password` against `stored` */
    API_HASH_DUMMY,  /* spend the time of a verification; always denied */
};

struct api_hash_job;
typedef void (*api_hash_done)(struct api_hash_job *job);

/* One signup, login or password change in progress. */
struct api_hash_job {
    uv_work_t work;                        /* libuv request */
    struct api_hash_job *next;             /* queue link */
    struct api *api;                       /* owner */
    struct exchange *exchange;             /* the request being answered */
    enum api_hash_kind kind;               /* what the pool does */
    char password[LIMIT_PASSWORD_BYTES_MAX + 1]; /* plaintext; wiped when done */
    size_t password_length;
    char stored[PASSWORD_HASH_BYTES];      /* VERIFY: the stored hash */
    char hash[PASSWORD_HASH_BYTES];        /* NEW: the result */
    uint32_t iterations;                   /* configured count */
    int status;                            /* result of the pool work */
    api_hash_done done;                    /* continues on the loop */
    /* what the continuation needs */
    struct user_record user;               /* login/me: the user */
    char username[LIMIT_USERNAME_BYTES_MAX + 1]; /* signup */
    char timezone[LIMIT_TIMEZONE_NAME_BYTES + 1]; /* signup / me ("" = unchanged) */
    char settings[2048];                   /* me: new settings JSON ("" = unchanged) */
    char new_password[LIMIT_PASSWORD_BYTES_MAX + 1]; /* me: the new password */
    size_t new_password_length;
    int stage;                             /* me: 0 verify current, 1 hash new */
};

static void api_hash_work(uv_work_t *work) {
    struct api_hash_job *job = work->data;
    switch (job->kind) {
    case API_HASH_NEW:
        job->status = password_hash(job->password, job->password_length, job->iterations, job->hash);
        break;
    case API_HASH_VERIFY:
        job->status = password_verify(job->password, job->password_length, job->stored,
                                      job->iterations, NULL);
        break;
    case API_HASH_DUMMY:
        job->status = password_verify_dummy(job->password, job->password_length, job->iterations);
        break;
    }
}

static void api_hash_start_next(struct api *api);

static void api_hash_after(uv_work_t *work, int status) {
    struct api_hash_job *job = work->data;
    struct api *api = job->api;
    api->hash_running--;
    if (status != 0) job->status = ERR_SYS;
    memset(job->password, 0, sizeof job->password);
    job->done(job);
    api_hash_start_next(api);
}

static void api_hash_start_next(struct api *api) {
    while (api->hash_running < LIMIT_PASSWORD_HASHES_RUNNING && api->hash_queue_head != NULL) {
        struct api_hash_job *job = api->hash_queue_head;
        api->hash_queue_head = job->next;
        if (api->hash_queue_head == NULL) api->hash_queue_tail = NULL;
        api->hash_queued--;
        job->work.data = job;
        if (uv_queue_work(api->loop, &job->work, api_hash_work, api_hash_after) != 0) {
            job->status = ERR_SYS;
            job->done(job);
            continue;
        }
        api->hash_running++;
    }
}

/* Queues a job; 503 (and the job freed) when the queue is full. */
static enum exchange_status api_hash_submit(struct api_hash_job *job) {
    struct api *api = job->api;
    if (api->hash_queued >= LIMIT_PASSWORD_HASHES_QUEUED) {
        response_problem(&job->exchange->response, 503,
                         "Too many sign-ins in progress; retry shortly.", NULL, 0);
        response_header(&job->exchange->response, "Retry-After", "2");
        memset(job, 0, sizeof *job);
        mem_free(job);
        return EXCHANGE_DONE;
    }
    job->iterations = (uint32_t)api->config->auth_password_iterations;
    job->next = NULL;
    if (api->hash_queue_tail != NULL) api->hash_queue_tail->next = job;
    else api->hash_queue_head = job;
    api->hash_queue_tail = job;
    api->hash_queued++;
    api_hash_start_next(api);
    return EXCHANGE_PENDING;
}

static void api_job_free(struct api_hash_job *job) {
    memset(job, 0, sizeof *job); /* passwords and hashes do not linger */
    mem_free(job);
}

/* ---- Bodies ------------------------------------------------------------------------ */

/* Reads a JSON object body with only the `allowed` string members. On
 * failure the problem is set and -1 returned. */
static int api_read_credentials(struct exchange *exchange, yyjson_doc **doc_out,
                                const char *const *allowed) {
    if (api_require_json(exchange) != 0) return -1;
    const struct buf *body = &exchange->request->body;
    yyjson_read_err error;
    yyjson_doc *doc = yyjson_read_opts(body->data != NULL ? body->data : "", body->length, 0,
                                       NULL, &error);
    yyjson_val *root = yyjson_doc_get_root(doc);
    if (doc == NULL || !yyjson_is_obj(root)) {
        yyjson_doc_free(doc);
        api_send_field_error(exchange, 400, "The body is not a JSON object.", "",
                             doc == NULL ? error.msg : "must be a JSON object");
        return -1;
    }
    struct task_errors errors = {.count = 0};
    size_t index, max;
    yyjson_val *key, *value;
    yyjson_obj_foreach(root, index, max, key, value) {
        const char *name = yyjson_get_str(key);
        int known = 0;
        for (size_t slot = 0; allowed[slot] != NULL; slot++) {
            if (strcmp(allowed[slot], name) == 0) known = 1;
        }
        if (!known) task_errors_add(&errors, name, "is not a field of this request");
        else if (strcmp(name, "settings") != 0 && strcmp(name, "notifications") != 0 &&
                 !yyjson_is_str(value)) {
            task_errors_add(&errors, name, "must be a string");
        }
    }
    if (errors.count > 0) {
        yyjson_doc_free(doc);
        api_send_problem(exchange, 422, "The request is invalid.", &errors);
        return -1;
    }
    *doc_out = doc;
    return 0;
}

static const char *api_member(yyjson_doc *doc, const char *name, size_t *length) {
    yyjson_val *value = yyjson_obj_get(yyjson_doc_get_root(doc), name);
    *length = yyjson_get_len(value);
    return yyjson_get_str(value);
}

/* {"user": <user>, "token": "..."} */
static void api_send_session(struct exchange *exchange, int status, const struct buf *user_json,
                             const struct user_record *user) {
    struct api *api = api_of(exchange);
    char token[LIMIT_JWT_TOKEN_BYTES];
    struct buf body;
    buf_init(&body, 64 * 1024);
    int rc = api_issue_token(api, user, token, sizeof token);
    if (rc == 0) rc = buf_append_str(&body, "{\"user\":");
    if (rc == 0) rc = buf_append(&body, user_json->data, user_json->length);
    if (rc == 0) rc = buf_printf(&body, ",\"token\":\"%s\"}", token);
    if (rc != 0) response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
    else api_send_json(exchange, status, &body);
    buf_free(&body);
}

/* ---- Signup ---------------------------------------------------------------------------- */

static void api_signup_created(void *arg, const struct command_result *result) {
    struct exchange *exchange = arg;
    if (result->status != 201) {
        api_send_result(exchange, result, NULL);
    } else {
        struct user_record user;
        if (query_user_by_id(api_of(exchange)->db, result->id, &user) != 0) {
            response_problem(&exchange->response, 503, "The account could not be read back.",
                             NULL, 0);
        } else {
            api_send_session(exchange, 201, &result->body, &user);
        }
    }
    exchange_finish(exchange);
}

static void api_signup_hashed(struct api_hash_job *job) {
    struct exchange *exchange = job->exchange;
    if (job->status != 0) {
        response_problem(&exchange->response, 503, "The password could not be hashed.", NULL, 0);
        api_job_free(job);
        exchange_finish(exchange);
        return;
    }
    struct command command = {
        .kind = COMMAND_USER_CREATE,
        .actor = NULL,
        .username = job->username,
        .password_hash = job->hash,
        .timezone = job->timezone,
    };
    struct api *api = job->api;
    /* The command copies what it needs before this returns (it builds the
     * event at once), so the job may go right after. */
    service_execute(api->service, &command, api_signup_created, exchange);
    api_job_free(job);
}

enum exchange_status api_signup(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    static const char *const allowed[] = {"username", "password", "timezone", NULL};
    yyjson_doc *doc = NULL;
    if (api_read_credentials(exchange, &doc, allowed) != 0) return EXCHANGE_DONE;
    size_t username_length = 0, password_length = 0, zone_length = 0;
    const char *username = api_member(doc, "username", &username_length);
    const char *password = api_member(doc, "password", &password_length);
    const char *zone = api_member(doc, "timezone", &zone_length);
    struct task_errors errors = {.count = 0};
    if (username == NULL) task_errors_add(&errors, "username", "is required");
    else if (!service_username_valid(username, username_length)) {
        task_errors_add(&errors, "username", "must be 3 to 64 of A-Z a-z 0-9 . _ -");
    }
    const char *why = password != NULL ? password_check(password, password_length) : NULL;
    if (password == NULL) task_errors_add(&errors, "password", "is required");
    else if (why != NULL) task_errors_add(&errors, "password", why);
    if (zone != NULL && !timezone_is_valid(zone, zone_length)) {
        task_errors_add(&errors, "timezone", "must be an IANA timezone name, e.g. Europe/Paris");
    }
    struct user_record existing;
    int64_t users = query_user_count(api->db);
    enum exchange_status status = EXCHANGE_DONE;
    if (errors.count > 0) {
        api_send_problem(exchange, 422, "The account is invalid.", &errors);
    } else if (api->config->auth_signup == 0 && users > 0) {
        response_problem(&exchange->response, 403,
                         "Signup is closed; an administrator adds accounts.", NULL, 0);
    } else if (query_user_by_name(api->db, username, &existing) == 0) {
        api_send_field_error(exchange, 409, "The username is taken.", "username", "is taken");
    } else {
        struct api_hash_job *job = mem_calloc(1, sizeof *job);
        if (job == NULL) {
            response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
        } else {
            job->api = api;
            job->exchange = exchange;
            job->kind = API_HASH_NEW;
            memcpy(job->password, password, password_length);
            job->password_length = password_length;
            memcpy(job->username, username, username_length);
            snprintf(job->timezone, sizeof job->timezone, "%s", zone != NULL ? zone : "UTC");
            job->done = api_signup_hashed;
            status = api_hash_submit(job);
        }
    }
    yyjson_doc_free(doc);
    return status;
}

/* ---- Login ------------------------------------------------------------------------------- */

static struct api_throttle *api_throttle_entry(struct map *map, const char *key, int create) {
    size_t length = strlen(key);
    struct api_throttle *entry = map_get(map, key, length);
    if (entry != NULL || !create) return entry;
    entry = mem_calloc(1, sizeof *entry);
    if (entry == NULL) return NULL;
    if (map_put(map, key, length, entry) != 0) {
        /* Full: forget the whole table rather than stop throttling new keys
         * (an attacker filling it gains one fresh window, nothing more). */
        size_t cursor = 0;
        struct map_slot *slot;
        while ((slot = map_next(map, &cursor)) != NULL) mem_free(slot->value);
        size_t limit = map->limit;
        map_free(map);
        map_init(map, limit);
        if (map_put(map, key, length, entry) != 0) {
            mem_free(entry);
            return NULL;
        }
    }
    return entry;
}

/* Seconds until `entry` allows another attempt, 0 when it does now. */
static int64_t api_throttle_wait(const struct api_throttle *entry, int limit, int64_t now_s) {
    if (entry == NULL || now_s - entry->window_start_s >= LIMIT_LOGIN_WINDOW_S) return 0;
    if (entry->failures < limit) return 0;
    return entry->window_start_s + LIMIT_LOGIN_WINDOW_S - now_s;
}

static void api_throttle_fail(struct map *map, const char *key, int64_t now_s) {
    if (key[0] == '\0') return;
    struct api_throttle *entry = api_throttle_entry(map, key, 1);
    if (entry == NULL) return;
    if (now_s - entry->window_start_s >= LIMIT_LOGIN_WINDOW_S) {
        entry->window_start_s = now_s;
        entry->failures = 0;
    }
    entry->failures++;
}

static void api_login_recorded(void *arg, const struct command_result *result) {
    struct exchange *exchange = arg;
    if (result->status != 200) {
        api_send_result(exchange, result, NULL);
    } else {
        struct user_record user;
        if (query_user_by_id(api_of(exchange)->db, result->id, &user) != 0) {
            response_problem(&exchange->response, 503, "The account could not be read.", NULL, 0);
        } else {
            api_send_session(exchange, 200, &result->body, &user);
        }
    }
    exchange_finish(exchange);
}

static void api_login_checked(struct api_hash_job *job) {
    struct exchange *exchange = job->exchange;
    struct api *api = job->api;
    int64_t now_s = api->clock->wall_ns(api->clock) / 1000000000;
    if (job->status != 0) {
        api_throttle_fail(&api->throttle_users, job->username, now_s);
        api_throttle_fail(&api->throttle_addresses, exchange->peer_address, now_s);
        response_problem(&exchange->response, 401, "The username or password is wrong.", NULL, 0);
        response_header(&exchange->response, "Cache-Control", "no-store");
        api_job_free(job);
        exchange_finish(exchange);
        return;
    }
    struct api_throttle *entry = api_throttle_entry(&api->throttle_users, job->username, 0);
    if (entry != NULL) entry->failures = 0;
    struct command command = {.kind = COMMAND_USER_LOGIN, .user_id = job->user.id};
    service_execute(api->service, &command, api_login_recorded, exchange);
    api_job_free(job);
}

enum exchange_status api_login(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    static const char *const allowed[] = {"username", "password", NULL};
    yyjson_doc *doc = NULL;
    if (api_read_credentials(exchange, &doc, allowed) != 0) return EXCHANGE_DONE;
    size_t username_length = 0, password_length = 0;
    const char *username = api_member(doc, "username", &username_length);
    const char *password = api_member(doc, "password", &password_length);
    enum exchange_status status = EXCHANGE_DONE;
    struct task_errors errors = {.count = 0};
    if (username == NULL) task_errors_add(&errors, "username", "is required");
    if (password == NULL) task_errors_add(&errors, "password", "is required");
    if (password != NULL && password_length > LIMIT_PASSWORD_BYTES_MAX) {
        task_errors_add(&errors, "password", "is too long");
    }
    if (username != NULL && username_length > LIMIT_USERNAME_BYTES_MAX) {
        task_errors_add(&errors, "username", "is too long");
    }
    int64_t now_s = api->clock->wall_ns(api->clock) / 1000000000;
    int64_t wait = 0;
    if (errors.count == 0) {
        wait = api_throttle_wait(api_throttle_entry(&api->throttle_users, username, 0),
                                 LIMIT_LOGIN_FAILURES_PER_USER, now_s);
        int64_t wait_address =
            api_throttle_wait(api_throttle_entry(&api->throttle_addresses, exchange->peer_address, 0),
                              LIMIT_LOGIN_FAILURES_PER_ADDRESS, now_s);
        if (wait_address > wait) wait = wait_address;
    }
    if (errors.count > 0) {
        api_send_problem(exchange, 422, "The request is invalid.", &errors);
    } else if (wait > 0) {
        api->logins_throttled++;
        char seconds[24];
        snprintf(seconds, sizeof seconds, "%lld", (long long)wait);
        response_problem(&exchange->response, 429,
                         "Too many failed sign-ins; wait before trying again.", NULL, 0);
        response_header(&exchange->response, "Retry-After", seconds);
    } else {
        struct api_hash_job *job = mem_calloc(1, sizeof *job);
        if (job == NULL) {
            response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
        } else {
            job->api = api;
            job->exchange = exchange;
            memcpy(job->password, password, password_length);
            job->password_length = password_length;
            memcpy(job->username, username, username_length);
            if (query_user_by_name(api->db, username, &job->user) == 0) {
                job->kind = API_HASH_VERIFY;
                memcpy(job->stored, job->user.password_hash, sizeof job->stored);
            } else {
                job->kind = API_HASH_DUMMY; /* same time as a wrong password */
            }
            job->done = api_login_checked;
            status = api_hash_submit(job);
        }
    }
    yyjson_doc_free(doc);
    return status;
}

/* ---- The caller's account ------------------------------------------------------------------ */

/* Appends "notifications" (the effective channel settings, defaults filled
 * in, and the webhook's derived secret, which only the user sees) to the
 * user object in `body`. */
static int api_me_notifications_json(struct api *api, const struct user_record *user,
                                     struct buf *body) {
    struct notify_settings settings;
    notify_settings_from_user(user->settings, strlen(user->settings), &settings);
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    yyjson_mut_val *root = doc != NULL ? notify_settings_to_json(&settings, doc) : NULL;
    uint8_t key[NOTIFY_WEBHOOK_KEY_BYTES];
    char secret[NOTIFY_WEBHOOK_SECRET_BYTES];
    int rc = root != NULL ? 0 : ERR_NOMEM;
    if (rc == 0 && notify_webhook_key_load(api->config->data_dir, key) == 0 &&
        notify_webhook_secret(key, user->id, settings.webhook_secret_version, secret) == 0) {
        yyjson_mut_val *webhook = yyjson_mut_obj_get(root, "webhook");
        if (!yyjson_mut_obj_add_strcpy(doc, webhook, "secret", secret)) rc = ERR_NOMEM;
    }
    memset(key, 0, sizeof key);
    size_t length = 0;
    char *text = NULL;
    if (rc == 0) {
        yyjson_mut_doc_set_root(doc, root);
        text = yyjson_mut_write(doc, 0, &length);
        if (text == NULL) rc = ERR_NOMEM;
    }
    /* The user object ends with its closing brace: the member goes before it. */
    if (rc == 0 && (body->length < 2 || body->data[body->length - 1] != '}')) rc = ERR_INVAL;
    if (rc == 0) {
        body->length--;
        rc = buf_printf(body, ",\"notifications\":%s}", text);
    }
    free(text);
    yyjson_mut_doc_free(doc);
    return rc;
}

enum exchange_status api_me_get(struct exchange *exchange) {
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    struct buf body;
    buf_init(&body, 64 * 1024);
    if (service_user_json(&caller.user, &body) != 0 ||
        api_me_notifications_json(api_of(exchange), &caller.user, &body) != 0) {
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
    } else {
        api_send_json(exchange, 200, &body);
    }
    buf_free(&body);
    return EXCHANGE_DONE;
}

static void api_me_updated(void *arg, const struct command_result *result) {
    struct exchange *exchange = arg;
    api_send_result(exchange, result, NULL);
    exchange_finish(exchange);
}

static void api_me_execute(struct api_hash_job *job, const char *password_hash) {
    struct command command = {
        .kind = COMMAND_USER_UPDATE,
        .user_id = job->user.id,
        .password_hash = password_hash,
        .timezone = job->timezone[0] != '\0' ? job->timezone : NULL,
        .settings_json = job->settings[0] != '\0' ? job->settings : NULL,
    };
    service_execute(job->api->service, &command, api_me_updated, job->exchange);
}

static void api_me_hashed(struct api_hash_job *job) {
    struct exchange *exchange = job->exchange;
    if (job->stage == 0) { /* current password checked */
        if (job->status != 0) {
            api_send_field_error(exchange, 422, "The current password is wrong.",
                                 "current_password", "is wrong");
            api_job_free(job);
            exchange_finish(exchange);
            return;
        }
        job->stage = 1;
        job->kind = API_HASH_NEW;
        memcpy(job->password, job->new_password, job->new_password_length);
        job->password_length = job->new_password_length;
        memset(job->new_password, 0, sizeof job->new_password);
        job->done = api_me_hashed;
        /* Back into the queue for the new hash, under the same bound. */
        if (api_hash_submit(job) == EXCHANGE_DONE) exchange_finish(exchange);
        return;
    }
    if (job->status != 0) {
        response_problem(&exchange->response, 503, "The password could not be hashed.", NULL, 0);
        api_job_free(job);
        exchange_finish(exchange);
        return;
    }
    api_me_execute(job, job->hash);
    api_job_free(job);
}

/* Checks "notifications" of PATCH /me and merges it into the settings object
 * the update stores: the new "settings" of the same request when given,
 * else the user's current one. */
static void api_me_notifications(struct api_hash_job *job, yyjson_val *notifications,
                                 struct task_errors *errors) {
    struct notify_settings settings;
    const char *stored = job->user.settings;
    notify_settings_from_user(stored, strlen(stored), &settings);
    if (notify_settings_apply(&settings, notifications, job->api->config->notify_allow_http != 0,
                              errors) != 0) {
        return;
    }
    const char *base = job->settings[0] != '\0' ? job->settings : stored;
    char merged[sizeof job->settings];
    int rc = notify_settings_store(base, strlen(base), &settings, merged, sizeof merged);
    if (rc == 0) memcpy(job->settings, merged, sizeof merged);
    else task_errors_add(errors, "notifications", "makes the settings too large (2 KiB at most)");
}

/* Validates PATCH /me; fills the job. -1 with the problem set. */
static int api_me_validate(struct exchange *exchange, yyjson_doc *doc, struct api_hash_job *job) {
    struct task_errors errors = {.count = 0};
    size_t length = 0;
    const char *zone = api_member(doc, "timezone", &length);
    if (zone != NULL) {
        if (!timezone_is_valid(zone, length)) {
            task_errors_add(&errors, "timezone", "must be an IANA timezone name, e.g. Europe/Paris");
        } else {
            memcpy(job->timezone, zone, length);
        }
    }
    yyjson_val *settings = yyjson_obj_get(yyjson_doc_get_root(doc), "settings");
    if (settings != NULL) {
        size_t written = 0;
        char *text = yyjson_is_obj(settings) ? yyjson_val_write(settings, 0, &written) : NULL;
        if (!yyjson_is_obj(settings)) task_errors_add(&errors, "settings", "must be an object");
        else if (text == NULL || written >= sizeof job->settings) {
            task_errors_add(&errors, "settings", "is too large (2 KiB at most)");
        } else {
            memcpy(job->settings, text, written);
        }
        free(text);
    }
    yyjson_val *notifications = yyjson_obj_get(yyjson_doc_get_root(doc), "notifications");
    if (notifications != NULL && errors.count == 0) {
        api_me_notifications(job, notifications, &errors);
    }
    size_t new_length = 0, current_length = 0;
    const char *password = api_member(doc, "password", &new_length);
    const char *current = api_member(doc, "current_password", &current_length);
    if (password != NULL) {
        const char *why = password_check(password, new_length);
        if (why != NULL) task_errors_add(&errors, "password", why);
        else if (current == NULL) task_errors_add(&errors, "current_password", "is required");
        else if (current_length > LIMIT_PASSWORD_BYTES_MAX) {
            task_errors_add(&errors, "current_password", "is wrong");
        } else {
            memcpy(job->new_password, password, new_length);
            job->new_password_length = new_length;
            memcpy(job->password, current, current_length);
            job->password_length = current_length;
        }
    } else if (current != NULL) {
        task_errors_add(&errors, "current_password", "is only used with password");
    }
    if (errors.count == 0) return 0;
    api_send_problem(exchange, 422, "The change is invalid.", &errors);
    return -1;
}

enum exchange_status api_me_patch(struct exchange *exchange) {
    struct api *api = api_of(exchange);
    struct api_caller caller;
    if (api_authenticate(exchange, &caller) != 0) return EXCHANGE_DONE;
    static const char *const allowed[] = {"timezone", "settings", "notifications", "password",
                                          "current_password", NULL};
    yyjson_doc *doc = NULL;
    if (api_read_credentials(exchange, &doc, allowed) != 0) return EXCHANGE_DONE;
    struct api_hash_job *job = mem_calloc(1, sizeof *job);
    enum exchange_status status = EXCHANGE_DONE;
    if (job != NULL) {
        job->api = api;
        job->user = caller.user;
    }
    if (job == NULL) {
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
    } else if (api_me_validate(exchange, doc, job) != 0) {
        api_job_free(job);
    } else {
        job->exchange = exchange;
        if (job->new_password_length > 0) {
            job->kind = API_HASH_VERIFY;
            memcpy(job->stored, caller.user.password_hash, sizeof job->stored);
            job->done = api_me_hashed;
            status = api_hash_submit(job);
        } else {
            api_me_execute(job, NULL);
            api_job_free(job);
            status = EXCHANGE_PENDING;
        }
    }
    yyjson_doc_free(doc);
    return status;
}
