/*
 * recurrence.c - parsing and normalising the RRULE subset of recurrence.h.
 *
 * The text is split on ";" into NAME=VALUE parts; each name is looked up
 * case-insensitively in a table of supported parts (which also holds the
 * "given more than once" message, since messages must be static), then in a
 * table of RFC 5545 parts Docket knowingly does not support, so a client
 * hears "BYSETPOS is not supported" rather than "unknown part". Rules that
 * span parts (FREQ present, BYDAY only with WEEKLY, COUNT xor UNTIL) are
 * checked once every part is read. UNTIL's calendar checks are delegated to
 * timefmt_time_parse by rewriting the basic format into RFC 3339.
 */
#include "recurrence.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/limits.h"
#include "../base/timefmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Supported parts, in normalised order. */
enum rrule_key {
    RRULE_KEY_FREQ,
    RRULE_KEY_INTERVAL,
    RRULE_KEY_BYDAY,
    RRULE_KEY_BYMONTHDAY,
    RRULE_KEY_COUNT,
    RRULE_KEY_UNTIL,
    RRULE_KEY_TOTAL,
};

struct rrule_key_info {
    const char *name;      /* part name, uppercase */
    const char *duplicate; /* message when the part is given twice */
};

static const struct rrule_key_info rrule_keys[RRULE_KEY_TOTAL] = {
    [RRULE_KEY_FREQ] = {"FREQ", "FREQ is given more than once"},
    [RRULE_KEY_INTERVAL] = {"INTERVAL", "INTERVAL is given more than once"},
    [RRULE_KEY_BYDAY] = {"BYDAY", "BYDAY is given more than once"},
    [RRULE_KEY_BYMONTHDAY] = {"BYMONTHDAY", "BYMONTHDAY is given more than once"},
    [RRULE_KEY_COUNT] = {"COUNT", "COUNT is given more than once"},
    [RRULE_KEY_UNTIL] = {"UNTIL", "UNTIL is given more than once"},
};

/* RFC 5545 parts outside the subset, each with its own message. */
static const struct rrule_key_info rrule_unsupported[] = {
    {"BYSECOND", "BYSECOND is not supported"},
    {"BYMINUTE", "BYMINUTE is not supported"},
    {"BYHOUR", "BYHOUR is not supported (the time of day comes from the due date)"},
    {"BYWEEKNO", "BYWEEKNO is not supported"},
    {"BYYEARDAY", "BYYEARDAY is not supported"},
    {"BYMONTH", "BYMONTH is not supported"},
    {"BYSETPOS", "BYSETPOS is not supported"},
    {"WKST", "WKST is not supported (weeks start on Monday)"},
    {"RSCALE", "RSCALE is not supported"},
    {"SKIP", "SKIP is not supported"},
};

static const char *const rrule_day_names[7] = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"};

static const char *const rrule_freq_names[] = {
    [RRULE_FREQ_DAILY] = "DAILY",
    [RRULE_FREQ_WEEKLY] = "WEEKLY",
    [RRULE_FREQ_MONTHLY] = "MONTHLY",
    [RRULE_FREQ_YEARLY] = "YEARLY",
};

static const char rrule_message_empty[] = "must not be empty";
static const char rrule_message_too_long[] = "must be at most 256 bytes";
static const char rrule_message_prefix[] =
    "must not start with \"RRULE:\"; give only the parts, e.g. FREQ=WEEKLY;BYDAY=MO";
static const char rrule_message_part[] =
    "must be NAME=VALUE parts separated by \";\", e.g. FREQ=WEEKLY;BYDAY=MO";
static const char rrule_message_unknown[] =
    "has an unknown part; supported are FREQ, INTERVAL, BYDAY, BYMONTHDAY, COUNT and UNTIL";
static const char rrule_message_freq_missing[] = "must contain FREQ, e.g. FREQ=WEEKLY";
static const char rrule_message_freq[] = "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY";
static const char rrule_message_freq_small[] =
    "FREQ=SECONDLY, MINUTELY and HOURLY are not supported; use DAILY, WEEKLY, MONTHLY or YEARLY";
static const char rrule_message_interval[] = "INTERVAL must be a whole number from 1 to 1000";
static const char rrule_message_count[] = "COUNT must be a whole number from 1 to 10000";
static const char rrule_message_byday[] =
    "BYDAY must be a comma-separated list of MO, TU, WE, TH, FR, SA, SU";
