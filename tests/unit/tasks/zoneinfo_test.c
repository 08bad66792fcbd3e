/*
 * zoneinfo_test.c - the TZif reader and the UTC/local conversions, checked
 * against facts about the zones written down here (EU, US and Lord Howe
 * DST rules, Indian Standard Time), never against the host's localtime().
 * Zone files are the seeds of the fuzz corpus (copies of tzdata 2025b), so
 * the answers do not depend on the host's tzdata.
 */
#include "../../../src/base/err.h"
#include "../../../src/base/limits.h"
#include "../../../src/base/mem.h"
#include "../../../src/tasks/timezone.h"
#include "../../../src/tasks/zoneinfo.h"
#include "test.h"
#include "zoneinfo_seeds.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- Helpers ------------------------------------------------------------ */

/* Days since 1970-01-01 counted one year and month at a time: a second,
 * deliberately naive calendar to check expectations with. */
static int64_t naive_days(int year, int month, int day) {
    static const int lengths[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = 0;
    for (int y = 1970; y < year; y++)
        days += (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 366 : 365;
    for (int y = year; y < 1970; y++)
        days -= (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 366 : 365;
    for (int m = 1; m < month; m++)
        days += lengths[m - 1] + (m == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0));
    return days + day - 1;
}

/* Day of the month of the `week`-th (5 = last) `weekday` (0 = Sunday). */
static int naive_nth_weekday(int year, int month, int week, int weekday) {
    int64_t first = naive_days(year, month, 1);
    int day = 1 + (int)((weekday - (first + 4) % 7 + 7) % 7) + (week - 1) * 7;
    int64_t next_month = month == 12 ? naive_days(year + 1, 1, 1) : naive_days(year, month + 1, 1);
    while (day > next_month - first)
        day -= 7;
    return day;
}

static int64_t utc_of(int year, int month, int day, int hour, int minute) {
    return naive_days(year, month, day) * 86400 + hour * 3600 + minute * 60;
}

static int32_t offset_at(const struct zoneinfo *zone, int64_t utc_s, bool *is_dst) {
    int32_t offset_s = INT32_MIN;
    if (zoneinfo_utc_offset(zone, utc_s, &offset_s, is_dst) != 0)
        return INT32_MIN;
    return offset_s;
}

static int64_t to_utc(const struct zoneinfo *zone, int year, int month, int day, int hour,
                      int minute, enum zoneinfo_policy policy, int *rc) {
    struct zoneinfo_civil local = {year, month, day, hour, minute, 0};
    int64_t utc_s = INT64_MIN;
    *rc = zoneinfo_local_to_utc(zone, &local, policy, &utc_s);
    return utc_s;
}

/* ---- Calendar ------------------------------------------------------------ */

TEST(zoneinfo_civil_days) {
    /* Proves days-from-civil and back agree with known dates, including
     * century leap rules, and invert each other over ten thousand years. */
    EXPECT_EQ_INT(zoneinfo_days_from_civil(1970, 1, 1), 0);
    EXPECT_EQ_INT(zoneinfo_days_from_civil(1969, 12, 31), -1);
    EXPECT_EQ_INT(zoneinfo_days_from_civil(2000, 3, 1), 11017);
    EXPECT_EQ_INT(zoneinfo_days_from_civil(1900, 2, 28), -25509);
    EXPECT_EQ_INT(zoneinfo_days_from_civil(2026, 11, 24), 20781);
    EXPECT_EQ_INT(zoneinfo_days_from_civil(1, 1, 1), -719162);
    EXPECT_EQ_INT(zoneinfo_days_from_civil(9999, 12, 31), 2932896);
    EXPECT_EQ_INT(zoneinfo_weekday_from_days(20781), 2); /* 2026-11-24 is a Tuesday */
    EXPECT_EQ_INT(zoneinfo_days_in_month(2100, 2), 28);
    EXPECT_EQ_INT(zoneinfo_days_in_month(2000, 2), 29);
    EXPECT_EQ_INT(zoneinfo_days_in_month(2026, 4), 30);
    for (int64_t days = -719162; days <= 2932896; days += 37) {
        int64_t year = 0;
        int month = 0, day = 0;
        zoneinfo_civil_from_days(days, &year, &month, &day);
        EXPECT(month >= 1 && month <= 12 && day >= 1 && day <= zoneinfo_days_in_month(year, month));
        EXPECT_EQ_INT(zoneinfo_days_from_civil(year, month, day), days);
    }
    EXPECT_EQ_INT(naive_days(2026, 11, 24), 20781);
    EXPECT_EQ_INT(naive_days(1900, 2, 28), -25509);
}

/* ---- Offsets --------------------------------------------------------------- */

TEST(zoneinfo_berlin_2026) {
    /* Proves the EU 2026 changes: CEST from 2026-03-29 01:00Z, CET again
     * from 2026-10-25 01:00Z, in both the fat and the slim file. */
    const char *seeds[] = {"europe_berlin", "europe_berlin_slim"};
    for (int index = 0; index < 2; index++) {
        struct zoneinfo zone;
        EXPECT_EQ_INT(seed_parse(seeds[index], &zone), 0);
        bool dst = true;
        EXPECT_EQ_INT(offset_at(&zone, 1774746000 - 1, &dst), 3600);
        EXPECT(!dst);
        EXPECT_EQ_INT(offset_at(&zone, 1774746000, &dst), 7200);
        EXPECT(dst);
        EXPECT_EQ_INT(offset_at(&zone, 1792890000 - 1, &dst), 7200);
        EXPECT_EQ_INT(offset_at(&zone, 1792890000, &dst), 3600);
        EXPECT(!dst);
        /* 2100 lies past every transition of either file: the footer. */
        EXPECT_EQ_INT(offset_at(&zone, 4109878800 - 1, NULL), 3600);
        EXPECT_EQ_INT(offset_at(&zone, 4109878800, NULL), 7200);
        EXPECT_EQ_INT(offset_at(&zone, 4128627600 - 1, NULL), 7200);
        EXPECT_EQ_INT(offset_at(&zone, 4128627600, NULL), 3600);
        zoneinfo_free(&zone);
    }
}

TEST(zoneinfo_new_york) {
    /* Proves the US 2026 changes (2026-03-08 07:00Z, 2026-11-01 06:00Z),
     * 2100 from the footer, and LMT before the first transition (1883). */
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("america_new_york", &zone), 0);
    EXPECT_EQ_INT(offset_at(&zone, 1772953200 - 1, NULL), -18000);
    EXPECT_EQ_INT(offset_at(&zone, 1772953200, NULL), -14400);
    EXPECT_EQ_INT(offset_at(&zone, 1793512800 - 1, NULL), -14400);
    EXPECT_EQ_INT(offset_at(&zone, 1793512800, NULL), -18000);
    EXPECT_EQ_INT(offset_at(&zone, 4108690800 - 1, NULL), -18000);
    EXPECT_EQ_INT(offset_at(&zone, 4108690800, NULL), -14400);
    EXPECT_EQ_INT(offset_at(&zone, 4129250400, NULL), -18000);
    EXPECT_EQ_INT(offset_at(&zone, utc_of(1800, 1, 1, 0, 0), NULL), -17762); /* LMT -4:56:02 */
    zoneinfo_free(&zone);
}

TEST(zoneinfo_lord_howe) {
    /* Proves a half-hour DST: +10:30 standard, +11 from 2026-10-03 15:30Z
     * (02:00 local), back at 2026-04-04 15:00Z (02:00 DST = 01:30). */
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("australia_lord_howe", &zone), 0);
    bool dst = false;
    EXPECT_EQ_INT(offset_at(&zone, 1775314800 - 1, &dst), 39600);
    EXPECT(dst);
    EXPECT_EQ_INT(offset_at(&zone, 1775314800, &dst), 37800);
    EXPECT(!dst);
    EXPECT_EQ_INT(offset_at(&zone, 1791041400 - 1, NULL), 37800);
    EXPECT_EQ_INT(offset_at(&zone, 1791041400, NULL), 39600);
    int rc = 0;
    /* 01:45 on 2026-04-05 happens twice, half an hour apart. */
    EXPECT_EQ_INT(to_utc(&zone, 2026, 4, 5, 1, 45, ZONEINFO_POLICY_RFC5545, &rc),
                  utc_of(2026, 4, 4, 14, 45));
    EXPECT_EQ_INT(rc, 0);
    /* 02:15 on 2026-10-04 does not happen: read at +10:30, shown 02:45. */
    EXPECT_EQ_INT(to_utc(&zone, 2026, 10, 4, 2, 15, ZONEINFO_POLICY_RFC5545, &rc),
                  utc_of(2026, 10, 3, 15, 45));
    zoneinfo_free(&zone);
}

