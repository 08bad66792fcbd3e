/*
 * cursor.c - reading a topic: segment lookup by offset (binary search over
 * segments, then over the sparse index), a bounded read window per cursor
 * (pread, so the page cache serves hot data), and lookup by timestamp.
 * Only durable bytes are ever read: a segment's `bytes` grows only after the
 * fdatasync that covers them.
 */
#include "evlog_int.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/mem.h"

#include <string.h>

/* Index of the segment holding `offset`, or -1 when it is before the first
 * retained record. Offsets at or past the end map to the active segment. */
static int64_t cursor_find_segment(const struct evlog_topic *topic, int64_t offset) {
    size_t low = 0;
    size_t high = topic->segment_count; /* segments [0, low) start at or before offset */
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (topic->segments[middle]->base_offset <= offset)
            low = middle + 1;
        else
            high = middle;
    }
    return (int64_t)low - 1;
}

int evlog_cursor_open(struct evlog_cursor *cursor, struct evlog_topic *topic, int64_t offset) {
    CHECK(cursor != NULL && topic != NULL);
    memset(cursor, 0, sizeof *cursor);
    cursor->topic = topic;
    cursor->segment_base = -1;
    if (offset < evlog_topic_start_offset(topic) || offset > evlog_topic_end_offset(topic)) {
        return ERR_RANGE;
    }
    cursor->offset = offset;
    return 0;
}

void evlog_cursor_close(struct evlog_cursor *cursor) {
    if (cursor == NULL)
        return;
    mem_free(cursor->window);
    cursor->window = NULL;
    cursor->window_capacity = 0;
}

/* Positions the cursor at its offset inside `seg` through the index. */
static void cursor_seek(struct evlog_cursor *cursor, const struct segment *seg,
                        int64_t *scan_offset) {
    cursor->segment_base = seg->base_offset;
    cursor->position = segment_index_lookup(seg, cursor->offset, scan_offset);
    cursor->window_length = 0;
    cursor->window_start = 0;
}

/* Reads the frame at the cursor's position through its window. */
static int cursor_frame(struct evlog_cursor *cursor, const struct segment *seg,
                        struct evlog_record *record, size_t *frame_bytes) {
    struct segment_reader reader = {
        .io = cursor->topic->log->io,
        .fd = seg->fd,
        .limit = seg->bytes,
        .data = cursor->window,
        .capacity = cursor->window_capacity,
        .start = cursor->window_start,
        .length = cursor->window_length,
    };
    int rc = segment_reader_frame(&reader, cursor->position, record, frame_bytes);
    cursor->window = reader.data;
    cursor->window_capacity = reader.capacity;
    cursor->window_start = reader.start;
    cursor->window_length = reader.length;
    return rc == ERR_AGAIN ? ERR_CORRUPT : rc; /* durable bytes always hold whole frames */
}

int evlog_cursor_next(struct evlog_cursor *cursor, struct evlog_record *record) {
    CHECK(cursor != NULL && record != NULL);
    struct evlog_topic *topic = cursor->topic;
    if (cursor->offset >= evlog_topic_end_offset(topic))
        return ERR_AGAIN;
    int64_t segment_index = cursor_find_segment(topic, cursor->offset);
    if (segment_index < 0)
        return ERR_RANGE;
    const struct segment *seg = topic->segments[segment_index];
    if (cursor->offset >= seg->end_offset) {
        /* Past the end of a segment that is not the last: the next one starts here. */
        CHECK((size_t)segment_index + 1 < topic->segment_count);
        seg = topic->segments[segment_index + 1];
    }
    int64_t scan_offset = cursor->offset;
    if (seg->base_offset != cursor->segment_base)
        cursor_seek(cursor, seg, &scan_offset);
    /* Bounded by the frames the segment can hold (normally only the few
     * between an index entry and the target are read). */
    for (int64_t step = 0; step <= seg->bytes / RECORD_FRAME_BYTES; step++) {
        size_t frame_bytes = 0;
        int rc = cursor_frame(cursor, seg, record, &frame_bytes);
        if (rc != 0)
            return rc;
        cursor->position += (int64_t)frame_bytes;
        if (record->offset == cursor->offset) {
            cursor->offset++;
            return 0;
        }
        if (record->offset > cursor->offset)
            return ERR_CORRUPT;
    }
    return ERR_CORRUPT;
}

int evlog_offset_for_time(struct evlog_topic *topic, int64_t timestamp_ns, int64_t *offset_out) {
    CHECK(topic != NULL && offset_out != NULL);
    size_t index = 0;
    while (index < topic->segment_count &&
           topic->segments[index]->end_offset > topic->segments[index]->base_offset &&
           topic->segments[index]->last_timestamp_ns < timestamp_ns) {
        index++;
    }
    if (index == topic->segment_count ||
        topic->segments[index]->end_offset == topic->segments[index]->base_offset) {
        *offset_out = evlog_topic_end_offset(topic);
        return 0;
    }
    const struct segment *seg = topic->segments[index];
    struct evlog_cursor cursor;
    int64_t scan_offset = 0;
    int rc = evlog_cursor_open(&cursor, topic, seg->base_offset);
    if (rc != 0)
        return rc;
    (void)segment_index_lookup_time(seg, timestamp_ns, &scan_offset);
    cursor.offset = scan_offset;
    cursor_seek(&cursor, seg, &scan_offset);
    struct evlog_record record;
    while ((rc = evlog_cursor_next(&cursor, &record)) == 0) {
        if (record.timestamp_ns >= timestamp_ns) {
            *offset_out = record.offset;
            break;
        }
    }
    evlog_cursor_close(&cursor);
    if (rc == ERR_AGAIN) {
        *offset_out = evlog_topic_end_offset(topic);
        rc = 0;
    }
    return rc;
}
