/*
 * notifier.c - the notifier consumer: reads reminder.triggered events from
 * the log, creates deliveries in notify.db, runs them (at most max_inflight
 * waiting or running), retries, dead-letters and records outcomes (see
 * notifier.h for the rules).
 *
 * Layers: reading the log -> creating deliveries -> the pump (starts due
 * deliveries, arms the timer for the next one) -> an attempt -> its end
 * (state, outcome event, dead-letter queue, redrive answer).
 */
#include "notifier.h"

#include "../base/check.h"
#include "../base/clock.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/mem.h"
#include "../consumer/deadletter.h"
#include "../evlog/evlog.h"
#include "../realtime/hub.h"
#include "../tasks/query.h"
#include "../tasks/service.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <yyjson.h>

/* Keys started per pump pass; the pump loops until nothing is due. */
#define NOTIFIER_PUMP_BATCH 64
/* Unrecorded outcomes re-appended per pass at start. */
#define NOTIFIER_RECORD_BATCH 64

/* An outcome event on its way into the log. */
struct notifier_record {
    struct notifier *notifier;            /* NULL once the notifier closed */
    char key[NOTIFY_DELIVERY_KEY_BYTES];  /* the delivery it records */
    struct notifier_record *next;         /* in the notifier's list */
    struct notifier_record *previous;     /* (doubly linked) */
};

/* A redrive of a delivery that was already sent: answered on the next pump. */
struct notifier_answer {
    char id[64];    /* dead-letter entry id */
    bool succeeded; /* the answer */
};

struct notifier {
    struct notifier_options options;        /* as given */
    int64_t offset;                         /* next log record to read */
    int64_t applied_end;                    /* the projection's end at the last advance */
    struct evlog_cursor cursor;             /* reads the topic; valid while cursor_open */
    bool cursor_open;                       /* cursor positioned at `offset` */
    int64_t backlog;                        /* pending + retry rows (waiting deliveries) */
    struct notifier_attempt *attempts;      /* running attempts */
    struct notifier_record *records;        /* outcome events being appended */
    uv_timer_t timer;                       /* wakes the pump at the next due delivery */
    bool timer_open;                        /* timer initialised */
    bool pumping;                           /* a pump pass is on the stack */
    bool pump_again;                        /* something changed during that pass */
    bool reading;                           /* notifier_advance is on the stack */
    struct notifier_answer answers[NOTIFIER_REDRIVES_MAX]; /* redrives to answer */
    size_t answer_count;                    /* entries used */
    struct notifier_stats stats;            /* counters */
};

static int64_t notifier_now_ns(const struct notifier *notifier) {
    return notifier->options.clock->wall_ns(notifier->options.clock);
}

static void notifier_pump(struct notifier *notifier);

/* ---- outcome events --------------------------------------------------------- */

static void notifier_recorded(void *arg, const struct command_result *result) {
    struct notifier_record *record = arg;
    struct notifier *notifier = record->notifier;
    if (notifier != NULL) {
        if (record->previous != NULL) record->previous->next = record->next;
        else notifier->records = record->next;
        if (record->next != NULL) record->next->previous = record->previous;
        struct notify_delivery delivery;
        if (result->status < 300 &&
            notify_store_get(notifier->options.notify_db, record->key, &delivery, NULL) == 0) {
            delivery.recorded = true;
            notify_store_update(notifier->options.notify_db, &delivery, notifier_now_ns(notifier));
        } else if (result->status >= 300) {
            LOG_WARN("notifier", "cannot record a delivery outcome; retried at the next start",
                     "key=%s status=%d", record->key, result->status);
        }
    }
    mem_free(record);
}