TEST(zoneinfo_no_dst) {
    /* Proves zones without DST: Kolkata is +5:30 in 2026 and 2100 (also
     * from its v1-only variant until 2037), UTC is 0 everywhere. */
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("asia_kolkata", &zone), 0);
    bool dst = true;
    EXPECT_EQ_INT(offset_at(&zone, 1774746000, &dst), 19800);
    EXPECT(!dst);
    EXPECT_EQ_INT(offset_at(&zone, 4109878800, NULL), 19800);
    zoneinfo_free(&zone);
    EXPECT_EQ_INT(seed_parse("asia_kolkata_v1", &zone), 0);
    EXPECT(!zone.has_footer);
    EXPECT_EQ_INT(offset_at(&zone, 1774746000, NULL), 19800);
    zoneinfo_free(&zone);
    EXPECT_EQ_INT(seed_parse("etc_utc", &zone), 0);
    EXPECT_EQ_INT(zone.transition_count, 0);
    EXPECT_EQ_INT(offset_at(&zone, 0, NULL), 0);
    EXPECT_EQ_INT(offset_at(&zone, 4109878800, NULL), 0);
    EXPECT_EQ_INT(offset_at(&zone, ZONEINFO_TIME_S_MAX, NULL), 0);
    int32_t offset_s = 0;
    EXPECT_EQ_INT(zoneinfo_utc_offset(&zone, ZONEINFO_TIME_S_MAX + 1, &offset_s, NULL), ERR_RANGE);
    EXPECT_EQ_INT(zoneinfo_utc_offset(&zone, ZONEINFO_TIME_S_MIN - 1, &offset_s, NULL), ERR_RANGE);
    zoneinfo_free(&zone);
}

