/*
 * timers.h - the reminder scheduler on the loop: binds scheduler.h to one
 * uv_timer, to the projection's `reminders` table and to the command layer.
 *
 *   start          every pending row is put in the scheduler (rows the
 *                  projection applied before the server started, so timers
 *                  that fired before a crash are not pending any more);
 *   after a batch  timers_applied() reads the rows whose rev (the offset of
 *                  the event that last changed them) is new and puts or
 *                  removes them - nothing fires inside the command layer's
 *                  callback; the uv_timer is re-armed at once instead;
 *   firing         a reminder becomes COMMAND_REMINDER_FIRE (reminder.triggered,
 *                  or reminder.missed past reminders.grace_ms), a spawn
 *                  COMMAND_TASK_SPAWN; the command layer checks SQLite and
 *                  its in-flight keys, so a timer is recorded once. A failed
 *                  append is retried after 1 s, 5 s, 25 s, then every 25 s
 *                  (the timer stays: a reminder is never dropped).
 *
 * Lateness (wall time of the firing minus the instant) is kept as a
 * histogram for /metrics; the exact value also travels in each
 * reminder.triggered event (late_ms).
 */
#ifndef DOCKET_REMINDERS_TIMERS_H
#define DOCKET_REMINDERS_TIMERS_H

#include "../base/buf.h"
#include "scheduler.h"

#include <stdint.h>

struct uv_loop_s;
struct service;
struct db;
struct clock;
struct timers;

/* Upper bounds (ms) of the lateness histogram's buckets; a last bucket holds the rest. */
#define TIMERS_LATENESS_BUCKETS 10

struct timers_options {
    struct uv_loop_s *loop;   /* the server's loop */
    struct service *service;  /* appends the timers' events */
    struct db *db;            /* the loop's (read) connection to docket.db */
    struct clock *clock;      /* wall clock of the firings */
    int64_t grace_ms;         /* reminders.grace_ms */
    int64_t applied_offset;   /* the projection's offset at start */
};

struct timers_stats {
    uint64_t lateness_counts[TIMERS_LATENESS_BUCKETS + 1]; /* firings per bucket */
    uint64_t lateness_sum_ms;                              /* sum of their lateness */
    uint64_t commands_failed;                              /* appends that failed (retried) */
    uint64_t rows_read;                                    /* rows read from the table */
};

int timers_open(struct timers **out, const struct timers_options *options);
/* Stops the uv_timer (closed asynchronously: run the loop once after). */
void timers_close(struct timers *timers);

/* The projection has applied the log up to `applied_end`. */
void timers_applied(struct timers *timers, int64_t applied_end);

const struct scheduler_stats *timers_scheduler_stats(const struct timers *timers);
const struct timers_stats *timers_stats(const struct timers *timers);

/* Prometheus lines (docket_reminder_*). */
void timers_write_metrics(const struct timers *timers, struct buf *out);

#endif
