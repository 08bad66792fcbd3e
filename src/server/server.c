/*
 * server.c - wires configuration, the data directory, the HTTP transport and
 * the routes together, and owns the process lifecycle:
 *   start  -> data dir ready -> listening -> READY=1
 *   SIGTERM/SIGINT -> STOPPING=1 -> stop accepting -> in-flight requests
 *   finish (bounded by shutdown_grace_ms) -> every handle closed -> exit 0.
 */
#include "server.h"

#include "../api/api.h"
#include "../base/check.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/mem.h"
#include "../consumer/deadletter.h"
#include "../consumer/notify_db.h"
#include "../evlog/evlog.h"
#include "../evlog/evlog_uv.h"
#include "../http/server.h"
#include "../net/notify.h"
#include "../net/tls.h"
#include "../net/outbound.h"
#include "../notify/notifier.h"
#include "../notify/notify_channels.h"
#include "../notify/webpush.h"
#include "../realtime/hub.h"
#include "../reminders/timers.h"
#include "../tasks/timezone.h"
#include "../store/db.h"
#include "../tasks/projection.h"
#include "../tasks/query.h"
#include "../tasks/service.h"
#include "../web/assets.h"
#include "version.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <sqlite3.h>
#include <yyjson.h>

/* How often the WAL is checkpointed by the background connection. At 200
 * creates/s the projection writes ~20 MB of WAL a second; a checkpoint
 * every 250 ms copies a few MB while commits go on, instead of one 64 MB
 * copy inside some unlucky commit every few seconds. */
#define SERVER_CHECKPOINT_MS 250

/* A WAL this many pages long means checkpoints are not keeping up (a reader
 * holding an old snapshot): said once per occurrence in the log. */
#define SERVER_WAL_PAGES_WARN 65536

/* Routes of the server itself plus the API's. */
#define SERVER_ROUTES_MAX 64

struct server {
    struct api api;                  /* must stay first: API handlers cast the context to it */
    const struct config *config;     /* settings in force */
    uv_loop_t *loop;                 /* the one event loop */
    struct http_server http;         /* the listener and its connections */
    struct tls_server_config tls;    /* loaded when tls_cert/tls_key are set */
    int tls_enabled;                 /* tls holds a loaded configuration */
    uv_signal_t signal_term;         /* SIGTERM watcher */
    uv_signal_t signal_interrupt;    /* SIGINT watcher */
    int stopping;                    /* a stop signal was received */
    int64_t started_wall_seconds;    /* Unix time of start, for /metrics */
    struct evlog *evlog;             /* the event log under <data_dir>/log */
    struct evlog_uv_executor evlog_executor; /* runs its commits on the thread pool */
    uv_timer_t evlog_timer;          /* lets a log that failed a write retry */
    int evlog_timer_started;         /* evlog_timer is initialised */
    struct evlog_topic *events;      /* the "events" topic: every domain event */
    struct evlog_topic *dlq_topic;   /* the "dlq" topic: dead-letter entries (deadletter.h) */
    struct db *notify_db;            /* <data_dir>/notify.db: DLQ mirror, deliveries (loop) */
    struct deadletter *deadletter;   /* the dead-letter queue shared by every consumer */
    struct db *db;                   /* <data_dir>/docket.db: reads on the loop */
    struct db *db_writer;            /* the projection's own connection (thread pool) */
    struct evlog_uv_executor projection_executor; /* runs projection batches */
    struct projection *projection;   /* applies events to db */
    struct service *service;         /* the command layer */
    int api_ready;                   /* api_init succeeded */
    struct webpush_vapid vapid;      /* <data_dir>/vapid-private.pem (Web Push) */
    uv_timer_t sweep_timer;          /* audit retention and idempotency-key sweep */
    int sweep_timer_started;         /* sweep_timer is initialised */
    struct db *db_checkpointer;      /* a third connection: WAL checkpoints off the write path */
    struct evlog_uv_executor checkpoint_executor; /* runs them on the thread pool */
    uv_timer_t checkpoint_timer;     /* starts one every SERVER_CHECKPOINT_MS */
    int checkpoint_timer_started;    /* checkpoint_timer is initialised */
    int checkpoint_running;          /* a checkpoint is on the pool */
    int checkpoint_status;           /* its SQLite result */
    int checkpoint_wal_pages;        /* WAL frames it saw */
    uint64_t checkpoints_total;      /* finished, for /metrics */
    struct hub *hub;                 /* realtime fan-out to WebSockets */
    uv_timer_t hub_timer;            /* hub_tick once a second (stalled clients) */
    int hub_timer_started;           /* hub_timer is initialised */
    struct notifier *notifier;       /* reminder deliveries (notify/notifier.h) */
    struct notify_channels channels; /* the notifier's e-mail, push and webhook clients */
    struct outbound_trust *trust;    /* CA store for outbound TLS; NULL: none was found */
    struct timers *timers;           /* reminders and spawns on the timer wheel */
    struct route routes[SERVER_ROUTES_MAX]; /* server routes, then api_routes */
    size_t route_count;              /* entries used */
};

/* ---- Routes ----------------------------------------------------------- */

static enum exchange_status server_healthz(struct exchange *exchange) {
    static const char body[] = "{\"status\":\"ok\",\"version\":\"" DOCKET_VERSION "\"}";
    response_set_static(&exchange->response, 200, "application/json", body, sizeof body - 1);
    response_header(&exchange->response, "Cache-Control", "no-store");
    return EXCHANGE_DONE;
}

/* Ready means the data directory accepts writes and the event log is
 * writable (later also: the database). */
