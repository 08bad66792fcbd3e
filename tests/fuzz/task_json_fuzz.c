/*
 * task_json_fuzz.c - libFuzzer target for the task model's parsers. The
 * first input byte chooses one (mod 4): 0 a POST body (task_parse_create),
 * 1 a PATCH body (task_parse_patch, applied to a fixed task and diffed),
 * 2 an event record (event_parse, then task_fold of its data), 3 an RRULE
 * (rrule_parse). Beyond "no crash, no leak" it checks invariants: errors
 * always serialise as valid JSON (the HTTP layer writes them back), an
 * accepted task round-trips through its JSON form exactly, and a parsed
 * rule's normalised text parses back to the same rule.
 */
#include "../../src/base/check.h"
#include "../../src/base/err.h"
#include "../../src/base/mem.h"
#include "../../src/tasks/event.h"
#include "../../src/tasks/recurrence.h"
#include "../../src/tasks/task.h"

#include <yyjson.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Field paths and messages must be valid UTF-8: yyjson refuses to write
 * anything else, so a bad one would turn a 422 into a 500. */
static void check_errors_serialise(const struct task_errors *errors) {
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    CHECK(doc != NULL);
    yyjson_mut_val *array = yyjson_mut_arr(doc);
    yyjson_mut_doc_set_root(doc, array);
    for (size_t index = 0; index < errors->count && index < TASK_ERRORS_MAX; index++) {
        yyjson_mut_val *object = yyjson_mut_arr_add_obj(doc, array);
        yyjson_mut_obj_add_str(doc, object, "field", errors->items[index].field);
        yyjson_mut_obj_add_str(doc, object, "message", errors->items[index].message);
        CHECK(errors->items[index].message[0] != '\0');
    }
    char *text = yyjson_mut_write(doc, 0, NULL);
    CHECK(text != NULL);
    free(text);
    yyjson_mut_doc_free(doc);
}

/* to_json -> from_json -> to_json gives the same text. */
static void check_round_trip(const struct task *task) {
    size_t length = 0;
    char *first = task_to_json_string(task, &length);
    CHECK(first != NULL);
    yyjson_doc *doc = yyjson_read(first, length, 0);
    CHECK(doc != NULL);
    struct task back;
    CHECK(task_from_json(yyjson_doc_get_root(doc), &back) == 0);
    yyjson_doc_free(doc);
    char *second = task_to_json_string(&back, NULL);
    CHECK(second != NULL && strcmp(first, second) == 0);
    mem_free(first);
    mem_free(second);
    task_free(&back);
}

static void fuzz_create(const char *body, size_t size) {
    static const struct task_defaults defaults = {.timezone = "UTC"};
    struct task task;
    struct task_errors errors;
    int rc = task_parse_create(body, size, &defaults, &task, &errors);
    CHECK(rc == 0 || rc == ERR_PARSE || rc == ERR_INVAL);
    CHECK((rc == 0) == (errors.count == 0));
    check_errors_serialise(&errors);
    if (rc != 0) {
        CHECK(task.title == NULL && task.tags == NULL && task.reminders == NULL);
        return;
    }
    CHECK(task.title != NULL && task.description != NULL);
    CHECK(task.tag_count <= LIMIT_TASK_TAGS && task.reminder_count <= LIMIT_TASK_REMINDERS);
    strcpy(task.id, "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");
    task.version = 1;
    check_round_trip(&task);
    task_free(&task);
}

static void fuzz_patch(const char *body, size_t size) {
    struct task_patch patch;
    struct task_errors errors;
    int rc = task_parse_patch(body, size, &patch, &errors);
    CHECK(rc == 0 || rc == ERR_PARSE || rc == ERR_INVAL);
    check_errors_serialise(&errors);
    if (rc != 0) {
        CHECK(patch.fields == 0);
        return;
    }
    static const char base_body[] = "{\"title\":\"base\",\"tags\":[\"a\"],"
                                    "\"due\":\"2026-02-10T09:45:00Z\"}";
    struct task base;
    CHECK(task_parse_create(base_body, sizeof base_body - 1, NULL, &base, &errors) == 0);
    struct task after;
    CHECK(task_apply_patch(&base, &patch, &after) == 0);
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    yyjson_mut_val *changes = yyjson_mut_obj(doc);
    int count = task_diff(&base, &after, doc, changes);
    CHECK(count >= 0 && (size_t)count == yyjson_mut_obj_size(changes));
    CHECK(task_diff(&after, &after, doc, yyjson_mut_obj(doc)) == 0);
    check_round_trip(&after);
    yyjson_mut_doc_free(doc);
    task_free(&after);
    task_free(&base);
    task_patch_free(&patch);
}

static void fuzz_event(const char *json, size_t size) {
    struct event_envelope envelope;
    yyjson_doc *doc = NULL;
    yyjson_val *data = NULL;
    int rc = event_parse(json, size, &envelope, &doc, &data);
    CHECK(rc == 0 || rc == ERR_PARSE);
    if (rc != 0)
        return;
    CHECK(yyjson_is_obj(data) && envelope.sequence >= 1);
    struct task state = {0};
    rc = task_fold(&state, envelope.type, data);
    CHECK(rc == 0 || rc == 1 || rc == ERR_PARSE);
    if (rc == 0 && strcmp(envelope.type, "task.created") == 0)
        check_round_trip(&state);
    task_free(&state);
    size_t length = 0;
    char *again = event_to_json(&envelope, NULL, NULL, &length);
    CHECK(again != NULL);
    mem_free(again);
    yyjson_doc_free(doc);
}

static void fuzz_rrule(const char *text, size_t size) {
    struct rrule rule;
    const char *message = NULL;
    if (rrule_parse(text, size, &rule, &message) != 0) {
        CHECK(message != NULL && message[0] != '\0');
        return;
    }
    char normal[RRULE_TEXT_BYTES];
    int length = rrule_format(&rule, normal, sizeof normal);
    CHECK(length > 0 && (size_t)length == strlen(normal));
    struct rrule again;
    CHECK(rrule_parse(normal, (size_t)length, &again, NULL) == 0);
    CHECK(memcmp(&again, &rule, sizeof rule) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    int mode = data[0] % 4;
    const char *text = (const char *)data + 1;
    size--;
    if (mode == 0)
        fuzz_create(text, size);
    else if (mode == 1)
        fuzz_patch(text, size);
    else if (mode == 2)
        fuzz_event(text, size);
    else
        fuzz_rrule(text, size);
    return 0;
}
