/*
 * retry.h - the retry policy every consumer shares (PRODUCT.md E5): a failed
 * attempt is retried after 1 s, 5 s and 25 s (configurable:
 * notify.retry_delays_ms), and after the last retry fails the item goes to
 * the dead-letter queue (deadletter.h) with its error.
 *
 * A retry queue holds the items of one consumer that are waiting for their
 * next attempt, on the loop, bounded (RETRY_ITEMS_MAX). The consumer keeps
 * the item's durable state itself (the notifier in its deliveries table), so
 * after a restart it re-adds what was waiting, with the attempt count it had.
 * Time is passed in (retry_next_due / retry_run) so tests use a fake clock;
 * retry_uv.c binds a queue to one uv_timer.
 */
#ifndef DOCKET_CONSUMER_RETRY_H
#define DOCKET_CONSUMER_RETRY_H

#include <stddef.h>
#include <stdint.h>

#define RETRY_DELAYS_MAX 8
#define RETRY_ITEMS_MAX 65536

struct retry_policy {
    int64_t delays_ms[RETRY_DELAYS_MAX]; /* wait before retry 1, 2, ... */
    size_t delay_count;                  /* retries before the dead-letter queue */
};

/* Parses "1000,5000,25000" (1..RETRY_DELAYS_MAX non-negative integers).
 * 0 or ERR_INVAL. */
int retry_policy_parse(const char *text, struct retry_policy *out);

/* What to do after attempt number `attempts` (1 = the first try) failed:
 * >= 0 wait that many ms and try again; -1 give up (dead-letter it). */
int64_t retry_policy_delay_ms(const struct retry_policy *policy, int attempts);

#endif
