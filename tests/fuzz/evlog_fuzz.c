/*
 * evlog_fuzz.c - libFuzzer target for event-log recovery and reading: the
 * input is a segment file, placed by an in-memory I/O seam as the only
 * segment of topic "t". The log is opened read-only (every record read back
 * and verified), then for writing (a torn tail is cut; one record is appended
 * and must read back after a reopen), then with repair (which must always
 * yield a log that opens cleanly afterwards). Invariants are CHECK()s.
 */
#include "../../src/base/check.h"
#include "../../src/base/err.h"
#include "../../src/base/logger.h"
#include "../../src/evlog/evlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FILES 8
#define FUZZ_LOG "/fuzz/log"
#define FUZZ_TOPIC "/fuzz/log/t"

/* One in-memory file. */
struct fuzz_file {
    char name[64]; /* name inside the topic directory; "" = unused */
    uint8_t *data; /* contents (malloc) */
    size_t length; /* bytes */
};

static struct fuzz_file fuzz_files[FUZZ_FILES]; /* the topic directory */

static struct fuzz_file *fuzz_lookup(const char *path, int create) {
    size_t prefix = strlen(FUZZ_TOPIC "/");
    if (strncmp(path, FUZZ_TOPIC "/", prefix) != 0 || strlen(path + prefix) >= 64)
        return NULL;
    const char *name = path + prefix;
    struct fuzz_file *free_slot = NULL;
    for (int index = 0; index < FUZZ_FILES; index++) {
        if (strcmp(fuzz_files[index].name, name) == 0)
            return &fuzz_files[index];
        if (free_slot == NULL && fuzz_files[index].name[0] == '\0')
            free_slot = &fuzz_files[index];
    }
    if (!create || free_slot == NULL)
        return NULL;
    snprintf(free_slot->name, sizeof free_slot->name, "%s", name);
    free_slot->length = 0;
    return free_slot;
}

static int fuzz_open(struct evlog_io *io, const char *path, int flags) {
    (void)io;
    struct fuzz_file *file = fuzz_lookup(path, flags & EVLOG_IO_CREATE);
    if (file == NULL)
        return ERR_NOTFOUND;
    if (flags & EVLOG_IO_TRUNCATE)
        file->length = 0;
    return (int)(file - fuzz_files) + 3;
}

static struct fuzz_file *fuzz_fd(int fd) {
    CHECK(fd >= 3 && fd < 3 + FUZZ_FILES);
    return &fuzz_files[fd - 3];
}

static int fuzz_close(struct evlog_io *io, int fd) {
    (void)io;
    (void)fuzz_fd(fd);
    return 0;
}

static int64_t fuzz_pread(struct evlog_io *io, int fd, void *data, size_t length,
                          int64_t position) {
    (void)io;
    struct fuzz_file *file = fuzz_fd(fd);
    if ((size_t)position >= file->length)
        return 0;
    size_t count =
        file->length - (size_t)position < length ? file->length - (size_t)position : length;
    memcpy(data, file->data + position, count);
    return (int64_t)count;
}

static int fuzz_pwrite(struct evlog_io *io, int fd, const void *data, size_t length,
                       int64_t position) {
    (void)io;
    struct fuzz_file *file = fuzz_fd(fd);
    size_t end = (size_t)position + length;
    if (end > 64 * 1024 * 1024)
        return ERR_NOSPC;
    if (end > file->length) {
        uint8_t *grown = realloc(file->data, end);
        if (grown == NULL)
            return ERR_NOSPC;
        if ((size_t)position > file->length)
            memset(grown + file->length, 0, (size_t)position - file->length);
        file->data = grown;
        file->length = end;
    }
    memcpy(file->data + position, data, length);
    return 0;
}

static int fuzz_ok_fd(struct evlog_io *io, int fd) {
    (void)io;
    (void)fuzz_fd(fd);
    return 0;
}

static int fuzz_ok_path(struct evlog_io *io, const char *path) {
    (void)io;
    (void)path;
    return 0;
}

static int fuzz_truncate(struct evlog_io *io, int fd, int64_t length) {
    (void)io;
    struct fuzz_file *file = fuzz_fd(fd);
    if ((size_t)length < file->length)
        file->length = (size_t)length;
    return 0;
}

static int fuzz_size(struct evlog_io *io, int fd, int64_t *bytes_out) {
    (void)io;
    *bytes_out = (int64_t)fuzz_fd(fd)->length;
    return 0;
}

static int fuzz_rename(struct evlog_io *io, const char *from, const char *to) {
    (void)io;
    struct fuzz_file *source = fuzz_lookup(from, 0);
    if (source == NULL)
        return ERR_NOTFOUND;
    struct fuzz_file *target = fuzz_lookup(to, 0);
    if (target != NULL && target != source)
        target->name[0] = '\0';
    snprintf(source->name, sizeof source->name, "%s", to + strlen(FUZZ_TOPIC "/"));
    return 0;
}

static int fuzz_unlink(struct evlog_io *io, const char *path) {
    (void)io;
    struct fuzz_file *file = fuzz_lookup(path, 0);
    if (file == NULL)
        return ERR_NOTFOUND;
    file->name[0] = '\0';
    return 0;
}

static int fuzz_make_directory(struct evlog_io *io, const char *path) {
    (void)io;
    (void)path;
    return ERR_EXISTS;
}

