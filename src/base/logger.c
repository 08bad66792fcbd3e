/*
 * logger.c - formats one logfmt line into a bounded stack buffer and writes it
 * with a single fwrite, so lines from different components never interleave.
 */
#include "logger.h"

#include "clock.h"
#include "err.h"
#include "limits.h"

#include <stdarg.h>
#include <string.h>

static enum logger_level logger_threshold = LOGGER_INFO; /* lines below this level are dropped */
static FILE *logger_stream = NULL;                       /* NULL means stderr */

static const char *const logger_level_names[] = {"debug", "info", "warn", "error"};

void logger_set_level(enum logger_level level) {
    logger_threshold = level;
}

void logger_set_stream(FILE *stream) {
    logger_stream = stream;
}

int logger_level_parse(const char *text, enum logger_level *level_out) {
    for (int index = 0; index < 4; index++) {
        if (strcmp(text, logger_level_names[index]) == 0) {
            *level_out = (enum logger_level)index;
            return 0;
        }
    }
    return ERR_INVAL;
}

static int logger_is_bare(const char *value) {
    if (*value == '\0') return 0;
    for (const char *cursor = value; *cursor; cursor++) {
        unsigned char byte = (unsigned char)*cursor;
        if (byte <= ' ' || byte == '"' || byte == '=' || byte == '\\' || byte >= 0x7f) return 0;
    }
    return 1;
}

const char *logger_quote(const char *value, char *out, int out_size) {
    if (out_size <= 0) return out;
    if (logger_is_bare(value)) {
        snprintf(out, (size_t)out_size, "%s", value);
        return out;
    }
    int length = 0;
    out[length++] = '"';
    for (const char *cursor = value; *cursor && length < out_size - 3; cursor++) {
        unsigned char byte = (unsigned char)*cursor;
        if (byte < ' ' || byte == 0x7f) continue;
        if (byte == '"' || byte == '\\') {
            if (length >= out_size - 4) break;
            out[length++] = '\\';
        }
        out[length++] = (char)byte;
    }
    out[length++] = '"';
    out[length] = '\0';
    return out;
}

void logger_write(enum logger_level level, const char *component, const char *message,
                  const char *fields_format, ...) {
    if (level < logger_threshold) return;
    char line[LIMIT_LOG_LINE_BYTES];
    char time_text[32];
    char message_quoted[512];
    clock_format_rfc3339_ms(clock_system()->wall_ns(clock_system()), time_text,
                            (int)sizeof time_text);
    int length = snprintf(line, sizeof line, "time=%s level=%s component=%s msg=%s", time_text,
                          logger_level_names[level], component,
                          logger_quote(message, message_quoted, (int)sizeof message_quoted));
    if (fields_format != NULL && length > 0 && (size_t)length < sizeof line - 2) {
        line[length++] = ' ';
        va_list arguments;
        va_start(arguments, fields_format);
        int added = vsnprintf(line + length, sizeof line - (size_t)length, fields_format,
                              arguments);
        va_end(arguments);
        if (added > 0) length += added;
    }
    if (length < 0) return;
    if ((size_t)length >= sizeof line - 1) {
        length = (int)sizeof line - 5;
        memcpy(line + length, " ...", 4);
        length += 4;
    }
    line[length++] = '\n';
    FILE *stream = logger_stream != NULL ? logger_stream : stderr;
    fwrite(line, 1, (size_t)length, stream);
    fflush(stream);
}