/* ---- Local to UTC ------------------------------------------------------------ */

TEST(zoneinfo_gap_and_fold) {
    /* Proves the documented policy: a skipped time moves forward by the
     * gap (02:30 -> 03:30 CEST / EDT), a repeated one is the first
     * instant, and the strict policy refuses both. */
    struct zoneinfo berlin, new_york;
    EXPECT_EQ_INT(seed_parse("europe_berlin", &berlin), 0);
    EXPECT_EQ_INT(seed_parse("america_new_york", &new_york), 0);
    int rc = -1;
    EXPECT_EQ_INT(to_utc(&berlin, 2026, 3, 29, 2, 30, ZONEINFO_POLICY_RFC5545, &rc),
                  utc_of(2026, 3, 29, 1, 30));
    EXPECT_EQ_INT(rc, 0);
    struct zoneinfo_civil shown;
    EXPECT_EQ_INT(zoneinfo_utc_to_local(&berlin, utc_of(2026, 3, 29, 1, 30), &shown), 0);
    EXPECT(shown.hour == 3 && shown.minute == 30 && shown.day == 29);
    EXPECT_EQ_INT(to_utc(&new_york, 2026, 3, 8, 2, 30, ZONEINFO_POLICY_RFC5545, &rc),
                  utc_of(2026, 3, 8, 7, 30));
    EXPECT_EQ_INT(to_utc(&berlin, 2026, 10, 25, 2, 30, ZONEINFO_POLICY_RFC5545, &rc),
                  utc_of(2026, 10, 25, 0, 30));
    EXPECT_EQ_INT(to_utc(&new_york, 2026, 11, 1, 1, 30, ZONEINFO_POLICY_RFC5545, &rc),
                  utc_of(2026, 11, 1, 5, 30));
    to_utc(&berlin, 2026, 3, 29, 2, 30, ZONEINFO_POLICY_STRICT, &rc);
    EXPECT_EQ_INT(rc, ERR_RANGE);
    to_utc(&new_york, 2026, 11, 1, 1, 30, ZONEINFO_POLICY_STRICT, &rc);
    EXPECT_EQ_INT(rc, ERR_RANGE);
    /* Either side of the changes, both policies agree. */
    EXPECT_EQ_INT(to_utc(&berlin, 2026, 3, 29, 9, 0, ZONEINFO_POLICY_STRICT, &rc),
                  utc_of(2026, 3, 29, 7, 0));
    EXPECT_EQ_INT(to_utc(&berlin, 2026, 3, 28, 9, 0, ZONEINFO_POLICY_STRICT, &rc),
                  utc_of(2026, 3, 28, 8, 0));
    EXPECT_EQ_INT(to_utc(&new_york, 2100, 11, 7, 1, 30, ZONEINFO_POLICY_RFC5545, &rc),
                  utc_of(2100, 11, 7, 5, 30));
    EXPECT_EQ_INT(to_utc(&berlin, 2100, 3, 28, 2, 0, ZONEINFO_POLICY_RFC5545, &rc),
                  utc_of(2100, 3, 28, 1, 0));
    /* Calendar and range errors. */
    to_utc(&berlin, 2026, 2, 29, 9, 0, ZONEINFO_POLICY_RFC5545, &rc);
    EXPECT_EQ_INT(rc, ERR_INVAL);
    to_utc(&berlin, 2026, 1, 1, 24, 0, ZONEINFO_POLICY_RFC5545, &rc);
    EXPECT_EQ_INT(rc, ERR_INVAL);
    to_utc(&berlin, 10000, 1, 1, 9, 0, ZONEINFO_POLICY_RFC5545, &rc);
    EXPECT_EQ_INT(rc, ERR_RANGE);
    zoneinfo_free(&berlin);
    zoneinfo_free(&new_york);
}

