/*
 * log_command.c - `docket log`: argument parsing (the subcommand's own flags
 * first; everything else goes to config_load, so --data-dir, --config and
 * DOCKET_DATA_DIR behave as for `docket serve`), and the read-only
 * subcommands: topics, tail, verify, consumers. They open the log read-only,
 * so they work beside a running server and never modify the files.
 */
#include "log_command.h"

#include "../base/check.h"
#include "../base/clock.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/mem.h"
#include "../base/timefmt.h"
#include "../config/config.h"
#include "../evlog/evlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char **environ;

void log_command_help(FILE *stream) {
    fprintf(
        stream,
        "Usage: docket log SUBCOMMAND [OPTIONS] [--data-dir DIR ...]\n\n"
        "Inspects the event log in <data-dir>/log (read-only; safe beside a running server).\n\n"
        "  topics                         topics with first and end offsets, segments, bytes\n"
        "  tail TOPIC [--from OFFSET|TIME] [--follow] [--limit N]\n"
        "                                 records as JSON lines (offset, time, key, headers,\n"
        "                                 value); TIME is RFC 3339; without --from, the last 10\n"
        "  verify                         reads every record and checks every checksum; exit 1\n"
        "                                 and the file and byte of the first corruption\n"
        "  consumers                      named consumers: topic, name, offset, lag, required\n"
        "  append --topic T --writers N --records TOTAL --record-bytes S [--ack-file F]\n"
        "                                 N closed-loop writers append TOTAL records; with\n"
        "                                 --ack-file each durable one is written to F as\n"
        "                                 'OFFSET KEY FNV1A64-OF-VALUE'\n"
        "  bench --writers N --records TOTAL --record-bytes S [--topic T]\n"
        "                                 the same load; prints one JSON line of figures\n\n"
        "append and bench write to the log, so no server may be running on the same data\n"
        "directory. --repair (append, bench) opens a log with corruption inside by cutting it\n"
        "at the first bad record. Settings such as --data-dir are those of `docket serve`:\n\n");
    config_print_help(stream);
}

/* ---- Arguments ----------------------------------------------------------- */

static int log_parse_number(const char *flag, const char *text, int64_t minimum, int64_t maximum,
                            int64_t *out) {
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < minimum || value > maximum) {
        fprintf(stderr, "docket: %s needs a whole number within %lld..%lld, got '%s'\n", flag,
                (long long)minimum, (long long)maximum, text);
        return ERR_PARSE;
    }
    *out = value;
    return 0;
}

/* Takes one of the subcommand's own flags at argv[*index]; 1 if taken, 0 if
 * not ours, negative on a bad value. */
static int log_take_flag(struct log_arguments *arguments, int argc, char **argv, int *index) {
    const char *flag = argv[*index];
    if (strcmp(flag, "--follow") == 0)
        return arguments->follow = 1;
    if (strcmp(flag, "--repair") == 0)
        return arguments->repair = 1;
    static const char *const valued[] = {"--from",    "--limit",        "--topic",   "--writers",
                                         "--records", "--record-bytes", "--ack-file"};
    size_t which = 0;
    while (which < sizeof valued / sizeof valued[0] && strcmp(flag, valued[which]) != 0)
        which++;
    if (which == sizeof valued / sizeof valued[0])
        return 0;
    if (*index + 1 >= argc) {
        fprintf(stderr, "docket: %s needs a value\n", flag);
        return ERR_PARSE;
    }
    const char *value = argv[++*index];
    switch (which) {
    case 0:
        arguments->from = value;
        return 1;
    case 1:
        return log_parse_number(flag, value, 0, INT64_MAX, &arguments->limit) == 0 ? 1 : ERR_PARSE;
    case 2:
        arguments->topic = value;
        return 1;
    case 3:
        return log_parse_number(flag, value, 1, LIMIT_CLI_LOG_WRITERS, &arguments->writers) == 0
                   ? 1
                   : ERR_PARSE;
    case 4:
        return log_parse_number(flag, value, 1, LIMIT_CLI_LOG_RECORDS, &arguments->records) == 0
                   ? 1
                   : ERR_PARSE;
    case 5:
        return log_parse_number(flag, value, 0, LIMIT_EVLOG_VALUE_BYTES,
                                &arguments->record_bytes) == 0
                   ? 1
                   : ERR_PARSE;
    default:
        arguments->ack_file = value;
        return 1;
    }
}

