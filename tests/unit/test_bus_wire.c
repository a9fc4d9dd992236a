/* Unit tests of the Redis bus's wire format. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_wire.h"

#define PACKET                                                                                     \
    "{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"offer\",\"data\":{\"sdp\":\"v=0\"},"         \
    "\"senderAccountId\":\"alice\",\"senderInfo\":{\"id\":\"alice\"}}}"
#define MAC "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

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
    snprintf(msg, sizeof(msg), "%.*s%s", (int)n, head, PACKET);
    struct wire_msg m;
    cr_assert(dec(msg, &m));
    cr_assert_eq(m.kind, WIRE_SIGNAL);
    cr_assert_not(m.authenticated);
    cr_assert(eq(m.origin, "node-a:3f9c01aa"));
    cr_assert_eq(m.conn, 17);
    cr_assert_eq(m.sent_us, 1700000000123456LL);
    cr_assert(eq(m.to, "bob"));
    cr_assert(eq(m.packet, PACKET));
    cr_assert(eq(m.covered[0], msg), "a MAC covers the whole signal");
    cr_assert_eq(m.covered[1].len, 0);
    cr_assert(wire_content_ok(&m));
}

Test(bus_wire, signal_for_everyone_and_without_stamp)
{
    struct wire_msg m;
    char head[64];
    size_t n = wire_signal_head(head, sizeof(head), "n:0000000a", 2, 5, NULL);
    cr_assert_eq(n, strlen("S|n:0000000a|2@5|0|"));
    cr_assert(dec("S|n:0000000a|2|0|{}", &m), "an older node's signal, without the stamp");
    cr_assert_eq(m.conn, 2);
    cr_assert_eq(m.sent_us, 0);
    cr_assert_eq(m.to.len, 0);
    cr_assert(eq(m.packet, "{}"));
}

Test(bus_wire, presence)
{
    struct wire_msg m;
    const char *join = "J|5120|node-a:3f9c01aa|node-a:3f9c01aa:17|{\"account\":{\"id\":\"a|b\"},"
                       "\"joinedAt\":\"t\"}";
    cr_assert(dec(join, &m));
    cr_assert_eq(m.kind, WIRE_JOIN);
    cr_assert_eq(m.version, 5120);
    cr_assert(eq(m.origin, "node-a:3f9c01aa"));
    cr_assert(eq(m.key, "node-a:3f9c01aa:17"));
    cr_assert(eq(m.value, "{\"account\":{\"id\":\"a|b\"},\"joinedAt\":\"t\"}"),
              "the value may hold '|'");
    cr_assert(eq(m.covered[0], "J|"));
    cr_assert(eq(m.covered[1], join + strlen("J|5120|")), "a MAC covers all but the version");
    cr_assert(wire_content_ok(&m));
    cr_assert(dec("L|5121|sweep|node-b:0c41d9e2:4|carol", &m));
    cr_assert_eq(m.kind, WIRE_LEAVE);
    cr_assert(eq(m.origin, "sweep"));
    cr_assert(eq(m.value, "carol"));
    cr_assert(wire_content_ok(&m));
    cr_assert(dec("L|7|sweep|node-b:0c41d9e2:4|", &m), "a leave whose account id was unreadable");
    cr_assert_eq(m.value.len, 0);
}

Test(bus_wire, malformed_messages_are_refused)
{
    struct wire_msg m;
    static const char *const bad[] = {
        "",
        "S",
        "X|a|b",
        "hello world",
        "S|n:0000000a|2|5|ab",
        "S|n:0000000a|x|0|{}",
        "S|n:0000000a|2",
        "S|n:0000000a|2@|0|{}",
        "S|n:0000000a|2@z|0|{}",
        "S|n:0000000a|2|0|",
        "S|n:0000000a|99999999999999999999|0|{}",
        "S|n:1|2|0|{}",          /* the boot is 8 hex digits */
        "S|n:0000000A|2|0|{}",   /* in lower case */
        "S|n o:0000000a|2|0|{}", /* a node id has no space */
        "S|sweep|2|0|{}",        /* only a leave comes from the sweep */
        ":0000000a",             /* no node id */
        "J|v|n:0000000a|n:0000000a:1|x",
        "J|1|n:0000000a|",
        "J|1|n:0000000a||x",
        "J|1|n:0000000a|n:0000000a|x",   /* a key is <instance>:<conn> */
        "J|1|n:0000000a|n:0000000a:x|x", /* ... with a number */
        "J|1|sweep|n:0000000a:1|x",      /* only a leave comes from the sweep */
        "L|1|n:0000000a",
        "A|",
        "A|0123abcd|n:0000000a|1|2|" MAC "|",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(dec(bad[i], &m), "accepted \"%s\"", bad[i]);
    static const char to_nul[] = "S|n:0000000a|2|3|a\0b{}";
    cr_assert_not(wire_decode(to_nul, sizeof(to_nul) - 1, &m), "a NUL in to");
    static const char value_nul[] = "L|1|sweep|n:0000000a:1|a\0b";
    cr_assert_not(wire_decode(value_nul, sizeof(value_nul) - 1, &m), "a NUL in an account id");
}

