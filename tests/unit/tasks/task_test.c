/* task_test.c - proves the task model's contract: every field of a request
 * body is validated with the exact field path and message, defaults are
 * filled (priority, timezone, the 15-minute reminder), patches clear with
 * null, diffs list exactly the changed fields with old and new JSON values,
 * the API object round-trips exactly, folding a task's events reproduces
 * it, and allocation failure anywhere is an error, never a leak or crash. */
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "../../../src/tasks/task.h"
#include "test.h"

#include <yyjson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-02-10T09:45:00Z */
#define T0_NS INT64_C(1770716700000000000)
#define SECOND_NS INT64_C(1000000000)

static const struct task_defaults defaults = {.timezone = "Europe/Berlin"};

static int create(const char *body, struct task *task, struct task_errors *errors) {
    return task_parse_create(body, strlen(body), &defaults, task, errors);
}

/* True when `errors` holds exactly one entry, with this field and message. */
static bool only_error(const struct task_errors *errors, const char *field, const char *message) {
    if (errors->count != 1) {
        for (size_t index = 0; index < errors->count && index < TASK_ERRORS_MAX; index++) {
            fprintf(stderr, "  error %s: %s\n", errors->items[index].field,
                    errors->items[index].message);
        }
        return false;
    }
    if (strcmp(errors->items[0].field, field) != 0 ||
        strcmp(errors->items[0].message, message) != 0) {
        fprintf(stderr, "  got %s: %s\n", errors->items[0].field, errors->items[0].message);
        return false;
    }
    return true;
}

/* Creates from `body` expecting 422 with exactly this one error. */
static bool rejects(const char *body, const char *field, const char *message) {
    struct task task;
    struct task_errors errors;
    int rc = create(body, &task, &errors);
    bool ok = rc == ERR_INVAL && only_error(&errors, field, message);
    if (!ok) fprintf(stderr, "  body %.80s: rc %d\n", body, rc);
    task_free(&task);
    return ok;
}

/* Creates from `body` expecting 400 (one error, field ""). */
static bool malformed(const char *body, size_t length) {
    struct task task;
    struct task_errors errors;
    int rc = task_parse_create(body, length, &defaults, &task, &errors);
    bool ok = rc == ERR_PARSE && errors.count == 1 && errors.items[0].field[0] == '\0';
    task_free(&task);
    return ok;
}

/* `count` copies of `unit` inside `before` ... `after`, in a static buffer. */
static const char *repeat(const char *before, const char *unit, size_t count, const char *after) {
    static char text[256 * 1024];
    size_t used = (size_t)snprintf(text, sizeof text, "%s", before);
    for (size_t index = 0; index < count; index++) {
        used += (size_t)snprintf(text + used, sizeof text - used, "%s", unit);
    }
    snprintf(text + used, sizeof text - used, "%s", after);
    return text;
}

static char *to_text(const struct task *task) {
    size_t length = 0;
    char *text = task_to_json_string(task, &length);
    if (text != NULL && strlen(text) != length) abort();
    return text;
}

/* A fully populated task with millisecond times (the API's precision). */
static void sample(struct task *task) {
    struct task_errors errors;
    const char *body =
        "{\"title\":\"Pay rent \xc3\xa9\",\"description\":\"line one\\nline two\","
        "\"priority\":\"high\",\"tags\":[\"home\",\"money\"],\"due\":\"2026-03-01T08:00:00Z\","
        "\"timezone\":\"America/New_York\",\"recurrence\":{\"rule\":\"FREQ=MONTHLY;BYMONTHDAY=1\","
        "\"from\":\"due\"},\"reminders\":[{\"before\":\"P1D\"},{\"at\":\"2026-02-28T12:00:00.5Z\"}]}";
    if (create(body, task, &errors) != 0) abort();
    snprintf(task->id, sizeof task->id, "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");
    snprintf(task->owner_id, sizeof task->owner_id, "0190a1b2-0000-7000-8000-000000000001");
    task->created_at_ns = T0_NS + 123000000;
    task->updated_at_ns = T0_NS + 123000000;
    task->version = 1;
}

/* ---- create: defaults and accepted values ------------------------------- */

TEST(task_create_minimal_gets_defaults) {
    /* Proves a body with only a title gets medium priority, an empty
     * description, the owner's timezone and no due date or reminders. */
    struct task task;
    struct task_errors errors;
    EXPECT_EQ_INT(create("{\"title\":\"Buy milk\"}", &task, &errors), 0);
    EXPECT_STR(task.title, "Buy milk");
    EXPECT_STR(task.description, "");
    EXPECT_EQ_INT(task.priority, TASK_PRIORITY_MEDIUM);
    EXPECT_STR(task.timezone, "Europe/Berlin");
    EXPECT(!task.has_due && !task.has_recurrence && !task.completed);
    EXPECT_EQ_INT(task.tag_count, 0);
    EXPECT_EQ_INT(task.reminder_count, 0);
    task_free(&task);
    EXPECT_EQ_INT(task_parse_create("{\"title\":\"x\"}", 13, NULL, &task, &errors), 0);
    EXPECT_STR(task.timezone, "UTC");
    task_free(&task);
}

TEST(task_create_full_body) {
    /* Proves every field of a full body lands in the struct, the rule is
     * normalised and tags keep their order. */
    struct task task;
    sample(&task);
    EXPECT_STR(task.title, "Pay rent \xc3\xa9");
    EXPECT_STR(task.description, "line one\nline two");
    EXPECT_EQ_INT(task.priority, TASK_PRIORITY_HIGH);
    EXPECT_EQ_INT(task.tag_count, 2);
    EXPECT_STR(task.tags[0], "home");
    EXPECT_STR(task.tags[1], "money");
    EXPECT(task.has_due);
    EXPECT_EQ_INT(task.due_ns, INT64_C(1772352000) * SECOND_NS);
    EXPECT_STR(task.timezone, "America/New_York");
    EXPECT(task.has_recurrence);
    EXPECT_STR(task.rule, "FREQ=MONTHLY;BYMONTHDAY=1");
    EXPECT_EQ_INT(task.recurrence_from, TASK_RECURRENCE_FROM_DUE);
    EXPECT_EQ_INT(task.reminder_count, 2);
    EXPECT_EQ_INT(task.reminders[0].kind, TASK_REMINDER_BEFORE);
    EXPECT_EQ_INT(task.reminders[0].before_s, 86400);
    EXPECT_EQ_INT(task.reminders[1].kind, TASK_REMINDER_AT);
    EXPECT_EQ_INT(task.reminders[1].at_ns, INT64_C(1772280000) * SECOND_NS + 500000000);
    task_free(&task);
}

