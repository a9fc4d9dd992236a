/* signal-bench's client side of the wire: the RFC 6455 upgrade and framing
 * (masked frames out, server frames in), and a scanner that reads a packet's
 * kind and a bench signal's fields without building a JSON tree, so that the
 * bench spends its CPU on sockets rather than on parsing. See bench.h. */
#define _GNU_SOURCE /* strcasestr, memmem */
#include "bench.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* A signaling packet is at most SIGNAL_MAX_MESSAGE_BYTES (64 KiB by default)
 * plus the envelope; a frame above this is a broken server, not a signal. */
#define MAX_FRAME_BYTES (16u << 20)

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void ws_append_request(struct buf *out, const char *host, const char *path, const char *key)
{
    buf_appendf(out,
                "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                path, host, key);
}

void ws_make_key(uint64_t a, uint64_t b, char key[25])
{
    unsigned char nonce[16];
    memcpy(nonce, &a, 8);
    memcpy(nonce + 8, &b, 8);
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
}

/* Writes the Sec-WebSocket-Accept due for key into accept (29 bytes). */
static void accept_for(const char *key, char accept[29])
{
    char text[64];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    int n = snprintf(text, sizeof(text), "%s%s", key, ws_guid);
    EVP_Digest(text, (size_t)n, md, &md_len, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)accept, md, (int)md_len);
}

const char *ws_check_response(const char *head, size_t len, const char *key, char *why,
                              size_t why_len)
{
    const char *eol = memchr(head, '\r', len);
    size_t status_len = eol ? (size_t)(eol - head) : len;
    if (status_len < 12 || memcmp(head, "HTTP/1.1 101", 12) != 0) {
        snprintf(why, why_len, "upgrade refused: %.*s", (int)(status_len > 80 ? 80 : status_len),
                 head);
        return why;
    }
    char expect[29];
    accept_for(key, expect);
    /* The head is NUL-free text ending in a blank line; look for the header
     * on a copy so that the search stops at its end. */
    char *copy = xstrndup(head, len);
    const char *h = strcasestr(copy, "\r\nSec-WebSocket-Accept:");
    bool ok = false;
    if (h) {
        h += strlen("\r\nSec-WebSocket-Accept:");
        h += strspn(h, " \t");
        ok = strncmp(h, expect, 28) == 0 && (h[28] == '\r' || h[28] == ' ' || h[28] == '\t');
    }
    free(copy);
    if (!ok) {
        snprintf(why, why_len, "101 without the right Sec-WebSocket-Accept");
        return why;
    }
    return NULL;
}

void ws_append_frame(struct buf *out, int opcode, const void *payload, size_t len, uint32_t mask)
{
    unsigned char *f = buf_extend(out, 14 + len);
    size_t h = 0;
    f[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        f[h++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(len >> 8);
        f[h++] = (unsigned char)len;
    } else {
        f[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            f[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    unsigned char key[4] = {(unsigned char)(mask >> 24), (unsigned char)(mask >> 16),
                            (unsigned char)(mask >> 8), (unsigned char)mask};
    memcpy(f + h, key, 4);
    h += 4;
    const unsigned char *p = payload;
    for (size_t i = 0; i < len; i++)
        f[h + i] = p[i] ^ key[i & 3];
    /* buf_extend reserved the longest header; give back what it did not use. */
    out->len -= 14 + len - (h + len);
    out->data[out->len] = '\0';
}

long ws_parse_frame(const char *p, size_t n, struct ws_frame *f)
{
    const unsigned char *u = (const unsigned char *)p;
    if (n < 2)
        return 0;
    if ((u[0] & 0x70) || (u[1] & 0x80))
        return -1;
    uint64_t len = u[1] & 0x7f;
    size_t h = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)u[2] << 8 | u[3];
        h = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | u[2 + i];
        h = 10;
    }
    if (len > MAX_FRAME_BYTES)
        return -1;
    if (n - h < len)
        return 0;
    f->opcode = u[0] & 0x0f;
    f->fin = u[0] & 0x80;
    f->payload = p + h;
    f->len = (size_t)len;
    return (long)(h + len);
}

/* ---- the packet scanner ---- */

/* A position in the text being scanned. */
struct scan {
    const char *p, *end;
};

/* Steps over JSON whitespace. */
static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Takes the character c after whitespace; returns whether it was there. */
static bool take(struct scan *s, char c)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

/* Reads a string; its raw contents (escapes as they are) in *str, *len.
 * Returns false on anything but a complete string. */
static bool scan_string(struct scan *s, const char **str, size_t *len)
{
    if (!take(s, '"'))
        return false;
    const char *start = s->p;
    while (s->p < s->end) {
        if (*s->p == '\\') {
            if (s->end - s->p < 2)
                return false;
            s->p += 2;
            continue;
        }
        if (*s->p == '"') {
            *str = start;
            *len = (size_t)(s->p - start);
            s->p++;
            return true;
        }
        s->p++;
    }
    return false;
}

/* Steps over one value of any kind; returns false when it is cut short. Only
 * brackets and strings are followed: the scanner trusts the server to send
 * JSON, and checks only what the bench needs. */
static bool skip_value(struct scan *s)
{
    skip_ws(s);
    if (s->p >= s->end)
        return false;
    const char *str;
    size_t len;
    if (*s->p == '"')
        return scan_string(s, &str, &len);
    if (*s->p == '{' || *s->p == '[') {
        size_t depth = 0;
        while (s->p < s->end) {
            char c = *s->p;
            if (c == '"') {
                if (!scan_string(s, &str, &len))
                    return false;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0) {
                s->p++;
                return true;
            }
            s->p++;
        }
        return false;
    }
    const char *start = s->p;
    while (s->p < s->end && !strchr(",}] \t\r\n", *s->p))
        s->p++;
    return s->p > start;
}

/* Reads a non-negative integer; returns false on anything else. */
static bool scan_uint(struct scan *s, uint64_t *v)
{
    skip_ws(s);
    const char *start = s->p;
    uint64_t x = 0;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, *s->p - '0', &x))
            return false;
        s->p++;
    }
    *v = x;
    return s->p > start;
}

