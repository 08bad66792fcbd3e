/* event_test.c - proves the CloudEvent envelope is written with the exact
 * members and order of event.h, reads back to the same envelope and data,
 * rejects records that lack or mistype a required member, and handles
 * allocation failure without leaks. */
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "../../../src/tasks/event.h"
#include "test.h"

#include <yyjson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-02-10T09:45:00.123Z */
#define TIME_NS INT64_C(1770716700123000000)

static void sample(struct event_envelope *envelope) {
    memset(envelope, 0, sizeof *envelope);
    snprintf(envelope->id, sizeof envelope->id, "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");
    snprintf(envelope->type, sizeof envelope->type, "task.completed");
    envelope->time_ns = TIME_NS;
    snprintf(envelope->subject, sizeof envelope->subject, "0190a1b2-c3d4-7e5f-8a6b-000000000001");
    snprintf(envelope->user_id, sizeof envelope->user_id, "0190a1b2-c3d4-7e5f-8a6b-000000000002");
    envelope->sequence = 12;
    snprintf(envelope->correlation_id, sizeof envelope->correlation_id,
             "0190a1b2-c3d4-7e5f-8a6b-000000000003");
    snprintf(envelope->actor, sizeof envelope->actor, "cli");
}

static const char sample_text[] =
    "{\"specversion\":\"1.0\",\"id\":\"0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b\","
    "\"source\":\"/docket\",\"type\":\"task.completed\",\"time\":\"2026-02-10T09:45:00.123Z\","
    "\"subject\":\"0190a1b2-c3d4-7e5f-8a6b-000000000001\",\"datacontenttype\":\"application/json\","
    "\"userid\":\"0190a1b2-c3d4-7e5f-8a6b-000000000002\",\"sequence\":12,"
    "\"correlationid\":\"0190a1b2-c3d4-7e5f-8a6b-000000000003\",\"actor\":\"cli\","
    "\"data\":{\"version\":4}}";

/* Writes the envelope with data {"version":4} twice from one document (the
 * second time as a retry would) and returns the second text, after
 * checking both are the same. */
static char *build(const struct event_envelope *envelope, size_t *length) {
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    yyjson_mut_val *data = yyjson_mut_obj(doc);
    yyjson_mut_obj_add_int(doc, data, "version", 4);
    char *first = event_to_json(envelope, doc, data, NULL);
    char *text = event_to_json(envelope, doc, data, length);
    if (first == NULL || text == NULL || strcmp(first, text) != 0) abort();
    mem_free(first);
    yyjson_mut_doc_free(doc);
    return text;
}

TEST(event_build_exact_text) {
    /* Proves the wire form: member order, constant attributes, and
     * idempotencykey written only when the request had one. */
    struct event_envelope envelope;
    sample(&envelope);
    size_t length = 0;
    char *text = build(&envelope, &length);
    EXPECT_STR(text, sample_text);
    EXPECT_EQ_INT(length, strlen(sample_text));
    mem_free(text);
    snprintf(envelope.idempotency_key, sizeof envelope.idempotency_key, "retry-\"1\"");
    text = build(&envelope, NULL);
    EXPECT(strstr(text, ",\"actor\":\"cli\",\"idempotencykey\":\"retry-\\\"1\\\"\",\"data\":") !=
           NULL);
    mem_free(text);
    text = event_to_json(&envelope, NULL, NULL, &length);
    EXPECT(text != NULL && strstr(text, "\"data\":{}}") != NULL);
    mem_free(text);
}

TEST(event_round_trip) {
    /* Proves event_parse gives back the envelope that was written and a
     * data object that can be read. */
    struct event_envelope envelope;
    sample(&envelope);
    snprintf(envelope.idempotency_key, sizeof envelope.idempotency_key, "key-1");
    size_t length = 0;
    char *text = build(&envelope, &length);
    struct event_envelope back;
    yyjson_doc *doc = NULL;
    yyjson_val *data = NULL;
    EXPECT_EQ_INT(event_parse(text, length, &back, &doc, &data), 0);
    mem_free(text);
    EXPECT(memcmp(&back, &envelope, sizeof back) == 0);
    EXPECT_EQ_INT(yyjson_get_int(yyjson_obj_get(data, "version")), 4);
    yyjson_doc_free(doc);
}

