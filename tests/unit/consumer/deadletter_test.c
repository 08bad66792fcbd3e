/* deadletter_test.c - the dead-letter queue over a real event log (manual
 * executor) and a real notify.db: a put is listed only once durable, its
 * record embeds the CloudEvent as JSON, it survives a reopen; a record
 * appended without being mirrored (a crash between the two steps) is
 * recovered exactly once; pages, cursors and the state filter; the redrive
 * state machine through a registered handler (test scaffolding standing in
 * for a consumer); validation; and allocation failures at every step. */
#include "../../../src/base/clock.h"
#include "../../../src/base/err.h"
#include "../../../src/base/json.h"
#include "../../../src/base/mem.h"
#include "../../../src/consumer/deadletter.h"
#include "../../../src/consumer/notify_db.h"
#include "../../../src/evlog/evlog.h"
#include "../../../src/store/db.h"
#include "../evlog/evlog_support.h"
#include "../test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <yyjson.h>

#define EVENT_JSON                                                                            \
    "{\"specversion\":\"1.0\",\"id\":\"0190c2a0-0000-7000-8000-000000000001\","               \
    "\"source\":\"/docket\",\"type\":\"reminder.triggered\",\"subject\":\"t1\",\"data\":{}}"

/* A log with a "dlq" topic, notify.db and the queue over them. */
struct fixture {
    char root[300];               /* scratch directory */
    char db_path[340];            /* <root>/notify.db */
    struct support_log log;       /* the event log (manual executor) */
    struct evlog_topic *topic;    /* "dlq" */
    struct db *db;                /* notify.db */
    struct clock_fake clock;      /* the queue's wall clock */
    struct deadletter *queue;     /* under test */
};

static int fixture_open_queue(struct fixture *fixture) {
    struct db_error error;
    int rc = notify_db_open(&fixture->db, fixture->db_path, &error);
    if (rc == 0)
        rc = deadletter_open(&fixture->queue, fixture->topic, fixture->db, &fixture->clock.base);
    return rc;
}

static int fixture_open(struct fixture *fixture, const char *tag) {
    memset(fixture, 0, sizeof *fixture);
    snprintf(fixture->root, sizeof fixture->root, "%s", support_directory(tag));
    snprintf(fixture->db_path, sizeof fixture->db_path, "%s/notify.db", fixture->root);
    clock_fake_init(&fixture->clock, 1700000000000000000LL);
    int rc = support_open(&fixture->log, fixture->root, NULL, 0);
    if (rc == 0)
        rc = evlog_topic_open(fixture->log.log, "dlq", &fixture->topic);
    return rc == 0 ? fixture_open_queue(fixture) : rc;
}

/* Closes the queue and the database (the log stays open). */
static void fixture_close_queue(struct fixture *fixture) {
    support_executor_run(&fixture->log.executor);
    deadletter_close(fixture->queue);
    fixture->queue = NULL;
    db_close(fixture->db);
    fixture->db = NULL;
}

static void fixture_close(struct fixture *fixture) {
    fixture_close_queue(fixture);
    support_close(&fixture->log);
    support_remove_tree(fixture->root);
}

/* What a put's done callback saw. */
struct done_record {
    int calls;                   /* times called (must end at 1) */
    int status;                  /* its status */
    char id[UUID_STRING_BYTES];  /* its id */
};

static void on_done(void *arg, int status, const char *id) {
    struct done_record *record = arg;
    record->calls++;
    record->status = status;
    snprintf(record->id, sizeof record->id, "%s", id);
}

static struct deadletter_entry entry_of(const char *consumer, const char *key) {
    return (struct deadletter_entry){.consumer = consumer,
                                     .key = key,
                                     .user_id = "0190c2a0-0000-7000-8000-0000000000aa",
                                     .event_json = EVENT_JSON,
                                     .item_json = "{\"channel\":\"email\"}",
                                     .error = "smtp: 451 try later",
                                     .attempts = 4};
}

/* Puts one entry, makes it durable; the id goes to `id`. 0 or an error. */
static int put_one(struct fixture *fixture, const char *consumer, const char *key,
                   char id[UUID_STRING_BYTES]) {
    struct deadletter_entry entry = entry_of(consumer, key);
    struct done_record done = {0};
    clock_fake_advance(&fixture->clock, 1000000);
    int rc = deadletter_put(fixture->queue, &entry, on_done, &done);
    support_executor_run(&fixture->log.executor);
    if (rc == 0 && (done.calls != 1 || done.status != 0))
        rc = ERR_IO;
    if (rc == 0 && id != NULL)
        memcpy(id, done.id, UUID_STRING_BYTES);
    return rc;
}

