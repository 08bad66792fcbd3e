/*
 * hub.c - the realtime fan-out hub (see hub.h for the contract).
 *
 * Layers, top to bottom:
 *   public API      attach/detach/resume/writable/advance/tick/send_user;
 *   fan-out         one log record -> its user's subscribers, by the rule
 *                   "send only sequence == sent + 1 to a live subscriber";
 *   catch-up pump   pages from the source after `sent` until a short page;
 *   bookkeeping     users by id (map), subscribers in a list per user, and
 *                   three hub-wide queues (pending pumps, blocked, graveyard).
 *
 * Re-entrancy. A subscriber's send and close callbacks may call back into
 * the hub: detach any subscriber, attach, resume, ask for a pump. Two rules
 * make that safe, in the way Redis frees a client "later" while callers up
 * the stack still hold it:
 *   - every public entry that can call a callback runs between hub_enter and
 *     hub_leave (`depth` counts the nesting). A detach at depth > 0 only
 *     marks the subscriber and parks it in the graveyard; it stays linked in
 *     its user's list, so a loop over that list can step past it. The
 *     outermost hub_leave frees the graveyard when nothing is on the stack.
 *   - catch-up never runs nested: a pump requested at any depth is queued
 *     (pending) and the outermost hub_leave runs the queue. So the one
 *     message buffer is never overwritten while a send still reads it, and
 *     a callback never sees a second send to the same subscriber start
 *     inside the first.
 *
 * A subscriber is in at most one hub queue at a time (they share the two
 * link fields): pending (wants a pump), blocked (its send said ERR_AGAIN;
 * waits for hub_writable; the queue is in blocking order, so hub_tick looks
 * only at its head), or graveyard (detached, freed at the outermost leave).
 */
#include "hub.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/map.h"
#include "../base/mem.h"
#include "../tasks/event.h"

#include <yyjson.h>

#include <stdio.h>
#include <string.h>

/* The event message is this prefix, the CloudEvent's bytes and "}". */
#define HUB_EVENT_PREFIX "{\"type\":\"event\",\"event\":"
#define HUB_EVENT_PREFIX_BYTES (sizeof HUB_EVENT_PREFIX - 1)

/* The message buffer's ceiling: one record value (the log's own bound on an
 * event) plus the wrapping. Its first allocation is small; most events are a
 * few hundred bytes. */
#define HUB_MESSAGE_BYTES_MAX (HUB_EVENT_PREFIX_BYTES + LIMIT_EVLOG_VALUE_BYTES + 1)
#define HUB_MESSAGE_BYTES_MIN 4096

/* Close codes the hub sends (the same numbers as src/ws/websocket.h, which
 * sits above the hub in the dependency order). */
#define HUB_CLOSE_INTERNAL 1011
#define HUB_CLOSE_RESUME 4008

/* Which hub queue a subscriber is in. */
enum hub_queue {
    HUB_QUEUE_NONE = 0,
    HUB_QUEUE_PENDING,   /* wants a catch-up pump */
    HUB_QUEUE_BLOCKED,   /* send refused; waits for hub_writable */
    HUB_QUEUE_GRAVEYARD, /* detached; freed at the outermost hub_leave */
    HUB_QUEUE_COUNT
};

/* Subscriber flags. */
#define HUB_FLAG_CATCHING_UP 0x1u /* catch-up mode: live events skip it */
#define HUB_FLAG_CLOSED 0x2u      /* the hub closed it: no more ops until detached */
#define HUB_FLAG_DETACHED 0x4u    /* the owner detached it: never touch its ops again */

struct hub_list {
    struct hub_subscriber *head; /* oldest */
    struct hub_subscriber *tail; /* newest */
};

/* One user with subscribers; the map's value. */
struct hub_user {
    struct hub *hub;             /* owner */
    struct hub_subscriber *head; /* subscribers in attach order (graveyard ones included) */
    struct hub_subscriber *tail; /* last of them, for O(1) append */
    size_t attached;             /* subscribers not detached (the per-user limit) */
    size_t id_length;            /* bytes of id */
    char id[];                   /* user id, NUL-terminated (the source's key) */
};