TEST(zoneinfo_daily_nine) {
    /* Proves the promise: 09:00 Berlin every day of 2026 is 08:00Z
     * in winter and 07:00Z in summer, switching exactly on the DST days. */
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("europe_berlin", &zone), 0);
    for (int64_t days = naive_days(2026, 1, 1); days < naive_days(2027, 1, 1); days++) {
        int64_t year = 0;
        int month = 0, day = 0;
        zoneinfo_civil_from_days(days, &year, &month, &day);
        int rc = -1;
        int64_t utc_s = to_utc(&zone, (int)year, month, day, 9, 0, ZONEINFO_POLICY_STRICT, &rc);
        EXPECT_EQ_INT(rc, 0);
        bool summer = days >= naive_days(2026, 3, 29) && days < naive_days(2026, 10, 25);
        EXPECT_EQ_INT(utc_s, days * 86400 + (summer ? 7 : 8) * 3600);
    }
    zoneinfo_free(&zone);
}

/* Expected offset of `zone_index` at `utc_s` from the rules as written in
 * law: EU since 1996, US since 2007, Lord Howe since 2008, India. */
static int32_t expected_offset(int zone_index, int64_t utc_s, int year) {
    int64_t start_s = 0, end_s = 0;
    switch (zone_index) {
    case 0: /* Europe/Berlin: last Sunday of March and October, 01:00Z */
        start_s = utc_of(year, 3, naive_nth_weekday(year, 3, 5, 0), 1, 0);
        end_s = utc_of(year, 10, naive_nth_weekday(year, 10, 5, 0), 1, 0);
        return utc_s >= start_s && utc_s < end_s ? 7200 : 3600;
    case 1: /* America/New_York: 2nd Sunday March 02:00 EST, 1st Sunday Nov 02:00 EDT */
        start_s = utc_of(year, 3, naive_nth_weekday(year, 3, 2, 0), 7, 0);
        end_s = utc_of(year, 11, naive_nth_weekday(year, 11, 1, 0), 6, 0);
        return utc_s >= start_s && utc_s < end_s ? -14400 : -18000;
    case 2: /* Australia/Lord_Howe: 1st Sunday April 02:00 +11, 1st Sunday Oct 02:00 +10:30 */
        end_s = utc_of(year, 4, naive_nth_weekday(year, 4, 1, 0), 2, 0) - 39600;
        start_s = utc_of(year, 10, naive_nth_weekday(year, 10, 1, 0), 2, 0) - 37800;
        return utc_s >= end_s && utc_s < start_s ? 37800 : 39600;
    default: /* Asia/Kolkata */
        return 19800;
    }
}

