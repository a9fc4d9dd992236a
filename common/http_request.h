/* What the node judges itself of an HTTP request, beyond what libwebsockets
 * parses and refuses (tools/patches/lws-http-strict-head.patch): the
 * version, the form of the request target, a body's framing and what a
 * WebSocket upgrade needs (docs/protocol.md, "HTTP answers"). Pure code on
 * the bytes lws keeps, the path as the client sent it
 * (tools/patches/lws-http-raw-path.patch). */
#ifndef SIGNAL_HTTP_REQUEST_H
#define SIGNAL_HTTP_REQUEST_H

#include <stdbool.h>

/* A request as lws hands it over; NULL for a part that is absent. */
struct http_head {
    const char *target;     /* the path as sent, without '?' and the query */
    const char *version;    /* the request line's last word, "HTTP/1.1" */
    bool transfer_encoding; /* a Transfer-Encoding field, whatever its value */
    bool websocket;         /* Upgrade: websocket */
};

/* NULL when the node may go on to the route, or what is wrong with the
 * request, for the debug log: such a request gets 400 and the connection
 * closes. */
const char *http_head_problem(const struct http_head *h);

#endif
