/* Client connections; see conn.h. */
#include "conn.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <utlist.h>

#include "clock.h"
#include "linger.h"
#include "log.h"
#include "timer.h"
#include "ws_close.h"
#include "xalloc.h"
#include "node.h"

struct conn *conn_new(struct node *n, struct identity *ident, const char *room_id)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    c->node = n;
    c->id = ++n->next_conn_id;
    char key[sizeof(n->instance) + 24];
    snprintf(key, sizeof(key), "%s:%llu", n->instance, (unsigned long long)c->id);
    c->key = xstrdup(key);
    snprintf(c->room_id, sizeof(c->room_id), "%s", room_id);
    c->ident = *ident;
    memset(ident, 0, sizeof(*ident));
    c->state = CONN_UPGRADING;
    bucket_init(&c->bucket, (double)n->cfg.rate_burst, clock_mono_ms());
    bucket_init(&c->byte_bucket, conn_byte_burst(&n->cfg), clock_mono_ms());
    DL_PREPEND2(n->conns, c, all_prev, all_next);
    n->n_conns++;
    return c;
}

double conn_byte_burst(const struct config *cfg)
{
    double twice = 2.0 * (double)cfg->rate_bytes_per_s;
    return twice > (double)cfg->max_message_bytes ? twice : (double)cfg->max_message_bytes;
}

/* ---- what a reader holds, and for how long ----
 *
 * A reader holds its queue and, while the socket takes a frame only in
 * part, the rest of that frame, which lws keeps (write_queue). Beyond the
 * soft bound (SIGNAL_SEND_QUEUE_BYTES) it has SIGNAL_SLOW_READER_S to get
 * back under it; a packet that would take it beyond the hard bound closes
 * it at once; and a connection has SIGNAL_WELCOME_TIMEOUT_S to take its
 * first frame, the welcome. One node-wide timer watches two lists kept in
 * deadline order, so that a reader that stops reading is closed in time
 * even if nothing more is sent to it. */

/* The connection a deadline of it is in. */
#define CONN_OF(d, field) ((struct conn *)(void *)((char *)(d)-offsetof(struct conn, field)))

/* Bytes c holds: its queue, and the rest of a frame lws is sending for it. */
static size_t held(const struct conn *c)
{
    return c->queued_bytes + c->in_lws;
}

/* The watch timer fires on multiples of this, so that the deadlines of
 * many connections are met in one wakeup. */
#define WATCH_STEP_MS 100

/* Makes the node's watch timer fire by at_ms (monotonic) rounded up to
 * WATCH_STEP_MS, unless it fires earlier already. */
static void arm_watch(struct node *n, int64_t at_ms)
{
    at_ms += WATCH_STEP_MS - 1 - (at_ms + WATCH_STEP_MS - 1) % WATCH_STEP_MS;
    if (n->slow_timer_at && n->slow_timer_at <= at_ms)
        return;
    n->slow_timer_at = at_ms;
    int64_t delay = at_ms - clock_mono_ms();
    timer_add_ms(n->slow_timer, delay > 0 ? (long)delay : 0);
}

/* Takes c off both lists. With nothing left to watch the timer is
 * disarmed, so that it does not keep the loop running at exit. */
static void unwatch(struct conn *c)
{
    struct node *n = c->node;
    deadline_clear(&n->slow, &c->slow_dl);
    deadline_clear(&n->unwelcomed, &c->unread_dl);
    if (!n->slow.count && !n->unwelcomed.count && n->slow_timer_at) {
        evtimer_del(n->slow_timer);
        n->slow_timer_at = 0;
    }
}

/* Puts c on node->slow when it holds more than the soft bound, and takes it
 * off when it holds no more. A closing connection is not watched: its close
 * grace bounds it. */
static void watch_soft(struct conn *c)
{
    struct node *n = c->node;
    bool over = c->state != CONN_CLOSING && held(c) > (size_t)n->cfg.send_queue_bytes;
    if (over == c->slow_dl.set)
        return;
    if (over) {
        n->stats.slow_episodes++;
        deadline_set(&n->slow, &c->slow_dl, clock_mono_ms());
        arm_watch(n, c->slow_dl.at_ms);
    } else {
        deadline_clear(&n->slow, &c->slow_dl);
    }
}

