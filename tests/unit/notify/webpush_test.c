/* webpush_test.c - proves that webpush_encrypt() reproduces the RFC 8291
 * section 5 / Appendix A example byte for byte (ephemeral key and salt fixed
 * through the random hook), that what it encrypts for fresh keys decrypts
 * with an independent RFC 8188 decryption written here on mbedtls, that
 * subscription keys with bad encodings, lengths or points are refused, that
 * the VAPID key file is created 0600 and read back (SEC1 and PKCS#8), and
 * that the VAPID JWT is ES256 with a raw r || s signature that mbedtls'
 * ECDSA verify accepts under the public key. */
#include "../../../src/base/base64.h"
#include "../../../src/base/err.h"
#include "../../../src/base/random.h"
#include "../../../src/notify/webpush.h"
#include "test.h"

#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* RFC 8291 section 5 and Appendix A. */
static const char rfc_plaintext[] = "When I grow up, I want to be a watermelon";
static const char rfc_ua_public[] =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
static const char rfc_ua_private[] = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
static const char rfc_auth[] = "BTBZMqHH6r4Tts7J_aSIgg";
static const char rfc_as_private[] = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
static const char rfc_salt[] = "DGv6ra1nlYgDCS1FRnbzlw";
static const char rfc_body[] =
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS"
    "6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Q"
    "ulcy4a-fN";

/* Decodes base64url into `out`; returns the byte count or -1. */
static long b64url_decode(const char *text, uint8_t *out, size_t out_size) {
    size_t length = 0;
    if (base64_decode(BASE64_URL, text, strlen(text), out, out_size, &length) != 0) return -1;
    return (long)length;
}

/* mbedtls' RNG callback on the kernel's CSPRNG. */
static int test_rng(void *arg, unsigned char *out, size_t length) {
    (void)arg;
    return random_fill(out, length) == 0 ? 0 : -1;
}

/* The random hook's state: the salt, then scalars in order. */
struct fixed_random {
    uint8_t salt[16];      /* answer to the 16-byte request */
    uint8_t scalars[2][32]; /* answers to the 32-byte requests, in order */
    int scalar_count;      /* how many scalars are loaded */
    int scalar_next;       /* next one to give */
    int calls;             /* requests seen */
};

static int fixed_random_fill(void *arg, uint8_t *out, size_t length) {
    struct fixed_random *state = arg;
    state->calls++;
    if (length == 16) {
        memcpy(out, state->salt, 16);
        return 0;
    }
    if (length == 32 && state->scalar_next < state->scalar_count) {
        memcpy(out, state->scalars[state->scalar_next++], 32);
        return 0;
    }
    return ERR_SYS;
}

/* An independent RFC 8291 / RFC 8188 decryption of a single-record body with
 * the receiver's private key. Returns the plaintext length or -1. */
