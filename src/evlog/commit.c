/*
 * commit.c - appends and group commit (see evlog.h for the design).
 *
 * One job per topic runs on the executor at a time. The loop thread owns the
 * topic; the worker sees only the job's inputs (a batch nobody else touches
 * while it runs, a descriptor, a position) and writes only the job's outputs.
 *
 *   append -> pending batch --(no job running)--> commit job: [roll: index of
 *   the sealed segment, create + header + fdatasync, retention unlinks, fsync
 *   of the directory] write + fdatasync -> done: callbacks(0), wake
 *   subscribers, start the next job with everything appended meanwhile.
 *
 *   A failed job -> every record of that batch and of the pending batch fails
 *   with the error -> repair job: [reopen after an fsync error] truncate to
 *   the durable length + fdatasync, remove a half-created segment -> the topic
 *   refuses appends until LIMIT_EVLOG_RETRY_MS after the failure.
 */
#include "evlog_int.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/mem.h"

#include <string.h>

#define COMPONENT "evlog"

static void commit_start(struct evlog_topic *topic);
static void repair_start(struct evlog_topic *topic);

/* ---- Batches ------------------------------------------------------------- */

/* Room for one more record of `bytes`: ERR_AGAIN at the pending limits. */
static int batch_reserve(struct batch *batch, size_t bytes) {
    if (batch->count >= LIMIT_EVLOG_PENDING_RECORDS)
        return ERR_AGAIN;
    if (batch->length + bytes > LIMIT_EVLOG_PENDING_BYTES)
        return ERR_AGAIN;
    if (batch->length + bytes > batch->capacity) {
        size_t capacity = batch->capacity == 0 ? 64 * 1024 : batch->capacity;
        while (capacity < batch->length + bytes)
            capacity *= 2;
        if (capacity > LIMIT_EVLOG_PENDING_BYTES)
            capacity = LIMIT_EVLOG_PENDING_BYTES;
        uint8_t *grown = mem_realloc(batch->data, capacity);
        if (grown == NULL)
            return ERR_NOMEM;
        batch->data = grown;
        batch->capacity = capacity;
    }
    if (batch->count == batch->record_capacity) {
        size_t capacity = batch->record_capacity == 0 ? 256 : batch->record_capacity * 2;
        struct pending_record *grown = mem_realloc(batch->records, capacity * sizeof *grown);
        if (grown == NULL)
            return ERR_NOMEM;
        batch->records = grown;
        batch->record_capacity = capacity;
    }
    return 0;
}

static void batch_fail(struct batch *batch, int status, struct evlog_stats *stats) {
    CHECK(status < 0);
    for (size_t index = 0; index < batch->count; index++) {
        const struct pending_record *record = &batch->records[index];
        record->callback(record->arg, status, record->offset);
    }
    stats->append_failures += batch->count;
    batch->count = 0;
    batch->length = 0;
}

void commit_topic_free(struct evlog_topic *topic) {
    for (int index = 0; index < 2; index++) {
        CHECK(topic->batches[index].count == 0);
        mem_free(topic->batches[index].data);
        mem_free(topic->batches[index].records);
    }
}

/* ---- State --------------------------------------------------------------- */

static int64_t commit_now_ms(const struct evlog_topic *topic) {
    return clock_monotonic_ms(topic->log->clock);
}

static int commit_retry_due(const struct evlog_topic *topic) {
    return commit_now_ms(topic) - topic->failed_ms >= LIMIT_EVLOG_RETRY_MS;
}

/* Whether an append may proceed now; moves a recovered topic back to
 * writable, or starts a due repair. */
static int commit_admit(struct evlog_topic *topic) {
    switch (topic->state) {
    case TOPIC_WRITABLE:
        return 0;
    case TOPIC_COOLING:
        if (!commit_retry_due(topic))
            return topic->error;
        topic->state = TOPIC_WRITABLE;
        LOG_INFO(COMPONENT, "appends resume", "topic=%s", topic->name);
        return 0;
    case TOPIC_BROKEN:
        if (commit_retry_due(topic) && !topic->job_running)
            repair_start(topic);
        return topic->error;
    case TOPIC_REPAIRING:
        return topic->error;
    }
    return ERR_INVAL;
}

