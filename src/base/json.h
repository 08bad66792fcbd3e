/*
 * json.h - what every module that reads or writes JSON with yyjson shares:
 * an allocator that goes through the mem seam (so tests can make yyjson's
 * allocations fail), and a nesting check run before parsing untrusted text.
 */
#ifndef DOCKET_BASE_JSON_H
#define DOCKET_BASE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <yyjson.h>

/* yyjson allocations through mem_alloc/mem_realloc/mem_free. */
extern const yyjson_alc json_allocator;

/* True when arrays and objects in `json` nest at most `depth_max` deep.
 * Brackets inside strings are skipped; syntax is yyjson's business. */
bool json_depth_ok(const char *json, size_t length, int depth_max);

#endif
