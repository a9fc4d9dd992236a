/* Shared outgoing frames; see packet.h. */
#include "packet.h"

#include <libwebsockets.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "xalloc.h"

_Static_assert(PACKET_HEADROOM >= LWS_PRE, "PACKET_HEADROOM must hold LWS_PRE bytes");
_Static_assert(PACKET_HEADROOM >= 10, "PACKET_HEADROOM must hold a frame header");

/* Writes the header of a final, unmasked text frame of len bytes right
 * before the text (RFC 6455 §5.2); returns its length. */
static unsigned char frame_header(unsigned char *text, size_t len)
{
    unsigned char head = len < 126 ? 2 : len < 65536 ? 4 : 10;
    unsigned char *h = text - head;
    h[0] = 0x80 | 0x1; /* FIN, text */
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    return head;
}

struct packet *packet_adopt(unsigned char *buf, size_t len)
{
    struct packet *p = xmalloc(sizeof(*p));
    p->refs = 1;
    p->queued = 0;
    p->len = len;
    p->buf = buf;
    p->head = frame_header(buf + PACKET_HEADROOM, len);
    return p;
}

struct packet *packet_from_json(const json_t *j)
{
    size_t len;
    unsigned char *buf = protocol_dump(j, PACKET_HEADROOM, &len);
    return buf ? packet_adopt(buf, len) : NULL;
}

struct packet *packet_from_bytes(const char *text, size_t len)
{
    unsigned char *buf = xmalloc(PACKET_HEADROOM + len);
    memcpy(buf + PACKET_HEADROOM, text, len);
    return packet_adopt(buf, len);
}

struct packet *packet_ref(struct packet *p)
{
    p->refs++;
    return p;
}

void packet_unref(struct packet *p)
{
    if (p && --p->refs == 0) {
        free(p->buf);
        free(p);
    }
}
