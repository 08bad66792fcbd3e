/*
 * projection.c - applies the "events" topic of the event log to the SQLite
 * projections (see projection.h for what each event type does).
 *
 * Shape of one apply: the record's offset is looked up in `events` first (a
 * record already there was applied: nothing happens); then the CloudEvent is
 * parsed, stored in `events` and `audit`, and dispatched by type to the task
 * or user writer; then the user's last_sequence and, when the event carries
 * an idempotency key, the stored response are updated. A batch of applies
 * and the new offset commit in one transaction, so after a crash the
 * projection is exactly at some batch boundary and re-applies from there.
 *
 * Tasks are folded with task.h: the stored JSON (the API object) is read
 * back, the event folded into it, and every column, the tags and the
 * full-text rows are written from the result. Each task event carries the
 * version it produces; an event whose version is not newer than the stored
 * task is skipped, so re-applying never moves a task backwards, even if the
 * offset check were bypassed.
 *
 * Bad events: a record whose value is not a CloudEvent stops the projection
 * (ERR_CORRUPT, logged with its offset): skipping it silently could lose a
 * user's data. A well-formed event whose task data does not fold is logged
 * and kept in `events` and `audit` without touching the task: events are
 * immutable, and one bad event must not stop every user's projection.
 */
#include "projection.h"

#include "../base/json.h"
#include "../base/check.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/mem.h"
#include "../base/timefmt.h"
#include "event.h"
#include "task.h"

#include <sqlite3.h>
#include <yyjson.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct projection {
    struct db *db;              /* where the projections live */
    struct evlog_topic *topic;  /* the "events" topic */
    int64_t offset;             /* next offset to apply, as committed in `offsets` */
    struct evlog_cursor cursor; /* kept open across steps while cursor_open */
    bool cursor_open;           /* cursor is valid and positioned at `offset` */
};

/* One record being applied: the parsed event and its side data. */
struct projection_event {
    const struct evlog_record *record; /* the log record */
    struct event_envelope envelope;    /* its CloudEvent attributes */
    yyjson_doc *doc;                   /* the parsed CloudEvent (owned) */
    yyjson_val *data;                  /* its "data" object */
    char *data_json;                   /* data serialised for audit.payload (owned) */
    size_t data_json_length;           /* bytes of data_json */
    const uint8_t *password_hash;      /* header "password-hash", or NULL */
    size_t password_hash_bytes;        /* its length */
    const uint8_t *request_hash;       /* header "request-hash", or NULL */
    size_t request_hash_bytes;         /* its length */
    int status;                        /* idempotent response status; 0 = none to store */
    char *body;                        /* idempotent response body (owned), or NULL */
    size_t body_length;                /* bytes of body */
};

/* Logs a failed statement and returns the mapped code. */
static int projection_sql_fail(struct projection *projection, int sqlite_code, const char *what) {
    char quoted[300];
    logger_quote(sqlite3_errmsg(db_handle(projection->db)), quoted, sizeof quoted);
    LOG_ERROR("projection", "statement failed", "what=%s code=%d error=%s", what, sqlite_code,
              quoted);
    return db_error_code(sqlite_code);
}

/* Steps a write statement to completion and resets it. */
static int projection_run(struct projection *projection, sqlite3_stmt *stmt, const char *what) {
    if (stmt == NULL)
        return ERR_IO;
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : projection_sql_fail(projection, rc, what);
}

static void projection_bind_text(sqlite3_stmt *stmt, int index, const char *text) {
    sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
}

/* ---- Open, offset ------------------------------------------------------ */

static int projection_load_offset(struct projection *projection) {
    sqlite3_stmt *stmt =
        db_statement(projection->db, "SELECT next_offset FROM offsets WHERE name = 'projection'");
    if (stmt == NULL)
        return ERR_IO;
    int rc = sqlite3_step(stmt);
    projection->offset = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return projection_sql_fail(projection, rc, "load offset");
    return projection->offset >= 0 ? 0 : ERR_CORRUPT;
}

int projection_open(struct projection **out, struct db *db, struct evlog_topic *topic) {
    CHECK(out != NULL && db != NULL && topic != NULL);
    *out = NULL;
    struct projection *projection = mem_calloc(1, sizeof *projection);
    if (projection == NULL)
        return ERR_NOMEM;
    projection->db = db;
    projection->topic = topic;
    int rc = projection_load_offset(projection);
    if (rc != 0) {
        mem_free(projection);
        return rc;
    }
    *out = projection;
    return 0;
}

static void projection_cursor_close(struct projection *projection) {
    if (projection->cursor_open)
        evlog_cursor_close(&projection->cursor);
    projection->cursor_open = false;
}

void projection_close(struct projection *projection) {
    if (projection == NULL)
        return;
    projection_cursor_close(projection);
    mem_free(projection);
}

int64_t projection_offset(const struct projection *projection) {
    CHECK(projection != NULL);
    return projection->offset;
}

static int projection_store_offset(struct projection *projection, int64_t offset) {
    sqlite3_stmt *stmt =
        db_statement(projection->db, "INSERT INTO offsets(name, next_offset)"
                                     " VALUES('projection', ?1)"
                                     " ON CONFLICT(name) DO UPDATE SET next_offset = ?1");
    if (stmt != NULL)
        sqlite3_bind_int64(stmt, 1, offset);
    return projection_run(projection, stmt, "store offset");
}

/* ---- Events, audit, sequences, idempotency ---------------------------- */

static bool projection_is_user_event(const char *type) {
    return strncmp(type, "user.", 5) == 0;
}

/* 1 when `events` already holds the record at `offset`. */
static int projection_seen(struct projection *projection, int64_t offset) {
    sqlite3_stmt *stmt = db_statement(projection->db, "SELECT 1 FROM events WHERE \"offset\" = ?1");
    if (stmt == NULL)
        return ERR_IO;
    sqlite3_bind_int64(stmt, 1, offset);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : projection_sql_fail(projection, rc, "seen");
}

