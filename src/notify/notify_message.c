/*
 * notify_message.c - reading a reminder.triggered event and rendering each
 * channel's message from it (see notify_message.h).
 */
#include "notify_message.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/timefmt.h"
#include "../tasks/zoneinfo.h"

#include <mbedtls/md.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yyjson.h>

static const char *const notify_channel_names[NOTIFY_CHANNEL_COUNT] = {"websocket", "email",
                                                                      "webpush", "webhook"};

const char *notify_channel_name(enum notify_channel channel) {
    CHECK(channel >= 0 && channel < NOTIFY_CHANNEL_COUNT);
    return notify_channel_names[channel];
}

int notify_channel_from_name(const char *name) {
    for (int channel = 0; name != NULL && channel < NOTIFY_CHANNEL_COUNT; channel++) {
        if (strcmp(notify_channel_names[channel], name) == 0) return channel;
    }
    return -1;
}

/* ---- the event ------------------------------------------------------------ */

static const char *notify_str(yyjson_val *object, const char *name) {
    return yyjson_get_str(yyjson_obj_get(object, name));
}

int notify_reminder_parse(const char *event_json, size_t length, struct notify_reminder *out) {
    CHECK(event_json != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    yyjson_doc *doc = yyjson_read(event_json, length, 0);
    if (doc == NULL) return ERR_PARSE;
    yyjson_val *root = yyjson_doc_get_root(doc);
    yyjson_val *data = yyjson_obj_get(root, "data");
    const char *type = notify_str(root, "type");
    out->doc = doc;
    out->user_id = notify_str(root, "userid");
    out->task_id = notify_str(root, "subject");
    out->key = notify_str(data, "key");
    out->task = yyjson_obj_get(data, "task");
    out->reminder = yyjson_obj_get(data, "reminder");
    out->title = notify_str(out->task, "title");
    out->description = notify_str(out->task, "description");
    out->due = notify_str(out->task, "due");
    out->timezone = notify_str(out->task, "timezone");
    out->at = notify_str(out->reminder, "at");
    out->fired_at = notify_str(data, "fired_at");
    if (type == NULL || strcmp(type, "reminder.triggered") != 0 || out->user_id == NULL ||
        out->task_id == NULL || out->key == NULL || out->key[0] == '\0' ||
        strlen(out->key) >= NOTIFY_REMINDER_KEY_BYTES || out->title == NULL ||
        !yyjson_is_obj(out->task) || !yyjson_is_obj(out->reminder)) {
        notify_reminder_free(out);
        return ERR_INVAL;
    }
    if (out->description == NULL) out->description = "";
    if (out->timezone == NULL) out->timezone = "UTC";
    if (out->fired_at == NULL) out->fired_at = "";
    return 0;
}

void notify_reminder_free(struct notify_reminder *reminder) {
    if (reminder == NULL) return;
    yyjson_doc_free(reminder->doc);
    memset(reminder, 0, sizeof *reminder);
}

/* ---- keys ---------------------------------------------------------------- */

int notify_delivery_key(const char *reminder_key, enum notify_channel channel,
                        const char *subscription_id, char out[NOTIFY_DELIVERY_KEY_BYTES]) {
    CHECK(reminder_key != NULL && out != NULL);
    int length = subscription_id != NULL
                     ? snprintf(out, NOTIFY_DELIVERY_KEY_BYTES, "%s/%s/%s", reminder_key,
                                notify_channel_name(channel), subscription_id)
                     : snprintf(out, NOTIFY_DELIVERY_KEY_BYTES, "%s/%s", reminder_key,
                                notify_channel_name(channel));
    if (length < 0 || length >= NOTIFY_DELIVERY_KEY_BYTES) {
        out[0] = '\0';
        return ERR_LIMIT;
    }
    return 0;
}

void notify_message_id(const char *delivery_key, char out[NOTIFY_MESSAGE_ID_BYTES]) {
    uint8_t digest[32];
    int rc = mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                        (const unsigned char *)delivery_key, strlen(delivery_key), digest);
    CHECK(rc == 0);
    static const char hex[] = "0123456789abcdef";
    char text[33];
    for (size_t index = 0; index < 16; index++) {
        text[2 * index] = hex[digest[index] >> 4];
        text[2 * index + 1] = hex[digest[index] & 15];
    }
    text[32] = '\0';
    snprintf(out, NOTIFY_MESSAGE_ID_BYTES, "<%s@docket>", text);
}

/* ---- rendering ------------------------------------------------------------- */

/* Writes `doc` (root set) into `out`. */
static int notify_write(yyjson_mut_doc *doc, struct buf *out) {
    size_t length = 0;
    char *text = yyjson_mut_write(doc, 0, &length);
    int rc = text == NULL ? ERR_NOMEM : buf_append(out, text, length);
    free(text);
    return rc;
}

/* {<data.reminder members>, "key", "fired_at"} */
static yyjson_mut_val *notify_reminder_object(const struct notify_reminder *reminder,
                                              yyjson_mut_doc *doc) {
    yyjson_mut_val *object = yyjson_val_mut_copy(doc, reminder->reminder);
    if (object == NULL) return NULL;
    yyjson_mut_obj_remove_key(object, "key");
    yyjson_mut_obj_remove_key(object, "fired_at");
    bool ok = yyjson_mut_obj_add_str(doc, object, "key", reminder->key) &&
              yyjson_mut_obj_add_str(doc, object, "fired_at", reminder->fired_at);
    return ok ? object : NULL;
}

