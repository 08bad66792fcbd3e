/*
 * random.h - bytes from the kernel's CSPRNG (getrandom(2)), for salts, UUIDs,
 * keys and tokens. Never a userspace generator: nothing here needs speed more
 * than unpredictability.
 */
#ifndef DOCKET_BASE_RANDOM_H
#define DOCKET_BASE_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fills `size` bytes, retrying interrupted and short reads. 0 or ERR_SYS. */
int random_fill(uint8_t *out, size_t size);

#endif
