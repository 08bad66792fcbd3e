/*
 * webhook.h - signing of webhook deliveries. A receiver verifies a delivery
 * by recomputing HMAC-SHA256(secret, "<timestamp>.<body>") and comparing it
 * with the signature header in constant time, and rejects timestamps far
 * from its clock (replay protection). Headers sent with each POST:
 *   Docket-Delivery: <delivery key>       (the same on every retry: dedupe on it)
 *   Docket-Timestamp: <unix seconds>
 *   Docket-Signature: v1=<lowercase hex HMAC-SHA256>
 */
#ifndef DOCKET_NOTIFY_WEBHOOK_H
#define DOCKET_NOTIFY_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_SIGNATURE_BYTES (3 + 64 + 1) /* "v1=" + hex + NUL */
#define WEBHOOK_SECRET_BYTES_MIN 16
#define WEBHOOK_SECRET_BYTES_MAX 256

/* Writes "v1=<hex>" into `out`. 0 or a negative code (ERR_INVAL for a
 * secret outside WEBHOOK_SECRET_BYTES_MIN..MAX; `out` is "" then). */
int webhook_sign(const char *secret, size_t secret_length, int64_t timestamp_s, const char *body,
                 size_t body_length, char out[WEBHOOK_SIGNATURE_BYTES]);

/* HMAC-SHA256 of the concatenation of `part_count` parts (the MAC under
 * webhook_sign(), exposed so tests can check it against RFC 4231). */
int webhook_hmac_sha256(const void *key, size_t key_length, const void *const *parts,
                        const size_t *part_lengths, size_t part_count, uint8_t out[32]);

#endif
