/* Fuzzes the relay's reading of a client's text message (common/protocol.c):
 * the fast path (protocol_scan, then protocol_splice) against the slow path
 * (protocol_parse, then protocol_signal), as tests/unit/test_json_scan.c
 * does with generated texts:
 * - both give the same answer, error code and words for the client, except
 *   where the fast path leaves the text to the slow one (NEEDS_TREE, which
 *   only valid JSON may get);
 * - a text is invalid JSON for both exactly when jansson refuses it;
 * - both read a ping (webrtc.ping) alike;
 * - when both relay it, the spliced packet is JSON equal to the packet the
 *   slow path builds. */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "protocol.h"

static const char sender_id[] = "acc-1";
static json_t *account;
static char *sender;
static size_t sender_len;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* A nick that needs escaping, so the sender part is not plain text. */
    account = json_pack("{s:s, s:s, s:s, s:{}, s:n}", "id", sender_id, "name", "Ann", "nick",
                        "a\"n\\n", "profile", "updatedAt");
    sender = protocol_sender(sender_id, account, &sender_len);
    if (!account || !sender)
        abort();
    return 0;
}

/* The slow path's packet for text (for a ping, the string "ping"), or NULL
 * with *e and *why set. */
static json_t *slow_packet(const char *text, size_t len, enum protocol_error *e, const char **why)
{
    struct signal_in in;
    *e = protocol_parse(text, len, &in, why);
    if (*e != PROTOCOL_OK)
        return NULL;
    if (in.kind == PROTOCOL_PING) {
        signal_in_clear(&in);
        return json_string("ping");
    }
    FUZZ_CHECK(in.type && *in.type && in.data, "parsed without type or data");
    json_t *j = protocol_signal(in.type, in.data, in.to, sender_id, account);
    signal_in_clear(&in);
    return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct json_scan scan;
    struct signal_spans s;
    const char *why_fast = NULL, *why_slow = NULL;
    enum protocol_error e_slow, e_fast = protocol_scan(text, size, &scan, &s, &why_fast);
    json_t *want = slow_packet(text, size, &e_slow, &why_slow);
    json_t *j = json_loadb(text, size, JSON_DECODE_ANY, NULL);
    FUZZ_CHECK((e_slow == PROTOCOL_INVALID_JSON) == !j, "slow path: %d, jansson %s", e_slow,
               j ? "valid" : "invalid");
    json_decref(j);
    if (e_fast == PROTOCOL_NEEDS_TREE) {
        FUZZ_CHECK(e_slow != PROTOCOL_INVALID_JSON, "left to the tree, but not JSON");
        json_decref(want);
        return 0;
    }
    FUZZ_CHECK(e_fast == e_slow, "fast %d, slow %d", e_fast, e_slow);
    if (e_fast != PROTOCOL_OK) {
        FUZZ_CHECK(!strcmp(why_fast, why_slow), "fast says '%s', slow '%s'", why_fast, why_slow);
        return 0;
    }
    bool slow_ping = json_is_string(want); /* a packet is an object */
    FUZZ_CHECK(slow_ping == (s.kind == PROTOCOL_PING), "a ping for one path only");
    if (slow_ping) {
        json_decref(want);
        return 0;
    }
    struct buf b;
    buf_init(&b, 256);
    protocol_splice(&b, &s, sender, sender_len);
    json_error_t err;
    json_t *got = json_loadb(b.data, b.len, 0, &err);
    FUZZ_CHECK(got, "spliced text is not JSON (%s): [%s]", err.text, b.data);
    FUZZ_CHECK(json_equal(got, want), "spliced [%s] differs from the slow path's", b.data);
    json_decref(got);
    json_decref(want);
    buf_free(&b);
    return 0;
}