/* A parsed list page (or entry); free with yyjson_doc_free. */
static yyjson_doc *list_page(struct fixture *fixture, const char *state, size_t limit,
                             const char *cursor, int *rc) {
    struct buf out;
    buf_init(&out, 1 << 24);
    *rc = deadletter_list_json(fixture->queue, state, limit, cursor, &out);
    yyjson_doc *doc = *rc == 0 ? yyjson_read(out.data, out.length, 0) : NULL;
    buf_free(&out);
    return doc;
}

static size_t page_count(yyjson_doc *doc) {
    return yyjson_arr_size(yyjson_obj_get(yyjson_doc_get_root(doc), "items"));
}

static const char *item_string(yyjson_doc *doc, size_t index, const char *name) {
    yyjson_val *items = yyjson_obj_get(yyjson_doc_get_root(doc), "items");
    return yyjson_get_str(yyjson_obj_get(yyjson_arr_get(items, index), name));
}

/* ---- put, durability, record shape ------------------------------------- */

/* A put is listed only after its record is durable, with every field; the
 * record's key is the consumer and its event is a JSON object, not a string. */
TEST(deadletter_put_durable_then_listed) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "dlq-put"), 0);
    struct deadletter_entry entry = entry_of("notifier", "delivery-1");
    struct done_record done = {0};
    EXPECT_EQ_INT(deadletter_put(fixture.queue, &entry, on_done, &done), 0);
    int rc = 0;
    yyjson_doc *doc = list_page(&fixture, NULL, 50, NULL, &rc);
    EXPECT(doc != NULL && page_count(doc) == 0); /* not durable yet: not listed */
    yyjson_doc_free(doc);
    EXPECT_EQ_INT(done.calls, 0);
    support_executor_run(&fixture.log.executor);
    EXPECT_EQ_INT(done.calls, 1);
    EXPECT_EQ_INT(done.status, 0);
    doc = list_page(&fixture, NULL, 50, NULL, &rc);
    EXPECT(doc != NULL && page_count(doc) == 1);
    EXPECT_STR(item_string(doc, 0, "id"), done.id);
    EXPECT_STR(item_string(doc, 0, "consumer"), "notifier");
    EXPECT_STR(item_string(doc, 0, "key"), "delivery-1");
    EXPECT_STR(item_string(doc, 0, "user_id"), "0190c2a0-0000-7000-8000-0000000000aa");
    EXPECT_STR(item_string(doc, 0, "error"), "smtp: 451 try later");
    EXPECT_STR(item_string(doc, 0, "state"), "dead");
    EXPECT_STR(item_string(doc, 0, "failed_at"), "2023-11-14T22:13:20Z");
    yyjson_val *item = yyjson_arr_get(yyjson_obj_get(yyjson_doc_get_root(doc), "items"), 0);
    EXPECT(yyjson_is_null(yyjson_obj_get(item, "redriven_at")));
    EXPECT_EQ_INT(yyjson_get_int(yyjson_obj_get(item, "attempts")), 4);
    EXPECT_STR(yyjson_get_str(yyjson_obj_get(yyjson_obj_get(item, "event"), "type")),
               "reminder.triggered");
    EXPECT_STR(yyjson_get_str(yyjson_obj_get(yyjson_obj_get(item, "item"), "channel")), "email");
    EXPECT(yyjson_is_null(yyjson_obj_get(yyjson_doc_get_root(doc), "next_cursor")));
    yyjson_doc_free(doc);
    EXPECT_EQ_INT(deadletter_count(fixture.queue, "dead"), 1);
    EXPECT_EQ_INT(deadletter_count(fixture.queue, "redriven"), 0);
    /* The record in the topic. */
    struct evlog_cursor cursor;
    struct evlog_record record;
    EXPECT_EQ_INT(evlog_cursor_open(&cursor, fixture.topic, 0), 0);
    EXPECT_EQ_INT(evlog_cursor_next(&cursor, &record), 0);
    EXPECT(record.key_bytes == 8 && memcmp(record.key, "notifier", 8) == 0);
    yyjson_doc *value = yyjson_read((const char *)record.value, record.value_bytes, 0);
    evlog_cursor_close(&cursor);
    EXPECT(value != NULL);
    yyjson_val *root = yyjson_doc_get_root(value);
    int shape_ok = yyjson_is_obj(yyjson_obj_get(root, "event")) &&
                   yyjson_is_obj(yyjson_obj_get(root, "item")) &&
                   strcmp(yyjson_get_str(yyjson_obj_get(root, "id")), done.id) == 0 &&
                   strcmp(yyjson_get_str(yyjson_obj_get(root, "state")), "dead") == 0;
    yyjson_doc_free(value);
    EXPECT(shape_ok);
    fixture_close(&fixture);
}

