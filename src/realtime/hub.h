/*
 * hub.h - the realtime consumer: fans every durable, projected event out to
 * the connected subscribers (WebSocket sessions) of its owner, in per-user
 * sequence order, with resume and backpressure that never lose, duplicate or
 * reorder an event, and never let a slow subscriber grow memory.
 *
 * Source of live events: the hub is a named consumer ("realtime") of the
 * event log's "events" topic. It reads the log only up to the offset the
 * projection has applied (hub_advance is called with it after each applied
 * batch), so anything a subscriber could miss live is already in the
 * projection's per-user event table, from which catch-up reads.
 *
 * Each subscriber has one number, `sent`: the last sequence it was given.
 * Every event goes out only as `sent + 1`, so order and exactly-once follow
 * from one rule. A subscriber is in one of two modes:
 *   live     - events of its user are sent as they are applied;
 *   catch-up - it is behind (it asked to resume from N, or its send queue
 *              was full): pages of HUB_CATCHUP_PAGE events after `sent` are
 *              read from the source whenever its queue has room; a page
 *              shorter than asked means it has everything applied so far,
 *              and it turns live. Live events meanwhile are skipped for it
 *              (the source has them).
 * Everything runs on the loop thread: between a catch-up read and the next
 * applied batch nothing can slip through.
 *
 * Messages: {"type":"event","event":<CloudEvent>} built once per event and
 * shared by all of a user's subscribers; reminders (issue 6) go out through
 * hub_send_user as given.
 *
 * Backpressure: a subscriber's send refusing (ERR_AGAIN: its queue is over
 * its limit) switches it to catch-up; nothing is buffered by the hub. When
 * hub_writable is called (its queue drained) catch-up continues. A
 * subscriber whose queue made no progress for options.stall_timeout_ms is
 * closed with 4008 (resume) by hub_tick.
 */
#ifndef DOCKET_REALTIME_HUB_H
#define DOCKET_REALTIME_HUB_H

#include "../evlog/evlog.h"

#include <stddef.h>
#include <stdint.h>

/* Events read per catch-up page. */
#define HUB_CATCHUP_PAGE 128

/* Called once per event of a catch-up read, oldest first: its sequence and
 * its CloudEvent JSON. A non-zero return stops the read. */
typedef int (*hub_event_each)(void *each_arg, int64_t sequence, const char *event_json,
                              size_t length);

/* Where catch-up reads (the projection's per-user event table). */
struct hub_source {
    /* Calls `each` for the user's events with sequence > after, at most
     * `limit` of them, in sequence order. Returns how many it passed, or a
     * negative code. */
    int (*read)(void *arg, const char *user_id, int64_t after, size_t limit, hub_event_each each,
                void *each_arg);
    /* The user's last applied sequence (0 for none). */
    int (*last_sequence)(void *arg, const char *user_id, int64_t *out);
    void *arg;
};

/* What the hub needs from one subscriber (a WebSocket session). */
struct hub_subscriber_ops {
    /* Queues one text message. 0; ERR_AGAIN when the subscriber's send
     * queue is full (the hub switches it to catch-up); other negative codes:
     * the subscriber is broken (the hub closes it with 1011). */
    int (*send)(void *arg, const char *text, size_t length);
    /* Closes the subscriber with a WebSocket close code and reason. The
     * owner then calls hub_detach (possibly later). */
    void (*close)(void *arg, uint16_t code, const char *reason);
};

struct hub_options {
    struct evlog_topic *topic;       /* the "events" topic (NULL in tests that only publish) */
    struct hub_source source;        /* catch-up reads */
    size_t max_connections;          /* subscribers in all (ERR_LIMIT past it) */
    size_t max_connections_per_user; /* subscribers of one user (ERR_BUSY past it) */
    uint64_t stall_timeout_ms;       /* a full queue this long -> close 4008 (0 = never) */
    int64_t start_offset;            /* where the log is read from: the projection's offset */
};

