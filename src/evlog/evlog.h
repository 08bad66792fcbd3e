/*
 * evlog.h - Docket's embedded event log: topics of segmented, append-only,
 * CRC-framed records under <data_dir>/log/, with group-committed durable
 * appends, readers from any retained offset, named consumer offsets, time
 * and size retention, and crash recovery. The byte layouts are in format.h.
 *
 * Lifecycle (libuv style): evlog_open -> evlog_topic_open -> evlog_append /
 * cursors / consumers -> evlog_close once no commit is in flight
 * (evlog_busy() == 0).
 *
 * Threading: every function here runs on one thread, the "loop" thread. The
 * only blocking work (write + fdatasync, segment creation, repair) is handed
 * to a `struct evlog_executor`, whose `work` runs elsewhere and whose `done`
 * comes back on the loop thread. The server backs it with uv_queue_work
 * (evlog_uv.h); tests run it by hand, deterministically.
 *
 * Group commit: evlog_append() frames the record into the topic's pending
 * batch and returns its offset at once. When no commit is running, the batch
 * is written and fdatasync'ed as one job; records appended meanwhile wait and
 * go together in the next job, started the moment the running one finishes
 * (leader/follower, no timer). A lone append therefore costs one fsync, and
 * under load one fsync covers everything that arrived during the previous one.
 * Callbacks report durability (status 0) only after the fdatasync returned.
 *
 * Failures: if a write or fdatasync fails (ENOSPC, EIO), that batch and every
 * record appended after it fail with the error, the segment is truncated back
 * to its last durable length (after an fsync error through a freshly opened
 * descriptor: pages the kernel dropped must not be trusted, "fsyncgate"), and
 * the topic refuses appends for LIMIT_EVLOG_RETRY_MS before accepting them
 * again. evlog_writable() is 0 meanwhile (the server's /readyz turns 503).
 */
#ifndef DOCKET_EVLOG_EVLOG_H
#define DOCKET_EVLOG_EVLOG_H

#include "../base/clock.h"
#include "../base/limits.h"
#include "format.h"
#include "io.h"

#include <stddef.h>
#include <stdint.h>

struct evlog;
struct evlog_topic;

/* Where blocking work runs. `work(arg)` may run on any thread and must not
 * touch the log; `done(arg)` must then run on the loop thread. */
struct evlog_executor {
    void (*submit)(struct evlog_executor *executor, void (*work)(void *arg),
                   void (*done)(void *arg), void *arg);
};

struct evlog_options {
    const char *directory;           /* the log directory, normally <data_dir>/log */
    struct evlog_io *io;             /* file operations; NULL = evlog_io_posix() */
    struct evlog_executor *executor; /* runs commits; required unless read_only */
    struct clock *clock;             /* timestamps and ages; NULL = clock_system() */
    int64_t segment_bytes_max;       /* roll size; 0 = LIMIT_EVLOG_SEGMENT_BYTES_DEFAULT */
    int64_t segment_age_ms_max;      /* roll age; 0 = LIMIT_EVLOG_SEGMENT_AGE_MS_DEFAULT */
    int64_t retention_bytes_max;     /* per topic; 0 = keep everything */
    int64_t retention_age_ms_max;    /* per topic; 0 = keep everything */
    int read_only;                   /* inspect only: no lock, no truncation, no writes (CLI) */
    int repair; /* on corruption inside the log, cut it at the bad record instead of
                   failing (drops the records after it; logged loudly) */
};

/* Why evlog_open or evlog_verify failed, for people. */
struct evlog_error {
    char message[768]; /* e.g. "corrupt record in .../00000000000000000000.seg at byte 4096 ..." */
};

/* Counters since open (exported on /metrics by the server). */
struct evlog_stats {
    uint64_t appends;              /* records acknowledged durable */
    uint64_t append_failures;      /* records whose append failed after being accepted */
    uint64_t commits;              /* batches written */
    uint64_t fsyncs;               /* fdatasync calls on segment files */
    uint64_t bytes_written;        /* record bytes made durable */
    uint64_t write_errors;         /* failed writes or fsyncs */
    uint64_t torn_tails_truncated; /* torn tails cut at open */
    uint64_t torn_bytes_dropped;   /* bytes removed by those cuts */
    uint64_t indexes_rebuilt;      /* .idx files rebuilt from their segment */
    uint64_t corruptions_repaired; /* cuts made because of the repair option */
    uint64_t segments_deleted;     /* segments removed by retention */
};

/* Called once per accepted append: status 0 when the record is durable, or the
 * error that made it fail. */
typedef void (*evlog_append_callback)(void *arg, int status, int64_t offset);

/* Called after new records became durable; end_offset is the new end. */
typedef void (*evlog_wake_callback)(void *arg, struct evlog_topic *topic, int64_t end_offset);

/* Opens (creating when missing, unless read_only) the log directory and every
 * topic in it, recovering each: a torn tail is truncated and counted, missing
 * or stale indexes are rebuilt; corruption inside the log fails with
 * ERR_CORRUPT and `error` naming the file and byte (unless options->repair).
 * ERR_BUSY if another process has the log open for writing. */
int evlog_open(struct evlog **log_out, const struct evlog_options *options,
               struct evlog_error *error);

/* Closes every file. No commit may be in flight (see evlog_busy). */
void evlog_close(struct evlog *log);

/* 1 while a commit or repair job is running on the executor. */
int evlog_busy(const struct evlog *log);

/* 1 when every topic accepts appends (0 after a write/fsync failure until a
 * retry succeeds or is allowed). */
int evlog_writable(const struct evlog *log);

