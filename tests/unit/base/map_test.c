/* map_test.c - the hash map against a simple reference under random puts and
 * removes, its limit, and iteration. */
#include "../../../src/base/err.h"
#include "../../../src/base/map.h"
#include "../test.h"

#include <stdio.h>
#include <stdlib.h>

/* Random inserts and removals agree with a plain array model at every step. */
TEST(map_matches_reference_under_churn) {
    struct map map;
    map_init(&map, 100000);
    static int present[2000];
    static int values[2000];
    memset(present, 0, sizeof present);
    unsigned seed = 7;
    for (int step = 0; step < 50000; step++) {
        seed = seed * 1103515245u + 12345u;
        int key_number = (int)((seed >> 8) % 2000);
        char key[16];
        int length = snprintf(key, sizeof key, "k%d", key_number);
        if ((seed >> 4) & 1) {
            values[key_number] = step;
            EXPECT_EQ_INT(map_put(&map, key, (size_t)length, &values[key_number]), 0);
            present[key_number] = 1;
        } else {
            void *removed = map_remove(&map, key, (size_t)length);
            EXPECT((removed != NULL) == (present[key_number] != 0));
            present[key_number] = 0;
        }
        if (step % 997 == 0) {
            size_t count = 0;
            for (int index = 0; index < 2000; index++) {
                char probe[16];
                int probe_length = snprintf(probe, sizeof probe, "k%d", index);
                int *value = map_get(&map, probe, (size_t)probe_length);
                EXPECT((value != NULL) == (present[index] != 0));
                if (value != NULL) {
                    EXPECT_EQ_INT(*value, values[index]);
                    count++;
                }
            }
            EXPECT_EQ_INT(count, map.count);
        }
    }
    map_free(&map);
}

/* Past its limit a map refuses new keys but still replaces existing ones. */
TEST(map_limit) {
    struct map map;
    map_init(&map, 2);
    int value = 1;
    EXPECT_EQ_INT(map_put(&map, "a", 1, &value), 0);
    EXPECT_EQ_INT(map_put(&map, "b", 1, &value), 0);
    EXPECT_EQ_INT(map_put(&map, "c", 1, &value), ERR_LIMIT);
    EXPECT_EQ_INT(map_put(&map, "a", 1, NULL), 0);
    size_t cursor = 0, seen = 0;
    while (map_next(&map, &cursor) != NULL) seen++;
    EXPECT_EQ_INT(seen, 2);
    map_free(&map);
}
