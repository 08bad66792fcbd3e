/* logger_test.c - proves log lines are logfmt with quoting that cannot be
 * broken by hostile values (quotes, newlines). */
#include "../../../src/base/logger.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

TEST(logger_quotes_values_that_need_it) {
    char out[64];
    EXPECT_STR(logger_quote("plain", out, sizeof out), "plain");
    EXPECT_STR(logger_quote("two words", out, sizeof out), "\"two words\"");
    EXPECT_STR(logger_quote("a\"b\\c", out, sizeof out), "\"a\\\"b\\\\c\"");
    EXPECT_STR(logger_quote("line\nbreak", out, sizeof out), "\"linebreak\"");
    EXPECT_STR(logger_quote("", out, sizeof out), "\"\"");
}

TEST(logger_writes_one_logfmt_line) {
    char buffer[512] = {0};
    FILE *stream = fmemopen(buffer, sizeof buffer, "w");
    EXPECT(stream != NULL);
    logger_set_stream(stream);
    logger_write(LOGGER_INFO, "test", "hello world", "answer=%d", 42);
    logger_write(LOGGER_DEBUG, "test", "hidden", NULL);
    logger_set_stream(NULL);
    fclose(stream);
    EXPECT(strstr(buffer, " level=info component=test msg=\"hello world\" answer=42\n") != NULL);
    EXPECT(strncmp(buffer, "time=", 5) == 0);
    EXPECT(strstr(buffer, "hidden") == NULL);
}
