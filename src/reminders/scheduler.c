/*
 * scheduler.c - the reminder scheduler (see scheduler.h for the contract).
 *
 * Layers, top to bottom:
 *   public API      open/close, put/remove/retry, run, stats, validate;
 *   firing          the wheel callback that turns a due record into a
 *                   struct scheduler_fire and hands it to ops.fire;
 *   clock jumps     wall against monotonic deltas; a backward jump rebuilds
 *                   the wheel at the new wall time;
 *   index           an open-addressing table of record pointers keyed by a
 *                   hash of the 25-byte binary key (task id, kind, at_ms);
 *   records         one allocation per timer holding the key, the owner and
 *                   the embedded wheel entry.
 *
 * Memory. A record is 88 bytes (the wheel entry is 40 of them) and the index
 * adds a pointer and a one-byte tag per slot at a load factor between 3/8
 * and 3/4, so 12 to 24 bytes per timer: 106.9 bytes per timer measured at a
 * million (scheduler_bytes(); the allocator's own per-block header, 8 to 16
 * bytes, comes on top). The index holds only pointers because records hold
 * their keys; the tag (the hash's top byte) lets a probe skip records whose
 * key cannot match without touching their memory, so a miss costs one or
 * two cache lines of the table instead of one per record probed. Deletion
 * shifts the following run back (no tombstones), so probe lengths do not
 * degrade under the put/remove churn of a long-running server.
 *
 * Re-entrancy. ops.fire runs inside wheel_run with its record already taken
 * off the wheel, so the callback may remove (free) it, retry it, or put and
 * remove any other timer. The firing code finishes every access to the
 * record before it calls ops.fire.
 */
#include "scheduler.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/mem.h"
#include "../timer/wheel.h"

#include <string.h>

/* The index starts with this many slots (a power of two) and doubles. */
#define SCHEDULER_INDEX_SLOTS_MIN 64

/* A record's state. Pending and retry-wait records are in the wheel; firing
 * ones are not (they wait for scheduler_remove or scheduler_retry). */
enum scheduler_state {
    SCHEDULER_STATE_PENDING = 0, /* waiting for at_ms */
    SCHEDULER_STATE_FIRING = 1,  /* handed to ops.fire, not yet removed */
    SCHEDULER_STATE_RETRY = 2,   /* handed out, failed, waiting to be handed out again */
};

/* One timer. The key is (task_id, kind, at_ms). */
struct scheduler_timer {
    struct wheel_entry entry; /* the wheel's part; due_ms is at_ms or the retry time */
    int64_t at_ms;            /* the instant it is due (Unix ms) */
    uint8_t task_id[16];      /* the task, binary */
    uint8_t user_id[16];      /* its owner, binary */
    uint8_t kind;             /* enum scheduler_kind */
    uint8_t state;            /* enum scheduler_state */
};

/* The binary key of a lookup, parsed once from the caller's text. */
struct scheduler_key {
    uint8_t task_id[16]; /* the task, binary */
    uint8_t kind;        /* enum scheduler_kind */
    int64_t at_ms;       /* the instant */
};

struct scheduler {
    struct wheel wheel;               /* every pending and retry-wait record */
    struct scheduler_options options; /* as passed to scheduler_open */
    struct scheduler_timer **slots;   /* the index: record pointers, NULL = empty */
    uint8_t *tags;                    /* per slot, its record's scheduler_tag (after slots) */
    size_t slot_count;                /* size of `slots`, a power of two */
    size_t timer_count;               /* records indexed (pending + firing) */
    size_t timers_max;                /* ERR_LIMIT beyond this many records */
    int64_t wall_ms;                  /* wall clock of the last run (or open) */
    int64_t mono_ms;                  /* monotonic clock of the last run (or open) */
    struct scheduler_stats stats;     /* counters for scheduler_stats */
};

/* ---- keys and ids ------------------------------------------------------ */

static int scheduler_hex_value(char digit) {
    if (digit >= '0' && digit <= '9') return digit - '0';
    if (digit >= 'a' && digit <= 'f') return digit - 'a' + 10;
    if (digit >= 'A' && digit <= 'F') return digit - 'A' + 10;
    return -1;
}

