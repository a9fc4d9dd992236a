/* The relay: admits a connection into its room (membership, welcome), turns
 * client messages into packets for the bus, delivers what the bus brings to
 * the room's local members, tells them who joins and leaves (user-joined /
 * user-left, from the roster), and handles leaving. The relay_deliver ..
 * relay_absent functions are the bus's handler. */
#ifndef SIGNAL_RELAY_H
#define SIGNAL_RELAY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct conn;
struct bus_msg;

int relay_admit(struct conn *c);
void relay_leave(struct conn *c);
void relay_message(struct conn *c, const char *text, size_t len, bool binary);
void relay_deliver(void *node, const struct bus_msg *m);
void relay_room_ready(void *node, const char *room);
bool relay_joined(void *node, const char *room, const char *key);
void relay_present(void *node, const char *room, const char *key, json_t *account,
                   const char *joined_at);
void relay_absent(void *node, const char *room, const char *key, const char *account_id);
void relay_slow(void *node, bool slow);

#endif
