/*
 * webpush.h - Web Push message encryption (RFC 8291, "aes128gcm" content
 * coding of RFC 8188) and VAPID (RFC 8292) for Docket's push channel. Pure
 * functions on mbedtls (ECDH P-256, HKDF-SHA-256, AES-128-GCM, ECDSA P-256
 * with SHA-256); no I/O except webpush_vapid_load_or_create().
 *
 * Keys travel base64url without padding, as browsers give them
 * (PushSubscription.getKey("p256dh") is the 65-byte uncompressed point,
 * "auth" 16 bytes).
 */
#ifndef DOCKET_NOTIFY_WEBPUSH_H
#define DOCKET_NOTIFY_WEBPUSH_H

#include <stddef.h>
#include <stdint.h>

#define WEBPUSH_P256_PUBLIC_BYTES 65 /* uncompressed point 0x04 || X || Y */
#define WEBPUSH_AUTH_BYTES 16
#define WEBPUSH_PAYLOAD_MAX 3993     /* 4096 record - 86 header - 16 tag - 1 delimiter */
#define WEBPUSH_RECORD_BYTES_MAX 4096
#define WEBPUSH_JWT_BYTES_MAX 1024

/* A subscription's receiver keys, decoded. */
struct webpush_subscription_keys {
    uint8_t p256dh[WEBPUSH_P256_PUBLIC_BYTES]; /* user agent public key */
    uint8_t auth[WEBPUSH_AUTH_BYTES];          /* auth secret */
};

/* Decodes and checks base64url keys (the point must be on the curve).
 * 0 or ERR_INVAL with `message` ("p256dh must be a P-256 public key"). */
int webpush_keys_parse(const char *p256dh_b64url, const char *auth_b64url,
                       struct webpush_subscription_keys *out, const char **message);

/* The two halves of webpush_keys_parse(), for validation that names the
 * field: `message` is a phrase without the field name ("must be 16 bytes in
 * base64url"). Trailing "=" padding is tolerated. 0 or ERR_INVAL. */
int webpush_p256dh_parse(const char *b64url, uint8_t out[WEBPUSH_P256_PUBLIC_BYTES],
                         const char **message);
int webpush_auth_parse(const char *b64url, uint8_t out[WEBPUSH_AUTH_BYTES], const char **message);

/* Encrypts `plaintext` (<= WEBPUSH_PAYLOAD_MAX) for the subscription into
 * `out` (one aes128gcm record: salt(16) rs(4)=4096 idlen(1)=65 keyid(65 =
 * the ephemeral public key) ciphertext+tag). A fresh ephemeral key and salt
 * each call (from `random`, which tests may fix: NULL = the OS source). Returns
 * bytes written or a negative code.
 * The hook is asked first for the 16-byte salt, then for the 32-byte
 * ephemeral private scalar (big-endian; asked again while it is not in
 * [1, n-1]). The output is WEBPUSH_ENCRYPTED_BYTES(plaintext_length) bytes;
 * ERR_LIMIT when the payload or `out_size` is too large or too small. */
#define WEBPUSH_ENCRYPTED_BYTES(plaintext_length) (86 + (plaintext_length) + 1 + 16)
typedef int (*webpush_random_fn)(void *arg, uint8_t *out, size_t length);
int webpush_encrypt(const struct webpush_subscription_keys *keys, const uint8_t *plaintext,
                    size_t plaintext_length, webpush_random_fn random, void *random_arg,
                    uint8_t *out, size_t out_size);

/* The server's VAPID key pair (P-256). */
struct webpush_vapid {
    uint8_t private_key[32];                        /* scalar d */
    uint8_t public_key[WEBPUSH_P256_PUBLIC_BYTES];  /* uncompressed point */
    char public_key_b64url[90];                     /* the applicationServerKey for browsers */
};

/* Reads `path` (PEM "EC PRIVATE KEY" or PKCS#8) or, when it does not exist,
 * generates a key pair and writes it there with mode 0600 (atomically: temp
 * file, fsync, rename). 0 or a negative code with `error` filled. */
int webpush_vapid_load_or_create(const char *path, struct webpush_vapid *out, char *error,
                                 size_t error_size);

/* The Authorization header value "vapid t=<JWT>, k=<public key b64url>" for a
 * push endpoint: JWT ES256 {"typ":"JWT","alg":"ES256"} . {"aud":"<scheme://host[:port]
 * of endpoint>","exp":now+12h,"sub":subject}. Returns 0 or a negative code. */
int webpush_vapid_header(const struct webpush_vapid *vapid, const char *endpoint_origin,
                         const char *subject, int64_t now_s, char *out, size_t out_size);

/* The JWT alone (what webpush_vapid_header() puts after "t="). `subject`
 * NULL or "" leaves out "sub". Claims must be printable ASCII without '"'
 * or '\\' (ERR_INVAL). The signature is the raw 64-byte r || s of RFC 7518
 * section 3.4, deterministic (RFC 6979). */
int webpush_vapid_jwt(const struct webpush_vapid *vapid, const char *endpoint_origin,
                      const char *subject, int64_t now_s, char *out, size_t out_size);

#endif
