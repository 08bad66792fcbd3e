/*
 * projection_test.c - the projection of the event log into SQLite: what
 * each event type writes, and the invariants of projection.h (applying
 * twice changes nothing, replay after a lost commit converges, a rebuild
 * from offset 0 yields identical tables, a bad record keeps nothing).
 */
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "../../../src/tasks/query.h"
#include "../store/store_support.h"
#include "../test.h"

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs `sql` and returns its first column as an integer (-1 on error). */
static int64_t projection_test_int(struct db *db, const char *sql) {
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db_handle(db), sql, -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    int64_t value = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    return value;
}

/* Runs `sql` and copies its first column's text (empty on error or NULL). */
static void projection_test_text(struct db *db, const char *sql, char *out, size_t size) {
    sqlite3_stmt *stmt = NULL;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db_handle(db), sql, -1, &stmt, NULL) != SQLITE_OK)
        return;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != NULL)
        snprintf(out, size, "%s", (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
}

static int64_t projection_test_update(struct store_fixture *fixture, const char *user,
                                      const char *task, const char *changes, int64_t version,
                                      const char *key, const char *correlation) {
    char data[2048];
    snprintf(data, sizeof data, "{\"changes\":%s,\"version\":%lld,\"updated_at\":\"%s\"}", changes,
             (long long)version, store_time(fixture->now_ns));
    struct store_event event = {.type = "task.updated",
                                .user_id = user,
                                .subject = task,
                                .data = data,
                                .idempotency_key = key,
                                .correlation_id = correlation,
                                .request_hash = key != NULL ? "hash-of-the-request" : NULL};
    return store_append(fixture, &event);
}

static int64_t projection_test_scalar(struct store_fixture *fixture, const char *type,
                                      const char *user, const char *task, const char *member,
                                      int64_t version) {
    char data[512];
    const char *when = store_time(fixture->now_ns);
    snprintf(data, sizeof data, "{%s\"version\":%lld,\"updated_at\":\"%s\"}", member,
             (long long)version, when);
    struct store_event event = {.type = type, .user_id = user, .subject = task, .data = data};
    return store_append(fixture, &event);
}

/* Part one of a history: two users, tasks with tags and text, updates. */
static int projection_test_history_one(struct store_fixture *fixture, char users[2][37],
                                       char tasks[6][37]) {
    store_id(users[0], 'a', 1);
    store_id(users[1], 'a', 2);
    if (store_user_created(fixture, users[0], "alice") < 0 ||
        store_user_created(fixture, users[1], "bob") < 0)
        return -1;
    static const char *const titles[] = {"Buy milk",   "Write report", "Call the plumber",
                                         "Café visit", "Plan trip",    "Bob's task"};
    for (int index = 0; index < 6; index++) {
        store_id(tasks[index], 'b', index + 1);
        struct task task;
        store_task_init(&task, tasks[index], titles[index], fixture->now_ns);
        mem_free(task.description);
        task.description = mem_strdup(index == 1 ? "quarterly numbers for the board" : "");
        task.tags = mem_calloc(2, sizeof *task.tags);
        task.tags[0] = mem_strdup(index % 2 == 0 ? "home" : "work");
        task.tags[1] = mem_strdup("all");
        task.tag_count = 2;
        int64_t offset = store_task_created(fixture, users[index == 5 ? 1 : 0], &task);
        task_free(&task);
        if (offset < 0)
            return -1;
    }
    if (projection_test_update(fixture, users[0], tasks[0],
                               "{\"title\":{\"old\":\"Buy milk\",\"new\":\"Buy oat milk\"},"
                               "\"tags\":{\"old\":[\"home\",\"all\"],\"new\":[\"shop\"]}}",
                               2, "key-1", NULL) < 0)
        return -1;
    char due[80];
    snprintf(due, sizeof due, "\"old\":null,\"new\":\"%s\",", store_time(fixture->now_ns));
    if (projection_test_scalar(fixture, "task.due_changed", users[0], tasks[1], due, 2) < 0)
        return -1;
    char completed[80];
    snprintf(completed, sizeof completed, "\"completed_at\":\"%s\",", store_time(fixture->now_ns));
    return projection_test_scalar(fixture, "task.completed", users[0], tasks[2], completed, 2) < 0
               ? -1
               : 0;
}

/* Part two: uncomplete, delete, user changes, unknown and audit-only types. */
static int projection_test_history_two(struct store_fixture *fixture, char users[2][37],
                                       char tasks[6][37]) {
    char previous[80];
    snprintf(previous, sizeof previous, "\"previous_completed_at\":\"%s\",",
             store_time(fixture->now_ns));
    if (projection_test_scalar(fixture, "task.uncompleted", users[0], tasks[2], previous, 3) < 0)
        return -1;
    struct task task;
    store_task_init(&task, tasks[3], "Café visit", fixture->now_ns);
    char *snapshot = task_to_json_string(&task, NULL);
    task_free(&task);
    struct store_event deleted = {.type = "task.deleted",
                                  .user_id = users[0],
                                  .subject = tasks[3],
                                  .data = snapshot,
                                  .idempotency_key = "key-delete"};
    int64_t offset = store_append(fixture, &deleted);
    mem_free(snapshot);
    struct store_event events[] = {
        {.type = "reminder.scheduled",
         .user_id = users[0],
         .subject = tasks[1],
         .data = "{\"at\":\"2026-03-01T00:00:00Z\"}"},
        {.type = "user.updated",
         .user_id = users[0],
         .subject = users[0],
         .data = "{\"changes\":{\"timezone\":{\"old\":\"UTC\",\"new\":\"Europe/Berlin\"},"
                 "\"settings\":{\"old\":{},\"new\":{\"email\":false}}}}"},
        {.type = "user.password_changed",
         .user_id = users[0],
         .subject = users[0],
         .password_hash = "$pbkdf2-sha256$i=600000$bmV3$bmV3a2V5"},
        {.type = "user.role_changed",
         .user_id = users[1],
         .subject = users[1],
         .data = "{\"old\":\"user\",\"new\":\"admin\"}"},
        {.type = "user.login", .user_id = users[1], .subject = users[1]},
    };
    for (size_t index = 0; offset >= 0 && index < sizeof events / sizeof events[0]; index++)
        offset = store_append(fixture, &events[index]);
    return offset < 0 ? -1 : 0;
}

static int projection_test_dump(struct db *db, struct buf *out) {
    buf_init(out, 64 * 1024 * 1024);
    return store_dump(db, out);
}

TEST(projection_applies_each_event_type) {
    struct store_fixture fixture;
    EXPECT(store_fixture_open(&fixture, "projection-types") == 0);
    char users[2][37], tasks[6][37];
    EXPECT(projection_test_history_one(&fixture, users, tasks) == 0);
    EXPECT(projection_test_history_two(&fixture, users, tasks) == 0);
    EXPECT_EQ_INT(store_project(&fixture), 18);
    EXPECT_EQ_INT(projection_offset(fixture.projection), 18);
    struct db *db = fixture.db;
    char text[512];
    projection_test_text(
        db, "SELECT title FROM tasks WHERE id = 'b0000000-0000-7000-8000-000000000001'", text,
        sizeof text);
    EXPECT_STR(text, "Buy oat milk");
    EXPECT_EQ_INT(projection_test_int(db, "SELECT count(*) FROM tasks"), 5); /* one deleted */
    EXPECT_EQ_INT(projection_test_int(db, "SELECT count(*) FROM task_tags WHERE tag = 'shop'"), 1);
    EXPECT_EQ_INT(projection_test_int(db, "SELECT count(*) FROM task_tags WHERE task_rowid = 4"),
                  0);
    EXPECT_EQ_INT(
        projection_test_int(db, "SELECT count(*) FROM tasks_fts WHERE tasks_fts MATCH 'cafe'"), 0);
    EXPECT_EQ_INT(
        projection_test_int(db, "SELECT count(*) FROM tasks_fts WHERE tasks_fts MATCH 'oat'"), 1);
    EXPECT_EQ_INT(projection_test_int(db, "SELECT due_ns IS NOT NULL FROM tasks WHERE rowid = 2"),
                  1);
    EXPECT_EQ_INT(projection_test_int(db, "SELECT completed FROM tasks WHERE rowid = 3"), 0);
    EXPECT_EQ_INT(projection_test_int(db, "SELECT version FROM tasks WHERE rowid = 3"), 3);
    EXPECT_EQ_INT(projection_test_int(db, "SELECT count(*) FROM events"), 18);
    EXPECT_EQ_INT(projection_test_int(db, "SELECT count(*) FROM audit"), 18);
    EXPECT_EQ_INT(projection_test_int(db, "SELECT count(*) FROM events WHERE type = "
                                          "'reminder.scheduled' AND task_id IS NOT NULL"),
                  1);
    EXPECT_EQ_INT(
        projection_test_int(
            db, "SELECT count(*) FROM audit WHERE type = 'user.login' AND task_id IS NULL"),
        1);
    struct user_record alice, bob;
    EXPECT(query_user_by_id(db, users[0], &alice) == 0);
    EXPECT_STR(alice.timezone, "Europe/Berlin");
    EXPECT_STR(alice.settings, "{\"email\":false}");
    EXPECT_STR(alice.password_hash, "$pbkdf2-sha256$i=600000$bmV3$bmV3a2V5");
    EXPECT_EQ_INT(alice.last_sequence, 14);
    EXPECT(query_user_by_name(db, "bob", &bob) == 0);
    EXPECT_STR(bob.role, "admin");
    EXPECT_EQ_INT(bob.last_sequence, 4);
    EXPECT_EQ_INT(alice.created_at_ns, 1767225600000000000LL);
    /* No password hash ever reaches the events or the audit trail. */
    EXPECT_EQ_INT(projection_test_int(db, "SELECT count(*) FROM events WHERE json LIKE '%pbkdf2%'"),
                  0);
    EXPECT_EQ_INT(
        projection_test_int(db, "SELECT count(*) FROM audit WHERE payload LIKE '%pbkdf2%'"), 0);
    store_fixture_close(&fixture);
}

TEST(projection_apply_twice_changes_nothing) {
    struct store_fixture fixture;
    EXPECT(store_fixture_open(&fixture, "projection-twice") == 0);
    char users[2][37], tasks[6][37];
    EXPECT(projection_test_history_one(&fixture, users, tasks) == 0);
    EXPECT(projection_test_history_two(&fixture, users, tasks) == 0);
    EXPECT(store_project(&fixture) == 18);
    struct buf before, after;
    EXPECT(projection_test_dump(fixture.db, &before) == 0);
    /* Every record again, by hand, in one transaction. */
    struct evlog_cursor cursor;
    EXPECT(evlog_cursor_open(&cursor, fixture.log.topic, 0) == 0);
    EXPECT(db_begin(fixture.db) == 0);
    struct evlog_record record;
    int applied = 0;
    while (evlog_cursor_next(&cursor, &record) == 0 &&
           projection_apply(fixture.projection, &record) == 0)
        applied++;
    evlog_cursor_close(&cursor);
    EXPECT(db_commit(fixture.db) == 0);
    EXPECT_EQ_INT(applied, 18);
    EXPECT(projection_test_dump(fixture.db, &after) == 0);
    EXPECT(before.length == after.length && memcmp(before.data, after.data, before.length) == 0);
    /* A rewound offset re-applies through projection_step: still no change. */
    EXPECT(db_exec(fixture.db, "UPDATE offsets SET next_offset = 3") == 0);
    store_fixture_close_db(&fixture);
    EXPECT(store_fixture_reopen_db(&fixture) == 0);
    EXPECT_EQ_INT(projection_offset(fixture.projection), 3);
    EXPECT_EQ_INT(store_project(&fixture), 15);
    buf_free(&after);
    EXPECT(projection_test_dump(fixture.db, &after) == 0);
    EXPECT(before.length == after.length && memcmp(before.data, after.data, before.length) == 0);
    buf_free(&before);
    buf_free(&after);
    store_fixture_close(&fixture);
}

/* Dumps only the task tables (rowids of re-created rows may differ). */
static int projection_test_task_dump(struct db *db, struct buf *out) {
    buf_init(out, 1024 * 1024);
    sqlite3_stmt *stmt = NULL;
    const char *sql = "SELECT id, owner_id, title, description, completed, completed_ns, priority,"
                      " due_ns, due_sort, created_ns, updated_ns, version, json,"
                      " (SELECT group_concat(tag, ',') FROM (SELECT tag FROM task_tags"
                      "  WHERE task_rowid = tasks.rowid ORDER BY tag))"
                      " FROM tasks ORDER BY id";
    if (sqlite3_prepare_v2(db_handle(db), sql, -1, &stmt, NULL) != SQLITE_OK)
        return ERR_INVAL;
    int rc = 0;
    while (rc == 0 && sqlite3_step(stmt) == SQLITE_ROW) {
        for (int column = 0; rc == 0 && column < 14; column++) {
            const char *text = (const char *)sqlite3_column_text(stmt, column);
            rc = buf_printf(out, "%s|", text != NULL ? text : "NULL");
        }
        rc = rc == 0 ? buf_append_str(out, "\n") : rc;
    }
    sqlite3_finalize(stmt);
    return rc == 0 ? db_exec(db, "INSERT INTO tasks_fts(tasks_fts) VALUES('integrity-check')") : rc;
}

TEST(projection_task_versions_never_regress) {
    struct store_fixture fixture;
    EXPECT(store_fixture_open(&fixture, "projection-versions") == 0);
    char users[2][37], tasks[6][37];
    EXPECT(projection_test_history_one(&fixture, users, tasks) == 0);
    EXPECT(projection_test_history_two(&fixture, users, tasks) == 0);
    /* A stale update (version 2 after version 2 was applied) is skipped. */
    EXPECT(projection_test_update(&fixture, users[0], tasks[0],
                                  "{\"title\":{\"old\":\"x\",\"new\":\"Stale title\"}}", 2, NULL,
                                  NULL) >= 0);
    EXPECT(store_project(&fixture) == 19);
    struct buf before, after;
    EXPECT(projection_test_task_dump(fixture.db, &before) == 0);
    EXPECT(strstr(before.data, "Stale title") == NULL);
    /* Forget which offsets were applied; re-applying everything relies on
     * the task versions alone and must land on the same tasks. */
    EXPECT(db_exec(fixture.db, "DELETE FROM events; DELETE FROM audit;"
                               " UPDATE offsets SET next_offset = 0") == 0);
    store_fixture_close_db(&fixture);
    EXPECT(store_fixture_reopen_db(&fixture) == 0);
    EXPECT(store_project(&fixture) == 19);
    EXPECT(projection_test_task_dump(fixture.db, &after) == 0);
    EXPECT(before.length == after.length && memcmp(before.data, after.data, before.length) == 0);
    buf_free(&before);
    buf_free(&after);
    store_fixture_close(&fixture);
}

static int projection_test_copy(const char *from, const char *to) {
    char command[1024];
    snprintf(command, sizeof command, "cp '%s' '%s'", from, to);
    return system(command) == 0 ? 0 : -1;
}

TEST(projection_replay_after_lost_commit_converges) {
    struct store_fixture fixture;
    EXPECT(store_fixture_open(&fixture, "projection-crash") == 0);
    char users[2][37], tasks[6][37];
    EXPECT(projection_test_history_one(&fixture, users, tasks) == 0);
    /* Apply part of it in small batches, then keep a copy of the database
     * as it was: what a power loss that drops later commits leaves. */
    EXPECT_EQ_INT(projection_step(fixture.projection, 3), 3);
    EXPECT_EQ_INT(projection_step(fixture.projection, 3), 3);
    store_fixture_close_db(&fixture); /* checkpoints the WAL into the file */
    char saved[400];
    snprintf(saved, sizeof saved, "%s/saved.db", fixture.root);
    EXPECT(projection_test_copy(fixture.db_path, saved) == 0);
    EXPECT(store_fixture_reopen_db(&fixture) == 0);
    EXPECT(projection_test_history_two(&fixture, users, tasks) == 0);
    EXPECT_EQ_INT(store_project(&fixture), 12);
    struct buf full, replayed;
    EXPECT(projection_test_dump(fixture.db, &full) == 0);
    store_fixture_close_db(&fixture);
    /* "Crash": the later commits are lost; the projection re-applies them. */
    EXPECT(projection_test_copy(saved, fixture.db_path) == 0);
    char wal[420];
    snprintf(wal, sizeof wal, "%s-wal", fixture.db_path);
    EXPECT(access(wal, F_OK) != 0); /* the last close checkpointed and removed it */
    EXPECT(store_fixture_reopen_db(&fixture) == 0);
    EXPECT_EQ_INT(projection_offset(fixture.projection), 6);
    EXPECT_EQ_INT(store_project(&fixture), 12);
    EXPECT(projection_test_dump(fixture.db, &replayed) == 0);
    EXPECT(full.length == replayed.length && memcmp(full.data, replayed.data, full.length) == 0);
    buf_free(&full);
    buf_free(&replayed);
    store_fixture_close(&fixture);
}

static void projection_test_progress(void *arg, int64_t applied, int64_t end) {
    int64_t *last = arg;
    if (applied <= end)
        last[0] = applied;
    last[1]++;
}

TEST(projection_rebuild_yields_identical_tables) {
    struct store_fixture fixture;
    EXPECT(store_fixture_open(&fixture, "projection-rebuild") == 0);
    char users[2][37], tasks[6][37];
    EXPECT(projection_test_history_one(&fixture, users, tasks) == 0);
    EXPECT(projection_test_history_two(&fixture, users, tasks) == 0);
    EXPECT(store_project(&fixture) == 18);
    EXPECT(db_exec(fixture.db, "INSERT INTO offsets VALUES('other-consumer', 5)") == 0);
    struct buf before, after;
    EXPECT(projection_test_dump(fixture.db, &before) == 0);
    EXPECT(before.length > 4000 && strstr(before.data, "Buy oat milk") != NULL);
    int64_t progress[2] = {0, 0};
    EXPECT(projection_rebuild(fixture.projection, projection_test_progress, progress) == 0);
    EXPECT_EQ_INT(progress[0], 18);
    EXPECT(progress[1] >= 1);
    EXPECT(projection_test_dump(fixture.db, &after) == 0);
    EXPECT(before.length == after.length && memcmp(before.data, after.data, before.length) == 0);
    buf_free(&before);
    buf_free(&after);
    store_fixture_close(&fixture);
}

TEST(projection_bad_record_keeps_nothing_of_its_batch) {
    struct store_fixture fixture;
    EXPECT(store_fixture_open(&fixture, "projection-bad") == 0);
    char user[37];
    store_id(user, 'a', 1);
    EXPECT(store_user_created(&fixture, user, "alice") == 0);
    EXPECT(store_append_garbage(&fixture) == 1);
    EXPECT_EQ_INT(projection_step(fixture.projection, 10), ERR_CORRUPT);
    EXPECT_EQ_INT(projection_offset(fixture.projection), 0);
    EXPECT_EQ_INT(projection_test_int(fixture.db, "SELECT count(*) FROM users"), 0);
    EXPECT_EQ_INT(projection_test_int(fixture.db, "SELECT count(*) FROM events"), 0);
    /* It keeps failing at the same place instead of skipping the record. */
    EXPECT_EQ_INT(projection_step(fixture.projection, 1), 1);
    EXPECT_EQ_INT(projection_step(fixture.projection, 1), ERR_CORRUPT);
    EXPECT_EQ_INT(projection_offset(fixture.projection), 1);
    store_fixture_close(&fixture);
}

TEST(projection_database_ahead_of_the_log_is_refused) {
    struct store_fixture fixture;
    EXPECT(store_fixture_open(&fixture, "projection-ahead") == 0);
    EXPECT(db_exec(fixture.db, "INSERT INTO offsets VALUES('projection', 40)") == 0);
    store_fixture_close_db(&fixture);
    EXPECT(store_fixture_reopen_db(&fixture) == 0);
    EXPECT_EQ_INT(projection_offset(fixture.projection), 40);
    EXPECT_EQ_INT(projection_step(fixture.projection, 10), ERR_RANGE);
    store_fixture_close(&fixture);
}

TEST(projection_steps_are_bounded_and_resume) {
    struct store_fixture fixture;
    EXPECT(store_fixture_open(&fixture, "projection-steps") == 0);
    char user[37];
    store_id(user, 'a', 1);
    for (int index = 0; index < 5; index++)
        EXPECT(store_append(&fixture, &(struct store_event){.type = "user.login",
                                                            .user_id = user,
                                                            .subject = user}) == index);
    EXPECT_EQ_INT(projection_step(fixture.projection, 2), 2);
    EXPECT_EQ_INT(projection_step(fixture.projection, 2), 2);
    EXPECT_EQ_INT(projection_step(fixture.projection, 2), 1);
    EXPECT_EQ_INT(projection_step(fixture.projection, 2), 0);
    EXPECT(store_append(
               &fixture,
               &(struct store_event){.type = "user.login", .user_id = user, .subject = user}) == 5);
    EXPECT_EQ_INT(projection_step(fixture.projection, 2), 1);
    EXPECT_EQ_INT(projection_offset(fixture.projection), 6);
    EXPECT_EQ_INT(projection_test_int(fixture.db,
                                      "SELECT next_offset FROM offsets WHERE name = 'projection'"),
                  6);
    store_fixture_close(&fixture);
}

TEST(projection_stores_idempotent_responses) {
    struct store_fixture fixture;
    EXPECT(store_fixture_open(&fixture, "projection-idempotency") == 0);
    char users[2][37], tasks[6][37];
    EXPECT(projection_test_history_one(&fixture, users, tasks) == 0);
    EXPECT(projection_test_history_two(&fixture, users, tasks) == 0);
    /* One request, two events (same correlation id): the response is the
     * task after both. Another request reusing the key changes nothing. */
    char correlation[37];
    store_id(correlation, 'c', 999);
    EXPECT(projection_test_update(&fixture, users[0], tasks[4],
                                  "{\"title\":{\"old\":\"Plan trip\",\"new\":\"Plan a trip\"}}", 2,
                                  "key-2", correlation) >= 0);
    EXPECT(projection_test_update(&fixture, users[0], tasks[4],
                                  "{\"description\":{\"old\":\"\",\"new\":\"to Rome\"}}", 3,
                                  "key-2", correlation) >= 0);
    EXPECT(projection_test_update(&fixture, users[0], tasks[4],
                                  "{\"description\":{\"old\":\"to Rome\",\"new\":\"to Oslo\"}}", 4,
                                  "key-2", NULL) >= 0);
    EXPECT(store_project(&fixture) == 21);
    struct idempotency_record record;
    EXPECT(query_idempotency(fixture.db, users[0], "key-1", &record) == 0);
    EXPECT_EQ_INT(record.status, 200);
    EXPECT_STR(record.request_hash, "hash-of-the-request");
    EXPECT(strstr(record.body, "\"title\":\"Buy oat milk\"") != NULL);
    idempotency_record_free(&record);
    EXPECT(query_idempotency(fixture.db, users[0], "key-2", &record) == 0);
    EXPECT(strstr(record.body, "\"description\":\"to Rome\"") != NULL);
    EXPECT(strstr(record.body, "\"version\":3") != NULL);
    idempotency_record_free(&record);
    EXPECT(query_idempotency(fixture.db, users[0], "key-delete", &record) == 0);
    EXPECT_EQ_INT(record.status, 204);
    EXPECT_EQ_INT(record.body_length, 0);
    EXPECT_STR(record.request_hash, "");
    idempotency_record_free(&record);
    EXPECT_EQ_INT(query_idempotency(fixture.db, users[1], "key-1", &record), ERR_NOTFOUND);
    EXPECT_EQ_INT(query_idempotency(fixture.db, users[0], "key-9", &record), ERR_NOTFOUND);
    store_fixture_close(&fixture);
}

TEST(projection_ignores_task_events_of_another_owner) {
    struct store_fixture fixture;
    EXPECT(store_fixture_open(&fixture, "projection-owner") == 0);
    char users[2][37], tasks[6][37];
    EXPECT(projection_test_history_one(&fixture, users, tasks) == 0);
    EXPECT(projection_test_update(&fixture, users[1], tasks[1],
                                  "{\"title\":{\"old\":\"Write report\",\"new\":\"Stolen\"}}", 9,
                                  NULL, NULL) >= 0);
    EXPECT(store_project(&fixture) == 12);
    char title[64];
    projection_test_text(fixture.db, "SELECT title FROM tasks WHERE rowid = 2", title,
                         sizeof title);
    EXPECT_STR(title, "Write report");
    store_fixture_close(&fixture);
}

TEST(projection_survives_allocation_failures) {
    struct store_fixture fixture;
    EXPECT(store_fixture_open(&fixture, "projection-nomem") == 0);
    char users[2][37], tasks[6][37];
    EXPECT(projection_test_history_one(&fixture, users, tasks) == 0);
    EXPECT(projection_test_history_two(&fixture, users, tasks) == 0);
    /* Fail the n-th allocation for growing n: each failed step keeps
     * nothing (offset unchanged), and the first step that gets through
     * applies everything. */
    int failures = 0;
    int applied = 0;
    for (long budget = 0; budget < 100000 && applied == 0; budget++) {
        mem_fail_after(budget);
        int rc = projection_step(fixture.projection, LIMIT_PROJECTION_BATCH_EVENTS);
        mem_fail_after(-1);
        if (rc == ERR_NOMEM) {
            failures++;
            EXPECT_EQ_INT(projection_offset(fixture.projection), 0);
            EXPECT_EQ_INT(projection_test_int(fixture.db, "SELECT count(*) FROM events"), 0);
            continue;
        }
        EXPECT_EQ_INT(rc, 18);
        applied = rc;
    }
    EXPECT(failures > 50);
    struct buf after, reference;
    EXPECT(projection_test_dump(fixture.db, &after) == 0);
    EXPECT(projection_rebuild(fixture.projection, NULL, NULL) == 0);
    EXPECT(projection_test_dump(fixture.db, &reference) == 0);
    EXPECT(after.length == reference.length &&
           memcmp(after.data, reference.data, after.length) == 0);
    buf_free(&after);
    buf_free(&reference);
    store_fixture_close(&fixture);
}

/* ---- Timers: reminders and spawns ------------------------------------------ */

/* Count of reminders rows of `task` with `kind` and `state`. */
static int64_t projection_test_timers(struct db *db, const char *task, int kind, int state) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM reminders WHERE task_id = '%s' AND kind = %d AND state = %d",
             task, kind, state);
    return projection_test_int(db, sql);
}