/* Parses `text` with member `name` removed or replaced by `value` (JSON). */
static int parse_changed(const char *name, const char *value) {
    yyjson_doc *original = yyjson_read(sample_text, strlen(sample_text), 0);
    yyjson_mut_doc *copy = yyjson_doc_mut_copy(original, NULL);
    yyjson_doc_free(original);
    yyjson_mut_val *root = yyjson_mut_doc_get_root(copy);
    if (value == NULL) {
        yyjson_mut_obj_remove_str(root, name);
    } else {
        yyjson_doc *parsed = yyjson_read(value, strlen(value), 0);
        yyjson_mut_obj_put(root, yyjson_mut_str(copy, name),
                           yyjson_val_mut_copy(copy, yyjson_doc_get_root(parsed)));
        yyjson_doc_free(parsed);
    }
    size_t length = 0;
    char *text = yyjson_mut_write(copy, 0, &length);
    yyjson_mut_doc_free(copy);
    struct event_envelope envelope;
    yyjson_doc *doc = NULL;
    yyjson_val *data = NULL;
    int rc = event_parse(text, length, &envelope, &doc, &data);
    free(text);
    if (rc == 0) yyjson_doc_free(doc);
    else if (doc != NULL || data != NULL) return 99;
    return rc;
}

TEST(event_parse_rejects_missing_and_mistyped) {
    /* Proves each required member, missing or of the wrong type or form,
     * makes the record ERR_PARSE (with nothing to free), while unknown
     * extension attributes are ignored. */
    const char *required[] = {"specversion", "id", "source", "type", "time", "subject",
                              "datacontenttype", "userid", "sequence", "correlationid", "actor",
                              "data"};
    for (size_t index = 0; index < sizeof required / sizeof required[0]; index++) {
        EXPECT_EQ_INT(parse_changed(required[index], NULL), ERR_PARSE);
        EXPECT_EQ_INT(parse_changed(required[index], "17.5"), ERR_PARSE);
    }
    EXPECT_EQ_INT(parse_changed("specversion", "\"0.3\""), ERR_PARSE);
    EXPECT_EQ_INT(parse_changed("id", "\"not-a-uuid\""), ERR_PARSE);
    EXPECT_EQ_INT(parse_changed("time", "\"2026-02-10 09:45:00Z\""), ERR_PARSE);
    EXPECT_EQ_INT(parse_changed("sequence", "0"), ERR_PARSE);
    EXPECT_EQ_INT(parse_changed("sequence", "-3"), ERR_PARSE);
    EXPECT_EQ_INT(parse_changed("sequence", "18446744073709551615"), ERR_PARSE);
    EXPECT_EQ_INT(parse_changed("sequence", "\"12\""), ERR_PARSE);
    EXPECT_EQ_INT(parse_changed("data", "[]"), ERR_PARSE);
    EXPECT_EQ_INT(parse_changed("datacontenttype", "\"text/plain\""), ERR_PARSE);
    EXPECT_EQ_INT(parse_changed("type", "\"\""), ERR_PARSE);
    EXPECT_EQ_INT(parse_changed("type", "\"a.very.long.type.name.that.does.not.fit.in.48.bytes\""),
                  ERR_PARSE);
    EXPECT_EQ_INT(parse_changed("actor", "\"a\\u0000b\""), ERR_PARSE);
    EXPECT_EQ_INT(parse_changed("idempotencykey", "5"), ERR_PARSE);
    EXPECT_EQ_INT(parse_changed("traceparent", "\"00-abc\""), 0);
    EXPECT_EQ_INT(parse_changed("idempotencykey", "\"k\""), 0);
    struct event_envelope envelope;
    yyjson_doc *doc = NULL;
    yyjson_val *data = NULL;
    EXPECT_EQ_INT(event_parse("[]", 2, &envelope, &doc, &data), ERR_PARSE);
    EXPECT_EQ_INT(event_parse("{", 1, &envelope, &doc, &data), ERR_PARSE);
    EXPECT_EQ_INT(event_parse("", 0, &envelope, &doc, &data), ERR_PARSE);
    EXPECT(doc == NULL && data == NULL);
}

TEST(event_survives_allocation_failure) {
    /* Proves build and parse return NULL / ERR_NOMEM for every failing
     * allocation and leak nothing (the sanitizer build checks leaks). */
    struct event_envelope envelope;
    sample(&envelope);
    int successes = 0;
    for (long budget = 0; budget < 100 && successes < 2; budget++) {
        yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
        yyjson_mut_val *data = yyjson_mut_obj(doc);
        mem_fail_after(budget);
        size_t length = 0;
        char *text = event_to_json(&envelope, doc, data, &length);
        char *bare = event_to_json(&envelope, NULL, NULL, NULL);
        mem_fail_after(-1);
        yyjson_mut_doc_free(doc);
        mem_free(bare);
        if (text == NULL) continue;
        struct event_envelope back;
        yyjson_doc *parsed = NULL;
        yyjson_val *parsed_data = NULL;
        mem_fail_after(budget);
        int rc = event_parse(text, length, &back, &parsed, &parsed_data);
        mem_fail_after(-1);
        EXPECT(rc == 0 || rc == ERR_NOMEM);
        if (rc == 0) yyjson_doc_free(parsed);
        if (rc == 0 && bare != NULL) successes++;
        mem_free(text);
    }
    EXPECT_EQ_INT(successes, 2);
}
