/* Unit tests of the bus's message authentication: key ids, signing and
 * checking the MAC, freshness, the replay window. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "bus_auth.h"

#define SECRET "0123456789abcdef-test-secret"
#define CHANNEL "signal:room:0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
#define SIGNER "node-a:3f9c01aa"
#define PACKET                                                                                     \
    "{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"offer\",\"senderAccountId\":\"a\","          \
    "\"senderInfo\":{}}}"

static struct bus_key *key(const char *secret)
{
    struct bus_key *k = bus_key_new(secret, strlen(secret));
    cr_assert_not_null(k);
    return k;
}

/* Signs msg (published as is, but for a J or L's version), then decodes
 * the whole into out (the text in buf). */
static void sign(struct bus_key *k, const char *channel, uint64_t seq, const char *msg, char *buf,
                 size_t size, struct wire_msg *out)
{
    struct wire_str parts[2] = {{msg, strlen(msg)}, {"", 0}};
    if (msg[0] != 'S') { /* less the version: "J|" and what follows "J|<version>|" */
        const char *after = strchr(msg + 2, '|') + 1;
        parts[0].len = 2;
        parts[1] = (struct wire_str){after, strlen(after)};
    }
    size_t n = bus_sign(k, buf, size, channel, SIGNER, seq, 1700000000123LL, parts, 2);
    cr_assert(n > 0);
    snprintf(buf + n, size - n, "%s", msg);
    cr_assert(wire_decode(buf, strlen(buf), out), "%s", buf);
}

Test(bus_auth, key_id_names_the_secret_without_showing_it)
{
    struct bus_key *a = key(SECRET), *b = key(SECRET "x");
    /* HMAC-SHA256(secret, "signal-node cluster key id"), its first 4 bytes */
    cr_assert_str_eq(bus_key_id(a), "21a94db0");
    cr_assert_str_neq(bus_key_id(a), bus_key_id(b));
    bus_key_free(a);
    bus_key_free(b);
}

Test(bus_auth, known_answer)
{
    /* The format docs/cluster.md gives, computed independently (Python's hmac). */
    struct bus_key *k = key(SECRET);
    char buf[512];
    struct wire_msg m;
    sign(k, CHANNEL, 7, "L|5121|node-a:3f9c01aa|node-a:3f9c01aa:17|alice", buf, sizeof(buf), &m);
    cr_assert_str_eq(buf, "A|21a94db0|node-a:3f9c01aa|7|1700000000123|"
                          "d9f731afddcd49c632dc1efaa7957a6f2ce745455cd8ed979222fbcd75a4ef1f|"
                          "L|5121|node-a:3f9c01aa|node-a:3f9c01aa:17|alice");
    cr_assert(bus_verify(k, CHANNEL, strlen(CHANNEL), &m));
    bus_key_free(k);
}

Test(bus_auth, signed_messages_verify)
{
    struct bus_key *k = key(SECRET);
    char buf[1024];
    struct wire_msg m;
    sign(k, CHANNEL, 1, "S|" SIGNER "|17@1700000000123456|3|bob" PACKET, buf, sizeof(buf), &m);
    cr_assert(bus_verify(k, CHANNEL, strlen(CHANNEL), &m));
    cr_assert_eq(m.auth.seq, 1);
    cr_assert_eq(m.auth.stamp_ms, 1700000000123LL);
    cr_assert(wire_content_ok(&m));
    sign(k, CHANNEL, 2,
         "J|77|" SIGNER "|" SIGNER ":17|{\"account\":{\"id\":\"a\"},\"joinedAt\":\"t\"}", buf,
         sizeof(buf), &m);
    cr_assert(bus_verify(k, CHANNEL, strlen(CHANNEL), &m));
    bus_key_free(k);
}

Test(bus_auth, any_change_breaks_the_mac)
{
    struct bus_key *k = key(SECRET), *other = key(SECRET "x");
    char buf[1024], copy[1024];
    struct wire_msg m;
    sign(k, CHANNEL, 9, "S|" SIGNER "|17@1700000000123456|3|bob" PACKET, buf, sizeof(buf), &m);
    size_t len = strlen(buf);
    cr_assert_not(bus_verify(other, CHANNEL, strlen(CHANNEL), &m), "another secret");
    const char *room2 = "signal:room:0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5c";
    cr_assert_not(bus_verify(k, room2, strlen(room2), &m), "another room");
    const char *prefix2 = "other:room:0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
    cr_assert_not(bus_verify(k, prefix2, strlen(prefix2), &m), "another cluster prefix");
    /* Every byte but those of the MAC's own text, changed one at a time
     * (to a character that keeps the message well-formed where it can). */
    size_t mac_at = (size_t)(m.auth.mac.p - buf);
    for (size_t i = 0; i < len; i++) {
        if (i >= mac_at && i < mac_at + WIRE_MAC_LEN)
            continue;
        memcpy(copy, buf, len + 1);
        copy[i] = copy[i] == '1' ? '2' : copy[i] == 'a' ? 'b' : '1';
        struct wire_msg c;
        if (wire_decode(copy, len, &c))
            cr_assert_not(bus_verify(k, CHANNEL, strlen(CHANNEL), &c), "byte %zu changed: %s", i,
                          copy);
    }
    memcpy(copy, buf, len + 1);
    copy[mac_at + 5] = copy[mac_at + 5] == '0' ? '1' : '0';
    struct wire_msg c;
    cr_assert(wire_decode(copy, len, &c));
    cr_assert_not(bus_verify(k, CHANNEL, strlen(CHANNEL), &c), "the MAC changed");
    bus_key_free(k);
    bus_key_free(other);
}

