/*
 * config.h - Docket's settings, described once in a declarative table.
 *
 * Each setting has a key ("http.max_body_bytes"), from which its command-line
 * flag ("--http-max-body-bytes") and environment variable
 * ("DOCKET_HTTP_MAX_BODY_BYTES") are derived, a type, a default, bounds and a
 * help sentence. Parsing, --help and unknown-key errors all come from the one
 * table (the Fluent Bit config-map idea). Precedence, lowest first:
 * defaults < config file (--config / DOCKET_CONFIG) < environment < flags.
 */
#ifndef DOCKET_CONFIG_CONFIG_H
#define DOCKET_CONFIG_CONFIG_H

#include <stdint.h>
#include <stdio.h>

struct config {
    char *listen;                  /* HOST:PORT of the HTTP listener; port 0 = any free port */
    char *data_dir;                /* directory for the log and the database */
    char *log_level;               /* debug | info | warn | error */
    char *tls_cert;                /* PEM certificate chain; with tls_key the listener speaks TLS */
    char *tls_key;                 /* PEM private key for tls_cert */
    int64_t max_connections;       /* open connections; more are answered 503 */
    int64_t http_max_body_bytes;   /* request body ceiling (413 beyond) */
    int64_t http_header_timeout_ms; /* time allowed to send a request's headers (408 beyond) */
    int64_t http_body_timeout_ms;  /* time allowed between body reads (408 beyond) */
    int64_t http_idle_timeout_ms;  /* keep-alive connections idle longer are closed */
    int64_t shutdown_grace_ms;     /* in-flight work allowed to finish after SIGTERM */
    int64_t evlog_segment_bytes;   /* event log segments roll at this size */
    int64_t evlog_segment_age_ms;  /* ... or at this age */
    int64_t evlog_retention_bytes; /* per topic; 0 keeps everything */
    int64_t evlog_retention_age_ms; /* per topic; 0 keeps everything */
    int64_t evlog_repair;          /* 1: cut the log at a corrupt record instead of refusing to start */
    char *auth_jwt_secret_file;    /* HS256 secret file; "" = <data_dir>/jwt-secret */
    int64_t auth_token_ttl_s;      /* lifetime of issued tokens */
    int64_t auth_leeway_s;         /* clock skew tolerated on exp/nbf/iat */
    char *auth_issuer;             /* iss written and required */
    char *auth_audience;           /* aud written and required */
    char *auth_external_issuer;    /* another issuer whose tokens are accepted; "" = none */
    char *auth_external_audience;  /* aud required on its tokens */
    char *auth_external_secret_file; /* its HS256 secret */
    int64_t auth_password_iterations; /* PBKDF2 iterations for new hashes */
    int64_t auth_signup;           /* 1: open signup */
    int64_t audit_retention_days;  /* audit sweep age; 0 = forever */
    char *ws_allowed_origins;      /* comma-separated Origins allowed besides same-origin; "*" any */
    int64_t ws_max_connections;    /* WebSocket connections in all (1013 past it) */
    int64_t ws_max_connections_per_user; /* per user (1008 past it) */
    int64_t ws_max_message_bytes;  /* client message ceiling (1009) */
    int64_t ws_messages_per_second; /* client message rate (1008) */
    int64_t ws_ping_interval_ms;   /* ping after this much silence */
    int64_t ws_pong_timeout_ms;    /* then dead after this much more */
    int64_t ws_send_queue_bytes;   /* per-connection send queue before catch-up */
    int64_t ws_stall_timeout_ms;   /* a full queue this long -> close 4008 */
    int64_t reminders_grace_ms;    /* a reminder later than this fires as reminder.missed */
    int64_t notify_timeout_ms;     /* one delivery attempt (connect, TLS, protocol) at most */
    char *notify_retry_delays_ms;  /* comma-separated waits before retries, then the DLQ */
    int64_t notify_max_inflight;   /* deliveries attempted at once; the notifier waits past it */
    char *notify_ca_file;          /* PEM CA bundle for outbound TLS; "" = the system's */
    int64_t notify_allow_http;     /* 1: webhook and push URLs may be http:// (testing only) */
    char *smtp_host;               /* SMTP relay host; "" = e-mail channel off */
    int64_t smtp_port;             /* its port (587 submission) */
    int64_t smtp_starttls;         /* 1: STARTTLS required before AUTH and mail; 0: plaintext */
    char *smtp_username;           /* AUTH user; "" = no AUTH */
    char *smtp_password_file;      /* file holding the AUTH password */
    char *smtp_from;               /* envelope and header sender */
    char *push_subject;            /* VAPID "sub" claim (mailto: or https: URL) */
};

/* A parse failure: the sentence to print and the setting it concerns. */
struct config_error {
    char message[256]; /* "unknown setting 'foo' in docket.conf line 3" */
};

/* Fills every field with its default. */
int config_init(struct config *config);
void config_free(struct config *config);

/* Applies the config file (if any), then `environment` (NULL-terminated
 * "NAME=value" strings, like environ), then the flags argv[0..argc). Flags
 * that are not settings are errors. Returns 0, ERR_CONFIG (with `error`
 * filled) or ERR_NOMEM. */
int config_load(struct config *config, int argc, char *const *argv, char *const *environment,
                struct config_error *error);

/* Sets one setting by key from text, as the file, environment and flags do. */
int config_set(struct config *config, const char *key, const char *value,
               struct config_error *error);

/* Prints every setting: flag, environment variable, default and help. */
void config_print_help(FILE *stream);

/* Prints the effective configuration as a config file would hold it. */
void config_print(const struct config *config, FILE *stream);

#endif
