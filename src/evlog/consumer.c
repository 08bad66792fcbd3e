/*
 * consumer.c - named consumer offsets and the retention rule that depends on
 * them.
 *
 * Storage choice: one small file per topic, replaced atomically on each
 * commit (format in format.h). A topic has at most LIMIT_EVLOG_CONSUMERS
 * consumers, so the file is at most 5 KiB; consumers commit after processing
 * a batch, far less often than records are appended; and write-temp + fsync +
 * rename + directory fsync gives "old table or new table" after any crash
 * with no compaction and no recovery code of its own. A commit costs two
 * fsyncs (well under a millisecond on this hardware); it runs on the caller's
 * thread.
 */
#include "evlog_int.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/mem.h"
#include "crc32c.h"

#include <stdio.h>
#include <string.h>

#define CONSUMERS_FILE_BYTES                                                                       \
    (CONSUMERS_HEADER_BYTES + LIMIT_EVLOG_CONSUMERS * CONSUMERS_ENTRY_BYTES)

static int consumer_name_valid(const char *name) {
    size_t length = strlen(name);
    if (length == 0 || length > LIMIT_EVLOG_CONSUMER_NAME_BYTES)
        return 0;
    for (size_t index = 0; index < length; index++) {
        char c = name[index];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

static int consumer_path(const struct evlog_topic *topic, const char *suffix, char *out,
                         size_t size) {
    int length = snprintf(out, size, "%s/consumers%s", topic->path, suffix);
    return length > 0 && (size_t)length < size ? 0 : ERR_LIMIT;
}

static int consumer_parse(struct evlog_topic *topic, const uint8_t *data, size_t bytes) {
    if (bytes < CONSUMERS_HEADER_BYTES || memcmp(data, CONSUMERS_MAGIC, 8) != 0)
        return ERR_CORRUPT;
    if (format_get_u16(data + 8) != FORMAT_VERSION)
        return ERR_UNSUPPORTED;
    size_t count = format_get_u16(data + 10);
    if (count > LIMIT_EVLOG_CONSUMERS ||
        bytes != CONSUMERS_HEADER_BYTES + count * CONSUMERS_ENTRY_BYTES) {
        return ERR_CORRUPT;
    }
    if (crc32c(data + CONSUMERS_HEADER_BYTES, bytes - CONSUMERS_HEADER_BYTES) !=
        format_get_u32(data + 12)) {
        return ERR_CORRUPT;
    }
    for (size_t index = 0; index < count; index++) {
        const uint8_t *entry = data + CONSUMERS_HEADER_BYTES + index * CONSUMERS_ENTRY_BYTES;
        struct consumer *consumer = &topic->consumers[index];
        size_t name_bytes = entry[0];
        if (name_bytes == 0 || name_bytes > LIMIT_EVLOG_CONSUMER_NAME_BYTES)
            return ERR_CORRUPT;
        memset(consumer, 0, sizeof *consumer);
        memcpy(consumer->name, entry + 16, name_bytes);
        consumer->required = entry[1] & 1;
        consumer->offset = (int64_t)format_get_u64(entry + 8);
        if (!consumer_name_valid(consumer->name) || consumer->offset < 0)
            return ERR_CORRUPT;
    }
    topic->consumer_count = count;
    return 0;
}

int consumer_load(struct evlog_topic *topic) {
    CHECK(topic != NULL);
    struct evlog_io *io = topic->log->io;
    char path[LIMIT_EVLOG_PATH_BYTES];
    int rc = consumer_path(topic, "", path, sizeof path);
    if (rc != 0)
        return rc;
    int fd = io->open(io, path, EVLOG_IO_READ);
    if (fd == ERR_NOTFOUND)
        return 0;
    if (fd < 0)
        return fd;
    uint8_t data[CONSUMERS_FILE_BYTES + 1];
    int64_t got = io->pread(io, fd, data, sizeof data, 0);
    io->close(io, fd);
    if (got < 0)
        return (int)got;
    rc = consumer_parse(topic, data, (size_t)got);
    if (rc != 0)
        topic->consumer_count = 0;
    return rc;
}

static size_t consumer_encode(const struct consumer *consumers, size_t count, uint8_t *out) {
    CHECK(count <= LIMIT_EVLOG_CONSUMERS);
    memset(out, 0, CONSUMERS_HEADER_BYTES + count * CONSUMERS_ENTRY_BYTES);
    memcpy(out, CONSUMERS_MAGIC, 8);
    format_put_u16(out + 8, FORMAT_VERSION);
    format_put_u16(out + 10, (uint16_t)count);
    for (size_t index = 0; index < count; index++) {
        uint8_t *entry = out + CONSUMERS_HEADER_BYTES + index * CONSUMERS_ENTRY_BYTES;
        size_t name_bytes = strlen(consumers[index].name);
        entry[0] = (uint8_t)name_bytes;
        entry[1] = consumers[index].required ? 1 : 0;
        format_put_u64(entry + 8, (uint64_t)consumers[index].offset);
        memcpy(entry + 16, consumers[index].name, name_bytes);
    }
    size_t bytes = CONSUMERS_HEADER_BYTES + count * CONSUMERS_ENTRY_BYTES;
    format_put_u32(out + 12, crc32c(out + CONSUMERS_HEADER_BYTES, bytes - CONSUMERS_HEADER_BYTES));
    return bytes;
}

/* Replaces the consumers file with `consumers` durably, then adopts them. */
static int consumer_store(struct evlog_topic *topic, const struct consumer *consumers,
                          size_t count) {
    struct evlog_io *io = topic->log->io;
    char path[LIMIT_EVLOG_PATH_BYTES];
    char temporary[LIMIT_EVLOG_PATH_BYTES];
    uint8_t data[CONSUMERS_FILE_BYTES];
    if (topic->log->read_only)
        return ERR_DENIED;
    if (consumer_path(topic, "", path, sizeof path) != 0 ||
        consumer_path(topic, ".tmp", temporary, sizeof temporary) != 0) {
        return ERR_LIMIT;
    }
    size_t bytes = consumer_encode(consumers, count, data);
    int fd = io->open(io, temporary, EVLOG_IO_WRITE | EVLOG_IO_CREATE | EVLOG_IO_TRUNCATE);
    if (fd < 0)
        return fd;
    int rc = io->pwrite(io, fd, data, bytes, 0);
    if (rc == 0)
        rc = io->sync(io, fd);
    io->close(io, fd);
    if (rc == 0)
        rc = io->rename(io, temporary, path);
    if (rc == 0)
        rc = io->sync_directory(io, topic->path);
    if (rc != 0) {
        io->unlink(io, temporary);
        return rc;
    }
    if (consumers != topic->consumers)
        memcpy(topic->consumers, consumers, count * sizeof *consumers);
    topic->consumer_count = count;
    return 0;
}

/* Copies the table into `copy` and returns the index of `name` in it,
 * appending a new consumer at `initial_offset` when absent (-1: table full). */
static int64_t consumer_prepare(const struct evlog_topic *topic, const char *name,
                                int64_t initial_offset, struct consumer *copy, size_t *count) {
    memcpy(copy, topic->consumers, topic->consumer_count * sizeof *copy);
    *count = topic->consumer_count;
    for (size_t index = 0; index < *count; index++) {
        if (strcmp(copy[index].name, name) == 0)
            return (int64_t)index;
    }
    if (*count >= LIMIT_EVLOG_CONSUMERS)
        return -1;
    memset(&copy[*count], 0, sizeof copy[*count]);
    snprintf(copy[*count].name, sizeof copy[*count].name, "%s", name);
    copy[*count].offset = initial_offset;
    return (int64_t)(*count)++;
}

int evlog_consumer_commit(struct evlog_topic *topic, const char *name, int64_t offset) {
    CHECK(topic != NULL && name != NULL);
    if (!consumer_name_valid(name))
        return ERR_INVAL;
    if (offset < evlog_topic_start_offset(topic) || offset > evlog_topic_end_offset(topic)) {
        return ERR_RANGE;
    }
    struct consumer copy[LIMIT_EVLOG_CONSUMERS];
    size_t count = 0;
    int64_t index = consumer_prepare(topic, name, offset, copy, &count);
    if (index < 0)
        return ERR_LIMIT;
    copy[index].offset = offset;
    return consumer_store(topic, copy, count);
}

int evlog_consumer_set_required(struct evlog_topic *topic, const char *name, int required) {
    CHECK(topic != NULL && name != NULL);
    if (!consumer_name_valid(name))
        return ERR_INVAL;
    struct consumer copy[LIMIT_EVLOG_CONSUMERS];
    size_t count = 0;
    int64_t index = consumer_prepare(topic, name, evlog_topic_start_offset(topic), copy, &count);
    if (index < 0)
        return ERR_LIMIT;
    copy[index].required = required ? 1 : 0;
    return consumer_store(topic, copy, count);
}

static void consumer_info(const struct evlog_topic *topic, const struct consumer *consumer,
                          struct evlog_consumer_info *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", consumer->name);
    out->offset = consumer->offset;
    int64_t lag = evlog_topic_end_offset(topic) - consumer->offset;
    out->lag = lag > 0 ? lag : 0;
    out->required = consumer->required;
}

int evlog_consumer_fetch(struct evlog_topic *topic, const char *name,
                         struct evlog_consumer_info *info_out) {
    CHECK(topic != NULL && name != NULL && info_out != NULL);
    for (size_t index = 0; index < topic->consumer_count; index++) {
        if (strcmp(topic->consumers[index].name, name) != 0)
            continue;
        consumer_info(topic, &topic->consumers[index], info_out);
        return 0;
    }
    return ERR_NOTFOUND;
}

int evlog_consumer_rewind_time(struct evlog_topic *topic, const char *name, int64_t timestamp_ns) {
    CHECK(topic != NULL && name != NULL);
    int64_t offset = 0;
    int rc = evlog_offset_for_time(topic, timestamp_ns, &offset);
    if (rc != 0)
        return rc;
    if (offset < evlog_topic_start_offset(topic))
        offset = evlog_topic_start_offset(topic);
    return evlog_consumer_commit(topic, name, offset);
}

size_t evlog_consumer_list(struct evlog_topic *topic, struct evlog_consumer_info *out,
                           size_t capacity) {
    CHECK(topic != NULL && (out != NULL || capacity == 0));
    for (size_t index = 0; index < topic->consumer_count && index < capacity; index++) {
        consumer_info(topic, &topic->consumers[index], &out[index]);
    }
    return topic->consumer_count;
}

/* ---- Retention ----------------------------------------------------------- */

int64_t consumer_required_offset(const struct evlog_topic *topic) {
    int64_t lowest = INT64_MAX;
    for (size_t index = 0; index < topic->consumer_count; index++) {
        const struct consumer *consumer = &topic->consumers[index];
        if (consumer->required && consumer->offset < lowest)
            lowest = consumer->offset;
    }
    return lowest;
}

size_t consumer_retention_victims(const struct evlog_topic *topic, int64_t now_ns,
                                  int64_t incoming_bytes, int64_t *bases_out, size_t capacity) {
    const struct evlog *log = topic->log;
    CHECK(bases_out != NULL && incoming_bytes >= 0);
    if (log->retention_bytes_max <= 0 && log->retention_age_ms_max <= 0)
        return 0;
    int64_t keep_from = consumer_required_offset(topic);
    int64_t total = evlog_topic_bytes(topic) + incoming_bytes + SEGMENT_HEADER_BYTES;
    int64_t oldest_ns = now_ns - log->retention_age_ms_max * 1000000;
    size_t count = 0;
    /* Whole segments from the front only, never the active one. */
    for (size_t index = 0; index + 1 < topic->segment_count && count < capacity; index++) {
        const struct segment *seg = topic->segments[index];
        int too_big = log->retention_bytes_max > 0 && total > log->retention_bytes_max;
        int too_old = log->retention_age_ms_max > 0 && seg->last_timestamp_ns < oldest_ns;
        if (!too_big && !too_old)
            break;
        if (seg->end_offset > keep_from)
            break;
        bases_out[count++] = seg->base_offset;
        total -= seg->bytes;
    }
    return count;
}
