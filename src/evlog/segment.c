/*
 * segment.c - reading segment files: the bounded read window, the recovery
 * scan that tells a torn tail from corruption, and the sparse index (build,
 * lookup, encode, load).
 */
#include "segment.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/limits.h"
#include "../base/mem.h"
#include "crc32c.h"

#include <stdio.h>
#include <string.h>

int segment_path(char *out, size_t out_size, const char *directory, int64_t base_offset,
                 const char *suffix) {
    CHECK(base_offset >= 0);
    int length = snprintf(out, out_size, "%s/%020lld%s", directory, (long long)base_offset, suffix);
    return length > 0 && (size_t)length < out_size ? 0 : ERR_LIMIT;
}

void segment_reader_init(struct segment_reader *reader, struct evlog_io *io, int fd,
                         int64_t limit) {
    CHECK(io != NULL && limit >= 0);
    memset(reader, 0, sizeof *reader);
    reader->io = io;
    reader->fd = fd;
    reader->limit = limit;
}

void segment_reader_free(struct segment_reader *reader) {
    mem_free(reader->data);
    reader->data = NULL;
    reader->capacity = 0;
    reader->length = 0;
}

/* Makes [position, position + length) available in the window, or as much of
 * it as exists before the limit. Returns the bytes available from position. */
static int64_t segment_reader_fill(struct segment_reader *reader, int64_t position, size_t length) {
    CHECK(position >= 0 && length <= LIMIT_EVLOG_RECORD_BYTES);
    if (position >= reader->start &&
        position + (int64_t)length <= reader->start + (int64_t)reader->length) {
        return (int64_t)length;
    }
    size_t want = length < LIMIT_EVLOG_READ_BYTES ? LIMIT_EVLOG_READ_BYTES : length;
    if (want > reader->capacity) {
        uint8_t *grown = mem_realloc(reader->data, want);
        if (grown == NULL)
            return ERR_NOMEM;
        reader->data = grown;
        reader->capacity = want;
    }
    int64_t room = reader->limit - position;
    if (room <= 0)
        return 0;
    size_t to_read = (int64_t)reader->capacity < room ? reader->capacity : (size_t)room;
    reader->start = position;
    reader->length = 0;
    while (reader->length < to_read) {
        int64_t got =
            reader->io->pread(reader->io, reader->fd, reader->data + reader->length,
                              to_read - reader->length, position + (int64_t)reader->length);
        if (got < 0)
            return got;
        if (got == 0)
            break;
        reader->length += (size_t)got;
    }
    return (int64_t)(reader->length < length ? reader->length : length);
}

int segment_reader_frame(struct segment_reader *reader, int64_t position,
                         struct evlog_record *record, size_t *frame_bytes) {
    CHECK(position >= SEGMENT_HEADER_BYTES);
    int64_t got = segment_reader_fill(reader, position, RECORD_FRAME_BYTES);
    if (got < 0)
        return (int)got;
    const uint8_t *data = reader->data + (position - reader->start);
    int rc = record_decode(data, (size_t)got, record, frame_bytes);
    if (rc != ERR_AGAIN)
        return rc;
    if (position + (int64_t)*frame_bytes > reader->limit)
        return ERR_AGAIN;
    got = segment_reader_fill(reader, position, *frame_bytes);
    if (got < 0)
        return (int)got;
    data = reader->data + (position - reader->start);
    return record_decode(data, (size_t)got, record, frame_bytes);
}

/* Cheap test before a CRC: does position look like the start of a frame for
 * an offset at or after `expected`? */
static int segment_frame_plausible(const uint8_t *data, int64_t expected, int64_t span) {
    uint32_t body = format_get_u32(data + 4);
    if (body < RECORD_BODY_FIXED_BYTES || body > LIMIT_EVLOG_RECORD_BYTES - 8)
        return 0;
    int64_t offset = (int64_t)format_get_u64(data + 8);
    return offset >= expected && offset <= expected + span / RECORD_FRAME_BYTES + 1;
}

/* After an invalid frame at `bad`: the first position after it holding a valid
 * frame whose offset could belong to this segment, or -1. Bounded by the
 * segment's length: each position costs a few loads unless plausible. */
static int64_t segment_find_valid_after(struct segment_reader *reader, int64_t bad,
                                        int64_t expected) {
    int64_t span = reader->limit - bad;
    for (int64_t position = bad + 1; position + RECORD_FRAME_BYTES <= reader->limit; position++) {
        int64_t got = segment_reader_fill(reader, position, RECORD_FRAME_BYTES);
        if (got < RECORD_FRAME_BYTES)
            return got < 0 ? got : -1;
        if (!segment_frame_plausible(reader->data + (position - reader->start), expected, span)) {
            continue;
        }
        struct evlog_record record;
        size_t frame_bytes = 0;
        if (segment_reader_frame(reader, position, &record, &frame_bytes) == 0)
            return position;
    }
    return -1;
}

