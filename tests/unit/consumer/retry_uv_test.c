/* retry_uv_test.c - a retry queue bound to a real uv_timer on a private loop:
 * items fire in due order after their delays (not before), a cancelled item
 * never fires, an item re-added from the fire callback fires again, and the
 * binding closes cleanly. Bounded by a 2 s guard timer. */
#include "../../../src/base/err.h"
#include "../../../src/consumer/retry_uv.h"
#include "../test.h"

#include <stdint.h>
#include <uv.h>

/* What the test's fire callback saw. */
struct uv_fired {
    uintptr_t args[8];         /* fired args in order */
    uint64_t at_ms[8];         /* uv_now at each firing */
    size_t count;              /* firings */
    size_t expected;           /* stop the guard after this many */
    struct retry_uv *binding;  /* for re-adding */
    int readd_first;           /* re-add arg 1 once, 5 ms later */
    uv_timer_t *guard;         /* the loop's bound */
    uv_loop_t *loop;           /* the private loop */
};

static void uv_fired_record(void *context, uint64_t id, void *arg) {
    (void)id;
    struct uv_fired *fired = context;
    if (fired->count < 8) {
        fired->args[fired->count] = (uintptr_t)arg;
        fired->at_ms[fired->count] = uv_now(fired->loop);
    }
    fired->count++;
    if (fired->readd_first && (uintptr_t)arg == 1) {
        fired->readd_first = 0;
        (void)retry_uv_add(fired->binding, 5, (void *)(uintptr_t)9, NULL);
    }
    if (fired->count == fired->expected)
        uv_timer_stop(fired->guard);
}

static void guard_expired(uv_timer_t *timer) {
    (void)timer; /* the loop ends: nothing ref'd is left */
}

/* Items fire in due order at or after their delays; a cancelled one never
 * fires; one re-added from a callback fires too. */
TEST(retry_uv_fires_in_order_on_a_loop) {
    uv_loop_t loop;
    EXPECT_EQ_INT(uv_loop_init(&loop), 0);
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, guard_expired, 2000, 0);
    struct uv_fired fired = {.expected = 4, .guard = &guard, .loop = &loop, .readd_first = 1};
    struct retry_queue *queue = NULL;
    EXPECT_EQ_INT(retry_queue_open(&queue, 16, uv_fired_record, &fired), 0);
    struct retry_uv binding = {0};
    EXPECT_EQ_INT(retry_uv_init(&binding, &loop, queue), 0);
    fired.binding = &binding;
    uint64_t start = uv_now(&loop);
    uint64_t cancelled = 0;
    EXPECT_EQ_INT(retry_uv_add(&binding, 30, (void *)3, NULL), 0);
    EXPECT_EQ_INT(retry_uv_add(&binding, 10, (void *)1, NULL), 0);
    EXPECT_EQ_INT(retry_uv_add(&binding, 5, (void *)7, &cancelled), 0);
    EXPECT_EQ_INT(retry_uv_add(&binding, 20, (void *)2, NULL), 0);
    EXPECT_EQ_INT(retry_uv_cancel(&binding, cancelled), 0);
    EXPECT_EQ_INT(retry_uv_cancel(&binding, cancelled), ERR_NOTFOUND);
    uv_run(&loop, UV_RUN_DEFAULT);
    retry_uv_close(&binding);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_EQ_INT(uv_loop_close(&loop), 0);
    retry_queue_close(queue);
    EXPECT_EQ_INT(fired.count, 4);
    EXPECT_EQ_INT(fired.args[0], 1);
    EXPECT_EQ_INT(fired.args[1], 9); /* re-added at 10 + 5 ms */
    EXPECT_EQ_INT(fired.args[2], 2);
    EXPECT_EQ_INT(fired.args[3], 3);
    EXPECT(fired.at_ms[0] >= start + 10);
    EXPECT(fired.at_ms[2] >= start + 20);
    EXPECT(fired.at_ms[3] >= start + 30);
}
