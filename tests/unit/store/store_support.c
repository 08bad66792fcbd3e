/*
 * store_support.c - see store_support.h.
 */
#include "store_support.h"

#include "../../../src/base/check.h"
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "../../../src/base/timefmt.h"
#include "../../../src/tasks/event.h"

#include <sqlite3.h>
#include <yyjson.h>

#include <stdio.h>
#include <string.h>

void store_id(char out[UUID_STRING_BYTES], char kind, int number) {
    snprintf(out, UUID_STRING_BYTES, "%c0000000-0000-7000-8000-%012x", kind, (unsigned)number);
}

const char *store_time(int64_t unix_ns) {
    static char texts[8][TIMEFMT_TIME_BYTES];
    static int next = 0;
    char *text = texts[next++ % 8];
    timefmt_time_format(unix_ns, text);
    return text;
}

int store_fixture_reopen_db(struct store_fixture *fixture) {
    struct db_error error;
    int rc = db_open(&fixture->db, fixture->db_path, &error);
    if (rc != 0) {
        fprintf(stderr, "    store_support: %s\n", error.message);
        return rc;
    }
    rc = projection_open(&fixture->projection, fixture->db, fixture->log.topic);
    if (rc != 0) {
        db_close(fixture->db);
        fixture->db = NULL;
    }
    return rc;
}

void store_fixture_close_db(struct store_fixture *fixture) {
    projection_close(fixture->projection);
    fixture->projection = NULL;
    db_close(fixture->db);
    fixture->db = NULL;
}

int store_fixture_open(struct store_fixture *fixture, const char *tag) {
    memset(fixture, 0, sizeof *fixture);
    snprintf(fixture->root, sizeof fixture->root, "%s", support_directory(tag));
    snprintf(fixture->db_path, sizeof fixture->db_path, "%s/docket.db", fixture->root);
    fixture->now_ns = 1767225600000000000LL; /* 2026-01-01T00:00:00Z */
    int rc = support_open(&fixture->log, fixture->root, NULL, 0);
    if (rc != 0)
        return rc;
    rc = store_fixture_reopen_db(fixture);
    if (rc != 0)
        support_close(&fixture->log);
    return rc;
}

void store_fixture_close(struct store_fixture *fixture) {
    store_fixture_close_db(fixture);
    support_close(&fixture->log);
    support_remove_tree(fixture->root);
}

static int64_t store_next_sequence(struct store_fixture *fixture, const char *user_id) {
    for (size_t index = 0; index < fixture->user_count; index++) {
        if (strcmp(fixture->users[index].id, user_id) == 0)
            return ++fixture->users[index].sequence;
    }
    CHECK(fixture->user_count < STORE_USERS_MAX);
    snprintf(fixture->users[fixture->user_count].id, UUID_STRING_BYTES, "%s", user_id);
    fixture->users[fixture->user_count].sequence = 1;
    fixture->user_count++;
    return 1;
}

/* Appends a framed record and runs the commit, so it is durable. */
static int64_t store_append_record(struct store_fixture *fixture, const char *key,
                                   const struct evlog_header *headers, size_t header_count,
                                   const char *value, size_t value_length) {
    struct evlog_record record = {
        .key = (const uint8_t *)key,
        .key_bytes = strlen(key),
        .headers = headers,
        .header_count = header_count,
        .value = (const uint8_t *)value,
        .value_bytes = value_length,
    };
    struct support_ack ack = {0};
    int64_t offset = evlog_append(fixture->log.topic, &record, support_on_append, &ack);
    if (offset < 0)
        return offset;
    support_executor_run(&fixture->log.executor);
    return ack.called == 1 && ack.status == 0 ? offset : ERR_IO;
}

static void store_envelope(struct store_fixture *fixture, const struct store_event *event,
                           struct event_envelope *envelope) {
    memset(envelope, 0, sizeof *envelope);
    fixture->event_number++;
    store_id(envelope->id, 'e', fixture->event_number);
    snprintf(envelope->type, sizeof envelope->type, "%s", event->type);
    envelope->time_ns = fixture->now_ns;
    fixture->now_ns += 1000000;
    snprintf(envelope->subject, sizeof envelope->subject, "%s", event->subject);
    snprintf(envelope->user_id, sizeof envelope->user_id, "%s", event->user_id);
    envelope->sequence =
        event->sequence != 0 ? event->sequence : store_next_sequence(fixture, event->user_id);
    if (event->correlation_id != NULL)
        snprintf(envelope->correlation_id, sizeof envelope->correlation_id, "%s",
                 event->correlation_id);
    else
        store_id(envelope->correlation_id, 'c', fixture->event_number);
    snprintf(envelope->actor, sizeof envelope->actor, "%s", event->user_id);
    if (event->idempotency_key != NULL)
        snprintf(envelope->idempotency_key, sizeof envelope->idempotency_key, "%s",
                 event->idempotency_key);
}

