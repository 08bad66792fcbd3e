/*
 * occurrence_test.c - occurrences of recurring series: by hand across DST
 * changes in Berlin, New York and Lord Howe (UTC instants written down
 * from the zones' rules), month ends, leap years, COUNT and UNTIL; and
 * thousands of random rules compared with python-dateutil's rrule
 * (occurrence_vectors.inc, made by tests/tools/rrule_vectors.py) in UTC.
 * Zone files are the fuzz corpus seeds (tzdata 2025b), as in
 * zoneinfo_test.c, so nothing depends on the host's tzdata.
 */
#include "../../../src/base/err.h"
#include "../../../src/tasks/occurrence.h"
#include "../../../src/tasks/recurrence.h"
#include "../../../src/tasks/zoneinfo.h"
#include "test.h"
#include "zoneinfo_seeds.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- Helpers ------------------------------------------------------------ */

static struct rrule rule_of(const char *text) {
    struct rrule rule;
    memset(&rule, 0, sizeof rule);
    if (rrule_parse(text, strlen(text), &rule, NULL) != 0)
        rule.interval = 0; /* makes every call ERR_INVAL, so the test notices */
    return rule;
}

static struct zoneinfo_civil civil(int year, int month, int day, int hour, int minute) {
    return (struct zoneinfo_civil){year, month, day, hour, minute, 0};
}

/* Unix seconds of a UTC date-time. */
static int64_t utc(int year, int month, int day, int hour, int minute) {
    return zoneinfo_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60;
}

/* Checks that the occurrences of `text` from `start` in `zone`, asked for
 * one after another with occurrence_after() from before the start, are
 * exactly `expected` (then ERR_NOTFOUND if `ends`), and that
 * occurrence_nth() agrees. Returns 0 or the failing step + 1. */
static int series_check(const struct zoneinfo *zone, const char *text,
                        struct zoneinfo_civil start, const int64_t *expected, int count,
                        int ends) {
    struct rrule rule = rule_of(text);
    int64_t after = expected[0] - 3 * 86400;
    struct occurrence found;
    for (int i = 0; i < count; i++) {
        if (occurrence_after(&rule, zone, &start, after, &found) != 0 ||
            found.utc_s != expected[i] || found.index != i)
            return i + 1;
        struct occurrence nth;
        if (occurrence_nth(&rule, zone, &start, i, &nth) != 0 || nth.utc_s != expected[i])
            return i + 1;
        after = found.utc_s;
    }
    if (ends && occurrence_after(&rule, zone, &start, after, &found) != ERR_NOTFOUND)
        return count + 1;
    return 0;
}

/* ---- DST ---------------------------------------------------------------- */

/* 09:00 daily in Berlin stays 09:00 local: 08:00Z in CET, 07:00Z in CEST,
 * across the 2026-03-29 and 2026-10-25 changes. */
TEST(occurrence_berlin_daily_0900) {
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("europe_berlin", &zone), 0);
    const int64_t spring[] = {utc(2026, 3, 27, 8, 0), utc(2026, 3, 28, 8, 0),
                              utc(2026, 3, 29, 7, 0), utc(2026, 3, 30, 7, 0)};
    const int64_t autumn[] = {utc(2026, 10, 24, 7, 0), utc(2026, 10, 25, 8, 0),
                              utc(2026, 10, 26, 8, 0)};
    int spring_result = series_check(&zone, "FREQ=DAILY", civil(2026, 3, 27, 9, 0), spring, 4, 0);
    int autumn_result =
        series_check(&zone, "FREQ=DAILY;UNTIL=20261026T080000Z", civil(2026, 10, 24, 9, 0), autumn,
                     3, 1);
    zoneinfo_free(&zone);
    EXPECT_EQ_INT(spring_result, 0);
    EXPECT_EQ_INT(autumn_result, 0);
}

