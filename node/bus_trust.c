/* What the Redis bus accepts from a room's channel, and the signature on what
 * it publishes there. Whoever can PUBLISH to Redis can write on a room's
 * channel, so every message is checked before it is used: its form
 * (common/bus_wire.c), with SIGNAL_CLUSTER_SECRET its MAC, stamp and
 * sequence number (common/bus_auth.c), and what it carries. A message that
 * fails is dropped, counted by reason (signal_bus_rejected_total) and
 * logged, at most one line per LOG_EVERY_MS however many fail. See
 * docs/cluster.md, "What a node accepts from a channel". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_redis.h"
#include "clock.h"
#include "log.h"
#include "xalloc.h"

#define LOG_EVERY_MS 10000

/* The sequence numbers seen from one signer in one of its streams. */
struct signer {
    char *name; /* the stream ('S' signals, 'P' presence), then the instance */
    struct replay_window seen;
    long long newest_ms; /* the latest stamp accepted */
    UT_hash_handle hh;
};

void trust_init(struct bus_redis *b)
{
    const struct config *c = b->cfg;
    if (!c->cluster_secret)
        return;
    b->key = bus_key_new(c->cluster_secret, strlen(c->cluster_secret));
    if (c->cluster_secret_accept)
        b->key_accept = bus_key_new(c->cluster_secret_accept, strlen(c->cluster_secret_accept));
    if (!b->key || (c->cluster_secret_accept && !b->key_accept)) {
        /* OpenSSL without HMAC-SHA256, or out of memory: the node cannot
         * speak to a cluster that requires it. */
        log_error("bus_auth", "redis bus: OpenSSL cannot make an HMAC-SHA256 key; stopping");
        exit(1);
    }
    if (b->index == 0) /* the same key on every shard: said once */
        log_info("bus_auth", "redis bus: messages signed with key id %s%s%s", bus_key_id(b->key),
                 b->key_accept ? ", accepted with key ids " : "",
                 b->key_accept ? bus_key_id(b->key_accept) : "");
}

/* HASH_DEL unlinks each signer before it is freed; clang's analyzer cannot
 * follow uthash's table and reports a use after free. */
// NOLINTBEGIN(clang-analyzer-unix.Malloc)
static void signer_free(struct bus_redis *b, struct signer *g)
{
    HASH_DEL(b->signers, g);
    free(g->name);
    free(g);
}

void trust_free(struct bus_redis *b)
{
    bus_key_free(b->key);
    bus_key_free(b->key_accept);
    while (b->signers)
        signer_free(b, b->signers);
}

void trust_forget_quiet(struct bus_redis *b)
{
    /* A signer not heard from in BUS_MAX_AGE_MS: whatever it sent before is
     * stale by now, so its sequence numbers need not be kept. */
    long long old = clock_now_ms() - BUS_MAX_AGE_MS;
    struct signer *g, *tmp;
    HASH_ITER(hh, b->signers, g, tmp)
    {
        if (g->newest_ms < old)
            signer_free(b, g);
    }
}
// NOLINTEND(clang-analyzer-unix.Malloc)

size_t trust_sign(struct bus_redis *b, char *out, size_t size, const char *channel,
                  enum wire_kind kind, const struct wire_str *parts, size_t n)
{
    out[0] = '\0';
    if (!b->key)
        return 0;
    uint64_t seq = kind == WIRE_SIGNAL ? ++b->signed_signals : ++b->signed_presence;
    return bus_sign(b->key, out, size, channel, b->instance, seq, clock_now_ms(), parts, n);
}

/* ---- dropping ---- */

/* Counts a message dropped for why, and logs it unless a line went out
 * less than LOG_EVERY_MS ago. Returns false, for the caller to return. */
static bool reject(struct bus_redis *b, const char *room, enum bus_reject why, const char *what)
{
    b->stats->bus_rejected[why]++;
    int64_t now = clock_mono_ms();
    if (b->rejects_logged_ms && now - b->rejects_logged_ms < LOG_EVERY_MS) {
        b->rejects_unlogged++;
        return false;
    }
    struct log_fields f = {room, NULL, NULL, 0, -1};
    log_event(LOG_WARN, "bus_rejected", &f,
              "redis bus%s: dropped a message on the room's channel: %s; %llu more dropped since "
              "the last such line (signal_bus_rejected_total counts them)",
              b->tag, what, (unsigned long long)b->rejects_unlogged);
    b->rejects_logged_ms = now;
    b->rejects_unlogged = 0;
    return false;
}

/* ---- checking ---- */