static long reference_decrypt(const uint8_t *body, size_t body_length,
                              const uint8_t ua_private[32], const uint8_t ua_public[65],
                              const uint8_t auth[16], uint8_t *out, size_t out_size) {
    if (body_length < 86 + 17 || body[20] != 65) return -1;
    uint32_t record_size = (uint32_t)body[16] << 24 | (uint32_t)body[17] << 16 |
                           (uint32_t)body[18] << 8 | body[19];
    if (record_size != 4096 || body_length - 86 > record_size) return -1;
    const uint8_t *salt = body;
    const uint8_t *as_public = body + 21;
    mbedtls_ecp_group group;
    mbedtls_ecp_point peer;
    mbedtls_mpi scalar, shared;
    mbedtls_ecp_group_init(&group);
    mbedtls_ecp_point_init(&peer);
    mbedtls_mpi_init(&scalar);
    mbedtls_mpi_init(&shared);
    uint8_t secret[32];
    int rc = mbedtls_ecp_group_load(&group, MBEDTLS_ECP_DP_SECP256R1);
    if (rc == 0) rc = mbedtls_ecp_point_read_binary(&group, &peer, as_public, 65);
    if (rc == 0) rc = mbedtls_mpi_read_binary(&scalar, ua_private, 32);
    if (rc == 0)
        rc = mbedtls_ecdh_compute_shared(&group, &shared, &peer, &scalar, test_rng,
                                         NULL);
    if (rc == 0) rc = mbedtls_mpi_write_binary(&shared, secret, 32);
    mbedtls_mpi_free(&shared);
    mbedtls_mpi_free(&scalar);
    mbedtls_ecp_point_free(&peer);
    mbedtls_ecp_group_free(&group);
    if (rc != 0) return -1;
    const mbedtls_md_info_t *sha256 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    uint8_t key_info[14 + 130];
    memcpy(key_info, "WebPush: info\0", 14);
    memcpy(key_info + 14, ua_public, 65);
    memcpy(key_info + 79, as_public, 65);
    uint8_t ikm[32], cek[16], nonce[12];
    rc = mbedtls_hkdf(sha256, auth, 16, secret, 32, key_info, sizeof key_info, ikm, 32);
    if (rc == 0)
        rc = mbedtls_hkdf(sha256, salt, 16, ikm, 32,
                          (const uint8_t *)"Content-Encoding: aes128gcm\0", 28, cek, 16);
    if (rc == 0)
        rc = mbedtls_hkdf(sha256, salt, 16, ikm, 32, (const uint8_t *)"Content-Encoding: nonce\0",
                          24, nonce, 12);
    if (rc != 0) return -1;
    size_t sealed = body_length - 86 - 16;
    if (sealed > out_size) return -1;
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, cek, 128);
    if (rc == 0)
        rc = mbedtls_gcm_auth_decrypt(&gcm, sealed, nonce, 12, NULL, 0, body + 86 + sealed, 16,
                                      body + 86, out);
    mbedtls_gcm_free(&gcm);
    if (rc != 0) return -1;
    size_t end = sealed;
    while (end > 0 && out[end - 1] == 0) end--; /* padding zeros */
    if (end == 0 || out[end - 1] != 2) return -1;   /* last-record delimiter */
    return (long)(end - 1);
}

/* Loads the RFC keys into `keys` and the hook. */
static bool rfc_setup(struct webpush_subscription_keys *keys, struct fixed_random *random) {
    const char *message = NULL;
    if (webpush_keys_parse(rfc_ua_public, rfc_auth, keys, &message) != 0) return false;
    memset(random, 0, sizeof *random);
    if (b64url_decode(rfc_salt, random->salt, 16) != 16) return false;
    if (b64url_decode(rfc_as_private, random->scalars[0], 32) != 32) return false;
    random->scalar_count = 1;
    return true;
}

TEST(webpush_encrypt_matches_rfc8291_example) {
    /* The body of RFC 8291 section 5, byte for byte, from its keys and salt. */
    struct webpush_subscription_keys keys;
    struct fixed_random random;
    EXPECT(rfc_setup(&keys, &random));
    uint8_t expected[256];
    long expected_length = b64url_decode(rfc_body, expected, sizeof expected);
    EXPECT_EQ_INT(expected_length, 86 + 41 + 1 + 16);
    uint8_t out[256];
    int written = webpush_encrypt(&keys, (const uint8_t *)rfc_plaintext, strlen(rfc_plaintext),
                                  fixed_random_fill, &random, out, sizeof out);
    EXPECT_EQ_INT(written, expected_length);
    EXPECT_EQ_INT(written, WEBPUSH_ENCRYPTED_BYTES(strlen(rfc_plaintext)));
    EXPECT(memcmp(out, expected, (size_t)written) == 0);
    EXPECT_EQ_INT(random.calls, 2); /* salt, then one scalar */
}

TEST(webpush_encrypt_redraws_an_out_of_range_scalar) {
    /* A scalar >= n (all 0xff) is not used: the next draw is, so the RFC body comes out. */
    struct webpush_subscription_keys keys;
    struct fixed_random random;
    EXPECT(rfc_setup(&keys, &random));
    memcpy(random.scalars[1], random.scalars[0], 32);
    memset(random.scalars[0], 0xff, 32);
    random.scalar_count = 2;
    uint8_t expected[256];
    long expected_length = b64url_decode(rfc_body, expected, sizeof expected);
    uint8_t out[256];
    int written = webpush_encrypt(&keys, (const uint8_t *)rfc_plaintext, strlen(rfc_plaintext),
                                  fixed_random_fill, &random, out, sizeof out);
    EXPECT_EQ_INT(written, expected_length);
    EXPECT(memcmp(out, expected, (size_t)written) == 0);
    EXPECT_EQ_INT(random.calls, 3);
}

