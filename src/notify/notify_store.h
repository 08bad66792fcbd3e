/*
 * notify_store.h - the notifier's durable delivery records: one row per
 * (reminder, occurrence, channel[, subscription]) in notify.db's
 * `deliveries` table, and the state machine each row follows:
 *
 *   pending --attempt--> sending --ok--> sent
 *                                 \--failed, retries left--> retry --due--> sending
 *                                 \--failed, none left--> dead (dead-letter queue)
 *                                 \--failed for good (404/410, 5xx SMTP, bad config)--> failed
 *   websocket with no open connection: skipped
 *
 * A row is created with INSERT OR IGNORE on its key, so an event read twice
 * (replay, crash before the consumer offset was stored) never makes a second
 * delivery. "sending" is committed before the network attempt starts; a row
 * found in "sending" at start is a delivery whose outcome is unknown (the
 * process died mid-attempt). It is NOT sent again: never twice wins over at
 * least once (PRODUCT.md N3); it becomes failed with "outcome unknown".
 *
 * The table's schema belongs to notify.db (consumer/notify_db.c); the
 * subscription, task id and `recorded` live in the row's item JSON
 * ({"channel","subscription_id","task_id","recorded","redrive"}), which is also the
 * item of a dead-letter entry.
 *
 * `recorded` says whether the outcome event (notification.sent / .failed)
 * has been appended to the user's stream; rows in a final state with
 * recorded = 0 are appended again at start, so an outcome is recorded even
 * across a crash (at least once for the event, never for the delivery).
 */
#ifndef DOCKET_NOTIFY_NOTIFY_STORE_H
#define DOCKET_NOTIFY_NOTIFY_STORE_H

#include "../base/buf.h"
#include "../base/uuid.h"
#include "notify_message.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;
struct retry_policy;

/* Longest error sentence kept with a delivery. */
#define NOTIFY_ERROR_BYTES 512

/* The sentence for deliveries found mid-attempt at start. */
#define NOTIFY_OUTCOME_UNKNOWN "outcome unknown: Docket stopped during delivery"

enum notify_state {
    NOTIFY_PENDING = 0, /* created, not attempted yet */
    NOTIFY_SENDING,     /* an attempt is (or was, before a crash) under way */
    NOTIFY_SENT,        /* delivered */
    NOTIFY_RETRY,       /* failed, waiting for next_ns */
    NOTIFY_DEAD,        /* every retry failed: in the dead-letter queue */
    NOTIFY_FAILED,      /* failed for good without retrying, or outcome unknown */
    NOTIFY_SKIPPED,     /* nothing to deliver to (no open WebSocket) */
    NOTIFY_STATE_COUNT,
};

const char *notify_state_name(enum notify_state state);
int notify_state_from_name(const char *name); /* -1 when unknown */

/* One row. */
struct notify_delivery {
    char key[NOTIFY_DELIVERY_KEY_BYTES];           /* "<reminder key>/<channel>[/<sub>]" */
    char reminder_key[NOTIFY_REMINDER_KEY_BYTES];  /* "<task id>@<ms>" */
    enum notify_channel channel;                   /* which channel */
    char subscription_id[UUID_STRING_BYTES];       /* webpush only, else "" */
    char user_id[UUID_STRING_BYTES];               /* the owner */
    char task_id[UUID_STRING_BYTES];               /* the task */
    enum notify_state state;                       /* where it is */
    int attempts;                                  /* attempts made so far */
    int64_t next_ns;                               /* pending/retry: not before (wall ns) */
    char error[NOTIFY_ERROR_BYTES];                /* the last error ("" = none) */
    bool recorded;                                 /* outcome event appended */
    char redrive_id[UUID_STRING_BYTES];            /* dead-letter entry being redriven, or "" */
};

/* Inserts `delivery` (state pending) with the event text it came from,
 * unless its key exists. 0 when created, ERR_EXISTS when it was already
 * there (nothing changes), or a negative code. */
int notify_store_create(struct db *db, const struct notify_delivery *delivery,
                        const char *event_json, size_t event_length, int64_t now_ns);

/* Reads a row; the event text goes into `event` when not NULL.
 * ERR_NOTFOUND when absent. */
int notify_store_get(struct db *db, const char *key, struct notify_delivery *out,
                     struct buf *event);

/* Writes state, attempts, next_ns, error, recorded and redrive_id of `delivery`
 * (committed when this returns). ERR_NOTFOUND when the row is gone. */
int notify_store_update(struct db *db, const struct notify_delivery *delivery, int64_t now_ns);

/* Calls `each` with the keys of pending/retry rows due at `now_ns` (oldest
 * due first), at most `limit`. Returns how many or a negative code. */
int notify_store_due(struct db *db, int64_t now_ns, size_t limit,
                     void (*each)(void *arg, const char *key), void *arg);

/* The earliest next_ns of pending/retry rows; INT64_MAX when none. */
int64_t notify_store_next_due(struct db *db);

/* Rows in `state`. < 0 on error. */
int64_t notify_store_count(struct db *db, enum notify_state state);

/* At start: every "sending" row becomes failed with NOTIFY_OUTCOME_UNKNOWN
 * (recorded = 0). Returns how many or a negative code. */
int64_t notify_store_abandon_sending(struct db *db, int64_t now_ns);

/* Keys of rows in a final state whose outcome event is not recorded, at
 * most `limit`. Returns how many or a negative code. */
int notify_store_unrecorded(struct db *db, size_t limit,
                            void (*each)(void *arg, const char *key), void *arg);

/* After attempt number `delivery->attempts` failed with `error`: the next
 * state by the retry policy (retry with next_ns = now + delay, or dead), or
 * failed when `permanent`. Pure: the caller stores it. */
void notify_delivery_failed(struct notify_delivery *delivery, const struct retry_policy *policy,
                            bool permanent, const char *error, int64_t now_ns);

#endif
