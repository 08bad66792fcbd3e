/*
 * wheel.h - a hierarchical timer wheel with time passed in (no clock, no libuv).
 *
 * Reminders and scheduled occurrences wait here until their due time. The
 * wheel owns no memory and reads no clock: the caller embeds a struct
 * wheel_entry in its own record, passes its monotonic time in milliseconds to
 * wheel_run(), and arms one uv_timer for wheel_next_due(). That keeps the
 * wheel deterministic under a fake clock and free of allocation, so
 * schedule and cancel cannot fail.
 *
 * Layout. WHEEL_LEVELS levels of 64 slots; level L slot s holds entries whose
 * due time first differs from the wheel's time ("now_ms") in the L-th group of
 * six bits, s being that group of the due time. Level 0 is one slot per
 * millisecond, level 5 one slot per 2^30 ms (12.4 days); together they span
 * 2^36 ms (2.18 years). Entries further out wait in an overflow list that is
 * re-examined when the wheel's time reaches the 2^36 ms period ("turn") of
 * the earliest of them. Entries already due when scheduled go to a ready list.
 *
 * Costs. Schedule and cancel are O(1). A run costs O(entries fired + entries
 * moved down a level + 1) whatever the elapsed time, because it jumps to the
 * next occupied slot through per-level bitmaps instead of stepping through
 * milliseconds; each entry moves down at most WHEEL_LEVELS times. Overflow
 * entries are scanned once each time the wheel reaches a new turn holding at
 * least one of them.
 *
 * Firing order (the guarantee tests check). A run with now_ms fires:
 *  1. the ready list: entries that were already due when scheduled (due <= the
 *     wheel's time then), in scheduling order;
 *  2. then every other entry with due <= now_ms, in due order, ties in
 *     scheduling order (a reschedule counts as a new scheduling).
 * Callbacks may schedule, reschedule and cancel any entry, including the one
 * firing and ones about to fire in the same run. During a callback the
 * wheel's time is max(due of the firing entry, the wheel's time when the run
 * began); an entry scheduled from a callback with a due time after that
 * fires in the same run if it is <= now_ms; one due at or before it goes to
 * the ready list and fires in the next run, so a callback that keeps
 * rescheduling itself into the past cannot loop forever. After the run the
 * wheel's time is now_ms. A run whose now_ms is before the wheel's time (the
 * clock went back) fires nothing and changes nothing.
 *
 * Time values are signed milliseconds of the caller's monotonic clock; the
 * wheel's time must start at >= 0. A due time may be anything, a negative or
 * past one meaning "now".
 */
#ifndef DOCKET_TIMER_WHEEL_H
#define DOCKET_TIMER_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bits of the due time each level resolves, and slots per level (2^6 = 64,
 * so a level's occupancy is one uint64_t bitmap). */
#define WHEEL_SLOT_BITS 6
#define WHEEL_SLOTS 64

/* Six levels cover 2^36 ms = 2.18 years; reminders further out than that are
 * rare enough for the overflow list. */
#define WHEEL_LEVELS 6

/* wheel_next_due() of an empty wheel. */
#define WHEEL_NEVER INT64_MAX

struct wheel;
struct wheel_entry;

/* Called once per firing with the entry already unscheduled, so the callback
 * may reschedule it, or free the record that embeds it. `now_ms` is the
 * argument of the wheel_run() that fires it. */
typedef void (*wheel_fire_fn)(struct wheel *wheel, struct wheel_entry *entry, int64_t now_ms);

/* A doubly linked list link; list heads are bare links (circular lists with
 * a head, so unlinking needs no knowledge of which list holds the entry). */
struct wheel_link {
    struct wheel_link *next; /* next link in the list (the head after the last entry) */
    struct wheel_link *prev; /* previous link in the list (the head before the first) */
};

/* Embedded by the caller; find the record again with offsetof. Initialise with
 * wheel_entry_init() before first use; it may be scheduled on one wheel at a time. */
