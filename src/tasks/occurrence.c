/*
 * occurrence.c - walking a recurring series, the semantics of occurrence.h.
 *
 * Every rule is seen as a sequence of periods, each a set of candidate
 * days: DAILY one day every INTERVAL days; WEEKLY a Monday-based week every
 * INTERVAL weeks, candidates its BYDAY weekdays; MONTHLY a month every
 * INTERVAL months, candidates its BYMONTHDAY days that exist in it. YEARLY
 * is MONTHLY stepping 12 * INTERVAL months with DTSTART's day, which gives
 * the same occurrences and the same skipping of February 29. Period 0 is
 * the one holding DTSTART and loses the candidates before it.
 *
 * A cursor (struct walk) stands at a period and a position in it and
 * counts the occurrences it has passed, so it also yields each one's
 * index. Seeking to a local day is arithmetic for days and weeks and a
 * counted walk over months (at most 12 * 9999 of them, each one popcount).
 * Since all occurrences share one time of day and gaps are shorter than a
 * day, their UTC instants rise with their local days, which lets
 * occurrence_after() start a little before the local day of the instant
 * and step forward.
 */
#include "occurrence.h"

#include "../base/check.h"
#include "../base/err.h"

#include <stdbool.h>

/* Local days before the instant's own local day at which the search for
 * occurrence_after() starts: offsets differ by at most a day between two
 * nearby instants of a real zone, and two days keep a margin. */
#define OCCURRENCE_SEEK_BACK_DAYS 2

/* Occurrences occurrence_after() may step over that lie at or before the
 * instant: at most one a day from OCCURRENCE_SEEK_BACK_DAYS before the
 * instant's day through the day after, with room to spare. */
#define OCCURRENCE_SKIP_MAX 16

/* The last day an occurrence may fall on: 9999-12-31, days since 1970. */
#define OCCURRENCE_LAST_DAY INT64_C(2932896)

/* A cursor over the candidate days of a series. */
struct walk {
    enum rrule_freq kind;  /* DAILY, WEEKLY or MONTHLY (YEARLY walks as MONTHLY) */
    int64_t base;          /* period 0: its day (DAILY), Monday (WEEKLY), year*12+month-1 */
    int64_t step;          /* days, weeks or months from one period to the next */
    uint64_t mask;         /* candidates: weekday bits Monday = 0, or day-of-month bits */
    int start_position;    /* DTSTART's position in period 0 (0, weekday, day of month) */
    int64_t period;        /* period the cursor stands in, 0 = the one holding DTSTART */
    int position;          /* first position of `period` not yet yielded */
    int64_t index;         /* occurrences yielded or passed before the cursor */
};

/* Monday = 0 .. Sunday = 6, the bit order of rrule.by_day_mask. */
static int weekday_monday_first(int64_t days) {
    return (zoneinfo_weekday_from_days(days) + 6) % 7;
}

static int64_t floor_divide(int64_t value, int64_t divisor) {
    int64_t quotient = value / divisor;
    return (value % divisor != 0 && (value < 0) != (divisor < 0)) ? quotient - 1 : quotient;
}

static bool civil_is_valid(const struct zoneinfo_civil *civil) {
    if (civil->year < 1 || civil->year > 9999 || civil->month < 1 || civil->month > 12)
        return false;
    if (civil->day < 1 || civil->day > zoneinfo_days_in_month(civil->year, civil->month))
        return false;
    return civil->hour >= 0 && civil->hour <= 23 && civil->minute >= 0 && civil->minute <= 59 &&
           civil->second >= 0 && civil->second <= 59;
}