/* Bytes of control frames lws may have written after a welcome (pongs). */
#define CONTROL_SLACK 1024

/* Whether c's welcome has reached the client: written to the socket, and
 * acknowledged by the client's TCP, so that the socket holds only what came
 * after it unacknowledged (lws's part of a frame and a few control frames
 * of its own aside). A client that never reads leaves it in the socket. */
static bool welcome_read(struct conn *c)
{
    if (c->out_bytes < c->welcome_end)
        return false;
    int unacked;
    if (ioctl(lws_get_socket_fd(c->wsi), SIOCOUTQ, &unacked) < 0)
        return true; /* cannot tell: the keepalive decides */
    uint64_t after = c->out_bytes - c->welcome_end + c->in_lws + CONTROL_SLACK;
    return (uint64_t)unacked <= after;
}

/* Takes the packet at the head of c's queue off it; returns it, with the
 * queue's reference. */
static struct packet *dequeue(struct conn *c)
{
    struct packet *p = c->queue[c->q_head];
    c->q_head = (c->q_head + 1) % c->q_cap;
    c->q_len--;
    c->queued_bytes -= p->len;
    c->node->stats.queued_bytes -= p->len;
    if (--p->queued == 0)
        c->node->stats.send_memory_bytes -= p->len;
    return p;
}

/* Empties the queue; returns how many packets were in it. */
static size_t drop_queue(struct conn *c)
{
    size_t dropped = c->q_len;
    while (c->q_len)
        packet_unref(dequeue(c));
    return dropped;
}

/* Closes c with 4008, too slow a reader, for the reason why; what it had
 * queued is dropped, since it was not reading it. */
static void close_slow(struct conn *c, enum slow_cause why)
{
    static const char *const what[N_SLOW_CAUSES] = {
        [SLOW_SOFT] = "above SIGNAL_SEND_QUEUE_BYTES for SIGNAL_SLOW_READER_S",
        [SLOW_HARD] = "a packet would take it beyond SIGNAL_SEND_QUEUE_HARD_BYTES",
        [SLOW_MEMORY] = "the node's send memory is at SIGNAL_SEND_MEMORY_BYTES",
        [SLOW_WELCOME] = "its welcome unread for SIGNAL_WELCOME_TIMEOUT_S",
    };
    struct node *n = c->node;
    unwatch(c);
    if (c->state == CONN_CLOSING || !c->wsi)
        return;
    struct log_fields f = conn_log_fields(c);
    log_event(LOG_INFO, "conn_slow_reader", &f, "%zu bytes held, %s: too slow a reader", held(c),
              what[why]);
    n->stats.slow_closes[why]++;
    c->unread = why == SLOW_WELCOME;
    conn_close(c, 4008, "Too slow a reader");
    n->stats.dropped[DROP_SLOW_READER] += drop_queue(c);
}

/* The node's watch timer: closes the readers above the soft bound past
 * their time and the connections whose welcome is still unwritten, then
 * waits for the next deadline. arg is the node. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct node *n = arg;
    int64_t now = clock_mono_ms();
    struct deadline *d;
    n->slow_timer_at = 0;
    while ((d = deadline_due(&n->slow, now)) != NULL)
        close_slow(CONN_OF(d, slow_dl), SLOW_SOFT);
    while ((d = deadline_due(&n->unwelcomed, now)) != NULL) {
        struct conn *c = CONN_OF(d, unread_dl);
        if (welcome_read(c))
            deadline_clear(&n->unwelcomed, d);
        else
            close_slow(c, SLOW_WELCOME);
    }
    int64_t a = deadline_next(&n->slow), b = deadline_next(&n->unwelcomed);
    if (a >= 0 || b >= 0)
        arm_watch(n, a < 0 ? b : b < 0 ? a : a < b ? a : b);
}

void conn_watch_init(struct node *n)
{
    deadline_list_init(&n->slow, n->cfg.slow_reader_s * 1000);
    deadline_list_init(&n->unwelcomed, n->cfg.welcome_timeout_s * 1000);
    n->slow_timer = evtimer_new(n->evb, on_watch, n);
}

void conn_watch_free(struct node *n)
{
    if (n->slow_timer)
        event_free(n->slow_timer);
}

/* Whether len more bytes fit in the node's send memory, once the readers
 * longest above the soft bound have been closed as long as they did not;
 * false also when c itself was among them. */
