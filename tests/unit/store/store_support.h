/*
 * store_support.h - helpers for the store, projection and query tests: a
 * scratch directory with a real event log (manual executor, fake clock) and
 * a database, functions that append real CloudEvent records the way the
 * command layer does, and a dump of every projection table for comparing
 * two databases.
 */
#ifndef DOCKET_TEST_STORE_SUPPORT_H
#define DOCKET_TEST_STORE_SUPPORT_H

#include "../../../src/base/buf.h"
#include "../../../src/store/db.h"
#include "../../../src/tasks/projection.h"
#include "../../../src/tasks/task.h"
#include "../evlog/evlog_support.h"

#include <stdbool.h>
#include <stdint.h>

#define STORE_USERS_MAX 8

/* A log, a database and a projection over them in one scratch directory. */
struct store_fixture {
    char root[256];                  /* scratch directory (removed at close) */
    char db_path[300];               /* <root>/docket.db */
    struct support_log log;          /* the event log, topic "events" */
    struct db *db;                   /* the database, or NULL */
    struct projection *projection;   /* over db and log.topic, or NULL */
    int64_t now_ns;                  /* time of the next event; +1 ms per event */
    int event_number;                /* events appended (for ids) */
    struct {
        char id[UUID_STRING_BYTES]; /* user id */
        int64_t sequence;           /* last sequence given to that user */
    } users[STORE_USERS_MAX];        /* per-user sequence counters */
    size_t user_count;               /* entries of users */
};

/* What to append: envelope fields the tests vary. */
struct store_event {
    const char *type;            /* CloudEvent type */
    const char *user_id;         /* stream owner */
    const char *subject;         /* task id or user id */
    const char *data;            /* data object as JSON text; NULL = {} */
    const char *idempotency_key; /* NULL = none */
    const char *correlation_id;  /* NULL = a fresh one */
    const char *password_hash;   /* record header "password-hash"; NULL = none */
    const char *request_hash;    /* record header "request-hash"; NULL = none */
    int64_t sequence;            /* 0 = the user's next */
};

/* Opens a fresh fixture (log, db, projection). 0 or an error. */
int store_fixture_open(struct store_fixture *fixture, const char *tag);
/* Closes db and projection only (the files stay), and opens them again. */
int store_fixture_reopen_db(struct store_fixture *fixture);
void store_fixture_close_db(struct store_fixture *fixture);
void store_fixture_close(struct store_fixture *fixture);

/* Appends one event record and makes it durable. Returns its offset. */
int64_t store_append(struct store_fixture *fixture, const struct store_event *event);
/* Appends a record whose value is not JSON at all. */
int64_t store_append_garbage(struct store_fixture *fixture);

/* Applies everything durable (projection_step until caught up). Returns the
 * number applied or an error. */
int64_t store_project(struct store_fixture *fixture);

/* A deterministic UUID-shaped id: "00000000-0000-7000-8000-<12 hex of n>",
 * prefix distinguishing kinds ('a' users, 'b' tasks) in the first byte. */
void store_id(char out[UUID_STRING_BYTES], char kind, int number);

/* A task with owned strings, for task_to_json_string. */
void store_task_init(struct task *task, const char *id, const char *title, int64_t created_ns);
/* Appends task.created with `task` as data. */
int64_t store_task_created(struct store_fixture *fixture, const char *user_id,
                           const struct task *task);
/* Appends user.created for `username`. */
int64_t store_user_created(struct store_fixture *fixture, const char *user_id,
                           const char *username);

/* Writes every projection table (and the FTS index's check result) as
 * text, rows in key order: equal dumps mean equal projections. */
int store_dump(struct db *db, struct buf *out);

/* RFC 3339 text of a Unix ns time, in a rotating static buffer. */
const char *store_time(int64_t unix_ns);

#endif