/* 02:30 daily in Berlin: on 2026-03-29 02:30 does not exist and moves
 * forward by the gap (02:30 CET = 01:30Z = 03:30 CEST); the day after it
 * is 02:30 CEST again (00:30Z). */
TEST(occurrence_berlin_gap_0230) {
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("europe_berlin", &zone), 0);
    const int64_t expected[] = {utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30),
                                utc(2026, 3, 30, 0, 30)};
    int result = series_check(&zone, "FREQ=DAILY;COUNT=3", civil(2026, 3, 28, 2, 30), expected,
                              3, 1);
    struct rrule rule = rule_of("FREQ=DAILY;COUNT=3");
    struct zoneinfo_civil start = civil(2026, 3, 28, 2, 30);
    struct occurrence found;
    int second = occurrence_nth(&rule, &zone, &start, 1, &found);
    zoneinfo_free(&zone);
    EXPECT_EQ_INT(result, 0);
    EXPECT_EQ_INT(second, 0);
    /* The occurrence keeps the wall time the rule asked for. */
    EXPECT(found.local.day == 29 && found.local.hour == 2 && found.local.minute == 30);
}

/* New York: 09:00 daily is 14:00Z in EST, 13:00Z in EDT (2026-03-08 and
 * 2026-11-01); 01:30 on 2026-11-01 occurs twice and takes the earlier,
 * EDT, instant (05:30Z), the day after is EST (06:30Z). */
TEST(occurrence_new_york) {
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("america_new_york", &zone), 0);
    const int64_t spring[] = {utc(2026, 3, 7, 14, 0), utc(2026, 3, 8, 13, 0),
                              utc(2026, 3, 9, 13, 0)};
    const int64_t autumn[] = {utc(2026, 10, 31, 13, 0), utc(2026, 11, 1, 14, 0)};
    const int64_t fold[] = {utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30),
                            utc(2026, 11, 2, 6, 30)};
    int spring_result = series_check(&zone, "FREQ=DAILY", civil(2026, 3, 7, 9, 0), spring, 3, 0);
    int autumn_result =
        series_check(&zone, "FREQ=DAILY;COUNT=2", civil(2026, 10, 31, 9, 0), autumn, 2, 1);
    int fold_result = series_check(&zone, "FREQ=DAILY", civil(2026, 10, 31, 1, 30), fold, 3, 0);
    zoneinfo_free(&zone);
    EXPECT_EQ_INT(spring_result, 0);
    EXPECT_EQ_INT(autumn_result, 0);
    EXPECT_EQ_INT(fold_result, 0);
}

/* Lord Howe changes by 30 minutes (+11 in summer, +10:30 in winter):
 * 09:00 daily moves from 22:00Z to 22:30Z on 2026-04-05 and back on
 * 2026-10-04; 02:15 on 2026-10-04 is in the 02:00-02:30 gap and becomes
 * 02:45 (+11), 15:45Z. */
TEST(occurrence_lord_howe) {
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("australia_lord_howe", &zone), 0);
    const int64_t april[] = {utc(2026, 4, 3, 22, 0), utc(2026, 4, 4, 22, 30)};
    const int64_t october[] = {utc(2026, 10, 2, 22, 30), utc(2026, 10, 3, 22, 0)};
    const int64_t gap[] = {utc(2026, 10, 2, 15, 45), utc(2026, 10, 3, 15, 45),
                           utc(2026, 10, 4, 15, 15)};
    int april_result = series_check(&zone, "FREQ=DAILY", civil(2026, 4, 4, 9, 0), april, 2, 0);
    int october_result =
        series_check(&zone, "FREQ=DAILY", civil(2026, 10, 3, 9, 0), october, 2, 0);
    int gap_result = series_check(&zone, "FREQ=DAILY", civil(2026, 10, 3, 2, 15), gap, 3, 0);
    zoneinfo_free(&zone);
    EXPECT_EQ_INT(april_result, 0);
    EXPECT_EQ_INT(october_result, 0);
    EXPECT_EQ_INT(gap_result, 0);
}

