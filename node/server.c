/* The libwebsockets glue: the listeners (one vhost each), the callback
 * switches, plain HTTP on the route, the upgrade decision and the WebSocket
 * events, handed to conn and relay; see server.h. */
#include "server.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "account_limit.h"
#include "admin.h"
#include "conn.h"
#include "demo.h"
#include "http.h"
#include "linger.h"
#include "listener.h"
#include "log.h"
#include "membership.h"
#include "protocol.h"
#include "relay.h"
#include "xalloc.h"

/* A plain GET waiting for a Redis membership answer (the per-session data of
 * an HTTP request). */
struct http_wait {
    struct membership_req *req;
    struct lws *wsi;
    int status; /* 0 while waiting */
};

static int status_of(enum membership_answer a)
{
    return a == MEMBERSHIP_YES ? 400 : a == MEMBERSHIP_NO ? 403 : 503;
}

static void on_http_membership(void *arg, enum membership_answer a)
{
    struct http_wait *w = arg;
    w->req = NULL;
    w->status = status_of(a);
    lws_callback_on_writable(w->wsi);
}

static int on_http(struct node *n, struct lws *wsi, struct http_wait *w)
{
    if (!http_check_head(n, wsi, false))
        return -1;
    char room[PROTOCOL_GUID_LEN + 1];
    struct identity id = {0};
    enum refusal why = REFUSED_NOT_FOUND;
    char *path = http_request_path(wsi);
    if (path && !n->cfg.admin_port && admin_is_path(path)) {
        int rc = http_serve_admin(n, wsi, path);
        free(path);
        return rc;
    }
    /* Development mode only: never a production node's answer. */
    if (path && n->cfg.dev && demo_is_path(path)) {
        int rc = demo_serve(n, wsi, path);
        free(path);
        return rc;
    }
    int status = path ? http_admit(n, wsi, path, room, &id, &why) : 404;
    free(path);
    if (!status && !n->membership->answers_at_once) {
        /* Membership redis: a plain GET gets the same answer an upgrade would. */
        memset(w, 0, sizeof(*w));
        w->wsi = wsi;
        enum membership_answer a =
            n->membership->ops->ask(n->membership, &id, room, on_http_membership, w, &w->req);
        status = a == MEMBERSHIP_PENDING ? 0 : status_of(a);
        identity_clear(&id);
        return status ? http_finish(wsi, status) : 0;
    }
    identity_clear(&id);
    return status ? http_end(wsi, http_refuse(wsi, status, why)) : http_finish(wsi, 400);
}

static int on_http_writeable(struct lws *wsi, struct http_wait *w)
{
    if (!w || !w->status)
        return 0;
    int status = w->status;
    w->status = 0;
    return http_finish(wsi, status);
}

/* An HTTP request ends (CLOSED_HTTP), or its wsi goes (WSI_DESTROY): a
 * membership question still out is cancelled. If the client sent more than
 * was read (a body, say), the socket lingers, so that the answer is not
 * lost to a reset; at WSI_DESTROY it is closed already (-1). */
static void on_http_closed(struct node *n, struct lws *wsi, struct http_wait *w)
{
    int fd = lws_get_socket_fd(wsi);
    if (fd >= 0 && linger_unread(fd) && !linger_peer_done(fd))
        linger_start(n, fd);
    if (w && w->req) {
        n->membership->ops->cancel(w->req);
        w->req = NULL;
    }
}

