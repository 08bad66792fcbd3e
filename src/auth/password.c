/*
 * password.c - PBKDF2-HMAC-SHA256 password hashes in PHC-style strings.
 *
 * The key derivation is mbedtls_pkcs5_pbkdf2_hmac_ext(); this file only
 * chooses parameters, draws the salt from getrandom(2), and writes and
 * strictly parses the stored string (format in password.h). Derived keys are
 * wiped from the stack after use.
 */
#include "password.h"
#include "../base/random.h"

#include "../base/base64.h"
#include "../base/check.h"
#include "../base/err.h"

#include <mbedtls/constant_time.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/platform_util.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char password_prefix[] = "$pbkdf2-sha256$i=";

/* Digits of LIMIT_PASSWORD_ITERATIONS_MAX; more in a stored string is corrupt. */
#define PASSWORD_ITERATION_DIGITS_MAX 7

static const char password_message_short[] = "must be at least 8 characters";
static const char password_message_long[] = "must be at most 1024 bytes";

/* The minimum for new hashes; lowered only by tests. */
static uint32_t password_iterations_minimum = LIMIT_PASSWORD_ITERATIONS_MIN;

void password_testing_set_iterations_minimum(uint32_t minimum) {
    CHECK(minimum >= 1 && minimum <= LIMIT_PASSWORD_ITERATIONS_MIN);
    password_iterations_minimum = minimum;
}

const char *password_check(const char *password, size_t length) {
    CHECK(password != NULL || length == 0);
    _Static_assert(LIMIT_PASSWORD_CHARACTERS_MIN == 8, "update password_message_short");
    _Static_assert(LIMIT_PASSWORD_BYTES_MAX == 1024, "update password_message_long");
    if (length > LIMIT_PASSWORD_BYTES_MAX) return password_message_long;
    size_t characters = 0;
    for (size_t index = 0; index < length; index++) {
        if (((unsigned char)password[index] & 0xc0) != 0x80) characters++;
    }
    if (characters < LIMIT_PASSWORD_CHARACTERS_MIN) return password_message_short;
    return NULL;
}

static int password_derive(const char *password, size_t length, const uint8_t *salt,
                           uint32_t iterations, uint8_t key[PASSWORD_KEY_BYTES]) {
    CHECK(iterations >= 1 && iterations <= LIMIT_PASSWORD_ITERATIONS_MAX);
    CHECK(length <= LIMIT_PASSWORD_BYTES_MAX);
    int rc = mbedtls_pkcs5_pbkdf2_hmac_ext(MBEDTLS_MD_SHA256, (const unsigned char *)password,
                                           length, salt, PASSWORD_SALT_BYTES, iterations,
                                           PASSWORD_KEY_BYTES, key);
    if (rc == MBEDTLS_ERR_MD_ALLOC_FAILED) return ERR_NOMEM;
    CHECK(rc == 0);
    return 0;
}

/* Writes the stored form of (iterations, salt, key). */
static void password_format(uint32_t iterations, const uint8_t salt[PASSWORD_SALT_BYTES],
                            const uint8_t key[PASSWORD_KEY_BYTES], char out[PASSWORD_HASH_BYTES]) {
    int written = snprintf(out, PASSWORD_HASH_BYTES, "%s%u$", password_prefix, iterations);
    CHECK(written > 0 && written < PASSWORD_HASH_BYTES);
    size_t position = (size_t)written;
    size_t part = 0;
    CHECK(base64_encode(BASE64_STANDARD_UNPADDED, salt, PASSWORD_SALT_BYTES, out + position,
                        PASSWORD_HASH_BYTES - position, &part) == 0);
    position += part;
    CHECK(position + 1 < PASSWORD_HASH_BYTES);
    out[position++] = '$';
    CHECK(base64_encode(BASE64_STANDARD_UNPADDED, key, PASSWORD_KEY_BYTES, out + position,
                        PASSWORD_HASH_BYTES - position, &part) == 0);
}

int password_hash(const char *password, size_t length, uint32_t iterations,
                  char out[PASSWORD_HASH_BYTES]) {
    CHECK(password != NULL || length == 0);
    CHECK(out != NULL);
    if (iterations < password_iterations_minimum || iterations > LIMIT_PASSWORD_ITERATIONS_MAX) {
        return ERR_INVAL;
    }
    if (length > LIMIT_PASSWORD_BYTES_MAX) return ERR_INVAL;
    uint8_t salt[PASSWORD_SALT_BYTES];
    int rc = random_fill(salt, sizeof salt);
    if (rc != 0) return rc;
    uint8_t key[PASSWORD_KEY_BYTES];
    rc = password_derive(password, length, salt, iterations, key);
    if (rc == 0) password_format(iterations, salt, key, out);
    mbedtls_platform_zeroize(key, sizeof key);
    return rc;
}