/* A weekly Monday/Friday meeting at 09:00 Berlin keeps its wall time over
 * the spring change (Friday 03-27 08:00Z, Monday 03-30 07:00Z). */
TEST(occurrence_berlin_weekly) {
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("europe_berlin", &zone), 0);
    const int64_t expected[] = {utc(2026, 3, 27, 8, 0), utc(2026, 3, 30, 7, 0),
                                utc(2026, 4, 3, 7, 0)};
    int result =
        series_check(&zone, "FREQ=WEEKLY;BYDAY=MO,FR", civil(2026, 3, 25, 9, 0), expected, 3, 0);
    zoneinfo_free(&zone);
    EXPECT_EQ_INT(result, 0);
}

/* ---- Calendar ----------------------------------------------------------- */

/* MONTHLY from January 31 skips the months without a 31st (skip, not
 * clamp); YEARLY from February 29 occurs in leap years only, and 2100 is
 * not one. */
TEST(occurrence_month_ends_and_leap_years) {
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("etc_utc", &zone), 0);
    const int64_t months[] = {utc(2026, 1, 31, 9, 0), utc(2026, 3, 31, 9, 0),
                              utc(2026, 5, 31, 9, 0), utc(2026, 7, 31, 9, 0),
                              utc(2026, 8, 31, 9, 0), utc(2026, 10, 31, 9, 0),
                              utc(2026, 12, 31, 9, 0)};
    const int64_t leap[] = {utc(2024, 2, 29, 9, 0), utc(2028, 2, 29, 9, 0),
                            utc(2032, 2, 29, 9, 0)};
    const int64_t century[] = {utc(2096, 2, 29, 0, 0), utc(2104, 2, 29, 0, 0)};
    const int64_t by_day[] = {utc(2026, 1, 30, 9, 0), utc(2026, 3, 30, 9, 0),
                              utc(2026, 4, 30, 9, 0)};
    int months_result =
        series_check(&zone, "FREQ=MONTHLY", civil(2026, 1, 31, 9, 0), months, 7, 0);
    int leap_result = series_check(&zone, "FREQ=YEARLY", civil(2024, 2, 29, 9, 0), leap, 3, 0);
    int century_result =
        series_check(&zone, "FREQ=YEARLY", civil(2096, 2, 29, 0, 0), century, 2, 0);
    int by_day_result = series_check(&zone, "FREQ=MONTHLY;BYMONTHDAY=30", civil(2026, 1, 30, 9, 0),
                                     by_day, 3, 0);
    zoneinfo_free(&zone);
    EXPECT_EQ_INT(months_result, 0);
    EXPECT_EQ_INT(leap_result, 0);
    EXPECT_EQ_INT(century_result, 0);
    EXPECT_EQ_INT(by_day_result, 0);
}

/* Series whose first period reaches back before 1970 (negative day
 * numbers): the first week of 1970 starts on Monday 1969-12-29, a monthly
 * series from December 1969 starts in it. Found by the rrule fuzzer:
 * walk_day() once used -1, a valid day (1969-12-31), as "no such day". */
TEST(occurrence_series_before_1970) {
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("etc_utc", &zone), 0);
    const int64_t weekly[] = {utc(1970, 1, 1, 9, 0), utc(1970, 1, 8, 9, 0)};
    const int64_t monthly[] = {utc(1969, 12, 15, 9, 0), utc(1970, 1, 15, 9, 0),
                               utc(1970, 2, 15, 9, 0)};
    const int64_t daily[] = {utc(1969, 12, 30, 9, 0), utc(1969, 12, 31, 9, 0),
                             utc(1970, 1, 1, 9, 0)};
    int weekly_result =
        series_check(&zone, "FREQ=WEEKLY;BYDAY=TH", civil(1970, 1, 1, 9, 0), weekly, 2, 0);
    int monthly_result =
        series_check(&zone, "FREQ=MONTHLY", civil(1969, 12, 15, 9, 0), monthly, 3, 0);
    int daily_result = series_check(&zone, "FREQ=DAILY", civil(1969, 12, 30, 9, 0), daily, 3, 0);
    zoneinfo_free(&zone);
    EXPECT_EQ_INT(weekly_result, 0);
    EXPECT_EQ_INT(monthly_result, 0);
    EXPECT_EQ_INT(daily_result, 0);
}

