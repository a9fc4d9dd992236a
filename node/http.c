/* HTTP on the node's listeners: complete answers, the node's own checks of a
 * request (common/http_request.h), where the token is found (query,
 * Authorization, cookies), who may use the route (Origin, token,
 * membership), whether a WebSocket handshake is one lws would handle, and
 * the admin endpoints' answers; see http.h. */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin.h"
#include "buf.h"
#include "http_request.h"
#include "log.h"
#include "membership.h"
#include "origin.h"
#include "protocol.h"
#include "xalloc.h"

/* The body for a request refused for its HTTP: the same words as lws's own
 * refusals (tools/patches/lws-http-strict-head.patch). */
#define MALFORMED_BODY "Bad Request"
/* The body of the 403 for an Origin not in SIGNAL_ALLOWED_ORIGINS. */
#define ORIGIN_BODY "Forbidden: Origin not allowed"

static const char *status_body(int status)
{
    switch (status) {
    case 400:
        return "Bad Request: WebSocket connection expected";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden: Not a member of this chat room";
    case 429:
        return "Too Many Requests: Too many connections or joins for this account";
    case 503:
        return "Service Unavailable: Try again later";
    default:
        return "";
    }
}

/* Writes a complete answer with extra headers for 401 and 405, Retry-After
 * when retry_after_s > 0, Connection: close when close, and the name/value
 * pairs of headers (NULL-terminated; may be NULL). Returns nonzero if it
 * could not. */
static int send_answer(struct lws *wsi, int status, const char *type, const char *body, size_t len,
                       long retry_after_s, bool close, const char *const *headers)
{
    /* Headers only: lws copies the body out of our buffer below. */
    unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof(buf) - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)status, type, len, &p, end))
        return 1;
    if (close && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                              (const unsigned char *)"close", 5, &p, end))
        return 1;
    if (status == 401 &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"www-authenticate:",
                                    (const unsigned char *)"Bearer", 6, &p, end))
        return 1;
    if (status == 405 && lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
                                                     (const unsigned char *)"GET", 3, &p, end))
        return 1;
    char retry[24];
    int retry_len = snprintf(retry, sizeof(retry), "%ld", retry_after_s);
    if (retry_after_s > 0 &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
                                    (const unsigned char *)retry, retry_len, &p, end))
        return 1;
    for (size_t i = 0; headers && headers[i]; i += 2)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)headers[i],
                                        (const unsigned char *)headers[i + 1],
                                        (int)strlen(headers[i + 1]), &p, end))
            return 1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    /* HEAD gets the same answer as GET, without the body. */
    if (!len || lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0)
        return 0;
    unsigned char *out = xmalloc(LWS_PRE + len);
    memcpy(out + LWS_PRE, body, len);
    /* lws keeps what the socket does not take at once and sends it later. */
    int written = lws_write(wsi, out + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
    free(out);
    return written != (int)len;
}

int http_send(struct lws *wsi, int status, const char *type, const char *body, size_t len)
{
    return send_answer(wsi, status, type, body, len, 0, false, NULL);
}

int http_send_with(struct lws *wsi, int status, const char *type, const char *body, size_t len,
                   const char *const *headers)
{
    return send_answer(wsi, status, type, body, len, 0, false, headers);
}

int http_reply_retry(struct lws *wsi, int status, long retry_after_s)
{
    const char *body = status_body(status);
    return send_answer(wsi, status, "text/plain; charset=utf-8", body, strlen(body), retry_after_s,
                       false, NULL);
}

int http_reply(struct lws *wsi, int status)
{
    return http_reply_retry(wsi, status, 0);
}

int http_refuse(struct lws *wsi, int status, enum refusal why)
{
    if (why != REFUSED_ORIGIN)
        return http_reply(wsi, status);
    return http_send(wsi, status, "text/plain; charset=utf-8", ORIGIN_BODY, strlen(ORIGIN_BODY));
}

/* Fragment i of header h (a repeated field, or a query parameter), or NULL
 * when there is none; "" for a field present but empty. Points into a
 * buffer as big as the whole header buffer, valid until the next call: a
 * fragment that did not fit would look absent, and a later token source
 * would win. */
static const char *fragment(struct lws *wsi, enum lws_token_indexes h, int i)
{
    static char frag[MAX_HEADER_BYTES + 8];
    return lws_hdr_copy_fragment(wsi, frag, sizeof(frag), h, i) >= 0 ? frag : NULL;
}