static int log_parse(struct log_arguments *arguments, int argc, char **argv) {
    memset(arguments, 0, sizeof *arguments);
    arguments->limit = -1;
    arguments->subcommand = argc > 0 ? argv[0] : NULL;
    arguments->rest = mem_calloc((size_t)argc + 1, sizeof *arguments->rest);
    if (arguments->rest == NULL)
        return ERR_NOMEM;
    for (int index = 1; index < argc; index++) {
        int taken = log_take_flag(arguments, argc, argv, &index);
        if (taken < 0)
            return taken;
        if (taken)
            continue;
        if (argv[index][0] != '-' && arguments->topic == NULL) {
            arguments->topic = argv[index];
            continue;
        }
        arguments->rest[arguments->rest_count++] = argv[index];
        /* A config flag's value travels with it. */
        if (argv[index][0] == '-' && strchr(argv[index], '=') == NULL && index + 1 < argc) {
            arguments->rest[arguments->rest_count++] = argv[++index];
        }
    }
    return 0;
}

/* Loads settings from the leftover flags, the environment and --config. */
static int log_settings(struct log_arguments *arguments) {
    struct config config;
    if (config_init(&config) != 0)
        return ERR_NOMEM;
    struct config_error error = {{0}};
    int rc = config_load(&config, arguments->rest_count, arguments->rest, environ, &error);
    if (rc != 0) {
        fprintf(stderr, "docket: %s\n", error.message[0] ? error.message : "invalid settings");
        config_free(&config);
        return rc;
    }
    enum logger_level level;
    if (logger_level_parse(config.log_level, &level) == 0)
        logger_set_level(level);
    int length = snprintf(arguments->log_directory, sizeof arguments->log_directory, "%s/log",
                          config.data_dir);
    config_free(&config);
    return length > 0 && (size_t)length < sizeof arguments->log_directory ? 0 : ERR_LIMIT;
}

/* ---- Read-only subcommands ------------------------------------------------- */

static int log_open_read_only(const struct log_arguments *arguments, struct evlog **log_out) {
    struct evlog_options options = {.directory = arguments->log_directory, .read_only = 1};
    struct evlog_error error = {{0}};
    int rc = evlog_open(log_out, &options, &error);
    if (rc != 0 && rc != ERR_NOTFOUND) {
        fprintf(stderr, "docket: %s\n", error.message[0] ? error.message : err_str(rc));
    }
    return rc;
}

/* Length of a valid UTF-8 sequence at data[0..available), or 0. */
static size_t log_utf8_length(const uint8_t *data, size_t available) {
    uint8_t lead = data[0];
    size_t length = lead >= 0xC2 && lead <= 0xDF   ? 2
                    : lead >= 0xE0 && lead <= 0xEF ? 3
                    : lead >= 0xF0 && lead <= 0xF4 ? 4
                                                   : 0;
    if (length == 0 || length > available)
        return 0;
    for (size_t index = 1; index < length; index++) {
        if ((data[index] & 0xC0) != 0x80)
            return 0;
    }
    return length;
}

/* Writes bytes as a JSON string: valid UTF-8 passes through, control
 * characters and invalid bytes are escaped as \u00XX. */
static void log_json_string(FILE *out, const uint8_t *data, size_t length) {
    putc('"', out);
    for (size_t index = 0; index < length; index++) {
        uint8_t byte = data[index];
        if (byte == '"' || byte == '\\') {
            putc('\\', out);
            putc(byte, out);
        } else if (byte == '\n') {
            fputs("\\n", out);
        } else if (byte < 0x20 || byte == 0x7f) {
            fprintf(out, "\\u%04x", byte);
        } else if (byte < 0x80) {
            putc(byte, out);
        } else {
            size_t sequence = log_utf8_length(data + index, length - index);
            if (sequence == 0) {
                fprintf(out, "\\u%04x", byte);
                continue;
            }
            fwrite(data + index, 1, sequence, out);
            index += sequence - 1;
        }
    }
    putc('"', out);
}

static void log_print_record(const struct evlog_record *record) {
    char time_text[32];
    clock_format_rfc3339_ms(record->timestamp_ns, time_text, (int)sizeof time_text);
    printf("{\"offset\":%lld,\"time\":\"%s\",\"key\":", (long long)record->offset, time_text);
    log_json_string(stdout, record->key, record->key_bytes);
    fputs(",\"headers\":{", stdout);
    size_t cursor = 0;
    struct evlog_header header;
    for (int first = 1; record_header_next(record, &cursor, &header); first = 0) {
        if (!first)
            putc(',', stdout);
        log_json_string(stdout, header.name, header.name_bytes);
        putc(':', stdout);
        log_json_string(stdout, header.value, header.value_bytes);
    }
    fputs("},\"value\":", stdout);
    log_json_string(stdout, record->value, record->value_bytes);
    fputs("}\n", stdout);
}

