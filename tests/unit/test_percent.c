/* Unit tests of the one percent-decoder (common/percent.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "percent.h"

/* Decodes in into a fresh buffer and checks the text and the length. */
static void expect(const char *in, const char *want, size_t want_len)
{
    char out[128];
    size_t n = percent_decode(out, in, strlen(in));
    cr_expect_eq(n, want_len, "%s: length %zu", in, n);
    cr_expect(memcmp(out, want, want_len) == 0 && out[n] == '\0', "%s: got \"%s\"", in, out);
}

Test(percent, decodes_escapes_in_either_case)
{
    expect("s%40cret", "s@cret", 6);
    expect("abc%2Edef%2eghi%3D", "abc.def.ghi=", 12);
    expect("%41%42%43", "ABC", 3);
    expect("plain", "plain", 5);
    expect("", "", 0);
}

Test(percent, malformed_escapes_stay_as_they_are)
{
    expect("100%", "100%", 4);
    expect("a%4", "a%4", 3);
    expect("%zz%4g", "%zz%4g", 6);
    expect("%%41", "%A", 2);
}

Test(percent, a_nul_byte_is_counted)
{
    expect("a%00b", "a\0b", 3);
}

Test(percent, decodes_in_place)
{
    char s[] = "a%2Bb%20c";
    cr_assert_eq(percent_decode(s, s, strlen(s)), 5);
    cr_assert_str_eq(s, "a+b c");
}

Test(percent, stops_at_len)
{
    char out[16];
    /* The escape is cut by len: it stays as it is. */
    cr_assert_eq(percent_decode(out, "ab%41", 4), 4);
    cr_assert_str_eq(out, "ab%4");
}