static int projection_store_event(struct projection *projection, struct projection_event *event) {
    const struct event_envelope *envelope = &event->envelope;
    bool user_event = projection_is_user_event(envelope->type);
    sqlite3_stmt *stmt =
        db_statement(projection->db, "INSERT OR IGNORE INTO events"
                                     "(\"offset\", user_id, sequence, task_id, type, time_ns, json)"
                                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (stmt == NULL)
        return ERR_IO;
    sqlite3_bind_int64(stmt, 1, event->record->offset);
    projection_bind_text(stmt, 2, envelope->user_id);
    sqlite3_bind_int64(stmt, 3, envelope->sequence);
    if (!user_event && envelope->subject[0] != '\0')
        projection_bind_text(stmt, 4, envelope->subject);
    projection_bind_text(stmt, 5, envelope->type);
    sqlite3_bind_int64(stmt, 6, envelope->time_ns);
    sqlite3_bind_text(stmt, 7, (const char *)event->record->value, (int)event->record->value_bytes,
                      SQLITE_STATIC);
    int rc = projection_run(projection, stmt, "store event");
    if (rc == 0 && sqlite3_changes(db_handle(projection->db)) == 0) {
        /* Only (user_id, sequence) can collide here (the offset was checked):
         * the command layer reused a sequence. Keep the first; say so. */
        LOG_ERROR("projection", "duplicate per-user sequence; event kept in audit only",
                  "offset=%lld user=%s sequence=%lld", (long long)event->record->offset,
                  envelope->user_id, (long long)envelope->sequence);
    }
    return rc;
}

static int projection_store_audit(struct projection *projection, struct projection_event *event) {
    const struct event_envelope *envelope = &event->envelope;
    sqlite3_stmt *stmt = db_statement(
        projection->db,
        "INSERT OR IGNORE INTO audit(id, time_ns, user_id, actor, type, task_id, payload)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (stmt == NULL)
        return ERR_IO;
    sqlite3_bind_int64(stmt, 1, event->record->offset);
    sqlite3_bind_int64(stmt, 2, envelope->time_ns);
    projection_bind_text(stmt, 3, envelope->user_id);
    projection_bind_text(stmt, 4, envelope->actor);
    projection_bind_text(stmt, 5, envelope->type);
    if (!projection_is_user_event(envelope->type) && envelope->subject[0] != '\0')
        projection_bind_text(stmt, 6, envelope->subject);
    sqlite3_bind_text(stmt, 7, event->data_json, (int)event->data_json_length, SQLITE_STATIC);
    return projection_run(projection, stmt, "store audit");
}

static int projection_store_sequence(struct projection *projection,
                                     const struct event_envelope *envelope) {
    sqlite3_stmt *stmt =
        db_statement(projection->db, "UPDATE users SET last_sequence = max(last_sequence, ?1)"
                                     " WHERE id = ?2 AND last_sequence < ?1");
    if (stmt == NULL)
        return ERR_IO;
    sqlite3_bind_int64(stmt, 1, envelope->sequence);
    projection_bind_text(stmt, 2, envelope->user_id);
    return projection_run(projection, stmt, "store sequence");
}

/* The first event of a request stores its response; later events of the
 * same request (same correlation id, e.g. task.updated then
 * task.due_changed) update it; another request reusing the key does not. */
static int projection_store_idempotency(struct projection *projection,
                                        struct projection_event *event) {
    const struct event_envelope *envelope = &event->envelope;
    sqlite3_stmt *stmt = db_statement(
        projection->db, "INSERT INTO idempotency"
                        "(user_id, key, correlation_id, request_hash, status, body, created_ns)"
                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                        " ON CONFLICT(user_id, key) DO UPDATE SET status = excluded.status,"
                        " body = excluded.body WHERE correlation_id = excluded.correlation_id");
    if (stmt == NULL)
        return ERR_IO;
    projection_bind_text(stmt, 1, envelope->user_id);
    projection_bind_text(stmt, 2, envelope->idempotency_key);
    projection_bind_text(stmt, 3, envelope->correlation_id);
    if (event->request_hash != NULL)
        sqlite3_bind_text(stmt, 4, (const char *)event->request_hash,
                          (int)event->request_hash_bytes, SQLITE_STATIC);
    else
        projection_bind_text(stmt, 4, "");
    sqlite3_bind_int(stmt, 5, event->status);
    if (event->body != NULL)
        sqlite3_bind_text(stmt, 6, event->body, (int)event->body_length, SQLITE_STATIC);
    else
        projection_bind_text(stmt, 6, "");
    sqlite3_bind_int64(stmt, 7, envelope->time_ns);
    return projection_run(projection, stmt, "store idempotency");
}

/* ---- Tasks ------------------------------------------------------------- */

/* The stored row of one task, as read before folding. */
struct projection_stored_task {
    bool exists;                      /* a row with that id exists */
    int64_t rowid;                    /* its rowid (the FTS rowid and tag key) */
    char owner_id[UUID_STRING_BYTES]; /* its owner */
    int64_t version;                  /* its version */
    struct task task;                 /* parsed from its json (owner set) */
};

static int projection_load_task(struct projection *projection, const char *task_id,
                                struct projection_stored_task *stored) {
    sqlite3_stmt *stmt = db_statement(
        projection->db, "SELECT rowid, owner_id, version, json FROM tasks WHERE id = ?1");
    if (stmt == NULL)
        return ERR_IO;
    projection_bind_text(stmt, 1, task_id);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return rc == SQLITE_DONE ? 0 : projection_sql_fail(projection, rc, "load task");
    }
    stored->exists = true;
    stored->rowid = sqlite3_column_int64(stmt, 0);
    snprintf(stored->owner_id, sizeof stored->owner_id, "%s",
             (const char *)sqlite3_column_text(stmt, 1));
    stored->version = sqlite3_column_int64(stmt, 2);
    const char *json = (const char *)sqlite3_column_text(stmt, 3);
    size_t length = (size_t)sqlite3_column_bytes(stmt, 3);
    yyjson_doc *doc = yyjson_read_opts((char *)json, length, YYJSON_READ_NOFLAG,
                                       &json_allocator, NULL);
    sqlite3_reset(stmt);
    if (doc == NULL)
        return ERR_NOMEM; /* we wrote that JSON; only allocation can fail */
    rc = task_from_json(yyjson_doc_get_root(doc), &stored->task);
    yyjson_doc_free(doc);
    if (rc == ERR_NOMEM)
        return rc;
    if (rc != 0) {
        LOG_ERROR("projection", "stored task does not parse", "task=%s", task_id);
        return ERR_CORRUPT;
    }
    memcpy(stored->task.owner_id, stored->owner_id, sizeof stored->owner_id);
    return 0;
}

static int projection_fts(struct projection *projection, bool remove, int64_t rowid,
                          const char *title, const char *description) {
    sqlite3_stmt *stmt =
        remove ? db_statement(projection->db,
                              "INSERT INTO tasks_fts(tasks_fts, rowid, title, description)"
                              " VALUES('delete', ?1, ?2, ?3)")
               : db_statement(projection->db, "INSERT INTO tasks_fts(rowid, title, description)"
                                              " VALUES(?1, ?2, ?3)");
    if (stmt == NULL)
        return ERR_IO;
    sqlite3_bind_int64(stmt, 1, rowid);
    projection_bind_text(stmt, 2, title);
    projection_bind_text(stmt, 3, description);
    return projection_run(projection, stmt, remove ? "fts delete" : "fts insert");
}

static int projection_tags(struct projection *projection, bool remove, const struct task *task,
                           int64_t rowid) {
    for (size_t index = 0; index < task->tag_count; index++) {
        sqlite3_stmt *stmt =
            remove ? db_statement(projection->db, "DELETE FROM task_tags WHERE owner_id = ?1"
                                                  " AND tag = ?2 AND task_rowid = ?3")
                   : db_statement(projection->db, "INSERT OR IGNORE INTO task_tags"
                                                  "(owner_id, tag, task_rowid) VALUES(?1, ?2, ?3)");
        if (stmt == NULL)
            return ERR_IO;
        projection_bind_text(stmt, 1, task->owner_id);
        projection_bind_text(stmt, 2, task->tags[index]);
        sqlite3_bind_int64(stmt, 3, rowid);
        int rc = projection_run(projection, stmt, remove ? "tag delete" : "tag insert");
        if (rc != 0)
            return rc;
    }
    return 0;
}

static bool projection_same_tags(const struct task *a, const struct task *b) {
    if (a->tag_count != b->tag_count || strcmp(a->owner_id, b->owner_id) != 0)
        return false;
    for (size_t index = 0; index < a->tag_count; index++) {
        if (strcmp(a->tags[index], b->tags[index]) != 0)
            return false;
    }
    return true;
}

/* Binds every column of `task` to the INSERT/UPDATE statements below. */
static void projection_bind_task(sqlite3_stmt *stmt, const struct task *task, const char *json,
                                 size_t json_length) {
    projection_bind_text(stmt, 2, task->id);
    projection_bind_text(stmt, 3, task->owner_id);
    projection_bind_text(stmt, 4, task->title != NULL ? task->title : "");
    projection_bind_text(stmt, 5, task->description != NULL ? task->description : "");
    sqlite3_bind_int(stmt, 6, task->completed ? 1 : 0);
    if (task->has_completed_at)
        sqlite3_bind_int64(stmt, 7, task->completed_at_ns);
    sqlite3_bind_int(stmt, 8, (int)task->priority);
    if (task->has_due)
        sqlite3_bind_int64(stmt, 9, task->due_ns);
    sqlite3_bind_int64(stmt, 10, task->has_due ? task->due_ns : INT64_MAX);
    sqlite3_bind_int64(stmt, 11, task->created_at_ns);
    sqlite3_bind_int64(stmt, 12, task->updated_at_ns);
    sqlite3_bind_int64(stmt, 13, task->version);
    sqlite3_bind_text(stmt, 14, json, (int)json_length, SQLITE_STATIC);
}

static const char projection_task_insert_sql[] =
    "INSERT INTO tasks(rowid, id, owner_id, title, description, completed, completed_ns,"
    " priority, due_ns, due_sort, created_ns, updated_ns, version, json)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

static const char projection_task_update_sql[] =
    "UPDATE tasks SET id = ?2, owner_id = ?3, title = ?4, description = ?5, completed = ?6,"
    " completed_ns = ?7, priority = ?8, due_ns = ?9, due_sort = ?10, created_ns = ?11,"
    " updated_ns = ?12, version = ?13, json = ?14 WHERE rowid = ?1";

/* Writes `task` (folded) over `stored` (which may not exist), with its tags
 * and full-text rows. Returns the JSON written in *json_out (owned). */
static int projection_write_task(struct projection *projection,
                                 struct projection_stored_task *stored, const struct task *task,
                                 char **json_out, size_t *json_length_out) {
    size_t json_length = 0;
    char *json = task_to_json_string(task, &json_length);
    if (json == NULL)
        return ERR_NOMEM;
    sqlite3_stmt *stmt = db_statement(projection->db, stored->exists ? projection_task_update_sql
                                                                     : projection_task_insert_sql);
    int rc = ERR_IO;
    if (stmt == NULL)
        goto fail;
    if (stored->exists)
        sqlite3_bind_int64(stmt, 1, stored->rowid);
    projection_bind_task(stmt, task, json, json_length);
    rc = projection_run(projection, stmt, "write task");
    if (rc != 0)
        goto fail;
    int64_t rowid =
        stored->exists ? stored->rowid : sqlite3_last_insert_rowid(db_handle(projection->db));
    const struct task *old = &stored->task;
    bool text_changed = !stored->exists || strcmp(old->title, task->title) != 0 ||
                        strcmp(old->description, task->description) != 0;
    if (stored->exists && text_changed)
        rc = projection_fts(projection, true, rowid, old->title, old->description);
    if (rc == 0 && text_changed)
        rc = projection_fts(projection, false, rowid, task->title, task->description);
    bool tags_changed = !stored->exists || !projection_same_tags(old, task);
    if (rc == 0 && stored->exists && tags_changed)
        rc = projection_tags(projection, true, old, rowid);
    if (rc == 0 && tags_changed)
        rc = projection_tags(projection, false, task, rowid);
    if (rc != 0)
        goto fail;
    *json_out = json;
    *json_length_out = json_length;
    return 0;
fail:
    mem_free(json);
    return rc;
}

static int projection_delete_task(struct projection *projection,
                                  struct projection_stored_task *stored) {
    sqlite3_stmt *stmt = db_statement(projection->db, "DELETE FROM tasks WHERE rowid = ?1");
    if (stmt != NULL)
        sqlite3_bind_int64(stmt, 1, stored->rowid);
    int rc = projection_run(projection, stmt, "delete task");
    if (rc == 0)
        rc = projection_fts(projection, true, stored->rowid, stored->task.title,
                            stored->task.description);
    if (rc == 0)
        rc = projection_tags(projection, true, &stored->task, stored->rowid);
    return rc;
}

static bool projection_is_task_event(const char *type) {
    static const char *const types[] = {"task.created",     "task.updated",
                                        "task.due_changed", "task.completed",
                                        "task.uncompleted", "task.deleted",
                                        "recurrence.spawned"};
    for (size_t index = 0; index < sizeof types / sizeof types[0]; index++) {
        if (strcmp(type, types[index]) == 0)
            return true;
    }
    return false;
}

/* ---- Timers: reminders and spawns of recurring tasks ------------------- */

/* Row states of the reminders table (db.c schema 2). */
enum projection_timer_state {
    PROJECTION_TIMER_PENDING = 0,
    PROJECTION_TIMER_FIRED = 1,
    PROJECTION_TIMER_MISSED = 2,
    PROJECTION_TIMER_CANCELLED = 3,
    PROJECTION_TIMER_DONE = 4,
};

/* A timer row kind: 0 reminder, 1 spawn (scheduler.h enum scheduler_kind). */
#define PROJECTION_TIMER_REMINDER 0
#define PROJECTION_TIMER_SPAWN 1

/* The spawned successor column of a task: 1 when set (spawned or ended). */
static int projection_has_next(struct projection *projection, const char *task_id) {
    sqlite3_stmt *stmt =
        db_statement(projection->db, "SELECT next_id IS NOT NULL FROM tasks WHERE id = ?1");
    if (stmt == NULL)
        return ERR_IO;
    projection_bind_text(stmt, 1, task_id);
    int rc = sqlite3_step(stmt);
    int has = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return projection_sql_fail(projection, rc, "next id");
    return has;
}

/* The timers `task` wants now: its reminder instants while open, and one
 * spawn when it is recurring and has no successor yet - at its due date on
 * schedule, at its completion in the other two modes. */
static size_t projection_wanted_timers(struct projection *projection, const struct task *task,
                                       int64_t *at_ms, int *kinds, size_t capacity, int *error) {
    size_t count = 0;
    *error = 0;
    if (task == NULL)
        return 0;
    if (!task->completed) {
        count = task_reminder_instants(task, at_ms, capacity - 1);
        for (size_t index = 0; index < count; index++)
            kinds[index] = PROJECTION_TIMER_REMINDER;
    }
    if (!task->has_recurrence)
        return count;
    bool schedule = task->recurrence_from == TASK_RECURRENCE_FROM_SCHEDULE;
    bool wants = schedule ? task->has_due : (task->completed && task->has_completed_at);
    if (!wants)
        return count;
    int has_next = projection_has_next(projection, task->id);
    if (has_next != 0) {
        *error = has_next < 0 ? has_next : 0;
        return count;
    }
    at_ms[count] = schedule ? task->due_ns / 1000000 : task->completed_at_ns / 1000000;
    kinds[count++] = PROJECTION_TIMER_SPAWN;
    return count;
}

static int projection_timer_set(struct projection *projection, const char *task_id, int kind,
                                int64_t at_ms, int state, int64_t rev) {
    sqlite3_stmt *stmt = db_statement(projection->db,
                                      "UPDATE reminders SET state = ?4, rev = ?5"
                                      " WHERE task_id = ?1 AND kind = ?2 AND at_ms = ?3");
    if (stmt == NULL)
        return ERR_IO;
    projection_bind_text(stmt, 1, task_id);
    sqlite3_bind_int(stmt, 2, kind);
    sqlite3_bind_int64(stmt, 3, at_ms);
    sqlite3_bind_int(stmt, 4, state);
    sqlite3_bind_int64(stmt, 5, rev);
    return projection_run(projection, stmt, "timer state");
}

/* Cancels the task's pending timers that are not wanted any more. */
static int projection_timers_cancel(struct projection *projection, const char *task_id,
                                    const int64_t *at_ms, const int *kinds, size_t count,
                                    int64_t rev) {
    sqlite3_stmt *stmt = db_statement(
        projection->db, "SELECT kind, at_ms FROM reminders WHERE task_id = ?1 AND state = 0");
    if (stmt == NULL)
        return ERR_IO;
    projection_bind_text(stmt, 1, task_id);
    int kinds_gone[LIMIT_TASK_REMINDERS * 2 + 2];
    int64_t at_gone[LIMIT_TASK_REMINDERS * 2 + 2];
    size_t gone = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int kind = sqlite3_column_int(stmt, 0);
        int64_t at = sqlite3_column_int64(stmt, 1);
        bool wanted = false;
        for (size_t index = 0; index < count; index++)
            wanted = wanted || (kinds[index] == kind && at_ms[index] == at);
        if (!wanted && gone < sizeof at_gone / sizeof at_gone[0]) {
            kinds_gone[gone] = kind;
            at_gone[gone++] = at;
        }
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE)
        return projection_sql_fail(projection, rc, "pending timers");
    for (size_t index = 0; index < gone && rc == SQLITE_DONE; index++) {
        int set = projection_timer_set(projection, task_id, kinds_gone[index], at_gone[index],
                                       PROJECTION_TIMER_CANCELLED, rev);
        if (set != 0)
            return set;
    }
    return 0;
}