int64_t store_append(struct store_fixture *fixture, const struct store_event *event) {
    struct event_envelope envelope;
    store_envelope(fixture, event, &envelope);
    const char *data_text = event->data != NULL ? event->data : "{}";
    yyjson_doc *parsed = yyjson_read(data_text, strlen(data_text), 0);
    CHECK(parsed != NULL);
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    yyjson_mut_val *data = yyjson_val_mut_copy(doc, yyjson_doc_get_root(parsed));
    size_t length = 0;
    char *json = event_to_json(&envelope, doc, data, &length);
    CHECK(json != NULL);
    struct evlog_header headers[2];
    size_t header_count = 0;
    if (event->password_hash != NULL)
        headers[header_count++] = (struct evlog_header){(const uint8_t *)"password-hash", 13,
                                                        (const uint8_t *)event->password_hash,
                                                        strlen(event->password_hash)};
    if (event->request_hash != NULL)
        headers[header_count++] = (struct evlog_header){(const uint8_t *)"request-hash", 12,
                                                        (const uint8_t *)event->request_hash,
                                                        strlen(event->request_hash)};
    int64_t offset =
        store_append_record(fixture, event->user_id, headers, header_count, json, length);
    mem_free(json);
    yyjson_mut_doc_free(doc);
    yyjson_doc_free(parsed);
    return offset;
}

int64_t store_append_garbage(struct store_fixture *fixture) {
    static const char value[] = "this is not an event";
    return store_append_record(fixture, "nobody", NULL, 0, value, sizeof value - 1);
}

int64_t store_project(struct store_fixture *fixture) {
    int64_t total = 0;
    for (int round = 0; round < 100000; round++) {
        int applied = projection_step(fixture->projection, LIMIT_PROJECTION_BATCH_EVENTS);
        if (applied < 0)
            return applied;
        if (applied == 0)
            return total;
        total += applied;
    }
    return ERR_LIMIT;
}

void store_task_init(struct task *task, const char *id, const char *title, int64_t created_ns) {
    memset(task, 0, sizeof *task);
    snprintf(task->id, sizeof task->id, "%s", id);
    task->title = mem_strdup(title);
    task->description = mem_strdup("");
    CHECK(task->title != NULL && task->description != NULL);
    task->priority = TASK_PRIORITY_MEDIUM;
    snprintf(task->timezone, sizeof task->timezone, "UTC");
    task->created_at_ns = created_ns;
    task->updated_at_ns = created_ns;
    task->version = 1;
}

int64_t store_task_created(struct store_fixture *fixture, const char *user_id,
                           const struct task *task) {
    char *json = task_to_json_string(task, NULL);
    CHECK(json != NULL);
    struct store_event event = {
        .type = "task.created", .user_id = user_id, .subject = task->id, .data = json};
    int64_t offset = store_append(fixture, &event);
    mem_free(json);
    return offset;
}

int64_t store_user_created(struct store_fixture *fixture, const char *user_id,
                           const char *username) {
    char data[256];
    snprintf(data, sizeof data,
             "{\"username\":\"%s\",\"role\":\"user\",\"timezone\":\"UTC\","
             "\"settings\":{\"email\":true}}",
             username);
    struct store_event event = {.type = "user.created",
                                .user_id = user_id,
                                .subject = user_id,
                                .data = data,
                                .password_hash = "$pbkdf2-sha256$i=600000$c2FsdA$a2V5"};
    return store_append(fixture, &event);
}

/* Appends every row of `sql` as text, one line per row. */
static int store_dump_query(struct db *db, const char *sql, struct buf *out) {
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db_handle(db), sql, -1, &stmt, NULL) != SQLITE_OK)
        return ERR_INVAL;
    int rc = buf_printf(out, "== %s\n", sql);
    int step;
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        for (int column = 0; rc == 0 && column < sqlite3_column_count(stmt); column++) {
            const char *text = (const char *)sqlite3_column_text(stmt, column);
            rc = buf_printf(out, "%s|", text != NULL ? text : "NULL");
        }
        if (rc == 0)
            rc = buf_append_str(out, "\n");
    }
    sqlite3_finalize(stmt);
    return rc;
}

int store_dump(struct db *db, struct buf *out) {
    static const char *const queries[] = {
        "SELECT * FROM offsets ORDER BY name",
        "SELECT * FROM users ORDER BY id",
        "SELECT * FROM tasks ORDER BY rowid",
        "SELECT * FROM task_tags ORDER BY owner_id, tag, task_rowid",
        "SELECT * FROM events ORDER BY \"offset\"",
        "SELECT * FROM audit ORDER BY id",
        "SELECT * FROM idempotency ORDER BY user_id, key",
        "SELECT * FROM reminders ORDER BY task_id, kind, at_ms",
        "SELECT * FROM push_subscriptions ORDER BY id",
        /* The FTS index itself: every term occurrence it holds. */
        "SELECT term, doc, col, offset FROM temp.store_terms ORDER BY term, doc, col, offset",
    };
    int rc = db_exec(db, "CREATE VIRTUAL TABLE IF NOT EXISTS temp.store_terms"
                         " USING fts5vocab(main, tasks_fts, instance)");
    for (size_t index = 0; rc == 0 && index < sizeof queries / sizeof queries[0]; index++)
        rc = store_dump_query(db, queries[index], out);
    /* External-content FTS5 tables answer 'integrity-check' by comparing
     * the index with what the content table says it should hold. */
    if (rc == 0)
        rc = db_exec(db, "INSERT INTO tasks_fts(tasks_fts) VALUES('integrity-check')");
    int dropped = db_exec(db, "DROP TABLE IF EXISTS temp.store_terms");
    return rc != 0 ? rc : dropped;
}
