/* Unit tests of the Redis bus's wire format. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_wire.h"

static bool dec(const char *text, struct wire_msg *m)
{
    return wire_decode(text, strlen(text), m);
}

static bool eq(struct wire_str s, const char *want)
{
    return s.len == strlen(want) && !memcmp(s.p, want, s.len);
}

Test(bus_wire, signal_round_trip)
{
    char head[256], msg[512];
    size_t n =
        wire_signal_head(head, sizeof(head), "node-a:3f9c01aa", 17, 1700000000123456LL, "bob");
    cr_assert_eq(n, strlen("S|node-a:3f9c01aa|17@1700000000123456|3|bob"));
    cr_assert_eq(memcmp(head, "S|node-a:3f9c01aa|17@1700000000123456|3|bob", n), 0);
    snprintf(msg, sizeof(msg), "%.*s{\"type\":\"webrtc.signal\"}", (int)n, head);
    struct wire_msg m;
    cr_assert(dec(msg, &m));
    cr_assert_eq(m.kind, WIRE_SIGNAL);
    cr_assert(eq(m.origin, "node-a:3f9c01aa"));
    cr_assert_eq(m.conn, 17);
    cr_assert_eq(m.sent_us, 1700000000123456LL);
    cr_assert(eq(m.to, "bob"));
    cr_assert(eq(m.packet, "{\"type\":\"webrtc.signal\"}"));
}

Test(bus_wire, signal_for_everyone_and_without_stamp)
{
    struct wire_msg m;
    char head[64];
    size_t n = wire_signal_head(head, sizeof(head), "n:1", 2, 5, NULL);
    cr_assert_eq(n, strlen("S|n:1|2@5|0|"));
    cr_assert(dec("S|n:1|2|0|{}", &m), "an older node's signal, without the stamp");
    cr_assert_eq(m.conn, 2);
    cr_assert_eq(m.sent_us, 0);
    cr_assert_eq(m.to.len, 0);
    cr_assert(eq(m.packet, "{}"));
}

Test(bus_wire, presence)
{
    struct wire_msg m;
    cr_assert(dec("J|5120|node-a:3f|node-a:3f:17|{\"account\":{\"id\":\"a|b\"}}", &m));
    cr_assert_eq(m.kind, WIRE_JOIN);
    cr_assert_eq(m.version, 5120);
    cr_assert(eq(m.origin, "node-a:3f"));
    cr_assert(eq(m.key, "node-a:3f:17"));
    cr_assert(eq(m.value, "{\"account\":{\"id\":\"a|b\"}}"), "the value may hold '|'");
    cr_assert(dec("L|5121|sweep|node-b:0c:4|carol", &m));
    cr_assert_eq(m.kind, WIRE_LEAVE);
    cr_assert(eq(m.origin, "sweep"));
    cr_assert(eq(m.value, "carol"));
    cr_assert(dec("L|7|sweep|node-b:0c:4|", &m), "a leave whose account id was unreadable");
    cr_assert_eq(m.value.len, 0);
}

Test(bus_wire, malformed_messages_are_refused)
{
    struct wire_msg m;
    static const char *const bad[] = {
        "",
        "S",
        "X|a|b",
        "S|n:1|2|5|ab",
        "S|n:1|x|0|{}",
        "S|n:1|2",
        "S|n:1|2@|0|{}",
        "S|n:1|2@z|0|{}",
        "S|n:1|2|0|",
        "J|v|p|k|x",
        "J|1|p|",
        "J|1|p||x",
        "L|1|p",
        "S|n:1|99999999999999999999|0|{}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(dec(bad[i], &m), "accepted \"%s\"", bad[i]);
}

Test(bus_wire, names_and_keys)
{
    char *k = wire_name("signal:", "room:", "0b7f");
    cr_assert_str_eq(k, "signal:room:0b7f");
    free(k);
    cr_assert(wire_key_of("node-a:3f:17", "node-a:3f"));
    cr_assert_not(wire_key_of("node-a:3f1:17", "node-a:3f"));
    cr_assert_not(wire_key_of("node-a:3f", "node-a:3f"));
}

Test(bus_wire, head_that_does_not_fit)
{
    char head[8];
    cr_assert_eq(wire_signal_head(head, sizeof(head), "node-a:3f9c01aa", 1, 1, "bob"), 0);
}
