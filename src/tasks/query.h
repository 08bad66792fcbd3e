/*
 * query.h - reads of the projections, for the API and the command layer:
 * tasks (one, or a filtered, sorted, cursor-paginated list with full-text
 * search), users, a user's event stream, a task's history, audit entries,
 * stored idempotent responses. Every query takes the caller's user id and
 * never returns another user's rows (admins' audit queries excepted, where
 * asked for explicitly).
 *
 * List results are written as JSON into a `struct buf`:
 *   {"items":[...],"next_cursor":"<opaque>"|null}
 * Cursors are base64url text of a small JSON document binding the sort and
 * the last row's keys (keyset pagination: stable under inserts, O(limit)
 * per page); a cursor that does not decode or was made for another sort or
 * user is ERR_INVAL with errors naming "cursor".
 */
#ifndef DOCKET_TASKS_QUERY_H
#define DOCKET_TASKS_QUERY_H

#include "../auth/password.h"
#include "../base/buf.h"
#include "../store/db.h"
#include "task.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- Users -------------------------------------------------------------- */

struct user_record {
    char id[UUID_STRING_BYTES];                       /* UUID v7 */
    char username[LIMIT_USERNAME_BYTES_MAX + 1];      /* unique, case-sensitive */
    char role[16];                                    /* "user" | "admin" */
    char timezone[LIMIT_TIMEZONE_NAME_BYTES + 1];     /* IANA, default "UTC" */
    char password_hash[PASSWORD_HASH_BYTES];          /* PHC string */
    char settings[2048];                              /* notification settings JSON object text */
    int64_t created_at_ns;                            /* creation time */
    int64_t last_sequence;                            /* last per-user event sequence applied */
};

int query_user_by_id(struct db *db, const char *id, struct user_record *out);       /* ERR_NOTFOUND */
int query_user_by_name(struct db *db, const char *username, struct user_record *out); /* ERR_NOTFOUND */
int64_t query_user_count(struct db *db); /* < 0 on error */
/* {"items":[{id,username,role,timezone,created_at}...]} ordered by username. */
int query_user_list(struct db *db, struct buf *out);
/* Calls `each` for every user's (id, last_sequence) (to seed counters). */
int query_user_sequences(struct db *db, void (*each)(void *arg, const char *id, int64_t last),
                         void *arg);

/* ---- Tasks -------------------------------------------------------------- */

/* The task as stored (ERR_NOTFOUND if absent or not the owner's). */
int query_task_get(struct db *db, const char *owner_id, const char *task_id, struct task *out);

enum task_sort {
    TASK_SORT_DUE = 0, /* tasks without due come after those with one (ascending) */
    TASK_SORT_PRIORITY,
    TASK_SORT_CREATED,
    TASK_SORT_UPDATED,
    TASK_SORT_TITLE, /* case-insensitive, then id */
};

enum task_status { TASK_STATUS_OPEN = 0, TASK_STATUS_COMPLETED, TASK_STATUS_ALL };

struct task_list_query {
    const char *owner_id;                         /* required */
    const char *text;                             /* q: full text; NULL = none */
    const char *tags[LIMIT_LIST_FILTER_VALUES];   /* every tag must match (AND) */
    size_t tag_count;
    unsigned priorities;                          /* bit (1 << task_priority); 0 = any (OR) */
    enum task_status status;                      /* default open */
    bool has_due_before;                          /* due < due_before_ns */
    int64_t due_before_ns;
    bool has_due_after;                           /* due >= due_after_ns */
    int64_t due_after_ns;
    bool overdue;                                 /* due < now_ns and not completed */
    int64_t now_ns;                               /* for overdue */
    enum task_sort sort;                          /* default due */
    bool descending;                              /* "-" prefix */
    size_t limit;                                 /* 1..LIMIT_LIST_MAX */
    const char *cursor;                           /* NULL = first page */
};

/* ERR_INVAL with errors (field "cursor") for a bad cursor. */
int query_task_list(struct db *db, const struct task_list_query *query, struct buf *out,
                    struct task_errors *errors);

/* Test hook: which plan query_task_list uses (query.c explains them). AUTO
 * is the normal choice; the others let tests prove every plan returns the
 * same pages. BUDGET_EXHAUSTED starts the index-order walk with no budget,
 * so it takes the fallback path. */
enum query_plan_override {
    QUERY_PLAN_AUTO = 0,
    QUERY_PLAN_INDEXED,
    QUERY_PLAN_BUDGET_EXHAUSTED,
    QUERY_PLAN_DRIVEN,
};
void query_testing_force_plan(enum query_plan_override plan);

/* ---- Events and audit ---------------------------------------------------- */

/* {"items":[<CloudEvent>...],"next_cursor":null|"<seq>"}: the user's events
 * with sequence > since, oldest first, at most `limit`. */
int query_events_since(struct db *db, const char *user_id, int64_t since, size_t limit,
                       struct buf *out);

/* Calls `each` for the user's events with sequence > after, at most `limit`,
 * oldest first (the realtime hub's catch-up reads). A non-zero return from
 * `each` stops early. Returns how many rows were passed, or a negative code. */
typedef int (*query_event_callback)(void *arg, int64_t sequence, const char *json,
                                    size_t length);
int query_events_each(struct db *db, const char *user_id, int64_t after, size_t limit,
                      query_event_callback each, void *arg);

/* {"items":[<CloudEvent>...],"next_cursor":...}: one task's events, oldest
 * first (ERR_NOTFOUND if the user never had that task). */
int query_task_events(struct db *db, const char *user_id, const char *task_id, size_t limit,
                      const char *cursor, struct buf *out, struct task_errors *errors);

struct audit_query {
    const char *user_id;      /* restrict to this user; NULL = everyone (admin) */
    bool has_from;            /* time >= from_ns */
    int64_t from_ns;
    bool has_to;              /* time < to_ns */
    int64_t to_ns;
    const char *types[LIMIT_LIST_FILTER_VALUES]; /* any of (OR); none = all */
    size_t type_count;
    const char *task_id;      /* NULL = any */
    size_t limit;
    const char *cursor;
};
/* {"items":[{id,time,user_id,actor,type,task_id,payload}...],"next_cursor"} chronological. */
int query_audit(struct db *db, const struct audit_query *query, struct buf *out,
                struct task_errors *errors);

/* Deletes audit entries older than `before_ns` (at most `max_rows` per call,
 * so the loop is never held long) and idempotency keys older than
 * `idempotency_before_ns`. Returns rows deleted or a negative code. */
int64_t query_sweep(struct db *db, int64_t before_ns, int64_t idempotency_before_ns,
                    int64_t max_rows);

/* ---- Idempotency -------------------------------------------------------- */

struct idempotency_record {
    char request_hash[65]; /* hex SHA-256 */
    int status;            /* HTTP status of the first response */
    char *body;            /* mem_alloc'd response body ("" for 204) */
    size_t body_length;
};
/* ERR_NOTFOUND when the key was never used by this user. */
int query_idempotency(struct db *db, const char *user_id, const char *key,
                      struct idempotency_record *out);
void idempotency_record_free(struct idempotency_record *record);

#endif
