/* An outgoing WebSocket text frame, serialized once and shared by reference
 * among every recipient's send queue. The text starts after PACKET_HEADROOM
 * bytes of headroom, and the frame's header (unmasked, as every server frame
 * is, so the same for every recipient) is written once, right before it:
 * the frame is ready to go out as it is. */
#ifndef SIGNAL_PACKET_H
#define SIGNAL_PACKET_H

#include <jansson.h>
#include <stddef.h>

/* Room for the largest frame header (10 bytes), and libwebsockets'
 * LWS_PRE (16 on 64-bit builds) for a frame it frames itself; packet.c
 * checks both, so that this header, and everything that includes it, need
 * not include libwebsockets.h. */
#define PACKET_HEADROOM 16

struct packet {
    unsigned refs;
    /* Send queues holding it: the node's send memory counts its bytes once,
     * however many readers it waits for (conn.c). */
    unsigned queued;
    unsigned char head; /* bytes of frame header before the text */
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
/* The whole frame, header and text: packet_frame_len(p) bytes. */
static inline unsigned char *packet_frame(struct packet *p)
{
    return p->buf + PACKET_HEADROOM - p->head;
}
static inline size_t packet_frame_len(const struct packet *p)
{
    return p->head + p->len;
}
/* Takes one more reference; returns p. */
struct packet *packet_ref(struct packet *p);
/* Drops one reference (p may be NULL); the last frees the packet. */
void packet_unref(struct packet *p);

#endif