/* Entries survive closing and reopening the queue, the database and the log,
 * and nothing is mirrored twice. */
TEST(deadletter_survives_reopen) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "dlq-reopen"), 0);
    char first[UUID_STRING_BYTES], second[UUID_STRING_BYTES];
    EXPECT_EQ_INT(put_one(&fixture, "notifier", "a", first), 0);
    EXPECT_EQ_INT(put_one(&fixture, "notifier", "b", second), 0);
    fixture_close_queue(&fixture);
    support_close(&fixture.log);
    EXPECT_EQ_INT(support_reopen(&fixture.log), 0);
    EXPECT_EQ_INT(evlog_topic_open(fixture.log.log, "dlq", &fixture.topic), 0);
    EXPECT_EQ_INT(fixture_open_queue(&fixture), 0);
    int rc = 0;
    yyjson_doc *doc = list_page(&fixture, NULL, 50, NULL, &rc);
    EXPECT(doc != NULL && page_count(doc) == 2);
    int order_ok = strcmp(item_string(doc, 0, "id"), second) == 0 &&
                   strcmp(item_string(doc, 1, "id"), first) == 0;
    yyjson_doc_free(doc);
    EXPECT(order_ok);
    fixture_close(&fixture);
}

/* ---- crash between append and mirror ------------------------------------ */

/* Appends an entry record straight to the topic, as a put does, without the
 * mirror step (what a crash after the fsync leaves behind). */
static int append_unmirrored(struct fixture *fixture, const char *id) {
    char value[1024];
    int length = snprintf(value, sizeof value,
                          "{\"id\":\"%s\",\"consumer\":\"notifier\",\"key\":\"k-%s\","
                          "\"user_id\":null,\"event\":" EVENT_JSON ",\"item\":{},"
                          "\"error\":\"boom\",\"attempts\":4,"
                          "\"failed_at\":\"2026-02-10T09:45:00.000Z\",\"state\":\"dead\","
                          "\"redriven_at\":null}",
                          id, id);
    struct evlog_record record = {.key = (const uint8_t *)"notifier",
                                  .key_bytes = 8,
                                  .value = (const uint8_t *)value,
                                  .value_bytes = (size_t)length};
    struct support_ack ack = {0};
    int64_t offset = evlog_append(fixture->topic, &record, support_on_append, &ack);
    support_executor_run(&fixture->log.executor);
    return offset < 0 ? (int)offset : ack.status;
}

static int64_t mirror_offset(struct fixture *fixture) {
    sqlite3_stmt *stmt = NULL;
    int64_t offset = -1;
    if (sqlite3_prepare_v2(db_handle(fixture->db),
                           "SELECT next_offset FROM offsets WHERE name = 'dlq'", -1, &stmt,
                           NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        offset = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return offset;
}

/* Records durable in the log but not in the table are copied at the next
 * open, once: a second reopen (and a rewound mirror offset) adds nothing, and
 * a record that is not an entry is skipped instead of blocking the mirror. */
TEST(deadletter_recovers_unmirrored_once) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "dlq-crash"), 0);
    EXPECT_EQ_INT(put_one(&fixture, "notifier", "mirrored", NULL), 0);
    fixture_close_queue(&fixture); /* "crash": the queue is gone, the log stays */
    EXPECT_EQ_INT(append_unmirrored(&fixture, "0190c2a0-0000-7000-8000-000000000101"), 0);
    struct evlog_record junk = {.value = (const uint8_t *)"not json", .value_bytes = 8};
    struct support_ack ack = {0};
    EXPECT(evlog_append(fixture.topic, &junk, support_on_append, &ack) >= 0);
    support_executor_run(&fixture.log.executor);
    EXPECT_EQ_INT(append_unmirrored(&fixture, "0190c2a0-0000-7000-8000-000000000102"), 0);
    EXPECT_EQ_INT(fixture_open_queue(&fixture), 0);
    EXPECT_EQ_INT(deadletter_count(fixture.queue, "dead"), 3);
    EXPECT_EQ_INT(mirror_offset(&fixture), 4);
    fixture_close_queue(&fixture);
    EXPECT_EQ_INT(fixture_open_queue(&fixture), 0);
    EXPECT_EQ_INT(deadletter_count(fixture.queue, "dead"), 3);
    /* Even with the mirror offset lost, ids keep each entry single. */
    EXPECT_EQ_INT(db_exec(fixture.db, "UPDATE offsets SET next_offset = 0"), 0);
    fixture_close_queue(&fixture);
    EXPECT_EQ_INT(fixture_open_queue(&fixture), 0);
    EXPECT_EQ_INT(deadletter_count(fixture.queue, "dead"), 3);
    EXPECT_EQ_INT(mirror_offset(&fixture), 4);
    fixture_close(&fixture);
}