static bool str_is(struct wire_str s, const char *z)
{
    return s.len == strlen(z) && !memcmp(s.p, z, s.len);
}

/* The key a message names, if this node has it. */
static struct bus_key *key_named(const struct bus_redis *b, struct wire_str id)
{
    if (str_is(id, bus_key_id(b->key)))
        return b->key;
    if (b->key_accept && str_is(id, bus_key_id(b->key_accept)))
        return b->key_accept;
    return NULL;
}

/* The sequence numbers seen from the signer of w (made if new). */
static struct replay_window *seen_from(struct bus_redis *b, const struct wire_msg *w)
{
    char name[160]; /* a letter and an instance, at most 137 bytes */
    snprintf(name, sizeof(name), "%c%.*s", w->kind == WIRE_SIGNAL ? 'S' : 'P',
             (int)w->auth.signer.len, w->auth.signer.p);
    struct signer *g;
    HASH_FIND_STR(b->signers, name, g);
    if (!g) {
        g = xcalloc(1, sizeof(*g));
        g->name = xstrdup(name);
        HASH_ADD_KEYPTR(hh, b->signers, g->name, strlen(g->name), g);
    }
    if (w->auth.stamp_ms > g->newest_ms)
        g->newest_ms = w->auth.stamp_ms;
    return &g->seen;
}

/* Checks w's authentication; false when it was dropped. */
static bool authentic(struct bus_redis *b, const char *channel, size_t channel_len,
                      const char *room, const struct wire_msg *w)
{
    char what[256];
    const struct wire_str *who = w->authenticated ? &w->auth.signer : &w->origin;
    int wl = (int)(who->len < 64 ? who->len : 64);
    if (!w->authenticated) {
        snprintf(what, sizeof(what), "unsigned (from %.*s), and this node requires a MAC", wl,
                 who->p);
        return reject(b, room, REJECT_UNSIGNED, what);
    }
    struct bus_key *k = key_named(b, w->auth.key_id);
    if (!k) {
        snprintf(what, sizeof(what),
                 "signed by %.*s with key id %.*s, which is not this node's (%s%s%s): is "
                 "SIGNAL_CLUSTER_SECRET the same on every node?",
                 wl, who->p, (int)w->auth.key_id.len, w->auth.key_id.p, bus_key_id(b->key),
                 b->key_accept ? " or " : "", b->key_accept ? bus_key_id(b->key_accept) : "");
        return reject(b, room, REJECT_UNKNOWN_KEY, what);
    }
    if (!bus_verify(k, channel, channel_len, w)) {
        snprintf(what, sizeof(what), "its MAC does not match (signer %.*s)", wl, who->p);
        return reject(b, room, REJECT_BAD_MAC, what);
    }
    long long now = clock_now_ms();
    if (!bus_fresh(w->auth.stamp_ms, now)) {
        snprintf(what, sizeof(what),
                 "stamped %lld s away from this node's clock by %.*s (a replay, or clocks "
                 "apart by more than %d s)",
                 (w->auth.stamp_ms - now) / 1000, wl, who->p, BUS_MAX_AGE_MS / 1000);
        return reject(b, room, REJECT_STALE, what);
    }
    if (!replay_accept(seen_from(b, w), w->auth.seq)) {
        snprintf(what, sizeof(what), "a replay (sequence number %llu of %.*s seen already)",
                 (unsigned long long)w->auth.seq, wl, who->p);
        return reject(b, room, REJECT_REPLAYED, what);
    }
    return true;
}

bool trust_accept(struct bus_redis *b, const char *channel, size_t channel_len, const char *room,
                  const char *text, size_t len, struct wire_msg *w, bool *mine)
{
    if (!wire_decode(text, len, w))
        return reject(b, room, REJECT_MALFORMED, "not a well-formed message");
    /* This node's own echo is only counted back in (flow control), never
     * delivered or applied: it costs no MAC and no check. */
    *mine = str_is(w->origin, b->instance);
    if (*mine)
        return true;
    /* Without a secret of its own a node cannot check a MAC: it takes
     * signed and unsigned messages alike, and checks what they carry. With
     * one, a valid MAC says a node wrote it, from what it had checked. */
    if (b->key)
        return authentic(b, channel, channel_len, room, w);
    if (!wire_content_ok(w))
        return reject(b, room, REJECT_INVALID_PACKET,
                      w->kind == WIRE_SIGNAL ? "its packet is not a webrtc.signal packet in JSON"
                                             : "its presence entry is not one a node writes");
    return true;
}
