/* UTF-8 validation; see utf8.h. */
#include "utf8.h"

bool utf8_valid(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t n = utf8_sequence(p, end);
        if (!n)
            return false;
        p += n;
    }
    return true;
}
