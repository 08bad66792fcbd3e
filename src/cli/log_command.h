/*
 * log_command.h - `docket log ...`: inspecting and exercising the event log
 * from the command line (topics, tail, verify, consumers, and the append and
 * bench load generators used by the crash test and the benchmarks).
 */
#ifndef DOCKET_CLI_LOG_COMMAND_H
#define DOCKET_CLI_LOG_COMMAND_H

#include <stdint.h>
#include <stdio.h>

/* Runs `docket log SUBCOMMAND ...`; argv[0] is the subcommand. Returns the
 * exit status: 0 success, 1 failure (corruption, I/O), 2 usage error. */
int log_command_run(int argc, char **argv);

void log_command_help(FILE *stream);

/* Parsed command line of a log subcommand (shared with log_load.c). */
struct log_arguments {
    const char *subcommand;   /* topics | tail | verify | consumers | append | bench */
    const char *topic;        /* positional topic or --topic */
    const char *from;         /* tail --from: offset or RFC 3339 time */
    int follow;               /* tail --follow */
    int64_t limit;            /* tail --limit, -1 = none */
    int64_t writers;          /* append/bench --writers */
    int64_t records;          /* append/bench --records */
    int64_t record_bytes;     /* append/bench --record-bytes */
    const char *ack_file;     /* append --ack-file */
    int repair;               /* --repair: open cutting corruption */
    char **rest;              /* arguments left for config_load (owned array) */
    int rest_count;           /* entries of rest */
    char log_directory[4096]; /* <data_dir>/log */
};

/* log_load.c: `append` and `bench`. */
int log_load_run(const struct log_arguments *arguments);

#endif
