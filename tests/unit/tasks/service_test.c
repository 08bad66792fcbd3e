/* service_test.c - the command layer over a real event log (manual
 * executor, so durability happens when the test says) and a real SQLite
 * projection: results only after durability, in-flight overlays, per-user
 * sequences without gaps across failed writes, idempotency, If-Match. */
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "../../../src/tasks/projection.h"
#include "../../../src/tasks/query.h"
#include "../../../src/tasks/service.h"
#include "../evlog/evlog_support.h"
#include "../evlog/fault_io.h"
#include "../test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yyjson.h>

struct fixture {
    struct support_log log;        /* log with the manual executor */
    struct fault_io fault;         /* its I/O, failing on demand */
    struct db *db;                 /* projections */
    struct projection *projection; /* applies the log */
    struct service *service;       /* under test */
    char root[300];                /* scratch directory */
};

/* One command's result as the test sees it. */
struct outcome {
    int calls;            /* done calls (must be 1) */
    int status;           /* its status */
    int64_t version;      /* its version */
    bool replayed;        /* marked as a replay */
    char id[UUID_STRING_BYTES];
    char body[8192];      /* its body */
};

static void on_done(void *arg, const struct command_result *result) {
    struct outcome *outcome = arg;
    outcome->calls++;
    outcome->status = result->status;
    outcome->version = result->version;
    outcome->replayed = result->replayed;
    memcpy(outcome->id, result->id, sizeof outcome->id);
    snprintf(outcome->body, sizeof outcome->body, "%.*s", (int)result->body.length,
             result->body.data != NULL ? result->body.data : "");
}

static int fixture_open_mode(struct fixture *fixture, const char *tag, int on_executor);
static int fixture_open(struct fixture *fixture, const char *tag) {
    return fixture_open_mode(fixture, tag, 0);
}

static int fixture_open_mode(struct fixture *fixture, const char *tag, int on_executor) {
    memset(fixture, 0, sizeof *fixture);
    snprintf(fixture->root, sizeof fixture->root, "%s", support_directory(tag));
    fault_io_init(&fixture->fault);
    if (support_open(&fixture->log, fixture->root, &fixture->fault.base, 0) != 0) return -1;
    char path[400];
    snprintf(path, sizeof path, "%s/docket.db", fixture->root);
    struct db_error error;
    if (db_open(&fixture->db, path, &error) != 0) return -2;
    if (projection_open(&fixture->projection, fixture->db, fixture->log.topic) != 0) return -3;
    struct service_options options = {.topic = fixture->log.topic,
                                      .db = fixture->db,
                                      .projection = fixture->projection,
                                      .clock = &fixture->log.clock.base,
                                      .executor = on_executor ? &fixture->log.executor.base
                                                              : NULL};
    return service_open(&fixture->service, &options) == 0 ? 0 : -4;
}

static void fixture_close(struct fixture *fixture) {
    support_executor_run(&fixture->log.executor);
    service_close(fixture->service);
    projection_close(fixture->projection);
    db_close(fixture->db);
    support_close(&fixture->log);
    support_remove_tree(fixture->root);
}

static void create_user(struct fixture *fixture, const char *name, struct outcome *outcome) {
    struct command command = {.kind = COMMAND_USER_CREATE, .actor = "cli", .username = name,
                              .password_hash = "$pbkdf2-sha256$i=600000$x$y"};
    service_execute(fixture->service, &command, on_done, outcome);
    support_executor_run(&fixture->log.executor);
}

static void create_task(struct fixture *fixture, const char *user, const char *body,
                        const char *key, const char *hash, struct outcome *outcome) {
    struct command command = {.kind = COMMAND_TASK_CREATE, .user_id = user, .actor = user,
                              .body = body, .body_length = strlen(body),
                              .idempotency_key = key, .request_hash = hash};
    service_execute(fixture->service, &command, on_done, outcome);
}

static void patch_task(struct fixture *fixture, const char *user, const char *id,
                       const char *body, int64_t if_match, struct outcome *outcome) {
    struct command command = {.kind = COMMAND_TASK_PATCH, .user_id = user, .actor = user,
                              .task_id = id, .body = body, .body_length = strlen(body),
                              .has_if_match = if_match > 0, .if_match_versions = {if_match},
                              .if_match_count = if_match > 0 ? 1 : 0};
    service_execute(fixture->service, &command, on_done, outcome);
}