static bool make_room(struct conn *c, size_t len)
{
    struct node *n = c->node;
    uint64_t max = (uint64_t)n->cfg.send_memory_bytes;
    while (n->stats.send_memory_bytes + len > max && n->slow.first)
        close_slow(CONN_OF(n->slow.first, slow_dl), SLOW_MEMORY);
    return n->stats.send_memory_bytes + len <= max && c->state != CONN_CLOSING;
}

void conn_free(struct conn *c)
{
    struct node *n = c->node;
    /* A client closed for not reading its welcome reads nothing: what its
     * socket still holds when lws closes it goes with a reset. */
    int fd = c->wsi ? lws_get_socket_fd(c->wsi) : -1;
    if (c->unread && fd >= 0)
        linger_reset_if_unsent(fd);
    drop_queue(c);
    /* lws frees the rest of a frame it held with the connection. */
    n->stats.queued_bytes -= c->in_lws;
    n->stats.send_memory_bytes -= c->in_lws;
    unwatch(c);
    free(c->queue);
    free(c->rx);
    if (c->expiry)
        event_free(c->expiry);
    if (c->timer)
        event_free(c->timer);
    identity_clear(&c->ident);
    free(c->sender);
    free(c->key);
    if (c->flushing)
        DL_DELETE2(n->flush, c, flush_prev, flush_next);
    DL_DELETE2(n->conns, c, all_prev, all_next);
    n->n_conns--;
    free(c);
}

static void queue_push(struct conn *c, struct packet *p)
{
    if (c->q_len == c->q_cap) {
        size_t cap = c->q_cap ? c->q_cap * 2 : 8;
        struct packet **q = xcalloc(cap, sizeof(struct packet *));
        for (size_t i = 0; i < c->q_len; i++)
            q[i] = c->queue[(c->q_head + i) % c->q_cap];
        free(c->queue);
        c->queue = q;
        c->q_head = 0;
        c->q_cap = cap;
    }
    c->queue[(c->q_head + c->q_len) % c->q_cap] = packet_ref(p);
    c->q_len++;
    c->queued_bytes += p->len;
    c->node->stats.queued_bytes += p->len;
    if (p->queued++ == 0)
        c->node->stats.send_memory_bytes += p->len;
}

void conn_send(struct conn *c, struct packet *p)
{
    if (c->state == CONN_CLOSING || !c->wsi)
        return;
    struct node *n = c->node;
    /* One reader may not hold more than the hard bound, nor the node more
     * than its memory bound (the readers longest slow go first); a reader
     * that holds nothing takes any one packet, so that a big welcome, or a
     * message larger than the bound, still arrives. A packet already queued
     * for another reader takes no more memory. */
    enum slow_cause why = N_SLOW_CAUSES;
    if (held(c) && held(c) + p->len > (size_t)n->cfg.send_queue_hard_bytes)
        why = SLOW_HARD;
    else if (!p->queued && !make_room(c, p->len))
        why = SLOW_MEMORY;
    if (why != N_SLOW_CAUSES) {
        close_slow(c, why);
        n->stats.dropped[DROP_SLOW_READER]++;
        return;
    }
    queue_push(c, p);
    if (!c->welcomed) {
        c->welcomed = true;
        c->welcome_end = packet_frame_len(p);
        deadline_set(&n->unwelcomed, &c->unread_dl, clock_mono_ms());
        arm_watch(n, c->unread_dl.at_ms);
    }
    watch_soft(c);
    /* Written once this wakeup's events have run, with whatever else they
     * queue (conn_flush_all): no request for POLLOUT, which costs two poll
     * changes and another wakeup, unless the socket is full. */
    if (c->q_len == 1 && !c->flushing) {
        c->flushing = true;
        DL_APPEND2(n->flush, c, flush_prev, flush_next);
        event_active(n->flush_ev, EV_TIMEOUT, 0);
    }
}

