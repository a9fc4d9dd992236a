/* Unit tests of the UTF-8 validator: chosen edge cases, then every string
 * of one to three bytes and random longer ones against a reference written
 * the other way round (decode naively, then require the shortest encoding
 * of a Unicode scalar value). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

static bool valid(const char *s)
{
    return utf8_valid(s, strlen(s));
}

Test(utf8, chosen_cases)
{
    cr_assert(utf8_valid("", 0));
    cr_assert(valid("plain ASCII {\"type\":\"offer\"}"));
    cr_assert(utf8_valid("a\0b", 3), "NUL is U+0000");
    cr_assert(valid("\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80"));     /* é ☃ 😀 */
    cr_assert(valid("\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf")); /* 2- and 3-byte bounds */
    cr_assert(valid("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"));         /* U+10000, U+10FFFF */
    cr_assert(valid("\xed\x9f\xbf\xee\x80\x80"));                 /* around the surrogates */
    cr_assert_not(valid("\x80"), "a lone continuation byte");
    cr_assert_not(valid("\xbf"));
    cr_assert_not(valid("\xc3"), "cut short at the end");
    cr_assert_not(valid("ok\xe2\x98"));
    cr_assert_not(valid("\xf0\x9f\x98"));
    cr_assert_not(valid("\xc3("), "a lead byte without its continuation");
    cr_assert_not(valid("\xc0\xaf"), "overlong '/'");
    cr_assert_not(valid("\xc1\xbf"));
    cr_assert_not(valid("\xe0\x9f\xbf"), "overlong 3-byte");
    cr_assert_not(valid("\xf0\x8f\xbf\xbf"), "overlong 4-byte");
    cr_assert_not(valid("\xed\xa0\x80"), "a surrogate, U+D800");
    cr_assert_not(valid("\xed\xbf\xbf"), "U+DFFF");
    cr_assert_not(valid("\xf4\x90\x80\x80"), "above U+10FFFF");
    cr_assert_not(valid("\xf5\x80\x80\x80"));
    cr_assert_not(valid("\xfe"));
    cr_assert_not(valid("\xff"));
    cr_assert_not(valid("abc\xffxyz"), "invalid in the middle of ASCII");
}

/* The length a lead byte announces by its high bits, or 0 (a continuation
 * byte, or 11111xxx). */
static size_t announced(unsigned char b)
{
    static const struct {
        unsigned char mask, bits;
    } forms[] = {{0x80, 0x00}, {0xE0, 0xC0}, {0xF0, 0xE0}, {0xF8, 0xF0}};
    for (size_t i = 0; i < 4; i++)
        if ((b & forms[i].mask) == forms[i].bits)
            return i + 1;
    return 0;
}

/* The reference: true when s[0..len) decodes, sequence by sequence, into
 * Unicode scalar values each written in its shortest form. */
static bool reference_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char b = s[i];
        size_t n = announced(b);
        if (!n || i + n > len)
            return false;
        uint32_t v = n == 1 ? b : b & (0xFFu >> (n + 1));
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            v = v << 6 | (s[i + k] & 0x3F);
        }
        size_t shortest = v < 0x80 ? 1 : v < 0x800 ? 2 : v < 0x10000 ? 3 : 4;
        if (shortest != n || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

static void assert_agree(const unsigned char *s, size_t len)
{
    bool want = reference_valid(s, len), got = utf8_valid((const char *)s, len);
    if (got != want) {
        char hex[64] = "";
        for (size_t i = 0; i < len && i < 16; i++)
            snprintf(hex + 3 * i, 4, "%02x ", s[i]);
        cr_assert_fail("utf8_valid says %d, the reference %d: %s", got, want, hex);
    }
}

Test(utf8, every_string_up_to_three_bytes)
{
    unsigned char s[3];
    for (uint32_t x = 0; x < 1u << 24; x++) {
        s[0] = (unsigned char)x, s[1] = (unsigned char)(x >> 8), s[2] = (unsigned char)(x >> 16);
        if (x < 1u << 8)
            assert_agree(s, 1);
        if (x < 1u << 16)
            assert_agree(s, 2);
        assert_agree(s, 3);
    }
}

Test(utf8, random_longer_strings)
{
    uint64_t r = 0x9E3779B97F4A7C15ULL;
    unsigned char s[12];
    for (int i = 0; i < 2000000; i++) {
        size_t len = 4 + (size_t)(i % 9);
        for (size_t k = 0; k < len; k++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            /* Mostly bytes that matter: leads, continuations, ASCII. */
            static const unsigned char pick[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
                                                 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed,
                                                 0xef, 0xf0, 0xf4, 0xf5, 0xff};
            s[k] = r & 0x100 ? (unsigned char)r : pick[(r >> 9) % sizeof(pick)];
        }
        assert_agree(s, len);
    }
}
