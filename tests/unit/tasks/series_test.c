/*
 * series_test.c - the next occurrence of a recurring task in the three
 * modes of recurrence.from: wall-clock times kept across DST changes in
 * Berlin, Sydney and Lord Howe (30-minute DST), never an occurrence in the
 * past, COUNT counted from the series start, UNTIL, month ends and leap
 * days skipped, completion mode counting INTERVAL from the completion, and
 * the series bookkeeping of creates and changes. Expected instants were
 * computed with Python's zoneinfo from the IANA rules.
 */
#include "../../../src/base/err.h"
#include "../../../src/tasks/series.h"
#include "../../../src/tasks/task.h"
#include "test.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define NS INT64_C(1000000000)

/* A recurring task due at `due_s` (Unix seconds) in `zone`. */
static struct task recurring(const char *rule, enum task_recurrence_from from, const char *zone,
                             int64_t due_s) {
    struct task task;
    memset(&task, 0, sizeof task);
    snprintf(task.id, sizeof task.id, "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");
    task.has_recurrence = true;
    snprintf(task.rule, sizeof task.rule, "%s", rule);
    task.recurrence_from = from;
    snprintf(task.timezone, sizeof task.timezone, "%s", zone);
    task.has_due = true;
    task.due_ns = due_s * NS;
    series_on_change(NULL, &task);
    return task;
}

/* series_next at `now_s`; returns the next due in seconds, or -1 - end. */
static int64_t next_of(const struct task *task, int64_t now_s, int64_t *index) {
    struct series_next next;
    if (series_next(task, now_s * NS, &next) != 0) return -100;
    if (next.end != SERIES_CONTINUES) return -1 - (int64_t)next.end;
    if (index != NULL) *index = next.index;
    return next.due_ns / NS;
}

TEST(series_daily_keeps_local_time_across_dst) {
    /* Proves 09:00 daily in Berlin stays 09:00 local over both 2026 changes. */
    struct task task = recurring("FREQ=DAILY", TASK_RECURRENCE_FROM_DUE, "Europe/Berlin",
                                 1774684800); /* 2026-03-28 09:00 CET */
    int64_t index = -1;
    EXPECT_EQ_INT(next_of(&task, 1774684800 + 60, &index), 1774767600); /* 03-29 09:00 CEST */
    EXPECT_EQ_INT(index, 1);
    task.due_ns = INT64_C(1792825200) * NS; /* 2026-10-24 09:00 CEST, same series */
    EXPECT_EQ_INT(next_of(&task, 1792825200, &index), 1792915200); /* 10-25 09:00 CET */
    EXPECT_EQ_INT(index, 211);
}

TEST(series_weekly_byday_in_sydney_across_dst) {
    /* Proves BYDAY=MO,FR at 08:00 Sydney goes Friday (AEDT) -> Monday (AEST). */
    struct task task = recurring("FREQ=WEEKLY;BYDAY=MO,FR", TASK_RECURRENCE_FROM_DUE,
                                 "Australia/Sydney", 1775163600); /* Fri 2026-04-03 08:00 */
    EXPECT_EQ_INT(next_of(&task, 1775163600, NULL), 1775426400);    /* Mon 04-06 08:00 */
}

TEST(series_half_hour_dst_in_lord_howe) {
    /* Proves the 30-minute change on 2026-04-05 keeps 07:00 local. */
    struct task task = recurring("FREQ=DAILY", TASK_RECURRENCE_FROM_SCHEDULE,
                                 "Australia/Lord_Howe", 1775246400); /* 04-04 07:00 +11 */
    EXPECT_EQ_INT(next_of(&task, 1775246400, NULL), 1775334600);    /* 04-05 07:00 +10:30 */
}

TEST(series_never_spawns_into_the_past) {
    /* Proves a task completed ten days late skips to the first occurrence
     * after now, and that skipped occurrences count in its index. */
    struct task task = recurring("FREQ=DAILY", TASK_RECURRENCE_FROM_DUE, "UTC",
                                 1769860800); /* 2026-01-31 12:00Z */
    int64_t index = -1;
    int64_t now = 1769860800 + 10 * 86400 + 3600; /* 02-10 13:00 */
    EXPECT_EQ_INT(next_of(&task, now, &index), 1769860800 + 11 * 86400);
    EXPECT_EQ_INT(index, 11);
}

TEST(series_count_counts_from_the_series_start) {
    /* Proves COUNT=3 ends after the third occurrence (index 2), whichever
     * occurrence the task is, and that an ended series says why. */
    struct task task = recurring("FREQ=DAILY;COUNT=3", TASK_RECURRENCE_FROM_DUE, "UTC",
                                 1769860800);
    int64_t index = -1;
    EXPECT_EQ_INT(next_of(&task, 1769860800, &index), 1769860800 + 86400);
    EXPECT_EQ_INT(index, 1);
    task.due_ns = (1769860800 + 2 * 86400) * NS;
    task.occurrence_index = 2;
    EXPECT_EQ_INT(next_of(&task, 1769860800 + 2 * 86400, NULL), -1 - SERIES_END_COUNT);
    /* Late completion: the occurrences after now are past COUNT too. */
    task.due_ns = INT64_C(1769860800) * NS;
    task.occurrence_index = 0;
    EXPECT_EQ_INT(next_of(&task, 1769860800 + 5 * 86400, NULL), -1 - SERIES_END_COUNT);
}

