/* notifier_test.c - proves the notifier's pieces that need no socket: the
 * channel settings (defaults, precise 422 paths, merging and storing), the
 * webhook secret derivation, delivery keys and Message-IDs, every channel's
 * rendered message, the deliveries table (created once per key, states,
 * due order, outcome unknown at start) and the retry/dead-letter state
 * transitions on a fake clock. */
#include "../../../src/base/buf.h"
#include "../../../src/base/err.h"
#include "../../../src/consumer/notify_db.h"
#include "../../../src/consumer/retry.h"
#include "../../../src/notify/notify_message.h"
#include "../../../src/notify/notify_settings.h"
#include "../../../src/notify/notify_store.h"
#include "../../../src/store/db.h"
#include "../../../src/tasks/task.h"
#include "../evlog/evlog_support.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yyjson.h>

#define USER_ID "0190a000-0000-7000-8000-000000000001"
#define TASK_ID "0190a000-0000-7000-8000-0000000000b1"
#define KEY TASK_ID "@1767258000000"

/* A reminder.triggered CloudEvent as the scheduler appends it. */
static const char reminder_event[] =
    "{\"specversion\":\"1.0\",\"id\":\"0190a000-0000-7000-8000-0000000000e1\","
    "\"source\":\"/docket\",\"type\":\"reminder.triggered\",\"time\":\"2026-01-01T08:45:00Z\","
    "\"subject\":\"" TASK_ID "\",\"datacontenttype\":\"application/json\","
    "\"userid\":\"" USER_ID "\",\"sequence\":7,\"actor\":\"docket\","
    "\"data\":{\"task\":{\"id\":\"" TASK_ID "\",\"title\":\"Pay rent\","
    "\"description\":\"Transfer to landlord\",\"due\":\"2026-01-01T09:00:00Z\","
    "\"timezone\":\"Europe/Berlin\",\"priority\":2},"
    "\"reminder\":{\"at\":\"2026-01-01T08:45:00Z\",\"specs\":[{\"before\":\"PT15M\"}]},"
    "\"key\":\"" KEY "\",\"fired_at\":\"2026-01-01T08:45:00.002Z\",\"late_ms\":2}}";

/* ---- settings ---------------------------------------------------------------- */

static int apply_text(struct notify_settings *settings, const char *patch,
                      struct task_errors *errors) {
    yyjson_doc *doc = yyjson_read(patch, strlen(patch), 0);
    errors->count = 0;
    int rc = notify_settings_apply(settings, yyjson_doc_get_root(doc), false, errors);
    yyjson_doc_free(doc);
    return rc;
}

static int has_error(const struct task_errors *errors, const char *field) {
    for (size_t index = 0; index < errors->count && index < TASK_ERRORS_MAX; index++) {
        if (strcmp(errors->items[index].field, field) == 0) return 1;
    }
    return 0;
}

TEST(notify_settings_default_to_websocket_only) {
    struct notify_settings settings;
    notify_settings_from_user(NULL, 0, &settings);
    EXPECT(settings.websocket_enabled);
    EXPECT(!settings.email_enabled && !settings.webpush_enabled && !settings.webhook_enabled);
    EXPECT_EQ_INT(settings.webhook_secret_version, 1);
    const char *stored = "{\"theme\":\"dark\",\"notifications\":{\"websocket\":{\"enabled\":false},"
                         "\"email\":{\"enabled\":true,\"address\":\"a@b.example\"}}}";
    notify_settings_from_user(stored, strlen(stored), &settings);
    EXPECT(!settings.websocket_enabled);
    EXPECT(settings.email_enabled);
    EXPECT_STR(settings.email_address, "a@b.example");
    EXPECT(!settings.webhook_enabled);
}

