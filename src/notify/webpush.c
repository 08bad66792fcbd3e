/*
 * webpush.c - Web Push message encryption (RFC 8291 over the aes128gcm content
 * coding of RFC 8188) and VAPID (RFC 8292) on mbedtls' legacy ECP, ECDH,
 * ECDSA, HKDF and GCM APIs.
 *
 * The file has three layers: key decoding and checking (subscription keys
 * from browsers), the encryption of one message (ephemeral ECDH, the two
 * HKDF stages, one AES-128-GCM record behind the 86-byte header), and VAPID
 * (the server key file, and the ES256 JWT in the Authorization header). The
 * randomness of an encryption comes through a hook so that tests can replay
 * the RFC 8291 example; everything else random (ECC blinding, new VAPID keys)
 * reads the kernel's CSPRNG. ES256 signatures are deterministic (RFC 6979),
 * written as the raw 64-byte r || s that JWS wants (RFC 7518 section 3.4),
 * never DER.
 */
#include "webpush.h"

#include "../base/base64.h"
#include "../base/check.h"
#include "../base/err.h"
#include "../base/random.h"

#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEBPUSH_SALT_BYTES 16
#define WEBPUSH_SCALAR_BYTES 32      /* a P-256 private key or ECDH secret */
#define WEBPUSH_HEADER_BYTES 86      /* salt(16) rs(4) idlen(1) keyid(65) */
#define WEBPUSH_TAG_BYTES 16         /* AES-GCM tag */
#define WEBPUSH_CEK_BYTES 16         /* AES-128 key */
#define WEBPUSH_NONCE_BYTES 12       /* GCM nonce */
#define WEBPUSH_PADDING_DELIMITER 2  /* last record (RFC 8188 section 2) */
#define WEBPUSH_SCALAR_DRAWS_MAX 16  /* redraws of an out-of-range scalar (p < 2^-500) */
#define WEBPUSH_VAPID_LIFETIME_S (12 * 3600) /* JWT exp; RFC 8292 allows up to 24 h */
#define WEBPUSH_PEM_BYTES_MAX 1024   /* a PEM P-256 private key is ~230 bytes */
#define WEBPUSH_PATH_BYTES_MAX 4096  /* key file path and its temp sibling */
#define WEBPUSH_CLAIM_BYTES_MAX 512  /* aud or sub in the JWT */

/* The RNG mbedtls uses for blinding and key generation: the kernel's. */
static int webpush_os_random(void *arg, unsigned char *out, size_t length) {
    (void)arg;
    return random_fill(out, length) == 0 ? 0 : MBEDTLS_ERR_ECP_RANDOM_FAILED;
}

/* Draws from the test hook when there is one, else from the kernel. */
static int webpush_draw(webpush_random_fn random, void *arg, uint8_t *out, size_t length) {
    if (random == NULL) return random_fill(out, length) == 0 ? 0 : ERR_SYS;
    int rc = random(arg, out, length);
    return rc == 0 ? 0 : (rc < 0 ? rc : ERR_SYS);
}

/* ---- Keys ---------------------------------------------------------------- */

/* Decodes base64url (trailing "=" padding tolerated: some clients add it)
 * into exactly `expected` bytes. */
static int webpush_decode_exact(const char *text, uint8_t *out, size_t expected) {
    if (text == NULL) return ERR_INVAL;
    size_t length = strlen(text);
    for (int pad = 0; pad < 2 && length > 0 && text[length - 1] == '='; pad++) length--;
    uint8_t buffer[WEBPUSH_P256_PUBLIC_BYTES + 4];
    if (length > base64_encoded_length(BASE64_URL, sizeof buffer)) return ERR_INVAL;
    size_t decoded = 0;
    if (base64_decode(BASE64_URL, text, length, buffer, sizeof buffer, &decoded) != 0)
        return ERR_INVAL;
    if (decoded != expected) return ERR_INVAL;
    memcpy(out, buffer, expected);
    return 0;
}

