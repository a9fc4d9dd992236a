/* The wire protocol (docs/protocol.md): the route, parsing and validating what
 * a client sends, and building what the node sends. Pure code, no sockets.
 *
 * Outgoing packets are serialized once into a buffer with caller-chosen
 * headroom (the WebSocket frame header goes there), and the same bytes are
 * shared among every recipient. */
#ifndef SIGNAL_PROTOCOL_H
#define SIGNAL_PROTOCOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "iso8601.h"
#include "json_scan.h"

#define PROTOCOL_GUID_LEN 36
#define PROTOCOL_MAX_TYPE_LEN 64

/* If path is "{prefix}/chat/realtime/{guid}" (query string already removed),
 * writes the GUID in lower case to room (PROTOCOL_GUID_LEN + 1 bytes) and
 * returns true. */
bool protocol_route(const char *prefix, const char *path, char *room);
bool protocol_is_guid(const char *s, size_t len);

/* What a client message asks of the node. */
enum protocol_kind {
    PROTOCOL_SIGNAL, /* a signal, for the room */
    /* "webrtc.ping", in any of the three forms: answered "webrtc.pong", to
     * the sender alone (browsers cannot see WebSocket pings). Nothing else
     * of it is read: type, data and to are left unset. */
    PROTOCOL_PING,
};

/* A client signal, normalized from any of the three accepted forms. */
struct signal_in {
    enum protocol_kind kind;
    json_t *root;     /* owns what the pointers below point into */
    json_t *flat;     /* the data built from a flat-form message, or NULL */
    const char *type; /* never "webrtc.signal", "user-joined" or "user-left" */
    json_t *data;     /* borrowed; never NULL (json null when absent) */
    const char *to;   /* NULL when absent or null */
};

enum protocol_error {
    PROTOCOL_OK,
    PROTOCOL_INVALID_JSON,
    PROTOCOL_INVALID_MESSAGE,
    /* protocol_scan only: valid JSON in a form it leaves to protocol_parse
     * (an escape in a key, type or to; a repeated key; many members). */
    PROTOCOL_NEEDS_TREE,
};

/* Parses a text message. On error, *why says what is wrong, for the client. */
enum protocol_error protocol_parse(const char *text, size_t len, struct signal_in *out,
                                   const char **why);
void signal_in_clear(struct signal_in *s);

/* A client signal as it lies in the client's text: no tree, no copies. */
struct signal_spans {
    enum protocol_kind kind;
    struct json_span type; /* the string, its quotes included */
    struct json_span data; /* the data's text; .p is NULL in the flat form */
    /* The flat form: the object whose members other than type and to are
     * the data. */
    const struct json_object_scan *flat;
    struct json_span to; /* between the quotes; .p is NULL when absent or null */
};

/* protocol_parse's fast path: the same answers (errors and *why included)
 * for the texts it handles, PROTOCOL_NEEDS_TREE for the others. *scan holds
 * what out points into, along with the text. */
enum protocol_error protocol_scan(const char *text, size_t len, struct json_scan *scan,
                                  struct signal_spans *out, const char **why);

/* The sender part of every signal a connection sends:
 * "senderAccountId":ID,"senderInfo":ACCOUNT (no braces), malloc'd, *len
 * bytes, made once per connection; NULL only when jansson runs out of
 * memory. */
char *protocol_sender(const char *account_id, json_t *account, size_t *len);

/* Appends to b the relayed packet of s: what protocol_signal would build,
 * with the client's own bytes for type, data and to, and sender from
 * protocol_sender. */
void protocol_splice(struct buf *b, const struct signal_spans *s, const char *sender,
                     size_t sender_len);
const char *protocol_error_code(enum protocol_error e);

/* Builders. Each returns a new reference; borrowed arguments are not stolen. */
json_t *protocol_signal(const char *type, json_t *data, const char *to, const char *sender_id,
                        json_t *sender_info);
json_t *protocol_welcome(const char *user_id, const char *room, const char *timestamp,
                         json_t *participants);
json_t *protocol_participant(json_t *account, const char *joined_at);
json_t *protocol_error(const char *code, const char *message);
/* The answer to a ping: {"type":"webrtc.pong"}. */
#define PROTOCOL_PONG "{\"type\":\"webrtc.pong\"}"

/* The wire's timestamps (joinedAt, the welcome's timestamp): ISO-8601 UTC
 * with milliseconds, written by iso8601_format. */
#define PROTOCOL_TIMESTAMP_LEN ISO8601_LEN
void protocol_timestamp(long long unix_ms, char out[PROTOCOL_TIMESTAMP_LEN]);

/* Serializes j once into a new malloc'd buffer of headroom + *len bytes, the
 * JSON text starting at offset headroom. Returns NULL only when jansson
 * itself runs out of memory. */
unsigned char *protocol_dump(const json_t *j, size_t headroom, size_t *len);

#endif
