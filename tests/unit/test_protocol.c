/* Unit tests of the wire protocol: every accepted and every rejected form. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

static enum protocol_error parse(const char *text, struct signal_in *s, const char **why)
{
    return protocol_parse(text, strlen(text), s, why);
}

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void expect_signal(const char *text, const char *type, const char *data, const char *to)
{
    struct signal_in s;
    const char *why = NULL;
    cr_assert_eq(parse(text, &s, &why), PROTOCOL_OK, "%s: %s", text, why ? why : "");
    cr_assert_str_eq(s.type, type);
    char *d = dump(s.data);
    cr_assert_str_eq(d, data, "%s: data %s", text, d);
    free(d);
    if (to)
        cr_assert_str_eq(s.to, to);
    else
        cr_assert_null(s.to);
    signal_in_clear(&s);
}

static void expect_error(const char *text, enum protocol_error e)
{
    struct signal_in s;
    const char *why = NULL;
    cr_assert_eq(parse(text, &s, &why), e, "%s", text);
    cr_assert_not_null(why);
    cr_assert_null(s.root);
}

Test(protocol, data_form)
{
    expect_signal("{\"type\":\"offer\",\"data\":{\"sdp\":\"v=0\"}}", "offer", "{\"sdp\":\"v=0\"}",
                  NULL);
    expect_signal("{\"type\":\"offer\",\"data\":{\"sdp\":\"v=0\"},\"to\":\"u2\"}", "offer",
                  "{\"sdp\":\"v=0\"}", "u2");
    expect_signal("{\"type\":\"x\",\"data\":\"text\"}", "x", "\"text\"", NULL);
    expect_signal("{\"type\":\"x\",\"data\":null}", "x", "null", NULL);
}

Test(protocol, flat_form_moves_other_fields_into_data)
{
    expect_signal("{\"type\":\"offer\",\"offer\":{\"sdp\":\"v=0\"},\"to\":\"u2\"}", "offer",
                  "{\"offer\":{\"sdp\":\"v=0\"}}", "u2");
    expect_signal("{\"type\":\"ice-candidate\",\"candidate\":{\"c\":1},\"extra\":2}",
                  "ice-candidate", "{\"candidate\":{\"c\":1},\"extra\":2}", NULL);
    expect_signal("{\"type\":\"bye\"}", "bye", "{}", NULL);
}

Test(protocol, envelope_form)
{
    expect_signal("{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"answer\",\"data\":{\"sdp\":"
                  "\"a\"},\"to\":\"u3\"}}",
                  "answer", "{\"sdp\":\"a\"}", "u3");
    expect_signal("{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"answer\",\"answer\":1}}",
                  "answer", "{\"answer\":1}", NULL);
}

Test(protocol, null_to_is_absent)
{
    expect_signal("{\"type\":\"offer\",\"data\":{},\"to\":null}", "offer", "{}", NULL);
}

Test(protocol, unknown_fields_are_ignored_in_data_form)
{
    expect_signal("{\"type\":\"offer\",\"data\":{},\"senderAccountId\":\"spoof\"}", "offer", "{}",
                  NULL);
}

Test(protocol, rejects_bad_json)
{
    expect_error("", PROTOCOL_INVALID_JSON);
    expect_error("nope", PROTOCOL_INVALID_JSON);
    expect_error("{\"type\":", PROTOCOL_INVALID_JSON);
    expect_error("{\"type\":\"a\"} trailing", PROTOCOL_INVALID_JSON);
    expect_error("{\"type\":\"\xff\"}", PROTOCOL_INVALID_JSON);
}

Test(protocol, rejects_deep_nesting_without_crashing)
{
    size_t n = 60000;
    char *text = malloc(n + 1);
    memset(text, '[', n);
    text[n] = '\0';
    expect_error(text, PROTOCOL_INVALID_JSON);
    free(text);
}

Test(protocol, rejects_non_objects)
{
    expect_error("[]", PROTOCOL_INVALID_MESSAGE);
    expect_error("\"offer\"", PROTOCOL_INVALID_MESSAGE);
    expect_error("42", PROTOCOL_INVALID_MESSAGE);
    expect_error("null", PROTOCOL_INVALID_MESSAGE);
    expect_error("true", PROTOCOL_INVALID_MESSAGE);
}

Test(protocol, rejects_bad_type)
{
    expect_error("{\"data\":{}}", PROTOCOL_INVALID_MESSAGE);
    expect_error("{\"type\":1}", PROTOCOL_INVALID_MESSAGE);
    expect_error("{\"type\":null}", PROTOCOL_INVALID_MESSAGE);
    expect_error("{\"type\":\"\"}", PROTOCOL_INVALID_MESSAGE);
    char text[200];
    snprintf(text, sizeof(text), "{\"type\":\"%065d\"}", 0);
    expect_error(text, PROTOCOL_INVALID_MESSAGE);
    snprintf(text, sizeof(text), "{\"type\":\"%064d\"}", 0);
    struct signal_in s;
    const char *why;
    cr_assert_eq(parse(text, &s, &why), PROTOCOL_OK);
    signal_in_clear(&s);
}

Test(protocol, rejects_reserved_types)
{
    expect_error("{\"type\":\"user-joined\",\"data\":{}}", PROTOCOL_INVALID_MESSAGE);
    expect_error("{\"type\":\"user-left\"}", PROTOCOL_INVALID_MESSAGE);
    expect_error("{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"user-left\"}}",
                 PROTOCOL_INVALID_MESSAGE);
}

Test(protocol, rejects_bad_to)
{
    expect_error("{\"type\":\"offer\",\"to\":5}", PROTOCOL_INVALID_MESSAGE);
    expect_error("{\"type\":\"offer\",\"to\":[\"u\"]}", PROTOCOL_INVALID_MESSAGE);
    expect_error("{\"type\":\"offer\",\"to\":{}}", PROTOCOL_INVALID_MESSAGE);
}

Test(protocol, rejects_bad_envelopes)
{
    expect_error("{\"type\":\"webrtc.signal\"}", PROTOCOL_INVALID_MESSAGE);
    expect_error("{\"type\":\"webrtc.signal\",\"data\":\"x\"}", PROTOCOL_INVALID_MESSAGE);
    expect_error("{\"type\":\"webrtc.signal\",\"data\":{\"data\":{}}}", PROTOCOL_INVALID_MESSAGE);
    expect_error("{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"webrtc.signal\",\"data\":{"
                 "\"type\":\"x\"}}}",
                 PROTOCOL_INVALID_MESSAGE);
}

Test(protocol, error_codes)
{
    cr_assert_str_eq(protocol_error_code(PROTOCOL_INVALID_JSON), "invalid_json");
    cr_assert_str_eq(protocol_error_code(PROTOCOL_INVALID_MESSAGE), "invalid_message");
}

Test(protocol, route)
{
    char room[PROTOCOL_GUID_LEN + 1];
    cr_assert(
        protocol_route("/api", "/api/chat/realtime/0B7F3A52-1C2D-4E5F-8A9B-0C1D2E3F4A5B", room));
    cr_assert_str_eq(room, "0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
    cr_assert(protocol_route("", "/chat/realtime/0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b", room));
    cr_assert(protocol_route("/sphere",
                             "/sphere/chat/realtime/0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b", room));
    cr_assert_not(
        protocol_route("/api", "/sphere/chat/realtime/0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b", room));
    cr_assert_not(protocol_route("/api", "/api/chat/realtime/not-a-guid", room));
    cr_assert_not(
        protocol_route("/api", "/api/chat/realtime/0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b/x", room));
    cr_assert_not(
        protocol_route("/api", "/api/chat/realtime/0b7f3a521c2d4e5f8a9b0c1d2e3f4a5b", room));
    cr_assert_not(
        protocol_route("/api", "/api/chat/realtime/0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5g", room));
    cr_assert_not(protocol_route("/api", "/api/chat/realtime/", room));
    cr_assert_not(protocol_route("/api", "/", room));
}

Test(protocol, signal_packet_shape)
{
    json_t *account = json_pack("{s:s, s:s, s:n, s:{}, s:n}", "id", "u1", "name", "alice", "nick",
                                "profile", "updatedAt");
    json_t *data = json_pack("{s:s}", "sdp", "v=0");
    json_t *p = protocol_signal("offer", data, "u2", "u1", account);
    char *text = dump(p);
    cr_assert_str_eq(text, "{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"offer\",\"data\":{"
                           "\"sdp\":\"v=0\"},\"to\":\"u2\",\"senderAccountId\":\"u1\","
                           "\"senderInfo\":{\"id\":\"u1\",\"name\":\"alice\",\"nick\":null,"
                           "\"profile\":{},\"updatedAt\":null}}}");
    free(text);
    json_decref(p);
    p = protocol_signal("user-joined", data, NULL, "u1", account);
    cr_assert_null(json_object_get(json_object_get(p, "data"), "to"));
    json_decref(p);
    json_decref(data);
    json_decref(account);
}

Test(protocol, welcome_and_participants)
{
    json_t *account = json_pack("{s:s, s:s, s:s, s:{}, s:n}", "id", "u2", "name", "bob", "nick",
                                "Bobby", "profile", "updatedAt");
    json_t *list = json_array();
    json_array_append_new(list, protocol_participant(account, "2026-01-01T00:00:00.000Z"));
    json_t *w = protocol_welcome("u1", "0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
                                 "2026-01-01T00:00:01.000Z", list);
    char *text = dump(w);
    cr_assert_str_eq(
        text, "{\"type\":\"webrtc\",\"data\":{\"userId\":\"u1\",\"roomId\":\"0b7f3a52-1c2d-4e5f-"
              "8a9b-0c1d2e3f4a5b\",\"message\":\"Connected to call of #0b7f3a52-1c2d-4e5f-8a9b-"
              "0c1d2e3f4a5b.\",\"timestamp\":\"2026-01-01T00:00:01.000Z\",\"participants\":[{"
              "\"identity\":\"bob\",\"name\":\"Bobby\",\"accountId\":\"u2\",\"account\":{\"id\":"
              "\"u2\",\"name\":\"bob\",\"nick\":\"Bobby\",\"profile\":{},\"updatedAt\":null},"
              "\"joinedAt\":\"2026-01-01T00:00:00.000Z\"}]}}");
    free(text);
    json_decref(w);
    json_decref(list);
    json_decref(account);
}

Test(protocol, participant_name_falls_back_to_name)
{
    json_t *account = json_pack("{s:s, s:s, s:n}", "id", "u2", "name", "bob", "nick");
    json_t *p = protocol_participant(account, "t");
    cr_assert_str_eq(json_string_value(json_object_get(p, "name")), "bob");
    json_decref(p);
    json_decref(account);
}

Test(protocol, error_packet)
{
    json_t *e = protocol_error("rate_limited", "slow down");
    char *text = dump(e);
    cr_assert_str_eq(text, "{\"type\":\"error\",\"data\":{\"code\":\"rate_limited\",\"message\":"
                           "\"slow down\"}}");
    free(text);
    json_decref(e);
}

Test(protocol, timestamp)
{
    char ts[PROTOCOL_TIMESTAMP_LEN];
    protocol_timestamp(1767225600123LL, ts);
    cr_assert_str_eq(ts, "2026-01-01T00:00:00.123Z");
}

Test(protocol, dump_leaves_headroom)
{
    json_t *j = json_pack("{s:s}", "a", "b");
    size_t len;
    unsigned char *buf = protocol_dump(j, 16, &len);
    cr_assert_eq(len, 9);
    cr_assert(memcmp(buf + 16, "{\"a\":\"b\"}", 9) == 0);
    free(buf);
    json_decref(j);
}

Test(protocol, type_length_counts_characters)
{
    /* 64 two-byte characters are 128 bytes but within the limit. */
    char text[400] = "{\"type\":\"";
    for (int i = 0; i < 64; i++)
        strcat(text, "\xc3\xa9");
    strcat(text, "\"}");
    struct signal_in s;
    const char *why;
    cr_assert_eq(parse(text, &s, &why), PROTOCOL_OK);
    signal_in_clear(&s);
}

static void expect_ping(const char *text)
{
    struct signal_in s;
    const char *why = NULL;
    cr_assert_eq(parse(text, &s, &why), PROTOCOL_OK, "%s: %s", text, why ? why : "");
    cr_assert_eq(s.kind, PROTOCOL_PING, "%s", text);
    signal_in_clear(&s);
}

Test(protocol, ping_in_every_form_ignores_the_rest)
{
    expect_ping("{\"type\":\"webrtc.ping\"}");
    expect_ping("{\"type\":\"webrtc.ping\",\"data\":{\"t\":1}}");
    expect_ping("{\"type\":\"webrtc.ping\",\"to\":5,\"x\":[]}");
    expect_ping("{\"type\":\"webrtc.signal\",\"data\":{\"type\":\"webrtc.ping\"}}");
    expect_ping("{\"type\":\"webrtc\\u002eping\"}");
    /* Only that exact type. */
    expect_signal("{\"type\":\"webrtc.pingx\"}", "webrtc.pingx", "{}", NULL);
    expect_signal("{\"type\":\"webrtc.pong\",\"data\":1}", "webrtc.pong", "1", NULL);
    expect_error("{\"type\":\"webrtc.ping\",\"type\":1}", PROTOCOL_INVALID_MESSAGE);
}
