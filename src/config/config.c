/*
 * config.c - the settings table and the three parsers over it (file,
 * environment, flags). Adding a setting means adding one row to
 * config_entries[] and one field to struct config.
 */
#include "config.h"

#include "../base/err.h"
#include "../base/limits.h"
#include "../base/mem.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum config_type {
    CONFIG_STRING, /* char * field; "" is allowed */
    CONFIG_INT,    /* int64_t field within [minimum, maximum] */
};

struct config_entry {
    const char *key;          /* name in the config file; flag and env derive from it */
    enum config_type type;    /* how the text value is parsed */
    size_t offset;            /* offset of the field in struct config */
    const char *default_text; /* CONFIG_STRING: default value */
    int64_t default_number;   /* CONFIG_INT: default value */
    int64_t minimum;          /* CONFIG_INT: smallest allowed value */
    int64_t maximum;          /* CONFIG_INT: largest allowed value */
    const char *help;         /* one sentence for --help */
};


static const struct config_entry config_entries[] = {
    {"listen", CONFIG_STRING, offsetof(struct config, listen), "127.0.0.1:8080", 0, 0, 0,
     "Address and port to serve HTTP on (port 0 picks a free port, which is logged)."},
    {"data_dir", CONFIG_STRING, offsetof(struct config, data_dir), "./docket-data", 0, 0, 0,
     "Directory holding the event log and the database; created if missing."},
    {"log_level", CONFIG_STRING, offsetof(struct config, log_level), "info", 0, 0, 0,
     "Lowest level of log line written to stderr: debug, info, warn or error."},
    {"tls_cert", CONFIG_STRING, offsetof(struct config, tls_cert), "", 0, 0, 0,
     "PEM certificate chain file; with tls_key set, the listener speaks HTTPS."},
    {"tls_key", CONFIG_STRING, offsetof(struct config, tls_key), "", 0, 0, 0,
     "PEM private key file matching tls_cert."},
    {"max_connections", CONFIG_INT, offsetof(struct config, max_connections),
     NULL, LIMIT_CONNECTIONS_DEFAULT, 1, LIMIT_CONNECTIONS_MAX,
     "Open connections allowed at once; further ones are answered 503 and closed."},
    {"http.max_body_bytes", CONFIG_INT, offsetof(struct config, http_max_body_bytes),
     NULL, LIMIT_HTTP_BODY_BYTES_DEFAULT, 0, LIMIT_HTTP_BODY_BYTES_MAX,
     "Largest request body accepted; larger ones are answered 413."},
    {"http.header_timeout_ms", CONFIG_INT, offsetof(struct config, http_header_timeout_ms),
     NULL, LIMIT_HTTP_HEADER_TIMEOUT_MS_DEFAULT, 100, 3600000,
     "Milliseconds a client has to send a request's headers before 408."},
    {"http.body_timeout_ms", CONFIG_INT, offsetof(struct config, http_body_timeout_ms),
     NULL, LIMIT_HTTP_BODY_TIMEOUT_MS_DEFAULT, 100, 3600000,
     "Milliseconds allowed between two reads of a request body before 408."},
    {"http.idle_timeout_ms", CONFIG_INT, offsetof(struct config, http_idle_timeout_ms),
     NULL, LIMIT_HTTP_IDLE_TIMEOUT_MS_DEFAULT, 100, 86400000,
     "Milliseconds an idle keep-alive connection is kept open."},
    {"evlog.segment_bytes", CONFIG_INT, offsetof(struct config, evlog_segment_bytes),
     NULL, LIMIT_EVLOG_SEGMENT_BYTES_DEFAULT, 64 * 1024, LIMIT_EVLOG_SEGMENT_BYTES_MAX,
     "Event log segment files roll over at this size (bytes)."},
    {"evlog.segment_age_ms", CONFIG_INT, offsetof(struct config, evlog_segment_age_ms),
     NULL, LIMIT_EVLOG_SEGMENT_AGE_MS_DEFAULT, 1000, 365LL * 24 * 3600 * 1000,
     "Event log segment files roll over at this age (milliseconds)."},
    {"evlog.retention_bytes", CONFIG_INT, offsetof(struct config, evlog_retention_bytes),
     NULL, 0, 0, INT64_MAX,
     "Per topic, delete the oldest whole segments beyond this size; 0 keeps everything. "
     "Never deletes past a required consumer."},
    {"evlog.retention_age_ms", CONFIG_INT, offsetof(struct config, evlog_retention_age_ms),
     NULL, 0, 0, INT64_MAX,
     "Per topic, delete whole segments older than this; 0 keeps everything."},
    {"evlog.repair", CONFIG_INT, offsetof(struct config, evlog_repair), NULL, 0, 0, 1,
     "1: on corruption inside the event log, cut it at the bad record (dropping what "
     "follows, loudly logged) instead of refusing to start."},
    {"shutdown_grace_ms", CONFIG_INT, offsetof(struct config, shutdown_grace_ms),
     NULL, LIMIT_SHUTDOWN_GRACE_MS_DEFAULT, 0, 3600000,
     "Milliseconds in-flight requests may take to finish after SIGTERM."},
    {"auth.jwt_secret_file", CONFIG_STRING, offsetof(struct config, auth_jwt_secret_file), "",
     0, 0, 0,
     "File holding the HS256 signing secret (32..128 raw bytes); empty: <data_dir>/jwt-secret, "
     "created with 32 random bytes at first start."},
    {"auth.token_ttl_s", CONFIG_INT, offsetof(struct config, auth_token_ttl_s), NULL,
     LIMIT_TOKEN_TTL_S_DEFAULT, 1, LIMIT_TOKEN_TTL_S_MAX, "Lifetime of issued tokens, seconds."},
    {"auth.leeway_s", CONFIG_INT, offsetof(struct config, auth_leeway_s), NULL,
     LIMIT_JWT_LEEWAY_S_DEFAULT, 0, LIMIT_JWT_LEEWAY_S_MAX,
     "Clock skew tolerated on token exp/nbf/iat, seconds."},
    {"auth.issuer", CONFIG_STRING, offsetof(struct config, auth_issuer), "docket", 0, 0, 0,
     "The iss claim of issued tokens, required on presented ones."},
    {"auth.audience", CONFIG_STRING, offsetof(struct config, auth_audience), "docket", 0, 0, 0,
     "The aud claim of issued tokens, required on presented ones."},
    {"auth.external_issuer", CONFIG_STRING, offsetof(struct config, auth_external_issuer), "", 0,
     0, 0,
     "Also accept tokens from this issuer (iss), verified with auth.external_secret_file; "
     "their sub becomes a Docket user on first use."},
    {"auth.external_audience", CONFIG_STRING, offsetof(struct config, auth_external_audience), "",
     0, 0, 0, "The aud the external issuer's tokens must carry (empty: none allowed)."},
    {"auth.external_secret_file", CONFIG_STRING,
     offsetof(struct config, auth_external_secret_file), "", 0, 0, 0,
     "File with the external issuer's HS256 secret (32..128 raw bytes)."},
    {"auth.password_iterations", CONFIG_INT, offsetof(struct config, auth_password_iterations),
     NULL, LIMIT_PASSWORD_ITERATIONS_MIN, LIMIT_PASSWORD_ITERATIONS_MIN,
     LIMIT_PASSWORD_ITERATIONS_MAX,
     "PBKDF2-SHA256 iterations for new password hashes (OWASP minimum 600000)."},
    {"auth.signup", CONFIG_INT, offsetof(struct config, auth_signup), NULL, 1, 0, 1,
     "1: anyone may sign up; 0: only the first account (the admin) may, then the CLI adds users."},
    {"audit.retention_days", CONFIG_INT, offsetof(struct config, audit_retention_days), NULL,
     LIMIT_AUDIT_RETENTION_DAYS_DEFAULT, 0, 36500,
     "Audit entries older than this are deleted by a background sweep; 0 keeps them forever."},
    {"ws.allowed_origins", CONFIG_STRING, offsetof(struct config, ws_allowed_origins), "", 0, 0,
     0, "Comma-separated browser Origins allowed to open WebSockets besides the server's own "
        "(\"*\" allows any); others get 403."},
    {"ws.max_connections", CONFIG_INT, offsetof(struct config, ws_max_connections), NULL,
     LIMIT_WS_CONNECTIONS_DEFAULT, 1, LIMIT_CONNECTIONS_MAX,
     "WebSocket connections allowed at once (max_connections also counts them); "
     "past it they are closed with 1013."},
    {"ws.max_connections_per_user", CONFIG_INT,
     offsetof(struct config, ws_max_connections_per_user), NULL,
     LIMIT_WS_CONNECTIONS_PER_USER_DEFAULT, 1, LIMIT_CONNECTIONS_MAX,
     "WebSocket connections one user may hold; past it they are closed with 1008."},
    {"ws.max_message_bytes", CONFIG_INT, offsetof(struct config, ws_max_message_bytes), NULL,
     LIMIT_WS_MESSAGE_BYTES_DEFAULT, 125, LIMIT_WS_MESSAGE_BYTES_MAX,
     "Largest message a WebSocket client may send; larger ones close with 1009."},
    {"ws.messages_per_second", CONFIG_INT, offsetof(struct config, ws_messages_per_second),
     NULL, LIMIT_WS_MESSAGES_PER_SECOND_DEFAULT, 1, 100000,
     "Messages per second a WebSocket client may send (burst of one second); more close 1008."},
    {"ws.ping_interval_ms", CONFIG_INT, offsetof(struct config, ws_ping_interval_ms), NULL,
     LIMIT_WS_PING_INTERVAL_MS_DEFAULT, 100, 3600000,
     "A ping is sent after this much silence from a WebSocket client."},
    {"ws.pong_timeout_ms", CONFIG_INT, offsetof(struct config, ws_pong_timeout_ms), NULL,
     LIMIT_WS_PONG_TIMEOUT_MS_DEFAULT, 100, 3600000,
     "A client silent for ping_interval_ms plus this long is dead and its socket is closed."},
    {"ws.send_queue_bytes", CONFIG_INT, offsetof(struct config, ws_send_queue_bytes), NULL,
     LIMIT_WS_SEND_QUEUE_BYTES_DEFAULT, 4096, 64 * 1024 * 1024,
     "Bytes queued to one WebSocket client before it is switched to catch-up from the database."},
    {"ws.stall_timeout_ms", CONFIG_INT, offsetof(struct config, ws_stall_timeout_ms), NULL,
     LIMIT_WS_STALL_TIMEOUT_MS_DEFAULT, 100, 3600000,
     "A WebSocket client that reads nothing this long while behind is closed with 4008."},
    {"reminders.grace_ms", CONFIG_INT, offsetof(struct config, reminders_grace_ms), NULL,
     3600000, 0, 366LL * 86400000,
     "A reminder that comes due while Docket is down (or the clock jumps) still fires at start "
     "if it is at most this late; later ones are recorded as reminder.missed."},
    {"notify.timeout_ms", CONFIG_INT, offsetof(struct config, notify_timeout_ms), NULL, 10000,
     100, 600000, "Milliseconds one delivery attempt (connect, TLS, protocol) may take."},
    {"notify.retry_delays_ms", CONFIG_STRING, offsetof(struct config, notify_retry_delays_ms),
     "1000,5000,25000", 0, 0, 0,
     "Waits before each retry of a failed delivery; after the last one the delivery goes to "
     "the dead-letter queue."},
    {"notify.max_inflight", CONFIG_INT, offsetof(struct config, notify_max_inflight), NULL, 256,
     1, 65536, "Deliveries attempted at once; the notifier stops reading events past it."},
    {"notify.ca_file", CONFIG_STRING, offsetof(struct config, notify_ca_file), "", 0, 0, 0,
     "PEM CA bundle trusted for outbound TLS (SMTP, Web Push, webhooks); empty: the system's."},
    {"notify.allow_http", CONFIG_INT, offsetof(struct config, notify_allow_http), NULL, 0, 0, 1,
     "1: webhook and push URLs may use plain http:// (for testing on loopback)."},
    {"smtp.host", CONFIG_STRING, offsetof(struct config, smtp_host), "", 0, 0, 0,
     "SMTP relay for the e-mail channel; empty turns e-mail off."},
    {"smtp.port", CONFIG_INT, offsetof(struct config, smtp_port), NULL, 587, 1, 65535,
     "Port of the SMTP relay."},
    {"smtp.starttls", CONFIG_INT, offsetof(struct config, smtp_starttls), NULL, 1, 0, 1,
     "1: STARTTLS is required before AUTH and mail; 0: plaintext (loopback relays only)."},
    {"smtp.username", CONFIG_STRING, offsetof(struct config, smtp_username), "", 0, 0, 0,
     "SMTP AUTH user name (PLAIN or LOGIN, as the relay offers); empty: no AUTH."},
    {"smtp.password_file", CONFIG_STRING, offsetof(struct config, smtp_password_file), "", 0, 0,
     0, "File holding the SMTP AUTH password (trailing newline ignored)."},
    {"smtp.from", CONFIG_STRING, offsetof(struct config, smtp_from), "docket@localhost", 0, 0, 0,
     "Sender address of reminder e-mails."},
    {"push.subject", CONFIG_STRING, offsetof(struct config, push_subject),
     "mailto:docket@localhost", 0, 0, 0,
     "VAPID subject (mailto: or https: URL) push services may use to contact the operator."},
};