/* Brings the task's rows in `reminders` in line with `task` (NULL: deleted).
 * A reminder whose instant is not after the event's time is not scheduled
 * (nobody wants a reminder for a moment already past when it was set); one
 * cancelled earlier becomes pending again if its instant is still ahead
 * (uncomplete). Fired and missed rows never change here. Deterministic: the
 * event's own time decides, so a rebuild from the log gives the same rows. */
static int projection_timers(struct projection *projection, struct projection_event *event,
                             const struct task *task) {
    const char *task_id = event->envelope.subject;
    int64_t rev = event->record->offset;
    int64_t event_ms = event->envelope.time_ns / 1000000;
    int64_t at_ms[LIMIT_TASK_REMINDERS + 1];
    int kinds[LIMIT_TASK_REMINDERS + 1];
    int error = 0;
    size_t count = projection_wanted_timers(projection, task, at_ms, kinds, LIMIT_TASK_REMINDERS + 1,
                                            &error);
    if (error != 0)
        return error;
    int rc = projection_timers_cancel(projection, task_id, at_ms, kinds, count, rev);
    for (size_t index = 0; index < count && rc == 0; index++) {
        if (kinds[index] == PROJECTION_TIMER_REMINDER && at_ms[index] <= event_ms)
            continue;
        sqlite3_stmt *stmt = db_statement(
            projection->db,
            "INSERT INTO reminders(task_id, kind, at_ms, user_id, state, rev)"
            " VALUES(?1, ?2, ?3, ?4, 0, ?5)"
            " ON CONFLICT(task_id, kind, at_ms) DO UPDATE SET state = 0, rev = ?5"
            " WHERE state = 3");
        if (stmt == NULL)
            return ERR_IO;
        projection_bind_text(stmt, 1, task_id);
        sqlite3_bind_int(stmt, 2, kinds[index]);
        sqlite3_bind_int64(stmt, 3, at_ms[index]);
        projection_bind_text(stmt, 4, event->envelope.user_id);
        sqlite3_bind_int64(stmt, 5, rev);
        rc = projection_run(projection, stmt, "timer");
    }
    return rc;
}