/* Sequences of the user's events, in order, as the events query returns them. */
static int sequences_dense(struct fixture *fixture, const char *user, int64_t expected_count) {
    struct buf out;
    buf_init(&out, 1 << 22);
    if (query_events_since(fixture->db, user, 0, 500, &out) != 0) return 0;
    yyjson_doc *doc = yyjson_read(out.data, out.length, 0);
    yyjson_val *items = yyjson_obj_get(yyjson_doc_get_root(doc), "items");
    int64_t expected = 1;
    size_t index, max;
    yyjson_val *item;
    int ok = items != NULL;
    yyjson_arr_foreach(items, index, max, item) {
        if (yyjson_get_sint(yyjson_obj_get(item, "sequence")) != expected) ok = 0;
        expected++;
    }
    yyjson_doc_free(doc);
    buf_free(&out);
    return ok && expected - 1 == expected_count;
}

/* A write answers only once its event is durable and applied; the first
 * account is the admin and owns sequence 1. */
TEST(service_answers_after_durability) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "service-durable"), 0);
    struct outcome user = {0};
    create_user(&fixture, "alice", &user);
    EXPECT_EQ_INT(user.calls, 1);
    EXPECT_EQ_INT(user.status, 201);
    EXPECT(strstr(user.body, "\"role\":\"admin\"") != NULL);
    struct outcome task = {0};
    create_task(&fixture, user.id, "{\"title\":\"Write tests\"}", NULL, NULL, &task);
    EXPECT_EQ_INT(task.calls, 0); /* not durable yet */
    support_executor_run(&fixture.log.executor);
    EXPECT_EQ_INT(task.calls, 1);
    EXPECT_EQ_INT(task.status, 201);
    EXPECT_EQ_INT(task.version, 1);
    struct task stored;
    memset(&stored, 0, sizeof stored);
    EXPECT_EQ_INT(query_task_get(fixture.db, user.id, task.id, &stored), 0);
    EXPECT_STR(stored.title, "Write tests");
    task_free(&stored);
    EXPECT(sequences_dense(&fixture, user.id, 2));
    fixture_close(&fixture);
}

/* Two patches sent before the first is applied see each other: versions 2
 * and 3, both changes kept, sequences dense. */
TEST(service_overlay_orders_in_flight_changes) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "service-overlay"), 0);
    struct outcome user = {0}, task = {0}, first = {0}, second = {0}, stale = {0};
    create_user(&fixture, "bob", &user);
    create_task(&fixture, user.id, "{\"title\":\"a\"}", NULL, NULL, &task);
    support_executor_run(&fixture.log.executor);
    patch_task(&fixture, user.id, task.id, "{\"title\":\"b\"}", 0, &first);
    patch_task(&fixture, user.id, task.id, "{\"priority\":\"high\"}", 2, &second);
    patch_task(&fixture, user.id, task.id, "{\"priority\":\"low\"}", 2, &stale);
    EXPECT_EQ_INT(stale.calls, 1); /* If-Match 2 no longer current: refused at once */
    EXPECT_EQ_INT(stale.status, 412);
    support_executor_run(&fixture.log.executor);
    EXPECT_EQ_INT(first.status, 200);
    EXPECT_EQ_INT(first.version, 2);
    EXPECT_EQ_INT(second.status, 200);
    EXPECT_EQ_INT(second.version, 3);
    struct task stored;
    memset(&stored, 0, sizeof stored);
    EXPECT_EQ_INT(query_task_get(fixture.db, user.id, task.id, &stored), 0);
    EXPECT_STR(stored.title, "b");
    EXPECT_EQ_INT(stored.priority, TASK_PRIORITY_HIGH);
    EXPECT_EQ_INT(stored.version, 3);
    task_free(&stored);
    EXPECT(sequences_dense(&fixture, user.id, 4));
    fixture_close(&fixture);
}

/* Concurrent duplicates with one Idempotency-Key make one task; a retry
 * after it was applied replays; another body under the key is refused. */
TEST(service_idempotency_key) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "service-idempotency"), 0);
    struct outcome user = {0}, one = {0}, two = {0}, three = {0}, other = {0};
    create_user(&fixture, "carol", &user);
    const char *hash = "aaaa";
    create_task(&fixture, user.id, "{\"title\":\"once\"}", "k1", hash, &one);
    create_task(&fixture, user.id, "{\"title\":\"once\"}", "k1", hash, &two);
    support_executor_run(&fixture.log.executor);
    EXPECT_EQ_INT(one.status, 201);
    EXPECT_EQ_INT(two.status, 201);
    EXPECT(!one.replayed && two.replayed);
    EXPECT_STR(two.body, one.body);
    create_task(&fixture, user.id, "{\"title\":\"once\"}", "k1", hash, &three);
    EXPECT_EQ_INT(three.calls, 1);
    EXPECT_EQ_INT(three.status, 201);
    EXPECT(three.replayed);
    EXPECT_STR(three.body, one.body);
    create_task(&fixture, user.id, "{\"title\":\"other\"}", "k1", "bbbb", &other);
    EXPECT_EQ_INT(other.status, 422);
    EXPECT(sequences_dense(&fixture, user.id, 2));
    fixture_close(&fixture);
}

