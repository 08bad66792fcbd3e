/*
 * segment.h - one segment file in memory: its descriptor, durable length,
 * offsets, timestamps and sparse index, plus the bounded read window used by
 * recovery, verification and cursors, and the record-by-record scan that
 * recovery and verification share. Private to src/evlog/.
 */
#ifndef DOCKET_EVLOG_SEGMENT_H
#define DOCKET_EVLOG_SEGMENT_H

#include "format.h"
#include "io.h"

#include <stddef.h>
#include <stdint.h>

struct segment {
    int64_t base_offset;         /* offset of its first record (also its file name) */
    int64_t end_offset;          /* offset after its last durable record */
    int64_t bytes;               /* durable length of the file: header + whole records */
    int64_t first_timestamp_ns;  /* timestamp of the first record, 0 when empty */
    int64_t last_timestamp_ns;   /* timestamp of the last record, 0 when empty */
    int fd;                      /* open descriptor (read-write for the active segment) */
    struct index_entry *entries; /* sparse index, ascending (owned) */
    uint32_t entry_count;        /* entries in use */
    uint32_t entry_capacity;     /* entries allocated */
};

/* A window of a segment's bytes read with pread, grown (up to one maximal
 * record) only when a single frame does not fit. */
struct segment_reader {
    struct evlog_io *io; /* where to read */
    int fd;              /* the segment */
    int64_t limit;       /* bytes past this position are never read */
    uint8_t *data;       /* window storage (owned) */
    size_t capacity;     /* allocated bytes */
    int64_t start;       /* segment position of data[0] */
    size_t length;       /* valid bytes in data */
};

/* What a scan found. */
struct segment_scan {
    int64_t valid_bytes;          /* position after the last valid record */
    int64_t end_offset;           /* offset after the last valid record */
    int64_t record_count;         /* valid records */
    int64_t bad_position;         /* first invalid frame, -1 when the scan was clean */
    int64_t later_valid_position; /* a valid frame after bad_position, -1 if none (torn tail) */
    const char *reason;           /* why the frame at bad_position is invalid */
};

/* "<directory>/<20-digit base><suffix>" into out; ERR_LIMIT if it does not fit. */
int segment_path(char *out, size_t out_size, const char *directory, int64_t base_offset,
                 const char *suffix);

void segment_reader_init(struct segment_reader *reader, struct evlog_io *io, int fd, int64_t limit);
void segment_reader_free(struct segment_reader *reader);

/* Decodes the frame at `position`: 0, ERR_AGAIN (frame runs past `limit`),
 * ERR_CORRUPT, or an I/O error. */
int segment_reader_frame(struct segment_reader *reader, int64_t position,
                         struct evlog_record *record, size_t *frame_bytes);

/* Scans records from the segment header on, building seg's index and
 * timestamps (seg->base_offset must be set). Stops at the first invalid frame
 * and then looks for a valid frame after it, to tell a torn tail from
 * corruption. Returns 0 or an I/O error; the outcome is in *scan. */
int segment_scan_records(struct segment *seg, struct segment_reader *reader,
                         int64_t index_interval_bytes, struct segment_scan *scan,
                         void (*progress)(void *arg, int64_t done_bytes), void *progress_arg);

/* Adds an index entry if `position` is at least `interval` past the last one
 * (or the index is empty). Allocation failure only makes the index sparser. */
void segment_index_note(struct segment *seg, int64_t offset, int64_t position, int64_t timestamp_ns,
                        int64_t interval);

/* Position of the indexed record at or before `offset` (the header end if
 * none), and that record's offset in *offset_out. */
int64_t segment_index_lookup(const struct segment *seg, int64_t offset, int64_t *offset_out);

/* Like lookup, but by timestamp: the last entry with timestamp < ts. */
int64_t segment_index_lookup_time(const struct segment *seg, int64_t timestamp_ns,
                                  int64_t *offset_out);

/* Encodes seg's index file into a new buffer (owned by the caller). */
int segment_index_encode(const struct segment *seg, uint8_t **data_out, size_t *bytes_out);

/* Loads an index file into seg if it is intact and describes exactly a
 * segment of `segment_bytes`; 0, ERR_CORRUPT (stale or damaged), ERR_NOTFOUND. */
int segment_index_load(struct segment *seg, struct evlog_io *io, const char *path,
                       int64_t segment_bytes);

void segment_free(struct segment *seg);

#endif