/* Canonical UUID text (either case) to 16 bytes; ERR_INVAL otherwise. */
static int scheduler_id_parse(const char *text, uint8_t out[16]) {
    if (text == NULL) return ERR_INVAL;
    size_t length = strnlen(text, UUID_STRING_BYTES);
    if (length != UUID_STRING_BYTES - 1 || !uuid_is_valid(text, length)) return ERR_INVAL;
    size_t byte = 0;
    for (size_t position = 0; position < length && byte < 16; position++) {
        if (text[position] == '-') continue;
        int high = scheduler_hex_value(text[position]);
        int low = scheduler_hex_value(text[position + 1]);
        CHECK(high >= 0 && low >= 0);
        out[byte++] = (uint8_t)(high << 4 | low);
        position++;
    }
    CHECK(byte == 16);
    return 0;
}

/* 16 bytes to lowercase canonical text with its NUL. */
static void scheduler_id_format(const uint8_t id[16], char out[UUID_STRING_BYTES]) {
    static const char hex[] = "0123456789abcdef";
    size_t position = 0;
    for (size_t byte = 0; byte < 16; byte++) {
        if (byte == 4 || byte == 6 || byte == 8 || byte == 10) out[position++] = '-';
        out[position++] = hex[id[byte] >> 4];
        out[position++] = hex[id[byte] & 0x0f];
    }
    CHECK(position == UUID_STRING_BYTES - 1);
    out[position] = '\0';
}

static int scheduler_key_make(struct scheduler_key *key, const char *task_id,
                              enum scheduler_kind kind, int64_t at_ms) {
    if (kind != SCHEDULER_REMINDER && kind != SCHEDULER_SPAWN) return ERR_INVAL;
    if (at_ms < 0 || at_ms > SCHEDULER_AT_MS_MAX) return ERR_INVAL;
    key->kind = (uint8_t)kind;
    key->at_ms = at_ms;
    return scheduler_id_parse(task_id, key->task_id);
}

/* A 64-bit mix of the key (splitmix64's finalizer over the folded words):
 * version 7 ids share their leading time bits, so every bit must spread. */
static uint64_t scheduler_key_hash(const uint8_t task_id[16], uint8_t kind, int64_t at_ms) {
    uint64_t high;
    uint64_t low;
    memcpy(&high, task_id, 8);
    memcpy(&low, task_id + 8, 8);
    uint64_t hash = high ^ (low * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)at_ms << 1) ^ kind;
    hash ^= hash >> 30;
    hash *= 0xbf58476d1ce4e5b9ULL;
    hash ^= hash >> 27;
    hash *= 0x94d049bb133111ebULL;
    hash ^= hash >> 31;
    return hash;
}

static bool scheduler_timer_matches(const struct scheduler_timer *timer,
                                    const struct scheduler_key *key) {
    return timer->at_ms == key->at_ms && timer->kind == key->kind &&
           memcmp(timer->task_id, key->task_id, 16) == 0;
}

static struct scheduler_timer *scheduler_timer_of(struct wheel_entry *entry) {
    return (struct scheduler_timer *)((char *)entry - offsetof(struct scheduler_timer, entry));
}

static struct scheduler *scheduler_of(struct wheel *wheel) {
    return (struct scheduler *)((char *)wheel - offsetof(struct scheduler, wheel));
}

/* ---- index ------------------------------------------------------------- */

/* The tag kept beside each pointer: the hash's top byte, so a probe
 * dereferences a record only when the tags agree (1 time in 256 otherwise). */
static uint8_t scheduler_tag(uint64_t hash) {
    return (uint8_t)(hash >> 56);
}

static uint64_t scheduler_timer_hash(const struct scheduler_timer *timer) {
    return scheduler_key_hash(timer->task_id, timer->kind, timer->at_ms);
}

