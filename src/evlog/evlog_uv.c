/*
 * evlog_uv.c - see evlog_uv.h.
 */
#include "evlog_uv.h"

#include "../base/check.h"

#include <string.h>

static void evlog_uv_work(uv_work_t *request) {
    struct evlog_uv_job *job = request->data;
    job->work(job->arg);
}

static void evlog_uv_after(uv_work_t *request, int status) {
    struct evlog_uv_job *job = request->data;
    CHECK(status == 0); /* jobs are never cancelled */
    void (*done)(void *) = job->done;
    void *arg = job->arg;
    job->in_use = 0;
    done(arg);
}

static void evlog_uv_submit(struct evlog_executor *base, void (*work)(void *arg),
                            void (*done)(void *arg), void *arg) {
    struct evlog_uv_executor *executor = (struct evlog_uv_executor *)base;
    CHECK(work != NULL && done != NULL);
    for (size_t index = 0; index < LIMIT_EVLOG_TOPICS; index++) {
        struct evlog_uv_job *job = &executor->jobs[index];
        if (job->in_use)
            continue;
        job->in_use = 1;
        job->work = work;
        job->done = done;
        job->arg = arg;
        job->request.data = job;
        CHECK(uv_queue_work(executor->loop, &job->request, evlog_uv_work, evlog_uv_after) == 0);
        return;
    }
    CHECK(!"more event-log jobs than topics");
}

void evlog_uv_executor_init(struct evlog_uv_executor *executor, uv_loop_t *loop) {
    CHECK(executor != NULL && loop != NULL);
    memset(executor, 0, sizeof *executor);
    executor->base.submit = evlog_uv_submit;
    executor->loop = loop;
}
