/*
 * evlog.c - opening and closing the event log: the log directory and its
 * lock, topics, and recovery of each topic's segments (torn tails cut and
 * counted, indexes rebuilt, corruption reported with file and byte), plus
 * full verification for `docket log verify`.
 */
#include "evlog_int.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "evlog"

void evlog_error_set(struct evlog_error *error, const char *format, ...) {
    if (error == NULL)
        return;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error->message, sizeof error->message, format, arguments);
    va_end(arguments);
}

/* ---- Topics -------------------------------------------------------------- */

static int topic_name_valid(const char *name) {
    size_t length = strlen(name);
    if (length == 0 || length > LIMIT_EVLOG_TOPIC_NAME_BYTES || name[0] == '.')
        return 0;
    for (size_t index = 0; index < length; index++) {
        char c = name[index];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-')) {
            return 0;
        }
    }
    return 1;
}

struct segment *topic_active_segment(const struct evlog_topic *topic) {
    return topic->segment_count == 0 ? NULL : topic->segments[topic->segment_count - 1];
}

int topic_segment_reserve(struct evlog_topic *topic) {
    if (topic->segment_count >= LIMIT_EVLOG_SEGMENTS)
        return ERR_LIMIT;
    if (topic->segment_count < topic->segment_capacity)
        return 0;
    size_t capacity = topic->segment_capacity == 0 ? 16 : topic->segment_capacity * 2;
    struct segment **grown = mem_realloc(topic->segments, capacity * sizeof *grown);
    if (grown == NULL)
        return ERR_NOMEM;
    topic->segments = grown;
    topic->segment_capacity = capacity;
    return 0;
}

int topic_segment_push(struct evlog_topic *topic, struct segment *seg) {
    CHECK(seg != NULL);
    int rc = topic_segment_reserve(topic);
    if (rc != 0)
        return rc;
    CHECK(topic->segment_count == 0 ||
          topic->segments[topic->segment_count - 1]->end_offset == seg->base_offset);
    topic->segments[topic->segment_count++] = seg;
    return 0;
}

void topic_segments_drop_front(struct evlog_topic *topic, size_t count) {
    CHECK(count < topic->segment_count);
    for (size_t index = 0; index < count; index++) {
        struct segment *seg = topic->segments[index];
        topic->log->io->close(topic->log->io, seg->fd);
        segment_free(seg);
    }
    memmove(topic->segments, topic->segments + count,
            (topic->segment_count - count) * sizeof *topic->segments);
    topic->segment_count -= count;
}

static void topic_free(struct evlog_topic *topic) {
    if (topic == NULL)
        return;
    for (size_t index = 0; index < topic->segment_count; index++) {
        topic->log->io->close(topic->log->io, topic->segments[index]->fd);
        segment_free(topic->segments[index]);
    }
    mem_free(topic->segments);
    commit_topic_free(topic);
    mem_free(topic);
}

/* ---- Recovery ------------------------------------------------------------ */

/* Segment base offsets found in a topic directory, sorted. */
struct base_list {
    struct evlog_topic *topic; /* whose directory is listed */
    int64_t *bases;            /* found bases (owned) */
    size_t count;              /* in use */
    size_t capacity;           /* allocated */
};

static int recovery_visit(void *arg, const char *name) {
    struct base_list *list = arg;
    struct evlog *log = list->topic->log;
    size_t length = strlen(name);
    if (length > 4 && strcmp(name + length - 4, ".tmp") == 0 && !log->read_only) {
        char path[LIMIT_EVLOG_PATH_BYTES];
        if (snprintf(path, sizeof path, "%s/%s", list->topic->path, name) < (int)sizeof path) {
            log->io->unlink(log->io, path); /* a consumers file never renamed into place */
        }
        return 0;
    }
    if (length != 24 || strcmp(name + 20, ".seg") != 0)
        return 0;
    for (size_t index = 0; index < 20; index++) {
        if (name[index] < '0' || name[index] > '9')
            return 0;
    }
    if (list->count >= LIMIT_EVLOG_SEGMENTS)
        return ERR_LIMIT;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity == 0 ? 16 : list->capacity * 2;
        int64_t *grown = mem_realloc(list->bases, capacity * sizeof *grown);
        if (grown == NULL)
            return ERR_NOMEM;
        list->bases = grown;
        list->capacity = capacity;
    }
    list->bases[list->count++] = strtoll(name, NULL, 10);
    return 0;
}

