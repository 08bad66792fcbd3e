/*
 * rrule_fuzz.c - libFuzzer target for the RRULE parser (recurrence.h) and
 * the series walk built on it (occurrence.h).
 *
 * Input layout: a 12-byte header, then the rule text.
 *   byte 0      zone: 0 = UTC, 1 = Europe/Berlin, 2 = Australia/Lord_Howe
 *               (30-minute DST), 3 = America/New_York (low two bits), all
 *               from the embedded tzdata so the run needs no host files
 *   bytes 1-2   start year, FUZZ_YEAR_FIRST + value % (10000 - FUZZ_YEAR_FIRST)
 *               (big-endian)
 *   bytes 3-7   start month, day (1..31, may not exist), hour, minute, second
 *   bytes 8-11  signed minutes from the start to the probed instant
 *
 * Checks: a rejection is ERR_PARSE with a message; an accepted rule
 * formats, fits RRULE_TEXT_BYTES exactly as documented, and its text parses
 * back to the same rule and formats identically. For the series: the
 * first occurrences have indices 0, 1, 2, ..., strictly rising instants,
 * DTSTART's time of day, days the rule allows, nothing past COUNT or
 * UNTIL; occurrence_after() of an occurrence's instant is the next one, of
 * one second before it is the occurrence itself, and of the probed instant
 * lies after it. Work per input is bounded by FUZZ_OCCURRENCES.
 */
#include "../../src/base/check.h"
#include "../../src/base/err.h"
#include "../../src/base/limits.h"
#include "../../src/tasks/occurrence.h"
#include "../../src/tasks/recurrence.h"
#include "../../src/tasks/tzdata.h"
#include "../../src/tasks/zoneinfo.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Header bytes before the rule text. */
#define FUZZ_HEADER_BYTES 12

/* First start year generated: from 1900, so series that begin before 1970
 * (negative days, which walk_day() once mistook for its "no such day"
 * value) stay covered. Years near 1 are left out: an instant one second
 * before 0001-01-01 is outside the civil range the engine accepts. */
#define FUZZ_YEAR_FIRST 1900

/* Occurrences walked per input: each nth() walks from the start, so the
 * work is quadratic in this. */
#define FUZZ_OCCURRENCES 12

/* The zones an input can pick, loaded once from the embedded tzdata. */
static const char *const fuzz_zone_names[4] = {"UTC", "Europe/Berlin", "Australia/Lord_Howe",
                                               "America/New_York"};
static struct zoneinfo fuzz_zones[4];
static bool fuzz_zones_loaded;

static void fuzz_load_zones(void) {
    if (fuzz_zones_loaded)
        return;
    for (int index = 0; index < 4; index++) {
        const uint8_t *bytes = NULL;
        size_t length = 0;
        CHECK(tzdata_find(fuzz_zone_names[index], &bytes, &length) == 0);
        CHECK(zoneinfo_parse(bytes, length, &fuzz_zones[index]) == 0);
    }
    fuzz_zones_loaded = true;
}

static bool fuzz_same_rule(const struct rrule *left, const struct rrule *right) {
    return left->freq == right->freq && left->interval == right->interval &&
           left->by_day_mask == right->by_day_mask &&
           left->by_month_day_mask == right->by_month_day_mask && left->count == right->count &&
           left->has_until == right->has_until && left->until_ns == right->until_ns &&
           left->until_is_date == right->until_is_date;
}

/* Parses; on success checks the format/parse round trip. Returns the rc. */
static int fuzz_parse(const char *text, size_t length, struct rrule *rule) {
    const char *message = NULL;
    int rc = rrule_parse(text, length, rule, &message);
    if (rc != 0) {
        CHECK(rc == ERR_PARSE);
        CHECK(message != NULL && message[0] != '\0');
        return rc;
    }
    CHECK(rule->interval >= 1 && rule->interval <= RRULE_INTERVAL_MAX);
    CHECK(rule->count >= 0 && rule->count <= RRULE_COUNT_MAX);
    CHECK(!(rule->count != 0 && rule->has_until));
    CHECK(rule->until_ns % 1000000000 == 0); /* UNTIL has whole seconds */
    char first[RRULE_TEXT_BYTES];
    int first_length = rrule_format(rule, first, sizeof first);
    CHECK(first_length > 0 && first_length < RRULE_TEXT_BYTES);
    CHECK((size_t)first_length == strlen(first));
    /* Exactly the text and its NUL fit; one byte less does not. */
    char tight[RRULE_TEXT_BYTES];
    CHECK(rrule_format(rule, tight, (size_t)first_length + 1) == first_length);
    CHECK(rrule_format(rule, tight, (size_t)first_length) == ERR_LIMIT);
    struct rrule back;
    CHECK(rrule_parse(first, (size_t)first_length, &back, NULL) == 0);
    CHECK(fuzz_same_rule(rule, &back));
    char second[RRULE_TEXT_BYTES];
    CHECK(rrule_format(&back, second, sizeof second) == first_length);
    CHECK(strcmp(first, second) == 0);
    return 0;
}