void conn_send_json(struct conn *c, json_t *j)
{
    struct packet *p = packet_from_json(j);
    json_decref(j);
    if (!p) {
        conn_close(c, 1011, "Out of memory");
        return;
    }
    conn_send(c, p);
    packet_unref(p);
}

void conn_send_error(struct conn *c, const char *code, const char *message)
{
    c->node->stats.errors_sent[stats_error_kind(code)]++;
    conn_send_json(c, protocol_error(code, message));
}

void conn_close(struct conn *c, int code, const char *reason)
{
    if (c->state == CONN_CLOSING || !c->wsi)
        return;
    c->state = CONN_CLOSING;
    c->close_code = code;
    c->close_reason = reason;
    lws_callback_on_writable(c->wsi);
    /* The keepalive's timer becomes the grace: a peer that reads nothing
     * cannot take our close frame. */
    event_del(c->timer);
    event_add(c->timer, c->node->grace_tv);
}

/* Every SIGNAL_PING_S: a connection heard from since the last tick is
 * fine; one silent for a whole period gets a ping; one still silent a
 * period later is dropped, as is a closing one past its grace. So a silent
 * peer is pinged 1-2 periods after its last frame and dropped 2-3 periods
 * after it. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct conn *c = arg;
    if (c->state != CONN_CLOSING && c->heard) {
        c->heard = false;
        c->ping_sent = false;
    } else if (c->state != CONN_CLOSING && !c->ping_sent) {
        c->ping_sent = true;
        c->ping_pending = true;
        lws_callback_on_writable(c->wsi);
    } else {
        /* Now: lws would only notice an asynchronous kill at its next timer,
         * and it keeps none for this connection. Its CLOSED callback frees
         * c, timer included, so nothing here touches c afterwards. While lws
         * still holds part of a frame it gives it 5 s of its own first: the
         * tick stops, since killing again would cancel that timeout. */
        event_del(c->timer);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
    }
}

void conn_on_pong(struct conn *c)
{
    c->heard = true;
}

static void on_expiry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct conn *c = arg;
    conn_close(c, 4001, "Token expired");
}

static int arm_expiry(struct conn *c)
{
    /* exp is whatever the token says: far-future values get no timer rather
     * than an overflow. */
    const long long forever_s = 100LL * 365 * 24 * 3600;
    if (c->ident.exp > clock_now_ms() / 1000 + forever_s)
        return 0;
    int64_t at_ms = (c->ident.exp + c->node->cfg.jwt_leeway_s) * 1000;
    int64_t delay = at_ms - clock_now_ms();
    if (delay < 0)
        delay = 0;
    c->expiry = evtimer_new(c->node->evb, on_expiry, c);
    return c->expiry ? timer_add_ms(c->expiry, (long)delay) : -1;
}

struct log_fields conn_log_fields(const struct conn *c)
{
    struct log_fields f = {c->room_id, c->ident.account_id, c->key, 0, -1};
    return f;
}

int conn_on_established(struct conn *c, struct lws *wsi)
{
    struct node *n = c->node;
    c->wsi = wsi;
    c->state = CONN_PENDING;
    c->timer = event_new(n->evb, -1, EV_PERSIST, on_tick, c);
    event_add(c->timer, n->ping_tv);
    c->opened_ms = clock_mono_ms();
    n->n_open++;
    if (n->n_open > n->trim_high)
        n->trim_high = n->n_open;
    n->stats.connections_accepted++;
    struct log_fields f = conn_log_fields(c);
    log_event(LOG_INFO, "conn_open", &f, "connection open");
    if (c->node->closing_all) { /* upgraded after the drain ran out */
        conn_close(c, 1001, "Node shutting down");
        return 1;
    }
    return arm_expiry(c) < 0 ? -1 : 0;
}

