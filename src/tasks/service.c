/*
 * service.c - the command layer (see service.h for the flow and the rules of
 * in-flight state). Layers of this file:
 *   in-flight bookkeeping  - pending commands (FIFO by log offset), task
 *                            overlays, per-user sequence counters,
 *                            idempotency keys in flight
 *   events                 - building CloudEvents and appending them
 *   task commands          - create, patch, complete, uncomplete, delete
 *   user commands          - create, login, update, role
 *   completion             - durability, projection, results, failures
 */
#include "service.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/map.h"
#include "../base/mem.h"
#include "../base/timefmt.h"
#include "../base/uuid.h"
#include "event.h"
#include "series.h"
#include "timezone.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yyjson.h>

/* Response bodies are one task or one user: bounded by the task limits. */
#define SERVICE_BODY_BYTES_MAX (256 * 1024)

/* Events one command may append (update + due_changed + completed). */
#define SERVICE_COMMAND_EVENTS_MAX 4

/* A caller waiting for a command's result: the command's own caller, and
 * callers that sent the same Idempotency-Key while it was in flight. */
struct waiter {
    struct waiter *next; /* next waiter of the same command */
    command_done done;   /* its callback */
    void *arg;           /* its argument */
};

/* A command whose events are appended but not yet applied. */
struct pending {
    struct pending *previous, *next; /* FIFO by log offset */
    struct service *service;          /* owner */
    int64_t last_offset;              /* offset of its last event */
    struct waiter *waiters;           /* who gets the result */
    struct command_result result;     /* prepared success result */
    char task_id[UUID_STRING_BYTES];  /* overlay it holds ("" if none) */
    char *idempotency_map_key;        /* key in service->idempotency, or NULL */
    char *username;                   /* key in service->usernames, or NULL */
    char *timer_key;                  /* key in service->timers (spawn/fire in flight), or NULL */
    char request_hash[65];            /* with an idempotency key: what twins must match */
};

/* A task as the last in-flight command left it. */
struct overlay {
    struct task state;   /* the task after the command */
    bool deleted;        /* the command deleted it */
    int64_t last_offset; /* offset of the last event that changed it */
};

/* A user's last assigned sequence number. */
struct sequence {
    int64_t last; /* last number handed out */
};

struct service {
    struct service_options options;      /* topic, db, projection, clock */
    struct pending *head, *tail;         /* commands in flight, oldest first */
    size_t pending_count;                /* entries between head and tail */
    struct map overlays;                 /* task id -> struct overlay */
    struct map sequences;                /* user id -> struct sequence */
    struct map idempotency;              /* user id \x1f key -> struct pending */
    struct map usernames;                /* username -> struct pending (signups in flight) */
    struct map timers;                   /* "spawn:<task>" / "fire:<task>@<ms>" -> pending:
                                            scheduled commands in flight, so a second one for
                                            the same timer waits for SQLite instead of
                                            appending twice */
    struct uuid_v7_generator ids;        /* event, task and user ids */
    int subscribed;                      /* the wake callback is registered */
    struct projection_batch *batch;      /* being applied on the executor, or NULL */
    int batch_status;                    /* its result, set by the worker */
    bool wake_again;                     /* records became durable while it ran */
    bool recovering;                     /* an append failed: writes wait until SQLite holds
                                            every durable event, then in-flight state resets */
    service_applied_hook applied_hook;   /* told each time the projection advanced, or NULL */
    void *applied_hook_arg;              /* its argument */
    int64_t applied_reported;            /* the last offset the hook was given */
};

static void service_try_recover(struct service *service);

/* ---- In-flight bookkeeping ----------------------------------------------- */

static void result_init(struct command_result *result) {
    memset(result, 0, sizeof *result);
    buf_init(&result->body, SERVICE_BODY_BYTES_MAX);
}

static void result_fail(struct command_result *result, int status, const char *detail) {
    result->status = status;
    result->detail = detail;
}

static void overlay_free(struct overlay *overlay) {
    task_free(&overlay->state);
    mem_free(overlay);
}

static void service_drop_overlays(struct service *service) {
    size_t cursor = 0;
    struct map_slot *slot;
    while ((slot = map_next(&service->overlays, &cursor)) != NULL) overlay_free(slot->value);
    map_free(&service->overlays);
    map_init(&service->overlays, LIMIT_COMMANDS_PENDING);
    cursor = 0;
    while ((slot = map_next(&service->sequences, &cursor)) != NULL) mem_free(slot->value);
    map_free(&service->sequences);
    map_init(&service->sequences, SIZE_MAX);
}

/* The user's next sequence number (the stored last one + 1 the first time). */
static int service_next_sequence(struct service *service, const char *user_id, int64_t *out) {
    size_t length = strlen(user_id);
    struct sequence *sequence = map_get(&service->sequences, user_id, length);
    if (sequence == NULL) {
        struct user_record user;
        int64_t last = 0;
        int rc = query_user_by_id(service->options.db, user_id, &user);
        if (rc == 0) last = user.last_sequence;
        else if (rc != ERR_NOTFOUND) return rc;
        sequence = mem_alloc(sizeof *sequence);
        if (sequence == NULL) return ERR_NOMEM;
        sequence->last = last;
        rc = map_put(&service->sequences, user_id, length, sequence);
        if (rc != 0) {
            mem_free(sequence);
            return rc;
        }
    }
    *out = ++sequence->last;
    return 0;
}

/* Gives back numbers taken by a command whose events were never appended. */
static void service_return_sequence(struct service *service, const char *user_id, int count) {
    struct sequence *sequence = map_get(&service->sequences, user_id, strlen(user_id));
    if (sequence != NULL) sequence->last -= count;
}

static void pending_unlink(struct service *service, struct pending *pending) {
    if (pending->previous != NULL) pending->previous->next = pending->next;
    else service->head = pending->next;
    if (pending->next != NULL) pending->next->previous = pending->previous;
    else service->tail = pending->previous;
    pending->previous = pending->next = NULL;
    service->pending_count--;
}

/* Forgets the idempotency key and username the command held in flight. */
static void pending_release_keys(struct pending *pending) {
    struct service *service = pending->service;
    if (pending->idempotency_map_key != NULL) {
        map_remove(&service->idempotency, pending->idempotency_map_key,
                   strlen(pending->idempotency_map_key));
        mem_free(pending->idempotency_map_key);
    }
    if (pending->username != NULL) {
        map_remove(&service->usernames, pending->username, strlen(pending->username));
        mem_free(pending->username);
    }
    if (pending->timer_key != NULL) {
        map_remove(&service->timers, pending->timer_key, strlen(pending->timer_key));
        mem_free(pending->timer_key);
        pending->timer_key = NULL;
    }
}

/* Delivers `result` to every waiter of `pending` and frees it. */
static void pending_finish(struct pending *pending, const struct command_result *result) {
    pending_release_keys(pending);
    struct waiter *waiter = pending->waiters;
    bool first = true;
    while (waiter != NULL) {
        struct waiter *next = waiter->next;
        if (first || result->status >= 400) {
            waiter->done(waiter->arg, result);
        } else {
            struct command_result replay = *result; /* same bytes, marked as a replay */
            replay.replayed = true;
            waiter->done(waiter->arg, &replay);
        }
        first = false;
        mem_free(waiter);
        waiter = next;
    }
    buf_free(&pending->result.body);
    mem_free(pending);
}

static struct pending *pending_new(struct service *service, command_done done, void *arg) {
    struct pending *pending = mem_calloc(1, sizeof *pending);
    struct waiter *waiter = mem_calloc(1, sizeof *waiter);
    if (pending == NULL || waiter == NULL) {
        mem_free(pending);
        mem_free(waiter);
        return NULL;
    }
    pending->service = service;
    waiter->done = done;
    waiter->arg = arg;
    pending->waiters = waiter;
    result_init(&pending->result);
    return pending;
}

/* Frees a pending command that never reached the log (no events appended). */
static void pending_discard(struct pending *pending) {
    pending_release_keys(pending);
    mem_free(pending->waiters);
    buf_free(&pending->result.body);
    mem_free(pending);
}

