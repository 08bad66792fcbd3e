/* format_test.c - proves records, segment headers and index headers survive
 * an encode/decode round trip, and that every damaged or truncated frame is
 * reported as corrupt or incomplete rather than misread. */
#include "../../../src/base/err.h"
#include "../../../src/base/limits.h"
#include "../../../src/evlog/format.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

static size_t format_sample(uint8_t *out, size_t out_bytes) {
    struct evlog_header headers[2] = {
        {(const uint8_t *)"type", 4, (const uint8_t *)"task.created", 12},
        {(const uint8_t *)"empty", 5, NULL, 0},
    };
    struct evlog_record record = {
        .offset = 42,
        .timestamp_ns = 1700000000123456789LL,
        .key = (const uint8_t *)"user-1",
        .key_bytes = 6,
        .headers = headers,
        .header_count = 2,
        .value = (const uint8_t *)"{\"title\":\"x\"}",
        .value_bytes = 13,
    };
    size_t bytes = record_encoded_bytes(&record);
    if (record_encode(&record, out, out_bytes) != 0)
        return 0;
    return bytes;
}

TEST(format_record_round_trip) {
    uint8_t frame[256];
    size_t bytes = format_sample(frame, sizeof frame);
    EXPECT_EQ_INT(bytes, 32 + 6 + (6 + 4 + 12) + (6 + 5) + 13);
    struct evlog_record record;
    size_t frame_bytes = 0;
    EXPECT_EQ_INT(record_decode(frame, bytes, &record, &frame_bytes), 0);
    EXPECT_EQ_INT(frame_bytes, bytes);
    EXPECT_EQ_INT(record.offset, 42);
    EXPECT_EQ_INT(record.timestamp_ns, 1700000000123456789LL);
    EXPECT(record.key_bytes == 6 && memcmp(record.key, "user-1", 6) == 0);
    EXPECT(record.value_bytes == 13 && memcmp(record.value, "{\"title\":\"x\"}", 13) == 0);
    EXPECT_EQ_INT(record.header_count, 2);
    size_t cursor = 0;
    struct evlog_header header;
    EXPECT_EQ_INT(record_header_next(&record, &cursor, &header), 1);
    EXPECT(header.name_bytes == 4 && memcmp(header.name, "type", 4) == 0);
    EXPECT(header.value_bytes == 12 && memcmp(header.value, "task.created", 12) == 0);
    EXPECT_EQ_INT(record_header_next(&record, &cursor, &header), 1);
    EXPECT(header.name_bytes == 5 && header.value_bytes == 0);
    EXPECT_EQ_INT(record_header_next(&record, &cursor, &header), 0);
}

TEST(format_record_short_input_needs_more) {
    uint8_t frame[256];
    size_t bytes = format_sample(frame, sizeof frame);
    for (size_t available = 0; available < bytes; available++) {
        struct evlog_record record;
        size_t frame_bytes = 0;
        EXPECT_EQ_INT(record_decode(frame, available, &record, &frame_bytes), ERR_AGAIN);
        if (available >= 8)
            EXPECT_EQ_INT(frame_bytes, bytes);
    }
}

TEST(format_record_every_flipped_bit_is_corrupt) {
    uint8_t frame[256];
    size_t bytes = format_sample(frame, sizeof frame);
    for (size_t bit = 0; bit < bytes * 8; bit++) {
        frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        struct evlog_record record;
        size_t frame_bytes = 0;
        int rc = record_decode(frame, bytes, &record, &frame_bytes);
        /* A flipped length may ask for more bytes than exist: incomplete, never valid. */
        EXPECT(rc == ERR_CORRUPT || rc == ERR_AGAIN);
        frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

TEST(format_record_limits_are_enforced) {
    uint8_t frame[64];
    struct evlog_record record = {.key = (const uint8_t *)"k",
                                  .key_bytes = LIMIT_EVLOG_KEY_BYTES + 1};
    EXPECT_EQ_INT(record_encode(&record, frame, sizeof frame), ERR_LIMIT);
    struct evlog_header header = {NULL, 0, NULL, 0};
    struct evlog_record bad_header = {.headers = &header, .header_count = 1};
    EXPECT_EQ_INT(record_validate(&bad_header), ERR_INVAL);
    struct evlog_record fits = {.value = (const uint8_t *)"v", .value_bytes = 1};
    EXPECT_EQ_INT(record_encode(&fits, frame, 10), ERR_LIMIT);
    EXPECT_EQ_INT(record_encode(&fits, frame, sizeof frame), 0);
    /* A length field beyond the record limit is corruption, not an allocation. */
    format_put_u32(frame + 4, LIMIT_EVLOG_RECORD_BYTES);
    struct evlog_record out;
    size_t frame_bytes = 0;
    EXPECT_EQ_INT(record_decode(frame, sizeof frame, &out, &frame_bytes), ERR_CORRUPT);
}

TEST(format_segment_and_index_headers_round_trip) {
    uint8_t data[INDEX_HEADER_BYTES];
    segment_header_encode(&(struct segment_header){.base_offset = 1234}, data);
    struct segment_header segment;
    EXPECT_EQ_INT(segment_header_decode(data, &segment), 0);
    EXPECT_EQ_INT(segment.base_offset, 1234);
    data[20] ^= 1;
    EXPECT_EQ_INT(segment_header_decode(data, &segment), ERR_CORRUPT);
    struct index_header header = {.entry_count = 3,
                                  .base_offset = 10,
                                  .end_offset = 20,
                                  .segment_bytes = 999,
                                  .first_timestamp_ns = 5,
                                  .last_timestamp_ns = 6,
                                  .entries_crc = 77};
    index_header_encode(&header, data);
    struct index_header decoded;
    EXPECT_EQ_INT(index_header_decode(data, &decoded), 0);
    EXPECT(decoded.entry_count == 3 && decoded.base_offset == 10 && decoded.end_offset == 20);
    EXPECT(decoded.segment_bytes == 999 && decoded.first_timestamp_ns == 5);
    EXPECT(decoded.last_timestamp_ns == 6 && decoded.entries_crc == 77);
    data[0] = 'X';
    EXPECT_EQ_INT(index_header_decode(data, &decoded), ERR_CORRUPT);
}
