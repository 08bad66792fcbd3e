/*
 * evlog_support.c - see evlog_support.h.
 */
#include "evlog_support.h"

#include "../../../src/base/check.h"
#include "../../../src/base/err.h"
#include "../../../src/base/logger.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void support_submit(struct evlog_executor *base, void (*work)(void *arg),
                           void (*done)(void *arg), void *arg) {
    struct support_executor *executor = (struct support_executor *)base;
    CHECK(executor->count < SUPPORT_JOBS_MAX);
    executor->jobs[executor->count].work = work;
    executor->jobs[executor->count].done = done;
    executor->jobs[executor->count].arg = arg;
    executor->count++;
    executor->submitted++;
}

void support_executor_init(struct support_executor *executor) {
    memset(executor, 0, sizeof *executor);
    executor->base.submit = support_submit;
}

int support_executor_step(struct support_executor *executor) {
    if (executor->count == 0)
        return 0;
    void (*work)(void *) = executor->jobs[0].work;
    void (*done)(void *) = executor->jobs[0].done;
    void *arg = executor->jobs[0].arg;
    memmove(&executor->jobs[0], &executor->jobs[1],
            (executor->count - 1) * sizeof executor->jobs[0]);
    executor->count--;
    work(arg);
    done(arg);
    return 1;
}

int support_executor_run(struct support_executor *executor) {
    int ran = 0;
    while (ran < 1000000 && support_executor_step(executor))
        ran++;
    return ran;
}

static int support_remove_entry(const char *path, const struct stat *info, int flag,
                                struct FTW *ftw) {
    (void)info;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void support_remove_tree(const char *path) {
    nftw(path, support_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *support_directory(const char *tag) {
    static char paths[8][256];
    static int next = 0;
    char *path = paths[next++ % 8];
    snprintf(path, 256, "/tmp/docket-evlog-%s-%d-XXXXXX", tag, (int)getpid());
    CHECK(mkdtemp(path) != NULL);
    return path;
}

void support_on_append(void *arg, int status, int64_t offset) {
    struct support_ack *ack = arg;
    ack->called++;
    ack->status = status;
    ack->offset = offset;
}

int64_t support_append(struct evlog_topic *topic, int number, size_t value_bytes,
                       struct support_ack *ack) {
    char key[32];
    static char value[65536];
    int key_bytes = snprintf(key, sizeof key, "k%d", number);
    int prefix = snprintf(value, sizeof value, "value-%d", number);
    CHECK(value_bytes < sizeof value);
    if (value_bytes < (size_t)prefix)
        value_bytes = (size_t)prefix;
    memset(value + prefix, 'x', value_bytes - (size_t)prefix);
    struct evlog_header header = {(const uint8_t *)"h", 1, (const uint8_t *)key, (size_t)key_bytes};
    struct evlog_record record = {
        .key = (const uint8_t *)key,
        .key_bytes = (size_t)key_bytes,
        .headers = &header,
        .header_count = 1,
        .value = (const uint8_t *)value,
        .value_bytes = value_bytes,
    };
    if (ack != NULL)
        memset(ack, 0, sizeof *ack);
    return evlog_append(topic, &record, support_on_append, ack);
}

int64_t support_read_all(struct evlog_topic *topic, int64_t from, int first_number) {
    struct evlog_cursor cursor;
    int rc = evlog_cursor_open(&cursor, topic, from);
    if (rc != 0)
        return rc;
    int64_t count = 0;
    struct evlog_record record;
    while ((rc = evlog_cursor_next(&cursor, &record)) == 0) {
        char key[32];
        int key_bytes = snprintf(key, sizeof key, "k%d", first_number + (int)count);
        if (record.offset != from + count || record.key_bytes != (size_t)key_bytes ||
            memcmp(record.key, key, (size_t)key_bytes) != 0) {
            evlog_cursor_close(&cursor);
            return ERR_CORRUPT;
        }
        count++;
    }
    evlog_cursor_close(&cursor);
    return rc == ERR_AGAIN ? count : rc;
}

int support_open(struct support_log *support, const char *root, struct evlog_io *io,
                 int64_t segment_bytes_max) {
    static FILE *quiet = NULL; /* recovery warnings are expected here; keep the output clean */
    if (quiet == NULL)
        quiet = fopen("/dev/null", "w");
    logger_set_stream(quiet);
    memset(support, 0, sizeof *support);
    support_executor_init(&support->executor);
    clock_fake_init(&support->clock, 1700000000000000000LL);
    snprintf(support->directory, sizeof support->directory, "%s/log", root);
    support->options = (struct evlog_options){
        .directory = support->directory,
        .io = io,
        .executor = &support->executor.base,
        .clock = &support->clock.base,
        .segment_bytes_max = segment_bytes_max,
    };
    return support_reopen(support);
}

int support_reopen(struct support_log *support) {
    CHECK(support->log == NULL);
    int rc = evlog_open(&support->log, &support->options, &support->error);
    if (rc != 0) {
        support->log = NULL;
        return rc;
    }
    rc = evlog_topic_open(support->log, "events", &support->topic);
    if (rc != 0)
        support_close(support);
    return rc;
}

void support_close(struct support_log *support) {
    if (support->log == NULL)
        return;
    support_executor_run(&support->executor);
    evlog_close(support->log);
    support->log = NULL;
    support->topic = NULL;
}
