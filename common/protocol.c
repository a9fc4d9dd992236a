/* The wire protocol: route, client signals, server packets; see protocol.h. */
#include "protocol.h"

#include <ctype.h>
#include <string.h>

#include "buf.h"

#define ROUTE "/chat/realtime/"

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
static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

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
        *why = in_envelope ? "The data of a webrtc.signal envelope must be an object"
                           : "Message must be a JSON object";
        return PROTOCOL_INVALID_MESSAGE;
    }
    json_t *type = json_object_get(msg, "type"), *to = json_object_get(msg, "to");
    if (!json_is_string(type) || json_string_length(type) == 0) {
        *why = "Field 'type' must be a non-empty string";
        return PROTOCOL_INVALID_MESSAGE;
    }
    const char *t = json_string_value(type);
    if (utf8_length(t) > PROTOCOL_MAX_TYPE_LEN) {
        *why = "Field 'type' must be at most 64 characters";
        return PROTOCOL_INVALID_MESSAGE;
    }
    if (!strcmp(t, "webrtc.signal")) {
        if (in_envelope) {
            *why = "A webrtc.signal envelope cannot be nested";
            return PROTOCOL_INVALID_MESSAGE;
        }
        return parse_signal(json_object_get(msg, "data"), true, out, why);
    }
    if (is_reserved(t)) {
        *why = "Types user-joined and user-left are reserved for the server";
        return PROTOCOL_INVALID_MESSAGE;
    }
    if (to && !json_is_null(to) && !json_is_string(to)) {
        *why = "Field 'to' must be a string";
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
        *why = "Message is not valid JSON";
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
