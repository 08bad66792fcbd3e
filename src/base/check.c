/*
 * check.c - the failure path of CHECK(): one line to stderr, then abort so a
 * core dump or the sanitizer shows the stack.
 */
#include "check.h"

#include <stdio.h>
#include <stdlib.h>

void check_failed(const char *expression, const char *file, int line) {
    fprintf(stderr, "level=fatal msg=\"check failed\" expr=\"%s\" at=%s:%d\n", expression, file,
            line);
    fflush(stderr);
    abort();
}
