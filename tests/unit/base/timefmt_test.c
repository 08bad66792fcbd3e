/* timefmt_test.c - proves RFC 3339 times parse to the right Unix nanoseconds
 * (offsets, fractions, leap years, both ends of the int64 range), that every
 * malformed or impossible time is rejected with the message naming its
 * problem, that formatting is the documented canonical UTC form and
 * round-trips, and the same for ISO 8601 durations. */
#include "../../../src/base/err.h"
#include "../../../src/base/limits.h"
#include "../../../src/base/timefmt.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

#define NS INT64_C(1000000000)

static int parse_time(const char *text, int64_t *unix_ns, const char **message) {
    return timefmt_time_parse(text, strlen(text), unix_ns, message);
}

static int parse_duration(const char *text, int64_t *seconds, const char **message) {
    return timefmt_duration_parse(text, strlen(text), seconds, message);
}

struct time_vector {
    const char *text;  /* input */
    int64_t unix_ns;   /* expected result */
};

TEST(timefmt_parses_valid_times) {
    static const struct time_vector vectors[] = {
        {"2026-02-10T09:45:00Z", 1770716700 * NS},
        {"2026-02-10t09:45:00z", 1770716700 * NS},
        {"2026-02-10T10:45:00+01:00", 1770716700 * NS},
        {"2026-02-10T04:15:00-05:30", 1770716700 * NS},
        {"2026-02-10T09:45:00-00:00", 1770716700 * NS},
        {"2026-02-10T09:45:00+00:00", 1770716700 * NS},
        {"2026-02-11T09:44:00+23:59", 1770716700 * NS},
        {"2026-02-10T09:45:00.5Z", 1770716700 * NS + 500000000},
        {"2026-02-10T09:45:00.123Z", 1770716700 * NS + 123000000},
        {"2026-02-10T09:45:00.123456789Z", 1770716700 * NS + 123456789},
        {"2026-02-10T09:45:00.000000001Z", 1770716700 * NS + 1},
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.999999999Z", -1},
        {"2024-02-29T12:00:00Z", 1709208000 * NS},
        {"2000-02-29T00:00:00Z", 951782400 * NS},
        {"1900-03-01T00:00:00Z", -2203891200 * NS},
        {"1677-09-21T00:12:44Z", TIMEFMT_TIME_NS_MIN},
        {"1677-09-21T00:12:44.000000001Z", TIMEFMT_TIME_NS_MIN + 1},
        {"2262-04-11T23:47:16.854775807Z", INT64_MAX},
        {"2262-04-12T00:47:16.854775807+01:00", INT64_MAX},
    };
    for (size_t index = 0; index < sizeof vectors / sizeof vectors[0]; index++) {
        int64_t unix_ns = 42;
        const char *message = NULL;
        EXPECT_EQ_INT(parse_time(vectors[index].text, &unix_ns, &message), 0);
        EXPECT(unix_ns == vectors[index].unix_ns);
        EXPECT(message == NULL);
    }
}

struct time_error {
    const char *text;    /* input */
    int code;            /* expected error */
    const char *message; /* expected message prefix */
};