/* Moves to the next member of an object whose '{' was taken (*first: none
 * read yet): its key in *k, *klen, s at its value. Returns 1 for a member,
 * 0 at the closing brace, -1 on a syntax error. */
static int next_member(struct scan *s, bool *first, const char **k, size_t *klen)
{
    if (take(s, '}'))
        return 0;
    if (!*first && !take(s, ','))
        return -1;
    *first = false;
    if (!scan_string(s, k, klen) || !take(s, ':'))
        return -1;
    return 1;
}

/* Whether the raw string str (len bytes) is lit. */
static bool is(const char *str, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(str, lit, len) == 0;
}

/* Reads the object at s for its "type" (a string, in *type) and where its
 * "data" starts (*data, NULL without one). Returns false when s is not an
 * object with a string type. */
static bool scan_typed(struct scan *s, const char **type, size_t *type_len, const char **data)
{
    bool first = true;
    const char *k;
    size_t klen;
    int r;
    *type = NULL;
    *data = NULL;
    if (!take(s, '{'))
        return false;
    while ((r = next_member(s, &first, &k, &klen)) == 1) {
        if (is(k, klen, "type")) {
            if (!scan_string(s, type, type_len))
                return false;
        } else {
            skip_ws(s);
            if (is(k, klen, "data"))
                *data = s->p;
            if (!skip_value(s))
                return false;
        }
    }
    return r == 0 && *type;
}

/* Returns which of r, s, q, t (0 to 3) the key k (klen bytes) is, or -1. */
static int bench_field(const char *k, size_t klen)
{
    static const char names[] = "rsqt";
    const char *c = klen == 1 && *k ? strchr(names, *k) : NULL;
    return c ? (int)(c - names) : -1;
}

/* Reads the bench signal's data object at s into out; returns whether it
 * has all four fields as non-negative integers. */
static bool scan_bench(struct scan *s, struct pkt *out)
{
    bool first = true, seen[4] = {false, false, false, false};
    uint64_t *field[4] = {&out->r, &out->s, &out->q, &out->t};
    const char *k;
    size_t klen;
    int r;
    if (!take(s, '{'))
        return false;
    while ((r = next_member(s, &first, &k, &klen)) == 1) {
        int i = bench_field(k, klen);
        if (i >= 0) {
            if (!scan_uint(s, field[i]))
                return false;
            seen[i] = true;
        } else if (!skip_value(s)) {
            return false;
        }
    }
    return r == 0 && seen[0] && seen[1] && seen[2] && seen[3];
}

void scan_packet(const char *p, size_t n, struct pkt *out)
{
    struct scan s = {p, p + n};
    const char *type, *data;
    size_t type_len;
    out->kind = PKT_INVALID;
    if (!scan_typed(&s, &type, &type_len, &data))
        return;
    if (is(type, type_len, "webrtc"))
        out->kind = PKT_WELCOME;
    else if (is(type, type_len, "error"))
        out->kind = PKT_ERROR;
    else if (!is(type, type_len, "webrtc.signal"))
        out->kind = PKT_OTHER;
    else if (data) {
        struct scan inner = {data, p + n};
        const char *inner_data;
        if (!scan_typed(&inner, &type, &type_len, &inner_data))
            return;
        if (!is(type, type_len, "bench")) {
            out->kind = PKT_SIGNAL;
            return;
        }
        struct scan fields = {inner_data, p + n};
        if (inner_data && scan_bench(&fields, out))
            out->kind = PKT_BENCH;
    }
}