/* A mirror offset past the end of the topic (notify.db newer than the log)
 * is pulled back to the end at open, so the entries put next are mirrored. */
TEST(deadletter_mirror_offset_past_the_end) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "dlq-ahead"), 0);
    EXPECT_EQ_INT(db_exec(fixture.db, "INSERT INTO offsets(name, next_offset) VALUES('dlq', 100)"
                                      " ON CONFLICT(name) DO UPDATE SET next_offset = 100"),
                  0);
    fixture_close_queue(&fixture);
    EXPECT_EQ_INT(fixture_open_queue(&fixture), 0);
    EXPECT_EQ_INT(mirror_offset(&fixture), 0);
    EXPECT_EQ_INT(put_one(&fixture, "notifier", "after", NULL), 0);
    EXPECT_EQ_INT(deadletter_count(fixture.queue, "dead"), 1);
    fixture_close(&fixture);
}

/* ---- list ----------------------------------------------------------------- */

/* Pages go newest first and the cursors walk every entry exactly once; the
 * state filter, bad cursors, bad states and bad limits behave. */
TEST(deadletter_list_pages_and_filter) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "dlq-list"), 0);
    char ids[7][UUID_STRING_BYTES];
    for (int index = 0; index < 7; index++)
        EXPECT_EQ_INT(put_one(&fixture, "notifier", "k", ids[index]), 0);
    char cursor[128] = "";
    int seen = 0;
    for (int page = 0; page < 4; page++) {
        int rc = 0;
        yyjson_doc *doc = list_page(&fixture, NULL, 3, cursor[0] ? cursor : NULL, &rc);
        EXPECT(doc != NULL);
        size_t count = page_count(doc);
        int ok = 1;
        for (size_t index = 0; index < count; index++)
            ok = ok && strcmp(item_string(doc, index, "id"), ids[6 - seen - (int)index]) == 0;
        seen += (int)count;
        const char *next = yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(doc), "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next != NULL ? next : "");
        yyjson_doc_free(doc);
        EXPECT(ok);
        if (cursor[0] == '\0')
            break;
    }
    EXPECT_EQ_INT(seen, 7);
    EXPECT_EQ_INT(db_exec(fixture.db, "UPDATE dlq SET state = 'redriven' WHERE key = 'k' AND "
                                      "id IN (SELECT id FROM dlq ORDER BY id LIMIT 2)"),
                  0);
    int rc = 0;
    yyjson_doc *doc = list_page(&fixture, "redriven", 50, NULL, &rc);
    EXPECT(doc != NULL && page_count(doc) == 2);
    int filter_ok = strcmp(item_string(doc, 0, "id"), ids[1]) == 0 &&
                    strcmp(item_string(doc, 1, "id"), ids[0]) == 0;
    yyjson_doc_free(doc);
    EXPECT(filter_ok);
    doc = list_page(&fixture, "dead", 50, NULL, &rc);
    EXPECT(doc != NULL && page_count(doc) == 5);
    yyjson_doc_free(doc);
    struct buf out;
    buf_init(&out, 1 << 20);
    EXPECT_EQ_INT(deadletter_list_json(fixture.queue, "gone", 50, NULL, &out), ERR_INVAL);
    EXPECT_EQ_INT(deadletter_list_json(fixture.queue, NULL, 0, NULL, &out), ERR_INVAL);
    EXPECT_EQ_INT(deadletter_list_json(fixture.queue, NULL, 501, NULL, &out), ERR_INVAL);
    EXPECT_EQ_INT(deadletter_list_json(fixture.queue, NULL, 50, "!!", &out), ERR_INVAL);
    EXPECT_EQ_INT(deadletter_list_json(fixture.queue, NULL, 50, "bm90LWEtdXVpZA", &out),
                  ERR_INVAL); /* base64url of "not-a-uuid" */
    EXPECT_EQ_INT(deadletter_list_json(fixture.queue, NULL, 500, NULL, &out), 0);
    buf_free(&out);
    fixture_close(&fixture);
}