TEST(task_create_default_reminder) {
    /* Proves a due date without a "reminders" member gets [{"before":"PT15M"}],
     * while an explicit [] or null keeps none and no due date gets none. */
    struct task task;
    struct task_errors errors;
    EXPECT_EQ_INT(create("{\"title\":\"a\",\"due\":\"2026-02-10T10:00:00Z\"}", &task, &errors),
                  0);
    EXPECT_EQ_INT(task.reminder_count, 1);
    EXPECT_EQ_INT(task.reminders[0].kind, TASK_REMINDER_BEFORE);
    EXPECT_EQ_INT(task.reminders[0].before_s, 900);
    task_free(&task);
    EXPECT_EQ_INT(create("{\"title\":\"a\",\"due\":\"2026-02-10T10:00:00Z\",\"reminders\":[]}",
                         &task, &errors),
                  0);
    EXPECT_EQ_INT(task.reminder_count, 0);
    task_free(&task);
    EXPECT_EQ_INT(create("{\"title\":\"a\",\"due\":\"2026-02-10T10:00:00Z\",\"reminders\":null}",
                         &task, &errors),
                  0);
    EXPECT_EQ_INT(task.reminder_count, 0);
    task_free(&task);
    EXPECT_EQ_INT(create("{\"title\":\"a\",\"due\":null}", &task, &errors), 0);
    EXPECT_EQ_INT(task.reminder_count, 0);
    task_free(&task);
}

TEST(task_create_tags_deduplicated_in_first_order) {
    /* Proves duplicate tags are dropped, keeping each first occurrence. */
    struct task task;
    struct task_errors errors;
    EXPECT_EQ_INT(create("{\"title\":\"a\",\"tags\":[\"b\",\"a\",\"b\",\"c\",\"a\",\"B\"]}",
                         &task, &errors),
                  0);
    EXPECT_EQ_INT(task.tag_count, 4);
    EXPECT_STR(task.tags[0], "b");
    EXPECT_STR(task.tags[1], "a");
    EXPECT_STR(task.tags[2], "c");
    EXPECT_STR(task.tags[3], "B");
    task_free(&task);
}

TEST(task_create_accepts_bounds) {
    /* Proves the limits are inclusive: 500 two-byte characters of title, a
     * 65536-byte description, 50 tags of 64 bytes, 20 reminders. */
    struct task task;
    struct task_errors errors;
    EXPECT_EQ_INT(create(repeat("{\"title\":\"", "\xc3\xa9", 500, "\"}"), &task, &errors), 0);
    EXPECT_EQ_INT(strlen(task.title), 1000);
    task_free(&task);
    EXPECT_EQ_INT(create(repeat("{\"title\":\"a\",\"description\":\"", "x", 65536, "\"}"), &task,
                         &errors),
                  0);
    task_free(&task);
    char body[8192];
    size_t used = (size_t)snprintf(body, sizeof body, "{\"title\":\"a\",\"tags\":[");
    for (int index = 0; index < 50; index++) {
        used += (size_t)snprintf(body + used, sizeof body - used, "%s\"%02d%s\"",
                                 index ? "," : "", index, repeat("", "t", 62, ""));
    }
    snprintf(body + used, sizeof body - used, "]}");
    EXPECT_EQ_INT(create(body, &task, &errors), 0);
    EXPECT_EQ_INT(task.tag_count, 50);
    task_free(&task);
    EXPECT_EQ_INT(create(repeat("{\"title\":\"a\",\"reminders\":[{\"before\":\"PT0S\"}",
                                ",{\"before\":\"PT1M\"}", 19, "]}"),
                         &task, &errors),
                  0);
    EXPECT_EQ_INT(task.reminder_count, 20);
    task_free(&task);
}

/* ---- create: each field's errors ----------------------------------------- */

TEST(task_title_errors) {
    /* Proves each title rule yields 422 on field "title" with its message,
     * characters being counted as UTF-8 code points, not bytes. */
    EXPECT(rejects("{}", "title", "is required"));
    EXPECT(rejects("{\"title\":\"\"}", "title", "must not be empty"));
    EXPECT(rejects("{\"title\":12}", "title", "must be a string"));
    EXPECT(rejects("{\"title\":null}", "title", "must be a string"));
    EXPECT(rejects("{\"title\":[\"a\"]}", "title", "must be a string"));
    EXPECT(rejects(repeat("{\"title\":\"", "\xc3\xa9", 501, "\"}"), "title",
                   "must be at most 500 characters"));
    EXPECT(rejects(repeat("{\"title\":\"", "a", 501, "\"}"), "title",
                   "must be at most 500 characters"));
    EXPECT(rejects("{\"title\":\"   \"}", "title", "must not be blank"));
    EXPECT(rejects("{\"title\":\" \\u3000\\u00a0\\u200b \"}", "title", "must not be blank"));
    EXPECT(rejects("{\"title\":\"a\\u0001b\"}", "title", "must not contain control characters"));
    EXPECT(rejects("{\"title\":\"a\\nb\"}", "title", "must not contain control characters"));
    EXPECT(rejects("{\"title\":\"a\\u0000b\"}", "title", "must not contain control characters"));
}