TEST(zoneinfo_random_round_trips) {
    /* Proves, for 4000 pseudo-random instants of 2010-2199 per zone, the
     * offset the rules above give, and that local time converts back to
     * the same instant (or, in a fold, to the earlier one). */
    static const char *seeds[] = {"europe_berlin", "america_new_york", "australia_lord_howe",
                                  "asia_kolkata"};
    uint64_t state = 0x9E3779B97F4A7C15u;
    for (int zone_index = 0; zone_index < 4; zone_index++) {
        struct zoneinfo zone;
        EXPECT_EQ_INT(seed_parse(seeds[zone_index], &zone), 0);
        int64_t low = utc_of(2010, 1, 1, 0, 0), high = utc_of(2200, 1, 1, 0, 0);
        for (int round = 0; round < 4000; round++) {
            state = state * 6364136223846793005u + 1442695040888963407u;
            int64_t utc_s = low + (int64_t)((state >> 11) % (uint64_t)(high - low));
            int64_t year = 0;
            int month = 0, day = 0;
            zoneinfo_civil_from_days(utc_s / 86400, &year, &month, &day);
            int32_t expected = expected_offset(zone_index, utc_s, (int)year);
            EXPECT_EQ_INT(offset_at(&zone, utc_s, NULL), expected);
            struct zoneinfo_civil local;
            EXPECT_EQ_INT(zoneinfo_utc_to_local(&zone, utc_s, &local), 0);
            int64_t back = 0;
            EXPECT_EQ_INT(zoneinfo_local_to_utc(&zone, &local, ZONEINFO_POLICY_RFC5545, &back), 0);
            /* Only an instant in the hour (Lord Howe: half hour) after a
             * fall-back change maps to an earlier one. */
            if (back != utc_s) {
                EXPECT(back < utc_s && utc_s - back <= 3600);
                EXPECT_EQ_INT(back + offset_at(&zone, back, NULL), utc_s + expected);
            }
        }
        zoneinfo_free(&zone);
    }
}

/* ---- Footer rules on synthetic files --------------------------------------- */

/* A v2 file with no transitions, one type (`offset_s`) and `footer`. */
static size_t synthetic(uint8_t *out, int32_t offset_s, const char *footer) {
    size_t length = 0;
    for (int block = 0; block < 2; block++) {
        uint8_t header[44] = {'T', 'Z', 'i', 'f', '2'};
        header[39] = 1; /* typecnt */
        header[43] = 4; /* charcnt */
        memcpy(out + length, header, 44);
        length += 44;
        uint8_t type[10] = {(uint8_t)((uint32_t)offset_s >> 24),
                            (uint8_t)((uint32_t)offset_s >> 16),
                            (uint8_t)((uint32_t)offset_s >> 8),
                            (uint8_t)offset_s,
                            0,
                            0,
                            'A',
                            'B',
                            'C',
                            0};
        memcpy(out + length, type, 10);
        length += 10;
    }
    length += (size_t)sprintf((char *)out + length, "\n%s\n", footer);
    return length;
}