#define CONFIG_ENTRY_COUNT (sizeof config_entries / sizeof config_entries[0])

static void config_error_set(struct config_error *error, const char *format, const char *a,
                             const char *b) {
    if (error == NULL) return;
    snprintf(error->message, sizeof error->message, format, a, b);
}

static const struct config_entry *config_find(const char *key, size_t key_length) {
    for (size_t index = 0; index < CONFIG_ENTRY_COUNT; index++) {
        const char *name = config_entries[index].key;
        if (strlen(name) == key_length && memcmp(name, key, key_length) == 0) {
            return &config_entries[index];
        }
    }
    return NULL;
}

/* "http.max_body_bytes" -> "http-max-body-bytes" (flag) or "HTTP_MAX_BODY_BYTES" (env). */
static void config_derive(const char *key, char *out, size_t out_size, int for_env) {
    size_t length = 0;
    for (const char *cursor = key; *cursor && length + 1 < out_size; cursor++) {
        char c = *cursor;
        if (c == '.' || c == '_') c = for_env ? '_' : '-';
        else if (for_env && c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        out[length++] = c;
    }
    out[length] = '\0';
}

static int config_apply(struct config *config, const struct config_entry *entry, const char *value,
                        struct config_error *error) {
    char *field = (char *)config + entry->offset;
    if (entry->type == CONFIG_STRING) {
        char *copy = mem_strdup(value);
        if (copy == NULL) return ERR_NOMEM;
        mem_free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long long number = strtoll(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0') {
        config_error_set(error, "setting '%s' needs a whole number, got '%s'", entry->key, value);
        return ERR_CONFIG;
    }
    if (number < entry->minimum || number > entry->maximum) {
        char range[64];
        snprintf(range, sizeof range, "%lld..%lld", (long long)entry->minimum,
                 (long long)entry->maximum);
        config_error_set(error, "setting '%s' must be within %s", entry->key, range);
        return ERR_CONFIG;
    }
    *(int64_t *)field = number;
    return 0;
}

int config_set(struct config *config, const char *key, const char *value,
               struct config_error *error) {
    const struct config_entry *entry = config_find(key, strlen(key));
    if (entry == NULL) {
        config_error_set(error, "unknown setting '%s'%s", key, "");
        return ERR_CONFIG;
    }
    return config_apply(config, entry, value, error);
}

int config_init(struct config *config) {
    memset(config, 0, sizeof *config);
    for (size_t index = 0; index < CONFIG_ENTRY_COUNT; index++) {
        const struct config_entry *entry = &config_entries[index];
        char *field = (char *)config + entry->offset;
        if (entry->type == CONFIG_INT) {
            *(int64_t *)field = entry->default_number;
            continue;
        }
        int rc = config_apply(config, entry, entry->default_text, NULL);
        if (rc != 0) {
            config_free(config);
            return rc;
        }
    }
    return 0;
}

void config_free(struct config *config) {
    for (size_t index = 0; index < CONFIG_ENTRY_COUNT; index++) {
        if (config_entries[index].type != CONFIG_STRING) continue;
        char **field = (char **)((char *)config + config_entries[index].offset);
        mem_free(*field);
        *field = NULL;
    }
}

static char *config_trim(char *text) {
    while (*text == ' ' || *text == '\t') text++;
    size_t length = strlen(text);
    while (length > 0 && (text[length - 1] == ' ' || text[length - 1] == '\t' ||
                          text[length - 1] == '\r' || text[length - 1] == '\n')) {
        text[--length] = '\0';
    }
    return text;
}

/* One "key = value" line of the config file; '#' starts a comment line. */
static int config_file_line(struct config *config, char *line, const char *path, int number,
                            struct config_error *error) {
    char *text = config_trim(line);
    if (*text == '\0' || *text == '#') return 0;
    char *equals = strchr(text, '=');
    char where[300];
    snprintf(where, sizeof where, "%s line %d", path, number);
    if (equals == NULL) {
        config_error_set(error, "%s: expected 'key = value'%s", where, "");
        return ERR_CONFIG;
    }
    *equals = '\0';
    char *key = config_trim(text);
    char *value = config_trim(equals + 1);
    size_t value_length = strlen(value);
    if (value_length >= 2 && value[0] == '"' && value[value_length - 1] == '"') {
        value[value_length - 1] = '\0';
        value++;
    }
    if (config_find(key, strlen(key)) == NULL) {
        config_error_set(error, "unknown setting '%s' in %s", key, where);
        return ERR_CONFIG;
    }
    int rc = config_set(config, key, value, error);
    if (rc == ERR_CONFIG && error != NULL) {
        size_t used = strlen(error->message);
        snprintf(error->message + used, sizeof error->message - used, " (%s)", where);
    }
    return rc;
}

static int config_load_file(struct config *config, const char *path, struct config_error *error) {
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        config_error_set(error, "cannot open config file '%s': %s", path, strerror(errno));
        return ERR_CONFIG;
    }
    char line[LIMIT_CONFIG_LINE_BYTES];
    int number = 0;
    int rc = 0;
    long total = 0;
    while (rc == 0 && fgets(line, sizeof line, file) != NULL) {
        number++;
        total += (long)strlen(line);
        if (total > LIMIT_CONFIG_FILE_BYTES) {
            config_error_set(error, "config file '%s' is larger than the limit%s", path, "");
            rc = ERR_CONFIG;
            break;
        }
        if (strchr(line, '\n') == NULL && !feof(file)) {
            char where[32];
            snprintf(where, sizeof where, "%d", number);
            config_error_set(error, "config file '%s' line %s is too long", path, where);
            rc = ERR_CONFIG;
            break;
        }
        rc = config_file_line(config, line, path, number, error);
    }
    fclose(file);
    return rc;
}

static const char *config_env_get(char *const *environment, const char *name) {
    if (environment == NULL) return NULL;
    size_t name_length = strlen(name);
    for (char *const *entry = environment; *entry != NULL; entry++) {
        if (strncmp(*entry, name, name_length) == 0 && (*entry)[name_length] == '=') {
            return *entry + name_length + 1;
        }
    }
    return NULL;
}

/* Rejects DOCKET_* variables that name no setting: a typo must not be ignored. */
static int config_load_environment(struct config *config, char *const *environment,
                                   struct config_error *error) {
    if (environment == NULL) return 0;
    for (char *const *entry = environment; *entry != NULL; entry++) {
        if (strncmp(*entry, "DOCKET_", 7) != 0) continue;
        const char *equals = strchr(*entry, '=');
        if (equals == NULL) continue;
        char name[128];
        size_t name_length = (size_t)(equals - *entry);
        if (name_length >= sizeof name) name_length = sizeof name - 1;
        memcpy(name, *entry, name_length);
        name[name_length] = '\0';
        if (strcmp(name, "DOCKET_CONFIG") == 0) continue;
        const struct config_entry *match = NULL;
        for (size_t index = 0; index < CONFIG_ENTRY_COUNT && match == NULL; index++) {
            char derived[128];
            config_derive(config_entries[index].key, derived, sizeof derived, 1);
            if (strcmp(derived, name + 7) == 0) match = &config_entries[index];
        }
        if (match == NULL) {
            config_error_set(error, "unknown environment variable '%s'%s", name, "");
            return ERR_CONFIG;
        }
        int rc = config_apply(config, match, equals + 1, error);
        if (rc != 0) return rc;
    }
    return 0;
}

static const struct config_entry *config_find_flag(const char *flag, size_t flag_length) {
    for (size_t index = 0; index < CONFIG_ENTRY_COUNT; index++) {
        char derived[128];
        config_derive(config_entries[index].key, derived, sizeof derived, 0);
        if (strlen(derived) == flag_length && memcmp(derived, flag, flag_length) == 0) {
            return &config_entries[index];
        }
    }
    return NULL;
}

/* Walks argv once; `only_config` picks out --config so the file loads first. */
static int config_load_flags(struct config *config, int argc, char *const *argv, int only_config,
                             const char **config_path, struct config_error *error) {
    for (int index = 0; index < argc; index++) {
        const char *argument = argv[index];
        if (strncmp(argument, "--", 2) != 0) {
            config_error_set(error, "unexpected argument '%s'%s", argument, "");
            return ERR_CONFIG;
        }
        const char *name = argument + 2;
        const char *equals = strchr(name, '=');
        size_t name_length = equals != NULL ? (size_t)(equals - name) : strlen(name);
        const char *value = equals != NULL ? equals + 1 : NULL;
        if (value == NULL) {
            if (index + 1 >= argc) {
                config_error_set(error, "flag '%s' needs a value%s", argument, "");
                return ERR_CONFIG;
            }
            value = argv[++index];
        }
        int is_config = name_length == 6 && memcmp(name, "config", 6) == 0;
        if (is_config) {
            if (only_config) *config_path = value;
            continue;
        }
        const struct config_entry *entry = config_find_flag(name, name_length);
        if (entry == NULL) {
            config_error_set(error, "unknown flag '%s' (see --help)%s", argument, "");
            return ERR_CONFIG;
        }
        if (only_config) continue;
        int rc = config_apply(config, entry, value, error);
        if (rc != 0) return rc;
    }
    return 0;
}

int config_load(struct config *config, int argc, char *const *argv, char *const *environment,
                struct config_error *error) {
    const char *config_path = config_env_get(environment, "DOCKET_CONFIG");
    int rc = config_load_flags(config, argc, argv, 1, &config_path, error);
    if (rc != 0) return rc;
    if (config_path != NULL && *config_path != '\0') {
        rc = config_load_file(config, config_path, error);
        if (rc != 0) return rc;
    }
    rc = config_load_environment(config, environment, error);
    if (rc != 0) return rc;
    return config_load_flags(config, argc, argv, 0, &config_path, error);
}

void config_print_help(FILE *stream) {
    fprintf(stream, "Settings (flag, environment variable, default):\n");
    fprintf(stream, "  --config FILE  (DOCKET_CONFIG)\n      Read settings from FILE ('key = "
                    "value' lines) before the environment and flags.\n");
    for (size_t index = 0; index < CONFIG_ENTRY_COUNT; index++) {
        const struct config_entry *entry = &config_entries[index];
        char flag[128];
        char env[128];
        config_derive(entry->key, flag, sizeof flag, 0);
        config_derive(entry->key, env, sizeof env, 1);
        if (entry->type == CONFIG_INT) {
            fprintf(stream, "  --%s N  (DOCKET_%s, default %lld)\n      %s\n", flag, env,
                    (long long)entry->default_number, entry->help);
        } else {
            fprintf(stream, "  --%s TEXT  (DOCKET_%s, default \"%s\")\n      %s\n", flag, env,
                    entry->default_text, entry->help);
        }
    }
}

void config_print(const struct config *config, FILE *stream) {
    for (size_t index = 0; index < CONFIG_ENTRY_COUNT; index++) {
        const struct config_entry *entry = &config_entries[index];
        const char *field = (const char *)config + entry->offset;
        if (entry->type == CONFIG_STRING) {
            fprintf(stream, "%s = \"%s\"\n", entry->key, *(char *const *)field);
        } else {
            fprintf(stream, "%s = %lld\n", entry->key, (long long)*(const int64_t *)field);
        }
    }
}