static void service_answer(command_done done, void *arg, int status, const char *detail) {
    struct command_result result;
    result_init(&result);
    result_fail(&result, status, detail);
    done(arg, &result);
    buf_free(&result.body);
}

/* ---- Events ---------------------------------------------------------------- */

/* The events of one command before they are appended. */
struct batch {
    struct service *service;             /* owner */
    const struct command *command;       /* what produced them */
    char correlation_id[UUID_STRING_BYTES]; /* shared by the events */
    char user_id[UUID_STRING_BYTES];     /* stream owner */
    const char *password_hash;           /* header "password-hash", or NULL */
    char *values[SERVICE_COMMAND_EVENTS_MAX];  /* CloudEvent JSON texts */
    size_t lengths[SERVICE_COMMAND_EVENTS_MAX];
    size_t count;                        /* events built */
};

static void batch_free(struct batch *batch) {
    for (size_t index = 0; index < batch->count; index++) mem_free(batch->values[index]);
    batch->count = 0;
}

/* Copies a NUL-terminated text into out (truncating at size - 1). Used on
 * the hot path instead of snprintf("%s"), which cost ~1,000 instructions a
 * call. */
static void service_copy(char *out, size_t size, const char *text) {
    size_t length = strnlen(text, size - 1);
    memcpy(out, text, length);
    out[length] = '\0';
}

/* Builds one event of type `type` about `subject` with `data` (owned by
 * `doc`, which the caller frees). */
static int batch_add(struct batch *batch, const char *type, const char *subject,
                     yyjson_mut_doc *doc, yyjson_mut_val *data, int64_t time_ns) {
    CHECK(batch->count < SERVICE_COMMAND_EVENTS_MAX);
    struct service *service = batch->service;
    struct event_envelope envelope;
    memset(&envelope, 0, sizeof envelope);
    int rc = uuid_v7_generate(&service->ids, time_ns / 1000000, envelope.id);
    if (rc != 0) return rc;
    service_copy(envelope.type, sizeof envelope.type, type);
    envelope.time_ns = time_ns;
    service_copy(envelope.subject, sizeof envelope.subject, subject);
    service_copy(envelope.user_id, sizeof envelope.user_id, batch->user_id);
    rc = service_next_sequence(service, batch->user_id, &envelope.sequence);
    if (rc != 0) return rc;
    memcpy(envelope.correlation_id, batch->correlation_id, UUID_STRING_BYTES);
    service_copy(envelope.actor, sizeof envelope.actor,
                 batch->command->actor != NULL ? batch->command->actor : batch->user_id);
    if (batch->command->idempotency_key != NULL) {
        service_copy(envelope.idempotency_key, sizeof envelope.idempotency_key,
                     batch->command->idempotency_key);
    }
    size_t length = 0;
    char *json = event_to_json(&envelope, doc, data, &length);
    if (json == NULL) {
        service_return_sequence(service, batch->user_id, 1);
        return ERR_NOMEM;
    }
    batch->values[batch->count] = json;
    batch->lengths[batch->count] = length;
    batch->count++;
    return 0;
}

static void service_on_appended(void *arg, int status, int64_t offset);
static void service_on_appended_quiet(void *arg, int status, int64_t offset) {
    (void)arg;
    (void)status;
    (void)offset;
}

/* Appends the batch; on success the pending command joins the FIFO. On an
 * error nothing of the batch is in the log (a partial append is impossible:
 * the log fails every record after a failed one, and errors returned by
 * evlog_append come before any record of this batch was accepted, or we
 * report the command failed while the earlier records stand - see below). */
static int service_append(struct batch *batch, struct pending *pending, size_t *appended_out) {
    struct service *service = batch->service;
    struct evlog_header headers[2];
    size_t header_count = 0;
    if (batch->command->request_hash != NULL) {
        headers[header_count++] = (struct evlog_header){
            (const uint8_t *)"request-hash", 12, (const uint8_t *)batch->command->request_hash,
            strlen(batch->command->request_hash)};
    }
    if (batch->password_hash != NULL) {
        headers[header_count++] = (struct evlog_header){
            (const uint8_t *)"password-hash", 13, (const uint8_t *)batch->password_hash,
            strlen(batch->password_hash)};
    }
    int64_t offset = -1;
    for (size_t index = 0; index < batch->count; index++) {
        struct evlog_record record = {
            .key = (const uint8_t *)batch->user_id,
            .key_bytes = strlen(batch->user_id),
            .headers = headers,
            .header_count = header_count,
            .value = (const uint8_t *)batch->values[index],
            .value_bytes = batch->lengths[index],
        };
        bool last = index + 1 == batch->count;
        offset = evlog_append(service->options.topic, &record,
                              last ? service_on_appended : service_on_appended_quiet,
                              last ? pending : NULL);
        if (offset < 0) {
            /* Records of this batch already accepted will be applied; the
             * command is reported failed (503) and its idempotent retry
             * finds what was applied. Only the first record can fail in
             * practice (ERR_AGAIN/unwritable are checked per topic). */
            CHECK(index == 0 || offset != ERR_INVAL);
            *appended_out = index;
            return (int)offset;
        }
    }
    pending->last_offset = offset;
    pending->previous = service->tail;
    if (service->tail != NULL) service->tail->next = pending;
    else service->head = pending;
    service->tail = pending;
    service->pending_count++;
    return 0;
}

/* Records the overlay a successful append leaves behind. Takes `state`. */
static int service_set_overlay(struct service *service, struct pending *pending,
                               struct task *state, bool deleted) {
    size_t length = strlen(state->id);
    struct overlay *overlay = map_get(&service->overlays, state->id, length);
    if (overlay == NULL) {
        overlay = mem_calloc(1, sizeof *overlay);
        if (overlay == NULL) return ERR_NOMEM;
        int rc = map_put(&service->overlays, state->id, length, overlay);
        if (rc != 0) {
            mem_free(overlay);
            return rc;
        }
    } else {
        task_free(&overlay->state);
    }
    overlay->state = *state;
    memset(state, 0, sizeof *state);
    overlay->deleted = deleted;
    overlay->last_offset = pending->last_offset;
    memcpy(pending->task_id, overlay->state.id, UUID_STRING_BYTES);
    return 0;
}

/* ---- Idempotency ------------------------------------------------------------ */

/* Returns 1 when the command was answered (replay, mismatch, joined an
 * in-flight twin), 0 to go on (with pending->idempotency_map_key set). */
static int service_idempotency(struct service *service, const struct command *command,
                               struct pending *pending, command_done done, void *arg) {
    if (command->idempotency_key == NULL) return 0;
    char map_key[UUID_STRING_BYTES + LIMIT_IDEMPOTENCY_KEY_BYTES + 2];
    int length = snprintf(map_key, sizeof map_key, "%s\x1f%s", command->user_id,
                          command->idempotency_key);
    CHECK(length > 0 && (size_t)length < sizeof map_key);
    struct pending *twin = map_get(&service->idempotency, map_key, (size_t)length);
    struct command_result result;
    result_init(&result);
    if (twin != NULL) {
        if (command->request_hash != NULL && strcmp(twin->request_hash, command->request_hash) == 0) {
            struct waiter *waiter = mem_calloc(1, sizeof *waiter);
            if (waiter == NULL) {
                service_answer(done, arg, 503, "Out of memory.");
                return 1;
            }
            waiter->done = done;
            waiter->arg = arg;
            struct waiter **tail = &twin->waiters;
            while (*tail != NULL) tail = &(*tail)->next;
            *tail = waiter;
            return 1;
        }
        result_fail(&result, 422, "The Idempotency-Key was already used with another request.");
        task_errors_add(&result.errors, "Idempotency-Key", "was used with a different request");
        done(arg, &result);
        buf_free(&result.body);
        return 1;
    }
    struct idempotency_record stored;
    int rc = query_idempotency(service->options.db, command->user_id, command->idempotency_key,
                               &stored);
    if (rc == 0) {
        if (command->request_hash != NULL && strcmp(stored.request_hash, command->request_hash) == 0) {
            result.status = stored.status;
            result.replayed = true;
            if (buf_append(&result.body, stored.body, stored.body_length) != 0) {
                result_fail(&result, 503, "Out of memory.");
            }
        } else {
            result_fail(&result, 422, "The Idempotency-Key was already used with another request.");
            task_errors_add(&result.errors, "Idempotency-Key", "was used with a different request");
        }
        idempotency_record_free(&stored);
        done(arg, &result);
        buf_free(&result.body);
        return 1;
    }
    buf_free(&result.body);
    if (rc != ERR_NOTFOUND) {
        service_answer(done, arg, 503, "The database could not be read.");
        return 1;
    }
    pending->idempotency_map_key = mem_strndup(map_key, (size_t)length);
    if (pending->idempotency_map_key == NULL ||
        map_put(&service->idempotency, map_key, (size_t)length, pending) != 0) {
        mem_free(pending->idempotency_map_key);
        pending->idempotency_map_key = NULL;
        service_answer(done, arg, 503, "Too many requests in flight.");
        return 1;
    }
    if (command->request_hash != NULL) {
        snprintf(pending->request_hash, sizeof pending->request_hash, "%s", command->request_hash);
    }
    return 0;
}

