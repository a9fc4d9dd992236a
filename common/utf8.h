/* UTF-8 validation (RFC 3629): the one definition of well-formed UTF-8 for
 * what clients send, shared by the JSON validator (json_scan.c, strings) and
 * the WebSocket checks RFC 6455 asks for (text messages, close reasons). */
#ifndef SIGNAL_UTF8_H
#define SIGNAL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The length of the well-formed multi-byte sequence (2 to 4 bytes) at p,
 * p < end, or 0: no overlong forms, no surrogates, nothing above U+10FFFF.
 * Inline: json_scan calls it for every non-ASCII byte of a string. */
static inline size_t utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    if (p[0] < 0xC2 || p[0] > 0xF4)
        return 0;
    size_t n = p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : 4;
    if ((size_t)(end - p) < n)
        return 0;
    uint32_t v = p[0] & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3Fu);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    return n;
}

/* Whether text[0..len) is well-formed UTF-8 throughout (NUL included, a
 * sequence cut short at the end not). */
bool utf8_valid(const char *text, size_t len);

#endif
