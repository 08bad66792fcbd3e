/*
 * notify_channels.c - e-mail, Web Push and webhook deliveries of the notifier
 * (see notify_channels.h for what counts as sent, retried or failed).
 */
#include "notify_channels.h"

#include "../base/buf.h"
#include "../base/check.h"
#include "../base/clock.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../config/config.h"
#include "../store/db.h"
#include "httpc.h"
#include "push_store.h"
#include "smtp.h"
#include "webhook.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char notify_no_trust[] =
    "no CA certificates for outbound TLS (set notify.ca_file or install a CA bundle)";

/* ---- e-mail ----------------------------------------------------------------- */

static void notify_email_done(void *arg, int status, bool permanent, const char *error) {
    struct notifier_attempt *attempt = arg;
    if (status == 0) notifier_attempt_done(attempt, NOTIFIER_SENT, NULL);
    else notifier_attempt_done(attempt, permanent ? NOTIFIER_PERMANENT : NOTIFIER_RETRY, error);
}

static int notify_email_start(void *arg, struct notifier_attempt *attempt, bool *permanent,
                              char *error, size_t error_size) {
    struct notify_channels *channels = arg;
    const struct config *config = channels->config;
    if (config->smtp_host == NULL || config->smtp_host[0] == '\0') {
        *permanent = true;
        snprintf(error, error_size, "e-mail is not configured on this server (smtp.host is empty)");
        return ERR_CONFIG;
    }
    if (config->smtp_starttls && channels->trust == NULL) {
        snprintf(error, error_size, "%s", notify_no_trust);
        return ERR_TLS;
    }
    struct buf subject, body;
    buf_init(&subject, SMTP_SUBJECT_BYTES_MAX);
    buf_init(&body, SMTP_BODY_BYTES_MAX);
    int rc = notify_render_email(&attempt->reminder, &subject, &body);
    char message_id[NOTIFY_MESSAGE_ID_BYTES];
    notify_message_id(attempt->delivery.key, message_id);
    struct smtp_relay relay = {
        .host = config->smtp_host,
        .port = (uint16_t)config->smtp_port,
        .starttls = config->smtp_starttls != 0,
        .username = config->smtp_username,
        .password = channels->smtp_password,
        .from = config->smtp_from,
        .timeout_ms = config->notify_timeout_ms,
        .clock = channels->clock,
    };
    struct smtp_message message = {
        .to = attempt->settings.email_address,
        .subject = subject.data != NULL ? subject.data : "",
        .body = body.data != NULL ? body.data : "",
        .message_id = message_id,
    };
    if (rc == 0) {
        rc = smtp_send(channels->loop, channels->trust, &relay, &message, notify_email_done,
                       attempt);
        if (rc == ERR_INVAL) *permanent = true;
    }
    if (rc != 0) snprintf(error, error_size, "e-mail: %s", err_str(rc));
    buf_free(&subject);
    buf_free(&body);
    return rc;
}

/* ---- Web Push ------------------------------------------------------------------- */

static int notify_subscriptions(void *arg, const char *user_id, char (*ids)[UUID_STRING_BYTES],
                                size_t capacity) {
    struct notify_channels *channels = arg;
    struct push_subscription list[PUSH_SUBSCRIPTIONS_PER_USER_MAX];
    size_t count = 0;
    if (capacity > PUSH_SUBSCRIPTIONS_PER_USER_MAX) capacity = PUSH_SUBSCRIPTIONS_PER_USER_MAX;
    int rc = push_store_list(channels->db, user_id, list, capacity, &count);
    if (rc != 0) return rc;
    for (size_t index = 0; index < count; index++) {
        snprintf(ids[index], UUID_STRING_BYTES, "%s", list[index].id);
    }
    return (int)count;
}

static void notify_unsubscribed(void *arg, const struct command_result *result) {
    (void)arg;
    if (result->status >= 300) {
        LOG_WARN("notifier", "cannot remove a gone push subscription", "status=%d",
                 result->status);
    }
}