/* The slot holding the key's record, or the empty slot that ends its probe. */
static size_t scheduler_index_find(const struct scheduler *scheduler,
                                   const struct scheduler_key *key, uint64_t hash) {
    size_t mask = scheduler->slot_count - 1;
    size_t slot = (size_t)hash & mask;
    uint8_t tag = scheduler_tag(hash);
    for (size_t probes = 0; probes < scheduler->slot_count; probes++) {
        struct scheduler_timer *timer = scheduler->slots[slot];
        if (timer == NULL) return slot;
        if (scheduler->tags[slot] == tag && scheduler_timer_matches(timer, key)) return slot;
        slot = (slot + 1) & mask;
    }
    CHECK(false); /* the load factor keeps empty slots */
    return 0;
}

static size_t scheduler_index_lookup(const struct scheduler *scheduler,
                                     const struct scheduler_key *key) {
    return scheduler_index_find(scheduler, key,
                                scheduler_key_hash(key->task_id, key->kind, key->at_ms));
}

/* Allocates an empty table of slot_count pointers followed by as many tags,
 * in one block (one allocation to fail, one to free). */
static int scheduler_index_alloc(struct scheduler *scheduler, size_t slot_count) {
    struct scheduler_timer **slots = mem_calloc(slot_count, sizeof *slots + 1);
    if (slots == NULL) return ERR_NOMEM;
    scheduler->slots = slots;
    scheduler->tags = (uint8_t *)(slots + slot_count);
    scheduler->slot_count = slot_count;
    return 0;
}

/* Puts a record in the first empty slot from its home (rehashing only). */
static void scheduler_index_place(struct scheduler *scheduler, struct scheduler_timer *timer) {
    uint64_t hash = scheduler_timer_hash(timer);
    size_t mask = scheduler->slot_count - 1;
    size_t slot = (size_t)hash & mask;
    for (size_t probes = 0; probes < scheduler->slot_count; probes++) {
        if (scheduler->slots[slot] == NULL) {
            scheduler->slots[slot] = timer;
            scheduler->tags[slot] = scheduler_tag(hash);
            return;
        }
        slot = (slot + 1) & mask;
    }
    CHECK(false);
}

/* Makes room for one more record: doubles the table past a load of 3/4.
 * Returns 1 if it moved the records (slots found before are stale), 0 if
 * not, or ERR_NOMEM (the table is unchanged). */
static int scheduler_index_reserve(struct scheduler *scheduler) {
    if ((scheduler->timer_count + 1) * 4 <= scheduler->slot_count * 3) return 0;
    struct scheduler_timer **old = scheduler->slots;
    size_t old_count = scheduler->slot_count;
    if (scheduler_index_alloc(scheduler, old_count * 2) < 0) return ERR_NOMEM;
    for (size_t slot = 0; slot < old_count; slot++) {
        if (old[slot] != NULL) scheduler_index_place(scheduler, old[slot]);
    }
    mem_free(old);
    return 1;
}

/* Empties `slot` and shifts back the records after it that probed past it
 * (linear probing's deletion without tombstones). */
static void scheduler_index_delete(struct scheduler *scheduler, size_t slot) {
    size_t mask = scheduler->slot_count - 1;
    size_t hole = slot;
    size_t next = (hole + 1) & mask;
    for (size_t probes = 0; probes < scheduler->slot_count; probes++) {
        struct scheduler_timer *timer = scheduler->slots[next];
        if (timer == NULL) break;
        size_t home = (size_t)scheduler_timer_hash(timer) & mask;
        /* Move it into the hole unless its home lies cyclically in (hole, next]. */
        if (((next - home) & mask) >= ((next - hole) & mask)) {
            scheduler->slots[hole] = timer;
            scheduler->tags[hole] = scheduler->tags[next];
            hole = next;
        }
        next = (next + 1) & mask;
    }
    scheduler->slots[hole] = NULL;
    scheduler->timer_count--;
}

/* ---- firing ------------------------------------------------------------ */

/* The wheel callback: the record becomes firing (still indexed, so a put of
 * its key stays a no-op) and the caller hears of it. */
