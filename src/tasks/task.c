/*
 * task.c - the task model of task.h: request validation, patches, diffs,
 * the API object in both directions, and the fold of task events.
 *
 * Layers, top to bottom: memory and small helpers; text checks (UTF-8
 * character counts, control characters, blank titles); request parsing,
 * where every member of a body goes through one table of field parsers
 * that append precise errors instead of stopping at the first; patches and
 * diffs, which compare and copy field by field; the JSON forms, where one
 * writer and one lenient reader per field serve task_to_json,
 * task_from_json, task_diff and the fold of task.updated alike.
 *
 * Request parsing is strict (it is the API's gate), reading stored JSON is
 * lenient in what the rules may have tightened since the event was written
 * (a blank title, a zone the host no longer knows) but never in shape or
 * bounds, because what it returns is trusted by every consumer.
 */
#include "task.h"

#include "../base/json.h"
#include "../base/check.h"
#include "../base/err.h"
#include "../base/mem.h"
#include "../base/timefmt.h"
#include "recurrence.h"
#include "timezone.h"

#include <yyjson.h>

#include <stdio.h>
#include <string.h>

/* The default reminder of a task with a due date (API.md): 15 minutes. */
#define TASK_DEFAULT_REMINDER_S (15 * 60)

static const char task_message_time[] = "must be an RFC 3339 time, e.g. 2026-02-10T09:45:00Z";
static const char task_message_duration[] = "must be an ISO 8601 duration, e.g. PT15M or P1D";

/* ---- Memory, names, errors --------------------------------------------- */

static void task_free_tags(char **tags, size_t count) {
    for (size_t index = 0; index < count; index++) mem_free(tags[index]);
    mem_free(tags);
}

void task_free(struct task *task) {
    if (task == NULL) return;
    mem_free(task->title);
    mem_free(task->description);
    task_free_tags(task->tags, task->tag_count);
    mem_free(task->reminders);
    memset(task, 0, sizeof *task);
}

/* Deep copies of the owned parts; on failure the destination is left empty. */
static int task_copy_tags(char ***out, size_t *out_count, char *const *tags, size_t count) {
    *out = NULL;
    *out_count = 0;
    if (count == 0) return 0;
    char **copy = mem_calloc(count, sizeof *copy);
    if (copy == NULL) return ERR_NOMEM;
    for (size_t index = 0; index < count; index++) {
        copy[index] = mem_strdup(tags[index]);
        if (copy[index] == NULL) {
            task_free_tags(copy, index);
            return ERR_NOMEM;
        }
    }
    *out = copy;
    *out_count = count;
    return 0;
}

static int task_copy_reminders(struct task_reminder **out, size_t *out_count,
                               const struct task_reminder *reminders, size_t count) {
    *out = NULL;
    *out_count = 0;
    if (count == 0) return 0;
    struct task_reminder *copy = mem_calloc(count, sizeof *copy);
    if (copy == NULL) return ERR_NOMEM;
    memcpy(copy, reminders, count * sizeof *copy);
    *out = copy;
    *out_count = count;
    return 0;
}

/* Replaces *slot with a copy of `text` (NULL copies as NULL). */
static int task_replace_string(char **slot, const char *text) {
    char *copy = NULL;
    if (text != NULL && (copy = mem_strdup(text)) == NULL) return ERR_NOMEM;
    mem_free(*slot);
    *slot = copy;
    return 0;
}

int task_copy(struct task *out, const struct task *from) {
    CHECK(out != NULL && from != NULL && out != from);
    memcpy(out, from, sizeof *out);
    out->title = NULL;
    out->description = NULL;
    out->tags = NULL;
    out->tag_count = 0;
    out->reminders = NULL;
    out->reminder_count = 0;
    if (task_replace_string(&out->title, from->title) != 0) goto fail;
    if (task_replace_string(&out->description, from->description) != 0) goto fail;
    if (task_copy_tags(&out->tags, &out->tag_count, from->tags, from->tag_count) != 0) goto fail;
    if (task_copy_reminders(&out->reminders, &out->reminder_count, from->reminders,
                            from->reminder_count) != 0) {
        goto fail;
    }
    return 0;
fail:
    task_free(out);
    return ERR_NOMEM;
}

static const char *const task_priority_names[] = {"low", "medium", "high", "urgent"};
static const char *const task_recurrence_from_names[] = {"due", "completion", "schedule"};

/* Index of `text` in `names`, or -1. */
static int task_name_index(const char *const *names, int count, const char *text, size_t length) {
    if (text == NULL) return -1;
    for (int index = 0; index < count; index++) {
        if (strlen(names[index]) == length && memcmp(names[index], text, length) == 0) {
            return index;
        }
    }
    return -1;
}

const char *task_priority_name(enum task_priority priority) {
    if ((unsigned)priority > TASK_PRIORITY_URGENT) return "medium";
    return task_priority_names[priority];
}

int task_priority_parse(const char *text, size_t length) {
    return task_name_index(task_priority_names, 4, text, length);
}

const char *task_recurrence_from_name(enum task_recurrence_from from) {
    if ((unsigned)from > TASK_RECURRENCE_FROM_SCHEDULE) return "due";
    return task_recurrence_from_names[from];
}

int task_recurrence_from_parse(const char *text, size_t length) {
    return task_name_index(task_recurrence_from_names, 3, text, length);
}

void task_errors_add(struct task_errors *errors, const char *field, const char *message) {
    CHECK(errors != NULL && field != NULL && message != NULL);
    if (errors->count < TASK_ERRORS_MAX) {
        struct task_error *error = &errors->items[errors->count];
        snprintf(error->field, sizeof error->field, "%s", field);
        snprintf(error->message, sizeof error->message, "%s", message);
    }
    errors->count++;
}

/* Records an error and returns 0: a field error is not a failure of the
 * parser, which goes on to find the others. */
static int task_reject(struct task_errors *errors, const char *field, const char *message) {
    task_errors_add(errors, field, message);
    return 0;
}

/* ---- Text checks --------------------------------------------------------- */
/* Input strings come from yyjson, which has rejected invalid UTF-8, so
 * these walk well-formed sequences. */

/* Characters (code points) of valid UTF-8: bytes that do not continue one. */
static size_t task_utf8_characters(const char *text, size_t length) {
    size_t characters = 0;
    for (size_t index = 0; index < length; index++) {
        if (((unsigned char)text[index] & 0xC0) != 0x80) characters++;
    }
    return characters;
}

/* True when a byte is U+0000..U+001F (never part of a longer sequence),
 * other than the ones `allowed` lists. */
static bool task_has_control(const char *text, size_t length, const char *allowed) {
    for (size_t index = 0; index < length; index++) {
        unsigned char byte = (unsigned char)text[index];
        if (byte < 0x20 && (allowed == NULL || byte == 0 || strchr(allowed, byte) == NULL)) {
            return true;
        }
    }
    return false;
}

