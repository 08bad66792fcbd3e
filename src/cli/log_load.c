/*
 * log_load.c - `docket log append` and `docket log bench`: N logical writers
 * in a closed loop (each appends, waits for the durability callback, appends
 * again) until TOTAL records are acknowledged, on a libuv loop with the log's
 * commits on the thread pool - the same arrangement as the server.
 *
 * Record i of writer w has key "<run>-w<w>-<i>" (run = pid and start time, so
 * keys are unique across runs) and a value of --record-bytes bytes: the key,
 * '|', then letters. With --ack-file, each durable record adds the line
 * "OFFSET KEY FNV1A64(value) in hex" after its callback, flushed once per
 * commit: after a kill -9 every complete line names a record that must be in
 * the log. bench prints one JSON line; latency is append call to durable
 * callback, per record.
 */
#include "log_command.h"

#include "../base/check.h"
#include "../base/clock.h"
#include "../base/err.h"
#include "../base/mem.h"
#include "../evlog/evlog.h"
#include "../evlog/evlog_uv.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct load;

/* One closed-loop writer. */
struct load_writer {
    struct load *load;  /* the run */
    int index;          /* writer number */
    int64_t sequence;   /* records it appended */
    int64_t started_ns; /* monotonic time of its outstanding append */
};

struct load {
    const struct log_arguments *arguments; /* command line */
    struct evlog_topic *topic;             /* written */
    struct load_writer *writers;           /* one per --writers (owned) */
    uint8_t *value;                        /* value scratch of record_bytes (owned) */
    uint32_t *latencies_us;                /* one sample per acknowledged record (owned) */
    int64_t issued;                        /* appends accepted */
    int64_t acknowledged;                  /* durable callbacks with status 0 */
    int failure;                           /* first error seen, 0 if none */
    FILE *ack_file;                        /* --ack-file, or NULL */
    char run[32];                          /* key prefix unique to this run */
    int64_t first_ns;                      /* monotonic time of the first append */
    int64_t last_ns;                       /* monotonic time of the last acknowledgement */
};

static int64_t load_now_ns(void) {
    return clock_system()->monotonic_ns(clock_system());
}