Test(bus_auth, presence_version_is_left_out)
{
    /* Redis numbers a presence change after the node signed it. */
    struct bus_key *k = key(SECRET);
    char buf[512], moved[512];
    struct wire_msg m;
    sign(k, CHANNEL, 3, "L|1|" SIGNER "|" SIGNER ":17|alice", buf, sizeof(buf), &m);
    const char *v = strstr(buf, "|L|1|");
    snprintf(moved, sizeof(moved), "%.*s|L|5120|%s", (int)(v - buf), buf, v + 5);
    cr_assert(wire_decode(moved, strlen(moved), &m));
    cr_assert_eq(m.version, 5120);
    cr_assert(bus_verify(k, CHANNEL, strlen(CHANNEL), &m));
    bus_key_free(k);
}

Test(bus_auth, an_unauthenticated_message_does_not_verify)
{
    struct bus_key *k = key(SECRET);
    struct wire_msg m;
    const char *text = "L|1|sweep|" SIGNER ":17|alice";
    cr_assert(wire_decode(text, strlen(text), &m));
    cr_assert_not(bus_verify(k, CHANNEL, strlen(CHANNEL), &m));
    bus_key_free(k);
}

Test(bus_auth, head_that_does_not_fit)
{
    struct bus_key *k = key(SECRET);
    char buf[80];
    struct wire_str part = {"L|", 2};
    cr_assert_eq(bus_sign(k, buf, sizeof(buf), CHANNEL, SIGNER, 1, 1, &part, 1), 0);
    bus_key_free(k);
}

Test(bus_auth, freshness)
{
    long long now = 1700000000000LL;
    cr_assert(bus_fresh(now, now));
    cr_assert(bus_fresh(now - BUS_MAX_AGE_MS, now));
    cr_assert(bus_fresh(now + BUS_MAX_AGE_MS, now));
    cr_assert_not(bus_fresh(now - BUS_MAX_AGE_MS - 1, now));
    cr_assert_not(bus_fresh(now + BUS_MAX_AGE_MS + 1, now));
    cr_assert_not(bus_fresh(0, now));
}

Test(bus_auth, replay_window)
{
    struct replay_window w = {0};
    cr_assert_not(replay_accept(&w, 0));
    cr_assert(replay_accept(&w, 1));
    cr_assert_not(replay_accept(&w, 1), "seen");
    cr_assert(replay_accept(&w, 5), "a gap");
    cr_assert(replay_accept(&w, 3), "late, within the window");
    cr_assert_not(replay_accept(&w, 3));
    cr_assert(replay_accept(&w, 2));
    cr_assert(replay_accept(&w, 4));
    cr_assert_not(replay_accept(&w, 5));
    cr_assert(replay_accept(&w, 5 + BUS_REPLAY_WINDOW - 1));
    cr_assert_not(replay_accept(&w, 5), "seen, at the window's edge");
    cr_assert_not(replay_accept(&w, 4), "too old to tell");
    cr_assert(replay_accept(&w, 6), "not seen, within the window");
    cr_assert(replay_accept(&w, 100000), "a gap wider than the window");
    cr_assert_not(replay_accept(&w, 100000));
    cr_assert(replay_accept(&w, 100000 - 1));
    cr_assert(replay_accept(&w, 100000 - BUS_REPLAY_WINDOW + 1));
    cr_assert_not(replay_accept(&w, 100000 - BUS_REPLAY_WINDOW));
}

Test(bus_auth, replay_window_slots_are_cleared_as_it_moves)
{
    struct replay_window w = {0};
    for (uint64_t s = 1; s <= 3 * BUS_REPLAY_WINDOW; s += 2)
        cr_assert(replay_accept(&w, s));
    for (uint64_t s = 2 * BUS_REPLAY_WINDOW + 2; s <= 3 * BUS_REPLAY_WINDOW; s += 2)
        cr_assert(replay_accept(&w, s), "%llu, never seen", (unsigned long long)s);
    for (uint64_t s = 2 * BUS_REPLAY_WINDOW + 1; s <= 3 * BUS_REPLAY_WINDOW; s++)
        cr_assert_not(replay_accept(&w, s), "%llu, seen", (unsigned long long)s);
}
