/*
 * zoneinfo.h - reading TZif zone files (RFC 8536) and converting between
 * UTC and the local civil time of a zone.
 *
 * Recurring tasks are kept in local time ("09:00 every day in Berlin stays
 * 09:00 across DST"), so the next occurrence is found in civil time and
 * converted to a UTC instant with the zone's rules. The rules come from the
 * host's zoneinfo directory, or from the embedded tzdata (tzdata.h) for a
 * zone the host lacks.
 *
 * File layout (RFC 8536 section 3; all integers big-endian, signed where
 * they are times or offsets):
 *
 *   offset  size  field
 *   0       4     magic "TZif"
 *   4       1     version: 0 (v1), '2', '3' or '4'
 *   5       15    unused
 *   20      4     isutcnt   UT/local indicators (0 or typecnt)
 *   24      4     isstdcnt  standard/wall indicators (0 or typecnt)
 *   28      4     leapcnt   leap-second records
 *   32      4     timecnt   transition times
 *   36      4     typecnt   local time types (1..256)
 *   40      4     charcnt   abbreviation bytes (>= 1)
 *   44            data block: timecnt times (4 bytes in v1, 8 in v2+),
 *                 timecnt one-byte type indices, typecnt 6-byte types
 *                 (int32 utoff, uint8 isdst, uint8 desigidx), charcnt
 *                 abbreviation bytes, leapcnt leap records (8 or 12
 *                 bytes), isstdcnt and isutcnt one-byte indicators.
 *   v2+:          a second header and a data block with 8-byte times,
 *                 then the footer "\n" POSIX-TZ-string "\n".
 *
 * Version 1 files are read from their 32-bit block; v2+ files from the
 * 64-bit block and footer (the v1 block is only skipped). The footer's
 * POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3") gives local time after the
 * last transition, with the RFC 8536 extensions (rule times -167..167 hours,
 * all-year DST). Files with leap-second records ("right/" zones) are
 * refused: their times are not Unix time. Everything is validated; a
 * malformed file is ERR_PARSE, one past a bound below ERR_LIMIT.
 */
#ifndef DOCKET_TASKS_ZONEINFO_H
#define DOCKET_TASKS_ZONEINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest zone file read. The biggest tzdata 2025b file ("fat", with
 * transitions up to 2037) is under 4 KiB; 64 KiB leaves room for growth
 * while keeping a hostile file from pinning memory. */
#define ZONEINFO_FILE_BYTES (64 * 1024)

/* Most transitions kept. Fat files have about 240; 4096 is far above any
 * real zone and bounds the one allocation a zone makes (16 bytes each). */
#define ZONEINFO_TRANSITIONS_MAX 4096

/* Local time types: the type index of a transition is one byte (RFC 8536
 * section 3.2), so more than 256 could never be used. */
#define ZONEINFO_TYPES_MAX 256

/* Longest footer TZ string, bytes. Real ones are under 50
 * ("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0" is 36). */
#define ZONEINFO_FOOTER_BYTES 128

/* Largest |UTC offset| accepted, seconds: 26 hours. RFC 8536 section 3.2
 * recommends -89999..93599; the bound keeps every local time within a day
 * and a bit of its UTC instant, which local-to-UTC search relies on. */
#define ZONEINFO_OFFSET_S_MAX (26 * 3600)

/* Instants the conversions accept: 0001-01-01T00:00:00Z to
 * 9999-12-31T23:59:59Z, the years an RFC 5545 date can name. Outside them
 * the answer is ERR_RANGE, which also keeps the calendar arithmetic far
 * from int64 overflow. */
#define ZONEINFO_TIME_S_MIN INT64_C(-62135596800)
#define ZONEINFO_TIME_S_MAX INT64_C(253402300799)

/* Offset changes considered around one local time when converting it to
 * UTC (within two days either side). Real zones have at most two; a file
 * with more in that window is answered ERR_LIMIT rather than guessed at. */
#define ZONEINFO_WINDOW_CHANGES_MAX 16

/* One local time type of the file. */
struct zoneinfo_type {
    int32_t utc_offset_s; /* seconds east of UTC (CET: 3600) */
    bool is_dst;          /* daylight saving time */
};

/* One transition: from `at_s` on, `type` applies. */
struct zoneinfo_transition {
    int64_t at_s; /* Unix seconds (UTC) */
    uint8_t type; /* index into zoneinfo.types */
};

/* Where a footer rule switches: a day of the year and a local time. */
enum zoneinfo_day_kind {
    ZONEINFO_DAY_JULIAN = 0,  /* Jn: day 1..365, February 29 never counted */
    ZONEINFO_DAY_ORDINAL = 1, /* n: day 0..365, February 29 counted */
    ZONEINFO_DAY_MONTH = 2,   /* Mm.w.d: weekday d of week w (5 = last) of month m */
};

struct zoneinfo_switch {
    enum zoneinfo_day_kind kind; /* how day/week/month/weekday are read */
    int day;                     /* JULIAN 1..365, ORDINAL 0..365 */
    int month;                   /* MONTH: 1..12 */
    int week;                    /* MONTH: 1..5, 5 meaning the last */
    int weekday;                 /* MONTH: 0 (Sunday) .. 6 */
    int32_t time_s;              /* local time of day the switch happens, -167..167 h */
};