/* Decodes the code point at text[*index] and advances past it. */
static uint32_t task_utf8_next(const char *text, size_t length, size_t *index) {
    const unsigned char *bytes = (const unsigned char *)text;
    uint32_t point = bytes[*index];
    size_t extra = point >= 0xF0 ? 3 : point >= 0xE0 ? 2 : point >= 0xC0 ? 1 : 0;
    if (extra > 0) point &= 0x3F >> extra;
    (*index)++;
    for (size_t count = 0; count < extra && *index < length; count++) {
        point = (point << 6) | (bytes[(*index)++] & 0x3F);
    }
    return point;
}

/* Unicode White_Space (Zs and the line separators) plus zero-width spaces
 * and the BOM, which render as nothing. Controls are rejected earlier. */
static bool task_is_space(uint32_t point) {
    return point == 0x20 || point == 0x85 || point == 0xA0 || point == 0x1680 ||
           point == 0x180E || (point >= 0x2000 && point <= 0x200B) || point == 0x2028 ||
           point == 0x2029 || point == 0x202F || point == 0x205F || point == 0x3000 ||
           point == 0xFEFF;
}

static bool task_is_blank(const char *text, size_t length) {
    size_t index = 0;
    while (index < length) {
        if (!task_is_space(task_utf8_next(text, length, &index))) return false;
    }
    return true;
}

/* Writes "prefix.name" (or "name" when prefix is NULL) into a field path,
 * cutting the name at a character boundary if the path would overflow. */
static void task_path(char out[64], const char *prefix, const char *name, size_t length) {
    size_t used = 0;
    if (prefix != NULL) used = (size_t)snprintf(out, 64, "%s.", prefix);
    CHECK(used < 64);
    size_t room = 63 - used;
    if (length > room) {
        length = room;
        while (length > 0 && ((unsigned char)name[length] & 0xC0) == 0x80) length--;
    }
    memcpy(out + used, name, length);
    out[used + length] = '\0';
}

/* ---- Request bodies ------------------------------------------------------ */

/* Reads a body that must be a JSON object. ERR_PARSE with one error of
 * field "" saying why, or ERR_NOMEM. */
static int task_body_read(const char *body, size_t length, yyjson_doc **out,
                          struct task_errors *errors) {
    char message[160];
    if (body == NULL) length = 0;
    if (!json_depth_ok(body, length, TASK_JSON_DEPTH_MAX)) {
        snprintf(message, sizeof message,
                 "the body nests arrays and objects more than %d levels deep",
                 TASK_JSON_DEPTH_MAX);
        task_errors_add(errors, "", message);
        return ERR_PARSE;
    }
    yyjson_read_err error;
    yyjson_doc *document = yyjson_read_opts((char *)(length == 0 ? "" : body), length,
                                            YYJSON_READ_NOFLAG, &json_allocator, &error);
    if (document == NULL) {
        if (error.code == YYJSON_READ_ERROR_MEMORY_ALLOCATION) return ERR_NOMEM;
        snprintf(message, sizeof message, "the body is not valid JSON: %s at byte %zu",
                 error.msg != NULL ? error.msg : "malformed", error.pos);
        task_errors_add(errors, "", message);
        return ERR_PARSE;
    }
    if (!yyjson_is_obj(yyjson_doc_get_root(document))) {
        yyjson_doc_free(document);
        task_errors_add(errors, "", "the body must be a JSON object");
        return ERR_PARSE;
    }
    *out = document;
    return 0;
}

/* A field parser stores the value in `out` or records errors; it returns
 * 0 either way and ERR_NOMEM only when it could not allocate. */
typedef int (*task_field_parser)(yyjson_val *value, const char *path, struct task *out,
                                 struct task_errors *errors);

static int task_parse_title(yyjson_val *value, const char *path, struct task *out,
                            struct task_errors *errors) {
    if (!yyjson_is_str(value)) return task_reject(errors, path, "must be a string");
    const char *text = yyjson_get_str(value);
    size_t length = yyjson_get_len(value);
    if (length == 0) return task_reject(errors, path, "must not be empty");
    if (task_has_control(text, length, NULL)) {
        return task_reject(errors, path, "must not contain control characters");
    }
    if (task_utf8_characters(text, length) > LIMIT_TASK_TITLE_CHARACTERS) {
        return task_reject(errors, path, "must be at most 500 characters");
    }
    if (task_is_blank(text, length)) return task_reject(errors, path, "must not be blank");
    out->title = mem_strndup(text, length);
    return out->title == NULL ? ERR_NOMEM : 0;
}

static int task_parse_description(yyjson_val *value, const char *path, struct task *out,
                                  struct task_errors *errors) {
    const char *text = "";
    size_t length = 0;
    if (yyjson_is_str(value)) {
        text = yyjson_get_str(value);
        length = yyjson_get_len(value);
    } else if (!yyjson_is_null(value)) {
        return task_reject(errors, path, "must be a string or null");
    }
    if (length > LIMIT_TASK_DESCRIPTION_BYTES) {
        return task_reject(errors, path, "must be at most 65536 bytes");
    }
    if (task_has_control(text, length, "\t\n\r")) {
        return task_reject(errors, path,
                           "must not contain control characters other than tab and line breaks");
    }
    out->description = mem_strndup(text, length);
    return out->description == NULL ? ERR_NOMEM : 0;
}

static int task_parse_priority(yyjson_val *value, const char *path, struct task *out,
                               struct task_errors *errors) {
    int priority = task_priority_parse(yyjson_get_str(value), yyjson_get_len(value));
    if (!yyjson_is_str(value) || priority < 0) {
        return task_reject(errors, path, "must be one of low, medium, high, urgent");
    }
    out->priority = (enum task_priority)priority;
    return 0;
}

/* Checks one tag; true when it is acceptable. */
static bool task_tag_ok(yyjson_val *value, const char *path, struct task_errors *errors) {
    const char *message = NULL;
    size_t length = yyjson_get_len(value);
    if (!yyjson_is_str(value)) message = "must be a string";
    else if (length == 0) message = "must not be empty";
    else if (length > LIMIT_TASK_TAG_BYTES) message = "must be at most 64 bytes";
    else if (task_has_control(yyjson_get_str(value), length, NULL)) {
        message = "must not contain control characters";
    }
    if (message != NULL) task_errors_add(errors, path, message);
    return message == NULL;
}

/* True when `tags` already holds the text (tags are few: the scan is
 * bounded by LIMIT_TASK_TAGS squared). */
static bool task_tags_contain(char *const *tags, size_t count, const char *text, size_t length) {
    for (size_t index = 0; index < count; index++) {
        if (strlen(tags[index]) == length && memcmp(tags[index], text, length) == 0) return true;
    }
    return false;
}

/* "path.suffix" and "path.index" into out (truncated like snprintf would):
 * field paths are built for every array element, and snprintf cost ~1,000
 * instructions each on the create path. */
static void task_path_join(char *out, size_t size, const char *path, const char *suffix) {
    size_t used = 0;
    for (const char *cursor = path; *cursor != '\0' && used + 1 < size; cursor++) out[used++] = *cursor;
    if (used + 1 < size) out[used++] = '.';
    for (const char *cursor = suffix; *cursor != '\0' && used + 1 < size; cursor++) {
        out[used++] = *cursor;
    }
    out[used] = '\0';
}

