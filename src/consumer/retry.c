/*
 * retry.c - the shared retry policy (parse "1000,5000,25000", the delay after
 * each failed attempt) and the retry queue: a binary min-heap of waiting
 * items ordered by (due time, order added), with a slot table so an item can
 * be cancelled by id in O(log n). Time is passed in; nothing here touches the
 * loop (retry_uv.c does).
 *
 * Ids: the low 16 bits are the item's slot, the bits above a per-slot
 * generation counter bumped on every reuse, so a stale id (fired or
 * cancelled) never names the next item in the same slot.
 */
#include "retry.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Bits of an id that name the slot; RETRY_ITEMS_MAX slots fit. */
#define RETRY_SLOT_BITS 16
#define RETRY_SLOT_MASK ((UINT64_C(1) << RETRY_SLOT_BITS) - 1)

/* Longest delay accepted in a policy: one day. A longer one is a typo. */
#define RETRY_DELAY_MS_MAX (24LL * 3600 * 1000)

_Static_assert(RETRY_ITEMS_MAX <= (1 << RETRY_SLOT_BITS), "slots must fit in an id");

/* ---- Policy ------------------------------------------------------------ */

/* Reads the comma-separated delays; a failure may leave some in `out`. */
static int retry_policy_read(const char *text, struct retry_policy *out) {
    const char *at = text;
    for (;;) {
        if (*at < '0' || *at > '9' || out->delay_count == RETRY_DELAYS_MAX)
            return ERR_INVAL;
        char *end = NULL;
        errno = 0;
        long long value = strtoll(at, &end, 10);
        if (errno != 0 || value > RETRY_DELAY_MS_MAX)
            return ERR_INVAL;
        out->delays_ms[out->delay_count++] = value;
        if (*end == '\0')
            return 0;
        if (*end != ',')
            return ERR_INVAL;
        at = end + 1;
    }
}

int retry_policy_parse(const char *text, struct retry_policy *out) {
    CHECK(out != NULL);
    memset(out, 0, sizeof *out);
    int rc = text == NULL ? ERR_INVAL : retry_policy_read(text, out);
    if (rc != 0)
        memset(out, 0, sizeof *out); /* no half-parsed schedule */
    CHECK(rc != 0 || (out->delay_count >= 1 && out->delay_count <= RETRY_DELAYS_MAX));
    return rc;
}

int64_t retry_policy_delay_ms(const struct retry_policy *policy, int attempts) {
    CHECK(policy != NULL && policy->delay_count <= RETRY_DELAYS_MAX);
    CHECK(attempts >= 1);
    if ((size_t)attempts > policy->delay_count)
        return -1;
    return policy->delays_ms[attempts - 1];
}

/* ---- Queue ------------------------------------------------------------- */

/* One slot of the table: a waiting item, or a free slot. */
struct retry_slot {
    int64_t due_ms;       /* when it fires */
    uint64_t order;       /* add order, the tie-break between equal due times */
    void *arg;            /* the caller's item */
    uint32_t generation;  /* bumped each time the slot is taken */
    uint32_t heap_index;  /* position in heap while waiting */
    uint32_t next_free;   /* next free slot when free; UINT32_MAX ends the list */
    int waiting;          /* 1 while the item is queued */
};

struct retry_queue {
    struct retry_slot *slots; /* slot_capacity entries */
    uint32_t *heap;           /* slot numbers, a min-heap on (due_ms, order) */
    size_t count;             /* items waiting (heap length) */
    size_t slot_capacity;     /* slots allocated (grows to capacity) */
    size_t capacity;          /* most items ever waiting at once */
    uint32_t free_head;       /* first free slot; UINT32_MAX when none */
    uint64_t next_order;      /* order given to the next add */
    retry_fire_fn fire;       /* called for each due item */
    void *context;            /* first argument of fire */
};

int retry_queue_open(struct retry_queue **out, size_t capacity, retry_fire_fn fire,
                     void *context) {
    CHECK(out != NULL && fire != NULL);
    *out = NULL;
    if (capacity == 0 || capacity > RETRY_ITEMS_MAX)
        return ERR_INVAL;
    struct retry_queue *queue = mem_calloc(1, sizeof *queue);
    if (queue == NULL)
        return ERR_NOMEM;
    queue->capacity = capacity;
    queue->free_head = UINT32_MAX;
    queue->fire = fire;
    queue->context = context;
    *out = queue;
    return 0;
}

void retry_queue_close(struct retry_queue *queue) {
    if (queue == NULL)
        return;
    mem_free(queue->slots);
    mem_free(queue->heap);
    mem_free(queue);
}

size_t retry_count(const struct retry_queue *queue) {
    CHECK(queue != NULL);
    return queue->count;
}

int64_t retry_next_due(const struct retry_queue *queue) {
    CHECK(queue != NULL);
    return queue->count == 0 ? -1 : queue->slots[queue->heap[0]].due_ms;
}

static int retry_before(const struct retry_queue *queue, uint32_t a, uint32_t b) {
    const struct retry_slot *left = &queue->slots[a];
    const struct retry_slot *right = &queue->slots[b];
    if (left->due_ms != right->due_ms)
        return left->due_ms < right->due_ms;
    return left->order < right->order;
}

