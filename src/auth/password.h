/*
 * password.h - password policy, hashing and verification (PBKDF2-HMAC-SHA256).
 *
 * Hashes are stored as a PHC-style string (the PHC string format of the
 * Password Hashing Competition, password-hashing/phc-string-format):
 *
 *   $pbkdf2-sha256$i=<iterations>$<salt>$<hash>
 *
 *   field        content
 *   -----------  ---------------------------------------------------------
 *   algorithm    the literal "pbkdf2-sha256": PBKDF2 (RFC 8018) with
 *                HMAC-SHA-256 as the pseudo-random function
 *   iterations   "i=" and a decimal count, no sign, no leading zero,
 *                1..LIMIT_PASSWORD_ITERATIONS_MAX
 *   salt         16 random bytes, standard base64 without padding (22 chars)
 *   hash         the 32-byte derived key, same encoding (43 chars)
 *
 * for example "$pbkdf2-sha256$i=600000$ZG9ja2V0LXNhbHQtMTYhIQ$<43 chars>".
 * (Passlib's pbkdf2_sha256 differs: no "i=", and "." for "+" in base64.)
 *
 * New hashes use at least LIMIT_PASSWORD_ITERATIONS_MIN iterations (OWASP's
 * minimum for PBKDF2-HMAC-SHA256); the caller passes its configured count,
 * which may only be higher. Verification recomputes with the stored count,
 * compares in constant time, and reports `needs_rehash` when the stored count
 * is below the caller's current one, so hashes are upgraded at next login.
 * password_verify_dummy() costs the same as a real verification, for
 * logins naming a user that does not exist.
 */
#ifndef DOCKET_AUTH_PASSWORD_H
#define DOCKET_AUTH_PASSWORD_H

#include "../base/limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for a stored hash string plus its NUL (ours are at most 91 bytes). */
#define PASSWORD_HASH_BYTES 128

/* Salt and derived key lengths, bytes. */
#define PASSWORD_SALT_BYTES 16
#define PASSWORD_KEY_BYTES 32

/* Checks a new password against the policy: at least
 * LIMIT_PASSWORD_CHARACTERS_MIN characters and at most
 * LIMIT_PASSWORD_BYTES_MAX bytes, any characters allowed. The input is UTF-8
 * (the JSON reader has validated it), and characters are counted as bytes
 * that do not continue a multi-byte sequence. Returns NULL when it passes,
 * else a sentence for the API field error ("must be at least 8 characters"). */
const char *password_check(const char *password, size_t length);

/* Hashes `password` with a fresh random salt and `iterations` into `out`.
 * ERR_INVAL when iterations are below the minimum or above
 * LIMIT_PASSWORD_ITERATIONS_MAX, or the password is longer than
 * LIMIT_PASSWORD_BYTES_MAX; ERR_SYS without randomness; ERR_NOMEM. */
int password_hash(const char *password, size_t length, uint32_t iterations,
                  char out[PASSWORD_HASH_BYTES]);

/* Checks `password` against a stored hash. 0 when it matches (and
 * `*needs_rehash` tells whether the stored count is below
 * `iterations_current`); ERR_DENIED when it does not (or the password is
 * longer than LIMIT_PASSWORD_BYTES_MAX); ERR_CORRUPT when `stored` is not in
 * the format above; ERR_NOMEM. `needs_rehash` may be NULL. */
int password_verify(const char *password, size_t length, const char *stored,
                    uint32_t iterations_current, bool *needs_rehash);

/* Does the work of password_verify() at `iterations_current` against a fixed
 * dummy hash and returns ERR_DENIED (or ERR_NOMEM). Call it when the user
 * does not exist so the answer takes as long as a wrong password. */
int password_verify_dummy(const char *password, size_t length, uint32_t iterations_current);

/* Test only: lowers the minimum iteration count password_hash() accepts, so
 * unit tests can hash quickly. Never called by the server. */
void password_testing_set_iterations_minimum(uint32_t minimum);

#endif