/* True when `found`'s local day is one the rule allows from `start`. */
static bool fuzz_day_allowed(const struct rrule *rule, const struct zoneinfo_civil *start,
                             const struct occurrence *found) {
    int64_t start_day = zoneinfo_days_from_civil(start->year, start->month, start->day);
    int64_t day = zoneinfo_days_from_civil(found->local.year, found->local.month, found->local.day);
    if (day < start_day)
        return false;
    switch (rule->freq) {
    case RRULE_FREQ_DAILY:
        return (day - start_day) % rule->interval == 0;
    case RRULE_FREQ_WEEKLY: {
        int weekday = (zoneinfo_weekday_from_days(day) + 6) % 7; /* Monday = 0 */
        int start_weekday = (zoneinfo_weekday_from_days(start_day) + 6) % 7;
        int mask = rule->by_day_mask != 0 ? rule->by_day_mask : 1 << start_weekday;
        int64_t weeks = ((day - weekday) - (start_day - start_weekday)) / 7;
        return (mask & (1 << weekday)) != 0 && weeks % rule->interval == 0;
    }
    case RRULE_FREQ_MONTHLY: {
        uint32_t mask =
            rule->by_month_day_mask != 0 ? rule->by_month_day_mask : UINT32_C(1) << start->day;
        int64_t months =
            (found->local.year * 12 + found->local.month) - (start->year * 12 + start->month);
        return (mask & (UINT32_C(1) << found->local.day)) != 0 && months % rule->interval == 0;
    }
    case RRULE_FREQ_YEARLY:
        return found->local.month == start->month && found->local.day == start->day &&
               (found->local.year - start->year) % rule->interval == 0;
    }
    return false;
}

/* Checks one occurrence against the rule and its predecessor. */
static void fuzz_check_occurrence(const struct rrule *rule, const struct zoneinfo_civil *start,
                                  const struct occurrence *found, int64_t index,
                                  const struct occurrence *previous) {
    CHECK(found->index == index);
    CHECK(found->local.hour == start->hour && found->local.minute == start->minute &&
          found->local.second == start->second);
    CHECK(fuzz_day_allowed(rule, start, found));
    if (rule->count > 0)
        CHECK(index < rule->count);
    if (rule->has_until)
        CHECK(found->utc_s <= rule->until_ns / 1000000000);
    if (previous != NULL)
        CHECK(found->utc_s > previous->utc_s);
}

/* Walks the first occurrences and cross-checks occurrence_after(). */
static void fuzz_series(const struct rrule *rule, const struct zoneinfo *zone,
                        const struct zoneinfo_civil *start) {
    struct occurrence found[FUZZ_OCCURRENCES];
    int count = 0;
    for (; count < FUZZ_OCCURRENCES; count++) {
        int rc = occurrence_nth(rule, zone, start, count, &found[count]);
        if (rc != 0) {
            CHECK(rc == ERR_NOTFOUND);
            break;
        }
        fuzz_check_occurrence(rule, start, &found[count], count,
                              count > 0 ? &found[count - 1] : NULL);
    }
    for (int index = 0; index < count; index++) {
        struct occurrence next;
        int rc = occurrence_after(rule, zone, start, found[index].utc_s - 1, &next);
        CHECK(rc == 0 && next.index == index && next.utc_s == found[index].utc_s);
        rc = occurrence_after(rule, zone, start, found[index].utc_s, &next);
        if (index + 1 < count) {
            CHECK(rc == 0 && next.index == index + 1 && next.utc_s == found[index + 1].utc_s);
        } else if (count < FUZZ_OCCURRENCES) {
            CHECK(rc == ERR_NOTFOUND); /* nth() found no occurrence `count` */
        }
    }
}

/* occurrence_after() at an instant derived from the input. */
static void fuzz_after(const struct rrule *rule, const struct zoneinfo *zone,
                       const struct zoneinfo_civil *start, int64_t after_s) {
    struct occurrence next;
    int rc = occurrence_after(rule, zone, start, after_s, &next);
    if (rc != 0) {
        CHECK(rc == ERR_NOTFOUND || rc == ERR_RANGE);
        if (rc == ERR_RANGE)
            CHECK(after_s < ZONEINFO_TIME_S_MIN + 2 * 86400 ||
                  after_s > ZONEINFO_TIME_S_MAX - 2 * 86400);
        return;
    }
    CHECK(next.utc_s > after_s && next.index >= 0);
    fuzz_check_occurrence(rule, start, &next, next.index, NULL);
    if (next.index < FUZZ_OCCURRENCES) {
        struct occurrence same;
        CHECK(occurrence_nth(rule, zone, start, next.index, &same) == 0);
        CHECK(same.utc_s == next.utc_s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < FUZZ_HEADER_BYTES)
        return 0;
    fuzz_load_zones();
    struct rrule rule;
    if (fuzz_parse((const char *)data + FUZZ_HEADER_BYTES, size - FUZZ_HEADER_BYTES, &rule) != 0)
        return 0;
    const struct zoneinfo *zone = &fuzz_zones[data[0] & 3];
    struct zoneinfo_civil start = {
        .year = FUZZ_YEAR_FIRST + ((data[1] << 8) | data[2]) % (10000 - FUZZ_YEAR_FIRST),
        .month = 1 + data[3] % 12,
        .day = 1 + data[4] % 31,
        .hour = data[5] % 24,
        .minute = data[6] % 60,
        .second = data[7] % 60,
    };
    struct occurrence first;
    int rc = occurrence_nth(&rule, zone, &start, 0, &first);
    if (start.day > zoneinfo_days_in_month(start.year, start.month)) {
        CHECK(rc == ERR_INVAL);
        return 0;
    }
    CHECK(rc == 0 || rc == ERR_NOTFOUND);
    fuzz_series(&rule, zone, &start);
    int32_t minutes = (int32_t)(((uint32_t)data[8] << 24) | ((uint32_t)data[9] << 16) |
                                ((uint32_t)data[10] << 8) | data[11]);
    int64_t start_s = zoneinfo_days_from_civil(start.year, start.month, start.day) * 86400 +
                      start.hour * 3600 + start.minute * 60 + start.second;
    fuzz_after(&rule, zone, &start, start_s + (int64_t)minutes * 60);
    return 0;
}
