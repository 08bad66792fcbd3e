/*
 * series.h - where a recurring task's series stands and what comes next:
 * the three modes of API.md `recurrence.from` on top of the occurrence
 * engine (occurrence.h), in the task's IANA zone.
 *
 *   due        the next occurrence is the series' first one after the
 *              previous due date - and after now: an occurrence is never
 *              created in the past, so a task completed a week late skips
 *              the occurrences it missed (they still count for COUNT).
 *   schedule   the same instants; the difference is when: each occurrence
 *              is created when the previous one falls due, completed or
 *              not (the scheduler's spawn timer at the due instant).
 *   completion the series restarts at the completion: DTSTART becomes the
 *              completion's local date at the due date's local time of day,
 *              and the next occurrence is the first one after both that
 *              DTSTART and the completion. INTERVAL therefore counts from
 *              the completion (FREQ=DAILY;INTERVAL=3 completed Monday: next
 *              Thursday), COUNT counts spawned occurrences (index + 1), and
 *              UNTIL bounds as usual.
 *
 * The series' DTSTART (`series_start`, the first occurrence's due) and each
 * occurrence's index travel in the task (task.h): COUNT counts from the
 * start of the series in every mode.
 */
#ifndef DOCKET_TASKS_SERIES_H
#define DOCKET_TASKS_SERIES_H

#include "task.h"

#include <stdbool.h>
#include <stdint.h>

/* Why a series has no next occurrence. */
enum series_end {
    SERIES_CONTINUES = 0,   /* there is a next occurrence */
    SERIES_END_COUNT = 1,   /* COUNT reached */
    SERIES_END_UNTIL = 2,   /* the next instant would be past UNTIL (or the year 9999) */
    SERIES_END_NO_DUE = 3,  /* the task has no due date to repeat */
};

struct series_next {
    enum series_end end;    /* SERIES_CONTINUES when the fields below are set */
    int64_t due_ns;         /* the next occurrence's due */
    int64_t index;          /* its index in the series */
    int64_t series_start_ns; /* its series' DTSTART */
};

/* Keeps the series fields of `after` right after a create (`before` NULL) or a
 * change: a new or changed rule or mode restarts the series at the due date
 * (index 0); a series without a start gets the due date once there is one;
 * no recurrence clears them. */
void series_on_change(const struct task *before, struct task *after);

/* The occurrence to spawn from `task` at `now_ns` (for completion mode, the
 * task's completed_at, or now when it is not completed). Returns 0 with `out`
 * filled (out->end says whether the series continues), ERR_INVAL when the task
 * has no recurrence or its rule does not parse, ERR_NOTFOUND for an unknown
 * zone, ERR_NOMEM. */
int series_next(const struct task *task, int64_t now_ns, struct series_next *out);

/* Name of an end ("count", "until", "no_due"), for recurrence.ended events. */
const char *series_end_name(enum series_end end);

#endif