static void scheduler_fire_entry(struct wheel *wheel, struct wheel_entry *entry, int64_t now_ms) {
    struct scheduler *scheduler = scheduler_of(wheel);
    struct scheduler_timer *timer = scheduler_timer_of(entry);
    CHECK(timer->state != SCHEDULER_STATE_FIRING && scheduler->stats.pending > 0);
    struct scheduler_fire fire;
    scheduler_id_format(timer->task_id, fire.task_id);
    scheduler_id_format(timer->user_id, fire.user_id);
    fire.kind = (enum scheduler_kind)timer->kind;
    fire.at_ms = timer->at_ms;
    fire.now_ms = now_ms;
    fire.late_ms = now_ms > timer->at_ms ? now_ms - timer->at_ms : 0;
    fire.missed = fire.kind == SCHEDULER_REMINDER && fire.late_ms > scheduler->options.grace_ms;
    timer->state = SCHEDULER_STATE_FIRING;
    scheduler->stats.pending--;
    scheduler->stats.firing++;
    scheduler->stats.fired++;
    if (fire.missed) {
        scheduler->stats.missed++;
    } else if ((uint64_t)fire.late_ms > scheduler->stats.lateness_ms_max) {
        scheduler->stats.lateness_ms_max = (uint64_t)fire.late_ms;
    }
    /* The record may be freed by the callback: nothing touches it after this. */
    scheduler->options.ops.fire(scheduler->options.arg, &fire);
}

/* ---- clock jumps ------------------------------------------------------- */

/* Re-inserts every waiting record into a wheel whose time is `wall_ms`, so
 * that a clock that went back neither fires early (a record due at or before
 * the old wheel time would otherwise be "ready") nor holds timers back. */
static void scheduler_rebuild(struct scheduler *scheduler, int64_t wall_ms) {
    for (size_t slot = 0; slot < scheduler->slot_count; slot++) {
        struct scheduler_timer *timer = scheduler->slots[slot];
        if (timer != NULL) wheel_cancel(&scheduler->wheel, &timer->entry);
    }
    CHECK(wheel_count(&scheduler->wheel) == 0);
    wheel_init(&scheduler->wheel, wall_ms);
    for (size_t slot = 0; slot < scheduler->slot_count; slot++) {
        struct scheduler_timer *timer = scheduler->slots[slot];
        if (timer == NULL || timer->state == SCHEDULER_STATE_FIRING) continue;
        wheel_schedule(&scheduler->wheel, &timer->entry, timer->entry.due_ms);
    }
    CHECK(wheel_count(&scheduler->wheel) == scheduler->stats.pending);
}

/* Compares how far each clock moved since the last run; rebuilds on a
 * backward jump. */
static void scheduler_jump_detect(struct scheduler *scheduler, int64_t wall_ms, int64_t mono_ms) {
    int64_t wall_delta = wall_ms - scheduler->wall_ms;
    int64_t mono_delta = mono_ms - scheduler->mono_ms;
    int64_t skew = wall_delta - mono_delta;
    if (skew > SCHEDULER_JUMP_MS) {
        scheduler->stats.jumps_forward++;
    } else if (skew < -SCHEDULER_JUMP_MS) {
        scheduler->stats.jumps_backward++;
        scheduler_rebuild(scheduler, wall_ms);
    }
}

/* ---- public API -------------------------------------------------------- */

int scheduler_open(struct scheduler **out, const struct scheduler_options *options) {
    CHECK(out != NULL && options != NULL);
    *out = NULL;
    if (options->ops.fire == NULL || options->grace_ms < 0) return ERR_INVAL;
    if (options->wall_ms < 0 || options->wall_ms > SCHEDULER_AT_MS_MAX) return ERR_INVAL;
    if (options->timers_max > SCHEDULER_TIMERS_MAX) return ERR_INVAL;
    struct scheduler *scheduler = mem_calloc(1, sizeof *scheduler);
    if (scheduler == NULL) return ERR_NOMEM;
    if (scheduler_index_alloc(scheduler, SCHEDULER_INDEX_SLOTS_MIN) < 0) {
        mem_free(scheduler);
        return ERR_NOMEM;
    }
    scheduler->options = *options;
    scheduler->timers_max = options->timers_max != 0 ? options->timers_max : SCHEDULER_TIMERS_MAX;
    scheduler->wall_ms = options->wall_ms;
    scheduler->mono_ms = options->mono_ms;
    wheel_init(&scheduler->wheel, options->wall_ms);
    *out = scheduler;
    return 0;
}