/* 0 when `point` is an uncompressed point on P-256 (not the point at infinity). */
static int webpush_point_check(const uint8_t point[WEBPUSH_P256_PUBLIC_BYTES]) {
    if (point[0] != 0x04) return ERR_INVAL;
    mbedtls_ecp_group group;
    mbedtls_ecp_point q;
    mbedtls_ecp_group_init(&group);
    mbedtls_ecp_point_init(&q);
    int rc = mbedtls_ecp_group_load(&group, MBEDTLS_ECP_DP_SECP256R1);
    if (rc == 0) rc = mbedtls_ecp_point_read_binary(&group, &q, point, WEBPUSH_P256_PUBLIC_BYTES);
    if (rc == 0) rc = mbedtls_ecp_check_pubkey(&group, &q);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&group);
    return rc == 0 ? 0 : ERR_INVAL;
}

static const char webpush_message_p256dh_encoding[] =
    "must be 65 bytes in base64url (an uncompressed P-256 point)";
static const char webpush_message_p256dh_curve[] =
    "must be a P-256 public key (a point on the curve)";

int webpush_p256dh_parse(const char *b64url, uint8_t out[WEBPUSH_P256_PUBLIC_BYTES],
                         const char **message) {
    CHECK(out != NULL && message != NULL);
    if (webpush_decode_exact(b64url, out, WEBPUSH_P256_PUBLIC_BYTES) != 0) {
        *message = webpush_message_p256dh_encoding;
        return ERR_INVAL;
    }
    if (webpush_point_check(out) != 0) {
        *message = webpush_message_p256dh_curve;
        return ERR_INVAL;
    }
    return 0;
}

int webpush_auth_parse(const char *b64url, uint8_t out[WEBPUSH_AUTH_BYTES], const char **message) {
    CHECK(out != NULL && message != NULL);
    if (webpush_decode_exact(b64url, out, WEBPUSH_AUTH_BYTES) != 0) {
        *message = "must be 16 bytes in base64url";
        return ERR_INVAL;
    }
    return 0;
}

int webpush_keys_parse(const char *p256dh_b64url, const char *auth_b64url,
                       struct webpush_subscription_keys *out, const char **message) {
    CHECK(out != NULL && message != NULL);
    const char *detail = NULL;
    if (webpush_p256dh_parse(p256dh_b64url, out->p256dh, &detail) != 0) {
        *message = detail == webpush_message_p256dh_curve
                       ? "p256dh must be a P-256 public key"
                       : "p256dh must be 65 bytes in base64url (an uncompressed P-256 point)";
        return ERR_INVAL;
    }
    if (webpush_auth_parse(auth_b64url, out->auth, &detail) != 0) {
        *message = "auth must be 16 bytes in base64url";
        return ERR_INVAL;
    }
    return 0;
}

/* ---- Encryption ---------------------------------------------------------- */

/* The ephemeral key pair of one message: a scalar drawn through the hook
 * (redrawn while outside [1, n-1]) and its public point. */
static int webpush_ephemeral_make(mbedtls_ecp_group *group, mbedtls_mpi *scalar,
                                  mbedtls_ecp_point *point, webpush_random_fn random,
                                  void *random_arg) {
    uint8_t bytes[WEBPUSH_SCALAR_BYTES];
    int rc = ERR_SYS;
    for (int draw = 0; draw < WEBPUSH_SCALAR_DRAWS_MAX; draw++) {
        rc = webpush_draw(random, random_arg, bytes, sizeof bytes);
        if (rc != 0) break;
        if (mbedtls_mpi_read_binary(scalar, bytes, sizeof bytes) != 0) {
            rc = ERR_NOMEM;
            break;
        }
        if (mbedtls_ecp_check_privkey(group, scalar) == 0) {
            rc = mbedtls_ecp_mul(group, point, scalar, &group->G, webpush_os_random, NULL) == 0
                     ? 0
                     : ERR_NOMEM;
            break;
        }
        rc = ERR_SYS; /* out of range: draw again */
    }
    mbedtls_platform_zeroize(bytes, sizeof bytes);
    return rc;
}

