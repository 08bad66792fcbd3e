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

/* Writes "v1=<hex>" into `out`. 0 or a negative code. */
int webhook_sign(const char *secret, size_t secret_length, int64_t timestamp_s, const char *body,
                 size_t body_length, char out[WEBHOOK_SIGNATURE_BYTES]);

#endif