/* Appends notification.sent or notification.failed for a final row. */
static void notifier_record(struct notifier *notifier, const struct notify_delivery *delivery) {
    if (notifier->options.service == NULL) return;
    CHECK(delivery->state == NOTIFY_SENT || delivery->state == NOTIFY_FAILED ||
          delivery->state == NOTIFY_DEAD);
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    struct notifier_record *record = mem_calloc(1, sizeof *record);
    yyjson_mut_val *root = doc != NULL ? yyjson_mut_obj(doc) : NULL;
    bool ok = root != NULL && record != NULL &&
              yyjson_mut_obj_add_str(doc, root, "key", delivery->key) &&
              yyjson_mut_obj_add_str(doc, root, "channel", notify_channel_name(delivery->channel)) &&
              yyjson_mut_obj_add_str(doc, root, "reminder_key", delivery->reminder_key) &&
              yyjson_mut_obj_add_str(doc, root, "task_id", delivery->task_id) &&
              yyjson_mut_obj_add_int(doc, root, "attempts", delivery->attempts);
    if (ok && delivery->subscription_id[0] != '\0') {
        ok = yyjson_mut_obj_add_str(doc, root, "subscription_id", delivery->subscription_id);
    }
    if (ok && delivery->state != NOTIFY_SENT) {
        ok = yyjson_mut_obj_add_str(doc, root, "error", delivery->error);
    }
    size_t length = 0;
    char *body = NULL;
    if (ok) {
        yyjson_mut_doc_set_root(doc, root);
        body = yyjson_mut_write(doc, 0, &length);
    }
    if (body == NULL) {
        LOG_WARN("notifier", "cannot record a delivery outcome; retried at the next start",
                 "key=%s error=%s", delivery->key, err_name(ERR_NOMEM));
        mem_free(record);
    } else {
        record->notifier = notifier;
        snprintf(record->key, sizeof record->key, "%s", delivery->key);
        record->next = notifier->records;
        if (record->next != NULL) record->next->previous = record;
        notifier->records = record;
        struct command command = {
            .kind = COMMAND_EVENT_APPEND,
            .user_id = delivery->user_id,
            .actor = "docket",
            .event_type = delivery->state == NOTIFY_SENT ? "notification.sent"
                                                         : "notification.failed",
            .subject = delivery->task_id,
            .body = body,
            .body_length = length,
        };
        service_execute(notifier->options.service, &command, notifier_recorded, record);
    }
    free(body);
    yyjson_mut_doc_free(doc);
}

/* ---- the end of an attempt ----------------------------------------------------- */

static void notifier_dead_letter_done(void *arg, int status, const char *id) {
    (void)arg;
    if (status != 0) {
        LOG_WARN("notifier", "cannot put a delivery in the dead-letter queue", "error=%s",
                 err_name(status));
    } else {
        LOG_INFO("notifier", "delivery dead-lettered", "id=%s", id != NULL ? id : "");
    }
}

static void notifier_dead_letter(struct notifier *notifier, const struct notifier_attempt *attempt,
                                 const char *event_json) {
    if (notifier->options.deadletter == NULL) return;
    char item[256];
    snprintf(item, sizeof item, "{\"channel\":\"%s\",\"subscription_id\":\"%s\",\"task_id\":\"%s\"}",
             notify_channel_name(attempt->delivery.channel), attempt->delivery.subscription_id,
             attempt->delivery.task_id);
    struct deadletter_entry entry = {
        .consumer = NOTIFIER_CONSUMER,
        .key = attempt->delivery.key,
        .user_id = attempt->delivery.user_id,
        .event_json = event_json,
        .item_json = item,
        .error = attempt->delivery.error,
        .attempts = attempt->delivery.attempts,
    };
    int rc = deadletter_put(notifier->options.deadletter, &entry, notifier_dead_letter_done, NULL);
    if (rc != 0) notifier_dead_letter_done(NULL, rc, NULL);
}

static void notifier_attempt_unlink(struct notifier *notifier, struct notifier_attempt *attempt) {
    if (attempt->previous != NULL) attempt->previous->next = attempt->next;
    else notifier->attempts = attempt->next;
    if (attempt->next != NULL) attempt->next->previous = attempt->previous;
    CHECK(notifier->stats.inflight > 0);
    notifier->stats.inflight--;
}

