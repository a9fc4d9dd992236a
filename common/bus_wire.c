/* The Redis bus's wire format; see bus_wire.h. */
#include "bus_wire.h"

#include <stdio.h>
#include <string.h>

#include "xalloc.h"

/* Takes the field up to the next '|' from [*p, end); false when there is
 * none. */
static bool field(const char **p, const char *end, struct wire_str *f)
{
    const char *bar = memchr(*p, '|', (size_t)(end - *p));
    if (!bar)
        return false;
    f->p = *p;
    f->len = (size_t)(bar - *p);
    *p = bar + 1;
    return true;
}

/* Reads the decimal number that is the whole of [p, p + len). */
static bool number(const char *p, size_t len, unsigned long long *out)
{
    unsigned long long v = 0;
    if (!len || len > 19)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned long long)(p[i] - '0');
    }
    *out = v;
    return true;
}

static bool decode_signal(const char *p, const char *end, struct wire_msg *m)
{
    struct wire_str conn, to_len;
    unsigned long long n, sent = 0, tl;
    if (!field(&p, end, &m->origin) || !field(&p, end, &conn) || !field(&p, end, &to_len))
        return false;
    const char *at = memchr(conn.p, '@', conn.len);
    size_t conn_len = at ? (size_t)(at - conn.p) : conn.len;
    if (!number(conn.p, conn_len, &n) || (at && !number(at + 1, conn.len - conn_len - 1, &sent)) ||
        !number(to_len.p, to_len.len, &tl) || tl > (size_t)(end - p))
        return false;
    m->conn = n;
    m->sent_us = (long long)sent;
    m->to = (struct wire_str){p, (size_t)tl};
    m->packet = (struct wire_str){p + tl, (size_t)(end - p) - (size_t)tl};
    return m->packet.len > 0;
}

static bool decode_presence(const char *p, const char *end, struct wire_msg *m)
{
    struct wire_str version;
    unsigned long long v;
    if (!field(&p, end, &version) || !number(version.p, version.len, &v) ||
        !field(&p, end, &m->origin) || !field(&p, end, &m->key) || !m->key.len)
        return false;
    m->version = (long long)v;
    m->value = (struct wire_str){p, (size_t)(end - p)};
    return true;
}

bool wire_decode(const char *text, size_t len, struct wire_msg *m)
{
    memset(m, 0, sizeof(*m));
    if (len < 2 || text[1] != '|')
        return false;
    const char *p = text + 2, *end = text + len;
    m->kind = (enum wire_kind)text[0];
    switch (text[0]) {
    case WIRE_SIGNAL:
        return decode_signal(p, end, m);
    case WIRE_JOIN:
    case WIRE_LEAVE:
        return decode_presence(p, end, m);
    default:
        return false;
    }
}

size_t wire_signal_head(char *out, size_t size, const char *origin, uint64_t conn,
                        long long sent_us, const char *to)
{
    size_t to_len = to ? strlen(to) : 0;
    int n = snprintf(out, size, "S|%s|%llu@%lld|%zu|", origin, (unsigned long long)conn, sent_us,
                     to_len);
    if (n < 0 || (size_t)n + to_len >= size)
        return 0;
    memcpy(out + n, to ? to : "", to_len);
    return (size_t)n + to_len;
}

char *wire_name(const char *prefix, const char *kind, const char *name)
{
    size_t n = strlen(prefix) + strlen(kind) + strlen(name) + 1;
    char *k = xmalloc(n);
    snprintf(k, n, "%s%s%s", prefix, kind, name);
    return k;
}

bool wire_key_of(const char *key, const char *instance)
{
    size_t n = strlen(instance);
    return !strncmp(key, instance, n) && key[n] == ':';
}
