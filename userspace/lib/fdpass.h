/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Passing file descriptors over a connected AF_UNIX stream socket
 * (SCM_RIGHTS), for the hand-over of listeners between two agents. Each
 * batch of at most FDPASS_BATCH fds rides on one byte of payload. */
#define FDPASS_BATCH 250

/* Send n fds (blocking socket). 0 or -errno. */
int fdpass_send(int sock, const int *fds, size_t n);
/* Receive exactly n fds into fds (O_CLOEXEC). 0 or -errno; on error none
 * of the fds received so far is left open. */
int fdpass_recv(int sock, int *fds, size_t n);
/* Read one line ending in '\n' without reading past it (so the bytes that
 * carry fds stay queued). Returns its length without the newline, NUL
 * terminated, or -errno (-E2BIG when it does not fit in cap). */
ssize_t fdpass_read_line(int sock, char *buf, size_t cap);
