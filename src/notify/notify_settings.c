/*
 * notify_settings.c - parsing, checking, merging and storing a user's
 * notification channel settings, and the webhook secret derivation (see
 * notify_settings.h for the shape and the rules).
 */
#include "notify_settings.h"

#include "../base/base64.h"
#include "../base/check.h"
#include "../base/err.h"
#include "../base/random.h"
#include "../tasks/task.h"

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/md.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yyjson.h>

/* Longest local part of an address (RFC 5321 section 4.5.3.1.1). */
#define NOTIFY_EMAIL_LOCAL_BYTES_MAX 64

void notify_settings_default(struct notify_settings *out) {
    CHECK(out != NULL);
    memset(out, 0, sizeof *out);
    out->websocket_enabled = true;
    out->webhook_secret_version = 1;
}

/* ---- reading what is stored ------------------------------------------------ */

static bool notify_flag(yyjson_val *channel, bool fallback) {
    yyjson_val *value = yyjson_obj_get(channel, "enabled");
    return yyjson_is_bool(value) ? yyjson_get_bool(value) : fallback;
}

static void notify_copy(yyjson_val *value, char *out, size_t out_size) {
    size_t length = yyjson_get_len(value);
    if (!yyjson_is_str(value) || length >= out_size) return;
    memcpy(out, yyjson_get_str(value), length);
    out[length] = '\0';
}

void notify_settings_from_user(const char *settings_json, size_t length,
                               struct notify_settings *out) {
    notify_settings_default(out);
    if (settings_json == NULL || length == 0) return;
    yyjson_doc *doc = yyjson_read(settings_json, length, 0);
    yyjson_val *root = yyjson_obj_get(yyjson_doc_get_root(doc), "notifications");
    if (yyjson_is_obj(root)) {
        yyjson_val *channel = yyjson_obj_get(root, "websocket");
        out->websocket_enabled = notify_flag(channel, true);
        channel = yyjson_obj_get(root, "email");
        out->email_enabled = notify_flag(channel, false);
        notify_copy(yyjson_obj_get(channel, "address"), out->email_address,
                    sizeof out->email_address);
        out->webpush_enabled = notify_flag(yyjson_obj_get(root, "webpush"), false);
        channel = yyjson_obj_get(root, "webhook");
        out->webhook_enabled = notify_flag(channel, false);
        notify_copy(yyjson_obj_get(channel, "url"), out->webhook_url, sizeof out->webhook_url);
        yyjson_val *version = yyjson_obj_get(channel, "secret_version");
        if (yyjson_is_int(version) && yyjson_get_sint(version) >= 1 &&
            yyjson_get_sint(version) <= NOTIFY_SECRET_VERSION_MAX) {
            out->webhook_secret_version = yyjson_get_sint(version);
        }
    }
    yyjson_doc_free(doc);
}

/* ---- checking a patch ------------------------------------------------------- */

static bool notify_domain_valid(const char *domain, size_t length) {
    if (length == 0 || length > 253) return false;
    size_t label = 0;
    size_t dots = 0;
    for (size_t index = 0; index < length; index++) {
        char c = domain[index];
        if (c == '.') {
            if (label == 0 || domain[index - 1] == '-') return false;
            label = 0;
            dots++;
            continue;
        }
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (c != '-' || label == 0)) return false;
        if (++label > 63) return false;
    }
    return label > 0 && dots > 0 && domain[length - 1] != '-';
}

bool notify_email_valid(const char *text, size_t length) {
    if (text == NULL || length == 0 || length > NOTIFY_EMAIL_BYTES_MAX) return false;
    const char *at = memchr(text, '@', length);
    if (at == NULL) return false;
    size_t local = (size_t)(at - text);
    if (local == 0 || local > NOTIFY_EMAIL_LOCAL_BYTES_MAX) return false;
    if (text[0] == '.' || text[local - 1] == '.') return false;
    for (size_t index = 0; index < local; index++) {
        unsigned char c = (unsigned char)text[index];
        if (c <= 0x20 || c >= 0x7f || strchr("()<>[]:;@\\,\"", c) != NULL) return false;
        if (c == '.' && text[index + 1] == '.') return false;
    }
    return notify_domain_valid(at + 1, length - local - 1);
}

