/*
 * service.h - the command layer: turns a validated request into events,
 * appends them to the event log, and reports the outcome only once the
 * events are durable and the projection has applied them (so a client that
 * got 201 reads its write back on any connection).
 *
 * Flow of one command (all on the loop thread):
 *   idempotency check (in flight, then stored) -> current state (in-flight
 *   overlay, then SQLite) -> If-Match -> new state + events with the next
 *   per-user sequence numbers -> evlog_append (group commit) -> [durable]
 *   -> wake -> projection_step -> every command whose last event is now
 *   applied gets its result.
 *
 * In-flight state: a task changed by a command whose events are not applied
 * yet lives in an overlay, so a second command on it (before the first is
 * applied) sees the first's result and gets the next version and sequence.
 * When an append fails (disk full, I/O error), that command and every later
 * one fail (the log guarantees it), the overlays and sequence counters are
 * dropped, and SQLite - which then holds every durable event - is the truth
 * again. No gap appears in a user's sequence: failed numbers are reused.
 *
 * This module knows nothing of HTTP beyond status codes in its results.
 */
#ifndef DOCKET_TASKS_SERVICE_H
#define DOCKET_TASKS_SERVICE_H

#include "../base/buf.h"
#include "../base/clock.h"
#include "../evlog/evlog.h"
#include "../store/db.h"
#include "projection.h"
#include "query.h"
#include "task.h"

#include <stdbool.h>
#include <stdint.h>

struct service;

struct service_options {
    struct evlog_topic *topic;      /* the "events" topic */
    struct db *db;                  /* projections */
    struct projection *projection;  /* applies the topic to db */
    struct clock *clock;            /* event times */
    struct evlog_executor *executor; /* runs projection batches off the loop (the
                                        projection's db must then be its own connection);
                                        NULL: applied inline */
    struct db *projection_db;       /* the projection's connection, for the sweep */
};

/* Entity tags of one If-Match header that are considered. */
#define SERVICE_IF_MATCH_MAX 8

enum command_kind {
    COMMAND_TASK_CREATE,     /* body: task JSON */
    COMMAND_TASK_PATCH,      /* body: partial task JSON */
    COMMAND_TASK_DELETE,
    COMMAND_TASK_COMPLETE,
    COMMAND_TASK_UNCOMPLETE,
    COMMAND_USER_CREATE,     /* username, password_hash, role (NULL = automatic), timezone */
    COMMAND_USER_LOGIN,      /* user_id: records user.login */
    COMMAND_USER_UPDATE,     /* user_id; timezone and/or settings_json and/or password_hash */
    COMMAND_USER_ROLE,       /* user_id; role */
    COMMAND_TASK_SPAWN,      /* task_id: spawn the next occurrence of a recurring task (once) */
    COMMAND_REMINDER_FIRE,   /* task_id, at_ms: append reminder.triggered (or .missed) once */
    COMMAND_EVENT_APPEND,    /* user_id, event_type, subject, body = data object JSON: append
                                one event to the user's stream (notification.sent / .failed) */
};

struct command {
    enum command_kind kind;       /* what to do */
    const char *user_id;          /* the stream owner (caller); ignored by USER_CREATE */
    const char *actor;            /* who acts: a user id or "cli" */
    const char *task_id;          /* task commands other than create */
    const char *body;             /* JSON body (task create/patch) */
    size_t body_length;           /* bytes of body */
    bool has_if_match;            /* If-Match was sent */
    bool if_match_any;            /* If-Match: * */
    int64_t if_match_versions[SERVICE_IF_MATCH_MAX]; /* strong tags it lists ("3" -> 3) */
    size_t if_match_count;        /* entries used; 0 with has_if_match: nothing can match */
    const char *idempotency_key;  /* NULL when none */
    const char *request_hash;     /* hex SHA-256 of the request, with a key */
    const char *username;         /* USER_CREATE */
    const char *password_hash;    /* USER_CREATE, USER_UPDATE (new password) */
    const char *role;             /* USER_CREATE (NULL: admin if first, else user), USER_ROLE */
    const char *timezone;         /* USER_CREATE, USER_UPDATE (NULL = unchanged / "UTC");
                                     TASK_CREATE: the owner's zone, the task's default */
    const char *settings_json;    /* USER_UPDATE: new settings object text; NULL = unchanged */
    int64_t at_ms;                /* REMINDER_FIRE: the instant the reminder was due */
    bool missed;                  /* REMINDER_FIRE: record reminder.missed instead */
    const char *event_type;       /* EVENT_APPEND: e.g. "notification.sent" */
    const char *subject;          /* EVENT_APPEND: the event's subject (a task id) */
};

/* What a command produced. On success `body` is JSON: the task, or the
 * user (user commands); "" for 204. On failure (status >= 400) `detail`
 * and `errors` describe the problem and the caller renders problem+json. */
struct command_result {
    int status;                          /* HTTP status */
    struct buf body;                     /* response body (success) */
    const char *detail;                  /* problem detail (failure), static text or detail_text */
    char detail_text[160];               /* room for a detail with values in it */
    struct task_errors errors;           /* field errors (400/409/422) */
    int64_t version;                     /* task version for ETag; 0 = none */
    char id[UUID_STRING_BYTES];          /* the task or user concerned ("" if none) */
    bool replayed;                       /* an idempotent replay */
    int retry_after_s;                   /* > 0: send Retry-After */
};

/* Called exactly once per service_execute, possibly before it returns. */
typedef void (*command_done)(void *arg, const struct command_result *result);

/* Opens the layer: catches the projection up with the whole log first
 * (logging progress), subscribes to the topic. */
int service_open(struct service **out, const struct service_options *options);
/* Fails commands still in flight with 503 and releases everything. */
void service_close(struct service *service);

/* Runs a command; `done` reports the result. */
void service_execute(struct service *service, const struct command *command, command_done done,
                     void *arg);

/* Catches the projection up (the wake callback does this; the CLI, which
 * has no loop, calls it after appends). Returns a negative code on error. */
int service_project(struct service *service);

/* Deletes audit entries older than `audit_before_ns` and idempotency keys
 * older than `keys_before_ns` through the projection's connection, when no
 * batch is being applied (else it waits for the next call). Returns rows
 * deleted or a negative code. */
int64_t service_sweep(struct service *service, int64_t audit_before_ns, int64_t keys_before_ns);

/* Called on the loop thread whenever the projection has applied the log up
 * to `applied_end` (exclusive): the realtime hub reads up to there. */
typedef void (*service_applied_hook)(void *arg, int64_t applied_end);
void service_set_applied_hook(struct service *service, service_applied_hook hook, void *arg);

/* Commands waiting for the log right now (for /metrics and tests). */
size_t service_pending(const struct service *service);

/* Usernames: LIMIT_USERNAME_BYTES_MIN..MAX of [A-Za-z0-9._-]. */
bool service_username_valid(const char *name, size_t length);

/* The API's user object {"id","username","role","timezone","settings","created_at"}. */
int service_user_json(const struct user_record *user, struct buf *out);

#endif