static int server_data_dir_writable(const struct server *server) {
    /* A probe file is created and removed: access(2) alone says yes to root and to a
     * regular file standing where the directory should be. */
    struct stat info;
    if (stat(server->config->data_dir, &info) != 0 || !S_ISDIR(info.st_mode)) return 0;
    char probe[4200];
    int length = snprintf(probe, sizeof probe, "%s/.readyz-probe", server->config->data_dir);
    if (length < 0 || (size_t)length >= sizeof probe) return 0;
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return 0;
    close(fd);
    return unlink(probe) == 0;
}

static enum exchange_status server_readyz(struct exchange *exchange) {
    struct server *server = exchange->context;
    int data_dir_ok = server_data_dir_writable(server);
    int evlog_ok = server->evlog != NULL && evlog_writable(server->evlog);
    int db_ok = server->db != NULL && query_user_count(server->db) >= 0;
    if (!data_dir_ok || !evlog_ok || !db_ok || server->stopping) {
        const char *detail = server->stopping ? "The server is shutting down."
                             : !data_dir_ok   ? "The data directory is not writable."
                             : !db_ok         ? "The database cannot be read."
                                              : "The event log cannot write (disk full or I/O "
                                                "error); it retries on its own.";
        response_problem(&exchange->response, 503, detail, NULL, 0);
        response_header(&exchange->response, "Cache-Control", "no-store");
        return EXCHANGE_DONE;
    }
    yyjson_mut_doc *doc = yyjson_mut_doc_new(NULL);
    if (doc == NULL) {
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
        return EXCHANGE_DONE;
    }
    yyjson_mut_val *root = yyjson_mut_obj(doc);
    yyjson_mut_doc_set_root(doc, root);
    yyjson_mut_obj_add_str(doc, root, "status", "ready");
    yyjson_mut_val *checks = yyjson_mut_obj_add_obj(doc, root, "checks");
    yyjson_mut_obj_add_str(doc, checks, "data_dir", "ok");
    yyjson_mut_obj_add_str(doc, checks, "event_log", "ok");
    yyjson_mut_obj_add_str(doc, checks, "database", "ok");
    if (response_json(&exchange->response, 200, doc) != 0) {
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
    }
    yyjson_mut_doc_free(doc);
    response_header(&exchange->response, "Cache-Control", "no-store");
    return EXCHANGE_DONE;
}

/* The event log's counters, in the same exposition format. */
static int server_metrics_evlog(const struct server *server, struct buf *body) {
    const struct evlog_stats *stats = evlog_stats(server->evlog);
    const struct {
        const char *name;  /* metric name after docket_evlog_ */
        const char *help;  /* HELP text */
        uint64_t value;    /* current value */
    } counters[] = {
        {"appends_total", "Records acknowledged durable.", stats->appends},
        {"append_failures_total", "Records whose append failed.", stats->append_failures},
        {"commits_total", "Batches written (group commits).", stats->commits},
        {"fsyncs_total", "fdatasync calls on segment files.", stats->fsyncs},
        {"bytes_written_total", "Record bytes made durable.", stats->bytes_written},
        {"write_errors_total", "Failed writes or fsyncs.", stats->write_errors},
        {"torn_tails_truncated_total", "Torn tails cut at open.", stats->torn_tails_truncated},
        {"indexes_rebuilt_total", "Index files rebuilt from segments.", stats->indexes_rebuilt},
    };
    int rc = 0;
    for (size_t index = 0; rc == 0 && index < sizeof counters / sizeof counters[0]; index++) {
        rc = buf_printf(body, "# HELP docket_evlog_%s %s\n# TYPE docket_evlog_%s counter\n"
                              "docket_evlog_%s %llu\n",
                        counters[index].name, counters[index].help, counters[index].name,
                        counters[index].name, (unsigned long long)counters[index].value);
    }
    if (rc == 0) {
        rc = buf_printf(body, "# HELP docket_evlog_writable 1 when the event log accepts appends.\n"
                              "# TYPE docket_evlog_writable gauge\ndocket_evlog_writable %d\n",
                        evlog_writable(server->evlog));
    }
    return rc;
}

static int server_metrics_hub(const struct server *server, struct buf *body) {
    const struct hub_stats *stats = hub_stats(server->hub);
    return buf_printf(
        body,
        "# HELP docket_ws_connections WebSocket connections subscribed now.\n"
        "# TYPE docket_ws_connections gauge\ndocket_ws_connections %llu\n"
        "# HELP docket_ws_tunnels_open Connections that switched to WebSocket, open now.\n"
        "# TYPE docket_ws_tunnels_open gauge\ndocket_ws_tunnels_open %llu\n"
        "# HELP docket_ws_handshakes_refused_total WebSocket upgrades answered with an error.\n"
        "# TYPE docket_ws_handshakes_refused_total counter\n"
        "docket_ws_handshakes_refused_total %llu\n"
        "# HELP docket_ws_events_total Events the realtime consumer read from the log.\n"
        "# TYPE docket_ws_events_total counter\ndocket_ws_events_total %llu\n"
        "# HELP docket_ws_messages_sent_total Messages queued to WebSocket clients.\n"
        "# TYPE docket_ws_messages_sent_total counter\ndocket_ws_messages_sent_total %llu\n"
        "# HELP docket_ws_catchups_total Switches to catch-up (resume or a full send queue).\n"
        "# TYPE docket_ws_catchups_total counter\ndocket_ws_catchups_total %llu\n"
        "# HELP docket_ws_catchup_events_total Events sent from the database in catch-up.\n"
        "# TYPE docket_ws_catchup_events_total counter\ndocket_ws_catchup_events_total %llu\n"
        "# HELP docket_ws_stalls_closed_total Clients closed with 4008 for not reading.\n"
        "# TYPE docket_ws_stalls_closed_total counter\ndocket_ws_stalls_closed_total %llu\n",
        (unsigned long long)stats->subscribers, (unsigned long long)server->http.stats.tunnels_open,
        (unsigned long long)server->api.ws_handshakes_refused,
        (unsigned long long)stats->events_applied, (unsigned long long)stats->messages_sent,
        (unsigned long long)stats->catchups_started,
        (unsigned long long)stats->catchup_events_read, (unsigned long long)stats->stalls_closed);
}

