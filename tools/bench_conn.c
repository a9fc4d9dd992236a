/* One signal-bench connection on its worker's epoll: the TCP connect (from
 * a chosen source address), the upgrade, reading server frames (pings
 * answered, fragments joined, messages handed to bench_worker.c) and writing
 * masked frames, batched per loop turn. See bench_worker.h. */
#define _GNU_SOURCE /* memmem, IP_BIND_ADDRESS_NO_PORT */
#include "bench_worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* An HTTP response head longer than this is not an upgrade's. */
#define MAX_HEAD_BYTES 16384

/* Returns the next number of a xorshift64* generator: masks and handshake
 * nonces need not be secret, and the kernel's generator would cost a system
 * call per frame. */
static uint64_t next_rand(struct worker *w)
{
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 0x2545F4914F6CDD1DULL;
}

/* Sets what epoll watches on m's socket. */
static void set_events(struct worker *w, struct member *m, uint32_t events)
{
    if (m->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = m};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, m->fd, &ev);
    m->events = events;
}

/* Puts m on the list written at the end of the loop's turn, so that what a
 * turn queues for one socket goes out in one system call. A socket waiting
 * for EPOLLOUT is written when that comes. */
static void queue(struct worker *w, struct member *m)
{
    if (m->dirty || (m->events & EPOLLOUT))
        return;
    m->dirty = true;
    m->next_dirty = w->dirty;
    w->dirty = m;
}

void conn_frame(struct worker *w, struct member *m, int opcode, const void *payload, size_t len)
{
    ws_append_frame(&m->out, opcode, payload, len, (uint32_t)next_rand(w));
    queue(w, m);
}

/* Writes as much of m's output as the socket takes, and watches for
 * EPOLLOUT only while some is left. */