/* The series went on from `task_id` (next_id = the successor, or "end"):
 * its pending spawn timer is finished with `state` (fired or done). */
static int projection_series_next(struct projection *projection, const char *task_id,
                                  const char *next_id, int state, int64_t rev) {
    sqlite3_stmt *stmt = db_statement(
        projection->db, "UPDATE tasks SET next_id = ?2 WHERE id = ?1 AND next_id IS NULL");
    if (stmt == NULL)
        return ERR_IO;
    projection_bind_text(stmt, 1, task_id);
    projection_bind_text(stmt, 2, next_id);
    int rc = projection_run(projection, stmt, "next id");
    if (rc != 0)
        return rc;
    stmt = db_statement(projection->db, "UPDATE reminders SET state = ?3, rev = ?2"
                                        " WHERE task_id = ?1 AND kind = 1 AND state = 0");
    if (stmt == NULL)
        return ERR_IO;
    projection_bind_text(stmt, 1, task_id);
    sqlite3_bind_int64(stmt, 2, rev);
    sqlite3_bind_int(stmt, 3, state);
    return projection_run(projection, stmt, "spawn timer done");
}

/* recurrence.spawned: the parent now has its successor, and its spawn timer
 * is done. Only the first successor counts (the command layer never spawns
 * twice; a replay finds next_id set). */