TEST(projection_keeps_timer_rows_in_step_with_tasks) {
    /* Proves the reminders table: one pending row per future reminder
     * instant (a past one is not scheduled), a due move cancels the old
     * instant and schedules the new one, completion cancels reminders and
     * schedules the spawn of a recurring task, recurrence.spawned creates
     * the successor and marks the parent (next_id, spawn fired),
     * reminder.triggered marks its row, recurrence.ended marks the series,
     * deletion cancels; and a rebuild from the log gives the same rows. */
    struct store_fixture fixture;
    EXPECT(store_fixture_open(&fixture, "projection-timers") == 0);
    char user[37], parent[37], child[37];
    store_id(user, 'a', 1);
    store_id(parent, 'b', 1);
    store_id(child, 'b', 2);
    EXPECT(store_user_created(&fixture, user, "alice") >= 0);
    int64_t t0 = fixture.now_ns;
    struct task task;
    store_task_init(&task, parent, "Water the plants", t0);
    task.has_due = true;
    task.due_ns = t0 + INT64_C(3600) * 1000000000;
    task.has_recurrence = true;
    snprintf(task.rule, sizeof task.rule, "FREQ=DAILY");
    task.has_series_start = true;
    task.series_start_ns = task.due_ns;
    task.reminders = mem_calloc(3, sizeof *task.reminders);
    task.reminders[0] = (struct task_reminder){TASK_REMINDER_BEFORE, 900, 0};
    task.reminders[1] = (struct task_reminder){TASK_REMINDER_AT, 0, t0 + INT64_C(600) * 1000000000};
    task.reminders[2] = (struct task_reminder){TASK_REMINDER_AT, 0, t0 - 60 * INT64_C(1000000000)};
    task.reminder_count = 3;
    EXPECT(store_task_created(&fixture, user, &task) >= 0);
    EXPECT(store_project(&fixture) > 0);
    struct db *db = fixture.db;
    EXPECT_EQ_INT(projection_test_timers(db, parent, 0, 0), 2); /* the past one is not */
    /* Move the due one hour later: the relative instant moves, the absolute stays. */
    char due_change[256];
    char old_due[40], new_due[40];
    snprintf(old_due, sizeof old_due, "%s", store_time(task.due_ns));
    snprintf(new_due, sizeof new_due, "%s", store_time(task.due_ns + INT64_C(3600) * 1000000000));
    snprintf(due_change, sizeof due_change, "{\"due\":{\"old\":\"%s\",\"new\":\"%s\"}}", old_due,
             new_due);
    EXPECT(projection_test_update(&fixture, user, parent, due_change, 2, NULL, NULL) >= 0);
    EXPECT(store_project(&fixture) > 0);
    EXPECT_EQ_INT(projection_test_timers(db, parent, 0, 0), 2);
    EXPECT_EQ_INT(projection_test_timers(db, parent, 0, 3), 1); /* the old relative instant */
    /* Complete: reminders cancelled, the spawn scheduled at the completion. */
    char completed[80];
    snprintf(completed, sizeof completed, "\"completed_at\":\"%s\",", store_time(fixture.now_ns));
    EXPECT(projection_test_scalar(&fixture, "task.completed", user, parent, completed, 3) >= 0);
    EXPECT(store_project(&fixture) > 0);
    EXPECT_EQ_INT(projection_test_timers(db, parent, 0, 0), 0);
    EXPECT_EQ_INT(projection_test_timers(db, parent, 1, 0), 1);
    /* The successor: created from the event, parent marked, spawn fired. */
    struct task next;
    store_task_init(&next, child, "Water the plants", fixture.now_ns);
    next.has_due = true;
    next.due_ns = task.due_ns + INT64_C(86400) * 1000000000;
    next.reminders = mem_calloc(1, sizeof *next.reminders);
    next.reminders[0] = (struct task_reminder){TASK_REMINDER_BEFORE, 900, 0};
    next.reminder_count = 1;
    snprintf(next.parent_id, sizeof next.parent_id, "%s", parent);
    char *json = task_to_json_string(&next, NULL);
    struct store_event spawned = {
        .type = "recurrence.spawned", .user_id = user, .subject = child, .data = json};
    EXPECT(store_append(&fixture, &spawned) >= 0);
    mem_free(json);
    EXPECT(store_project(&fixture) > 0);
    char text[64];
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT next_id FROM tasks WHERE id = '%s'", parent);
    projection_test_text(db, sql, text, sizeof text);
    EXPECT_STR(text, child);
    EXPECT_EQ_INT(projection_test_timers(db, parent, 1, 1), 1);
    EXPECT_EQ_INT(projection_test_timers(db, child, 0, 0), 1);
    /* The child's reminder fires; then its series ends. */
    int64_t at_ms = next.due_ns / 1000000 - 900000;
    char data[256];
    snprintf(data, sizeof data, "{\"key\":\"%s@%lld\",\"late_ms\":1}", child, (long long)at_ms);
    struct store_event fired = {
        .type = "reminder.triggered", .user_id = user, .subject = child, .data = data};
    EXPECT(store_append(&fixture, &fired) >= 0);
    struct store_event ended = {.type = "recurrence.ended",
                                .user_id = user,
                                .subject = child,
                                .data = "{\"reason\":\"count\",\"index\":1}"};
    EXPECT(store_append(&fixture, &ended) >= 0);
    EXPECT(store_project(&fixture) > 0);
    EXPECT_EQ_INT(projection_test_timers(db, child, 0, 1), 1);
    snprintf(sql, sizeof sql, "SELECT next_id FROM tasks WHERE id = '%s'", child);
    projection_test_text(db, sql, text, sizeof text);
    EXPECT_STR(text, "end");
    /* Rebuild from the log: identical tables, timers included. */
    struct buf before, after;
    EXPECT(projection_test_dump(db, &before) == 0);
    EXPECT(projection_rebuild(fixture.projection, NULL, NULL) == 0);
    EXPECT(projection_test_dump(db, &after) == 0);
    EXPECT(before.length == after.length && memcmp(before.data, after.data, before.length) == 0);
    buf_free(&before);
    buf_free(&after);
    task_free(&next);
    task_free(&task);
    store_fixture_close(&fixture);
}
