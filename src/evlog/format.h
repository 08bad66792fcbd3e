/*
 * format.h - the event log's on-disk format, version 1: segment files, the
 * records framed inside them, and the sparse offset index beside each
 * segment. This header is the specification; format.c is the only code that
 * reads or writes these bytes. All integers are little-endian.
 *
 * Layout under the data directory:
 *   log/LOCK                          flock()ed by the one process writing the log
 *   log/<topic>/<base>.seg            segment: header, then records (base = 20 digits,
 *                                     the offset of its first record, so names sort)
 *   log/<topic>/<base>.idx            sparse index of that segment (rebuildable)
 *   log/<topic>/consumers             named consumer offsets (see consumer.c)
 *
 * Segment header (SEGMENT_HEADER_BYTES = 32), at position 0 of every .seg:
 *
 *   offset  size  field
 *   ------  ----  -----------------------------------------------------------
 *        0     8  magic "DKTEVSEG"
 *        8     2  format version (FORMAT_VERSION = 1)
 *       10     2  header bytes (32); records start here
 *       12     4  flags, 0 (reserved)
 *       16     8  base offset: offset of the first record in this segment
 *       24     4  reserved, 0
 *       28     4  CRC-32C of bytes 0..27
 *
 * Record frame (RECORD_FRAME_BYTES = 32 fixed bytes + variable parts):
 *
 *   offset  size  field
 *   ------  ----  -----------------------------------------------------------
 *        0     4  CRC-32C of bytes 4 .. 8+body_bytes-1 (the length and the body)
 *        4     4  body_bytes: bytes after this field (24 + K + headers + V)
 *        8     8  offset: dense, previous record's offset + 1
 *       16     8  timestamp: wall-clock ns since the Unix epoch, non-decreasing
 *                 within a topic (append clamps a clock that steps back)
 *       24     2  K = key bytes
 *       26     2  H = header count
 *       28     4  V = value bytes
 *       32     K  key
 *     32+K     .  H headers, each:  2 name bytes N | 4 value bytes L | N name | L value
 *        .     V  value
 *
 * The CRC covers the length field, so a flipped length is caught like any
 * other flipped bit. A frame whose length exceeds LIMIT_EVLOG_RECORD_BYTES, or
 * whose inner lengths do not add up to body_bytes, is corrupt.
 *
 * Index file (.idx): INDEX_HEADER_BYTES = 64, then entry_count entries of
 * INDEX_ENTRY_BYTES = 16, one per LIMIT_EVLOG_INDEX_INTERVAL_BYTES of segment
 * data (the first record always has one). Written when a segment is sealed;
 * missing, torn or stale files are rebuilt from the segment at open.
 *
 *   offset  size  field
 *   ------  ----  -----------------------------------------------------------
 *        0     8  magic "DKTEVIDX"
 *        8     2  format version (1)
 *       10     2  header bytes (64)
 *       12     4  entry count
 *       16     8  base offset of the segment
 *       24     8  end offset: offset after the segment's last record
 *       32     8  segment bytes this index describes (stale if the .seg differs)
 *       40     8  timestamp of the first record (ns)
 *       48     8  timestamp of the last record (ns)
 *       56     4  CRC-32C of all entries
 *       60     4  CRC-32C of bytes 0..59
 *
 *   entry:  0  4  offset - base offset
 *           4  4  byte position of that record in the segment
 *           8  8  its timestamp (ns)
 *
 * Consumers file (log/<topic>/consumers): CONSUMERS_HEADER_BYTES = 16, then
 * count entries of CONSUMERS_ENTRY_BYTES = 80. Replaced whole on every
 * commit (write consumers.tmp, fdatasync, rename, fsync the directory), so
 * it is always either the old or the new table.
 *
 *   offset  size  field
 *   ------  ----  -----------------------------------------------------------
 *        0     8  magic "DKTEVOFF"
 *        8     2  format version (1)
 *       10     2  count of entries
 *       12     4  CRC-32C of all entries
 *
 *   entry:  0  1  name bytes N (1..64)
 *           1  1  flags: bit 0 = required (retention never passes its offset)
 *           2  6  reserved, 0
 *           8  8  offset: the next record the consumer will read
 *          16 64  name, zero-padded
 */
#ifndef DOCKET_EVLOG_FORMAT_H
#define DOCKET_EVLOG_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define FORMAT_VERSION 1
#define SEGMENT_MAGIC "DKTEVSEG"
#define INDEX_MAGIC "DKTEVIDX"
#define SEGMENT_HEADER_BYTES 32
#define RECORD_FRAME_BYTES 32
#define RECORD_BODY_FIXED_BYTES 24
#define RECORD_HEADER_FIXED_BYTES 6
#define INDEX_HEADER_BYTES 64
#define INDEX_ENTRY_BYTES 16
#define CONSUMERS_MAGIC "DKTEVOFF"
#define CONSUMERS_HEADER_BYTES 16
#define CONSUMERS_ENTRY_BYTES 80

