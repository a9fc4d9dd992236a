/* The node's listening sockets; see listener.h.
 *
 * lws's own accept loop has two faults a client without a token can use:
 * - when file descriptors run out, accept() fails at once while the
 *   listener stays readable, so lws retried in a busy loop at 100 % CPU and
 *   logged each failure (a million lines a second);
 * - a socket that never sends its request holds a descriptor until lws's
 *   timeout, so enough idle sockets leave none for real clients.
 * So the node listens itself, and hands each accepted socket to lws:
 * - out of descriptors, it stops listening and tries again every
 *   ACCEPT_RETRY_MS, logging the episode once when it starts and once when
 *   it ends: when every waiting client has been accepted;
 * - a socket is a handshake from its accept until its request's headers are
 *   in; past SIGNAL_MAX_HANDSHAKES the oldest one is dropped. A real client
 *   sends its request as soon as it connects, so only an idle socket ever
 *   stays the oldest for long. */
#define _GNU_SOURCE /* accept4 */
#include "listener.h"

#include <errno.h>
#include <event2/event.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uthash.h>

#include "clock.h"
#include "log.h"
#include "node.h"
#include "timer.h"
#include "xalloc.h"

/* While out of descriptors: how often to try again. */
#define ACCEPT_RETRY_MS 100
/* Accepts per wakeup and listener, so that a connect storm does not keep
 * the loop from the connections it already has. */
#define ACCEPTS_PER_WAKEUP 32

struct listener {
    struct node *node;
    const char *setting; /* SIGNAL_LISTEN or SIGNAL_ADMIN_LISTEN */
    evutil_socket_t fd;
    struct lws_vhost *vh;
    struct event *ev;
};

/* An accepted socket whose request is not in yet. */
struct handshake {
    struct lws *wsi;
    UT_hash_handle hh; /* in node->listeners->handshakes, oldest first */
};

struct listeners {
    struct listener l[2];
    size_t n;
    struct handshake *handshakes; /* by wsi; uthash keeps them in order of accept */
    struct event *retry;          /* while out of descriptors */
    bool out_of_fds;              /* from a failed accept to the next good one */
    int64_t out_of_fds_since_ms;
    int out_of_fds_errno;
};

static struct listeners *listeners_of(struct node *n)
{
    if (!n->listeners)
        n->listeners = xcalloc(1, sizeof(*n->listeners));
    return n->listeners;
}

/* ---- opening ---- */

int listener_open(struct node *n, const char *setting, char **host, int port, char *err,
                  size_t errlen)
{
    struct listeners *ls = listeners_of(n);
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM},
                    *ai = NULL;
    char port_s[8], numeric[NI_MAXHOST];
    const char *shown = *host ? *host : "0.0.0.0";
    snprintf(port_s, sizeof(port_s), "%d", port);
    if (!*host)
        hints.ai_family = AF_INET;
    int rc = getaddrinfo(*host, port_s, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot resolve %s: %s", setting, shown, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    rc = fd < 0 ? -1 : setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (rc == 0)
        rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc == 0)
        rc = listen(fd, SOMAXCONN);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot listen on %s:%d: %s", setting, shown, port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
    } else {
        if (*host && getnameinfo(ai->ai_addr, ai->ai_addrlen, numeric, sizeof(numeric), NULL, 0,
                                 NI_NUMERICHOST) == 0) {
            free(*host);
            *host = xstrdup(numeric);
        }
        ls->l[ls->n++] = (struct listener){n, setting, fd, NULL, NULL};
    }
    freeaddrinfo(ai);
    return rc == 0 ? 0 : -1;
}

/* ---- handshakes ---- */

/* HASH_DEL unlinks each entry before it is freed; clang's analyzer cannot
 * follow uthash's table and reports a use after free. */
// NOLINTBEGIN(clang-analyzer-unix.Malloc)

static void forget(struct node *n, struct handshake *h)
{
    HASH_DEL(n->listeners->handshakes, h);
    n->stats.handshakes--;
    free(h);
}

void listener_request_in(struct node *n, struct lws *wsi)
{
    struct handshake *h = NULL;
    if (!n->listeners)
        return;
    HASH_FIND_PTR(n->listeners->handshakes, &wsi, h);
    if (h)
        forget(n, h);
}

/* Closes the oldest handshake, now. */
static void drop_oldest(struct node *n)
{
    struct handshake *h = n->listeners->handshakes;
    if (!h)
        return;
    struct lws *wsi = h->wsi;
    forget(n, h);
    n->stats.handshakes_dropped++;
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}
// NOLINTEND(clang-analyzer-unix.Malloc)