static int recovery_compare(const void *left, const void *right) {
    int64_t a = *(const int64_t *)left;
    int64_t b = *(const int64_t *)right;
    return a < b ? -1 : a > b;
}

/* Removes the segment files of bases[from..count) (after a repair cut). */
static void recovery_remove_after(struct evlog_topic *topic, const struct base_list *list,
                                  size_t from) {
    struct evlog_io *io = topic->log->io;
    char path[LIMIT_EVLOG_PATH_BYTES];
    for (size_t index = from; index < list->count; index++) {
        if (segment_path(path, sizeof path, topic->path, list->bases[index], ".seg") == 0) {
            io->unlink(io, path);
        }
        if (segment_path(path, sizeof path, topic->path, list->bases[index], ".idx") == 0) {
            io->unlink(io, path);
        }
    }
    io->sync_directory(io, topic->path);
}

/* Cuts a segment file to `length` durably. */
static int recovery_truncate(struct evlog_topic *topic, int fd, int64_t length) {
    struct evlog_io *io = topic->log->io;
    int rc = io->truncate(io, fd, length);
    if (rc == 0)
        rc = io->sync(io, fd);
    return rc;
}

/* Writes a rebuilt index beside a sealed segment; failure only costs a
 * rebuild at the next open. */
static void recovery_write_index(struct evlog_topic *topic, const struct segment *seg) {
    struct evlog_io *io = topic->log->io;
    char path[LIMIT_EVLOG_PATH_BYTES];
    uint8_t *data = NULL;
    size_t bytes = 0;
    if (segment_path(path, sizeof path, topic->path, seg->base_offset, ".idx") != 0)
        return;
    if (segment_index_encode(seg, &data, &bytes) != 0)
        return;
    int fd = io->open(io, path, EVLOG_IO_WRITE | EVLOG_IO_CREATE | EVLOG_IO_TRUNCATE);
    if (fd >= 0) {
        io->pwrite(io, fd, data, bytes, 0);
        io->close(io, fd);
    }
    mem_free(data);
}

/* What to do with the records after an invalid frame. */
enum recovery_verdict {
    RECOVERY_CLEAN,   /* no invalid frame */
    RECOVERY_TORN,    /* torn tail of the active segment: cut it */
    RECOVERY_CORRUPT, /* damage inside the log: fail, or cut under repair */
};

static enum recovery_verdict recovery_judge(const struct segment_scan *scan, int last) {
    if (scan->bad_position < 0)
        return RECOVERY_CLEAN;
    if (last && scan->later_valid_position < 0)
        return RECOVERY_TORN;
    return RECOVERY_CORRUPT;
}

static void recovery_corrupt_message(struct evlog_error *error, const char *path,
                                     const struct segment_scan *scan) {
    char follows[96] = "the sealed segment has bytes after its last valid record";
    if (scan->later_valid_position >= 0) {
        snprintf(follows, sizeof follows, "valid records follow at byte %lld",
                 (long long)scan->later_valid_position);
    }
    evlog_error_set(error,
                    "corrupt record in %s at byte %lld (offset %lld expected): %s; %s. The log "
                    "was not opened: restore the file from a backup, or open with repair to cut "
                    "the log at byte %lld (every record after it is dropped)",
                    path, (long long)scan->bad_position, (long long)scan->end_offset, scan->reason,
                    follows, (long long)scan->bad_position);
}

