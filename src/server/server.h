/*
 * server.h - the Docket process: data directory, HTTP listener, routes,
 * signals, systemd notification and orderly shutdown, all on one libuv loop.
 */
#ifndef DOCKET_SERVER_SERVER_H
#define DOCKET_SERVER_SERVER_H

#include "../config/config.h"

/* Runs until SIGTERM or SIGINT, then shuts down gracefully. Returns 0 on a
 * clean stop, a negative code if start-up failed (already logged): ERR_CONFIG
 * when a setting is unusable (bad listen address, TLS files). */
int server_run(const struct config *config);

#endif
