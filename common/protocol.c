/* The wire protocol: route, client signals, server packets; see protocol.h. */
#include "protocol.h"

#include <ctype.h>
#include <string.h>

#include "buf.h"

#define ROUTE "/chat/realtime/"

/* What is wrong, for the client: the same words from both parsers. */
static const char WHY_ENVELOPE_DATA[] = "The data of a webrtc.signal envelope must be an object";
static const char WHY_NOT_OBJECT[] = "Message must be a JSON object";
static const char WHY_TYPE[] = "Field 'type' must be a non-empty string";
static const char WHY_TYPE_LENGTH[] = "Field 'type' must be at most 64 characters";
static const char WHY_NESTED[] = "A webrtc.signal envelope cannot be nested";
static const char WHY_RESERVED[] = "Types user-joined and user-left are reserved for the server";
static const char WHY_TO[] = "Field 'to' must be a string";
static const char WHY_JSON[] = "Message is not valid JSON";

bool protocol_is_guid(const char *s, size_t len)
{
    if (len != PROTOCOL_GUID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

bool protocol_route(const char *prefix, const char *path, char *room)
{
    size_t plen = strlen(prefix);
    if (strncmp(path, prefix, plen) != 0 || strncmp(path + plen, ROUTE, strlen(ROUTE)) != 0)
        return false;
    const char *id = path + plen + strlen(ROUTE);
    if (!protocol_is_guid(id, strlen(id)))
        return false;
    for (size_t i = 0; i <= PROTOCOL_GUID_LEN; i++)
        room[i] = (char)tolower((unsigned char)id[i]);
    return true;
}

const char *protocol_error_code(enum protocol_error e)
{
    return e == PROTOCOL_INVALID_JSON ? "invalid_json" : "invalid_message";
}

/* Characters, not bytes: "64 characters" means the same in every language. */
static size_t utf8_length(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

#define PING "webrtc.ping"

static bool is_reserved(const char *type)
{
    return !strcmp(type, "user-joined") || !strcmp(type, "user-left");
}

/* The flat form (docs/protocol.md, "Sending a signal"): every field but type
 * and to is the data. */
static json_t *flat_data(json_t *msg)
{
    json_t *data = json_object();
    const char *key;
    json_t *value;
    json_object_foreach(msg, key, value)
    {
        if (strcmp(key, "type") != 0 && strcmp(key, "to") != 0)
            json_object_set(data, key, value);
    }
    return data;
}

static enum protocol_error parse_signal(json_t *msg, bool in_envelope, struct signal_in *out,
                                        const char **why)
{
    if (!json_is_object(msg)) {
        *why = in_envelope ? WHY_ENVELOPE_DATA : WHY_NOT_OBJECT;
        return PROTOCOL_INVALID_MESSAGE;
    }
    json_t *type = json_object_get(msg, "type"), *to = json_object_get(msg, "to");
    if (!json_is_string(type) || json_string_length(type) == 0) {
        *why = WHY_TYPE;
        return PROTOCOL_INVALID_MESSAGE;
    }
    const char *t = json_string_value(type);
    if (utf8_length(t, json_string_length(type)) > PROTOCOL_MAX_TYPE_LEN) {
        *why = WHY_TYPE_LENGTH;
        return PROTOCOL_INVALID_MESSAGE;
    }
    if (!strcmp(t, "webrtc.signal")) {
        if (in_envelope) {
            *why = WHY_NESTED;
            return PROTOCOL_INVALID_MESSAGE;
        }
        return parse_signal(json_object_get(msg, "data"), true, out, why);
    }
    if (is_reserved(t)) {
        *why = WHY_RESERVED;
        return PROTOCOL_INVALID_MESSAGE;
    }
    if (!strcmp(t, PING)) {
        out->kind = PROTOCOL_PING;
        return PROTOCOL_OK;
    }
    if (to && !json_is_null(to) && !json_is_string(to)) {
        *why = WHY_TO;
        return PROTOCOL_INVALID_MESSAGE;
    }
    json_t *data = json_object_get(msg, "data");
    if (!data)
        data = out->flat = flat_data(msg);
    out->type = t;
    out->data = data;
    out->to = json_is_string(to) ? json_string_value(to) : NULL;
    return PROTOCOL_OK;
}

enum protocol_error protocol_parse(const char *text, size_t len, struct signal_in *out,
                                   const char **why)
{
    memset(out, 0, sizeof(*out));
    json_error_t err;
    out->root = json_loadb(text, len, JSON_DECODE_ANY, &err);
    if (!out->root) {
        *why = WHY_JSON;
        return PROTOCOL_INVALID_JSON;
    }
    enum protocol_error e = parse_signal(out->root, false, out, why);
    if (e != PROTOCOL_OK)
        signal_in_clear(out);
    return e;
}

void signal_in_clear(struct signal_in *s)
{
    json_decref(s->flat);
    json_decref(s->root);
    memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------------
 * The fast path: a signal read in one pass and relayed with its own bytes
 * ------------------------------------------------------------------------ */

/* Whether the string token t (quotes included) holds exactly s. */
static bool token_is(struct json_span t, const char *s)
{
    return t.len == strlen(s) + 2 && !memcmp(t.p + 1, s, t.len - 2);
}

/* Whether two members of o have the same key (all keys unescaped). */
static bool has_repeated_key(const struct json_object_scan *o)
{
    for (size_t i = 0; i < o->n; i++)
        for (size_t j = i + 1; j < o->n; j++)
            if (o->m[i].key.len == o->m[j].key.len &&
                !memcmp(o->m[i].key.p, o->m[j].key.p, o->m[i].key.len))
                return true;
    return false;
}

/* Finds o's type, to and data, NULL when absent. Returns false when
 * jansson's reading could differ from the text's: an escaped key, a key
 * repeated, or members not all recorded. */
static bool plain_members(const struct json_object_scan *o, const struct json_member **type,
                          const struct json_member **to, const struct json_member **data)
{
    *type = *to = *data = NULL;
    if (o->overflow || has_repeated_key(o))
        return false;
    for (size_t i = 0; i < o->n; i++) {
        const struct json_member *m = &o->m[i];
        if (m->key_escaped)
            return false;
        if (json_key_is(m, "type"))
            *type = m;
        else if (json_key_is(m, "to"))
            *to = m;
        else if (json_key_is(m, "data"))
            *data = m;
    }
    return true;
}

/* parse_signal over recorded members: the same checks in the same order. */
static enum protocol_error scan_signal(const struct json_scan *scan,
                                       const struct json_object_scan *o, bool in_envelope,
                                       struct signal_spans *out, const char **why)
{
    const struct json_member *type, *to, *data;
    if (!plain_members(o, &type, &to, &data))
        return PROTOCOL_NEEDS_TREE;
    if (!type || type->kind != JSON_KIND_STRING || type->value.len == 2) {
        *why = WHY_TYPE;
        return PROTOCOL_INVALID_MESSAGE;
    }
    if (type->value_escaped)
        return PROTOCOL_NEEDS_TREE;
    if (utf8_length(type->value.p + 1, type->value.len - 2) > PROTOCOL_MAX_TYPE_LEN) {
        *why = WHY_TYPE_LENGTH;
        return PROTOCOL_INVALID_MESSAGE;
    }
    if (token_is(type->value, "webrtc.signal")) {
        if (in_envelope) {
            *why = WHY_NESTED;
            return PROTOCOL_INVALID_MESSAGE;
        }
        if (!scan->data_found) {
            *why = WHY_ENVELOPE_DATA;
            return PROTOCOL_INVALID_MESSAGE;
        }
        return scan_signal(scan, &scan->data, true, out, why);
    }
    if (token_is(type->value, "user-joined") || token_is(type->value, "user-left")) {
        *why = WHY_RESERVED;
        return PROTOCOL_INVALID_MESSAGE;
    }
    if (token_is(type->value, PING)) {
        out->kind = PROTOCOL_PING;
        return PROTOCOL_OK;
    }
    if (to && to->kind != JSON_KIND_STRING && to->kind != JSON_KIND_NULL) {
        *why = WHY_TO;
        return PROTOCOL_INVALID_MESSAGE;
    }
    if (to && to->value_escaped)
        return PROTOCOL_NEEDS_TREE;
    out->type = type->value;
    if (data)
        out->data = data->value;
    else
        out->flat = o;
    if (to && to->kind == JSON_KIND_STRING)
        out->to = (struct json_span){to->value.p + 1, to->value.len - 2};
    return PROTOCOL_OK;
}

enum protocol_error protocol_scan(const char *text, size_t len, struct json_scan *scan,
                                  struct signal_spans *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (!json_scan(text, len, scan)) {
        *why = WHY_JSON;
        return PROTOCOL_INVALID_JSON;
    }
    if (scan->nul_skipped)
        return PROTOCOL_NEEDS_TREE; /* relayed as jansson reads it: without the NUL */
    if (scan->kind != JSON_KIND_OBJECT) {
        *why = WHY_NOT_OBJECT;
        return PROTOCOL_INVALID_MESSAGE;
    }
    return scan_signal(scan, &scan->root, false, out, why);
}

char *protocol_sender(const char *account_id, json_t *account, size_t *len)
{
    json_t *j = json_pack("{s:s, s:O}", "senderAccountId", account_id, "senderInfo", account);
    unsigned char *text = j ? protocol_dump(j, 0, len) : NULL;
    json_decref(j);
    if (!text)
        return NULL;
    /* Without its braces. */
    *len -= 2;
    memmove(text, text + 1, *len);
    text[*len] = '\0';
    return (char *)text;
}

void protocol_splice(struct buf *b, const struct signal_spans *s, const char *sender,
                     size_t sender_len)
{
    static const char head[] = "{\"type\":\"webrtc.signal\",\"data\":{\"type\":";
    buf_append(b, head, sizeof(head) - 1);
    buf_append(b, s->type.p, s->type.len);
    buf_append(b, ",\"data\":", 8);
    if (s->data.p) {
        buf_append(b, s->data.p, s->data.len);
    } else {
        /* The flat form: each member but type and to, as written. */
        bool first = true;
        buf_append(b, "{", 1);
        for (size_t i = 0; i < s->flat->n; i++) {
            const struct json_member *m = &s->flat->m[i];
            if (json_key_is(m, "type") || json_key_is(m, "to"))
                continue;
            if (!first)
                buf_append(b, ",", 1);
            first = false;
            const char *from = m->key.p - 1; /* the key's opening quote */
            buf_append(b, from, m->key.len + 2);
            buf_append(b, ":", 1);
            buf_append(b, m->value.p, m->value.len);
        }
        buf_append(b, "}", 1);
    }
    if (s->to.p) {
        buf_append(b, ",\"to\":\"", 7);
        buf_append(b, s->to.p, s->to.len);
        buf_append(b, "\"", 1);
    }
    buf_append(b, ",", 1);
    buf_append(b, sender, sender_len);
    buf_append(b, "}}", 2);
}

json_t *protocol_signal(const char *type, json_t *data, const char *to, const char *sender_id,
                        json_t *sender_info)
{
    json_t *inner = json_object();
    json_object_set_new(inner, "type", json_string(type));
    json_object_set(inner, "data", data);
    if (to)
        json_object_set_new(inner, "to", json_string(to));
    json_object_set_new(inner, "senderAccountId", json_string(sender_id));
    json_object_set(inner, "senderInfo", sender_info);
    return json_pack("{s:s, s:o}", "type", "webrtc.signal", "data", inner);
}

json_t *protocol_welcome(const char *user_id, const char *room, const char *timestamp,
                         json_t *participants)
{
    char message[PROTOCOL_GUID_LEN + 32];
    snprintf(message, sizeof(message), "Connected to call of #%s.", room);
    return json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:O}}", "type", "webrtc", "data", "userId",
                     user_id, "roomId", room, "message", message, "timestamp", timestamp,
                     "participants", participants);
}

json_t *protocol_participant(json_t *account, const char *joined_at)
{
    json_t *name = json_object_get(account, "name"), *nick = json_object_get(account, "nick");
    json_t *display = json_is_string(nick) && json_string_length(nick) ? nick : name;
    return json_pack("{s:O, s:O, s:O, s:O, s:s}", "identity", name ? name : json_null(), "name",
                     display ? display : json_null(), "accountId", json_object_get(account, "id"),
                     "account", account, "joinedAt", joined_at);
}

json_t *protocol_error(const char *code, const char *message)
{
    return json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "data", "code", code, "message",
                     message);
}

void protocol_timestamp(long long unix_ms, char out[PROTOCOL_TIMESTAMP_LEN])
{
    iso8601_format(unix_ms, out);
}

/* json_dump_callback's sink: appends a chunk of the text to the buf in arg.
 * Returns 0 (go on) always: the buffer aborts rather than fail. */
static int dump_append(const char *chunk, size_t size, void *arg)
{
    buf_append(arg, chunk, size);
    return 0;
}

unsigned char *protocol_dump(const json_t *j, size_t headroom, size_t *len)
{
    struct buf b;
    buf_init(&b, headroom + 256);
    buf_extend(&b, headroom); /* the caller's, for the frame header */
    if (json_dump_callback(j, dump_append, &b, JSON_COMPACT) != 0) {
        buf_free(&b);
        return NULL;
    }
    *len = b.len - headroom;
    return (unsigned char *)b.data;
}