/* A stored hash, parsed. */
struct password_stored {
    uint32_t iterations;               /* PBKDF2 iteration count */
    uint8_t salt[PASSWORD_SALT_BYTES]; /* the salt */
    uint8_t key[PASSWORD_KEY_BYTES];   /* the derived key to compare with */
};

/* Reads "<digits>$" at text: no sign, no leading zero, within limits. */
static int password_parse_iterations(const char *text, uint32_t *iterations, size_t *used) {
    uint32_t value = 0;
    size_t digits = 0;
    while (text[digits] >= '0' && text[digits] <= '9') {
        if (digits == PASSWORD_ITERATION_DIGITS_MAX) return ERR_CORRUPT;
        value = value * 10 + (uint32_t)(text[digits] - '0');
        digits++;
    }
    if (digits == 0 || text[0] == '0' || text[digits] != '$') return ERR_CORRUPT;
    if (value > LIMIT_PASSWORD_ITERATIONS_MAX) return ERR_CORRUPT;
    *iterations = value;
    *used = digits + 1;
    return 0;
}

/* Decodes exactly `size` bytes of unpadded base64 from text[0..length). */
static int password_parse_bytes(const char *text, size_t length, uint8_t *out, size_t size) {
    size_t decoded = 0;
    if (base64_decode(BASE64_STANDARD_UNPADDED, text, length, out, size, &decoded) != 0) {
        return ERR_CORRUPT;
    }
    return decoded == size ? 0 : ERR_CORRUPT;
}

static int password_parse(const char *stored, struct password_stored *parsed) {
    size_t length = strnlen(stored, PASSWORD_HASH_BYTES);
    if (length == PASSWORD_HASH_BYTES) return ERR_CORRUPT;
    size_t prefix_length = sizeof password_prefix - 1;
    if (length < prefix_length || memcmp(stored, password_prefix, prefix_length) != 0) {
        return ERR_CORRUPT;
    }
    size_t used = 0;
    int rc = password_parse_iterations(stored + prefix_length, &parsed->iterations, &used);
    if (rc != 0) return rc;
    const char *salt = stored + prefix_length + used;
    const char *separator = memchr(salt, '$', length - (size_t)(salt - stored));
    if (separator == NULL) return ERR_CORRUPT;
    rc = password_parse_bytes(salt, (size_t)(separator - salt), parsed->salt, PASSWORD_SALT_BYTES);
    if (rc != 0) return rc;
    const char *key = separator + 1;
    return password_parse_bytes(key, length - (size_t)(key - stored), parsed->key,
                                PASSWORD_KEY_BYTES);
}

int password_verify(const char *password, size_t length, const char *stored,
                    uint32_t iterations_current, bool *needs_rehash) {
    CHECK(password != NULL || length == 0);
    CHECK(stored != NULL);
    struct password_stored parsed;
    int rc = password_parse(stored, &parsed);
    if (rc != 0) return rc;
    if (needs_rehash != NULL) *needs_rehash = parsed.iterations < iterations_current;
    if (length > LIMIT_PASSWORD_BYTES_MAX) return ERR_DENIED;
    uint8_t key[PASSWORD_KEY_BYTES];
    rc = password_derive(password, length, parsed.salt, parsed.iterations, key);
    if (rc == 0) {
        rc = mbedtls_ct_memcmp(key, parsed.key, PASSWORD_KEY_BYTES) == 0 ? 0 : ERR_DENIED;
    }
    mbedtls_platform_zeroize(key, sizeof key);
    return rc;
}

int password_verify_dummy(const char *password, size_t length, uint32_t iterations_current) {
    CHECK(password != NULL || length == 0);
    CHECK(iterations_current >= 1 && iterations_current <= LIMIT_PASSWORD_ITERATIONS_MAX);
    static const uint8_t dummy_salt[PASSWORD_SALT_BYTES] = "docket-dummy-16";
    static const uint8_t dummy_key[PASSWORD_KEY_BYTES] = {0};
    if (length > LIMIT_PASSWORD_BYTES_MAX) return ERR_DENIED;
    uint8_t key[PASSWORD_KEY_BYTES];
    int rc = password_derive(password, length, dummy_salt, iterations_current, key);
    if (rc == 0) {
        /* Compare anyway, so the work matches password_verify(); a match with
         * the all-zero key is of no consequence. */
        (void)mbedtls_ct_memcmp(key, dummy_key, PASSWORD_KEY_BYTES);
        rc = ERR_DENIED;
    }
    mbedtls_platform_zeroize(key, sizeof key);
    return rc;
}
