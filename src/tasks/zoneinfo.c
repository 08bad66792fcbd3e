/*
 * zoneinfo.c - TZif reader (RFC 8536) and UTC/local conversions.
 *
 * Layers, bottom up: proleptic Gregorian calendar arithmetic; a bounds-
 * checked byte reader; the TZif header and data blocks; the footer's POSIX
 * TZ string; evaluating that rule for a year; offset lookup and the walk
 * over offset changes that local-to-UTC conversion uses; file loading.
 * Nothing here reads the host's TZ or calls localtime(): the answer must
 * be the same on every host that has the same zone file.
 */
#include "zoneinfo.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/limits.h"
#include "../base/mem.h"
#include "../base/timefmt.h"
#include "timezone.h"
#include "tzdata.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECONDS_PER_DAY INT64_C(86400)

/* ---- Calendar ---------------------------------------------------------- */

/* The calendar arithmetic is timefmt's (base), shared with RFC 3339. */
int64_t zoneinfo_days_from_civil(int64_t year, int month, int day) {
    CHECK(month >= 1 && month <= 12);
    return timefmt_days_from_civil(year, month, day);
}

void zoneinfo_civil_from_days(int64_t days, int64_t *year, int *month, int *day) {
    timefmt_civil_from_days(days, year, month, day);
}

int zoneinfo_weekday_from_days(int64_t days) {
    /* 1970-01-01 was a Thursday (4). */
    return (int)(((days % 7) + 7 + 4) % 7);
}

