/*
 * evlog_support.h - helpers for the event-log tests: a manual executor (jobs
 * run only when the test says so, so group commit is deterministic), a
 * scratch directory, and a closed-loop appender that records each callback.
 */
#ifndef DOCKET_TEST_EVLOG_SUPPORT_H
#define DOCKET_TEST_EVLOG_SUPPORT_H

#include "../../../src/evlog/evlog.h"

#include <stddef.h>
#include <stdint.h>

#define SUPPORT_JOBS_MAX 64

/* Queues submitted jobs; support_executor_run() runs them in order. */
struct support_executor {
    struct evlog_executor base; /* must stay first */
    struct {
        void (*work)(void *arg); /* blocking part */
        void (*done)(void *arg); /* completion */
        void *arg;               /* for both */
    } jobs[SUPPORT_JOBS_MAX];    /* queued jobs, FIFO */
    size_t count;                /* queued */
    size_t submitted;            /* total ever submitted */
};

void support_executor_init(struct support_executor *executor);

/* Runs one queued job (work then done); returns 0 if none was queued. */
int support_executor_step(struct support_executor *executor);

/* Runs jobs until none is queued (bounded); returns how many ran. */
int support_executor_run(struct support_executor *executor);

/* Creates a fresh scratch directory; returns its path (static storage per slot). */
const char *support_directory(const char *tag);
void support_remove_tree(const char *path);

/* Outcome of one append, filled by support_on_append. */
struct support_ack {
    int called;     /* callback count (must end at 1) */
    int status;     /* its status */
    int64_t offset; /* its offset */
};

void support_on_append(void *arg, int status, int64_t offset);

/* Appends a record with key "k<number>" and value "value-<number>" padded
 * with 'x' to value_bytes. Returns evlog_append's result. */
int64_t support_append(struct evlog_topic *topic, int number, size_t value_bytes,
                       struct support_ack *ack);

/* Reads every record from `from` and checks record i has key "k<first+i>";
 * returns the count read, or a negative error. */
int64_t support_read_all(struct evlog_topic *topic, int64_t from, int first_number);

/* A log on a scratch directory with the manual executor and a fake clock. */
struct support_log {
    struct evlog *log;                /* the open log, or NULL */
    struct evlog_topic *topic;        /* topic "events" */
    struct support_executor executor; /* runs its jobs */
    struct clock_fake clock;          /* its time */
    struct evlog_options options;     /* as opened */
    char directory[300];              /* <root>/log */
    struct evlog_error error;         /* from the last open */
};

/* Opens <root>/log with topic "events"; io may be NULL (POSIX). */
int support_open(struct support_log *support, const char *root, struct evlog_io *io,
                 int64_t segment_bytes_max);

/* Opens again with the same options (after support_close). */
int support_reopen(struct support_log *support);

/* Runs pending jobs, then closes. */
void support_close(struct support_log *support);

#endif