/* ---- accepting ---- */

static void listen_all(struct listeners *ls, bool on)
{
    for (size_t i = 0; i < ls->n; i++)
        if (ls->l[i].ev)
            on ? event_add(ls->l[i].ev, NULL) : event_del(ls->l[i].ev);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct node *n = arg;
    listen_all(n->listeners, true);
}

/* accept() found no descriptor: stop listening until the retry timer. */
static void out_of_fds(struct node *n, int err)
{
    struct listeners *ls = n->listeners;
    listen_all(ls, false);
    timer_add_ms(ls->retry, ACCEPT_RETRY_MS);
    if (ls->out_of_fds)
        return;
    ls->out_of_fds = true;
    ls->out_of_fds_since_ms = clock_mono_ms();
    ls->out_of_fds_errno = err;
    n->stats.accept_paused = 1;
    n->stats.fd_exhaustions++;
    log_event(LOG_ERROR, "accept_paused", NULL,
              "out of file descriptors (%s) with %lu connections and %lu handshakes: not "
              "accepting, trying again every %d ms",
              strerror(err), n->n_conns, (unsigned long)n->stats.handshakes, ACCEPT_RETRY_MS);
}

static void accepting_again(struct node *n)
{
    struct listeners *ls = n->listeners;
    ls->out_of_fds = false;
    n->stats.accept_paused = 0;
    log_event(LOG_WARN, "accept_resumed", NULL, "accepting again after %lld ms without (%s)",
              (long long)(clock_mono_ms() - ls->out_of_fds_since_ms),
              strerror(ls->out_of_fds_errno));
}

// NOLINTBEGIN(clang-analyzer-unix.Malloc): uthash, as above
/* Hands an accepted socket to lws as a handshake; returns false if lws
 * could not take it (it has closed the socket). */
static bool adopt(struct node *n, struct listener *l, int fd)
{
    struct listeners *ls = n->listeners;
    if (n->stats.handshakes >= (uint64_t)n->cfg.max_handshakes)
        drop_oldest(n);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct lws *wsi = lws_adopt_socket_vhost(l->vh, fd);
    if (!wsi)
        return false;
    struct handshake *h = xcalloc(1, sizeof(*h));
    h->wsi = wsi;
    HASH_ADD_PTR(ls->handshakes, wsi, h);
    n->stats.handshakes++;
    return true;
}
// NOLINTEND(clang-analyzer-unix.Malloc)

static void on_acceptable(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    struct listener *l = arg;
    struct node *n = l->node;
    for (int k = 0; k < ACCEPTS_PER_WAKEUP; k++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), err = errno;
        if (fd < 0) {
            /* ECONNABORTED and the like: that client gave up, the next one
             * waits its turn. EAGAIN: no more for now. */
            if (err == ECONNABORTED || err == EINTR || err == EPROTO)
                continue;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
                out_of_fds(n, err);
            else if (n->listeners->out_of_fds && (err == EAGAIN || err == EWOULDBLOCK))
                accepting_again(n); /* every waiting client is in */
            return;
        }
        adopt(n, l, fd);
    }
}

void listener_start(struct node *n, const char *setting, struct lws_vhost *vh)
{
    struct listeners *ls = n->listeners;
    if (!ls->retry)
        ls->retry = evtimer_new(n->evb, on_retry, n);
    for (size_t i = 0; i < ls->n; i++) {
        struct listener *l = &ls->l[i];
        if (strcmp(l->setting, setting) != 0)
            continue;
        l->vh = vh;
        l->ev = event_new(n->evb, l->fd, EV_READ | EV_PERSIST, on_acceptable, l);
        event_add(l->ev, NULL);
    }
}

// NOLINTBEGIN(clang-analyzer-unix.Malloc): uthash, as above
void listener_free(struct node *n)
{
    struct listeners *ls = n->listeners;
    if (!ls)
        return;
    for (size_t i = 0; i < ls->n; i++) {
        if (ls->l[i].ev)
            event_free(ls->l[i].ev);
        close(ls->l[i].fd);
    }
    struct handshake *h, *tmp;
    HASH_ITER(hh, ls->handshakes, h, tmp)
    {
        HASH_DEL(ls->handshakes, h);
        free(h);
    }
    if (ls->retry)
        event_free(ls->retry);
    free(ls);
    n->listeners = NULL;
}
// NOLINTEND(clang-analyzer-unix.Malloc)