/* Scans a segment's records and applies the verdict: cut a torn tail, fail
 * or cut on corruption. *cut_out is set when later segments must go. */
static int recovery_scan(struct evlog_topic *topic, struct segment *seg, const char *path,
                         int64_t file_bytes, int last, int *cut_out, struct evlog_error *error) {
    struct evlog *log = topic->log;
    struct segment_reader reader;
    struct segment_scan scan;
    segment_reader_init(&reader, log->io, seg->fd, file_bytes);
    int rc =
        segment_scan_records(seg, &reader, LIMIT_EVLOG_INDEX_INTERVAL_BYTES, &scan, NULL, NULL);
    segment_reader_free(&reader);
    if (rc != 0) {
        evlog_error_set(error, "cannot read %s: %s", path, err_str(rc));
        return rc;
    }
    seg->bytes = scan.valid_bytes;
    seg->end_offset = scan.end_offset;
    enum recovery_verdict verdict = recovery_judge(&scan, last);
    if (verdict == RECOVERY_CORRUPT && !(log->repair && !log->read_only)) {
        recovery_corrupt_message(error, path, &scan);
        LOG_ERROR(COMPONENT, "corrupt record inside the log", "path=%s position=%lld reason=\"%s\"",
                  path, (long long)scan.bad_position, scan.reason);
        return ERR_CORRUPT;
    }
    if (verdict == RECOVERY_CLEAN || log->read_only)
        return 0;
    rc = recovery_truncate(topic, seg->fd, scan.valid_bytes);
    if (rc != 0) {
        evlog_error_set(error, "cannot truncate %s: %s", path, err_str(rc));
        return rc;
    }
    if (verdict == RECOVERY_TORN) {
        log->stats.torn_tails_truncated++;
        log->stats.torn_bytes_dropped += (uint64_t)(file_bytes - scan.valid_bytes);
        LOG_WARN(COMPONENT, "torn tail truncated", "path=%s position=%lld bytes_dropped=%lld", path,
                 (long long)scan.valid_bytes, (long long)(file_bytes - scan.valid_bytes));
        return 0;
    }
    log->stats.corruptions_repaired++;
    *cut_out = 1;
    LOG_ERROR(COMPONENT, "repair cut the log at a corrupt record",
              "path=%s position=%lld reason=\"%s\" bytes_dropped=%lld", path,
              (long long)scan.bad_position, scan.reason,
              (long long)(file_bytes - scan.valid_bytes));
    return 0;
}

/* Reads and checks a segment's header. */
static int recovery_header(struct evlog_topic *topic, int fd, int64_t base, const char *path,
                           struct evlog_error *error) {
    uint8_t data[SEGMENT_HEADER_BYTES];
    struct segment_header header;
    int64_t got = topic->log->io->pread(topic->log->io, fd, data, sizeof data, 0);
    if (got < 0) {
        evlog_error_set(error, "cannot read %s: %s", path, err_str((int)got));
        return (int)got;
    }
    int rc = got == SEGMENT_HEADER_BYTES ? segment_header_decode(data, &header) : ERR_CORRUPT;
    if (rc == 0 && header.base_offset != base)
        rc = ERR_CORRUPT;
    if (rc != 0) {
        evlog_error_set(error, "corrupt segment header in %s at byte 0: %s", path,
                        rc == ERR_UNSUPPORTED ? "unknown format version" : "bad magic or checksum");
    }
    return rc;
}

/* A segment file shorter than its header is one whose creation was cut by a
 * crash (header and first batch are synced before any append is
 * acknowledged), so it holds nothing acknowledged: remove it. */
static int recovery_torn_creation(struct evlog_topic *topic, int fd, const char *path) {
    struct evlog_io *io = topic->log->io;
    io->close(io, fd);
    if (topic->log->read_only)
        return 0;
    LOG_WARN(COMPONENT, "removing a segment cut short during creation", "path=%s", path);
    topic->log->stats.torn_tails_truncated++;
    int rc = io->unlink(io, path);
    if (rc == 0)
        rc = io->sync_directory(io, topic->path);
    return rc;
}