/* RFC 8291 section 3.4 and RFC 8188 section 2.2: the content encryption key
 * and nonce from the ECDH secret, the auth secret, both public keys and the
 * salt. */
static int webpush_derive(const uint8_t ecdh_secret[WEBPUSH_SCALAR_BYTES],
                          const uint8_t auth[WEBPUSH_AUTH_BYTES],
                          const uint8_t ua_public[WEBPUSH_P256_PUBLIC_BYTES],
                          const uint8_t as_public[WEBPUSH_P256_PUBLIC_BYTES],
                          const uint8_t salt[WEBPUSH_SALT_BYTES], uint8_t cek[WEBPUSH_CEK_BYTES],
                          uint8_t nonce[WEBPUSH_NONCE_BYTES]) {
    static const char info_label[] = "WebPush: info";           /* sizeof counts the NUL */
    static const char cek_info[] = "Content-Encoding: aes128gcm"; /* ditto */
    static const char nonce_info[] = "Content-Encoding: nonce";   /* ditto */
    const mbedtls_md_info_t *sha256 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    CHECK(sha256 != NULL);
    uint8_t key_info[sizeof info_label + 2 * WEBPUSH_P256_PUBLIC_BYTES];
    memcpy(key_info, info_label, sizeof info_label);
    memcpy(key_info + sizeof info_label, ua_public, WEBPUSH_P256_PUBLIC_BYTES);
    memcpy(key_info + sizeof info_label + WEBPUSH_P256_PUBLIC_BYTES, as_public,
           WEBPUSH_P256_PUBLIC_BYTES);
    uint8_t ikm[WEBPUSH_SCALAR_BYTES];
    int rc = mbedtls_hkdf(sha256, auth, WEBPUSH_AUTH_BYTES, ecdh_secret, WEBPUSH_SCALAR_BYTES,
                          key_info, sizeof key_info, ikm, sizeof ikm);
    if (rc == 0)
        rc = mbedtls_hkdf(sha256, salt, WEBPUSH_SALT_BYTES, ikm, sizeof ikm,
                          (const uint8_t *)cek_info, sizeof cek_info, cek, WEBPUSH_CEK_BYTES);
    if (rc == 0)
        rc = mbedtls_hkdf(sha256, salt, WEBPUSH_SALT_BYTES, ikm, sizeof ikm,
                          (const uint8_t *)nonce_info, sizeof nonce_info, nonce,
                          WEBPUSH_NONCE_BYTES);
    mbedtls_platform_zeroize(ikm, sizeof ikm);
    return rc == 0 ? 0 : ERR_NOMEM;
}

/* ECDH between a fresh ephemeral key and the subscription's key: fills the
 * shared secret and the ephemeral public key (the header's keyid). */
static int webpush_agree(const struct webpush_subscription_keys *keys, webpush_random_fn random,
                         void *random_arg, uint8_t secret[WEBPUSH_SCALAR_BYTES],
                         uint8_t as_public[WEBPUSH_P256_PUBLIC_BYTES]) {
    mbedtls_ecp_group group;
    mbedtls_ecp_point ua_point, as_point;
    mbedtls_mpi scalar, shared;
    mbedtls_ecp_group_init(&group);
    mbedtls_ecp_point_init(&ua_point);
    mbedtls_ecp_point_init(&as_point);
    mbedtls_mpi_init(&scalar);
    mbedtls_mpi_init(&shared);
    int rc = mbedtls_ecp_group_load(&group, MBEDTLS_ECP_DP_SECP256R1) == 0 ? 0 : ERR_NOMEM;
    if (rc == 0 && (mbedtls_ecp_point_read_binary(&group, &ua_point, keys->p256dh,
                                                  WEBPUSH_P256_PUBLIC_BYTES) != 0 ||
                    mbedtls_ecp_check_pubkey(&group, &ua_point) != 0))
        rc = ERR_INVAL;
    if (rc == 0) rc = webpush_ephemeral_make(&group, &scalar, &as_point, random, random_arg);
    if (rc == 0 && mbedtls_ecdh_compute_shared(&group, &shared, &ua_point, &scalar,
                                               webpush_os_random, NULL) != 0)
        rc = ERR_INVAL;
    if (rc == 0 && mbedtls_mpi_write_binary(&shared, secret, WEBPUSH_SCALAR_BYTES) != 0)
        rc = ERR_INVAL;
    size_t written = 0;
    if (rc == 0 && (mbedtls_ecp_point_write_binary(&group, &as_point, MBEDTLS_ECP_PF_UNCOMPRESSED,
                                                   &written, as_public,
                                                   WEBPUSH_P256_PUBLIC_BYTES) != 0 ||
                    written != WEBPUSH_P256_PUBLIC_BYTES))
        rc = ERR_INVAL;
    mbedtls_mpi_free(&shared);
    mbedtls_mpi_free(&scalar);
    mbedtls_ecp_point_free(&as_point);
    mbedtls_ecp_point_free(&ua_point);
    mbedtls_ecp_group_free(&group);
    return rc;
}