struct hub_stats {
    uint64_t subscribers;         /* attached now */
    uint64_t users;               /* users with at least one subscriber */
    uint64_t events_applied;      /* events read from the log */
    uint64_t messages_sent;       /* messages accepted by subscribers */
    uint64_t catchups_started;    /* switches to catch-up (resume or full queue) */
    uint64_t catchup_events_read; /* events read from the source */
    uint64_t stalls_closed;       /* subscribers closed with 4008 */
    uint64_t records_skipped;     /* records of a subscribed key that were not its events */
};

struct hub;
struct hub_subscriber;

int hub_open(struct hub **out, const struct hub_options *options);
/* Detaches (without closing) every subscriber and frees the hub. Not from
 * inside a subscriber's op. */
void hub_close(struct hub *hub);

/* Reads the log from the hub's position up to `applied_end` (exclusive, the
 * projection's next offset) and fans each event out. Records that are not
 * CloudEvents with a userid and a sequence are skipped (counted, logged once);
 * so are events whose userid is not the record's key (isolation). Only
 * records whose key has subscribers are parsed. If retention removed records
 * the hub had not read, it jumps to the topic's start and every subscriber
 * catches up from the source (logged). Returns 0 or a negative code from the
 * log (the hub then stays at the record it could not read and retries on the
 * next call); ERR_BUSY when called from inside a subscriber callback. */
int hub_advance(struct hub *hub, int64_t applied_end, uint64_t now_ms);

/* The next log offset the hub will read (for its consumer offset). */
int64_t hub_offset(const struct hub *hub);

/* Attaches a subscriber for `user_id`. since < 0: live from the user's
 * current last sequence; since >= 0: catch-up from there first. ERR_LIMIT
 * when max_connections is reached, ERR_BUSY when the user's limit is,
 * ERR_RANGE when since is past the user's last sequence (nothing attached),
 * ERR_INVAL for an empty or over-long user id, ERR_NOMEM, or the source's
 * error. Catch-up may start sending before this returns: *out is set before
 * the first op is called, and if an op detaches it, *out must not be used
 * after this returns. */
int hub_attach(struct hub *hub, const char *user_id, int64_t since,
               const struct hub_subscriber_ops *ops, void *arg, uint64_t now_ms,
               struct hub_subscriber **out);

/* Removes a subscriber; never calls its ops again. May be called from inside
 * any of its ops (or another subscriber's): the memory is freed once the hub
 * call on the stack returns. */
void hub_detach(struct hub_subscriber *subscriber);

/* The client asked for everything after `since` (again): `sent` becomes
 * since and catch-up starts (at once, or at hub_writable if its queue is
 * full). ERR_RANGE when since is past the user's last sequence (nothing
 * changes), ERR_INVAL when since < 0, ERR_CLOSED when the hub closed it. */
int hub_resume(struct hub_subscriber *subscriber, int64_t since, uint64_t now_ms);

/* The subscriber's queue drained: continue catch-up. */
void hub_writable(struct hub_subscriber *subscriber, uint64_t now_ms);

/* The last sequence given to the subscriber. */
int64_t hub_subscriber_sent(const struct hub_subscriber *subscriber);
/* 1 while in catch-up mode. */
int hub_subscriber_catching_up(const struct hub_subscriber *subscriber);

/* Sends `text` to every subscriber of the user (reminders). Subscribers
 * whose queue is full miss it (reminders are also delivered by other
 * channels and listed by the API). Returns how many took it. */
size_t hub_send_user(struct hub *hub, const char *user_id, const char *text, size_t length);

/* Housekeeping, about once a second: closes stalled subscribers. */
void hub_tick(struct hub *hub, uint64_t now_ms);

const struct hub_stats *hub_stats(const struct hub *hub);

/* Bytes the hub keeps per subscriber (for memory budgets and tests). */
size_t hub_subscriber_bytes(void);

#endif