TEST(webpush_rfc_example_decrypts_with_reference_decryption) {
    /* The test's own decryption recovers the RFC plaintext from the RFC body. */
    uint8_t body[256], ua_private[32], plain[256];
    struct webpush_subscription_keys keys;
    const char *message = NULL;
    EXPECT_EQ_INT(webpush_keys_parse(rfc_ua_public, rfc_auth, &keys, &message), 0);
    long body_length = b64url_decode(rfc_body, body, sizeof body);
    EXPECT_EQ_INT(b64url_decode(rfc_ua_private, ua_private, 32), 32);
    long length = reference_decrypt(body, (size_t)body_length, ua_private, keys.p256dh, keys.auth,
                                    plain, sizeof plain);
    EXPECT_EQ_INT(length, (long)strlen(rfc_plaintext));
    EXPECT(memcmp(plain, rfc_plaintext, (size_t)length) == 0);
}

/* A fresh receiver key pair and auth secret, as a browser makes. */
static bool receiver_make(uint8_t private_key[32], struct webpush_subscription_keys *keys) {
    mbedtls_ecp_keypair pair;
    mbedtls_ecp_keypair_init(&pair);
    size_t length = 0;
    int rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &pair, test_rng, NULL);
    if (rc == 0) rc = mbedtls_ecp_write_key_ext(&pair, &length, private_key, 32);
    if (rc == 0)
        rc = mbedtls_ecp_write_public_key(&pair, MBEDTLS_ECP_PF_UNCOMPRESSED, &length,
                                          keys->p256dh, 65);
    mbedtls_ecp_keypair_free(&pair);
    return rc == 0 && random_fill(keys->auth, 16) == 0;
}

TEST(webpush_round_trip_fresh_keys_all_sizes) {
    /* Payloads of 0, 1, 100 and the maximum 3993 bytes decrypt to themselves; two
     * encryptions of one payload differ (fresh salt and ephemeral key). */
    static uint8_t payload[WEBPUSH_PAYLOAD_MAX];
    static uint8_t body[WEBPUSH_RECORD_BYTES_MAX], second[WEBPUSH_RECORD_BYTES_MAX];
    static uint8_t plain[WEBPUSH_RECORD_BYTES_MAX];
    EXPECT_EQ_INT(random_fill(payload, sizeof payload), 0);
    uint8_t private_key[32];
    struct webpush_subscription_keys keys;
    EXPECT(receiver_make(private_key, &keys));
    const size_t sizes[] = {0, 1, 100, WEBPUSH_PAYLOAD_MAX};
    for (size_t index = 0; index < 4; index++) {
        int written = webpush_encrypt(&keys, payload, sizes[index], NULL, NULL, body, sizeof body);
        EXPECT_EQ_INT(written, WEBPUSH_ENCRYPTED_BYTES(sizes[index]));
        long length = reference_decrypt(body, (size_t)written, private_key, keys.p256dh,
                                        keys.auth, plain, sizeof plain);
        EXPECT_EQ_INT(length, (long)sizes[index]);
        EXPECT(sizes[index] == 0 || memcmp(plain, payload, sizes[index]) == 0);
        EXPECT_EQ_INT(webpush_encrypt(&keys, payload, sizes[index], NULL, NULL, second,
                                      sizeof second),
                      written);
        EXPECT(memcmp(body, second, 16) != 0);           /* salt */
        EXPECT(memcmp(body + 21, second + 21, 65) != 0); /* ephemeral key */
    }
    EXPECT_EQ_INT(WEBPUSH_ENCRYPTED_BYTES(WEBPUSH_PAYLOAD_MAX), 4096);
}