/* Dead-letter entries by state. */
static int server_metrics_dlq(const struct server *server, struct buf *body) {
    static const char *const states[] = {"dead", "redriving", "redriven", "failed_again"};
    int rc = buf_append_str(body, "# HELP docket_dlq_entries Dead-letter entries by state.\n"
                                  "# TYPE docket_dlq_entries gauge\n");
    for (size_t index = 0; rc == 0 && index < sizeof states / sizeof states[0]; index++) {
        rc = buf_printf(body, "docket_dlq_entries{state=\"%s\"} %zu\n", states[index],
                        deadletter_count(server->deadletter, states[index]));
    }
    return rc;
}

/* The notifier's deliveries by channel and outcome, and attempts running. */
static int server_metrics_notify(const struct server *server, struct buf *body) {
    static const enum notify_state outcomes[] = {NOTIFY_SENT, NOTIFY_SKIPPED, NOTIFY_RETRY,
                                                 NOTIFY_FAILED, NOTIFY_DEAD};
    const struct notifier_stats *stats = notifier_stats(server->notifier);
    int rc = buf_append_str(body, "# HELP docket_notify_deliveries_total Delivery attempts by "
                                  "channel and outcome (retry: failed, tried again later).\n"
                                  "# TYPE docket_notify_deliveries_total counter\n");
    for (int channel = 0; rc == 0 && channel < NOTIFY_CHANNEL_COUNT; channel++) {
        for (size_t index = 0; rc == 0 && index < sizeof outcomes / sizeof outcomes[0]; index++) {
            rc = buf_printf(body, "docket_notify_deliveries_total{channel=\"%s\",outcome=\"%s\"} "
                                  "%llu\n",
                            notify_channel_name((enum notify_channel)channel),
                            notify_state_name(outcomes[index]),
                            (unsigned long long)stats->outcomes[channel][outcomes[index]]);
        }
    }
    if (rc == 0) {
        rc = buf_printf(body, "# HELP docket_notify_inflight Delivery attempts running now.\n"
                              "# TYPE docket_notify_inflight gauge\ndocket_notify_inflight %llu\n",
                        (unsigned long long)stats->inflight);
    }
    return rc;
}

/* Prometheus text exposition (format 0.0.4) of the process's counters. */
static enum exchange_status server_metrics(struct exchange *exchange) {
    struct server *server = exchange->context;
    const struct http_server_stats *stats = &server->http.stats;
    struct response *response = &exchange->response;
    struct buf *body = &response->body;
    buf_reset(body);
    int rc = buf_printf(
        body,
        "# HELP docket_build_info Docket version of this process.\n"
        "# TYPE docket_build_info gauge\n"
        "docket_build_info{version=\"%s\"} 1\n"
        "# HELP docket_process_start_time_seconds Unix time the process started.\n"
        "# TYPE docket_process_start_time_seconds gauge\n"
        "docket_process_start_time_seconds %lld\n"
        "# HELP docket_http_connections_open HTTP connections open now.\n"
        "# TYPE docket_http_connections_open gauge\n"
        "docket_http_connections_open %llu\n"
        "# HELP docket_http_connections_total HTTP connections accepted.\n"
        "# TYPE docket_http_connections_total counter\n"
        "docket_http_connections_total %llu\n"
        "# HELP docket_http_connections_rejected_total Connections refused at max_connections.\n"
        "# TYPE docket_http_connections_rejected_total counter\n"
        "docket_http_connections_rejected_total %llu\n"
        "# HELP docket_http_requests_total HTTP requests answered.\n"
        "# TYPE docket_http_requests_total counter\n"
        "docket_http_requests_total %llu\n"
        "# HELP docket_http_timeouts_total Connections ended by a header, body or write deadline.\n"
        "# TYPE docket_http_timeouts_total counter\n"
        "docket_http_timeouts_total %llu\n"
        "# HELP docket_http_request_errors_total Requests refused as malformed or oversized.\n"
        "# TYPE docket_http_request_errors_total counter\n"
        "docket_http_request_errors_total %llu\n",
        DOCKET_VERSION, (long long)server->started_wall_seconds,
        (unsigned long long)stats->connections_open, (unsigned long long)stats->connections_total,
        (unsigned long long)stats->connections_rejected, (unsigned long long)stats->requests_total,
        (unsigned long long)stats->timeouts_total, (unsigned long long)stats->parse_errors_total);
    if (rc == 0 && server->evlog != NULL) rc = server_metrics_evlog(server, body);
    if (rc == 0 && server->service != NULL) {
        rc = buf_printf(body,
                        "# HELP docket_commands_pending Writes waiting for the event log.\n"
                        "# TYPE docket_commands_pending gauge\ndocket_commands_pending %llu\n"
                        "# HELP docket_projection_offset Next event-log offset the projection "
                        "applies.\n# TYPE docket_projection_offset gauge\n"
                        "docket_projection_offset %lld\n"
                        "# HELP docket_logins_throttled_total Sign-ins refused by throttling.\n"
                        "# TYPE docket_logins_throttled_total counter\n"
                        "docket_logins_throttled_total %llu\n"
                        "# HELP docket_db_checkpoints_total WAL checkpoints run in the background.\n"
                        "# TYPE docket_db_checkpoints_total counter\n"
                        "docket_db_checkpoints_total %llu\n",
                        (unsigned long long)service_pending(server->service),
                        (long long)projection_offset(server->projection),
                        (unsigned long long)server->api.logins_throttled,
                        (unsigned long long)server->checkpoints_total);
    }
    if (rc == 0 && server->hub != NULL) rc = server_metrics_hub(server, body);
    if (rc == 0 && server->notifier != NULL) rc = server_metrics_notify(server, body);
    if (rc == 0 && server->deadletter != NULL) rc = server_metrics_dlq(server, body);
    if (rc == 0 && server->timers != NULL) timers_write_metrics(server->timers, body);
    if (rc != 0) {
        response_problem(response, 503, "Out of memory.", NULL, 0);
        return EXCHANGE_DONE;
    }
    response->status = 200;
    response->content_type = "text/plain; version=0.0.4; charset=utf-8";
    response_header(response, "Cache-Control", "no-store");
    return EXCHANGE_DONE;
}