void scheduler_close(struct scheduler *scheduler) {
    if (scheduler == NULL) return;
    CHECK(!scheduler->wheel.running);
    for (size_t slot = 0; slot < scheduler->slot_count; slot++) {
        mem_free(scheduler->slots[slot]);
    }
    mem_free(scheduler->slots);
    mem_free(scheduler);
}

int scheduler_put(struct scheduler *scheduler, const char *task_id, const char *user_id,
                  enum scheduler_kind kind, int64_t at_ms) {
    CHECK(scheduler != NULL);
    struct scheduler_key key;
    uint8_t user[16];
    int result = scheduler_key_make(&key, task_id, kind, at_ms);
    if (result == 0) result = scheduler_id_parse(user_id, user);
    if (result < 0) return result;
    uint64_t hash = scheduler_key_hash(key.task_id, key.kind, key.at_ms);
    size_t slot = scheduler_index_find(scheduler, &key, hash);
    if (scheduler->slots[slot] != NULL) return 0;
    if (scheduler->timer_count >= scheduler->timers_max) return ERR_LIMIT;
    struct scheduler_timer *timer = mem_alloc(sizeof *timer);
    if (timer == NULL) return ERR_NOMEM;
    result = scheduler_index_reserve(scheduler);
    if (result < 0) {
        mem_free(timer);
        return result;
    }
    /* The table grew: probe again for the empty slot. */
    if (result == 1) slot = scheduler_index_find(scheduler, &key, hash);
    wheel_entry_init(&timer->entry, scheduler_fire_entry);
    timer->at_ms = at_ms;
    memcpy(timer->task_id, key.task_id, 16);
    memcpy(timer->user_id, user, 16);
    timer->kind = key.kind;
    timer->state = SCHEDULER_STATE_PENDING;
    CHECK(scheduler->slots[slot] == NULL);
    scheduler->slots[slot] = timer;
    scheduler->tags[slot] = scheduler_tag(hash);
    scheduler->timer_count++;
    scheduler->stats.pending++;
    wheel_schedule(&scheduler->wheel, &timer->entry, at_ms);
    return 0;
}

void scheduler_remove(struct scheduler *scheduler, const char *task_id, enum scheduler_kind kind,
                      int64_t at_ms) {
    CHECK(scheduler != NULL);
    struct scheduler_key key;
    if (scheduler_key_make(&key, task_id, kind, at_ms) < 0) return;
    size_t slot = scheduler_index_lookup(scheduler, &key);
    struct scheduler_timer *timer = scheduler->slots[slot];
    if (timer == NULL) return;
    if (timer->state == SCHEDULER_STATE_FIRING) {
        CHECK(scheduler->stats.firing > 0);
        scheduler->stats.firing--;
    } else {
        CHECK(scheduler->stats.pending > 0);
        wheel_cancel(&scheduler->wheel, &timer->entry);
        scheduler->stats.pending--;
    }
    scheduler_index_delete(scheduler, slot);
    mem_free(timer);
}

void scheduler_retry(struct scheduler *scheduler, const char *task_id, enum scheduler_kind kind,
                     int64_t at_ms, int64_t delay_ms) {
    CHECK(scheduler != NULL);
    struct scheduler_key key;
    if (scheduler_key_make(&key, task_id, kind, at_ms) < 0) return;
    struct scheduler_timer *timer = scheduler->slots[scheduler_index_lookup(scheduler, &key)];
    if (timer == NULL || timer->state != SCHEDULER_STATE_FIRING) return;
    if (delay_ms < 0) delay_ms = 0;
    if (delay_ms > SCHEDULER_AT_MS_MAX) delay_ms = SCHEDULER_AT_MS_MAX;
    timer->state = SCHEDULER_STATE_RETRY;
    scheduler->stats.firing--;
    scheduler->stats.pending++;
    scheduler->stats.retried++;
    wheel_schedule(&scheduler->wheel, &timer->entry, scheduler->wall_ms + delay_ms);
}