/* The RFC 8188 header: salt, record size 4096 (big-endian), key id length
 * 65, key id = the ephemeral public key. */
static void webpush_header_write(uint8_t *out, const uint8_t salt[WEBPUSH_SALT_BYTES],
                                 const uint8_t as_public[WEBPUSH_P256_PUBLIC_BYTES]) {
    memcpy(out, salt, WEBPUSH_SALT_BYTES);
    uint32_t record_size = WEBPUSH_RECORD_BYTES_MAX;
    out[16] = (uint8_t)(record_size >> 24);
    out[17] = (uint8_t)(record_size >> 16);
    out[18] = (uint8_t)(record_size >> 8);
    out[19] = (uint8_t)record_size;
    out[20] = WEBPUSH_P256_PUBLIC_BYTES;
    memcpy(out + 21, as_public, WEBPUSH_P256_PUBLIC_BYTES);
}

/* Seals plaintext || 0x02 in place after the header, the tag behind it. */
static int webpush_seal(const uint8_t cek[WEBPUSH_CEK_BYTES],
                        const uint8_t nonce[WEBPUSH_NONCE_BYTES], const uint8_t *plaintext,
                        size_t plaintext_length, uint8_t *record) {
    if (plaintext_length > 0) memmove(record, plaintext, plaintext_length);
    record[plaintext_length] = WEBPUSH_PADDING_DELIMITER;
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    int rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, cek, WEBPUSH_CEK_BYTES * 8);
    if (rc == 0)
        rc = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, plaintext_length + 1, nonce,
                                       WEBPUSH_NONCE_BYTES, NULL, 0, record, record,
                                       WEBPUSH_TAG_BYTES, record + plaintext_length + 1);
    mbedtls_gcm_free(&gcm);
    return rc == 0 ? 0 : ERR_NOMEM;
}

int webpush_encrypt(const struct webpush_subscription_keys *keys, const uint8_t *plaintext,
                    size_t plaintext_length, webpush_random_fn random, void *random_arg,
                    uint8_t *out, size_t out_size) {
    CHECK(keys != NULL && out != NULL);
    CHECK(plaintext != NULL || plaintext_length == 0);
    if (plaintext_length > WEBPUSH_PAYLOAD_MAX) return ERR_LIMIT;
    size_t total = WEBPUSH_HEADER_BYTES + plaintext_length + 1 + WEBPUSH_TAG_BYTES;
    if (out_size < total) return ERR_LIMIT;
    uint8_t salt[WEBPUSH_SALT_BYTES];
    uint8_t secret[WEBPUSH_SCALAR_BYTES];
    uint8_t as_public[WEBPUSH_P256_PUBLIC_BYTES];
    uint8_t cek[WEBPUSH_CEK_BYTES];
    uint8_t nonce[WEBPUSH_NONCE_BYTES];
    int rc = webpush_draw(random, random_arg, salt, sizeof salt);
    if (rc == 0) rc = webpush_agree(keys, random, random_arg, secret, as_public);
    if (rc == 0) rc = webpush_derive(secret, keys->auth, keys->p256dh, as_public, salt, cek, nonce);
    if (rc == 0) rc = webpush_seal(cek, nonce, plaintext, plaintext_length,
                                   out + WEBPUSH_HEADER_BYTES);
    if (rc == 0) webpush_header_write(out, salt, as_public);
    mbedtls_platform_zeroize(secret, sizeof secret);
    mbedtls_platform_zeroize(cek, sizeof cek);
    mbedtls_platform_zeroize(nonce, sizeof nonce);
    if (rc != 0) return rc;
    CHECK(total <= WEBPUSH_HEADER_BYTES + WEBPUSH_RECORD_BYTES_MAX);
    return (int)total;
}

