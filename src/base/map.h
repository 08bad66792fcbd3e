/*
 * map.h - a string-keyed hash map (open addressing, linear probing, backward-
 * shift deletion, so there are no tombstones and lookups stay short after
 * many removals). Keys are copied; values are caller-owned pointers.
 *
 * Used on the loop thread for the command layer's in-flight state (tasks with
 * events not yet applied, per-user sequence counters, idempotency keys in
 * flight). Every map has a ceiling on its entry count: map_put fails with
 * ERR_LIMIT past it instead of growing without bound.
 */
#ifndef DOCKET_BASE_MAP_H
#define DOCKET_BASE_MAP_H

#include <stddef.h>
#include <stdint.h>

struct map_slot {
    char *key;      /* owned copy; NULL = empty slot */
    size_t length;  /* bytes of key */
    uint64_t hash;  /* hash of key */
    void *value;    /* caller's pointer */
};

struct map {
    struct map_slot *slots; /* capacity slots (a power of two) */
    size_t capacity;        /* slots allocated */
    size_t count;           /* slots used */
    size_t limit;           /* most entries ever allowed */
};

void map_init(struct map *map, size_t limit);
/* Frees the keys and slots (not the values). */
void map_free(struct map *map);

/* The value for key, or NULL. */
void *map_get(const struct map *map, const char *key, size_t length);
/* Inserts or replaces. 0, ERR_LIMIT, ERR_NOMEM. */
int map_put(struct map *map, const char *key, size_t length, void *value);
/* Removes the key; returns its value or NULL. */
void *map_remove(struct map *map, const char *key, size_t length);

/* Iteration: *cursor starts at 0; returns the next used slot or NULL. The
 * map must not change during iteration. */
struct map_slot *map_next(const struct map *map, size_t *cursor);

#endif
