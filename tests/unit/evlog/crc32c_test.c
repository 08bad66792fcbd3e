/* crc32c_test.c - proves CRC-32C matches the published check value and the
 * RFC 3720 (iSCSI) test vectors, and that incremental and unaligned use give
 * the same result as one call. */
#include "../../../src/evlog/crc32c.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

TEST(crc32c_matches_check_value) {
    EXPECT_EQ_INT(crc32c("123456789", 9), 0xE3069283u);
    EXPECT_EQ_INT(crc32c("", 0), 0);
    EXPECT_EQ_INT(crc32c("a", 1), 0xC1D04330u);
}

TEST(crc32c_matches_rfc3720_vectors) {
    uint8_t data[32];
    memset(data, 0, sizeof data);
    EXPECT_EQ_INT(crc32c(data, 32), 0x8A9136AAu);
    memset(data, 0xff, sizeof data);
    EXPECT_EQ_INT(crc32c(data, 32), 0x62A8AB43u);
    for (int index = 0; index < 32; index++)
        data[index] = (uint8_t)index;
    EXPECT_EQ_INT(crc32c(data, 32), 0x46DD794Eu);
    for (int index = 0; index < 32; index++)
        data[index] = (uint8_t)(31 - index);
    EXPECT_EQ_INT(crc32c(data, 32), 0x113FDB5Cu);
}

TEST(crc32c_incremental_and_unaligned_agree) {
    uint8_t data[1000];
    for (int index = 0; index < 1000; index++)
        data[index] = (uint8_t)(index * 7 + 3);
    uint32_t whole = crc32c(data + 1, 999);
    for (size_t split = 0; split <= 999; split += 37) {
        uint32_t crc = crc32c_update(0, data + 1, split);
        crc = crc32c_update(crc, data + 1 + split, 999 - split);
        EXPECT_EQ_INT(crc, whole);
    }
}