TEST(notify_settings_reject_each_bad_value_by_path) {
    struct notify_settings settings;
    notify_settings_default(&settings);
    struct task_errors errors;
    EXPECT_EQ_INT(apply_text(&settings, "{\"email\":{\"enabled\":true}}", &errors), ERR_INVAL);
    EXPECT(has_error(&errors, "notifications.email.address"));
    EXPECT_EQ_INT(apply_text(&settings, "{\"email\":{\"address\":\"not an address\"}}", &errors),
                  ERR_INVAL);
    EXPECT(has_error(&errors, "notifications.email.address"));
    EXPECT_EQ_INT(apply_text(&settings, "{\"sms\":{\"enabled\":true}}", &errors), ERR_INVAL);
    EXPECT(has_error(&errors, "notifications.sms"));
    EXPECT_EQ_INT(apply_text(&settings, "{\"webpush\":{\"enabled\":1}}", &errors), ERR_INVAL);
    EXPECT(has_error(&errors, "notifications.webpush.enabled"));
    EXPECT_EQ_INT(apply_text(&settings, "{\"websocket\":{\"enabled\":true,\"x\":1}}", &errors),
                  ERR_INVAL);
    EXPECT(has_error(&errors, "notifications.websocket.x"));
    EXPECT_EQ_INT(apply_text(&settings, "{\"webhook\":{\"enabled\":true,\"url\":\"http://h.example/\"}}",
                             &errors),
                  ERR_INVAL);
    EXPECT(has_error(&errors, "notifications.webhook.url"));
    EXPECT_EQ_INT(apply_text(&settings, "{\"webhook\":{\"secret_version\":0}}", &errors),
                  ERR_INVAL);
    EXPECT(has_error(&errors, "notifications.webhook.secret_version"));
    EXPECT_EQ_INT(apply_text(&settings, "{\"webhook\":{\"enabled\":true}}", &errors), ERR_INVAL);
    EXPECT(has_error(&errors, "notifications.webhook.url"));
    EXPECT_EQ_INT(apply_text(&settings, "[]", &errors), ERR_INVAL);
    EXPECT(has_error(&errors, "notifications"));
    /* nothing of a rejected patch was applied */
    EXPECT(settings.websocket_enabled && !settings.email_enabled && !settings.webhook_enabled);
}

TEST(notify_settings_merge_and_store_keep_other_members) {
    struct notify_settings settings;
    notify_settings_default(&settings);
    struct task_errors errors;
    EXPECT_EQ_INT(apply_text(&settings,
                             "{\"email\":{\"enabled\":true,\"address\":\"me@mail.example\"},"
                             "\"webhook\":{\"enabled\":true,\"url\":\"https://hooks.example/x?a=1\","
                             "\"secret_version\":3}}",
                             &errors),
                  0);
    EXPECT_EQ_INT(apply_text(&settings, "{\"email\":{\"enabled\":false}}", &errors), 0);
    EXPECT(!settings.email_enabled);
    EXPECT_STR(settings.email_address, "me@mail.example"); /* kept */
    char stored[2048];
    const char *old = "{\"theme\":\"dark\",\"notifications\":{\"websocket\":{\"enabled\":true}}}";
    EXPECT_EQ_INT(notify_settings_store(old, strlen(old), &settings, stored, sizeof stored), 0);
    EXPECT(strstr(stored, "\"theme\":\"dark\"") != NULL);
    struct notify_settings back;
    notify_settings_from_user(stored, strlen(stored), &back);
    EXPECT(memcmp(&back, &settings, sizeof back) == 0);
    char tiny[32];
    EXPECT_EQ_INT(notify_settings_store(old, strlen(old), &settings, tiny, sizeof tiny), ERR_LIMIT);
}

TEST(notify_email_and_url_checks_follow_the_rules) {
    EXPECT(notify_email_valid("a@b.example", 11));
    EXPECT(notify_email_valid("first.last+tag@sub.mail.example", 31));
    static const char *const bad[] = {"a", "@b.example", "a@", "a@b", "a b@c.example",
                                      "a@-b.example", "a..b@c.example", "a@b..example",
                                      "<a@b.example>", "a@b.example\r\n"};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        EXPECT(!notify_email_valid(bad[index], strlen(bad[index])));
    }
    EXPECT(notify_url_problem("https://h.example", 17, false) == NULL);
    EXPECT(notify_url_problem("https://127.0.0.1:8443/hook", 27, false) == NULL);
    EXPECT(notify_url_problem("http://127.0.0.1/hook", 21, false) != NULL);
    EXPECT(notify_url_problem("http://127.0.0.1/hook", 21, true) == NULL);
    EXPECT(notify_url_problem("https://u:p@h.example/", 22, false) != NULL);
    EXPECT(notify_url_problem("https://h.example/#x", 20, false) != NULL);
    EXPECT(notify_url_problem("https:///path", 13, false) != NULL);
}

