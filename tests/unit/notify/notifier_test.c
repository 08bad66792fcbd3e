/* notifier_test.c - proves the notifier's pieces that need no socket: the
 * channel settings (defaults, precise 422 paths, merging and storing), the
 * webhook secret derivation, delivery keys and Message-IDs, every channel's
 * rendered message, the deliveries table (created once per key, states,
 * due order, outcome unknown at start) and the retry/dead-letter state
 * transitions on a fake clock; and the consumer itself over a real log
 * with a fake channel: one delivery per channel even when the log is read
 * again, retries on the clock, no resend after a stop mid-attempt, and
 * reading paused while max_inflight deliveries wait. */
#include "../../../src/base/buf.h"
#include "../../../src/base/err.h"
#include "../../../src/consumer/notify_db.h"
#include "../../../src/consumer/retry.h"
#include "../../../src/base/clock.h"
#include "../../../src/notify/notifier.h"
#include "../../../src/notify/notify_message.h"
#include "../../../src/notify/notify_settings.h"
#include "../../../src/notify/notify_store.h"
#include "../../../src/store/db.h"
#include "../../../src/tasks/task.h"
#include "../evlog/evlog_support.h"
#include "../store/store_support.h"
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
    yyjson_doc *parsed = yyjson_read(out.data, out.length, 0);
    EXPECT(parsed != NULL); /* still valid JSON (UTF-8 intact) */
    yyjson_doc_free(parsed);
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

/* ---- the consumer over a real log, with a fake channel ---------------------------- */

/* A channel that holds its attempts until the test ends them. */
struct fake_channel {
    struct notifier_attempt *held[16]; /* attempts started, not yet ended */
    size_t held_count;                 /* entries used */
    int started;                       /* attempts started in all */
};

static int fake_start(void *arg, struct notifier_attempt *attempt, bool *permanent, char *error,
                      size_t error_size) {
    (void)permanent;
    (void)error;
    (void)error_size;
    struct fake_channel *channel = arg;
    channel->started++;
    if (channel->held_count < 16) channel->held[channel->held_count++] = attempt;
    return 0;
}

/* Ends the oldest held attempt. */
static void fake_end(struct fake_channel *channel, enum notifier_outcome outcome) {
    if (channel->held_count == 0) return;
    struct notifier_attempt *attempt = channel->held[0];
    memmove(channel->held, channel->held + 1, (channel->held_count - 1) * sizeof channel->held[0]);
    channel->held_count--;
    notifier_attempt_done(attempt, outcome, outcome == NOTIFIER_SENT ? NULL : "HTTP 503");
}

struct consumer_fixture {
    struct store_fixture store;   /* log, docket.db, projection */
    struct db *notify_db;         /* deliveries */
    struct clock_fake clock;      /* the notifier's wall clock */
    struct fake_channel email;    /* the e-mail channel */
    struct fake_channel webhook;  /* the webhook channel */
    struct notifier_options options; /* for notifier_open */
};

#define OWNER "0190a000-0000-7000-8000-0000000000a1"

static int consumer_open(struct consumer_fixture *fixture, const char *tag, size_t max_inflight) {
    memset(fixture, 0, sizeof *fixture);
    int rc = store_fixture_open(&fixture->store, tag);
    char path[512];
    snprintf(path, sizeof path, "%s/notify.db", fixture->store.root);
    struct db_error error;
    if (rc == 0) rc = notify_db_open(&fixture->notify_db, path, &error);
    struct store_event user = {
        .type = "user.created",
        .user_id = OWNER,
        .subject = OWNER,
        .data = "{\"username\":\"owner\",\"role\":\"user\",\"timezone\":\"UTC\",\"settings\":"
                "{\"notifications\":{\"email\":{\"enabled\":true,\"address\":\"o@x.example\"},"
                "\"webhook\":{\"enabled\":true,\"url\":\"https://h.example/in\"}}}}",
        .password_hash = "$pbkdf2-sha256$i=600000$c2FsdA$a2V5",
    };
    if (rc == 0 && store_append(&fixture->store, &user) < 0) rc = ERR_IO;
    clock_fake_init(&fixture->clock, 1767225600000000000LL);
    struct notifier_options *options = &fixture->options;
    options->clock = &fixture->clock.base;
    options->topic = fixture->store.log.topic;
    options->db = fixture->store.db;
    options->notify_db = fixture->notify_db;
    options->max_inflight = max_inflight;
    options->channels[NOTIFY_EMAIL] = (struct notifier_channel){fake_start, &fixture->email};
    options->channels[NOTIFY_WEBHOOK] = (struct notifier_channel){fake_start, &fixture->webhook};
    if (rc == 0) rc = retry_policy_parse("1000,5000,25000", &options->policy);
    return rc;
}

