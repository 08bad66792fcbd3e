/*
 * notify_message.h - what the notifier sends: a reminder.triggered event read
 * back, the delivery keys that deduplicate deliveries, and the message of each
 * channel (WebSocket, e-mail, Web Push payload, webhook body). Pure functions:
 * no I/O, so every byte a channel sends is unit-tested.
 *
 * Delivery key: "<reminder key>/<channel>" or, for Web Push, one per
 * subscription, "<reminder key>/webpush/<subscription id>". The reminder key
 * is the scheduler's "<task id>@<due instant as Unix ms>", so a key names one
 * (reminder, occurrence, channel) and a delivery is created at most once.
 */
#ifndef DOCKET_NOTIFY_NOTIFY_MESSAGE_H
#define DOCKET_NOTIFY_NOTIFY_MESSAGE_H

#include "../base/buf.h"
#include "../base/uuid.h"

#include <stddef.h>
#include <stdint.h>

struct yyjson_doc;
struct yyjson_val;

/* "<uuid>@<ms>" fits in 64 bytes; "/webpush/<uuid>" adds 45. */
#define NOTIFY_REMINDER_KEY_BYTES 64
#define NOTIFY_DELIVERY_KEY_BYTES 128
/* "<32 hex>@docket" in angle brackets, and a NUL. */
#define NOTIFY_MESSAGE_ID_BYTES 48
/* Title and description are cut to this many bytes in a push payload (the
 * payload must stay under WEBPUSH_PAYLOAD_MAX whatever the task holds). */
#define NOTIFY_PUSH_TITLE_BYTES_MAX 512
/* The Web Push payload's ceiling (webpush.h WEBPUSH_PAYLOAD_MAX). */
#define NOTIFY_PUSH_PAYLOAD_BYTES_MAX 3993

/* The channels, in the order deliveries are created. */
enum notify_channel {
    NOTIFY_WEBSOCKET = 0,
    NOTIFY_EMAIL = 1,
    NOTIFY_WEBPUSH = 2,
    NOTIFY_WEBHOOK = 3,
    NOTIFY_CHANNEL_COUNT = 4,
};

/* "websocket", "email", "webpush", "webhook". */
const char *notify_channel_name(enum notify_channel channel);
/* The channel of a name; -1 when unknown. */
int notify_channel_from_name(const char *name);

/* A reminder.triggered event read back. Strings point into `doc`. */
struct notify_reminder {
    struct yyjson_doc *doc;      /* the parsed event (owned) */
    const char *user_id;         /* the owner (CloudEvent userid) */
    const char *task_id;         /* the task (subject) */
    const char *key;             /* data.key: the (reminder, occurrence) identity */
    const char *title;           /* data.task.title */
    const char *description;     /* data.task.description ("" when absent) */
    const char *due;             /* data.task.due (NULL when the task has none) */
    const char *timezone;        /* data.task.timezone ("UTC" when absent) */
    const char *at;              /* data.reminder.at: when the reminder was due */
    const char *fired_at;        /* data.fired_at */
    struct yyjson_val *task;     /* data.task */
    struct yyjson_val *reminder; /* data.reminder */
};

/* Parses `event_json` (a CloudEvent). ERR_PARSE when it is not JSON,
 * ERR_INVAL when it is not a reminder.triggered with userid, subject,
 * data.key (at most NOTIFY_REMINDER_KEY_BYTES - 1), data.task.title and
 * data.reminder. On success release with notify_reminder_free. */
int notify_reminder_parse(const char *event_json, size_t length, struct notify_reminder *out);
void notify_reminder_free(struct notify_reminder *reminder);

/* Writes the delivery key ("<key>/<channel>[/<subscription>]"). 0 or ERR_LIMIT. */
int notify_delivery_key(const char *reminder_key, enum notify_channel channel,
                        const char *subscription_id, char out[NOTIFY_DELIVERY_KEY_BYTES]);

/* "<first 32 hex of SHA-256(delivery key)>@docket" in angle brackets: the
 * same on every attempt, so a receiver can spot a resend. */
void notify_message_id(const char *delivery_key, char out[NOTIFY_MESSAGE_ID_BYTES]);

/* {"type":"reminder","task":<task>,"reminder":{<data.reminder members>,
 * "key":...,"fired_at":...}} */
int notify_render_websocket(const struct notify_reminder *reminder, struct buf *out);

/* Subject "Reminder: <title>" and a text body: the title, the due time in
 * the task's time zone ("Due: 2026-11-24 09:00 Europe/Berlin"), the
 * description. */
int notify_render_email(const struct notify_reminder *reminder, struct buf *subject,
                        struct buf *body);

/* {"type":"reminder","task_id","title","due","key"}, title cut (at a
 * character boundary) so the payload fits NOTIFY_PUSH_PAYLOAD_BYTES_MAX. */
int notify_render_push(const struct notify_reminder *reminder, struct buf *out);

/* {"type":"reminder","delivery":<delivery key>,"task":<task>,"reminder":{...}} */
int notify_render_webhook(const struct notify_reminder *reminder, const char *delivery_key,
                          struct buf *out);

/* The due time of `due_rfc3339` on the wall clock of `timezone` as
 * "YYYY-MM-DD HH:MM <zone>" (UTC when the zone cannot be loaded). */
int notify_format_local(const char *due_rfc3339, const char *zone_name, char *out,
                        size_t out_size);

#endif