TEST(notify_webhook_secret_is_derived_and_rotates) {
    uint8_t key[NOTIFY_WEBHOOK_KEY_BYTES];
    memset(key, 7, sizeof key);
    char one[NOTIFY_WEBHOOK_SECRET_BYTES], again[NOTIFY_WEBHOOK_SECRET_BYTES];
    char two[NOTIFY_WEBHOOK_SECRET_BYTES];
    EXPECT_EQ_INT(notify_webhook_secret(key, USER_ID, 1, one), 0);
    EXPECT_EQ_INT(notify_webhook_secret(key, USER_ID, 1, again), 0);
    EXPECT_EQ_INT(notify_webhook_secret(key, USER_ID, 2, two), 0);
    EXPECT_EQ_INT(strlen(one), 43);
    EXPECT_STR(one, again);
    EXPECT(strcmp(one, two) != 0);
    /* A key file is created once (0600) and read back the same. */
    const char *dir = support_directory("notify_key");
    uint8_t first[NOTIFY_WEBHOOK_KEY_BYTES], second[NOTIFY_WEBHOOK_KEY_BYTES];
    EXPECT_EQ_INT(notify_webhook_key_load(dir, first), 0);
    EXPECT_EQ_INT(notify_webhook_key_load(dir, second), 0);
    EXPECT(memcmp(first, second, sizeof first) == 0);
}

/* ---- messages ---------------------------------------------------------------------- */

TEST(notify_reminder_parses_and_keys_are_stable) {
    struct notify_reminder reminder;
    EXPECT_EQ_INT(notify_reminder_parse(reminder_event, strlen(reminder_event), &reminder), 0);
    EXPECT_STR(reminder.user_id, USER_ID);
    EXPECT_STR(reminder.task_id, TASK_ID);
    EXPECT_STR(reminder.key, KEY);
    EXPECT_STR(reminder.title, "Pay rent");
    char key[NOTIFY_DELIVERY_KEY_BYTES];
    EXPECT_EQ_INT(notify_delivery_key(reminder.key, NOTIFY_EMAIL, NULL, key), 0);
    EXPECT_STR(key, KEY "/email");
    EXPECT_EQ_INT(notify_delivery_key(reminder.key, NOTIFY_WEBPUSH,
                                      "0190a000-0000-7000-8000-0000000000c1", key),
                  0);
    EXPECT_STR(key, KEY "/webpush/0190a000-0000-7000-8000-0000000000c1");
    char id1[NOTIFY_MESSAGE_ID_BYTES], id2[NOTIFY_MESSAGE_ID_BYTES];
    notify_message_id(KEY "/email", id1);
    notify_message_id(KEY "/email", id2);
    EXPECT_STR(id1, id2);
    EXPECT(id1[0] == '<' && strstr(id1, "@docket>") != NULL && strlen(id1) == 41);
    notify_reminder_free(&reminder);
    /* other events are refused */
    const char *other = "{\"type\":\"reminder.missed\",\"userid\":\"u\",\"subject\":\"t\","
                        "\"data\":{\"key\":\"k\",\"task\":{\"title\":\"x\"},\"reminder\":{}}}";
    EXPECT_EQ_INT(notify_reminder_parse(other, strlen(other), &reminder), ERR_INVAL);
    EXPECT_EQ_INT(notify_reminder_parse("{", 1, &reminder), ERR_PARSE);
}

TEST(notify_messages_render_each_channel) {
    struct notify_reminder reminder;
    EXPECT_EQ_INT(notify_reminder_parse(reminder_event, strlen(reminder_event), &reminder), 0);
    struct buf out, subject;
    buf_init(&out, 1 << 20);
    buf_init(&subject, 1 << 20);
    EXPECT_EQ_INT(notify_render_websocket(&reminder, &out), 0);
    yyjson_doc *doc = yyjson_read(out.data, out.length, 0);
    yyjson_val *root = yyjson_doc_get_root(doc);
    EXPECT_STR(yyjson_get_str(yyjson_obj_get(root, "type")), "reminder");
    EXPECT_STR(yyjson_get_str(yyjson_obj_get(yyjson_obj_get(root, "task"), "title")), "Pay rent");
    yyjson_val *object = yyjson_obj_get(root, "reminder");
    EXPECT_STR(yyjson_get_str(yyjson_obj_get(object, "key")), KEY);
    EXPECT_STR(yyjson_get_str(yyjson_obj_get(object, "at")), "2026-01-01T08:45:00Z");
    EXPECT_STR(yyjson_get_str(yyjson_obj_get(object, "fired_at")), "2026-01-01T08:45:00.002Z");
    yyjson_doc_free(doc);
    buf_reset(&out);
    EXPECT_EQ_INT(notify_render_webhook(&reminder, KEY "/webhook", &out), 0);
    EXPECT(strstr(out.data, "\"delivery\":\"" KEY "/webhook\"") != NULL);
    buf_reset(&out);
    EXPECT_EQ_INT(notify_render_email(&reminder, &subject, &out), 0);
    EXPECT_STR(subject.data, "Reminder: Pay rent");
    /* 09:00Z is 10:00 in Berlin in winter */
    EXPECT(strstr(out.data, "Due: 2026-01-01 10:00 Europe/Berlin") != NULL);
    EXPECT(strstr(out.data, "Transfer to landlord") != NULL);
    buf_reset(&out);
    EXPECT_EQ_INT(notify_render_push(&reminder, &out), 0);
    EXPECT_STR(out.data, "{\"type\":\"reminder\",\"task_id\":\"" TASK_ID "\",\"title\":\"Pay rent\","
                         "\"due\":\"2026-01-01T09:00:00Z\",\"key\":\"" KEY "\"}");
    notify_reminder_free(&reminder);
    buf_free(&out);
    buf_free(&subject);
}

