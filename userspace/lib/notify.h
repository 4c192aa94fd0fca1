/* SPDX-License-Identifier: MIT */
#pragma once

/* The service manager's readiness protocol (sd_notify(3), without
 * libsystemd): one datagram "KEY=VALUE\n..." to the AF_UNIX socket that
 * $NOTIFY_SOCKET names (a path, or "@name" for the abstract namespace).
 * NOTIFY_SOCKET is read at the first call and removed from the
 * environment, so the helpers the agent runs do not inherit it.
 * Returns 1 when sent, 0 when no NOTIFY_SOCKET is set (nothing to do), or a
 * negative errno (the caller logs it; a service does not fail for it). */
int notify_send(const char *state);

/* The states meshspliced sends; MONOTONIC_USEC goes with RELOADING=1 as
 * Type=notify-reload asks. */
int notify_ready(void);
int notify_reloading(void);
int notify_stopping(void);
