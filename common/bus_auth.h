/* Authenticating the Redis bus's messages (SIGNAL_CLUSTER_SECRET): the
 * HMAC-SHA256 of the authentication head (common/bus_wire.h), made once per
 * message published and checked in constant time on receipt, the freshness
 * of its stamp, and a window of the sequence numbers already seen from one
 * signer, so that a message captured on a channel cannot be published
 * again. Pure: no Redis, no I/O; the MAC is OpenSSL's.
 *
 * The MAC covers, in order: "signal-bus-1\n", the channel the message is
 * published on, "\n", the head up to the MAC ("A|<key id>|<signer>|<seq>|
 * <stamp>|"), and the message behind it less a J or L's version (Redis
 * numbers presence changes after the node signed). So a message cannot be
 * moved to another room or cluster prefix, nor changed, nor claimed by
 * another signer, seq or stamp. */
#ifndef SIGNAL_BUS_AUTH_H
#define SIGNAL_BUS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus_wire.h"

/* The longest authentication head: a signer's instance, two numbers. */
#define BUS_AUTH_HEAD_MAX 272
/* A stamp further than this from the receiver's clock is refused: the
 * window in which a message can be replayed to a node that has not heard
 * from its signer, and the clock skew nodes may have. */
#define BUS_MAX_AGE_MS 60000
/* Sequence numbers this far below the highest seen are still told apart
 * (presence calls sent again after NOSCRIPT arrive a little late). */
#define BUS_REPLAY_WINDOW 1024

/* A secret, ready to sign and check with. */
struct bus_key;

/* A key for the secret's len bytes; NULL when OpenSSL cannot make one. */
struct bus_key *bus_key_new(const char *secret, size_t len);
void bus_key_free(struct bus_key *k);
/* The secret's id, WIRE_KEY_ID_LEN hex digits: the start of an HMAC of a
 * fixed text, so that nodes and logs can tell secrets apart without
 * showing them. */
const char *bus_key_id(const struct bus_key *k);

/* Writes the authentication head of a message published on channel,
 * "A|<key id>|<signer>|<seq>|<stamp>|<mac>|", into out (size bytes, at
 * least BUS_AUTH_HEAD_MAX). parts are the n pieces of the message as
 * published, less a J or L's version. Returns its length, or 0 when it
 * does not fit or OpenSSL failed. */
size_t bus_sign(struct bus_key *k, char *out, size_t size, const char *channel, const char *signer,
                uint64_t seq, long long stamp_ms, const struct wire_str *parts, size_t n);

/* Whether m (authenticated, with k's key id) carries k's MAC for channel
 * (channel_len bytes). The comparison takes the same time wherever the
 * MACs differ. */
bool bus_verify(struct bus_key *k, const char *channel, size_t channel_len,
                const struct wire_msg *m);

/* Whether a stamp is within BUS_MAX_AGE_MS of now, either way. */
bool bus_fresh(long long stamp_ms, long long now_ms);

/* The sequence numbers seen from one signer (zeroed: none yet). */
struct replay_window {
    uint64_t top; /* the highest seen */
    uint64_t seen[BUS_REPLAY_WINDOW / 64];
};

/* Whether seq is one not seen yet, and not too far below the highest to
 * tell; records it when it is. 0 is never valid. */
bool replay_accept(struct replay_window *w, uint64_t seq);

#endif
