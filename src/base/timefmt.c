/*
 * timefmt.c - RFC 3339 times and ISO 8601 durations, parsed and formatted.
 *
 * Calendar arithmetic uses Howard Hinnant's days_from_civil/civil_from_days
 * (proleptic Gregorian, exact for every year), so no libc time function, time
 * zone database or locale is involved. See timefmt.h for the accepted forms.
 */
#include "timefmt.h"

#include "check.h"
#include "err.h"
#include "limits.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define TIMEFMT_NS_PER_SECOND INT64_C(1000000000)
#define TIMEFMT_SECONDS_PER_DAY INT64_C(86400)

/* The longest valid date-time: "YYYY-MM-DDThh:mm:ss.fffffffff+hh:mm". */
#define TIMEFMT_TIME_TEXT_BYTES_MAX 35

/* Digits read for one duration part. 12 digits of weeks still fit an int64
 * after scaling; more can only be out of range. */
#define TIMEFMT_DURATION_DIGITS_MAX 12

static const char timefmt_message_time[] = "must be an RFC 3339 time, e.g. 2026-02-10T09:45:00Z";
static const char timefmt_message_month[] = "has a month outside 01..12";
static const char timefmt_message_day[] = "has a day that does not exist in that month";
static const char timefmt_message_hour[] = "has an hour outside 00..23";
static const char timefmt_message_minute[] = "has a minute outside 00..59";
static const char timefmt_message_second[] =
    "has a second outside 00..59 (leap seconds are not supported)";
static const char timefmt_message_fraction[] = "has more than 9 fractional digits";
static const char timefmt_message_offset[] = "has a UTC offset outside -23:59..+23:59";
static const char timefmt_message_range[] =
    "is outside the supported range 1677-09-21T00:12:44Z..2262-04-11T23:47:16Z";

static const char timefmt_message_duration[] = "must be an ISO 8601 duration, e.g. PT15M or P1D";
static const char timefmt_message_calendar[] =
    "uses years or months, which have no fixed length; use weeks or days, e.g. P30D";
static const char timefmt_message_decimal[] =
    "has a fractional part; use whole numbers, e.g. PT90M instead of PT1.5H";
static const char timefmt_message_weeks[] =
    "combines weeks with other parts; use days instead, e.g. P9D";
static const char timefmt_message_too_long[] = "is longer than 10 years";

static int timefmt_fail(int code, const char *text, const char **message) {
    if (message != NULL) *message = text;
    return code;
}

/* ---- Calendar ---------------------------------------------------------- */