TEST(task_description_errors) {
    /* Proves description may be null (empty) or hold tabs and newlines, but
     * not exceed 64 KiB, other controls or be a non-string. */
    struct task task;
    struct task_errors errors;
    EXPECT_EQ_INT(create("{\"title\":\"a\",\"description\":null}", &task, &errors), 0);
    EXPECT_STR(task.description, "");
    task_free(&task);
    EXPECT_EQ_INT(create("{\"title\":\"a\",\"description\":\"a\\tb\\r\\nc\"}", &task, &errors),
                  0);
    EXPECT_STR(task.description, "a\tb\r\nc");
    task_free(&task);
    EXPECT(rejects(repeat("{\"title\":\"a\",\"description\":\"", "x", 65537, "\"}"),
                   "description", "must be at most 65536 bytes"));
    EXPECT(rejects("{\"title\":\"a\",\"description\":7}", "description",
                   "must be a string or null"));
    EXPECT(rejects("{\"title\":\"a\",\"description\":\"\\u0000\"}", "description",
                   "must not contain control characters other than tab and line breaks"));
}

TEST(task_tags_errors) {
    /* Proves tag errors name the array ("tags") or the element ("tags.N"). */
    EXPECT(rejects("{\"title\":\"a\",\"tags\":\"home\"}", "tags", "must be an array of strings"));
    EXPECT(rejects("{\"title\":\"a\",\"tags\":[\"a\",3]}", "tags.1", "must be a string"));
    EXPECT(rejects("{\"title\":\"a\",\"tags\":[\"\"]}", "tags.0", "must not be empty"));
    EXPECT(rejects(repeat("{\"title\":\"a\",\"tags\":[\"ok\",\"", "t", 65, "\"]}"), "tags.1",
                   "must be at most 64 bytes"));
    EXPECT(rejects("{\"title\":\"a\",\"tags\":[\"a\\tb\"]}", "tags.0",
                   "must not contain control characters"));
    EXPECT(rejects(repeat("{\"title\":\"a\",\"tags\":[\"x\"", ",\"x\"", 50, "]}"), "tags",
                   "must have at most 50 tags"));
}

TEST(task_priority_due_timezone_errors) {
    /* Proves priority, due and timezone reject unknown names, non-RFC 3339
     * times (with timefmt's precise message) and unknown zones. */
    EXPECT(rejects("{\"title\":\"a\",\"priority\":\"critical\"}", "priority",
                   "must be one of low, medium, high, urgent"));
    EXPECT(rejects("{\"title\":\"a\",\"priority\":\"HIGH\"}", "priority",
                   "must be one of low, medium, high, urgent"));
    EXPECT(rejects("{\"title\":\"a\",\"priority\":2}", "priority",
                   "must be one of low, medium, high, urgent"));
    EXPECT(rejects("{\"title\":\"a\",\"due\":\"tomorrow\"}", "due",
                   "must be an RFC 3339 time, e.g. 2026-02-10T09:45:00Z"));
    EXPECT(rejects("{\"title\":\"a\",\"due\":\"2026-02-30T10:00:00Z\"}", "due",
                   "has a day that does not exist in that month"));
    EXPECT(rejects("{\"title\":\"a\",\"due\":1770716700}", "due",
                   "must be an RFC 3339 time, e.g. 2026-02-10T09:45:00Z"));
    const char *zone_message = "must be an IANA time zone name, e.g. Europe/Berlin";
    EXPECT(rejects("{\"title\":\"a\",\"timezone\":\"Mars/Olympus_Mons\"}", "timezone",
                   zone_message));
    EXPECT(rejects("{\"title\":\"a\",\"timezone\":\"../../etc/passwd\"}", "timezone",
                   zone_message));
    EXPECT(rejects("{\"title\":\"a\",\"timezone\":null}", "timezone", zone_message));
    struct task task;
    struct task_errors errors;
    for (int index = 0; index < 4; index++) {
        char body[96];
        snprintf(body, sizeof body, "{\"title\":\"a\",\"priority\":\"%s\",\"timezone\":\"US/Eastern\"}",
                 task_priority_name((enum task_priority)index));
        EXPECT_EQ_INT(create(body, &task, &errors), 0);
        EXPECT_EQ_INT(task.priority, index);
        EXPECT_STR(task.timezone, "US/Eastern");
        task_free(&task);
    }
}

TEST(task_recurrence_errors) {
    /* Proves recurrence must be an object with a valid rule (the RRULE
     * parser's message on "recurrence.rule") and a known "from". */
    EXPECT(rejects("{\"title\":\"a\",\"recurrence\":\"FREQ=DAILY\"}", "recurrence",
                   "must be an object {\"rule\", \"from\"} or null"));
    EXPECT(rejects("{\"title\":\"a\",\"recurrence\":{}}", "recurrence.rule", "is required"));
    EXPECT(rejects("{\"title\":\"a\",\"recurrence\":{\"rule\":\"FREQ=DAILY;BYDAY=MO\"}}",
                   "recurrence.rule", "BYDAY is only supported with FREQ=WEEKLY"));
    EXPECT(rejects("{\"title\":\"a\",\"recurrence\":{\"rule\":5}}", "recurrence.rule",
                   "must be an RRULE string, e.g. FREQ=WEEKLY;BYDAY=MO"));
    EXPECT(rejects("{\"title\":\"a\",\"recurrence\":{\"rule\":\"FREQ=DAILY\",\"from\":\"x\"}}",
                   "recurrence.from", "must be one of due, completion, schedule"));
    EXPECT(rejects("{\"title\":\"a\",\"recurrence\":{\"rule\":\"FREQ=DAILY\",\"every\":2}}",
                   "recurrence.every", "is not a recurrence field"));
    EXPECT(rejects("{\"title\":\"a\",\"recurrence\":{\"rule\":\"FREQ=DAILY\",\"rule\":\"x\"}}",
                   "recurrence.rule", "is given more than once"));
    struct task task;
    struct task_errors errors;
    EXPECT_EQ_INT(create("{\"title\":\"a\",\"recurrence\":{\"rule\":\"byday=fr,mo;freq=weekly\","
                         "\"from\":\"completion\"}}",
                         &task, &errors),
                  0);
    EXPECT_STR(task.rule, "FREQ=WEEKLY;BYDAY=MO,FR");
    EXPECT_EQ_INT(task.recurrence_from, TASK_RECURRENCE_FROM_COMPLETION);
    task_free(&task);
}

