/*
 * event.h - Docket's events as CloudEvents 1.0 JSON (the values of records in
 * the event log's "events" topic): building one from an envelope and its
 * data, and reading one back.
 *
 * Wire form (member order as written):
 *   {"specversion":"1.0","id":"<uuid v7>","source":"/docket","type":"task.created",
 *    "time":"2026-02-10T09:45:00.123Z","subject":"<task id or user id>",
 *    "datacontenttype":"application/json","userid":"<owner user id>",
 *    "sequence":12,"correlationid":"<uuid>","actor":"<user id>|cli",
 *    "idempotencykey":"<key>"            (only when the request had one)
 *    "data":{...}}
 *
 * `userid` is the user whose stream the event belongs to; `sequence` is that
 * user's dense per-user counter (1, 2, 3, ...); `actor` is who caused it
 * (the user, an admin acting on another user, or "cli"). `correlationid` is
 * shared by every event one request produced. The record key in the log is
 * the user id, so per-user order is also key order.
 *
 * Record headers set by the command layer (not part of the CloudEvent):
 *   "request-hash"  hex SHA-256 of method, path and body of a request sent
 *                   with Idempotency-Key (the projection stores it so a
 *                   retry with another body is told apart: 422)
 *   "password-hash" the PHC string of the new password, on user.created and
 *                   user.password_changed only; never in the CloudEvent,
 *                   which the events API serves and the Kafka bridge
 *                   exports. The projection copies it to users.password_hash.
 */
#ifndef DOCKET_TASKS_EVENT_H
#define DOCKET_TASKS_EVENT_H

#include "../base/limits.h"
#include "../base/uuid.h"

#include <stddef.h>
#include <stdint.h>

struct yyjson_doc;
struct yyjson_val;
struct yyjson_mut_doc;
struct yyjson_mut_val;

#define EVENT_TYPE_BYTES 48
#define EVENT_ACTOR_BYTES 40
#define EVENT_SOURCE "/docket"

struct event_envelope {
    char id[UUID_STRING_BYTES];            /* event id (UUID v7) */
    char type[EVENT_TYPE_BYTES];           /* "task.created", ... */
    int64_t time_ns;                       /* when the command was accepted */
    char subject[UUID_STRING_BYTES];       /* task id, or user id for user.* events */
    char user_id[UUID_STRING_BYTES];       /* stream owner */
    int64_t sequence;                      /* per-user, from 1 */
    char correlation_id[UUID_STRING_BYTES]; /* shared by one request's events */
    char actor[EVENT_ACTOR_BYTES];         /* user id or "cli" */
    char idempotency_key[LIMIT_IDEMPOTENCY_KEY_BYTES + 1]; /* "" when none */
};

/* Serialises envelope + `data` (a value of `doc`, may be NULL for {}) into a
 * mem_alloc'd string. NULL on ERR_NOMEM. `data` must be an object not held
 * by another container; it is linked into the envelope only while writing,
 * so the same data may be written again. `doc` may be NULL when `data` is.
 * The envelope's values are added to `doc` (freed with it). */
char *event_to_json(const struct event_envelope *envelope, struct yyjson_mut_doc *doc,
                    struct yyjson_mut_val *data, size_t *length_out);

/* Parses a record value. On 0, `*doc_out` owns the parsed document (free it
 * with yyjson_doc_free), `envelope` is filled and `*data_out` points at the
 * "data" member (an object) inside it. ERR_PARSE when a required member is
 * missing or mistyped. */
int event_parse(const char *json, size_t length, struct event_envelope *envelope,
                struct yyjson_doc **doc_out, struct yyjson_val **data_out);

#endif