/* Serves the embedded web UI, with ETag revalidation. */
static enum exchange_status server_asset(struct exchange *exchange) {
    const struct asset *asset = assets_find(exchange->path, exchange->path_length);
    if (asset == NULL) {
        response_problem(&exchange->response, 404, "No resource exists at this path.", NULL, 0);
        return EXCHANGE_DONE;
    }
    const char *method = exchange->request->method;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        response_problem(&exchange->response, 405, "This resource does not support the method.",
                         NULL, 0);
        response_header(&exchange->response, "Allow", "GET, HEAD");
        return EXCHANGE_DONE;
    }
    const char *if_none_match = request_header(exchange->request, "if-none-match");
    if (if_none_match != NULL && strstr(if_none_match, asset->etag) != NULL) {
        response_set_static(&exchange->response, 304, NULL, "", 0);
    } else {
        response_set_static(&exchange->response, 200, asset->content_type,
                            (const char *)asset->data, asset->length);
    }
    response_header(&exchange->response, "ETag", asset->etag);
    response_header(&exchange->response, "Cache-Control", "no-cache");
    response_header(&exchange->response, "X-Content-Type-Options", "nosniff");
    return EXCHANGE_DONE;
}

static const struct route server_routes[] = {
    {"GET", "/healthz", server_healthz},
    {"GET", "/readyz", server_readyz},
    {"GET", "/metrics", server_metrics},
};

/* ---- Lifecycle -------------------------------------------------------- */

/* mkdir -p with mode 0700: the data directory holds users' data. */
static int server_make_directory(const char *path) {
    char partial[4096];
    size_t length = strlen(path);
    if (length == 0 || length >= sizeof partial) return ERR_INVAL;
    memcpy(partial, path, length + 1);
    for (size_t index = 1; index <= length; index++) {
        if (partial[index] != '/' && partial[index] != '\0') continue;
        char saved = partial[index];
        partial[index] = '\0';
        if (mkdir(partial, 0700) != 0 && errno != EEXIST) return err_from_errno(errno);
        partial[index] = saved;
    }
    struct stat info;
    if (stat(path, &info) != 0) return err_from_errno(errno);
    return S_ISDIR(info.st_mode) ? 0 : ERR_EXISTS;
}

static void server_on_http_closed(struct http_server *http) {
    struct server *server = (struct server *)((char *)http - offsetof(struct server, http));
    uv_close((uv_handle_t *)&server->signal_term, NULL);
    uv_close((uv_handle_t *)&server->signal_interrupt, NULL);
    if (server->evlog_timer_started) uv_close((uv_handle_t *)&server->evlog_timer, NULL);
    if (server->sweep_timer_started) uv_close((uv_handle_t *)&server->sweep_timer, NULL);
    if (server->hub_timer_started) uv_close((uv_handle_t *)&server->hub_timer, NULL);
    if (server->checkpoint_timer_started) {
        uv_close((uv_handle_t *)&server->checkpoint_timer, NULL);
    }
    if (server->timers != NULL) {
        timers_close(server->timers);
        server->timers = NULL;
    }
    LOG_INFO("server", "stopped", "requests=%llu",
             (unsigned long long)http->stats.requests_total);
}

static void server_on_signal(uv_signal_t *handle, int signal_number) {
    struct server *server = handle->data;
    if (server->stopping) {
        LOG_WARN("server", "second stop signal; closing connections now", "signal=%d",
                 signal_number);
        http_server_shutdown(&server->http, 0, server_on_http_closed);
        return;
    }
    server->stopping = 1;
    LOG_INFO("server", "stopping", "signal=%s grace_ms=%lld",
             signal_number == SIGTERM ? "SIGTERM" : "SIGINT",
             (long long)server->config->shutdown_grace_ms);
    notify_send("STOPPING=1");
    http_server_shutdown(&server->http, (uint64_t)server->config->shutdown_grace_ms,
                         server_on_http_closed);
}

static int server_start_tls(struct server *server) {
    const struct config *config = server->config;
    int has_cert = config->tls_cert[0] != '\0';
    int has_key = config->tls_key[0] != '\0';
    if (!has_cert && !has_key) return 0;
    if (has_cert != has_key) {
        LOG_ERROR("server", "tls_cert and tls_key must be set together", NULL);
        return ERR_CONFIG;
    }
    char error[256];
    if (tls_server_config_init(&server->tls, config->tls_cert, config->tls_key, error,
                               sizeof error) != 0) {
        char quoted[300];
        LOG_ERROR("server", "cannot start TLS", "error=%s",
                  logger_quote(error, quoted, sizeof quoted));
        return ERR_CONFIG;
    }
    server->tls_enabled = 1;
    return 0;
}

static void server_on_evlog_timer(uv_timer_t *timer) {
    struct server *server = timer->data;
    evlog_retry(server->evlog);
}