static int walk_init(struct walk *walk, const struct rrule *rule,
                     const struct zoneinfo_civil *start) {
    if (rule->interval < 1 || rule->interval > RRULE_INTERVAL_MAX || rule->count < 0 ||
        rule->count > RRULE_COUNT_MAX || !civil_is_valid(start))
        return ERR_INVAL;
    int64_t start_day = zoneinfo_days_from_civil(start->year, start->month, start->day);
    *walk = (struct walk){.kind = rule->freq, .step = rule->interval};
    switch (rule->freq) {
    case RRULE_FREQ_DAILY:
        walk->base = start_day;
        walk->mask = 1;
        break;
    case RRULE_FREQ_WEEKLY:
        walk->start_position = weekday_monday_first(start_day);
        walk->base = start_day - walk->start_position;
        walk->mask = rule->by_day_mask != 0 ? (uint64_t)(rule->by_day_mask & 0x7f)
                                            : UINT64_C(1) << walk->start_position;
        break;
    case RRULE_FREQ_MONTHLY:
    case RRULE_FREQ_YEARLY:
        walk->kind = RRULE_FREQ_MONTHLY;
        walk->start_position = start->day;
        walk->base = start->year * 12 + (start->month - 1);
        walk->mask = (rule->freq == RRULE_FREQ_MONTHLY && rule->by_month_day_mask != 0)
                         ? (uint64_t)(rule->by_month_day_mask & ~UINT32_C(1))
                         : UINT64_C(1) << start->day;
        if (rule->freq == RRULE_FREQ_YEARLY)
            walk->step = 12 * (int64_t)rule->interval;
        break;
    default:
        return ERR_INVAL;
    }
    return 0;
}

/* The candidates of `period`: positions that are real dates, and in
 * period 0 not before DTSTART. */
static uint64_t walk_period_mask(const struct walk *walk, int64_t period) {
    uint64_t mask = walk->mask;
    if (walk->kind == RRULE_FREQ_MONTHLY) {
        int64_t month_index = walk->base + period * walk->step;
        int days = zoneinfo_days_in_month(month_index / 12, (int)(month_index % 12) + 1);
        mask &= (UINT64_C(2) << days) - 1;
    }
    if (period == 0)
        mask &= ~((UINT64_C(1) << walk->start_position) - 1);
    return mask;
}

/* walk_day's "no such day": days before 1970 are negative, so -1 cannot say it. */
#define WALK_NO_DAY INT64_MIN

/* Local day of `position` in `period`, or WALK_NO_DAY past OCCURRENCE_LAST_DAY. */
static int64_t walk_day(const struct walk *walk, int64_t period, int position) {
    int64_t day;
    if (walk->kind == RRULE_FREQ_DAILY) {
        day = walk->base + period * walk->step;
    } else if (walk->kind == RRULE_FREQ_WEEKLY) {
        day = walk->base + 7 * period * walk->step + position;
    } else {
        int64_t month_index = walk->base + period * walk->step;
        if (month_index / 12 > 9999)
            return WALK_NO_DAY;
        day = zoneinfo_days_from_civil(month_index / 12, (int)(month_index % 12) + 1, position);
    }
    return day > OCCURRENCE_LAST_DAY ? WALK_NO_DAY : day;
}

/* Yields the next candidate day (and through walk->index - 1 its index).
 * ERR_NOTFOUND past the year 9999 or after too many empty periods. */
static int walk_next(struct walk *walk, int64_t *day) {
    for (int empty = 0; empty <= OCCURRENCE_EMPTY_PERIODS_MAX; empty++) {
        /* Position 0 of a month is the day before its first, still in range
         * for every month up to 9999-12. */
        if (walk_day(walk, walk->period, 0) == WALK_NO_DAY)
            return ERR_NOTFOUND;
        uint64_t left =
            walk_period_mask(walk, walk->period) & ~((UINT64_C(1) << walk->position) - 1);
        if (left != 0) {
            int position = __builtin_ctzll(left);
            *day = walk_day(walk, walk->period, position);
            if (*day == WALK_NO_DAY)
                return ERR_NOTFOUND;
            walk->position = position + 1;
            walk->index++;
            return 0;
        }
        walk->period++;
        walk->position = 0;
    }
    return ERR_NOTFOUND;
}

/* Moves the cursor so that walk_next() yields the first candidate on or
 * after local day `from_day`, counting the candidates it passes. */