static int projection_spawned(struct projection *projection, struct projection_event *event,
                              const struct task *child) {
    if (child->parent_id[0] == '\0')
        return 0;
    return projection_series_next(projection, child->parent_id, child->id,
                                  PROJECTION_TIMER_FIRED, event->record->offset);
}

/* recurrence.ended (subject: the last task of the series), reminder.triggered
 * and reminder.missed (subject: the task; data.key "<task>@<ms>"). */
static int projection_apply_timer_event(struct projection *projection,
                                        struct projection_event *event) {
    const char *type = event->envelope.type;
    const char *task_id = event->envelope.subject;
    int64_t rev = event->record->offset;
    if (strcmp(type, "recurrence.ended") == 0)
        return projection_series_next(projection, task_id, "end", PROJECTION_TIMER_DONE, rev);
    yyjson_val *key = yyjson_obj_get(event->data, "key");
    const char *text = yyjson_get_str(key);
    const char *at = text != NULL ? strchr(text, '@') : NULL;
    if (at == NULL) {
        LOG_ERROR("projection", "reminder event without a key; skipped", "offset=%lld",
                  (long long)rev);
        return 0;
    }
    int64_t at_ms = strtoll(at + 1, NULL, 10);
    bool missed = strcmp(type, "reminder.missed") == 0;
    return projection_timer_set(projection, task_id, PROJECTION_TIMER_REMINDER, at_ms,
                                missed ? PROJECTION_TIMER_MISSED : PROJECTION_TIMER_FIRED, rev);
}

static bool projection_is_timer_event(const char *type) {
    return strcmp(type, "recurrence.ended") == 0 || strcmp(type, "reminder.triggered") == 0 ||
           strcmp(type, "reminder.missed") == 0;
}

/* Decides whether a task event applies to what is stored: 1 apply, 0 skip. */
static int projection_task_applies(const struct projection_event *event,
                                   const struct projection_stored_task *stored) {
    const char *type = event->envelope.type;
    const char *task_id = event->envelope.subject;
    yyjson_val *version_value = yyjson_obj_get(event->data, "version");
    int64_t version = yyjson_is_int(version_value) ? yyjson_get_sint(version_value) : 0;
    if (stored->exists && strcmp(stored->owner_id, event->envelope.user_id) != 0) {
        LOG_ERROR("projection", "task event from a user who does not own the task; skipped",
                  "offset=%lld task=%s user=%s", (long long)event->record->offset, task_id,
                  event->envelope.user_id);
        return 0;
    }
    if (strcmp(type, "task.created") == 0 || strcmp(type, "recurrence.spawned") == 0)
        return !stored->exists || stored->version < version;
    if (!stored->exists)
        return 0; /* deleted before, or never created: nothing to change */
    if (strcmp(type, "task.deleted") == 0)
        return stored->version <= version; /* the snapshot carries the version it deletes */
    return stored->version < version;
}

/* Folds a task event into the stored task and writes the result. Sets the
 * idempotent response (status and body) for the event. */