static void retry_heap_set(struct retry_queue *queue, size_t index, uint32_t slot) {
    queue->heap[index] = slot;
    queue->slots[slot].heap_index = (uint32_t)index;
}

static void retry_sift_up(struct retry_queue *queue, size_t index) {
    uint32_t slot = queue->heap[index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (!retry_before(queue, slot, queue->heap[parent]))
            break;
        retry_heap_set(queue, index, queue->heap[parent]);
        index = parent;
    }
    retry_heap_set(queue, index, slot);
}

static void retry_sift_down(struct retry_queue *queue, size_t index) {
    uint32_t slot = queue->heap[index];
    for (;;) {
        size_t child = 2 * index + 1;
        if (child >= queue->count)
            break;
        size_t right = child + 1;
        if (right < queue->count && retry_before(queue, queue->heap[right], queue->heap[child]))
            child = right;
        if (!retry_before(queue, queue->heap[child], slot))
            break;
        retry_heap_set(queue, index, queue->heap[child]);
        index = child;
    }
    retry_heap_set(queue, index, slot);
}

/* Doubles the slot table and the heap (bounded by capacity), putting the new
 * slots on the free list. */
static int retry_grow(struct retry_queue *queue) {
    size_t grown = queue->slot_capacity == 0 ? 16 : queue->slot_capacity * 2;
    if (grown > queue->capacity)
        grown = queue->capacity;
    CHECK(grown > queue->slot_capacity);
    struct retry_slot *slots = mem_realloc(queue->slots, grown * sizeof *slots);
    if (slots == NULL)
        return ERR_NOMEM;
    queue->slots = slots;
    uint32_t *heap = mem_realloc(queue->heap, grown * sizeof *heap);
    if (heap == NULL)
        return ERR_NOMEM; /* slots stays bigger than slot_capacity: harmless */
    queue->heap = heap;
    for (size_t index = grown; index > queue->slot_capacity; index--) {
        struct retry_slot *slot = &slots[index - 1];
        memset(slot, 0, sizeof *slot);
        slot->next_free = queue->free_head;
        queue->free_head = (uint32_t)(index - 1);
    }
    queue->slot_capacity = grown;
    return 0;
}

int retry_add(struct retry_queue *queue, int64_t due_ms, void *arg, uint64_t *id_out) {
    CHECK(queue != NULL && queue->count <= queue->capacity);
    if (queue->count == queue->capacity)
        return ERR_LIMIT;
    if (queue->free_head == UINT32_MAX) {
        int rc = retry_grow(queue);
        if (rc != 0)
            return rc;
    }
    uint32_t number = queue->free_head;
    struct retry_slot *slot = &queue->slots[number];
    CHECK(!slot->waiting);
    queue->free_head = slot->next_free;
    slot->due_ms = due_ms;
    slot->order = queue->next_order++;
    slot->arg = arg;
    if (++slot->generation == 0)
        slot->generation = 1; /* keeps every id nonzero after a wrap */
    slot->waiting = 1;
    queue->count++;
    retry_heap_set(queue, queue->count - 1, number);
    retry_sift_up(queue, queue->count - 1);
    if (id_out != NULL)
        *id_out = ((uint64_t)slot->generation << RETRY_SLOT_BITS) | number;
    return 0;
}

/* Takes the item at heap position `index` out of the heap and frees its slot. */
static void retry_remove_at(struct retry_queue *queue, size_t index) {
    CHECK(index < queue->count);
    uint32_t number = queue->heap[index];
    queue->count--;
    if (index < queue->count) {
        retry_heap_set(queue, index, queue->heap[queue->count]);
        retry_sift_down(queue, index);
        retry_sift_up(queue, queue->slots[queue->heap[index]].heap_index);
    }
    struct retry_slot *slot = &queue->slots[number];
    slot->waiting = 0;
    slot->arg = NULL;
    slot->next_free = queue->free_head;
    queue->free_head = number;
}

int retry_cancel(struct retry_queue *queue, uint64_t id) {
    CHECK(queue != NULL);
    uint64_t number = id & RETRY_SLOT_MASK;
    if (id == 0 || number >= queue->slot_capacity)
        return ERR_NOTFOUND;
    const struct retry_slot *slot = &queue->slots[number];
    if (!slot->waiting || (uint64_t)slot->generation != id >> RETRY_SLOT_BITS)
        return ERR_NOTFOUND;
    retry_remove_at(queue, slot->heap_index);
    return 0;
}

size_t retry_run(struct retry_queue *queue, int64_t now_ms) {
    CHECK(queue != NULL);
    size_t budget = queue->count;
    size_t fired = 0;
    while (fired < budget && queue->count > 0) {
        uint32_t number = queue->heap[0];
        struct retry_slot *slot = &queue->slots[number];
        if (slot->due_ms > now_ms)
            break;
        uint64_t id = ((uint64_t)slot->generation << RETRY_SLOT_BITS) | number;
        void *arg = slot->arg;
        retry_remove_at(queue, 0);
        fired++;
        queue->fire(queue->context, id, arg);
    }
    return fired;
}