static bool zoneinfo_is_leap(int64_t year) {
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int zoneinfo_days_in_month(int64_t year, int month) {
    static const int lengths[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    CHECK(month >= 1 && month <= 12);
    return lengths[month - 1] + (month == 2 && zoneinfo_is_leap(year) ? 1 : 0);
}

/* Division rounding toward minus infinity, for splitting negative times. */
static int64_t zoneinfo_floor_div(int64_t value, int64_t divisor) {
    int64_t quotient = value / divisor;
    return (value % divisor != 0 && value < 0) ? quotient - 1 : quotient;
}

/* ---- Byte reader --------------------------------------------------------- */

struct zoneinfo_reader {
    const uint8_t *bytes; /* the whole file */
    size_t length;        /* its size */
    size_t position;      /* next unread byte */
};

/* Points `*out` at the next `count` bytes; false when fewer remain. */
static bool zoneinfo_take(struct zoneinfo_reader *reader, size_t count, const uint8_t **out) {
    if (count > reader->length - reader->position)
        return false;
    *out = reader->bytes + reader->position;
    reader->position += count;
    return true;
}

static uint32_t zoneinfo_u32(const uint8_t *bytes) {
    return (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 | (uint32_t)bytes[2] << 8 |
           (uint32_t)bytes[3];
}

static int64_t zoneinfo_i64(const uint8_t *bytes) {
    uint64_t value = (uint64_t)zoneinfo_u32(bytes) << 32 | zoneinfo_u32(bytes + 4);
    return (int64_t)value;
}

/* ---- TZif header and data block ------------------------------------------ */

struct zoneinfo_header {
    int version;          /* 0 for v1, else the ASCII digit */
    uint32_t isut_count;  /* UT/local indicators */
    uint32_t isstd_count; /* standard/wall indicators */
    uint32_t leap_count;  /* leap-second records */
    uint32_t time_count;  /* transitions */
    uint32_t type_count;  /* local time types */
    uint32_t char_count;  /* abbreviation bytes */
};

static int zoneinfo_header_read(struct zoneinfo_reader *reader, struct zoneinfo_header *header) {
    const uint8_t *bytes = NULL;
    if (!zoneinfo_take(reader, 44, &bytes) || memcmp(bytes, "TZif", 4) != 0)
        return ERR_PARSE;
    header->version = bytes[4];
    if (header->version != 0 && (header->version < '2' || header->version > '4'))
        return ERR_PARSE;
    header->isut_count = zoneinfo_u32(bytes + 20);
    header->isstd_count = zoneinfo_u32(bytes + 24);
    header->leap_count = zoneinfo_u32(bytes + 28);
    header->time_count = zoneinfo_u32(bytes + 32);
    header->type_count = zoneinfo_u32(bytes + 36);
    header->char_count = zoneinfo_u32(bytes + 40);
    if (header->type_count == 0 || header->char_count == 0)
        return ERR_PARSE;
    if (header->isut_count != 0 && header->isut_count != header->type_count)
        return ERR_PARSE;
    if (header->isstd_count != 0 && header->isstd_count != header->type_count)
        return ERR_PARSE;
    if (header->type_count > ZONEINFO_TYPES_MAX)
        return ERR_LIMIT;
    if (header->time_count > ZONEINFO_TRANSITIONS_MAX)
        return ERR_LIMIT;
    /* Leap-second files count TAI-like seconds, not Unix time. */
    if (header->leap_count != 0)
        return ERR_UNSUPPORTED;
    if (header->char_count > ZONEINFO_FILE_BYTES)
        return ERR_LIMIT;
    return 0;
}

/* Bytes of a data block; the header's bounds keep this far from overflow. */
static size_t zoneinfo_block_size(const struct zoneinfo_header *header, size_t time_size) {
    return (size_t)header->time_count * (time_size + 1) + (size_t)header->type_count * 6 +
           header->char_count + header->isstd_count + header->isut_count;
}

static int zoneinfo_types_read(const uint8_t *bytes, const struct zoneinfo_header *header,
                               const uint8_t *chars, struct zoneinfo *zone) {
    /* Every abbreviation must end inside the block. */
    if (chars[header->char_count - 1] != '\0')
        return ERR_PARSE;
    for (uint32_t index = 0; index < header->type_count; index++) {
        const uint8_t *entry = bytes + (size_t)index * 6;
        int64_t offset = (int32_t)zoneinfo_u32(entry);
        if (offset < -ZONEINFO_OFFSET_S_MAX || offset > ZONEINFO_OFFSET_S_MAX)
            return ERR_PARSE;
        if (entry[4] > 1 || entry[5] >= header->char_count)
            return ERR_PARSE;
        zone->types[index].utc_offset_s = (int32_t)offset;
        zone->types[index].is_dst = entry[4] == 1;
    }
    zone->type_count = header->type_count;
    return 0;
}

static int zoneinfo_transitions_read(const uint8_t *times, const uint8_t *indices,
                                     const struct zoneinfo_header *header, size_t time_size,
                                     struct zoneinfo *zone) {
    size_t count = header->time_count;
    if (count == 0)
        return 0;
    zone->transitions = mem_calloc(count, sizeof zone->transitions[0]);
    if (zone->transitions == NULL)
        return ERR_NOMEM;
    for (size_t index = 0; index < count; index++) {
        const uint8_t *at = times + index * time_size;
        int64_t value = time_size == 8 ? zoneinfo_i64(at) : (int32_t)zoneinfo_u32(at);
        if (index > 0 && value <= zone->transitions[index - 1].at_s)
            return ERR_PARSE;
        if (indices[index] >= header->type_count)
            return ERR_PARSE;
        zone->transitions[index].at_s = value;
        zone->transitions[index].type = indices[index];
    }
    zone->transition_count = count;
    return 0;
}

static int zoneinfo_block_read(struct zoneinfo_reader *reader, const struct zoneinfo_header *header,
                               size_t time_size, struct zoneinfo *zone) {
    const uint8_t *times = NULL, *indices = NULL, *types = NULL, *chars = NULL;
    const uint8_t *isstd = NULL, *isut = NULL;
    if (!zoneinfo_take(reader, (size_t)header->time_count * time_size, &times) ||
        !zoneinfo_take(reader, header->time_count, &indices) ||
        !zoneinfo_take(reader, (size_t)header->type_count * 6, &types) ||
        !zoneinfo_take(reader, header->char_count, &chars) ||
        !zoneinfo_take(reader, header->isstd_count, &isstd) ||
        !zoneinfo_take(reader, header->isut_count, &isut))
        return ERR_PARSE;
    for (uint32_t index = 0; index < header->isstd_count; index++)
        if (isstd[index] > 1)
            return ERR_PARSE;
    for (uint32_t index = 0; index < header->isut_count; index++)
        if (isut[index] > 1)
            return ERR_PARSE;
    int rc = zoneinfo_types_read(types, header, chars, zone);
    if (rc != 0)
        return rc;
    return zoneinfo_transitions_read(times, indices, header, time_size, zone);
}

/* ---- Footer: POSIX TZ string --------------------------------------------- */

struct zoneinfo_text {
    const char *text; /* the TZ string, not NUL-terminated */
    size_t length;    /* its bytes */
    size_t position;  /* next unread byte */
};

static int zoneinfo_peek(const struct zoneinfo_text *text) {
    return text->position < text->length ? (unsigned char)text->text[text->position] : -1;
}

static bool zoneinfo_accept(struct zoneinfo_text *text, char character) {
    if (zoneinfo_peek(text) != character)
        return false;
    text->position++;
    return true;
}

static bool zoneinfo_alpha(int character) {
    return (character >= 'A' && character <= 'Z') || (character >= 'a' && character <= 'z');
}

static bool zoneinfo_digit(int character) {
    return character >= '0' && character <= '9';
}

/* A zone abbreviation: 3+ letters, or "<" 3+ of [A-Za-z0-9+-] ">". */
static int zoneinfo_tz_name(struct zoneinfo_text *text) {
    size_t start = text->position;
    if (zoneinfo_accept(text, '<')) {
        while (zoneinfo_alpha(zoneinfo_peek(text)) || zoneinfo_digit(zoneinfo_peek(text)) ||
               zoneinfo_peek(text) == '+' || zoneinfo_peek(text) == '-')
            text->position++;
        if (text->position - start - 1 < 3 || !zoneinfo_accept(text, '>'))
            return ERR_PARSE;
        return 0;
    }
    while (zoneinfo_alpha(zoneinfo_peek(text)))
        text->position++;
    return text->position - start >= 3 ? 0 : ERR_PARSE;
}

/* A number of 1..`digits_max` digits. */
static int zoneinfo_tz_number(struct zoneinfo_text *text, int digits_max, int *value) {
    int digits = 0;
    *value = 0;
    while (digits < digits_max && zoneinfo_digit(zoneinfo_peek(text))) {
        *value = *value * 10 + (zoneinfo_peek(text) - '0');
        text->position++;
        digits++;
    }
    return digits > 0 ? 0 : ERR_PARSE;
}

/* [+-]h[h[h]][:mm[:ss]] with hours at most `hours_max`, as signed seconds. */
static int zoneinfo_tz_time(struct zoneinfo_text *text, int hours_max, int32_t *seconds) {
    int sign = 1;
    if (zoneinfo_accept(text, '-'))
        sign = -1;
    else
        zoneinfo_accept(text, '+');
    int hours = 0, minutes = 0, secs = 0;
    if (zoneinfo_tz_number(text, hours_max >= 100 ? 3 : 2, &hours) != 0 || hours > hours_max)
        return ERR_PARSE;
    if (zoneinfo_accept(text, ':')) {
        if (zoneinfo_tz_number(text, 2, &minutes) != 0 || minutes > 59)
            return ERR_PARSE;
        if (zoneinfo_accept(text, ':')) {
            if (zoneinfo_tz_number(text, 2, &secs) != 0 || secs > 59)
                return ERR_PARSE;
        }
    }
    *seconds = sign * (hours * 3600 + minutes * 60 + secs);
    return 0;
}

/* A POSIX offset is hours west of UTC; we keep seconds east. */
static int zoneinfo_tz_offset(struct zoneinfo_text *text, int32_t *utc_offset_s) {
    int32_t west = 0;
    int rc = zoneinfo_tz_time(text, 24, &west);
    if (rc != 0)
        return rc;
    *utc_offset_s = -west;
    return 0;
}

/* Jn | n | Mm.w.d, then an optional "/time" (default 02:00). */
static int zoneinfo_tz_switch(struct zoneinfo_text *text, struct zoneinfo_switch *out) {
    memset(out, 0, sizeof *out);
    if (zoneinfo_accept(text, 'J')) {
        out->kind = ZONEINFO_DAY_JULIAN;
        if (zoneinfo_tz_number(text, 3, &out->day) != 0 || out->day < 1 || out->day > 365)
            return ERR_PARSE;
    } else if (zoneinfo_accept(text, 'M')) {
        out->kind = ZONEINFO_DAY_MONTH;
        if (zoneinfo_tz_number(text, 2, &out->month) != 0 || out->month < 1 || out->month > 12 ||
            !zoneinfo_accept(text, '.') || zoneinfo_tz_number(text, 1, &out->week) != 0 ||
            out->week < 1 || out->week > 5 || !zoneinfo_accept(text, '.') ||
            zoneinfo_tz_number(text, 1, &out->weekday) != 0 || out->weekday > 6)
            return ERR_PARSE;
    } else {
        out->kind = ZONEINFO_DAY_ORDINAL;
        if (zoneinfo_tz_number(text, 3, &out->day) != 0 || out->day > 365)
            return ERR_PARSE;
    }
    out->time_s = 2 * 3600;
    /* RFC 8536 section 3.3.1 extends the hour to -167..167. */
    if (zoneinfo_accept(text, '/'))
        return zoneinfo_tz_time(text, 167, &out->time_s);
    return 0;
}

/* std offset [dst [offset] ,start,end]. A DST name without a rule is
 * refused: POSIX leaves its rule to the implementation. */
static int zoneinfo_tz_parse(const char *string, size_t length, struct zoneinfo_rule *rule) {
    struct zoneinfo_text text = {.text = string, .length = length, .position = 0};
    memset(rule, 0, sizeof *rule);
    if (zoneinfo_tz_name(&text) != 0 || zoneinfo_tz_offset(&text, &rule->std_offset_s) != 0)
        return ERR_PARSE;
    rule->dst_offset_s = rule->std_offset_s;
    if (text.position == length)
        return 0;
    if (zoneinfo_tz_name(&text) != 0)
        return ERR_PARSE;
    rule->has_dst = true;
    rule->dst_offset_s = rule->std_offset_s + 3600;
    if (zoneinfo_peek(&text) != ',' && zoneinfo_tz_offset(&text, &rule->dst_offset_s) != 0)
        return ERR_PARSE;
    if (!zoneinfo_accept(&text, ',') || zoneinfo_tz_switch(&text, &rule->start) != 0 ||
        !zoneinfo_accept(&text, ',') || zoneinfo_tz_switch(&text, &rule->end) != 0)
        return ERR_PARSE;
    return text.position == length ? 0 : ERR_PARSE;
}

/* "\n" TZ "\n" and then the end of the file. */
static int zoneinfo_footer_read(struct zoneinfo_reader *reader, struct zoneinfo *zone) {
    const uint8_t *newline = NULL;
    if (!zoneinfo_take(reader, 1, &newline) || newline[0] != '\n')
        return ERR_PARSE;
    const char *start = (const char *)reader->bytes + reader->position;
    size_t remaining = reader->length - reader->position;
    const char *end = memchr(start, '\n', remaining);
    if (end == NULL)
        return ERR_PARSE;
    size_t length = (size_t)(end - start);
    if (length > ZONEINFO_FOOTER_BYTES)
        return ERR_LIMIT;
    if (length + 1 != remaining)
        return ERR_PARSE;
    reader->position = reader->length;
    /* An empty footer means no rule: the last transition's type goes on. */
    if (length == 0)
        return 0;
    int rc = zoneinfo_tz_parse(start, length, &zone->footer);
    if (rc != 0)
        return rc;
    zone->has_footer = true;
    return 0;
}

/* ---- Parsing a file ------------------------------------------------------ */

static int zoneinfo_parse_blocks(struct zoneinfo_reader *reader, struct zoneinfo *zone) {
    struct zoneinfo_header header;
    int rc = zoneinfo_header_read(reader, &header);
    if (rc != 0)
        return rc;
    if (header.version == 0) {
        rc = zoneinfo_block_read(reader, &header, 4, zone);
        if (rc == 0 && reader->position != reader->length)
            rc = ERR_PARSE;
        return rc;
    }
    /* v2+: the 32-bit block is only for old readers; skip it. */
    const uint8_t *skipped = NULL;
    if (!zoneinfo_take(reader, zoneinfo_block_size(&header, 4), &skipped))
        return ERR_PARSE;
    struct zoneinfo_header second;
    rc = zoneinfo_header_read(reader, &second);
    if (rc != 0)
        return rc;
    if (second.version == 0)
        return ERR_PARSE;
    rc = zoneinfo_block_read(reader, &second, 8, zone);
    if (rc != 0)
        return rc;
    return zoneinfo_footer_read(reader, zone);
}

int zoneinfo_parse(const uint8_t *bytes, size_t length, struct zoneinfo *zone) {
    CHECK(zone != NULL);
    CHECK(bytes != NULL || length == 0);
    memset(zone, 0, sizeof *zone);
    struct zoneinfo_reader reader = {.bytes = bytes, .length = length, .position = 0};
    int rc = length > ZONEINFO_FILE_BYTES ? ERR_LIMIT : zoneinfo_parse_blocks(&reader, zone);
    if (rc != 0)
        goto fail;
    CHECK(zone->type_count >= 1);
    return 0;
fail:
    zoneinfo_free(zone);
    return rc;
}

void zoneinfo_free(struct zoneinfo *zone) {
    if (zone == NULL)
        return;
    mem_free(zone->transitions);
    memset(zone, 0, sizeof *zone);
}

/* ---- Footer rule evaluation ---------------------------------------------- */

/* Days since 1970-01-01 of the day a switch names in `year`. */
static int64_t zoneinfo_switch_day(const struct zoneinfo_switch *rule, int64_t year) {
    int64_t january_first = zoneinfo_days_from_civil(year, 1, 1);
    if (rule->kind == ZONEINFO_DAY_JULIAN) {
        /* Jn never counts February 29: day 60 is always March 1. */
        int leap_day = zoneinfo_is_leap(year) && rule->day >= 60 ? 1 : 0;
        return january_first + rule->day - 1 + leap_day;
    }
    if (rule->kind == ZONEINFO_DAY_ORDINAL)
        return january_first + rule->day;
    int64_t first = zoneinfo_days_from_civil(year, rule->month, 1);
    int offset = (rule->weekday - zoneinfo_weekday_from_days(first) + 7) % 7;
    offset += (rule->week - 1) * 7;
    /* Week 5 means the last such weekday of the month. */
    while (offset >= zoneinfo_days_in_month(year, rule->month))
        offset -= 7;
    return first + offset;
}

/* The UTC instants at which `year`'s DST starts and ends. The start is
 * given in standard time, the end in daylight time (POSIX). */
static void zoneinfo_rule_year(const struct zoneinfo_rule *rule, int64_t year, int64_t *start_s,
                               int64_t *end_s) {
    *start_s = zoneinfo_switch_day(&rule->start, year) * SECONDS_PER_DAY + rule->start.time_s -
               rule->std_offset_s;
    *end_s = zoneinfo_switch_day(&rule->end, year) * SECONDS_PER_DAY + rule->end.time_s -
             rule->dst_offset_s;
}

static int64_t zoneinfo_year_of(int64_t utc_s) {
    int64_t year = 0;
    int month = 0, day = 0;
    zoneinfo_civil_from_days(zoneinfo_floor_div(utc_s, SECONDS_PER_DAY), &year, &month, &day);
    return year;
}

/* DST or not at `utc_s`: the state after the latest switch at or before
 * it. Switches lie within a week of their year (rule times are at most 167
 * hours), so the years around `utc_s` always hold one. On equal instants
 * the start wins, which makes "all-year DST" (end of one year == start of
 * the next, RFC 8536 section 3.3.1) DST throughout. */
static bool zoneinfo_rule_is_dst(const struct zoneinfo_rule *rule, int64_t utc_s) {
    if (!rule->has_dst)
        return false;
    int64_t year = zoneinfo_year_of(utc_s);
    bool found = false, is_dst = false;
    int64_t latest = 0;
    for (int64_t candidate = year - 2; candidate <= year + 1; candidate++) {
        int64_t start_s = 0, end_s = 0;
        zoneinfo_rule_year(rule, candidate, &start_s, &end_s);
        if (end_s <= utc_s && (!found || end_s > latest)) {
            latest = end_s, is_dst = false, found = true;
        }
        if (start_s <= utc_s && (!found || start_s >= latest)) {
            latest = start_s, is_dst = true, found = true;
        }
    }
    return is_dst;
}

/* The first switch strictly after `utc_s`; false when the rule has none. */
static bool zoneinfo_rule_next(const struct zoneinfo_rule *rule, int64_t utc_s, int64_t *at_s) {
    if (!rule->has_dst)
        return false;
    int64_t year = zoneinfo_year_of(utc_s);
    bool found = false;
    for (int64_t candidate = year - 1; candidate <= year + 2; candidate++) {
        int64_t times[2];
        zoneinfo_rule_year(rule, candidate, &times[0], &times[1]);
        for (int index = 0; index < 2; index++) {
            if (times[index] > utc_s && (!found || times[index] < *at_s)) {
                *at_s = times[index];
                found = true;
            }
        }
    }
    return found;
}

/* ---- Lookups ------------------------------------------------------------- */

/* Index of the last transition at or before `utc_s`; the first is known to
 * be at or before it. */
static size_t zoneinfo_transition_index(const struct zoneinfo *zone, int64_t utc_s) {
    size_t low = 0, high = zone->transition_count;
    while (high - low > 1) {
        size_t middle = low + (high - low) / 2;
        if (zone->transitions[middle].at_s <= utc_s)
            low = middle;
        else
            high = middle;
    }
    return low;
}

/* Offset and DST flag at any instant (no range check). Before the first
 * transition type 0 applies (RFC 8536 section 3.2), from the last one on
 * the footer rule when there is one. */
static void zoneinfo_lookup(const struct zoneinfo *zone, int64_t utc_s, int32_t *offset_s,
                            bool *is_dst) {
    size_t count = zone->transition_count;
    const struct zoneinfo_type *type = &zone->types[0];
    if (zone->has_footer && (count == 0 || utc_s >= zone->transitions[count - 1].at_s)) {
        *is_dst = zoneinfo_rule_is_dst(&zone->footer, utc_s);
        *offset_s = *is_dst ? zone->footer.dst_offset_s : zone->footer.std_offset_s;
        return;
    }
    if (count > 0 && utc_s >= zone->transitions[0].at_s)
        type = &zone->types[zone->transitions[zoneinfo_transition_index(zone, utc_s)].type];
    *offset_s = type->utc_offset_s;
    *is_dst = type->is_dst;
}

/* The first instant after `utc_s` at which the offset may change. */
static bool zoneinfo_next_change(const struct zoneinfo *zone, int64_t utc_s, int64_t *at_s) {
    size_t count = zone->transition_count;
    if (count > 0 && utc_s < zone->transitions[count - 1].at_s) {
        size_t index =
            utc_s < zone->transitions[0].at_s ? 0 : zoneinfo_transition_index(zone, utc_s) + 1;
        *at_s = zone->transitions[index].at_s;
        return true;
    }
    return zone->has_footer && zoneinfo_rule_next(&zone->footer, utc_s, at_s);
}

int zoneinfo_utc_offset(const struct zoneinfo *zone, int64_t utc_s, int32_t *offset_s,
                        bool *is_dst) {
    CHECK(zone != NULL && zone->type_count >= 1 && offset_s != NULL);
    if (utc_s < ZONEINFO_TIME_S_MIN || utc_s > ZONEINFO_TIME_S_MAX)
        return ERR_RANGE;
    bool dst = false;
    zoneinfo_lookup(zone, utc_s, offset_s, &dst);
    if (is_dst != NULL)
        *is_dst = dst;
    return 0;
}

int zoneinfo_utc_to_local(const struct zoneinfo *zone, int64_t utc_s,
                          struct zoneinfo_civil *local) {
    CHECK(local != NULL);
    int32_t offset_s = 0;
    int rc = zoneinfo_utc_offset(zone, utc_s, &offset_s, NULL);
    if (rc != 0)
        return rc;
    int64_t local_s = utc_s + offset_s;
    int64_t days = zoneinfo_floor_div(local_s, SECONDS_PER_DAY);
    int64_t second_of_day = local_s - days * SECONDS_PER_DAY;
    zoneinfo_civil_from_days(days, &local->year, &local->month, &local->day);
    local->hour = (int)(second_of_day / 3600);
    local->minute = (int)(second_of_day / 60 % 60);
    local->second = (int)(second_of_day % 60);
    return 0;
}

/* ---- Local to UTC -------------------------------------------------------- */

/* What the walk over the offset segments around a local time found. */
struct zoneinfo_match {
    int count;        /* instants whose local time is the one asked */
    int64_t first_s;  /* the earliest of them */
    int32_t before_s; /* offset of the last segment starting (locally) at or before it */
};

/* Walks the segments of constant offset between two days before and two
 * days after `local_s` (read as UTC); with offsets under 26 hours every
 * instant showing `local_s` lies in that window. A segment [start, end)
 * with offset o shows local times [start + o, end + o). */
static int zoneinfo_match(const struct zoneinfo *zone, int64_t local_s,
                          struct zoneinfo_match *match) {
    int64_t start_s = local_s - 2 * SECONDS_PER_DAY;
    int64_t window_end_s = local_s + 2 * SECONDS_PER_DAY;
    memset(match, 0, sizeof *match);
    for (int segment = 0; segment <= ZONEINFO_WINDOW_CHANGES_MAX; segment++) {
        int32_t offset_s = 0;
        bool is_dst = false;
        zoneinfo_lookup(zone, start_s, &offset_s, &is_dst);
        int64_t end_s = window_end_s;
        if (zoneinfo_next_change(zone, start_s, &end_s) && end_s > window_end_s)
            end_s = window_end_s;
        if (start_s + offset_s <= local_s)
            match->before_s = offset_s;
        if (local_s >= start_s + offset_s && local_s < end_s + offset_s) {
            if (match->count == 0)
                match->first_s = local_s - offset_s;
            match->count++;
        }
        if (end_s >= window_end_s)
            return 0;
        start_s = end_s;
    }
    return ERR_LIMIT;
}

static bool zoneinfo_civil_valid(const struct zoneinfo_civil *local) {
    return local->month >= 1 && local->month <= 12 && local->day >= 1 &&
           local->day <= zoneinfo_days_in_month(local->year, local->month) && local->hour >= 0 &&
           local->hour <= 23 && local->minute >= 0 && local->minute <= 59 && local->second >= 0 &&
           local->second <= 59;
}

int zoneinfo_local_to_utc(const struct zoneinfo *zone, const struct zoneinfo_civil *local,
                          enum zoneinfo_policy policy, int64_t *utc_s) {
    CHECK(zone != NULL && zone->type_count >= 1 && local != NULL && utc_s != NULL);
    if (local->year < 1 || local->year > 9999)
        return ERR_RANGE;
    if (!zoneinfo_civil_valid(local))
        return ERR_INVAL;
    int64_t local_s =
        zoneinfo_days_from_civil(local->year, local->month, local->day) * SECONDS_PER_DAY +
        local->hour * 3600 + local->minute * 60 + local->second;
    struct zoneinfo_match match;
    int rc = zoneinfo_match(zone, local_s, &match);
    if (rc != 0)
        return rc;
    if (match.count != 1 && policy == ZONEINFO_POLICY_STRICT)
        return ERR_RANGE;
    /* Fold: the earlier instant. Gap: the offset before the change, which
     * lands after it (RFC 5545 section 3.3.5). */
    int64_t result = match.count > 0 ? match.first_s : local_s - match.before_s;
    if (result < ZONEINFO_TIME_S_MIN || result > ZONEINFO_TIME_S_MAX)
        return ERR_RANGE;
    *utc_s = result;
    return 0;
}

/* ---- Loading ------------------------------------------------------------- */

static int zoneinfo_read_file(int fd, uint8_t **bytes, size_t *length) {
    struct stat status;
    if (fstat(fd, &status) != 0)
        return err_from_errno(errno);
    if (!S_ISREG(status.st_mode))
        return ERR_IO;
    if (status.st_size > ZONEINFO_FILE_BYTES)
        return ERR_LIMIT;
    size_t size = (size_t)status.st_size;
    uint8_t *buffer = mem_alloc(size > 0 ? size : 1);
    if (buffer == NULL)
        return ERR_NOMEM;
    size_t got = 0;
    while (got < size) {
        ssize_t count = read(fd, buffer + got, size - got);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            break;
        got += (size_t)count;
    }
    if (got != size) {
        mem_free(buffer);
        return ERR_IO;
    }
    *bytes = buffer;
    *length = size;
    return 0;
}

int zoneinfo_load_at(const char *directory, const char *name, struct zoneinfo *zone) {
    CHECK(directory != NULL && zone != NULL);
    memset(zone, 0, sizeof *zone);
    uint8_t *bytes = NULL;
    size_t length = 0;
    int fd = -1;
    int rc = ERR_INVAL;
    size_t directory_length = strlen(directory);
    if (name == NULL || directory_length > TIMEZONE_DIRECTORY_BYTES)
        goto fail;
    size_t name_length = strlen(name);
    if (!timezone_is_valid(name, name_length))
        goto fail;
    char path[TIMEZONE_DIRECTORY_BYTES + 1 + LIMIT_TIMEZONE_NAME_BYTES + 1];
    CHECK(name_length <= LIMIT_TIMEZONE_NAME_BYTES);
    memcpy(path, directory, directory_length);
    path[directory_length] = '/';
    memcpy(path + directory_length + 1, name, name_length + 1);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        rc = errno == ENOENT || errno == ENOTDIR ? ERR_NOTFOUND : err_from_errno(errno);
        goto fail;
    }
    rc = zoneinfo_read_file(fd, &bytes, &length);
    if (rc != 0)
        goto fail;
    rc = zoneinfo_parse(bytes, length, zone);
fail:
    if (fd >= 0)
        close(fd);
    mem_free(bytes);
    return rc;
}

/* The host's file first (the OS keeps it current), then the embedded
 * tzdata for a valid name the host lacks, or for a host without the
 * directory at all. */
int zoneinfo_load(const char *name, struct zoneinfo *zone) {
    int rc = zoneinfo_load_at(timezone_directory_get(), name, zone);
    if (rc != ERR_NOTFOUND)
        return rc;
    const uint8_t *bytes = NULL;
    size_t length = 0;
    if (tzdata_find(name, &bytes, &length) != 0)
        return ERR_NOTFOUND;
    return zoneinfo_parse(bytes, length, zone);
}