TEST(timefmt_rejects_invalid_times_precisely) {
    static const struct time_error errors[] = {
        {"", ERR_PARSE, "must be an RFC 3339 time, e.g. 2026-02-10T09:45:00Z"},
        {"2026-02-10 09:45:00Z", ERR_PARSE, "must be an RFC 3339"},
        {"2026-02-10T09:45Z", ERR_PARSE, "must be an RFC 3339"},
        {"2026-02-10T09:45:00", ERR_PARSE, "must be an RFC 3339"},
        {"2026-02-10", ERR_PARSE, "must be an RFC 3339"},
        {"2026-2-10T09:45:00Z", ERR_PARSE, "must be an RFC 3339"},
        {"+2026-02-10T09:45:00Z", ERR_PARSE, "must be an RFC 3339"},
        {" 2026-02-10T09:45:00Z", ERR_PARSE, "must be an RFC 3339"},
        {"2026-02-10T09:45:00Z ", ERR_PARSE, "must be an RFC 3339"},
        {"2026-02-10T09:45:00.Z", ERR_PARSE, "must be an RFC 3339"},
        {"2026-02-10T09:45:00,5Z", ERR_PARSE, "must be an RFC 3339"},
        {"2026-02-10T09:45:00+0100", ERR_PARSE, "must be an RFC 3339"},
        {"2026-02-10T09:45:00+01", ERR_PARSE, "must be an RFC 3339"},
        {"2026-02-10T09:45:00UTC", ERR_PARSE, "must be an RFC 3339"},
        {"2026-02-10T09:45:00ZZ", ERR_PARSE, "must be an RFC 3339"},
        {"2026-02-10X09:45:00Z", ERR_PARSE, "must be an RFC 3339"},
        {"2026-02-10T09:45:00.123456789012345678901234567890Z", ERR_PARSE, "has more than 9"},
        {"2026-02-10T09:45:00.1234567890123456789012345678901234567890Z", ERR_PARSE,
         "must be an RFC 3339"},
        {"2026-00-10T09:45:00Z", ERR_PARSE, "has a month outside 01..12"},
        {"2026-13-10T09:45:00Z", ERR_PARSE, "has a month outside 01..12"},
        {"2026-02-00T09:45:00Z", ERR_PARSE, "has a day that does not exist"},
        {"2026-02-29T09:45:00Z", ERR_PARSE, "has a day that does not exist"},
        {"2026-02-30T09:45:00Z", ERR_PARSE, "has a day that does not exist"},
        {"1900-02-29T09:45:00Z", ERR_PARSE, "has a day that does not exist"},
        {"2100-02-29T09:45:00Z", ERR_PARSE, "has a day that does not exist"},
        {"2026-04-31T09:45:00Z", ERR_PARSE, "has a day that does not exist"},
        {"2026-01-32T09:45:00Z", ERR_PARSE, "has a day that does not exist"},
        {"2026-02-10T24:00:00Z", ERR_PARSE, "has an hour outside 00..23"},
        {"2026-02-10T09:60:00Z", ERR_PARSE, "has a minute outside 00..59"},
        {"2026-12-31T23:59:60Z", ERR_PARSE, "has a second outside 00..59"},
        {"2026-02-10T09:45:00.1234567890Z", ERR_PARSE, "has more than 9 fractional digits"},
        {"2026-02-10T09:45:00+24:00", ERR_PARSE, "has a UTC offset outside"},
        {"2026-02-10T09:45:00+01:60", ERR_PARSE, "has a UTC offset outside"},
        {"2262-04-11T23:47:16.854775808Z", ERR_RANGE, "is outside the supported range"},
        {"1677-09-21T00:12:43.999999999Z", ERR_RANGE, "is outside the supported range"},
        {"1677-09-21T00:12:43.145224192Z", ERR_RANGE, "is outside the supported range"},
        {"9999-12-31T23:59:59Z", ERR_RANGE, "is outside the supported range"},
        {"0000-01-01T00:00:00Z", ERR_RANGE, "is outside the supported range"},
    };
    for (size_t index = 0; index < sizeof errors / sizeof errors[0]; index++) {
        int64_t unix_ns = 42;
        const char *message = NULL;
        EXPECT_EQ_INT(parse_time(errors[index].text, &unix_ns, &message), errors[index].code);
        EXPECT(message != NULL);
        EXPECT(strncmp(message, errors[index].message, strlen(errors[index].message)) == 0);
        EXPECT(unix_ns == 42);
    }
    int64_t unix_ns = 0;
    EXPECT_EQ_INT(timefmt_time_parse("2026-02-10T09:45:00Z\0", 21, &unix_ns, NULL), ERR_PARSE);
    EXPECT_EQ_INT(timefmt_time_parse("2026-02-10T09:45:00Z", 19, &unix_ns, NULL), ERR_PARSE);
    EXPECT_EQ_INT(timefmt_time_parse(NULL, 0, &unix_ns, NULL), ERR_PARSE);
}

