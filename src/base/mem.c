/*
 * mem.c - thin wrappers over the C allocator with a failure-injection counter
 * for tests. The counter is a plain global: Docket's domain code runs on one
 * thread, and tests arm it only around single-threaded code.
 */
#include "mem.h"

#include <stdlib.h>
#include <string.h>

static long mem_fail_countdown = -1; /* allocations left before failing; <0 = never fail */

static int mem_should_fail(void) {
    if (mem_fail_countdown < 0) return 0;
    if (mem_fail_countdown == 0) return 1;
    mem_fail_countdown--;
    return 0;
}

void mem_fail_after(long count) {
    mem_fail_countdown = count;
}

void *mem_alloc(size_t size) {
    if (mem_should_fail()) return NULL;
    return malloc(size == 0 ? 1 : size);
}

void *mem_calloc(size_t count, size_t size) {
    if (mem_should_fail()) return NULL;
    return calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
}

void *mem_realloc(void *pointer, size_t size) {
    if (mem_should_fail()) return NULL;
    return realloc(pointer, size == 0 ? 1 : size);
}

void mem_free(void *pointer) {
    free(pointer);
}

char *mem_strndup(const char *text, size_t length) {
    char *copy = mem_alloc(length + 1);
    if (copy == NULL) return NULL;
    memcpy(copy, text, length);
    copy[length] = '\0';
    return copy;
}

char *mem_strdup(const char *text) {
    return mem_strndup(text, strlen(text));
}
