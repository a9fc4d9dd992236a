/* The Redis bus's wire format; see bus_wire.h. */
#include "bus_wire.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "json_scan.h"
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

/* Reads a number that must fit a long long (sent, version, stamp): a larger
 * one would turn negative, and arithmetic on it overflow. */
static bool signed_number(const char *p, size_t len, long long *out)
{
    unsigned long long v;
    if (!number(p, len, &v) || v > LLONG_MAX)
        return false;
    *out = (long long)v;
    return true;
}

/* Whether the len bytes at p are all lower case hex digits. */
static bool hex(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

/* Whether s is an instance, "<node id>:<boot>": what SIGNAL_NODE_ID
 * allows, then 8 hex digits. */
static bool instance(struct wire_str s)
{
    static const char id_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789._-";
    if (s.len < 10 || s.len > 128 + 9 || s.p[s.len - 9] != ':' || !hex(s.p + s.len - 8, 8))
        return false;
    for (size_t i = 0; i < s.len - 9; i++)
        if (!memchr(id_chars, s.p[i], sizeof(id_chars) - 1))
            return false;
    return true;
}

/* Whether s is a connection key, "<instance>:<conn>". */
static bool conn_key(struct wire_str s)
{
    const char *colon = s.p + s.len;
    while (colon > s.p && colon[-1] != ':')
        colon--;
    unsigned long long n;
    return colon > s.p && number(colon, (size_t)(s.p + s.len - colon), &n) &&
           instance((struct wire_str){s.p, (size_t)(colon - 1 - s.p)});
}

static bool decode_signal(const char *p, const char *end, struct wire_msg *m)
{
    struct wire_str conn, to_len;
    unsigned long long n, tl;
    long long sent = 0;
    if (!field(&p, end, &m->origin) || !field(&p, end, &conn) || !field(&p, end, &to_len) ||
        !instance(m->origin))
        return false;
    const char *at = memchr(conn.p, '@', conn.len);
    size_t conn_len = at ? (size_t)(at - conn.p) : conn.len;
    if (!number(conn.p, conn_len, &n) ||
        (at && !signed_number(at + 1, conn.len - conn_len - 1, &sent)) ||
        !number(to_len.p, to_len.len, &tl) || tl > (size_t)(end - p) || memchr(p, '\0', tl))
        return false;
    m->conn = n;
    m->sent_us = sent;
    m->to = (struct wire_str){p, (size_t)tl};
    m->packet = (struct wire_str){p + tl, (size_t)(end - p) - (size_t)tl};
    return m->packet.len > 0;
}

static bool decode_presence(const char *p, const char *end, struct wire_msg *m)
{
    struct wire_str version;
    long long v;
    if (!field(&p, end, &version) || !signed_number(version.p, version.len, &v))
        return false;
    m->covered[1] = (struct wire_str){p, (size_t)(end - p)};
    if (!field(&p, end, &m->origin) || !field(&p, end, &m->key) || !conn_key(m->key))
        return false;
    bool sweep = m->kind == WIRE_LEAVE && m->origin.len == 5 && !memcmp(m->origin.p, "sweep", 5);
    if (!sweep && !instance(m->origin))
        return false;
    m->version = v;
    m->value = (struct wire_str){p, (size_t)(end - p)};
    return !memchr(p, '\0', m->value.len);
}

/* Takes the authentication head off the front of [*p, end). */
static bool decode_auth(const char **p, const char *end, struct wire_auth *a)
{
    struct wire_str tag, seq, stamp;
    unsigned long long n;
    long long ms;
    const char *start = *p;
    if (!field(p, end, &tag) || !field(p, end, &a->key_id) || !field(p, end, &a->signer) ||
        !field(p, end, &seq) || !field(p, end, &stamp))
        return false;
    a->head = (struct wire_str){start, (size_t)(*p - start)};
    if (!field(p, end, &a->mac) || a->key_id.len != WIRE_KEY_ID_LEN ||
        !hex(a->key_id.p, a->key_id.len) || a->mac.len != WIRE_MAC_LEN ||
        !hex(a->mac.p, a->mac.len) || !instance(a->signer) || !number(seq.p, seq.len, &n) ||
        !signed_number(stamp.p, stamp.len, &ms))
        return false;
    a->seq = n;
    a->stamp_ms = ms;
    return true;
}

bool wire_decode(const char *text, size_t len, struct wire_msg *m)
{
    memset(m, 0, sizeof(*m));
    const char *p = text, *end = text + len;
    if (len >= 2 && text[0] == 'A' && text[1] == '|') {
        m->authenticated = true;
        if (!decode_auth(&p, end, &m->auth))
            return false;
    }
    if (end - p < 2 || p[1] != '|')
        return false;
    m->kind = (enum wire_kind)p[0];
    switch (p[0]) {
    case WIRE_SIGNAL:
        m->covered[0] = (struct wire_str){p, (size_t)(end - p)};
        return decode_signal(p + 2, end, m);
    case WIRE_JOIN:
    case WIRE_LEAVE:
        m->covered[0] = (struct wire_str){p, 2};
        return decode_presence(p + 2, end, m);
    default:
        return false;
    }
}

/* Whether the packet is {"type":"webrtc.signal","data":{..}} as the relay
 * writes it: in data, a string type, senderAccountId and to (if any), an
 * object senderInfo and any data, each once and nothing else. One pass of
 * json_scan, no tree: it runs once per signal a node receives. */
static bool packet_ok(struct wire_str p)
{
    struct json_scan s;
    if (!json_scan(p.p, p.len, &s) || s.kind != JSON_KIND_OBJECT || s.nul_skipped ||
        s.root.n != 2 || !json_key_is(&s.root.m[0], "type") ||
        s.root.m[0].value.len != strlen("\"webrtc.signal\"") ||
        memcmp(s.root.m[0].value.p, "\"webrtc.signal\"", s.root.m[0].value.len) != 0 ||
        !json_key_is(&s.root.m[1], "data") || s.root.m[1].kind != JSON_KIND_OBJECT ||
        s.data.overflow)
        return false;
    static const char *const names[] = {"type", "data", "to", "senderAccountId", "senderInfo"};
    static const int kinds[] = {JSON_KIND_STRING, -1, JSON_KIND_STRING, JSON_KIND_STRING,
                                JSON_KIND_OBJECT};
    unsigned seen = 0;
    for (size_t i = 0; i < s.data.n; i++) {
        size_t k = 0;
        while (k < 5 && !json_key_is(&s.data.m[i], names[k]))
            k++;
        if (k == 5 || (seen & 1u << k) || (kinds[k] >= 0 && (int)s.data.m[i].kind != kinds[k]))
            return false;
        seen |= 1u << k;
    }
    return (seen & 0x19u) == 0x19u; /* type, senderAccountId, senderInfo */
}

/* Whether a join's value is {"account":{"id":string,..},"joinedAt":string}. */
static bool presence_value_ok(struct wire_str v)
{
    json_t *j = json_loadb(v.p, v.len, 0, NULL);
    json_t *account = json_object_get(j, "account");
    bool ok = json_is_object(account) && json_is_string(json_object_get(account, "id")) &&
              json_is_string(json_object_get(j, "joinedAt"));
    json_decref(j);
    return ok;
}

bool wire_content_ok(const struct wire_msg *m)
{
    switch (m->kind) {
    case WIRE_SIGNAL:
        return packet_ok(m->packet);
    case WIRE_JOIN:
        return presence_value_ok(m->value);
    default:
        return true;
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