struct hub_subscriber {
    struct hub_user *user;                /* whose events it gets */
    struct hub_subscriber *user_next;     /* next of the same user */
    struct hub_subscriber *user_prev;     /* previous of the same user */
    struct hub_subscriber *queue_next;    /* next in its hub queue */
    struct hub_subscriber *queue_prev;    /* previous in its hub queue */
    const struct hub_subscriber_ops *ops; /* the owner's callbacks */
    void *arg;                            /* their argument */
    int64_t sent;                         /* last sequence given to it */
    uint64_t blocked_since_ms;            /* when its send refused (queue BLOCKED) */
    uint8_t queue;                        /* enum hub_queue */
    uint8_t flags;                        /* HUB_FLAG_* */
};

struct hub {
    struct hub_options options;              /* as opened */
    struct map users;                        /* user id -> struct hub_user */
    struct hub_list queues[HUB_QUEUE_COUNT]; /* by enum hub_queue (NONE unused) */
    struct evlog_cursor cursor;              /* reads the topic; valid while cursor_open */
    int cursor_open;                         /* cursor positioned at `offset` */
    int64_t offset;                          /* next log offset to read */
    char *message;                           /* the message being offered (owned) */
    size_t message_length;                   /* its bytes */
    size_t message_capacity;                 /* allocated bytes */
    unsigned depth;                          /* hub_enter nesting */
    uint64_t now_ms;                         /* latest time passed in */
    int skip_logged;                         /* a skipped record was logged already */
    struct hub_stats stats;                  /* counters (hub.h) */
};

/* ---- queues ------------------------------------------------------------ */

static void hub_queue_unlink(struct hub *hub, struct hub_subscriber *subscriber) {
    if (subscriber->queue == HUB_QUEUE_NONE)
        return;
    struct hub_list *list = &hub->queues[subscriber->queue];
    if (subscriber->queue_prev != NULL)
        subscriber->queue_prev->queue_next = subscriber->queue_next;
    else
        list->head = subscriber->queue_next;
    if (subscriber->queue_next != NULL)
        subscriber->queue_next->queue_prev = subscriber->queue_prev;
    else
        list->tail = subscriber->queue_prev;
    subscriber->queue_next = NULL;
    subscriber->queue_prev = NULL;
    subscriber->queue = HUB_QUEUE_NONE;
}

static void hub_queue_push(struct hub *hub, struct hub_subscriber *subscriber,
                           enum hub_queue queue) {
    CHECK(queue > HUB_QUEUE_NONE && queue < HUB_QUEUE_COUNT);
    hub_queue_unlink(hub, subscriber);
    struct hub_list *list = &hub->queues[queue];
    subscriber->queue_prev = list->tail;
    if (list->tail != NULL)
        list->tail->queue_next = subscriber;
    else
        list->head = subscriber;
    list->tail = subscriber;
    subscriber->queue = (uint8_t)queue;
}

/* 1 when the hub may still call the subscriber's ops. */
static int hub_usable(const struct hub_subscriber *subscriber) {
    return (subscriber->flags & (HUB_FLAG_CLOSED | HUB_FLAG_DETACHED)) == 0;
}

/* Switches to catch-up mode (counted once per switch). */
static void hub_catch_up(struct hub_subscriber *subscriber) {
    if (subscriber->flags & HUB_FLAG_CATCHING_UP)
        return;
    subscriber->flags |= HUB_FLAG_CATCHING_UP;
    subscriber->user->hub->stats.catchups_started++;
}

/* Queues a pump unless one is queued or the subscriber waits for room. */
static void hub_want_pump(struct hub_subscriber *subscriber) {
    if (!hub_usable(subscriber) || !(subscriber->flags & HUB_FLAG_CATCHING_UP))
        return;
    if (subscriber->queue != HUB_QUEUE_NONE)
        return;
    hub_queue_push(subscriber->user->hub, subscriber, HUB_QUEUE_PENDING);
}

static void hub_block(struct hub_subscriber *subscriber) {
    struct hub *hub = subscriber->user->hub;
    hub_catch_up(subscriber);
    subscriber->blocked_since_ms = hub->now_ms;
    hub_queue_push(hub, subscriber, HUB_QUEUE_BLOCKED);
}

/* Closes through the owner's ops; the owner detaches it (now or later). */
static void hub_close_subscriber(struct hub_subscriber *subscriber, uint16_t code,
                                 const char *reason) {
    if (!hub_usable(subscriber))
        return;
    subscriber->flags |= HUB_FLAG_CLOSED;
    hub_queue_unlink(subscriber->user->hub, subscriber);
    subscriber->ops->close(subscriber->arg, code, reason);
}

