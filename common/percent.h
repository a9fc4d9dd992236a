/* Percent-decoding (RFC 3986 §2.1), the one decoder for every %XX the node
 * reads: the userinfo of a Redis URL and the AuthToken cookie. */
#ifndef SIGNAL_PERCENT_H
#define SIGNAL_PERCENT_H

#include <stddef.h>

/* Decodes the %XX escapes of in[0..len) into out, which has room for len + 1
 * bytes and may be in itself (decoding only shortens). A '%' not followed by
 * two hex digits is kept as it is. NUL-terminates out and returns the decoded
 * length; it counts the NUL byte a %00 decodes to, so that a caller for whom
 * that would cut the text short can tell (the length differs from strlen). */
size_t percent_decode(char *out, const char *in, size_t len);

#endif