static int fuzz_list(struct evlog_io *io, const char *path,
                     int (*visit)(void *arg, const char *name), void *arg) {
    (void)io;
    if (strcmp(path, FUZZ_LOG) == 0)
        return visit(arg, "t");
    if (strcmp(path, FUZZ_TOPIC) != 0)
        return ERR_NOTFOUND;
    for (int index = 0; index < FUZZ_FILES; index++) {
        if (fuzz_files[index].name[0] == '\0')
            continue;
        int rc = visit(arg, fuzz_files[index].name);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int fuzz_lock(struct evlog_io *io, const char *path) {
    (void)io;
    (void)path;
    return 100;
}

static void fuzz_unlock(struct evlog_io *io, int handle) {
    (void)io;
    (void)handle;
}

static struct evlog_io fuzz_io = {
    .open = fuzz_open,
    .close = fuzz_close,
    .pread = fuzz_pread,
    .pwrite = fuzz_pwrite,
    .sync = fuzz_ok_fd,
    .sync_directory = fuzz_ok_path,
    .truncate = fuzz_truncate,
    .size = fuzz_size,
    .rename = fuzz_rename,
    .unlink = fuzz_unlink,
    .make_directory = fuzz_make_directory,
    .list = fuzz_list,
    .lock = fuzz_lock,
    .unlock = fuzz_unlock,
};

/* A one-slot executor run by hand (one topic has at most one job). */
struct fuzz_executor {
    struct evlog_executor base; /* must stay first */
    void (*work)(void *arg);    /* queued job, or NULL */
    void (*done)(void *arg);    /* its completion */
    void *arg;                  /* for both */
};

static void fuzz_submit(struct evlog_executor *base, void (*work)(void *), void (*done)(void *),
                        void *arg) {
    struct fuzz_executor *executor = (struct fuzz_executor *)base;
    CHECK(executor->work == NULL);
    executor->work = work;
    executor->done = done;
    executor->arg = arg;
}

static void fuzz_run(struct fuzz_executor *executor) {
    for (int round = 0; round < 16 && executor->work != NULL; round++) {
        void (*work)(void *) = executor->work;
        void (*done)(void *) = executor->done;
        executor->work = NULL;
        work(executor->arg);
        done(executor->arg);
    }
}

static void fuzz_on_append(void *arg, int status, int64_t offset) {
    int64_t *acknowledged = arg;
    if (status == 0)
        *acknowledged = offset;
}

/* Reads every record; returns how many, checking offsets are dense. */
static int64_t fuzz_read_all(struct evlog *log) {
    struct evlog_topic *topic = NULL;
    if (evlog_topic_open(log, "t", &topic) != 0)
        return -1;
    struct evlog_cursor cursor;
    CHECK(evlog_cursor_open(&cursor, topic, evlog_topic_start_offset(topic)) == 0);
    struct evlog_record record;
    int64_t count = 0;
    int rc;
    while ((rc = evlog_cursor_next(&cursor, &record)) == 0) {
        CHECK(record.offset == evlog_topic_start_offset(topic) + count);
        count++;
    }
    evlog_cursor_close(&cursor);
    CHECK(rc == ERR_AGAIN);
    CHECK(count == evlog_topic_end_offset(topic) - evlog_topic_start_offset(topic));
    return count;
}

static int fuzz_open_log(struct evlog **log, struct fuzz_executor *executor, int read_only,
                         int repair) {
    struct evlog_options options = {.directory = FUZZ_LOG,
                                    .io = &fuzz_io,
                                    .executor = &executor->base,
                                    .read_only = read_only,
                                    .repair = repair};
    struct evlog_error error;
    return evlog_open(log, &options, &error);
}

/* Opens for writing, appends one record, and checks it reads back after a reopen. */
static void fuzz_write_cycle(int repair) {
    struct fuzz_executor executor = {.base.submit = fuzz_submit};
    struct evlog *log = NULL;
    if (fuzz_open_log(&log, &executor, 0, repair) != 0)
        return;
    struct evlog_topic *topic = NULL;
    CHECK(evlog_topic_open(log, "t", &topic) == 0);
    int64_t before = fuzz_read_all(log);
    CHECK(before >= 0);
    int64_t acknowledged = -1;
    struct evlog_record record = {.key = (const uint8_t *)"k",
                                  .key_bytes = 1,
                                  .value = (const uint8_t *)"v",
                                  .value_bytes = 1};
    int64_t offset = evlog_append(topic, &record, fuzz_on_append, &acknowledged);
    fuzz_run(&executor);
    CHECK(offset < 0 || acknowledged == offset);
    evlog_close(log);
    log = NULL;
    CHECK(fuzz_open_log(&log, &executor, 1, 0) == 0); /* recovered logs always reopen */
    CHECK(fuzz_read_all(log) == before + (offset >= 0 ? 1 : 0));
    evlog_close(log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *quiet = NULL;
    if (quiet == NULL)
        quiet = fopen("/dev/null", "w");
    logger_set_stream(quiet);
    for (int repair = 0; repair < 2; repair++) {
        for (int index = 0; index < FUZZ_FILES; index++)
            fuzz_files[index].name[0] = '\0';
        struct fuzz_file *segment = fuzz_lookup(FUZZ_TOPIC "/00000000000000000000.seg", 1);
        segment->data = realloc(segment->data, size > 0 ? size : 1);
        CHECK(segment->data != NULL);
        if (size > 0)
            memcpy(segment->data, data, size);
        segment->length = size;
        if (repair == 0) {
            struct fuzz_executor executor = {.base.submit = fuzz_submit};
            struct evlog *log = NULL;
            if (fuzz_open_log(&log, &executor, 1, 0) == 0) {
                fuzz_read_all(log);
                int64_t torn = 0;
                struct evlog_error error;
                evlog_verify(log, NULL, NULL, &torn, &error);
                evlog_close(log);
            }
        }
        fuzz_write_cycle(repair);
    }
    for (int index = 0; index < FUZZ_FILES; index++) {
        free(fuzz_files[index].data);
        fuzz_files[index] = (struct fuzz_file){{0}, NULL, 0};
    }
    return 0;
}
