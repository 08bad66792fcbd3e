/*
 * notify_settings.h - a user's notification channel settings (PRODUCT.md N3):
 * which channels deliver reminders and where to. They live in the user's
 * settings object (users.settings, changed through PATCH /api/v1/me) under
 * the member "notifications":
 *
 *   {"websocket": {"enabled": bool},                          default on
 *    "email":     {"enabled": bool, "address": "a@b.example"}, default off
 *    "webpush":   {"enabled": bool},                          default off
 *    "webhook":   {"enabled": bool, "url": "https://...", "secret_version": n >= 1}}
 *
 * A patch is merged member by member into the settings in force and checked
 * precisely: every bad value is an error naming its dotted path
 * ("notifications.email.address"). The webhook secret is never stored: it is
 * derived from a server key (<data_dir>/webhook-key, 32 random bytes, mode
 * 0600) as base64url(HMAC-SHA256(key, "<user id>:<secret_version>")), so
 * bumping secret_version rotates it and no event or log line ever holds it.
 */
#ifndef DOCKET_NOTIFY_NOTIFY_SETTINGS_H
#define DOCKET_NOTIFY_NOTIFY_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct task_errors;
struct yyjson_val;
struct yyjson_mut_doc;
struct yyjson_mut_val;

/* RFC 5321 section 4.5.3.1.3: a path holds at most 256 octets with its
 * angle brackets, so an address at most 254. */
#define NOTIFY_EMAIL_BYTES_MAX 254
/* Webhook URLs; the whole settings object must fit users.settings (2 KiB). */
#define NOTIFY_URL_BYTES_MAX 1024
/* Rotations of the webhook secret a user may make. */
#define NOTIFY_SECRET_VERSION_MAX 1000000
/* The server key the webhook secrets derive from. */
#define NOTIFY_WEBHOOK_KEY_BYTES 32
/* base64url of a SHA-256 HMAC (43 characters) and its NUL. */
#define NOTIFY_WEBHOOK_SECRET_BYTES 44

struct notify_settings {
    bool websocket_enabled;                         /* in-app over WebSocket */
    bool email_enabled;                             /* e-mail through the SMTP relay */
    char email_address[NOTIFY_EMAIL_BYTES_MAX + 1]; /* recipient ("" = none) */
    bool webpush_enabled;                           /* every registered push subscription */
    bool webhook_enabled;                           /* signed HTTPS POST */
    char webhook_url[NOTIFY_URL_BYTES_MAX + 1];     /* where to ("" = none) */
    int64_t webhook_secret_version;                 /* n in the secret derivation, >= 1 */
};

/* Websocket on, everything else off, secret version 1. */
void notify_settings_default(struct notify_settings *out);

/* The effective settings from a user's stored settings object text (NULL or
 * "" = defaults). Stored values were checked when written; anything
 * unreadable falls back to its default. */
void notify_settings_from_user(const char *settings_json, size_t length,
                               struct notify_settings *out);

/* Merges `patch` (the value of "notifications" in a PATCH body) into
 * `settings` after checking it. Errors go to `errors` with dotted paths;
 * with any error `settings` is left unchanged. `allow_http` admits http://
 * webhook URLs (notify.allow_http, loopback testing). Returns 0 or ERR_INVAL. */
int notify_settings_apply(struct notify_settings *settings, struct yyjson_val *patch,
                          bool allow_http, struct task_errors *errors);

/* The settings as the API shows them, as an object of `doc`. NULL on ERR_NOMEM. */
struct yyjson_mut_val *notify_settings_to_json(const struct notify_settings *settings,
                                               struct yyjson_mut_doc *doc);

/* Writes into `out` the user's settings object `settings_json` (NULL or ""
 * = {}) with its "notifications" member replaced by `settings`. 0, ERR_LIMIT
 * when the result does not fit out_size, ERR_NOMEM. */
int notify_settings_store(const char *settings_json, size_t length,
                          const struct notify_settings *settings, char *out, size_t out_size);

/* A plausible mailbox: local@domain, printable ASCII without spaces, angle
 * brackets, quotes or commas, a dotted domain of letters, digits and
 * hyphens, at most NOTIFY_EMAIL_BYTES_MAX bytes (local part 64). */
bool notify_email_valid(const char *text, size_t length);

/* Checks a webhook URL: https://host[:port][/path], at most
 * NOTIFY_URL_BYTES_MAX, no spaces, controls, user info or fragment. NULL when
 * fine, else a phrase for the error ("must be an https URL"). */
const char *notify_url_problem(const char *text, size_t length, bool allow_http);

/* Reads <data_dir>/webhook-key, creating it (random, mode 0600, written to
 * a temporary file, fsync'd and renamed) when it does not exist. 0, ERR_IO,
 * ERR_CORRUPT (wrong size). */
int notify_webhook_key_load(const char *data_dir, uint8_t key[NOTIFY_WEBHOOK_KEY_BYTES]);

/* The webhook secret of `user_id` at `version`. 0 or a negative code. */
int notify_webhook_secret(const uint8_t key[NOTIFY_WEBHOOK_KEY_BYTES], const char *user_id,
                          int64_t version, char out[NOTIFY_WEBHOOK_SECRET_BYTES]);

#endif
