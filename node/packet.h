/* An outgoing WebSocket text frame, serialized once and shared by reference
 * among every recipient's send queue. The bytes start after PACKET_HEADROOM
 * bytes of headroom, where libwebsockets writes the frame header. */
#ifndef SIGNAL_PACKET_H
#define SIGNAL_PACKET_H

#include <jansson.h>
#include <stddef.h>

/* libwebsockets needs LWS_PRE bytes before what lws_write sends (16 on
 * 64-bit builds); packet.c checks this is enough, so that this header, and
 * everything that includes it, need not include libwebsockets.h. */
#define PACKET_HEADROOM 16

struct packet {
    unsigned refs;
    size_t len;         /* of the JSON text */
    unsigned char *buf; /* PACKET_HEADROOM + len bytes */
};

/* A packet of j serialized, with one reference; NULL only when jansson runs
 * out of memory. */
struct packet *packet_from_json(const json_t *j);
/* A packet holding buf (malloc'd, PACKET_HEADROOM + len bytes, the text
 * after the headroom), which becomes the packet's; with one reference. */
struct packet *packet_adopt(unsigned char *buf, size_t len);
/* A packet of text[0..len) copied, with one reference. */
struct packet *packet_from_bytes(const char *text, size_t len);
/* The frame's text, for lws_write (the headroom before it is free). */
static inline unsigned char *packet_text(struct packet *p)
{
    return p->buf + PACKET_HEADROOM;
}
/* Takes one more reference; returns p. */
struct packet *packet_ref(struct packet *p);
/* Drops one reference (p may be NULL); the last frees the packet. */
void packet_unref(struct packet *p);

#endif