TEST(webpush_encrypt_rejects_tampering_and_limits) {
    /* A flipped ciphertext bit fails authentication; a payload over the maximum or
     * an output buffer one byte short is ERR_LIMIT; a failing hook's error comes back. */
    uint8_t private_key[32], body[512], plain[512];
    struct webpush_subscription_keys keys;
    EXPECT(receiver_make(private_key, &keys));
    int written =
        webpush_encrypt(&keys, (const uint8_t *)"hello", 5, NULL, NULL, body, sizeof body);
    EXPECT_EQ_INT(written, 86 + 5 + 1 + 16);
    body[90] ^= 1;
    EXPECT_EQ_INT(reference_decrypt(body, (size_t)written, private_key, keys.p256dh, keys.auth,
                                    plain, sizeof plain),
                  -1);
    static uint8_t big[WEBPUSH_PAYLOAD_MAX + 1];
    static uint8_t out[WEBPUSH_RECORD_BYTES_MAX + 64];
    EXPECT_EQ_INT(webpush_encrypt(&keys, big, sizeof big, NULL, NULL, out, sizeof out), ERR_LIMIT);
    EXPECT_EQ_INT(webpush_encrypt(&keys, big, 10, NULL, NULL, out, WEBPUSH_ENCRYPTED_BYTES(10) - 1),
                  ERR_LIMIT);
    struct fixed_random empty;
    memset(&empty, 0, sizeof empty); /* gives a salt, then no scalar: ERR_SYS */
    EXPECT_EQ_INT(webpush_encrypt(&keys, big, 10, fixed_random_fill, &empty, out, sizeof out),
                  ERR_SYS);
}

TEST(webpush_keys_parse_rejects_bad_keys) {
    /* Bad base64url, wrong lengths, compressed or off-curve points and a short
     * auth secret are refused with a message naming the key. */
    struct webpush_subscription_keys keys;
    const char *message = NULL;
    uint8_t point[66];
    char text[128];
    /* Off the curve: 0x04 || X = 1...1 || Y = 1...1. */
    point[0] = 4;
    memset(point + 1, 1, 64);
    EXPECT_EQ_INT(base64_encode(BASE64_URL, point, 65, text, sizeof text, NULL), 0);
    EXPECT_EQ_INT(webpush_keys_parse(text, rfc_auth, &keys, &message), ERR_INVAL);
    EXPECT_STR(message, "p256dh must be a P-256 public key");
    /* The RFC point but with the compressed-form prefix byte. */
    EXPECT_EQ_INT(b64url_decode(rfc_ua_public, point, sizeof point), 65);
    point[0] = 2;
    EXPECT_EQ_INT(base64_encode(BASE64_URL, point, 65, text, sizeof text, NULL), 0);
    EXPECT_EQ_INT(webpush_keys_parse(text, rfc_auth, &keys, &message), ERR_INVAL);
    EXPECT_STR(message, "p256dh must be a P-256 public key");
    /* 64 and 66 bytes. */
    point[0] = 4;
    point[65] = 0;
    for (size_t length = 64; length <= 66; length += 2) {
        EXPECT_EQ_INT(base64_encode(BASE64_URL, point, length, text, sizeof text, NULL), 0);
        EXPECT_EQ_INT(webpush_keys_parse(text, rfc_auth, &keys, &message), ERR_INVAL);
        EXPECT(strncmp(message, "p256dh must be 65 bytes", 23) == 0);
    }
    /* Standard-alphabet characters, a stray character, empty and NULL. */
    static const char *const bad_p256dh[] = {
        "BCVxsr7N+eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4 ",
        "", NULL};
    for (size_t index = 0; index < 4; index++) {
        EXPECT_EQ_INT(webpush_keys_parse(bad_p256dh[index], rfc_auth, &keys, &message), ERR_INVAL);
        EXPECT(strncmp(message, "p256dh", 6) == 0);
    }
    /* auth: 15 and 17 bytes, bad characters, NULL. */
    static const char *const bad_auth[] = {"BTBZMqHH6r4Tts7J_aSI", "BTBZMqHH6r4Tts7J_aSIggA",
                                           "BTBZMqHH6r4Tts7J/aSIgg", NULL};
    for (size_t index = 0; index < 4; index++) {
        EXPECT_EQ_INT(webpush_keys_parse(rfc_ua_public, bad_auth[index], &keys, &message),
                      ERR_INVAL);
        EXPECT_STR(message, "auth must be 16 bytes in base64url");
    }
    /* Padding is tolerated; the field-level parser gives a phrase without the name. */
    EXPECT_EQ_INT(webpush_keys_parse(rfc_ua_public, "BTBZMqHH6r4Tts7J_aSIgg==", &keys, &message),
                  0);
    EXPECT_EQ_INT(webpush_auth_parse("AAAA", keys.auth, &message), ERR_INVAL);
    EXPECT_STR(message, "must be 16 bytes in base64url");
}

