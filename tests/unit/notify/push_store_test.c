/* push_store_test.c - proves that push.subscribed and push.unsubscribed
 * events, applied by the real projection from a real event log, give the
 * rows push_store reads: a user's subscriptions oldest first and bounded by
 * the capacity, another user's never visible, the same endpoint subscribed
 * twice kept once (the first id), unsubscribe deleting only the owner's row,
 * malformed events skipped without stopping the projection, and a stored
 * text too long for its field reported as corrupt instead of cut. */
#include "../../../src/base/err.h"
#include "../../../src/notify/push_store.h"
#include "../../../src/store/db.h"
#include "../store/store_support.h"
#include "../test.h"

#include <sqlite3.h>

#include <stdio.h>
#include <string.h>

static const char p256dh[] =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
static const char auth[] = "BTBZMqHH6r4Tts7J_aSIgg";

/* Appends push.subscribed for `user` with subscription `id` and `endpoint`. */
static int64_t subscribed(struct store_fixture *fixture, const char *user, const char *id,
                          const char *endpoint) {
    char data[512];
    snprintf(data, sizeof data,
             "{\"id\":\"%s\",\"endpoint\":\"%s\",\"keys\":{\"p256dh\":\"%s\",\"auth\":\"%s\"},"
             "\"created_at\":\"2026-11-24T05:00:00.123Z\"}",
             id, endpoint, p256dh, auth);
    struct store_event event = {
        .type = "push.subscribed", .user_id = user, .subject = id, .data = data};
    return store_append(fixture, &event);
}

static int64_t unsubscribed(struct store_fixture *fixture, const char *user, const char *id) {
    char data[128];
    snprintf(data, sizeof data, "{\"id\":\"%s\"}", id);
    struct store_event event = {
        .type = "push.unsubscribed", .user_id = user, .subject = id, .data = data};
    return store_append(fixture, &event);
}

TEST(push_store_reads_what_the_projection_applied) {
    /* Two subscriptions of Alice and one of Bob: each user lists only theirs,
     * oldest first, with every field; get/find/count agree; capacity bounds it. */
    struct store_fixture fixture;
    EXPECT_EQ_INT(store_fixture_open(&fixture, "push_store_reads"), 0);
    char alice[UUID_STRING_BYTES], bob[UUID_STRING_BYTES];
    char first[UUID_STRING_BYTES], second[UUID_STRING_BYTES], theirs[UUID_STRING_BYTES];
    store_id(alice, 'a', 1);
    store_id(bob, 'a', 2);
    EXPECT(store_user_created(&fixture, alice, "alice") >= 0);
    EXPECT(store_user_created(&fixture, bob, "bob") >= 0);
    store_id(first, 'c', 1);
    store_id(second, 'c', 2);
    store_id(theirs, 'c', 3);
    EXPECT(subscribed(&fixture, alice, first, "https://push.example.net/a") >= 0);
    EXPECT(subscribed(&fixture, alice, second, "https://push.example.net/b") >= 0);
    EXPECT(subscribed(&fixture, bob, theirs, "https://push.example.net/a") >= 0);
    int64_t applied = store_project(&fixture);
    if (applied < 0) fprintf(stderr, "    project: %s\n", err_name((int)applied));
    EXPECT(applied >= 0);
    struct push_subscription items[PUSH_SUBSCRIPTIONS_PER_USER_MAX];
    size_t count = 0;
    EXPECT_EQ_INT(push_store_list(fixture.db, alice, items, 16, &count), 0);
    EXPECT_EQ_INT(count, 2);
    EXPECT_STR(items[0].id, first);
    EXPECT_STR(items[0].user_id, alice);
    EXPECT_STR(items[0].endpoint, "https://push.example.net/a");
    EXPECT_STR(items[0].p256dh, p256dh);
    EXPECT_STR(items[0].auth, auth);
    EXPECT_EQ_INT(items[0].created_ns, INT64_C(1795496400123000000));
    EXPECT_STR(items[1].id, second);
    EXPECT_EQ_INT(push_store_list(fixture.db, alice, items, 1, &count), 0);
    EXPECT_EQ_INT(count, 1);
    EXPECT_EQ_INT(push_store_count(fixture.db, alice), 2);
    EXPECT_EQ_INT(push_store_count(fixture.db, bob), 1);
    struct push_subscription one;
    EXPECT_EQ_INT(push_store_get(fixture.db, alice, second, &one), 0);
    EXPECT_STR(one.endpoint, "https://push.example.net/b");
    EXPECT_EQ_INT(push_store_get(fixture.db, alice, theirs, &one), ERR_NOTFOUND);
    EXPECT_EQ_INT(push_store_find_endpoint(fixture.db, bob, "https://push.example.net/a", &one),
                  0);
    EXPECT_STR(one.id, theirs);
    EXPECT_EQ_INT(push_store_find_endpoint(fixture.db, bob, "https://push.example.net/b", &one),
                  ERR_NOTFOUND);
    store_fixture_close(&fixture);
}

