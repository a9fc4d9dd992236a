/* Lingering close, as nginx does it; see linger.h.
 *
 * Closing a socket that has unread input, or that receives more after the
 * close, makes the kernel answer with a reset; and a reset makes the peer's
 * kernel throw away what it had received but the peer had not read yet. So
 * a client that floods without reading never saw the errors that explained
 * its close, nor the close frame: only a reset (1006). Instead, the socket
 * lws closes lives on as a duplicate here: shut down for writing (what was
 * sent goes out, then a FIN), and read until the peer closes too, or for a
 * bounded time, with what arrives thrown away. If by then the peer has
 * not taken what was sent, the socket is reset after all. */
#define _GNU_SOURCE /* POLLRDHUP */
#include "linger.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utlist.h>

#include "clock.h"
#include "node.h"
#include "xalloc.h"

/* Each lingering socket holds a descriptor: beyond this many, closes are
 * abrupt again. */
#define LINGER_MAX_SOCKETS 1024

struct lingering {
    struct node *node;
    int fd;
    int64_t until_ms;
    struct event *ev;
    struct lingering *prev, *next; /* on node->lingering */
};

bool linger_peer_done(int fd)
{
    struct pollfd p = {fd, POLLRDHUP, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

bool linger_unread(int fd)
{
    int unread = 0;
    return ioctl(fd, FIONREAD, &unread) == 0 && unread > 0;
}

bool linger_reset_if_unsent(int fd)
{
    int unsent = 0;
    if (ioctl(fd, SIOCOUTQ, &unsent) < 0 || unsent <= 0)
        return false;
    struct linger reset = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    return true;
}

static void end(struct lingering *l, enum linger_end how)
{
    struct node *n = l->node;
    /* The peer had its time and did not take what was sent. */
    if (how == LINGER_TIMED_OUT && linger_reset_if_unsent(l->fd))
        n->stats.linger_resets++;
    DL_DELETE(n->lingering, l);
    n->stats.lingering--;
    n->stats.linger_ends[how]++;
    event_free(l->ev);
    close(l->fd);
    free(l);
    node_linger_ended(n);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct lingering *l = arg;
    static char discard[65536]; /* one thread: one read at a time */
    if (what & EV_TIMEOUT) {
        end(l, LINGER_TIMED_OUT);
        return;
    }
    ssize_t got = read(fd, discard, sizeof(discard));
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
        end(l, LINGER_PEER_CLOSED);
    else if (clock_mono_ms() >= l->until_ms)
        end(l, LINGER_TIMED_OUT);
}

void linger_start(struct node *n, int fd)
{
    if (n->stats.lingering >= LINGER_MAX_SOCKETS || n->stats.accept_paused) {
        n->stats.linger_ends[LINGER_SKIPPED]++;
        return;
    }
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) {
        n->stats.linger_ends[LINGER_SKIPPED]++;
        return;
    }
    shutdown(dup_fd, SHUT_WR);
    struct lingering *l = xcalloc(1, sizeof(*l));
    l->node = n;
    l->fd = dup_fd;
    l->until_ms = clock_mono_ms() + LINGER_MAX_MS;
    l->ev = event_new(n->evb, dup_fd, EV_READ | EV_PERSIST, on_readable, l);
    event_add(l->ev, n->linger_tv);
    DL_APPEND(n->lingering, l);
    n->stats.lingering++;
}

/* end() unlinks each one before it is freed; clang's analyzer cannot
 * follow utlist and reports a use after free. */
// NOLINTBEGIN(clang-analyzer-unix.Malloc)
void linger_free_all(struct node *n)
{
    while (n->lingering)
        end(n->lingering, LINGER_TIMED_OUT);
}
// NOLINTEND(clang-analyzer-unix.Malloc)