/* Where tail starts: --from as an offset or an RFC 3339 time, else the last 10. */
static int log_tail_start(const struct log_arguments *arguments, struct evlog_topic *topic,
                          int64_t *offset_out) {
    int64_t start = evlog_topic_start_offset(topic);
    int64_t end = evlog_topic_end_offset(topic);
    int64_t offset = end - 10 > start ? end - 10 : start;
    if (arguments->from != NULL) {
        const char *message = NULL;
        int64_t timestamp_ns = 0;
        size_t length = strlen(arguments->from);
        if (length > 0 && strspn(arguments->from, "0123456789") == length) {
            offset = strtoll(arguments->from, NULL, 10);
        } else if (timefmt_time_parse(arguments->from, length, &timestamp_ns, &message) == 0) {
            int rc = evlog_offset_for_time(topic, timestamp_ns, &offset);
            if (rc != 0)
                return rc;
        } else {
            fprintf(stderr, "docket: --from must be an offset or an RFC 3339 time, got '%s'\n",
                    arguments->from);
            return ERR_PARSE;
        }
    }
    if (offset < start) {
        fprintf(stderr, "docket: offsets before %lld were removed by retention; starting there\n",
                (long long)start);
        offset = start;
    }
    *offset_out = offset > end ? end : offset;
    return 0;
}

/* Prints records from *offset on; returns 0 at the end of the durable log. */
static int log_tail_print(struct evlog_topic *topic, int64_t *offset, int64_t *printed,
                          int64_t limit) {
    struct evlog_cursor cursor;
    int rc = evlog_cursor_open(&cursor, topic, *offset);
    if (rc != 0)
        return rc;
    struct evlog_record record;
    while ((limit < 0 || *printed < limit) && (rc = evlog_cursor_next(&cursor, &record)) == 0) {
        log_print_record(&record);
        *offset = record.offset + 1;
        (*printed)++;
    }
    evlog_cursor_close(&cursor);
    fflush(stdout);
    return rc == ERR_AGAIN ? 0 : rc;
}

static int log_tail(const struct log_arguments *arguments) {
    if (arguments->topic == NULL) {
        fprintf(stderr, "docket: usage: docket log tail TOPIC [--from OFFSET|TIME] [--follow]\n");
        return 2;
    }
    struct evlog *log = NULL;
    struct evlog_topic *topic = NULL;
    int64_t offset = 0;
    int64_t printed = 0;
    int rc = log_open_read_only(arguments, &log);
    if (rc == 0)
        rc = evlog_topic_open(log, arguments->topic, &topic);
    if (rc == 0)
        rc = log_tail_start(arguments, topic, &offset);
    while (rc == 0) {
        rc = log_tail_print(topic, &offset, &printed, arguments->limit);
        if (rc != 0 || !arguments->follow ||
            (arguments->limit >= 0 && printed >= arguments->limit)) {
            break;
        }
        evlog_close(log);
        log = NULL;
        struct timespec pause = {0, LIMIT_CLI_LOG_FOLLOW_MS * 1000000L};
        nanosleep(&pause, NULL);
        rc = log_open_read_only(arguments, &log);
        if (rc == 0)
            rc = evlog_topic_open(log, arguments->topic, &topic);
    }
    if (rc == ERR_NOTFOUND)
        fprintf(stderr, "docket: no topic '%s'\n", arguments->topic);
    else if (rc != 0 && rc != ERR_PARSE)
        fprintf(stderr, "docket: tail failed: %s\n", err_str(rc));
    evlog_close(log);
    return rc == 0 ? 0 : rc == ERR_PARSE ? 2 : 1;
}

static int log_topics(const struct log_arguments *arguments) {
    struct evlog *log = NULL;
    int rc = log_open_read_only(arguments, &log);
    if (rc == ERR_NOTFOUND)
        return 0; /* no log yet: no topics */
    if (rc != 0)
        return 1;
    printf("%-24s %12s %12s %8s %14s\n", "TOPIC", "START", "END", "SEGMENTS", "BYTES");
    for (size_t index = 0; index < evlog_topic_count(log); index++) {
        struct evlog_topic *topic = evlog_topic_at(log, index);
        printf("%-24s %12lld %12lld %8zu %14lld\n", evlog_topic_name(topic),
               (long long)evlog_topic_start_offset(topic), (long long)evlog_topic_end_offset(topic),
               evlog_topic_segment_count(topic), (long long)evlog_topic_bytes(topic));
    }
    evlog_close(log);
    return 0;
}

