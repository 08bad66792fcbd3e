/*
 * occurrence.h - the occurrences of a recurring series: a parsed RRULE
 * (recurrence.h) applied to a start (DTSTART) given as a local civil
 * date-time in a zone (zoneinfo.h).
 *
 * Occurrences are found on the wall clock and only then converted to UTC,
 * so "09:00 daily in Berlin" is 09:00 local on both sides of a DST change
 * (08:00Z in winter, 07:00Z in summer). A local time that a forward change
 * skips (02:30 on the EU spring day) moves forward by the gap, one that
 * occurs twice takes the earlier instant: ZONEINFO_POLICY_RFC5545.
 *
 * Semantics follow RFC 5545 section 3.3.10 as python-dateutil's rrule
 * implements it (the property tests compare against it):
 *   - every occurrence has DTSTART's time of day;
 *   - DAILY: every INTERVAL days from DTSTART;
 *   - WEEKLY: weeks start on Monday (WKST=MO); every INTERVAL-th week,
 *     counted from the week holding DTSTART, yields its BYDAY days (or
 *     DTSTART's weekday when BYDAY is absent) that are not before DTSTART;
 *   - MONTHLY: every INTERVAL-th month yields its BYMONTHDAY days (or
 *     DTSTART's day of month) not before DTSTART;
 *   - YEARLY: every INTERVAL-th year yields DTSTART's month and day;
 *   - invalid dates are SKIPPED, not clamped (RFC 5545: "recurrence
 *     instances that would fall on an invalid date are ignored"):
 *     BYMONTHDAY=31 has no occurrence in April, a YEARLY series from
 *     February 29 occurs in leap years only;
 *   - DTSTART counts as an occurrence only when it matches the rule: a
 *     WEEKLY;BYDAY=MO rule starting on a Tuesday begins the next Monday.
 *     (RFC 5545 says DTSTART is always the first instance; dateutil, and
 *     so Docket, does not add a non-matching DTSTART.)
 *   - COUNT=n keeps occurrences with index 0..n-1 (index 0 is the first
 *     occurrence); UNTIL keeps those whose UTC instant is <= UNTIL.
 *
 * Work is bounded: a period (day, week, month, year) without any valid
 * day is skipped, and after OCCURRENCE_EMPTY_PERIODS_MAX empty periods in a
 * row the series is taken to have no further occurrence (ERR_NOTFOUND);
 * neither is any occurrence past the year 9999.
 */
#ifndef DOCKET_TASKS_OCCURRENCE_H
#define DOCKET_TASKS_OCCURRENCE_H

#include "recurrence.h"
#include "zoneinfo.h"

#include <stdint.h>

/* Consecutive periods without a valid day after which a search gives up.
 * The Gregorian calendar repeats every 400 years (4,800 months), so a
 * MONTHLY or YEARLY rule that finds nothing in 4,800 consecutive periods
 * never will (BYMONTHDAY=31 with INTERVAL=12 from an April); real rules
 * skip at most a few periods (February 29 every four, at most eight,
 * years). */
#define OCCURRENCE_EMPTY_PERIODS_MAX 4800

/* Highest index occurrence_nth() answers: it walks the series one
 * occurrence at a time, and COUNT cannot ask for more than this. */
#define OCCURRENCE_NTH_MAX RRULE_COUNT_MAX

/* One occurrence of a series. */
struct occurrence {
    int64_t utc_s;               /* its instant, Unix seconds UTC */
    int64_t index;               /* 0 for the first occurrence of the series, then 1, 2, ... */
    struct zoneinfo_civil local; /* its wall-clock date-time as the rule computed it (before
                                    a gap moved it) */
};

/* The first occurrence strictly after `after_utc_s` of the series `rule`
 * starting at local `start` in `zone`. Returns 0 with `out` filled,
 * ERR_NOTFOUND when the series has no later occurrence (COUNT, UNTIL, the
 * year 9999 or OCCURRENCE_EMPTY_PERIODS_MAX), ERR_INVAL for a start that
 * is not a valid civil date-time (years 1..9999) or a rule out of its
 * bounds, ERR_RANGE for an instant outside ZONEINFO_TIME_S_MIN..MAX. */
int occurrence_after(const struct rrule *rule, const struct zoneinfo *zone,
                     const struct zoneinfo_civil *start, int64_t after_utc_s,
                     struct occurrence *out);

/* The occurrence of index `index` (0 = first) of the same series. Errors
 * as above; ERR_RANGE for an index outside 0..OCCURRENCE_NTH_MAX - 1. */
int occurrence_nth(const struct rrule *rule, const struct zoneinfo *zone,
                   const struct zoneinfo_civil *start, int64_t index, struct occurrence *out);

#endif