static int rx_append(struct conn *c, const void *in, size_t len)
{
    if (!len)
        return 0;
    size_t max = (size_t)c->node->cfg.max_message_bytes;
    if (c->rx_len + len > max)
        return -1;
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 1024;
        while (cap < c->rx_len + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        c->rx = xrealloc(c->rx, cap);
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    return 0;
}

int conn_on_receive(struct conn *c, const void *in, size_t len, const char **msg, size_t *msg_len,
                    bool *binary)
{
    c->heard = true;
    if (c->state != CONN_JOINED)
        return 0;
    /* The frame header announces the rest: refuse a too-big message at its
     * first bytes rather than after reading all of it. */
    size_t announced = lws_remaining_packet_payload(c->wsi);
    if (!c->rx_len && !announced && len && lws_is_final_fragment(c->wsi) &&
        len <= (size_t)c->node->cfg.max_message_bytes) {
        /* A whole message in one piece, the usual case: no copy. */
        *binary = lws_frame_is_binary(c->wsi);
        *msg = in;
        *msg_len = len;
        return 1;
    }
    if (c->rx_len + len + announced > (size_t)c->node->cfg.max_message_bytes ||
        rx_append(c, in, len) < 0) {
        static const char reason[] = "Message too big";
        c->close_code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)reason,
                         sizeof(reason) - 1);
        return -1;
    }
    if (!lws_is_final_fragment(c->wsi))
        return 0;
    *binary = lws_frame_is_binary(c->wsi);
    *msg = (const char *)c->rx;
    *msg_len = c->rx_len;
    c->rx_len = 0;
    return 1;
}

void conn_rx_done(struct conn *c)
{
    /* Not kept for the next message: most connections send a few signals
     * while a call sets up and then nothing for an hour, and an offer's SDP
     * would keep several KiB per connection. */
    free(c->rx);
    c->rx = NULL;
    c->rx_cap = 0;
}

/* At most this many frames, and about this many bytes, go out in one
 * sendmsg: a few hundred signals. */
#define WRITE_FRAMES 64
#define WRITE_BYTES ((size_t)256 << 10)

/* Once lws has sent the rest of a frame it held for c, that counts as
 * written. */
static void settle(struct conn *c)
{
    if (!c->in_lws || lws_partial_buffered(c->wsi))
        return;
    c->out_bytes += c->in_lws;
    c->node->stats.queued_bytes -= c->in_lws;
    c->node->stats.send_memory_bytes -= c->in_lws;
    c->in_lws = 0;
}

/* The socket took sent bytes of the frames at the head of c's queue: takes
 * them off it. The rest of a frame it took only part of goes to lws, which
 * copies it and sends it before anything of its own (pongs and close frames
 * included), so that nothing comes between two parts of a frame. Returns -1
 * when lws fails. */
static int consume(struct conn *c, size_t sent)
{
    struct stats *st = &c->node->stats;
    c->out_bytes += sent;
    while (sent) {
        struct packet *p = dequeue(c);
        size_t len = packet_frame_len(p);
        st->frames_out++;
        st->bytes_out += p->len;
        if (sent < len) {
            int rc = lws_write(c->wsi, packet_frame(p) + sent, len - sent, LWS_WRITE_RAW);
            c->in_lws = len - sent;
            st->queued_bytes += c->in_lws;
            st->send_memory_bytes += c->in_lws;
            packet_unref(p);
            return rc < 0 ? -1 : 0;
        }
        sent -= len;
        packet_unref(p);
    }
    return 0;
}

/* Writes the queued frames straight to the socket, several in one sendmsg
 * from the packets themselves, while it takes them all and lws holds
 * nothing to send first (lws would send a 1 KiB part per wakeup), then asks
 * for POLLOUT if some are left. Returns -1 when the socket failed. */
