/* The node's own checks of an HTTP request; see http_request.h. */
#include "http_request.h"

#include <string.h>

const char *http_head_problem(const struct http_head *h)
{
    /* RFC 9112 2.3: the version is case-sensitive, and 1.0 and 1.1 are the
     * two this server speaks. */
    bool v10 = h->version && !strcmp(h->version, "HTTP/1.0");
    bool v11 = h->version && !strcmp(h->version, "HTTP/1.1");
    if (!v10 && !v11)
        return "not HTTP/1.0 or HTTP/1.1";
    /* Origin form (RFC 9112 3.2.1). The absolute form is what a proxy is
     * sent; a gateway in front sends the path, and the route is matched on
     * the path as sent. */
    if (!h->target || h->target[0] != '/')
        return "request target not a path";
    /* lws reads no chunked body: what followed the head would be read as
     * the next request (RFC 9112 6.1 lets a server refuse a coding it does
     * not understand, and the route takes no body). */
    if (h->transfer_encoding)
        return "Transfer-Encoding on a request";
    /* RFC 6455 4.1: the opening handshake is HTTP/1.1 or later. */
    if (h->websocket && !v11)
        return "WebSocket upgrade not in HTTP/1.1";
    return NULL;
}
