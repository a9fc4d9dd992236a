/* Fuzzes the decoder of what arrives on a room's Redis channel
 * (common/bus_wire.c, wire_decode), which anyone able to publish to Redis
 * can feed:
 * - every field of a message it accepts lies inside the text, in the
 *   documented layout (bus_wire.h), with a non-empty packet or key;
 * - what it accepts, written again the way nodes write it
 *   (wire_signal_head for a signal, the Lua scripts' layout for presence),
 *   decodes to the same message: no field is read in a way the writer
 *   cannot produce;
 * - what wire_content_ok lets through to clients is JSON jansson reads: a
 *   signal's packet an object, a join's value an object whose "account"
 *   is an object with a string "id", and whose "joinedAt" is a string. */
#include <jansson.h>
#include <string.h>

#include "buf.h"
#include "bus_wire.h"
#include "fuzz.h"

/* Whether s lies in text[0..len). */
static bool inside(struct wire_str s, const char *text, size_t len)
{
    return s.p >= text && s.p + s.len <= text + len;
}

static bool str_eq(struct wire_str a, struct wire_str b)
{
    return a.len == b.len && (a.len == 0 || !memcmp(a.p, b.p, a.len));
}

/* Writes m again, as the node or its Lua scripts write it, into b. Returns
 * false when a signal's origin or to holds a NUL byte, which the C strings
 * wire_signal_head takes cannot carry. */
static bool rewrite(const struct wire_msg *m, struct buf *b)
{
    if (m->kind != WIRE_SIGNAL) {
        buf_appendf(b, "%c|%lld|", m->kind, m->version);
        buf_append(b, m->origin.p, m->origin.len);
        buf_append(b, "|", 1);
        buf_append(b, m->key.p, m->key.len);
        buf_append(b, "|", 1);
        buf_append(b, m->value.p, m->value.len);
        return true;
    }
    if (memchr(m->origin.p, '\0', m->origin.len) || memchr(m->to.p, '\0', m->to.len))
        return false;
    char origin[4096], to[4096], head[8300];
    snprintf(origin, sizeof(origin), "%.*s", (int)m->origin.len, m->origin.p);
    snprintf(to, sizeof(to), "%.*s", (int)m->to.len, m->to.p);
    size_t n = wire_signal_head(head, sizeof(head), origin, m->conn, m->sent_us, to);
    FUZZ_CHECK(n > 0, "wire_signal_head refused what was decoded");
    buf_append(b, head, n);
    buf_append(b, m->packet.p, m->packet.len);
    return true;
}

/* m passed wire_content_ok: jansson must read what it carries. */
static void check_content(const struct wire_msg *m)
{
    struct wire_str s = m->kind == WIRE_SIGNAL ? m->packet : m->value;
    if (m->kind == WIRE_LEAVE)
        return;
    json_t *j = json_loadb(s.p, s.len, 0, NULL);
    FUZZ_CHECK(json_is_object(j), "content passed but is no JSON object: [%.*s]", (int)s.len, s.p);
    if (m->kind == WIRE_JOIN) {
        json_t *account = json_object_get(j, "account");
        FUZZ_CHECK(json_is_object(account) && json_is_string(json_object_get(account, "id")) &&
                       json_is_string(json_object_get(j, "joinedAt")),
                   "join value passed: [%.*s]", (int)s.len, s.p);
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Fields longer than rewrite's buffers are not worth a bigger copy. */
    if (size > 4000)
        return 0;
    const char *text = (const char *)data;
    struct wire_msg m;
    if (!wire_decode(text, size, &m))
        return 0;
    FUZZ_CHECK(m.kind == WIRE_SIGNAL || m.kind == WIRE_JOIN || m.kind == WIRE_LEAVE, "kind %d",
               m.kind);
    FUZZ_CHECK(inside(m.origin, text, size) && !memchr(m.origin.p, '|', m.origin.len), "origin");
    if (m.kind == WIRE_SIGNAL) {
        FUZZ_CHECK(m.sent_us >= 0, "sent %lld", m.sent_us);
        FUZZ_CHECK(inside(m.to, text, size) && inside(m.packet, text, size), "to or packet");
        FUZZ_CHECK(m.packet.len > 0 && m.to.p + m.to.len == m.packet.p &&
                       m.packet.p + m.packet.len == text + size,
                   "packet");
    } else {
        FUZZ_CHECK(m.version >= 0, "version %lld", m.version);
        FUZZ_CHECK(inside(m.key, text, size) && m.key.len > 0 && !memchr(m.key.p, '|', m.key.len),
                   "key");
        FUZZ_CHECK(inside(m.value, text, size) && m.value.p + m.value.len == text + size, "value");
    }
    if (wire_content_ok(&m))
        check_content(&m);
    struct buf b;
    buf_init(&b, size + 64);
    struct wire_msg again;
    if (rewrite(&m, &b)) {
        FUZZ_CHECK(wire_decode(b.data, b.len, &again), "[%s] does not decode", b.data);
        FUZZ_CHECK(again.kind == m.kind && str_eq(again.origin, m.origin) && again.conn == m.conn &&
                       again.sent_us == m.sent_us && str_eq(again.to, m.to) &&
                       str_eq(again.packet, m.packet) && again.version == m.version &&
                       str_eq(again.key, m.key) && str_eq(again.value, m.value),
                   "[%s] decodes to another message", b.data);
    }
    buf_free(&b);
    return 0;
}