/* COUNT counts DTSTART as the first; UNTIL is inclusive to the second; a
 * BYDAY that DTSTART does not match starts at the next matching day; a
 * rule that can never match ends instead of looping. */
TEST(occurrence_ends) {
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("etc_utc", &zone), 0);
    const int64_t three[] = {utc(2026, 1, 1, 9, 0), utc(2026, 1, 2, 9, 0), utc(2026, 1, 3, 9, 0)};
    int count_result = series_check(&zone, "FREQ=DAILY;COUNT=3", civil(2026, 1, 1, 9, 0), three,
                                    3, 1);
    int until_result = series_check(&zone, "FREQ=DAILY;UNTIL=20260103T090000Z",
                                    civil(2026, 1, 1, 9, 0), three, 3, 1);
    int before_result = series_check(&zone, "FREQ=DAILY;UNTIL=20260103T085959Z",
                                     civil(2026, 1, 1, 9, 0), three, 2, 1);
    const int64_t monday[] = {utc(2026, 3, 9, 9, 0), utc(2026, 3, 16, 9, 0)};
    int monday_result = series_check(&zone, "FREQ=WEEKLY;BYDAY=MO;COUNT=2",
                                     civil(2026, 3, 3, 9, 0), monday, 2, 1);
    struct rrule never = rule_of("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=31");
    struct zoneinfo_civil april = civil(2026, 4, 1, 9, 0);
    struct occurrence found;
    int never_after = occurrence_after(&never, &zone, &april, 0, &found);
    int never_nth = occurrence_nth(&never, &zone, &april, 0, &found);
    struct rrule daily = rule_of("FREQ=DAILY");
    struct zoneinfo_civil bad = civil(2026, 2, 30, 9, 0);
    int bad_start = occurrence_after(&daily, &zone, &bad, 0, &found);
    int bad_index = occurrence_nth(&daily, &zone, &april, OCCURRENCE_NTH_MAX, &found);
    struct zoneinfo_civil late = civil(9999, 12, 30, 9, 0);
    int last = occurrence_after(&daily, &zone, &late, utc(9999, 12, 31, 9, 0), &found);
    zoneinfo_free(&zone);
    EXPECT_EQ_INT(count_result, 0);
    EXPECT_EQ_INT(until_result, 0);
    EXPECT_EQ_INT(before_result, 0);
    EXPECT_EQ_INT(monday_result, 0);
    EXPECT_EQ_INT(never_after, ERR_NOTFOUND);
    EXPECT_EQ_INT(never_nth, ERR_NOTFOUND);
    EXPECT_EQ_INT(bad_start, ERR_INVAL);
    EXPECT_EQ_INT(bad_index, ERR_RANGE);
    EXPECT_EQ_INT(last, ERR_NOTFOUND);
}

/* ---- Against dateutil --------------------------------------------------- */

struct vector {
    const char *rule;         /* RRULE text */
    int64_t start_s;          /* DTSTART, naive local seconds */
    int count;                /* occurrences dateutil gave, at most 20 */
    int64_t occurrences[20];  /* the first `count` of them */
};

static const struct vector vectors[] = {
#include "occurrence_vectors.inc"
};