/* Opens <data_dir>/log, recovering it; corruption stops the start-up. */
static int server_open_evlog(struct server *server) {
    char directory[4096];
    int length = snprintf(directory, sizeof directory, "%s/log", server->config->data_dir);
    if (length <= 0 || (size_t)length >= sizeof directory) return ERR_LIMIT;
    evlog_uv_executor_init(&server->evlog_executor, server->loop);
    const struct config *config = server->config;
    struct evlog_options options = {
        .directory = directory,
        .executor = &server->evlog_executor.base,
        .segment_bytes_max = config->evlog_segment_bytes,
        .segment_age_ms_max = config->evlog_segment_age_ms,
        .retention_bytes_max = config->evlog_retention_bytes,
        .retention_age_ms_max = config->evlog_retention_age_ms,
        .repair = (int)config->evlog_repair,
    };
    struct evlog_error error = {{0}};
    int rc = evlog_open(&server->evlog, &options, &error);
    if (rc != 0) {
        char quoted[900];
        LOG_ERROR("server", "cannot open the event log", "error=%s",
                  logger_quote(error.message[0] ? error.message : err_str(rc), quoted,
                               sizeof quoted));
        server->evlog = NULL;
        return rc;
    }
    uv_timer_init(server->loop, &server->evlog_timer);
    server->evlog_timer.data = server;
    server->evlog_timer_started = 1;
    uv_timer_start(&server->evlog_timer, server_on_evlog_timer, LIMIT_EVLOG_RETRY_MS,
                   LIMIT_EVLOG_RETRY_MS);
    uv_unref((uv_handle_t *)&server->evlog_timer);
    return 0;
}

static void server_on_sweep(uv_timer_t *timer) {
    struct server *server = timer->data;
    int64_t now_ns = clock_system()->wall_ns(clock_system());
    int64_t days = server->config->audit_retention_days;
    int64_t audit_before = days > 0 ? now_ns - days * 86400 * INT64_C(1000000000) : INT64_MIN;
    int64_t keys_before = now_ns - INT64_C(86400) * 1000000000; /* idempotency keys: 24 h */
    /* The projection's offset lives in SQLite; mirroring it as a required
     * consumer of the log keeps retention from deleting events it has not
     * applied (and shows it in `docket log consumers`). */
    int rc = evlog_consumer_commit(server->events, "projection",
                                   projection_offset(server->projection));
    if (rc != 0) LOG_WARN("server", "cannot record the projection's offset", "error=%s", err_name(rc));
    if (server->hub != NULL) {
        rc = evlog_consumer_commit(server->events, "realtime", hub_offset(server->hub));
        if (rc != 0) LOG_WARN("server", "cannot record the realtime offset", "error=%s", err_name(rc));
    }
    if (server->notifier != NULL) {
        rc = evlog_consumer_commit(server->events, NOTIFIER_CONSUMER,
                                   notifier_offset(server->notifier));
        if (rc != 0) LOG_WARN("server", "cannot record the notifier offset", "error=%s", err_name(rc));
    }
    int64_t deleted = service_sweep(server->service, audit_before, keys_before);
    if (deleted > 0) LOG_INFO("server", "swept", "rows=%lld", (long long)deleted);
    if (deleted < 0) LOG_WARN("server", "sweep failed", "error=%s", err_name((int)deleted));
}

/* ---- Checkpoints --------------------------------------------------------- */

static void server_checkpoint_work(void *arg) {
    struct server *server = arg;
    int log_pages = 0;
    int copied_pages = 0;
    /* PASSIVE never waits for readers or the writer: what it cannot copy now
     * it copies next time, and the projection keeps committing meanwhile. */
    server->checkpoint_status =
        sqlite3_wal_checkpoint_v2(db_handle(server->db_checkpointer), NULL,
                                  SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied_pages);
    server->checkpoint_wal_pages = log_pages;
}

static void server_checkpoint_done(void *arg) {
    struct server *server = arg;
    server->checkpoint_running = 0;
    server->checkpoints_total++;
    if (server->checkpoint_status != SQLITE_OK && server->checkpoint_status != SQLITE_BUSY) {
        LOG_WARN("server", "checkpoint failed", "sqlite=%d", server->checkpoint_status);
    }
    if (server->checkpoint_wal_pages > SERVER_WAL_PAGES_WARN) {
        LOG_WARN("server", "the WAL is not shrinking", "pages=%d", server->checkpoint_wal_pages);
    }
}

static void server_on_checkpoint_timer(uv_timer_t *timer) {
    struct server *server = timer->data;
    if (server->checkpoint_running || server->stopping) return;
    server->checkpoint_running = 1;
    server->checkpoint_executor.base.submit(&server->checkpoint_executor.base,
                                            server_checkpoint_work, server_checkpoint_done,
                                            server);
}

static void server_start_checkpoints(struct server *server) {
    evlog_uv_executor_init(&server->checkpoint_executor, server->loop);
    uv_timer_init(server->loop, &server->checkpoint_timer);
    server->checkpoint_timer.data = server;
    server->checkpoint_timer_started = 1;
    uv_timer_start(&server->checkpoint_timer, server_on_checkpoint_timer, SERVER_CHECKPOINT_MS,
                   SERVER_CHECKPOINT_MS);
    uv_unref((uv_handle_t *)&server->checkpoint_timer);
}

/* ---- Realtime ---------------------------------------------------------- */

static int server_hub_read(void *arg, const char *user_id, int64_t after, size_t limit,
                           hub_event_each each, void *each_arg) {
    struct server *server = arg;
    return query_events_each(server->db, user_id, after, limit, each, each_arg);
}

static int server_hub_last_sequence(void *arg, const char *user_id, int64_t *out) {
    struct server *server = arg;
    struct user_record user;
    int rc = query_user_by_id(server->db, user_id, &user);
    *out = rc == 0 ? user.last_sequence : 0;
    return rc == ERR_NOTFOUND ? 0 : rc;
}

