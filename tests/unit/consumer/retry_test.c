/* retry_test.c - the retry policy (parsing, the 1 s / 5 s / 25 s schedule and
 * giving up) and the retry queue on a fake clock: due order, ties, cancel,
 * stale ids, callbacks that re-add, the capacity bound, allocation failures
 * and a seeded comparison with a naive reference. */
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "../../../src/consumer/retry.h"
#include "../test.h"

#include <stdint.h>
#include <stdlib.h>

/* The default schedule parses to three delays, and attempt 4 gives up. */
TEST(retry_policy_default_schedule) {
    struct retry_policy policy;
    EXPECT_EQ_INT(retry_policy_parse("1000,5000,25000", &policy), 0);
    EXPECT_EQ_INT(policy.delay_count, 3);
    EXPECT_EQ_INT(retry_policy_delay_ms(&policy, 1), 1000);
    EXPECT_EQ_INT(retry_policy_delay_ms(&policy, 2), 5000);
    EXPECT_EQ_INT(retry_policy_delay_ms(&policy, 3), 25000);
    EXPECT_EQ_INT(retry_policy_delay_ms(&policy, 4), -1);
    EXPECT_EQ_INT(retry_policy_delay_ms(&policy, 100), -1);
}

/* Zero delays and the full eight are accepted; a single value is one retry. */
TEST(retry_policy_edges_accepted) {
    struct retry_policy policy;
    EXPECT_EQ_INT(retry_policy_parse("0", &policy), 0);
    EXPECT_EQ_INT(policy.delay_count, 1);
    EXPECT_EQ_INT(retry_policy_delay_ms(&policy, 1), 0);
    EXPECT_EQ_INT(retry_policy_delay_ms(&policy, 2), -1);
    EXPECT_EQ_INT(retry_policy_parse("1,2,3,4,5,6,7,8", &policy), 0);
    EXPECT_EQ_INT(policy.delay_count, 8);
    EXPECT_EQ_INT(retry_policy_delay_ms(&policy, 8), 8);
    EXPECT_EQ_INT(retry_policy_parse("86400000", &policy), 0);
}

/* Every malformed schedule is refused, and leaves no delays behind. */
TEST(retry_policy_bad_refused) {
    static const char *const bad[] = {
        "",         ",",         "1000,",       ",1000",       "1000,,5000", "-1",
        "+5",       " 1000",     "1000 ",       "1e3",         "abc",        "1000;5000",
        "1,2,3,4,5,6,7,8,9",     "86400001",    "99999999999999999999999",  "0x10",
    };
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        struct retry_policy policy;
        EXPECT_EQ_INT(retry_policy_parse(bad[index], &policy), ERR_INVAL);
        EXPECT_EQ_INT(policy.delay_count, 0);
    }
    struct retry_policy policy;
    EXPECT_EQ_INT(retry_policy_parse(NULL, &policy), ERR_INVAL);
}

/* ---- queue ---------------------------------------------------------------- */

#define FIRED_MAX 4096

/* What the fire callback saw, in order. */
struct fired {
    uintptr_t args[FIRED_MAX]; /* the items' args */
    uint64_t ids[FIRED_MAX];   /* their ids */
    size_t count;              /* entries used */
    struct retry_queue *queue; /* for callbacks that re-add */
    int readd_delay;           /* > 0: re-add each fired item at now + this */
    int64_t now_ms;            /* the run's time (set by the test) */
};

static void fired_record(void *context, uint64_t id, void *arg) {
    struct fired *fired = context;
    if (fired->count < FIRED_MAX) {
        fired->args[fired->count] = (uintptr_t)arg;
        fired->ids[fired->count] = id;
    }
    fired->count++;
    if (fired->readd_delay != 0)
        (void)retry_add(fired->queue, fired->now_ms + fired->readd_delay, arg, NULL);
}