TEST(zoneinfo_footer_forms) {
    /* Proves footer-only zones: all-year DST (RFC 8536 3.3.1), Jn and n
     * days, explicit DST offsets and quoted names, and malformed strings
     * refused. */
    uint8_t bytes[256];
    struct zoneinfo zone;
    size_t length = synthetic(bytes, -18000, "EST5EDT,0/0,J365/25");
    EXPECT_EQ_INT(zoneinfo_parse(bytes, length, &zone), 0);
    bool dst = false;
    EXPECT_EQ_INT(offset_at(&zone, utc_of(2026, 1, 1, 12, 0), &dst), -14400);
    EXPECT(dst);
    EXPECT_EQ_INT(offset_at(&zone, utc_of(2026, 7, 1, 12, 0), NULL), -14400);
    EXPECT_EQ_INT(offset_at(&zone, utc_of(2026, 12, 31, 23, 59), NULL), -14400);
    zoneinfo_free(&zone);
    /* DST from March 1 (J60, never Feb 29) to day 300 (0-based). */
    length = synthetic(bytes, 0, "<-01>1<+00>0,J60/0,300/0");
    EXPECT_EQ_INT(zoneinfo_parse(bytes, length, &zone), 0);
    EXPECT_EQ_INT(offset_at(&zone, utc_of(2028, 2, 29, 12, 0), NULL), -3600);
    EXPECT_EQ_INT(offset_at(&zone, utc_of(2028, 3, 1, 12, 0), NULL), 0);
    /* Day 300 of leap year 2028 is October 27. */
    EXPECT_EQ_INT(offset_at(&zone, utc_of(2028, 10, 26, 12, 0), NULL), 0);
    EXPECT_EQ_INT(offset_at(&zone, utc_of(2028, 10, 27, 12, 0), NULL), -3600);
    zoneinfo_free(&zone);
    length = synthetic(bytes, 3600, "AAA-1BBB-3:30,M3.5.0/-1,M10.5.0/167");
    EXPECT_EQ_INT(zoneinfo_parse(bytes, length, &zone), 0);
    EXPECT_EQ_INT(zone.footer.dst_offset_s, 12600);
    EXPECT_EQ_INT(zone.footer.end.time_s, 167 * 3600);
    zoneinfo_free(&zone);
    static const char *bad[] = {"EST5EDT",
                                "E5",
                                "EST",
                                "EST5EDT,M3.2.0",
                                "EST25",
                                "EST5EDT,M13.1.0,M11.1.0",
                                "EST5EDT,J0,J365",
                                "EST5EDT,M3.2.7,M11.1.0",
                                "EST5EDT,M3.2.0/168,M11.1.0",
                                "EST5 ",
                                "<AB>5",
                                "EST5EDT,366,1"};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        length = synthetic(bytes, 0, bad[index]);
        EXPECT_EQ_INT(zoneinfo_parse(bytes, length, &zone), ERR_PARSE);
    }
}

/* ---- Malformed files ---------------------------------------------------------- */

TEST(zoneinfo_malformed) {
    /* Proves damaged files are refused with ERR_PARSE (truncated,
     * unsorted, bad footer, bad magic or version, trailing bytes) and that
     * allocation failure is ERR_NOMEM with nothing leaked. */
    struct zoneinfo zone;
    EXPECT_EQ_INT(seed_parse("europe_berlin_truncated", &zone), ERR_PARSE);
    EXPECT(zone.transitions == NULL);
    EXPECT_EQ_INT(seed_parse("europe_berlin_unsorted", &zone), ERR_PARSE);
    EXPECT_EQ_INT(seed_parse("america_new_york_bad_footer", &zone), ERR_PARSE);
    static uint8_t bytes[ZONEINFO_FILE_BYTES + 1];
    size_t length = seed_read("europe_berlin_slim", bytes, sizeof bytes);
    EXPECT(length > 100);
    for (size_t cut = 0; cut < length; cut += 7)
        EXPECT_EQ_INT(zoneinfo_parse(bytes, cut, &zone), ERR_PARSE);
    bytes[length] = '\n';
    EXPECT_EQ_INT(zoneinfo_parse(bytes, length + 1, &zone), ERR_PARSE);
    bytes[4] = '1';
    EXPECT_EQ_INT(zoneinfo_parse(bytes, length, &zone), ERR_PARSE);
    bytes[4] = '2';
    bytes[0] = 't';
    EXPECT_EQ_INT(zoneinfo_parse(bytes, length, &zone), ERR_PARSE);
    bytes[0] = 'T';
    EXPECT_EQ_INT(zoneinfo_parse(bytes, length, &zone), 0);
    zoneinfo_free(&zone);
    EXPECT_EQ_INT(zoneinfo_parse(bytes, sizeof bytes, &zone), ERR_LIMIT);
    EXPECT_EQ_INT(zoneinfo_parse(NULL, 0, &zone), ERR_PARSE);
    mem_fail_after(0);
    int rc = zoneinfo_parse(bytes, length, &zone);
    mem_fail_after(-1);
    EXPECT_EQ_INT(rc, ERR_NOMEM);
}

