/*
 * json.c - the mem-seam allocator for yyjson and the nesting check (json.h).
 */
#include "json.h"

#include "mem.h"

static void *json_malloc(void *context, size_t size) {
    (void)context;
    return mem_alloc(size);
}

static void *json_realloc(void *context, void *pointer, size_t old_size, size_t size) {
    (void)context;
    (void)old_size;
    return mem_realloc(pointer, size);
}

static void json_free(void *context, void *pointer) {
    (void)context;
    mem_free(pointer);
}

const yyjson_alc json_allocator = {json_malloc, json_realloc, json_free, NULL};

bool json_depth_ok(const char *json, size_t length, int depth_max) {
    int depth = 0;
    bool in_string = false;
    for (size_t index = 0; index < length; index++) {
        char character = json[index];
        if (in_string) {
            if (character == '\\') index++;
            else if (character == '"') in_string = false;
        } else if (character == '"') {
            in_string = true;
        } else if (character == '[' || character == '{') {
            if (++depth > depth_max) return false;
        } else if (character == ']' || character == '}') {
            depth--;
        }
    }
    return true;
}
