/* Unit tests of the judgement of a peer's close frame (RFC 6455 §5.5.1,
 * §7.4, §8.1): every code, the one-byte payload, the reason's UTF-8. */
#include <criterion/criterion.h>

#include "ws_close.h"

static int check(int code, const char *reason, size_t reason_len)
{
    unsigned char p[128] = {(unsigned char)(code >> 8), (unsigned char)code};
    memcpy(p + 2, reason, reason_len);
    return ws_close_check(p, 2 + reason_len);
}

Test(ws_close, allowed_codes)
{
    static const int allowed[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                  1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    static const int forbidden[] = {0,    1,    999,  1004, 1005, 1006, 1015, 1016,
                                    1100, 2000, 2999, 5000, 5001, 9999, 65535};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        cr_assert(ws_close_code_allowed(allowed[i]), "%d", allowed[i]);
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
        cr_assert_not(ws_close_code_allowed(forbidden[i]), "%d", forbidden[i]);
}

Test(ws_close, every_code_with_and_without_a_reason)
{
    for (int code = 0; code < 65536; code++) {
        int want = ws_close_code_allowed(code) ? 0 : 1002;
        cr_assert_eq(check(code, "", 0), want, "%d", code);
        cr_assert_eq(check(code, "bye", 3), want, "%d", code);
        /* A forbidden code is refused before its reason is looked at. */
        cr_assert_eq(check(code, "\xff", 1), want ? 1002 : 1007, "%d", code);
    }
}

Test(ws_close, payload_shapes)
{
    cr_assert_eq(ws_close_check("", 0), 0, "no payload: no code, fine");
    cr_assert_eq(ws_close_check("\x03", 1), 1002, "one byte is half a code");
    cr_assert_eq(ws_close_check("\x03\xe8", 2), 0);
    cr_assert_eq(check(1000, "\xc3\xa9\xe2\x98\x83", 5), 0, "a UTF-8 reason");
    cr_assert_eq(check(1000, "ok\xce", 3), 1007, "a reason cut inside a sequence");
    cr_assert_eq(check(1000, "\xc0\xaf", 2), 1007, "an overlong form");
    cr_assert_eq(check(1000, "\xed\xa0\x80", 3), 1007, "a surrogate");
    char max[123];
    memset(max, 'r', sizeof(max));
    cr_assert_eq(check(4000, max, sizeof(max)), 0, "the longest reason (125 bytes in all)");
}