static const char rrule_message_byday_ordinal[] =
    "BYDAY ordinals such as 1MO or -1FR are not supported";
static const char rrule_message_byday_freq[] = "BYDAY is only supported with FREQ=WEEKLY";
static const char rrule_message_bymonthday[] =
    "BYMONTHDAY must be a comma-separated list of days from 1 to 31";
static const char rrule_message_bymonthday_negative[] =
    "BYMONTHDAY days counted from the month's end (negative) are not supported";
static const char rrule_message_bymonthday_freq[] =
    "BYMONTHDAY is only supported with FREQ=MONTHLY";
static const char rrule_message_until[] =
    "UNTIL must be a UTC date-time YYYYMMDDTHHMMSSZ or a date YYYYMMDD";
static const char rrule_message_until_local[] =
    "UNTIL must be in UTC (end with \"Z\"), e.g. 20261231T235959Z";
static const char rrule_message_until_calendar[] = "UNTIL has a date or time that does not exist";
static const char rrule_message_until_range[] = "UNTIL must be between the years 1678 and 2261";
static const char rrule_message_count_until[] = "COUNT and UNTIL must not both be given";

static int rrule_fail(const char *text, const char **message) {
    if (message != NULL) *message = text;
    return ERR_PARSE;
}

const char *rrule_freq_name(enum rrule_freq freq) {
    if ((unsigned)freq >= sizeof rrule_freq_names / sizeof rrule_freq_names[0]) return "";
    return rrule_freq_names[freq];
}

static bool rrule_equals(const char *text, size_t length, const char *name) {
    return strlen(name) == length && strncasecmp(text, name, length) == 0;
}

static bool rrule_is_digit(char character) {
    return character >= '0' && character <= '9';
}

/* Reads a whole decimal number within min..max; false otherwise. At most
 * five digits are read, so the value cannot overflow. */
static bool rrule_number(const char *text, size_t length, int min, int max, int *out) {
    if (length == 0 || length > 5) return false;
    int value = 0;
    for (size_t index = 0; index < length; index++) {
        if (!rrule_is_digit(text[index])) return false;
        value = value * 10 + (text[index] - '0');
    }
    if (value < min || value > max) return false;
    *out = value;
    return true;
}

/* ---- Values ------------------------------------------------------------- */

static int rrule_parse_freq(const char *value, size_t length, struct rrule *out,
                            const char **message) {
    for (size_t index = 0; index < sizeof rrule_freq_names / sizeof rrule_freq_names[0];
         index++) {
        if (rrule_equals(value, length, rrule_freq_names[index])) {
            out->freq = (enum rrule_freq)index;
            return 0;
        }
    }
    if (rrule_equals(value, length, "SECONDLY") || rrule_equals(value, length, "MINUTELY") ||
        rrule_equals(value, length, "HOURLY")) {
        return rrule_fail(rrule_message_freq_small, message);
    }
    return rrule_fail(rrule_message_freq, message);
}

/* Calls back for each comma-separated item; stops at the first error. The
 * items are at most as many as the text's bytes, which the caller bounds. */
typedef int (*rrule_item_parser)(const char *item, size_t length, struct rrule *out,
                                 const char **message);

static int rrule_each_item(const char *value, size_t length, rrule_item_parser parse,
                           const char *empty_message, struct rrule *out, const char **message) {
    size_t start = 0;
    for (size_t index = 0; index <= length; index++) {
        if (index < length && value[index] != ',') continue;
        if (index == start) return rrule_fail(empty_message, message);
        int rc = parse(value + start, index - start, out, message);
        if (rc != 0) return rc;
        start = index + 1;
    }
    return 0;
}

static int rrule_parse_day(const char *item, size_t length, struct rrule *out,
                           const char **message) {
    for (int day = 0; day < 7; day++) {
        if (rrule_equals(item, length, rrule_day_names[day])) {
            out->by_day_mask |= (uint8_t)(1u << day);
            return 0;
        }
    }
    if (item[0] == '+' || item[0] == '-' || rrule_is_digit(item[0])) {
        return rrule_fail(rrule_message_byday_ordinal, message);
    }
    return rrule_fail(rrule_message_byday, message);
}

static int rrule_parse_month_day(const char *item, size_t length, struct rrule *out,
                                 const char **message) {
    if (item[0] == '-') return rrule_fail(rrule_message_bymonthday_negative, message);
    if (item[0] == '+') {
        item++;
        length--;
    }
    int day = 0;
    if (!rrule_number(item, length, 1, 31, &day)) {
        return rrule_fail(rrule_message_bymonthday, message);
    }
    out->by_month_day_mask |= UINT32_C(1) << day;
    return 0;
}

