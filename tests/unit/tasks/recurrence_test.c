/* recurrence_test.c - proves the RRULE subset parser accepts exactly the
 * documented parts in any order and case, normalises them to one text that
 * parses back to the same rule, and rejects everything else with a message
 * naming the offending part. */
#include "../../../src/base/err.h"
#include "../../../src/tasks/recurrence.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

/* Parses `text` and returns its normalised form in a static buffer, or
 * "ERR:" + the message. */
static const char *normalise(const char *text) {
    static char out[RRULE_TEXT_BYTES + 64];
    struct rrule rule;
    const char *message = NULL;
    if (rrule_parse(text, strlen(text), &rule, &message) != 0) {
        snprintf(out, sizeof out, "ERR:%s", message);
        return out;
    }
    int length = rrule_format(&rule, out, RRULE_TEXT_BYTES);
    if (length < 0 || (size_t)length != strlen(out)) return "FORMAT FAILED";
    /* The normalised text is a fixed point. */
    struct rrule again;
    char second[RRULE_TEXT_BYTES];
    if (rrule_parse(out, (size_t)length, &again, NULL) != 0 ||
        rrule_format(&again, second, sizeof second) != length || strcmp(second, out) != 0 ||
        memcmp(&again, &rule, sizeof rule) != 0) {
        return "NOT A FIXED POINT";
    }
    return out;
}

static bool rejects(const char *text, const char *message) {
    char expected[256];
    snprintf(expected, sizeof expected, "ERR:%s", message);
    const char *got = normalise(text);
    if (strcmp(got, expected) != 0) fprintf(stderr, "  %s -> %s\n", text, got);
    return strcmp(got, expected) == 0;
}

TEST(rrule_accepts_subset) {
    /* Proves each supported part is read into the struct. */
    struct rrule rule;
    const char *text = "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,SU;COUNT=10";
    EXPECT_EQ_INT(rrule_parse(text, strlen(text), &rule, NULL), 0);
    EXPECT_EQ_INT(rule.freq, RRULE_FREQ_WEEKLY);
    EXPECT_EQ_INT(rule.interval, 2);
    EXPECT_EQ_INT(rule.by_day_mask, RRULE_MONDAY | RRULE_WEDNESDAY | RRULE_SUNDAY);
    EXPECT_EQ_INT(rule.count, 10);
    EXPECT(!rule.has_until);
    text = "FREQ=MONTHLY;BYMONTHDAY=1,15,31;UNTIL=20261231T235959Z";
    EXPECT_EQ_INT(rrule_parse(text, strlen(text), &rule, NULL), 0);
    EXPECT_EQ_INT(rule.by_month_day_mask, (1u << 1) | (1u << 15) | (1u << 31));
    EXPECT(rule.has_until && !rule.until_is_date);
    EXPECT_EQ_INT(rule.until_ns, INT64_C(1798761599) * 1000000000);
    EXPECT_EQ_INT(rule.interval, 1);
    EXPECT_EQ_INT(rule.count, 0);
    text = "FREQ=YEARLY;UNTIL=20300101";
    EXPECT_EQ_INT(rrule_parse(text, strlen(text), &rule, NULL), 0);
    EXPECT(rule.has_until && rule.until_is_date);
    EXPECT_EQ_INT(rule.until_ns, INT64_C(1893456000) * 1000000000);
}

TEST(rrule_normalises) {
    /* Proves case-insensitive input, any part order, duplicate days and
     * INTERVAL=1 all normalise to one uppercase text in canonical order. */
    EXPECT_STR(normalise("FREQ=DAILY"), "FREQ=DAILY");
    EXPECT_STR(normalise("freq=daily;interval=1"), "FREQ=DAILY");
    EXPECT_STR(normalise("count=3;byday=su,mo,Mo;Freq=Weekly;interval=02"),
               "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;COUNT=3");
    EXPECT_STR(normalise("FREQ=MONTHLY;BYMONTHDAY=31,+1,15"),
               "FREQ=MONTHLY;BYMONTHDAY=1,15,31");
    EXPECT_STR(normalise("UNTIL=20260210t094500z;FREQ=YEARLY"),
               "FREQ=YEARLY;UNTIL=20260210T094500Z");
    EXPECT_STR(normalise("FREQ=DAILY;UNTIL=19000101"), "FREQ=DAILY;UNTIL=19000101");
    EXPECT_STR(normalise("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;INTERVAL=1000;COUNT=10000"),
               "FREQ=WEEKLY;INTERVAL=1000;BYDAY=MO,TU,WE,TH,FR,SA,SU;COUNT=10000");
}