/* Stores the attempt's final or retry state and does what follows from it. */
static void notifier_settle(struct notifier *notifier, struct notifier_attempt *attempt) {
    struct notify_delivery *delivery = &attempt->delivery;
    int64_t now_ns = notifier_now_ns(notifier);
    int rc = notify_store_update(notifier->options.notify_db, delivery, now_ns);
    if (rc != 0) {
        LOG_WARN("notifier", "cannot store a delivery's state", "key=%s error=%s", delivery->key,
                 err_name(rc));
    }
    notifier->stats.outcomes[delivery->channel][delivery->state]++;
    if (delivery->state == NOTIFY_RETRY) {
        notifier->backlog++;
        return;
    }
    if (delivery->state == NOTIFY_DEAD) { /* a failed redrive round is a new entry */
        const char *event = yyjson_val_write(yyjson_doc_get_root(attempt->reminder.doc), 0, NULL);
        notifier_dead_letter(notifier, attempt, event != NULL ? event : "{}");
        free((void *)event);
    }
    if (delivery->redrive_id[0] != '\0') { /* the answer to a redrive: said once */
        if (notifier->options.deadletter != NULL) {
            deadletter_resolve(notifier->options.deadletter, delivery->redrive_id,
                               delivery->state == NOTIFY_SENT);
        }
        delivery->redrive_id[0] = '\0';
        notify_store_update(notifier->options.notify_db, delivery, now_ns);
    }
    if (delivery->state != NOTIFY_SKIPPED) notifier_record(notifier, delivery);
}

void notifier_attempt_done(struct notifier_attempt *attempt, enum notifier_outcome outcome,
                           const char *error) {
    CHECK(attempt != NULL && outcome >= 0 && outcome < NOTIFIER_OUTCOME_COUNT);
    struct notifier *notifier = attempt->notifier;
    if (notifier != NULL) {
        notifier_attempt_unlink(notifier, attempt);
        struct notify_delivery *delivery = &attempt->delivery;
        if (outcome == NOTIFIER_SENT || outcome == NOTIFIER_SKIPPED) {
            delivery->state = outcome == NOTIFIER_SENT ? NOTIFY_SENT : NOTIFY_SKIPPED;
            delivery->error[0] = '\0';
            delivery->next_ns = 0;
        } else {
            notify_delivery_failed(delivery, &notifier->options.policy,
                                   outcome == NOTIFIER_PERMANENT, error, notifier_now_ns(notifier));
            char quoted[600];
            LOG_INFO("notifier", "delivery attempt failed", "key=%s attempts=%d state=%s error=%s",
                     delivery->key, delivery->attempts, notify_state_name(delivery->state),
                     logger_quote(delivery->error, quoted, sizeof quoted));
        }
        notifier_settle(notifier, attempt);
    }
    notify_reminder_free(&attempt->reminder);
    mem_free(attempt);
    if (notifier != NULL) notifier_pump(notifier);
}

/* ---- starting an attempt ----------------------------------------------------- */

static void notifier_websocket(struct notifier *notifier, struct notifier_attempt *attempt) {
    struct buf message;
    buf_init(&message, 1024 * 1024);
    int rc = notify_render_websocket(&attempt->reminder, &message);
    size_t taken = 0;
    if (rc == 0 && notifier->options.hub != NULL) {
        taken = hub_send_user(notifier->options.hub, attempt->delivery.user_id, message.data,
                              message.length);
    }
    buf_free(&message);
    if (rc != 0) notifier_attempt_done(attempt, NOTIFIER_RETRY, err_str(rc));
    else notifier_attempt_done(attempt, taken > 0 ? NOTIFIER_SENT : NOTIFIER_SKIPPED, NULL);
}

/* The channel is off or the user turned it off since the delivery was made. */
static const char *notifier_channel_off(const struct notifier *notifier,
                                        const struct notifier_attempt *attempt) {
    const struct notify_settings *settings = &attempt->settings;
    switch (attempt->delivery.channel) {
    case NOTIFY_WEBSOCKET: return NULL;
    case NOTIFY_EMAIL:
        if (!settings->email_enabled) return "e-mail was turned off by the user";
        break;
    case NOTIFY_WEBPUSH:
        if (!settings->webpush_enabled) return "Web Push was turned off by the user";
        break;
    case NOTIFY_WEBHOOK:
        if (!settings->webhook_enabled) return "the webhook was turned off by the user";
        break;
    default: return "unknown channel";
    }
    if (notifier->options.channels[attempt->delivery.channel].start == NULL) {
        return "this channel is not available on this server";
    }
    return NULL;
}