static void hub_fail(struct hub_subscriber *subscriber, const char *what, int code) {
    if (!hub_usable(subscriber))
        return;
    char user[80];
    logger_quote(subscriber->user->id, user, sizeof user);
    LOG_WARN("realtime", "closing a subscriber after an internal error", "user=%s what=%s error=%s",
             user, what, err_name(code));
    hub_close_subscriber(subscriber, HUB_CLOSE_INTERNAL, "internal error");
}

/* ---- users and the graveyard ------------------------------------------- */

static void hub_user_unlink(struct hub_user *user, struct hub_subscriber *subscriber) {
    if (subscriber->user_prev != NULL)
        subscriber->user_prev->user_next = subscriber->user_next;
    else
        user->head = subscriber->user_next;
    if (subscriber->user_next != NULL)
        subscriber->user_next->user_prev = subscriber->user_prev;
    else
        user->tail = subscriber->user_prev;
}

/* Frees detached subscribers, and users left without any. Only when no
 * callback is on the stack (outermost leave or a detach at depth 0). */
static void hub_reap(struct hub *hub) {
    struct hub_subscriber *subscriber;
    while ((subscriber = hub->queues[HUB_QUEUE_GRAVEYARD].head) != NULL) {
        struct hub_user *user = subscriber->user;
        hub_queue_unlink(hub, subscriber);
        hub_user_unlink(user, subscriber);
        mem_free(subscriber);
        if (user->head == NULL) {
            CHECK(user->attached == 0);
            void *removed = map_remove(&hub->users, user->id, user->id_length);
            CHECK(removed == user);
            mem_free(user);
        }
    }
}

static int hub_user_add(struct hub *hub, const char *user_id, size_t id_length,
                        struct hub_user **out) {
    struct hub_user *user = mem_calloc(1, sizeof *user + id_length + 1);
    if (user == NULL)
        return ERR_NOMEM;
    user->hub = hub;
    user->id_length = id_length;
    memcpy(user->id, user_id, id_length);
    int rc = map_put(&hub->users, user->id, id_length, user);
    if (rc != 0) {
        mem_free(user);
        return rc;
    }
    *out = user;
    return 0;
}

/* ---- message ------------------------------------------------------------ */

/* Wraps one CloudEvent into hub->message. ERR_LIMIT past a record's size. */
static int hub_message_build(struct hub *hub, const char *event_json, size_t length) {
    if (length > LIMIT_EVLOG_VALUE_BYTES)
        return ERR_LIMIT;
    size_t needed = HUB_EVENT_PREFIX_BYTES + length + 1;
    if (needed > hub->message_capacity) {
        size_t capacity = hub->message_capacity < HUB_MESSAGE_BYTES_MIN ? HUB_MESSAGE_BYTES_MIN
                                                                        : hub->message_capacity * 2;
        if (capacity < needed)
            capacity = needed;
        if (capacity > HUB_MESSAGE_BYTES_MAX)
            capacity = HUB_MESSAGE_BYTES_MAX;
        CHECK(capacity >= needed);
        char *message = mem_realloc(hub->message, capacity);
        if (message == NULL)
            return ERR_NOMEM;
        hub->message = message;
        hub->message_capacity = capacity;
    }
    memcpy(hub->message, HUB_EVENT_PREFIX, HUB_EVENT_PREFIX_BYTES);
    memcpy(hub->message + HUB_EVENT_PREFIX_BYTES, event_json, length);
    hub->message[needed - 1] = '}';
    hub->message_length = needed;
    return 0;
}

/* Offers hub->message (event `sequence`) to a subscriber that expects it.
 * 0 taken; 1 refused (now blocked, in catch-up); -1 closed or detached. */
static int hub_deliver(struct hub_subscriber *subscriber, int64_t sequence) {
    CHECK(hub_usable(subscriber) && sequence == subscriber->sent + 1);
    struct hub *hub = subscriber->user->hub;
    int rc = subscriber->ops->send(subscriber->arg, hub->message, hub->message_length);
    if (rc == 0) {
        subscriber->sent = sequence;
        hub->stats.messages_sent++;
        return hub_usable(subscriber) ? 0 : -1;
    }
    if (!hub_usable(subscriber))
        return -1;
    if (rc == ERR_AGAIN) {
        hub_block(subscriber);
        return 1;
    }
    hub_fail(subscriber, "send", rc);
    return -1;
}

