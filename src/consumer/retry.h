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

/* ---- Retry queue ---------------------------------------------------------
 *
 * Items waiting for their next attempt, fired in due order (ties in the
 * order they were added). Times are milliseconds on one clock the caller
 * picks (retry_uv uses the loop's uv_now). The queue does not own `arg`.
 * Ids are never 0 and are not reused while the queue is open. */
struct retry_queue;

/* Called by retry_run for an item that came due; the item is already out of
 * the queue, so the callback may add it again (a new id) or add others. */
typedef void (*retry_fire_fn)(void *context, uint64_t id, void *arg);

/* `capacity` 1..RETRY_ITEMS_MAX items; memory grows with use up to it.
 * 0 or ERR_INVAL, ERR_NOMEM. */
int retry_queue_open(struct retry_queue **out, size_t capacity, retry_fire_fn fire,
                     void *context);
void retry_queue_close(struct retry_queue *queue);

/* Adds an item due at `due_ms`; *id_out (may be NULL) names it.
 * 0, ERR_LIMIT when `capacity` items wait, ERR_NOMEM. */
int retry_add(struct retry_queue *queue, int64_t due_ms, void *arg, uint64_t *id_out);

/* Removes an item before it fires. 0 or ERR_NOTFOUND (fired or unknown). */
int retry_cancel(struct retry_queue *queue, uint64_t id);

size_t retry_count(const struct retry_queue *queue);

/* The earliest due time, or -1 when the queue is empty. */
int64_t retry_next_due(const struct retry_queue *queue);

/* Fires every item due at or before `now_ms`, earliest first; items added by
 * the callbacks fire in this call only if due and within the bound (at most
 * as many fires as items were waiting when the call began). Returns the
 * number fired. */
size_t retry_run(struct retry_queue *queue, int64_t now_ms);

#endif