/* Items fire earliest first, equal due times in add order, and only when due. */
TEST(retry_queue_due_order) {
    struct fired fired = {0};
    struct retry_queue *queue = NULL;
    EXPECT_EQ_INT(retry_queue_open(&queue, 16, fired_record, &fired), 0);
    EXPECT_EQ_INT(retry_next_due(queue), -1);
    static const int64_t due[] = {300, 100, 200, 100, 50};
    for (size_t index = 0; index < 5; index++)
        EXPECT_EQ_INT(retry_add(queue, due[index], (void *)(uintptr_t)(index + 1), NULL), 0);
    EXPECT_EQ_INT(retry_count(queue), 5);
    EXPECT_EQ_INT(retry_next_due(queue), 50);
    EXPECT_EQ_INT(retry_run(queue, 49), 0);
    EXPECT_EQ_INT(retry_run(queue, 100), 3);
    EXPECT_EQ_INT(fired.args[0], 5);
    EXPECT_EQ_INT(fired.args[1], 2); /* 100, added before item 4 */
    EXPECT_EQ_INT(fired.args[2], 4);
    EXPECT_EQ_INT(retry_next_due(queue), 200);
    EXPECT_EQ_INT(retry_run(queue, 1000), 2);
    EXPECT_EQ_INT(fired.args[3], 3);
    EXPECT_EQ_INT(fired.args[4], 1);
    EXPECT_EQ_INT(retry_count(queue), 0);
    EXPECT_EQ_INT(retry_next_due(queue), -1);
    retry_queue_close(queue);
}

/* A cancelled item never fires, and an id stays dead after its slot is reused. */
TEST(retry_queue_cancel_and_stale_ids) {
    struct fired fired = {0};
    struct retry_queue *queue = NULL;
    EXPECT_EQ_INT(retry_queue_open(&queue, 4, fired_record, &fired), 0);
    uint64_t first = 0, second = 0, third = 0;
    EXPECT_EQ_INT(retry_add(queue, 10, (void *)1, &first), 0);
    EXPECT_EQ_INT(retry_add(queue, 20, (void *)2, &second), 0);
    EXPECT(first != 0 && second != 0 && first != second);
    EXPECT_EQ_INT(retry_cancel(queue, first), 0);
    EXPECT_EQ_INT(retry_cancel(queue, first), ERR_NOTFOUND);
    EXPECT_EQ_INT(retry_cancel(queue, 0), ERR_NOTFOUND);
    EXPECT_EQ_INT(retry_cancel(queue, 12345), ERR_NOTFOUND);
    EXPECT_EQ_INT(retry_add(queue, 5, (void *)3, &third), 0); /* reuses first's slot */
    EXPECT(third != first);
    EXPECT_EQ_INT(retry_cancel(queue, first), ERR_NOTFOUND);
    EXPECT_EQ_INT(retry_next_due(queue), 5);
    EXPECT_EQ_INT(retry_run(queue, 100), 2);
    EXPECT_EQ_INT(fired.args[0], 3);
    EXPECT_EQ_INT(fired.ids[0], third);
    EXPECT_EQ_INT(fired.args[1], 2);
    EXPECT_EQ_INT(retry_cancel(queue, second), ERR_NOTFOUND); /* already fired */
    retry_queue_close(queue);
}

/* The capacity bound holds (ERR_LIMIT), frees up as items fire, and bad
 * capacities are refused. */
TEST(retry_queue_bounded) {
    struct fired fired = {0};
    struct retry_queue *queue = NULL;
    EXPECT_EQ_INT(retry_queue_open(&queue, 0, fired_record, &fired), ERR_INVAL);
    EXPECT_EQ_INT(retry_queue_open(&queue, RETRY_ITEMS_MAX + 1, fired_record, &fired), ERR_INVAL);
    EXPECT_EQ_INT(retry_queue_open(&queue, 40, fired_record, &fired), 0);
    for (int index = 0; index < 40; index++)
        EXPECT_EQ_INT(retry_add(queue, index, NULL, NULL), 0);
    EXPECT_EQ_INT(retry_add(queue, 0, NULL, NULL), ERR_LIMIT);
    EXPECT_EQ_INT(retry_run(queue, 0), 1);
    EXPECT_EQ_INT(retry_add(queue, 0, NULL, NULL), 0);
    EXPECT_EQ_INT(retry_add(queue, 0, NULL, NULL), ERR_LIMIT);
    retry_queue_close(queue);
    EXPECT_EQ_INT(retry_queue_open(&queue, RETRY_ITEMS_MAX, fired_record, &fired), 0);
    for (int index = 0; index < RETRY_ITEMS_MAX; index++)
        EXPECT_EQ_INT(retry_add(queue, RETRY_ITEMS_MAX - index, NULL, NULL), 0);
    EXPECT_EQ_INT(retry_add(queue, 0, NULL, NULL), ERR_LIMIT);
    EXPECT_EQ_INT(retry_next_due(queue), 1);
    fired.count = 0;
    EXPECT_EQ_INT(retry_run(queue, INT64_MAX), RETRY_ITEMS_MAX);
    retry_queue_close(queue);
}

/* A callback that re-adds every fired item at "now" cannot make one run loop
 * forever: a run fires at most as many items as were waiting when it began. */