TEST(task_reminders_errors) {
    /* Proves reminder errors name the entry ("reminders.0") or its member
     * ("reminders.0.before"), including negative and malformed durations. */
    EXPECT(rejects("{\"title\":\"a\",\"reminders\":{}}", "reminders", "must be an array"));
    EXPECT(rejects("{\"title\":\"a\",\"reminders\":[5]}", "reminders.0",
                   "must be an object with \"before\" or \"at\""));
    EXPECT(rejects("{\"title\":\"a\",\"reminders\":[{\"before\":\"PT1M\","
                   "\"at\":\"2026-02-10T10:00:00Z\"}]}",
                   "reminders.0", "must have \"before\" or \"at\", not both"));
    EXPECT(rejects("{\"title\":\"a\",\"reminders\":[{}]}", "reminders.0",
                   "must have \"before\" or \"at\""));
    const char *duration = "must be an ISO 8601 duration, e.g. PT15M or P1D";
    EXPECT(rejects("{\"title\":\"a\",\"reminders\":[{\"before\":\"-PT15M\"}]}",
                   "reminders.0.before", duration));
    EXPECT(rejects("{\"title\":\"a\",\"reminders\":[{\"before\":\"15 minutes\"}]}",
                   "reminders.0.before", duration));
    EXPECT(rejects("{\"title\":\"a\",\"reminders\":[{\"before\":-900}]}", "reminders.0.before",
                   duration));
    EXPECT(rejects("{\"title\":\"a\",\"reminders\":[{\"before\":\"PT1M\"},{\"at\":\"noon\"}]}",
                   "reminders.1.at", "must be an RFC 3339 time, e.g. 2026-02-10T09:45:00Z"));
    EXPECT(rejects("{\"title\":\"a\",\"reminders\":[{\"before\":\"PT1M\",\"via\":\"email\"}]}",
                   "reminders.0.via", "is not a reminder field"));
    EXPECT(rejects(repeat("{\"title\":\"a\",\"reminders\":[{\"before\":\"PT0S\"}",
                          ",{\"before\":\"PT1M\"}", 20, "]}"),
                   "reminders", "must have at most 20 reminders"));
}

TEST(task_member_errors) {
    /* Proves unknown, read-only and repeated members are 422 naming the
     * member, and that all errors of a body are reported together. */
    EXPECT(rejects("{\"title\":\"a\",\"colour\":\"red\"}", "colour", "is not a task field"));
    EXPECT(rejects("{\"title\":\"a\",\"owner_id\":\"x\"}", "owner_id", "is not a task field"));
    const char *read_only[] = {"id", "version", "created_at", "updated_at", "completed_at",
                               "parent_id"};
    for (size_t index = 0; index < 6; index++) {
        char body[96];
        snprintf(body, sizeof body, "{\"title\":\"a\",\"%s\":null}", read_only[index]);
        EXPECT(rejects(body, read_only[index], "is read-only"));
    }
    EXPECT(rejects("{\"title\":\"a\",\"title\":\"b\"}", "title", "is given more than once"));
    EXPECT(rejects("{\"title\":\"a\",\"completed\":\"yes\"}", "completed", "must be true or false"));
    struct task task;
    struct task_errors errors;
    EXPECT_EQ_INT(create("{\"title\":\"\",\"priority\":\"x\",\"tags\":[1,2],\"id\":1,\"zz\":0}",
                         &task, &errors),
                  ERR_INVAL);
    EXPECT_EQ_INT(errors.count, 6);
    EXPECT_STR(errors.items[2].field, "tags.0");
    EXPECT_STR(errors.items[3].field, "tags.1");
    EXPECT_EQ_INT(task.title == NULL && task.tags == NULL, 1);
    /* A long unknown name is cut to fit the field path. */
    EXPECT_EQ_INT(create(repeat("{\"title\":\"a\",\"", "\xc3\xa9", 100, "\":1}"), &task, &errors),
                  ERR_INVAL);
    EXPECT(strlen(errors.items[0].field) <= 63);
    EXPECT_EQ_INT(strlen(errors.items[0].field) % 2, 0);
    /* More errors than the list holds: the count still says how many. */
    EXPECT_EQ_INT(create(repeat("{\"title\":\"a\",\"tags\":[0", ",0", 29, "]}"), &task, &errors),
                  ERR_INVAL);
    EXPECT_EQ_INT(errors.count, 30);
}

TEST(task_body_not_an_object) {
    /* Proves that what is not a strict JSON object is ERR_PARSE (400) with
     * one error of field "": arrays, syntax errors, comments, trailing
     * commas, invalid UTF-8, an empty body and nesting deeper than 8. */
    EXPECT(malformed("[]", 2));
    EXPECT(malformed("\"title\"", 7));
    EXPECT(malformed("{", 1));
    EXPECT(malformed("", 0));
    EXPECT(malformed(NULL, 0));
    EXPECT(malformed("{\"title\":\"a\",}", 14));
    EXPECT(malformed("{\"title\":\"a\"} // note", 21));
    EXPECT(malformed("{/*c*/\"title\":\"a\"}", 18));
    EXPECT(malformed("{\"title\":\"\xff\"}", 13));
    EXPECT(malformed("{\"title\":\"\xc3\"}", 13));
    EXPECT(malformed("{\"title\":\"a\"}\0", 14));
    const char *deep = "{\"x\":[[[[[[[[1]]]]]]]]}";
    EXPECT(malformed(deep, strlen(deep)));
    struct task task;
    struct task_errors errors;
    EXPECT_EQ_INT(task_parse_create(deep, strlen(deep), &defaults, &task, &errors), ERR_PARSE);
    EXPECT_STR(errors.items[0].message,
               "the body nests arrays and objects more than 8 levels deep");
    /* Eight levels are fine: the member is then simply unknown. */
    EXPECT(rejects("{\"title\":\"a\",\"x\":[[[[[[[1]]]]]]]}", "x", "is not a task field"));
    EXPECT_EQ_INT(task_parse_create("{\"title\":\"\xff\"}", 13, &defaults, &task, &errors),
                  ERR_PARSE);
    EXPECT(strstr(errors.items[0].message, "not valid JSON") != NULL);
}