/* UNTIL: "YYYYMMDD" or "YYYYMMDDTHHMMSSZ", rewritten as RFC 3339 so that
 * timefmt applies the calendar rules and the int64 range. */
static int rrule_parse_until(const char *value, size_t length, struct rrule *out,
                             const char **message) {
    bool is_date = length == 8;
    if (length == 15 && (value[8] == 'T' || value[8] == 't')) {
        return rrule_fail(rrule_message_until_local, message);
    }
    if (!is_date && (length != 16 || (value[8] != 'T' && value[8] != 't') ||
                     (value[15] != 'Z' && value[15] != 'z'))) {
        return rrule_fail(rrule_message_until, message);
    }
    for (size_t index = 0; index < length; index++) {
        if (index == 8 || index == 15) continue;
        if (!rrule_is_digit(value[index])) return rrule_fail(rrule_message_until, message);
    }
    const char *time = is_date ? "000000" : value + 9;
    char text[32];
    int written = snprintf(text, sizeof text, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", value, value + 4,
                           value + 6, time, time + 2, time + 4);
    CHECK(written == 20);
    int64_t unix_ns = 0;
    int rc = timefmt_time_parse(text, (size_t)written, &unix_ns, NULL);
    if (rc == ERR_RANGE) return rrule_fail(rrule_message_until_range, message);
    if (rc != 0) return rrule_fail(rrule_message_until_calendar, message);
    out->has_until = true;
    out->until_ns = unix_ns;
    out->until_is_date = is_date;
    return 0;
}

static int rrule_parse_value(enum rrule_key key, const char *value, size_t length,
                             struct rrule *out, const char **message) {
    switch (key) {
    case RRULE_KEY_FREQ:
        return rrule_parse_freq(value, length, out, message);
    case RRULE_KEY_INTERVAL:
        if (!rrule_number(value, length, 1, RRULE_INTERVAL_MAX, &out->interval)) {
            return rrule_fail(rrule_message_interval, message);
        }
        return 0;
    case RRULE_KEY_BYDAY:
        return rrule_each_item(value, length, rrule_parse_day, rrule_message_byday, out,
                               message);
    case RRULE_KEY_BYMONTHDAY:
        return rrule_each_item(value, length, rrule_parse_month_day, rrule_message_bymonthday,
                               out, message);
    case RRULE_KEY_COUNT:
        if (!rrule_number(value, length, 1, RRULE_COUNT_MAX, &out->count)) {
            return rrule_fail(rrule_message_count, message);
        }
        return 0;
    case RRULE_KEY_UNTIL:
        return rrule_parse_until(value, length, out, message);
    case RRULE_KEY_TOTAL:
        break;
    }
    CHECK(!"unreachable rrule key");
    return ERR_PARSE;
}

/* ---- Parts -------------------------------------------------------------- */

/* Finds the part `name`: its key, or ERR_PARSE with the message for a part
 * that is unsupported or unknown. */
static int rrule_lookup(const char *name, size_t length, const char **message) {
    for (int key = 0; key < RRULE_KEY_TOTAL; key++) {
        if (rrule_equals(name, length, rrule_keys[key].name)) return key;
    }
    for (size_t index = 0; index < sizeof rrule_unsupported / sizeof rrule_unsupported[0];
         index++) {
        if (rrule_equals(name, length, rrule_unsupported[index].name)) {
            return rrule_fail(rrule_unsupported[index].duplicate, message);
        }
    }
    return rrule_fail(rrule_message_unknown, message);
}

/* Checks the rules that involve more than one part. */
static int rrule_check_combination(const struct rrule *rule, unsigned seen,
                                   const char **message) {
    if ((seen & (1u << RRULE_KEY_FREQ)) == 0) {
        return rrule_fail(rrule_message_freq_missing, message);
    }
    if (rule->by_day_mask != 0 && rule->freq != RRULE_FREQ_WEEKLY) {
        return rrule_fail(rrule_message_byday_freq, message);
    }
    if (rule->by_month_day_mask != 0 && rule->freq != RRULE_FREQ_MONTHLY) {
        return rrule_fail(rrule_message_bymonthday_freq, message);
    }
    if (rule->count != 0 && rule->has_until) return rrule_fail(rrule_message_count_until, message);
    return 0;
}