TEST(push_store_same_endpoint_kept_once_and_unsubscribe_is_the_owners) {
    /* A second push.subscribed of one endpoint by one user is ignored (the first
     * id stays); push.unsubscribed of another user's id deletes nothing; the
     * owner's deletes the row, and a repeat is harmless. */
    struct store_fixture fixture;
    EXPECT_EQ_INT(store_fixture_open(&fixture, "push_store_unique"), 0);
    char alice[UUID_STRING_BYTES], bob[UUID_STRING_BYTES];
    char first[UUID_STRING_BYTES], duplicate[UUID_STRING_BYTES];
    store_id(alice, 'a', 1);
    store_id(bob, 'a', 2);
    EXPECT(store_user_created(&fixture, alice, "alice") >= 0);
    EXPECT(store_user_created(&fixture, bob, "bob") >= 0);
    store_id(first, 'c', 1);
    store_id(duplicate, 'c', 2);
    EXPECT(subscribed(&fixture, alice, first, "https://push.example.net/same") >= 0);
    EXPECT(subscribed(&fixture, alice, duplicate, "https://push.example.net/same") >= 0);
    EXPECT(unsubscribed(&fixture, bob, first) >= 0);
    EXPECT(store_project(&fixture) >= 0);
    EXPECT_EQ_INT(push_store_count(fixture.db, alice), 1);
    struct push_subscription one;
    EXPECT_EQ_INT(push_store_find_endpoint(fixture.db, alice, "https://push.example.net/same",
                                           &one),
                  0);
    EXPECT_STR(one.id, first);
    EXPECT(unsubscribed(&fixture, alice, first) >= 0);
    EXPECT(unsubscribed(&fixture, alice, first) >= 0);
    EXPECT(store_project(&fixture) >= 0);
    EXPECT_EQ_INT(push_store_count(fixture.db, alice), 0);
    EXPECT_EQ_INT(push_store_get(fixture.db, alice, first, &one), ERR_NOTFOUND);
    store_fixture_close(&fixture);
}

TEST(push_store_malformed_events_skipped_and_long_rows_corrupt) {
    /* push.subscribed without keys adds no row and the next event still
     * applies; an endpoint longer than the field is ERR_CORRUPT, not cut. */
    struct store_fixture fixture;
    EXPECT_EQ_INT(store_fixture_open(&fixture, "push_store_bad"), 0);
    char alice[UUID_STRING_BYTES], id[UUID_STRING_BYTES], later[UUID_STRING_BYTES];
    store_id(alice, 'a', 1);
    EXPECT(store_user_created(&fixture, alice, "alice") >= 0);
    store_id(id, 'c', 1);
    store_id(later, 'c', 2);
    struct store_event bad = {.type = "push.subscribed", .user_id = alice, .subject = id,
                              .data = "{\"id\":\"x\",\"endpoint\":\"https://e/\"}"};
    EXPECT(store_append(&fixture, &bad) >= 0);
    EXPECT(subscribed(&fixture, alice, later, "https://push.example.net/ok") >= 0);
    EXPECT(store_project(&fixture) >= 0);
    EXPECT_EQ_INT(push_store_count(fixture.db, alice), 1);
    static char sql[HTTPC_URL_BYTES_MAX + 256];
    int n = snprintf(sql, sizeof sql,
                     "UPDATE push_subscriptions SET endpoint = 'https://e/' || "
                     "printf('%%.%dc', 'x') WHERE id = '%s'",
                     HTTPC_URL_BYTES_MAX, later);
    EXPECT(n > 0 && (size_t)n < sizeof sql);
    EXPECT_EQ_INT(sqlite3_exec(db_handle(fixture.db), sql, NULL, NULL, NULL), SQLITE_OK);
    struct push_subscription items[2];
    size_t count = 0;
    EXPECT_EQ_INT(push_store_list(fixture.db, alice, items, 2, &count), ERR_CORRUPT);
    EXPECT_EQ_INT(push_store_get(fixture.db, alice, later, &items[0]), ERR_CORRUPT);
    store_fixture_close(&fixture);
}