/* The footer's POSIX TZ string, parsed. */
struct zoneinfo_rule {
    int32_t std_offset_s;         /* standard time, seconds east of UTC */
    int32_t dst_offset_s;         /* daylight time, seconds east of UTC */
    bool has_dst;                 /* false: standard time all year */
    struct zoneinfo_switch start; /* into DST, given in standard time */
    struct zoneinfo_switch end;   /* back to standard, given in DST */
};

/* A loaded zone. Caller-owned; release with zoneinfo_free(). */
struct zoneinfo {
    struct zoneinfo_transition *transitions;        /* ascending at_s; mem_alloc'd */
    size_t transition_count;                        /* entries of transitions */
    struct zoneinfo_type types[ZONEINFO_TYPES_MAX]; /* local time types */
    size_t type_count;                              /* used entries of types, >= 1 */
    bool has_footer;                                /* footer rule present, non-empty */
    struct zoneinfo_rule footer;                    /* rule after the last transition */
};

/* A civil (wall clock) date-time, proleptic Gregorian, no zone. */
struct zoneinfo_civil {
    int64_t year; /* 1..9999 for conversions */
    int month;    /* 1..12 */
    int day;      /* 1..days in month */
    int hour;     /* 0..23 */
    int minute;   /* 0..59 */
    int second;   /* 0..59 (no leap seconds: Unix time has none) */
};

/* How zoneinfo_local_to_utc() resolves local times that occur zero or two
 * times on a transition day.
 *
 * ZONEINFO_POLICY_RFC5545 (what recurrences use):
 *   gap  - a time skipped by a forward change (02:30 on the EU spring day)
 *          is read with the offset in force before the change, RFC 5545
 *          section 3.3.5; the result lies after the change, which moves
 *          the wall time forward by the gap length (02:30 CET = 01:30Z =
 *          03:30 CEST).
 *   fold - a time that occurs twice (01:30 on the US autumn day) is the
 *          first, earlier instant (01:30 EDT = 05:30Z, not 01:30 EST).
 * ZONEINFO_POLICY_STRICT: both cases are ERR_RANGE, for callers that
 *   want to ask the user instead. */
enum zoneinfo_policy {
    ZONEINFO_POLICY_RFC5545 = 0,
    ZONEINFO_POLICY_STRICT = 1,
};

/* Reads the TZif file of zone `name` (NUL-terminated) from the zone
 * directory in force (timezone_directory_get(): $TZDIR or
 * TIMEZONE_DIRECTORY unless timezone_directory_set() chose another); when
 * that gives ERR_NOTFOUND (no such file, or no such directory), parses the
 * embedded tzdata's copy instead. ERR_NOTFOUND when neither has it. */
int zoneinfo_load(const char *name, struct zoneinfo *zone);

/* Same, from `directory`. The name must pass timezone_is_valid() (which
 * also keeps the path inside the directory): ERR_INVAL otherwise.
 * ERR_NOTFOUND when there is no such file, ERR_LIMIT when it is larger than
 * ZONEINFO_FILE_BYTES, ERR_IO when it is not a regular file or reading fails,
 * and the errors of zoneinfo_parse(). */
int zoneinfo_load_at(const char *directory, const char *name, struct zoneinfo *zone);

/* Parses `length` bytes of TZif data into `zone`. On error `zone` holds
 * nothing to free (zoneinfo_free() is still safe on it). */
int zoneinfo_parse(const uint8_t *bytes, size_t length, struct zoneinfo *zone);

/* Releases what `zone` holds; it may then be loaded again. */
void zoneinfo_free(struct zoneinfo *zone);

/* The offset from UTC (seconds east) and DST flag in force at `utc_s`.
 * ERR_RANGE outside ZONEINFO_TIME_S_MIN..MAX. */
int zoneinfo_utc_offset(const struct zoneinfo *zone, int64_t utc_s, int32_t *offset_s,
                        bool *is_dst);

/* The UTC instant of a local civil time in `zone`, gaps and folds resolved
 * by `policy` (see enum zoneinfo_policy). ERR_INVAL for a date or time
 * that does not exist on the calendar (February 30, 24:00), ERR_RANGE for
 * years outside 1..9999 or, with the strict policy, gaps and folds. */
int zoneinfo_local_to_utc(const struct zoneinfo *zone, const struct zoneinfo_civil *local,
                          enum zoneinfo_policy policy, int64_t *utc_s);

/* The local civil time of `utc_s` in `zone`; ERR_RANGE as above. */
int zoneinfo_utc_to_local(const struct zoneinfo *zone, int64_t utc_s, struct zoneinfo_civil *local);

/* Days from 1970-01-01 to a proleptic Gregorian date (negative before).
 * Valid for |year| < 2^40; month 1..12, day 1..31 (not checked against
 * the month: day 31 of April is May 1). */
int64_t zoneinfo_days_from_civil(int64_t year, int month, int day);

/* The date `days` after 1970-01-01 (inverse of the above). */
void zoneinfo_civil_from_days(int64_t days, int64_t *year, int *month, int *day);

/* Day of the week of `days` after 1970-01-01: 0 Sunday .. 6 Saturday. */
int zoneinfo_weekday_from_days(int64_t days);

/* Days in `month` (1..12) of `year`. */
int zoneinfo_days_in_month(int64_t year, int month);

#endif