/* A page stops at DEADLETTER_LIST_BYTES_MAX of items and hands out a cursor
 * for the rest, so large events cannot make one answer unbounded. */
TEST(deadletter_list_bounded_bytes) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "dlq-bytes"), 0);
    static char big_error[300 * 1024];
    memset(big_error, 'e', sizeof big_error - 1);
    big_error[sizeof big_error - 1] = '\0';
    for (int index = 0; index < 20; index++) {
        struct deadletter_entry entry = entry_of("notifier", "big");
        entry.error = big_error;
        struct done_record done = {0};
        EXPECT_EQ_INT(deadletter_put(fixture.queue, &entry, on_done, &done), 0);
        support_executor_run(&fixture.log.executor);
        EXPECT_EQ_INT(done.status, 0);
    }
    int rc = 0;
    yyjson_doc *doc = list_page(&fixture, NULL, 500, NULL, &rc);
    EXPECT(doc != NULL);
    size_t count = page_count(doc);
    int has_next = yyjson_is_str(yyjson_obj_get(yyjson_doc_get_root(doc), "next_cursor"));
    yyjson_doc_free(doc);
    EXPECT(count >= 1 && count < 20);
    EXPECT(count * sizeof big_error <= DEADLETTER_LIST_BYTES_MAX + sizeof big_error);
    EXPECT(has_next);
    fixture_close(&fixture);
}

/* ---- redrive ---------------------------------------------------------------- */

/* The fake consumer: records what it was handed; can refuse, or resolve at
 * once from inside the call. */
struct consumer_fake {
    int calls;                       /* redrives received */
    int refuse;                      /* return this instead of 0 when nonzero */
    int resolve_inline;              /* call deadletter_resolve(success) inside */
    struct deadletter *queue;        /* for resolve_inline */
    char id[UUID_STRING_BYTES];      /* last entry's id */
    char key[64];                    /* its key */
    char event_json[512];            /* its event text */
    int attempts;                    /* its attempts */
};

static int consumer_redrive(void *arg, const struct deadletter_entry *entry) {
    struct consumer_fake *fake = arg;
    fake->calls++;
    snprintf(fake->id, sizeof fake->id, "%s", entry->id);
    snprintf(fake->key, sizeof fake->key, "%s", entry->key);
    snprintf(fake->event_json, sizeof fake->event_json, "%s", entry->event_json);
    fake->attempts = entry->attempts;
    if (fake->refuse != 0)
        return fake->refuse;
    if (fake->resolve_inline)
        return deadletter_resolve(fake->queue, entry->id, true);
    return 0;
}

static const char *entry_state(struct fixture *fixture, const char *id, char *out, size_t size) {
    sqlite3_stmt *stmt = NULL;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db_handle(fixture->db), "SELECT state FROM dlq WHERE id = ?1", -1,
                           &stmt, NULL) == SQLITE_OK) {
        sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) == SQLITE_ROW)
            snprintf(out, size, "%s", (const char *)sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
}

/* dead -> redriving (handler called with the entry, 202 body) -> redriven;
 * a redrive of a redriving or redriven entry is a conflict; failed_again can
 * be redriven again; resolve checks its state; unknown ids are not found. */