/* A fresh directory for key files. */
static bool temp_dir(char out[64]) {
    snprintf(out, 64, "/tmp/webpush_test.XXXXXX");
    return mkdtemp(out) != NULL;
}

/* Writes `text` to dir/name and returns the path in `path`. */
static bool file_put(const char *dir, const char *name, const char *text, char path[128]) {
    snprintf(path, 128, "%s/%s", dir, name);
    FILE *file = fopen(path, "w");
    if (file == NULL) return false;
    bool ok = fputs(text, file) >= 0;
    return fclose(file) == 0 && ok;
}

/* True when `public_key` is private_key * G. */
static bool vapid_consistent(const struct webpush_vapid *vapid) {
    mbedtls_ecp_keypair pair;
    mbedtls_ecp_keypair_init(&pair);
    uint8_t computed[65];
    size_t length = 0;
    int rc = mbedtls_ecp_read_key(MBEDTLS_ECP_DP_SECP256R1, &pair, vapid->private_key, 32);
    if (rc == 0) rc = mbedtls_ecp_keypair_calc_public(&pair, test_rng, NULL);
    if (rc == 0)
        rc = mbedtls_ecp_write_public_key(&pair, MBEDTLS_ECP_PF_UNCOMPRESSED, &length, computed,
                                          65);
    mbedtls_ecp_keypair_free(&pair);
    char text[90];
    return rc == 0 && memcmp(computed, vapid->public_key, 65) == 0 &&
           base64_encode(BASE64_URL, computed, 65, text, sizeof text, NULL) == 0 &&
           strcmp(text, vapid->public_key_b64url) == 0;
}

TEST(webpush_vapid_creates_key_file_0600_then_reloads_it) {
    /* A missing file is created as an SEC1 PEM with mode 0600 (no temp file left);
     * loading it again gives the same key pair, whose public key is d * G. */
    char dir[64], path[128];
    EXPECT(temp_dir(dir));
    snprintf(path, sizeof path, "%s/vapid-private.pem", dir);
    struct webpush_vapid first, second;
    char error[256];
    EXPECT_EQ_INT(webpush_vapid_load_or_create(path, &first, error, sizeof error), 0);
    struct stat info;
    EXPECT_EQ_INT(stat(path, &info), 0);
    EXPECT_EQ_INT(info.st_mode & 0777, 0600);
    char temp[160];
    snprintf(temp, sizeof temp, "%s.tmp", path);
    EXPECT(access(temp, F_OK) != 0);
    FILE *file = fopen(path, "r");
    EXPECT(file != NULL);
    char line[64] = "";
    EXPECT(fgets(line, sizeof line, file) != NULL);
    fclose(file);
    EXPECT_STR(line, "-----BEGIN EC PRIVATE KEY-----\n");
    EXPECT_EQ_INT(strlen(first.public_key_b64url), 87);
    EXPECT(vapid_consistent(&first));
    EXPECT_EQ_INT(webpush_vapid_load_or_create(path, &second, error, sizeof error), 0);
    EXPECT(memcmp(&first, &second, sizeof first) == 0);
    unlink(path);
    rmdir(dir);
}

