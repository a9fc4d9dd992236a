/* Shared outgoing frames; see packet.h. */
#include "packet.h"

#include <stdlib.h>
#include <string.h>

#include "protocol.h"

static struct packet *packet_wrap(unsigned char *buf, size_t len)
{
    struct packet *p = malloc(sizeof(*p));
    if (!p) {
        free(buf);
        return NULL;
    }
    p->refs = 1;
    p->len = len;
    p->buf = buf;
    return p;
}

struct packet *packet_from_json(const json_t *j)
{
    size_t len;
    unsigned char *buf = protocol_dump(j, LWS_PRE, &len);
    return buf ? packet_wrap(buf, len) : NULL;
}

struct packet *packet_from_bytes(const char *text, size_t len)
{
    unsigned char *buf = malloc(LWS_PRE + len);
    if (!buf)
        return NULL;
    memcpy(buf + LWS_PRE, text, len);
    return packet_wrap(buf, len);
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