TEST(deadletter_redrive_state_machine) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "dlq-redrive"), 0);
    struct consumer_fake fake = {.queue = fixture.queue};
    EXPECT_EQ_INT(deadletter_register(fixture.queue, "notifier", consumer_redrive, &fake), 0);
    char first[UUID_STRING_BYTES], second[UUID_STRING_BYTES], state[32];
    EXPECT_EQ_INT(put_one(&fixture, "notifier", "delivery-1", first), 0);
    EXPECT_EQ_INT(put_one(&fixture, "notifier", "delivery-2", second), 0);
    struct buf out;
    buf_init(&out, 1 << 20);
    EXPECT_EQ_INT(deadletter_redrive(fixture.queue, "0190c2a0-0000-7000-8000-0000000000ff", &out),
                  ERR_NOTFOUND);
    EXPECT_EQ_INT(deadletter_redrive(fixture.queue, first, &out), 0);
    EXPECT_EQ_INT(fake.calls, 1);
    EXPECT_STR(fake.id, first);
    EXPECT_STR(fake.key, "delivery-1");
    EXPECT_STR(fake.event_json, EVENT_JSON);
    EXPECT_EQ_INT(fake.attempts, 4);
    yyjson_doc *doc = yyjson_read(out.data, out.length, 0);
    EXPECT(doc != NULL);
    yyjson_val *root = yyjson_doc_get_root(doc);
    int body_ok = strcmp(yyjson_get_str(yyjson_obj_get(root, "state")), "redriving") == 0 &&
                  yyjson_is_str(yyjson_obj_get(root, "redriven_at")) &&
                  strcmp(yyjson_get_str(yyjson_obj_get(root, "id")), first) == 0;
    yyjson_doc_free(doc);
    EXPECT(body_ok);
    EXPECT_STR(entry_state(&fixture, first, state, sizeof state), "redriving");
    EXPECT_EQ_INT(deadletter_count(fixture.queue, "redriving"), 1);
    EXPECT_EQ_INT(deadletter_redrive(fixture.queue, first, &out), ERR_CONFLICT);
    EXPECT_EQ_INT(fake.calls, 1);
    EXPECT_EQ_INT(deadletter_resolve(fixture.queue, first, true), 0);
    EXPECT_STR(entry_state(&fixture, first, state, sizeof state), "redriven");
    EXPECT_EQ_INT(deadletter_redrive(fixture.queue, first, &out), ERR_CONFLICT);
    EXPECT_EQ_INT(deadletter_resolve(fixture.queue, first, false), ERR_CONFLICT);
    EXPECT_EQ_INT(deadletter_resolve(fixture.queue, second, true), ERR_CONFLICT); /* dead */
    EXPECT_EQ_INT(deadletter_resolve(fixture.queue, "0190c2a0-0000-7000-8000-0000000000ff", true),
                  ERR_NOTFOUND);
    /* A failed round: failed_again, and that entry may be redriven again. */
    EXPECT_EQ_INT(deadletter_redrive(fixture.queue, second, &out), 0);
    EXPECT_EQ_INT(deadletter_resolve(fixture.queue, second, false), 0);
    EXPECT_STR(entry_state(&fixture, second, state, sizeof state), "failed_again");
    EXPECT_EQ_INT(deadletter_count(fixture.queue, "failed_again"), 1);
    EXPECT_EQ_INT(deadletter_redrive(fixture.queue, second, &out), 0);
    EXPECT_STR(entry_state(&fixture, second, state, sizeof state), "redriving");
    EXPECT_EQ_INT(fake.calls, 3);
    buf_free(&out);
    fixture_close(&fixture);
}

/* A handler that refuses leaves the entry dead (error returned, no
 * redriven_at); one that resolves inside the call ends redriven; an entry
 * whose consumer registered no handler cannot be redriven. */
TEST(deadletter_redrive_refused_inline_and_unhandled) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "dlq-refuse"), 0);
    struct consumer_fake fake = {.queue = fixture.queue, .refuse = ERR_AGAIN};
    EXPECT_EQ_INT(deadletter_register(fixture.queue, "notifier", consumer_redrive, &fake), 0);
    char id[UUID_STRING_BYTES], orphan[UUID_STRING_BYTES], state[32];
    EXPECT_EQ_INT(put_one(&fixture, "notifier", "d", id), 0);
    EXPECT_EQ_INT(put_one(&fixture, "kafka", "x", orphan), 0);
    struct buf out;
    buf_init(&out, 1 << 20);
    EXPECT_EQ_INT(deadletter_redrive(fixture.queue, id, &out), ERR_AGAIN);
    EXPECT_EQ_INT(out.length, 0);
    EXPECT_STR(entry_state(&fixture, id, state, sizeof state), "dead");
    int rc = 0;
    yyjson_doc *doc = list_page(&fixture, "dead", 50, NULL, &rc);
    EXPECT(doc != NULL);
    yyjson_val *items = yyjson_obj_get(yyjson_doc_get_root(doc), "items");
    int nulls = yyjson_is_null(yyjson_obj_get(yyjson_arr_get(items, 0), "redriven_at")) &&
                yyjson_is_null(yyjson_obj_get(yyjson_arr_get(items, 1), "redriven_at"));
    yyjson_doc_free(doc);
    EXPECT(nulls);
    fake.refuse = 0;
    fake.resolve_inline = 1;
    EXPECT_EQ_INT(deadletter_redrive(fixture.queue, id, &out), 0);
    EXPECT_STR(entry_state(&fixture, id, state, sizeof state), "redriven");
    EXPECT_EQ_INT(deadletter_redrive(fixture.queue, orphan, &out), ERR_UNSUPPORTED);
    EXPECT_STR(entry_state(&fixture, orphan, state, sizeof state), "dead");
    buf_free(&out);
    fixture_close(&fixture);
}

