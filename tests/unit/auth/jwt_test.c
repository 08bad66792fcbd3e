/* jwt_test.c - proves jwt_sign() writes exactly the token an independent
 * implementation (Python hmac/hashlib) writes, that the RFC 7515 A.1
 * example verifies, that signed tokens round-trip, and that jwt_verify()
 * rejects every forged, malformed, expired or misdirected token with the
 * failure naming the check that stopped it. */
#include "../../../src/auth/jwt.h"
#include "../../../src/base/base64.h"
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "test.h"

#include <mbedtls/md.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-02-10T09:45:00Z, the "now" of most tests. */
#define NOW_S 1770716700

static const char secret_one[] = "docket-test-secret-0123456789abcdef";
static const char secret_two[] = "another-secret-for-key-rotation-tests";

static void config_one_key(struct jwt_config *config) {
    jwt_config_init(config);
    int rc = jwt_config_add_key(config, "k1", secret_one, strlen(secret_one));
    if (rc != 0) abort();
}

/* Builds "b64(header).b64(payload).b64(HMAC)" with mbedtls directly, so
 * tests can forge any header and payload. */
static void forge(const char *header, const char *payload, const char *secret,
                  mbedtls_md_type_t md_type, char *out, size_t out_size) {
    size_t length = 0;
    size_t part = 0;
    if (base64_encode(BASE64_URL, header, strlen(header), out, out_size, &part) != 0) abort();
    length += part;
    out[length++] = '.';
    if (base64_encode(BASE64_URL, payload, strlen(payload), out + length, out_size - length,
                      &part) != 0) {
        abort();
    }
    length += part;
    unsigned char mac[64];
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md_type);
    if (mbedtls_md_hmac(info, (const unsigned char *)secret, strlen(secret),
                        (const unsigned char *)out, length, mac) != 0) {
        abort();
    }
    out[length++] = '.';
    if (base64_encode(BASE64_URL, mac, mbedtls_md_get_size(info), out + length, out_size - length,
                      NULL) != 0) {
        abort();
    }
}

static const char header_k1[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}";

/* Verifies a token forged from `payload` with the standard header and key. */
static enum jwt_failure verify_payload(const struct jwt_config *config, const char *payload,
                                       struct jwt_claims *claims) {
    char token[LIMIT_JWT_TOKEN_BYTES * 2];
    forge(header_k1, payload, secret_one, MBEDTLS_MD_SHA256, token, sizeof token);
    enum jwt_failure failure = JWT_FAILURE_NONE;
    int rc = jwt_verify(config, token, strlen(token), NOW_S, claims, &failure);
    if ((rc == 0) != (failure == JWT_FAILURE_NONE)) return (enum jwt_failure)-1;
    if (rc != 0 && rc != ERR_DENIED) return (enum jwt_failure)-1;
    return failure;
}

static enum jwt_failure verify_header(const struct jwt_config *config, const char *header,
                                      const char *secret, mbedtls_md_type_t md_type) {
    char token[LIMIT_JWT_TOKEN_BYTES * 2];
    forge(header, "{\"sub\":\"u1\",\"exp\":1770720300}", secret, md_type, token, sizeof token);
    struct jwt_claims claims;
    enum jwt_failure failure = JWT_FAILURE_NONE;
    jwt_verify(config, token, strlen(token), NOW_S, &claims, &failure);
    return failure;
}

static enum jwt_failure verify_text(const struct jwt_config *config, const char *token) {
    struct jwt_claims claims;
    enum jwt_failure failure = JWT_FAILURE_NONE;
    int rc = jwt_verify(config, token, strlen(token), NOW_S, &claims, &failure);
    if (rc != ERR_DENIED) return (enum jwt_failure)-1;
    return failure;
}

/* The token below was computed offline with Python 3:
 *   h = b64url(json.dumps({"alg":"HS256","typ":"JWT","kid":"k1"}, separators=(",",":")))
 *   p = b64url(json.dumps({"sub":...,"role":"admin","jti":"j-1","iat":1770716700,
 *                          "exp":1770720300}, separators=(",",":")))
 *   s = b64url(hmac.new(secret_one, (h + "." + p).encode(), hashlib.sha256).digest()) */
