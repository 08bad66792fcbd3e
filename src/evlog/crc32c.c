/*
 * crc32c.c - table-driven CRC-32C, slicing-by-8 (Intel's "Slicing-by-8"
 * technique: eight bytes per step through eight derived tables). The tables
 * are built once, before main, by a constructor, so no thread ever sees them
 * half-built.
 */
#include "crc32c.h"

#include "../base/check.h"

#define CRC32C_POLYNOMIAL_REFLECTED 0x82F63B78u

static uint32_t crc32c_table[8][256]; /* [k][b]: CRC of byte b followed by k zero bytes */

__attribute__((constructor)) static void crc32c_build_tables(void) {
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc & 1) ? (crc >> 1) ^ CRC32C_POLYNOMIAL_REFLECTED : crc >> 1;
        }
        crc32c_table[0][byte] = crc;
    }
    for (uint32_t byte = 0; byte < 256; byte++) {
        for (int slice = 1; slice < 8; slice++) {
            uint32_t previous = crc32c_table[slice - 1][byte];
            crc32c_table[slice][byte] = (previous >> 8) ^ crc32c_table[0][previous & 0xff];
        }
    }
    CHECK(crc32c_table[0][1] == 0xF26B8303u);
}

uint32_t crc32c_update(uint32_t crc, const void *data, size_t length) {
    CHECK(data != NULL || length == 0);
    const uint8_t *bytes = data;
    crc = ~crc;
    while (length > 0 && ((uintptr_t)bytes & 7) != 0) {
        crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *bytes++) & 0xff];
        length--;
    }
    while (length >= 8) {
        uint32_t low = crc ^ ((uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 |
                              (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 24);
        uint32_t high = (uint32_t)bytes[4] | (uint32_t)bytes[5] << 8 | (uint32_t)bytes[6] << 16 |
                        (uint32_t)bytes[7] << 24;
        crc = crc32c_table[7][low & 0xff] ^ crc32c_table[6][(low >> 8) & 0xff] ^
              crc32c_table[5][(low >> 16) & 0xff] ^ crc32c_table[4][low >> 24] ^
              crc32c_table[3][high & 0xff] ^ crc32c_table[2][(high >> 8) & 0xff] ^
              crc32c_table[1][(high >> 16) & 0xff] ^ crc32c_table[0][high >> 24];
        bytes += 8;
        length -= 8;
    }
    while (length > 0) {
        crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *bytes++) & 0xff];
        length--;
    }
    return ~crc;
}