int evlog_writable(const struct evlog *log) {
    for (size_t index = 0; index < log->topic_count; index++) {
        const struct evlog_topic *topic = log->topics[index];
        if (topic->state == TOPIC_WRITABLE)
            continue;
        if (topic->state == TOPIC_COOLING && commit_retry_due(topic))
            continue;
        return 0;
    }
    return !log->read_only;
}

void evlog_retry(struct evlog *log) {
    for (size_t index = 0; index < log->topic_count; index++) {
        struct evlog_topic *topic = log->topics[index];
        if (topic->state == TOPIC_BROKEN || topic->state == TOPIC_COOLING)
            commit_admit(topic);
    }
}

/* ---- Append -------------------------------------------------------------- */

int64_t evlog_append(struct evlog_topic *topic, const struct evlog_record *record,
                     evlog_append_callback callback, void *arg) {
    CHECK(topic != NULL && record != NULL && callback != NULL);
    struct evlog *log = topic->log;
    if (log->read_only)
        return ERR_DENIED;
    int rc = record_validate(record);
    if (rc != 0)
        return rc;
    rc = commit_admit(topic);
    if (rc != 0)
        return rc;
    size_t bytes = record_encoded_bytes(record);
    struct batch *batch = topic->pending;
    rc = batch_reserve(batch, bytes);
    if (rc != 0)
        return rc;
    int64_t now_ns = log->clock->wall_ns(log->clock);
    struct evlog_record framed = *record;
    framed.offset = topic->next_offset;
    framed.timestamp_ns = now_ns > topic->last_timestamp_ns ? now_ns : topic->last_timestamp_ns;
    rc = record_encode(&framed, batch->data + batch->length, bytes);
    CHECK(rc == 0);
    batch->records[batch->count++] = (struct pending_record){
        .offset = framed.offset,
        .timestamp_ns = framed.timestamp_ns,
        .batch_position = (uint32_t)batch->length,
        .callback = callback,
        .arg = arg,
    };
    batch->length += bytes;
    topic->next_offset++;
    topic->last_timestamp_ns = framed.timestamp_ns;
    if (!topic->job_running)
        commit_start(topic);
    return framed.offset;
}

int evlog_subscribe(struct evlog_topic *topic, evlog_wake_callback callback, void *arg) {
    CHECK(topic != NULL && callback != NULL);
    if (topic->subscriber_count >= LIMIT_EVLOG_SUBSCRIBERS)
        return ERR_LIMIT;
    topic->subscribers[topic->subscriber_count++] = (struct subscriber){callback, arg};
    return 0;
}

void evlog_unsubscribe(struct evlog_topic *topic, evlog_wake_callback callback, void *arg) {
    for (size_t index = 0; index < topic->subscriber_count; index++) {
        if (topic->subscribers[index].callback != callback ||
            topic->subscribers[index].arg != arg) {
            continue;
        }
        topic->subscribers[index] = topic->subscribers[--topic->subscriber_count];
        return;
    }
}

/* ---- Commit job: loop side ----------------------------------------------- */

static int commit_needs_roll(const struct evlog_topic *topic, const struct segment *active,
                             const struct batch *batch) {
    const struct evlog *log = topic->log;
    if (active == NULL)
        return 1;
    if (active->end_offset == active->base_offset)
        return 0; /* empty: keep filling it */
    if (active->bytes + (int64_t)batch->length > log->segment_bytes_max)
        return 1;
    int64_t age_ns = log->clock->wall_ns(log->clock) - active->first_timestamp_ns;
    return age_ns >= log->segment_age_ms_max * 1000000;
}

/* Sets up a roll in `job`; returns 0, or an error when even the fallback of
 * writing into the current segment is impossible. */
static int commit_prepare_roll(struct evlog_topic *topic, struct job *job, struct segment *active) {
    struct evlog *log = topic->log;
    int rc = topic_segment_reserve(topic);
    struct segment *seg = rc == 0 ? mem_calloc(1, sizeof *seg) : NULL;
    if (seg == NULL)
        return active != NULL ? 0 : (rc != 0 ? rc : ERR_NOMEM);
    job->roll = 1;
    job->new_segment = seg;
    job->roll_base = job->batch->records[0].offset;
    job->fd = -1;
    job->position = SEGMENT_HEADER_BYTES;
    if (active == NULL)
        return 0;
    job->sealed_base = active->base_offset;
    if (segment_index_encode(active, &job->index_data, &job->index_bytes) != 0) {
        job->index_data = NULL; /* rebuilt from the segment at the next open instead */
    }
    job->deleted_count = consumer_retention_victims(topic, log->clock->wall_ns(log->clock),
                                                    (int64_t)job->batch->length, job->deleted_bases,
                                                    LIMIT_EVLOG_RETENTION_SEGMENTS_PER_ROLL);
    return 0;
}