TEST(notify_push_payload_stays_under_the_record_limit) {
    /* A title of 3,000 control characters (6 bytes each escaped) and multi-byte text. */
    struct buf event;
    buf_init(&event, 1 << 20);
    const char *head = strstr(reminder_event, "\"title\":\"Pay rent\"");
    EXPECT(head != NULL);
    EXPECT_EQ_INT(buf_append(&event, reminder_event, (size_t)(head - reminder_event)), 0);
    EXPECT_EQ_INT(buf_append_str(&event, "\"title\":\""), 0);
    for (int index = 0; index < 3000; index++) EXPECT_EQ_INT(buf_append_str(&event, "\\u0001"), 0);
    for (int index = 0; index < 400; index++) EXPECT_EQ_INT(buf_append_str(&event, "\xc3\xa9"), 0);
    EXPECT_EQ_INT(buf_append_str(&event, head + strlen("\"title\":\"Pay rent")), 0);
    struct notify_reminder reminder;
    EXPECT_EQ_INT(notify_reminder_parse(event.data, event.length, &reminder), 0);
    struct buf out;
    buf_init(&out, 1 << 20);
    EXPECT_EQ_INT(notify_render_push(&reminder, &out), 0);
    EXPECT(out.length <= NOTIFY_PUSH_PAYLOAD_BYTES_MAX);
    EXPECT(yyjson_read(out.data, out.length, 0) != NULL); /* still valid JSON (UTF-8 intact) */
    notify_reminder_free(&reminder);
    buf_free(&out);
    buf_free(&event);
}

/* ---- the deliveries table and the state machine ------------------------------------ */

static struct db *open_notify_db(const char *tag) {
    char path[512];
    snprintf(path, sizeof path, "%s/notify.db", support_directory(tag));
    struct db *db = NULL;
    struct db_error error;
    return notify_db_open(&db, path, &error) == 0 ? db : NULL;
}

static void fill_delivery(struct notify_delivery *delivery, enum notify_channel channel) {
    memset(delivery, 0, sizeof *delivery);
    notify_delivery_key(KEY, channel, NULL, delivery->key);
    snprintf(delivery->reminder_key, sizeof delivery->reminder_key, "%s", KEY);
    delivery->channel = channel;
    snprintf(delivery->user_id, sizeof delivery->user_id, "%s", USER_ID);
    snprintf(delivery->task_id, sizeof delivery->task_id, "%s", TASK_ID);
    delivery->state = NOTIFY_PENDING;
}

struct key_list {
    char keys[8][NOTIFY_DELIVERY_KEY_BYTES]; /* listed keys */
    size_t count;                            /* entries used */
};

static void collect_key(void *arg, const char *key) {
    struct key_list *list = arg;
    if (list->count < 8) snprintf(list->keys[list->count++], NOTIFY_DELIVERY_KEY_BYTES, "%s", key);
}

TEST(notify_store_creates_a_delivery_once_per_key) {
    struct db *db = open_notify_db("notify_once");
    EXPECT(db != NULL);
    struct notify_delivery delivery;
    fill_delivery(&delivery, NOTIFY_EMAIL);
    size_t length = strlen(reminder_event);
    EXPECT_EQ_INT(notify_store_create(db, &delivery, reminder_event, length, 100), 0);
    EXPECT_EQ_INT(notify_store_create(db, &delivery, reminder_event, length, 200), ERR_EXISTS);
    struct notify_delivery back;
    struct buf event;
    buf_init(&event, 1 << 20);
    EXPECT_EQ_INT(notify_store_get(db, delivery.key, &back, &event), 0);
    EXPECT_STR(back.key, KEY "/email");
    EXPECT_EQ_INT(back.channel, NOTIFY_EMAIL);
    EXPECT_EQ_INT(back.state, NOTIFY_PENDING);
    EXPECT_STR(back.task_id, TASK_ID);
    EXPECT_EQ_INT(event.length, length);
    EXPECT_EQ_INT(notify_store_count(db, NOTIFY_PENDING), 1);
    EXPECT_EQ_INT(notify_store_get(db, "missing", &back, NULL), ERR_NOTFOUND);
    buf_free(&event);
    db_close(db);
}

