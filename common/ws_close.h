/* RFC 6455 close frames from a peer: whether one is well-formed, and the code
 * to fail the connection with when it is not. Pure code: node/conn.c calls it
 * from libwebsockets' peer-close callback. */
#ifndef SIGNAL_WS_CLOSE_H
#define SIGNAL_WS_CLOSE_H

#include <stdbool.h>
#include <stddef.h>

/* Whether a close frame may carry code (RFC 6455 §7.4 and the IANA
 * registry): 1000-1003, 1007-1014 and 3000-4999. Codes 1004-1006 and 1015
 * are reserved for local use, the rest below 3000 unassigned, and 5000 and
 * above outside the range. */
bool ws_close_code_allowed(int code);

/* Judges the payload of a peer's close frame: returns 0 when it is
 * well-formed (empty, or a code allowed on the wire followed by a UTF-8
 * reason), 1002 (protocol error) when it is one byte long or its code may
 * not be sent, 1007 when its reason is not UTF-8 (§5.5.1, §8.1). */
int ws_close_check(const void *payload, size_t len);

#endif