/* Marks the row "sending" (committed) and hands it to its channel. */
static int notifier_start(struct notifier *notifier, const char *key) {
    struct notifier_attempt *attempt = mem_calloc(1, sizeof *attempt);
    if (attempt == NULL) return ERR_NOMEM;
    struct buf event;
    buf_init(&event, 4 * 1024 * 1024);
    struct notify_delivery *delivery = &attempt->delivery;
    int rc = notify_store_get(notifier->options.notify_db, key, delivery, &event);
    if (rc == 0 && delivery->state != NOTIFY_PENDING && delivery->state != NOTIFY_RETRY) {
        rc = ERR_CONFLICT;
    }
    if (rc == 0) rc = notify_reminder_parse(event.data, event.length, &attempt->reminder);
    if (rc == 0) {
        struct user_record user;
        int found = query_user_by_id(notifier->options.db, delivery->user_id, &user);
        if (found == 0) notify_settings_from_user(user.settings, strlen(user.settings),
                                                  &attempt->settings);
        else notify_settings_default(&attempt->settings);
        delivery->state = NOTIFY_SENDING;
        delivery->attempts++;
        rc = notify_store_update(notifier->options.notify_db, delivery, notifier_now_ns(notifier));
    }
    buf_free(&event);
    if (rc != 0) {
        notify_reminder_free(&attempt->reminder);
        mem_free(attempt);
        return rc;
    }
    /* From here on the row says "sending": whatever happens, it is not sent twice. */
    notifier->backlog = notifier->backlog > 0 ? notifier->backlog - 1 : 0;
    attempt->notifier = notifier;
    attempt->next = notifier->attempts;
    if (attempt->next != NULL) attempt->next->previous = attempt;
    notifier->attempts = attempt;
    notifier->stats.inflight++;
    notifier->stats.attempts++;
    const char *off = notifier_channel_off(notifier, attempt);
    if (off != NULL) {
        notifier_attempt_done(attempt, NOTIFIER_PERMANENT, off);
    } else if (delivery->channel == NOTIFY_WEBSOCKET) {
        notifier_websocket(notifier, attempt);
    } else {
        const struct notifier_channel *channel = &notifier->options.channels[delivery->channel];
        attempt->channel_arg = channel->arg;
        bool permanent = false;
        char error[NOTIFY_ERROR_BYTES] = "";
        rc = channel->start(channel->arg, attempt, &permanent, error, sizeof error);
        if (rc != 0) {
            if (error[0] == '\0') snprintf(error, sizeof error, "%s", err_str(rc));
            notifier_attempt_done(attempt, permanent ? NOTIFIER_PERMANENT : NOTIFIER_RETRY, error);
        }
    }
    return 0;
}

/* ---- the pump ------------------------------------------------------------------ */

struct notifier_due {
    struct notifier *notifier;                           /* owner */
    char keys[NOTIFIER_PUMP_BATCH][NOTIFY_DELIVERY_KEY_BYTES]; /* due keys */
    size_t count;                                        /* entries used */
};

static void notifier_due_each(void *arg, const char *key) {
    struct notifier_due *due = arg;
    CHECK(due->count < NOTIFIER_PUMP_BATCH);
    snprintf(due->keys[due->count++], NOTIFY_DELIVERY_KEY_BYTES, "%s", key);
}

static void notifier_on_timer(uv_timer_t *timer) {
    notifier_pump(timer->data);
}

static void notifier_arm(struct notifier *notifier) {
    if (!notifier->timer_open) return;
    int64_t next_ns = notify_store_next_due(notifier->options.notify_db);
    if (next_ns == INT64_MAX || notifier->stats.inflight >= notifier->options.max_inflight) {
        uv_timer_stop(&notifier->timer);
        return;
    }
    int64_t wait_ns = next_ns - notifier_now_ns(notifier);
    uint64_t wait_ms = wait_ns <= 0 ? 0 : (uint64_t)((wait_ns + 999999) / 1000000);
    uv_timer_start(&notifier->timer, notifier_on_timer, wait_ms, 0);
}

static void notifier_answer_redrives(struct notifier *notifier) {
    while (notifier->answer_count > 0) {
        struct notifier_answer answer = notifier->answers[--notifier->answer_count];
        if (notifier->options.deadletter != NULL) {
            deadletter_resolve(notifier->options.deadletter, answer.id, answer.succeeded);
        }
    }
}

static int notifier_read(struct notifier *notifier);

/* Starts due deliveries up to max_inflight; then reads more of the log if
 * it had stopped for room; then arms the timer. Re-entrant calls (an attempt
 * that ends at once) only ask for another pass. */
