/*
 * retry_uv.h - binds one retry queue (retry.h) to one uv_timer on the loop:
 * the timer is armed for the queue's earliest due time (loop time, uv_now)
 * and, when it fires, runs the queue and arms itself again.
 *
 * Lifecycle (libuv style): retry_uv_init -> retry_uv_add / retry_uv_cancel
 * -> retry_uv_close (the timer handle closes asynchronously; the binding's
 * memory must stay valid until the loop ran once more).
 */
#ifndef DOCKET_CONSUMER_RETRY_UV_H
#define DOCKET_CONSUMER_RETRY_UV_H

#include "retry.h"

#include <uv.h>

struct retry_uv {
    uv_timer_t timer;          /* fires at the queue's earliest due time */
    struct retry_queue *queue; /* the queue it drives (not owned) */
    int initialised;           /* timer was initialised (close needed) */
};

/* The timer is unref'd: a waiting retry does not keep the loop alive. */
int retry_uv_init(struct retry_uv *binding, uv_loop_t *loop, struct retry_queue *queue);
void retry_uv_close(struct retry_uv *binding);

/* retry_add at uv_now + delay_ms, and re-arms the timer. */
int retry_uv_add(struct retry_uv *binding, int64_t delay_ms, void *arg, uint64_t *id_out);

/* retry_cancel, and re-arms the timer. */
int retry_uv_cancel(struct retry_uv *binding, uint64_t id);

/* Arms the timer for the queue's earliest item (call after changing the
 * queue directly). */
void retry_uv_arm(struct retry_uv *binding);

#endif