TEST(series_until_ends_the_series) {
    /* Proves UNTIL bounds the series (inclusive). */
    struct task task = recurring("FREQ=DAILY;UNTIL=20260202T120000Z", TASK_RECURRENCE_FROM_DUE,
                                 "UTC", 1769860800);
    EXPECT_EQ_INT(next_of(&task, 1769860800, NULL), 1769860800 + 86400);
    task.due_ns = (1769860800 + 2 * 86400) * NS;
    EXPECT_EQ_INT(next_of(&task, 1769860800 + 2 * 86400, NULL), -1 - SERIES_END_UNTIL);
}

TEST(series_month_ends_and_leap_days_are_skipped) {
    /* Proves BYMONTHDAY=31 goes January 31 -> March 31 and a February 29
     * yearly series goes to the next leap year. */
    struct task monthly = recurring("FREQ=MONTHLY;BYMONTHDAY=31", TASK_RECURRENCE_FROM_DUE, "UTC",
                                    1769860800); /* 2026-01-31 12:00Z */
    EXPECT_EQ_INT(next_of(&monthly, 1769860800, NULL), 1774958400);
    struct task yearly = recurring("FREQ=YEARLY", TASK_RECURRENCE_FROM_DUE, "UTC",
                                   1709200800); /* 2024-02-29 10:00Z */
    int64_t index = -1;
    EXPECT_EQ_INT(next_of(&yearly, 1709200800 + 86400, &index), 1835431200); /* 2028-02-29 */
    EXPECT_EQ_INT(index, 1);
}

TEST(series_completion_counts_interval_from_the_completion) {
    /* Proves FREQ=DAILY;INTERVAL=3 from completion: due Monday 09:00 New
     * York, completed Wednesday (before or after 09:00) -> Saturday 09:00;
     * COUNT counts spawned occurrences. */
    struct task task = recurring("FREQ=DAILY;INTERVAL=3", TASK_RECURRENCE_FROM_COMPLETION,
                                 "America/New_York", 1780318800); /* Mon 2026-06-01 09:00 EDT */
    task.completed = true;
    task.has_completed_at = true;
    task.completed_at_ns = (1780318800 + 2 * 86400 + 6 * 3600) * NS; /* Wed 15:00 */
    int64_t index = -1;
    EXPECT_EQ_INT(next_of(&task, 1780318800 + 2 * 86400 + 6 * 3600, &index), 1780750800);
    EXPECT_EQ_INT(index, 1);
    task.completed_at_ns = (1780318800 + 2 * 86400 - 3600) * NS; /* Wed 08:00 */
    EXPECT_EQ_INT(next_of(&task, 1780318800 + 2 * 86400 - 3600, NULL), 1780750800);
    struct task counted = recurring("FREQ=DAILY;COUNT=2", TASK_RECURRENCE_FROM_COMPLETION, "UTC",
                                    1769860800);
    counted.occurrence_index = 1;
    EXPECT_EQ_INT(next_of(&counted, 1769860800, NULL), -1 - SERIES_END_COUNT);
}

TEST(series_without_due_ends) {
    /* Proves a recurring task without a due date has nothing to repeat. */
    struct task task = recurring("FREQ=DAILY", TASK_RECURRENCE_FROM_DUE, "UTC", 1769860800);
    task.has_due = false;
    EXPECT_EQ_INT(next_of(&task, 1769860800, NULL), -1 - SERIES_END_NO_DUE);
    EXPECT_STR(series_end_name(SERIES_END_NO_DUE), "no_due");
}

TEST(series_on_change_restarts_only_on_a_new_rule) {
    /* Proves create sets the start to the due date, a due change keeps the
     * series, a rule or mode change restarts it, and no recurrence clears. */
    struct task before = recurring("FREQ=DAILY", TASK_RECURRENCE_FROM_DUE, "UTC", 1769860800);
    EXPECT(before.has_series_start && before.series_start_ns == INT64_C(1769860800) * NS);
    before.occurrence_index = 4;
    struct task after = before;
    after.due_ns += 3600 * NS;
    series_on_change(&before, &after);
    EXPECT(after.series_start_ns == INT64_C(1769860800) * NS && after.occurrence_index == 4);
    snprintf(after.rule, sizeof after.rule, "FREQ=WEEKLY");
    series_on_change(&before, &after);
    EXPECT(after.series_start_ns == after.due_ns && after.occurrence_index == 0);
    after = before;
    after.recurrence_from = TASK_RECURRENCE_FROM_SCHEDULE;
    series_on_change(&before, &after);
    EXPECT_EQ_INT(after.occurrence_index, 0);
    after.has_recurrence = false;
    series_on_change(&before, &after);
    EXPECT(!after.has_series_start && after.occurrence_index == 0);
    struct task no_due = recurring("FREQ=DAILY", TASK_RECURRENCE_FROM_DUE, "UTC", 0);
    no_due.has_due = false;
    series_on_change(NULL, &no_due);
    EXPECT(!no_due.has_series_start);
    struct task later = no_due;
    later.has_due = true;
    later.due_ns = 5 * NS;
    series_on_change(&no_due, &later);
    EXPECT(later.has_series_start && later.series_start_ns == 5 * NS);
}