int64_t scheduler_run(struct scheduler *scheduler, int64_t wall_ms, int64_t mono_ms) {
    CHECK(scheduler != NULL && !scheduler->wheel.running);
    /* The wheel's time must stay >= 0 and retry times must not overflow. */
    if (wall_ms < 0) wall_ms = 0;
    if (wall_ms > SCHEDULER_AT_MS_MAX) wall_ms = SCHEDULER_AT_MS_MAX;
    scheduler_jump_detect(scheduler, wall_ms, mono_ms);
    scheduler->wall_ms = wall_ms;
    scheduler->mono_ms = mono_ms;
    wheel_run(&scheduler->wheel, wall_ms);
    int64_t next_ms = wheel_next_due(&scheduler->wheel);
    if (next_ms == WHEEL_NEVER || next_ms - wall_ms > SCHEDULER_SLEEP_MAX_MS) {
        return SCHEDULER_SLEEP_MAX_MS;
    }
    return next_ms > wall_ms ? next_ms - wall_ms : 0;
}

const struct scheduler_stats *scheduler_stats(const struct scheduler *scheduler) {
    CHECK(scheduler != NULL);
    return &scheduler->stats;
}

size_t scheduler_bytes(const struct scheduler *scheduler) {
    CHECK(scheduler != NULL);
    return sizeof *scheduler + scheduler->slot_count * (sizeof *scheduler->slots + 1) +
           scheduler->timer_count * sizeof(struct scheduler_timer);
}

/* Checks one indexed record: its probe finds it, and its state agrees with
 * the wheel. Returns 1 when it waits in the wheel, 0 when firing, <0 if bad. */
static int scheduler_verify_timer(const struct scheduler *scheduler,
                                  const struct scheduler_timer *timer) {
    struct scheduler_key key;
    memcpy(key.task_id, timer->task_id, 16);
    key.kind = timer->kind;
    key.at_ms = timer->at_ms;
    size_t slot = scheduler_index_lookup(scheduler, &key);
    if (scheduler->slots[slot] != timer) return ERR_CORRUPT;
    if (scheduler->tags[slot] != scheduler_tag(scheduler_timer_hash(timer))) return ERR_CORRUPT;
    bool scheduled = wheel_entry_scheduled(&timer->entry);
    if (timer->state == SCHEDULER_STATE_FIRING) return scheduled ? ERR_CORRUPT : 0;
    if (timer->state != SCHEDULER_STATE_PENDING && timer->state != SCHEDULER_STATE_RETRY) {
        return ERR_CORRUPT;
    }
    if (!scheduled || timer->entry.fire != scheduler_fire_entry) return ERR_CORRUPT;
    if (timer->state == SCHEDULER_STATE_PENDING && timer->entry.due_ms != timer->at_ms) {
        return ERR_CORRUPT;
    }
    return 1;
}

int scheduler_verify(const struct scheduler *scheduler) {
    CHECK(scheduler != NULL);
    if (wheel_validate(&scheduler->wheel) < 0) return ERR_CORRUPT;
    uint64_t waiting = 0;
    uint64_t firing = 0;
    for (size_t slot = 0; slot < scheduler->slot_count; slot++) {
        const struct scheduler_timer *timer = scheduler->slots[slot];
        if (timer == NULL) continue;
        int result = scheduler_verify_timer(scheduler, timer);
        if (result < 0) return result;
        if (result == 1) waiting++;
        if (result == 0) firing++;
    }
    if (waiting != scheduler->stats.pending || firing != scheduler->stats.firing) {
        return ERR_CORRUPT;
    }
    if (waiting + firing != scheduler->timer_count) return ERR_CORRUPT;
    if (wheel_count(&scheduler->wheel) != waiting) return ERR_CORRUPT;
    if (scheduler->timer_count * 4 > scheduler->slot_count * 3) return ERR_CORRUPT;
    return 0;
}

void scheduler_validate(const struct scheduler *scheduler) {
    CHECK(scheduler_verify(scheduler) == 0);
}
