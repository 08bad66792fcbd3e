/*
 * server.h - the Docket process: data directory, HTTP listener, routes,
 * signals, systemd notification and orderly shutdown, all on one libuv loop.
 */
#ifndef DOCKET_SERVER_SERVER_H
#define DOCKET_SERVER_SERVER_H

#include "../config/config.h"

/* Runs until SIGTERM or SIGINT, then shuts down gracefully. Returns 0 on a
 * clean stop, a negative code if start-up failed (already logged). */
int server_run(const struct config *config);

#endif