static void commit_work(void *arg);
static void commit_done(void *arg);

static void commit_start(struct evlog_topic *topic) {
    CHECK(!topic->job_running && topic->state == TOPIC_WRITABLE);
    CHECK(topic->pending->count > 0 && topic->committing->count == 0);
    struct batch *batch = topic->pending;
    topic->pending = topic->committing;
    topic->committing = batch;
    struct job *job = &topic->job;
    memset(job, 0, sizeof *job);
    *job = (struct job){.topic = topic,
                        .kind = JOB_COMMIT,
                        .batch = batch,
                        .new_fd = -1,
                        .orphan_base = -1,
                        .sealed_base = -1};
    struct segment *active = topic_active_segment(topic);
    if (commit_needs_roll(topic, active, batch))
        job->status = commit_prepare_roll(topic, job, active);
    if (!job->roll && active != NULL) {
        CHECK(active->end_offset == batch->records[0].offset);
        job->fd = active->fd;
        job->position = active->bytes;
    }
    topic->job_running = 1;
    topic->log->executor->submit(topic->log->executor, commit_work, commit_done, job);
}

/* ---- Commit job: worker side -------------------------------------------- */

static int job_step(struct job *job, int rc, const char *step) {
    if (rc != 0 && job->status == 0) {
        job->status = rc;
        job->failed_step = step;
    }
    return rc;
}

/* Seals the previous segment (index file, best effort), creates the new one
 * durably and applies retention; one directory fsync covers both. */
static int commit_work_roll(struct job *job) {
    struct evlog_topic *topic = job->topic;
    struct evlog_io *io = topic->log->io;
    char path[LIMIT_EVLOG_PATH_BYTES];
    char temporary[LIMIT_EVLOG_PATH_BYTES];
    if (job->index_data != NULL &&
        segment_path(path, sizeof path, topic->path, job->sealed_base, ".idx") == 0 &&
        segment_path(temporary, sizeof temporary, topic->path, job->sealed_base, ".idx.tmp") == 0) {
        int fd = io->open(io, temporary, EVLOG_IO_WRITE | EVLOG_IO_CREATE | EVLOG_IO_TRUNCATE);
        if (fd >= 0) {
            int rc = io->pwrite(io, fd, job->index_data, job->index_bytes, 0);
            io->close(io, fd);
            if (rc == 0)
                io->rename(io, temporary, path);
        }
    }
    CHECK(segment_path(path, sizeof path, topic->path, job->roll_base, ".seg") == 0);
    int fd = io->open(io, path, EVLOG_IO_WRITE | EVLOG_IO_CREATE | EVLOG_IO_TRUNCATE);
    if (job_step(job, fd < 0 ? fd : 0, "create segment") != 0)
        return fd;
    job->new_fd = fd;
    uint8_t header[SEGMENT_HEADER_BYTES];
    segment_header_encode(&(struct segment_header){.base_offset = job->roll_base}, header);
    int rc = job_step(job, io->pwrite(io, fd, header, sizeof header, 0), "write segment header");
    if (rc != 0)
        return rc;
    job->syncs++;
    rc = job_step(job, io->sync(io, fd), "fdatasync new segment");
    if (rc != 0)
        return rc;
    for (size_t index = 0; index < job->deleted_count; index++) {
        if (segment_path(path, sizeof path, topic->path, job->deleted_bases[index], ".seg") == 0) {
            io->unlink(io, path);
        }
        if (segment_path(path, sizeof path, topic->path, job->deleted_bases[index], ".idx") == 0) {
            io->unlink(io, path);
        }
    }
    rc = job_step(job, io->sync_directory(io, topic->path), "fsync topic directory");
    if (rc == 0)
        job->rolled = 1;
    return rc;
}

static void repair_work(struct job *job);

