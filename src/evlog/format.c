/*
 * format.c - encoders and decoders for the byte layouts drawn in format.h:
 * record frames, segment headers and index files. Decoders trust nothing:
 * every length is checked against the bytes available and the limits before
 * it is used, because recovery and the fuzzer feed them arbitrary bytes.
 */
#include "format.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/limits.h"
#include "crc32c.h"

#include <string.h>

int record_validate(const struct evlog_record *record) {
    CHECK(record != NULL);
    if (record->key_bytes > LIMIT_EVLOG_KEY_BYTES)
        return ERR_LIMIT;
    if (record->value_bytes > LIMIT_EVLOG_VALUE_BYTES)
        return ERR_LIMIT;
    if (record->header_count > LIMIT_EVLOG_HEADER_COUNT)
        return ERR_LIMIT;
    if (record->key_bytes > 0 && record->key == NULL)
        return ERR_INVAL;
    if (record->value_bytes > 0 && record->value == NULL)
        return ERR_INVAL;
    if (record->header_count > 0 && record->headers == NULL)
        return ERR_INVAL;
    for (size_t index = 0; index < record->header_count; index++) {
        const struct evlog_header *header = &record->headers[index];
        if (header->name_bytes == 0 || header->name == NULL)
            return ERR_INVAL;
        if (header->name_bytes > LIMIT_EVLOG_HEADER_NAME_BYTES)
            return ERR_LIMIT;
        if (header->value_bytes > LIMIT_EVLOG_HEADER_VALUE_BYTES)
            return ERR_LIMIT;
        if (header->value_bytes > 0 && header->value == NULL)
            return ERR_INVAL;
    }
    return 0;
}

size_t record_encoded_bytes(const struct evlog_record *record) {
    size_t bytes = RECORD_FRAME_BYTES + record->key_bytes + record->value_bytes;
    for (size_t index = 0; index < record->header_count; index++) {
        bytes += RECORD_HEADER_FIXED_BYTES + record->headers[index].name_bytes +
                 record->headers[index].value_bytes;
    }
    CHECK(bytes <= LIMIT_EVLOG_RECORD_BYTES);
    return bytes;
}

int record_encode(const struct evlog_record *record, uint8_t *out, size_t out_bytes) {
    int rc = record_validate(record);
    if (rc != 0)
        return rc;
    size_t total = record_encoded_bytes(record);
    if (out_bytes < total)
        return ERR_LIMIT;
    format_put_u32(out + 4, (uint32_t)(total - 8));
    format_put_u64(out + 8, (uint64_t)record->offset);
    format_put_u64(out + 16, (uint64_t)record->timestamp_ns);
    format_put_u16(out + 24, (uint16_t)record->key_bytes);
    format_put_u16(out + 26, (uint16_t)record->header_count);
    format_put_u32(out + 28, (uint32_t)record->value_bytes);
    size_t position = RECORD_FRAME_BYTES;
    if (record->key_bytes > 0)
        memcpy(out + position, record->key, record->key_bytes);
    position += record->key_bytes;
    for (size_t index = 0; index < record->header_count; index++) {
        const struct evlog_header *header = &record->headers[index];
        format_put_u16(out + position, (uint16_t)header->name_bytes);
        format_put_u32(out + position + 2, (uint32_t)header->value_bytes);
        position += RECORD_HEADER_FIXED_BYTES;
        memcpy(out + position, header->name, header->name_bytes);
        position += header->name_bytes;
        if (header->value_bytes > 0)
            memcpy(out + position, header->value, header->value_bytes);
        position += header->value_bytes;
    }
    if (record->value_bytes > 0)
        memcpy(out + position, record->value, record->value_bytes);
    position += record->value_bytes;
    CHECK(position == total);
    format_put_u32(out, crc32c(out + 4, total - 4));
    return 0;
}