static bool timefmt_is_leap_year(int64_t year) {
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int timefmt_days_in_month(int64_t year, int month) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    CHECK(month >= 1 && month <= 12);
    return month == 2 && timefmt_is_leap_year(year) ? 29 : days[month - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t timefmt_days_from_civil(int64_t year, int month, int day) {
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

/* The date of a day number; inverse of timefmt_days_from_civil. */
void timefmt_civil_from_days(int64_t days, int64_t *year, int *month, int *day) {
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t day_of_era = days - era * 146097;
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t month_index = (5 * day_of_year + 2) / 153;
    *day = (int)(day_of_year - (153 * month_index + 2) / 5 + 1);
    *month = (int)(month_index < 10 ? month_index + 3 : month_index - 9);
    *year = year_of_era + era * 400 + (*month <= 2);
}

static int64_t timefmt_floor_divide(int64_t value, int64_t divisor) {
    int64_t quotient = value / divisor;
    return value % divisor < 0 ? quotient - 1 : quotient;
}

/* ---- Times -------------------------------------------------------------- */

/* Reads exactly `count` ASCII digits at text[*position]. */
static bool timefmt_read_digits(const char *text, size_t length, size_t *position, int count,
                                int *value) {
    if (*position + (size_t)count > length) return false;
    int result = 0;
    for (int index = 0; index < count; index++) {
        char character = text[*position + (size_t)index];
        if (character < '0' || character > '9') return false;
        result = result * 10 + (character - '0');
    }
    *position += (size_t)count;
    *value = result;
    return true;
}

static bool timefmt_expect(const char *text, size_t length, size_t *position, char wanted) {
    if (*position >= length || text[*position] != wanted) return false;
    (*position)++;
    return true;
}

/* The fields of a date-time as written, before any range check. */
struct timefmt_fields {
    int year;                /* 0000..9999 */
    int month;               /* as written, 00..99 */
    int day;                 /* as written, 00..99 */
    int hour;                /* as written, 00..99 */
    int minute;              /* as written, 00..99 */
    int second;              /* as written, 00..99 */
    int64_t fraction_ns;     /* the fractional second scaled to nanoseconds */
    int fraction_digits;     /* digits after '.', 0 when absent */
    int offset_minutes;      /* signed UTC offset ("+01:00" is 60) */
    int offset_hour;         /* offset hours as written, for the range check */
    int offset_minute;       /* offset minutes as written, for the range check */
};

/* Reads "[.fraction]" at text[*position]; counts every digit so that too many
 * can be reported precisely. */
static void timefmt_read_fraction(const char *text, size_t length, size_t *position,
                                  struct timefmt_fields *fields) {
    fields->fraction_ns = 0;
    fields->fraction_digits = 0;
    if (*position >= length || text[*position] != '.') return;
    (*position)++;
    int64_t scale = TIMEFMT_NS_PER_SECOND;
    while (*position < length && text[*position] >= '0' && text[*position] <= '9') {
        if (fields->fraction_digits < 9) {
            scale /= 10;
            fields->fraction_ns += (text[*position] - '0') * scale;
        }
        fields->fraction_digits++;
        (*position)++;
    }
}

/* Reads "Z" or "±hh:mm" at text[*position]. */
static bool timefmt_read_offset(const char *text, size_t length, size_t *position,
                                struct timefmt_fields *fields) {
    fields->offset_minutes = 0;
    fields->offset_hour = 0;
    fields->offset_minute = 0;
    if (*position >= length) return false;
    char sign = text[(*position)++];
    if (sign == 'Z' || sign == 'z') return true;
    if (sign != '+' && sign != '-') return false;
    if (!timefmt_read_digits(text, length, position, 2, &fields->offset_hour)) return false;
    if (!timefmt_expect(text, length, position, ':')) return false;
    if (!timefmt_read_digits(text, length, position, 2, &fields->offset_minute)) return false;
    int minutes = fields->offset_hour * 60 + fields->offset_minute;
    fields->offset_minutes = sign == '-' ? -minutes : minutes;
    return true;
}

/* Reads the whole text into `fields`; false when it does not have the shape. */
static bool timefmt_read_time(const char *text, size_t length, struct timefmt_fields *fields) {
    size_t position = 0;
    bool shaped = timefmt_read_digits(text, length, &position, 4, &fields->year) &&
                  timefmt_expect(text, length, &position, '-') &&
                  timefmt_read_digits(text, length, &position, 2, &fields->month) &&
                  timefmt_expect(text, length, &position, '-') &&
                  timefmt_read_digits(text, length, &position, 2, &fields->day) &&
                  (timefmt_expect(text, length, &position, 'T') ||
                   timefmt_expect(text, length, &position, 't')) &&
                  timefmt_read_digits(text, length, &position, 2, &fields->hour) &&
                  timefmt_expect(text, length, &position, ':') &&
                  timefmt_read_digits(text, length, &position, 2, &fields->minute) &&
                  timefmt_expect(text, length, &position, ':') &&
                  timefmt_read_digits(text, length, &position, 2, &fields->second);
    if (!shaped) return false;
    timefmt_read_fraction(text, length, &position, fields);
    if (fields->fraction_digits == 0 && text[position - 1] == '.') return false;
    if (!timefmt_read_offset(text, length, &position, fields)) return false;
    return position == length;
}

/* Range checks in the order a person reads the text. NULL when all pass. */
static const char *timefmt_check_fields(const struct timefmt_fields *fields) {
    if (fields->month < 1 || fields->month > 12) return timefmt_message_month;
    if (fields->day < 1 || fields->day > timefmt_days_in_month(fields->year, fields->month)) {
        return timefmt_message_day;
    }
    if (fields->hour > 23) return timefmt_message_hour;
    if (fields->minute > 59) return timefmt_message_minute;
    if (fields->second > 59) return timefmt_message_second;
    if (fields->fraction_digits > 9) return timefmt_message_fraction;
    if (fields->offset_hour > 23 || fields->offset_minute > 59) return timefmt_message_offset;
    return NULL;
}

int timefmt_time_parse(const char *text, size_t length, int64_t *unix_ns, const char **message) {
    CHECK(unix_ns != NULL);
    /* A little longer than the longest valid text may still be a time with
     * too many fractional digits, which deserves its own message. */
    if (text == NULL || length > TIMEFMT_TIME_TEXT_BYTES_MAX + 16) {
        return timefmt_fail(ERR_PARSE, timefmt_message_time, message);
    }
    struct timefmt_fields fields;
    if (!timefmt_read_time(text, length, &fields)) {
        return timefmt_fail(ERR_PARSE, timefmt_message_time, message);
    }
    const char *problem = timefmt_check_fields(&fields);
    if (problem != NULL) return timefmt_fail(ERR_PARSE, problem, message);
    int64_t seconds = timefmt_days_from_civil(fields.year, fields.month, fields.day) *
                          TIMEFMT_SECONDS_PER_DAY +
                      fields.hour * 3600 + fields.minute * 60 + fields.second -
                      (int64_t)fields.offset_minutes * 60;
    /* Years 0..9999 keep `seconds` far inside int64; the nanosecond product
     * may not fit. A negative time with a fraction is built from the second
     * above it, so no intermediate product overflows near the lower end. */
    int64_t fraction_ns = fields.fraction_ns;
    if (seconds < 0 && fraction_ns > 0) {
        seconds += 1;
        fraction_ns -= TIMEFMT_NS_PER_SECOND;
    }
    int64_t result = 0;
    if (__builtin_mul_overflow(seconds, TIMEFMT_NS_PER_SECOND, &result) ||
        __builtin_add_overflow(result, fraction_ns, &result) || result < TIMEFMT_TIME_NS_MIN) {
        return timefmt_fail(ERR_RANGE, timefmt_message_range, message);
    }
    *unix_ns = result;
    return 0;
}

/* Writes `value` (0 <= value < 10^width) as exactly `width` digits. */
static char *timefmt_digits(char *out, int value, int width) {
    CHECK(value >= 0);
    for (int index = width - 1; index >= 0; index--) {
        out[index] = (char)('0' + value % 10);
        value /= 10;
    }
    CHECK(value == 0);
    return out + width;
}

int timefmt_time_format(int64_t unix_ns, char out[TIMEFMT_TIME_BYTES]) {
    CHECK(out != NULL);
    /* Split into seconds and a non-negative remainder without forming
     * seconds * 10^9, which overflows for the earliest int64 values. */
    int64_t seconds = unix_ns / TIMEFMT_NS_PER_SECOND;
    int64_t remainder_ns = unix_ns % TIMEFMT_NS_PER_SECOND;
    if (remainder_ns < 0) {
        seconds -= 1;
        remainder_ns += TIMEFMT_NS_PER_SECOND;
    }
    int64_t milliseconds = remainder_ns / 1000000;
    int64_t days = timefmt_floor_divide(seconds, TIMEFMT_SECONDS_PER_DAY);
    int64_t second_of_day = seconds - days * TIMEFMT_SECONDS_PER_DAY;
    int64_t year = 0;
    int month = 0;
    int day = 0;
    timefmt_civil_from_days(days, &year, &month, &day);
    CHECK(year >= 1677 && year <= 2262);
    CHECK(milliseconds >= 0 && milliseconds < 1000);
    int hour = (int)(second_of_day / 3600);
    int minute = (int)(second_of_day / 60 % 60);
    int second = (int)(second_of_day % 60);
    /* Digits by hand: this runs for every time in every response and event,
     * and snprintf cost a fifth of a task create. */
    char *cursor = out;
    cursor = timefmt_digits(cursor, (int)year, 4);
    *cursor++ = '-';
    cursor = timefmt_digits(cursor, month, 2);
    *cursor++ = '-';
    cursor = timefmt_digits(cursor, day, 2);
    *cursor++ = 'T';
    cursor = timefmt_digits(cursor, hour, 2);
    *cursor++ = ':';
    cursor = timefmt_digits(cursor, minute, 2);
    *cursor++ = ':';
    cursor = timefmt_digits(cursor, second, 2);
    if (milliseconds != 0) {
        *cursor++ = '.';
        cursor = timefmt_digits(cursor, (int)milliseconds, 3);
    }
    *cursor++ = 'Z';
    *cursor = '\0';
    int written = (int)(cursor - out);
    CHECK(written > 0 && written < TIMEFMT_TIME_BYTES);
    return written;
}

/* ---- Durations ---------------------------------------------------------- */

/* Designators in the order they may appear, each with its length in seconds
 * (0 for the ones rejected because their length varies). */
enum timefmt_part {
    TIMEFMT_PART_YEARS,
    TIMEFMT_PART_MONTHS,
    TIMEFMT_PART_WEEKS,
    TIMEFMT_PART_DAYS,
    TIMEFMT_PART_HOURS,
    TIMEFMT_PART_MINUTES,
    TIMEFMT_PART_SECONDS,
};

static const int64_t timefmt_part_seconds[] = {0, 0, 7 * 86400, 86400, 3600, 60, 1};

/* Maps a designator to its part, depending on which side of "T" it is on.
 * -1 for a character that is no designator there. */
static int timefmt_designator(char character, bool time_side) {
    if (!time_side) {
        if (character == 'Y') return TIMEFMT_PART_YEARS;
        if (character == 'M') return TIMEFMT_PART_MONTHS;
        if (character == 'W') return TIMEFMT_PART_WEEKS;
        if (character == 'D') return TIMEFMT_PART_DAYS;
        return -1;
    }
    if (character == 'H') return TIMEFMT_PART_HOURS;
    if (character == 'M') return TIMEFMT_PART_MINUTES;
    if (character == 'S') return TIMEFMT_PART_SECONDS;
    return -1;
}

/* The state of a duration being read. */
struct timefmt_duration_reader {
    const char *text;      /* the input */
    size_t length;         /* its length in bytes */
    size_t position;       /* next byte to read */
    bool time_side;        /* "T" seen */
    int parts_after_t;     /* parts read after "T" */
    int parts;             /* parts read in total */
    int last_part;         /* the last part read, -1 before the first */
    bool weeks;            /* a weeks part was read */
    int64_t total_seconds; /* sum so far; never overflows (see DIGITS_MAX) */
};

/* Reads one "<digits><designator>" part. 0, or ERR_* with *message set. */
static int timefmt_duration_part(struct timefmt_duration_reader *reader, const char **message) {
    int64_t value = 0;
    int digits = 0;
    while (reader->position < reader->length && reader->text[reader->position] >= '0' &&
           reader->text[reader->position] <= '9') {
        if (++digits > TIMEFMT_DURATION_DIGITS_MAX) {
            return timefmt_fail(ERR_RANGE, timefmt_message_too_long, message);
        }
        value = value * 10 + (reader->text[reader->position++] - '0');
    }
    if (digits == 0 || reader->position >= reader->length) {
        return timefmt_fail(ERR_PARSE, timefmt_message_duration, message);
    }
    char designator = reader->text[reader->position++];
    if (designator == '.' || designator == ',') {
        return timefmt_fail(ERR_PARSE, timefmt_message_decimal, message);
    }
    int part = timefmt_designator(designator, reader->time_side);
    if (part < 0 || part <= reader->last_part) {
        return timefmt_fail(ERR_PARSE, timefmt_message_duration, message);
    }
    if (part == TIMEFMT_PART_YEARS || part == TIMEFMT_PART_MONTHS) {
        return timefmt_fail(ERR_PARSE, timefmt_message_calendar, message);
    }
    if (part == TIMEFMT_PART_WEEKS) reader->weeks = true;
    if (reader->weeks && reader->parts > 0) {
        return timefmt_fail(ERR_PARSE, timefmt_message_weeks, message);
    }
    reader->last_part = part;
    reader->parts++;
    if (reader->time_side) reader->parts_after_t++;
    reader->total_seconds += value * timefmt_part_seconds[part];
    return 0;
}

int timefmt_duration_parse(const char *text, size_t length, int64_t *seconds,
                           const char **message) {
    CHECK(seconds != NULL);
    if (text == NULL || length < 2 || text[0] != 'P') {
        return timefmt_fail(ERR_PARSE, timefmt_message_duration, message);
    }
    struct timefmt_duration_reader reader = {
        .text = text, .length = length, .position = 1, .last_part = -1};
    /* Each part consumes at least two bytes, so this bounds the loop. */
    for (size_t round = 0; reader.position < length && round <= length; round++) {
        if (text[reader.position] == 'T') {
            if (reader.time_side) return timefmt_fail(ERR_PARSE, timefmt_message_duration, message);
            reader.time_side = true;
            reader.position++;
            continue;
        }
        if (reader.weeks) return timefmt_fail(ERR_PARSE, timefmt_message_weeks, message);
        int rc = timefmt_duration_part(&reader, message);
        if (rc != 0) return rc;
    }
    if (reader.parts == 0 || (reader.time_side && reader.parts_after_t == 0)) {
        return timefmt_fail(ERR_PARSE, timefmt_message_duration, message);
    }
    if (reader.total_seconds > LIMIT_DURATION_S_MAX) {
        return timefmt_fail(ERR_RANGE, timefmt_message_too_long, message);
    }
    *seconds = reader.total_seconds;
    return 0;
}

/* Writes a positive number in decimal followed by `designator`. */
static char *timefmt_part(char *out, int64_t value, char designator) {
    char digits[20];
    int count = 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    while (count > 0) *out++ = digits[--count];
    *out++ = designator;
    return out;
}

int timefmt_duration_format(int64_t seconds, char out[TIMEFMT_DURATION_BYTES]) {
    CHECK(out != NULL);
    CHECK(seconds >= 0 && seconds <= LIMIT_DURATION_S_MAX);
    if (seconds == 0) {
        memcpy(out, "PT0S", 5);
        return 4;
    }
    int64_t days = seconds / 86400;
    int64_t hours = seconds / 3600 % 24;
    int64_t minutes = seconds / 60 % 60;
    int64_t rest = seconds % 60;
    /* Every part fits: at most "P3653DT23H59M59S" (16 characters). By hand,
     * not snprintf: every reminder of every task passes through here. */
    char *cursor = out;
    *cursor++ = 'P';
    if (days > 0) cursor = timefmt_part(cursor, days, 'D');
    if (hours > 0 || minutes > 0 || rest > 0) *cursor++ = 'T';
    if (hours > 0) cursor = timefmt_part(cursor, hours, 'H');
    if (minutes > 0) cursor = timefmt_part(cursor, minutes, 'M');
    if (rest > 0) cursor = timefmt_part(cursor, rest, 'S');
    *cursor = '\0';
    int written = (int)(cursor - out);
    CHECK(written > 1 && written < TIMEFMT_DURATION_BYTES);
    return written;
}
