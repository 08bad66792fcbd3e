/* password_test.c - proves the password policy counts characters and bytes
 * as documented, that hashes verify (and wrong passwords do not), that the
 * stored format matches Python's hashlib.pbkdf2_hmac byte for byte, that
 * malformed stored strings are reported as corrupt, that "needs rehash"
 * follows the iteration count, and measures one real 600,000-iteration hash. */
#include "../../../src/auth/password.h"
#include "../../../src/base/err.h"
#include "test.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Iterations for fast tests; password_testing_set_iterations_minimum() lets
 * password_hash() accept it. */
#define FAST_ITERATIONS 1000

static void fast_hashing(void) {
    password_testing_set_iterations_minimum(FAST_ITERATIONS);
}

static void real_hashing(void) {
    password_testing_set_iterations_minimum(LIMIT_PASSWORD_ITERATIONS_MIN);
}

static int verify(const char *password, const char *stored, uint32_t current, bool *rehash) {
    return password_verify(password, strlen(password), stored, current, rehash);
}

TEST(password_check_applies_the_length_policy) {
    EXPECT(password_check("1234567", 7) != NULL);
    EXPECT_STR(password_check("1234567", 7), "must be at least 8 characters");
    EXPECT(password_check("12345678", 8) == NULL);
    EXPECT(password_check("", 0) != NULL);
    /* Seven characters in 14 bytes are still too short; eight are enough. */
    EXPECT(password_check("äöüßéèà", strlen("äöüßéèà")) != NULL);
    EXPECT(password_check("äöüßéèàñ", strlen("äöüßéèàñ")) == NULL);
    EXPECT(password_check("日本語のパスワード", strlen("日本語のパスワード")) == NULL);
    EXPECT(password_check("pass\0word", 9) == NULL); /* any character, NUL included */
    static char long_password[LIMIT_PASSWORD_BYTES_MAX + 1];
    memset(long_password, 'a', sizeof long_password);
    EXPECT(password_check(long_password, LIMIT_PASSWORD_BYTES_MAX) == NULL);
    EXPECT_STR(password_check(long_password, LIMIT_PASSWORD_BYTES_MAX + 1),
               "must be at most 1024 bytes");
}

TEST(password_hash_and_verify_round_trip) {
    fast_hashing();
    char stored[PASSWORD_HASH_BYTES];
    const char *password = "correct horse battery staple";
    EXPECT_EQ_INT(password_hash(password, strlen(password), FAST_ITERATIONS, stored), 0);
    EXPECT(strncmp(stored, "$pbkdf2-sha256$i=1000$", 22) == 0);
    EXPECT_EQ_INT(strlen(stored), 22 + 22 + 1 + 43);
    bool rehash = true;
    EXPECT_EQ_INT(verify(password, stored, FAST_ITERATIONS, &rehash), 0);
    EXPECT(!rehash);
    EXPECT_EQ_INT(verify("correct horse battery stapler", stored, FAST_ITERATIONS, &rehash),
                  ERR_DENIED);
    EXPECT_EQ_INT(verify("Correct horse battery staple", stored, FAST_ITERATIONS, NULL),
                  ERR_DENIED);
    EXPECT_EQ_INT(verify("", stored, FAST_ITERATIONS, NULL), ERR_DENIED);
    char again[PASSWORD_HASH_BYTES];
    EXPECT_EQ_INT(password_hash(password, strlen(password), FAST_ITERATIONS, again), 0);
    EXPECT(strcmp(stored, again) != 0); /* fresh salt each time */
    real_hashing();
}

/* Expected strings computed offline with Python 3:
 *   hashlib.pbkdf2_hmac("sha256", password, b"docket-salt-16!!", iterations, 32)
 * encoded with base64.b64encode(...).rstrip(b"="). */
TEST(password_verifies_python_known_answer) {
    const char *stored = "$pbkdf2-sha256$i=1000$ZG9ja2V0LXNhbHQtMTYhIQ$"
                         "2knwEzHCa5c1VJHR6w50FjN4iTB+1kWcPn+tEYcQvHo";
    bool rehash = false;
    EXPECT_EQ_INT(verify("correct horse battery staple", stored, 600000, &rehash), 0);
    EXPECT(rehash); /* 1000 < 600000 */
    EXPECT_EQ_INT(verify("correct horse battery staple", stored, 1000, &rehash), 0);
    EXPECT(!rehash);
    EXPECT_EQ_INT(verify("wrong horse battery staple", stored, 1000, NULL), ERR_DENIED);
}

/* The salt and hash of the Python vector above, to build corrupt variants. */
#define SALT "ZG9ja2V0LXNhbHQtMTYhIQ"
#define HASH "2knwEzHCa5c1VJHR6w50FjN4iTB+1kWcPn+tEYcQvHo"