static int projection_apply_task(struct projection *projection, struct projection_event *event) {
    const char *type = event->envelope.type;
    struct projection_stored_task stored = {0};
    struct task state = {0};
    int rc = projection_load_task(projection, event->envelope.subject, &stored);
    if (rc != 0)
        goto done;
    if (!projection_task_applies(event, &stored))
        goto done;
    rc = stored.exists ? task_copy(&state, &stored.task) : 0;
    if (rc == 0)
        rc = task_fold(&state, type, event->data);
    if (rc < 0 && rc != ERR_NOMEM) {
        LOG_ERROR("projection", "task event data does not fold; task left unchanged",
                  "offset=%lld type=%s task=%s error=%s", (long long)event->record->offset, type,
                  event->envelope.subject, err_name(rc));
        rc = 0;
    } else if (rc == 1) {
        rc = projection_delete_task(projection, &stored);
        if (rc == 0)
            rc = projection_timers(projection, event, NULL);
    } else if (rc == 0) {
        memcpy(state.owner_id, event->envelope.user_id, sizeof state.owner_id);
        if (strcmp(state.id, event->envelope.subject) != 0) {
            LOG_ERROR("projection", "task id differs from the event subject; skipped",
                      "offset=%lld", (long long)event->record->offset);
        } else {
            rc = projection_write_task(projection, &stored, &state, &event->body,
                                       &event->body_length);
            if (rc == 0)
                rc = projection_timers(projection, event, &state);
            if (rc == 0 && strcmp(type, "recurrence.spawned") == 0)
                rc = projection_spawned(projection, event, &state);
        }
    }
done:
    task_free(&state);
    task_free(&stored.task);
    /* A spawn appended with a completion shares its request: the response
     * stored for the key is the completed task, not the new occurrence. */
    if (rc == 0 && event->envelope.idempotency_key[0] != '\0' &&
        strcmp(type, "recurrence.spawned") != 0) {
        bool deleted = strcmp(type, "task.deleted") == 0;
        bool created = strcmp(type, "task.created") == 0 || strcmp(type, "recurrence.spawned") == 0;
        event->status = created ? 201 : deleted ? 204 : 200;
        if (event->body == NULL && !deleted) {
            /* Skipped (already newer): the response is the task as it is. */
            struct projection_stored_task current = {0};
            rc = projection_load_task(projection, event->envelope.subject, &current);
            if (rc == 0 && current.exists)
                event->body = task_to_json_string(&current.task, &event->body_length);
            if (rc == 0 && current.exists && event->body == NULL)
                rc = ERR_NOMEM;
            task_free(&current.task);
        }
    }
    return rc;
}

/* ---- Users ------------------------------------------------------------- */

static const char *projection_string(yyjson_val *object, const char *name, const char *fallback) {
    const char *text = yyjson_get_str(yyjson_obj_get(object, name));
    return text != NULL ? text : fallback;
}

/* Serialises a JSON value to owned text ("{}" text when absent). */
static int projection_json_text(yyjson_val *value, char **out, size_t *length) {
    if (value == NULL) {
        *out = mem_strdup("{}");
        *length = 2;
    } else {
        *out = yyjson_val_write_opts(value, YYJSON_WRITE_NOFLAG, &json_allocator, length,
                                     NULL);
    }
    return *out != NULL ? 0 : ERR_NOMEM;
}

static int projection_user_created(struct projection *projection, struct projection_event *event) {
    char *settings = NULL;
    size_t settings_length = 0;
    int rc =
        projection_json_text(yyjson_obj_get(event->data, "settings"), &settings, &settings_length);
    if (rc != 0)
        return rc;
    sqlite3_stmt *stmt = db_statement(
        projection->db,
        "INSERT INTO users(id, username, role, timezone, password_hash, settings, created_ns,"
        " last_sequence) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING");
    if (stmt != NULL) {
        projection_bind_text(stmt, 1, event->envelope.user_id);
        projection_bind_text(stmt, 2, projection_string(event->data, "username", ""));
        projection_bind_text(stmt, 3, projection_string(event->data, "role", "user"));
        projection_bind_text(stmt, 4, projection_string(event->data, "timezone", "UTC"));
        if (event->password_hash != NULL)
            sqlite3_bind_text(stmt, 5, (const char *)event->password_hash,
                              (int)event->password_hash_bytes, SQLITE_STATIC);
        else
            projection_bind_text(stmt, 5, "");
        sqlite3_bind_text(stmt, 6, settings, (int)settings_length, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 7, event->envelope.time_ns);
        sqlite3_bind_int64(stmt, 8, event->envelope.sequence);
    }
    rc = projection_run(projection, stmt, "user created");
    if (rc == 0 && sqlite3_changes(db_handle(projection->db)) == 0) {
        LOG_ERROR("projection", "user.created for an existing id or username; skipped",
                  "offset=%lld user=%s", (long long)event->record->offset, event->envelope.user_id);
    }
    mem_free(settings);
    return rc;
}

/* Sets one text column of the user's row (column names are literals). */
static int projection_user_set(struct projection *projection, const char *sql, const char *user_id,
                               const char *value, size_t length) {
    sqlite3_stmt *stmt = db_statement(projection->db, sql);
    if (stmt == NULL)
        return ERR_IO;
    sqlite3_bind_text(stmt, 1, value, (int)length, SQLITE_STATIC);
    projection_bind_text(stmt, 2, user_id);
    return projection_run(projection, stmt, "user update");
}

static int projection_user_updated(struct projection *projection, struct projection_event *event) {
    yyjson_val *changes = yyjson_obj_get(event->data, "changes");
    const char *user_id = event->envelope.user_id;
    int rc = 0;
    const char *timezone =
        yyjson_get_str(yyjson_obj_get(yyjson_obj_get(changes, "timezone"), "new"));
    if (timezone != NULL)
        rc = projection_user_set(projection, "UPDATE users SET timezone = ?1 WHERE id = ?2",
                                 user_id, timezone, strlen(timezone));
    yyjson_val *settings = yyjson_obj_get(yyjson_obj_get(changes, "settings"), "new");
    if (rc == 0 && yyjson_is_obj(settings)) {
        char *text = NULL;
        size_t length = 0;
        rc = projection_json_text(settings, &text, &length);
        if (rc == 0)
            rc = projection_user_set(projection, "UPDATE users SET settings = ?1 WHERE id = ?2",
                                     user_id, text, length);
        mem_free(text);
    }
    return rc;
}

static int projection_apply_user(struct projection *projection, struct projection_event *event) {
    const char *type = event->envelope.type;
    const char *user_id = event->envelope.user_id;
    if (strcmp(type, "user.created") == 0)
        return projection_user_created(projection, event);
    if (strcmp(type, "user.updated") == 0)
        return projection_user_updated(projection, event);
    if (strcmp(type, "user.password_changed") == 0) {
        if (event->password_hash == NULL) {
            LOG_ERROR("projection", "user.password_changed without a password-hash header",
                      "offset=%lld", (long long)event->record->offset);
            return 0;
        }
        return projection_user_set(projection, "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                                   user_id, (const char *)event->password_hash,
                                   event->password_hash_bytes);
    }
    if (strcmp(type, "user.role_changed") == 0) {
        const char *role = yyjson_get_str(yyjson_obj_get(event->data, "new"));
        if (role == NULL)
            return 0;
        return projection_user_set(projection, "UPDATE users SET role = ?1 WHERE id = ?2", user_id,
                                   role, strlen(role));
    }
    return 0; /* user.login and newer user.* types: audit only */
}