static void notifier_pump(struct notifier *notifier) {
    if (notifier->pumping) {
        notifier->pump_again = true;
        return;
    }
    notifier->pumping = true;
    notifier_answer_redrives(notifier);
    for (size_t pass = 0; pass < 1024; pass++) {
        notifier->pump_again = false;
        size_t room = notifier->options.max_inflight - notifier->stats.inflight;
        if (notifier->stats.inflight >= notifier->options.max_inflight) room = 0;
        struct notifier_due due = {.notifier = notifier, .count = 0};
        if (room > 0) {
            int found = notify_store_due(notifier->options.notify_db, notifier_now_ns(notifier),
                                         room < NOTIFIER_PUMP_BATCH ? room : NOTIFIER_PUMP_BATCH,
                                         notifier_due_each, &due);
            if (found < 0) break;
        }
        for (size_t index = 0; index < due.count; index++) {
            int rc = notifier_start(notifier, due.keys[index]);
            if (rc != 0 && rc != ERR_CONFLICT) {
                LOG_WARN("notifier", "cannot start a delivery", "key=%s error=%s",
                         due.keys[index], err_name(rc));
            }
        }
        if (!notifier->reading && notifier->offset < notifier->applied_end &&
            notifier->backlog < (int64_t)notifier->options.max_inflight) {
            uint64_t created = notifier->stats.created;
            notifier_read(notifier);
            if (notifier->stats.created != created) notifier->pump_again = true;
        }
        if (!notifier->pump_again && due.count < NOTIFIER_PUMP_BATCH) break;
    }
    notifier->pumping = false;
    notifier_arm(notifier);
}

/* ---- creating deliveries ------------------------------------------------------- */

static void notifier_create(struct notifier *notifier, const struct notify_reminder *reminder,
                            enum notify_channel channel, const char *subscription_id,
                            const char *event_json, size_t event_length) {
    struct notify_delivery delivery;
    memset(&delivery, 0, sizeof delivery);
    int rc = notify_delivery_key(reminder->key, channel, subscription_id, delivery.key);
    if (rc != 0) return;
    snprintf(delivery.reminder_key, sizeof delivery.reminder_key, "%s", reminder->key);
    delivery.channel = channel;
    snprintf(delivery.subscription_id, sizeof delivery.subscription_id, "%s",
             subscription_id != NULL ? subscription_id : "");
    snprintf(delivery.user_id, sizeof delivery.user_id, "%s", reminder->user_id);
    snprintf(delivery.task_id, sizeof delivery.task_id, "%s", reminder->task_id);
    delivery.state = NOTIFY_PENDING;
    int64_t now_ns = notifier_now_ns(notifier);
    delivery.next_ns = now_ns;
    rc = notify_store_create(notifier->options.notify_db, &delivery, event_json, event_length,
                             now_ns);
    if (rc == 0) {
        notifier->stats.created++;
        notifier->backlog++;
    } else if (rc == ERR_EXISTS) {
        notifier->stats.duplicates++;
    } else {
        LOG_WARN("notifier", "cannot create a delivery", "key=%s error=%s", delivery.key,
                 err_name(rc));
    }
}

/* One delivery per enabled channel of the owner (per subscription for push). */
static void notifier_handle(struct notifier *notifier, const char *event_json, size_t length) {
    struct notify_reminder reminder;
    int rc = notify_reminder_parse(event_json, length, &reminder);
    if (rc != 0) {
        LOG_WARN("notifier", "reminder event skipped", "error=%s", err_name(rc));
        return;
    }
    notifier->stats.reminders++;
    struct notify_settings settings;
    struct user_record user;
    if (query_user_by_id(notifier->options.db, reminder.user_id, &user) == 0) {
        notify_settings_from_user(user.settings, strlen(user.settings), &settings);
    } else {
        notify_settings_default(&settings);
    }
    if (settings.websocket_enabled) {
        notifier_create(notifier, &reminder, NOTIFY_WEBSOCKET, NULL, event_json, length);
    }
    if (settings.email_enabled && settings.email_address[0] != '\0') {
        notifier_create(notifier, &reminder, NOTIFY_EMAIL, NULL, event_json, length);
    }
    if (settings.webpush_enabled && notifier->options.subscriptions != NULL) {
        char ids[NOTIFIER_SUBSCRIPTIONS_MAX][UUID_STRING_BYTES];
        int count = notifier->options.subscriptions(notifier->options.subscriptions_arg,
                                                    reminder.user_id, ids,
                                                    NOTIFIER_SUBSCRIPTIONS_MAX);
        for (int index = 0; index < count; index++) {
            notifier_create(notifier, &reminder, NOTIFY_WEBPUSH, ids[index], event_json, length);
        }
    }
    if (settings.webhook_enabled && settings.webhook_url[0] != '\0') {
        notifier_create(notifier, &reminder, NOTIFY_WEBHOOK, NULL, event_json, length);
    }
    notify_reminder_free(&reminder);
}

