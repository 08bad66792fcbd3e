/*
 * scheduler.h - the reminder scheduler: every pending timer of Docket (a
 * reminder of a task, or the spawn of a recurring task's next occurrence) in
 * one hierarchical timer wheel (timer/wheel.h), mirrored from the
 * projection's `reminders` table.
 *
 * The projection is the only place that decides what is pending: it keeps
 * one row per (task, kind, instant) and marks rows fired, missed or
 * cancelled as events are applied. The scheduler holds the pending rows in
 * memory: scheduler_put() for a pending row (idempotent: the same key twice
 * is one timer), scheduler_remove() for one that is no longer pending. At
 * start the server puts every pending row; afterwards it puts and removes
 * the rows the projection changed.
 *
 * Time: the wheel runs on the wall clock (Unix milliseconds), because
 * reminders are wall-clock instants, and the scheduler also reads a monotonic
 * clock to notice when the wall clock jumps. scheduler_run(wall, mono)
 * compares how far each moved since the previous run; a difference beyond
 * SCHEDULER_JUMP_MS is a jump:
 *   - forward: timers now due fire (their lateness decides triggered versus
 *     missed, as at start);
 *   - backward: the wheel is rebuilt at the new time (every pending timer
 *     re-inserted), so timers are neither fired early nor held back.
 * Jumps are counted (scheduler_stats) and the caller logs them.
 *
 * Firing: a timer that comes due is handed to ops.fire once, with `late_ms`
 * (wall now - at_ms) and `missed` = reminder kind and late_ms > grace_ms
 * (spawn timers are never missed: a recurrence catches up whenever it can).
 * The timer then stays in memory, "firing", until the caller reports with
 * scheduler_remove() (the projection marked the row fired) or
 * scheduler_retry() (the append failed: fire again after a delay). A put of
 * a firing key does not schedule it again. So a timer is handed out once per
 * process while its row is pending; across restarts the projection's row
 * state, applied before the scheduler starts, prevents a second firing.
 *
 * Memory: one record of ~100 bytes per pending timer; SCHEDULER_TIMERS_MAX
 * bounds them (scheduler_put returns ERR_LIMIT past it).
 */
#ifndef DOCKET_REMINDERS_SCHEDULER_H
#define DOCKET_REMINDERS_SCHEDULER_H

#include "../base/uuid.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHEDULER_TIMERS_MAX (16 * 1024 * 1024)
/* Wall and monotonic clocks disagreeing by more than this between two runs is a jump. */
#define SCHEDULER_JUMP_MS 2000
/* scheduler_run never asks to sleep longer than this, so jumps are noticed. */
#define SCHEDULER_SLEEP_MAX_MS 1000
/* The latest instant a timer may have: 9999-12-31T23:59:59.999Z, the end of
 * the calendar the recurrence rules cover; it also keeps every sum of times
 * far from overflow. */
#define SCHEDULER_AT_MS_MAX INT64_C(253402300799999)

enum scheduler_kind {
    SCHEDULER_REMINDER = 0, /* a reminder: reminder.triggered or reminder.missed */
    SCHEDULER_SPAWN = 1,    /* spawn the next occurrence (recurrence.spawned) */
};

struct scheduler_fire {
    char task_id[UUID_STRING_BYTES]; /* the task */
    char user_id[UUID_STRING_BYTES]; /* its owner */
    enum scheduler_kind kind;        /* what to do */
    int64_t at_ms;                   /* the instant it was due (Unix ms) */
    int64_t now_ms;                  /* wall time of the firing */
    int64_t late_ms;                 /* now_ms - at_ms, >= 0 */
    bool missed;                     /* reminder later than grace_ms */
};

struct scheduler_ops {
    /* A timer came due. Do not call scheduler_run from here; put, remove and
     * retry are allowed. */
    void (*fire)(void *arg, const struct scheduler_fire *fire);
};

struct scheduler_options {
    struct scheduler_ops ops; /* callbacks */
    void *arg;                /* their argument */
    int64_t grace_ms;         /* reminders.grace_ms */
    int64_t wall_ms;          /* the wall clock at open (Unix ms) */
    int64_t mono_ms;          /* the monotonic clock at open */
    size_t timers_max;        /* 0 = SCHEDULER_TIMERS_MAX; lower values for tests */
};

struct scheduler_stats {
    uint64_t pending;         /* timers waiting (new ones and retries) */
    uint64_t firing;          /* handed out, not yet removed */
    uint64_t fired;           /* handed out in all */
    uint64_t missed;          /* of them, missed */
    uint64_t retried;         /* scheduler_retry calls */
    uint64_t jumps_forward;   /* wall clock jumps forward detected */
    uint64_t jumps_backward;  /* wall clock jumps back detected (each rebuilt the wheel) */
    uint64_t lateness_ms_max; /* largest late_ms of a non-missed firing */
};

struct scheduler;

int scheduler_open(struct scheduler **out, const struct scheduler_options *options);
void scheduler_close(struct scheduler *scheduler);

/* Schedules (task, kind, at_ms) unless it is already pending or firing.
 * 0, ERR_LIMIT, ERR_NOMEM, ERR_INVAL (bad ids or kind, at_ms outside
 * 0..SCHEDULER_AT_MS_MAX). Between a backward clock jump and the run that
 * notices it, a timer put at or before the wheel's old time fires at that
 * run, early; the server runs at least every SCHEDULER_SLEEP_MAX_MS. */
int scheduler_put(struct scheduler *scheduler, const char *task_id, const char *user_id,
                  enum scheduler_kind kind, int64_t at_ms);
/* Forgets (task, kind, at_ms) whether pending or firing; nothing if unknown. */
void scheduler_remove(struct scheduler *scheduler, const char *task_id, enum scheduler_kind kind,
                      int64_t at_ms);
/* A firing timer whose handling failed: hand it out again `delay_ms` after the
 * wall time of the last run (a no-op unless the timer is firing). */
void scheduler_retry(struct scheduler *scheduler, const char *task_id, enum scheduler_kind kind,
                     int64_t at_ms, int64_t delay_ms);

/* Fires what is due at wall time `wall_ms` (detecting jumps against
 * `mono_ms`) and returns how long the caller may sleep before the next run
 * (0..SCHEDULER_SLEEP_MAX_MS ms). */
int64_t scheduler_run(struct scheduler *scheduler, int64_t wall_ms, int64_t mono_ms);

const struct scheduler_stats *scheduler_stats(const struct scheduler *scheduler);

/* Bytes the scheduler holds (its struct, the index, the records), not
 * counting the allocator's per-block overhead. */
size_t scheduler_bytes(const struct scheduler *scheduler);

/* Checks the wheel and the index agree (wheel_validate, every waiting record
 * scheduled, every firing one not, the counters); walks everything. Returns
 * 0 or ERR_CORRUPT. */
int scheduler_verify(const struct scheduler *scheduler);

/* Debug builds: CHECKs scheduler_verify() is 0. */
void scheduler_validate(const struct scheduler *scheduler);

#endif