/* ---- Loading -------------------------------------------------------------------- */

static void copy_file(const char *dir, const char *name, const uint8_t *bytes, size_t length) {
    char path[512];
    const char *slash = strchr(name, '/');
    if (slash != NULL) {
        snprintf(path, sizeof path, "%s/%.*s", dir, (int)(slash - name), name);
        mkdir(path, 0700);
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen(path, "wb");
    if (file == NULL)
        abort();
    fwrite(bytes, 1, length, file);
    fclose(file);
}

TEST(zoneinfo_load_files) {
    /* Proves loading by name from a directory: a valid zone loads, a name
     * timezone_is_valid() refuses is ERR_INVAL, a known zone missing from
     * the directory ERR_NOTFOUND, an oversized file ERR_LIMIT. */
    static uint8_t bytes[ZONEINFO_FILE_BYTES + 16];
    size_t length = seed_read("europe_berlin_slim", bytes, sizeof bytes);
    EXPECT(length > 0);
    char dir[] = "/tmp/docket-zoneinfo-load-XXXXXX";
    EXPECT(mkdtemp(dir) != NULL);
    copy_file(dir, "Test/Berlin", bytes, length);
    memset(bytes + length, 0, sizeof bytes - length);
    copy_file(dir, "Test/Big", bytes, sizeof bytes);
    EXPECT_EQ_INT(timezone_directory_set(dir), 0);
    struct zoneinfo zone;
    int loaded = zoneinfo_load_at(dir, "Test/Berlin", &zone);
    int32_t offset_s = loaded == 0 ? offset_at(&zone, 1774746000, NULL) : 0;
    zoneinfo_free(&zone);
    int big = zoneinfo_load_at(dir, "Test/Big", &zone);
    int escape = zoneinfo_load_at(dir, "../Test/Berlin", &zone);
    int missing = zoneinfo_load_at(dir, "Europe/Paris", &zone);
    int unnamed = zoneinfo_load_at(dir, "Test/Nowhere", &zone);
    EXPECT_EQ_INT(timezone_directory_set(NULL), 0);
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    EXPECT_EQ_INT(system(command), 0);
    EXPECT_EQ_INT(loaded, 0);
    EXPECT_EQ_INT(offset_s, 7200);
    EXPECT_EQ_INT(big, ERR_LIMIT);
    EXPECT_EQ_INT(escape, ERR_INVAL);
    EXPECT_EQ_INT(missing, ERR_NOTFOUND);
    EXPECT_EQ_INT(unnamed, ERR_INVAL);
    EXPECT_EQ_INT(zoneinfo_load_at(dir, NULL, &zone), ERR_INVAL);
}

TEST(zoneinfo_load_host) {
    /* Proves the default directory works where the host has tzdata (the
     * check is skipped on hosts without it). */
    FILE *probe = fopen(TIMEZONE_DIRECTORY "/Europe/Berlin", "rb");
    if (probe == NULL)
        return;
    fclose(probe);
    struct zoneinfo zone;
    EXPECT_EQ_INT(zoneinfo_load("Europe/Berlin", &zone), 0);
    EXPECT_EQ_INT(offset_at(&zone, 1792890000, NULL), 3600);
    zoneinfo_free(&zone);
}