struct wheel_entry {
    struct wheel_link link; /* membership of a slot, the overflow, ready or firing list */
    int64_t due_ms;         /* due time as passed to wheel_schedule(); read-only for callers */
    wheel_fire_fn fire;     /* called when due */
    int8_t place;           /* where the entry is: a level 0..WHEEL_LEVELS-1 or WHEEL_PLACE_* */
    uint8_t slot;           /* slot within its level (meaningful for levels only) */
};

/* Values of wheel_entry.place besides the level numbers. */
enum wheel_place {
    WHEEL_PLACE_IDLE = -1,                /* not scheduled */
    WHEEL_PLACE_OVERFLOW = WHEEL_LEVELS,  /* beyond the top level's span */
    WHEEL_PLACE_READY = WHEEL_LEVELS + 1, /* was due when scheduled; fires next run */
    WHEEL_PLACE_FIRING = WHEEL_LEVELS + 2 /* due in the run under way, not yet called */
};

/* One level: its slots and which of them hold entries. */
struct wheel_level {
    struct wheel_link slots[WHEEL_SLOTS]; /* list head per slot */
    int64_t slot_min_ms[WHEEL_SLOTS];     /* lower bound of the due times in each
                                             occupied slot (a cancel leaves it
                                             stale, never too high) */
    uint64_t occupied;                    /* bit s set iff slots[s] is non-empty */
};

/* The wheel; the caller owns the memory (about 9 KiB) and there is no global state. */
struct wheel {
    struct wheel_level levels[WHEEL_LEVELS]; /* level 0 = 1 ms slots, up by 64x each */
    struct wheel_link overflow;              /* entries beyond the top level's span */
    int64_t overflow_min_ms;                 /* lower bound of the overflow's due times */
    struct wheel_link ready;                 /* entries due when scheduled, in order */
    struct wheel_link firing;                /* entries the current run is calling */
    int64_t now_ms;                          /* the wheel's time: all entries due at or
                                                before it, except ready ones, have fired */
    size_t count;                            /* entries scheduled and not yet fired */
    bool running;                            /* inside wheel_run (it is not re-entrant) */
};

/* Starts an empty wheel whose time is now_ms (>= 0). */
void wheel_init(struct wheel *wheel, int64_t now_ms);

/* Prepares an entry (idle) that calls `fire` when due. */
void wheel_entry_init(struct wheel_entry *entry, wheel_fire_fn fire);

/* True while the entry is scheduled (also while waiting to be called in a run). */
bool wheel_entry_scheduled(const struct wheel_entry *entry);

/* Schedules the entry for due_ms, first cancelling it if it was scheduled. O(1). */
void wheel_schedule(struct wheel *wheel, struct wheel_entry *entry, int64_t due_ms);

/* Unschedules the entry; nothing happens if it is idle. O(1). */
void wheel_cancel(struct wheel *wheel, struct wheel_entry *entry);

/* Fires what is due at now_ms as described at the top of this file and moves
 * the wheel's time to now_ms. Returns the number of callbacks made. */
size_t wheel_run(struct wheel *wheel, int64_t now_ms);

/* When to run next: WHEEL_NEVER if empty; the wheel's time if the ready list
 * is non-empty; otherwise a lower bound of the earliest due time, exact
 * unless the earliest entry of its slot (or of the overflow) was cancelled,
 * in which case a run at the bound may fire nothing and a new call gives a
 * later bound. O(WHEEL_LEVELS) and no list walks, so the owner can ask after
 * every change and re-arm its one uv_timer. */
int64_t wheel_next_due(const struct wheel *wheel);

/* Entries scheduled and not yet fired or cancelled. */
size_t wheel_count(const struct wheel *wheel);

/* Checks every invariant (links, places, slots against due times, bitmaps,
 * lower bounds, the count); walks everything, so for tests and debug builds.
 * Returns 0 or ERR_CORRUPT. */
int wheel_validate(const struct wheel *wheel);

#endif