static uint64_t load_fnv1a64(const uint8_t *data, size_t length) {
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (size_t index = 0; index < length; index++) {
        hash ^= data[index];
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

/* Writes record `sequence` of writer `index`: its key into key[64] (returns
 * the key length) and its value into load->value. */
static int load_build(struct load *load, int index, int64_t sequence, char key[64]) {
    int key_bytes = snprintf(key, 64, "%s-w%d-%lld", load->run, index, (long long)sequence);
    CHECK(key_bytes > 0 && key_bytes < 64);
    size_t value_bytes = (size_t)load->arguments->record_bytes;
    for (size_t position = 0; position < value_bytes; position++) {
        load->value[position] = position < (size_t)key_bytes    ? (uint8_t)key[position]
                                : position == (size_t)key_bytes ? '|'
                                                                : (uint8_t)('a' + position % 26);
    }
    return key_bytes;
}

static void load_on_append(void *arg, int status, int64_t offset);

/* Builds the writer's next record and appends it. */
static void load_issue(struct load_writer *writer) {
    struct load *load = writer->load;
    if (load->failure != 0 || load->issued >= load->arguments->records)
        return;
    char key[64];
    int key_bytes = load_build(load, writer->index, writer->sequence, key);
    size_t value_bytes = (size_t)load->arguments->record_bytes;
    struct evlog_record record = {.key = (const uint8_t *)key,
                                  .key_bytes = (size_t)key_bytes,
                                  .value = load->value,
                                  .value_bytes = value_bytes};
    writer->started_ns = load_now_ns();
    if (load->first_ns == 0)
        load->first_ns = writer->started_ns;
    int64_t offset = evlog_append(load->topic, &record, load_on_append, writer);
    if (offset < 0) {
        load->failure = (int)offset;
        fprintf(stderr, "docket: append failed: %s\n", err_str((int)offset));
        return;
    }
    writer->sequence++;
    load->issued++;
}

static void load_on_append(void *arg, int status, int64_t offset) {
    struct load_writer *writer = arg;
    struct load *load = writer->load;
    if (status != 0) {
        if (load->failure == 0)
            fprintf(stderr, "docket: append failed: %s\n", err_str(status));
        load->failure = status;
        return;
    }
    int64_t now_ns = load_now_ns();
    int64_t latency_us = (now_ns - writer->started_ns) / 1000;
    load->latencies_us[load->acknowledged++] =
        latency_us > UINT32_MAX ? UINT32_MAX : (uint32_t)latency_us;
    load->last_ns = now_ns;
    if (load->ack_file != NULL) {
        /* Rebuild the value exactly as issued, for its checksum. */
        char key[64];
        load_build(load, writer->index, writer->sequence - 1, key);
        size_t value_bytes = (size_t)load->arguments->record_bytes;
        fprintf(load->ack_file, "%lld %s %016llx\n", (long long)offset, key,
                (unsigned long long)load_fnv1a64(load->value, value_bytes));
    }
    load_issue(writer);
}

/* Flushes ack lines once per commit (subscribers run after its callbacks). */
static void load_on_commit(void *arg, struct evlog_topic *topic, int64_t end_offset) {
    (void)topic;
    (void)end_offset;
    struct load *load = arg;
    if (load->ack_file != NULL)
        fflush(load->ack_file);
}

static int load_compare(const void *left, const void *right) {
    uint32_t a = *(const uint32_t *)left;
    uint32_t b = *(const uint32_t *)right;
    return a < b ? -1 : a > b;
}

static void load_report(const struct load *load, const struct evlog *log) {
    qsort(load->latencies_us, (size_t)load->acknowledged, sizeof *load->latencies_us, load_compare);
    double seconds = (double)(load->last_ns - load->first_ns) / 1e9;
    if (seconds <= 0)
        seconds = 1e-9;
    int64_t count = load->acknowledged;
    uint32_t p50 = count > 0 ? load->latencies_us[(count - 1) * 50 / 100] : 0;
    uint32_t p99 = count > 0 ? load->latencies_us[(count - 1) * 99 / 100] : 0;
    uint32_t max = count > 0 ? load->latencies_us[count - 1] : 0;
    printf("{\"writers\":%lld,\"records\":%lld,\"record_bytes\":%lld,\"seconds\":%.6f,"
           "\"records_per_second\":%.1f,\"mb_per_second\":%.3f,\"p50_us\":%u,\"p99_us\":%u,"
           "\"max_us\":%u,\"fsyncs\":%llu}\n",
           (long long)load->arguments->writers, (long long)count,
           (long long)load->arguments->record_bytes, seconds, (double)count / seconds,
           (double)count * (double)load->arguments->record_bytes / 1e6 / seconds, p50, p99, max,
           (unsigned long long)evlog_stats(log)->fsyncs);
}

static int load_prepare(struct load *load, const struct log_arguments *arguments) {
    load->arguments = arguments;
    snprintf(load->run, sizeof load->run, "r%d.%lld", (int)getpid(),
             (long long)(clock_system()->wall_ns(clock_system()) / 1000000));
    load->writers = mem_calloc((size_t)arguments->writers, sizeof *load->writers);
    load->value = mem_alloc((size_t)arguments->record_bytes + 1);
    load->latencies_us = mem_calloc((size_t)arguments->records, sizeof *load->latencies_us);
    if (load->writers == NULL || load->value == NULL || load->latencies_us == NULL)
        return ERR_NOMEM;
    for (int64_t index = 0; index < arguments->writers; index++) {
        load->writers[index] = (struct load_writer){.load = load, .index = (int)index};
    }
    if (arguments->ack_file != NULL) {
        load->ack_file = fopen(arguments->ack_file, "a");
        if (load->ack_file == NULL) {
            fprintf(stderr, "docket: cannot open %s\n", arguments->ack_file);
            return ERR_IO;
        }
    }
    return 0;
}

static int load_execute(struct load *load, uv_loop_t *loop, struct evlog_executor *executor) {
    const struct log_arguments *arguments = load->arguments;
    struct evlog_options options = {
        .directory = arguments->log_directory, .executor = executor, .repair = arguments->repair};
    struct evlog *log = NULL;
    struct evlog_error error = {{0}};
    int rc = evlog_open(&log, &options, &error);
    if (rc != 0) {
        fprintf(stderr, "docket: %s\n", error.message[0] ? error.message : err_str(rc));
        return rc;
    }
    rc = evlog_topic_open(log, arguments->topic, &load->topic);
    if (rc == 0)
        rc = evlog_subscribe(load->topic, load_on_commit, load);
    for (int64_t index = 0; rc == 0 && index < arguments->writers; index++) {
        load_issue(&load->writers[index]);
    }
    uv_run(loop, UV_RUN_DEFAULT); /* returns when no commit is left */
    if (rc == 0 && strcmp(arguments->subcommand, "bench") == 0)
        load_report(load, log);
    if (rc == 0)
        rc = load->failure;
    if (rc == 0 && load->acknowledged != arguments->records)
        rc = ERR_IO;
    evlog_close(log);
    return rc;
}

int log_load_run(const struct log_arguments *arguments) {
    int bench = strcmp(arguments->subcommand, "bench") == 0;
    struct log_arguments effective = *arguments;
    if (effective.topic == NULL && bench)
        effective.topic = "bench";
    if (effective.topic == NULL || effective.writers <= 0 || effective.records <= 0) {
        fprintf(stderr,
                "docket: usage: docket log %s --topic T --writers N --records TOTAL "
                "--record-bytes S\n",
                arguments->subcommand);
        return 2;
    }
    struct load *load = mem_calloc(1, sizeof *load);
    struct evlog_uv_executor *executor = mem_calloc(1, sizeof *executor);
    uv_loop_t *loop = uv_default_loop();
    int rc = load == NULL || executor == NULL ? ERR_NOMEM : load_prepare(load, &effective);
    if (rc == 0) {
        evlog_uv_executor_init(executor, loop);
        rc = load_execute(load, loop, &executor->base);
    }
    if (load != NULL) {
        if (load->ack_file != NULL)
            fclose(load->ack_file);
        mem_free(load->writers);
        mem_free(load->value);
        mem_free(load->latencies_us);
    }
    mem_free(load);
    mem_free(executor);
    uv_loop_close(loop);
    return rc == 0 ? 0 : 1;
}
