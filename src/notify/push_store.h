/*
 * push_store.h - Web Push subscriptions: reads of the push_subscriptions
 * projection (docket.db) and the events that change it.
 *
 * The event log is the source of truth. A subscription exists because a
 * "push.subscribed" event was appended (subject = the subscription id, data
 * {"id","endpoint","keys":{"p256dh","auth"},"created_at"}) and ends with
 * "push.unsubscribed" (data {"id"}); the projection (tasks/projection.c)
 * applies them into push_subscriptions(id, user_id, endpoint, p256dh, auth,
 * created_ns) with UNIQUE(user_id, endpoint). Both events go through the
 * command layer's COMMAND_EVENT_APPEND, so they are durable and applied
 * before anyone is told; the notifier removes a subscription its push
 * service calls gone (404/410) with push_store_unsubscribe().
 */
#ifndef DOCKET_NOTIFY_PUSH_STORE_H
#define DOCKET_NOTIFY_PUSH_STORE_H

#include "../base/uuid.h"
#include "../tasks/service.h"
#include "httpc.h"

#include <stddef.h>
#include <stdint.h>

struct db;

/* Subscriptions one user may have (a browser profile makes one each). */
#define PUSH_SUBSCRIPTIONS_PER_USER_MAX 16
/* Stored key texts: canonical base64url without padding, plus the NUL. */
#define PUSH_P256DH_TEXT_BYTES 88 /* 65 bytes -> 87 characters */
#define PUSH_AUTH_TEXT_BYTES 23   /* 16 bytes -> 22 characters */

/* One stored subscription. */
struct push_subscription {
    char id[UUID_STRING_BYTES];              /* UUID v7, the push.subscribed subject */
    char user_id[UUID_STRING_BYTES];         /* owner */
    char endpoint[HTTPC_URL_BYTES_MAX];      /* the push service URL (https) */
    char p256dh[PUSH_P256DH_TEXT_BYTES];     /* receiver public key, base64url */
    char auth[PUSH_AUTH_TEXT_BYTES];         /* auth secret, base64url */
    int64_t created_ns;                      /* created_at, Unix ns */
};

/* The user's subscriptions, oldest first, at most `capacity`. 0 or a
 * negative code (ERR_CORRUPT for a row that does not fit). */
int push_store_list(struct db *db, const char *user_id, struct push_subscription *out,
                    size_t capacity, size_t *count);

/* One of the user's subscriptions by id, or by endpoint. ERR_NOTFOUND when
 * the user has none such (another user's id is not found either). */
int push_store_get(struct db *db, const char *user_id, const char *id,
                   struct push_subscription *out);
int push_store_find_endpoint(struct db *db, const char *user_id, const char *endpoint,
                             struct push_subscription *out);

/* How many subscriptions the user has; < 0 on error. */
int64_t push_store_count(struct db *db, const char *user_id);

/* Appends "push.unsubscribed" for the user's subscription `id` through the
 * command layer (actor e.g. "notifier" or the user id). `done` fires once
 * with the command's result (201 when durable and applied). A subscription
 * already gone is harmless: the projection deletes nothing. */
void push_store_unsubscribe(struct service *service, const char *user_id, const char *id,
                            const char *actor, command_done done, void *arg);

#endif
