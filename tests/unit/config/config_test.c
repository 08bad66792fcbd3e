/* config_test.c - proves settings come from one table with the documented
 * precedence (defaults < file < environment < flags) and that unknown keys,
 * flags and variables and out-of-range values are errors. */
#include "../../../src/base/err.h"
#include "../../../src/config/config.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TEST(config_defaults) {
    struct config config;
    EXPECT_EQ_INT(config_init(&config), 0);
    EXPECT_STR(config.listen, "127.0.0.1:8080");
    EXPECT_STR(config.data_dir, "./docket-data");
    EXPECT_EQ_INT(config.http_max_body_bytes, 1024 * 1024);
    config_free(&config);
}

TEST(config_flags_override_environment) {
    struct config config;
    config_init(&config);
    char *argv[] = {"--listen", "0.0.0.0:9000", "--data-dir=/tmp/x"};
    char *env[] = {"DOCKET_LISTEN=1.2.3.4:1", "DOCKET_MAX_CONNECTIONS=7", "PATH=/bin", NULL};
    struct config_error error = {{0}};
    EXPECT_EQ_INT(config_load(&config, 3, argv, env, &error), 0);
    EXPECT_STR(config.listen, "0.0.0.0:9000");
    EXPECT_STR(config.data_dir, "/tmp/x");
    EXPECT_EQ_INT(config.max_connections, 7);
    config_free(&config);
}

TEST(config_rejects_unknown_flag_and_variable) {
    struct config config;
    config_init(&config);
    struct config_error error = {{0}};
    char *argv[] = {"--no-such-thing", "1"};
    EXPECT_EQ_INT(config_load(&config, 2, argv, NULL, &error), ERR_CONFIG);
    EXPECT(strstr(error.message, "--no-such-thing") != NULL);
    char *env[] = {"DOCKET_LISTN=1", NULL};
    EXPECT_EQ_INT(config_load(&config, 0, NULL, env, &error), ERR_CONFIG);
    EXPECT(strstr(error.message, "DOCKET_LISTN") != NULL);
    config_free(&config);
}

TEST(config_rejects_bad_numbers) {
    struct config config;
    config_init(&config);
    struct config_error error = {{0}};
    EXPECT_EQ_INT(config_set(&config, "max_connections", "12x", &error), ERR_CONFIG);
    EXPECT_EQ_INT(config_set(&config, "max_connections", "0", &error), ERR_CONFIG);
    EXPECT(strstr(error.message, "max_connections") != NULL);
    EXPECT_EQ_INT(config.max_connections, 10000);
    config_free(&config);
}

TEST(config_file_then_environment_then_flags) {
    char path[] = "/tmp/docket-config-test-XXXXXX";
    int fd = mkstemp(path);
    EXPECT(fd >= 0);
    const char *text = "# comment\nlisten = \"127.0.0.1:7000\"\nhttp.max_body_bytes = 2048\n"
                       "log_level = warn\n";
    EXPECT(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    struct config config;
    config_init(&config);
    char *argv[] = {"--config", path, "--log-level", "debug"};
    char *env[] = {"DOCKET_HTTP_MAX_BODY_BYTES=4096", NULL};
    struct config_error error = {{0}};
    int rc = config_load(&config, 4, argv, env, &error);
    unlink(path);
    EXPECT_EQ_INT(rc, 0);
    EXPECT_STR(config.listen, "127.0.0.1:7000");
    EXPECT_EQ_INT(config.http_max_body_bytes, 4096);
    EXPECT_STR(config.log_level, "debug");
    config_free(&config);
}

TEST(config_file_unknown_key_names_the_line) {
    char path[] = "/tmp/docket-config-test-XXXXXX";
    int fd = mkstemp(path);
    EXPECT(fd >= 0);
    const char *text = "listen = 127.0.0.1:1\n\nlisen = x\n";
    EXPECT(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    struct config config;
    config_init(&config);
    char *argv[] = {"--config", path};
    struct config_error error = {{0}};
    int rc = config_load(&config, 2, argv, NULL, &error);
    unlink(path);
    EXPECT_EQ_INT(rc, ERR_CONFIG);
    EXPECT(strstr(error.message, "'lisen'") != NULL);
    EXPECT(strstr(error.message, "line 3") != NULL);
    config_free(&config);
}
