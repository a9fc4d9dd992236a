/* An outgoing WebSocket text frame, serialized once and shared by reference
 * among every recipient's send queue. The bytes start after LWS_PRE bytes of
 * headroom, where libwebsockets writes the frame header. */
#ifndef SIGNAL_PACKET_H
#define SIGNAL_PACKET_H

#include <jansson.h>
#include <libwebsockets.h>
#include <stddef.h>

#define LWS_PRE_BYTES LWS_PRE

struct packet {
    unsigned refs;
    size_t len;         /* of the JSON text */
    unsigned char *buf; /* LWS_PRE + len bytes */
};

struct packet *packet_from_json(const json_t *j);
struct packet *packet_from_bytes(const char *text, size_t len);
static inline unsigned char *packet_text(struct packet *p)
{
    return p->buf + LWS_PRE_BYTES;
}
struct packet *packet_ref(struct packet *p);
void packet_unref(struct packet *p);

#endif