static int on_confirm_upgrade(struct node *n, struct lws *wsi, const char *upgrade)
{
    /* Other upgrades (h2c) stay HTTP: LWS_CALLBACK_HTTP answers them. */
    if (strcasecmp(upgrade, "websocket") != 0)
        return 0;
    if (!http_check_head(n, wsi, true))
        return -1;
    char room[PROTOCOL_GUID_LEN + 1];
    struct identity id = {0};
    enum refusal why = REFUSED_NOT_FOUND;
    char *path = http_request_path(wsi);
    int status = path ? http_admit(n, wsi, path, room, &id, &why) : 404;
    free(path);
    if (!status && !http_valid_handshake(wsi))
        status = 400, why = REFUSED_BAD_REQUEST;
    else if (!status && n->draining)
        status = 503, why = REFUSED_DRAINING;
    else if (!status && n->n_conns >= (unsigned long)n->cfg.max_connections)
        status = 503, why = REFUSED_FULL;
    if (status) {
        identity_clear(&id);
        n->stats.refused[why]++;
        return http_refuse(wsi, status, why) ? -1 : 1;
    }
    /* Last: only an upgrade that is otherwise admitted spends a join. */
    int limited = account_limit_admit(n, wsi, &id, room);
    if (limited) {
        identity_clear(&id);
        return limited;
    }
    struct conn *c = conn_new(n, &id, room);
    /* The per-session user space is reallocated by the upgrade; the opaque
     * pointer survives it. */
    lws_set_opaque_user_data(wsi, c);
    return 0;
}

static void on_closed(struct node *n, struct lws *wsi, struct conn *c)
{
    /* Unless the client closed first, or is gone, what was sent before the
     * close (the close frame with it) must not be lost to a reset. The
     * socket is still open at CLOSED, not at WSI_DESTROY (-1). A client
     * that never read its welcome is reset instead (conn_free). */
    int fd = lws_get_socket_fd(wsi);
    if (fd >= 0 && !c->peer_closed && !c->unread && !linger_peer_done(fd))
        linger_start(n, fd);
    lws_set_opaque_user_data(wsi, NULL);
    conn_on_closed(c);
    relay_leave(c);
    account_limit_leave(n, c->ident.account_id);
    conn_free(c);
    if (n->draining && !n->n_conns)
        node_drained(n);
}

static int on_established(struct conn *c, struct lws *wsi)
{
    int rc = conn_on_established(c, wsi);
    return rc == 0 ? relay_admit(c) : rc < 0 ? -1 : 0;
}