/* Walks the encoded headers; returns their total size or ERR_CORRUPT. */
static int64_t record_headers_measure(const uint8_t *data, size_t available, size_t count) {
    size_t position = 0;
    for (size_t index = 0; index < count; index++) {
        if (available - position < RECORD_HEADER_FIXED_BYTES)
            return ERR_CORRUPT;
        size_t name_bytes = format_get_u16(data + position);
        size_t value_bytes = format_get_u32(data + position + 2);
        if (name_bytes == 0 || name_bytes > LIMIT_EVLOG_HEADER_NAME_BYTES)
            return ERR_CORRUPT;
        if (value_bytes > LIMIT_EVLOG_HEADER_VALUE_BYTES)
            return ERR_CORRUPT;
        position += RECORD_HEADER_FIXED_BYTES;
        if (available - position < name_bytes + value_bytes)
            return ERR_CORRUPT;
        position += name_bytes + value_bytes;
    }
    return (int64_t)position;
}

int record_decode(const uint8_t *data, size_t available, struct evlog_record *out,
                  size_t *frame_bytes) {
    CHECK(data != NULL || available == 0);
    CHECK(out != NULL && frame_bytes != NULL);
    if (available < 8) {
        *frame_bytes = RECORD_FRAME_BYTES;
        return ERR_AGAIN;
    }
    size_t body_bytes = format_get_u32(data + 4);
    if (body_bytes < RECORD_BODY_FIXED_BYTES || body_bytes > LIMIT_EVLOG_RECORD_BYTES - 8) {
        return ERR_CORRUPT;
    }
    *frame_bytes = body_bytes + 8;
    if (available < body_bytes + 8)
        return ERR_AGAIN;
    if (crc32c(data + 4, body_bytes + 4) != format_get_u32(data))
        return ERR_CORRUPT;
    memset(out, 0, sizeof *out);
    out->offset = (int64_t)format_get_u64(data + 8);
    out->timestamp_ns = (int64_t)format_get_u64(data + 16);
    out->key_bytes = format_get_u16(data + 24);
    out->header_count = format_get_u16(data + 26);
    out->value_bytes = format_get_u32(data + 28);
    if (out->offset < 0 || out->key_bytes > LIMIT_EVLOG_KEY_BYTES ||
        out->header_count > LIMIT_EVLOG_HEADER_COUNT ||
        out->value_bytes > LIMIT_EVLOG_VALUE_BYTES) {
        return ERR_CORRUPT;
    }
    size_t variable = body_bytes - RECORD_BODY_FIXED_BYTES;
    if (out->key_bytes + out->value_bytes > variable)
        return ERR_CORRUPT;
    const uint8_t *cursor = data + RECORD_FRAME_BYTES;
    out->key = cursor;
    cursor += out->key_bytes;
    size_t header_room = variable - out->key_bytes - out->value_bytes;
    int64_t header_bytes = record_headers_measure(cursor, header_room, out->header_count);
    if (header_bytes < 0 || (size_t)header_bytes != header_room)
        return ERR_CORRUPT;
    out->header_data = cursor;
    out->header_data_bytes = (size_t)header_bytes;
    out->value = cursor + header_bytes;
    return 0;
}

int record_header_next(const struct evlog_record *record, size_t *cursor,
                       struct evlog_header *out) {
    CHECK(record != NULL && cursor != NULL && out != NULL);
    if (*cursor >= record->header_data_bytes)
        return 0;
    CHECK(record->header_data_bytes - *cursor >= RECORD_HEADER_FIXED_BYTES);
    const uint8_t *data = record->header_data + *cursor;
    out->name_bytes = format_get_u16(data);
    out->value_bytes = format_get_u32(data + 2);
    out->name = data + RECORD_HEADER_FIXED_BYTES;
    out->value = out->name + out->name_bytes;
    *cursor += RECORD_HEADER_FIXED_BYTES + out->name_bytes + out->value_bytes;
    CHECK(*cursor <= record->header_data_bytes);
    return 1;
}