TEST(timefmt_formats_utc_with_optional_milliseconds) {
    char out[TIMEFMT_TIME_BYTES];
    EXPECT_EQ_INT(timefmt_time_format(0, out), 20);
    EXPECT_STR(out, "1970-01-01T00:00:00Z");
    EXPECT_EQ_INT(timefmt_time_format(1770716700 * NS, out), 20);
    EXPECT_STR(out, "2026-02-10T09:45:00Z");
    EXPECT_EQ_INT(timefmt_time_format(1770716700 * NS + 123456789, out), 24);
    EXPECT_STR(out, "2026-02-10T09:45:00.123Z");
    EXPECT_EQ_INT(timefmt_time_format(1770716700 * NS + 999999, out), 20);
    EXPECT_STR(out, "2026-02-10T09:45:00Z");
    timefmt_time_format(1770716700 * NS + 1000000, out);
    EXPECT_STR(out, "2026-02-10T09:45:00.001Z");
    timefmt_time_format(-1, out);
    EXPECT_STR(out, "1969-12-31T23:59:59.999Z");
    timefmt_time_format(INT64_MIN, out);
    EXPECT_STR(out, "1677-09-21T00:12:43.145Z");
    timefmt_time_format(INT64_MAX, out);
    EXPECT_STR(out, "2262-04-11T23:47:16.854Z");
    timefmt_time_format(1709208000 * NS, out);
    EXPECT_STR(out, "2024-02-29T12:00:00Z");
}

/* Every day between the ends of the range, and the last instant of each,
 * formats and parses back: the calendar conversions are inverses. */
TEST(timefmt_round_trips_every_day_of_the_range) {
    const int64_t first_day = TIMEFMT_TIME_NS_MIN / NS / 86400;
    const int64_t last_day = INT64_MAX / NS / 86400 - 1;
    for (int64_t day = first_day; day <= last_day; day++) {
        int64_t values[2] = {day * 86400 * NS, (day * 86400 + 86399) * NS + 999000000};
        for (int which = 0; which < 2; which++) {
            char out[TIMEFMT_TIME_BYTES];
            int length = timefmt_time_format(values[which], out);
            int64_t back = 0;
            EXPECT_EQ_INT(timefmt_time_parse(out, (size_t)length, &back, NULL), 0);
            EXPECT(back == values[which]);
        }
    }
}

TEST(timefmt_round_trip_truncates_to_milliseconds) {
    uint64_t state = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 100000; round++) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        int64_t value = (int64_t)state;
        if (value < TIMEFMT_TIME_NS_MIN) continue;
        char out[TIMEFMT_TIME_BYTES];
        int length = timefmt_time_format(value, out);
        int64_t back = 0;
        EXPECT_EQ_INT(timefmt_time_parse(out, (size_t)length, &back, NULL), 0);
        int64_t floor_ms = value / 1000000 * 1000000;
        if (value < 0 && value % 1000000 != 0) floor_ms -= 1000000;
        EXPECT(back == floor_ms);
    }
}

struct duration_vector {
    const char *text; /* input */
    int64_t seconds;  /* expected result */
};

TEST(timefmt_parses_valid_durations) {
    static const struct duration_vector vectors[] = {
        {"PT15M", 900},       {"P1D", 86400},          {"P1DT2H", 93600},
        {"PT0S", 0},          {"P0D", 0},              {"P0W", 0},
        {"P2W", 1209600},     {"PT90M", 5400},         {"PT1H30M", 5400},
        {"PT36H", 129600},    {"P1DT1H1M1S", 90061},   {"PT05M", 300},
        {"P1DT30S", 86430},   {"PT1H1S", 3601},        {"P3653D", 3653 * 86400},
        {"P521W", 521 * 604800}, {"PT315619200S", 315619200},
        {"P000000000001D", 86400},
    };
    for (size_t index = 0; index < sizeof vectors / sizeof vectors[0]; index++) {
        int64_t seconds = -1;
        const char *message = NULL;
        EXPECT_EQ_INT(parse_duration(vectors[index].text, &seconds, &message), 0);
        EXPECT(seconds == vectors[index].seconds);
        EXPECT(message == NULL);
    }
}

struct duration_error {
    const char *text;    /* input */
    int code;            /* expected error */
    const char *message; /* expected message prefix */
};