static const char python_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0."
    "eyJzdWIiOiIwMTkwYTFiMi1jM2Q0LTdlNWYtOGE2Yi03YzhkOWUwZjFhMmIiLCJyb2xlIjoiYWRtaW4iLCJqdGkiOiJq"
    "LTEiLCJpYXQiOjE3NzA3MTY3MDAsImV4cCI6MTc3MDcyMDMwMH0."
    "wfefaj9xmyuE5ppHRO96ttr2JxBCfWaVFXYuKwocszg";

TEST(jwt_sign_matches_python_known_answer) {
    struct jwt_config config;
    config_one_key(&config);
    struct jwt_claims claims = {
        .subject = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
        .role = "admin",
        .token_id = "j-1",
        .issued_at_s = 1770716700,
        .expires_at_s = 1770720300,
    };
    char token[LIMIT_JWT_TOKEN_BYTES];
    size_t length = 0;
    EXPECT_EQ_INT(jwt_sign(&config, &claims, token, sizeof token, &length), 0);
    EXPECT_STR(token, python_token);
    EXPECT_EQ_INT(length, strlen(python_token));
}

TEST(jwt_round_trip_returns_the_claims) {
    struct jwt_config config;
    config_one_key(&config);
    EXPECT_EQ_INT(jwt_config_set_issuer(&config, "https://docket.example"), 0);
    EXPECT_EQ_INT(jwt_config_set_audience(&config, "docket-api"), 0);
    struct jwt_claims claims = {.subject = "user-1", .issued_at_s = NOW_S,
                                .expires_at_s = NOW_S + 3600};
    char token[LIMIT_JWT_TOKEN_BYTES];
    EXPECT_EQ_INT(jwt_sign(&config, &claims, token, sizeof token, NULL), 0);
    struct jwt_claims out;
    enum jwt_failure failure = JWT_FAILURE_EXPIRED;
    EXPECT_EQ_INT(jwt_verify(&config, token, strlen(token), NOW_S, &out, &failure), 0);
    EXPECT_EQ_INT(failure, JWT_FAILURE_NONE);
    EXPECT_STR(out.subject, "user-1");
    EXPECT_STR(out.role, "");
    EXPECT_STR(out.token_id, "");
    EXPECT_EQ_INT(out.issued_at_s, NOW_S);
    EXPECT_EQ_INT(out.expires_at_s, NOW_S + 3600);
    EXPECT_EQ_INT(jwt_verify(&config, python_token, strlen(python_token), NOW_S, &out, NULL),
                  ERR_DENIED); /* no iss, no aud */
    struct jwt_config plain;
    config_one_key(&plain);
    EXPECT_EQ_INT(jwt_verify(&plain, python_token, strlen(python_token), NOW_S, &out, &failure), 0);
    EXPECT_STR(out.subject, "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");
    EXPECT_STR(out.role, "admin");
    EXPECT_STR(out.token_id, "j-1");
}

/* RFC 7515 appendix A.1: the key is the JWK "k" value (base64url). Its
 * payload has no "sub", so a correct implementation gets past the signature
 * and time checks and stops exactly at the subject. */
