/*
 * webhook.c - the signature of a webhook delivery: HMAC-SHA256 keyed with the
 * user's webhook secret over "<timestamp>.<body>", sent as "v1=<hex>". The
 * timestamp is part of the signed input so that a captured delivery cannot be
 * replayed later with a fresh Docket-Timestamp header. The body is streamed
 * into the MAC, never copied.
 */
#include "webhook.h"

#include "../base/check.h"
#include "../base/err.h"

#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#include <inttypes.h>
#include <stdio.h>

#define WEBHOOK_MAC_BYTES 32 /* SHA-256 */

/* Lowercase hex of `length` bytes into `out` (2 * length + 1 bytes). */
static void webhook_hex(const uint8_t *bytes, size_t length, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t index = 0; index < length; index++) {
        out[2 * index] = digits[bytes[index] >> 4];
        out[2 * index + 1] = digits[bytes[index] & 0x0f];
    }
    out[2 * length] = '\0';
}

int webhook_hmac_sha256(const void *key, size_t key_length, const void *const *parts,
                        const size_t *part_lengths, size_t part_count,
                        uint8_t out[WEBHOOK_MAC_BYTES]) {
    CHECK(key != NULL && parts != NULL && part_lengths != NULL && out != NULL);
    const mbedtls_md_info_t *sha256 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    CHECK(sha256 != NULL);
    mbedtls_md_context_t context;
    mbedtls_md_init(&context);
    int rc = mbedtls_md_setup(&context, sha256, 1);
    if (rc == 0) rc = mbedtls_md_hmac_starts(&context, key, key_length);
    for (size_t index = 0; rc == 0 && index < part_count; index++)
        rc = mbedtls_md_hmac_update(&context, parts[index], part_lengths[index]);
    if (rc == 0) rc = mbedtls_md_hmac_finish(&context, out);
    mbedtls_md_free(&context);
    return rc == 0 ? 0 : ERR_NOMEM;
}

int webhook_sign(const char *secret, size_t secret_length, int64_t timestamp_s, const char *body,
                 size_t body_length, char out[WEBHOOK_SIGNATURE_BYTES]) {
    CHECK(secret != NULL && out != NULL);
    CHECK(body != NULL || body_length == 0);
    out[0] = '\0';
    if (secret_length < WEBHOOK_SECRET_BYTES_MIN || secret_length > WEBHOOK_SECRET_BYTES_MAX)
        return ERR_INVAL;
    char prefix[24]; /* "-9223372036854775808." */
    int prefix_length = snprintf(prefix, sizeof prefix, "%" PRId64 ".", timestamp_s);
    CHECK(prefix_length > 0 && (size_t)prefix_length < sizeof prefix);
    const void *parts[2] = {prefix, body != NULL ? body : ""};
    const size_t lengths[2] = {(size_t)prefix_length, body_length};
    uint8_t mac[WEBHOOK_MAC_BYTES];
    int rc = webhook_hmac_sha256(secret, secret_length, parts, lengths, 2, mac);
    if (rc == 0) {
        out[0] = 'v';
        out[1] = '1';
        out[2] = '=';
        webhook_hex(mac, sizeof mac, out + 3);
    }
    mbedtls_platform_zeroize(mac, sizeof mac);
    return rc;
}