TEST(notify_store_fails_interrupted_deliveries_and_lists_unrecorded) {
    struct db *db = open_notify_db("notify_abandon");
    EXPECT(db != NULL);
    struct notify_delivery email, webhook;
    fill_delivery(&email, NOTIFY_EMAIL);
    fill_delivery(&webhook, NOTIFY_WEBHOOK);
    webhook.next_ns = 500;
    size_t length = strlen(reminder_event);
    EXPECT_EQ_INT(notify_store_create(db, &email, reminder_event, length, 1), 0);
    EXPECT_EQ_INT(notify_store_create(db, &webhook, reminder_event, length, 1), 0);
    struct key_list due = {.count = 0};
    EXPECT_EQ_INT(notify_store_due(db, 100, 8, collect_key, &due), 1); /* webhook not yet */
    EXPECT_STR(due.keys[0], KEY "/email");
    EXPECT_EQ_INT(notify_store_next_due(db), 0);
    email.state = NOTIFY_SENDING; /* the process dies during this attempt */
    email.attempts = 1;
    EXPECT_EQ_INT(notify_store_update(db, &email, 2), 0);
    EXPECT_EQ_INT(notify_store_next_due(db), 500);
    EXPECT_EQ_INT(notify_store_abandon_sending(db, 3), 1);
    struct notify_delivery back;
    EXPECT_EQ_INT(notify_store_get(db, email.key, &back, NULL), 0);
    EXPECT_EQ_INT(back.state, NOTIFY_FAILED);
    EXPECT_STR(back.error, NOTIFY_OUTCOME_UNKNOWN);
    EXPECT_EQ_INT(back.attempts, 1);
    struct key_list unrecorded = {.count = 0};
    EXPECT_EQ_INT(notify_store_unrecorded(db, 8, collect_key, &unrecorded), 1);
    EXPECT_STR(unrecorded.keys[0], KEY "/email");
    back.recorded = true;
    EXPECT_EQ_INT(notify_store_update(db, &back, 4), 0);
    unrecorded.count = 0;
    EXPECT_EQ_INT(notify_store_unrecorded(db, 8, collect_key, &unrecorded), 0);
    /* not pending any more, so never due again */
    due.count = 0;
    EXPECT_EQ_INT(notify_store_due(db, 1000, 8, collect_key, &due), 1);
    EXPECT_STR(due.keys[0], KEY "/webhook");
    db_close(db);
}

TEST(notify_delivery_retries_then_dies_on_a_fake_clock) {
    struct retry_policy policy;
    EXPECT_EQ_INT(retry_policy_parse("1000,5000,25000", &policy), 0);
    struct notify_delivery delivery;
    fill_delivery(&delivery, NOTIFY_WEBHOOK);
    int64_t now_ns = 1000000000000;
    static const int64_t waits_ms[] = {1000, 5000, 25000};
    for (int attempt = 1; attempt <= 3; attempt++) {
        delivery.attempts = attempt;
        notify_delivery_failed(&delivery, &policy, false, "HTTP 500", now_ns);
        EXPECT_EQ_INT(delivery.state, NOTIFY_RETRY);
        EXPECT_EQ_INT(delivery.next_ns, now_ns + waits_ms[attempt - 1] * 1000000);
        now_ns = delivery.next_ns;
    }
    delivery.attempts = 4;
    notify_delivery_failed(&delivery, &policy, false, "HTTP 500", now_ns);
    EXPECT_EQ_INT(delivery.state, NOTIFY_DEAD);
    EXPECT_STR(delivery.error, "HTTP 500");
    /* a permanent failure never retries */
    fill_delivery(&delivery, NOTIFY_WEBPUSH);
    delivery.attempts = 1;
    notify_delivery_failed(&delivery, &policy, true, "HTTP 410: subscription gone", now_ns);
    EXPECT_EQ_INT(delivery.state, NOTIFY_FAILED);
}
