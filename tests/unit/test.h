/*
 * test.h - a minimal unit-test harness: TEST() registers a function at load
 * time, EXPECT() records a failure with its location and returns from the
 * test. main.c runs everything and prints "N passed, N failed".
 */
#ifndef DOCKET_TEST_H
#define DOCKET_TEST_H

#include <string.h>

typedef void (*test_function)(void);

void test_register(const char *name, const char *file, test_function function);
void test_fail(const char *file, int line, const char *expression);

#define TEST(name)                                                                       \
    static void name(void);                                                              \
    __attribute__((constructor)) static void test_register_##name(void) {                \
        test_register(#name, __FILE__, name);                                             \
    }                                                                                    \
    static void name(void)

#define EXPECT(expression)                                                               \
    do {                                                                                 \
        if (!(expression)) {                                                             \
            test_fail(__FILE__, __LINE__, #expression);                                  \
            return;                                                                      \
        }                                                                                \
    } while (0)

#define EXPECT_EQ_INT(actual, expected) EXPECT((long long)(actual) == (long long)(expected))
#define EXPECT_STR(actual, expected)                                                     \
    EXPECT((actual) != NULL && strcmp((actual), (expected)) == 0)

#endif
