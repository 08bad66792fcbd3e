/*
 * map.c - string-keyed hash map with linear probing and backward-shift
 * deletion. FNV-1a hashing: keys are short ids, where it is fast and mixes
 * well enough; the load factor stays at or below 1/2.
 */
#include "map.h"

#include "check.h"
#include "err.h"
#include "mem.h"

#include <string.h>

#define MAP_CAPACITY_MIN 16

static uint64_t map_hash(const char *key, size_t length) {
    uint64_t hash = 1469598103934665603ull;
    for (size_t index = 0; index < length; index++) {
        hash ^= (uint8_t)key[index];
        hash *= 1099511628211ull;
    }
    return hash;
}

void map_init(struct map *map, size_t limit) {
    memset(map, 0, sizeof *map);
    map->limit = limit;
}

void map_free(struct map *map) {
    for (size_t index = 0; index < map->capacity; index++) mem_free(map->slots[index].key);
    mem_free(map->slots);
    map->slots = NULL;
    map->capacity = 0;
    map->count = 0;
}

static struct map_slot *map_find(const struct map *map, const char *key, size_t length,
                                 uint64_t hash) {
    if (map->capacity == 0) return NULL;
    size_t mask = map->capacity - 1;
    for (size_t probe = 0, index = hash & mask; probe < map->capacity;
         probe++, index = (index + 1) & mask) {
        struct map_slot *slot = &map->slots[index];
        if (slot->key == NULL) return NULL;
        if (slot->hash == hash && slot->length == length && memcmp(slot->key, key, length) == 0) {
            return slot;
        }
    }
    return NULL;
}

void *map_get(const struct map *map, const char *key, size_t length) {
    struct map_slot *slot = map_find(map, key, length, map_hash(key, length));
    return slot != NULL ? slot->value : NULL;
}

static void map_place(struct map_slot *slots, size_t capacity, struct map_slot *entry) {
    size_t mask = capacity - 1;
    size_t index = entry->hash & mask;
    while (slots[index].key != NULL) index = (index + 1) & mask;
    slots[index] = *entry;
}

static int map_grow(struct map *map) {
    size_t capacity = map->capacity == 0 ? MAP_CAPACITY_MIN : map->capacity * 2;
    struct map_slot *slots = mem_calloc(capacity, sizeof *slots);
    if (slots == NULL) return ERR_NOMEM;
    for (size_t index = 0; index < map->capacity; index++) {
        if (map->slots[index].key != NULL) map_place(slots, capacity, &map->slots[index]);
    }
    mem_free(map->slots);
    map->slots = slots;
    map->capacity = capacity;
    return 0;
}

int map_put(struct map *map, const char *key, size_t length, void *value) {
    uint64_t hash = map_hash(key, length);
    struct map_slot *slot = map_find(map, key, length, hash);
    if (slot != NULL) {
        slot->value = value;
        return 0;
    }
    if (map->count >= map->limit) return ERR_LIMIT;
    if ((map->count + 1) * 2 > map->capacity) {
        int rc = map_grow(map);
        if (rc != 0) return rc;
    }
    struct map_slot entry = {mem_strndup(key, length), length, hash, value};
    if (entry.key == NULL) return ERR_NOMEM;
    map_place(map->slots, map->capacity, &entry);
    map->count++;
    return 0;
}

void *map_remove(struct map *map, const char *key, size_t length) {
    struct map_slot *slot = map_find(map, key, length, map_hash(key, length));
    if (slot == NULL) return NULL;
    void *value = slot->value;
    mem_free(slot->key);
    size_t mask = map->capacity - 1;
    size_t hole = (size_t)(slot - map->slots);
    map->slots[hole].key = NULL;
    /* Backward shift: move later entries of the probe run into the hole when
     * their home slot is at or before it (cyclically). */
    for (size_t index = (hole + 1) & mask; map->slots[index].key != NULL;
         index = (index + 1) & mask) {
        size_t home = map->slots[index].hash & mask;
        size_t distance_to_index = (index - home) & mask;
        size_t distance_to_hole = (hole - home) & mask;
        if (distance_to_hole <= distance_to_index) {
            map->slots[hole] = map->slots[index];
            map->slots[index].key = NULL;
            hole = index;
        }
    }
    map->count--;
    CHECK(map->count < map->capacity);
    return value;
}

struct map_slot *map_next(const struct map *map, size_t *cursor) {
    while (*cursor < map->capacity) {
        struct map_slot *slot = &map->slots[(*cursor)++];
        if (slot->key != NULL) return slot;
    }
    return NULL;
}
