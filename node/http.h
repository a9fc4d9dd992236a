/* HTTP on the node's listeners, for server.c: answers, the node's own checks
 * of a request, admission to the route, handshake checks and the admin
 * endpoints. */
#ifndef SIGNAL_HTTP_H
#define SIGNAL_HTTP_H

#include <libwebsockets.h>
#include <stdbool.h>

#include "auth.h"
#include "node.h"

#define MAX_HEADER_BYTES (20 * 1024) /* JWT cookies are big: 16 KiB of headers must fit */

/* The callback reason by which lws tells of a request it refused itself
 * (tools/patches/lws-http-strict-head.patch); len is the status. */
#define HTTP_CALLBACK_REFUSED LWS_CALLBACK_USER

/* Writes a complete answer, with WWW-Authenticate for 401 and Allow for 405.
 * Returns nonzero if it could not. */
int http_send(struct lws *wsi, int status, const char *type, const char *body, size_t len);
/* http_send with more headers: name/value pairs, each name with its colon
 * ("cache-control:"), NULL-terminated. */
int http_send_with(struct lws *wsi, int status, const char *type, const char *body, size_t len,
                   const char *const *headers);
/* The i-th parameter of the query, "name=value" as lws hands it over
 * (split at '&', %XX and '+' decoded), or NULL past the last. Valid until
 * the next call. */
const char *http_query_param(struct lws *wsi, int i);
/* The route's text/plain answer for status (docs/protocol.md, "HTTP answers"). */
int http_reply(struct lws *wsi, int status);
/* http_reply with a Retry-After header (seconds; none when retry_after_s <= 0). */
int http_reply_retry(struct lws *wsi, int status, long retry_after_s);
/* http_reply for a refusal of http_admit or of an upgrade: why picks the
 * 403's body (the Origin's, or a member's). */
int http_refuse(struct lws *wsi, int status, enum refusal why);
/* Ends the transaction after an answer (rc: nonzero if it could not be
 * written): returns -1 when the connection must close, else 0. */
int http_end(struct lws *wsi, int rc);
/* http_reply, then http_end. */
int http_finish(struct lws *wsi, int status);
/* Whether the request passes the node's own checks (common/http_request.h);
 * if not, answers it 400, counts it, and the caller returns -1 to close. */
bool http_check_head(struct node *n, struct lws *wsi, bool websocket);
/* The request's path as the client sent it (without the query), whatever
 * the method; NULL when there is none. Allocated. */
char *http_request_path(struct lws *wsi);
bool http_is_get_or_head(struct lws *wsi);
/* Decides who may use the route: 0 with *id filled and room written
 * (PROTOCOL_GUID_LEN + 1 bytes), or the HTTP status to answer and *why. */
int http_admit(struct node *n, struct lws *wsi, const char *path, char *room, struct identity *id,
               enum refusal *why);
/* Whether a WebSocket handshake is one lws would upgrade (it drops others
 * silently; a member who sends one gets a 400 instead). */
bool http_valid_handshake(struct lws *wsi);
/* Answers GET /healthz, /readyz or /metrics whole; returns as http_finish. */
int http_serve_admin(struct node *n, struct lws *wsi, const char *path);

#endif
