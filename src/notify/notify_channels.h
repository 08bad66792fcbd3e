/*
 * notify_channels.h - the notifier's network channels bound to their
 * clients: e-mail through smtp.h, Web Push through webpush.h + httpc.h, and
 * webhooks through webhook.h + httpc.h. Each start function renders the
 * message (notify_message.h), starts the request on the loop and ends the
 * attempt with notifier_attempt_done:
 *
 *   email    250 after DATA = sent; a 5xx reply = failed for good; else retry.
 *   webpush  200/201/202 = sent; 404/410 = the subscription is gone: it is
 *            removed and the delivery fails for good; 429, 5xx and network
 *            errors = retry; other 4xx = failed for good.
 *   webhook  2xx = sent; anything else (or no answer) = retry.
 *
 * Without a trust store (no CA bundle could be loaded at start) TLS
 * deliveries fail with a sentence saying so, instead of the server refusing
 * to start.
 */
#ifndef DOCKET_NOTIFY_NOTIFY_CHANNELS_H
#define DOCKET_NOTIFY_NOTIFY_CHANNELS_H

#include "notifier.h"
#include "notify_settings.h"
#include "webpush.h"

#include <stdbool.h>
#include <stdint.h>

struct uv_loop_s;
struct config;
struct outbound_trust;
struct db;
struct clock;
struct service;

/* Longest SMTP password read from smtp.password_file. */
#define NOTIFY_SMTP_PASSWORD_BYTES_MAX 255

struct notify_channels {
    struct uv_loop_s *loop;                          /* where requests run */
    struct outbound_trust *trust;                    /* CA store; NULL: TLS deliveries fail */
    const struct config *config;                     /* smtp.*, notify.*, push.subject */
    struct clock *clock;                             /* webhook timestamps, VAPID expiry */
    char smtp_password[NOTIFY_SMTP_PASSWORD_BYTES_MAX + 1]; /* from smtp.password_file */
    uint8_t webhook_key[NOTIFY_WEBHOOK_KEY_BYTES];   /* webhook secrets derive from it */
    const struct webpush_vapid *vapid;               /* the server's VAPID key (NULL: no push) */
    struct db *db;                                   /* docket.db: push subscriptions */
    struct service *service;                         /* removes gone push subscriptions */
};

/* Reads the SMTP password file and the webhook key (created when missing).
 * 0 or a negative code with a sentence in `error`. */
int notify_channels_init(struct notify_channels *channels, const struct config *config,
                         char *error, size_t error_size);

/* Fills options->channels (email, webpush, webhook) and the subscription lister. */
void notify_channels_bind(struct notify_channels *channels, struct notifier_options *options);

#endif
