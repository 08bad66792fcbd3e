/*
 * wheel.c - the hierarchical timer wheel (see wheel.h for the contract).
 *
 * The one idea: an entry's place depends only on its due time and the
 * wheel's time (now_ms). Level L holds the entries whose due time shares all
 * six-bit groups above L with now_ms and is larger in group L, so the lowest
 * occupied slot of the lowest occupied level always holds the earliest entry.
 * A run repeatedly moves now_ms to the start of that slot's block (when it
 * is not after the run's now), takes the slot's list and places its entries
 * again: those due exactly at the new now_ms go to the firing list and are
 * called, the rest land on lower levels. Every move preserves list order and
 * scheduling appends at the tail, so entries with equal due times always sit
 * together in scheduling order, which gives the tie guarantee for free.
 */
#include "wheel.h"

#include "../base/check.h"
#include "../base/err.h"

#include <stddef.h>

/* Bits of due time covered by all levels together; above them is the overflow. */
#define WHEEL_SPAN_BITS (WHEEL_SLOT_BITS * WHEEL_LEVELS)

/* ---- intrusive lists ------------------------------------------------- */

static void link_init(struct wheel_link *head) {
    head->next = head;
    head->prev = head;
}

static bool link_empty(const struct wheel_link *head) {
    return head->next == head;
}

static void link_append(struct wheel_link *head, struct wheel_link *link) {
    link->prev = head->prev;
    link->next = head;
    head->prev->next = link;
    head->prev = link;
}

static void link_unlink(struct wheel_link *link) {
    link->prev->next = link->next;
    link->next->prev = link->prev;
    link->next = link;
    link->prev = link;
}

/* Moves every link of `from` to the empty list `to`, keeping the order. */
static void link_take(struct wheel_link *to, struct wheel_link *from) {
    CHECK(link_empty(to));
    if (link_empty(from))
        return;
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    link_init(from);
}

static struct wheel_entry *entry_of(struct wheel_link *link) {
    return (struct wheel_entry *)((char *)link - offsetof(struct wheel_entry, link));
}

static const struct wheel_entry *entry_of_const(const struct wheel_link *link) {
    return (const struct wheel_entry *)((const char *)link - offsetof(struct wheel_entry, link));
}

/* ---- placement -------------------------------------------------------- */

/* The level for a due time after now_ms: the six-bit group of the highest
 * differing bit, or WHEEL_PLACE_OVERFLOW past the levels' span. */
static int wheel_level_for(int64_t due_ms, int64_t now_ms) {
    CHECK(due_ms > now_ms && now_ms >= 0);
    uint64_t differing = (uint64_t)due_ms ^ (uint64_t)now_ms;
    if ((differing >> WHEEL_SPAN_BITS) != 0)
        return WHEEL_PLACE_OVERFLOW;
    int highest_bit = 63 - __builtin_clzll(differing);
    return highest_bit / WHEEL_SLOT_BITS;
}

static int wheel_slot_for(int64_t due_ms, int level) {
    return (int)(((uint64_t)due_ms >> (level * WHEEL_SLOT_BITS)) & (WHEEL_SLOTS - 1));
}

/* Puts a detached entry where its due time says; one already due goes to
 * `due_list` (the ready list when scheduling, the firing list in a run). */
static void wheel_place(struct wheel *wheel, struct wheel_entry *entry,
                        struct wheel_link *due_list) {
    if (entry->due_ms <= wheel->now_ms) {
        entry->place = due_list == &wheel->ready ? WHEEL_PLACE_READY : WHEEL_PLACE_FIRING;
        link_append(due_list, &entry->link);
        return;
    }
    int level = wheel_level_for(entry->due_ms, wheel->now_ms);
    entry->place = (int8_t)level;
    if (level == WHEEL_PLACE_OVERFLOW) {
        if (link_empty(&wheel->overflow) || entry->due_ms < wheel->overflow_min_ms) {
            wheel->overflow_min_ms = entry->due_ms;
        }
        link_append(&wheel->overflow, &entry->link);
        return;
    }
    int slot = wheel_slot_for(entry->due_ms, level);
    struct wheel_level *wheel_level = &wheel->levels[level];
    uint64_t bit = (uint64_t)1 << slot;
    if ((wheel_level->occupied & bit) == 0 || entry->due_ms < wheel_level->slot_min_ms[slot]) {
        wheel_level->slot_min_ms[slot] = entry->due_ms;
    }
    wheel_level->occupied |= bit;
    entry->slot = (uint8_t)slot;
    link_append(&wheel_level->slots[slot], &entry->link);
}