const char *notify_url_problem(const char *text, size_t length, bool allow_http) {
    if (length > NOTIFY_URL_BYTES_MAX) return "is too long (1,024 bytes at most)";
    size_t scheme = 0;
    if (length > 8 && strncmp(text, "https://", 8) == 0) scheme = 8;
    else if (allow_http && length > 7 && strncmp(text, "http://", 7) == 0) scheme = 7;
    if (scheme == 0) return allow_http ? "must be an http or https URL" : "must be an https URL";
    size_t host_end = scheme;
    while (host_end < length && text[host_end] != '/' && text[host_end] != '?') host_end++;
    if (host_end == scheme || text[scheme] == ':') return "must name a host";
    for (size_t index = 0; index < length; index++) {
        unsigned char c = (unsigned char)text[index];
        if (c <= 0x20 || c >= 0x7f) return "must not contain spaces or control characters";
        if (c == '#') return "must not have a fragment";
        if (c == '@' && index < host_end) return "must not contain user information";
    }
    return NULL;
}

static void notify_error(struct task_errors *errors, const char *channel, const char *member,
                         const char *message) {
    char path[64];
    if (member != NULL) snprintf(path, sizeof path, "notifications.%s.%s", channel, member);
    else if (channel != NULL) snprintf(path, sizeof path, "notifications.%s", channel);
    else snprintf(path, sizeof path, "notifications");
    task_errors_add(errors, path, message);
}

/* Checks that `channel` has only `allowed` members and that "enabled" is a bool. */
static void notify_check_members(yyjson_val *channel, const char *name,
                                 const char *const *allowed, bool *enabled,
                                 struct task_errors *errors) {
    size_t index, max;
    yyjson_val *key, *value;
    yyjson_obj_foreach(channel, index, max, key, value) {
        const char *member = yyjson_get_str(key);
        bool known = false;
        for (size_t slot = 0; allowed[slot] != NULL; slot++) {
            if (strcmp(allowed[slot], member) == 0) known = true;
        }
        if (!known) {
            char message[160];
            snprintf(message, sizeof message, "is not a setting of the %s channel", name);
            char path[64];
            snprintf(path, sizeof path, "%.20s", member);
            notify_error(errors, name, path, message);
        } else if (strcmp(member, "enabled") == 0) {
            if (!yyjson_is_bool(value)) notify_error(errors, name, "enabled", "must be true or false");
            else *enabled = yyjson_get_bool(value);
        }
    }
}

static void notify_apply_email(yyjson_val *channel, struct notify_settings *next,
                               struct task_errors *errors) {
    static const char *const allowed[] = {"enabled", "address", NULL};
    notify_check_members(channel, "email", allowed, &next->email_enabled, errors);
    yyjson_val *address = yyjson_obj_get(channel, "address");
    if (address != NULL) {
        if (!yyjson_is_str(address) ||
            !notify_email_valid(yyjson_get_str(address), yyjson_get_len(address))) {
            notify_error(errors, "email", "address", "must be an e-mail address like a@b.example");
        } else {
            notify_copy(address, next->email_address, sizeof next->email_address);
        }
    }
    if (next->email_enabled && next->email_address[0] == '\0' && address == NULL) {
        notify_error(errors, "email", "address", "is required when e-mail is enabled");
    }
}

static void notify_apply_webhook(yyjson_val *channel, struct notify_settings *next,
                                 bool allow_http, struct task_errors *errors) {
    static const char *const allowed[] = {"enabled", "url", "secret_version", NULL};
    notify_check_members(channel, "webhook", allowed, &next->webhook_enabled, errors);
    yyjson_val *url = yyjson_obj_get(channel, "url");
    if (url != NULL) {
        const char *problem =
            yyjson_is_str(url)
                ? notify_url_problem(yyjson_get_str(url), yyjson_get_len(url), allow_http)
                : "must be a string";
        if (problem != NULL) notify_error(errors, "webhook", "url", problem);
        else notify_copy(url, next->webhook_url, sizeof next->webhook_url);
    }
    if (next->webhook_enabled && next->webhook_url[0] == '\0' && url == NULL) {
        notify_error(errors, "webhook", "url", "is required when the webhook is enabled");
    }
    yyjson_val *version = yyjson_obj_get(channel, "secret_version");
    if (version != NULL) {
        if (!yyjson_is_int(version) || yyjson_get_sint(version) < 1 ||
            yyjson_get_sint(version) > NOTIFY_SECRET_VERSION_MAX) {
            notify_error(errors, "webhook", "secret_version",
                         "must be an integer from 1 to 1000000");
        } else {
            next->webhook_secret_version = yyjson_get_sint(version);
        }
    }
}

