/* Close frames from a peer; see ws_close.h. */
#include "ws_close.h"

#include "utf8.h"

bool ws_close_code_allowed(int code)
{
    return (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) ||
           (code >= 3000 && code <= 4999);
}

int ws_close_check(const void *payload, size_t len)
{
    const unsigned char *p = payload;
    if (!len)
        return 0;
    if (len == 1 || !ws_close_code_allowed(p[0] << 8 | p[1]))
        return 1002;
    return utf8_valid((const char *)p + 2, len - 2) ? 0 : 1007;
}
