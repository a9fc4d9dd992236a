/* The relay: admits a connection into its room (membership, welcome,
 * user-joined), turns client messages into packets for the bus, delivers
 * what the bus brings to the room's local members, and handles leaving. */
#ifndef SIGNAL_RELAY_H
#define SIGNAL_RELAY_H

#include <stdbool.h>
#include <stddef.h>

struct conn;
struct bus_msg;

int relay_admit(struct conn *c);
void relay_leave(struct conn *c);
void relay_message(struct conn *c, const char *text, size_t len, bool binary);
void relay_deliver(void *node, const struct bus_msg *m);

#endif
