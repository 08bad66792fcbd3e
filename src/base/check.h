/*
 * check.h - assertions that stay on in release builds.
 *
 * CHECK() guards invariants whose violation means memory or data would be
 * corrupted if we went on; it logs the location and aborts. It is for
 * programming errors only, never for bad input (that is an error return).
 */
#ifndef DOCKET_BASE_CHECK_H
#define DOCKET_BASE_CHECK_H

void check_failed(const char *expression, const char *file, int line);

#define CHECK(expression)                                                                \
    do {                                                                                 \
        if (!(expression)) check_failed(#expression, __FILE__, __LINE__);                \
    } while (0)

#endif