static void consumer_close(struct consumer_fixture *fixture) {
    db_close(fixture->notify_db);
    store_fixture_close(&fixture->store);
}

/* Appends a reminder.triggered for task number `number` and projects. */
static int64_t consumer_remind(struct consumer_fixture *fixture, int number) {
    char task_id[UUID_STRING_BYTES];
    store_id(task_id, 'b', number);
    char data[1024];
    snprintf(data, sizeof data,
             "{\"task\":{\"id\":\"%s\",\"title\":\"Task %d\",\"description\":\"\","
             "\"due\":\"2026-01-01T09:00:00Z\",\"timezone\":\"UTC\"},"
             "\"reminder\":{\"at\":\"2026-01-01T08:45:00Z\",\"specs\":[{\"before\":\"PT15M\"}]},"
             "\"key\":\"%s@1767257100000\",\"fired_at\":\"2026-01-01T08:45:00Z\",\"late_ms\":0}",
             task_id, number, task_id);
    struct store_event event = {
        .type = "reminder.triggered", .user_id = OWNER, .subject = task_id, .data = data};
    int64_t offset = store_append(&fixture->store, &event);
    store_project(&fixture->store);
    return offset + 1;
}

static enum notify_state state_of(struct consumer_fixture *fixture, int number,
                                  enum notify_channel channel) {
    char task_id[UUID_STRING_BYTES], reminder_key[NOTIFY_REMINDER_KEY_BYTES];
    char key[NOTIFY_DELIVERY_KEY_BYTES];
    store_id(task_id, 'b', number);
    snprintf(reminder_key, sizeof reminder_key, "%s@1767257100000", task_id);
    notify_delivery_key(reminder_key, channel, NULL, key);
    struct notify_delivery delivery;
    int rc = notify_store_get(fixture->notify_db, key, &delivery, NULL);
    return rc == 0 ? delivery.state : NOTIFY_STATE_COUNT;
}

TEST(notifier_delivers_once_per_channel_even_when_the_log_is_read_again) {
    struct consumer_fixture fixture;
    EXPECT_EQ_INT(consumer_open(&fixture, "notifier_once", 8), 0);
    int64_t end = consumer_remind(&fixture, 1);
    struct notifier *notifier = NULL;
    EXPECT_EQ_INT(notifier_open(&notifier, &fixture.options), 0);
    EXPECT_EQ_INT(notifier_advance(notifier, end), 0);
    EXPECT_EQ_INT(notifier_offset(notifier), end);
    EXPECT_EQ_INT(fixture.email.started, 1);
    EXPECT_EQ_INT(fixture.webhook.started, 1);
    /* no hub: the in-app delivery has nobody to go to */
    EXPECT_EQ_INT(state_of(&fixture, 1, NOTIFY_WEBSOCKET), NOTIFY_SKIPPED);
    EXPECT_EQ_INT(state_of(&fixture, 1, NOTIFY_EMAIL), NOTIFY_SENDING);
    fake_end(&fixture.email, NOTIFIER_SENT);
    fake_end(&fixture.webhook, NOTIFIER_SENT);
    EXPECT_EQ_INT(state_of(&fixture, 1, NOTIFY_EMAIL), NOTIFY_SENT);
    EXPECT_EQ_INT(notifier_stats(notifier)->created, 3);
    notifier_close(notifier);
    /* a rewound consumer reads the event again: nothing new is created or sent */
    fixture.options.start_offset = 0;
    EXPECT_EQ_INT(notifier_open(&notifier, &fixture.options), 0);
    EXPECT_EQ_INT(notifier_advance(notifier, end), 0);
    EXPECT_EQ_INT(notifier_stats(notifier)->duplicates, 3);
    EXPECT_EQ_INT(notifier_stats(notifier)->created, 0);
    EXPECT_EQ_INT(fixture.email.started, 1);
    EXPECT_EQ_INT(fixture.webhook.started, 1);
    notifier_close(notifier);
    consumer_close(&fixture);
}