/* Opens and recovers one segment file and appends it to the topic. */
static int recovery_segment(struct evlog_topic *topic, int64_t base, int last, int *cut_out,
                            struct evlog_error *error) {
    struct evlog *log = topic->log;
    char path[LIMIT_EVLOG_PATH_BYTES];
    char index_path[LIMIT_EVLOG_PATH_BYTES];
    if (segment_path(path, sizeof path, topic->path, base, ".seg") != 0)
        return ERR_LIMIT;
    if (segment_path(index_path, sizeof index_path, topic->path, base, ".idx") != 0)
        return ERR_LIMIT;
    int fd = log->io->open(log->io, path, log->read_only ? EVLOG_IO_READ : EVLOG_IO_WRITE);
    if (fd < 0) {
        evlog_error_set(error, "cannot open %s: %s", path, err_str(fd));
        return fd;
    }
    struct segment *seg = NULL;
    int64_t file_bytes = 0;
    int rc = log->io->size(log->io, fd, &file_bytes);
    if (rc != 0)
        goto fail;
    if (file_bytes < SEGMENT_HEADER_BYTES && last)
        return recovery_torn_creation(topic, fd, path);
    rc = recovery_header(topic, fd, base, path, error);
    if (rc != 0)
        goto fail;
    rc = ERR_NOMEM;
    seg = mem_calloc(1, sizeof *seg);
    if (seg == NULL)
        goto fail;
    *seg = (struct segment){
        .base_offset = base, .end_offset = base, .bytes = SEGMENT_HEADER_BYTES, .fd = fd};
    if (last || segment_index_load(seg, log->io, index_path, file_bytes) != 0) {
        rc = recovery_scan(topic, seg, path, file_bytes, last, cut_out, error);
        if (rc != 0)
            goto fail;
        if (!last && !log->read_only) {
            log->stats.indexes_rebuilt++;
            recovery_write_index(topic, seg);
        }
    }
    struct segment *previous = topic_active_segment(topic);
    if (previous != NULL && previous->end_offset != base) {
        evlog_error_set(error,
                        "corrupt log: %s starts at offset %lld but the segment before it "
                        "ends at offset %lld",
                        path, (long long)base, (long long)previous->end_offset);
        rc = ERR_CORRUPT;
        goto fail;
    }
    rc = topic_segment_push(topic, seg);
    if (rc != 0)
        goto fail;
    return 0;
fail:
    if (error != NULL && error->message[0] == '\0') {
        evlog_error_set(error, "cannot recover %s: %s", path, err_str(rc));
    }
    log->io->close(log->io, fd);
    segment_free(seg);
    return rc;
}

static int recovery_topic(struct evlog_topic *topic, struct evlog_error *error) {
    struct evlog *log = topic->log;
    struct base_list list = {.topic = topic};
    int rc = log->io->list(log->io, topic->path, recovery_visit, &list);
    if (rc != 0) {
        evlog_error_set(error, "cannot list %s: %s", topic->path, err_str(rc));
        goto done;
    }
    if (list.count > 1)
        qsort(list.bases, list.count, sizeof *list.bases, recovery_compare);
    for (size_t index = 0; index < list.count; index++) {
        int cut = 0;
        rc = recovery_segment(topic, list.bases[index], index + 1 == list.count, &cut, error);
        if (rc != 0)
            goto done;
        if (cut) {
            recovery_remove_after(topic, &list, index + 1);
            break;
        }
    }
    struct segment *active = topic_active_segment(topic);
    topic->next_offset = active == NULL ? 0 : active->end_offset;
    for (size_t index = topic->segment_count; index > 0; index--) {
        const struct segment *seg = topic->segments[index - 1];
        if (seg->end_offset > seg->base_offset) {
            topic->last_timestamp_ns = seg->last_timestamp_ns;
            break;
        }
    }
done:
    mem_free(list.bases);
    return rc;
}