/* ---- reading the log -------------------------------------------------------------- */

static void notifier_cursor_close(struct notifier *notifier) {
    if (!notifier->cursor_open) return;
    evlog_cursor_close(&notifier->cursor);
    notifier->cursor_open = false;
}

static int notifier_cursor_open(struct notifier *notifier) {
    int rc = evlog_cursor_open(&notifier->cursor, notifier->options.topic, notifier->offset);
    if (rc == ERR_RANGE) {
        int64_t start = evlog_topic_start_offset(notifier->options.topic);
        if (start <= notifier->offset) return rc;
        LOG_WARN("notifier", "log retention passed the notifier; reminders in between are lost",
                 "from=%lld to=%lld", (long long)notifier->offset, (long long)start);
        notifier->offset = start;
        rc = evlog_cursor_open(&notifier->cursor, notifier->options.topic, notifier->offset);
    }
    if (rc == 0) notifier->cursor_open = true;
    return rc;
}

/* Bounded: each pass reads one record; stops when full. */
static int notifier_read(struct notifier *notifier) {
    static const char marker[] = "\"type\":\"reminder.triggered\"";
    int rc = 0;
    notifier->reading = true;
    while (notifier->offset < notifier->applied_end &&
           notifier->backlog < (int64_t)notifier->options.max_inflight) {
        if (!notifier->cursor_open && (rc = notifier_cursor_open(notifier)) != 0) break;
        struct evlog_record record;
        rc = evlog_cursor_next(&notifier->cursor, &record);
        if (rc == ERR_AGAIN) {
            rc = 0;
            break;
        }
        if (rc != 0) {
            notifier_cursor_close(notifier);
            break;
        }
        CHECK(record.offset == notifier->offset);
        notifier->offset = record.offset + 1;
        notifier->stats.events_read++;
        if (memmem(record.value, record.value_bytes, marker, sizeof marker - 1) != NULL) {
            notifier_handle(notifier, (const char *)record.value, record.value_bytes);
        }
    }
    notifier->reading = false;
    return rc;
}

int notifier_advance(struct notifier *notifier, int64_t applied_end) {
    CHECK(notifier != NULL);
    if (applied_end > notifier->applied_end) notifier->applied_end = applied_end;
    int rc = notifier_read(notifier);
    notifier_pump(notifier);
    return rc;
}

int64_t notifier_offset(const struct notifier *notifier) {
    return notifier->offset;
}

const struct notifier_stats *notifier_stats(const struct notifier *notifier) {
    return &notifier->stats;
}

/* ---- redrive --------------------------------------------------------------------- */

int notifier_redrive(void *arg, const struct deadletter_entry *entry) {
    struct notifier *notifier = arg;
    CHECK(notifier != NULL && entry != NULL && entry->key != NULL && entry->id != NULL);
    struct notify_delivery delivery;
    int rc = notify_store_get(notifier->options.notify_db, entry->key, &delivery, NULL);
    if (rc != 0) return rc;
    if (delivery.state == NOTIFY_SENT) { /* delivered meanwhile: success, nothing sent */
        if (notifier->answer_count >= NOTIFIER_REDRIVES_MAX) return ERR_BUSY;
        struct notifier_answer *answer = &notifier->answers[notifier->answer_count++];
        snprintf(answer->id, sizeof answer->id, "%s", entry->id);
        answer->succeeded = true;
    } else if (delivery.state == NOTIFY_SENDING) {
        return ERR_BUSY;
    } else {
        delivery.state = NOTIFY_PENDING;
        delivery.attempts = 0;
        delivery.next_ns = notifier_now_ns(notifier);
        delivery.error[0] = '\0';
        delivery.recorded = false;
        snprintf(delivery.redrive_id, sizeof delivery.redrive_id, "%s", entry->id);
        rc = notify_store_update(notifier->options.notify_db, &delivery, delivery.next_ns);
        if (rc != 0) return rc;
        notifier->backlog++;
    }
    if (notifier->timer_open) uv_timer_start(&notifier->timer, notifier_on_timer, 0, 0);
    return 0;
}

