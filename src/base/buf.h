/*
 * buf.h - a growable byte buffer with a hard capacity ceiling.
 *
 * Used to assemble responses and to hold partial input. Growth past `limit`
 * fails with ERR_LIMIT instead of allocating, which is how per-connection
 * memory stays bounded.
 */
#ifndef DOCKET_BASE_BUF_H
#define DOCKET_BASE_BUF_H

#include <stddef.h>

struct buf {
    char *data;      /* owned storage, NUL-terminated when non-NULL */
    size_t length;   /* bytes in use */
    size_t capacity; /* bytes allocated (excluding the NUL) */
    size_t limit;    /* largest `length` ever allowed */
};

void buf_init(struct buf *buf, size_t limit);
void buf_free(struct buf *buf);
void buf_reset(struct buf *buf);

/* Ensures room for `extra` more bytes. 0, ERR_LIMIT or ERR_NOMEM. */
int buf_reserve(struct buf *buf, size_t extra);
int buf_append(struct buf *buf, const void *data, size_t length);
int buf_append_str(struct buf *buf, const char *text);
int buf_printf(struct buf *buf, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Appends an unsigned integer in decimal (no printf: this is on hot paths). */
int buf_append_uint(struct buf *buf, unsigned long long value);

/* Removes the first `count` bytes, moving the rest to the front. */
void buf_consume(struct buf *buf, size_t count);

#endif
