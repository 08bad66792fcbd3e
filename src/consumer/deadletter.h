/*
 * deadletter.h - the dead-letter queue shared by every consumer (PRODUCT.md
 * E5, API.md admin routes).
 *
 * An item that failed all its retries is appended to the event log's "dlq"
 * topic as one JSON record (the log is the source of truth) and, once that
 * record is durable, mirrored into the `dlq` table of notify.db, which the
 * admin API lists. At start, records past the table's mirror offset are
 * copied again (INSERT OR IGNORE by id), so a crash between the two steps
 * loses nothing.
 *
 * Record (and API list item) shape:
 *   {"id":"<uuid v7>","consumer":"notifier","key":"<the consumer's item key>",
 *    "user_id":"<owner or null>","event":<the CloudEvent being processed>,
 *    "item":{...consumer-specific, e.g. {"channel":"email"}},
 *    "error":"<last error sentence>","attempts":4,"failed_at":"<RFC 3339>",
 *    "state":"dead"|"redriving"|"redriven"|"failed_again",
 *    "redriven_at":"<RFC 3339>"|null}
 *
 * Redrive: POST /api/v1/admin/dlq/{id}/redrive hands the entry to the
 * handler its consumer registered (deadletter_register); the handler starts a
 * fresh round of attempts and later reports the outcome with
 * deadletter_resolve(): success marks the entry "redriven"; failure after the
 * new round appends a new DLQ entry and marks this one "failed_again". A
 * redrive of an entry that is "redriving" or "redriven" is 409.
 */
#ifndef DOCKET_CONSUMER_DEADLETTER_H
#define DOCKET_CONSUMER_DEADLETTER_H

#include "../base/buf.h"
#include "../base/uuid.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct deadletter;
struct db;
struct evlog_topic;
struct clock;

#define DEADLETTER_CONSUMER_NAME_BYTES 32
#define DEADLETTER_HANDLERS_MAX 8

/* Items per list page: default and most (API.md lists). */
#define DEADLETTER_LIST_LIMIT_DEFAULT 50
#define DEADLETTER_LIST_LIMIT_MAX 500

/* A list page stops early (with a next_cursor) once its items reach this
 * many bytes, so a page of large events stays bounded. */
#define DEADLETTER_LIST_BYTES_MAX (4u * 1024 * 1024)

/* An entry as the API and the handlers see it. Strings point into storage
 * valid during the call only. */
struct deadletter_entry {
    const char *id;        /* entry id */
    const char *consumer;  /* registered consumer name */
    const char *key;       /* the consumer's item key */
    const char *user_id;   /* owner, or NULL */
    const char *event_json;/* the CloudEvent text */
    const char *item_json; /* consumer-specific object text */
    const char *error;     /* last error */
    int attempts;          /* attempts made */
};

/* A consumer's redrive handler: start a new round for `entry`. Return 0 when
 * started (and later call deadletter_resolve), or a negative code (the API
 * answers 503 and the entry stays "dead"). */
typedef int (*deadletter_redrive_fn)(void *arg, const struct deadletter_entry *entry);

/* `topic` is the "dlq" topic, `db` the loop's connection to notify.db (the
 * notifier's own database, so these writes never wait for the projection's
 * transactions on docket.db). Copies records past the mirror offset into the
 * table. */
int deadletter_open(struct deadletter **out, struct evlog_topic *topic, struct db *db,
                    struct clock *clock);
void deadletter_close(struct deadletter *deadletter);

int deadletter_register(struct deadletter *deadletter, const char *consumer,
                        deadletter_redrive_fn redrive, void *arg);

/* Appends an entry (durably, through the log's group commit). `done` (may be
 * NULL) fires once with 0 when the record is durable and mirrored, or a
 * negative code. The fields are copied before this returns. */
typedef void (*deadletter_done)(void *arg, int status, const char *id);
int deadletter_put(struct deadletter *deadletter, const struct deadletter_entry *entry,
                   deadletter_done done, void *arg);

/* The outcome of a redrive started through the handler. A failed round is
 * put again by its consumer (deadletter_put, with the new error: a new
 * entry); this call only marks the old entry "failed_again".
 * 0, ERR_NOTFOUND, ERR_CONFLICT (the entry is not "redriving"). */
int deadletter_resolve(struct deadletter *deadletter, const char *id, bool succeeded);

/* GET /api/v1/admin/dlq: {"items":[entry...],"next_cursor":...}, newest first,
 * `state` filter optional (NULL = all), keyset cursor on id. Writes JSON into
 * `out`. ERR_INVAL for a bad cursor. */
int deadletter_list_json(struct deadletter *deadletter, const char *state, size_t limit,
                         const char *cursor, struct buf *out);

/* POST /api/v1/admin/dlq/{id}/redrive: 0 (202, entry JSON in `out`),
 * ERR_NOTFOUND (404), ERR_CONFLICT (409: already
 * redriving or redriven), other negative codes (503). */
int deadletter_redrive(struct deadletter *deadletter, const char *id, struct buf *out);

/* True for "dead", "redriving", "redriven" and "failed_again". */
bool deadletter_state_valid(const char *state);

/* Entries by state, for /metrics. */
size_t deadletter_count(const struct deadletter *deadletter, const char *state);

#endif