static void task_path_index(char *out, size_t size, const char *path, size_t index) {
    char digits[24];
    size_t count = 0;
    do {
        digits[count++] = (char)('0' + index % 10);
        index /= 10;
    } while (index > 0 && count < sizeof digits - 1);
    char text[24];
    for (size_t position = 0; position < count; position++) text[position] = digits[count - 1 - position];
    text[count] = '\0';
    task_path_join(out, size, path, text);
}

static int task_parse_tags(yyjson_val *value, const char *path, struct task *out,
                           struct task_errors *errors) {
    if (yyjson_is_null(value)) return 0;
    if (!yyjson_is_arr(value)) return task_reject(errors, path, "must be an array of strings");
    size_t size = yyjson_arr_size(value);
    if (size > LIMIT_TASK_TAGS) return task_reject(errors, path, "must have at most 50 tags");
    if (size == 0) return 0;
    char **tags = mem_calloc(size, sizeof *tags);
    if (tags == NULL) return ERR_NOMEM;
    size_t count = 0;
    size_t errors_before = errors->count;
    size_t index;
    size_t maximum;
    yyjson_val *tag;
    yyjson_arr_foreach(value, index, maximum, tag) {
        char field[64];
        task_path_index(field, sizeof field, path, index);
        if (!task_tag_ok(tag, field, errors)) continue;
        const char *text = yyjson_get_str(tag);
        size_t length = yyjson_get_len(tag);
        if (task_tags_contain(tags, count, text, length)) continue;
        tags[count] = mem_strndup(text, length);
        if (tags[count] == NULL) {
            task_free_tags(tags, count);
            return ERR_NOMEM;
        }
        count++;
    }
    if (errors->count != errors_before) {
        task_free_tags(tags, count);
        return 0;
    }
    out->tags = tags;
    out->tag_count = count;
    return 0;
}

static int task_parse_due(yyjson_val *value, const char *path, struct task *out,
                          struct task_errors *errors) {
    if (yyjson_is_null(value)) {
        out->has_due = false;
        return 0;
    }
    if (!yyjson_is_str(value)) return task_reject(errors, path, task_message_time);
    const char *message = task_message_time;
    if (timefmt_time_parse(yyjson_get_str(value), yyjson_get_len(value), &out->due_ns,
                           &message) != 0) {
        return task_reject(errors, path, message);
    }
    out->has_due = true;
    return 0;
}

static int task_parse_timezone(yyjson_val *value, const char *path, struct task *out,
                               struct task_errors *errors) {
    const char *name = yyjson_get_str(value);
    size_t length = yyjson_get_len(value);
    if (!yyjson_is_str(value) || !timezone_is_valid(name, length)) {
        return task_reject(errors, path, "must be an IANA time zone name, e.g. Europe/Berlin");
    }
    memcpy(out->timezone, name, length);
    out->timezone[length] = '\0';
    return 0;
}

static int task_parse_completed(yyjson_val *value, const char *path, struct task *out,
                                struct task_errors *errors) {
    if (!yyjson_is_bool(value)) return task_reject(errors, path, "must be true or false");
    out->completed = yyjson_get_bool(value);
    return 0;
}

/* recurrence.rule: validated and stored in its normalised text. */
static void task_parse_rule(yyjson_val *value, struct task *out, struct task_errors *errors) {
    if (!yyjson_is_str(value)) {
        task_errors_add(errors, "recurrence.rule",
                        "must be an RRULE string, e.g. FREQ=WEEKLY;BYDAY=MO");
        return;
    }
    struct rrule rule;
    const char *message = NULL;
    if (rrule_parse(yyjson_get_str(value), yyjson_get_len(value), &rule, &message) != 0) {
        task_errors_add(errors, "recurrence.rule", message);
        return;
    }
    int written = rrule_format(&rule, out->rule, sizeof out->rule);
    CHECK(written > 0);
}

static int task_parse_recurrence(yyjson_val *value, const char *path, struct task *out,
                                 struct task_errors *errors) {
    if (yyjson_is_null(value)) {
        out->has_recurrence = false;
        out->rule[0] = '\0';
        return 0;
    }
    if (!yyjson_is_obj(value)) {
        return task_reject(errors, path, "must be an object {\"rule\", \"from\"} or null");
    }
    size_t errors_before = errors->count;
    yyjson_val *rule = NULL;
    yyjson_val *from = NULL;
    yyjson_obj_iter iterator = yyjson_obj_iter_with(value);
    yyjson_val *key;
    while ((key = yyjson_obj_iter_next(&iterator)) != NULL) {
        char field[64];
        task_path(field, path, yyjson_get_str(key), yyjson_get_len(key));
        yyjson_val **slot = yyjson_equals_str(key, "rule")   ? &rule
                            : yyjson_equals_str(key, "from") ? &from
                                                             : NULL;
        bool read_only = yyjson_equals_str(key, "series_start") || yyjson_equals_str(key, "index");
        if (read_only) task_errors_add(errors, field, "is read-only (set by the server)");
        else if (slot == NULL) task_errors_add(errors, field, "is not a recurrence field");
        else if (*slot != NULL) task_errors_add(errors, field, "is given more than once");
        else *slot = yyjson_obj_iter_get_val(key);
    }
    if (rule == NULL) task_errors_add(errors, "recurrence.rule", "is required");
    else task_parse_rule(rule, out, errors);
    int parsed = task_recurrence_from_parse(yyjson_get_str(from), yyjson_get_len(from));
    if (from != NULL && (!yyjson_is_str(from) || parsed < 0)) {
        task_errors_add(errors, "recurrence.from", "must be one of due, completion, schedule");
    }
    if (errors->count != errors_before) return 0;
    out->has_recurrence = true;
    out->recurrence_from = from != NULL ? (enum task_recurrence_from)parsed
                                        : TASK_RECURRENCE_FROM_DUE;
    return 0;
}

/* One reminder object at reminders.<index>. */
static void task_parse_reminder(yyjson_val *value, const char *path, struct task_reminder *out,
                                struct task_errors *errors) {
    if (!yyjson_is_obj(value)) {
        task_errors_add(errors, path, "must be an object with \"before\" or \"at\"");
        return;
    }
    yyjson_val *before = NULL;
    yyjson_val *at = NULL;
    char field[64];
    yyjson_obj_iter iterator = yyjson_obj_iter_with(value);
    yyjson_val *key;
    while ((key = yyjson_obj_iter_next(&iterator)) != NULL) {
        task_path(field, path, yyjson_get_str(key), yyjson_get_len(key));
        yyjson_val **slot = yyjson_equals_str(key, "before") ? &before
                            : yyjson_equals_str(key, "at")   ? &at
                                                             : NULL;
        if (slot == NULL) task_errors_add(errors, field, "is not a reminder field");
        else if (*slot != NULL) task_errors_add(errors, field, "is given more than once");
        else *slot = yyjson_obj_iter_get_val(key);
    }
    if (before != NULL && at != NULL) {
        task_errors_add(errors, path, "must have \"before\" or \"at\", not both");
        return;
    }
    if (before == NULL && at == NULL) {
        task_errors_add(errors, path, "must have \"before\" or \"at\"");
        return;
    }
    const char *message = before != NULL ? task_message_duration : task_message_time;
    yyjson_val *given = before != NULL ? before : at;
    task_path_join(field, sizeof field, path, before != NULL ? "before" : "at");
    int rc = ERR_PARSE;
    if (yyjson_is_str(given) && before != NULL) {
        out->kind = TASK_REMINDER_BEFORE;
        rc = timefmt_duration_parse(yyjson_get_str(given), yyjson_get_len(given), &out->before_s,
                                    &message);
    } else if (yyjson_is_str(given)) {
        out->kind = TASK_REMINDER_AT;
        rc = timefmt_time_parse(yyjson_get_str(given), yyjson_get_len(given), &out->at_ns,
                                &message);
    }
    if (rc != 0) task_errors_add(errors, field, message);
}