/* ---- validation ------------------------------------------------------------ */

/* Registration is bounded and unique; a put without a consumer, key or
 * event, with an event that is not JSON or an item that is not an object,
 * is refused and appends nothing. */
TEST(deadletter_validation) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "dlq-valid"), 0);
    struct consumer_fake fake = {0};
    EXPECT_EQ_INT(deadletter_register(fixture.queue, "", consumer_redrive, &fake), ERR_INVAL);
    EXPECT_EQ_INT(deadletter_register(fixture.queue, "a-name-that-is-longer-than-32-bytes",
                                      consumer_redrive, &fake),
                  ERR_INVAL);
    for (int index = 0; index < DEADLETTER_HANDLERS_MAX; index++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", index);
        EXPECT_EQ_INT(deadletter_register(fixture.queue, name, consumer_redrive, &fake), 0);
    }
    EXPECT_EQ_INT(deadletter_register(fixture.queue, "c0", consumer_redrive, &fake), ERR_EXISTS);
    EXPECT_EQ_INT(deadletter_register(fixture.queue, "more", consumer_redrive, &fake), ERR_LIMIT);
    struct deadletter_entry entry = entry_of("notifier", "k");
    entry.event_json = "{not json";
    EXPECT_EQ_INT(deadletter_put(fixture.queue, &entry, NULL, NULL), ERR_INVAL);
    entry = entry_of("notifier", "k");
    entry.item_json = "[1]";
    EXPECT_EQ_INT(deadletter_put(fixture.queue, &entry, NULL, NULL), ERR_INVAL);
    entry = entry_of(NULL, "k");
    EXPECT_EQ_INT(deadletter_put(fixture.queue, &entry, NULL, NULL), ERR_INVAL);
    entry = entry_of("notifier", NULL);
    EXPECT_EQ_INT(deadletter_put(fixture.queue, &entry, NULL, NULL), ERR_INVAL);
    entry = entry_of("notifier", "k");
    entry.attempts = -1;
    EXPECT_EQ_INT(deadletter_put(fixture.queue, &entry, NULL, NULL), ERR_INVAL);
    support_executor_run(&fixture.log.executor);
    EXPECT_EQ_INT(evlog_topic_end_offset(fixture.topic), 0);
    /* NULL item, user and error are allowed: {} , null and "". */
    entry = entry_of("notifier", "k");
    entry.item_json = NULL;
    entry.user_id = NULL;
    entry.error = NULL;
    EXPECT_EQ_INT(deadletter_put(fixture.queue, &entry, NULL, NULL), 0);
    support_executor_run(&fixture.log.executor);
    int rc = 0;
    yyjson_doc *doc = list_page(&fixture, NULL, 50, NULL, &rc);
    EXPECT(doc != NULL && page_count(doc) == 1);
    yyjson_val *item = yyjson_arr_get(yyjson_obj_get(yyjson_doc_get_root(doc), "items"), 0);
    int shape_ok = yyjson_is_null(yyjson_obj_get(item, "user_id")) &&
                   yyjson_obj_size(yyjson_obj_get(item, "item")) == 0 &&
                   strcmp(yyjson_get_str(yyjson_obj_get(item, "error")), "") == 0;
    yyjson_doc_free(doc);
    EXPECT(shape_ok);
    fixture_close(&fixture);
}

/* ---- allocation failures ---------------------------------------------------- */

/* With the n-th allocation failing (n = 0..79), a put either fails at once
 * (ERR_NOMEM, nothing appended, no callback) or calls back exactly once (0,
 * or ERR_NOMEM when the record is durable but not yet mirrored); the next
 * put without failures mirrors everything, so every durable record is in
 * the table exactly once, also after a reopen. */