/* ---- patch, apply, diff --------------------------------------------------- */

TEST(task_patch_fields_and_null_clearing) {
    /* Proves a patch records which members it named, that null clears the
     * clearable fields, that {} is a valid empty patch, and that null for
     * title, priority or timezone is 422. */
    struct task_patch patch;
    struct task_errors errors;
    EXPECT_EQ_INT(task_parse_patch("{}", 2, &patch, &errors), 0);
    EXPECT_EQ_INT(patch.fields, 0);
    task_patch_free(&patch);
    const char *clear = "{\"description\":null,\"due\":null,\"tags\":null,\"reminders\":null,"
                        "\"recurrence\":null,\"completed\":true}";
    EXPECT_EQ_INT(task_parse_patch(clear, strlen(clear), &patch, &errors), 0);
    EXPECT_EQ_INT(patch.fields, TASK_FIELD_DESCRIPTION | TASK_FIELD_DUE | TASK_FIELD_TAGS |
                                    TASK_FIELD_REMINDERS | TASK_FIELD_RECURRENCE |
                                    TASK_FIELD_COMPLETED);
    EXPECT_STR(patch.values.description, "");
    EXPECT(!patch.values.has_due && !patch.values.has_recurrence && patch.values.completed);
    EXPECT_EQ_INT(patch.values.tag_count + patch.values.reminder_count, 0);
    task_patch_free(&patch);
    const char *nulls[] = {"title", "priority", "timezone"};
    for (size_t index = 0; index < 3; index++) {
        char body[64];
        snprintf(body, sizeof body, "{\"%s\":null}", nulls[index]);
        EXPECT_EQ_INT(task_parse_patch(body, strlen(body), &patch, &errors), ERR_INVAL);
        EXPECT_EQ_INT(errors.count, 1);
        EXPECT_STR(errors.items[0].field, nulls[index]);
        EXPECT_EQ_INT(patch.fields, 0);
    }
    EXPECT_EQ_INT(task_parse_patch("{\"version\":3}", 13, &patch, &errors), ERR_INVAL);
    EXPECT(only_error(&errors, "version", "is read-only"));
    EXPECT_EQ_INT(task_parse_patch("[1]", 3, &patch, &errors), ERR_PARSE);
    /* A patch naming due without reminders does not add the default. */
    EXPECT_EQ_INT(task_parse_patch("{\"due\":\"2026-02-10T10:00:00Z\"}", 30, &patch, &errors), 0);
    EXPECT_EQ_INT(patch.values.reminder_count, 0);
    task_patch_free(&patch);
}

/* Writes the JSON text of task_diff(before, after) into `out`. */
static int diff_text(const struct task *before, const struct task *after, char *out,
                     size_t size) {
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    yyjson_mut_val *changes = yyjson_mut_obj(doc);
    yyjson_mut_doc_set_root(doc, changes);
    int count = task_diff(before, after, doc, changes);
    char *text = yyjson_mut_write(doc, 0, NULL);
    snprintf(out, size, "%s", text);
    free(text);
    yyjson_mut_doc_free(doc);
    return count;
}

TEST(task_apply_patch_and_diff) {
    /* Proves apply_patch changes only the named fields (version and times
     * untouched) and task_diff lists exactly the changed fields, in order,
     * with old and new in their JSON forms. */
    struct task current;
    sample(&current);
    struct task_patch patch;
    struct task_errors errors;
    const char *body = "{\"title\":\"Pay rent now\",\"due\":null,\"tags\":[\"money\",\"home\"],"
                       "\"priority\":\"high\",\"reminders\":null,\"recurrence\":null}";
    EXPECT_EQ_INT(task_parse_patch(body, strlen(body), &patch, &errors), 0);
    struct task after;
    EXPECT_EQ_INT(task_apply_patch(&current, &patch, &after), 0);
    EXPECT_STR(after.title, "Pay rent now");
    EXPECT_STR(after.description, current.description);
    EXPECT(!after.has_due && !after.has_recurrence);
    EXPECT_EQ_INT(after.version, 1);
    EXPECT_EQ_INT(after.updated_at_ns, current.updated_at_ns);
    EXPECT_STR(after.id, current.id);
    EXPECT_STR(after.owner_id, current.owner_id);
    char text[2048];
    EXPECT_EQ_INT(diff_text(&current, &after, text, sizeof text), 5);
    EXPECT_STR(text,
               "{\"title\":{\"old\":\"Pay rent \xc3\xa9\",\"new\":\"Pay rent now\"},"
               "\"tags\":{\"old\":[\"home\",\"money\"],\"new\":[\"money\",\"home\"]},"
               "\"due\":{\"old\":\"2026-03-01T08:00:00Z\",\"new\":null},"
               "\"recurrence\":{\"old\":{\"rule\":\"FREQ=MONTHLY;BYMONTHDAY=1\",\"from\":\"due\",\"series_start\":null,\"index\":0},"
               "\"new\":null},"
               "\"reminders\":{\"old\":[{\"before\":\"P1D\"},{\"at\":\"2026-02-28T12:00:00.500Z\"}],"
               "\"new\":[]}}");
    EXPECT_EQ_INT(diff_text(&current, &current, text, sizeof text), 0);
    EXPECT_STR(text, "{}");
    task_patch_free(&patch);
    task_free(&after);
    task_free(&current);
}

/* ---- JSON forms ------------------------------------------------------------ */