static int task_parse_reminders(yyjson_val *value, const char *path, struct task *out,
                                struct task_errors *errors) {
    if (yyjson_is_null(value)) return 0;
    if (!yyjson_is_arr(value)) return task_reject(errors, path, "must be an array");
    size_t size = yyjson_arr_size(value);
    if (size > LIMIT_TASK_REMINDERS) {
        return task_reject(errors, path, "must have at most 20 reminders");
    }
    if (size == 0) return 0;
    struct task_reminder *reminders = mem_calloc(size, sizeof *reminders);
    if (reminders == NULL) return ERR_NOMEM;
    size_t errors_before = errors->count;
    size_t index;
    size_t maximum;
    yyjson_val *reminder;
    yyjson_arr_foreach(value, index, maximum, reminder) {
        char field[64];
        task_path_index(field, sizeof field, path, index);
        task_parse_reminder(reminder, field, &reminders[index], errors);
    }
    if (errors->count != errors_before) {
        mem_free(reminders);
        return 0;
    }
    out->reminders = reminders;
    out->reminder_count = size;
    return 0;
}

/* The members a request body may name. */
struct task_member {
    const char *name;         /* JSON member name */
    unsigned field;           /* enum task_field bit */
    task_field_parser parse;  /* validates and stores the value */
};

static const struct task_member task_members[] = {
    {"title", TASK_FIELD_TITLE, task_parse_title},
    {"description", TASK_FIELD_DESCRIPTION, task_parse_description},
    {"completed", TASK_FIELD_COMPLETED, task_parse_completed},
    {"priority", TASK_FIELD_PRIORITY, task_parse_priority},
    {"tags", TASK_FIELD_TAGS, task_parse_tags},
    {"due", TASK_FIELD_DUE, task_parse_due},
    {"timezone", TASK_FIELD_TIMEZONE, task_parse_timezone},
    {"recurrence", TASK_FIELD_RECURRENCE, task_parse_recurrence},
    {"reminders", TASK_FIELD_REMINDERS, task_parse_reminders},
};

/* Members of the API object that only the server sets. */
static const char *const task_read_only[] = {"id",         "version",      "created_at",
                                             "updated_at", "completed_at", "parent_id"};

#define TASK_COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

static const struct task_member *task_member_find(yyjson_val *key) {
    for (size_t index = 0; index < TASK_COUNT_OF(task_members); index++) {
        if (yyjson_equals_str(key, task_members[index].name)) return &task_members[index];
    }
    return NULL;
}

static bool task_member_read_only(yyjson_val *key) {
    for (size_t index = 0; index < TASK_COUNT_OF(task_read_only); index++) {
        if (yyjson_equals_str(key, task_read_only[index])) return true;
    }
    return false;
}

/* Runs every member of `root` through its parser; `*fields` gets the bits
 * of the members present. A member given twice is an error (yyjson keeps
 * both, and another reader might take either). ERR_NOMEM or 0. */
static int task_parse_members(yyjson_val *root, struct task *out, unsigned *fields,
                              struct task_errors *errors) {
    unsigned seen = 0;
    yyjson_obj_iter iterator = yyjson_obj_iter_with(root);
    yyjson_val *key;
    while ((key = yyjson_obj_iter_next(&iterator)) != NULL) {
        char field[64];
        task_path(field, NULL, yyjson_get_str(key), yyjson_get_len(key));
        const struct task_member *member = task_member_find(key);
        if (member == NULL) {
            task_errors_add(errors, field,
                            task_member_read_only(key) ? "is read-only" : "is not a task field");
            continue;
        }
        if (seen & member->field) {
            task_errors_add(errors, field, "is given more than once");
            continue;
        }
        seen |= member->field;
        int rc = member->parse(yyjson_obj_iter_get_val(key), member->name, out, errors);
        if (rc != 0) return rc;
    }
    *fields = seen;
    return 0;
}

/* Fills what a new task has when the body does not say. */
static int task_create_defaults(struct task *out, unsigned fields,
                                const struct task_defaults *defaults) {
    if ((fields & TASK_FIELD_PRIORITY) == 0) out->priority = TASK_PRIORITY_MEDIUM;
    if (out->description == NULL && (out->description = mem_strdup("")) == NULL) {
        return ERR_NOMEM;
    }
    if ((fields & TASK_FIELD_TIMEZONE) == 0) {
        const char *zone = defaults != NULL && defaults->timezone != NULL ? defaults->timezone
                                                                          : "UTC";
        snprintf(out->timezone, sizeof out->timezone, "%s", zone);
    }
    if ((fields & TASK_FIELD_REMINDERS) == 0 && out->has_due) {
        out->reminders = mem_calloc(1, sizeof *out->reminders);
        if (out->reminders == NULL) return ERR_NOMEM;
        out->reminders[0].kind = TASK_REMINDER_BEFORE;
        out->reminders[0].before_s = TASK_DEFAULT_REMINDER_S;
        out->reminder_count = 1;
    }
    return 0;
}

int task_parse_create(const char *body, size_t length, const struct task_defaults *defaults,
                      struct task *out, struct task_errors *errors) {
    CHECK(out != NULL && errors != NULL);
    memset(out, 0, sizeof *out);
    errors->count = 0;
    yyjson_doc *document = NULL;
    int rc = task_body_read(body, length, &document, errors);
    if (rc != 0) return rc;
    unsigned fields = 0;
    rc = task_parse_members(yyjson_doc_get_root(document), out, &fields, errors);
    if (rc != 0) goto fail;
    if ((fields & TASK_FIELD_TITLE) == 0) task_errors_add(errors, "title", "is required");
    if (errors->count > 0) {
        rc = ERR_INVAL;
        goto fail;
    }
    rc = task_create_defaults(out, fields, defaults);
    if (rc != 0) goto fail;
    yyjson_doc_free(document);
    return 0;
fail:
    yyjson_doc_free(document);
    task_free(out);
    return rc;
}