TEST(notifier_retries_on_the_clock_then_gives_up) {
    struct consumer_fixture fixture;
    EXPECT_EQ_INT(consumer_open(&fixture, "notifier_retry", 8), 0);
    int64_t end = consumer_remind(&fixture, 1);
    struct notifier *notifier = NULL;
    EXPECT_EQ_INT(notifier_open(&notifier, &fixture.options), 0);
    EXPECT_EQ_INT(notifier_advance(notifier, end), 0);
    fake_end(&fixture.webhook, NOTIFIER_SENT);
    static const int64_t waits_ms[] = {1000, 5000, 25000};
    for (int retry = 0; retry < 3; retry++) {
        EXPECT_EQ_INT(fixture.email.started, retry + 1);
        fake_end(&fixture.email, NOTIFIER_RETRY);
        EXPECT_EQ_INT(state_of(&fixture, 1, NOTIFY_EMAIL), NOTIFY_RETRY);
        clock_fake_advance(&fixture.clock, (waits_ms[retry] - 1) * 1000000);
        notifier_advance(notifier, end);
        EXPECT_EQ_INT(fixture.email.started, retry + 1); /* not yet */
        clock_fake_advance(&fixture.clock, 1000000);
        notifier_advance(notifier, end);
    }
    EXPECT_EQ_INT(fixture.email.started, 4);
    fake_end(&fixture.email, NOTIFIER_RETRY);
    EXPECT_EQ_INT(state_of(&fixture, 1, NOTIFY_EMAIL), NOTIFY_DEAD);
    clock_fake_advance(&fixture.clock, INT64_C(3600) * 1000000000);
    notifier_advance(notifier, end);
    EXPECT_EQ_INT(fixture.email.started, 4);
    EXPECT_EQ_INT(notifier_stats(notifier)->outcomes[NOTIFY_EMAIL][NOTIFY_RETRY], 3);
    EXPECT_EQ_INT(notifier_stats(notifier)->outcomes[NOTIFY_EMAIL][NOTIFY_DEAD], 1);
    notifier_close(notifier);
    consumer_close(&fixture);
}

TEST(notifier_never_resends_a_delivery_interrupted_by_a_stop) {
    struct consumer_fixture fixture;
    EXPECT_EQ_INT(consumer_open(&fixture, "notifier_unknown", 8), 0);
    int64_t end = consumer_remind(&fixture, 1);
    struct notifier *notifier = NULL;
    EXPECT_EQ_INT(notifier_open(&notifier, &fixture.options), 0);
    EXPECT_EQ_INT(notifier_advance(notifier, end), 0);
    /* the process "dies" while both attempts are on the wire */
    notifier_close(notifier);
    fake_end(&fixture.email, NOTIFIER_SENT); /* results after the close are dropped */
    fake_end(&fixture.webhook, NOTIFIER_SENT);
    EXPECT_EQ_INT(state_of(&fixture, 1, NOTIFY_EMAIL), NOTIFY_SENDING);
    EXPECT_EQ_INT(notifier_open(&notifier, &fixture.options), 0);
    EXPECT_EQ_INT(notifier_stats(notifier)->abandoned, 2);
    EXPECT_EQ_INT(notifier_advance(notifier, end), 0);
    EXPECT_EQ_INT(state_of(&fixture, 1, NOTIFY_EMAIL), NOTIFY_FAILED);
    EXPECT_EQ_INT(state_of(&fixture, 1, NOTIFY_WEBHOOK), NOTIFY_FAILED);
    EXPECT_EQ_INT(fixture.email.started, 1);
    EXPECT_EQ_INT(fixture.webhook.started, 1);
    notifier_close(notifier);
    consumer_close(&fixture);
}

TEST(notifier_stops_reading_while_max_inflight_deliveries_wait) {
    struct consumer_fixture fixture;
    EXPECT_EQ_INT(consumer_open(&fixture, "notifier_bound", 2), 0);
    fixture.options.channels[NOTIFY_WEBHOOK].start = NULL; /* email only counts */
    int64_t end = 0;
    for (int number = 1; number <= 5; number++) end = consumer_remind(&fixture, number);
    struct notifier *notifier = NULL;
    EXPECT_EQ_INT(notifier_open(&notifier, &fixture.options), 0);
    EXPECT_EQ_INT(notifier_advance(notifier, end), 0);
    EXPECT(notifier_offset(notifier) < end);
    EXPECT(fixture.email.held_count <= 2);
    EXPECT(notifier_stats(notifier)->inflight <= 2);
    for (int round = 0; round < 20 && fixture.email.held_count > 0; round++) {
        EXPECT(fixture.email.held_count <= 2);
        fake_end(&fixture.email, NOTIFIER_SENT);
    }
    EXPECT_EQ_INT(notifier_offset(notifier), end);
    EXPECT_EQ_INT(fixture.email.started, 5);
    for (int number = 1; number <= 5; number++) {
        EXPECT_EQ_INT(state_of(&fixture, number, NOTIFY_EMAIL), NOTIFY_SENT);
        /* the webhook channel is not available here: failed without a retry */
        EXPECT_EQ_INT(state_of(&fixture, number, NOTIFY_WEBHOOK), NOTIFY_FAILED);
    }
    notifier_close(notifier);
    consumer_close(&fixture);
}