static void commit_work(void *arg) {
    struct job *job = arg;
    CHECK(job != NULL && job->topic != NULL);
    if (job->kind == JOB_REPAIR) {
        repair_work(job);
        return;
    }
    if (job->status != 0)
        return; /* failed before any I/O (no memory for a roll) */
    struct evlog_io *io = job->topic->log->io;
    if (job->roll && commit_work_roll(job) != 0)
        return;
    int fd = job->roll ? job->new_fd : job->fd;
    CHECK(fd >= 0);
    const struct batch *batch = job->batch;
    if (job_step(job, io->pwrite(io, fd, batch->data, batch->length, job->position), "write") !=
        0) {
        return;
    }
    job->syncs++;
    int rc = io->sync(io, fd);
    if (rc != 0)
        job->sync_failed = 1;
    job_step(job, rc, "fdatasync");
}

/* ---- Commit job: back on the loop --------------------------------------- */

/* Registers the segment a roll created, drops retention victims, or notes a
 * half-created file for the repair job to remove. */
static void commit_apply_roll(struct evlog_topic *topic, struct job *job) {
    mem_free(job->index_data);
    job->index_data = NULL;
    if (!job->roll)
        return;
    struct evlog_io *io = topic->log->io;
    if (!job->rolled) {
        if (job->new_fd >= 0)
            io->close(io, job->new_fd);
        topic->orphan_base = job->roll_base;
        segment_free(job->new_segment);
        job->new_segment = NULL;
        return;
    }
    if (job->deleted_count > 0) {
        topic_segments_drop_front(topic, job->deleted_count);
        topic->log->stats.segments_deleted += job->deleted_count;
    }
    struct segment *seg = job->new_segment;
    *seg = (struct segment){.base_offset = job->roll_base,
                            .end_offset = job->roll_base,
                            .bytes = SEGMENT_HEADER_BYTES,
                            .fd = job->new_fd};
    job->new_segment = NULL;
    CHECK(topic_segment_push(topic, seg) == 0); /* room was reserved before the job */
}

static void commit_succeed(struct evlog_topic *topic, struct job *job) {
    struct evlog *log = topic->log;
    struct batch *batch = job->batch;
    struct segment *seg = topic_active_segment(topic);
    CHECK(seg != NULL && seg->bytes == job->position);
    for (size_t index = 0; index < batch->count; index++) {
        const struct pending_record *record = &batch->records[index];
        segment_index_note(seg, record->offset, job->position + record->batch_position,
                           record->timestamp_ns, LIMIT_EVLOG_INDEX_INTERVAL_BYTES);
        if (seg->end_offset == seg->base_offset && index == 0) {
            seg->first_timestamp_ns = record->timestamp_ns;
        }
    }
    seg->bytes += (int64_t)batch->length;
    seg->end_offset = batch->records[batch->count - 1].offset + 1;
    seg->last_timestamp_ns = batch->records[batch->count - 1].timestamp_ns;
    log->stats.commits++;
    log->stats.appends += batch->count;
    log->stats.bytes_written += batch->length;
    /* job_running stays set during the callbacks, so what they append joins
     * the pending batch and goes out in one job below. */
    for (size_t index = 0; index < batch->count; index++) {
        const struct pending_record *record = &batch->records[index];
        record->callback(record->arg, 0, record->offset);
    }
    batch->count = 0;
    batch->length = 0;
    for (size_t index = 0; index < topic->subscriber_count; index++) {
        topic->subscribers[index].callback(topic->subscribers[index].arg, topic, seg->end_offset);
    }
    topic->job_running = 0;
    if (topic->pending->count > 0 && topic->state == TOPIC_WRITABLE)
        commit_start(topic);
}

/* Nothing written since the last good fdatasync may be trusted (after a
 * failed fsync the kernel may have dropped those pages): fail the batch and
 * everything queued behind it, then repair. */
static void commit_fail(struct evlog_topic *topic, struct job *job) {
    struct evlog *log = topic->log;
    log->stats.write_errors++;
    LOG_ERROR(COMPONENT, "append failed; the topic refuses writes until repaired",
              "topic=%s step=\"%s\" error=%s records=%zu", topic->name,
              job->failed_step != NULL ? job->failed_step : "prepare", err_name(job->status),
              job->batch->count + topic->pending->count);
    topic->state = TOPIC_REPAIRING;
    topic->error = job->status;
    topic->sync_failed = job->sync_failed;
    topic->failed_ms = commit_now_ms(topic);
    const struct segment *active = topic_active_segment(topic);
    topic->next_offset = active == NULL ? 0 : active->end_offset;
    batch_fail(job->batch, job->status, &log->stats);
    batch_fail(topic->pending, job->status, &log->stats);
    repair_start(topic);
}

