// SPDX-License-Identifier: MIT
#include "ev.h"

#include <stdlib.h>

#include "util.h"

/* The objects freed during one epoll batch: events for them may still wait
 * further down the batch, so their memory (and its dead flags) lives until
 * the batch is done. Single-threaded, like the loop. */
static void **grave;
static size_t n_grave, cap_grave;

void ev_defer_free(void *obj)
{
	if (n_grave == cap_grave) {
		cap_grave = cap_grave ? cap_grave * 2 : 64;
		grave = xrealloc(grave, cap_grave, sizeof(*grave));
	}
	grave[n_grave++] = obj;
}

void ev_reap(void)
{
	for (size_t i = 0; i < n_grave; i++)
		free(grave[i]);
	n_grave = 0;
}

void ev_fini(void)
{
	ev_reap();
	free(grave);
	grave = NULL;
	cap_grave = 0;
}