int rrule_parse(const char *text, size_t length, struct rrule *out, const char **message) {
    CHECK(out != NULL);
    CHECK(text != NULL || length == 0);
    memset(out, 0, sizeof *out);
    out->interval = 1;
    if (length == 0) return rrule_fail(rrule_message_empty, message);
    if (length > LIMIT_TASK_RRULE_BYTES) return rrule_fail(rrule_message_too_long, message);
    if (length >= 6 && strncasecmp(text, "RRULE:", 6) == 0) {
        return rrule_fail(rrule_message_prefix, message);
    }
    unsigned seen = 0;
    size_t start = 0;
    for (size_t index = 0; index <= length; index++) {
        if (index < length && text[index] != ';') continue;
        const char *part = text + start;
        size_t part_length = index - start;
        start = index + 1;
        const char *equals = memchr(part, '=', part_length);
        if (equals == NULL || equals == part) return rrule_fail(rrule_message_part, message);
        size_t name_length = (size_t)(equals - part);
        int key = rrule_lookup(part, name_length, message);
        if (key < 0) return key;
        if (seen & (1u << key)) return rrule_fail(rrule_keys[key].duplicate, message);
        seen |= 1u << key;
        int rc = rrule_parse_value((enum rrule_key)key, equals + 1, part_length - name_length - 1,
                                   out, message);
        if (rc != 0) return rc;
    }
    return rrule_check_combination(out, seen, message);
}

/* ---- Formatting --------------------------------------------------------- */

/* Appends to out[*used..size); false when it does not fit. */
static bool rrule_append(char *out, size_t size, size_t *used, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static bool rrule_append(char *out, size_t size, size_t *used, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    int written = vsnprintf(out + *used, size - *used, format, arguments);
    va_end(arguments);
    if (written < 0 || (size_t)written >= size - *used) return false;
    *used += (size_t)written;
    return true;
}

/* UNTIL in the basic format, from the RFC 3339 text timefmt writes. */
static bool rrule_append_until(const struct rrule *rule, char *out, size_t size, size_t *used) {
    int64_t seconds = rule->until_ns / 1000000000;
    if (rule->until_ns % 1000000000 < 0) seconds--;
    char text[TIMEFMT_TIME_BYTES];
    timefmt_time_format(seconds * 1000000000, text);
    /* text is "YYYY-MM-DDTHH:MM:SSZ" */
    if (rule->until_is_date) {
        return rrule_append(out, size, used, ";UNTIL=%.4s%.2s%.2s", text, text + 5, text + 8);
    }
    return rrule_append(out, size, used, ";UNTIL=%.4s%.2s%.2sT%.2s%.2s%.2sZ", text, text + 5,
                        text + 8, text + 11, text + 14, text + 17);
}

static bool rrule_append_lists(const struct rrule *rule, char *out, size_t size, size_t *used) {
    const char *separator = ";BYDAY=";
    for (int day = 0; day < 7; day++) {
        if ((rule->by_day_mask & (1u << day)) == 0) continue;
        if (!rrule_append(out, size, used, "%s%s", separator, rrule_day_names[day])) return false;
        separator = ",";
    }
    separator = ";BYMONTHDAY=";
    for (int day = 1; day <= 31; day++) {
        if ((rule->by_month_day_mask & (UINT32_C(1) << day)) == 0) continue;
        if (!rrule_append(out, size, used, "%s%d", separator, day)) return false;
        separator = ",";
    }
    return true;
}

int rrule_format(const struct rrule *rule, char *out, size_t size) {
    CHECK(rule != NULL && out != NULL);
    CHECK(rule->interval >= 1 && rule->interval <= RRULE_INTERVAL_MAX);
    if (size == 0) return ERR_LIMIT;
    size_t used = 0;
    out[0] = '\0';
    bool fits = rrule_append(out, size, &used, "FREQ=%s", rrule_freq_name(rule->freq));
    if (fits && rule->interval != 1) {
        fits = rrule_append(out, size, &used, ";INTERVAL=%d", rule->interval);
    }
    fits = fits && rrule_append_lists(rule, out, size, &used);
    if (fits && rule->count != 0) fits = rrule_append(out, size, &used, ";COUNT=%d", rule->count);
    if (fits && rule->has_until) fits = rrule_append_until(rule, out, size, &used);
    if (!fits) {
        out[0] = '\0';
        return ERR_LIMIT;
    }
    return (int)used;
}
