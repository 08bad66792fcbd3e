/*
 * crc32c.h - CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78),
 * the checksum of every event-log record, segment header and index file.
 *
 * CRC-32C rather than zlib's CRC-32 because it detects more error patterns in
 * the record sizes we write and is what LevelDB, RocksDB and Kafka's record
 * batches use. Software slicing-by-8 (eight 1 KiB tables) runs at well over
 * 1 GB/s, so recovery of a 64 MiB segment costs tens of milliseconds.
 * crc32c("123456789") == 0xE3069283.
 */
#ifndef DOCKET_EVLOG_CRC32C_H
#define DOCKET_EVLOG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: pass 0 to start, then the previous result to extend. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t length);

/* CRC-32C of one buffer. */
static inline uint32_t crc32c(const void *data, size_t length) {
    return crc32c_update(0, data, length);
}

#endif