static void server_on_applied(void *arg, int64_t applied_end) {
    struct server *server = arg;
    int rc = hub_advance(server->hub, applied_end, uv_now(server->loop));
    if (rc != 0) LOG_WARN("server", "realtime fan-out failed", "error=%s", err_name(rc));
    if (server->notifier != NULL) notifier_advance(server->notifier, applied_end);
    timers_applied(server->timers, applied_end);
}

static void server_on_hub_timer(uv_timer_t *timer) {
    struct server *server = timer->data;
    hub_tick(server->hub, uv_now(server->loop));
}

/* Reminders and spawns: every pending timer of the projection goes on the
 * wheel; timers_applied (server_on_applied) keeps it in step afterwards. */
static int server_open_timers(struct server *server) {
    struct timers_options options = {
        .loop = server->loop,
        .service = server->service,
        .db = server->db,
        .clock = clock_system(),
        .grace_ms = server->config->reminders_grace_ms,
        .applied_offset = projection_offset(server->projection),
    };
    int rc = timers_open(&server->timers, &options);
    if (rc != 0) LOG_ERROR("server", "cannot start the reminder scheduler", "error=%s", err_name(rc));
    return rc;
}

/* The hub starts where the projection is: sockets opened from now on get
 * later events live and earlier ones by catch-up from the database. */
static int server_open_hub(struct server *server) {
    const struct config *config = server->config;
    struct hub_options options = {
        .topic = server->events,
        .source = {server_hub_read, server_hub_last_sequence, server},
        .max_connections = (size_t)config->ws_max_connections,
        .max_connections_per_user = (size_t)config->ws_max_connections_per_user,
        .stall_timeout_ms = (uint64_t)config->ws_stall_timeout_ms,
        .start_offset = projection_offset(server->projection),
    };
    int rc = hub_open(&server->hub, &options);
    if (rc != 0) {
        LOG_ERROR("server", "cannot start realtime sync", "error=%s", err_name(rc));
        return rc;
    }
    service_set_applied_hook(server->service, server_on_applied, server);
    server->api.hub = server->hub;
    uv_timer_init(server->loop, &server->hub_timer);
    server->hub_timer.data = server;
    server->hub_timer_started = 1;
    uv_timer_start(&server->hub_timer, server_on_hub_timer, 1000, 1000);
    uv_unref((uv_handle_t *)&server->hub_timer);
    return server_open_timers(server);
}

/* The "dlq" topic, notify.db and the dead-letter queue (which copies into
 * notify.db what a crash kept from being mirrored). Consumers that deliver
 * (the notifier) open after this with server->notify_db and
 * server->deadletter. */
static int server_open_deadletter(struct server *server) {
    char path[4200];
    snprintf(path, sizeof path, "%s/notify.db", server->config->data_dir);
    struct db_error db_error = {{0}};
    int rc = notify_db_open(&server->notify_db, path, &db_error);
    if (rc != 0) {
        char quoted[700];
        LOG_ERROR("server", "cannot open the notification database", "error=%s",
                  logger_quote(db_error.message, quoted, sizeof quoted));
        server->notify_db = NULL;
        return rc;
    }
    rc = evlog_topic_open(server->evlog, "dlq", &server->dlq_topic);
    if (rc == 0) rc = deadletter_open(&server->deadletter, server->dlq_topic, server->notify_db,
                                      NULL);
    if (rc != 0) {
        LOG_ERROR("server", "cannot open the dead-letter queue", "error=%s", err_name(rc));
        return rc;
    }
    server->api.deadletter = server->deadletter;
    return 0;
}

/* Outbound TLS trusts notify.ca_file or the system bundle; without either,
 * e-mail, push and webhook deliveries fail with a clear error and the rest of
 * Docket runs. */
static void server_open_trust(struct server *server) {
    char error[300] = "";
    int rc = outbound_trust_open(&server->trust, server->config->notify_ca_file, error,
                                 sizeof error);
    if (rc != 0) {
        char quoted[400];
        LOG_WARN("server", "no CA certificates for outbound TLS; e-mail, push and webhook "
                           "deliveries over TLS will fail", "error=%s",
                 logger_quote(error, quoted, sizeof quoted));
        server->trust = NULL;
    }
}

/* The notifier reads the log from its stored offset ("notifier"; the
 * projection's offset the first time) and retention keeps what it has not
 * read. It opens after the hub (its in-app channel) and the dead-letter queue. */
static int server_open_notifier(struct server *server) {
    const struct config *config = server->config;
    char error[300] = "";
    server_open_trust(server);
    struct notifier_options options = {
        .loop = server->loop,
        .clock = clock_system(),
        .topic = server->events,
        .start_offset = projection_offset(server->projection),
        .db = server->db,
        .notify_db = server->notify_db,
        .service = server->service,
        .hub = server->hub,
        .deadletter = server->deadletter,
        .max_inflight = (size_t)config->notify_max_inflight,
    };
    struct evlog_consumer_info info;
    if (evlog_consumer_fetch(server->events, NOTIFIER_CONSUMER, &info) == 0) {
        options.start_offset = info.offset;
    }
    int rc = retry_policy_parse(config->notify_retry_delays_ms, &options.policy);
    if (rc != 0) snprintf(error, sizeof error, "notify.retry_delays_ms is not a list of waits");
    server->channels.loop = server->loop;
    server->channels.trust = server->trust;
    server->channels.clock = clock_system();
    server->channels.db = server->db;
    server->channels.service = server->service;
    server->channels.vapid = &server->vapid;
    if (rc == 0) rc = notify_channels_init(&server->channels, config, error, sizeof error);
    notify_channels_bind(&server->channels, &options);
    if (rc == 0) rc = evlog_consumer_commit(server->events, NOTIFIER_CONSUMER, options.start_offset);
    if (rc == 0) rc = evlog_consumer_set_required(server->events, NOTIFIER_CONSUMER, 1);
    if (rc == 0) rc = notifier_open(&server->notifier, &options);
    if (rc == 0) rc = notifier_advance(server->notifier, projection_offset(server->projection));
    if (rc != 0) {
        char quoted[400];
        LOG_ERROR("server", "cannot start the notifier", "error=%s detail=%s", err_name(rc),
                  logger_quote(error, quoted, sizeof quoted));
    }
    return rc;
}