int segment_scan_records(struct segment *seg, struct segment_reader *reader,
                         int64_t index_interval_bytes, struct segment_scan *scan,
                         void (*progress)(void *arg, int64_t done_bytes), void *progress_arg) {
    CHECK(seg != NULL && scan != NULL);
    memset(scan, 0, sizeof *scan);
    scan->bad_position = -1;
    scan->later_valid_position = -1;
    int64_t position = SEGMENT_HEADER_BYTES;
    int64_t expected = seg->base_offset;
    int64_t next_progress = 16 * 1024 * 1024;
    while (position < reader->limit) {
        struct evlog_record record;
        size_t frame_bytes = 0;
        int rc = segment_reader_frame(reader, position, &record, &frame_bytes);
        if (rc == 0 && record.offset == expected) {
            segment_index_note(seg, expected, position, record.timestamp_ns, index_interval_bytes);
            if (seg->first_timestamp_ns == 0)
                seg->first_timestamp_ns = record.timestamp_ns;
            seg->last_timestamp_ns = record.timestamp_ns;
            position += (int64_t)frame_bytes;
            expected++;
            scan->record_count++;
            if (progress != NULL && position >= next_progress) {
                progress(progress_arg, position);
                next_progress = position + 16 * 1024 * 1024;
            }
            continue;
        }
        if (rc != 0 && rc != ERR_AGAIN && rc != ERR_CORRUPT)
            return rc;
        scan->bad_position = position;
        scan->reason = rc == 0           ? "record offset out of sequence"
                       : rc == ERR_AGAIN ? "record cut short by the end of the file"
                                         : "record checksum or framing mismatch";
        break;
    }
    scan->valid_bytes = position;
    scan->end_offset = expected;
    if (scan->bad_position >= 0) {
        int64_t later = segment_find_valid_after(reader, scan->bad_position, expected);
        if (later < -1)
            return (int)later;
        scan->later_valid_position = later;
    }
    return 0;
}

void segment_index_note(struct segment *seg, int64_t offset, int64_t position, int64_t timestamp_ns,
                        int64_t interval) {
    CHECK(offset >= seg->base_offset && position >= SEGMENT_HEADER_BYTES);
    if (seg->entry_count > 0) {
        const struct index_entry *last = &seg->entries[seg->entry_count - 1];
        if (position - (int64_t)last->position < interval)
            return;
    }
    if (seg->entry_count == seg->entry_capacity) {
        uint32_t capacity = seg->entry_capacity == 0 ? 64 : seg->entry_capacity * 2;
        struct index_entry *grown = mem_realloc(seg->entries, capacity * sizeof *grown);
        if (grown == NULL)
            return;
        seg->entries = grown;
        seg->entry_capacity = capacity;
    }
    CHECK(position <= UINT32_MAX && offset - seg->base_offset <= UINT32_MAX);
    seg->entries[seg->entry_count++] = (struct index_entry){
        .relative_offset = (uint32_t)(offset - seg->base_offset),
        .position = (uint32_t)position,
        .timestamp_ns = timestamp_ns,
    };
}

int64_t segment_index_lookup(const struct segment *seg, int64_t offset, int64_t *offset_out) {
    CHECK(offset >= seg->base_offset);
    size_t low = 0;
    size_t high = seg->entry_count; /* entries [0, low) are at or before offset */
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (seg->base_offset + seg->entries[middle].relative_offset <= offset)
            low = middle + 1;
        else
            high = middle;
    }
    if (low == 0) {
        *offset_out = seg->base_offset;
        return SEGMENT_HEADER_BYTES;
    }
    *offset_out = seg->base_offset + seg->entries[low - 1].relative_offset;
    return seg->entries[low - 1].position;
}

int64_t segment_index_lookup_time(const struct segment *seg, int64_t timestamp_ns,
                                  int64_t *offset_out) {
    size_t low = 0;
    size_t high = seg->entry_count; /* entries [0, low) have timestamps < timestamp_ns */
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (seg->entries[middle].timestamp_ns < timestamp_ns)
            low = middle + 1;
        else
            high = middle;
    }
    if (low == 0) {
        *offset_out = seg->base_offset;
        return SEGMENT_HEADER_BYTES;
    }
    *offset_out = seg->base_offset + seg->entries[low - 1].relative_offset;
    return seg->entries[low - 1].position;
}