static int vector_check(const struct zoneinfo *zone, const struct vector *vector) {
    struct rrule rule;
    if (rrule_parse(vector->rule, strlen(vector->rule), &rule, NULL) != 0)
        return -1;
    struct zoneinfo_civil start;
    if (zoneinfo_utc_to_local(zone, vector->start_s, &start) != 0)
        return -2;
    struct occurrence found;
    int64_t after = vector->start_s - 1;
    for (int i = 0; i < vector->count; i++) {
        int64_t want = vector->occurrences[i];
        if (occurrence_after(&rule, zone, &start, after, &found) != 0 || found.utc_s != want ||
            found.index != i)
            return 100 + i;
        /* An instant inside the gap before it finds it too. */
        int64_t inside = after + (want - after) / 2;
        if (occurrence_after(&rule, zone, &start, inside, &found) != 0 || found.utc_s != want)
            return 200 + i;
        if (occurrence_nth(&rule, zone, &start, i, &found) != 0 || found.utc_s != want)
            return 300 + i;
        after = want;
    }
    if (vector->count < 20) {
        if (occurrence_after(&rule, zone, &start, after, &found) != ERR_NOTFOUND)
            return 400;
        if (occurrence_nth(&rule, zone, &start, vector->count, &found) != ERR_NOTFOUND)
            return 401;
    }
    return 0;
}

/* Every generated rule gives dateutil's occurrences in UTC, where naive
 * local time and Unix time agree, whichever way they are asked for. */
TEST(occurrence_matches_dateutil) {
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("etc_utc", &zone), 0);
    size_t total = sizeof vectors / sizeof vectors[0];
    size_t failed = 0;
    for (size_t v = 0; v < total; v++) {
        int result = vector_check(&zone, &vectors[v]);
        if (result != 0 && failed++ < 10)
            fprintf(stderr, "vector %zu %s from %lld: step %d\n", v, vectors[v].rule,
                    (long long)vectors[v].start_s, result);
    }
    zoneinfo_free(&zone);
    EXPECT(total >= 3000);
    EXPECT_EQ_INT(failed, 0);
}

/* The longest walks the bounds allow still answer correctly: a monthly
 * rule from the year 1 asked about the year 9999 (a counted walk over
 * 120,000 months), a February 29 yearly rule, and a daily rule's index
 * found by arithmetic. */
TEST(occurrence_far_walks) {
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("etc_utc", &zone), 0);
    struct rrule monthly = rule_of("FREQ=MONTHLY;BYMONTHDAY=31");
    struct rrule yearly = rule_of("FREQ=YEARLY");
    struct rrule daily = rule_of("FREQ=DAILY;INTERVAL=7");
    struct zoneinfo_civil first = civil(1, 1, 31, 12, 0);
    struct zoneinfo_civil leap = civil(4, 2, 29, 12, 0);
    struct zoneinfo_civil day = civil(1, 1, 1, 0, 0);
    struct occurrence month_found, leap_found, day_found;
    int month_result =
        occurrence_after(&monthly, &zone, &first, utc(9999, 6, 1, 0, 0), &month_found);
    int leap_result = occurrence_after(&yearly, &zone, &leap, utc(9990, 1, 1, 0, 0), &leap_found);
    int day_result = occurrence_after(&daily, &zone, &day, utc(2026, 1, 1, 0, 0), &day_found);
    zoneinfo_free(&zone);
    EXPECT_EQ_INT(month_result, 0);
    EXPECT_EQ_INT(month_found.utc_s, utc(9999, 7, 31, 12, 0));
    /* Seven months of each year have a 31st; July is the fourth of 9999. */
    EXPECT_EQ_INT(month_found.index, 9998 * 7 + 3);
    EXPECT_EQ_INT(leap_result, 0);
    EXPECT_EQ_INT(leap_found.utc_s, utc(9992, 2, 29, 12, 0));
    EXPECT_EQ_INT(day_result, 0);
    int64_t days = zoneinfo_days_from_civil(2026, 1, 1) - zoneinfo_days_from_civil(1, 1, 1);
    EXPECT_EQ_INT(day_found.index, (days + 6) / 7);
    EXPECT_EQ_INT(day_found.utc_s, utc(1, 1, 1, 0, 0) + day_found.index * 7 * 86400);
}
