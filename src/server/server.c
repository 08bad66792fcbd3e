/*
 * server.c - wires configuration, the data directory, the HTTP transport and
 * the routes together, and owns the process lifecycle:
 *   start  -> data dir ready -> listening -> READY=1
 *   SIGTERM/SIGINT -> STOPPING=1 -> stop accepting -> in-flight requests
 *   finish (bounded by shutdown_grace_ms) -> every handle closed -> exit 0.
 */
#include "server.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/mem.h"
#include "../http/server.h"
#include "../net/notify.h"
#include "../net/tls.h"
#include "../web/assets.h"
#include "version.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <yyjson.h>

struct server {
    const struct config *config;     /* settings in force */
    uv_loop_t *loop;                 /* the one event loop */
    struct http_server http;         /* the listener and its connections */
    struct tls_server_config tls;    /* loaded when tls_cert/tls_key are set */
    int tls_enabled;                 /* tls holds a loaded configuration */
    uv_signal_t signal_term;         /* SIGTERM watcher */
    uv_signal_t signal_interrupt;    /* SIGINT watcher */
    int stopping;                    /* a stop signal was received */
    int64_t started_wall_seconds;    /* Unix time of start, for /metrics */
};

/* ---- Routes ----------------------------------------------------------- */

static enum exchange_status server_healthz(struct exchange *exchange) {
    static const char body[] = "{\"status\":\"ok\",\"version\":\"" DOCKET_VERSION "\"}";
    response_set_static(&exchange->response, 200, "application/json", body, sizeof body - 1);
    response_header(&exchange->response, "Cache-Control", "no-store");
    return EXCHANGE_DONE;
}

/* Ready means the data directory accepts writes (later also: the event log
 * and the database are open and writable). */
static int server_data_dir_writable(const struct server *server) {
    return access(server->config->data_dir, W_OK) == 0;
}

static enum exchange_status server_readyz(struct exchange *exchange) {
    struct server *server = exchange->context;
    int data_dir_ok = server_data_dir_writable(server);
    if (!data_dir_ok || server->stopping) {
        const char *detail = server->stopping ? "The server is shutting down."
                                              : "The data directory is not writable.";
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
    if (response_json(&exchange->response, 200, doc) != 0) {
        response_problem(&exchange->response, 503, "Out of memory.", NULL, 0);
    }
    yyjson_mut_doc_free(doc);
    response_header(&exchange->response, "Cache-Control", "no-store");
    return EXCHANGE_DONE;
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
        return ERR_TLS;
    }
    server->tls_enabled = 1;
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
        .routes = server_routes,
        .route_count = sizeof server_routes / sizeof server_routes[0],
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

int server_run(const struct config *config) {
    struct server *server = mem_calloc(1, sizeof *server);
    if (server == NULL) return ERR_NOMEM;
    server->config = config;
    server->loop = uv_default_loop();
    server->started_wall_seconds = (int64_t)time(NULL);
    signal(SIGPIPE, SIG_IGN);
    char quoted[600];
    int rc = server_make_directory(config->data_dir);
    if (rc != 0) {
        LOG_ERROR("server", "cannot create the data directory", "path=%s error=%s",
                  logger_quote(config->data_dir, quoted, sizeof quoted), err_str(rc));
        goto done;
    }
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
    LOG_INFO("server", "ready", "version=%s data_dir=%s pid=%d", DOCKET_VERSION,
             logger_quote(config->data_dir, quoted, sizeof quoted), (int)getpid());
    notify_send("READY=1\nSTATUS=serving");
    uv_run(server->loop, UV_RUN_DEFAULT);
    rc = 0;
done:
    if (rc != 0) uv_run(server->loop, UV_RUN_NOWAIT); /* let failed handles close */
    if (server->tls_enabled) tls_server_config_free(&server->tls);
    uv_loop_close(server->loop);
    mem_free(server);
    return rc;
}