/* ---- catch-up pump ------------------------------------------------------ */

/* One catch-up read in progress. */
struct hub_pump {
    struct hub_subscriber *subscriber; /* being served */
    int stopped;                       /* it blocked or closed: read no further */
};

static int hub_pump_each(void *arg, int64_t sequence, const char *event_json, size_t length) {
    struct hub_pump *pump = arg;
    struct hub_subscriber *subscriber = pump->subscriber;
    struct hub *hub = subscriber->user->hub;
    hub->stats.catchup_events_read++;
    if (sequence <= subscriber->sent)
        return 0;
    int rc = sequence == subscriber->sent + 1 ? 0 : ERR_CORRUPT; /* sequences are dense */
    if (rc == 0)
        rc = hub_message_build(hub, event_json, length);
    if (rc != 0) {
        hub_fail(subscriber, "catch-up event", rc);
        pump->stopped = 1;
        return 1;
    }
    if (hub_deliver(subscriber, sequence) != 0) {
        pump->stopped = 1;
        return 1;
    }
    return 0;
}

/* Sends pages from the source until a short page (then live), a refusal
 * (wait for hub_writable) or a close. Bounded: each full page moves `sent`
 * forward, and the source cannot grow meanwhile (everything is on the loop
 * thread, and hub_advance refuses to run inside a callback). */
static void hub_pump(struct hub_subscriber *subscriber) {
    struct hub *hub = subscriber->user->hub;
    const struct hub_source *source = &hub->options.source;
    while (hub_usable(subscriber) && (subscriber->flags & HUB_FLAG_CATCHING_UP) &&
           subscriber->queue == HUB_QUEUE_NONE) {
        struct hub_pump pump = {subscriber, 0};
        int64_t before = subscriber->sent;
        int count = source->read(source->arg, subscriber->user->id, before, HUB_CATCHUP_PAGE,
                                 hub_pump_each, &pump);
        if (pump.stopped)
            return;
        if (count < 0) {
            hub_fail(subscriber, "catch-up read", count);
            return;
        }
        if ((size_t)count < HUB_CATCHUP_PAGE) {
            subscriber->flags &= (uint8_t)~HUB_FLAG_CATCHING_UP;
            return;
        }
        if (subscriber->sent == before) { /* a full page that moved nothing would loop */
            hub_fail(subscriber, "catch-up page", ERR_CORRUPT);
            return;
        }
    }
}

/* ---- nesting ------------------------------------------------------------ */

static void hub_enter(struct hub *hub, uint64_t now_ms) {
    hub->depth++;
    if (now_ms > hub->now_ms)
        hub->now_ms = now_ms;
}

/* The outermost leave runs the queued pumps (their callbacks may queue
 * more, or detach) and then frees the graveyard. */
static void hub_leave(struct hub *hub) {
    CHECK(hub->depth > 0);
    if (hub->depth > 1) {
        hub->depth--;
        return;
    }
    struct hub_subscriber *subscriber;
    while ((subscriber = hub->queues[HUB_QUEUE_PENDING].head) != NULL) {
        hub_queue_unlink(hub, subscriber);
        hub_pump(subscriber);
    }
    hub_reap(hub);
    hub->depth = 0;
}

/* ---- fan-out ------------------------------------------------------------ */

/* Every subscriber of the user turns to catch-up (the source has what the
 * hub could not deliver live). */
static void hub_user_catch_up(struct hub_user *user) {
    for (struct hub_subscriber *subscriber = user->head; subscriber != NULL;
         subscriber = subscriber->user_next) {
        if (!hub_usable(subscriber))
            continue;
        hub_catch_up(subscriber);
        hub_want_pump(subscriber);
    }
}

/* Offers hub->message (event `sequence`) by the one rule. Subscribers that
 * callbacks detach stay linked until the outermost leave, so stepping to
 * user_next afterwards is safe. */
static void hub_fan_out(struct hub_user *user, int64_t sequence) {
    for (struct hub_subscriber *subscriber = user->head; subscriber != NULL;
         subscriber = subscriber->user_next) {
        if (!hub_usable(subscriber) || (subscriber->flags & HUB_FLAG_CATCHING_UP))
            continue;
        if (sequence <= subscriber->sent)
            continue;
        if (sequence > subscriber->sent + 1) {
            hub_catch_up(subscriber);
            hub_want_pump(subscriber);
            continue;
        }
        (void)hub_deliver(subscriber, sequence);
    }
}