static void flush(struct worker *w, struct member *m)
{
    size_t off = 0;
    while (off < m->out.len) {
        ssize_t n = send(m->fd, m->out.data + off, m->out.len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            char why[120];
            snprintf(why, sizeof(why), "write: %s", strerror(errno));
            member_end(w, m, false, why);
            return;
        }
    }
    if (off) {
        memmove(m->out.data, m->out.data + off, m->out.len - off);
        m->out.len -= off;
    }
    set_events(w, m, m->out.len ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

void conn_flush_all(struct worker *w)
{
    struct member *list = w->dirty;
    w->dirty = NULL;
    while (list) {
        struct member *m = list;
        list = m->next_dirty;
        m->dirty = false;
        if (m->state != M_ENDED)
            flush(w, m);
    }
}

/* Handles one frame: messages (reassembled when fragmented), pings (each
 * answered with a pong, as keepalive needs), closes. */
static void on_frame(struct worker *w, struct member *m, const struct ws_frame *f, int64_t now)
{
    switch (f->opcode) {
    case WS_TEXT:
        if (m->fragmented) {
            member_end(w, m, true, "a new message inside a fragmented one");
        } else if (f->fin) {
            on_message(w, m, f->payload, f->len, now);
        } else {
            m->fragmented = true;
            m->msg.len = 0;
            buf_append(&m->msg, f->payload, f->len);
        }
        break;
    case WS_CONT:
        if (!m->fragmented) {
            member_end(w, m, true, "a continuation frame outside a message");
            break;
        }
        buf_append(&m->msg, f->payload, f->len);
        if (f->fin) {
            m->fragmented = false;
            on_message(w, m, m->msg.data, m->msg.len, now);
        }
        break;
    case WS_BINARY:
        note_error(w, &w->res.protocol, "a binary frame");
        break;
    case WS_PING:
        conn_frame(w, m, WS_PONG, f->payload, f->len);
        break;
    case WS_PONG:
        break;
    case WS_CLOSE: {
        const unsigned char *u = (const unsigned char *)f->payload;
        unsigned code = f->len >= 2 ? (unsigned)u[0] << 8 | u[1] : 1005;
        int reason_len = f->len > 2 ? (int)(f->len - 2) : 0;
        char why[200];
        snprintf(why, sizeof(why), "closed by the server: %u %.*s", code, reason_len,
                 reason_len ? f->payload + 2 : "");
        member_end(w, m, false, why);
        break;
    }
    default:
        member_end(w, m, true, "a frame with a reserved opcode");
    }
}

/* Takes what m received, p (len bytes): the response head during the
 * handshake, then frames. Returns the bytes used; the rest is an incomplete
 * head or frame, kept for the next read. */
static size_t consume(struct worker *w, struct member *m, const char *p, size_t len, int64_t now)
{
    size_t off = 0;
    if (m->state == M_HANDSHAKE) {
        const char *end = memmem(p, len, "\r\n\r\n", 4);
        if (!end) {
            if (len > MAX_HEAD_BYTES)
                member_end(w, m, true, "a response head without an end");
            return 0;
        }
        off = (size_t)(end + 4 - p);
        char why[160];
        if (ws_check_response(p, off, m->key, why, sizeof(why))) {
            member_end(w, m, false, why);
            return 0;
        }
        m->state = M_WELCOME;
    }
    /* Each turn takes a frame of at least 2 bytes, or stops. */
    while (off < len && m->state != M_ENDED) {
        struct ws_frame f;
        long r = ws_parse_frame(p + off, len - off, &f);
        if (r == 0)
            break;
        if (r < 0) {
            member_end(w, m, true, "a frame that breaks RFC 6455 (masked, RSV bits, too long)");
            break;
        }
        off += (size_t)r;
        on_frame(w, m, &f, now);
    }
    return off;
}

/* Reads what m's socket has and handles it. */
static void on_readable(struct worker *w, struct member *m, int64_t now)
{
    ssize_t n = recv(m->fd, w->scratch, SCRATCH_BYTES, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        char why[120];
        snprintf(why, sizeof(why), "%s", n ? strerror(errno) : "the server closed the connection");
        member_end(w, m, false, why);
        return;
    }
    /* Most reads end on a frame boundary: they are handled straight from
     * the scratch buffer, and only a partial frame is copied. */
    const char *p = w->scratch;
    size_t len = (size_t)n;
    bool held = m->in.len > 0;
    if (held) {
        buf_append(&m->in, w->scratch, len);
        p = m->in.data;
        len = m->in.len;
    }
    size_t used = consume(w, m, p, len, now);
    if (m->state == M_ENDED)
        return;
    if (held) {
        memmove(m->in.data, m->in.data + used, len - used);
        m->in.len = len - used;
    } else if (used < len) {
        buf_append(&m->in, p + used, len - used);
    }
}

/* m's TCP connect finished: writes the upgrade request, or ends m. */
static void on_connected(struct worker *w, struct member *m)
{
    int err = 0;
    socklen_t err_len = sizeof(err);
    if (getsockopt(m->fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0)
        err = errno;
    if (err) {
        char why[120];
        snprintf(why, sizeof(why), "connect: %s", strerror(err));
        member_end(w, m, false, why);
        return;
    }
    ws_make_key(next_rand(w), next_rand(w), m->key);
    ws_append_request(&m->out, w->o->urls[m->index % w->o->nurls].host, m->path, m->key);
    free(m->path);
    m->path = NULL;
    m->state = M_HANDSHAKE;
    set_events(w, m, EPOLLIN);
    queue(w, m);
}

void conn_start(struct worker *w, struct member *m, int64_t now)
{
    const struct bench_opts *o = w->o;
    const struct room *rm = &w->rooms[m->room];
    char why[120];
    m->started_ns = now;
    m->state = M_CONNECTING;
    w->in_flight++;
    m->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (m->fd < 0) {
        snprintf(why, sizeof(why), "socket: %s", strerror(errno));
        member_end(w, m, false, why);
        return;
    }
    int one = 1;
    setsockopt(m->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (o->nsource) {
        uint64_t g = rm->global * o->room_size + m->index;
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = o->source_ips[g % o->nsource];
        /* Bound without a port: the port is chosen at connect, per
         * destination, so each source address gives a full port range to
         * each node. */
        setsockopt(m->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(m->fd, (const struct sockaddr *)&src, sizeof(src)) != 0) {
            char ip[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &src.sin_addr, ip, sizeof(ip));
            snprintf(why, sizeof(why), "bind %s: %s", ip, strerror(errno));
            member_end(w, m, false, why);
            return;
        }
    }
    const struct sockaddr_in *to = &o->urls[m->index % o->nurls].addr;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = m};
    if ((connect(m->fd, (const struct sockaddr *)to, sizeof(*to)) != 0 && errno != EINPROGRESS) ||
        epoll_ctl(w->ep, EPOLL_CTL_ADD, m->fd, &ev) != 0) {
        snprintf(why, sizeof(why), "connect: %s", strerror(errno));
        member_end(w, m, false, why);
        return;
    }
    m->events = EPOLLOUT;
}

void conn_event(struct worker *w, struct member *m, uint32_t events, int64_t now)
{
    if (m->state == M_ENDED)
        return;
    if (m->state == M_CONNECTING) {
        on_connected(w, m);
        return;
    }
    if (events & EPOLLOUT)
        flush(w, m);
    if (m->state != M_ENDED && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        on_readable(w, m, now);
}

void conn_close(struct worker *w, struct member *m)
{
    if (m->state == M_JOINED) {
        static const unsigned char normal[2] = {0x03, 0xe8}; /* 1000 */
        ws_append_frame(&m->out, WS_CLOSE, normal, 2, (uint32_t)next_rand(w));
        (void)send(m->fd, m->out.data, m->out.len, MSG_NOSIGNAL);
    }
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
}
