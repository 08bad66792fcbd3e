/*
 * buf.c - implementation of the bounded growable buffer: doubling growth,
 * always NUL-terminated so text can be handed to C string functions.
 */
#include "buf.h"

#include "check.h"
#include "err.h"
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void buf_init(struct buf *buf, size_t limit) {
    buf->data = NULL;
    buf->length = 0;
    buf->capacity = 0;
    buf->limit = limit;
}

void buf_free(struct buf *buf) {
    mem_free(buf->data);
    buf->data = NULL;
    buf->length = 0;
    buf->capacity = 0;
}

void buf_reset(struct buf *buf) {
    buf->length = 0;
    if (buf->data != NULL) buf->data[0] = '\0';
}

int buf_reserve(struct buf *buf, size_t extra) {
    if (extra > buf->limit || buf->length > buf->limit - extra) return ERR_LIMIT;
    size_t needed = buf->length + extra;
    if (needed <= buf->capacity && buf->data != NULL) return 0;
    size_t capacity = buf->capacity < 256 ? 256 : buf->capacity;
    while (capacity < needed) capacity *= 2;
    if (capacity > buf->limit) capacity = buf->limit;
    char *data = mem_realloc(buf->data, capacity + 1);
    if (data == NULL) return ERR_NOMEM;
    buf->data = data;
    buf->capacity = capacity;
    buf->data[buf->length] = '\0';
    return 0;
}

int buf_append(struct buf *buf, const void *data, size_t length) {
    int rc = buf_reserve(buf, length);
    if (rc != 0) return rc;
    if (length > 0) memcpy(buf->data + buf->length, data, length);
    buf->length += length;
    buf->data[buf->length] = '\0';
    return 0;
}

int buf_append_str(struct buf *buf, const char *text) {
    return buf_append(buf, text, strlen(text));
}

int buf_printf(struct buf *buf, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    int needed = vsnprintf(NULL, 0, format, arguments);
    va_end(arguments);
    if (needed < 0) return ERR_INVAL;
    int rc = buf_reserve(buf, (size_t)needed);
    if (rc != 0) return rc;
    va_start(arguments, format);
    vsnprintf(buf->data + buf->length, (size_t)needed + 1, format, arguments);
    va_end(arguments);
    buf->length += (size_t)needed;
    return 0;
}

int buf_append_uint(struct buf *buf, unsigned long long value) {
    char digits[24];
    int length = 0;
    do {
        digits[sizeof digits - 1 - length++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0 && length < (int)sizeof digits);
    return buf_append(buf, digits + sizeof digits - length, (size_t)length);
}

void buf_consume(struct buf *buf, size_t count) {
    CHECK(count <= buf->length);
    memmove(buf->data, buf->data + count, buf->length - count);
    buf->length -= count;
    if (buf->data != NULL) buf->data[buf->length] = '\0';
}