int task_parse_patch(const char *body, size_t length, struct task_patch *out,
                     struct task_errors *errors) {
    CHECK(out != NULL && errors != NULL);
    memset(out, 0, sizeof *out);
    errors->count = 0;
    yyjson_doc *document = NULL;
    int rc = task_body_read(body, length, &document, errors);
    if (rc != 0) return rc;
    rc = task_parse_members(yyjson_doc_get_root(document), &out->values, &out->fields, errors);
    if (rc == 0 && errors->count > 0) rc = ERR_INVAL;
    yyjson_doc_free(document);
    if (rc != 0) task_patch_free(out);
    return rc;
}

void task_patch_free(struct task_patch *patch) {
    if (patch == NULL) return;
    task_free(&patch->values);
    patch->fields = 0;
}

/* ---- Patches and diffs --------------------------------------------------- */

/* The fields task.updated carries, in the order diffs list them. */
static const struct {
    unsigned field;   /* enum task_field bit */
    const char *name; /* member name in the API object */
} task_diff_fields[] = {
    {TASK_FIELD_TITLE, "title"},       {TASK_FIELD_DESCRIPTION, "description"},
    {TASK_FIELD_PRIORITY, "priority"}, {TASK_FIELD_TAGS, "tags"},
    {TASK_FIELD_DUE, "due"},           {TASK_FIELD_TIMEZONE, "timezone"},
    {TASK_FIELD_RECURRENCE, "recurrence"}, {TASK_FIELD_REMINDERS, "reminders"},
};

static bool task_strings_equal(const char *left, const char *right) {
    return strcmp(left != NULL ? left : "", right != NULL ? right : "") == 0;
}

static bool task_tags_equal(const struct task *left, const struct task *right) {
    if (left->tag_count != right->tag_count) return false;
    for (size_t index = 0; index < left->tag_count; index++) {
        if (strcmp(left->tags[index], right->tags[index]) != 0) return false;
    }
    return true;
}

static bool task_reminders_equal(const struct task *left, const struct task *right) {
    if (left->reminder_count != right->reminder_count) return false;
    for (size_t index = 0; index < left->reminder_count; index++) {
        const struct task_reminder *one = &left->reminders[index];
        const struct task_reminder *two = &right->reminders[index];
        if (one->kind != two->kind) return false;
        if (one->kind == TASK_REMINDER_BEFORE ? one->before_s != two->before_s
                                              : one->at_ns != two->at_ns) {
            return false;
        }
    }
    return true;
}

/* True when `field` (one diff field) is the same in both tasks. */
static bool task_field_equal(const struct task *left, const struct task *right, unsigned field) {
    switch (field) {
    case TASK_FIELD_TITLE:
        return task_strings_equal(left->title, right->title);
    case TASK_FIELD_DESCRIPTION:
        return task_strings_equal(left->description, right->description);
    case TASK_FIELD_PRIORITY:
        return left->priority == right->priority;
    case TASK_FIELD_TAGS:
        return task_tags_equal(left, right);
    case TASK_FIELD_DUE:
        return left->has_due == right->has_due && (!left->has_due || left->due_ns == right->due_ns);
    case TASK_FIELD_TIMEZONE:
        return strcmp(left->timezone, right->timezone) == 0;
    case TASK_FIELD_RECURRENCE:
        return left->has_recurrence == right->has_recurrence &&
               (!left->has_recurrence ||
                (strcmp(left->rule, right->rule) == 0 &&
                 left->recurrence_from == right->recurrence_from &&
                 left->has_series_start == right->has_series_start &&
                 left->series_start_ns == right->series_start_ns &&
                 left->occurrence_index == right->occurrence_index));
    case TASK_FIELD_REMINDERS:
        return task_reminders_equal(left, right);
    }
    CHECK(!"not a diff field");
    return false;
}

/* Sets `field` of `out` to its value in `from`. ERR_NOMEM leaves `out`
 * whole (old value kept). */
static int task_field_assign(struct task *out, const struct task *from, unsigned field) {
    switch (field) {
    case TASK_FIELD_TITLE:
        return task_replace_string(&out->title, from->title);
    case TASK_FIELD_DESCRIPTION:
        return task_replace_string(&out->description,
                                   from->description != NULL ? from->description : "");
    case TASK_FIELD_TAGS: {
        char **tags = NULL;
        size_t count = 0;
        if (task_copy_tags(&tags, &count, from->tags, from->tag_count) != 0) return ERR_NOMEM;
        task_free_tags(out->tags, out->tag_count);
        out->tags = tags;
        out->tag_count = count;
        return 0;
    }
    case TASK_FIELD_REMINDERS: {
        struct task_reminder *reminders = NULL;
        size_t count = 0;
        if (task_copy_reminders(&reminders, &count, from->reminders, from->reminder_count) != 0) {
            return ERR_NOMEM;
        }
        mem_free(out->reminders);
        out->reminders = reminders;
        out->reminder_count = count;
        return 0;
    }
    case TASK_FIELD_PRIORITY:
        out->priority = from->priority;
        return 0;
    case TASK_FIELD_DUE:
        out->has_due = from->has_due;
        out->due_ns = from->has_due ? from->due_ns : 0;
        return 0;
    case TASK_FIELD_TIMEZONE:
        memcpy(out->timezone, from->timezone, sizeof out->timezone);
        return 0;
    case TASK_FIELD_RECURRENCE:
        out->has_recurrence = from->has_recurrence;
        if (from->has_recurrence) memcpy(out->rule, from->rule, sizeof out->rule);
        else out->rule[0] = '\0';
        out->recurrence_from = from->has_recurrence ? from->recurrence_from : 0;
        out->has_series_start = from->has_recurrence && from->has_series_start;
        out->series_start_ns = out->has_series_start ? from->series_start_ns : 0;
        out->occurrence_index = from->has_recurrence ? from->occurrence_index : 0;
        return 0;
    }
    CHECK(!"not a diff field");
    return ERR_INVAL;
}

int task_apply_patch(const struct task *current, const struct task_patch *patch,
                     struct task *out) {
    CHECK(current != NULL && patch != NULL && out != NULL);
    int rc = task_copy(out, current);
    if (rc != 0) return rc;
    for (size_t index = 0; index < TASK_COUNT_OF(task_diff_fields); index++) {
        unsigned field = task_diff_fields[index].field;
        if ((patch->fields & field) == 0) continue;
        rc = task_field_assign(out, &patch->values, field);
        if (rc != 0) {
            task_free(out);
            return rc;
        }
    }
    return 0;
}

/* ---- JSON forms: writing ------------------------------------------------- */

static yyjson_mut_val *task_time_json(yyjson_mut_doc *doc, bool has, int64_t unix_ns) {
    if (!has) return yyjson_mut_null(doc);
    char text[TIMEFMT_TIME_BYTES];
    int length = timefmt_time_format(unix_ns, text);
    return yyjson_mut_strncpy(doc, text, (size_t)length);
}

static yyjson_mut_val *task_tags_json(const struct task *task, yyjson_mut_doc *doc) {
    yyjson_mut_val *array = yyjson_mut_arr(doc);
    for (size_t index = 0; array != NULL && index < task->tag_count; index++) {
        if (!yyjson_mut_arr_add_strcpy(doc, array, task->tags[index])) return NULL;
    }
    return array;
}

