/* Unit tests of the single-pass JSON validator and the protocol's fast path,
 * each checked against jansson itself: json_scan must accept exactly what
 * json_loadb accepts, and protocol_scan + protocol_splice must answer and
 * relay what protocol_parse + protocol_signal would. Random texts come from
 * a grammar, then get mutated; the generator is seeded, so a failure
 * repeats. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "json_scan.h"
#include "protocol.h"
#include "utf8.h"

static bool jansson_accepts(const char *text, size_t len)
{
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    json_decref(j);
    return j != NULL;
}

static bool scan_accepts(const char *text, size_t len)
{
    struct json_scan scan;
    return json_scan(text, len, &scan);
}

static void assert_agree(const char *text, size_t len)
{
    bool want = jansson_accepts(text, len), got = scan_accepts(text, len);
    cr_assert_eq(got, want, "json_scan says %s, jansson %s: [%.*s]", got ? "valid" : "invalid",
                 want ? "valid" : "invalid", (int)len, text);
    /* The relay relies on it: only a text that is not JSON needs a look at
     * its UTF-8. */
    if (got)
        cr_assert(utf8_valid(text, len), "valid JSON, invalid UTF-8: [%.*s]", (int)len, text);
}

/* ------------------------------------------------------------------------
 * Chosen cases
 * ------------------------------------------------------------------------ */