TEST(webpush_vapid_reads_pkcs8_and_rejects_other_keys) {
    /* A PKCS#8 P-256 key made by Python's cryptography package loads with the
     * public key cryptography computed; a P-384 key and garbage are refused. */
    static const char pkcs8[] =
        "-----BEGIN PRIVATE KEY-----\n"
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgt3H3E9k8si+272+e\n"
        "1RP9MtcrEvQM/vNvcNX11GjnAjmhRANCAATr4GEZzQCwBoHtBqe8CCf7EmVgLtFV\n"
        "ZriCB09Qy+w4SksnAOSJ7RbzZ5hGtpbdjG19V4TL4HmnGvP2IDFTF1ah\n"
        "-----END PRIVATE KEY-----\n";
    static const char p384[] =
        "-----BEGIN EC PRIVATE KEY-----\n"
        "MIGkAgEBBDDYi8DMTugGsLEZuXIEeGlFj0Ka/TvPTDy8qnBH5y8QSZDLqndREgqW\n"
        "p7vM4bS7IBagBwYFK4EEACKhZANiAAQqcdZlEk6aDsij++snHQ0ywFN4sXRAO+7y\n"
        "InOXO9zaU8Zw9lwvddkOtcuLfSLO2bfUpf4St3hr4c/6pQset5q+yCVQVfbifXLh\n"
        "VFo7RgEHXqjt2VOaNH5xjV1oBs69rX8=\n"
        "-----END EC PRIVATE KEY-----\n";
    char dir[64], path[128];
    EXPECT(temp_dir(dir));
    struct webpush_vapid vapid;
    char error[256];
    EXPECT(file_put(dir, "pkcs8.pem", pkcs8, path));
    EXPECT_EQ_INT(webpush_vapid_load_or_create(path, &vapid, error, sizeof error), 0);
    EXPECT_STR(vapid.public_key_b64url,
               "BOvgYRnNALAGge0Gp7wIJ_sSZWAu0VVmuIIHT1DL7DhKSycA5IntFvNnmEa2lt2MbX1XhMvgeaca8_YgMVM"
               "XVqE");
    EXPECT(vapid_consistent(&vapid));
    unlink(path);
    EXPECT(file_put(dir, "p384.pem", p384, path));
    EXPECT_EQ_INT(webpush_vapid_load_or_create(path, &vapid, error, sizeof error), ERR_CONFIG);
    EXPECT(strstr(error, "P-256") != NULL);
    unlink(path);
    EXPECT(file_put(dir, "garbage.pem", "not a key\n", path));
    EXPECT_EQ_INT(webpush_vapid_load_or_create(path, &vapid, error, sizeof error), ERR_CONFIG);
    EXPECT(strstr(error, "garbage.pem") != NULL);
    unlink(path);
    /* A directory that does not exist cannot take a new key. */
    snprintf(path, sizeof path, "%s/missing/vapid.pem", dir);
    EXPECT(webpush_vapid_load_or_create(path, &vapid, error, sizeof error) < 0);
    EXPECT(error[0] != '\0');
    rmdir(dir);
}

/* Splits "vapid t=<jwt>, k=<key>" and the JWT into its three parts. */
struct vapid_parts {
    char jwt[WEBPUSH_JWT_BYTES_MAX];     /* the token */
    char header[256];                    /* decoded JOSE header */
    char payload[512];                   /* decoded claims */
    uint8_t signature[80];               /* decoded signature */
    long signature_length;               /* its bytes */
    size_t signing_input_length;         /* bytes of "<header>.<payload>" */
    char key[100];                       /* the k= parameter */
};

static bool vapid_split(const char *value, struct vapid_parts *parts) {
    memset(parts, 0, sizeof *parts);
    if (strncmp(value, "vapid t=", 8) != 0) return false;
    const char *comma = strstr(value, ", k=");
    if (comma == NULL || (size_t)(comma - value - 8) >= sizeof parts->jwt) return false;
    memcpy(parts->jwt, value + 8, (size_t)(comma - value - 8));
    snprintf(parts->key, sizeof parts->key, "%s", comma + 4);
    char *dot1 = strchr(parts->jwt, '.');
    char *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    if (dot2 == NULL || strchr(dot2 + 1, '.') != NULL) return false;
    size_t length = 0;
    if (base64_decode(BASE64_URL, parts->jwt, (size_t)(dot1 - parts->jwt), parts->header,
                      sizeof parts->header - 1, &length) != 0)
        return false;
    if (base64_decode(BASE64_URL, dot1 + 1, (size_t)(dot2 - dot1 - 1), parts->payload,
                      sizeof parts->payload - 1, &length) != 0)
        return false;
    parts->signature_length = b64url_decode(dot2 + 1, parts->signature, sizeof parts->signature);
    parts->signing_input_length = (size_t)(dot2 - parts->jwt);
    return true;
}

/* mbedtls ECDSA verify of the raw r || s signature over the signing input. */
static int es256_verify(const struct webpush_vapid *vapid, const struct vapid_parts *parts) {
    uint8_t hash[32];
    mbedtls_sha256((const uint8_t *)parts->jwt, parts->signing_input_length, hash, 0);
    mbedtls_ecp_group group;
    mbedtls_ecp_point q;
    mbedtls_mpi r, s;
    mbedtls_ecp_group_init(&group);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    int rc = mbedtls_ecp_group_load(&group, MBEDTLS_ECP_DP_SECP256R1);
    if (rc == 0) rc = mbedtls_ecp_point_read_binary(&group, &q, vapid->public_key, 65);
    if (rc == 0) rc = mbedtls_mpi_read_binary(&r, parts->signature, 32);
    if (rc == 0) rc = mbedtls_mpi_read_binary(&s, parts->signature + 32, 32);
    if (rc == 0) rc = mbedtls_ecdsa_verify(&group, hash, sizeof hash, &q, &r, &s);
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&group);
    return rc;
}