static int on_receive(struct conn *c, const void *in, size_t len)
{
    const char *msg;
    size_t msg_len;
    bool binary;
    int rc = conn_on_receive(c, in, len, &msg, &msg_len, &binary);
    if (rc > 0) {
        relay_message(c, msg, msg_len, binary);
        conn_rx_done(c);
    }
    return rc < 0 ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct node *n = lws_context_user(lws_get_context(wsi));
    struct conn *c = lws_get_opaque_user_data(wsi);

    switch (reason) {
    case HTTP_CALLBACK_REFUSED:
        n->stats.http_malformed++;
        return 0;
    case LWS_CALLBACK_HTTP:
        listener_request_in(n, wsi);
        return on_http(n, wsi, user);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_http_writeable(wsi, user);
    case LWS_CALLBACK_CLOSED_HTTP:
        on_http_closed(n, wsi, user);
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        listener_request_in(n, wsi);
        return on_confirm_upgrade(n, wsi, in);
    case LWS_CALLBACK_ESTABLISHED:
        return c ? on_established(c, wsi) : -1;
    case LWS_CALLBACK_RECEIVE:
        return c ? on_receive(c, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c ? conn_on_writeable(c) : 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        if (c)
            conn_on_pong(c);
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return c ? conn_on_peer_close(c, in, len) : 0;
    case LWS_CALLBACK_WSI_DESTROY:
        listener_request_in(n, wsi);
        on_http_closed(n, wsi, user);
        /* An upgrade that never completed gets no CLOSED. */
        __attribute__((fallthrough));
    case LWS_CALLBACK_CLOSED:
        if (c)
            on_closed(n, wsi, c);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* The admin listener serves the endpoints and nothing else. */
static int admin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    struct node *n = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case HTTP_CALLBACK_REFUSED:
        n->stats.http_malformed++;
        return 0;
    case LWS_CALLBACK_HTTP: {
        listener_request_in(n, wsi);
        if (!http_check_head(n, wsi, false))
            return -1;
        char *path = http_request_path(wsi);
        int rc =
            path && admin_is_path(path) ? http_serve_admin(n, wsi, path) : http_finish(wsi, 404);
        free(path);
        return rc;
    }
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        listener_request_in(n, wsi);
        if (!http_check_head(n, wsi, !strcasecmp(in, "websocket")))
            return -1;
        return http_reply(wsi, 404) ? -1 : 1;
    case LWS_CALLBACK_WSI_DESTROY:
        listener_request_in(n, wsi);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* lws allocates this + LWS_PRE + 4 bytes per connection: 1024, one of
 * jemalloc's size classes exactly (1024 took a 1280-byte one). Not less:
 * lws also reads at most this much per recv(), and at 492 a saturated node
 * made twice the reads and spent twice the CPU per delivery. */
#define RX_CHUNK_BYTES (1024 - LWS_PRE - 4)

static const struct lws_protocols protocols[] = {
    /* A 1 KiB receive buffer per connection, not lws's default 4 KiB: a
     * signaling message is a few hundred bytes, and conn.c joins the
     * chunks of a bigger one (an offer's SDP) while it arrives. */
    {"signal", callback, sizeof(struct http_wait), RX_CHUNK_BYTES, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const struct lws_protocols admin_protocols[] = {
    {"admin", admin_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log(int level, const char *line)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == ' '))
        len--;
    log_event(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws", NULL, "%.*s", (int)len, line);
}

int server_check_listen(struct node *n, char *err, size_t errlen)
{
    struct config *cfg = &n->cfg;
    if (listener_open(n, "SIGNAL_LISTEN", &cfg->listen_host, cfg->listen_port, err, errlen) < 0)
        return -1;
    if (cfg->admin_port &&
        listener_open(n, "SIGNAL_ADMIN_LISTEN", &cfg->admin_host, cfg->admin_port, err, errlen) < 0)
        return -1;
    return 0;
}

/* A vhost for the listener opened for setting: lws does not listen
 * itself, listener.c hands it what it accepts. Returns false if lws could
 * not make it. */
static bool add_vhost(struct node *n, const char *name, const char *setting,
                      const struct lws_protocols *protos)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.vhost_name = name;
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = protos;
    info.retry_and_idle_policy = &n->no_validity;
    struct lws_vhost *vh = lws_create_vhost(n->lws, &info);
    if (vh)
        listener_start(n, setting, vh);
    return vh != NULL;
}

int server_start(struct node *n, char *err, size_t errlen)
{
    lws_set_log_level(LLL_ERR | (log_enabled(LOG_DEBUG) ? LLL_WARN : 0), lws_log);

    /* lws's keepalive re-arms a timer in a sorted list per connection, so
     * idle CPU grew with the square of the connections: a policy with no
     * hangup time turns it off, and conn.c keeps connections alive. */
    memset(&n->no_validity, 0, sizeof(n->no_validity));
    const struct timeval ping = {n->cfg.ping_s, 0}, grace = {CONN_CLOSE_GRACE_S, 0};
    n->ping_tv = event_base_init_common_timeout(n->evb, &ping);
    n->grace_tv = event_base_init_common_timeout(n->evb, &grace);
    const struct timeval linger = {LINGER_IDLE_S, 0};
    n->linger_tv = event_base_init_common_timeout(n->evb, &linger);

    void *loops[] = {n->evb};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    /* One vhost per listener: the clients', and the admin one if asked. */
    info.options = LWS_SERVER_OPTION_LIBEVENT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.foreign_loops = loops;
    info.user = n;
    info.max_http_header_data = MAX_HEADER_BYTES;
    n->lws = lws_create_context(&info);
    if (!n->lws || !add_vhost(n, "clients", "SIGNAL_LISTEN", protocols) ||
        (n->cfg.admin_port && !add_vhost(n, "admin", "SIGNAL_ADMIN_LISTEN", admin_protocols))) {
        snprintf(err, errlen, "cannot start libwebsockets (see the lws line above)");
        return -1;
    }
    return 0;
}
