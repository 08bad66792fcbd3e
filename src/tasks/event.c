/*
 * event.c - the CloudEvents 1.0 JSON form of Docket's events (event.h).
 *
 * Writing builds the envelope as an object of the caller's document, so the
 * data value the command layer built there is linked in without a copy,
 * and serialises it in one pass. Reading is strict about every attribute
 * Docket relies on (ids are canonical UUIDs, the sequence is a positive
 * integer, data is an object) because consumers trust what it returns; it
 * ignores attributes it does not know, as CloudEvents asks of receivers.
 */
#include "event.h"

#include "../base/json.h"
#include "../base/check.h"
#include "../base/err.h"
#include "../base/mem.h"
#include "../base/timefmt.h"

#include <yyjson.h>

#include <string.h>

#define EVENT_SPEC_VERSION "1.0"
#define EVENT_CONTENT_TYPE "application/json"

/* ---- Writing ------------------------------------------------------------- */

/* Adds the envelope's attributes to `object`, in wire order. */
static bool event_add_attributes(const struct event_envelope *envelope, yyjson_mut_doc *doc,
                                 yyjson_mut_val *object) {
    char time[TIMEFMT_TIME_BYTES];
    int time_length = timefmt_time_format(envelope->time_ns, time);
    bool ok = yyjson_mut_obj_add_str(doc, object, "specversion", EVENT_SPEC_VERSION);
    ok = ok && yyjson_mut_obj_add_strcpy(doc, object, "id", envelope->id);
    ok = ok && yyjson_mut_obj_add_str(doc, object, "source", EVENT_SOURCE);
    ok = ok && yyjson_mut_obj_add_strcpy(doc, object, "type", envelope->type);
    ok = ok && yyjson_mut_obj_add_strncpy(doc, object, "time", time, (size_t)time_length);
    ok = ok && yyjson_mut_obj_add_strcpy(doc, object, "subject", envelope->subject);
    ok = ok && yyjson_mut_obj_add_str(doc, object, "datacontenttype", EVENT_CONTENT_TYPE);
    ok = ok && yyjson_mut_obj_add_strcpy(doc, object, "userid", envelope->user_id);
    ok = ok && yyjson_mut_obj_add_int(doc, object, "sequence", envelope->sequence);
    ok = ok && yyjson_mut_obj_add_strcpy(doc, object, "correlationid", envelope->correlation_id);
    ok = ok && yyjson_mut_obj_add_strcpy(doc, object, "actor", envelope->actor);
    if (ok && envelope->idempotency_key[0] != '\0') {
        ok = yyjson_mut_obj_add_strcpy(doc, object, "idempotencykey",
                                       envelope->idempotency_key);
    }
    return ok;
}

char *event_to_json(const struct event_envelope *envelope, struct yyjson_mut_doc *doc,
                    struct yyjson_mut_val *data, size_t *length_out) {
    CHECK(envelope != NULL);
    CHECK(doc != NULL || data == NULL);
    CHECK(data == NULL || yyjson_mut_is_obj(data));
    yyjson_mut_doc *own = NULL;
    if (doc == NULL) {
        own = yyjson_mut_doc_new(&json_allocator);
        if (own == NULL) return NULL;
        doc = own;
    }
    char *text = NULL;
    yyjson_mut_val *object = yyjson_mut_obj(doc);
    if (data == NULL) data = yyjson_mut_obj(doc);
    if (object != NULL && data != NULL && event_add_attributes(envelope, doc, object) &&
        yyjson_mut_obj_add_val(doc, object, "data", data)) {
        size_t length = 0;
        text = yyjson_mut_val_write_opts(object, YYJSON_WRITE_NOFLAG, &json_allocator,
                                         &length, NULL);
        if (text != NULL && length_out != NULL) *length_out = length;
        /* A mutable value lives in one container at a time: unlinking it
         * lets the caller write the same data again (a retry, a second
         * record) or attach it elsewhere. */
        yyjson_mut_obj_remove_str(object, "data");
    }
    yyjson_mut_doc_free(own);
    return text;
}

