/*
 * jwt.h - HMAC-signed JSON Web Tokens (RFC 7519, JWS compact form RFC 7515),
 * checked the way RFC 8725 ("JWT Best Current Practices") asks.
 *
 * Docket signs its bearer tokens with HS256 and a key ring: keys[0] signs
 * (its "kid" goes in the header when not empty) and every key in the ring
 * verifies, so a secret can be rotated by adding a new first key and dropping
 * the old one once its tokens have expired. jwt_verify() accepts a token only
 * when all of these hold, in this order (the first failure is reported):
 *
 *   - at most LIMIT_JWT_TOKEN_BYTES, exactly three '.'-separated segments,
 *     each canonical base64url without padding (see base64.h);
 *   - the header is a JSON object (depth and member count bounded, no name
 *     twice) whose "alg" is in the allow-list (default HS256 only; "none" in
 *     any spelling is never accepted, and asymmetric names like RS256 are not
 *     HMAC algorithms, which stops algorithm confusion), with no "crit"
 *     (no extension is understood), and whose "kid" (or its absence, which
 *     matches a key with an empty id) names a key in the ring;
 *   - the HMAC of "header.payload" matches the signature, compared in
 *     constant time; nothing in the payload is looked at before this;
 *   - the payload is a JSON object under the same bounds; "exp" is present;
 *     "exp", "nbf" and "iat", when present, are NumericDates (numbers from 0
 *     to 253402300799, i.e. year 9999; fractions are rounded down);
 *     now < exp + leeway, nbf <= now + leeway, iat <= now + leeway;
 *   - "sub" is a non-empty string; "role" and "jti", when present, strings;
 *     all without NUL bytes and within their LIMIT_JWT_*_BYTES;
 *   - "iss" equals the configured issuer, when one is configured;
 *   - "aud" (a string or an array of strings) contains the configured
 *     audience when one is configured, and a token carrying "aud" is rejected
 *     when none is (RFC 7519 section 4.1.3).
 *
 * Time is an argument (`now_s`, Unix seconds): this module reads no clock.
 * Failures are reported as ERR_DENIED plus a `jwt_failure` for the logs; the
 * API answers every one of them with the same 401.
 */
#ifndef DOCKET_AUTH_JWT_H
#define DOCKET_AUTH_JWT_H

#include "../base/limits.h"

#include <stddef.h>
#include <stdint.h>

/* HMAC algorithms, as bits of jwt_config.algorithms. */
enum jwt_algorithm {
    JWT_ALGORITHM_HS256 = 1 << 0, /* HMAC-SHA-256, what jwt_sign() writes */
    JWT_ALGORITHM_HS384 = 1 << 1, /* HMAC-SHA-384, verify only */
    JWT_ALGORITHM_HS512 = 1 << 2, /* HMAC-SHA-512, verify only */
};

/* Why a token was rejected: symbol, then a sentence for logs. */
#define JWT_FAILURE_TABLE(X)                                                             \
    X(JWT_FAILURE_NONE, "token is valid")                                                \
    X(JWT_FAILURE_TOO_LARGE, "token is longer than LIMIT_JWT_TOKEN_BYTES")               \
    X(JWT_FAILURE_SEGMENTS, "token does not have exactly three segments")                \
    X(JWT_FAILURE_BASE64, "a segment is not canonical unpadded base64url")               \
    X(JWT_FAILURE_HEADER, "header is not a JSON object within limits")                   \
    X(JWT_FAILURE_DUPLICATE, "header or payload repeats a member name")                  \
    X(JWT_FAILURE_ALGORITHM_NONE, "alg is none; unsigned tokens are never accepted")     \
    X(JWT_FAILURE_ALGORITHM, "alg is missing or not in the allow-list")                  \
    X(JWT_FAILURE_CRITICAL, "header has crit; no extension is understood")               \
    X(JWT_FAILURE_KEY_ID, "kid names no key in the key ring")                            \
    X(JWT_FAILURE_SIGNATURE, "signature does not match")                                 \
    X(JWT_FAILURE_PAYLOAD, "payload is not a JSON object within limits")                 \
    X(JWT_FAILURE_CLAIM_TYPE, "a registered claim has the wrong type, range or length") \
    X(JWT_FAILURE_EXPIRY_MISSING, "exp is missing")                                      \
    X(JWT_FAILURE_EXPIRED, "exp has passed")                                             \
    X(JWT_FAILURE_NOT_YET_VALID, "nbf is in the future")                                 \
    X(JWT_FAILURE_ISSUED_IN_FUTURE, "iat is in the future")                              \
    X(JWT_FAILURE_SUBJECT_MISSING, "sub is missing or empty")                            \
    X(JWT_FAILURE_ISSUER, "iss is not the configured issuer")                            \
    X(JWT_FAILURE_AUDIENCE, "aud does not name the configured audience")