int notify_settings_apply(struct notify_settings *settings, yyjson_val *patch, bool allow_http,
                          struct task_errors *errors) {
    CHECK(settings != NULL && errors != NULL);
    size_t before = errors->count;
    if (!yyjson_is_obj(patch)) {
        notify_error(errors, NULL, NULL, "must be an object");
        return ERR_INVAL;
    }
    struct notify_settings next = *settings;
    size_t index, max;
    yyjson_val *key, *channel;
    yyjson_obj_foreach(patch, index, max, key, channel) {
        const char *name = yyjson_get_str(key);
        bool known = strcmp(name, "websocket") == 0 || strcmp(name, "email") == 0 ||
                     strcmp(name, "webpush") == 0 || strcmp(name, "webhook") == 0;
        char path[32];
        snprintf(path, sizeof path, "%.24s", name);
        if (!known) {
            notify_error(errors, path, NULL,
                         "is not a channel (websocket, email, webpush, webhook)");
        } else if (!yyjson_is_obj(channel)) {
            notify_error(errors, path, NULL, "must be an object");
        } else if (strcmp(name, "email") == 0) {
            notify_apply_email(channel, &next, errors);
        } else if (strcmp(name, "webhook") == 0) {
            notify_apply_webhook(channel, &next, allow_http, errors);
        } else {
            static const char *const allowed[] = {"enabled", NULL};
            bool *flag = strcmp(name, "websocket") == 0 ? &next.websocket_enabled
                                                        : &next.webpush_enabled;
            notify_check_members(channel, path, allowed, flag, errors);
        }
    }
    if (errors->count != before) return ERR_INVAL;
    *settings = next;
    return 0;
}

/* ---- writing ----------------------------------------------------------------- */

yyjson_mut_val *notify_settings_to_json(const struct notify_settings *settings,
                                        yyjson_mut_doc *doc) {
    yyjson_mut_val *root = yyjson_mut_obj(doc);
    yyjson_mut_val *websocket = yyjson_mut_obj_add_obj(doc, root, "websocket");
    yyjson_mut_val *email = yyjson_mut_obj_add_obj(doc, root, "email");
    yyjson_mut_val *webpush = yyjson_mut_obj_add_obj(doc, root, "webpush");
    yyjson_mut_val *webhook = yyjson_mut_obj_add_obj(doc, root, "webhook");
    if (root == NULL || websocket == NULL || email == NULL || webpush == NULL || webhook == NULL) {
        return NULL;
    }
    bool ok = yyjson_mut_obj_add_bool(doc, websocket, "enabled", settings->websocket_enabled);
    ok = ok && yyjson_mut_obj_add_bool(doc, email, "enabled", settings->email_enabled);
    if (settings->email_address[0] != '\0') {
        ok = ok && yyjson_mut_obj_add_strcpy(doc, email, "address", settings->email_address);
    }
    ok = ok && yyjson_mut_obj_add_bool(doc, webpush, "enabled", settings->webpush_enabled);
    ok = ok && yyjson_mut_obj_add_bool(doc, webhook, "enabled", settings->webhook_enabled);
    if (settings->webhook_url[0] != '\0') {
        ok = ok && yyjson_mut_obj_add_strcpy(doc, webhook, "url", settings->webhook_url);
    }
    ok = ok && yyjson_mut_obj_add_int(doc, webhook, "secret_version",
                                      settings->webhook_secret_version);
    return ok ? root : NULL;
}