/* ---- Reading ------------------------------------------------------------- */

/* Copies the string member `name` into out[size]; false when it is missing,
 * not a string, empty (unless `may_be_empty`), too long or holds a NUL. */
static bool event_read_string(yyjson_val *object, const char *name, char *out, size_t size,
                              bool may_be_empty) {
    yyjson_val *value = yyjson_obj_get(object, name);
    size_t length = yyjson_get_len(value);
    if (!yyjson_is_str(value) || length >= size || (length == 0 && !may_be_empty)) return false;
    if (strlen(yyjson_get_str(value)) != length) return false;
    memcpy(out, yyjson_get_str(value), length + 1);
    return true;
}

/* A member that must be a canonical UUID. */
static bool event_read_uuid(yyjson_val *object, const char *name, char out[UUID_STRING_BYTES]) {
    yyjson_val *value = yyjson_obj_get(object, name);
    return yyjson_is_str(value) &&
           uuid_parse(yyjson_get_str(value), yyjson_get_len(value), out) == 0;
}

static bool event_read_envelope(yyjson_val *root, struct event_envelope *envelope) {
    yyjson_val *sequence = yyjson_obj_get(root, "sequence");
    yyjson_val *time = yyjson_obj_get(root, "time");
    yyjson_val *key = yyjson_obj_get(root, "idempotencykey");
    yyjson_val *source = yyjson_obj_get(root, "source");
    if (!yyjson_equals_str(yyjson_obj_get(root, "specversion"), EVENT_SPEC_VERSION) ||
        !yyjson_is_str(source) || yyjson_get_len(source) == 0 ||
        !yyjson_equals_str(yyjson_obj_get(root, "datacontenttype"), EVENT_CONTENT_TYPE) ||
        !event_read_uuid(root, "id", envelope->id) ||
        !event_read_string(root, "type", envelope->type, sizeof envelope->type, false) ||
        !yyjson_is_str(time) ||
        timefmt_time_parse(yyjson_get_str(time), yyjson_get_len(time), &envelope->time_ns,
                           NULL) != 0 ||
        !event_read_uuid(root, "subject", envelope->subject) ||
        !event_read_uuid(root, "userid", envelope->user_id) ||
        !(yyjson_is_uint(sequence) || yyjson_is_sint(sequence)) ||
        yyjson_get_sint(sequence) < 1 ||
        !event_read_uuid(root, "correlationid", envelope->correlation_id) ||
        !event_read_string(root, "actor", envelope->actor, sizeof envelope->actor, false)) {
        return false;
    }
    envelope->sequence = yyjson_get_sint(sequence);
    if (key == NULL) return true;
    return event_read_string(root, "idempotencykey", envelope->idempotency_key,
                             sizeof envelope->idempotency_key, false);
}

int event_parse(const char *json, size_t length, struct event_envelope *envelope,
                struct yyjson_doc **doc_out, struct yyjson_val **data_out) {
    CHECK(envelope != NULL && doc_out != NULL && data_out != NULL);
    CHECK(json != NULL || length == 0);
    memset(envelope, 0, sizeof *envelope);
    *doc_out = NULL;
    *data_out = NULL;
    if (length > LIMIT_EVLOG_VALUE_BYTES) return ERR_PARSE;
    yyjson_read_err error;
    yyjson_doc *doc = yyjson_read_opts((char *)(length == 0 ? "" : json), length,
                                       YYJSON_READ_NOFLAG, &json_allocator, &error);
    if (doc == NULL) {
        return error.code == YYJSON_READ_ERROR_MEMORY_ALLOCATION ? ERR_NOMEM : ERR_PARSE;
    }
    yyjson_val *root = yyjson_doc_get_root(doc);
    yyjson_val *data = yyjson_obj_get(root, "data");
    if (!yyjson_is_obj(root) || !yyjson_is_obj(data) || !event_read_envelope(root, envelope)) {
        yyjson_doc_free(doc);
        memset(envelope, 0, sizeof *envelope);
        return ERR_PARSE;
    }
    *doc_out = doc;
    *data_out = data;
    return 0;
}
