/* uuid_test.c - proves generated ids have the canonical lowercase shape and
 * the right version and variant, that version 7 ids carry the given time and
 * strictly increase within a millisecond, across a stepped-back clock and
 * across a counter wrap, and that parsing accepts either case, normalises to
 * lowercase and rejects every other shape. */
#include "../../../src/base/err.h"
#include "../../../src/base/uuid.h"
#include "test.h"

#include <string.h>

static int is_canonical(const char *text) {
    if (strlen(text) != 36) return 0;
    for (int index = 0; index < 36; index++) {
        char character = text[index];
        int hyphen = index == 8 || index == 13 || index == 18 || index == 23;
        if (hyphen != (character == '-')) return 0;
        if (!hyphen && !((character >= '0' && character <= '9') ||
                         (character >= 'a' && character <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

static int has_rfc_variant(const char *text) {
    return strchr("89ab", text[19]) != NULL;
}

TEST(uuid_v4_has_canonical_shape_version_and_variant) {
    char previous[UUID_STRING_BYTES] = "";
    for (int round = 0; round < 200; round++) {
        char id[UUID_STRING_BYTES];
        EXPECT_EQ_INT(uuid_v4_generate(id), 0);
        EXPECT(is_canonical(id));
        EXPECT(id[14] == '4');
        EXPECT(has_rfc_variant(id));
        EXPECT(uuid_is_valid(id, strlen(id)));
        EXPECT(strcmp(id, previous) != 0);
        memcpy(previous, id, sizeof id);
    }
}

TEST(uuid_v7_carries_time_and_increases_within_a_millisecond) {
    struct uuid_v7_generator generator;
    uuid_v7_generator_init(&generator);
    const int64_t now_ms = 1770716700123; /* 2026-02-10T09:45:00.123Z */
    char previous[UUID_STRING_BYTES] = "";
    for (int round = 0; round < 1000; round++) {
        char id[UUID_STRING_BYTES];
        EXPECT_EQ_INT(uuid_v7_generate(&generator, now_ms, id), 0);
        EXPECT(is_canonical(id));
        EXPECT(id[14] == '7');
        EXPECT(has_rfc_variant(id));
        EXPECT_EQ_INT(uuid_v7_time_ms(id, strlen(id)), now_ms);
        EXPECT(strcmp(id, previous) > 0);
        memcpy(previous, id, sizeof id);
    }
    EXPECT(strncmp(previous, "019c46f0-9ddb-7", 15) == 0); /* 0x019c46f09ddb ms */
}

TEST(uuid_v7_stays_monotonic_when_the_clock_steps_back) {
    struct uuid_v7_generator generator;
    uuid_v7_generator_init(&generator);
    char first[UUID_STRING_BYTES];
    char second[UUID_STRING_BYTES];
    char third[UUID_STRING_BYTES];
    EXPECT_EQ_INT(uuid_v7_generate(&generator, 5000, first), 0);
    EXPECT_EQ_INT(uuid_v7_generate(&generator, 4000, second), 0);
    EXPECT(strcmp(second, first) > 0);
    EXPECT_EQ_INT(uuid_v7_time_ms(second, 36), 5000);
    EXPECT_EQ_INT(uuid_v7_generate(&generator, 6000, third), 0);
    EXPECT(strcmp(third, second) > 0);
    EXPECT_EQ_INT(uuid_v7_time_ms(third, 36), 6000);
}

TEST(uuid_v7_works_at_time_zero) {
    struct uuid_v7_generator generator;
    uuid_v7_generator_init(&generator);
    char first[UUID_STRING_BYTES];
    char second[UUID_STRING_BYTES];
    EXPECT_EQ_INT(uuid_v7_generate(&generator, 0, first), 0);
    EXPECT(strncmp(first, "00000000-0000-7", 15) == 0);
    EXPECT(has_rfc_variant(first));
    EXPECT_EQ_INT(uuid_v7_generate(&generator, 0, second), 0);
    EXPECT(strcmp(second, first) > 0);
}

TEST(uuid_v7_counter_wrap_borrows_the_next_millisecond) {
    struct uuid_v7_generator generator;
    uuid_v7_generator_init(&generator);
    char id[UUID_STRING_BYTES];
    EXPECT_EQ_INT(uuid_v7_generate(&generator, 1000, id), 0);
    /* Put the 74-bit field at its maximum: the next id must wrap it. */
    generator.last_bytes[6] = 0x7f;
    generator.last_bytes[7] = 0xff;
    generator.last_bytes[8] = 0xbf;
    memset(generator.last_bytes + 9, 0xff, 7);
    EXPECT_EQ_INT(uuid_v7_generate(&generator, 1000, id), 0);
    EXPECT_STR(id, "00000000-03e9-7000-8000-000000000000");
    EXPECT_EQ_INT(uuid_v7_time_ms(id, 36), 1001);
    EXPECT_EQ_INT(generator.last_time_ms, 1001);
}

TEST(uuid_parse_normalises_case_and_rejects_other_shapes) {
    char out[UUID_STRING_BYTES];
    const char *upper = "0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B";
    EXPECT_EQ_INT(uuid_parse(upper, strlen(upper), out), 0);
    EXPECT_STR(out, "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");
    EXPECT(uuid_is_valid(upper, strlen(upper)));
    EXPECT(uuid_is_valid("00000000-0000-0000-0000-000000000000", 36)); /* nil: shape only */
    static const char *const bad[] = {
        "",
        "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2",    /* 35 characters */
        "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2bc",  /* 37 characters */
        "{0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b}", /* braces */
        "urn:uuid:0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
        "0190a1b2c3d47e5f8a6b7c8d9e0f1a2b", /* no hyphens */
        "0190a1b2-c3d47-e5f-8a6b-7c8d9e0f1a2b", /* hyphen misplaced */
        "0190a1b2-c3d4-7e5f-8a6b_7c8d9e0f1a2b", /* underscore */
        "0190a1g2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", /* not hex */
        " 190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", /* space */
        "+190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", /* sign */
    };
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        EXPECT_EQ_INT(uuid_parse(bad[index], strlen(bad[index]), out), ERR_PARSE);
        EXPECT(!uuid_is_valid(bad[index], strlen(bad[index])));
    }
    EXPECT(!uuid_is_valid("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a\0b", 36));
    EXPECT(!uuid_is_valid(NULL, 0));
}

TEST(uuid_v7_time_requires_a_version_7_id) {
    char id[UUID_STRING_BYTES];
    EXPECT_EQ_INT(uuid_v4_generate(id), 0);
    EXPECT_EQ_INT(uuid_v7_time_ms(id, strlen(id)), ERR_PARSE);
    EXPECT_EQ_INT(uuid_v7_time_ms("not a uuid", 10), ERR_PARSE);
    /* Right version, wrong variant bits. */
    EXPECT_EQ_INT(uuid_v7_time_ms("0190a1b2-c3d4-7e5f-ca6b-7c8d9e0f1a2b", 36), ERR_PARSE);
}
