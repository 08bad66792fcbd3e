/*
 * uuid.c - UUID versions 4 and 7, formatting and parsing.
 *
 * Ids are built as 16 bytes and then written as text. For version 7 the
 * layout is (RFC 9562 section 5.7):
 *
 *   bytes 0..5   unix_ts_ms  48-bit big-endian milliseconds
 *   byte  6      ver (0111) | rand_a high 4 bits
 *   byte  7      rand_a low 8 bits
 *   byte  8      var (10)   | rand_b high 6 bits
 *   bytes 9..15  rand_b low 56 bits
 *
 * rand_a and rand_b together form the 74-bit field that the generator
 * increments within one millisecond.
 */
#include "uuid.h"
#include "random.h"

#include "check.h"
#include "err.h"

#include <errno.h>
#include <string.h>

/* 2^48 milliseconds: the end of version 7 time, in the year 10889. */
#define UUID_V7_TIME_MS_END (INT64_C(1) << 48)

static void uuid_format(const uint8_t bytes[16], char out[UUID_STRING_BYTES]) {
    static const char hex[] = "0123456789abcdef";
    size_t position = 0;
    for (int index = 0; index < 16; index++) {
        if (index == 4 || index == 6 || index == 8 || index == 10) out[position++] = '-';
        out[position++] = hex[bytes[index] >> 4];
        out[position++] = hex[bytes[index] & 0x0f];
    }
    CHECK(position == UUID_STRING_BYTES - 1);
    out[position] = '\0';
}

static void uuid_set_version_and_variant(uint8_t bytes[16], int version) {
    bytes[6] = (uint8_t)((bytes[6] & 0x0f) | version << 4);
    bytes[8] = (uint8_t)((bytes[8] & 0x3f) | 0x80);
}

int uuid_v4_generate(char out[UUID_STRING_BYTES]) {
    CHECK(out != NULL);
    uint8_t bytes[16];
    int rc = random_fill(bytes, sizeof bytes);
    if (rc != 0) return rc;
    uuid_set_version_and_variant(bytes, 4);
    uuid_format(bytes, out);
    return 0;
}

void uuid_v7_generator_init(struct uuid_v7_generator *generator) {
    CHECK(generator != NULL);
    memset(generator, 0, sizeof *generator);
    generator->last_time_ms = -1;
}

/* Adds one to the 74-bit random field of `bytes` (skipping the version and
 * variant bits). Returns false when the field wraps to zero. */
static bool uuid_v7_increment(uint8_t bytes[16]) {
    for (int index = 15; index >= 9; index--) {
        if (++bytes[index] != 0) return true;
    }
    uint8_t rand_b_high = (uint8_t)((bytes[8] & 0x3f) + 1);
    bytes[8] = (uint8_t)(0x80 | (rand_b_high & 0x3f));
    if (rand_b_high <= 0x3f) return true;
    if (++bytes[7] != 0) return true;
    uint8_t rand_a_high = (uint8_t)((bytes[6] & 0x0f) + 1);
    bytes[6] = (uint8_t)(0x70 | (rand_a_high & 0x0f));
    return rand_a_high <= 0x0f;
}

static void uuid_v7_set_time(uint8_t bytes[16], int64_t time_ms) {
    for (int index = 0; index < 6; index++) {
        bytes[index] = (uint8_t)((uint64_t)time_ms >> (40 - 8 * index));
    }
}

int uuid_v7_generate(struct uuid_v7_generator *generator, int64_t now_ms,
                     char out[UUID_STRING_BYTES]) {
    CHECK(generator != NULL && out != NULL);
    CHECK(now_ms >= 0 && now_ms < UUID_V7_TIME_MS_END);
    CHECK(generator->last_time_ms >= -1);
    uint8_t bytes[16];
    if (now_ms > generator->last_time_ms) {
        int rc = random_fill(bytes, sizeof bytes);
        if (rc != 0) return rc;
        uuid_v7_set_time(bytes, now_ms);
        uuid_set_version_and_variant(bytes, 7);
        /* Leave headroom for the in-millisecond counter: with the top random
         * bit clear, 2^73 more ids fit before the field wraps. */
        bytes[6] &= 0xf7;
        generator->last_time_ms = now_ms;
    } else {
        /* Same millisecond, or the clock stepped back: keep the last time and
         * count up. On the (practically unreachable) wrap, borrow the next
         * millisecond, as RFC 9562 section 6.2 allows. */
        memcpy(bytes, generator->last_bytes, sizeof bytes);
        if (!uuid_v7_increment(bytes)) {
            CHECK(generator->last_time_ms + 1 < UUID_V7_TIME_MS_END);
            generator->last_time_ms++;
            uuid_v7_set_time(bytes, generator->last_time_ms);
        }
    }
    CHECK(memcmp(bytes, generator->last_bytes, sizeof bytes) > 0);
    memcpy(generator->last_bytes, bytes, sizeof bytes);
    uuid_format(bytes, out);
    return 0;
}

static int uuid_hex_value(char character) {
    if (character >= '0' && character <= '9') return character - '0';
    if (character >= 'a' && character <= 'f') return character - 'a' + 10;
    if (character >= 'A' && character <= 'F') return character - 'A' + 10;
    return -1;
}

/* Parses the canonical shape into 16 bytes. ERR_PARSE if it is not one. */
static int uuid_parse_bytes(const char *text, size_t length, uint8_t bytes[16]) {
    if (text == NULL || length != UUID_STRING_BYTES - 1) return ERR_PARSE;
    size_t position = 0;
    for (int index = 0; index < 16; index++) {
        if (index == 4 || index == 6 || index == 8 || index == 10) {
            if (text[position++] != '-') return ERR_PARSE;
        }
        int high = uuid_hex_value(text[position++]);
        int low = uuid_hex_value(text[position++]);
        if (high < 0 || low < 0) return ERR_PARSE;
        bytes[index] = (uint8_t)(high << 4 | low);
    }
    CHECK(position == length);
    return 0;
}

int uuid_parse(const char *text, size_t length, char out[UUID_STRING_BYTES]) {
    CHECK(out != NULL);
    uint8_t bytes[16];
    int rc = uuid_parse_bytes(text, length, bytes);
    if (rc != 0) return rc;
    uuid_format(bytes, out);
    return 0;
}

bool uuid_is_valid(const char *text, size_t length) {
    uint8_t bytes[16];
    return uuid_parse_bytes(text, length, bytes) == 0;
}

int64_t uuid_v7_time_ms(const char *text, size_t length) {
    uint8_t bytes[16];
    if (uuid_parse_bytes(text, length, bytes) != 0) return ERR_PARSE;
    if (bytes[6] >> 4 != 7 || (bytes[8] & 0xc0) != 0x80) return ERR_PARSE;
    int64_t time_ms = 0;
    for (int index = 0; index < 6; index++) time_ms = time_ms << 8 | bytes[index];
    return time_ms;
}