/* A failed fsync fails the write (no 2xx), and the next write reuses the
 * sequence number: the user's stream has no gap. */
TEST(service_failed_write_leaves_no_gap) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "service-failure"), 0);
    struct outcome user = {0}, failed = {0}, later = {0};
    create_user(&fixture, "dave", &user);
    fixture.fault.sync_countdown = 0;
    fixture.fault.sync_error = ERR_NOSPC;
    create_task(&fixture, user.id, "{\"title\":\"lost\"}", NULL, NULL, &failed);
    support_executor_run(&fixture.log.executor);
    EXPECT_EQ_INT(failed.calls, 1);
    EXPECT(failed.status >= 500);
    fixture.fault.sync_countdown = -1;
    fixture.log.clock.monotonic_now_ns += (int64_t)LIMIT_EVLOG_RETRY_MS * 2 * 1000000;
    fixture.log.clock.wall_now_ns += (int64_t)LIMIT_EVLOG_RETRY_MS * 2 * 1000000;
    evlog_retry(fixture.log.log);
    create_task(&fixture, user.id, "{\"title\":\"kept\"}", NULL, NULL, &later);
    support_executor_run(&fixture.log.executor);
    EXPECT_EQ_INT(later.status, 201);
    EXPECT(sequences_dense(&fixture, user.id, 2));
    fixture_close(&fixture);
}

/* Another user's task is not found; a deleted task is gone for good. */
TEST(service_isolation_and_delete) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "service-isolation"), 0);
    struct outcome erin = {0}, frank = {0}, task = {0}, foreign = {0}, gone = {0}, after = {0};
    create_user(&fixture, "erin", &erin);
    create_user(&fixture, "frank", &frank);
    EXPECT(strstr(frank.body, "\"role\":\"user\"") != NULL);
    create_task(&fixture, erin.id, "{\"title\":\"mine\"}", NULL, NULL, &task);
    support_executor_run(&fixture.log.executor);
    patch_task(&fixture, frank.id, task.id, "{\"title\":\"yours\"}", 0, &foreign);
    EXPECT_EQ_INT(foreign.status, 404);
    struct command remove = {.kind = COMMAND_TASK_DELETE, .user_id = erin.id, .actor = erin.id,
                             .task_id = task.id, .body = "", .body_length = 0};
    service_execute(fixture.service, &remove, on_done, &gone);
    patch_task(&fixture, erin.id, task.id, "{\"title\":\"again\"}", 0, &after);
    EXPECT_EQ_INT(after.status, 404); /* the in-flight delete is seen at once */
    support_executor_run(&fixture.log.executor);
    EXPECT_EQ_INT(gone.status, 204);
    fixture_close(&fixture);
}

/* With the projection on the executor, a write is answered only after both
 * jobs ran (the log's commit, then the SQLite batch), and a command that
 * arrives between the two sees the first one's result. */
TEST(service_projection_on_executor) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open_mode(&fixture, "service-executor", 1), 0);
    struct outcome user = {0}, task = {0}, first = {0}, second = {0};
    create_user(&fixture, "gina", &user);
    EXPECT_EQ_INT(user.status, 201);
    create_task(&fixture, user.id, "{\"title\":\"async\"}", NULL, NULL, &task);
    support_executor_run(&fixture.log.executor);
    EXPECT_EQ_INT(task.status, 201);
    patch_task(&fixture, user.id, task.id, "{\"title\":\"async 2\"}", 1, &first);
    EXPECT_EQ_INT(support_executor_step(&fixture.log.executor), 1); /* commit only */
    EXPECT_EQ_INT(first.calls, 0);                                   /* not applied yet */
    patch_task(&fixture, user.id, task.id, "{\"title\":\"async 3\"}", 2, &second);
    support_executor_run(&fixture.log.executor);
    EXPECT_EQ_INT(first.status, 200);
    EXPECT_EQ_INT(second.status, 200);
    EXPECT_EQ_INT(second.version, 3);
    EXPECT(sequences_dense(&fixture, user.id, 4));
    fixture_close(&fixture);
}