/* ---- Task commands ------------------------------------------------------------- */

/* The current task: the in-flight overlay, else the projection. */
static int service_load_task(struct service *service, const struct command *command,
                             struct task *out) {
    struct overlay *overlay = map_get(&service->overlays, command->task_id,
                                      strlen(command->task_id));
    if (overlay != NULL) {
        if (overlay->deleted || strcmp(overlay->state.owner_id, command->user_id) != 0) {
            return ERR_NOTFOUND;
        }
        return task_copy(out, &overlay->state);
    }
    return query_task_get(service->options.db, command->user_id, command->task_id, out);
}

static yyjson_mut_val *service_time_value(yyjson_mut_doc *doc, bool has, int64_t time_ns) {
    if (!has) return yyjson_mut_null(doc);
    char text[TIMEFMT_TIME_BYTES];
    timefmt_time_format(time_ns, text);
    return yyjson_mut_strcpy(doc, text);
}

/* data of task.completed / task.uncompleted / task.due_changed */
static yyjson_mut_val *service_state_data(yyjson_mut_doc *doc, const struct task *after) {
    yyjson_mut_val *data = yyjson_mut_obj(doc);
    if (data == NULL) return NULL;
    yyjson_mut_obj_add_int(doc, data, "version", after->version);
    yyjson_mut_obj_add_val(doc, data, "updated_at",
                           service_time_value(doc, true, after->updated_at_ns));
    return data;
}

/* Builds the events that take `before` to `after` for a patch/complete. */
static int service_change_events(struct batch *batch, struct task *before, struct task *after,
                                 int64_t now_ns) {
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    if (doc == NULL) return ERR_NOMEM;
    int rc = 0;
    yyjson_mut_val *changes = yyjson_mut_obj(doc);
    int changed = changes != NULL ? task_diff(before, after, doc, changes) : ERR_NOMEM;
    if (changed < 0) rc = changed;
    int64_t version = before->version;
    if (rc == 0 && changed > 0) {
        after->version = ++version;
        after->updated_at_ns = now_ns;
        yyjson_mut_val *data = service_state_data(doc, after);
        yyjson_mut_obj_add_val(doc, data, "changes", changes);
        rc = batch_add(batch, "task.updated", after->id, doc, data, now_ns);
        if (rc == 0 && (before->has_due != after->has_due ||
                        (after->has_due && before->due_ns != after->due_ns))) {
            yyjson_mut_val *due = service_state_data(doc, after);
            yyjson_mut_obj_add_val(doc, due, "old",
                                   service_time_value(doc, before->has_due, before->due_ns));
            yyjson_mut_obj_add_val(doc, due, "new",
                                   service_time_value(doc, after->has_due, after->due_ns));
            rc = batch_add(batch, "task.due_changed", after->id, doc, due, now_ns);
        }
    }
    if (rc == 0 && before->completed != after->completed) {
        after->version = ++version;
        after->updated_at_ns = now_ns;
        yyjson_mut_val *data = service_state_data(doc, after);
        if (after->completed) {
            after->has_completed_at = true;
            after->completed_at_ns = now_ns;
            yyjson_mut_obj_add_val(doc, data, "completed_at", service_time_value(doc, true, now_ns));
            rc = batch_add(batch, "task.completed", after->id, doc, data, now_ns);
        } else {
            yyjson_mut_obj_add_val(doc, data, "previous_completed_at",
                                   service_time_value(doc, before->has_completed_at,
                                                      before->completed_at_ns));
            after->has_completed_at = false;
            after->completed_at_ns = 0;
            rc = batch_add(batch, "task.uncompleted", after->id, doc, data, now_ns);
        }
    }
    yyjson_mut_doc_free(doc);
    return rc;
}

static int service_error_status(int rc) {
    switch (rc) {
    case ERR_AGAIN: return 503;
    case ERR_NOSPC: return 507;
    default: return 503;
    }
}

static const char *service_error_detail(int rc) {
    switch (rc) {
    case ERR_AGAIN: return "The event log is busy; retry shortly.";
    case ERR_NOSPC: return "The disk is full; the change was not recorded.";
    case ERR_NOMEM: return "Out of memory.";
    default: return "The change could not be recorded in the event log.";
    }
}

/* Appends the batch and parks the command, or answers it with the error. */
static void service_submit(struct service *service, struct batch *batch, struct pending *pending,
                           struct task *overlay_state, bool deleted) {
    size_t appended = batch->count;
    int rc = service_append(batch, pending, &appended);
    if (rc == 0 && overlay_state != NULL) {
        /* The overlay map holds at most one entry per pending command, so
         * only memory can fail here; the events are already in the log and
         * going on without the overlay would let the next command read a
         * stale task. Stopping is safe: the log is the truth at restart. */
        rc = service_set_overlay(service, pending, overlay_state, deleted);
        CHECK(rc == 0);
    }
    if (rc != 0) {
        /* Numbers of events that did reach the log stay taken; no other
         * command took numbers since, so the rest are handed back. */
        service_return_sequence(service, batch->user_id, (int)(batch->count - appended));
        struct command_result result;
        result_init(&result);
        result_fail(&result, service_error_status(rc), service_error_detail(rc));
        if (rc == ERR_AGAIN) result.retry_after_s = 1;
        pending_finish(pending, &result);
        buf_free(&result.body);
    }
    batch_free(batch);
}

static int service_result_task(struct pending *pending, int status, const struct task *task) {
    pending->result.status = status;
    pending->result.version = task->version;
    memcpy(pending->result.id, task->id, UUID_STRING_BYTES);
    if (status == 204) return 0;
    size_t length = 0;
    char *json = task_to_json_string(task, &length);
    if (json == NULL) return ERR_NOMEM;
    int rc = buf_append(&pending->result.body, json, length);
    mem_free(json);
    return rc;
}

static void service_task_create(struct service *service, const struct command *command,
                                struct pending *pending, struct batch *batch, int64_t now_ns) {
    struct user_record user;
    const char *zone = command->timezone;
    if (zone == NULL) {
        zone = query_user_by_id(service->options.db, command->user_id, &user) == 0 ? user.timezone
                                                                                   : "UTC";
    }
    struct task_defaults defaults = {.timezone = zone};
    struct task task;
    memset(&task, 0, sizeof task);
    struct command_result *result = &pending->result;
    int rc = task_parse_create(command->body, command->body_length, &defaults, &task,
                               &result->errors);
    if (rc != 0) {
        result_fail(result, rc == ERR_PARSE ? 400 : 422,
                    rc == ERR_PARSE ? "The body is not a JSON object." : "The task is invalid.");
        goto answer;
    }
    rc = uuid_v7_generate(&service->ids, now_ns / 1000000, task.id);
    series_on_change(NULL, &task);
    service_copy(task.owner_id, sizeof task.owner_id, command->user_id);
    task.created_at_ns = task.updated_at_ns = now_ns;
    task.version = 1;
    if (task.completed) {
        task.has_completed_at = true;
        task.completed_at_ns = now_ns;
    }
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    yyjson_mut_val *data = doc != NULL ? task_to_json(&task, doc) : NULL;
    if (rc == 0) rc = data != NULL ? batch_add(batch, "task.created", task.id, doc, data, now_ns)
                                   : ERR_NOMEM;
    yyjson_mut_doc_free(doc);
    if (rc == 0) rc = service_result_task(pending, 201, &task);
    if (rc != 0) {
        result_fail(result, 503, service_error_detail(rc));
        goto answer;
    }
    service_submit(service, batch, pending, &task, false);
    task_free(&task);
    return;
answer:
    task_free(&task);
    batch_free(batch);
    pending_finish(pending, result);
}

