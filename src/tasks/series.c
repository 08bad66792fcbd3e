/*
 * series.c - the next occurrence of a recurring task in each of the three
 * modes (see series.h), and the bookkeeping of a series' start and index.
 */
#include "series.h"

#include "../base/check.h"
#include "../base/err.h"
#include "occurrence.h"
#include "recurrence.h"
#include "zoneinfo.h"

#include <string.h>

#define SERIES_NS_PER_S INT64_C(1000000000)

void series_on_change(const struct task *before, struct task *after) {
    CHECK(after != NULL);
    if (!after->has_recurrence) {
        after->has_series_start = false;
        after->series_start_ns = 0;
        after->occurrence_index = 0;
        return;
    }
    bool restart = before == NULL || !before->has_recurrence ||
                   strcmp(before->rule, after->rule) != 0 ||
                   before->recurrence_from != after->recurrence_from;
    if (restart || !after->has_series_start) {
        after->has_series_start = after->has_due;
        after->series_start_ns = after->has_due ? after->due_ns : 0;
        after->occurrence_index = 0;
    }
}

const char *series_end_name(enum series_end end) {
    switch (end) {
    case SERIES_CONTINUES:
        return "continues";
    case SERIES_END_COUNT:
        return "count";
    case SERIES_END_UNTIL:
        return "until";
    case SERIES_END_NO_DUE:
        return "no_due";
    }
    return "unknown";
}

/* Floors nanoseconds to seconds (also for instants before 1970). */
static int64_t series_seconds(int64_t unix_ns) {
    int64_t seconds = unix_ns / SERIES_NS_PER_S;
    return (unix_ns % SERIES_NS_PER_S < 0) ? seconds - 1 : seconds;
}

/* due and schedule: the series from its start, first occurrence after both
 * the previous due date and now. */
static int series_next_fixed(const struct task *task, const struct rrule *rule,
                             const struct zoneinfo *zone, int64_t now_ns,
                             struct series_next *out) {
    struct zoneinfo_civil start;
    int64_t start_ns = task->has_series_start ? task->series_start_ns : task->due_ns;
    int rc = zoneinfo_utc_to_local(zone, series_seconds(start_ns), &start);
    if (rc != 0) return rc;
    int64_t after_ns = task->due_ns > now_ns ? task->due_ns : now_ns;
    struct occurrence next;
    rc = occurrence_after(rule, zone, &start, series_seconds(after_ns), &next);
    if (rc == ERR_NOTFOUND) {
        /* COUNT or UNTIL: which one ended it matters only for the event. */
        out->end = rule->count > 0 ? SERIES_END_COUNT : SERIES_END_UNTIL;
        return 0;
    }
    if (rc != 0) return rc;
    out->end = SERIES_CONTINUES;
    out->due_ns = next.utc_s * SERIES_NS_PER_S;
    out->index = next.index;
    out->series_start_ns = start_ns;
    return 0;
}

/* completion: DTSTART moves to the completion day at the due's time of day. */
static int series_next_completion(const struct task *task, const struct rrule *rule,
                                  const struct zoneinfo *zone, int64_t now_ns,
                                  struct series_next *out) {
    if (rule->count > 0 && task->occurrence_index + 1 >= rule->count) {
        out->end = SERIES_END_COUNT;
        return 0;
    }
    int64_t done_ns = task->completed && task->has_completed_at ? task->completed_at_ns : now_ns;
    struct zoneinfo_civil due_local, done_local;
    int rc = zoneinfo_utc_to_local(zone, series_seconds(task->due_ns), &due_local);
    if (rc == 0) rc = zoneinfo_utc_to_local(zone, series_seconds(done_ns), &done_local);
    if (rc != 0) return rc;
    struct zoneinfo_civil start = done_local;
    start.hour = due_local.hour;
    start.minute = due_local.minute;
    start.second = due_local.second;
    int64_t start_s = 0;
    rc = zoneinfo_local_to_utc(zone, &start, ZONEINFO_POLICY_RFC5545, &start_s);
    if (rc != 0) return rc;
    struct rrule unbounded = *rule;
    unbounded.count = 0; /* counted by index here, not from the moved DTSTART */
    int64_t after_s = series_seconds(done_ns);
    if (start_s > after_s) after_s = start_s;
    int64_t now_s = series_seconds(now_ns);
    if (now_s > after_s) after_s = now_s;
    struct occurrence next;
    rc = occurrence_after(&unbounded, zone, &start, after_s, &next);
    if (rc == ERR_NOTFOUND) {
        out->end = SERIES_END_UNTIL;
        return 0;
    }
    if (rc != 0) return rc;
    out->end = SERIES_CONTINUES;
    out->due_ns = next.utc_s * SERIES_NS_PER_S;
    out->index = task->occurrence_index + 1;
    out->series_start_ns = task->has_series_start ? task->series_start_ns : task->due_ns;
    return 0;
}

int series_next(const struct task *task, int64_t now_ns, struct series_next *out) {
    CHECK(task != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    if (!task->has_recurrence) return ERR_INVAL;
    if (!task->has_due) {
        out->end = SERIES_END_NO_DUE;
        return 0;
    }
    struct rrule rule;
    if (rrule_parse(task->rule, strlen(task->rule), &rule, NULL) != 0) return ERR_INVAL;
    struct zoneinfo zone;
    int rc = zoneinfo_load(task->timezone, &zone);
    if (rc != 0) return rc;
    if (task->recurrence_from == TASK_RECURRENCE_FROM_COMPLETION) {
        rc = series_next_completion(task, &rule, &zone, now_ns, out);
    } else {
        rc = series_next_fixed(task, &rule, &zone, now_ns, out);
    }
    zoneinfo_free(&zone);
    CHECK(rc != 0 || out->end != SERIES_CONTINUES || out->due_ns > now_ns ||
          out->due_ns > task->due_ns);
    return rc;
}