void segment_header_encode(const struct segment_header *header, uint8_t out[SEGMENT_HEADER_BYTES]) {
    CHECK(header->base_offset >= 0);
    memset(out, 0, SEGMENT_HEADER_BYTES);
    memcpy(out, SEGMENT_MAGIC, 8);
    format_put_u16(out + 8, FORMAT_VERSION);
    format_put_u16(out + 10, SEGMENT_HEADER_BYTES);
    format_put_u64(out + 16, (uint64_t)header->base_offset);
    format_put_u32(out + 28, crc32c(out, 28));
}

int segment_header_decode(const uint8_t data[SEGMENT_HEADER_BYTES], struct segment_header *out) {
    CHECK(out != NULL);
    if (memcmp(data, SEGMENT_MAGIC, 8) != 0)
        return ERR_CORRUPT;
    if (format_get_u32(data + 28) != crc32c(data, 28))
        return ERR_CORRUPT;
    if (format_get_u16(data + 8) != FORMAT_VERSION)
        return ERR_UNSUPPORTED;
    if (format_get_u16(data + 10) != SEGMENT_HEADER_BYTES)
        return ERR_CORRUPT;
    out->base_offset = (int64_t)format_get_u64(data + 16);
    if (out->base_offset < 0)
        return ERR_CORRUPT;
    return 0;
}

void index_header_encode(const struct index_header *header, uint8_t out[INDEX_HEADER_BYTES]) {
    CHECK(header->end_offset >= header->base_offset);
    memset(out, 0, INDEX_HEADER_BYTES);
    memcpy(out, INDEX_MAGIC, 8);
    format_put_u16(out + 8, FORMAT_VERSION);
    format_put_u16(out + 10, INDEX_HEADER_BYTES);
    format_put_u32(out + 12, header->entry_count);
    format_put_u64(out + 16, (uint64_t)header->base_offset);
    format_put_u64(out + 24, (uint64_t)header->end_offset);
    format_put_u64(out + 32, (uint64_t)header->segment_bytes);
    format_put_u64(out + 40, (uint64_t)header->first_timestamp_ns);
    format_put_u64(out + 48, (uint64_t)header->last_timestamp_ns);
    format_put_u32(out + 56, header->entries_crc);
    format_put_u32(out + 60, crc32c(out, 60));
}

int index_header_decode(const uint8_t data[INDEX_HEADER_BYTES], struct index_header *out) {
    CHECK(out != NULL);
    if (memcmp(data, INDEX_MAGIC, 8) != 0)
        return ERR_CORRUPT;
    if (format_get_u32(data + 60) != crc32c(data, 60))
        return ERR_CORRUPT;
    if (format_get_u16(data + 8) != FORMAT_VERSION)
        return ERR_UNSUPPORTED;
    if (format_get_u16(data + 10) != INDEX_HEADER_BYTES)
        return ERR_CORRUPT;
    out->entry_count = format_get_u32(data + 12);
    out->base_offset = (int64_t)format_get_u64(data + 16);
    out->end_offset = (int64_t)format_get_u64(data + 24);
    out->segment_bytes = (int64_t)format_get_u64(data + 32);
    out->first_timestamp_ns = (int64_t)format_get_u64(data + 40);
    out->last_timestamp_ns = (int64_t)format_get_u64(data + 48);
    out->entries_crc = format_get_u32(data + 56);
    if (out->base_offset < 0 || out->end_offset < out->base_offset)
        return ERR_CORRUPT;
    return 0;
}

void index_entry_encode(const struct index_entry *entry, uint8_t out[INDEX_ENTRY_BYTES]) {
    format_put_u32(out, entry->relative_offset);
    format_put_u32(out + 4, entry->position);
    format_put_u64(out + 8, (uint64_t)entry->timestamp_ns);
}

void index_entry_decode(const uint8_t data[INDEX_ENTRY_BYTES], struct index_entry *out) {
    out->relative_offset = format_get_u32(data);
    out->position = format_get_u32(data + 4);
    out->timestamp_ns = (int64_t)format_get_u64(data + 8);
}