TEST(task_to_json_exact_text) {
    /* Proves the API object's member order and value forms. */
    struct task task;
    sample(&task);
    task.parent_id[0] = '\0';
    char *text = to_text(&task);
    EXPECT_STR(text,
               "{\"id\":\"0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b\",\"title\":\"Pay rent \xc3\xa9\","
               "\"description\":\"line one\\nline two\",\"completed\":false,\"completed_at\":null,"
               "\"priority\":\"high\",\"tags\":[\"home\",\"money\"],"
               "\"due\":\"2026-03-01T08:00:00Z\",\"timezone\":\"America/New_York\","
               "\"recurrence\":{\"rule\":\"FREQ=MONTHLY;BYMONTHDAY=1\",\"from\":\"due\",\"series_start\":null,\"index\":0},"
               "\"reminders\":[{\"before\":\"P1D\"},{\"at\":\"2026-02-28T12:00:00.500Z\"}],"
               "\"parent_id\":null,\"created_at\":\"2026-02-10T09:45:00.123Z\","
               "\"updated_at\":\"2026-02-10T09:45:00.123Z\",\"version\":1}");
    mem_free(text);
    task_free(&task);
}

/* to_json -> from_json -> to_json, expecting the same text and fields. */
static bool round_trips(const struct task *task) {
    char *first = to_text(task);
    yyjson_doc *doc = yyjson_read(first, strlen(first), 0);
    struct task back;
    int rc = task_from_json(yyjson_doc_get_root(doc), &back);
    yyjson_doc_free(doc);
    if (rc != 0) {
        mem_free(first);
        return false;
    }
    char *second = to_text(&back);
    bool same = strcmp(first, second) == 0 && back.version == task->version &&
                back.created_at_ns == task->created_at_ns && back.due_ns == task->due_ns &&
                back.completed_at_ns == task->completed_at_ns && back.owner_id[0] == '\0';
    mem_free(first);
    mem_free(second);
    task_free(&back);
    return same;
}

TEST(task_json_round_trip) {
    /* Proves task_from_json reads back exactly what task_to_json wrote, for
     * a full task, a completed spawned one and an empty-ish one. */
    struct task task;
    sample(&task);
    EXPECT(round_trips(&task));
    task.completed = true;
    task.has_completed_at = true;
    task.completed_at_ns = T0_NS + 7 * SECOND_NS;
    snprintf(task.parent_id, sizeof task.parent_id, "0190a1b2-c3d4-7e5f-8a6b-000000000000");
    task.recurrence_from = TASK_RECURRENCE_FROM_SCHEDULE;
    task.version = INT64_C(9007199254740993);
    EXPECT(round_trips(&task));
    task_free(&task);
    struct task_errors errors;
    EXPECT_EQ_INT(create("{\"title\":\"x\"}", &task, &errors), 0);
    EXPECT(round_trips(&task));
    task_free(&task);
}

TEST(task_from_json_rejects_bad_shapes) {
    /* Proves a missing or mistyped member is ERR_PARSE and leaves an empty
     * task behind; unknown members ("deleted_at") are ignored. */
    struct task task;
    sample(&task);
    char *text = to_text(&task);
    task_free(&task);
    const char *members[] = {"id", "title", "description", "completed", "completed_at",
                             "priority", "tags", "due", "timezone", "recurrence", "reminders",
                             "parent_id", "created_at", "updated_at", "version"};
    for (size_t index = 0; index < 15; index++) {
        yyjson_doc *doc = yyjson_read(text, strlen(text), 0);
        yyjson_mut_doc *copy = yyjson_doc_mut_copy(doc, NULL);
        yyjson_doc_free(doc);
        yyjson_mut_val *root = yyjson_mut_doc_get_root(copy);
        for (int variant = 0; variant < 2; variant++) {
            if (variant == 0) yyjson_mut_obj_remove_str(root, members[index]);
            else yyjson_mut_obj_put(root, yyjson_mut_str(copy, members[index]),
                                    yyjson_mut_obj(copy));
            yyjson_doc *changed = yyjson_mut_doc_imut_copy(copy, NULL);
            int rc = task_from_json(yyjson_doc_get_root(changed), &task);
            yyjson_doc_free(changed);
            if (rc != ERR_PARSE) fprintf(stderr, "  member %s variant %d\n", members[index], variant);
            EXPECT_EQ_INT(rc, ERR_PARSE);
            EXPECT(task.title == NULL && task.tags == NULL && task.reminders == NULL);
        }
        yyjson_mut_doc_free(copy);
    }
    size_t length = strlen(text);
    char extended[4096];
    snprintf(extended, sizeof extended, "%.*s,\"deleted_at\":\"2026-02-10T09:45:00Z\"}",
             (int)(length - 1), text);
    yyjson_doc *doc = yyjson_read(extended, strlen(extended), 0);
    EXPECT_EQ_INT(task_from_json(yyjson_doc_get_root(doc), &task), 0);
    yyjson_doc_free(doc);
    task_free(&task);
    EXPECT_EQ_INT(task_from_json(NULL, &task), ERR_PARSE);
    mem_free(text);
}

/* ---- fold ------------------------------------------------------------------ */

/* Folds one event whose data is the JSON text `data`. */
static int fold_text(struct task *state, const char *type, const char *data) {
    yyjson_doc *doc = yyjson_read(data, strlen(data), 0);
    int rc = task_fold(state, type, yyjson_doc_get_root(doc));
    yyjson_doc_free(doc);
    return rc;
}

/* The task.updated data between two tasks, as the command layer builds it. */
static char *updated_data(const struct task *before, const struct task *after) {
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    yyjson_mut_val *data = yyjson_mut_obj(doc);
    yyjson_mut_val *changes = yyjson_mut_obj_add_obj(doc, data, "changes");
    task_diff(before, after, doc, changes);
    yyjson_mut_obj_add_int(doc, data, "version", after->version);
    char time[32];
    snprintf(time, sizeof time, "2026-02-10T09:%02d:00Z", (int)after->version);
    yyjson_mut_obj_add_strcpy(doc, data, "updated_at", time);
    yyjson_mut_doc_set_root(doc, data);
    char *text = yyjson_mut_write(doc, 0, NULL);
    yyjson_mut_doc_free(doc);
    return text;
}