/* ---- public API ------------------------------------------------------- */

void wheel_init(struct wheel *wheel, int64_t now_ms) {
    CHECK(wheel != NULL && now_ms >= 0);
    for (int level = 0; level < WHEEL_LEVELS; level++) {
        for (int slot = 0; slot < WHEEL_SLOTS; slot++) {
            link_init(&wheel->levels[level].slots[slot]);
            wheel->levels[level].slot_min_ms[slot] = WHEEL_NEVER;
        }
        wheel->levels[level].occupied = 0;
    }
    link_init(&wheel->overflow);
    wheel->overflow_min_ms = WHEEL_NEVER;
    link_init(&wheel->ready);
    link_init(&wheel->firing);
    wheel->now_ms = now_ms;
    wheel->count = 0;
    wheel->running = false;
}

void wheel_entry_init(struct wheel_entry *entry, wheel_fire_fn fire) {
    CHECK(entry != NULL && fire != NULL);
    link_init(&entry->link);
    entry->due_ms = 0;
    entry->fire = fire;
    entry->place = WHEEL_PLACE_IDLE;
    entry->slot = 0;
}

bool wheel_entry_scheduled(const struct wheel_entry *entry) {
    return entry->place != WHEEL_PLACE_IDLE;
}

void wheel_schedule(struct wheel *wheel, struct wheel_entry *entry, int64_t due_ms) {
    CHECK(entry->fire != NULL);
    wheel_cancel(wheel, entry);
    entry->due_ms = due_ms;
    wheel_place(wheel, entry, &wheel->ready);
    wheel->count++;
}

void wheel_cancel(struct wheel *wheel, struct wheel_entry *entry) {
    int place = entry->place;
    if (place == WHEEL_PLACE_IDLE)
        return;
    CHECK(place >= 0 && place <= WHEEL_PLACE_FIRING && wheel->count > 0);
    link_unlink(&entry->link);
    entry->place = WHEEL_PLACE_IDLE;
    wheel->count--;
    if (place < WHEEL_LEVELS) {
        struct wheel_level *level = &wheel->levels[place];
        if (link_empty(&level->slots[entry->slot])) {
            /* The stale lower bound goes with the slot, so a later first
             * entry sets it afresh. */
            level->occupied &= ~((uint64_t)1 << entry->slot);
            level->slot_min_ms[entry->slot] = WHEEL_NEVER;
        }
    } else if (place == WHEEL_PLACE_OVERFLOW && link_empty(&wheel->overflow)) {
        wheel->overflow_min_ms = WHEEL_NEVER;
    }
}

/* ---- running ---------------------------------------------------------- */

/* Calls every entry of the firing list in order. Each is detached before its
 * callback, and the list is re-read after each call, because a callback may
 * cancel or reschedule any entry, including ones still waiting here. */
static size_t wheel_fire_all(struct wheel *wheel, int64_t now_ms) {
    size_t fired = 0;
    while (!link_empty(&wheel->firing)) {
        struct wheel_entry *entry = entry_of(wheel->firing.next);
        link_unlink(&entry->link);
        entry->place = WHEEL_PLACE_IDLE;
        wheel->count--;
        entry->fire(wheel, entry, now_ms);
        fired++;
    }
    return fired;
}

/* Moves the wheel's time to start_ms and places again every entry of
 * `taken` (the list of a slot or of the overflow, emptied into it). */
