/*
 * main.c - runs every registered unit test (optionally only those whose name
 * contains argv[1]) and ends with the line "N passed, N failed".
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>

#define TEST_MAX 4096

struct test_case {
    const char *name;       /* function name */
    const char *file;       /* source file */
    test_function function; /* the test */
};

static struct test_case test_cases[TEST_MAX];
static int test_count = 0;
static int test_current_failed = 0;

void test_register(const char *name, const char *file, test_function function) {
    if (test_count >= TEST_MAX) {
        fprintf(stderr, "too many tests\n");
        abort();
    }
    test_cases[test_count++] = (struct test_case){name, file, function};
}

void test_fail(const char *file, int line, const char *expression) {
    fprintf(stderr, "    %s:%d: expected %s\n", file, line, expression);
    test_current_failed = 1;
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0;
    int failed = 0;
    for (int index = 0; index < test_count; index++) {
        const struct test_case *test = &test_cases[index];
        if (filter != NULL && strstr(test->name, filter) == NULL) continue;
        test_current_failed = 0;
        test->function();
        if (test_current_failed) {
            failed++;
            fprintf(stderr, "FAIL %s (%s)\n", test->name, test->file);
        } else {
            passed++;
        }
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
