/*
 * zoneinfo_seeds.h - the TZif files of tests/fuzz/corpus/zoneinfo/, read by
 * the zoneinfo and occurrence tests (real tzdata zones and damaged copies).
 */
#ifndef DOCKET_TESTS_ZONEINFO_SEEDS_H
#define DOCKET_TESTS_ZONEINFO_SEEDS_H

#include "../../../src/tasks/zoneinfo.h"

#include <stddef.h>
#include <stdint.h>

/* Reads tests/fuzz/corpus/zoneinfo/<seed> into `out`; returns its size or
 * 0. The directory is found from this file's path when it is absolute
 * (zig passes absolute paths), else from the repository root. */
size_t seed_read(const char *seed, uint8_t *out, size_t capacity);

/* Parses that seed into `zone`: zoneinfo_parse's result, or ERR_NOTFOUND. */
int seed_parse(const char *seed, struct zoneinfo *zone);

#endif
