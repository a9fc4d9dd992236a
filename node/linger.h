/* Lingering close: a socket closed while its peer may still be sending is
 * half-closed and drained for a short, bounded time before it is closed,
 * so that the peer reads what was sent before the close. */
#ifndef SIGNAL_LINGER_H
#define SIGNAL_LINGER_H

#include <stdbool.h>

struct node;

/* A socket lingers while its peer sends something at least every
 * LINGER_IDLE_S seconds, and LINGER_MAX_MS at most. */
#define LINGER_IDLE_S 2
#define LINGER_MAX_MS 10000

/* Whether the peer has shut its side down (or is gone), so that nothing
 * more will come from it. */
bool linger_peer_done(int fd);
/* Whether unread input is waiting on fd. */
bool linger_unread(int fd);
/* If fd's send queue still holds bytes the peer has not acknowledged,
 * makes the socket's close a reset, so that the kernel frees them at once
 * instead of holding them (up to tcp_wmem's 4 MiB) for minutes while it
 * probes a window that stays shut. Returns whether it did. */
bool linger_reset_if_unsent(int fd);
/* fd is about to be closed by libwebsockets: keeps the socket open on a
 * duplicate, half-closed, and reads and discards what the peer still sends
 * until it closes too, for at most LINGER_IDLE_S seconds at a time and LINGER_MAX_MS
 * in all. Does nothing (the close is abrupt) when LINGER_MAX_SOCKETS are
 * lingering already or descriptors are short. */
void linger_start(struct node *n, int fd);
/* Closes every lingering socket (the node is stopping). */
void linger_free_all(struct node *n);

#endif