static void notify_push_done(void *arg, int status, int http_status, const char *body,
                             size_t body_length, const char *error) {
    struct notifier_attempt *attempt = arg;
    (void)body;
    (void)body_length;
    char sentence[NOTIFY_ERROR_BYTES];
    if (status != 0) {
        notifier_attempt_done(attempt, NOTIFIER_RETRY, error);
        return;
    }
    if (http_status == 200 || http_status == 201 || http_status == 202) {
        notifier_attempt_done(attempt, NOTIFIER_SENT, NULL);
        return;
    }
    if (http_status == 404 || http_status == 410) {
        /* The subscription expired or was unsubscribed: it never works again. */
        LOG_INFO("notifier", "push subscription gone", "subscription=%s status=%d",
                 attempt->delivery.subscription_id, http_status);
        struct notify_channels *channels = attempt->channel_arg;
        if (attempt->notifier != NULL && channels->service != NULL) {
            push_store_unsubscribe(channels->service, attempt->delivery.user_id,
                                   attempt->delivery.subscription_id, "notifier",
                                   notify_unsubscribed, NULL);
        }
        snprintf(sentence, sizeof sentence, "push service answered %d: the subscription is gone",
                 http_status);
        notifier_attempt_done(attempt, NOTIFIER_PERMANENT, sentence);
        return;
    }
    snprintf(sentence, sizeof sentence, "push service answered %d", http_status);
    bool retry = http_status == 429 || http_status >= 500;
    notifier_attempt_done(attempt, retry ? NOTIFIER_RETRY : NOTIFIER_PERMANENT, sentence);
}

/* Encrypts the payload for the subscription and signs the VAPID header. */
static int notify_push_prepare(struct notify_channels *channels,
                               const struct notifier_attempt *attempt,
                               const struct push_subscription *subscription,
                               const struct httpc_url *url, uint8_t *record, size_t record_size,
                               char *authorization, size_t authorization_size,
                               const char **message) {
    struct webpush_subscription_keys keys;
    int rc = webpush_keys_parse(subscription->p256dh, subscription->auth, &keys, message);
    if (rc != 0) return rc;
    struct buf payload;
    buf_init(&payload, NOTIFY_PUSH_PAYLOAD_BYTES_MAX);
    rc = notify_render_push(&attempt->reminder, &payload);
    int written = rc != 0 ? rc
                          : webpush_encrypt(&keys, (const uint8_t *)payload.data, payload.length,
                                            NULL, NULL, record, record_size);
    buf_free(&payload);
    if (written < 0) return written;
    char origin[300];
    rc = httpc_url_origin(url, origin, sizeof origin);
    int64_t now_s = channels->clock->wall_ns(channels->clock) / 1000000000;
    if (rc == 0) {
        rc = webpush_vapid_header(channels->vapid, origin, channels->config->push_subject, now_s,
                                  authorization, authorization_size);
    }
    return rc != 0 ? rc : written;
}

static int notify_push_start(void *arg, struct notifier_attempt *attempt, bool *permanent,
                             char *error, size_t error_size) {
    struct notify_channels *channels = arg;
    struct push_subscription subscription;
    const char *message = NULL;
    struct httpc_url url;
    int rc = channels->vapid != NULL ? 0 : ERR_CONFIG;
    if (rc == 0) {
        rc = push_store_get(channels->db, attempt->delivery.user_id,
                            attempt->delivery.subscription_id, &subscription);
    }
    if (rc == 0) {
        rc = httpc_url_parse(subscription.endpoint, strlen(subscription.endpoint),
                             channels->config->notify_allow_http != 0, &url, &message);
    }
    if (rc == 0 && url.tls && channels->trust == NULL) {
        snprintf(error, error_size, "%s", notify_no_trust);
        return ERR_TLS;
    }
    uint8_t record[WEBPUSH_RECORD_BYTES_MAX];
    char authorization[WEBPUSH_JWT_BYTES_MAX + 128];
    int length = rc;
    if (rc == 0) {
        length = notify_push_prepare(channels, attempt, &subscription, &url, record, sizeof record,
                                     authorization, sizeof authorization, &message);
    }
    if (length < 0) {
        *permanent = length != ERR_NOMEM;
        snprintf(error, error_size, "web push: %s",
                 length == ERR_NOTFOUND ? "the subscription was removed"
                 : length == ERR_CONFIG ? "no VAPID key on this server"
                 : message != NULL      ? message
                                        : err_str(length));
        return length;
    }
    const struct httpc_header headers[] = {
        {"Content-Encoding", "aes128gcm"},
        {"TTL", "86400"},
        {"Urgency", "high"},
        {"Authorization", authorization},
    };
    struct httpc_request request = {
        .url = &url,
        .headers = headers,
        .header_count = sizeof headers / sizeof headers[0],
        .content_type = "application/octet-stream",
        .body = record,
        .body_length = (size_t)length,
        .timeout_ms = channels->config->notify_timeout_ms,
    };
    rc = httpc_post(channels->loop, channels->trust, &request, notify_push_done, attempt);
    if (rc != 0) snprintf(error, error_size, "web push: %s", err_str(rc));
    return rc;
}

/* ---- webhooks ------------------------------------------------------------------- */

