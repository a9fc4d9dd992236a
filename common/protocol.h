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

#include "iso8601.h"

#define PROTOCOL_GUID_LEN 36
#define PROTOCOL_MAX_TYPE_LEN 64

/* If path is "{prefix}/chat/realtime/{guid}" (query string already removed),
 * writes the GUID in lower case to room (PROTOCOL_GUID_LEN + 1 bytes) and
 * returns true. */
bool protocol_route(const char *prefix, const char *path, char *room);
bool protocol_is_guid(const char *s, size_t len);

/* A client signal, normalized from any of the three accepted forms. */
struct signal_in {
    json_t *root;     /* owns what the pointers below point into */
    json_t *flat;     /* the data built from a flat-form message, or NULL */
    const char *type; /* never "webrtc.signal", "user-joined" or "user-left" */
    json_t *data;     /* borrowed; never NULL (json null when absent) */
    const char *to;   /* NULL when absent or null */
};

enum protocol_error { PROTOCOL_OK, PROTOCOL_INVALID_JSON, PROTOCOL_INVALID_MESSAGE };

/* Parses a text message. On error, *why says what is wrong, for the client. */
enum protocol_error protocol_parse(const char *text, size_t len, struct signal_in *out,
                                   const char **why);
void signal_in_clear(struct signal_in *s);
const char *protocol_error_code(enum protocol_error e);

/* Builders. Each returns a new reference; borrowed arguments are not stolen. */
json_t *protocol_signal(const char *type, json_t *data, const char *to, const char *sender_id,
                        json_t *sender_info);
json_t *protocol_welcome(const char *user_id, const char *room, const char *timestamp,
                         json_t *participants);
json_t *protocol_participant(json_t *account, const char *joined_at);
json_t *protocol_error(const char *code, const char *message);

/* The wire's timestamps (joinedAt, the welcome's timestamp): ISO-8601 UTC
 * with milliseconds, written by iso8601_format. */
#define PROTOCOL_TIMESTAMP_LEN ISO8601_LEN
void protocol_timestamp(long long unix_ms, char out[PROTOCOL_TIMESTAMP_LEN]);

/* Serializes j once into a new malloc'd buffer of headroom + *len bytes, the
 * JSON text starting at offset headroom. Returns NULL only when jansson
 * itself runs out of memory. */
unsigned char *protocol_dump(const json_t *j, size_t headroom, size_t *len);

#endif
