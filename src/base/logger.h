/*
 * logger.h - structured log lines on stderr.
 *
 * Each line is logfmt: `time=<RFC 3339> level=<level> component=<name>
 * msg="<sentence>"` followed by the caller's own key=value fields. logfmt is
 * both greppable by people and parseable by machines (journald, Loki, tests).
 * Values with spaces or quotes must be passed through logger_quote().
 */
#ifndef DOCKET_BASE_LOGGER_H
#define DOCKET_BASE_LOGGER_H

#include <stdio.h>

enum logger_level {
    LOGGER_DEBUG = 0,
    LOGGER_INFO = 1,
    LOGGER_WARN = 2,
    LOGGER_ERROR = 3,
};

void logger_set_level(enum logger_level level);
void logger_set_stream(FILE *stream);

/* Parses "debug", "info", "warn" or "error". Returns 0 or ERR_INVAL. */
int logger_level_parse(const char *text, enum logger_level *level_out);

/* Writes one line. `fields_format` is a printf format for the trailing
 * key=value fields, or NULL for none. */
void logger_write(enum logger_level level, const char *component, const char *message,
                  const char *fields_format, ...) __attribute__((format(printf, 4, 5)));

/* Copies `value` into `out` as a logfmt value: bare when it is a simple token,
 * otherwise double-quoted with `"` and `\` escaped and control bytes dropped.
 * Always NUL-terminates; truncates to fit. Returns `out`. */
const char *logger_quote(const char *value, char *out, int out_size);

#define LOG_DEBUG(component, message, ...) logger_write(LOGGER_DEBUG, component, message, __VA_ARGS__)
#define LOG_INFO(component, message, ...) logger_write(LOGGER_INFO, component, message, __VA_ARGS__)
#define LOG_WARN(component, message, ...) logger_write(LOGGER_WARN, component, message, __VA_ARGS__)
#define LOG_ERROR(component, message, ...) logger_write(LOGGER_ERROR, component, message, __VA_ARGS__)

#endif
