/*
 * retry_uv.c - drives a retry queue from one uv_timer (see retry_uv.h). The
 * queue keeps no reference to the binding: every change made through
 * retry_uv_add / retry_uv_cancel re-arms the timer for the new earliest item.
 */
#include "retry_uv.h"

#include "../base/check.h"
#include "../base/err.h"

static void retry_uv_on_timer(uv_timer_t *timer) {
    struct retry_uv *binding = timer->data;
    (void)retry_run(binding->queue, (int64_t)uv_now(timer->loop));
    retry_uv_arm(binding);
}

int retry_uv_init(struct retry_uv *binding, uv_loop_t *loop, struct retry_queue *queue) {
    CHECK(binding != NULL && loop != NULL && queue != NULL);
    int rc = uv_timer_init(loop, &binding->timer);
    if (rc != 0)
        return ERR_SYS;
    binding->timer.data = binding;
    binding->queue = queue;
    binding->initialised = 1;
    uv_unref((uv_handle_t *)&binding->timer);
    return 0;
}

void retry_uv_close(struct retry_uv *binding) {
    if (binding == NULL || !binding->initialised)
        return;
    uv_timer_stop(&binding->timer);
    uv_close((uv_handle_t *)&binding->timer, NULL);
    binding->initialised = 0;
}

void retry_uv_arm(struct retry_uv *binding) {
    CHECK(binding != NULL && binding->initialised);
    int64_t due = retry_next_due(binding->queue);
    if (due < 0) {
        uv_timer_stop(&binding->timer);
        return;
    }
    int64_t now = (int64_t)uv_now(binding->timer.loop);
    uint64_t timeout = due > now ? (uint64_t)(due - now) : 0;
    uv_timer_start(&binding->timer, retry_uv_on_timer, timeout, 0);
}

int retry_uv_add(struct retry_uv *binding, int64_t delay_ms, void *arg, uint64_t *id_out) {
    CHECK(binding != NULL && binding->initialised && delay_ms >= 0);
    int64_t now = (int64_t)uv_now(binding->timer.loop);
    int rc = retry_add(binding->queue, now + delay_ms, arg, id_out);
    if (rc == 0)
        retry_uv_arm(binding);
    return rc;
}

int retry_uv_cancel(struct retry_uv *binding, uint64_t id) {
    CHECK(binding != NULL && binding->initialised);
    int rc = retry_cancel(binding->queue, id);
    if (rc == 0)
        retry_uv_arm(binding);
    return rc;
}