static int service_spawn_with_completion(struct service *service, struct pending *pending,
                                         struct batch *batch, const struct task *before,
                                         const struct task *after, int64_t now_ns);

/* Patch, complete, uncomplete and delete share this: load, If-Match,
 * change, events, append. */
static void service_task_change(struct service *service, const struct command *command,
                                struct pending *pending, struct batch *batch, int64_t now_ns) {
    struct command_result *result = &pending->result;
    struct task before, after;
    memset(&before, 0, sizeof before);
    memset(&after, 0, sizeof after);
    struct task_patch patch;
    memset(&patch, 0, sizeof patch);
    int rc = service_load_task(service, command, &before);
    if (rc != 0) {
        result_fail(result, rc == ERR_NOTFOUND ? 404 : 503,
                    rc == ERR_NOTFOUND ? "No task with this id exists." : "The task could not be read.");
        goto answer;
    }
    bool matched = !command->has_if_match || command->if_match_any;
    for (size_t index = 0; index < command->if_match_count && index < SERVICE_IF_MATCH_MAX; index++) {
        if (command->if_match_versions[index] == before.version) matched = true;
    }
    if (!matched) {
        snprintf(result->detail_text, sizeof result->detail_text,
                 "The task has changed: its current version is %lld (ETag \"%lld\").",
                 (long long)before.version, (long long)before.version);
        result_fail(result, 412, result->detail_text);
        result->version = before.version;
        goto answer;
    }
    if (command->kind == COMMAND_TASK_PATCH) {
        rc = task_parse_patch(command->body, command->body_length, &patch, &result->errors);
        if (rc != 0) {
            result_fail(result, rc == ERR_PARSE ? 400 : 422,
                        rc == ERR_PARSE ? "The body is not a JSON object." : "The change is invalid.");
            goto answer;
        }
        rc = task_apply_patch(&before, &patch, &after);
        if (rc == 0 && (patch.fields & TASK_FIELD_COMPLETED)) after.completed = patch.values.completed;
        if (rc == 0) series_on_change(&before, &after);
    } else {
        rc = task_copy(&after, &before);
        if (command->kind == COMMAND_TASK_COMPLETE) after.completed = true;
        if (command->kind == COMMAND_TASK_UNCOMPLETE) after.completed = false;
    }
    if (rc != 0) {
        result_fail(result, 503, "Out of memory.");
        goto answer;
    }
    bool deleted = command->kind == COMMAND_TASK_DELETE;
    if (deleted) {
        yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
        yyjson_mut_val *data = doc != NULL ? task_to_json(&before, doc) : NULL;
        if (data != NULL) {
            yyjson_mut_obj_add_val(doc, data, "deleted_at", service_time_value(doc, true, now_ns));
            rc = batch_add(batch, "task.deleted", before.id, doc, data, now_ns);
        } else {
            rc = ERR_NOMEM;
        }
        yyjson_mut_doc_free(doc);
    } else {
        rc = service_change_events(batch, &before, &after, now_ns);
        if (rc == 0) rc = service_spawn_with_completion(service, pending, batch, &before, &after,
                                                        now_ns);
    }
    if (rc == 0) rc = service_result_task(pending, deleted ? 204 : 200, deleted ? &before : &after);
    if (rc != 0) {
        result_fail(result, 503, service_error_detail(rc));
        goto answer;
    }
    if (batch->count == 0) goto answer; /* nothing changed: no event, same version */
    task_patch_free(&patch);
    task_free(&before);
    service_submit(service, batch, pending, &after, deleted);
    task_free(&after);
    return;
answer:
    if (result->status == 0) result->status = 200;
    task_patch_free(&patch);
    task_free(&before);
    task_free(&after);
    service_return_sequence(service, command->user_id, (int)batch->count);
    batch_free(batch);
    pending_finish(pending, result);
}

/* ---- Scheduled commands: spawns, reminders, recorded events ------------------ */

/* Claims the timer key for this command. 1 when another command holds it
 * (the caller answers 409: the first one's result will be in SQLite). */
static int service_timer_claim(struct service *service, struct pending *pending, const char *key) {
    size_t length = strlen(key);
    if (map_get(&service->timers, key, length) != NULL) return 1;
    char *copy = mem_alloc(length + 1);
    if (copy == NULL) return ERR_NOMEM;
    memcpy(copy, key, length + 1);
    int rc = map_put(&service->timers, copy, length, pending);
    if (rc != 0) {
        mem_free(copy);
        return rc;
    }
    pending->timer_key = copy;
    return 0;
}