TEST(jwt_verifies_rfc7515_appendix_a1) {
    static const char jwk_k[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0"
                                "iPS4hcgUuTwjAzZr1Z9CAow";
    uint8_t key[64];
    size_t key_length = 0;
    EXPECT_EQ_INT(base64_decode(BASE64_URL, jwk_k, strlen(jwk_k), key, sizeof key, &key_length), 0);
    EXPECT_EQ_INT(key_length, 64);
    struct jwt_config config;
    jwt_config_init(&config);
    EXPECT_EQ_INT(jwt_config_add_key(&config, "", key, key_length), 0);
    EXPECT_EQ_INT(jwt_config_set_issuer(&config, "joe"), 0);
    char token[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
                   "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
                   "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
                   "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    struct jwt_claims claims;
    enum jwt_failure failure = JWT_FAILURE_NONE;
    EXPECT_EQ_INT(jwt_verify(&config, token, strlen(token), 1300819000, &claims, &failure),
                  ERR_DENIED);
    EXPECT_EQ_INT(failure, JWT_FAILURE_SUBJECT_MISSING);
    EXPECT_EQ_INT(claims.expires_at_s, 1300819380);
    EXPECT_EQ_INT(jwt_verify(&config, token, strlen(token), 1300819500, &claims, &failure),
                  ERR_DENIED);
    EXPECT_EQ_INT(failure, JWT_FAILURE_EXPIRED);
    token[strlen(token) - 1] = 'g'; /* still canonical base64url, other MAC */
    EXPECT_EQ_INT(jwt_verify(&config, token, strlen(token), 1300819000, &claims, &failure),
                  ERR_DENIED);
    EXPECT_EQ_INT(failure, JWT_FAILURE_SIGNATURE);
}

TEST(jwt_checks_expiry_not_before_and_issued_at_with_leeway) {
    struct jwt_config config;
    config_one_key(&config);
    struct jwt_claims claims;
    char payload[256];
    snprintf(payload, sizeof payload, "{\"sub\":\"u\",\"exp\":%d}", NOW_S - 60);
    EXPECT_EQ_INT(verify_payload(&config, payload, &claims), JWT_FAILURE_EXPIRED);
    snprintf(payload, sizeof payload, "{\"sub\":\"u\",\"exp\":%d}", NOW_S - 59);
    EXPECT_EQ_INT(verify_payload(&config, payload, &claims), JWT_FAILURE_NONE);
    snprintf(payload, sizeof payload, "{\"sub\":\"u\",\"exp\":%d,\"nbf\":%d}", NOW_S + 99,
             NOW_S + 61);
    EXPECT_EQ_INT(verify_payload(&config, payload, &claims), JWT_FAILURE_NOT_YET_VALID);
    snprintf(payload, sizeof payload, "{\"sub\":\"u\",\"exp\":%d,\"nbf\":%d}", NOW_S + 99,
             NOW_S + 60);
    EXPECT_EQ_INT(verify_payload(&config, payload, &claims), JWT_FAILURE_NONE);
    snprintf(payload, sizeof payload, "{\"sub\":\"u\",\"exp\":%d,\"iat\":%d}", NOW_S + 99,
             NOW_S + 61);
    EXPECT_EQ_INT(verify_payload(&config, payload, &claims), JWT_FAILURE_ISSUED_IN_FUTURE);
    EXPECT_EQ_INT(jwt_config_set_leeway(&config, 0), 0);
    snprintf(payload, sizeof payload, "{\"sub\":\"u\",\"exp\":%d}", NOW_S);
    EXPECT_EQ_INT(verify_payload(&config, payload, &claims), JWT_FAILURE_EXPIRED);
    snprintf(payload, sizeof payload, "{\"sub\":\"u\",\"exp\":%d.5}", NOW_S);
    EXPECT_EQ_INT(verify_payload(&config, payload, &claims), JWT_FAILURE_EXPIRED);
    snprintf(payload, sizeof payload, "{\"sub\":\"u\",\"exp\":%d.5}", NOW_S + 1);
    EXPECT_EQ_INT(verify_payload(&config, payload, &claims), JWT_FAILURE_NONE);
    EXPECT_EQ_INT(claims.expires_at_s, NOW_S + 1);
    EXPECT_EQ_INT(jwt_config_set_leeway(&config, -1), ERR_INVAL);
    EXPECT_EQ_INT(jwt_config_set_leeway(&config, LIMIT_JWT_LEEWAY_S_MAX + 1), ERR_INVAL);
}

TEST(jwt_requires_well_typed_exp_and_sub) {
    struct jwt_config config;
    config_one_key(&config);
    struct jwt_claims claims;
    static const struct {
        const char *payload;      /* forged payload */
        enum jwt_failure failure; /* expected failure */
    } cases[] = {
        {"{\"sub\":\"u\"}", JWT_FAILURE_EXPIRY_MISSING},
        {"{\"exp\":1770720300}", JWT_FAILURE_SUBJECT_MISSING},
        {"{\"sub\":\"\",\"exp\":1770720300}", JWT_FAILURE_SUBJECT_MISSING},
        {"{\"sub\":7,\"exp\":1770720300}", JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":null,\"exp\":1770720300}", JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"a\\u0000b\",\"exp\":1770720300}", JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"0123456789012345678901234567890123456789012345678901234567890123X\","
         "\"exp\":1770720300}",
         JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"u\",\"role\":[\"admin\"],\"exp\":1770720300}", JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"u\",\"role\":\"administrator-of-all\",\"exp\":1770720300}",
         JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"u\",\"jti\":1,\"exp\":1770720300}", JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"u\",\"exp\":\"1770720300\"}", JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"u\",\"exp\":true}", JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"u\",\"exp\":-1}", JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"u\",\"exp\":1e300}", JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"u\",\"exp\":9223372036854775807}", JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"u\",\"exp\":18446744073709551616}", JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"u\",\"exp\":1770720300,\"nbf\":\"0\"}", JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"u\",\"exp\":1770720300,\"iat\":-5}", JWT_FAILURE_CLAIM_TYPE},
        {"{\"sub\":\"u\",\"exp\":253402300799}", JWT_FAILURE_NONE},
        {"{\"sub\":\"u\",\"exp\":253402300800}", JWT_FAILURE_CLAIM_TYPE},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        EXPECT_EQ_INT(verify_payload(&config, cases[index].payload, &claims), cases[index].failure);
    }
}

TEST(jwt_rejects_alg_none_in_any_spelling) {
    struct jwt_config config;
    config_one_key(&config);
    static const char *const spellings[] = {"none", "None", "NONE", "nOnE"};
    for (size_t index = 0; index < 4; index++) {
        char header[128];
        snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"k1\"}", spellings[index]);
        EXPECT_EQ_INT(verify_header(&config, header, secret_one, MBEDTLS_MD_SHA256),
                      JWT_FAILURE_ALGORITHM_NONE);
        /* The classic form: an empty signature. */
        char header_b64[256];
        char payload_b64[256];
        base64_encode(BASE64_URL, header, strlen(header), header_b64, sizeof header_b64, NULL);
        const char *payload = "{\"sub\":\"admin\",\"exp\":1770720300}";
        base64_encode(BASE64_URL, payload, strlen(payload), payload_b64, sizeof payload_b64, NULL);
        char token[600];
        snprintf(token, sizeof token, "%s.%s.", header_b64, payload_b64);
        EXPECT_EQ_INT(verify_text(&config, token), JWT_FAILURE_ALGORITHM_NONE);
    }
}

TEST(jwt_enforces_the_algorithm_allow_list) {
    struct jwt_config config;
    config_one_key(&config);
    /* HS512 token computed offline with Python (hashlib.sha512, secret_one). */
    static const char hs512[] =
        "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0."
        "eyJzdWIiOiJ1MSIsImV4cCI6MTc3MDcyMDMwMH0."
        "tpfXmq9w-l3i8eEY7-VQqf2h72vRd014tPM_T9tyBa_6aU4RaOdrQ7qTeglvCxU-hGt6-yPi21MrND3Dhnv6BA";
    EXPECT_EQ_INT(verify_text(&config, hs512), JWT_FAILURE_ALGORITHM);
    config.algorithms |= JWT_ALGORITHM_HS512;
    struct jwt_claims claims;
    EXPECT_EQ_INT(jwt_verify(&config, hs512, strlen(hs512), NOW_S, &claims, NULL), 0);
    EXPECT_STR(claims.subject, "u1");
    config.algorithms = JWT_ALGORITHM_HS256;
    /* Algorithm confusion: asymmetric names are never HMAC, whatever signed them. */
    EXPECT_EQ_INT(verify_header(&config, "{\"alg\":\"RS256\",\"kid\":\"k1\"}", secret_one,
                                MBEDTLS_MD_SHA256),
                  JWT_FAILURE_ALGORITHM);
    EXPECT_EQ_INT(verify_header(&config, "{\"alg\":\"ES256\",\"kid\":\"k1\"}", secret_one,
                                MBEDTLS_MD_SHA256),
                  JWT_FAILURE_ALGORITHM);
    EXPECT_EQ_INT(verify_header(&config, "{\"alg\":\"hs256\",\"kid\":\"k1\"}", secret_one,
                                MBEDTLS_MD_SHA256),
                  JWT_FAILURE_ALGORITHM);
    EXPECT_EQ_INT(verify_header(&config, "{\"alg\":\"HS256\\u0000\",\"kid\":\"k1\"}", secret_one,
                                MBEDTLS_MD_SHA256),
                  JWT_FAILURE_ALGORITHM);
    EXPECT_EQ_INT(verify_header(&config, "{\"alg\":[\"HS256\"],\"kid\":\"k1\"}", secret_one,
                                MBEDTLS_MD_SHA256),
                  JWT_FAILURE_ALGORITHM);
    EXPECT_EQ_INT(verify_header(&config, "{\"kid\":\"k1\"}", secret_one, MBEDTLS_MD_SHA256),
                  JWT_FAILURE_ALGORITHM);
    EXPECT_EQ_INT(verify_header(&config, "{\"alg\":\"HS256\",\"kid\":\"k1\",\"crit\":[\"b64\"]}",
                                secret_one, MBEDTLS_MD_SHA256),
                  JWT_FAILURE_CRITICAL);
}

TEST(jwt_rejects_wrong_keys_and_selects_by_kid) {
    struct jwt_config config;
    config_one_key(&config);
    EXPECT_EQ_INT(verify_header(&config, header_k1, secret_two, MBEDTLS_MD_SHA256),
                  JWT_FAILURE_SIGNATURE);
    EXPECT_EQ_INT(verify_header(&config, "{\"alg\":\"HS256\",\"kid\":\"k9\"}", secret_one,
                                MBEDTLS_MD_SHA256),
                  JWT_FAILURE_KEY_ID);
    EXPECT_EQ_INT(verify_header(&config, "{\"alg\":\"HS256\"}", secret_one, MBEDTLS_MD_SHA256),
                  JWT_FAILURE_KEY_ID);
    EXPECT_EQ_INT(verify_header(&config, "{\"alg\":\"HS256\",\"kid\":5}", secret_one,
                                MBEDTLS_MD_SHA256),
                  JWT_FAILURE_KEY_ID);
    /* Rotation: a new first key signs; tokens of the old key still verify. */
    struct jwt_config rotated;
    jwt_config_init(&rotated);
    EXPECT_EQ_INT(jwt_config_add_key(&rotated, "k2", secret_two, strlen(secret_two)), 0);
    EXPECT_EQ_INT(jwt_config_add_key(&rotated, "k1", secret_one, strlen(secret_one)), 0);
    EXPECT_EQ_INT(verify_header(&rotated, header_k1, secret_one, MBEDTLS_MD_SHA256),
                  JWT_FAILURE_NONE);
    struct jwt_claims claims = {.subject = "u2", .expires_at_s = NOW_S + 60};
    char token[LIMIT_JWT_TOKEN_BYTES];
    EXPECT_EQ_INT(jwt_sign(&rotated, &claims, token, sizeof token, NULL), 0);
    EXPECT(strncmp(token, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsyIn0.", 52) == 0);
    EXPECT_EQ_INT(jwt_verify(&rotated, token, strlen(token), NOW_S, &claims, NULL), 0);
    EXPECT_EQ_INT(verify_text(&config, token), JWT_FAILURE_KEY_ID);
    /* A key without id matches tokens without kid. */
    struct jwt_config anonymous;
    jwt_config_init(&anonymous);
    EXPECT_EQ_INT(jwt_config_add_key(&anonymous, NULL, secret_one, strlen(secret_one)), 0);
    EXPECT_EQ_INT(verify_header(&anonymous, "{\"alg\":\"HS256\"}", secret_one, MBEDTLS_MD_SHA256),
                  JWT_FAILURE_NONE);
    EXPECT_EQ_INT(verify_header(&anonymous, header_k1, secret_one, MBEDTLS_MD_SHA256),
                  JWT_FAILURE_KEY_ID);
}

TEST(jwt_checks_issuer_and_audience) {
    struct jwt_config config;
    config_one_key(&config);
    struct jwt_claims claims;
    const char *with_aud = "{\"sub\":\"u\",\"exp\":1770720300,\"aud\":\"docket\"}";
    EXPECT_EQ_INT(verify_payload(&config, with_aud, &claims), JWT_FAILURE_AUDIENCE);
    EXPECT_EQ_INT(jwt_config_set_audience(&config, "docket"), 0);
    EXPECT_EQ_INT(verify_payload(&config, with_aud, &claims), JWT_FAILURE_NONE);
    EXPECT_EQ_INT(verify_payload(&config, "{\"sub\":\"u\",\"exp\":1770720300,\"aud\":[\"x\",7,"
                                          "\"docket\"]}",
                                 &claims),
                  JWT_FAILURE_NONE);
    EXPECT_EQ_INT(verify_payload(&config, "{\"sub\":\"u\",\"exp\":1770720300,\"aud\":[\"x\"]}",
                                 &claims),
                  JWT_FAILURE_AUDIENCE);
    EXPECT_EQ_INT(verify_payload(&config, "{\"sub\":\"u\",\"exp\":1770720300,\"aud\":\"Docket\"}",
                                 &claims),
                  JWT_FAILURE_AUDIENCE);
    EXPECT_EQ_INT(verify_payload(&config, "{\"sub\":\"u\",\"exp\":1770720300}", &claims),
                  JWT_FAILURE_AUDIENCE);
    EXPECT_EQ_INT(jwt_config_set_audience(&config, ""), 0);
    EXPECT_EQ_INT(jwt_config_set_issuer(&config, "https://docket.example"), 0);
    EXPECT_EQ_INT(verify_payload(&config, "{\"sub\":\"u\",\"exp\":1770720300}", &claims),
                  JWT_FAILURE_ISSUER);
    EXPECT_EQ_INT(verify_payload(&config, "{\"sub\":\"u\",\"exp\":1770720300,\"iss\":\"evil\"}",
                                 &claims),
                  JWT_FAILURE_ISSUER);
    EXPECT_EQ_INT(verify_payload(&config, "{\"sub\":\"u\",\"exp\":1770720300,"
                                          "\"iss\":\"https://docket.example\"}",
                                 &claims),
                  JWT_FAILURE_NONE);
}

TEST(jwt_rejects_malformed_structure) {
    struct jwt_config config;
    config_one_key(&config);
    char good[LIMIT_JWT_TOKEN_BYTES];
    forge(header_k1, "{\"sub\":\"u\",\"exp\":1770720300}", secret_one, MBEDTLS_MD_SHA256, good,
          sizeof good);
    EXPECT_EQ_INT(verify_text(&config, ""), JWT_FAILURE_SEGMENTS);
    EXPECT_EQ_INT(verify_text(&config, "abc"), JWT_FAILURE_SEGMENTS);
    EXPECT_EQ_INT(verify_text(&config, "a.b"), JWT_FAILURE_SEGMENTS);
    EXPECT_EQ_INT(verify_text(&config, "a.b.c.d"), JWT_FAILURE_SEGMENTS);
    EXPECT_EQ_INT(verify_text(&config, ".."), JWT_FAILURE_HEADER);
    char four[LIMIT_JWT_TOKEN_BYTES];
    snprintf(four, sizeof four, "%s.", good);
    EXPECT_EQ_INT(verify_text(&config, four), JWT_FAILURE_SEGMENTS);
    char padded[LIMIT_JWT_TOKEN_BYTES];
    snprintf(padded, sizeof padded, "%s=", good);
    EXPECT_EQ_INT(verify_text(&config, padded), JWT_FAILURE_BASE64);
    snprintf(padded, sizeof padded, "%s", good);
    padded[3] = '+';
    EXPECT_EQ_INT(verify_text(&config, padded), JWT_FAILURE_BASE64);
    snprintf(padded, sizeof padded, " %s", good);
    EXPECT_EQ_INT(verify_text(&config, padded), JWT_FAILURE_BASE64);
    /* Last signature character with non-zero unused bits: same MAC bytes,
     * different text. Strict decoding stops such malleated copies. */
    snprintf(padded, sizeof padded, "%s", good);
    char *last = padded + strlen(padded) - 1;
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    *last = alphabet[(strchr(alphabet, *last) - alphabet) | 1];
    EXPECT_EQ_INT(verify_text(&config, padded), JWT_FAILURE_BASE64);
    /* A truncated signature and a signature of the wrong length. */
    snprintf(padded, sizeof padded, "%s", good);
    padded[strlen(padded) - 3] = '\0'; /* 40 characters: canonical, 30 bytes */
    EXPECT_EQ_INT(verify_text(&config, padded), JWT_FAILURE_SIGNATURE);
    snprintf(padded, sizeof padded, "%sAAAAAAAA", good);
    EXPECT_EQ_INT(verify_text(&config, padded), JWT_FAILURE_SIGNATURE);
}

TEST(jwt_rejects_non_object_and_hostile_json) {
    struct jwt_config config;
    config_one_key(&config);
    struct jwt_claims claims;
    static const char *const payloads[] = {
        "[]", "\"sub\"", "123", "null", "{", "{\"sub\":\"u\",\"exp\":1770720300,}",
        "{\"sub\":\"u\",/*c*/\"exp\":1770720300}", "{\"sub\":\"u\",\"exp\":1770720300} x",
        "{\"sub\":\"u\",\"exp\":NaN}", "{\"sub\":\"\xff\",\"exp\":1770720300}",
        "{\"sub\":\"u\",\"exp\":1770720300,\"x\":[[[[[[[[1]]]]]]]]}", /* depth 9 */
    };
    for (size_t index = 0; index < sizeof payloads / sizeof payloads[0]; index++) {
        EXPECT_EQ_INT(verify_payload(&config, payloads[index], &claims), JWT_FAILURE_PAYLOAD);
    }
    EXPECT_EQ_INT(verify_payload(&config, "{\"sub\":\"u\",\"exp\":1770720300,"
                                          "\"x\":[[[[[[[1]]]]]]],\"y\":\"[[[[[[[[[[[[\"}",
                                 &claims),
                  JWT_FAILURE_NONE); /* depth 8; brackets in strings do not count */
    EXPECT_EQ_INT(verify_payload(&config, "{\"sub\":\"u\",\"exp\":1770720300,\"sub\":\"admin\"}",
                                 &claims),
                  JWT_FAILURE_DUPLICATE);
    EXPECT_EQ_INT(verify_header(&config, "{\"alg\":\"HS256\",\"kid\":\"k1\",\"alg\":\"none\"}",
                                secret_one, MBEDTLS_MD_SHA256),
                  JWT_FAILURE_DUPLICATE);
    EXPECT_EQ_INT(verify_header(&config, "[\"HS256\"]", secret_one, MBEDTLS_MD_SHA256),
                  JWT_FAILURE_HEADER);
    char many[2048];
    size_t length = (size_t)snprintf(many, sizeof many, "{\"sub\":\"u\",\"exp\":1770720300");
    for (int member = 0; member < LIMIT_JWT_JSON_MEMBERS - 1; member++) {
        length += (size_t)snprintf(many + length, sizeof many - length, ",\"m%d\":0", member);
    }
    snprintf(many + length, sizeof many - length, "}");
    EXPECT_EQ_INT(verify_payload(&config, many, &claims), JWT_FAILURE_PAYLOAD);
}

TEST(jwt_bounds_token_size) {
    struct jwt_config config;
    config_one_key(&config);
    /* Grow a padding claim until the token is as long as allowed. */
    static char payload[LIMIT_JWT_TOKEN_BYTES];
    static char token[LIMIT_JWT_TOKEN_BYTES * 2];
    size_t pad = 5000;
    size_t last_good = 0;
    for (; pad < 7000; pad++) {
        int prefix =
            snprintf(payload, sizeof payload, "{\"sub\":\"u\",\"exp\":1770720300,\"p\":\"");
        memset(payload + prefix, 'x', pad);
        snprintf(payload + prefix + pad, sizeof payload - (size_t)prefix - pad, "\"}");
        forge(header_k1, payload, secret_one, MBEDTLS_MD_SHA256, token, sizeof token);
        size_t length = strlen(token);
        struct jwt_claims claims;
        enum jwt_failure failure = JWT_FAILURE_NONE;
        jwt_verify(&config, token, length, NOW_S, &claims, &failure);
        if (length <= LIMIT_JWT_TOKEN_BYTES) {
            EXPECT_EQ_INT(failure, JWT_FAILURE_NONE);
            last_good = length;
        } else {
            EXPECT_EQ_INT(failure, JWT_FAILURE_TOO_LARGE);
            break;
        }
    }
    EXPECT(last_good >= LIMIT_JWT_TOKEN_BYTES - 3);
    memset(token, 'A', LIMIT_JWT_TOKEN_BYTES * 2 - 1);
    token[LIMIT_JWT_TOKEN_BYTES * 2 - 1] = '\0';
    EXPECT_EQ_INT(verify_text(&config, token), JWT_FAILURE_TOO_LARGE);
}

TEST(jwt_survives_allocation_failures) {
    struct jwt_config config;
    config_one_key(&config);
    struct jwt_claims claims = {.subject = "u", .role = "user", .expires_at_s = NOW_S + 60};
    char token[LIMIT_JWT_TOKEN_BYTES];
    int rc = ERR_NOMEM;
    for (long allowed = 0; allowed < 100 && rc != 0; allowed++) {
        mem_fail_after(allowed);
        rc = jwt_sign(&config, &claims, token, sizeof token, NULL);
        mem_fail_after(-1);
        EXPECT(rc == 0 || rc == ERR_NOMEM);
    }
    EXPECT_EQ_INT(rc, 0);
    rc = ERR_NOMEM;
    for (long allowed = 0; allowed < 100 && rc != 0; allowed++) {
        struct jwt_claims out;
        mem_fail_after(allowed);
        rc = jwt_verify(&config, token, strlen(token), NOW_S, &out, NULL);
        mem_fail_after(-1);
        EXPECT(rc == 0 || rc == ERR_NOMEM);
    }
    EXPECT_EQ_INT(rc, 0);
}

TEST(jwt_config_validates_keys) {
    struct jwt_config config;
    jwt_config_init(&config);
    EXPECT_EQ_INT(config.algorithms, JWT_ALGORITHM_HS256);
    EXPECT_EQ_INT(config.leeway_s, LIMIT_JWT_LEEWAY_S_DEFAULT);
    EXPECT_EQ_INT(jwt_config_add_key(&config, "short", "0123456789", 10), ERR_INVAL);
    uint8_t big[LIMIT_JWT_SECRET_BYTES_MAX + 1] = {0};
    EXPECT_EQ_INT(jwt_config_add_key(&config, "big", big, sizeof big), ERR_INVAL);
    char long_id[LIMIT_JWT_KEY_ID_BYTES + 2];
    memset(long_id, 'k', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    EXPECT_EQ_INT(jwt_config_add_key(&config, long_id, secret_one, strlen(secret_one)), ERR_INVAL);
    for (int index = 0; index < LIMIT_JWT_KEYS; index++) {
        char key_id[8];
        snprintf(key_id, sizeof key_id, "k%d", index);
        EXPECT_EQ_INT(jwt_config_add_key(&config, key_id, secret_one, strlen(secret_one)), 0);
    }
    EXPECT_EQ_INT(jwt_config_add_key(&config, "k0", secret_one, strlen(secret_one)), ERR_EXISTS);
    EXPECT_EQ_INT(jwt_config_add_key(&config, "new", secret_one, strlen(secret_one)), ERR_LIMIT);
    char long_issuer[LIMIT_JWT_ISSUER_BYTES + 2];
    memset(long_issuer, 'i', sizeof long_issuer - 1);
    long_issuer[sizeof long_issuer - 1] = '\0';
    EXPECT_EQ_INT(jwt_config_set_issuer(&config, long_issuer), ERR_INVAL);
    EXPECT_STR(jwt_failure_name(JWT_FAILURE_EXPIRED), "JWT_FAILURE_EXPIRED");
    EXPECT_STR(jwt_failure_str(JWT_FAILURE_EXPIRED), "exp has passed");
    EXPECT_STR(jwt_failure_name((enum jwt_failure)999), "JWT_FAILURE_UNKNOWN");
}