const char *http_query_param(struct lws *wsi, int i)
{
    return fragment(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
}

static char *query_token(struct lws *wsi)
{
    static const char *const names[] = {"tk=", "token="};
    const char *frag;
    for (size_t k = 0; k < 2; k++) {
        size_t nl = strlen(names[k]);
        for (int i = 0; (frag = fragment(wsi, WSI_TOKEN_HTTP_URI_ARGS, i)); i++)
            if (!strncmp(frag, names[k], nl) && frag[nl])
                return xstrdup(frag + nl);
    }
    return NULL;
}

static char *header_copy(struct lws *wsi, enum lws_token_indexes h)
{
    int len = lws_hdr_total_length(wsi, h);
    if (len <= 0)
        return NULL;
    char *v = xmalloc((size_t)len + 1);
    if (lws_hdr_copy(wsi, v, len + 1, h) < 0) {
        free(v);
        return NULL;
    }
    return v;
}

/* docs/protocol.md, "The token": query tk (or token), then Authorization:
 * Bearer, then the AuthToken cookie in any Cookie field; the first found
 * wins. */
static char *find_token(struct lws *wsi)
{
    char *token = query_token(wsi), *h;
    const char *cookie;
    if (!token && (h = header_copy(wsi, WSI_TOKEN_HTTP_AUTHORIZATION))) {
        token = auth_token_from_bearer(h);
        free(h);
    }
    /* lws joins repeated Cookie fields without a separator: read each. */
    for (int i = 0; !token && (cookie = fragment(wsi, WSI_TOKEN_HTTP_COOKIE, i)); i++)
        token = auth_token_from_cookie(cookie);
    return token;
}

/* Whether the request's Origin may use the route (common/origin.h). */
static bool origin_allowed_here(struct node *n, struct lws *wsi, const char *path)
{
    const struct origin_list *allowed = &n->cfg.allowed_origins;
    if (!allowed->n || !fragment(wsi, WSI_TOKEN_ORIGIN, 0))
        return true;
    int len = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    char *origin = xmalloc((size_t)len + 1);
    bool ok = lws_hdr_copy(wsi, origin, len + 1, WSI_TOKEN_ORIGIN) == len &&
              origin_allowed(allowed, origin, (size_t)len);
    if (!ok)
        log_debug("upgrade_refused", "refused %s: origin %s not allowed", path, origin);
    free(origin);
    return ok;
}

/* Decides who may use the route: 0 with *id filled, or the HTTP status and
 * *why, in the order of docs/protocol.md, "HTTP answers". */
int http_admit(struct node *n, struct lws *wsi, const char *path, char *room, struct identity *id,
               enum refusal *why)
{
    if (!protocol_route(n->cfg.path_prefix, path, room))
        return *why = REFUSED_NOT_FOUND, 404;
    if (!http_is_get_or_head(wsi))
        return *why = REFUSED_METHOD, 405;
    /* Before the token: a page of another site learns nothing of the
     * cookie the browser sent along. */
    if (!origin_allowed_here(n, wsi, path))
        return *why = REFUSED_ORIGIN, 403;
    char *token = find_token(wsi);
    const char *problem = "no token";
    int rc = token ? auth_verify(n->auth, token, time(NULL), id, &problem) : -1;
    free(token);
    if (rc < 0) {
        log_debug("upgrade_refused", "refused %s: %s", path, problem);
        return *why = REFUSED_UNAUTHORIZED, 401;
    }
    struct membership *m = n->membership;
    struct membership_req *req;
    if (m->answers_at_once && m->ops->ask(m, id, room, NULL, NULL, &req) != MEMBERSHIP_YES) {
        identity_clear(id);
        return *why = REFUSED_FORBIDDEN, 403;
    }
    return 0;
}

char *http_request_path(struct lws *wsi)
{
    static const enum lws_token_indexes methods[] = {
        WSI_TOKEN_GET_URI, WSI_TOKEN_HEAD_URI,  WSI_TOKEN_POST_URI,  WSI_TOKEN_OPTIONS_URI,
        WSI_TOKEN_PUT_URI, WSI_TOKEN_PATCH_URI, WSI_TOKEN_DELETE_URI};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        char *path = header_copy(wsi, methods[i]);
        if (path)
            return path;
    }
    return NULL;
}

int http_end(struct lws *wsi, int rc)
{
    if (rc)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int http_finish(struct lws *wsi, int status)
{
    return http_end(wsi, http_reply(wsi, status));
}

bool http_check_head(struct node *n, struct lws *wsi, bool websocket)
{
    char *target = http_request_path(wsi);
    char *version = header_copy(wsi, WSI_TOKEN_HTTP);
    /* Present even when empty: "Transfer-Encoding:" alone frames nothing
     * either. */
    struct http_head h = {
        .target = target,
        .version = version,
        .transfer_encoding = fragment(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING, 0) != NULL,
        .websocket = websocket,
    };
    const char *problem = http_head_problem(&h);
    free(target);
    free(version);
    if (!problem)
        return true;
    log_debug("http_refused", "refused a request: %s", problem);
    n->stats.http_malformed++;
    send_answer(wsi, 400, "text/plain; charset=utf-8", MALFORMED_BODY, strlen(MALFORMED_BODY), 0,
                true, NULL);
    return false;
}

bool http_is_get_or_head(struct lws *wsi)
{
    return lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0 ||
           lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
}

/* /healthz, /readyz and /metrics: the whole answer at once. */
int http_serve_admin(struct node *n, struct lws *wsi, const char *path)
{
    if (!http_is_get_or_head(wsi))
        return http_finish(wsi, 405);
    struct buf body;
    const char *type;
    int status = admin_answer(n, path, &body, &type);
    int rc = http_send(wsi, status, type, body.data, body.len);
    buf_free(&body);
    return http_end(wsi, rc);
}

/* lws upgrades some malformed handshakes and drops others silently; a member
 * who sends one gets the 400 of docs/protocol.md, "HTTP answers", instead. */
static bool has_token(const char *list, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, " \t,");
        if (len == n && !strncasecmp(p, token, n))
            return true;
        p += len;
    }
    return false;
}

bool http_valid_handshake(struct lws *wsi)
{
    char key[64], version[8], list[256];
    /* lws drops these without an answer: no Connection: upgrade, or a
     * subprotocol list without ours. */
    if (lws_hdr_copy(wsi, list, sizeof(list), WSI_TOKEN_CONNECTION) <= 0 ||
        !has_token(list, "upgrade"))
        return false;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) > 0 &&
        (lws_hdr_copy(wsi, list, sizeof(list), WSI_TOKEN_PROTOCOL) <= 0 ||
         !has_token(list, "signal")))
        return false;
    if (lws_hdr_copy(wsi, key, sizeof(key), WSI_TOKEN_KEY) != 24 || strcmp(key + 22, "==") != 0 ||
        strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") != 22)
        return false;
    if (lws_hdr_copy(wsi, version, sizeof(version), WSI_TOKEN_VERSION) < 0)
        return false;
    return !strcmp(version, "13") || !strcmp(version, "8");
}