/* Loads (and with `create`, makes) one topic directory. */
static int topic_load(struct evlog *log, const char *name, int create, struct evlog_topic **out,
                      struct evlog_error *error) {
    CHECK(topic_name_valid(name));
    if (log->topic_count >= LIMIT_EVLOG_TOPICS)
        return ERR_LIMIT;
    struct evlog_topic *topic = mem_calloc(1, sizeof *topic);
    if (topic == NULL)
        return ERR_NOMEM;
    topic->log = log;
    topic->orphan_base = -1;
    topic->pending = &topic->batches[0];
    topic->committing = &topic->batches[1];
    snprintf(topic->name, sizeof topic->name, "%s", name);
    int rc = ERR_LIMIT;
    int length = snprintf(topic->path, sizeof topic->path, "%s/%s", log->directory, name);
    if (length <= 0 || (size_t)length >= sizeof topic->path - 32)
        goto fail;
    if (create) {
        rc = log->io->make_directory(log->io, topic->path);
        if (rc == 0)
            rc = log->io->sync_directory(log->io, log->directory);
        if (rc != 0 && rc != ERR_EXISTS)
            goto fail;
    }
    rc = recovery_topic(topic, error);
    if (rc != 0)
        goto fail;
    rc = consumer_load(topic);
    if (rc != 0) {
        evlog_error_set(error, "cannot read the consumer offsets of topic %s: %s", name,
                        err_str(rc));
        goto fail;
    }
    log->topics[log->topic_count++] = topic;
    *out = topic;
    return 0;
fail:
    topic_free(topic);
    return rc;
}

/* ---- Open and close ------------------------------------------------------ */

/* mkdir -p through the seam, syncing each parent that gained an entry. */
static int evlog_make_directories(struct evlog *log) {
    char partial[LIMIT_EVLOG_PATH_BYTES];
    size_t length = strlen(log->directory);
    memcpy(partial, log->directory, length + 1);
    for (size_t index = 1; index <= length; index++) {
        if (partial[index] != '/' && partial[index] != '\0')
            continue;
        char saved = partial[index];
        partial[index] = '\0';
        int rc = log->io->make_directory(log->io, partial);
        if (rc != 0 && rc != ERR_EXISTS)
            return rc;
        partial[index] = saved;
    }
    return 0;
}

static int evlog_topic_visit(void *arg, const char *name) {
    void **context = arg;
    struct evlog *log = context[0];
    struct evlog_error *error = context[1];
    if (!topic_name_valid(name))
        return 0;
    struct evlog_topic *topic = NULL;
    return topic_load(log, name, 0, &topic, error);
}

static int evlog_configure(struct evlog *log, const struct evlog_options *options) {
    size_t length = strlen(options->directory);
    if (length == 0 || length >= sizeof log->directory - LIMIT_EVLOG_TOPIC_NAME_BYTES - 64) {
        return ERR_LIMIT;
    }
    memcpy(log->directory, options->directory, length + 1);
    log->io = options->io != NULL ? options->io : evlog_io_posix();
    log->executor = options->executor;
    log->clock = options->clock != NULL ? options->clock : clock_system();
    log->segment_bytes_max = options->segment_bytes_max > 0 ? options->segment_bytes_max
                                                            : LIMIT_EVLOG_SEGMENT_BYTES_DEFAULT;
    if (log->segment_bytes_max > LIMIT_EVLOG_SEGMENT_BYTES_MAX)
        return ERR_RANGE;
    log->segment_age_ms_max = options->segment_age_ms_max > 0 ? options->segment_age_ms_max
                                                              : LIMIT_EVLOG_SEGMENT_AGE_MS_DEFAULT;
    log->retention_bytes_max = options->retention_bytes_max;
    log->retention_age_ms_max = options->retention_age_ms_max;
    log->read_only = options->read_only;
    log->repair = options->repair;
    log->lock_handle = -1;
    return 0;
}