static int notify_render_common(const struct notify_reminder *reminder, const char *delivery_key,
                                struct buf *out) {
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    if (doc == NULL) return ERR_NOMEM;
    yyjson_mut_val *root = yyjson_mut_obj(doc);
    bool ok = root != NULL && yyjson_mut_obj_add_str(doc, root, "type", "reminder");
    if (ok && delivery_key != NULL) ok = yyjson_mut_obj_add_str(doc, root, "delivery", delivery_key);
    yyjson_mut_val *task = ok ? yyjson_val_mut_copy(doc, reminder->task) : NULL;
    yyjson_mut_val *object = ok ? notify_reminder_object(reminder, doc) : NULL;
    ok = task != NULL && object != NULL && yyjson_mut_obj_add_val(doc, root, "task", task) &&
         yyjson_mut_obj_add_val(doc, root, "reminder", object);
    int rc = ERR_NOMEM;
    if (ok) {
        yyjson_mut_doc_set_root(doc, root);
        rc = notify_write(doc, out);
    }
    yyjson_mut_doc_free(doc);
    return rc;
}

int notify_render_websocket(const struct notify_reminder *reminder, struct buf *out) {
    CHECK(reminder != NULL && reminder->doc != NULL && out != NULL);
    return notify_render_common(reminder, NULL, out);
}

int notify_render_webhook(const struct notify_reminder *reminder, const char *delivery_key,
                          struct buf *out) {
    CHECK(reminder != NULL && reminder->doc != NULL && delivery_key != NULL && out != NULL);
    return notify_render_common(reminder, delivery_key, out);
}

int notify_format_local(const char *due_rfc3339, const char *zone_name, char *out,
                        size_t out_size) {
    CHECK(due_rfc3339 != NULL && out != NULL && out_size > 0);
    int64_t due_ns = 0;
    const char *message = NULL;
    int rc = timefmt_time_parse(due_rfc3339, strlen(due_rfc3339), &due_ns, &message);
    if (rc != 0) return rc;
    int64_t due_s = due_ns / 1000000000;
    if (due_ns < 0 && due_ns % 1000000000 != 0) due_s--;
    struct zoneinfo zone;
    memset(&zone, 0, sizeof zone);
    struct zoneinfo_civil local;
    const char *name = zone_name != NULL ? zone_name : "UTC";
    rc = zoneinfo_load(name, &zone);
    if (rc == 0) rc = zoneinfo_utc_to_local(&zone, due_s, &local);
    zoneinfo_free(&zone);
    if (rc != 0) { /* an unknown zone still gets a correct time, in UTC */
        int64_t days = due_s >= 0 ? due_s / 86400 : (due_s - 86399) / 86400;
        int64_t second_of_day = due_s - days * 86400;
        timefmt_civil_from_days(days, &local.year, &local.month, &local.day);
        local.hour = (int)(second_of_day / 3600);
        local.minute = (int)(second_of_day / 60 % 60);
        name = "UTC";
    }
    int length = snprintf(out, out_size, "%04lld-%02d-%02d %02d:%02d %s", (long long)local.year,
                          local.month, local.day, local.hour, local.minute, name);
    return length < 0 || (size_t)length >= out_size ? ERR_LIMIT : 0;
}

int notify_render_email(const struct notify_reminder *reminder, struct buf *subject,
                        struct buf *body) {
    CHECK(reminder != NULL && reminder->doc != NULL && subject != NULL && body != NULL);
    int rc = buf_printf(subject, "Reminder: %s", reminder->title);
    if (rc == 0) rc = buf_printf(body, "%s\n\n", reminder->title);
    char when[128];
    if (rc == 0 && reminder->due != NULL &&
        notify_format_local(reminder->due, reminder->timezone, when, sizeof when) == 0) {
        rc = buf_printf(body, "Due: %s\n", when);
    }
    if (rc == 0 && reminder->description[0] != '\0') {
        rc = buf_printf(body, "\n%s\n", reminder->description);
    }
    return rc;
}

/* The longest prefix of `text` of at most `limit` bytes ending at a character
 * boundary (a UTF-8 continuation byte never starts the cut-off part). */
static size_t notify_utf8_cut(const char *text, size_t limit) {
    size_t length = strlen(text);
    if (length <= limit) return length;
    while (limit > 0 && ((unsigned char)text[limit] & 0xC0) == 0x80) limit--;
    return limit;
}

int notify_render_push(const struct notify_reminder *reminder, struct buf *out) {
    CHECK(reminder != NULL && reminder->doc != NULL && out != NULL);
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    if (doc == NULL) return ERR_NOMEM;
    yyjson_mut_val *root = yyjson_mut_obj(doc);
    size_t title_length = notify_utf8_cut(reminder->title, NOTIFY_PUSH_TITLE_BYTES_MAX);
    bool ok = root != NULL && yyjson_mut_obj_add_str(doc, root, "type", "reminder") &&
              yyjson_mut_obj_add_str(doc, root, "task_id", reminder->task_id) &&
              yyjson_mut_obj_add_strncpy(doc, root, "title", reminder->title, title_length) &&
              (reminder->due != NULL ? yyjson_mut_obj_add_str(doc, root, "due", reminder->due)
                                     : yyjson_mut_obj_add_null(doc, root, "due")) &&
              yyjson_mut_obj_add_str(doc, root, "key", reminder->key);
    int rc = ERR_NOMEM;
    if (ok) {
        yyjson_mut_doc_set_root(doc, root);
        size_t before = out->length;
        rc = notify_write(doc, out);
        /* 512 bytes of title escape to at most 3 KiB (\u00XX per control byte) */
        CHECK(rc != 0 || out->length - before <= NOTIFY_PUSH_PAYLOAD_BYTES_MAX);
    }
    yyjson_mut_doc_free(doc);
    return rc;
}