/* A VAPID key made through the key file path. */
static bool vapid_fresh(struct webpush_vapid *vapid) {
    char dir[64], path[128], error[256];
    if (!temp_dir(dir)) return false;
    snprintf(path, sizeof path, "%s/vapid.pem", dir);
    int rc = webpush_vapid_load_or_create(path, vapid, error, sizeof error);
    unlink(path);
    rmdir(dir);
    return rc == 0;
}

TEST(webpush_vapid_header_is_es256_jwt_verified_by_mbedtls) {
    /* The header carries a JWT whose claims are exactly aud, exp = now + 12 h and
     * sub, signed with a raw 64-byte r || s that verifies under k; a changed
     * signing input does not verify; the same inputs give the same header. */
    struct webpush_vapid vapid;
    EXPECT(vapid_fresh(&vapid));
    char value[1200], again[1200];
    EXPECT_EQ_INT(webpush_vapid_header(&vapid, "https://push.example.net", "mailto:ops@example.com",
                                       1700000000, value, sizeof value),
                  0);
    struct vapid_parts parts;
    EXPECT(vapid_split(value, &parts));
    EXPECT_STR(parts.header, "{\"typ\":\"JWT\",\"alg\":\"ES256\"}");
    EXPECT_STR(parts.payload, "{\"aud\":\"https://push.example.net\",\"exp\":1700043200,"
                              "\"sub\":\"mailto:ops@example.com\"}");
    EXPECT_STR(parts.key, vapid.public_key_b64url);
    EXPECT_EQ_INT(parts.signature_length, 64);
    EXPECT_EQ_INT(es256_verify(&vapid, &parts), 0);
    parts.jwt[3] ^= 1;
    EXPECT(es256_verify(&vapid, &parts) != 0);
    EXPECT_EQ_INT(webpush_vapid_header(&vapid, "https://push.example.net", "mailto:ops@example.com",
                                       1700000000, again, sizeof again),
                  0);
    EXPECT_STR(again, value);
    /* Without a subject the claim is left out. */
    char jwt[WEBPUSH_JWT_BYTES_MAX];
    EXPECT_EQ_INT(webpush_vapid_jwt(&vapid, "https://fcm.googleapis.com", NULL, 5, jwt, sizeof jwt),
                  0);
    snprintf(value, sizeof value, "vapid t=%s, k=%s", jwt, vapid.public_key_b64url);
    EXPECT(vapid_split(value, &parts));
    EXPECT_STR(parts.payload, "{\"aud\":\"https://fcm.googleapis.com\",\"exp\":43205}");
    EXPECT_EQ_INT(es256_verify(&vapid, &parts), 0);
}

TEST(webpush_vapid_header_rejects_bad_claims_and_small_buffers) {
    /* A quote, a backslash, a control character or an empty audience is ERR_INVAL;
     * a buffer too small is ERR_LIMIT with an empty result. */
    struct webpush_vapid vapid;
    EXPECT(vapid_fresh(&vapid));
    char value[1200];
    EXPECT_EQ_INT(
        webpush_vapid_header(&vapid, "https://a\"b", "mailto:x@y", 1, value, sizeof value),
                  ERR_INVAL);
    EXPECT_EQ_INT(webpush_vapid_header(&vapid, "https://a", "mailto:x\\y", 1, value, sizeof value),
                  ERR_INVAL);
    EXPECT_EQ_INT(webpush_vapid_header(&vapid, "https://a\n", "mailto:x@y", 1, value, sizeof value),
                  ERR_INVAL);
    EXPECT_EQ_INT(webpush_vapid_header(&vapid, "", "mailto:x@y", 1, value, sizeof value),
                  ERR_INVAL);
    EXPECT_EQ_INT(webpush_vapid_header(&vapid, "https://a", "mailto:x@y", 1, value, 100),
                  ERR_LIMIT);
    EXPECT_STR(value, "");
}