static int log_consumers(const struct log_arguments *arguments) {
    struct evlog *log = NULL;
    int rc = log_open_read_only(arguments, &log);
    if (rc == ERR_NOTFOUND)
        return 0;
    if (rc != 0)
        return 1;
    printf("%-24s %-24s %12s %12s %s\n", "TOPIC", "NAME", "OFFSET", "LAG", "REQUIRED");
    for (size_t index = 0; index < evlog_topic_count(log); index++) {
        struct evlog_topic *topic = evlog_topic_at(log, index);
        struct evlog_consumer_info infos[LIMIT_EVLOG_CONSUMERS];
        size_t count = evlog_consumer_list(topic, infos, LIMIT_EVLOG_CONSUMERS);
        for (size_t position = 0; position < count && position < LIMIT_EVLOG_CONSUMERS;
             position++) {
            printf("%-24s %-24s %12lld %12lld %s\n", evlog_topic_name(topic), infos[position].name,
                   (long long)infos[position].offset, (long long)infos[position].lag,
                   infos[position].required ? "yes" : "no");
        }
    }
    evlog_close(log);
    return 0;
}

static void log_verify_progress(void *arg, const char *segment_path, int64_t done_bytes,
                                int64_t total_bytes) {
    (void)arg;
    fprintf(stderr, "verify: %s %lld/%lld bytes\n", segment_path, (long long)done_bytes,
            (long long)total_bytes);
}

static int log_verify(const struct log_arguments *arguments) {
    struct evlog *log = NULL;
    int rc = log_open_read_only(arguments, &log);
    if (rc == ERR_NOTFOUND) {
        printf("ok: no event log in %s\n", arguments->log_directory);
        return 0;
    }
    if (rc != 0)
        return 1; /* corruption found while opening: already printed */
    int64_t torn_bytes = 0;
    struct evlog_error error = {{0}};
    rc = evlog_verify(log, log_verify_progress, NULL, &torn_bytes, &error);
    if (rc != 0) {
        fprintf(stderr, "docket: %s\n", error.message[0] ? error.message : err_str(rc));
        evlog_close(log);
        return 1;
    }
    int64_t records = 0;
    int64_t bytes = 0;
    size_t segments = 0;
    for (size_t index = 0; index < evlog_topic_count(log); index++) {
        struct evlog_topic *topic = evlog_topic_at(log, index);
        records += evlog_topic_end_offset(topic) - evlog_topic_start_offset(topic);
        bytes += evlog_topic_bytes(topic);
        segments += evlog_topic_segment_count(topic);
    }
    printf("ok: %zu topics, %zu segments, %lld records, %lld bytes verified\n",
           evlog_topic_count(log), segments, (long long)records, (long long)bytes);
    if (torn_bytes > 0) {
        printf("note: %lld bytes of torn tail after the last whole record (from a crash); the "
               "next writer cuts them\n",
               (long long)torn_bytes);
    }
    evlog_close(log);
    return 0;
}

int log_command_run(int argc, char **argv) {
    if (argc < 1) {
        log_command_help(stderr);
        return 2;
    }
    struct log_arguments *arguments = mem_calloc(1, sizeof *arguments);
    if (arguments == NULL)
        return 1;
    int status = 2;
    if (log_parse(arguments, argc, argv) != 0 || log_settings(arguments) != 0)
        goto done;
    const char *command = arguments->subcommand;
    if (strcmp(command, "topics") == 0)
        status = log_topics(arguments);
    else if (strcmp(command, "tail") == 0)
        status = log_tail(arguments);
    else if (strcmp(command, "verify") == 0)
        status = log_verify(arguments);
    else if (strcmp(command, "consumers") == 0)
        status = log_consumers(arguments);
    else if (strcmp(command, "append") == 0 || strcmp(command, "bench") == 0) {
        status = log_load_run(arguments);
    } else {
        fprintf(stderr, "docket: unknown log subcommand '%s' (see docket help log)\n", command);
    }
done:
    mem_free(arguments->rest);
    mem_free(arguments);
    return status;
}