int segment_index_encode(const struct segment *seg, uint8_t **data_out, size_t *bytes_out) {
    CHECK(data_out != NULL && bytes_out != NULL);
    size_t bytes = INDEX_HEADER_BYTES + (size_t)seg->entry_count * INDEX_ENTRY_BYTES;
    uint8_t *data = mem_alloc(bytes);
    if (data == NULL)
        return ERR_NOMEM;
    for (uint32_t index = 0; index < seg->entry_count; index++) {
        index_entry_encode(&seg->entries[index],
                           data + INDEX_HEADER_BYTES + (size_t)index * INDEX_ENTRY_BYTES);
    }
    struct index_header header = {
        .entry_count = seg->entry_count,
        .base_offset = seg->base_offset,
        .end_offset = seg->end_offset,
        .segment_bytes = seg->bytes,
        .first_timestamp_ns = seg->first_timestamp_ns,
        .last_timestamp_ns = seg->last_timestamp_ns,
        .entries_crc = crc32c(data + INDEX_HEADER_BYTES, bytes - INDEX_HEADER_BYTES),
    };
    index_header_encode(&header, data);
    *data_out = data;
    *bytes_out = bytes;
    return 0;
}

/* Checks that decoded entries ascend and stay inside the segment. */
static int segment_index_entries_sane(const struct segment *seg, const struct index_header *header,
                                      const struct index_entry *entries) {
    for (uint32_t index = 0; index < header->entry_count; index++) {
        const struct index_entry *entry = &entries[index];
        if ((int64_t)entry->position < SEGMENT_HEADER_BYTES ||
            (int64_t)entry->position >= header->segment_bytes) {
            return 0;
        }
        if (seg->base_offset + (int64_t)entry->relative_offset >= header->end_offset)
            return 0;
        if (index > 0 && (entry->position <= entries[index - 1].position ||
                          entry->relative_offset <= entries[index - 1].relative_offset)) {
            return 0;
        }
    }
    return 1;
}

static int segment_index_parse(struct segment *seg, const uint8_t *data, size_t bytes,
                               int64_t segment_bytes) {
    struct index_header header;
    if (bytes < INDEX_HEADER_BYTES || index_header_decode(data, &header) != 0)
        return ERR_CORRUPT;
    if (header.base_offset != seg->base_offset || header.segment_bytes != segment_bytes) {
        return ERR_CORRUPT;
    }
    if (bytes != INDEX_HEADER_BYTES + (size_t)header.entry_count * INDEX_ENTRY_BYTES)
        return ERR_CORRUPT;
    if (crc32c(data + INDEX_HEADER_BYTES, bytes - INDEX_HEADER_BYTES) != header.entries_crc) {
        return ERR_CORRUPT;
    }
    struct index_entry *entries = mem_calloc(header.entry_count, sizeof *entries);
    if (entries == NULL)
        return ERR_NOMEM;
    for (uint32_t index = 0; index < header.entry_count; index++) {
        index_entry_decode(data + INDEX_HEADER_BYTES + (size_t)index * INDEX_ENTRY_BYTES,
                           &entries[index]);
    }
    if (!segment_index_entries_sane(seg, &header, entries)) {
        mem_free(entries);
        return ERR_CORRUPT;
    }
    mem_free(seg->entries);
    seg->entries = entries;
    seg->entry_count = header.entry_count;
    seg->entry_capacity = header.entry_count;
    seg->end_offset = header.end_offset;
    seg->bytes = segment_bytes;
    seg->first_timestamp_ns = header.first_timestamp_ns;
    seg->last_timestamp_ns = header.last_timestamp_ns;
    return 0;
}

int segment_index_load(struct segment *seg, struct evlog_io *io, const char *path,
                       int64_t segment_bytes) {
    CHECK(seg != NULL && io != NULL);
    int fd = io->open(io, path, EVLOG_IO_READ);
    if (fd < 0)
        return fd;
    int64_t bytes = 0;
    uint8_t *data = NULL;
    int rc = io->size(io, fd, &bytes);
    if (rc != 0)
        goto fail;
    rc = ERR_CORRUPT;
    if (bytes < INDEX_HEADER_BYTES || bytes > segment_bytes + INDEX_HEADER_BYTES)
        goto fail;
    data = mem_alloc((size_t)bytes);
    rc = ERR_NOMEM;
    if (data == NULL)
        goto fail;
    int64_t got = io->pread(io, fd, data, (size_t)bytes, 0);
    rc = got < 0 ? (int)got : got != bytes ? ERR_CORRUPT : 0;
    if (rc != 0)
        goto fail;
    rc = segment_index_parse(seg, data, (size_t)bytes, segment_bytes);
fail:
    mem_free(data);
    io->close(io, fd);
    return rc;
}

void segment_free(struct segment *seg) {
    if (seg == NULL)
        return;
    mem_free(seg->entries);
    mem_free(seg);
}