/* One record header (a name/value pair carried beside the value). */
struct evlog_header {
    const uint8_t *name;  /* name bytes, not NUL-terminated */
    size_t name_bytes;    /* length of name */
    const uint8_t *value; /* value bytes */
    size_t value_bytes;   /* length of value */
};

/* A record to append, or one decoded from a segment (then every pointer
 * points into the buffer it was decoded from). */
struct evlog_record {
    int64_t offset;                     /* position in the topic, dense from 0 */
    int64_t timestamp_ns;               /* wall time of the append, ns since the epoch */
    const uint8_t *key;                 /* key bytes (may be NULL when key_bytes is 0) */
    size_t key_bytes;                   /* length of key */
    const struct evlog_header *headers; /* encode input: header_count headers */
    size_t header_count;                /* number of headers */
    const uint8_t *header_data;         /* decode output: the encoded headers */
    size_t header_data_bytes;           /* length of header_data */
    const uint8_t *value;               /* value bytes */
    size_t value_bytes;                 /* length of value */
};

/* The fixed part of a segment header. */
struct segment_header {
    int64_t base_offset; /* offset of the segment's first record */
};

/* The fixed part of an index file. */
struct index_header {
    uint32_t entry_count;       /* entries that follow */
    int64_t base_offset;        /* segment's base offset */
    int64_t end_offset;         /* offset after the segment's last record */
    int64_t segment_bytes;      /* size of the .seg this index was built from */
    int64_t first_timestamp_ns; /* timestamp of the first record, 0 if none */
    int64_t last_timestamp_ns;  /* timestamp of the last record, 0 if none */
    uint32_t entries_crc;       /* CRC-32C of the entries */
};

/* One sparse index entry. */
struct index_entry {
    uint32_t relative_offset; /* record offset - base offset */
    uint32_t position;        /* byte position of the record's frame in the segment */
    int64_t timestamp_ns;     /* the record's timestamp */
};

/* Checks a record against the limits of limits.h. 0, ERR_INVAL or ERR_LIMIT. */
int record_validate(const struct evlog_record *record);

/* Bytes record_encode() writes for `record` (already validated). */
size_t record_encoded_bytes(const struct evlog_record *record);

/* Frames `record` (with its offset and timestamp) into `out`. Returns 0,
 * ERR_LIMIT if out_bytes is too small, or a record_validate() error. */
int record_encode(const struct evlog_record *record, uint8_t *out, size_t out_bytes);

/* Decodes the frame at data[0..available). Returns 0 with *frame_bytes set;
 * ERR_AGAIN when the frame's length field is sane but more than `available`
 * bytes are needed (*frame_bytes = bytes needed); ERR_CORRUPT when the length,
 * the CRC or the inner lengths are wrong. */
int record_decode(const uint8_t *data, size_t available, struct evlog_record *out,
                  size_t *frame_bytes);

/* Iterates the encoded headers of a decoded record: *cursor starts at 0.
 * Returns 1 with *out filled, 0 at the end. */
int record_header_next(const struct evlog_record *record, size_t *cursor, struct evlog_header *out);

void segment_header_encode(const struct segment_header *header, uint8_t out[SEGMENT_HEADER_BYTES]);

/* 0 or ERR_CORRUPT (magic, version, size or CRC wrong). */
int segment_header_decode(const uint8_t data[SEGMENT_HEADER_BYTES], struct segment_header *out);

void index_header_encode(const struct index_header *header, uint8_t out[INDEX_HEADER_BYTES]);
int index_header_decode(const uint8_t data[INDEX_HEADER_BYTES], struct index_header *out);
void index_entry_encode(const struct index_entry *entry, uint8_t out[INDEX_ENTRY_BYTES]);
void index_entry_decode(const uint8_t data[INDEX_ENTRY_BYTES], struct index_entry *out);

/* Little-endian helpers shared by the event-log files. */
static inline void format_put_u16(uint8_t *out, uint16_t value) {
    out[0] = (uint8_t)value;
    out[1] = (uint8_t)(value >> 8);
}
static inline void format_put_u32(uint8_t *out, uint32_t value) {
    for (int index = 0; index < 4; index++)
        out[index] = (uint8_t)(value >> (8 * index));
}
static inline void format_put_u64(uint8_t *out, uint64_t value) {
    for (int index = 0; index < 8; index++)
        out[index] = (uint8_t)(value >> (8 * index));
}
static inline uint16_t format_get_u16(const uint8_t *data) {
    return (uint16_t)(data[0] | data[1] << 8);
}
static inline uint32_t format_get_u32(const uint8_t *data) {
    return (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
           (uint32_t)data[3] << 24;
}
static inline uint64_t format_get_u64(const uint8_t *data) {
    return (uint64_t)format_get_u32(data) | (uint64_t)format_get_u32(data + 4) << 32;
}

#endif