static yyjson_mut_val *task_reminders_json(const struct task *task, yyjson_mut_doc *doc) {
    yyjson_mut_val *array = yyjson_mut_arr(doc);
    for (size_t index = 0; array != NULL && index < task->reminder_count; index++) {
        const struct task_reminder *reminder = &task->reminders[index];
        yyjson_mut_val *object = yyjson_mut_arr_add_obj(doc, array);
        if (object == NULL) return NULL;
        bool ok;
        if (reminder->kind == TASK_REMINDER_BEFORE) {
            char text[TIMEFMT_DURATION_BYTES];
            int length = timefmt_duration_format(reminder->before_s, text);
            ok = yyjson_mut_obj_add_strncpy(doc, object, "before", text, (size_t)length);
        } else {
            ok = yyjson_mut_obj_add_val(doc, object, "at",
                                        task_time_json(doc, true, reminder->at_ns));
        }
        if (!ok) return NULL;
    }
    return array;
}

static yyjson_mut_val *task_recurrence_json(const struct task *task, yyjson_mut_doc *doc) {
    if (!task->has_recurrence) return yyjson_mut_null(doc);
    yyjson_mut_val *object = yyjson_mut_obj(doc);
    if (object == NULL || !yyjson_mut_obj_add_strcpy(doc, object, "rule", task->rule) ||
        !yyjson_mut_obj_add_str(doc, object, "from",
                                task_recurrence_from_name(task->recurrence_from))) {
        return NULL;
    }
    yyjson_mut_val *start = task_time_json(doc, task->has_series_start, task->series_start_ns);
    if (start == NULL || !yyjson_mut_obj_add_val(doc, object, "series_start", start) ||
        !yyjson_mut_obj_add_int(doc, object, "index", task->occurrence_index)) {
        return NULL;
    }
    return object;
}

/* The JSON value of one diff field. NULL on ERR_NOMEM. */
static yyjson_mut_val *task_field_json(const struct task *task, unsigned field,
                                       yyjson_mut_doc *doc) {
    switch (field) {
    case TASK_FIELD_TITLE:
        return yyjson_mut_strcpy(doc, task->title != NULL ? task->title : "");
    case TASK_FIELD_DESCRIPTION:
        return yyjson_mut_strcpy(doc, task->description != NULL ? task->description : "");
    case TASK_FIELD_PRIORITY:
        return yyjson_mut_str(doc, task_priority_name(task->priority));
    case TASK_FIELD_TAGS:
        return task_tags_json(task, doc);
    case TASK_FIELD_DUE:
        return task_time_json(doc, task->has_due, task->due_ns);
    case TASK_FIELD_TIMEZONE:
        return yyjson_mut_strcpy(doc, task->timezone);
    case TASK_FIELD_RECURRENCE:
        return task_recurrence_json(task, doc);
    case TASK_FIELD_REMINDERS:
        return task_reminders_json(task, doc);
    }
    CHECK(!"not a diff field");
    return NULL;
}

int task_diff(const struct task *before, const struct task *after, struct yyjson_mut_doc *doc,
              struct yyjson_mut_val *changes) {
    CHECK(before != NULL && after != NULL && doc != NULL && yyjson_mut_is_obj(changes));
    int count = 0;
    for (size_t index = 0; index < TASK_COUNT_OF(task_diff_fields); index++) {
        unsigned field = task_diff_fields[index].field;
        if (task_field_equal(before, after, field)) continue;
        yyjson_mut_val *change = yyjson_mut_obj(doc);
        if (change == NULL ||
            !yyjson_mut_obj_add_val(doc, change, "old", task_field_json(before, field, doc)) ||
            !yyjson_mut_obj_add_val(doc, change, "new", task_field_json(after, field, doc)) ||
            !yyjson_mut_obj_add_val(doc, changes, task_diff_fields[index].name, change)) {
            return ERR_NOMEM;
        }
        count++;
    }
    return count;
}

struct yyjson_mut_val *task_to_json(const struct task *task, struct yyjson_mut_doc *doc) {
    CHECK(task != NULL && doc != NULL);
    yyjson_mut_val *object = yyjson_mut_obj(doc);
    bool ok = object != NULL && yyjson_mut_obj_add_strcpy(doc, object, "id", task->id);
    for (size_t index = 0; ok && index < 2; index++) {
        ok = yyjson_mut_obj_add_val(doc, object, task_diff_fields[index].name,
                                    task_field_json(task, task_diff_fields[index].field, doc));
    }
    ok = ok && yyjson_mut_obj_add_bool(doc, object, "completed", task->completed);
    ok = ok && yyjson_mut_obj_add_val(doc, object, "completed_at",
                                      task_time_json(doc, task->has_completed_at,
                                                     task->completed_at_ns));
    for (size_t index = 2; ok && index < TASK_COUNT_OF(task_diff_fields); index++) {
        ok = yyjson_mut_obj_add_val(doc, object, task_diff_fields[index].name,
                                    task_field_json(task, task_diff_fields[index].field, doc));
    }
    ok = ok && yyjson_mut_obj_add_val(doc, object, "parent_id",
                                      task->parent_id[0] != '\0'
                                          ? yyjson_mut_strcpy(doc, task->parent_id)
                                          : yyjson_mut_null(doc));
    ok = ok && yyjson_mut_obj_add_val(doc, object, "created_at",
                                      task_time_json(doc, true, task->created_at_ns));
    ok = ok && yyjson_mut_obj_add_val(doc, object, "updated_at",
                                      task_time_json(doc, true, task->updated_at_ns));
    ok = ok && yyjson_mut_obj_add_int(doc, object, "version", task->version);
    return ok ? object : NULL;
}

char *task_to_json_string(const struct task *task, size_t *length_out) {
    CHECK(task != NULL);
    yyjson_mut_doc *doc = yyjson_mut_doc_new(&json_allocator);
    if (doc == NULL) return NULL;
    char *text = NULL;
    yyjson_mut_val *root = task_to_json(task, doc);
    if (root != NULL) {
        yyjson_mut_doc_set_root(doc, root);
        size_t length = 0;
        text = yyjson_mut_write_opts(doc, YYJSON_WRITE_NOFLAG, &json_allocator, &length,
                                     NULL);
        if (text != NULL && length_out != NULL) *length_out = length;
    }
    yyjson_mut_doc_free(doc);
    return text;
}

/* ---- JSON forms: reading ------------------------------------------------- */
/* Readers return 0 or ERR_PARSE (ERR_NOMEM when a copy fails). They check
 * shape and bounds, and refuse strings with an embedded NUL, which the
 * NUL-terminated fields could not hold. */

static bool task_json_string(yyjson_val *value, size_t max_bytes) {
    return yyjson_is_str(value) && yyjson_get_len(value) <= max_bytes &&
           strlen(yyjson_get_str(value)) == yyjson_get_len(value);
}

static int task_read_time(yyjson_val *value, bool nullable, bool *has, int64_t *unix_ns) {
    if (nullable && yyjson_is_null(value)) {
        *has = false;
        *unix_ns = 0;
        return 0;
    }
    if (!yyjson_is_str(value)) return ERR_PARSE;
    if (timefmt_time_parse(yyjson_get_str(value), yyjson_get_len(value), unix_ns, NULL) != 0) {
        return ERR_PARSE;
    }
    *has = true;
    return 0;
}

