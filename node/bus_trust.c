/* What the Redis bus accepts from a room's channel. Whoever can PUBLISH to
 * Redis can write on a room's channel, so every message is checked before
 * it is used: its form (common/bus_wire.c) and what it carries. A message
 * that fails is dropped, counted by reason (signal_bus_rejected_total) and
 * logged, at most one line per LOG_EVERY_MS however many fail. See
 * docs/cluster.md, "What a node accepts from a channel". */
#include <string.h>

#include "bus_redis.h"
#include "clock.h"
#include "log.h"

#define LOG_EVERY_MS 10000

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
              "redis bus: dropped a message on the room's channel: %s; %llu more dropped since "
              "the last such line (signal_bus_rejected_total counts them)",
              what, (unsigned long long)b->rejects_unlogged);
    b->rejects_logged_ms = now;
    b->rejects_unlogged = 0;
    return false;
}

static bool str_is(struct wire_str s, const char *z)
{
    return s.len == strlen(z) && !memcmp(s.p, z, s.len);
}

bool trust_accept(struct bus_redis *b, const char *room, const char *text, size_t len,
                  struct wire_msg *w, bool *mine)
{
    if (!wire_decode(text, len, w))
        return reject(b, room, REJECT_MALFORMED, "not a well-formed message");
    /* This node's own echo is only counted back in (flow control), never
     * delivered or applied: it needs no check. */
    *mine = str_is(w->origin, b->instance);
    if (*mine)
        return true;
    if (!wire_content_ok(w))
        return reject(b, room, REJECT_INVALID_PACKET,
                      w->kind == WIRE_SIGNAL ? "its packet is not a webrtc.signal packet in JSON"
                                             : "its presence entry is not one a node writes");
    return true;
}
