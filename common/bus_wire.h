/* The Redis bus's wire format: key and channel names, and the messages on a
 * room's channel, decoded once into a struct. Pure: no Redis, no I/O.
 *
 *   S|<origin>|<conn>[@<sent>]|<to len>|<to><packet>   a signal
 *   J|<version>|<publisher>|<key>|<value>              a connection joined
 *   L|<version>|<publisher>|<key>|<account id>         a connection left
 *
 * <origin> and <publisher> are instances ("<node id>:<boot>"; the sweep
 * publishes as "sweep"), <conn> the sender's connection number, <sent> the
 * sender's wall clock in microseconds (a node of an older release reads
 * <conn> up to the '@' and ignores the rest), <to> the target account or
 * nothing, <packet> the serialized webrtc.signal packet, <version> the
 * cluster-wide presence version after the change, <key> the connection key
 * "<instance>:<conn>", <value> {"account":..,"joinedAt":..}. The J and L
 * messages are written by the Lua scripts in node/lua/. */
#ifndef SIGNAL_BUS_WIRE_H
#define SIGNAL_BUS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wire_kind { WIRE_SIGNAL = 'S', WIRE_JOIN = 'J', WIRE_LEAVE = 'L' };

/* A slice of the message text. */
struct wire_str {
    const char *p;
    size_t len;
};

/* One message; every string points into the decoded text. */
struct wire_msg {
    enum wire_kind kind;
    struct wire_str origin; /* S: the sender; J/L: the publisher */
    /* S */
    uint64_t conn;
    long long sent_us;  /* 0 when absent */
    struct wire_str to; /* empty for every member */
    struct wire_str packet;
    /* J/L */
    long long version;
    struct wire_str key;
    struct wire_str value; /* J: the presence value; L: the account id */
};

/* Decodes text; returns false (and *m is undefined) when it is not a
 * well-formed message. */
bool wire_decode(const char *text, size_t len, struct wire_msg *m);

/* Writes a signal's head, "S|origin|conn@sent|to len|" followed by to, into
 * out (size bytes); the packet follows it on the wire. Returns its length,
 * or 0 when it does not fit. */
size_t wire_signal_head(char *out, size_t size, const char *origin, uint64_t conn,
                        long long sent_us, const char *to);

/* prefix + kind + name, allocated: "signal:" "room:" "<room id>" is the
 * room's channel, "signal:" "presence:" "<room id>" its presence hash. */
char *wire_name(const char *prefix, const char *kind, const char *name);

/* Whether the connection key belongs to instance ("<instance>:<n>"). */
bool wire_key_of(const char *key, const char *instance);

#endif