static int task_read_int64(yyjson_val *value, int64_t *out) {
    if (yyjson_is_sint(value)) *out = yyjson_get_sint(value);
    else if (yyjson_is_uint(value) && yyjson_get_uint(value) <= (uint64_t)INT64_MAX) {
        *out = (int64_t)yyjson_get_uint(value);
    } else return ERR_PARSE;
    return 0;
}

static int task_read_string(yyjson_val *value, size_t max_bytes, char **slot) {
    if (!task_json_string(value, max_bytes)) return ERR_PARSE;
    return task_replace_string(slot, yyjson_get_str(value));
}

/* Copies a string into a fixed buffer of `size` bytes (with its NUL). */
static int task_read_fixed(yyjson_val *value, char *out, size_t size) {
    if (!task_json_string(value, size - 1)) return ERR_PARSE;
    memcpy(out, yyjson_get_str(value), yyjson_get_len(value) + 1);
    return 0;
}

static int task_read_tags(yyjson_val *value, struct task *task) {
    if (!yyjson_is_arr(value) || yyjson_arr_size(value) > LIMIT_TASK_TAGS) return ERR_PARSE;
    size_t size = yyjson_arr_size(value);
    char **tags = size > 0 ? mem_calloc(size, sizeof *tags) : NULL;
    if (size > 0 && tags == NULL) return ERR_NOMEM;
    size_t index;
    size_t maximum;
    yyjson_val *tag;
    yyjson_arr_foreach(value, index, maximum, tag) {
        int rc = task_read_string(tag, LIMIT_TASK_TAG_BYTES, &tags[index]);
        if (rc != 0) {
            task_free_tags(tags, index);
            return rc;
        }
    }
    task_free_tags(task->tags, task->tag_count);
    task->tags = tags;
    task->tag_count = size;
    return 0;
}

static int task_read_reminder(yyjson_val *value, struct task_reminder *out) {
    if (!yyjson_is_obj(value) || yyjson_obj_size(value) != 1) return ERR_PARSE;
    yyjson_val *before = yyjson_obj_get(value, "before");
    yyjson_val *at = yyjson_obj_get(value, "at");
    bool has = false;
    if (before != NULL) {
        out->kind = TASK_REMINDER_BEFORE;
        if (!yyjson_is_str(before)) return ERR_PARSE;
        return timefmt_duration_parse(yyjson_get_str(before), yyjson_get_len(before),
                                      &out->before_s, NULL) == 0
                   ? 0
                   : ERR_PARSE;
    }
    out->kind = TASK_REMINDER_AT;
    return task_read_time(at, false, &has, &out->at_ns);
}

static int task_read_reminders(yyjson_val *value, struct task *task) {
    if (!yyjson_is_arr(value) || yyjson_arr_size(value) > LIMIT_TASK_REMINDERS) return ERR_PARSE;
    size_t size = yyjson_arr_size(value);
    struct task_reminder *reminders = size > 0 ? mem_calloc(size, sizeof *reminders) : NULL;
    if (size > 0 && reminders == NULL) return ERR_NOMEM;
    size_t index;
    size_t maximum;
    yyjson_val *reminder;
    yyjson_arr_foreach(value, index, maximum, reminder) {
        if (task_read_reminder(reminder, &reminders[index]) != 0) {
            mem_free(reminders);
            return ERR_PARSE;
        }
    }
    mem_free(task->reminders);
    task->reminders = reminders;
    task->reminder_count = size;
    return 0;
}

static int task_read_recurrence(yyjson_val *value, struct task *task) {
    if (yyjson_is_null(value)) {
        task->has_recurrence = false;
        task->rule[0] = '\0';
        task->recurrence_from = TASK_RECURRENCE_FROM_DUE;
        return 0;
    }
    if (!yyjson_is_obj(value)) return ERR_PARSE;
    yyjson_val *rule = yyjson_obj_get(value, "rule");
    yyjson_val *from = yyjson_obj_get(value, "from");
    int parsed = task_recurrence_from_parse(yyjson_get_str(from), yyjson_get_len(from));
    if (!task_json_string(rule, LIMIT_TASK_RRULE_BYTES) || yyjson_get_len(rule) == 0 ||
        parsed < 0) {
        return ERR_PARSE;
    }
    /* series_start and index came with issue 6: older events lack them. */
    bool has_start = false;
    int64_t start_ns = 0;
    int64_t index = 0;
    yyjson_val *start = yyjson_obj_get(value, "series_start");
    yyjson_val *index_value = yyjson_obj_get(value, "index");
    if (start != NULL && task_read_time(start, true, &has_start, &start_ns) != 0) return ERR_PARSE;
    if (index_value != NULL && (task_read_int64(index_value, &index) != 0 || index < 0)) {
        return ERR_PARSE;
    }
    task->has_recurrence = true;
    memcpy(task->rule, yyjson_get_str(rule), yyjson_get_len(rule) + 1);
    task->recurrence_from = (enum task_recurrence_from)parsed;
    task->has_series_start = has_start;
    task->series_start_ns = start_ns;
    task->occurrence_index = index;
    return 0;
}

/* Replaces one diff field of `task` with its JSON form `value`. On error
 * the field keeps its old value. */
static int task_field_read(struct task *task, unsigned field, yyjson_val *value) {
    int priority;
    switch (field) {
    case TASK_FIELD_TITLE:
        return task_read_string(value, LIMIT_TASK_TITLE_BYTES, &task->title);
    case TASK_FIELD_DESCRIPTION:
        return task_read_string(value, LIMIT_TASK_DESCRIPTION_BYTES, &task->description);
    case TASK_FIELD_PRIORITY:
        priority = task_priority_parse(yyjson_get_str(value), yyjson_get_len(value));
        if (!yyjson_is_str(value) || priority < 0) return ERR_PARSE;
        task->priority = (enum task_priority)priority;
        return 0;
    case TASK_FIELD_TAGS:
        return task_read_tags(value, task);
    case TASK_FIELD_DUE:
        return task_read_time(value, true, &task->has_due, &task->due_ns);
    case TASK_FIELD_TIMEZONE:
        if (yyjson_get_len(value) == 0) return ERR_PARSE;
        return task_read_fixed(value, task->timezone, sizeof task->timezone);
    case TASK_FIELD_RECURRENCE:
        return task_read_recurrence(value, task);
    case TASK_FIELD_REMINDERS:
        return task_read_reminders(value, task);
    }
    CHECK(!"not a diff field");
    return ERR_PARSE;
}

