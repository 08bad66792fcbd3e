/*
 * random.c - getrandom(2) with the retries it needs: EINTR, and short reads
 * (possible only for requests above 256 bytes).
 */
#include "random.h"

#include "check.h"
#include "err.h"

#include <errno.h>
#include <sys/random.h>
#include <sys/types.h>

int random_fill(uint8_t *out, size_t size) {
    CHECK(out != NULL || size == 0);
    size_t filled = 0;
    for (int attempt = 0; filled < size && attempt < 64; attempt++) {
        ssize_t got = getrandom(out + filled, size - filled, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return ERR_SYS;
        }
        filled += (size_t)got;
    }
    return filled == size ? 0 : ERR_SYS;
}