int evlog_open(struct evlog **log_out, const struct evlog_options *options,
               struct evlog_error *error) {
    CHECK(log_out != NULL && options != NULL && options->directory != NULL);
    CHECK(options->read_only || options->executor != NULL);
    if (error != NULL)
        error->message[0] = '\0';
    struct evlog *log = mem_calloc(1, sizeof *log);
    if (log == NULL)
        return ERR_NOMEM;
    int rc = evlog_configure(log, options);
    if (rc != 0) {
        evlog_error_set(error, "invalid event log options: %s", err_str(rc));
        goto fail;
    }
    if (!log->read_only) {
        char lock_path[LIMIT_EVLOG_PATH_BYTES];
        rc = evlog_make_directories(log);
        snprintf(lock_path, sizeof lock_path, "%s/LOCK", log->directory);
        if (rc == 0)
            rc = log->lock_handle = log->io->lock(log->io, lock_path);
        if (rc < 0) {
            evlog_error_set(error, "cannot open the event log in %s: %s", log->directory,
                            rc == ERR_BUSY ? "another docket process is writing it" : err_str(rc));
            goto fail;
        }
    }
    void *context[2] = {log, error};
    rc = log->io->list(log->io, log->directory, evlog_topic_visit, context);
    if (rc != 0) {
        if (error != NULL && error->message[0] == '\0') {
            evlog_error_set(error, "cannot open the event log in %s: %s", log->directory,
                            err_str(rc));
        }
        goto fail;
    }
    *log_out = log;
    return 0;
fail:
    evlog_close(log);
    return rc;
}

void evlog_close(struct evlog *log) {
    if (log == NULL)
        return;
    CHECK(!evlog_busy(log));
    for (size_t index = 0; index < log->topic_count; index++)
        topic_free(log->topics[index]);
    if (log->lock_handle >= 0)
        log->io->unlock(log->io, log->lock_handle);
    mem_free(log);
}

int evlog_busy(const struct evlog *log) {
    for (size_t index = 0; index < log->topic_count; index++) {
        if (log->topics[index]->job_running)
            return 1;
    }
    return 0;
}

const struct evlog_stats *evlog_stats(const struct evlog *log) {
    return &log->stats;
}

int evlog_topic_open(struct evlog *log, const char *name, struct evlog_topic **topic_out) {
    CHECK(log != NULL && name != NULL && topic_out != NULL);
    if (!topic_name_valid(name))
        return ERR_INVAL;
    for (size_t index = 0; index < log->topic_count; index++) {
        if (strcmp(log->topics[index]->name, name) == 0) {
            *topic_out = log->topics[index];
            return 0;
        }
    }
    if (log->read_only)
        return ERR_NOTFOUND;
    struct evlog_error error = {{0}};
    int rc = topic_load(log, name, 1, topic_out, &error);
    if (rc != 0 && error.message[0] != '\0') {
        LOG_ERROR(COMPONENT, "cannot open topic", "topic=%s error=\"%s\"", name, error.message);
    }
    return rc;
}

size_t evlog_topic_count(const struct evlog *log) {
    return log->topic_count;
}

struct evlog_topic *evlog_topic_at(const struct evlog *log, size_t index) {
    CHECK(index < log->topic_count);
    return log->topics[index];
}

const char *evlog_topic_name(const struct evlog_topic *topic) {
    return topic->name;
}

int64_t evlog_topic_start_offset(const struct evlog_topic *topic) {
    return topic->segment_count == 0 ? 0 : topic->segments[0]->base_offset;
}

int64_t evlog_topic_end_offset(const struct evlog_topic *topic) {
    const struct segment *active = topic_active_segment(topic);
    return active == NULL ? 0 : active->end_offset;
}

size_t evlog_topic_segment_count(const struct evlog_topic *topic) {
    return topic->segment_count;
}