static bool same_json(const struct task *one, const struct task *two) {
    char *first = to_text(one);
    char *second = to_text(two);
    bool same = strcmp(first, second) == 0;
    if (!same) fprintf(stderr, "  %s\n  %s\n", first, second);
    mem_free(first);
    mem_free(second);
    return same;
}

TEST(task_fold_reproduces_history) {
    /* Proves created -> updated -> due_changed -> completed -> uncompleted
     * folded from nothing equals the task the commands produced, and that
     * task.deleted returns 1 and other types change nothing. */
    struct task expected;
    sample(&expected);
    char *created = to_text(&expected);
    struct task state = {0};
    snprintf(state.owner_id, sizeof state.owner_id, "%s", expected.owner_id);
    EXPECT_EQ_INT(fold_text(&state, "task.created", created), 0);
    mem_free(created);
    EXPECT(same_json(&state, &expected));
    EXPECT_STR(state.owner_id, expected.owner_id);

    struct task_patch patch;
    struct task_errors errors;
    const char *body = "{\"title\":\"Renamed\",\"tags\":[\"z\"],\"timezone\":\"Asia/Tokyo\","
                       "\"description\":null,\"priority\":\"urgent\",\"due\":\"2026-04-01T00:00:00Z\","
                       "\"recurrence\":{\"rule\":\"FREQ=YEARLY\",\"from\":\"schedule\"},"
                       "\"reminders\":[{\"at\":\"2026-03-31T00:00:00Z\"}]}";
    EXPECT_EQ_INT(task_parse_patch(body, strlen(body), &patch, &errors), 0);
    struct task next;
    EXPECT_EQ_INT(task_apply_patch(&expected, &patch, &next), 0);
    task_patch_free(&patch);
    next.version = 2;
    next.updated_at_ns = T0_NS - 45 * 60 * SECOND_NS + 2 * 60 * SECOND_NS;
    char *data = updated_data(&expected, &next);
    EXPECT_EQ_INT(fold_text(&state, "task.updated", data), 0);
    free(data);
    EXPECT(same_json(&state, &next));

    EXPECT_EQ_INT(fold_text(&state, "task.due_changed",
                            "{\"old\":\"2026-04-01T00:00:00Z\",\"new\":null,\"version\":3,"
                            "\"updated_at\":\"2026-02-10T09:03:00Z\"}"),
                  0);
    EXPECT(!state.has_due && state.version == 3);
    EXPECT_EQ_INT(fold_text(&state, "task.completed",
                            "{\"completed_at\":\"2026-02-10T09:04:00Z\",\"version\":4,"
                            "\"updated_at\":\"2026-02-10T09:04:00Z\"}"),
                  0);
    EXPECT(state.completed && state.has_completed_at && state.version == 4);
    EXPECT_EQ_INT(state.completed_at_ns, T0_NS - 41 * 60 * SECOND_NS);
    EXPECT_EQ_INT(fold_text(&state, "task.uncompleted",
                            "{\"previous_completed_at\":\"2026-02-10T09:04:00Z\",\"version\":5,"
                            "\"updated_at\":\"2026-02-10T09:05:00Z\"}"),
                  0);
    EXPECT(!state.completed && !state.has_completed_at && state.version == 5);
    next.has_due = false;
    next.due_ns = 0;
    next.version = 5;
    next.updated_at_ns = T0_NS - 40 * 60 * SECOND_NS;
    EXPECT(same_json(&state, &next));
    EXPECT_EQ_INT(fold_text(&state, "reminder.triggered", "{\"whatever\":1}"), 0);
    EXPECT_EQ_INT(fold_text(&state, "recurrence.ended", "{\"reason\":\"count\"}"), 0);
    EXPECT_EQ_INT(fold_text(&state, "recurrence.spawned", "[]"), ERR_PARSE); /* folds as created */
    EXPECT(same_json(&state, &next));
    EXPECT_EQ_INT(fold_text(&state, "task.deleted", "{\"deleted_at\":\"2026-02-10T09:06:00Z\"}"),
                  1);
    EXPECT(same_json(&state, &next));
    task_free(&next);
    task_free(&state);
    task_free(&expected);
}

TEST(task_fold_rejects_bad_data) {
    /* Proves malformed data of a known type is ERR_PARSE and leaves the
     * state exactly as it was. */
    struct task state;
    sample(&state);
    char *before = to_text(&state);
    const char *bad[][2] = {
        {"task.updated", "{\"changes\":{\"title\":{\"new\":5}},\"version\":2,"
                         "\"updated_at\":\"2026-02-10T09:45:00Z\"}"},
        {"task.updated", "{\"changes\":{\"title\":{\"old\":\"a\"}},\"version\":2,"
                         "\"updated_at\":\"2026-02-10T09:45:00Z\"}"},
        {"task.updated", "{\"changes\":{\"title\":{\"new\":\"ok\"}},\"version\":\"2\","
                         "\"updated_at\":\"2026-02-10T09:45:00Z\"}"},
        {"task.updated", "{\"changes\":[],\"version\":2,\"updated_at\":\"2026-02-10T09:45:00Z\"}"},
        {"task.due_changed", "{\"new\":\"soon\",\"version\":2,\"updated_at\":\"2026-02-10T09:45:00Z\"}"},
        {"task.completed", "{\"version\":2,\"updated_at\":\"2026-02-10T09:45:00Z\"}"},
        {"task.uncompleted", "{\"version\":2}"},
        {"task.created", "{\"title\":\"only\"}"},
        {"task.deleted", "[]"},
    };
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        EXPECT_EQ_INT(fold_text(&state, bad[index][0], bad[index][1]), ERR_PARSE);
        char *after = to_text(&state);
        EXPECT_STR(after, before);
        mem_free(after);
    }
    EXPECT_EQ_INT(task_fold(&state, "task.completed", NULL), ERR_PARSE);
    /* An unknown changed field is skipped (a newer writer may diff more). */
    EXPECT_EQ_INT(fold_text(&state, "task.updated",
                            "{\"changes\":{\"colour\":{\"new\":\"red\"}},\"version\":2,"
                            "\"updated_at\":\"2026-02-10T09:45:00Z\"}"),
                  0);
    EXPECT_EQ_INT(state.version, 2);
    mem_free(before);
    task_free(&state);
}

