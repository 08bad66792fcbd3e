/*
 * evlog_uv.h - the event log's executor on libuv: commit and repair jobs run
 * on libuv's thread pool (uv_queue_work) and complete on the loop thread.
 * This is the one evlog file that includes uv.h; the log itself knows only
 * `struct evlog_executor`.
 */
#ifndef DOCKET_EVLOG_EVLOG_UV_H
#define DOCKET_EVLOG_EVLOG_UV_H

#include "../base/limits.h"
#include "evlog.h"

#include <uv.h>

/* One queued job. A topic has at most one job at a time, so a pool of
 * LIMIT_EVLOG_TOPICS slots never runs out. */
struct evlog_uv_job {
    uv_work_t request;       /* libuv's request; its data points back here */
    void (*work)(void *arg); /* runs on the pool */
    void (*done)(void *arg); /* runs on the loop */
    void *arg;               /* for both */
    int in_use;              /* slot taken */
};

struct evlog_uv_executor {
    struct evlog_executor base;                   /* must stay first */
    uv_loop_t *loop;                              /* where done runs */
    struct evlog_uv_job jobs[LIMIT_EVLOG_TOPICS]; /* job slots */
};

void evlog_uv_executor_init(struct evlog_uv_executor *executor, uv_loop_t *loop);

#endif