/* The VAPID key pair of Web Push: <data_dir>/vapid-private.pem, created
 * (mode 0600) on the first start. An unreadable or foreign key stops the
 * start-up: push subscriptions are bound to this key. */
static int server_open_vapid(struct server *server) {
    char path[4200];
    char error[512] = "";
    snprintf(path, sizeof path, "%s/vapid-private.pem", server->config->data_dir);
    int rc = webpush_vapid_load_or_create(path, &server->vapid, error, sizeof error);
    if (rc != 0) {
        char quoted[600];
        LOG_ERROR("server", "cannot load the VAPID key", "error=%s detail=%s", err_name(rc),
                  logger_quote(error, quoted, sizeof quoted));
        return rc;
    }
    server->api.vapid = &server->vapid;
    return 0;
}

/* The database, the projection (caught up with the log before anything is
 * served), the command layer and the API. */
static int server_open_domain(struct server *server) {
    char path[4200];
    snprintf(path, sizeof path, "%s/docket.db", server->config->data_dir);
    struct db_error db_error = {{0}};
    int rc = db_open(&server->db_writer, path, &db_error);
    /* The projection's commits never checkpoint: inside a commit a checkpoint
     * (at the default 1,000 pages, ~40% of the projection's time; at 16,384, a
     * 50 ms stall every few seconds) delays every write answered by that batch.
     * A background connection checkpoints instead (server_on_checkpoint_timer);
     * the WAL file is truncated back to 64 MiB after it restarts. */
    if (rc == 0 && db_exec(server->db_writer, "PRAGMA wal_autocheckpoint = 0;"
                                              "PRAGMA journal_size_limit = 67108864;") != 0) {
        snprintf(db_error.message, sizeof db_error.message, "cannot set checkpoint pragmas");
        rc = ERR_IO;
    }
    if (rc == 0) rc = db_open(&server->db_checkpointer, path, &db_error);
    if (rc == 0 && db_exec(server->db_checkpointer, "PRAGMA cache_size = -1024;") != 0) {
        snprintf(db_error.message, sizeof db_error.message, "cannot set the checkpointer's cache");
        rc = ERR_IO;
    }
    if (rc == 0) rc = db_open(&server->db, path, &db_error);
    if (rc != 0) {
        char quoted[700];
        LOG_ERROR("server", "cannot open the database", "error=%s",
                  logger_quote(db_error.message, quoted, sizeof quoted));
        server->db = NULL;
        return rc;
    }
    rc = evlog_topic_open(server->evlog, "events", &server->events);
    if (rc == 0) rc = projection_open(&server->projection, server->db_writer, server->events);
    /* SQLite writes (commits, checkpoints) run on the thread pool with their
     * own connection; the loop keeps answering and appending meanwhile. */
    evlog_uv_executor_init(&server->projection_executor, server->loop);
    struct service_options options = {.topic = server->events,
                                      .db = server->db,
                                      .projection = server->projection,
                                      .executor = &server->projection_executor.base,
                                      .projection_db = server->db_writer};
    if (rc == 0) rc = service_open(&server->service, &options);
    if (rc != 0) {
        LOG_ERROR("server", "cannot apply the event log to the database", "error=%s",
                  err_name(rc));
        return rc;
    }
    rc = api_init(&server->api, server->config, server->loop, server->db, server->service,
                  server->evlog);
    if (rc != 0) return rc;
    server->api_ready = 1;
    rc = server_open_vapid(server);
    if (rc != 0) return rc;
    rc = server_open_deadletter(server);
    if (rc != 0) return rc;
    rc = server_open_hub(server);
    if (rc != 0) return rc;
    rc = server_open_notifier(server);
    if (rc != 0) return rc;
    server_start_checkpoints(server);
    const struct asset *openapi = assets_find("/openapi.json", 13);
    if (openapi != NULL) {
        server->api.openapi = (const char *)openapi->data;
        server->api.openapi_length = openapi->length;
    }
    size_t count = 0;
    for (size_t index = 0; index < sizeof server_routes / sizeof server_routes[0]; index++) {
        server->routes[count++] = server_routes[index];
    }
    for (size_t index = 0; index < api_route_count && count < SERVER_ROUTES_MAX; index++) {
        server->routes[count++] = api_routes[index];
    }
    CHECK(count == api_route_count + sizeof server_routes / sizeof server_routes[0]);
    server->route_count = count;
    rc = evlog_consumer_set_required(server->events, "projection", 1);
    if (rc == 0) {
        rc = evlog_consumer_commit(server->events, "projection",
                                   projection_offset(server->projection));
    }
    if (rc != 0) {
        LOG_ERROR("server", "cannot register the projection as a consumer", "error=%s",
                  err_name(rc));
        return rc;
    }
    uv_timer_init(server->loop, &server->sweep_timer);
    server->sweep_timer.data = server;
    server->sweep_timer_started = 1;
    uv_timer_start(&server->sweep_timer, server_on_sweep, 1000, LIMIT_AUDIT_SWEEP_MS);
    uv_unref((uv_handle_t *)&server->sweep_timer);
    return 0;
}

