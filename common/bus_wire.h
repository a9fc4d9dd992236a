/* The Redis bus's wire format: key and channel names, and the messages on a
 * room's channel, decoded once into a struct and checked before anything is
 * done with them. Pure: no Redis, no I/O.
 *
 *   S|<origin>|<conn>[@<sent>]|<to len>|<to><packet>   a signal
 *   J|<version>|<publisher>|<key>|<value>              a connection joined
 *   L|<version>|<publisher>|<key>|<account id>         a connection left
 *
 * <origin> and <publisher> are instances ("<node id>:<boot>", the boot 8
 * hex digits; a sweep's leaves carry "sweep"), <conn> the sender's
 * connection number, <sent> the sender's wall clock in microseconds (a node
 * of an older release reads <conn> up to the '@' and ignores the rest),
 * <to> the target account or nothing, <packet> the serialized webrtc.signal
 * packet, <version> the cluster-wide presence version after the change,
 * <key> the connection key "<instance>:<conn>", <value>
 * {"account":{"id":..,..},"joinedAt":..}. The J and L messages are written
 * by the Lua scripts in node/lua/.
 *
 * With SIGNAL_CLUSTER_SECRET, every message follows an authentication head
 * (common/bus_auth.h makes and checks its MAC):
 *
 *   A|<key id>|<signer>|<seq>|<stamp>|<mac>|<message>
 *
 * <key id> names the secret (8 hex digits), <signer> is the instance that
 * signed, <seq> its count of messages signed (one count for signals, one
 * for presence), <stamp> its wall clock in milliseconds, <mac> 64 hex
 * digits of HMAC-SHA256. */
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

#define WIRE_KEY_ID_LEN 8
#define WIRE_MAC_LEN 64

/* An authentication head. */
struct wire_auth {
    struct wire_str key_id, signer;
    uint64_t seq;
    long long stamp_ms;
    struct wire_str head; /* "A|<key id>|<signer>|<seq>|<stamp>|": the MAC covers it */
    struct wire_str mac;
};

/* One message; every string points into the decoded text. */
struct wire_msg {
    enum wire_kind kind;
    bool authenticated; /* it has an authentication head */
    struct wire_auth auth;
    /* What a MAC covers of the message behind the head: all of it, but a J
     * or L's version, which Redis numbers after the node signed. */
    struct wire_str covered[2];
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

/* Decodes text, the authentication head included; returns false (and *m
 * is undefined) when it is not a well-formed message. Every field is
 * checked for its form (instances, keys, numbers); the packet and the
 * presence value are checked by wire_content_ok. */
bool wire_decode(const char *text, size_t len, struct wire_msg *m);

/* Whether what a decoded message carries is what a node sends: a signal's
 * packet valid UTF-8 JSON of the webrtc.signal packet's shape, a join's
 * value {"account":{"id":string,..},"joinedAt":string}. */
bool wire_content_ok(const struct wire_msg *m);

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
