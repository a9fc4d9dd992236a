/* Fuzzes percent-decoding (common/percent.c), which reads the AuthToken
 * cookie and the userinfo of a Redis URL, against RFC 3986 §2.1 as written
 * here: "%" and two hex digits (any case) become that byte, anything else
 * stays as it is. Checked too: decoding in place gives the same bytes, the
 * output is NUL-terminated, and it is never longer than the input. */
#include <string.h>

#include "fuzz.h"
#include "percent.h"

static int hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char *out = xmalloc(size + 1), *want = xmalloc(size + 1);
    size_t want_len = 0;
    for (size_t i = 0; i < size; i++) {
        int hi = i + 2 < size && data[i] == '%' ? hex(data[i + 1]) : -1;
        int lo = hi >= 0 ? hex(data[i + 2]) : -1;
        if (lo >= 0) {
            want[want_len++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            want[want_len++] = in[i];
        }
    }
    size_t n = percent_decode(out, in, size);
    FUZZ_CHECK(n == want_len && !memcmp(out, want, n) && out[n] == '\0', "decoded %zu bytes", n);
    /* In place, as the cookie is decoded. */
    char *same = fuzz_cstring(data, size);
    FUZZ_CHECK(percent_decode(same, same, size) == n && !memcmp(same, want, n), "in place differs");
    free(same);
    free(out);
    free(want);
    return 0;
}