Test(json_scan, chosen_texts_agree_with_jansson)
{
    static const char *const texts[] = {
        "{}",
        "[]",
        "\"\"",
        "0",
        "-0",
        "1",
        "-1",
        "01",
        "-01",
        "1.",
        ".5",
        "1.5",
        "1e5",
        "1E+5",
        "1e-5",
        "1e",
        "1e+",
        "-",
        "--1",
        "+1",
        "0x10",
        "1.5e308",
        "1e309",
        "-1e309",
        "1e-400",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "00",
        "true",
        "false",
        "null",
        "tru",
        "truex",
        "nul",
        "True",
        " {} ",
        "\t\n\r{}\r\n",
        "{} x",
        "{},",
        "{",
        "}",
        "[",
        "]",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{\"a\":}",
        "{a:1}",
        "{\"a\":1 \"b\":2}",
        "{1:2}",
        "\"\\u0000\"",
        "{\"\\u0000\":1}",
        "\"\\u0001\"",
        "\"\\uD83D\\uDE00\"",
        "\"\\uD83D\"",
        "\"\\uDE00\"",
        "\"\\uD83Dx\"",
        "\"\\uD83D\\u0041\"",
        "\"\\uZZZZ\"",
        "\"\\u12\"",
        "\"\\x\"",
        "\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"",
        "\"a\nb\"",
        "\"a\tb\"",
        "\"\x7f\"",
        "\"\xc3\xa9\"",
        "\"\xc3\"",
        "\"\xc0\x80\"",
        "\"\xe0\x80\x80\"",
        "\"\xed\xa0\x80\"",
        "\"\xf0\x9f\x98\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xf5\x80\x80\x80\"",
        "\xef\xbb\xbf{}",
        "{\"type\":\"offer\",\"data\":{\"sdp\":\"v=0\\r\\n\"},\"to\":\"u1\"}",
        "",
        "   ",
        "[[[]]]",
        "{\"a\":{\"b\":{\"c\":[1,2,{\"d\":null}]}}}",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        assert_agree(texts[i], strlen(texts[i]));
    /* Bytes after a NUL count too. */
    assert_agree("{}\0", 3);
    assert_agree("\"a\0b\"", 5);
}

/* depth arrays around a value. */
static void nested(struct buf *b, int depth, const char *inner)
{
    b->len = 0;
    for (int i = 0; i < depth; i++)
        buf_append(b, "[", 1);
    buf_append(b, inner, strlen(inner));
    for (int i = 0; i < depth; i++)
        buf_append(b, "]", 1);
}

Test(json_scan, depth_limit_is_janssons)
{
    struct buf b;
    buf_init(&b, 8192);
    int limit = JSON_SCAN_MAX_DEPTH;
    for (int depth = limit - 2; depth <= limit + 1; depth++) {
        nested(&b, depth, "");
        assert_agree(b.data, b.len);
        nested(&b, depth, "1");
        assert_agree(b.data, b.len);
        nested(&b, depth, "{}");
        assert_agree(b.data, b.len);
    }
    nested(&b, limit, "");
    cr_assert(scan_accepts(b.data, b.len));
    nested(&b, limit, "1");
    cr_assert_not(scan_accepts(b.data, b.len));
    buf_free(&b);
}

Test(json_scan, records_members_and_the_data_object)
{
    const char *text =
        "{\"type\":\"offer\", \"data\" : {\"sdp\":\"x\",\"n\":0.1},\"t\\u006f\":null}";
    struct json_scan s;
    cr_assert(json_scan(text, strlen(text), &s));
    cr_assert_eq(s.kind, JSON_KIND_OBJECT);
    cr_assert_eq(s.root.n, 3);
    cr_assert(json_key_is(&s.root.m[0], "type"));
    cr_assert_eq(s.root.m[0].value.len, strlen("\"offer\""));
    cr_assert(json_key_is(&s.root.m[1], "data"));
    cr_assert_eq(s.root.m[1].kind, JSON_KIND_OBJECT);
    cr_assert(s.root.m[2].key_escaped);
    cr_assert_not(json_key_is(&s.root.m[2], "to"));
    cr_assert(s.data_found);
    cr_assert_eq(s.data.n, 2);
    cr_assert(json_key_is(&s.data.m[1], "n"));
    cr_assert_eq(s.data.m[1].value.len, 3);
    cr_assert_eq(memcmp(s.data.m[1].value.p, "0.1", 3), 0);
}

Test(json_scan, counts_members_beyond_the_record)
{
    struct buf b;
    buf_init(&b, 256);
    buf_append(&b, "{", 1);
    for (int i = 0; i <= JSON_SCAN_MAX_MEMBERS; i++)
        buf_appendf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
    buf_append(&b, "}", 1);
    struct json_scan s;
    cr_assert(json_scan(b.data, b.len, &s));
    cr_assert_eq(s.root.n, JSON_SCAN_MAX_MEMBERS);
    cr_assert(s.root.overflow);
    buf_free(&b);
}

/* ------------------------------------------------------------------------
 * Random texts
 * ------------------------------------------------------------------------ */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    /* xorshift64*: enough to wander a grammar, and repeatable. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 33) % n;
}

/* Appends one of the n strings in choices, at random. */
static void append_one(struct buf *b, const char *const *choices, size_t n)
{
    const char *s = choices[rnd((uint32_t)n)];
    buf_append(b, s, strlen(s));
}
#define APPEND_ONE(b, a) append_one(b, a, sizeof(a) / sizeof(a[0]))

static void gen_string(struct buf *b)
{
    static const char *const parts[] = {
        "a",
        "type",
        "to",
        "data",
        "offer",
        " ",
        "\\n",
        "\\\"",
        "\\u00e9",
        "\\u0041",
        "\\uD83D\\uDE00",
        "\xc3\xa9",
        "\xf0\x9f\x98\x80",
        "v=0\\r\\n",
        "webrtc.signal",
        "user-joined",
        "\\/",
        "x",
    };
    buf_append(b, "\"", 1);
    for (uint32_t i = 0, n = rnd(4); i < n; i++)
        APPEND_ONE(b, parts);
    buf_append(b, "\"", 1);
}

static void gen_value(struct buf *b, int depth)
{
    static const char *const scalars[] = {
        "0",       "-1",
        "0.1",     "1e3",
        "-2.5E-3", "123456789012",
        "true",    "false",
        "null",    "9223372036854775807",
        "1e400",
    };
    static const char *const keys[] = {"\"type\"",  "\"to\"",        "\"data\"",       "\"sdp\"",
                                       "\"offer\"", "\"candidate\"", "\"t\\u0079pe\"", "\"x\""};
    static const char *const spaces[] = {"", "", "", " ", "\n", "\t "};
    uint32_t k = depth > 3 ? rnd(3) : rnd(6);
    if (k == 0) {
        APPEND_ONE(b, scalars);
    } else if (k == 1 || k == 2) {
        gen_string(b);
    } else if (k == 3) {
        buf_append(b, "[", 1);
        for (uint32_t i = 0, n = rnd(4); i < n; i++) {
            if (i)
                buf_append(b, ",", 1);
            gen_value(b, depth + 1);
        }
        buf_append(b, "]", 1);
    } else {
        buf_append(b, "{", 1);
        for (uint32_t i = 0, n = rnd(5); i < n; i++) {
            if (i)
                buf_append(b, ",", 1);
            APPEND_ONE(b, spaces);
            APPEND_ONE(b, keys);
            buf_append(b, ":", 1);
            gen_value(b, depth + 1);
        }
        buf_append(b, "}", 1);
    }
}

/* One random edit: a byte changed, inserted or removed. */
static void mutate(struct buf *b)
{
    static const char alphabet[] = "{}[]:,\"\\ u0123456789abcdefABCDEF.eE+-tfnrl\t\n\r\x01\x1f\x7f"
                                   "\x80\xa0\xbf\xc0\xc3\xa9\xed\xe0\xf0\xf4\xf5\x9f\xff";
    char c = alphabet[rnd(sizeof(alphabet))]; /* the NUL at the end included */
    size_t at = b->len ? rnd((uint32_t)b->len + 1) : 0;
    switch (rnd(3)) {
    case 0:
        if (at < b->len)
            b->data[at] = c;
        break;
    case 1:
        buf_extend(b, 1);
        memmove(b->data + at + 1, b->data + at, b->len - at - 1);
        b->data[at] = c;
        break;
    default:
        if (at < b->len) {
            memmove(b->data + at, b->data + at + 1, b->len - at - 1);
            b->len--;
        }
    }
}

Test(json_scan, random_texts_agree_with_jansson)
{
    rng_state = 0x9E3779B97F4A7C15ULL;
    struct buf b;
    buf_init(&b, 1024);
    for (int i = 0; i < 200000; i++) {
        b.len = 0;
        gen_value(&b, 0);
        for (uint32_t m = 0, n = rnd(4); m < n; m++)
            mutate(&b);
        assert_agree(b.data, b.len);
    }
    buf_free(&b);
}

/* ------------------------------------------------------------------------
 * The protocol's fast path against protocol_parse
 * ------------------------------------------------------------------------ */

static void gen_signal(struct buf *b)
{
    static const char *const types[] = {
        "\"offer\"",
        "\"answer\"",
        "\"ice-candidate\"",
        "\"\"",
        "\"user-joined\"",
        "\"user-left\"",
        "\"webrtc.signal\"",
        "\"webrtc.ping\"",
        "\"of\\u0066er\"",
        "1",
        "null",
        "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
        "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
        "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"",
    };
    static const char *const tos[] = {"\"u1\"", "null", "1", "\"u\\u0031\"", "{}", "\"\""};
    static const char *const keys[] = {"\"type\"",      "\"to\"",         "\"data\"", "\"offer\"",
                                       "\"candidate\"", "\"t\\u0079pe\"", "\"sdp\""};
    buf_append(b, "{", 1);
    for (uint32_t i = 0, n = 1 + rnd(4); i < n; i++) {
        if (i)
            buf_append(b, ",", 1);
        const char *key = i == 0 && rnd(4) ? "\"type\"" : keys[rnd(sizeof(keys) / sizeof(keys[0]))];
        buf_append(b, key, strlen(key));
        buf_append(b, ":", 1);
        if (!strcmp(key, "\"type\"")) {
            APPEND_ONE(b, types);
        } else if (!strcmp(key, "\"to\"")) {
            APPEND_ONE(b, tos);
        } else if (!strcmp(key, "\"data\"") && rnd(2)) {
            gen_signal(b); /* an envelope's inner signal, or just data */
        } else {
            gen_value(b, 2);
        }
    }
    buf_append(b, "}", 1);
}

static const char sender_id[] = "acc-1";

/* What the slow path relays for text, dumped and parsed back (for a ping,
 * the string "ping"); or NULL with *e and *why set. */
static json_t *slow_packet(const char *text, size_t len, json_t *account, enum protocol_error *e,
                           const char **why)
{
    struct signal_in in;
    *e = protocol_parse(text, len, &in, why);
    if (*e != PROTOCOL_OK)
        return NULL;
    json_t *j = in.kind == PROTOCOL_PING
                    ? json_string("ping")
                    : protocol_signal(in.type, in.data, in.to, sender_id, account);
    signal_in_clear(&in);
    return j;
}

static void assert_same_answer(const char *text, size_t len, json_t *account, const char *sender,
                               size_t sender_len, size_t *fast)
{
    struct json_scan scan;
    struct signal_spans s;
    const char *why_fast = NULL, *why_slow = NULL;
    enum protocol_error e_fast = protocol_scan(text, len, &scan, &s, &why_fast), e_slow;
    if (e_fast == PROTOCOL_NEEDS_TREE)
        return;
    ++*fast;
    json_t *want = slow_packet(text, len, account, &e_slow, &why_slow);
    cr_assert_eq(e_fast, e_slow, "fast %d, slow %d: [%.*s]", e_fast, e_slow, (int)len, text);
    if (e_fast != PROTOCOL_OK) {
        cr_assert_str_eq(why_fast, why_slow, "[%.*s]", (int)len, text);
        return;
    }
    if (s.kind == PROTOCOL_PING) {
        cr_assert(json_is_string(want), "a ping only for the fast path: [%.*s]", (int)len, text);
        json_decref(want);
        return;
    }
    struct buf b;
    buf_init(&b, 256);
    protocol_splice(&b, &s, sender, sender_len);
    json_error_t err;
    json_t *got = json_loadb(b.data, b.len, 0, &err);
    cr_assert(got, "spliced text is not JSON (%s): [%s] from [%.*s]", err.text, b.data, (int)len,
              text);
    cr_assert(json_equal(got, want), "spliced [%s] from [%.*s]", b.data, (int)len, text);
    json_decref(got);
    json_decref(want);
    buf_free(&b);
}

Test(protocol_scan, answers_as_protocol_parse_does)
{
    json_t *account = json_pack("{s:s, s:s, s:s, s:{}, s:n}", "id", sender_id, "name", "Ann",
                                "nick", "a\"n\\n", "profile", "updatedAt");
    size_t sender_len, fast = 0;
    char *sender = protocol_sender(sender_id, account, &sender_len);
    cr_assert(sender);
    rng_state = 0x2545F4914F6CDD1DULL;
    struct buf b;
    buf_init(&b, 1024);
    for (int i = 0; i < 100000; i++) {
        b.len = 0;
        gen_signal(&b);
        if (rnd(8) == 0)
            mutate(&b);
        assert_same_answer(b.data, b.len, account, sender, sender_len, &fast);
    }
    /* Most of them take the fast path, or this tests little. */
    cr_assert_gt(fast, 50000);
    buf_free(&b);
    free(sender);
    json_decref(account);
}

Test(protocol_scan, relays_the_clients_own_bytes)
{
    const char *text = "{\"type\":\"offer\",\"data\":{\"n\":0.1,\"big\":1e400},\"to\":\"u2\"}";
    struct json_scan scan;
    struct signal_spans s;
    const char *why;
    /* 1e400 overflows a double: jansson refuses it, and so does the scan. */
    cr_assert_eq(protocol_scan(text, strlen(text), &scan, &s, &why), PROTOCOL_INVALID_JSON);
    text = "{\"type\":\"offer\",\"data\":{\"n\":0.1, \"m\":[1.50]},\"to\":\"u2\"}";
    cr_assert_eq(protocol_scan(text, strlen(text), &scan, &s, &why), PROTOCOL_OK);
    struct buf b;
    buf_init(&b, 256);
    protocol_splice(&b, &s, "\"s\":1", 5);
    cr_assert_str_eq(b.data, "{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"offer\",\"data\":"
                             "{\"n\":0.1, \"m\":[1.50]},\"to\":\"u2\",\"s\":1}}");
    buf_free(&b);
}

Test(protocol_scan, flat_and_envelope_forms)
{
    const char *flat = "{\"type\":\"offer\",\"offer\":{\"sdp\":\"v\"},\"to\":\"u2\",\"x\":1}";
    const char *env = "{\"type\":\"webrtc.signal\",\"to\":\"ignored\","
                      "\"data\":{\"type\":\"answer\",\"data\":[1]}}";
    struct json_scan scan;
    struct signal_spans s;
    const char *why;
    struct buf b;
    buf_init(&b, 256);
    cr_assert_eq(protocol_scan(flat, strlen(flat), &scan, &s, &why), PROTOCOL_OK);
    protocol_splice(&b, &s, "\"s\":1", 5);
    cr_assert_str_eq(b.data, "{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"offer\",\"data\":"
                             "{\"offer\":{\"sdp\":\"v\"},\"x\":1},\"to\":\"u2\",\"s\":1}}");
    b.len = 0;
    cr_assert_eq(protocol_scan(env, strlen(env), &scan, &s, &why), PROTOCOL_OK);
    protocol_splice(&b, &s, "\"s\":1", 5);
    cr_assert_str_eq(b.data, "{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"answer\",\"data\":"
                             "[1],\"s\":1}}");
    buf_free(&b);
}

Test(protocol_scan, reads_a_ping)
{
    static const char *const texts[] = {
        "{\"type\":\"webrtc.ping\"}",
        "{\"data\":{\"n\":1},\"type\":\"webrtc.ping\",\"to\":[]}",
        "{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"webrtc.ping\"}}",
    };
    struct json_scan scan;
    struct signal_spans s;
    const char *why;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        cr_assert_eq(protocol_scan(texts[i], strlen(texts[i]), &scan, &s, &why), PROTOCOL_OK);
        cr_assert_eq(s.kind, PROTOCOL_PING, "%s", texts[i]);
    }
    const char *signal = "{\"type\":\"webrtc.pong\"}";
    cr_assert_eq(protocol_scan(signal, strlen(signal), &scan, &s, &why), PROTOCOL_OK);
    cr_assert_eq(s.kind, PROTOCOL_SIGNAL);
}

Test(protocol_scan, leaves_escapes_and_repeats_to_the_tree)
{
    static const char *const texts[] = {
        "{\"t\\u0079pe\":\"offer\"}",
        "{\"type\":\"of\\u0066er\"}",
        "{\"type\":\"offer\",\"to\":\"u\\u0031\"}",
        "{\"type\":\"offer\",\"type\":\"answer\"}",
    };
    struct json_scan scan;
    struct signal_spans s;
    const char *why;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        cr_assert_eq(protocol_scan(texts[i], strlen(texts[i]), &scan, &s, &why),
                     PROTOCOL_NEEDS_TREE, "%s", texts[i]);
}
