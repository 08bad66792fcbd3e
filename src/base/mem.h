/*
 * mem.h - the allocation seam.
 *
 * All Docket code allocates through these wrappers so that unit tests can make
 * the N-th allocation fail (mem_fail_after) and prove that every caller handles
 * exhaustion. They never abort: a NULL return is an ordinary error (ERR_NOMEM).
 */
#ifndef DOCKET_BASE_MEM_H
#define DOCKET_BASE_MEM_H

#include <stddef.h>

void *mem_alloc(size_t size);
void *mem_calloc(size_t count, size_t size);
void *mem_realloc(void *pointer, size_t size);
void mem_free(void *pointer);
char *mem_strdup(const char *text);
char *mem_strndup(const char *text, size_t length);

/* Test hook: allocations succeed `count` more times, then fail until reset.
 * A negative count disables injection (the default). */
void mem_fail_after(long count);

#endif