/* The members of the API object that are not diff fields. */
static int task_read_fixed_members(yyjson_val *object, struct task *task) {
    bool has = false;
    yyjson_val *completed = yyjson_obj_get(object, "completed");
    yyjson_val *parent = yyjson_obj_get(object, "parent_id");
    if (task_read_fixed(yyjson_obj_get(object, "id"), task->id, sizeof task->id) != 0 ||
        !yyjson_is_bool(completed) ||
        task_read_time(yyjson_obj_get(object, "completed_at"), true, &task->has_completed_at,
                       &task->completed_at_ns) != 0 ||
        task_read_time(yyjson_obj_get(object, "created_at"), false, &has,
                       &task->created_at_ns) != 0 ||
        task_read_time(yyjson_obj_get(object, "updated_at"), false, &has,
                       &task->updated_at_ns) != 0 ||
        task_read_int64(yyjson_obj_get(object, "version"), &task->version) != 0) {
        return ERR_PARSE;
    }
    task->completed = yyjson_get_bool(completed);
    if (yyjson_is_null(parent)) task->parent_id[0] = '\0';
    else if (task_read_fixed(parent, task->parent_id, sizeof task->parent_id) != 0) {
        return ERR_PARSE;
    }
    return 0;
}

int task_from_json(const struct yyjson_val *object, struct task *out) {
    CHECK(out != NULL);
    memset(out, 0, sizeof *out);
    yyjson_val *root = (yyjson_val *)object;
    if (!yyjson_is_obj(root)) return ERR_PARSE;
    int rc = task_read_fixed_members(root, out);
    for (size_t index = 0; rc == 0 && index < TASK_COUNT_OF(task_diff_fields); index++) {
        yyjson_val *value = yyjson_obj_get(root, task_diff_fields[index].name);
        rc = value != NULL ? task_field_read(out, task_diff_fields[index].field, value)
                           : ERR_PARSE;
    }
    if (rc != 0) task_free(out);
    return rc;
}

/* ---- Fold ---------------------------------------------------------------- */

/* Reads the "version" and "updated_at" every change event carries. */
static int task_fold_stamp(yyjson_val *data, int64_t *version, int64_t *updated_at_ns) {
    bool has = false;
    if (task_read_int64(yyjson_obj_get(data, "version"), version) != 0) return ERR_PARSE;
    return task_read_time(yyjson_obj_get(data, "updated_at"), false, &has, updated_at_ns);
}

static int task_fold_created(struct task *state, yyjson_val *data) {
    struct task created;
    int rc = task_from_json(data, &created);
    if (rc != 0) return rc;
    /* The owner is not in the API object; it stays what the caller set. */
    memcpy(created.owner_id, state->owner_id, sizeof created.owner_id);
    task_free(state);
    *state = created;
    return 0;
}

/* task.updated: every known field of "changes" takes its "new" value, on a
 * copy, so a malformed change leaves `state` untouched. Unknown field names
 * are skipped: a newer version may diff more fields. */
static int task_fold_updated(struct task *state, yyjson_val *data) {
    int64_t version = 0;
    int64_t updated_at_ns = 0;
    yyjson_val *changes = yyjson_obj_get(data, "changes");
    if (!yyjson_is_obj(changes) || task_fold_stamp(data, &version, &updated_at_ns) != 0) {
        return ERR_PARSE;
    }
    struct task work;
    int rc = task_copy(&work, state);
    if (rc != 0) return rc;
    yyjson_obj_iter iterator = yyjson_obj_iter_with(changes);
    yyjson_val *key;
    while (rc == 0 && (key = yyjson_obj_iter_next(&iterator)) != NULL) {
        yyjson_val *change = yyjson_obj_iter_get_val(key);
        for (size_t index = 0; index < TASK_COUNT_OF(task_diff_fields); index++) {
            if (!yyjson_equals_str(key, task_diff_fields[index].name)) continue;
            yyjson_val *value = yyjson_obj_get(change, "new");
            rc = value != NULL ? task_field_read(&work, task_diff_fields[index].field, value)
                               : ERR_PARSE;
        }
    }
    if (rc != 0) {
        task_free(&work);
        return rc;
    }
    work.version = version;
    work.updated_at_ns = updated_at_ns;
    task_free(state);
    *state = work;
    return 0;
}

/* task.due_changed, task.completed and task.uncompleted change scalars
 * only, so each reads everything first and then assigns. */
static int task_fold_scalars(struct task *state, const char *type, yyjson_val *data) {
    int64_t version = 0;
    int64_t updated_at_ns = 0;
    bool has = false;
    int64_t unix_ns = 0;
    if (task_fold_stamp(data, &version, &updated_at_ns) != 0) return ERR_PARSE;
    if (strcmp(type, "task.due_changed") == 0) {
        if (task_read_time(yyjson_obj_get(data, "new"), true, &has, &unix_ns) != 0) {
            return ERR_PARSE;
        }
        state->has_due = has;
        state->due_ns = unix_ns;
    } else if (strcmp(type, "task.completed") == 0) {
        if (task_read_time(yyjson_obj_get(data, "completed_at"), false, &has, &unix_ns) != 0) {
            return ERR_PARSE;
        }
        state->completed = true;
        state->has_completed_at = true;
        state->completed_at_ns = unix_ns;
    } else {
        state->completed = false;
        state->has_completed_at = false;
        state->completed_at_ns = 0;
    }
    state->version = version;
    state->updated_at_ns = updated_at_ns;
    return 0;
}

int task_fold(struct task *state, const char *type, const struct yyjson_val *data) {
    CHECK(state != NULL && type != NULL);
    yyjson_val *object = (yyjson_val *)data;
    bool known = strcmp(type, "task.created") == 0 || strcmp(type, "recurrence.spawned") == 0 ||
                 strcmp(type, "task.updated") == 0 ||
                 strcmp(type, "task.due_changed") == 0 || strcmp(type, "task.completed") == 0 ||
                 strcmp(type, "task.uncompleted") == 0 || strcmp(type, "task.deleted") == 0;
    if (!known) return 0;
    if (!yyjson_is_obj(object)) return ERR_PARSE;
    if (strcmp(type, "task.created") == 0 || strcmp(type, "recurrence.spawned") == 0) {
        return task_fold_created(state, object);
    }
    if (strcmp(type, "task.updated") == 0) return task_fold_updated(state, object);
    if (strcmp(type, "task.deleted") == 0) return 1;
    return task_fold_scalars(state, type, object);
}

/* ---- Reminder instants -------------------------------------------------- */

size_t task_reminder_instants(const struct task *task, int64_t *out_ms, size_t capacity) {
    CHECK(task != NULL && out_ms != NULL);
    size_t count = 0;
    for (size_t index = 0; index < task->reminder_count && count < capacity; index++) {
        const struct task_reminder *reminder = &task->reminders[index];
        int64_t at_ms;
        if (reminder->kind == TASK_REMINDER_AT) {
            at_ms = reminder->at_ns / 1000000;
        } else if (task->has_due) {
            at_ms = task->due_ns / 1000000 - reminder->before_s * 1000;
        } else {
            continue; /* relative to a due date the task does not have */
        }
        /* Insertion into the sorted prefix; equal instants are one. */
        size_t slot = count;
        while (slot > 0 && out_ms[slot - 1] > at_ms) slot--;
        if (slot > 0 && out_ms[slot - 1] == at_ms) continue;
        memmove(&out_ms[slot + 1], &out_ms[slot], (count - slot) * sizeof *out_ms);
        out_ms[slot] = at_ms;
        count++;
    }
    return count;
}
