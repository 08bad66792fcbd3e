/*
 * assets.c - lookup over the generated asset table (a handful of files, so a
 * linear scan).
 */
#include "assets.h"

#include <string.h>

const struct asset *assets_find(const char *path, size_t path_length) {
    if (path_length == 1 && path[0] == '/') {
        path = "/index.html";
        path_length = strlen(path);
    }
    for (size_t index = 0; index < assets_count; index++) {
        const struct asset *asset = &assets_table[index];
        if (strlen(asset->path) == path_length && memcmp(asset->path, path, path_length) == 0) {
            return asset;
        }
    }
    return NULL;
}