/* ---- Push subscriptions (Web Push) ------------------------------------- */

/* push.subscribed inserts the subscription (data: id, endpoint, keys.p256dh,
 * keys.auth, created_at); the same endpoint subscribed again by the same user
 * is ignored (UNIQUE(user_id, endpoint)), so the first id stays. push.unsubscribed
 * (data: id) deletes the user's row. Other push.* types are audit only. */
static int projection_apply_push(struct projection *projection, struct projection_event *event) {
    const char *type = event->envelope.type;
    bool subscribed = strcmp(type, "push.subscribed") == 0;
    if (!subscribed && strcmp(type, "push.unsubscribed") != 0)
        return 0;
    const char *id = yyjson_get_str(yyjson_obj_get(event->data, "id"));
    yyjson_val *keys = yyjson_obj_get(event->data, "keys");
    const char *endpoint = yyjson_get_str(yyjson_obj_get(event->data, "endpoint"));
    const char *p256dh = yyjson_get_str(yyjson_obj_get(keys, "p256dh"));
    const char *auth = yyjson_get_str(yyjson_obj_get(keys, "auth"));
    if (id == NULL || (subscribed && (endpoint == NULL || p256dh == NULL || auth == NULL))) {
        LOG_ERROR("projection", "push event without its fields; skipped", "offset=%lld type=%s",
                  (long long)event->record->offset, type);
        return 0;
    }
    sqlite3_stmt *stmt = db_statement(
        projection->db, subscribed ? "INSERT INTO push_subscriptions(id, user_id, endpoint, p256dh,"
                                     " auth, created_ns) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
                                     " ON CONFLICT DO NOTHING"
                                   : "DELETE FROM push_subscriptions WHERE id = ?1 AND user_id = ?2");
    if (stmt != NULL) {
        projection_bind_text(stmt, 1, id);
        projection_bind_text(stmt, 2, event->envelope.user_id);
    }
    if (stmt != NULL && subscribed) {
        const char *created = yyjson_get_str(yyjson_obj_get(event->data, "created_at"));
        int64_t created_ns = event->envelope.time_ns;
        if (created != NULL)
            (void)timefmt_time_parse(created, strlen(created), &created_ns, NULL);
        projection_bind_text(stmt, 3, endpoint);
        projection_bind_text(stmt, 4, p256dh);
        projection_bind_text(stmt, 5, auth);
        sqlite3_bind_int64(stmt, 6, created_ns);
    }
    return projection_run(projection, stmt, subscribed ? "push subscribed" : "push unsubscribed");
}

/* ---- Apply ------------------------------------------------------------- */

static void projection_read_headers(struct projection_event *event) {
    size_t cursor = 0;
    struct evlog_header header;
    for (size_t count = 0;
         count < LIMIT_EVLOG_HEADER_COUNT && record_header_next(event->record, &cursor, &header);
         count++) {
        if (header.name_bytes == 13 && memcmp(header.name, "password-hash", 13) == 0) {
            event->password_hash = header.value;
            event->password_hash_bytes = header.value_bytes;
        } else if (header.name_bytes == 12 && memcmp(header.name, "request-hash", 12) == 0) {
            event->request_hash = header.value;
            event->request_hash_bytes = header.value_bytes;
        }
    }
}

static int projection_parse(struct projection_event *event) {
    const struct evlog_record *record = event->record;
    int rc = event_parse((const char *)record->value, record->value_bytes, &event->envelope,
                         &event->doc, &event->data);
    if (rc == ERR_NOMEM)
        return rc;
    if (rc != 0) {
        LOG_ERROR("projection", "record is not a Docket event; projection stopped",
                  "offset=%lld error=%s", (long long)record->offset, err_name(rc));
        return ERR_CORRUPT;
    }
    projection_read_headers(event);
    return projection_json_text(event->data, &event->data_json, &event->data_json_length);
}

int projection_apply(struct projection *projection, const struct evlog_record *record) {
    CHECK(projection != NULL && record != NULL && record->offset >= 0);
    int rc = projection_seen(projection, record->offset);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    struct projection_event event = {.record = record};
    rc = projection_parse(&event);
    if (rc == 0)
        rc = projection_store_event(projection, &event);
    if (rc == 0)
        rc = projection_store_audit(projection, &event);
    if (rc == 0 && projection_is_task_event(event.envelope.type))
        rc = projection_apply_task(projection, &event);
    else if (rc == 0 && projection_is_user_event(event.envelope.type))
        rc = projection_apply_user(projection, &event);
    else if (rc == 0 && projection_is_timer_event(event.envelope.type))
        rc = projection_apply_timer_event(projection, &event);
    else if (rc == 0 && strncmp(event.envelope.type, "push.", 5) == 0)
        rc = projection_apply_push(projection, &event);
    if (rc == 0)
        rc = projection_store_sequence(projection, &event.envelope);
    if (rc == 0 && event.status != 0)
        rc = projection_store_idempotency(projection, &event);
    yyjson_doc_free(event.doc);
    mem_free(event.data_json);
    mem_free(event.body);
    return rc;
}

/* ---- Step and rebuild -------------------------------------------------- */

static int projection_cursor_ready(struct projection *projection) {
    if (projection->cursor_open && projection->cursor.offset == projection->offset)
        return 0;
    projection_cursor_close(projection);
    int rc = evlog_cursor_open(&projection->cursor, projection->topic, projection->offset);
    if (rc != 0) {
        LOG_ERROR("projection", "cannot read the event log from the projection's offset",
                  "offset=%lld start=%lld end=%lld error=%s", (long long)projection->offset,
                  (long long)evlog_topic_start_offset(projection->topic),
                  (long long)evlog_topic_end_offset(projection->topic), err_name(rc));
        return rc;
    }
    projection->cursor_open = true;
    return 0;
}

