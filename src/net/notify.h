/*
 * notify.h - the systemd readiness protocol, spoken directly (no libsystemd).
 *
 * When NOTIFY_SOCKET is set (systemd Type=notify), notify_send("READY=1") and
 * friends send one datagram to that unix socket; otherwise they do nothing.
 */
#ifndef DOCKET_NET_NOTIFY_H
#define DOCKET_NET_NOTIFY_H

/* Sends `state` (e.g. "READY=1\nSTATUS=serving") if NOTIFY_SOCKET is set.
 * Returns 0 (also when not under systemd) or a negative code. */
int notify_send(const char *state);

#endif
