/* Rooms: the local members of each room, and its roster, the accounts
 * connected to it (with each of their connections and when it joined). The
 * roster drives the welcome's participants, user-joined/user-left and `to`
 * routing. A room exists while it has local members. */
#ifndef SIGNAL_ROOM_H
#define SIGNAL_ROOM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uthash.h>

#include "protocol.h"

struct conn;

struct roster_conn {
    char *key; /* "<node id>:<boot id>:<conn id>" */
    char joined_at[PROTOCOL_TIMESTAMP_LEN];
};

struct roster_entry {
    char *account_id;
    json_t *account;
    struct roster_conn *conns;
    size_t n_conns, cap;
    UT_hash_handle hh;
};

struct room {
    char id[PROTOCOL_GUID_LEN + 1];
    struct conn *members; /* local, joined; linked through conn->room_next */
    size_t n_members;
    /* Until the bus knows the room's presence, joining connections wait
     * here (linked the same way), so that their welcome is complete. */
    bool ready;
    struct conn *waiting;
    struct roster_entry *roster;
    UT_hash_handle hh;
};

struct room *room_find(struct room *rooms, const char *id);
struct room *room_open(struct room **rooms, const char *id);
/* Frees the room once it has no local member, joined or waiting; returns
 * true when it did. */
bool room_release(struct room **rooms, struct room *r);
void room_add_member(struct room *r, struct conn *c);
void room_remove_member(struct room *r, struct conn *c);
void room_add_waiting(struct room *r, struct conn *c);
void room_remove_waiting(struct room *r, struct conn *c);

enum roster_change { ROSTER_KNOWN, ROSTER_ADDED, ROSTER_FIRST };
/* ROSTER_FIRST when this is the account's first connection in the room;
 * ROSTER_KNOWN (and nothing changes) when key is there already. */
enum roster_change roster_add(struct room *r, const char *key, json_t *account,
                              const char *joined_at);
/* Returns the account (a new reference) when key was its last connection. */
json_t *roster_remove(struct room *r, const char *key, const char *account_id);
bool roster_has(const struct room *r, const char *account_id);
bool roster_has_key(const struct room *r, const char *key);
/* The welcome's participants: one per account other than except_account. */
json_t *roster_participants(const struct room *r, const char *except_account);

#endif