TEST(retry_queue_readd_from_callback_bounded) {
    struct fired fired = {0};
    struct retry_queue *queue = NULL;
    EXPECT_EQ_INT(retry_queue_open(&queue, 8, fired_record, &fired), 0);
    fired.queue = queue;
    fired.now_ms = 100;
    fired.readd_delay = -100; /* due at 0: already due */
    EXPECT_EQ_INT(retry_add(queue, 1, (void *)1, NULL), 0);
    EXPECT_EQ_INT(retry_add(queue, 2, (void *)2, NULL), 0);
    EXPECT_EQ_INT(retry_run(queue, 100), 2);
    EXPECT_EQ_INT(retry_count(queue), 2);
    fired.readd_delay = 50; /* a later retry: not due in this run */
    EXPECT_EQ_INT(retry_run(queue, 100), 2);
    EXPECT_EQ_INT(retry_next_due(queue), 150);
    retry_queue_close(queue);
}

/* An allocation failure while growing is ERR_NOMEM and leaves the queue usable. */
TEST(retry_queue_allocation_failures) {
    struct fired fired = {0};
    struct retry_queue *queue = NULL;
    mem_fail_after(0);
    EXPECT_EQ_INT(retry_queue_open(&queue, 64, fired_record, &fired), ERR_NOMEM);
    mem_fail_after(-1);
    EXPECT_EQ_INT(retry_queue_open(&queue, 64, fired_record, &fired), 0);
    for (long fail = 0; fail < 2; fail++) {
        mem_fail_after(fail);
        EXPECT_EQ_INT(retry_add(queue, 1, NULL, NULL), ERR_NOMEM);
        mem_fail_after(-1);
    }
    for (int index = 0; index < 64; index++)
        EXPECT_EQ_INT(retry_add(queue, 64 - index, (void *)(uintptr_t)(64 - index), NULL), 0);
    EXPECT_EQ_INT(retry_run(queue, 64), 64);
    for (size_t index = 0; index < 64; index++)
        EXPECT_EQ_INT(fired.args[index], index + 1);
    retry_queue_close(queue);
}

/* 20,000 seeded random adds, cancels and runs give the same firings as a
 * naive list scanned for the smallest (due, add order). */
TEST(retry_queue_matches_reference) {
    enum { REFERENCE_MAX = 512 };
    struct reference {
        int64_t due;    /* due time */
        uint64_t order; /* add order */
        uint64_t id;    /* queue id */
        int live;       /* still waiting */
    } reference[4 * REFERENCE_MAX];
    size_t reference_count = 0;
    static struct fired fired;
    fired = (struct fired){0};
    struct retry_queue *queue = NULL;
    EXPECT_EQ_INT(retry_queue_open(&queue, REFERENCE_MAX, fired_record, &fired), 0);
    srand(12345);
    int64_t now = 0;
    uint64_t order = 0;
    for (int step = 0; step < 20000 && reference_count < 4 * REFERENCE_MAX; step++) {
        int choice = rand() % 10;
        size_t live = retry_count(queue);
        if (choice < 5 && live < REFERENCE_MAX) {
            int64_t due = now + rand() % 200;
            uint64_t id = 0;
            EXPECT_EQ_INT(retry_add(queue, due, (void *)(uintptr_t)reference_count, &id), 0);
            reference[reference_count++] = (struct reference){due, order++, id, 1};
        } else if (choice < 7 && reference_count > 0) {
            size_t pick = (size_t)rand() % reference_count;
            int expected = reference[pick].live ? 0 : ERR_NOTFOUND;
            EXPECT_EQ_INT(retry_cancel(queue, reference[pick].id), expected);
            reference[pick].live = 0;
        } else {
            now += rand() % 50;
            fired.count = 0;
            size_t count = retry_run(queue, now);
            EXPECT_EQ_INT(count, fired.count);
            for (size_t index = 0; index < count; index++) {
                size_t best = SIZE_MAX;
                for (size_t scan = 0; scan < reference_count; scan++) {
                    if (!reference[scan].live || reference[scan].due > now)
                        continue;
                    if (best == SIZE_MAX || reference[scan].due < reference[best].due ||
                        (reference[scan].due == reference[best].due &&
                         reference[scan].order < reference[best].order))
                        best = scan;
                }
                EXPECT(best != SIZE_MAX);
                EXPECT_EQ_INT(fired.args[index], best);
                reference[best].live = 0;
            }
            for (size_t scan = 0; scan < reference_count; scan++)
                EXPECT(!(reference[scan].live && reference[scan].due <= now));
        }
    }
    retry_queue_close(queue);
}