static int write_queue(struct conn *c)
{
    int fd = lws_get_socket_fd(c->wsi);
    for (;;) {
        settle(c);
        if (!c->q_len || lws_partial_buffered(c->wsi))
            break;
        struct iovec iov[WRITE_FRAMES];
        size_t k = 0, total = 0;
        while (k < c->q_len && k < WRITE_FRAMES && total < WRITE_BYTES) {
            struct packet *p = c->queue[(c->q_head + k) % c->q_cap];
            iov[k].iov_base = packet_frame(p);
            iov[k].iov_len = packet_frame_len(p);
            total += iov[k++].iov_len;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = k};
        ssize_t sent = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (sent > 0 && consume(c, (size_t)sent) < 0)
            return -1;
        if (sent < (ssize_t)total)
            break; /* the socket is full */
    }
    if (c->q_len)
        lws_callback_on_writable(c->wsi);
    watch_soft(c);
    return 0;
}

int conn_on_writeable(struct conn *c)
{
    if (c->ping_pending) {
        /* Not empty: lws does not report an empty pong (RECEIVE_PONG). */
        unsigned char ping[LWS_PRE + 2] = {[LWS_PRE] = 'k', [LWS_PRE + 1] = 'a'};
        c->ping_pending = false;
        if (lws_write(c->wsi, ping + LWS_PRE, 2, LWS_WRITE_PING) < 0)
            return -1;
    }
    /* A closing connection still gets what was queued before the close
     * (the errors that explain it, say), then the close frame. */
    if (c->state == CONN_CLOSING && !c->q_len) {
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    if (write_queue(c) < 0)
        return -1;
    if (c->state == CONN_CLOSING)
        lws_callback_on_writable(c->wsi);
    return 0;
}

void conn_flush_all(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct node *n = arg;
    struct conn *c;
    while ((c = n->flush) != NULL) {
        DL_DELETE2(n->flush, c, flush_prev, flush_next);
        c->flushing = false;
        if (!c->q_len)
            continue;
        /* A ping goes first, from WRITEABLE. */
        if (c->ping_pending) {
            lws_callback_on_writable(c->wsi);
        } else if (write_queue(c) < 0) {
            /* The socket failed: lws closes it at once, as if its
             * callback had returned -1. */
            drop_queue(c);
            unwatch(c);
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
    }
}

int conn_on_peer_close(struct conn *c, const void *in, size_t len)
{
    const unsigned char *b = in;
    c->peer_closed = true;
    int bad = ws_close_check(in, len);
    /* A close frame without a code is 1005 (RFC 6455 §7.1.5); a malformed
     * one is counted with the code it gets in answer. */
    if (c->state != CONN_CLOSING || !c->close_code)
        c->close_code = bad ? bad : len >= 2 ? b[0] << 8 | b[1] : 1005;
    if (!bad)
        return 0; /* lws echoes it */
    /* Our own close instead of the echo: a forbidden code is not sent back,
     * nor the peer's reason. */
    const char *why = bad == 1002 ? "Invalid close frame" : "Close reason is not valid UTF-8";
    lws_close_reason(c->wsi, (enum lws_close_status)bad, (unsigned char *)why, strlen(why));
    return -1;
}

void conn_on_closed(struct conn *c)
{
    struct node *n = c->node;
    if (!c->opened_ms)
        return; /* never established: counted as a refusal or not at all */
    int code = c->close_code;
    /* libwebsockets closes on a framing error by itself (1002, say): its
     * close frame holds the code. */
    if (!code && lws_get_close_length(c->wsi) >= 2) {
        const unsigned char *sent = lws_get_close_payload(c->wsi);
        code = sent[0] << 8 | sent[1];
    }
    if (!code)
        code = 1006;
    n->n_open--;
    n->stats.closed[stats_close_index(code)]++;
    struct log_fields f = conn_log_fields(c);
    f.code = code;
    f.duration_ms = clock_mono_ms() - c->opened_ms;
    log_event(LOG_INFO, "conn_close", &f, "connection closed");
}

void conn_pause_input(struct conn *c, bool pause)
{
    lws_rx_flow_control(c->wsi, pause ? 0 : 1);
}

bool conn_peer_gone(struct conn *c)
{
    return linger_peer_done(lws_get_socket_fd(c->wsi));
}
