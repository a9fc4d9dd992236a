/* Shared outgoing frames; see packet.h. */
#include "packet.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "xalloc.h"

_Static_assert(PACKET_HEADROOM >= LWS_PRE, "PACKET_HEADROOM must hold LWS_PRE bytes");

struct packet *packet_adopt(unsigned char *buf, size_t len)
{
    struct packet *p = xmalloc(sizeof(*p));
    p->refs = 1;
    p->len = len;
    p->buf = buf;
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