TEST(timefmt_rejects_invalid_durations_precisely) {
    static const struct duration_error errors[] = {
        {"", ERR_PARSE, "must be an ISO 8601 duration, e.g. PT15M or P1D"},
        {"P", ERR_PARSE, "must be an ISO 8601 duration"},
        {"PT", ERR_PARSE, "must be an ISO 8601 duration"},
        {"P1DT", ERR_PARSE, "must be an ISO 8601 duration"},
        {"15M", ERR_PARSE, "must be an ISO 8601 duration"},
        {"pt15m", ERR_PARSE, "must be an ISO 8601 duration"},
        {"PT15m", ERR_PARSE, "must be an ISO 8601 duration"},
        {"-PT15M", ERR_PARSE, "must be an ISO 8601 duration"},
        {"P-1D", ERR_PARSE, "must be an ISO 8601 duration"},
        {"P1D1D", ERR_PARSE, "must be an ISO 8601 duration"},
        {"PT1S1M", ERR_PARSE, "must be an ISO 8601 duration"},
        {"PT1H1H", ERR_PARSE, "must be an ISO 8601 duration"},
        {"P1H", ERR_PARSE, "must be an ISO 8601 duration"},
        {"PT1D", ERR_PARSE, "must be an ISO 8601 duration"},
        {"PTT1H", ERR_PARSE, "must be an ISO 8601 duration"},
        {"P1DT1HT1M", ERR_PARSE, "must be an ISO 8601 duration"},
        {"P1TD", ERR_PARSE, "must be an ISO 8601 duration"},
        {"PT15M ", ERR_PARSE, "must be an ISO 8601 duration"},
        {"PT15", ERR_PARSE, "must be an ISO 8601 duration"},
        {"PTM", ERR_PARSE, "must be an ISO 8601 duration"},
        {"P1D1W", ERR_PARSE, "must be an ISO 8601 duration"},
        {"P1Y", ERR_PARSE, "uses years or months"},
        {"P1M", ERR_PARSE, "uses years or months"},
        {"P1Y2M3D", ERR_PARSE, "uses years or months"},
        {"PT1.5H", ERR_PARSE, "has a fractional part"},
        {"PT1,5H", ERR_PARSE, "has a fractional part"},
        {"P1W1D", ERR_PARSE, "combines weeks with other parts"},
        {"P1WT1H", ERR_PARSE, "combines weeks with other parts"},
        {"P3654D", ERR_RANGE, "is longer than 10 years"},
        {"P522W", ERR_RANGE, "is longer than 10 years"},
        {"PT315619201S", ERR_RANGE, "is longer than 10 years"},
        {"P3653DT1S", ERR_RANGE, "is longer than 10 years"},
        {"PT9999999999999S", ERR_RANGE, "is longer than 10 years"},
        {"P99999999999999999999999W", ERR_RANGE, "is longer than 10 years"},
    };
    for (size_t index = 0; index < sizeof errors / sizeof errors[0]; index++) {
        int64_t seconds = -1;
        const char *message = NULL;
        EXPECT_EQ_INT(parse_duration(errors[index].text, &seconds, &message), errors[index].code);
        EXPECT(message != NULL);
        EXPECT(strncmp(message, errors[index].message, strlen(errors[index].message)) == 0);
        EXPECT(seconds == -1);
    }
    int64_t seconds = 0;
    EXPECT_EQ_INT(timefmt_duration_parse("PT1M\0", 5, &seconds, NULL), ERR_PARSE);
}

TEST(timefmt_formats_durations_canonically) {
    static const struct duration_vector vectors[] = {
        {"PT0S", 0},        {"PT15M", 900},        {"P1D", 86400},
        {"P1DT2H", 93600},  {"P1DT1H1M1S", 90061}, {"P7D", 604800},
        {"PT1H", 3600},     {"PT59S", 59},         {"PT1H30M", 5400},
        {"P3653D", 3653 * 86400},
    };
    for (size_t index = 0; index < sizeof vectors / sizeof vectors[0]; index++) {
        char out[TIMEFMT_DURATION_BYTES];
        int length = timefmt_duration_format(vectors[index].seconds, out);
        EXPECT_STR(out, vectors[index].text);
        EXPECT_EQ_INT(length, strlen(vectors[index].text));
    }
}

TEST(timefmt_durations_round_trip) {
    for (int64_t seconds = 0; seconds <= LIMIT_DURATION_S_MAX;
         seconds += seconds < 200000 ? 1 : 9973) {
        char out[TIMEFMT_DURATION_BYTES];
        int length = timefmt_duration_format(seconds, out);
        int64_t back = -1;
        EXPECT_EQ_INT(timefmt_duration_parse(out, (size_t)length, &back, NULL), 0);
        EXPECT(back == seconds);
    }
}