TEST(password_rejects_malformed_stored_strings) {
    static const char *const corrupt[] = {
        "",
        "$pbkdf2-sha256$",
        "$pbkdf2-sha512$i=1000$" SALT "$" HASH,
        "$pbkdf2-sha256$1000$" SALT "$" HASH,
        "$pbkdf2-sha256$i=01000$" SALT "$" HASH,
        "$pbkdf2-sha256$i=0$" SALT "$" HASH,
        "$pbkdf2-sha256$i=-1$" SALT "$" HASH,
        "$pbkdf2-sha256$i=5000001$" SALT "$" HASH,
        "$pbkdf2-sha256$i=99999999$" SALT "$" HASH,
        "$pbkdf2-sha256$i=1000$" SALT "==$" HASH,
        "$pbkdf2-sha256$i=1000$ZG9ja2V0LXNhbHQtMTYh$" HASH,
        "$pbkdf2-sha256$i=1000$" SALT "$2knwEzHCa5c1VJHR6w50FjN4iTB.1kWcPn.tEYcQvHo",
        "$pbkdf2-sha256$i=1000$" SALT "$2knwEzHCa5c1VJHR6w50FjN4iTB+1kWcPn+tEYcQvH",
        "$pbkdf2-sha256$i=1000$" SALT "$" HASH "$",
        "$pbkdf2-sha256$i=1000$" SALT "$" HASH " ",
        "$pbkdf2-sha256$i=1000$" SALT,
        "$pbkdf2-sha256$i=1000,x=1$" SALT "$" HASH,
        "$pbkdf2-sha256$i=1000$ZG9ja2V0LXNhbHQtMTYhIR$" HASH,
    };
    for (size_t index = 0; index < sizeof corrupt / sizeof corrupt[0]; index++) {
        EXPECT_EQ_INT(verify("correct horse battery staple", corrupt[index], 1000, NULL),
                      ERR_CORRUPT);
    }
    char overlong[PASSWORD_HASH_BYTES + 10];
    memset(overlong, 'A', sizeof overlong - 1);
    overlong[sizeof overlong - 1] = '\0';
    EXPECT_EQ_INT(verify("x", overlong, 1000, NULL), ERR_CORRUPT);
}

TEST(password_hash_enforces_iteration_bounds) {
    char stored[PASSWORD_HASH_BYTES];
    EXPECT_EQ_INT(password_hash("password1", 9, LIMIT_PASSWORD_ITERATIONS_MIN - 1, stored),
                  ERR_INVAL);
    EXPECT_EQ_INT(password_hash("password1", 9, LIMIT_PASSWORD_ITERATIONS_MAX + 1, stored),
                  ERR_INVAL);
    fast_hashing();
    EXPECT_EQ_INT(password_hash("password1", 9, FAST_ITERATIONS - 1, stored), ERR_INVAL);
    static char long_password[LIMIT_PASSWORD_BYTES_MAX + 1];
    memset(long_password, 'a', sizeof long_password);
    EXPECT_EQ_INT(password_hash(long_password, sizeof long_password, FAST_ITERATIONS, stored),
                  ERR_INVAL);
    EXPECT_EQ_INT(password_hash(long_password, LIMIT_PASSWORD_BYTES_MAX, FAST_ITERATIONS, stored),
                  0);
    EXPECT_EQ_INT(password_verify(long_password, LIMIT_PASSWORD_BYTES_MAX, stored,
                                  FAST_ITERATIONS, NULL),
                  0);
    EXPECT_EQ_INT(password_verify(long_password, sizeof long_password, stored, FAST_ITERATIONS,
                                  NULL),
                  ERR_DENIED);
    real_hashing();
}

TEST(password_rehash_follows_the_current_iterations) {
    fast_hashing();
    char stored[PASSWORD_HASH_BYTES];
    EXPECT_EQ_INT(password_hash("hunter2hunter2", 14, 2000, stored), 0);
    bool rehash = false;
    EXPECT_EQ_INT(verify("hunter2hunter2", stored, 2001, &rehash), 0);
    EXPECT(rehash);
    EXPECT_EQ_INT(verify("hunter2hunter2", stored, 2000, &rehash), 0);
    EXPECT(!rehash);
    EXPECT_EQ_INT(verify("hunter2hunter2", stored, 1000, &rehash), 0);
    EXPECT(!rehash);
    real_hashing();
}

TEST(password_dummy_always_denies) {
    EXPECT_EQ_INT(password_verify_dummy("anything at all", 15, FAST_ITERATIONS), ERR_DENIED);
    EXPECT_EQ_INT(password_verify_dummy("", 0, FAST_ITERATIONS), ERR_DENIED);
}

static double elapsed_ms(const struct timespec *start) {
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    return (double)(end.tv_sec - start->tv_sec) * 1e3 +
           (double)(end.tv_nsec - start->tv_nsec) / 1e6;
}

/* One real hash at the production minimum, timed, plus the Python vector at
 * 600,000 iterations (the timing is printed, never asserted). */
TEST(password_real_600000_iterations) {
    real_hashing();
    char stored[PASSWORD_HASH_BYTES];
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    EXPECT_EQ_INT(password_hash("correct horse battery staple", 28, LIMIT_PASSWORD_ITERATIONS_MIN,
                                stored),
                  0);
    printf("password: one PBKDF2-HMAC-SHA256 hash at %d iterations took %.0f ms\n",
           LIMIT_PASSWORD_ITERATIONS_MIN, elapsed_ms(&start));
    EXPECT(strncmp(stored, "$pbkdf2-sha256$i=600000$", 24) == 0);
    const char *python = "$pbkdf2-sha256$i=600000$ZG9ja2V0LXNhbHQtMTYhIQ$"
                         "EQUpn2bMpx2U21fjABImoZv0v5AaWfdkibKeg/wo41s";
    const char *password = "pässwörd-ünïcode";
    bool rehash = true;
    EXPECT_EQ_INT(verify(password, python, LIMIT_PASSWORD_ITERATIONS_MIN, &rehash), 0);
    EXPECT(!rehash);
    clock_gettime(CLOCK_MONOTONIC, &start);
    EXPECT_EQ_INT(password_verify_dummy(password, strlen(password), LIMIT_PASSWORD_ITERATIONS_MIN),
                  ERR_DENIED);
    printf("password: password_verify_dummy at %d iterations took %.0f ms\n",
           LIMIT_PASSWORD_ITERATIONS_MIN, elapsed_ms(&start));
}
