/* webhook_test.c - proves that the webhook MAC is HMAC-SHA256 (RFC 4231
 * vectors, including keys longer than a block and input split into parts),
 * that webhook_sign() signs exactly "<timestamp>.<body>" and writes
 * "v1=<64 lowercase hex>", and that secrets outside the bounds are refused. */
#include "../../../src/base/err.h"
#include "../../../src/notify/webhook.h"
#include "test.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Lowercase hex of 32 bytes. */
static void hex32(const uint8_t bytes[32], char out[65]) {
    for (int index = 0; index < 32; index++) snprintf(out + 2 * index, 3, "%02x", bytes[index]);
}

/* HMAC of one buffer through the multi-part interface, as hex. */
static int mac_hex(const void *key, size_t key_length, const char *data, char out[65]) {
    const void *parts[1] = {data};
    size_t lengths[1] = {strlen(data)};
    uint8_t mac[32];
    int rc = webhook_hmac_sha256(key, key_length, parts, lengths, 1, mac);
    if (rc == 0) hex32(mac, out);
    return rc;
}

TEST(webhook_hmac_matches_rfc4231_case1) {
    /* RFC 4231 section 4.2: key 20 x 0x0b, data "Hi There". */
    uint8_t key[20];
    memset(key, 0x0b, sizeof key);
    char hex[65];
    EXPECT_EQ_INT(mac_hex(key, sizeof key, "Hi There", hex), 0);
    EXPECT_STR(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(webhook_hmac_matches_rfc4231_cases6_and_7_long_key) {
    /* RFC 4231 sections 4.7 and 4.8: a 131-byte key (hashed first). */
    uint8_t key[131];
    memset(key, 0xaa, sizeof key);
    char hex[65];
    EXPECT_EQ_INT(mac_hex(key, sizeof key, "Test Using Larger Than Block-Size Key - Hash Key First",
                          hex),
                  0);
    EXPECT_STR(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    EXPECT_EQ_INT(mac_hex(key, sizeof key,
                          "This is a test using a larger than block-size key and a larger than "
                          "block-size data. The key needs to be hashed before being used by the "
                          "HMAC algorithm.",
                          hex),
                  0);
    EXPECT_STR(hex, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST(webhook_hmac_of_parts_equals_hmac_of_concatenation) {
    /* RFC 4231 case 1 again, its data fed as three parts (one empty). */
    uint8_t key[20];
    memset(key, 0x0b, sizeof key);
    const void *parts[3] = {"Hi", "", " There"};
    size_t lengths[3] = {2, 0, 6};
    uint8_t mac[32];
    char hex[65];
    EXPECT_EQ_INT(webhook_hmac_sha256(key, sizeof key, parts, lengths, 3, mac), 0);
    hex32(mac, hex);
    EXPECT_STR(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(webhook_sign_signs_timestamp_dot_body) {
    /* Expected values computed independently with Python's hmac module:
     * hmac.new(b"whsec-0123456789abcdef", b"1700000000.<body>", sha256). */
    static const char secret[] = "whsec-0123456789abcdef";
    static const char body[] = "{\"task\":\"t1\",\"type\":\"reminder\"}";
    char signature[WEBHOOK_SIGNATURE_BYTES];
    EXPECT_EQ_INT(webhook_sign(secret, strlen(secret), 1700000000, body, strlen(body), signature),
                  0);
    EXPECT_STR(signature, "v1=012da8a2ecb2ce4ff09f7ba5516739e871a3a39530d96c14aa0aed6f617467fa");
    EXPECT_EQ_INT(strlen(signature), WEBHOOK_SIGNATURE_BYTES - 1);
    /* Negative timestamps and an empty body are signed the same way ("-5."). */
    EXPECT_EQ_INT(webhook_sign(secret, strlen(secret), -5, NULL, 0, signature), 0);
    EXPECT_STR(signature, "v1=c33db6127cb04df3161bacde2103042f0297fac9ec605b6979e85059db43a83b");
}

TEST(webhook_sign_changes_with_timestamp_body_and_secret) {
    /* Each input is covered by the signature: changing any one changes it. */
    static const char secret[] = "whsec-0123456789abcdef";
    static const char other_secret[] = "whsec-0123456789abcdeF";
    char base[WEBHOOK_SIGNATURE_BYTES];
    char changed[WEBHOOK_SIGNATURE_BYTES];
    EXPECT_EQ_INT(webhook_sign(secret, strlen(secret), 100, "body", 4, base), 0);
    EXPECT_EQ_INT(webhook_sign(secret, strlen(secret), 101, "body", 4, changed), 0);
    EXPECT(strcmp(base, changed) != 0);
    EXPECT_EQ_INT(webhook_sign(secret, strlen(secret), 100, "bodY", 4, changed), 0);
    EXPECT(strcmp(base, changed) != 0);
    EXPECT_EQ_INT(webhook_sign(other_secret, strlen(other_secret), 100, "body", 4, changed), 0);
    EXPECT(strcmp(base, changed) != 0);
    /* "10" + "0.body" must not collide with "100" + ".body": the dot is fixed. */
    EXPECT_EQ_INT(webhook_sign(secret, strlen(secret), 10, "0.body", 6, changed), 0);
    EXPECT(strcmp(base, changed) != 0);
}

TEST(webhook_sign_refuses_secrets_out_of_bounds) {
    /* 15 and 257 bytes are refused with ERR_INVAL and an empty output; 16 and 256 pass. */
    char secret[WEBHOOK_SECRET_BYTES_MAX + 1];
    memset(secret, 's', sizeof secret);
    char signature[WEBHOOK_SIGNATURE_BYTES];
    EXPECT_EQ_INT(webhook_sign(secret, WEBHOOK_SECRET_BYTES_MIN - 1, 1, "x", 1, signature),
                  ERR_INVAL);
    EXPECT_STR(signature, "");
    EXPECT_EQ_INT(webhook_sign(secret, WEBHOOK_SECRET_BYTES_MAX + 1, 1, "x", 1, signature),
                  ERR_INVAL);
    EXPECT_EQ_INT(webhook_sign(secret, WEBHOOK_SECRET_BYTES_MIN, 1, "x", 1, signature), 0);
    EXPECT_EQ_INT(strncmp(signature, "v1=", 3), 0);
    EXPECT_EQ_INT(webhook_sign(secret, WEBHOOK_SECRET_BYTES_MAX, 1, "x", 1, signature), 0);
    for (size_t index = 3; index < WEBHOOK_SIGNATURE_BYTES - 1; index++)
        EXPECT((signature[index] >= '0' && signature[index] <= '9') ||
               (signature[index] >= 'a' && signature[index] <= 'f'));
}