/* Lets failed topics try again once LIMIT_EVLOG_RETRY_MS passed (call it from
 * a timer; appends also do it). */
void evlog_retry(struct evlog *log);

const struct evlog_stats *evlog_stats(const struct evlog *log);

/* Opens a topic by name, creating it unless the log is read-only.
 * ERR_INVAL for a bad name, ERR_NOTFOUND (read-only), ERR_LIMIT. */
int evlog_topic_open(struct evlog *log, const char *name, struct evlog_topic **topic_out);

size_t evlog_topic_count(const struct evlog *log);
struct evlog_topic *evlog_topic_at(const struct evlog *log, size_t index);
const char *evlog_topic_name(const struct evlog_topic *topic);

/* First retained offset, and the offset after the last durable record. */
int64_t evlog_topic_start_offset(const struct evlog_topic *topic);
int64_t evlog_topic_end_offset(const struct evlog_topic *topic);
size_t evlog_topic_segment_count(const struct evlog_topic *topic);
int64_t evlog_topic_bytes(const struct evlog_topic *topic);

/* Appends a record (its offset and timestamp are assigned here). Returns the
 * offset (>= 0) at once; `callback` reports durability later, exactly once.
 * Errors returned here (no callback follows): ERR_INVAL/ERR_LIMIT for a bad
 * record, ERR_AGAIN when LIMIT_EVLOG_PENDING_* is reached, the topic's write
 * error (ERR_NOSPC, ERR_IO) while it is unwritable, ERR_DENIED if read-only. */
int64_t evlog_append(struct evlog_topic *topic, const struct evlog_record *record,
                     evlog_append_callback callback, void *arg);

/* ---- Readers ---------------------------------------------------------- */

/* Reads records in offset order from a starting offset. Only durable records
 * are returned. A record's pointers stay valid until the next call. */
struct evlog_cursor {
    struct evlog_topic *topic; /* topic read */
    int64_t offset;            /* offset of the next record to return */
    int64_t segment_base;      /* segment that `position` is in; -1 = look up again */
    int64_t position;          /* byte position of record `offset` in that segment */
    uint8_t *window;           /* segment bytes read ahead (owned) */
    size_t window_capacity;    /* allocated bytes of window */
    int64_t window_start;      /* segment position of window[0] */
    size_t window_length;      /* valid bytes in window */
};

/* ERR_RANGE if offset is before the first retained record or past the end. */
int evlog_cursor_open(struct evlog_cursor *cursor, struct evlog_topic *topic, int64_t offset);

/* 0 with *record filled, ERR_AGAIN when no further durable record exists
 * yet, ERR_RANGE if retention removed the next record, ERR_CORRUPT, ERR_IO. */
int evlog_cursor_next(struct evlog_cursor *cursor, struct evlog_record *record);
void evlog_cursor_close(struct evlog_cursor *cursor);

/* Offset of the first record with timestamp >= timestamp_ns (the end offset
 * when there is none). Timestamps never decrease within a topic. */
int evlog_offset_for_time(struct evlog_topic *topic, int64_t timestamp_ns, int64_t *offset_out);

/* In-process consumers: `callback` runs (on the loop thread) whenever new
 * records became durable. ERR_LIMIT past LIMIT_EVLOG_SUBSCRIBERS. */
int evlog_subscribe(struct evlog_topic *topic, evlog_wake_callback callback, void *arg);
void evlog_unsubscribe(struct evlog_topic *topic, evlog_wake_callback callback, void *arg);

/* ---- Named consumers ---------------------------------------------------- */

/* A consumer's stored position: `offset` is the next record it will read. */
struct evlog_consumer_info {
    char name[LIMIT_EVLOG_CONSUMER_NAME_BYTES + 1]; /* [A-Za-z0-9._-]+ */
    int64_t offset;                                 /* next offset to consume */
    int64_t lag;                                    /* end offset - offset */
    int required;                                   /* retention never passes its offset */
};

/* Stores `offset` (the next record to consume) for `name`, creating the
 * consumer; durable when this returns 0 (write-temp + fsync + rename + fsync
 * of the directory). Rewinding is committing a smaller offset. */
int evlog_consumer_commit(struct evlog_topic *topic, const char *name, int64_t offset);

/* Marks a consumer as required: retention keeps every record it has not
 * consumed. Creates it at the start offset when new. */
int evlog_consumer_set_required(struct evlog_topic *topic, const char *name, int required);

/* ERR_NOTFOUND for an unknown consumer. */
int evlog_consumer_fetch(struct evlog_topic *topic, const char *name,
                         struct evlog_consumer_info *info_out);

/* Rewinds (or advances) a consumer to the first record at or after a time. */
int evlog_consumer_rewind_time(struct evlog_topic *topic, const char *name, int64_t timestamp_ns);

/* Fills up to `capacity` entries; returns the number of consumers. */
size_t evlog_consumer_list(struct evlog_topic *topic, struct evlog_consumer_info *out,
                           size_t capacity);

/* ---- Verification ---------------------------------------------------- */

/* Progress of evlog_verify, reported after each chunk of each segment. */
typedef void (*evlog_verify_progress)(void *arg, const char *segment_path, int64_t done_bytes,
                                      int64_t total_bytes);

/* Reads every record of every segment of every topic, checking CRCs, offsets
 * and indexes. Returns 0, ERR_CORRUPT with `error` naming file and byte, or an
 * I/O error. A torn tail (only possible on a read-only log after a crash) is
 * reported in *torn_bytes_out and is not an error. */
int evlog_verify(struct evlog *log, evlog_verify_progress progress, void *arg,
                 int64_t *torn_bytes_out, struct evlog_error *error);

#endif