TEST(deadletter_put_allocation_failures) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "dlq-nomem-put"), 0);
    int unmirrored = 0;
    for (long fail = 0; fail < 80; fail++) {
        /* A commit that failed leaves the topic refusing appends for a while
         * (and maybe needing a repair job first). */
        for (int round = 0; round < 2; round++) {
            clock_fake_advance(&fixture.log.clock, (LIMIT_EVLOG_RETRY_MS + 1) * 1000000LL);
            evlog_retry(fixture.log.log);
            support_executor_run(&fixture.log.executor);
        }
        struct deadletter_entry entry = entry_of("notifier", "k");
        struct done_record done = {0};
        int64_t end_before = evlog_topic_end_offset(fixture.topic);
        mem_fail_after(fail);
        int rc = deadletter_put(fixture.queue, &entry, on_done, &done);
        support_executor_run(&fixture.log.executor);
        mem_fail_after(-1);
        EXPECT(rc == 0 || rc == ERR_NOMEM);
        if (rc != 0) {
            EXPECT_EQ_INT(done.calls, 0);
            EXPECT_EQ_INT(evlog_topic_end_offset(fixture.topic), end_before);
            continue;
        }
        EXPECT_EQ_INT(done.calls, 1);
        EXPECT(done.status == 0 || done.status == ERR_NOMEM);
        if (done.status == ERR_NOMEM && evlog_topic_end_offset(fixture.topic) > end_before)
            unmirrored++;
    }
    EXPECT(unmirrored > 0); /* the durable-but-not-mirrored case was reached */
    for (int round = 0; round < 2; round++) {
        clock_fake_advance(&fixture.log.clock, (LIMIT_EVLOG_RETRY_MS + 1) * 1000000LL);
        evlog_retry(fixture.log.log);
        support_executor_run(&fixture.log.executor);
    }
    EXPECT_EQ_INT(put_one(&fixture, "notifier", "last", NULL), 0);
    int64_t end = evlog_topic_end_offset(fixture.topic);
    EXPECT_EQ_INT(deadletter_count(fixture.queue, "dead"), end);
    fixture_close_queue(&fixture);
    EXPECT_EQ_INT(fixture_open_queue(&fixture), 0);
    EXPECT_EQ_INT(deadletter_count(fixture.queue, "dead"), end);
    EXPECT_EQ_INT(mirror_offset(&fixture), end);
    fixture_close(&fixture);
}

/* List and redrive under every allocation failure: ERR_NOMEM or success,
 * and a failed redrive leaves the entry dead with the handler not called. */
TEST(deadletter_list_redrive_allocation_failures) {
    struct fixture fixture;
    EXPECT_EQ_INT(fixture_open(&fixture, "dlq-nomem-list"), 0);
    struct consumer_fake fake = {.queue = fixture.queue};
    EXPECT_EQ_INT(deadletter_register(fixture.queue, "notifier", consumer_redrive, &fake), 0);
    char id[UUID_STRING_BYTES], state[32];
    for (int index = 0; index < 3; index++)
        EXPECT_EQ_INT(put_one(&fixture, "notifier", "k", id), 0);
    struct buf out;
    buf_init(&out, 1 << 20);
    int rc = ERR_NOMEM;
    for (long fail = 0; fail < 400 && rc != 0; fail++) {
        mem_fail_after(fail);
        rc = deadletter_list_json(fixture.queue, NULL, 2, NULL, &out);
        mem_fail_after(-1);
        EXPECT(rc == 0 || rc == ERR_NOMEM);
    }
    EXPECT_EQ_INT(rc, 0);
    rc = ERR_NOMEM;
    for (long fail = 0; fail < 400 && rc != 0; fail++) {
        buf_free(&out);
        buf_init(&out, 1 << 20);
        mem_fail_after(fail);
        rc = deadletter_redrive(fixture.queue, id, &out);
        mem_fail_after(-1);
        EXPECT(rc == 0 || rc == ERR_NOMEM);
        if (rc != 0) {
            EXPECT_EQ_INT(fake.calls, 0);
            EXPECT_STR(entry_state(&fixture, id, state, sizeof state), "dead");
        }
    }
    EXPECT_EQ_INT(rc, 0);
    EXPECT_EQ_INT(fake.calls, 1);
    EXPECT_STR(entry_state(&fixture, id, state, sizeof state), "redriving");
    buf_free(&out);
    fixture_close(&fixture);
}