Test(bus_wire, authentication_head)
{
    struct wire_msg m;
    const char *text = "A|0123abcd|node-b:0c41d9e2|42|1700000000123|" MAC
                       "|L|9|node-b:0c41d9e2|node-b:0c41d9e2:4|carol";
    cr_assert(dec(text, &m));
    cr_assert(m.authenticated);
    cr_assert(eq(m.auth.key_id, "0123abcd"));
    cr_assert(eq(m.auth.signer, "node-b:0c41d9e2"));
    cr_assert_eq(m.auth.seq, 42);
    cr_assert_eq(m.auth.stamp_ms, 1700000000123LL);
    cr_assert(eq(m.auth.head, "A|0123abcd|node-b:0c41d9e2|42|1700000000123|"));
    cr_assert(eq(m.auth.mac, MAC));
    cr_assert_eq(m.kind, WIRE_LEAVE);
    cr_assert_eq(m.version, 9);
    cr_assert(eq(m.covered[0], "L|"));
    cr_assert(eq(m.covered[1], "node-b:0c41d9e2|node-b:0c41d9e2:4|carol"));
    static const char *const bad[] = {
        "A|0123abc|n:0000000a|1|2|" MAC "|L|1|sweep|n:0000000a:1|x",  /* short key id */
        "A|0123abcX|n:0000000a|1|2|" MAC "|L|1|sweep|n:0000000a:1|x", /* not hex */
        "A|0123abcd|sweep|1|2|" MAC "|L|1|sweep|n:0000000a:1|x", /* the signer is an instance */
        "A|0123abcd|n:0000000a|x|2|" MAC "|L|1|sweep|n:0000000a:1|x",  /* seq */
        "A|0123abcd|n:0000000a|1||" MAC "|L|1|sweep|n:0000000a:1|x",   /* stamp */
        "A|0123abcd|n:0000000a|1|2|" MAC "0|L|1|sweep|n:0000000a:1|x", /* long MAC */
        "A|0123abcd|n:0000000a|1|2|L|1|sweep|n:0000000a:1|x",          /* no MAC */
        "A|0123abcd|n:0000000a|1|2|" MAC "|A|0123abcd|n:0000000a|1|2|" MAC
        "|L|1|sweep|n:0000000a:1|x", /* two heads */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(dec(bad[i], &m), "accepted \"%s\"", bad[i]);
}

static bool content_ok(const char *text)
{
    struct wire_msg m;
    cr_assert(dec(text, &m), "%s", text);
    return wire_content_ok(&m);
}

Test(bus_wire, signal_packet_must_be_the_relayed_shape)
{
    cr_assert(
        content_ok("S|n:0000000a|1|3|bob{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"a\","
                   "\"data\":null,\"to\":\"bob\",\"senderAccountId\":\"x\",\"senderInfo\":{}}}"));
    cr_assert(content_ok("S|n:0000000a|1|0|{\"type\":\"webrtc.signal\",\"data\":{\"senderInfo\":{},"
                         "\"senderAccountId\":\"x\",\"type\":\"a\"}}"),
              "data's members in any order, its data left out");
    static const char *const bad[] = {
        "S|n:0000000a|1|0|garbage",
        "S|n:0000000a|1|0|{\"type\":\"webrtc.signal\"",
        "S|n:0000000a|1|0|[1,2]",
        "S|n:0000000a|1|0|{}",
        "S|n:0000000a|1|0|{\"type\":\"webrtc\",\"data\":{\"type\":\"a\",\"senderAccountId\":\"x\","
        "\"senderInfo\":{}}}",
        "S|n:0000000a|1|0|{\"data\":{\"type\":\"a\",\"senderAccountId\":\"x\",\"senderInfo\":{}},"
        "\"type\":\"webrtc.signal\"}",
        "S|n:0000000a|1|0|{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"a\",\"senderAccountId\":"
        "\"x\",\"senderInfo\":{}},\"x\":1}",
        "S|n:0000000a|1|0|{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"a\",\"senderInfo\":{}}}",
        "S|n:0000000a|1|0|{\"type\":\"webrtc.signal\",\"data\":{\"type\":1,\"senderAccountId\":"
        "\"x\","
        "\"senderInfo\":{}}}",
        "S|n:0000000a|1|0|{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"a\",\"senderAccountId\":"
        "\"x\",\"senderInfo\":\"x\"}}",
        "S|n:0000000a|1|0|{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"a\",\"senderAccountId\":"
        "\"x\",\"senderInfo\":{},\"type\":\"b\"}}",
        "S|n:0000000a|1|0|{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"a\",\"senderAccountId\":"
        "\"x\",\"senderInfo\":{},\"evil\":1}}",
        "S|n:0000000a|1|0|{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"a\",\"senderAccountId\":"
        "\"x\xff\",\"senderInfo\":{}}}",
        "S|n:0000000a|1|0|{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"a\",\"senderAccountId\":"
        "\"x\",\"senderInfo\":{}}} x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(content_ok(bad[i]), "accepted \"%s\"", bad[i]);
}

Test(bus_wire, join_value_must_be_a_presence_entry)
{
    cr_assert(content_ok("J|1|n:0000000a|n:0000000a:1|{\"account\":{\"id\":\"a\",\"name\":null},"
                         "\"joinedAt\":\"2025-03-01T10:00:01.002Z\"}"));
    static const char *const bad[] = {
        "J|1|n:0000000a|n:0000000a:1|x",
        "J|1|n:0000000a|n:0000000a:1|{\"account\":{\"id\":\"a\"}}",
        "J|1|n:0000000a|n:0000000a:1|{\"account\":{},\"joinedAt\":\"t\"}",
        "J|1|n:0000000a|n:0000000a:1|{\"account\":{\"id\":1},\"joinedAt\":\"t\"}",
        "J|1|n:0000000a|n:0000000a:1|{\"account\":\"a\",\"joinedAt\":\"t\"}",
        "J|1|n:0000000a|n:0000000a:1|{\"account\":{\"id\":\"\xc0\"},\"joinedAt\":\"t\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(content_ok(bad[i]), "accepted \"%s\"", bad[i]);
}

/* sent and version are long long: a larger number would come out negative,
 * and the lag computed from such a sent overflows (found by fuzz_bus_wire). */
Test(bus_wire, numbers_beyond_long_long_are_refused)
{
    struct wire_msg m;
    cr_assert(dec("S|n:0000000a|2@9223372036854775807|0|{}", &m));
    cr_assert_eq(m.sent_us, 9223372036854775807LL);
    cr_assert_not(dec("S|n:0000000a|2@9223372036854775808|0|{}", &m));
    cr_assert_not(dec("S|n:0000000a|2@9999999999999999999|0|{}", &m));
    cr_assert(dec("S|n:0000000a|9999999999999999999|0|{}", &m), "conn is unsigned 64-bit");
    cr_assert_eq(m.conn, 9999999999999999999ULL);
    cr_assert(dec("J|9223372036854775807|n:0000000a|n:0000000a:1|x", &m));
    cr_assert_eq(m.version, 9223372036854775807LL);
    cr_assert_not(dec("J|9223372036854775808|n:0000000a|n:0000000a:1|x", &m));
    cr_assert_not(dec("L|9999999999999999999|n:0000000a|n:0000000a:1|x", &m));
    cr_assert(
        dec("A|01234567|n:0000000a|1|9223372036854775807|"
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef|S|n:0000000a|2|0|{}",
            &m),
        "the stamp of a signed message too");
    cr_assert_not(
        dec("A|01234567|n:0000000a|1|9223372036854775808|"
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef|S|n:0000000a|2|0|{}",
            &m));
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
