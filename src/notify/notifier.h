/*
 * notifier.h - the notifier consumer (PRODUCT.md N3, E4, E5): a named
 * consumer ("notifier") of the event log's "events" topic that turns every
 * reminder.triggered into one delivery per enabled channel of the owner
 * (notify_settings.h) and runs them: in-app over WebSocket, e-mail, Web Push
 * (one per subscription) and webhook.
 *
 * Reading: like the realtime hub, the notifier reads the log only up to the
 * offset the projection has applied (notifier_advance from the service's
 * applied hook), so the owner's settings it reads are at least that fresh.
 * It stops reading while notify.max_inflight deliveries are waiting or
 * running (bounded memory: the waiting ones are rows in notify.db, the
 * running ones attempts in memory), and goes on when they finish. Its
 * position is stored as the consumer offset "notifier" by the server's
 * periodic sweep; events read again after a crash create nothing new,
 * because each delivery is created once per key (notify_store.h).
 *
 * Delivery: a row goes pending -> sending (committed before the network
 * attempt) -> sent | retry (after notify.retry_delays_ms) -> ... -> dead,
 * which puts it in the dead-letter queue (consumer "notifier", item
 * {"channel",...}). Rows found "sending" at start are failed with
 * "outcome unknown" and never resent: a reminder is never delivered twice.
 * Each final outcome is appended to the owner's stream as
 * notification.sent or notification.failed (COMMAND_EVENT_APPEND).
 *
 * Channels other than WebSocket are started through `struct
 * notifier_channel` (notify_channels.c binds them to SMTP, Web Push and
 * webhooks); each attempt ends with exactly one notifier_attempt_done().
 */
#ifndef DOCKET_NOTIFY_NOTIFIER_H
#define DOCKET_NOTIFY_NOTIFIER_H

#include "../consumer/retry.h"
#include "notify_message.h"
#include "notify_settings.h"
#include "notify_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct uv_loop_s;
struct clock;
struct db;
struct deadletter;
struct evlog_topic;
struct hub;
struct service;
struct notifier;

/* The consumer's name in the log and the dead-letter queue. */
#define NOTIFIER_CONSUMER "notifier"
/* Push subscriptions one reminder is delivered to, at most. */
#define NOTIFIER_SUBSCRIPTIONS_MAX 16
/* Redrives waiting to be answered, at most (more: ERR_BUSY, the API's 503). */
#define NOTIFIER_REDRIVES_MAX 64

/* How an attempt ended. */
enum notifier_outcome {
    NOTIFIER_SENT = 0,  /* delivered */
    NOTIFIER_SKIPPED,   /* nothing to deliver to (no open WebSocket) */
    NOTIFIER_RETRY,     /* failed; another attempt may succeed (network, 429, 5xx) */
    NOTIFIER_PERMANENT, /* failed for good (bad address, 4xx, subscription gone) */
    NOTIFIER_OUTCOME_COUNT,
};

/* One attempt, as a channel sees it. Valid until notifier_attempt_done. */
struct notifier_attempt {
    struct notifier *notifier;         /* owner (NULL once the notifier closed) */
    struct notify_delivery delivery;   /* the row, state "sending" */
    struct notify_reminder reminder;   /* the event it came from, parsed */
    struct notify_settings settings;   /* the owner's settings at attempt time */
    void *channel_arg;                 /* the channel's arg, for its callbacks */
    struct notifier_attempt *next;     /* in the notifier's list of attempts */
    struct notifier_attempt *previous; /* (doubly linked) */
};

/* Starts a delivery over a channel: 0 when started (notifier_attempt_done
 * follows, possibly before this returns), or a negative code with a
 * sentence in `error` (the attempt then failed with NOTIFIER_RETRY unless
 * *permanent was set). */
struct notifier_channel {
    int (*start)(void *arg, struct notifier_attempt *attempt, bool *permanent, char *error,
                 size_t error_size);
    void *arg;
};

/* Lists a user's push subscription ids (at most `capacity`); returns how
 * many or a negative code. */
typedef int (*notifier_subscriptions_fn)(void *arg, const char *user_id,
                                         char (*ids)[UUID_STRING_BYTES], size_t capacity);

struct notifier_options {
    struct uv_loop_s *loop;          /* timers */
    struct clock *clock;             /* wall time of next_ns and events */
    struct evlog_topic *topic;       /* the "events" topic */
    int64_t start_offset;            /* the next record to read */
    struct db *db;                   /* docket.db on the loop: users' settings */
    struct db *notify_db;            /* notify.db: deliveries */
    struct service *service;         /* appends notification.sent / .failed */
    struct hub *hub;                 /* the WebSocket channel (NULL: always skipped) */
    struct deadletter *deadletter;   /* where dead deliveries go (NULL: just "dead") */
    struct retry_policy policy;      /* waits between attempts */
    size_t max_inflight;             /* deliveries waiting or running, at most */
    struct notifier_channel channels[NOTIFY_CHANNEL_COUNT]; /* start NULL: channel off */
    notifier_subscriptions_fn subscriptions; /* push subscriptions (NULL: none) */
    void *subscriptions_arg;                 /* its argument */
};

struct notifier_stats {
    uint64_t events_read;        /* records read from the log */
    uint64_t reminders;          /* reminder.triggered events handled */
    uint64_t created;            /* deliveries created */
    uint64_t duplicates;         /* deliveries that already existed (re-read events) */
    uint64_t attempts;           /* attempts started */
    uint64_t inflight;           /* attempts running now */
    uint64_t abandoned;          /* "sending" rows failed at start (outcome unknown) */
    uint64_t outcomes[NOTIFY_CHANNEL_COUNT][NOTIFY_STATE_COUNT]; /* final and retry states */
};

/* Fails the rows left "sending" (outcome unknown), re-appends unrecorded
 * outcomes, registers the redrive handler and starts due deliveries. */
int notifier_open(struct notifier **out, const struct notifier_options *options);
/* Attempts still running are detached: their results are dropped (their
 * rows stay "sending", i.e. outcome unknown at the next start). */
void notifier_close(struct notifier *notifier);

/* Reads the log up to `applied_end` (exclusive) while below max_inflight. */
int notifier_advance(struct notifier *notifier, int64_t applied_end);

/* The next log offset to read (the consumer offset to store). */
int64_t notifier_offset(const struct notifier *notifier);

/* An attempt ended. `error` (a sentence) is kept for failures. */
void notifier_attempt_done(struct notifier_attempt *attempt, enum notifier_outcome outcome,
                           const char *error);

const struct notifier_stats *notifier_stats(const struct notifier *notifier);

/* The handler the dead-letter queue calls for POST .../redrive (registered
 * by notifier_open when a deadletter is given). */
struct deadletter_entry;
int notifier_redrive(void *arg, const struct deadletter_entry *entry);

#endif