int projection_step(struct projection *projection, size_t max_events) {
    CHECK(projection != NULL && max_events > 0);
    if (max_events > LIMIT_PROJECTION_BATCH_EVENTS)
        max_events = LIMIT_PROJECTION_BATCH_EVENTS;
    int64_t end = evlog_topic_end_offset(projection->topic);
    if (projection->offset > end) {
        /* The database is ahead of the log: it belongs to another log, or the
         * log lost records. Applying new records would skip offsets. */
        LOG_ERROR("projection", "database is ahead of the event log; rebuild it",
                  "offset=%lld end=%lld", (long long)projection->offset, (long long)end);
        return ERR_RANGE;
    }
    if (projection->offset == end)
        return 0; /* caught up: no transaction at all */
    int rc = projection_cursor_ready(projection);
    if (rc != 0)
        return rc;
    rc = db_begin(projection->db);
    if (rc != 0)
        return rc;
    size_t applied = 0;
    while (applied < max_events) {
        struct evlog_record record;
        rc = evlog_cursor_next(&projection->cursor, &record);
        if (rc == ERR_AGAIN)
            break;
        if (rc == 0)
            rc = projection_apply(projection, &record);
        if (rc != 0)
            goto fail;
        applied++;
    }
    int64_t offset = projection->cursor.offset;
    rc = projection_store_offset(projection, offset);
    if (rc == 0)
        rc = db_commit(projection->db);
    if (rc != 0)
        goto fail;
    projection->offset = offset;
    CHECK(applied <= INT32_MAX);
    return (int)applied;
fail:
    db_rollback(projection->db);
    projection_cursor_close(projection); /* reopened at the committed offset next time */
    return rc;
}

/* ---- Batches for another thread ---------------------------------------- */

/* Records copied out of the log: the SQLite work of a step can then run on
 * a worker thread while the loop goes on appending (the log itself is only
 * touched on the loop). */
struct projection_batch {
    struct evlog_record *records; /* `count` records, each pointing into its buffer */
    uint8_t **buffers;            /* per record: key, header and value bytes */
    size_t count;                 /* records */
    int64_t end_offset;           /* offset after the last record */
};

static void projection_batch_free(struct projection_batch *batch) {
    if (batch == NULL)
        return;
    for (size_t index = 0; batch->buffers != NULL && index < batch->count; index++)
        mem_free(batch->buffers[index]);
    mem_free(batch->buffers);
    mem_free(batch->records);
    mem_free(batch);
}

int projection_batch_read(struct projection *projection, size_t max_events,
                          struct projection_batch **out) {
    CHECK(projection != NULL && out != NULL && max_events > 0);
    *out = NULL;
    if (max_events > LIMIT_PROJECTION_BATCH_EVENTS)
        max_events = LIMIT_PROJECTION_BATCH_EVENTS;
    int64_t end = evlog_topic_end_offset(projection->topic);
    if (projection->offset > end)
        return ERR_RANGE;
    if (projection->offset == end)
        return 0;
    int rc = projection_cursor_ready(projection);
    if (rc != 0)
        return rc;
    size_t wanted = (size_t)(end - projection->offset);
    if (wanted > max_events)
        wanted = max_events;
    struct projection_batch *batch = mem_calloc(1, sizeof *batch);
    if (batch == NULL)
        return ERR_NOMEM;
    batch->buffers = mem_calloc(wanted, sizeof *batch->buffers);
    batch->records = mem_calloc(wanted, sizeof *batch->records);
    rc = batch->buffers == NULL || batch->records == NULL ? ERR_NOMEM : 0;
    /* A record's pointers live until the next cursor call: copy each. */
    while (rc == 0 && batch->count < wanted) {
        struct evlog_record record;
        rc = evlog_cursor_next(&projection->cursor, &record);
        if (rc == ERR_AGAIN) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        size_t bytes = record.key_bytes + record.header_data_bytes + record.value_bytes;
        uint8_t *buffer = mem_alloc(bytes > 0 ? bytes : 1);
        if (buffer == NULL) {
            rc = ERR_NOMEM;
            break;
        }
        memcpy(buffer, record.key, record.key_bytes);
        if (record.header_data_bytes > 0)
            memcpy(buffer + record.key_bytes, record.header_data, record.header_data_bytes);
        memcpy(buffer + record.key_bytes + record.header_data_bytes, record.value,
               record.value_bytes);
        record.key = buffer;
        record.header_data = buffer + record.key_bytes;
        record.value = buffer + record.key_bytes + record.header_data_bytes;
        batch->buffers[batch->count] = buffer;
        batch->records[batch->count++] = record;
    }
    if (rc != 0 || batch->count == 0) {
        projection_batch_free(batch);
        projection_cursor_close(projection); /* reopened at the committed offset */
        return rc;
    }
    batch->end_offset = projection->cursor.offset;
    *out = batch;
    return 0;
}

int projection_batch_write(struct projection *projection, struct projection_batch *batch) {
    CHECK(projection != NULL && batch != NULL);
    int rc = db_begin(projection->db);
    if (rc != 0)
        return rc;
    for (size_t index = 0; rc == 0 && index < batch->count; index++)
        rc = projection_apply(projection, &batch->records[index]);
    if (rc == 0)
        rc = projection_store_offset(projection, batch->end_offset);
    if (rc == 0)
        rc = db_commit(projection->db);
    if (rc != 0)
        db_rollback(projection->db);
    return rc;
}

void projection_batch_finish(struct projection *projection, struct projection_batch *batch,
                             int status) {
    CHECK(projection != NULL && batch != NULL);
    if (status == 0) {
        projection->offset = batch->end_offset;
    } else {
        projection_cursor_close(projection);
    }
    projection_batch_free(batch);
}

int projection_rebuild(struct projection *projection, projection_progress progress, void *arg) {
    CHECK(projection != NULL);
    if (evlog_topic_start_offset(projection->topic) != 0) {
        LOG_ERROR("projection", "cannot rebuild: retention removed the first events", "start=%lld",
                  (long long)evlog_topic_start_offset(projection->topic));
        return ERR_RANGE;
    }
    projection_cursor_close(projection);
    int rc = db_reset_projections(projection->db);
    if (rc != 0)
        return rc;
    projection->offset = 0;
    int64_t end = evlog_topic_end_offset(projection->topic);
    /* Bounded by the log's length: each round applies at least one record
     * until the end seen at the start is reached. */
    while (projection->offset < end) {
        rc = projection_step(projection, LIMIT_PROJECTION_BATCH_EVENTS);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        if (progress != NULL)
            progress(arg, projection->offset, end);
    }
    return 0;
}