/* ---- open and close ------------------------------------------------------------------ */

struct notifier_keys {
    char keys[NOTIFIER_RECORD_BATCH][NOTIFY_DELIVERY_KEY_BYTES]; /* listed keys */
    size_t count;                                               /* entries used */
};

static void notifier_keys_each(void *arg, const char *key) {
    struct notifier_keys *keys = arg;
    CHECK(keys->count < NOTIFIER_RECORD_BATCH);
    snprintf(keys->keys[keys->count++], NOTIFY_DELIVERY_KEY_BYTES, "%s", key);
}

/* Deliveries whose outcome event was not appended before the last stop. */
static void notifier_record_leftovers(struct notifier *notifier) {
    struct notifier_keys keys = {.count = 0};
    int found = notify_store_unrecorded(notifier->options.notify_db, NOTIFIER_RECORD_BATCH,
                                        notifier_keys_each, &keys);
    for (int index = 0; index < found; index++) {
        struct notify_delivery delivery;
        if (notify_store_get(notifier->options.notify_db, keys.keys[index], &delivery, NULL) == 0) {
            notifier_record(notifier, &delivery);
        }
    }
}

int notifier_open(struct notifier **out, const struct notifier_options *options) {
    CHECK(out != NULL && options != NULL);
    *out = NULL;
    if (options->clock == NULL || options->topic == NULL || options->db == NULL ||
        options->notify_db == NULL || options->max_inflight == 0 || options->start_offset < 0) {
        return ERR_INVAL;
    }
    struct notifier *notifier = mem_calloc(1, sizeof *notifier);
    if (notifier == NULL) return ERR_NOMEM;
    notifier->options = *options;
    notifier->offset = options->start_offset;
    notifier->applied_end = options->start_offset;
    int64_t abandoned = notify_store_abandon_sending(options->notify_db, notifier_now_ns(notifier));
    int64_t pending = notify_store_count(options->notify_db, NOTIFY_PENDING);
    int64_t retry = notify_store_count(options->notify_db, NOTIFY_RETRY);
    if (abandoned < 0 || pending < 0 || retry < 0) {
        mem_free(notifier);
        return ERR_IO;
    }
    if (abandoned > 0) {
        LOG_WARN("notifier", "deliveries interrupted by the last stop are not sent again",
                 "count=%lld error=\"%s\"", (long long)abandoned, NOTIFY_OUTCOME_UNKNOWN);
    }
    notifier->stats.abandoned = (uint64_t)abandoned;
    notifier->backlog = pending + retry;
    if (options->loop != NULL) {
        uv_timer_init(options->loop, &notifier->timer);
        uv_unref((uv_handle_t *)&notifier->timer); /* never keeps a stopping server alive */
        notifier->timer.data = notifier;
        notifier->timer_open = true;
    }
    if (options->deadletter != NULL) {
        int rc = deadletter_register(options->deadletter, NOTIFIER_CONSUMER, notifier_redrive,
                                     notifier);
        if (rc != 0) LOG_WARN("notifier", "cannot register redrives", "error=%s", err_name(rc));
    }
    notifier_record_leftovers(notifier);
    *out = notifier;
    notifier_pump(notifier);
    return 0;
}

static void notifier_timer_closed(uv_handle_t *handle) {
    mem_free(handle->data);
}

void notifier_close(struct notifier *notifier) {
    if (notifier == NULL) return;
    notifier_cursor_close(notifier);
    for (struct notifier_attempt *attempt = notifier->attempts; attempt != NULL;
         attempt = attempt->next) {
        attempt->notifier = NULL;
    }
    for (struct notifier_record *record = notifier->records; record != NULL;
         record = record->next) {
        record->notifier = NULL;
    }
    if (notifier->timer_open) {
        uv_timer_stop(&notifier->timer);
        uv_close((uv_handle_t *)&notifier->timer, notifier_timer_closed);
    } else {
        mem_free(notifier);
    }
}