static void wheel_replace(struct wheel *wheel, int64_t start_ms, struct wheel_link *taken) {
    CHECK(start_ms > wheel->now_ms);
    wheel->now_ms = start_ms;
    while (!link_empty(taken)) {
        struct wheel_entry *entry = entry_of(taken->next);
        link_unlink(&entry->link);
        CHECK(entry->due_ms >= start_ms);
        wheel_place(wheel, entry, &wheel->firing);
    }
}

/* Opens the block of the earliest occupied slot (or overflow turn) if it
 * starts at or before now_ms: moves the wheel's time there and redistributes
 * its entries, the ones due then going to the firing list. Returns false
 * when nothing starts by now_ms. Each call moves the wheel's time strictly
 * forward, so a run makes at most one call per entry and level passed. */
static bool wheel_advance(struct wheel *wheel, int64_t now_ms) {
    struct wheel_link taken;
    link_init(&taken);
    for (int level = 0; level < WHEEL_LEVELS; level++) {
        struct wheel_level *wheel_level = &wheel->levels[level];
        if (wheel_level->occupied == 0)
            continue;
        int slot = __builtin_ctzll(wheel_level->occupied);
        int shift = (level + 1) * WHEEL_SLOT_BITS;
        uint64_t start = ((uint64_t)wheel->now_ms >> shift) << shift;
        start |= (uint64_t)slot << (level * WHEEL_SLOT_BITS);
        if ((int64_t)start > now_ms)
            return false;
        link_take(&taken, &wheel_level->slots[slot]);
        wheel_level->occupied &= ~((uint64_t)1 << slot);
        wheel_level->slot_min_ms[slot] = WHEEL_NEVER;
        wheel_replace(wheel, (int64_t)start, &taken);
        return true;
    }
    if (link_empty(&wheel->overflow))
        return false;
    /* The earliest overflow entry's turn, found through the lower bound, so
     * a jump of years costs one scan rather than one per turn passed. */
    int64_t start =
        (int64_t)(((uint64_t)wheel->overflow_min_ms >> WHEEL_SPAN_BITS) << WHEEL_SPAN_BITS);
    if (start > now_ms)
        return false;
    link_take(&taken, &wheel->overflow);
    wheel->overflow_min_ms = WHEEL_NEVER;
    wheel_replace(wheel, start, &taken);
    return true;
}

size_t wheel_run(struct wheel *wheel, int64_t now_ms) {
    CHECK(!wheel->running);
    if (now_ms < wheel->now_ms)
        return 0;
    wheel->running = true;
    link_take(&wheel->firing, &wheel->ready);
    for (struct wheel_link *link = wheel->firing.next; link != &wheel->firing; link = link->next) {
        entry_of(link)->place = WHEEL_PLACE_FIRING;
    }
    size_t fired = wheel_fire_all(wheel, now_ms);
    while (wheel_advance(wheel, now_ms))
        fired += wheel_fire_all(wheel, now_ms);
    /* Every entry left is due after now_ms and the block holding the
     * earliest starts after it too, so every entry shares with now_ms the
     * same groups it shared with the old time: moving the wheel's time to
     * now_ms changes no entry's place. */
    wheel->now_ms = now_ms;
    wheel->running = false;
    CHECK(link_empty(&wheel->firing));
    return fired;
}

int64_t wheel_next_due(const struct wheel *wheel) {
    if (wheel->count == 0)
        return WHEEL_NEVER;
    if (!link_empty(&wheel->ready) || !link_empty(&wheel->firing))
        return wheel->now_ms;
    for (int level = 0; level < WHEEL_LEVELS; level++) {
        const struct wheel_level *wheel_level = &wheel->levels[level];
        if (wheel_level->occupied == 0)
            continue;
        int slot = __builtin_ctzll(wheel_level->occupied);
        int shift = (level + 1) * WHEEL_SLOT_BITS;
        uint64_t start = ((uint64_t)wheel->now_ms >> shift) << shift;
        start |= (uint64_t)slot << (level * WHEEL_SLOT_BITS);
        int64_t bound = wheel_level->slot_min_ms[slot];
        return bound > (int64_t)start ? bound : (int64_t)start;
    }
    CHECK(!link_empty(&wheel->overflow));
    return wheel->overflow_min_ms;
}