static void notify_webhook_done(void *arg, int status, int http_status, const char *body,
                                size_t body_length, const char *error) {
    struct notifier_attempt *attempt = arg;
    (void)body;
    (void)body_length;
    if (status != 0) {
        notifier_attempt_done(attempt, NOTIFIER_RETRY, error);
    } else if (http_status >= 200 && http_status < 300) {
        notifier_attempt_done(attempt, NOTIFIER_SENT, NULL);
    } else {
        char sentence[64];
        snprintf(sentence, sizeof sentence, "webhook answered %d", http_status);
        notifier_attempt_done(attempt, NOTIFIER_RETRY, sentence);
    }
}

static int notify_webhook_start(void *arg, struct notifier_attempt *attempt, bool *permanent,
                                char *error, size_t error_size) {
    struct notify_channels *channels = arg;
    const struct notify_settings *settings = &attempt->settings;
    struct httpc_url url;
    const char *message = NULL;
    int rc = httpc_url_parse(settings->webhook_url, strlen(settings->webhook_url),
                             channels->config->notify_allow_http != 0, &url, &message);
    if (rc != 0) {
        *permanent = true;
        snprintf(error, error_size, "webhook URL %s", message != NULL ? message : "is invalid");
        return rc;
    }
    if (url.tls && channels->trust == NULL) {
        snprintf(error, error_size, "%s", notify_no_trust);
        return ERR_TLS;
    }
    char secret[NOTIFY_WEBHOOK_SECRET_BYTES];
    char signature[WEBHOOK_SIGNATURE_BYTES];
    char timestamp[24];
    int64_t now_s = channels->clock->wall_ns(channels->clock) / 1000000000;
    snprintf(timestamp, sizeof timestamp, "%lld", (long long)now_s);
    struct buf body;
    buf_init(&body, HTTPC_REQUEST_BODY_BYTES_MAX);
    rc = notify_render_webhook(&attempt->reminder, attempt->delivery.key, &body);
    if (rc == 0) {
        rc = notify_webhook_secret(channels->webhook_key, attempt->delivery.user_id,
                                   settings->webhook_secret_version, secret);
    }
    if (rc == 0) rc = webhook_sign(secret, strlen(secret), now_s, body.data, body.length, signature);
    memset(secret, 0, sizeof secret);
    const struct httpc_header headers[] = {
        {"Docket-Delivery", attempt->delivery.key},
        {"Docket-Timestamp", timestamp},
        {"Docket-Signature", signature},
    };
    struct httpc_request request = {
        .url = &url,
        .headers = headers,
        .header_count = sizeof headers / sizeof headers[0],
        .content_type = "application/json",
        .body = body.data,
        .body_length = body.length,
        .timeout_ms = channels->config->notify_timeout_ms,
    };
    if (rc == 0) rc = httpc_post(channels->loop, channels->trust, &request, notify_webhook_done,
                                 attempt);
    if (rc != 0) snprintf(error, error_size, "webhook: %s", err_str(rc));
    buf_free(&body);
    return rc;
}

/* ---- setup ------------------------------------------------------------------------ */

static int notify_password_read(const char *path, char *out, size_t out_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ERR_IO;
    ssize_t got = read(fd, out, out_size);
    close(fd);
    if (got < 0) return ERR_IO;
    if ((size_t)got >= out_size) return ERR_LIMIT;
    size_t length = (size_t)got;
    while (length > 0 && (out[length - 1] == '\n' || out[length - 1] == '\r')) length--;
    out[length] = '\0';
    return 0;
}

int notify_channels_init(struct notify_channels *channels, const struct config *config,
                         char *error, size_t error_size) {
    CHECK(channels != NULL && config != NULL);
    channels->config = config;
    if (config->smtp_password_file != NULL && config->smtp_password_file[0] != '\0') {
        int rc = notify_password_read(config->smtp_password_file, channels->smtp_password,
                                      sizeof channels->smtp_password);
        if (rc != 0) {
            snprintf(error, error_size, "cannot read smtp.password_file: %s", err_str(rc));
            return rc;
        }
    }
    int rc = notify_webhook_key_load(config->data_dir, channels->webhook_key);
    if (rc != 0) snprintf(error, error_size, "cannot read or create webhook-key: %s", err_str(rc));
    return rc;
}

void notify_channels_bind(struct notify_channels *channels, struct notifier_options *options) {
    options->channels[NOTIFY_EMAIL] = (struct notifier_channel){notify_email_start, channels};
    options->channels[NOTIFY_WEBPUSH] = (struct notifier_channel){notify_push_start, channels};
    options->channels[NOTIFY_WEBHOOK] = (struct notifier_channel){notify_webhook_start, channels};
    options->subscriptions = notify_subscriptions;
    options->subscriptions_arg = channels;
}