/* ---- VAPID key file ------------------------------------------------------ */

/* Fills `out` from a parsed key: must be EC on P-256. */
static int webpush_vapid_from_pk(mbedtls_pk_context *pk, struct webpush_vapid *out, char *error,
                                 size_t error_size) {
    mbedtls_ecp_keypair *key = mbedtls_pk_ec(*pk);
    if (key == NULL || mbedtls_ecp_keypair_get_group_id(key) != MBEDTLS_ECP_DP_SECP256R1) {
        snprintf(error, error_size, "the VAPID key must be an EC P-256 private key");
        return ERR_CONFIG;
    }
    size_t length = 0;
    int rc = mbedtls_ecp_write_key_ext(key, &length, out->private_key, sizeof out->private_key);
    if (rc == 0 && length != sizeof out->private_key) rc = -1;
    if (rc == 0) rc = mbedtls_ecp_keypair_calc_public(key, webpush_os_random, NULL);
    if (rc == 0)
        rc = mbedtls_ecp_write_public_key(key, MBEDTLS_ECP_PF_UNCOMPRESSED, &length,
                                          out->public_key, sizeof out->public_key);
    if (rc == 0 && length != sizeof out->public_key) rc = -1;
    if (rc == 0 && base64_encode(BASE64_URL, out->public_key, sizeof out->public_key,
                                 out->public_key_b64url, sizeof out->public_key_b64url,
                                 NULL) != 0)
        rc = -1;
    if (rc != 0) {
        mbedtls_platform_zeroize(out, sizeof *out);
        snprintf(error, error_size, "the VAPID key could not be read (mbedtls -0x%04x)",
                 (unsigned)-rc);
        return ERR_CONFIG;
    }
    return 0;
}

/* Writes all of `data` to `fd`. */
static int webpush_write_all(int fd, const uint8_t *data, size_t length) {
    size_t done = 0;
    while (done < length) {
        ssize_t wrote = write(fd, data + done, length - done);
        if (wrote < 0 && errno == EINTR) continue;
        if (wrote <= 0) return err_from_errno(wrote < 0 ? errno : EIO);
        done += (size_t)wrote;
    }
    return 0;
}

/* fsyncs the directory holding `path`, so a rename into it is durable. */
static int webpush_directory_sync(const char *path) {
    char copy[WEBPUSH_PATH_BYTES_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return err_from_errno(errno);
    int rc = fsync(fd) == 0 ? 0 : err_from_errno(errno);
    close(fd);
    return rc;
}

/* Writes `data` to `path` atomically with mode 0600: a temp file beside it,
 * fsync, rename, fsync of the directory. */
static int webpush_file_write_atomic(const char *path, const uint8_t *data, size_t length,
                                     char *error, size_t error_size) {
    char temp[WEBPUSH_PATH_BYTES_MAX];
    int n = snprintf(temp, sizeof temp, "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof temp) {
        snprintf(error, error_size, "VAPID key path is too long");
        return ERR_LIMIT;
    }
    (void)unlink(temp); /* a leftover from a crash */
    int fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = err_from_errno(errno);
        snprintf(error, error_size, "cannot create %s: %s", temp, strerror(errno));
        return rc;
    }
    int rc = webpush_write_all(fd, data, length);
    if (rc == 0 && fsync(fd) != 0) rc = err_from_errno(errno);
    if (close(fd) != 0 && rc == 0) rc = err_from_errno(errno);
    if (rc == 0 && rename(temp, path) != 0) rc = err_from_errno(errno);
    if (rc == 0) rc = webpush_directory_sync(path);
    if (rc != 0) {
        snprintf(error, error_size, "cannot write the VAPID key to %s: %s", path, err_str(rc));
        (void)unlink(temp);
    }
    return rc;
}