/* tasks.next_id of a task: 1 set (spawned or ended), 0 not, or an error. */
static int service_has_next(struct service *service, const char *task_id) {
    sqlite3_stmt *stmt = db_statement(service->options.db,
                                      "SELECT next_id IS NOT NULL FROM tasks WHERE id = ?1");
    if (stmt == NULL) return ERR_IO;
    sqlite3_bind_text(stmt, 1, task_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    int has = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
    sqlite3_reset(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? has : ERR_IO;
}

/* State of one reminders row (0 pending ... 4 done), ERR_NOTFOUND, or ERR_IO. */
static int service_timer_state(struct service *service, const char *task_id, int kind,
                               int64_t at_ms) {
    sqlite3_stmt *stmt = db_statement(
        service->options.db,
        "SELECT state FROM reminders WHERE task_id = ?1 AND kind = ?2 AND at_ms = ?3");
    if (stmt == NULL) return ERR_IO;
    sqlite3_bind_text(stmt, 1, task_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, kind);
    sqlite3_bind_int64(stmt, 3, at_ms);
    int rc = sqlite3_step(stmt);
    int state = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : ERR_NOTFOUND;
    sqlite3_reset(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? state : ERR_IO;
}

/* The next occurrence: a copy of `parent` with the new due date and series
 * place, open, version 1. Absolute reminders move with the due date, so a
 * reminder "the evening before" stays the evening before. */
static int service_make_child(struct service *service, const struct task *parent,
                              const struct series_next *next, int64_t now_ns, struct task *child) {
    int rc = task_copy(child, parent);
    if (rc != 0) return rc;
    rc = uuid_v7_generate(&service->ids, now_ns / 1000000, child->id);
    if (rc != 0) return rc;
    int64_t shift_ns = next->due_ns - parent->due_ns;
    for (size_t index = 0; index < child->reminder_count; index++) {
        if (child->reminders[index].kind == TASK_REMINDER_AT) {
            child->reminders[index].at_ns += shift_ns;
        }
    }
    child->completed = false;
    child->has_completed_at = false;
    child->completed_at_ns = 0;
    child->due_ns = next->due_ns;
    child->has_series_start = true;
    child->series_start_ns = next->series_start_ns;
    child->occurrence_index = next->index;
    memcpy(child->parent_id, parent->id, UUID_STRING_BYTES);
    child->created_at_ns = child->updated_at_ns = now_ns;
    child->version = 1;
    return 0;
}

/* Adds the event that follows `parent` in its series: recurrence.ended
 * when `next` says the series is over, else recurrence.spawned with the
 * new occurrence, left in `child` (the caller frees it; empty when ended). */
static int service_series_event(struct service *service, struct batch *batch,
                                const struct task *parent, const struct series_next *next,
                                int64_t now_ns, struct task *child) {
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    if (doc == NULL) return ERR_NOMEM;
    int rc;
    if (next->end != SERIES_CONTINUES) {
        yyjson_mut_val *data = yyjson_mut_obj(doc);
        yyjson_mut_obj_add_str(doc, data, "reason", series_end_name(next->end));
        yyjson_mut_obj_add_int(doc, data, "index", parent->occurrence_index);
        rc = data != NULL ? batch_add(batch, "recurrence.ended", parent->id, doc, data, now_ns)
                          : ERR_NOMEM;
    } else {
        rc = service_make_child(service, parent, next, now_ns, child);
        yyjson_mut_val *data = rc == 0 ? task_to_json(child, doc) : NULL;
        if (rc == 0 && data == NULL) rc = ERR_NOMEM;
        if (rc == 0) rc = batch_add(batch, "recurrence.spawned", child->id, doc, data, now_ns);
    }
    yyjson_mut_doc_free(doc);
    return rc;
}

/* COMMAND_TASK_SPAWN: recurrence.spawned (the next occurrence) or
 * recurrence.ended, at most once per task: tasks.next_id in SQLite, and the
 * timer key while the event is in flight. A task already spawned from, or
 * deleted, answers 200/404 with no event. */
static int service_task_spawn(struct service *service, const struct command *command,
                              struct pending *pending, struct batch *batch, int64_t now_ns,
                              struct task *parent, struct task *child, bool *submitted) {
    struct command_result *result = &pending->result;
    char key[UUID_STRING_BYTES + 8];
    snprintf(key, sizeof key, "spawn:%s", command->task_id);
    int rc = service_timer_claim(service, pending, key);
    if (rc != 0) {
        result_fail(result, rc == 1 ? 409 : 503, "A spawn of this task is in flight.");
        return 0;
    }
    rc = service_load_task(service, command, parent);
    if (rc != 0) {
        result_fail(result, rc == ERR_NOTFOUND ? 404 : 503, "No task with this id exists.");
        return 0;
    }
    int has_next = service_has_next(service, parent->id);
    if (has_next != 0 || !parent->has_recurrence) {
        result_fail(result, has_next < 0 ? 503 : 200, "Nothing to spawn.");
        return 0;
    }
    struct series_next next;
    rc = series_next(parent, now_ns, &next);
    if (rc != 0) {
        result_fail(result, rc == ERR_NOMEM ? 503 : 422, "The recurrence cannot be computed.");
        return 0;
    }
    rc = service_series_event(service, batch, parent, &next, now_ns, child);
    bool ended = next.end != SERIES_CONTINUES;
    if (rc == 0) rc = service_result_task(pending, ended ? 200 : 201, ended ? parent : child);
    if (rc == 0) {
        service_submit(service, batch, pending, ended ? NULL : child, false);
        *submitted = true;
    }
    return rc;
}

/* Completing a recurring task (modes due and completion) spawns its next
 * occurrence in the same append as task.completed, so the occurrence is
 * durable and applied when the completion is answered - one group commit
 * instead of two. The spawn timer the projection writes for the
 * completion stays the backstop: if a crash keeps recurrence.spawned out
 * of the log (a torn tail), the timer fires after the restart; if both
 * are in, the timer row is marked fired with the spawn. The in-flight key
 * "spawn:<task>" is held until both are applied, so the timer, a second
 * completion or a retry finds the spawn either in flight or in SQLite. */
static int service_spawn_with_completion(struct service *service, struct pending *pending,
                                         struct batch *batch, const struct task *before,
                                         const struct task *after, int64_t now_ns) {
    if (before->completed || !after->completed || !after->has_recurrence ||
        after->recurrence_from == TASK_RECURRENCE_FROM_SCHEDULE) {
        return 0;
    }
    if (batch->count + 1 > SERVICE_COMMAND_EVENTS_MAX || pending->timer_key != NULL) return 0;
    char key[UUID_STRING_BYTES + 8];
    snprintf(key, sizeof key, "spawn:%s", after->id);
    int rc = service_timer_claim(service, pending, key);
    if (rc != 0) return rc == 1 ? 0 : rc; /* a spawn in flight: it is the one */
    int has_next = service_has_next(service, after->id);
    if (has_next != 0) return has_next < 0 ? has_next : 0;
    struct series_next next;
    rc = series_next(after, now_ns, &next);
    if (rc != 0) return rc == ERR_NOMEM ? rc : 0; /* the timer will say why (422) */
    struct task child;
    memset(&child, 0, sizeof child);
    rc = service_series_event(service, batch, after, &next, now_ns, &child);
    task_free(&child);
    return rc;
}

/* data of reminder.triggered / reminder.missed (API.md WebSocket message
 * "reminder", the notifier's input). */
static yyjson_mut_val *service_reminder_data(yyjson_mut_doc *doc, const struct task *task,
                                             int64_t at_ms, int64_t now_ns) {
    yyjson_mut_val *data = yyjson_mut_obj(doc);
    yyjson_mut_val *task_json = task_to_json(task, doc);
    yyjson_mut_val *reminder = yyjson_mut_obj(doc);
    yyjson_mut_val *specs = yyjson_mut_arr(doc);
    if (data == NULL || task_json == NULL || reminder == NULL || specs == NULL) return NULL;
    for (size_t index = 0; index < task->reminder_count; index++) {
        const struct task_reminder *entry = &task->reminders[index];
        int64_t entry_ms = entry->kind == TASK_REMINDER_AT ? entry->at_ns / 1000000
                                                           : task->due_ns / 1000000 -
                                                                 entry->before_s * 1000;
        if (entry->kind == TASK_REMINDER_BEFORE && !task->has_due) continue;
        if (entry_ms != at_ms) continue;
        yyjson_mut_val *spec = yyjson_mut_obj(doc);
        if (spec == NULL) return NULL;
        if (entry->kind == TASK_REMINDER_AT) {
            yyjson_mut_obj_add_val(doc, spec, "at", service_time_value(doc, true, entry->at_ns));
        } else {
            char duration[TIMEFMT_DURATION_BYTES];
            if (timefmt_duration_format(entry->before_s, duration) < 0) return NULL;
            yyjson_mut_obj_add_strcpy(doc, spec, "before", duration); /* as the task writes it */
        }
        yyjson_mut_arr_append(specs, spec);
    }
    yyjson_mut_obj_add_val(doc, reminder, "at", service_time_value(doc, true, at_ms * 1000000));
    yyjson_mut_obj_add_val(doc, reminder, "specs", specs);
    char key[UUID_STRING_BYTES + 24];
    snprintf(key, sizeof key, "%s@%lld", task->id, (long long)at_ms);
    yyjson_mut_obj_add_val(doc, data, "task", task_json);
    yyjson_mut_obj_add_val(doc, data, "reminder", reminder);
    yyjson_mut_obj_add_strcpy(doc, data, "key", key);
    yyjson_mut_obj_add_val(doc, data, "fired_at", service_time_value(doc, true, now_ns));
    int64_t late_ms = now_ns / 1000000 - at_ms;
    yyjson_mut_obj_add_int(doc, data, "late_ms", late_ms > 0 ? late_ms : 0);
    return data;
}

/* COMMAND_REMINDER_FIRE: reminder.triggered (or .missed) for one pending
 * reminder instant of an open task, once: the row must still be pending in
 * SQLite and no other firing of it in flight. */
static int service_reminder_fire(struct service *service, const struct command *command,
                                 struct pending *pending, struct batch *batch, int64_t now_ns,
                                 struct task *task, bool *submitted) {
    struct command_result *result = &pending->result;
    char key[UUID_STRING_BYTES + 32];
    snprintf(key, sizeof key, "fire:%s@%lld", command->task_id, (long long)command->at_ms);
    int rc = service_timer_claim(service, pending, key);
    if (rc != 0) {
        result_fail(result, rc == 1 ? 409 : 503, "This reminder is being recorded.");
        return 0;
    }
    rc = service_load_task(service, command, task);
    if (rc != 0) {
        result_fail(result, rc == ERR_NOTFOUND ? 404 : 503, "No task with this id exists.");
        return 0;
    }
    int state = service_timer_state(service, task->id, 0, command->at_ms);
    int64_t instants[LIMIT_TASK_REMINDERS];
    size_t count = task_reminder_instants(task, instants, LIMIT_TASK_REMINDERS);
    bool wanted = false;
    for (size_t index = 0; index < count; index++) wanted |= instants[index] == command->at_ms;
    if (state != 0 || task->completed || !wanted) {
        /* Fired already, cancelled, moved, or the task was completed after the
         * timer was read: nothing to record. */
        result_fail(result, state == ERR_IO ? 503 : 200, "Nothing to fire.");
        return 0;
    }
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    yyjson_mut_val *data = doc != NULL ? service_reminder_data(doc, task, command->at_ms, now_ns)
                                       : NULL;
    rc = data != NULL ? batch_add(batch, command->missed ? "reminder.missed" : "reminder.triggered",
                                  task->id, doc, data, now_ns)
                      : ERR_NOMEM;
    yyjson_mut_doc_free(doc);
    if (rc == 0) {
        result->status = 201;
        memcpy(result->id, task->id, UUID_STRING_BYTES);
        service_submit(service, batch, pending, NULL, false);
        *submitted = true;
    }
    return rc;
}

/* COMMAND_EVENT_APPEND: one event of an allowed type with the caller's data. */
static int service_event_append(struct service *service, const struct command *command,
                                struct pending *pending, struct batch *batch, int64_t now_ns,
                                bool *submitted) {
    struct command_result *result = &pending->result;
    const char *type = command->event_type != NULL ? command->event_type : "";
    bool allowed = strncmp(type, "notification.", 13) == 0 || strncmp(type, "push.", 5) == 0;
    if (!allowed || command->subject == NULL || strlen(type) >= EVENT_TYPE_BYTES) {
        result_fail(result, 422, "This event type cannot be recorded.");
        return 0;
    }
    yyjson_doc *parsed = yyjson_read(command->body != NULL ? command->body : "{}",
                                     command->body != NULL ? command->body_length : 2, 0);
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    yyjson_mut_val *data = NULL;
    if (parsed != NULL && doc != NULL && yyjson_is_obj(yyjson_doc_get_root(parsed))) {
        data = yyjson_val_mut_copy(doc, yyjson_doc_get_root(parsed));
    }
    int rc = 0;
    if (parsed == NULL || (doc != NULL && data == NULL && yyjson_doc_get_root(parsed) != NULL &&
                           !yyjson_is_obj(yyjson_doc_get_root(parsed)))) {
        result_fail(result, 400, "The event data is not a JSON object.");
    } else if (data == NULL) {
        rc = ERR_NOMEM;
    } else {
        rc = batch_add(batch, type, command->subject, doc, data, now_ns);
        if (rc == 0) {
            result->status = 201;
            service_copy(result->id, sizeof result->id, command->subject);
            rc = buf_append(&result->body, "{}", 2);
        }
        if (rc == 0) {
            service_submit(service, batch, pending, NULL, false);
            *submitted = true;
        }
    }
    yyjson_doc_free(parsed);
    yyjson_mut_doc_free(doc);
    return rc;
}

static void service_timer_command(struct service *service, const struct command *command,
                                  struct pending *pending, struct batch *batch, int64_t now_ns) {
    struct task first, second;
    memset(&first, 0, sizeof first);
    memset(&second, 0, sizeof second);
    bool submitted = false;
    int rc;
    if (command->kind == COMMAND_TASK_SPAWN) {
        rc = service_task_spawn(service, command, pending, batch, now_ns, &first, &second,
                                &submitted);
    } else if (command->kind == COMMAND_REMINDER_FIRE) {
        rc = service_reminder_fire(service, command, pending, batch, now_ns, &first, &submitted);
    } else {
        rc = service_event_append(service, command, pending, batch, now_ns, &submitted);
    }
    task_free(&first);
    task_free(&second);
    if (submitted) return;
    if (rc != 0) result_fail(&pending->result, 503, service_error_detail(rc));
    service_return_sequence(service, batch->user_id, (int)batch->count);
    batch_free(batch);
    pending_finish(pending, &pending->result);
}

/* ---- User commands ------------------------------------------------------------ */

int service_user_json(const struct user_record *user, struct buf *out) {
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    if (doc == NULL) return ERR_NOMEM;
    yyjson_mut_val *root = yyjson_mut_obj(doc);
    yyjson_mut_doc_set_root(doc, root);
    yyjson_mut_obj_add_strcpy(doc, root, "id", user->id);
    yyjson_mut_obj_add_strcpy(doc, root, "username", user->username);
    yyjson_mut_obj_add_strcpy(doc, root, "role", user->role);
    yyjson_mut_obj_add_strcpy(doc, root, "timezone", user->timezone);
    yyjson_doc *settings = yyjson_read(user->settings, strlen(user->settings), 0);
    yyjson_mut_val *settings_value =
        settings != NULL ? yyjson_val_mut_copy(doc, yyjson_doc_get_root(settings)) : NULL;
    yyjson_doc_free(settings);
    yyjson_mut_obj_add_val(doc, root, "settings",
                           settings_value != NULL ? settings_value : yyjson_mut_obj(doc));
    yyjson_mut_obj_add_val(doc, root, "created_at",
                           service_time_value(doc, true, user->created_at_ns));
    size_t length = 0;
    char *json = yyjson_mut_write(doc, 0, &length);
    yyjson_mut_doc_free(doc);
    if (json == NULL) return ERR_NOMEM;
    int rc = buf_append(out, json, length);
    free(json);
    return rc;
}

/* The user as it will be once the command's events are applied. */
static int service_user_result(struct pending *pending, int status,
                               const struct user_record *user) {
    pending->result.status = status;
    memcpy(pending->result.id, user->id, UUID_STRING_BYTES);
    return service_user_json(user, &pending->result.body);
}

bool service_username_valid(const char *name, size_t length) {
    if (length < LIMIT_USERNAME_BYTES_MIN || length > LIMIT_USERNAME_BYTES_MAX) return false;
    for (size_t index = 0; index < length; index++) {
        char c = name[index];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

static int service_user_create(struct service *service, const struct command *command,
                               struct pending *pending, struct batch *batch, int64_t now_ns) {
    struct command_result *result = &pending->result;
    size_t name_length = strlen(command->username);
    /* Checked here too (not only by the API) so every path - the CLI, future
     * imports - holds the same rule. */
    if (!service_username_valid(command->username, name_length)) {
        result_fail(result, 422, "The account is invalid.");
        task_errors_add(&result->errors, "username", "must be 3 to 64 of A-Z a-z 0-9 . _ -");
        return 1;
    }
    if (command->role != NULL && strcmp(command->role, "admin") != 0 &&
        strcmp(command->role, "user") != 0) {
        result_fail(result, 422, "The account is invalid.");
        task_errors_add(&result->errors, "role", "must be admin or user");
        return 1;
    }
    struct user_record existing;
    int rc = query_user_by_name(service->options.db, command->username, &existing);
    if (rc == 0 || map_get(&service->usernames, command->username, name_length) != NULL) {
        result_fail(result, 409, "The username is taken.");
        task_errors_add(&result->errors, "username", "is taken");
        return 1;
    }
    if (rc != ERR_NOTFOUND) return rc;
    int64_t users = query_user_count(service->options.db);
    if (users < 0) return (int)users;
    struct user_record user;
    memset(&user, 0, sizeof user);
    rc = uuid_v7_generate(&service->ids, now_ns / 1000000, user.id);
    if (rc != 0) return rc;
    snprintf(user.username, sizeof user.username, "%s", command->username);
    const char *role = command->role != NULL                              ? command->role
                       : users == 0 && service->usernames.count == 0 ? "admin"
                                                                         : "user";
    snprintf(user.role, sizeof user.role, "%s", role);
    snprintf(user.timezone, sizeof user.timezone, "%s",
             command->timezone != NULL ? command->timezone : "UTC");
    snprintf(user.settings, sizeof user.settings, "{}");
    user.created_at_ns = now_ns;
    memcpy(batch->user_id, user.id, UUID_STRING_BYTES);
    batch->password_hash = command->password_hash;
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    yyjson_mut_val *data = doc != NULL ? yyjson_mut_obj(doc) : NULL;
    if (data == NULL) {
        yyjson_mut_doc_free(doc);
        return ERR_NOMEM;
    }
    yyjson_mut_obj_add_strcpy(doc, data, "username", user.username);
    yyjson_mut_obj_add_strcpy(doc, data, "role", user.role);
    yyjson_mut_obj_add_strcpy(doc, data, "timezone", user.timezone);
    yyjson_mut_obj_add_val(doc, data, "settings", yyjson_mut_obj(doc));
    rc = batch_add(batch, "user.created", user.id, doc, data, now_ns);
    yyjson_mut_doc_free(doc);
    if (rc == 0) rc = service_user_result(pending, 201, &user);
    if (rc != 0) return rc;
    pending->username = mem_strdup(user.username);
    if (pending->username == NULL) return ERR_NOMEM;
    rc = map_put(&service->usernames, user.username, name_length, pending);
    if (rc != 0) {
        mem_free(pending->username);
        pending->username = NULL;
        return rc;
    }
    service_submit(service, batch, pending, NULL, false);
    return 2;
}

/* Adds {"old","new"} under `name` when the two texts differ (JSON texts
 * when `json` is set, strings otherwise). */
static int service_user_change(yyjson_mut_doc *doc, yyjson_mut_val *changes, const char *name,
                               const char *before, const char *after, bool json) {
    if (after == NULL || strcmp(before, after) == 0) return 0;
    yyjson_mut_val *change = yyjson_mut_obj_add_obj(doc, changes, name);
    if (change == NULL) return ERR_NOMEM;
    if (!json) {
        yyjson_mut_obj_add_strcpy(doc, change, "old", before);
        yyjson_mut_obj_add_strcpy(doc, change, "new", after);
        return 1;
    }
    yyjson_doc *old_doc = yyjson_read(before, strlen(before), 0);
    yyjson_doc *new_doc = yyjson_read(after, strlen(after), 0);
    if (old_doc != NULL) {
        yyjson_mut_obj_add_val(doc, change, "old",
                               yyjson_val_mut_copy(doc, yyjson_doc_get_root(old_doc)));
    }
    if (new_doc != NULL) {
        yyjson_mut_obj_add_val(doc, change, "new",
                               yyjson_val_mut_copy(doc, yyjson_doc_get_root(new_doc)));
    }
    yyjson_doc_free(old_doc);
    yyjson_doc_free(new_doc);
    return 1;
}

static int service_user_modify(struct service *service, const struct command *command,
                               struct pending *pending, struct batch *batch, int64_t now_ns) {
    struct user_record user;
    int rc = query_user_by_id(service->options.db, command->user_id, &user);
    if (rc == ERR_NOTFOUND) {
        result_fail(&pending->result, 404, "No such user.");
        return 1;
    }
    if (rc != 0) return rc;
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    if (doc == NULL) return ERR_NOMEM;
    yyjson_mut_val *data = yyjson_mut_obj(doc);
    if (command->kind == COMMAND_USER_LOGIN) {
        rc = batch_add(batch, "user.login", user.id, doc, data, now_ns);
    } else if (command->kind == COMMAND_USER_ROLE) {
        if (strcmp(user.role, command->role) != 0) {
            yyjson_mut_obj_add_strcpy(doc, data, "old", user.role);
            yyjson_mut_obj_add_strcpy(doc, data, "new", command->role);
            rc = batch_add(batch, "user.role_changed", user.id, doc, data, now_ns);
            snprintf(user.role, sizeof user.role, "%s", command->role);
        }
    } else {
        yyjson_mut_val *changes = yyjson_mut_obj_add_obj(doc, data, "changes");
        int changed = service_user_change(doc, changes, "timezone", user.timezone,
                                          command->timezone, false);
        int settings_changed = changed >= 0 ? service_user_change(doc, changes, "settings",
                                                                  user.settings,
                                                                  command->settings_json, true)
                                            : 0;
        if (changed < 0 || settings_changed < 0) rc = ERR_NOMEM;
        if (rc == 0 && changed + settings_changed > 0) {
            rc = batch_add(batch, "user.updated", user.id, doc, data, now_ns);
        }
        if (command->timezone != NULL) {
            snprintf(user.timezone, sizeof user.timezone, "%s", command->timezone);
        }
        if (command->settings_json != NULL) {
            snprintf(user.settings, sizeof user.settings, "%s", command->settings_json);
        }
        if (rc == 0 && command->password_hash != NULL) {
            batch->password_hash = command->password_hash;
            rc = batch_add(batch, "user.password_changed", user.id, doc, yyjson_mut_obj(doc),
                           now_ns);
        }
    }
    yyjson_mut_doc_free(doc);
    if (rc == 0) rc = service_user_result(pending, 200, &user);
    if (rc != 0) return rc;
    if (batch->count == 0) return 1; /* nothing changed */
    service_submit(service, batch, pending, NULL, false);
    return 2;
}

static void service_user_command(struct service *service, const struct command *command,
                                 struct pending *pending, struct batch *batch, int64_t now_ns) {
    int rc = command->kind == COMMAND_USER_CREATE
                 ? service_user_create(service, command, pending, batch, now_ns)
                 : service_user_modify(service, command, pending, batch, now_ns);
    if (rc == 2) return; /* submitted */
    if (rc < 0) result_fail(&pending->result, 503, service_error_detail(rc));
    service_return_sequence(service, batch->user_id, (int)batch->count);
    batch_free(batch);
    pending_finish(pending, &pending->result);
}

/* ---- Entry point ----------------------------------------------------------------- */

void service_execute(struct service *service, const struct command *command, command_done done,
                     void *arg) {
    service_try_recover(service);
    if (service->recovering) {
        struct command_result result;
        result_init(&result);
        result_fail(&result, 503, "A write failed; the server is catching up. Retry shortly.");
        result.retry_after_s = 1;
        done(arg, &result);
        return;
    }
    if (service->pending_count >= LIMIT_COMMANDS_PENDING) {
        struct command_result result;
        result_init(&result);
        result_fail(&result, 503, "Too many writes in flight; retry shortly.");
        result.retry_after_s = 1;
        done(arg, &result);
        return;
    }
    struct pending *pending = pending_new(service, done, arg);
    if (pending == NULL) {
        service_answer(done, arg, 503, "Out of memory.");
        return;
    }
    if (service_idempotency(service, command, pending, done, arg)) {
        pending_discard(pending);
        return;
    }
    int64_t now_ns = service->options.clock->wall_ns(service->options.clock);
    struct batch batch;
    memset(&batch, 0, sizeof batch);
    batch.service = service;
    batch.command = command;
    if (command->user_id != NULL) service_copy(batch.user_id, sizeof batch.user_id, command->user_id);
    if (uuid_v4_generate(batch.correlation_id) != 0) {
        pending_discard(pending);
        service_answer(done, arg, 503, "No randomness available.");
        return;
    }
    switch (command->kind) {
    case COMMAND_TASK_CREATE:
        service_task_create(service, command, pending, &batch, now_ns);
        break;
    case COMMAND_TASK_PATCH:
    case COMMAND_TASK_DELETE:
    case COMMAND_TASK_COMPLETE:
    case COMMAND_TASK_UNCOMPLETE:
        service_task_change(service, command, pending, &batch, now_ns);
        break;
    case COMMAND_TASK_SPAWN:
    case COMMAND_REMINDER_FIRE:
    case COMMAND_EVENT_APPEND:
        service_timer_command(service, command, pending, &batch, now_ns);
        break;
    default:
        service_user_command(service, command, pending, &batch, now_ns);
        break;
    }
}

/* ---- Completion -------------------------------------------------------------------- */

/* The last event of `pending` is durable (status 0) or failed. */
static void service_on_appended(void *arg, int status, int64_t offset) {
    struct pending *pending = arg;
    (void)offset;
    if (status == 0) return; /* the wake that follows runs the projection */
    struct service *service = pending->service;
    /* Every record after a failed one fails too, in order; everything before
     * it is durable and (wakes run first) already applied. */
    LOG_WARN("service", "write failed", "error=%s", err_name(status));
    pending_unlink(service, pending);
    /* The overlays and sequence counters may include this command's events,
     * and events before it may not be applied yet: new writes are refused
     * until the projection has caught up with the log, then the in-flight
     * state is rebuilt from SQLite (service_try_recover). */
    service->recovering = true;
    struct command_result result;
    result_init(&result);
    result_fail(&result, service_error_status(status), service_error_detail(status));
    pending_finish(pending, &result);
    buf_free(&result.body);
}

/* After a failed append: once nothing is in flight and SQLite holds every
 * durable event, the overlays and counters are rebuilt from it (lazily). */
static void service_try_recover(struct service *service) {
    if (!service->recovering || service->head != NULL || service->batch != NULL) return;
    if (projection_offset(service->options.projection) <
        evlog_topic_end_offset(service->options.topic)) {
        return;
    }
    service_drop_overlays(service);
    service->recovering = false;
    LOG_INFO("service", "recovered from a failed write", NULL);
}

/* Answers every command whose events the projection has applied. */
static void service_complete_applied(struct service *service) {
    int64_t applied = projection_offset(service->options.projection);
    if (service->applied_hook != NULL && applied > service->applied_reported) {
        /* Consumers of applied events (the realtime hub) go first: an event is on
         * its way to the user's sockets before the write's own answer is. */
        service->applied_reported = applied;
        service->applied_hook(service->applied_hook_arg, applied);
    }
    while (service->head != NULL && service->head->last_offset < applied) {
        struct pending *pending = service->head;
        pending_unlink(service, pending);
        if (pending->task_id[0] != '\0') {
            size_t length = strlen(pending->task_id);
            struct overlay *overlay = map_get(&service->overlays, pending->task_id, length);
            if (overlay != NULL && overlay->last_offset < applied) {
                map_remove(&service->overlays, pending->task_id, length);
                overlay_free(overlay);
            }
        }
        pending_finish(pending, &pending->result);
    }
    if (service->head == NULL && service->overlays.count > 0) {
        /* Overlays left by commands that were answered early (projection
         * errors) are dropped once applied. */
        size_t cursor = 0;
        struct map_slot *slot;
        char stale[64][UUID_STRING_BYTES];
        size_t stale_count = 0;
        while ((slot = map_next(&service->overlays, &cursor)) != NULL && stale_count < 64) {
            struct overlay *overlay = slot->value;
            if (overlay->last_offset < applied) {
                memcpy(stale[stale_count++], overlay->state.id, UUID_STRING_BYTES);
            }
        }
        for (size_t index = 0; index < stale_count; index++) {
            overlay_free(map_remove(&service->overlays, stale[index], strlen(stale[index])));
        }
    }
    service_try_recover(service);
}

int service_project(struct service *service) {
    for (int round = 0; round < 1000000; round++) {
        int applied = projection_step(service->options.projection, LIMIT_PROJECTION_BATCH_EVENTS);
        if (applied < 0) {
            LOG_ERROR("service", "projection failed", "error=%s", err_name(applied));
            return applied;
        }
        if (applied == 0) break;
    }
    service_complete_applied(service);
    return 0;
}

static void service_project_failed(struct service *service);
static void service_schedule(struct service *service);

static void service_batch_work(void *arg) {
    struct service *service = arg;
    service->batch_status = projection_batch_write(service->options.projection, service->batch);
}

static void service_batch_done(void *arg) {
    struct service *service = arg;
    int status = service->batch_status;
    projection_batch_finish(service->options.projection, service->batch, status);
    service->batch = NULL;
    if (status != 0) {
        LOG_ERROR("service", "projection failed", "error=%s", err_name(status));
        service_project_failed(service);
        return;
    }
    service_complete_applied(service);
    if (service->wake_again ||
        projection_offset(service->options.projection) < evlog_topic_end_offset(service->options.topic)) {
        service->wake_again = false;
        service_schedule(service);
    }
}

/* Starts applying the next batch on the executor unless one is running. */
static void service_schedule(struct service *service) {
    if (service->batch != NULL) {
        service->wake_again = true;
        return;
    }
    int rc = projection_batch_read(service->options.projection, LIMIT_PROJECTION_BATCH_EVENTS,
                                   &service->batch);
    if (rc != 0) {
        LOG_ERROR("service", "projection cannot read the log", "error=%s", err_name(rc));
        service_project_failed(service);
        return;
    }
    if (service->batch == NULL) {
        service_complete_applied(service);
        return;
    }
    service->options.executor->submit(service->options.executor, service_batch_work,
                                      service_batch_done, service);
}

static void service_on_wake(void *arg, struct evlog_topic *topic, int64_t end_offset) {
    (void)topic;
    (void)end_offset;
    struct service *service = arg;
    if (service->options.executor != NULL) {
        service_schedule(service);
        return;
    }
    if (service_project(service) != 0) service_project_failed(service);
}

/* Answers every command in flight with 503 and `detail`. */
static void service_fail_all(struct service *service, const char *detail) {
    while (service->head != NULL) {
        struct pending *pending = service->head;
        pending_unlink(service, pending);
        struct command_result result;
        result_init(&result);
        result_fail(&result, 503, detail);
        pending_finish(pending, &result);
        buf_free(&result.body);
    }
}

static void service_project_failed(struct service *service) {
    /* The durable events stay in the log; a later wake or restart applies
     * them. Waiting commands get 503 now rather than hang. Overlays and
     * counters stay: they are right, and SQLite is behind. */
    service_fail_all(service, "The change is recorded but could not be applied yet.");
}

int64_t service_sweep(struct service *service, int64_t audit_before_ns, int64_t keys_before_ns) {
    if (service->batch != NULL) return 0; /* the connection is busy on the executor */
    struct db *db = service->options.projection_db != NULL ? service->options.projection_db
                                                           : service->options.db;
    return query_sweep(db, audit_before_ns, keys_before_ns, 10000);
}

int service_open(struct service **out, const struct service_options *options) {
    CHECK(options->topic != NULL && options->db != NULL && options->projection != NULL);
    struct service *service = mem_calloc(1, sizeof *service);
    if (service == NULL) return ERR_NOMEM;
    service->options = *options;
    if (service->options.clock == NULL) service->options.clock = clock_system();
    map_init(&service->overlays, LIMIT_COMMANDS_PENDING);
    map_init(&service->sequences, SIZE_MAX);
    map_init(&service->idempotency, LIMIT_COMMANDS_PENDING);
    map_init(&service->usernames, LIMIT_COMMANDS_PENDING);
    map_init(&service->timers, LIMIT_COMMANDS_PENDING);
    uuid_v7_generator_init(&service->ids);
    int64_t start = projection_offset(options->projection);
    int64_t end = evlog_topic_end_offset(options->topic);
    if (end > start) {
        LOG_INFO("service", "applying the event log", "from=%lld to=%lld", (long long)start,
                 (long long)end);
    }
    int rc = service_project(service);
    if (rc == 0) rc = evlog_subscribe(options->topic, service_on_wake, service);
    if (rc != 0) {
        service_close(service);
        return rc;
    }
    service->subscribed = 1;
    *out = service;
    return 0;
}

void service_close(struct service *service) {
    if (service == NULL) return;
    if (service->subscribed) evlog_unsubscribe(service->options.topic, service_on_wake, service);
    service_fail_all(service, "The server is stopping.");
    service_drop_overlays(service);
    map_free(&service->overlays);
    map_free(&service->sequences);
    map_free(&service->idempotency);
    map_free(&service->usernames);
    map_free(&service->timers);
    mem_free(service);
}

void service_set_applied_hook(struct service *service, service_applied_hook hook, void *arg) {
    service->applied_hook = hook;
    service->applied_hook_arg = arg;
    service->applied_reported = projection_offset(service->options.projection);
}

size_t service_pending(const struct service *service) {
    return service->pending_count;
}
