/*
 * recurrence.h - the RRULE subset Docket supports (RFC 5545 section
 * 3.3.10), parsed into a struct and written back in one normalised text.
 *
 * Accepted parts, each at most once, in any order, separated by ";":
 *   FREQ=DAILY|WEEKLY|MONTHLY|YEARLY   required
 *   INTERVAL=1..1000                   default 1
 *   BYDAY=MO,TU,...                    only with FREQ=WEEKLY; no ordinals
 *   BYMONTHDAY=1..31,...               only with FREQ=MONTHLY; no negatives
 *   COUNT=1..10000                     not together with UNTIL
 *   UNTIL=YYYYMMDD"T"HHMMSS"Z" | YYYYMMDD  UTC date-time or date
 * Names and values are read case-insensitively ("freq=weekly;byday=mo");
 * the normalised text is uppercase with the parts in the order above,
 * INTERVAL left out when 1, days in week and month order, each day once:
 *   "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR;COUNT=10".
 * Everything else RFC 5545 allows (BYSETPOS, BYHOUR, WKST, FREQ=HOURLY,
 * "RRULE:" prefixes, ...) is rejected with a message naming the part.
 *
 * This module only parses and formats; occurrences (in the task's time
 * zone, DST-correct) are computed by occurrence.h from the parsed rule.
 */
#ifndef DOCKET_TASKS_RECURRENCE_H
#define DOCKET_TASKS_RECURRENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds of the numeric parts. INTERVAL above 1000 (a daily rule every
 * three years) and COUNT above 10,000 have no use in a todo list and would
 * only make occurrence computation walk further. */
#define RRULE_INTERVAL_MAX 1000
#define RRULE_COUNT_MAX 10000

/* Room for the longest normalised text plus NUL: FREQ=MONTHLY, the largest
 * INTERVAL, all 31 BYMONTHDAY days and a date-time UNTIL come to 144 bytes.
 * It is below LIMIT_TASK_RRULE_BYTES, so a normalised rule always fits a
 * task. */
#define RRULE_TEXT_BYTES 160

enum rrule_freq {
    RRULE_FREQ_DAILY = 0,
    RRULE_FREQ_WEEKLY = 1,
    RRULE_FREQ_MONTHLY = 2,
    RRULE_FREQ_YEARLY = 3,
};

/* Bits of rrule.by_day_mask: Monday is bit 0, as in ISO 8601 weeks. */
enum rrule_weekday {
    RRULE_MONDAY = 1 << 0,
    RRULE_TUESDAY = 1 << 1,
    RRULE_WEDNESDAY = 1 << 2,
    RRULE_THURSDAY = 1 << 3,
    RRULE_FRIDAY = 1 << 4,
    RRULE_SATURDAY = 1 << 5,
    RRULE_SUNDAY = 1 << 6,
};

struct rrule {
    enum rrule_freq freq;      /* FREQ */
    int interval;              /* INTERVAL, 1..RRULE_INTERVAL_MAX (1 when not given) */
    uint8_t by_day_mask;       /* BYDAY, enum rrule_weekday bits; 0 when not given */
    uint32_t by_month_day_mask; /* BYMONTHDAY: bit d set for day d (1..31); bit 0 unused */
    int count;                 /* COUNT, 1..RRULE_COUNT_MAX; 0 when not given */
    bool has_until;            /* UNTIL was given */
    int64_t until_ns;          /* UNTIL, Unix ns UTC (a DATE means 00:00:00Z of that day) */
    bool until_is_date;        /* UNTIL was a DATE, so formatting writes it back as one */
};

/* Parses `length` bytes of RRULE text (no "RRULE:" prefix; at most
 * LIMIT_TASK_RRULE_BYTES). Returns 0 with
 * `out` filled, or ERR_PARSE with `*message` (if not NULL) pointing at a
 * static sentence naming the part, fit to follow the field name in an API
 * error ("BYDAY is only supported with FREQ=WEEKLY"). */
int rrule_parse(const char *text, size_t length, struct rrule *out, const char **message);

/* Writes the normalised text of `rule` (as produced by rrule_parse) with its
 * NUL. Returns its length, or ERR_LIMIT when `size` is too small (use
 * RRULE_TEXT_BYTES). */
int rrule_format(const struct rrule *rule, char *out, size_t size);

/* Names: "DAILY", ... */
const char *rrule_freq_name(enum rrule_freq freq);

#endif
