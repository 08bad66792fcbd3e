/*
 * timefmt_fuzz.c - libFuzzer target for the RFC 3339 time and ISO 8601
 * duration parsers. The first byte's low bit picks which; the rest is the
 * text. Every rejection must carry a message; every accepted value must
 * format, parse back to the same value (times: the value rounded down to
 * the millisecond, as documented), and format to the same text again.
 */
#include "../../src/base/check.h"
#include "../../src/base/err.h"
#include "../../src/base/limits.h"
#include "../../src/base/timefmt.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t fuzz_floor_ms(int64_t unix_ns) {
    int64_t floor_ns = unix_ns / 1000000 * 1000000;
    if (unix_ns < 0 && unix_ns % 1000000 != 0) floor_ns -= 1000000;
    return floor_ns;
}

static void fuzz_time(const char *text, size_t length) {
    int64_t value = 0;
    const char *message = NULL;
    int rc = timefmt_time_parse(text, length, &value, &message);
    if (rc != 0) {
        CHECK(rc == ERR_PARSE || rc == ERR_RANGE);
        CHECK(message != NULL && message[0] != '\0');
        return;
    }
    char first[TIMEFMT_TIME_BYTES];
    int first_length = timefmt_time_format(value, first);
    CHECK(first_length == (int)strlen(first));
    int64_t back = 0;
    CHECK(timefmt_time_parse(first, (size_t)first_length, &back, NULL) == 0);
    CHECK(back == fuzz_floor_ms(value));
    char second[TIMEFMT_TIME_BYTES];
    timefmt_time_format(back, second);
    CHECK(strcmp(first, second) == 0);
}

static void fuzz_duration(const char *text, size_t length) {
    int64_t seconds = -1;
    const char *message = NULL;
    int rc = timefmt_duration_parse(text, length, &seconds, &message);
    if (rc != 0) {
        CHECK(rc == ERR_PARSE || rc == ERR_RANGE);
        CHECK(message != NULL && message[0] != '\0');
        return;
    }
    CHECK(seconds >= 0 && seconds <= LIMIT_DURATION_S_MAX);
    char formatted[TIMEFMT_DURATION_BYTES];
    int formatted_length = timefmt_duration_format(seconds, formatted);
    int64_t back = -1;
    CHECK(timefmt_duration_parse(formatted, (size_t)formatted_length, &back, NULL) == 0);
    CHECK(back == seconds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int mode = data[0] & 1;
    const char *text = (const char *)data + 1;
    size_t length = size - 1;
    if (mode == 0) fuzz_time(text, length);
    else fuzz_duration(text, length);
    return 0;
}