int64_t evlog_topic_bytes(const struct evlog_topic *topic) {
    int64_t bytes = 0;
    for (size_t index = 0; index < topic->segment_count; index++) {
        bytes += topic->segments[index]->bytes;
    }
    return bytes;
}

/* ---- Verification ---------------------------------------------------------- */

/* Adapts the scan's progress to evlog_verify's. */
struct verify_context {
    evlog_verify_progress progress; /* caller's callback, or NULL */
    void *arg;                      /* for progress */
    const char *path;               /* segment being verified */
    int64_t total_bytes;            /* its size */
};

static void verify_progress(void *arg, int64_t done_bytes) {
    struct verify_context *context = arg;
    if (context->progress != NULL) {
        context->progress(context->arg, context->path, done_bytes, context->total_bytes);
    }
}

/* The sealed index in memory must be exactly the one a scan builds. */
static int verify_index_matches(const struct segment *loaded, const struct segment *scanned) {
    if (loaded->end_offset != scanned->end_offset)
        return 0;
    if (loaded->entry_count != scanned->entry_count)
        return 0;
    for (uint32_t index = 0; index < loaded->entry_count; index++) {
        if (loaded->entries[index].position != scanned->entries[index].position ||
            loaded->entries[index].relative_offset != scanned->entries[index].relative_offset) {
            return 0;
        }
    }
    return 1;
}

static int verify_segment(struct evlog_topic *topic, size_t position,
                          struct verify_context *context, int64_t *torn_bytes_out,
                          struct evlog_error *error) {
    struct evlog *log = topic->log;
    const struct segment *seg = topic->segments[position];
    int last = position + 1 == topic->segment_count;
    struct segment scanned = {.base_offset = seg->base_offset, .end_offset = seg->base_offset};
    struct segment_reader reader;
    struct segment_scan scan;
    int rc = log->io->size(log->io, seg->fd, &context->total_bytes);
    if (rc != 0)
        return rc;
    segment_reader_init(&reader, log->io, seg->fd, context->total_bytes);
    rc = segment_scan_records(&scanned, &reader, LIMIT_EVLOG_INDEX_INTERVAL_BYTES, &scan,
                              verify_progress, context);
    segment_reader_free(&reader);
    scanned.end_offset = scan.end_offset;
    if (rc == 0)
        verify_progress(context, context->total_bytes);
    enum recovery_verdict verdict = rc == 0 ? recovery_judge(&scan, last) : RECOVERY_CLEAN;
    if (rc != 0) {
        evlog_error_set(error, "cannot read %s: %s", context->path, err_str(rc));
    } else if (verdict == RECOVERY_CORRUPT) {
        recovery_corrupt_message(error, context->path, &scan);
        rc = ERR_CORRUPT;
    } else if (verdict == RECOVERY_TORN) {
        *torn_bytes_out += context->total_bytes - scan.valid_bytes;
    } else if (!last && !verify_index_matches(seg, &scanned)) {
        evlog_error_set(error,
                        "the index of %s disagrees with its records (delete the .idx file "
                        "to have it rebuilt)",
                        context->path);
        rc = ERR_CORRUPT;
    }
    mem_free(scanned.entries);
    return rc;
}

int evlog_verify(struct evlog *log, evlog_verify_progress progress, void *arg,
                 int64_t *torn_bytes_out, struct evlog_error *error) {
    CHECK(log != NULL && torn_bytes_out != NULL);
    *torn_bytes_out = 0;
    char path[LIMIT_EVLOG_PATH_BYTES];
    for (size_t topic_index = 0; topic_index < log->topic_count; topic_index++) {
        struct evlog_topic *topic = log->topics[topic_index];
        for (size_t index = 0; index < topic->segment_count; index++) {
            int rc = segment_path(path, sizeof path, topic->path,
                                  topic->segments[index]->base_offset, ".seg");
            if (rc != 0)
                return rc;
            struct verify_context context = {.progress = progress, .arg = arg, .path = path};
            rc = verify_segment(topic, index, &context, torn_bytes_out, error);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}
