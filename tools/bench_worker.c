/* One signal-bench worker: the connections of a slice of the rooms, on one
 * epoll loop. It connects them with bounded concurrency, sends bench signals
 * (open loop at a rate per member, or closed loop with a window per sender),
 * checks every delivery (room, per-sender order, and at the end loss), and
 * reports to the parent. Every room is whole in one worker, so each check is
 * local. bench_conn.c carries the connections; bench.h describes the
 * commands and the reports. */
#include "bench_worker.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "mint.h"
#include "rand.h"
#include "xalloc.h"

#define MAX_EVENTS 512
/* Open loop: a member whose unsent bytes pass this skips its sends (counted
 * as unsent), so a server that stops reading cannot make the bench grow
 * without bound. */
#define OUT_CAP ((size_t)256 * 1024)
/* The longest the loop sleeps, so that timeouts are noticed. */
#define TICK_MS 100
/* The drain's quiet period (bench.h), in nanoseconds. */
#define QUIET_NS (DRAIN_QUIET_S * 1000000000LL)

/* Returns the process's CPU time (user and system) in seconds. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Writes all n bytes to the parent; returns false when it is gone. */
static bool write_full(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

void note_error(struct worker *w, uint64_t *counter, const char *fmt, ...)
{
    if (w->phase == P_DONE)
        return;
    (*counter)++;
    if (w->first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->first_error, sizeof(w->first_error), fmt, ap);
    va_end(ap);
}

static void ack_update(struct worker *w, struct room *rm, struct member *snd);

void member_end(struct worker *w, struct member *m, bool protocol, const char *why)
{
    if (m->state == M_ENDED)
        return;
    bool was_joined = m->state == M_JOINED;
    if (!was_joined) {
        w->res.connect_failed++;
        w->in_flight--;
        w->connect_done_ns = now_ns();
        if (!w->first_failure[0])
            snprintf(w->first_failure, sizeof(w->first_failure), "%s", why);
    } else {
        note_error(w, protocol ? &w->res.protocol : &w->res.closes, "%s", why);
    }
    m->state = M_ENDED;
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    if (was_joined) {
        struct room *rm = &w->rooms[m->room];
        rm->live--;
        for (uint32_t i = 0; i < rm->size; i++)
            if (rm->members[i].state == M_JOINED)
                ack_update(w, rm, &rm->members[i]);
    }
}

/* Queues one bench signal from m, stamped with the time now. */
static void send_signal(struct worker *w, struct member *m)
{
    struct room *rm = &w->rooms[m->room];
    char text[160];
    int n = snprintf(text, sizeof(text),
                     "{\"type\":\"bench\",\"data\":{\"r\":%" PRIu64 ",\"s\":%" PRIu32
                     ",\"q\":%" PRIu32 ",\"t\":%" PRId64 "}}",
                     rm->global, m->index, ++m->seq, now_ns());
    conn_frame(w, m, WS_TEXT, text, (size_t)n);
    w->res.sent++;
    w->res.expected += rm->live - 1;
}

/* Closed loop: sends from m until it has a window of signals outstanding. A
 * member alone in its room sends nothing: nobody would receive it. Nothing
 * is sent once the window has closed, even in the turn that closes it, so
 * that every latency is a signal sent inside it. */
static void fill(struct worker *w, struct member *m)
{
    if (!w->o->saturate || w->phase != P_LOAD || !w->load_begun || m->state != M_JOINED ||
        w->rooms[m->room].live < 2 || now_ns() >= w->load_end)
        return;
    while (m->seq - m->acked < w->o->window)
        send_signal(w, m);
}

/* Closed loop: moves snd's acknowledged sequence up to the lowest one its
 * room's other live members have seen, and refills its window. */
static void ack_update(struct worker *w, struct room *rm, struct member *snd)
{
    uint32_t min = snd->seq;
    for (uint32_t j = 0; j < rm->size; j++) {
        if (j == snd->index || rm->members[j].state != M_JOINED)
            continue;
        uint32_t v = rm->hi[(size_t)j * rm->size + snd->index];
        if (v < min)
            min = v;
    }
    if (min > snd->acked) {
        snd->acked = min;
        snd->moved_ns = now_ns();
    }
    fill(w, snd);
}

/* Checks one bench signal m received at now: its room and sender, its order
 * after the sender's earlier ones; records its latency. */
static void on_bench(struct worker *w, struct member *m, const struct pkt *k, int64_t now)
{
    struct room *rm = &w->rooms[m->room];
    if (k->r != rm->global || k->s >= rm->size || k->s == m->index) {
        note_error(w, &w->res.isolation,
                   "member %" PRIu32 " of room %" PRIu64 " received r=%" PRIu64 " s=%" PRIu64,
                   m->index, rm->global, k->r, k->s);
        return;
    }
    w->res.delivered++;
    w->last_delivery_ns = now;
    if (now >= w->load_start && now < w->load_end)
        w->res.delivered_window++;
    /* Only the signals sent inside the window are timed: the open loop,
     * when it runs late, sends the last ones due inside it just after. */
    if ((int64_t)k->t >= w->load_start && (int64_t)k->t < w->load_end)
        hist_add(&w->res.latency, now > (int64_t)k->t ? (uint64_t)(now - (int64_t)k->t) : 0);
    uint32_t *hi = &rm->hi[(size_t)m->index * rm->size + k->s];
    if (k->q <= *hi) {
        w->res.reordered++;
        return;
    }
    uint32_t old = *hi;
    *hi = k->q > UINT32_MAX ? UINT32_MAX : (uint32_t)k->q;
    struct member *snd = &rm->members[k->s];
    /* Only a receiver at or below the sender's mark can move it up (below
     * it: after the sender gave up a stalled window). */
    if (w->o->saturate && old <= snd->acked)
        ack_update(w, rm, snd);
}

void on_message(struct worker *w, struct member *m, const char *p, size_t n, int64_t now)
{
    struct pkt k;
    scan_packet(p, n, &k);
    if (m->state == M_WELCOME) {
        if (k.kind != PKT_WELCOME) {
            char why[200];
            snprintf(why, sizeof(why), "the first packet is not the welcome: %.*s",
                     (int)(n > 120 ? 120 : n), p);
            member_end(w, m, true, why);
            return;
        }
        m->state = M_JOINED;
        w->res.connections++;
        w->in_flight--;
        w->rooms[m->room].live++;
        w->connect_done_ns = now;
        return;
    }
    if (m->state != M_JOINED)
        return;
    if (k.kind == PKT_BENCH)
        on_bench(w, m, &k, now);
    else if (k.kind == PKT_ERROR)
        note_error(w, &w->res.error_packets, "%.*s", (int)(n > 160 ? 160 : n), p);
    else if (k.kind != PKT_SIGNAL)
        note_error(w, &w->res.protocol, "unexpected packet: %.*s", (int)(n > 140 ? 140 : n), p);
}

/* The connect phase's turn: fails connections past the timeout, starts new
 * ones up to the concurrency, and reports once every one is settled. */
static void connect_tick(struct worker *w, int64_t now)
{
    int64_t timeout = (int64_t)(w->o->connect_timeout_s * 1e9);
    /* Connections start in order with the same timeout, so the oldest
     * unfinished one is the first to expire. */
    while (w->oldest < w->next_start) {
        struct member *m = &w->members[w->oldest];
        if (m->state != M_JOINED && m->state != M_ENDED) {
            if (now - m->started_ns < timeout)
                break;
            member_end(w, m, false, "no welcome within --connect-timeout");
        }
        w->oldest++;
    }
    while (w->in_flight < w->concurrency && w->next_start < w->nmembers)
        conn_start(w, &w->members[w->next_start++], now);
    if (w->next_start < w->nmembers || w->in_flight > 0)
        return;
    if (w->res.connect_failed)
        fprintf(stderr,
                "signal-bench: worker %u: %" PRIu64 " connection(s) failed; the first: %s\n",
                w->index, w->res.connect_failed, w->first_failure);
    struct bench_connected c = {w->connect_done_ns ? w->connect_done_ns : now, w->res.connections,
                                w->res.connect_failed};
    w->phase = write_full(w->report_fd, &c, sizeof(c)) ? P_CONNECTED : P_DONE;
}

/* Returns when the open loop's next signal is due: members take turns, the
 * k-th of n at k/n of each period. */
static int64_t next_due(const struct worker *w)
{
    double period = 1e9 / w->o->rate;
    return w->load_start +
           (int64_t)(((double)w->cycle + (double)w->cursor / (double)w->nmembers) * period);
}

/* Open loop: sends every signal due by now (at most one round of members per
 * turn, so that reading keeps up). A member alone in its room sends nothing. */
static void open_loop(struct worker *w, int64_t now)
{
    for (size_t k = 0; k < w->nmembers; k++) {
        int64_t due = next_due(w);
        if (due > now || due >= w->load_end)
            return;
        struct member *m = &w->members[w->cursor];
        if (++w->cursor == w->nmembers) {
            w->cursor = 0;
            w->cycle++;
        }
        if (m->state != M_JOINED || w->rooms[m->room].live < 2)
            continue;
        if (m->out.len > OUT_CAP)
            w->res.unsent++;
        else
            send_signal(w, m);
    }
}

/* Closed loop: restarts every sender whose window has not moved for the
 * drain's bound; looked for once per tick. A slow node only delays a
 * window: giving it up sooner would send more than the window into a node
 * that is already behind, and turn the closed loop into an open one. A
 * window that stands still that long is waiting for signals that would
 * count as lost after the drain anyway (or, say, that the rate limit
 * refused), and the sender must not stall for the rest of the run. */
static void unstall(struct worker *w, int64_t now)
{
    if (now - w->stall_check_ns < TICK_MS * 1000000LL)
        return;
    w->stall_check_ns = now;
    int64_t bound = (int64_t)(w->o->drain_s * 1e9);
    for (size_t i = 0; i < w->nmembers; i++) {
        struct member *m = &w->members[i];
        if (m->state == M_JOINED && m->seq != m->acked && now - m->moved_ns >= bound) {
            m->acked = m->seq;
            m->moved_ns = now;
            fill(w, m);
        }
    }
}

/* Returns since when the drain has seen no bench signal arrive: the last
 * one, or the window's end if that is later. */
static int64_t quiet_since(const struct worker *w)
{
    return w->last_delivery_ns > w->load_end ? w->last_delivery_ns : w->load_end;
}

/* Sends the result, with how the drain ended (why) at now, to the parent
 * and ends the run. */
static void finish(struct worker *w, enum drain_end why, int64_t now)
{
    if (w->first_error[0])
        fprintf(stderr, "signal-bench: worker %u: the first error: %s\n", w->index, w->first_error);
    w->res.drain_s = (double)(now - w->load_end) / 1e9;
    w->res.drain_end = why;
    w->phase = P_DONE;
    write_full(w->report_fd, &w->res, sizeof(w->res));
}

/* The load and drain phases' turn: starts the load at its time, sends what
 * is due, ends the window, then reads on without sending until every
 * signal has arrived, none has for QUIET_NS, or the drain's bound is over. */
static void load_tick(struct worker *w, int64_t now)
{
    if (w->phase == P_LOAD && now >= w->load_start) {
        if (!w->load_begun) {
            w->load_begun = true;
            w->cpu_at_start = cpu_s();
            for (size_t i = 0; i < w->nmembers; i++) {
                w->members[i].moved_ns = now;
                fill(w, &w->members[i]);
            }
        }
        if (w->o->saturate)
            unstall(w, now);
        else if (w->o->rate > 0)
            open_loop(w, now);
        if (now >= w->load_end) {
            w->res.load_cpu_s = cpu_s() - w->cpu_at_start;
            w->res.in_flight_at_end =
                w->res.expected > w->res.delivered ? w->res.expected - w->res.delivered : 0;
            w->phase = P_DRAIN;
            w->drain_end = w->load_end + (int64_t)(w->o->drain_s * 1e9);
        }
    }
    if (w->phase != P_DRAIN)
        return;
    if (w->res.delivered >= w->res.expected)
        finish(w, DRAIN_COMPLETE, now);
    else if (now - quiet_since(w) >= QUIET_NS)
        finish(w, DRAIN_QUIET, now);
    else if (now >= w->drain_end)
        finish(w, DRAIN_BOUND, now);
}

/* Reads a command from the parent: a start time for the next phase, or 0
 * (or the pipe's end) to stop. */
static void on_command(struct worker *w)
{
    int64_t t = 0;
    ssize_t n = read(w->cmd_fd, &t, sizeof(t));
    if (n < 0 && errno == EINTR)
        return;
    if (n != (ssize_t)sizeof(t) || t == 0) {
        w->failed = n != (ssize_t)sizeof(t); /* the parent is gone */
        w->phase = P_DONE;
    } else if (w->phase == P_READY) {
        w->phase = P_CONNECT;
    } else if (w->phase == P_CONNECTED) {
        w->load_start = t;
        w->load_end = t + (int64_t)(w->o->duration_s * 1e9);
        w->phase = P_LOAD;
    }
}

/* Returns how long the loop may sleep, in milliseconds. */
static int next_timeout(const struct worker *w, int64_t now)
{
    if (w->dirty)
        return 0;
    int64_t next = now + TICK_MS * 1000000LL;
    if (w->phase == P_LOAD && now < w->load_start && w->load_start < next)
        next = w->load_start;
    else if (w->phase == P_LOAD && !w->o->saturate && w->o->rate > 0 && next_due(w) < next)
        next = next_due(w);
    if (w->phase == P_LOAD && w->load_end < next)
        next = w->load_end;
    if (w->phase == P_DRAIN && w->drain_end < next)
        next = w->drain_end;
    if (w->phase == P_DRAIN && quiet_since(w) + QUIET_NS < next)
        next = quiet_since(w) + QUIET_NS;
    return next <= now ? 0 : (int)((next - now + 999999) / 1000000);
}

/* Returns the request path for member i of rm, with a token for it. */
static char *member_path(const struct bench_opts *o, const struct room *rm, uint32_t i,
                         long long exp)
{
    char sub[64], name[64];
    snprintf(sub, sizeof(sub), "bench-%s-%" PRIu64 "-%" PRIu32, o->run_id, rm->global, i);
    snprintf(name, sizeof(name), "Bench %" PRIu64 ".%" PRIu32, rm->global, i);
    json_t *claims = json_pack("{s:s, s:s, s:[s], s:I}", "sub", sub, "name", name, "rooms", rm->id,
                               "exp", (json_int_t)exp);
    char *token =
        claims ? mint_token(claims, "HS256", (const unsigned char *)o->secret, strlen(o->secret))
               : NULL;
    json_decref(claims);
    if (!token) {
        fputs("signal-bench: cannot sign a token: out of memory\n", stderr);
        exit(1);
    }
    struct buf b;
    buf_init(&b, 512);
    buf_appendf(&b, "%s/chat/realtime/%s?tk=%s", o->prefix, rm->id, token);
    free(token);
    return b.data;
}

/* Makes a random (version 4) UUID, the form room ids take. */
static void make_uuid(char out[37])
{
    unsigned char b[16];
    rand_bytes(b, sizeof(b));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* Makes the worker's rooms [first, end) and their members, each with its
 * request path and token: minted now, so that the connect phase measures
 * the server and not the signing. */
static void setup(struct worker *w, uint64_t first, uint64_t end)
{
    const struct bench_opts *o = w->o;
    w->nrooms = end - first;
    w->rooms = xcalloc(w->nrooms, sizeof(*w->rooms));
    for (size_t r = 0; r < w->nrooms; r++) {
        uint64_t taken = (first + r) * o->room_size;
        w->rooms[r].size = (uint32_t)(o->connections - taken < o->room_size ? o->connections - taken
                                                                            : o->room_size);
        w->nmembers += w->rooms[r].size;
    }
    w->members = xcalloc(w->nmembers, sizeof(*w->members));
    long long exp = (long long)time(NULL) + (long long)(o->duration_s + o->drain_s) + 3600;
    size_t mi = 0;
    for (size_t r = 0; r < w->nrooms; r++) {
        struct room *rm = &w->rooms[r];
        rm->global = first + r;
        rm->members = &w->members[mi];
        rm->hi = xcalloc((size_t)rm->size * rm->size, sizeof(*rm->hi));
        make_uuid(rm->id);
        for (uint32_t i = 0; i < rm->size; i++, mi++) {
            struct member *m = &w->members[mi];
            m->fd = -1;
            m->room = (uint32_t)r;
            m->index = i;
            m->path = member_path(o, rm, i, exp);
        }
    }
}

/* Ends every connection, with a close frame for the welcomed ones (one
 * attempt: the run is over), and frees the worker. */
static void teardown(struct worker *w)
{
    for (size_t i = 0; i < w->nmembers; i++) {
        struct member *m = &w->members[i];
        conn_close(w, m);
        free(m->path);
        buf_free(&m->in);
        buf_free(&m->out);
        buf_free(&m->msg);
    }
    for (size_t r = 0; r < w->nrooms; r++)
        free(w->rooms[r].hi);
    free(w->rooms);
    free(w->members);
    free(w->scratch);
    if (w->ep >= 0)
        close(w->ep);
    close(w->cmd_fd);
    close(w->report_fd);
    free(w);
}

int worker_main(const struct bench_opts *o, unsigned index, uint64_t room_first, uint64_t room_end,
                unsigned concurrency, int cmd_fd, int report_fd)
{
    struct worker *w = xcalloc(1, sizeof(*w));
    w->o = o;
    w->index = index;
    w->concurrency = concurrency;
    w->cmd_fd = cmd_fd;
    w->report_fd = report_fd;
    rand_bytes(&w->rng, sizeof(w->rng));
    w->rng |= 1; /* xorshift never leaves 0 */
    w->scratch = xmalloc(SCRATCH_BYTES);
    setup(w, room_first, room_end);
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event cmd = {.events = EPOLLIN, .data.ptr = NULL};
    if (w->ep < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, cmd_fd, &cmd) != 0) {
        fprintf(stderr, "signal-bench: worker %u: epoll: %s\n", index, strerror(errno));
        teardown(w);
        return 1;
    }
    static const char ready = 'R';
    if (!write_full(report_fd, &ready, 1))
        w->phase = P_DONE;
    /* Each phase ends by its own deadline (connect timeouts, the load's
     * duration, the drain); between phases the worker waits for the parent,
     * which bounds that wait and ends the pipe when it gives up. */
    struct epoll_event events[MAX_EVENTS];
    while (w->phase != P_DONE) {
        int n = epoll_wait(w->ep, events, MAX_EVENTS, next_timeout(w, now_ns()));
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "signal-bench: worker %u: epoll_wait: %s\n", index, strerror(errno));
            w->failed = true;
            break;
        }
        int64_t now = now_ns();
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr)
                conn_event(w, events[i].data.ptr, events[i].events, now);
            else
                on_command(w);
        }
        if (w->phase == P_CONNECT)
            connect_tick(w, now);
        load_tick(w, now);
        conn_flush_all(w);
    }
    int rc = w->failed ? 1 : 0;
    teardown(w);
    return rc;
}