static void hub_skip(struct hub *hub, const struct evlog_record *record, int code) {
    hub->stats.records_skipped++;
    if (hub->skip_logged)
        return;
    hub->skip_logged = 1;
    LOG_WARN("realtime", "skipping a record that is not an event of its key's user (logged once)",
             "offset=%lld error=%s", (long long)record->offset, err_name(code));
}

/* One log record: only parsed when its key (the user id) has subscribers. */
static void hub_dispatch(struct hub *hub, const struct evlog_record *record) {
    if (record->key_bytes == 0 || record->key_bytes > LIMIT_EVLOG_KEY_BYTES)
        return;
    struct hub_user *user = map_get(&hub->users, (const char *)record->key, record->key_bytes);
    if (user == NULL || user->attached == 0)
        return;
    struct event_envelope envelope;
    yyjson_doc *doc = NULL;
    yyjson_val *data = NULL;
    const char *value = (const char *)record->value;
    int rc = event_parse(value, record->value_bytes, &envelope, &doc, &data);
    if (rc == 0) {
        yyjson_doc_free(doc);
        /* Isolation: the envelope's owner must be the key's user. */
        if (strlen(envelope.user_id) != user->id_length ||
            memcmp(envelope.user_id, user->id, user->id_length) != 0) {
            rc = ERR_PARSE;
        }
    }
    if (rc == ERR_PARSE) {
        hub_skip(hub, record, rc);
        return;
    }
    if (rc == 0)
        rc = hub_message_build(hub, value, record->value_bytes);
    if (rc != 0) {
        /* Out of memory: it cannot go out live, but the source has it. */
        hub_user_catch_up(user);
        return;
    }
    hub_fan_out(user, envelope.sequence);
}

/* ---- reading the log ---------------------------------------------------- */

static void hub_cursor_close(struct hub *hub) {
    if (!hub->cursor_open)
        return;
    evlog_cursor_close(&hub->cursor);
    hub->cursor_open = 0;
}

/* Retention removed records the hub had not read: jump to the topic's start
 * and send every subscriber to catch-up, which reads the projection. */
static int hub_retention_jump(struct hub *hub) {
    int64_t start = evlog_topic_start_offset(hub->options.topic);
    if (start <= hub->offset)
        return ERR_RANGE; /* not retention: do not loop */
    LOG_WARN("realtime", "log retention passed the hub; subscribers catch up from the projection",
             "from=%lld to=%lld", (long long)hub->offset, (long long)start);
    hub_cursor_close(hub);
    hub->offset = start;
    size_t cursor = 0;
    struct map_slot *slot;
    while ((slot = map_next(&hub->users, &cursor)) != NULL)
        hub_user_catch_up(slot->value);
    return 0;
}

static int hub_cursor_open(struct hub *hub) {
    CHECK(!hub->cursor_open);
    int rc = evlog_cursor_open(&hub->cursor, hub->options.topic, hub->offset);
    if (rc == ERR_RANGE) {
        rc = hub_retention_jump(hub);
        if (rc == 0)
            rc = evlog_cursor_open(&hub->cursor, hub->options.topic, hub->offset);
    }
    if (rc != 0)
        return rc;
    hub->cursor_open = 1;
    return 0;
}

/* Bounded: each pass reads one record or jumps strictly forward. */
static int hub_read(struct hub *hub, int64_t applied_end) {
    int rc = 0;
    while (hub->offset < applied_end) {
        if (!hub->cursor_open && (rc = hub_cursor_open(hub)) != 0)
            break;
        struct evlog_record record;
        rc = evlog_cursor_next(&hub->cursor, &record);
        if (rc == ERR_RANGE) {
            rc = hub_retention_jump(hub);
            if (rc != 0)
                break;
            continue;
        }
        if (rc == ERR_AGAIN) { /* applied_end is past the durable end: nothing more yet */
            rc = 0;
            break;
        }
        if (rc != 0) { /* the next call reopens at `offset` */
            hub_cursor_close(hub);
            break;
        }
        CHECK(record.offset == hub->offset);
        hub->offset = record.offset + 1;
        hub->stats.events_applied++;
        hub_dispatch(hub, &record);
    }
    return rc;
}

/* ---- public API --------------------------------------------------------- */