enum jwt_failure {
#define JWT_FAILURE_ENUM(name, text) name,
    JWT_FAILURE_TABLE(JWT_FAILURE_ENUM)
#undef JWT_FAILURE_ENUM
};

/* Symbolic name ("JWT_FAILURE_EXPIRED") and sentence of a failure. */
const char *jwt_failure_name(enum jwt_failure failure);
const char *jwt_failure_str(enum jwt_failure failure);

/* One HMAC secret of the key ring. */
struct jwt_key {
    char key_id[LIMIT_JWT_KEY_ID_BYTES + 1];    /* "kid"; "" matches tokens without one */
    uint8_t secret[LIMIT_JWT_SECRET_BYTES_MAX]; /* the raw secret bytes */
    size_t secret_length;                       /* bytes used in `secret` */
};

/* What jwt_sign() writes and jwt_verify() accepts. Fill with jwt_config_*(). */
struct jwt_config {
    struct jwt_key keys[LIMIT_JWT_KEYS];           /* keys[0] signs; all verify */
    int key_count;                                 /* keys in use */
    unsigned algorithms;                           /* accepted jwt_algorithm bits */
    int64_t leeway_s;                              /* clock skew allowed on exp/nbf/iat */
    char issuer[LIMIT_JWT_ISSUER_BYTES + 1];       /* "iss" written and required; "" = none */
    char audience[LIMIT_JWT_AUDIENCE_BYTES + 1];   /* "aud" written and required; "" = none */
};

/* The claims Docket uses. */
struct jwt_claims {
    char subject[LIMIT_JWT_SUBJECT_BYTES + 1];   /* "sub": the user id; never empty */
    char role[LIMIT_JWT_ROLE_BYTES + 1];         /* "role" ("user", "admin"); "" if absent */
    char token_id[LIMIT_JWT_TOKEN_ID_BYTES + 1]; /* "jti"; "" if absent */
    int64_t issued_at_s;                         /* "iat", Unix seconds; 0 if absent */
    int64_t expires_at_s;                        /* "exp", Unix seconds; always present */
};

/* Empty key ring, HS256 only, LIMIT_JWT_LEEWAY_S_DEFAULT, no issuer/audience. */
void jwt_config_init(struct jwt_config *config);

/* Appends a key. ERR_INVAL for a secret outside LIMIT_JWT_SECRET_BYTES_MIN..
 * MAX or an over-long key id, ERR_EXISTS for a key id already in the ring,
 * ERR_LIMIT when the ring is full. */
int jwt_config_add_key(struct jwt_config *config, const char *key_id, const void *secret,
                       size_t secret_length);

/* Sets the issuer or audience ("" clears it). ERR_INVAL when too long. */
int jwt_config_set_issuer(struct jwt_config *config, const char *issuer);
int jwt_config_set_audience(struct jwt_config *config, const char *audience);

/* Sets the leeway. ERR_INVAL outside 0..LIMIT_JWT_LEEWAY_S_MAX. */
int jwt_config_set_leeway(struct jwt_config *config, int64_t leeway_s);

/* Signs `claims` with keys[0] and HS256 into `out` (NUL-terminated); writes
 * sub, exp, and iat/role/jti when set, plus the configured iss and aud.
 * ERR_LIMIT when the token would not fit `out_size` or LIMIT_JWT_TOKEN_BYTES,
 * ERR_NOMEM. The ring must hold a key, the subject must not be empty. */
int jwt_sign(const struct jwt_config *config, const struct jwt_claims *claims, char *out,
             size_t out_size, size_t *out_length);

/* Checks `token` (of `length` bytes) as described above at time `now_s`.
 * 0 with `*claims` filled; ERR_DENIED with `*failure` set (claims then
 * unspecified); ERR_NOMEM. `failure` may be NULL. */
int jwt_verify(const struct jwt_config *config, const char *token, size_t length, int64_t now_s,
               struct jwt_claims *claims, enum jwt_failure *failure);

#endif
