/*
 * uuid.h - UUID generation (versions 4 and 7) and validation (RFC 9562).
 *
 * Docket's ids travel as the canonical text form: 36 characters, lowercase
 * hex in groups 8-4-4-4-12 ("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b"), held in
 * a char[UUID_STRING_BYTES] with its NUL. Everything this module writes is in
 * that form, so ids compare with strcmp and version 7 ids sort by creation
 * time.
 *
 * Version 4 is 122 random bits. Version 7 starts with the 48-bit Unix time in
 * milliseconds, then 74 random bits; within one millisecond a generator makes
 * its ids increase by treating those 74 bits as a counter (RFC 9562 section
 * 6.2, method 2), so ids from one generator are strictly increasing even when
 * the wall clock stalls or steps back. The time is passed in, never read
 * here, so tests are deterministic. Randomness comes from getrandom(2).
 *
 * Parsing accepts upper- or lowercase hex (RFC 9562 section 4 says input is
 * case-insensitive) and writes the lowercase canonical form; any other shape
 * (braces, "urn:uuid:", missing or extra hyphens) is rejected. Only the shape
 * is checked, not the version or variant bits: an id that is well formed but
 * names nothing is simply not found.
 */
#ifndef DOCKET_BASE_UUID_H
#define DOCKET_BASE_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Canonical text form plus the NUL. */
#define UUID_STRING_BYTES 37

/* State of a version 7 generator. Not thread-safe: one per thread. */
struct uuid_v7_generator {
    int64_t last_time_ms;   /* timestamp of the last id made; -1 before the first */
    uint8_t last_bytes[16]; /* the last id made, binary (for the in-millisecond counter) */
};

void uuid_v7_generator_init(struct uuid_v7_generator *generator);

/* Writes a new random version 4 id. ERR_SYS if the kernel gives no randomness. */
int uuid_v4_generate(char out[UUID_STRING_BYTES]);

/* Writes a new version 7 id for wall time `now_ms` (Unix milliseconds, >= 0),
 * greater than every id this generator made before. ERR_SYS as above. */
int uuid_v7_generate(struct uuid_v7_generator *generator, int64_t now_ms,
                     char out[UUID_STRING_BYTES]);

/* Checks that `text` (of `length` bytes, no NUL needed) is a UUID in
 * canonical shape, either case, and writes the lowercase canonical form.
 * ERR_PARSE otherwise. */
int uuid_parse(const char *text, size_t length, char out[UUID_STRING_BYTES]);

/* True when uuid_parse() would accept `text`. */
bool uuid_is_valid(const char *text, size_t length);

/* The Unix millisecond timestamp of a canonical version 7 id, or ERR_PARSE
 * when `text` is not a version 7 UUID. */
int64_t uuid_v7_time_ms(const char *text, size_t length);

#endif