TEST(rrule_longest_text_fits) {
    /* Proves the longest normalised rule fits RRULE_TEXT_BYTES (and thus a
     * task's rule field) and a short buffer is ERR_LIMIT, not a cut text. */
    char text[512];
    size_t used = (size_t)snprintf(text, sizeof text, "FREQ=MONTHLY;INTERVAL=1000;BYMONTHDAY=");
    for (int day = 1; day <= 31; day++) {
        used += (size_t)snprintf(text + used, sizeof text - used, "%s%d", day > 1 ? "," : "", day);
    }
    snprintf(text + used, sizeof text - used, ";UNTIL=20261231T235959Z");
    EXPECT_STR(normalise(text), text);
    EXPECT_EQ_INT(strlen(text), 144);
    struct rrule rule;
    EXPECT_EQ_INT(rrule_parse(text, strlen(text), &rule, NULL), 0);
    char small[144];
    EXPECT_EQ_INT(rrule_format(&rule, small, sizeof small), ERR_LIMIT);
    EXPECT_STR(small, "");
    EXPECT_EQ_INT(rrule_format(&rule, small, 0), ERR_LIMIT);
}

TEST(rrule_rejects_with_part_named) {
    /* Proves each unsupported or malformed rule gets the message naming
     * its part. */
    EXPECT(rejects("", "must not be empty"));
    EXPECT(rejects("INTERVAL=2", "must contain FREQ, e.g. FREQ=WEEKLY"));
    EXPECT(rejects("RRULE:FREQ=DAILY",
                   "must not start with \"RRULE:\"; give only the parts, e.g. FREQ=WEEKLY;BYDAY=MO"));
    EXPECT(rejects("FREQ=HOURLY", "FREQ=SECONDLY, MINUTELY and HOURLY are not supported; use "
                                  "DAILY, WEEKLY, MONTHLY or YEARLY"));
    EXPECT(rejects("FREQ=FORTNIGHTLY", "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY"));
    EXPECT(rejects("FREQ=", "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY"));
    EXPECT(rejects("FREQ=DAILY;FREQ=WEEKLY", "FREQ is given more than once"));
    EXPECT(rejects("FREQ=DAILY;count=2;COUNT=3", "COUNT is given more than once"));
    EXPECT(rejects("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number from 1 to 1000"));
    EXPECT(rejects("FREQ=DAILY;INTERVAL=1001", "INTERVAL must be a whole number from 1 to 1000"));
    EXPECT(rejects("FREQ=DAILY;INTERVAL=-1", "INTERVAL must be a whole number from 1 to 1000"));
    EXPECT(rejects("FREQ=DAILY;INTERVAL=99999999999",
                   "INTERVAL must be a whole number from 1 to 1000"));
    EXPECT(rejects("FREQ=DAILY;BYDAY=MO", "BYDAY is only supported with FREQ=WEEKLY"));
    EXPECT(rejects("FREQ=WEEKLY;BYDAY=1MO", "BYDAY ordinals such as 1MO or -1FR are not supported"));
    EXPECT(rejects("FREQ=WEEKLY;BYDAY=-1FR", "BYDAY ordinals such as 1MO or -1FR are not supported"));
    EXPECT(rejects("FREQ=WEEKLY;BYDAY=MO,,TU",
                   "BYDAY must be a comma-separated list of MO, TU, WE, TH, FR, SA, SU"));
    EXPECT(rejects("FREQ=WEEKLY;BYDAY=MON",
                   "BYDAY must be a comma-separated list of MO, TU, WE, TH, FR, SA, SU"));
    EXPECT(rejects("FREQ=WEEKLY;BYDAY=",
                   "BYDAY must be a comma-separated list of MO, TU, WE, TH, FR, SA, SU"));
    EXPECT(rejects("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY is only supported with FREQ=MONTHLY"));
    EXPECT(rejects("FREQ=MONTHLY;BYMONTHDAY=-1",
                   "BYMONTHDAY days counted from the month's end (negative) are not supported"));
    EXPECT(rejects("FREQ=MONTHLY;BYMONTHDAY=0",
                   "BYMONTHDAY must be a comma-separated list of days from 1 to 31"));
    EXPECT(rejects("FREQ=MONTHLY;BYMONTHDAY=32",
                   "BYMONTHDAY must be a comma-separated list of days from 1 to 31"));
    EXPECT(rejects("FREQ=MONTHLY;BYMONTHDAY=1,",
                   "BYMONTHDAY must be a comma-separated list of days from 1 to 31"));
    EXPECT(rejects("FREQ=DAILY;COUNT=0", "COUNT must be a whole number from 1 to 10000"));
    EXPECT(rejects("FREQ=DAILY;COUNT=10001", "COUNT must be a whole number from 1 to 10000"));
    EXPECT(rejects("FREQ=DAILY;COUNT=2;UNTIL=20300101", "COUNT and UNTIL must not both be given"));
    EXPECT(rejects("FREQ=DAILY;UNTIL=20300101T000000",
                   "UNTIL must be in UTC (end with \"Z\"), e.g. 20261231T235959Z"));
    EXPECT(rejects("FREQ=DAILY;UNTIL=2030-01-01",
                   "UNTIL must be a UTC date-time YYYYMMDDTHHMMSSZ or a date YYYYMMDD"));
    EXPECT(rejects("FREQ=DAILY;UNTIL=20300230", "UNTIL has a date or time that does not exist"));
    EXPECT(rejects("FREQ=DAILY;UNTIL=20300101T250000Z",
                   "UNTIL has a date or time that does not exist"));
    EXPECT(rejects("FREQ=DAILY;UNTIL=99991231", "UNTIL must be between the years 1678 and 2261"));
    EXPECT(rejects("FREQ=DAILY;BYSETPOS=1", "BYSETPOS is not supported"));
    EXPECT(rejects("FREQ=DAILY;BYHOUR=9",
                   "BYHOUR is not supported (the time of day comes from the due date)"));
    EXPECT(rejects("FREQ=WEEKLY;WKST=SU", "WKST is not supported (weeks start on Monday)"));
    EXPECT(rejects("FREQ=YEARLY;BYMONTH=2", "BYMONTH is not supported"));
    EXPECT(rejects("FREQ=DAILY;COLOR=RED", "has an unknown part; supported are FREQ, INTERVAL, "
                                           "BYDAY, BYMONTHDAY, COUNT and UNTIL"));
    EXPECT(rejects("FREQ=DAILY;", "must be NAME=VALUE parts separated by \";\", e.g. "
                                  "FREQ=WEEKLY;BYDAY=MO"));
    EXPECT(rejects("FREQ", "must be NAME=VALUE parts separated by \";\", e.g. "
                           "FREQ=WEEKLY;BYDAY=MO"));
    EXPECT(rejects("=DAILY", "must be NAME=VALUE parts separated by \";\", e.g. "
                             "FREQ=WEEKLY;BYDAY=MO"));
    EXPECT(rejects("FREQ = DAILY", "has an unknown part; supported are FREQ, INTERVAL, BYDAY, "
                                   "BYMONTHDAY, COUNT and UNTIL"));
    char long_text[300];
    memset(long_text, 'A', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    EXPECT(rejects(long_text, "must be at most 256 bytes"));
    struct rrule rule;
    EXPECT_EQ_INT(rrule_parse("FREQ=DAILY\0;COUNT=2", 19, &rule, NULL), ERR_PARSE);
}

TEST(rrule_freq_names) {
    /* Proves every frequency has its RFC 5545 name. */
    EXPECT_STR(rrule_freq_name(RRULE_FREQ_DAILY), "DAILY");
    EXPECT_STR(rrule_freq_name(RRULE_FREQ_WEEKLY), "WEEKLY");
    EXPECT_STR(rrule_freq_name(RRULE_FREQ_MONTHLY), "MONTHLY");
    EXPECT_STR(rrule_freq_name(RRULE_FREQ_YEARLY), "YEARLY");
}