int notify_settings_store(const char *settings_json, size_t length,
                          const struct notify_settings *settings, char *out, size_t out_size) {
    CHECK(out != NULL && out_size > 0);
    yyjson_doc *old = settings_json != NULL && length > 0 ? yyjson_read(settings_json, length, 0)
                                                          : NULL;
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    if (doc == NULL) {
        yyjson_doc_free(old);
        return ERR_NOMEM;
    }
    yyjson_val *old_root = yyjson_doc_get_root(old);
    yyjson_mut_val *root = yyjson_is_obj(old_root) ? yyjson_val_mut_copy(doc, old_root)
                                                   : yyjson_mut_obj(doc);
    yyjson_mut_val *value = notify_settings_to_json(settings, doc);
    int rc = root != NULL && value != NULL ? 0 : ERR_NOMEM;
    if (rc == 0) {
        yyjson_mut_obj_remove_key(root, "notifications");
        if (!yyjson_mut_obj_add_val(doc, root, "notifications", value)) rc = ERR_NOMEM;
    }
    size_t written = 0;
    char *text = NULL;
    if (rc == 0) {
        yyjson_mut_doc_set_root(doc, root);
        text = yyjson_mut_write(doc, 0, &written);
        if (text == NULL) rc = ERR_NOMEM;
        else if (written >= out_size) rc = ERR_LIMIT;
        else memcpy(out, text, written + 1);
    }
    free(text);
    yyjson_mut_doc_free(doc);
    yyjson_doc_free(old);
    return rc;
}

/* ---- the webhook secret --------------------------------------------------------- */

static int notify_key_read(const char *path, uint8_t key[NOTIFY_WEBHOOK_KEY_BYTES]) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? ERR_NOTFOUND : ERR_IO;
    uint8_t bytes[NOTIFY_WEBHOOK_KEY_BYTES + 1];
    ssize_t got = read(fd, bytes, sizeof bytes);
    close(fd);
    if (got != NOTIFY_WEBHOOK_KEY_BYTES) return got < 0 ? ERR_IO : ERR_CORRUPT;
    memcpy(key, bytes, NOTIFY_WEBHOOK_KEY_BYTES);
    return 0;
}

static int notify_key_create(const char *path, uint8_t key[NOTIFY_WEBHOOK_KEY_BYTES]) {
    char temporary[4200];
    int length = snprintf(temporary, sizeof temporary, "%s.tmp", path);
    if (length < 0 || (size_t)length >= sizeof temporary) return ERR_INVAL;
    if (random_fill(key, NOTIFY_WEBHOOK_KEY_BYTES) != 0) return ERR_IO;
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return ERR_IO;
    int rc = write(fd, key, NOTIFY_WEBHOOK_KEY_BYTES) == NOTIFY_WEBHOOK_KEY_BYTES ? 0 : ERR_IO;
    if (rc == 0 && fsync(fd) != 0) rc = ERR_IO;
    close(fd);
    if (rc == 0 && rename(temporary, path) != 0) rc = ERR_IO;
    if (rc != 0) unlink(temporary);
    return rc;
}

int notify_webhook_key_load(const char *data_dir, uint8_t key[NOTIFY_WEBHOOK_KEY_BYTES]) {
    CHECK(data_dir != NULL && key != NULL);
    char path[4200];
    int length = snprintf(path, sizeof path, "%s/webhook-key", data_dir);
    if (length < 0 || (size_t)length >= sizeof path) return ERR_INVAL;
    int rc = notify_key_read(path, key);
    if (rc == ERR_NOTFOUND) rc = notify_key_create(path, key);
    return rc;
}

int notify_webhook_secret(const uint8_t key[NOTIFY_WEBHOOK_KEY_BYTES], const char *user_id,
                          int64_t version, char out[NOTIFY_WEBHOOK_SECRET_BYTES]) {
    CHECK(key != NULL && user_id != NULL && out != NULL);
    char message[128];
    int length = snprintf(message, sizeof message, "%s:%lld", user_id, (long long)version);
    if (length < 0 || (size_t)length >= sizeof message) return ERR_INVAL;
    uint8_t mac[32];
    if (mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key,
                        NOTIFY_WEBHOOK_KEY_BYTES, (const unsigned char *)message, (size_t)length,
                        mac) != 0) {
        return ERR_INVAL;
    }
    size_t written = 0;
    int rc = base64_encode(BASE64_URL, mac, sizeof mac, out, NOTIFY_WEBHOOK_SECRET_BYTES, &written);
    CHECK(rc != 0 || written == NOTIFY_WEBHOOK_SECRET_BYTES - 1);
    return rc;
}