int hub_open(struct hub **out, const struct hub_options *options) {
    CHECK(out != NULL && options != NULL);
    *out = NULL;
    if (options->source.read == NULL || options->source.last_sequence == NULL ||
        options->max_connections == 0 || options->max_connections_per_user == 0 ||
        options->start_offset < 0) {
        return ERR_INVAL;
    }
    struct hub *hub = mem_calloc(1, sizeof *hub);
    if (hub == NULL)
        return ERR_NOMEM;
    hub->options = *options;
    hub->offset = options->start_offset;
    map_init(&hub->users, options->max_connections);
    *out = hub;
    return 0;
}

void hub_close(struct hub *hub) {
    if (hub == NULL)
        return;
    CHECK(hub->depth == 0);
    size_t cursor = 0;
    struct map_slot *slot;
    while ((slot = map_next(&hub->users, &cursor)) != NULL) {
        struct hub_user *user = slot->value;
        struct hub_subscriber *subscriber = user->head;
        while (subscriber != NULL) {
            struct hub_subscriber *next = subscriber->user_next;
            mem_free(subscriber);
            subscriber = next;
        }
        mem_free(user);
    }
    map_free(&hub->users);
    hub_cursor_close(hub);
    mem_free(hub->message);
    mem_free(hub);
}

int hub_advance(struct hub *hub, int64_t applied_end, uint64_t now_ms) {
    CHECK(hub != NULL);
    if (hub->depth > 0)
        return ERR_BUSY; /* from inside a callback: the message is in use */
    if (hub->options.topic == NULL || applied_end <= hub->offset)
        return 0;
    hub_enter(hub, now_ms);
    int rc = hub_read(hub, applied_end);
    hub_leave(hub);
    return rc;
}

int64_t hub_offset(const struct hub *hub) {
    CHECK(hub != NULL);
    return hub->offset;
}

/* Checks the limits and `since`; *last_out is the user's last sequence. */
static int hub_attach_check(struct hub *hub, const char *user_id, int64_t since,
                            struct hub_user **user_out, int64_t *last_out) {
    size_t id_length = strlen(user_id);
    if (id_length == 0 || id_length > LIMIT_EVLOG_KEY_BYTES)
        return ERR_INVAL;
    if (hub->stats.subscribers >= hub->options.max_connections)
        return ERR_LIMIT;
    struct hub_user *user = map_get(&hub->users, user_id, id_length);
    if (user != NULL && user->attached >= hub->options.max_connections_per_user)
        return ERR_BUSY;
    const struct hub_source *source = &hub->options.source;
    int rc = source->last_sequence(source->arg, user_id, last_out);
    if (rc != 0)
        return rc;
    if (since > *last_out)
        return ERR_RANGE;
    *user_out = user;
    return 0;
}

int hub_attach(struct hub *hub, const char *user_id, int64_t since,
               const struct hub_subscriber_ops *ops, void *arg, uint64_t now_ms,
               struct hub_subscriber **out) {
    CHECK(hub != NULL && user_id != NULL && out != NULL);
    CHECK(ops != NULL && ops->send != NULL && ops->close != NULL);
    *out = NULL;
    struct hub_user *user = NULL;
    int64_t last = 0;
    int rc = hub_attach_check(hub, user_id, since, &user, &last);
    if (rc != 0)
        return rc;
    struct hub_subscriber *subscriber = mem_calloc(1, sizeof *subscriber);
    if (subscriber == NULL)
        return ERR_NOMEM;
    if (user == NULL && (rc = hub_user_add(hub, user_id, strlen(user_id), &user)) != 0) {
        mem_free(subscriber);
        return rc;
    }
    subscriber->user = user;
    subscriber->ops = ops;
    subscriber->arg = arg;
    subscriber->sent = since < 0 ? last : since;
    subscriber->user_prev = user->tail;
    if (user->tail != NULL)
        user->tail->user_next = subscriber;
    else
        user->head = subscriber;
    user->tail = subscriber;
    if (user->attached++ == 0)
        hub->stats.users++;
    hub->stats.subscribers++;
    *out = subscriber;
    hub_enter(hub, now_ms);
    if (since >= 0) {
        hub_catch_up(subscriber);
        hub_want_pump(subscriber);
    }
    hub_leave(hub);
    return 0;
}

