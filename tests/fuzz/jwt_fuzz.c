/*
 * jwt_fuzz.c - libFuzzer target for jwt_verify(). The first byte picks a
 * mode; the rest is the input:
 *   mode 0  the rest is a token, verified as is (structure, base64, header);
 *   mode 1  the rest is "header-json\npayload-json" (or only a payload, with
 *           the standard header); it is signed with the ring's key first, so
 *           the checks behind the signature (claims, JSON bounds) are reached;
 *   modes 2 and 3 are 0 and 1 with an issuer, an audience, HS512 allowed and
 *           a second key configured.
 * Whatever the input, verify must answer 0 or ERR_DENIED, and accepted
 * claims must satisfy the documented invariants.
 */
#include "../../src/auth/jwt.h"
#include "../../src/base/base64.h"
#include "../../src/base/check.h"
#include "../../src/base/err.h"

#include <mbedtls/md.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_secret[] = "docket-test-secret-0123456789abcdef";
static const char fuzz_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}";

static void fuzz_config(struct jwt_config *config, int rich) {
    jwt_config_init(config);
    CHECK(jwt_config_add_key(config, "k1", fuzz_secret, strlen(fuzz_secret)) == 0);
    if (!rich) return;
    CHECK(jwt_config_add_key(config, "", "a-key-without-an-id-0123456789abc", 33) == 0);
    CHECK(jwt_config_set_issuer(config, "docket") == 0);
    CHECK(jwt_config_set_audience(config, "docket-api") == 0);
    config->algorithms |= JWT_ALGORITHM_HS512;
}

/* Signs header.payload (raw bytes, base64url-encoded here) with HS256. */
static size_t fuzz_forge(const uint8_t *header, size_t header_length, const uint8_t *payload,
                         size_t payload_length, char *out, size_t out_size) {
    size_t length = 0;
    size_t part = 0;
    if (base64_encode(BASE64_URL, header, header_length, out, out_size, &part) != 0) return 0;
    length += part;
    if (length + 1 >= out_size) return 0;
    out[length++] = '.';
    if (base64_encode(BASE64_URL, payload, payload_length, out + length, out_size - length,
                      &part) != 0) {
        return 0;
    }
    length += part;
    unsigned char mac[32];
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    CHECK(mbedtls_md_hmac(info, (const unsigned char *)fuzz_secret, strlen(fuzz_secret),
                          (const unsigned char *)out, length, mac) == 0);
    if (length + 1 >= out_size) return 0;
    out[length++] = '.';
    if (base64_encode(BASE64_URL, mac, sizeof mac, out + length, out_size - length, &part) != 0) {
        return 0;
    }
    return length + part;
}

static void fuzz_check_claims(const struct jwt_claims *claims) {
    size_t subject = strnlen(claims->subject, sizeof claims->subject);
    CHECK(subject > 0 && subject < sizeof claims->subject);
    CHECK(strnlen(claims->role, sizeof claims->role) < sizeof claims->role);
    CHECK(strnlen(claims->token_id, sizeof claims->token_id) < sizeof claims->token_id);
    CHECK(claims->expires_at_s >= 0 && claims->issued_at_s >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int mode = data[0] & 3;
    data++;
    size--;
    struct jwt_config config;
    fuzz_config(&config, mode >= 2);
    static char token[LIMIT_JWT_TOKEN_BYTES * 2];
    size_t length = 0;
    if (mode == 0 || mode == 2) {
        if (size > sizeof token) size = sizeof token;
        memcpy(token, data, size);
        length = size;
    } else {
        const uint8_t *newline = memchr(data, '\n', size);
        const uint8_t *header = (const uint8_t *)fuzz_header;
        size_t header_length = strlen(fuzz_header);
        const uint8_t *payload = data;
        size_t payload_length = size;
        if (newline != NULL) {
            header = data;
            header_length = (size_t)(newline - data);
            payload = newline + 1;
            payload_length = size - header_length - 1;
        }
        length = fuzz_forge(header, header_length, payload, payload_length, token, sizeof token);
    }
    struct jwt_claims claims;
    enum jwt_failure failure = JWT_FAILURE_NONE;
    int rc = jwt_verify(&config, token, length, 1770716700, &claims, &failure);
    CHECK(rc == 0 || rc == ERR_DENIED);
    CHECK((rc == 0) == (failure == JWT_FAILURE_NONE));
    CHECK(strcmp(jwt_failure_name(failure), "JWT_FAILURE_UNKNOWN") != 0);
    if (rc == 0) fuzz_check_claims(&claims);
    return 0;
}