/* Generates a P-256 key, stores it as PEM at `path`, and fills `out`. */
static int webpush_vapid_create(const char *path, struct webpush_vapid *out, char *error,
                                size_t error_size) {
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    unsigned char pem[WEBPUSH_PEM_BYTES_MAX];
    int rc = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (rc == 0)
        rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), webpush_os_random,
                                 NULL);
    if (rc == 0) rc = mbedtls_pk_write_key_pem(&pk, pem, sizeof pem);
    if (rc != 0) {
        snprintf(error, error_size, "cannot generate a VAPID key (mbedtls -0x%04x)",
                 (unsigned)-rc);
        rc = ERR_NOMEM;
    }
    if (rc == 0) rc = webpush_file_write_atomic(path, pem, strlen((char *)pem), error, error_size);
    if (rc == 0) rc = webpush_vapid_from_pk(&pk, out, error, error_size);
    mbedtls_platform_zeroize(pem, sizeof pem);
    mbedtls_pk_free(&pk);
    return rc;
}

int webpush_vapid_load_or_create(const char *path, struct webpush_vapid *out, char *error,
                                 size_t error_size) {
    CHECK(path != NULL && out != NULL && error != NULL && error_size > 0);
    memset(out, 0, sizeof *out);
    error[0] = '\0';
    if (strlen(path) + sizeof ".tmp" > WEBPUSH_PATH_BYTES_MAX) {
        snprintf(error, error_size, "VAPID key path is too long");
        return ERR_LIMIT;
    }
    struct stat info;
    if (stat(path, &info) != 0) {
        if (errno != ENOENT) {
            int rc = err_from_errno(errno);
            snprintf(error, error_size, "cannot read %s: %s", path, strerror(errno));
            return rc;
        }
        return webpush_vapid_create(path, out, error, error_size);
    }
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int rc = mbedtls_pk_parse_keyfile(&pk, path, NULL, webpush_os_random, NULL);
    if (rc != 0) {
        snprintf(error, error_size, "%s is not a PEM private key (mbedtls -0x%04x)", path,
                 (unsigned)-rc);
        rc = ERR_CONFIG;
    }
    if (rc == 0) rc = webpush_vapid_from_pk(&pk, out, error, error_size);
    mbedtls_pk_free(&pk);
    return rc;
}

/* ---- VAPID header -------------------------------------------------------- */

/* A claim value goes into the JWT JSON verbatim: printable ASCII without
 * quote or backslash, so no escaping is ever needed. */
static bool webpush_claim_valid(const char *text) {
    size_t length = strlen(text);
    if (length == 0 || length >= WEBPUSH_CLAIM_BYTES_MAX) return false;
    for (size_t index = 0; index < length; index++) {
        unsigned char c = (unsigned char)text[index];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') return false;
    }
    return true;
}

/* ES256: deterministic ECDSA P-256 over SHA-256(data), as raw r || s. */
static int webpush_es256_sign(const uint8_t private_key[32], const char *data, size_t length,
                              uint8_t signature[64]) {
    uint8_t hash[32];
    if (mbedtls_sha256((const unsigned char *)data, length, hash, 0) != 0) return ERR_NOMEM;
    mbedtls_ecp_group group;
    mbedtls_mpi scalar, r, s;
    mbedtls_ecp_group_init(&group);
    mbedtls_mpi_init(&scalar);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    int rc = mbedtls_ecp_group_load(&group, MBEDTLS_ECP_DP_SECP256R1);
    if (rc == 0) rc = mbedtls_mpi_read_binary(&scalar, private_key, 32);
    if (rc == 0)
        rc = mbedtls_ecdsa_sign_det_ext(&group, &r, &s, &scalar, hash, sizeof hash,
                                        MBEDTLS_MD_SHA256, webpush_os_random, NULL);
    if (rc == 0) rc = mbedtls_mpi_write_binary(&r, signature, 32);
    if (rc == 0) rc = mbedtls_mpi_write_binary(&s, signature + 32, 32);
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&scalar);
    mbedtls_ecp_group_free(&group);
    return rc == 0 ? 0 : ERR_INVAL;
}