void hub_detach(struct hub_subscriber *subscriber) {
    CHECK(subscriber != NULL);
    if (subscriber->flags & HUB_FLAG_DETACHED)
        return; /* parked in the graveyard */
    struct hub_user *user = subscriber->user;
    struct hub *hub = user->hub;
    subscriber->flags |= HUB_FLAG_DETACHED;
    CHECK(user->attached > 0 && hub->stats.subscribers > 0);
    if (--user->attached == 0)
        hub->stats.users--;
    hub->stats.subscribers--;
    hub_queue_push(hub, subscriber, HUB_QUEUE_GRAVEYARD);
    if (hub->depth == 0)
        hub_reap(hub);
}

int hub_resume(struct hub_subscriber *subscriber, int64_t since, uint64_t now_ms) {
    CHECK(subscriber != NULL);
    if (!hub_usable(subscriber))
        return ERR_CLOSED;
    if (since < 0)
        return ERR_INVAL;
    struct hub *hub = subscriber->user->hub;
    const struct hub_source *source = &hub->options.source;
    int64_t last = 0;
    int rc = source->last_sequence(source->arg, subscriber->user->id, &last);
    if (rc != 0)
        return rc;
    if (since > last)
        return ERR_RANGE;
    hub_enter(hub, now_ms);
    subscriber->sent = since;
    hub_catch_up(subscriber);
    hub_want_pump(subscriber); /* a blocked one continues at hub_writable */
    hub_leave(hub);
    return 0;
}

void hub_writable(struct hub_subscriber *subscriber, uint64_t now_ms) {
    CHECK(subscriber != NULL);
    if (!hub_usable(subscriber))
        return;
    struct hub *hub = subscriber->user->hub;
    hub_enter(hub, now_ms);
    if (subscriber->queue == HUB_QUEUE_BLOCKED)
        hub_queue_unlink(hub, subscriber);
    hub_want_pump(subscriber);
    hub_leave(hub);
}

int64_t hub_subscriber_sent(const struct hub_subscriber *subscriber) {
    CHECK(subscriber != NULL);
    return subscriber->sent;
}

int hub_subscriber_catching_up(const struct hub_subscriber *subscriber) {
    CHECK(subscriber != NULL);
    return (subscriber->flags & HUB_FLAG_CATCHING_UP) != 0;
}

size_t hub_send_user(struct hub *hub, const char *user_id, const char *text, size_t length) {
    CHECK(hub != NULL && user_id != NULL && text != NULL);
    struct hub_user *user = map_get(&hub->users, user_id, strlen(user_id));
    if (user == NULL)
        return 0;
    size_t taken = 0;
    hub_enter(hub, hub->now_ms);
    for (struct hub_subscriber *subscriber = user->head; subscriber != NULL;
         subscriber = subscriber->user_next) {
        if (!hub_usable(subscriber))
            continue;
        int rc = subscriber->ops->send(subscriber->arg, text, length);
        if (rc == 0) {
            taken++;
            hub->stats.messages_sent++;
        } else if (rc != ERR_AGAIN) {
            hub_fail(subscriber, "send", rc); /* a no-op when the callback detached it */
        }
    }
    hub_leave(hub);
    return taken;
}

void hub_tick(struct hub *hub, uint64_t now_ms) {
    CHECK(hub != NULL);
    uint64_t timeout_ms = hub->options.stall_timeout_ms;
    if (timeout_ms == 0)
        return;
    hub_enter(hub, now_ms);
    /* The blocked queue is in blocking order: only its head can be due.
     * Each pass removes the head, so the loop is bounded by its length. */
    struct hub_subscriber *subscriber;
    while ((subscriber = hub->queues[HUB_QUEUE_BLOCKED].head) != NULL &&
           hub->now_ms >= subscriber->blocked_since_ms &&
           hub->now_ms - subscriber->blocked_since_ms >= timeout_ms) {
        char reason[96];
        snprintf(reason, sizeof reason, "send queue full too long; reconnect with since=%lld",
                 (long long)subscriber->sent);
        hub->stats.stalls_closed++;
        hub_close_subscriber(subscriber, HUB_CLOSE_RESUME, reason);
    }
    hub_leave(hub);
}

const struct hub_stats *hub_stats(const struct hub *hub) {
    CHECK(hub != NULL);
    return &hub->stats;
}

size_t hub_subscriber_bytes(void) {
    return sizeof(struct hub_subscriber);
}