static int server_listen(struct server *server) {
    const struct config *config = server->config;
    struct http_server_options options = {
        .listen = config->listen,
        .max_connections = (size_t)config->max_connections,
        .max_body_bytes = (size_t)config->http_max_body_bytes,
        .header_timeout_ms = (uint64_t)config->http_header_timeout_ms,
        .body_timeout_ms = (uint64_t)config->http_body_timeout_ms,
        .idle_timeout_ms = (uint64_t)config->http_idle_timeout_ms,
        .tls = server->tls_enabled ? &server->tls : NULL,
        .routes = server->routes,
        .route_count = server->route_count,
        .fallback = server_asset,
        .context = server,
    };
    char error[256];
    int rc = http_server_start(&server->http, server->loop, &options, error, sizeof error);
    if (rc != 0) {
        char quoted[300];
        LOG_ERROR("server", "cannot listen", "error=%s", logger_quote(error, quoted, sizeof quoted));
        return rc;
    }
    LOG_INFO("server", "listening", "address=%s scheme=%s", server->http.bound_address,
             server->tls_enabled ? "https" : "http");
    return 0;
}

/* Every connection is a descriptor, and the soft limit is often 1,024 while
 * the hard one is far higher: take what the hard limit allows, and say when
 * max_connections cannot be reached. */
static void server_raise_file_limit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    }
}

int server_run(const struct config *config) {
    struct server *server = mem_calloc(1, sizeof *server);
    if (server == NULL) return ERR_NOMEM;
    server->config = config;
    server->loop = uv_default_loop();
    server->started_wall_seconds = (int64_t)time(NULL);
    signal(SIGPIPE, SIG_IGN);
    /* libuv's pool (default 4 threads) runs event-log commits, projection
     * batches and up to LIMIT_PASSWORD_HASHES_RUNNING password hashes; six
     * threads keep one of each free whatever the others do. An operator's
     * own setting wins. */
    setenv("UV_THREADPOOL_SIZE", "6", 0);
    server_raise_file_limit();
    char quoted[600];
    struct sockaddr_storage address;
    int rc = http_server_parse_address(config->listen, &address);
    if (rc != 0) {
        LOG_ERROR("server", "listen must be HOST:PORT or [IPv6]:PORT", "listen=%s",
                  logger_quote(config->listen, quoted, sizeof quoted));
        rc = ERR_CONFIG;
        goto done;
    }
    rc = server_make_directory(config->data_dir);
    if (rc != 0) {
        LOG_ERROR("server", "cannot create the data directory", "path=%s error=%s",
                  logger_quote(config->data_dir, quoted, sizeof quoted), err_str(rc));
        goto done;
    }
    rc = server_open_evlog(server);
    if (rc != 0) goto done;
    rc = server_open_domain(server);
    if (rc != 0) goto done;
    rc = server_start_tls(server);
    if (rc != 0) goto done;
    rc = server_listen(server);
    if (rc != 0) goto done;
    uv_signal_init(server->loop, &server->signal_term);
    uv_signal_init(server->loop, &server->signal_interrupt);
    server->signal_term.data = server;
    server->signal_interrupt.data = server;
    uv_signal_start(&server->signal_term, server_on_signal, SIGTERM);
    uv_signal_start(&server->signal_interrupt, server_on_signal, SIGINT);
    timezone_source_log(); /* system zoneinfo or the embedded tzdata */
    LOG_INFO("server", "ready", "version=%s data_dir=%s pid=%d", DOCKET_VERSION,
             logger_quote(config->data_dir, quoted, sizeof quoted), (int)getpid());
    notify_send("READY=1\nSTATUS=serving");
    uv_run(server->loop, UV_RUN_DEFAULT);
    rc = 0;
done:
    if (rc != 0 && server->evlog_timer_started) uv_close((uv_handle_t *)&server->evlog_timer, NULL);
    if (rc != 0 && server->sweep_timer_started) uv_close((uv_handle_t *)&server->sweep_timer, NULL);
    if (rc != 0 && server->hub_timer_started) uv_close((uv_handle_t *)&server->hub_timer, NULL);
    if (rc != 0 && server->checkpoint_timer_started) {
        uv_close((uv_handle_t *)&server->checkpoint_timer, NULL);
    }
    /* A start that failed after the scheduler or the notifier opened: their
     * uv_timers would keep the loop below running for ever. */
    if (server->timers != NULL) {
        timers_close(server->timers);
        server->timers = NULL;
    }
    if (server->notifier != NULL) {
        notifier_close(server->notifier);
        server->notifier = NULL;
    }
    if (rc != 0) uv_run(server->loop, UV_RUN_NOWAIT); /* let failed handles close */
    if (server->evlog != NULL) {
        uv_run(server->loop, UV_RUN_DEFAULT); /* commits still on the pool finish first */
    }
    uv_run(server->loop, UV_RUN_NOWAIT); /* the scheduler's and notifier's timers close */
    outbound_trust_close(server->trust);
    if (server->hub != NULL) hub_close(server->hub);
    deadletter_close(server->deadletter); /* after the loop: no dlq append is in flight */
    if (server->notify_db != NULL) db_close(server->notify_db);
    service_close(server->service);
    if (server->api_ready) api_free(&server->api);
    projection_close(server->projection);
    if (server->db != NULL) db_close(server->db);
    if (server->db_writer != NULL) db_close(server->db_writer);
    if (server->db_checkpointer != NULL) db_close(server->db_checkpointer);
    if (server->evlog != NULL) evlog_close(server->evlog);
    if (server->tls_enabled) tls_server_config_free(&server->tls);
    uv_loop_close(server->loop);
    mem_free(server);
    return rc;
}
