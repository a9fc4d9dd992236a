/* The single-pass JSON validator; see json_scan.h.
 *
 * What "valid" means is jansson 2.14's json_loadb with JSON_DECODE_ANY, quirks
 * included: any value at the top, strict RFC 8259 grammar, UTF-8 checked
 * everywhere, no \u0000 (in keys or values), no lone surrogate escapes,
 * integers within long long, reals that do not overflow a double, and at most
 * JSON_SCAN_MAX_DEPTH levels of nesting counting scalars. One quirk too:
 * jansson's reader loses a NUL byte that it puts back after reading a number
 * or a literal, so one NUL right after either is skipped (and noted). */
#include "json_scan.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "xalloc.h"

struct scanner {
    const unsigned char *p, *end;
    struct json_scan *out;
};

static bool value(struct scanner *s, int level, struct json_object_scan *record,
                  enum json_kind *kind);

/* ------------------------------------------------------------------------
 * Lexical pieces
 * ------------------------------------------------------------------------ */

static void skip_space(struct scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Consumes the byte c if it is next; returns whether it was. */
static bool take(struct scanner *s, unsigned char c)
{
    if (s->p >= s->end || *s->p != c)
        return false;
    s->p++;
    return true;
}

/* The value of the four hex digits at p (end permitting), or -1. */
static long hex4(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* After the backslash of an escape: consumes it. \uXXXX must not be NUL or
 * half a surrogate pair, as jansson decodes every string it reads. */
static bool escape(struct scanner *s)
{
    if (s->p >= s->end)
        return false;
    unsigned char c = *s->p++;
    if (c != 'u')
        return c && strchr("\"\\/bfnrt", c);
    long v = hex4(s->p, s->end);
    if (v <= 0 || (v >= 0xDC00 && v <= 0xDFFF))
        return false;
    s->p += 4;
    if (v < 0xD800 || v > 0xDBFF)
        return true;
    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u')
        return false;
    long low = hex4(s->p + 2, s->end);
    if (low < 0xDC00 || low > 0xDFFF)
        return false;
    s->p += 6;
    return true;
}

/* Byte classes inside a string: 0 plain, 1 quote, 2 backslash, 3 control
 * character, 4 the start of a multi-byte UTF-8 sequence (or garbage). */
static const unsigned char string_class[256] = {
    [0 ... 0x1F] = 3,
    ['"'] = 1,
    ['\\'] = 2,
    [0x80 ... 0xFF] = 4,
};

/* After the opening quote: consumes the string and its closing quote;
 * *escaped says whether it holds an escape. */
static bool string(struct scanner *s, bool *escaped)
{
    *escaped = false;
    for (;;) {
        while (s->p < s->end && string_class[*s->p] == 0)
            s->p++;
        if (s->p >= s->end)
            return false;
        switch (string_class[*s->p]) {
        case 1:
            s->p++;
            return true;
        case 2:
            s->p++;
            *escaped = true;
            if (!escape(s))
                return false;
            break;
        case 3:
            return false;
        default: {
            size_t n = utf8_sequence(s->p, s->end);
            if (!n)
                return false;
            s->p += n;
        }
        }
    }
}

/* After a number or a literal: skips the NUL jansson would lose. */
static void skip_lost_nul(struct scanner *s)
{
    if (take(s, '\0'))
        s->out->nul_skipped = true;
}

static bool is_digit(const unsigned char *p, const unsigned char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

/* Whether the real text[0..len) overflows a double, as strtod decides. */
static bool real_overflows(const unsigned char *text, size_t len)
{
    char small[64];
    char *copy = len < sizeof(small) ? small : xmalloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = '\0';
    errno = 0;
    double d = strtod(copy, NULL);
    bool overflow = errno == ERANGE && isinf(d);
    if (copy != small)
        free(copy);
    return overflow;
}

/* Whether the integer text[0..len) ("-"? digits, no leading zeros) is out of
 * long long's range. */
static bool integer_overflows(const unsigned char *text, size_t len)
{
    bool negative = text[0] == '-';
    const char *limit = negative ? "9223372036854775808" : "9223372036854775807";
    size_t digits = len - negative;
    if (digits != strlen(limit))
        return digits > strlen(limit);
    return memcmp(text + negative, limit, digits) > 0;
}

/* Consumes a run of digits; returns whether there was at least one. */
static bool digits(struct scanner *s)
{
    const unsigned char *from = s->p;
    while (is_digit(s->p, s->end))
        s->p++;
    return s->p > from;
}

/* At a '-' or a digit: consumes a number. */
static bool number(struct scanner *s)
{
    const unsigned char *start = s->p;
    take(s, '-');
    if (take(s, '0')) {
        if (is_digit(s->p, s->end))
            return false;
    } else if (!digits(s)) {
        return false;
    }
    bool real = false;
    if (take(s, '.')) {
        if (!digits(s))
            return false;
        real = true;
    }
    if (take(s, 'e') || take(s, 'E')) {
        if (!take(s, '+'))
            take(s, '-');
        if (!digits(s))
            return false;
        real = true;
    }
    size_t len = (size_t)(s->p - start);
    if (real ? real_overflows(start, len) : integer_overflows(start, len))
        return false;
    skip_lost_nul(s);
    return true;
}

static bool literal(struct scanner *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    s->p += n;
    skip_lost_nul(s);
    return true;
}

/* ------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------ */

static void record_member(struct json_object_scan *record, const struct json_member *m)
{
    if (record->n < JSON_SCAN_MAX_MEMBERS)
        record->m[record->n++] = *m;
    else
        record->overflow = true;
}

/* After the '{' of an object at nesting level: consumes the object, and
 * records its members in record unless that is NULL. */
static bool object(struct scanner *s, int level, struct json_object_scan *record)
{
    skip_space(s);
    if (take(s, '}'))
        return true;
    for (;;) {
        struct json_member m;
        if (!take(s, '"'))
            return false;
        m.key.p = (const char *)s->p;
        if (!string(s, &m.key_escaped))
            return false;
        m.key.len = (size_t)((const char *)s->p - m.key.p) - 1;
        skip_space(s);
        if (!take(s, ':'))
            return false;
        skip_space(s);
        struct json_object_scan *inner = NULL;
        if (record == &s->out->root && json_key_is(&m, "data")) {
            memset(&s->out->data, 0, sizeof(s->out->data));
            s->out->data_found = false;
            inner = &s->out->data;
        }
        m.value.p = (const char *)s->p;
        if (!value(s, level + 1, inner, &m.kind))
            return false;
        m.value.len = (size_t)((const char *)s->p - m.value.p);
        m.value_escaped = m.kind == JSON_KIND_STRING && memchr(m.value.p, '\\', m.value.len);
        if (inner && m.kind == JSON_KIND_OBJECT)
            s->out->data_found = true;
        if (record)
            record_member(record, &m);
        skip_space(s);
        if (take(s, '}'))
            return true;
        if (!take(s, ','))
            return false;
        skip_space(s);
    }
}

/* After the '[' of an array at nesting level: consumes the array. */
static bool array(struct scanner *s, int level)
{
    skip_space(s);
    if (take(s, ']'))
        return true;
    for (;;) {
        enum json_kind kind;
        if (!value(s, level + 1, NULL, &kind))
            return false;
        skip_space(s);
        if (take(s, ']'))
            return true;
        if (!take(s, ','))
            return false;
        skip_space(s);
    }
}

/* At the first byte of a value at nesting level (the top is 1): consumes
 * it and says what kind it was. An object's members go to record, if any. */
static bool value(struct scanner *s, int level, struct json_object_scan *record,
                  enum json_kind *kind)
{
    if (level > JSON_SCAN_MAX_DEPTH || s->p >= s->end)
        return false;
    bool escaped;
    switch (*s->p) {
    case '{':
        *kind = JSON_KIND_OBJECT;
        s->p++;
        return object(s, level, record);
    case '[':
        *kind = JSON_KIND_ARRAY;
        s->p++;
        return array(s, level);
    case '"':
        *kind = JSON_KIND_STRING;
        s->p++;
        return string(s, &escaped);
    case 't':
        *kind = JSON_KIND_TRUE;
        return literal(s, "true");
    case 'f':
        *kind = JSON_KIND_FALSE;
        return literal(s, "false");
    case 'n':
        *kind = JSON_KIND_NULL;
        return literal(s, "null");
    default:
        *kind = JSON_KIND_NUMBER;
        return (*s->p == '-' || is_digit(s->p, s->end)) && number(s);
    }
}

/* ------------------------------------------------------------------------
 * Interface
 * ------------------------------------------------------------------------ */

bool json_scan(const char *text, size_t len, struct json_scan *out)
{
    struct scanner s = {(const unsigned char *)text, (const unsigned char *)text + len, out};
    out->root.n = 0;
    out->root.overflow = false;
    out->data.n = 0;
    out->data.overflow = false;
    out->data_found = false;
    out->nul_skipped = false;
    skip_space(&s);
    if (!value(&s, 1, &out->root, &out->kind))
        return false;
    skip_space(&s);
    return s.p == s.end;
}

bool json_key_is(const struct json_member *m, const char *s)
{
    return !m->key_escaped && m->key.len == strlen(s) && !memcmp(m->key.p, s, m->key.len);
}