static void repair_done(struct job *job);

static void commit_done(void *arg) {
    struct job *job = arg;
    struct evlog_topic *topic = job->topic;
    CHECK(topic->job_running);
    if (job->kind == JOB_REPAIR) {
        repair_done(job);
        return;
    }
    topic->log->stats.fsyncs += (uint64_t)job->syncs;
    commit_apply_roll(topic, job);
    if (job->status != 0) {
        commit_fail(topic, job);
        return;
    }
    commit_succeed(topic, job);
}

/* ---- Repair job ---------------------------------------------------------- */

static void repair_start(struct evlog_topic *topic) {
    struct job *job = &topic->job;
    const struct segment *active = topic_active_segment(topic);
    *job = (struct job){.topic = topic,
                        .kind = JOB_REPAIR,
                        .fd = -1,
                        .new_fd = -1,
                        .orphan_base = topic->orphan_base,
                        .sealed_base = -1,
                        .roll_base = -1};
    if (active != NULL) {
        job->fd = active->fd;
        job->position = active->bytes;
        job->roll_base = active->base_offset;
        job->reopen = topic->sync_failed;
    }
    topic->state = TOPIC_REPAIRING;
    topic->job_running = 1;
    topic->log->executor->submit(topic->log->executor, commit_work, commit_done, job);
}

static void repair_work(struct job *job) {
    struct evlog_topic *topic = job->topic;
    struct evlog_io *io = topic->log->io;
    char path[LIMIT_EVLOG_PATH_BYTES];
    int fd = job->fd;
    if (job->reopen) {
        /* A fresh descriptor: the old one may carry the failed writeback's state. */
        CHECK(segment_path(path, sizeof path, topic->path, job->roll_base, ".seg") == 0);
        fd = io->open(io, path, EVLOG_IO_WRITE);
        if (job_step(job, fd < 0 ? fd : 0, "reopen segment") != 0)
            return;
        job->new_fd = fd;
    }
    if (fd >= 0) {
        if (job_step(job, io->truncate(io, fd, job->position), "truncate") != 0)
            return;
        job->syncs++;
        if (job_step(job, io->sync(io, fd), "fdatasync after truncate") != 0)
            return;
    }
    if (job->orphan_base >= 0) {
        CHECK(segment_path(path, sizeof path, topic->path, job->orphan_base, ".seg") == 0);
        int rc = io->unlink(io, path);
        if (job_step(job, rc == ERR_NOTFOUND ? 0 : rc, "remove half-created segment") != 0)
            return;
        job_step(job, io->sync_directory(io, topic->path), "fsync topic directory");
    }
}

static void repair_done(struct job *job) {
    struct evlog_topic *topic = job->topic;
    struct evlog_io *io = topic->log->io;
    topic->log->stats.fsyncs += (uint64_t)job->syncs;
    struct segment *active = topic_active_segment(topic);
    if (job->new_fd >= 0 && job->status == 0) {
        CHECK(active != NULL);
        io->close(io, active->fd);
        active->fd = job->new_fd;
    } else if (job->new_fd >= 0) {
        io->close(io, job->new_fd);
    }
    topic->job_running = 0;
    if (job->status != 0) {
        topic->state = TOPIC_BROKEN;
        topic->failed_ms = commit_now_ms(topic);
        LOG_ERROR(COMPONENT, "repair after a write failure failed; will retry",
                  "topic=%s step=\"%s\" error=%s", topic->name, job->failed_step,
                  err_name(job->status));
        return;
    }
    topic->orphan_base = -1;
    topic->sync_failed = 0;
    topic->state = TOPIC_COOLING;
    LOG_WARN(COMPONENT, "segment truncated to its last durable length after a write failure",
             "topic=%s durable_bytes=%lld retry_ms=%d", topic->name, (long long)job->position,
             LIMIT_EVLOG_RETRY_MS);
}
