/*
 * zoneinfo_seeds.c - reading the zoneinfo fuzz seeds for unit tests (see the
 * header).
 */
#include "zoneinfo_seeds.h"

#include "../../../src/base/err.h"

#include <stdio.h>
#include <string.h>

size_t seed_read(const char *seed, uint8_t *out, size_t capacity) {
    char path[1024];
    const char *marker = strstr(__FILE__, "tests/unit/tasks/");
    if (__FILE__[0] == '/' && marker != NULL)
        snprintf(path, sizeof path, "%.*stests/fuzz/corpus/zoneinfo/%s", (int)(marker - __FILE__),
                 __FILE__, seed);
    else
        snprintf(path, sizeof path, "tests/fuzz/corpus/zoneinfo/%s", seed);
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return 0;
    size_t got = fread(out, 1, capacity, file);
    fclose(file);
    return got;
}

int seed_parse(const char *seed, struct zoneinfo *zone) {
    static uint8_t bytes[ZONEINFO_FILE_BYTES];
    size_t length = seed_read(seed, bytes, sizeof bytes);
    if (length == 0)
        return ERR_NOTFOUND;
    return zoneinfo_parse(bytes, length, zone);
}