/* Appends one character to `out` at `*used`, keeping room for the NUL. */
static int webpush_append_char(char *out, size_t out_size, size_t *used, char c) {
    if (*used + 1 >= out_size) return ERR_LIMIT;
    out[(*used)++] = c;
    out[*used] = '\0';
    return 0;
}

/* Appends base64url of `data` to `out` at `*used`. */
static int webpush_append_b64url(char *out, size_t out_size, size_t *used, const void *data,
                                 size_t length) {
    size_t written = 0;
    int rc = base64_encode(BASE64_URL, data, length, out + *used, out_size - *used, &written);
    if (rc != 0) return ERR_LIMIT;
    *used += written;
    return 0;
}

int webpush_vapid_jwt(const struct webpush_vapid *vapid, const char *endpoint_origin,
                      const char *subject, int64_t now_s, char *out, size_t out_size) {
    CHECK(vapid != NULL && endpoint_origin != NULL && out != NULL);
    static const char header[] = "{\"typ\":\"JWT\",\"alg\":\"ES256\"}";
    if (!webpush_claim_valid(endpoint_origin)) return ERR_INVAL;
    if (subject != NULL && subject[0] != '\0' && !webpush_claim_valid(subject)) return ERR_INVAL;
    if (now_s < 0 || now_s > INT64_C(253402300799)) return ERR_RANGE;
    char payload[3 * WEBPUSH_CLAIM_BYTES_MAX];
    int n = subject != NULL && subject[0] != '\0'
                ? snprintf(payload, sizeof payload, "{\"aud\":\"%s\",\"exp\":%" PRId64
                                                    ",\"sub\":\"%s\"}",
                           endpoint_origin, now_s + WEBPUSH_VAPID_LIFETIME_S, subject)
                : snprintf(payload, sizeof payload, "{\"aud\":\"%s\",\"exp\":%" PRId64 "}",
                           endpoint_origin, now_s + WEBPUSH_VAPID_LIFETIME_S);
    CHECK(n > 0 && (size_t)n < sizeof payload);
    size_t used = 0;
    int rc = webpush_append_b64url(out, out_size, &used, header, sizeof header - 1);
    if (rc == 0) rc = webpush_append_char(out, out_size, &used, '.');
    if (rc == 0) rc = webpush_append_b64url(out, out_size, &used, payload, (size_t)n);
    uint8_t signature[64];
    if (rc == 0) rc = webpush_es256_sign(vapid->private_key, out, used, signature);
    if (rc == 0) rc = webpush_append_char(out, out_size, &used, '.');
    if (rc == 0) rc = webpush_append_b64url(out, out_size, &used, signature, sizeof signature);
    if (rc != 0 && out_size > 0) out[0] = '\0';
    return rc;
}

int webpush_vapid_header(const struct webpush_vapid *vapid, const char *endpoint_origin,
                         const char *subject, int64_t now_s, char *out, size_t out_size) {
    CHECK(vapid != NULL && endpoint_origin != NULL && out != NULL);
    char jwt[WEBPUSH_JWT_BYTES_MAX];
    int rc = webpush_vapid_jwt(vapid, endpoint_origin, subject, now_s, jwt, sizeof jwt);
    if (rc != 0) return rc;
    int n = snprintf(out, out_size, "vapid t=%s, k=%s", jwt, vapid->public_key_b64url);
    if (n < 0 || (size_t)n >= out_size) {
        if (out_size > 0) out[0] = '\0';
        return ERR_LIMIT;
    }
    return 0;
}