TEST(task_copy_and_names) {
    /* Proves task_copy is deep and the enum names parse back. */
    struct task task;
    sample(&task);
    struct task copy;
    EXPECT_EQ_INT(task_copy(&copy, &task), 0);
    EXPECT(copy.title != task.title && copy.tags[0] != task.tags[0]);
    EXPECT(same_json(&copy, &task));
    task_free(&task);
    task_free(&copy);
    EXPECT_EQ_INT(task_priority_parse("urgent", 6), TASK_PRIORITY_URGENT);
    EXPECT_EQ_INT(task_priority_parse("urgen", 5), -1);
    EXPECT_EQ_INT(task_recurrence_from_parse("schedule", 8), TASK_RECURRENCE_FROM_SCHEDULE);
    EXPECT_EQ_INT(task_recurrence_from_parse("", 0), -1);
    EXPECT_STR(task_recurrence_from_name(TASK_RECURRENCE_FROM_COMPLETION), "completion");
}

/* ---- allocation failure ------------------------------------------------- */

TEST(task_survives_allocation_failure) {
    /* Proves that failing the N-th allocation, for every N, makes
     * parse_create, parse_patch, apply_patch, to_json, from_json and fold
     * return ERR_NOMEM (or NULL) and leak nothing (the sanitizer build
     * checks leaks), until N is large enough for success. */
    const char *body =
        "{\"title\":\"a\",\"description\":\"d\",\"tags\":[\"x\",\"y\",\"x\"],"
        "\"due\":\"2026-03-01T08:00:00Z\",\"recurrence\":{\"rule\":\"FREQ=DAILY\"},"
        "\"reminders\":[{\"before\":\"PT5M\"},{\"at\":\"2026-03-01T07:00:00Z\"}]}";
    struct task_errors errors;
    int successes = 0;
    for (long budget = 0; budget < 400 && successes < 3; budget++) {
        struct task task;
        mem_fail_after(budget);
        int rc = task_parse_create(body, strlen(body), &defaults, &task, &errors);
        struct task_patch patch;
        int patch_rc = task_parse_patch(body, strlen(body), &patch, &errors);
        mem_fail_after(-1);
        EXPECT(rc == 0 || rc == ERR_NOMEM);
        EXPECT(patch_rc == 0 || patch_rc == ERR_NOMEM);
        if (rc == 0 && patch_rc == 0) {
            struct task after;
            mem_fail_after(budget);
            int apply_rc = task_apply_patch(&task, &patch, &after);
            char *text = task_to_json_string(&task, NULL);
            mem_fail_after(-1);
            EXPECT(apply_rc == 0 || apply_rc == ERR_NOMEM);
            if (apply_rc == 0) task_free(&after);
            if (text != NULL) {
                yyjson_doc *doc = yyjson_read(text, strlen(text), 0);
                struct task back;
                struct task state = {0};
                mem_fail_after(budget);
                int from_rc = task_from_json(yyjson_doc_get_root(doc), &back);
                int fold_rc = task_fold(&state, "task.created", yyjson_doc_get_root(doc));
                mem_fail_after(-1);
                EXPECT(from_rc == 0 || from_rc == ERR_NOMEM);
                EXPECT(fold_rc == 0 || fold_rc == ERR_NOMEM);
                if (from_rc == 0) task_free(&back);
                task_free(&state);
                yyjson_doc_free(doc);
                if (apply_rc == 0 && from_rc == 0 && fold_rc == 0) successes++;
                mem_free(text);
            }
        }
        if (rc == 0) task_free(&task);
        if (patch_rc == 0) task_patch_free(&patch);
    }
    EXPECT_EQ_INT(successes, 3);
}

static void *seam_malloc(void *context, size_t size) {
    (void)context;
    return mem_alloc(size);
}

static void *seam_realloc(void *context, void *pointer, size_t old_size, size_t size) {
    (void)context;
    (void)old_size;
    return mem_realloc(pointer, size);
}

static void seam_free(void *context, void *pointer) {
    (void)context;
    mem_free(pointer);
}

TEST(task_diff_survives_allocation_failure) {
    /* Proves task_diff and task_to_json report ERR_NOMEM / NULL when the
     * caller's document cannot grow, for every failing allocation. */
    static const yyjson_alc seam = {seam_malloc, seam_realloc, seam_free, NULL};
    struct task before;
    sample(&before);
    struct task after;
    EXPECT_EQ_INT(task_copy(&after, &before), 0);
    mem_free(after.title);
    after.title = mem_strdup("other");
    after.has_due = false;
    after.tag_count = 1;
    int successes = 0;
    for (long budget = 0; budget < 200 && successes < 2; budget++) {
        yyjson_mut_doc *doc = yyjson_mut_doc_new(&seam);
        if (doc == NULL) abort();
        yyjson_mut_val *changes = yyjson_mut_obj(doc);
        mem_fail_after(budget);
        int count = changes != NULL ? task_diff(&before, &after, doc, changes) : ERR_NOMEM;
        yyjson_mut_val *object = task_to_json(&after, doc);
        mem_fail_after(-1);
        yyjson_mut_doc_free(doc);
        EXPECT(count == 3 || count == ERR_NOMEM);
        if (count == 3 && object != NULL) successes++;
    }
    EXPECT_EQ_INT(successes, 2);
    after.tag_count = 2;
    task_free(&after);
    task_free(&before);
}