size_t wheel_count(const struct wheel *wheel) {
    return wheel->count;
}

/* ---- validation ------------------------------------------------------- */

/* Is the entry where its place says, given its due time and the wheel's time? */
static bool wheel_entry_valid(const struct wheel *wheel, const struct wheel_entry *entry, int place,
                              int slot) {
    if (entry->place != place || entry->fire == NULL)
        return false;
    if (place == WHEEL_PLACE_READY || place == WHEEL_PLACE_FIRING) {
        return entry->due_ms <= wheel->now_ms;
    }
    if (entry->due_ms <= wheel->now_ms)
        return false;
    if (wheel_level_for(entry->due_ms, wheel->now_ms) != place)
        return false;
    if (place == WHEEL_PLACE_OVERFLOW)
        return entry->due_ms >= wheel->overflow_min_ms;
    return entry->slot == slot && wheel_slot_for(entry->due_ms, place) == slot &&
           entry->due_ms >= wheel->levels[place].slot_min_ms[slot];
}

/* Walks one list checking links and entries; *seen counts entries so far and
 * bounds the walk, so a cycle that skips the head is caught too. */
static int wheel_validate_list(const struct wheel *wheel, const struct wheel_link *head, int place,
                               int slot, size_t *seen) {
    if (head->next->prev != head || head->prev->next != head)
        return ERR_CORRUPT;
    for (const struct wheel_link *link = head->next; link != head; link = link->next) {
        if (*seen >= wheel->count)
            return ERR_CORRUPT;
        if (link->next->prev != link || link->prev->next != link)
            return ERR_CORRUPT;
        if (!wheel_entry_valid(wheel, entry_of_const(link), place, slot))
            return ERR_CORRUPT;
        (*seen)++;
    }
    return 0;
}

static int wheel_validate_levels(const struct wheel *wheel, size_t *seen) {
    for (int level = 0; level < WHEEL_LEVELS; level++) {
        const struct wheel_level *wheel_level = &wheel->levels[level];
        for (int slot = 0; slot < WHEEL_SLOTS; slot++) {
            const struct wheel_link *head = &wheel_level->slots[slot];
            bool occupied = (wheel_level->occupied >> slot) & 1;
            if (occupied == link_empty(head))
                return ERR_CORRUPT;
            if (!occupied && wheel_level->slot_min_ms[slot] != WHEEL_NEVER)
                return ERR_CORRUPT;
            int result = wheel_validate_list(wheel, head, level, slot, seen);
            if (result != 0)
                return result;
        }
    }
    return 0;
}

int wheel_validate(const struct wheel *wheel) {
    if (wheel->now_ms < 0)
        return ERR_CORRUPT;
    if (!wheel->running && !link_empty(&wheel->firing))
        return ERR_CORRUPT;
    if (link_empty(&wheel->overflow) && wheel->overflow_min_ms != WHEEL_NEVER) {
        return ERR_CORRUPT;
    }
    size_t seen = 0;
    int result = wheel_validate_levels(wheel, &seen);
    if (result == 0) {
        result = wheel_validate_list(wheel, &wheel->overflow, WHEEL_PLACE_OVERFLOW, 0, &seen);
    }
    if (result == 0) {
        result = wheel_validate_list(wheel, &wheel->ready, WHEEL_PLACE_READY, 0, &seen);
    }
    if (result == 0) {
        result = wheel_validate_list(wheel, &wheel->firing, WHEEL_PLACE_FIRING, 0, &seen);
    }
    if (result == 0 && seen != wheel->count)
        result = ERR_CORRUPT;
    return result;
}
