/*
 * tzdata.c - lookups in the embedded zone table.
 *
 * The table itself is generated at build time (tzdata_data.c, written by
 * src/tasks/tzdata_embed.c from vendor/src/tzdata/): one blob of TZif bytes
 * in which identical files are stored once, and three arrays parallel to the
 * sorted zone names giving each zone's offset and length in the blob. Plain
 * arrays rather than a shared struct keep the generated file free of any
 * header; the declarations below are the contract with the generator.
 */
#include "tzdata.h"

#include "../base/check.h"
#include "../base/err.h"

#include <string.h>

/* Written by tzdata_embed.c (see build.zig, tzdataTable). */
extern const char tzdata_version_text[];
extern const unsigned char tzdata_blob[];
extern const size_t tzdata_blob_size;
extern const char *const tzdata_names[];
extern const uint32_t tzdata_offsets[];
extern const uint32_t tzdata_lengths[];
extern const size_t tzdata_names_count;

size_t tzdata_count(void) {
    return tzdata_names_count;
}

const char *tzdata_name(size_t index) {
    CHECK(index < tzdata_names_count);
    return tzdata_names[index];
}

const char *tzdata_version(void) {
    return tzdata_version_text;
}

int tzdata_find(const char *name, const uint8_t **bytes, size_t *length) {
    CHECK(bytes != NULL && length != NULL);
    if (name == NULL)
        return ERR_INVAL;
    size_t low = 0;
    size_t high = tzdata_names_count;
    /* Binary search: the loop runs at most log2(count) + 1 times. */
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        int order = strcmp(name, tzdata_names[middle]);
        if (order == 0) {
            CHECK((size_t)tzdata_offsets[middle] + tzdata_lengths[middle] <= tzdata_blob_size);
            *bytes = tzdata_blob + tzdata_offsets[middle];
            *length = tzdata_lengths[middle];
            return 0;
        }
        if (order < 0)
            high = middle;
        else
            low = middle + 1;
    }
    return ERR_NOTFOUND;
}