static void walk_seek(struct walk *walk, int64_t from_day) {
    int64_t start_day = walk_day(walk, 0, walk->start_position);
    if (from_day < start_day)
        from_day = start_day;
    if (from_day > OCCURRENCE_LAST_DAY)
        from_day = OCCURRENCE_LAST_DAY;
    int64_t period, position;
    if (walk->kind == RRULE_FREQ_DAILY) {
        period = (from_day - walk->base + walk->step - 1) / walk->step;
        walk->index = period;
        position = 0;
    } else if (walk->kind == RRULE_FREQ_WEEKLY) {
        int64_t week = (from_day - walk->base) / 7;
        period = week / walk->step;
        position = (from_day - walk->base) - 7 * week;
        if (week % walk->step != 0) {
            period++;
            position = 0;
        }
        walk->index = period == 0 ? 0
                                  : __builtin_popcountll(walk_period_mask(walk, 0)) +
                                        (period - 1) * __builtin_popcountll(walk->mask);
    } else {
        int64_t year;
        int month, day;
        zoneinfo_civil_from_days(from_day, &year, &month, &day);
        int64_t target = year * 12 + (month - 1);
        walk->index = 0;
        for (period = 0; walk->base + period * walk->step < target; period++)
            walk->index += __builtin_popcountll(walk_period_mask(walk, period));
        position = walk->base + period * walk->step == target ? day : 0;
    }
    walk->period = period;
    walk->position = (int)position;
    walk->index += __builtin_popcountll(walk_period_mask(walk, period) &
                                        ((UINT64_C(1) << position) - 1));
}

/* Turns candidate `day` (index walk->index - 1) into an occurrence, or
 * ERR_NOTFOUND when COUNT or UNTIL has ended the series before it. */
static int occurrence_make(const struct rrule *rule, const struct zoneinfo *zone,
                           const struct zoneinfo_civil *start, const struct walk *walk,
                           int64_t day, struct occurrence *out) {
    struct occurrence found = {.index = walk->index - 1, .local = *start};
    CHECK(found.index >= 0);
    if (rule->count > 0 && found.index >= rule->count)
        return ERR_NOTFOUND;
    zoneinfo_civil_from_days(day, &found.local.year, &found.local.month, &found.local.day);
    int result = zoneinfo_local_to_utc(zone, &found.local, ZONEINFO_POLICY_RFC5545, &found.utc_s);
    if (result == ERR_RANGE)
        return ERR_NOTFOUND;
    if (result < 0)
        return result;
    if (rule->has_until && found.utc_s > floor_divide(rule->until_ns, 1000000000))
        return ERR_NOTFOUND;
    *out = found;
    return 0;
}

int occurrence_after(const struct rrule *rule, const struct zoneinfo *zone,
                     const struct zoneinfo_civil *start, int64_t after_utc_s,
                     struct occurrence *out) {
    CHECK(rule != NULL && zone != NULL && start != NULL && out != NULL);
    struct walk walk;
    int result = walk_init(&walk, rule, start);
    if (result < 0)
        return result;
    struct zoneinfo_civil local;
    result = zoneinfo_utc_to_local(zone, after_utc_s, &local);
    if (result < 0)
        return result;
    walk_seek(&walk, zoneinfo_days_from_civil(local.year, local.month, local.day) -
                         OCCURRENCE_SEEK_BACK_DAYS);
    for (int skipped = 0; skipped <= OCCURRENCE_SKIP_MAX; skipped++) {
        int64_t day;
        result = walk_next(&walk, &day);
        if (result < 0)
            return result;
        struct occurrence found;
        result = occurrence_make(rule, zone, start, &walk, day, &found);
        if (result < 0)
            return result;
        if (found.utc_s > after_utc_s) {
            *out = found;
            return 0;
        }
    }
    /* More than a few days of occurrences at or before one instant means
     * the zone moved its clock by more than a day. */
    return ERR_LIMIT;
}

int occurrence_nth(const struct rrule *rule, const struct zoneinfo *zone,
                   const struct zoneinfo_civil *start, int64_t index, struct occurrence *out) {
    CHECK(rule != NULL && zone != NULL && start != NULL && out != NULL);
    if (index < 0 || index >= OCCURRENCE_NTH_MAX)
        return ERR_RANGE;
    struct walk walk;
    int result = walk_init(&walk, rule, start);
    if (result < 0)
        return result;
    if (rule->count > 0 && index >= rule->count)
        return ERR_NOTFOUND;
    int64_t day = 0;
    for (int64_t step = 0; step <= index; step++) {
        result = walk_next(&walk, &day);
        if (result < 0)
            return result;
    }
    CHECK(walk.index == index + 1);
    return occurrence_make(rule, zone, start, &walk, day, out);
}
