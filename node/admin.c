/* Liveness, readiness and metrics; see admin.h. A scrape is built whole on
 * the loop from counters kept where the events happen: it walks the rooms
 * once and reads small /proc files, so it costs tens of microseconds with
 * thousands of clients and never waits on anything. */
#include "admin.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accounts.h"
#include "bus.h"
#include "node.h"
#include "prom.h"
#include "redis.h"
#include "room.h"

#ifndef SIGNAL_VERSION
#define SIGNAL_VERSION "unknown"
#endif

bool admin_is_path(const char *path)
{
    return !strcmp(path, "/healthz") || !strcmp(path, "/readyz") || !strcmp(path, "/metrics");
}

const char *admin_not_ready(struct node *n)
{
    if (n->draining)
        return "draining";
    if (n->n_conns >= (unsigned long)n->cfg.max_connections)
        return "at SIGNAL_MAX_CONNECTIONS";
    const char *why = bus_not_ready(n->bus);
    if (why)
        return why;
    if (n->membership_redis && !redis_ready(n->membership_redis))
        return "redis membership connection down";
    return NULL;
}

/* ---- the node's own families ---- */

static void counter_by(struct buf *p, const char *name, const char *help, const char *label,
                       const char *const *values, const uint64_t *counts, size_t n)
{
    prom_family(p, name, "counter", help);
    for (size_t i = 0; i < n; i++) {
        const char *labels[] = {label, values[i], NULL};
        prom_sample(p, name, labels, (double)counts[i]);
    }
}

static void connections(struct buf *p, struct node *n)
{
    const struct stats *s = &n->stats;
    prom_single(p, "signal_connections", "gauge", "WebSocket connections open now.",
                (double)n->n_open);
    prom_single(p, "signal_connections_max", "gauge",
                "SIGNAL_MAX_CONNECTIONS: upgrades beyond it get 503.",
                (double)n->cfg.max_connections);
    prom_single(p, "signal_connections_accepted_total", "counter",
                "WebSocket connections established.", (double)s->connections_accepted);
    prom_single(p, "signal_handshakes", "gauge",
                "Accepted sockets whose HTTP request has not arrived yet.", (double)s->handshakes);
    prom_single(p, "signal_handshakes_dropped_total", "counter",
                "Sockets closed before their request arrived: the oldest, past "
                "SIGNAL_MAX_HANDSHAKES.",
                (double)s->handshakes_dropped);
    prom_single(p, "signal_accept_paused", "gauge",
                "1 while the node is out of file descriptors and not accepting.",
                (double)s->accept_paused);
    prom_single(p, "signal_fd_exhaustions_total", "counter",
                "Times accepting stopped for want of file descriptors.", (double)s->fd_exhaustions);
    prom_single(p, "signal_lingering_sockets", "gauge",
                "Closed connections still read (and discarded) until the client closes too.",
                (double)s->lingering);
    static const char *const ends[N_LINGER_ENDS] = {"peer_closed", "timed_out", "skipped"};
    counter_by(p, "signal_lingering_closes_total",
               "Lingering closes by how they ended (skipped: closed at once).", "end", ends,
               s->linger_ends, N_LINGER_ENDS);
    prom_single(p, "signal_lingering_resets_total", "counter",
                "Lingering closes that timed out with data the client never took: reset.",
                (double)s->linger_resets);
    prom_single(p, "signal_accounts_tracked", "gauge",
                "Accounts whose joins and connections this node counts: connected, or joined "
                "lately (idle ones are forgotten at later joins).",
                (double)accounts_size(n->accounts));
    char codes[N_CLOSE_CODES][8];
    const char *values[N_CLOSE_CODES];
    for (size_t i = 0; i < N_CLOSE_CODES; i++) {
        if (i < N_CLOSE_CODES - 1)
            snprintf(codes[i], sizeof(codes[i]), "%d", stats_close_code(i));
        else
            snprintf(codes[i], sizeof(codes[i]), "other");
        values[i] = codes[i];
    }
    counter_by(p, "signal_connections_closed_total",
               "WebSocket connections closed, by close code (1006: no close frame).", "code",
               values, s->closed, N_CLOSE_CODES);

    static const char *const status[N_REFUSALS] = {"400", "401", "403", "404", "405",
                                                   "503", "503", "429", "429", "403"};
    static const char *const reason[N_REFUSALS] = {
        "bad_request", "unauthorized", "forbidden",   "not_found",    "method",
        "full",        "draining",     "account_cap", "account_rate", "origin"};
    const char *name = "signal_upgrades_refused_total";
    prom_family(p, name, "counter", "WebSocket upgrades refused, by HTTP status and reason.");
    for (size_t i = 0; i < N_REFUSALS; i++) {
        const char *labels[] = {"status", status[i], "reason", reason[i], NULL};
        prom_sample(p, name, labels, (double)s->refused[i]);
    }
    prom_single(p, "signal_http_malformed_total", "counter",
                "Requests refused for their HTTP itself (400, or 405 for a method the node does "
                "not know), before any route or token check.",
                (double)s->http_malformed);
}

static void traffic(struct buf *p, struct node *n)
{
    const struct stats *s = &n->stats;
    unsigned long rooms = 0, members = 0;
    for (const struct room *r = n->rooms; r; r = r->hh.next) {
        rooms++;
        members += r->n_members;
    }
    prom_single(p, "signal_rooms", "gauge", "Rooms with members on this node.", (double)rooms);
    prom_single(p, "signal_room_members", "gauge", "Members of rooms on this node (joined).",
                (double)members);
    prom_single(p, "signal_messages_received_total", "counter", "Client messages received.",
                (double)s->messages_in);
    prom_single(p, "signal_received_bytes_total", "counter", "Bytes of client messages received.",
                (double)s->bytes_in);
    prom_single(p, "signal_frames_sent_total", "counter",
                "WebSocket frames written to clients (welcome, signals, presence, errors).",
                (double)s->frames_out);
    prom_single(p, "signal_sent_bytes_total", "counter", "Bytes of frames written to clients.",
                (double)s->bytes_out);
    counter_by(p, "signal_error_packets_total", "Error packets sent to clients, by code.", "code",
               stats_error_names, s->errors_sent, N_ERRORS);
    static const char *const drops[N_DROP_REASONS] = {"redis_down", "redis_backlog", "load_backlog",
                                                      "slow_reader"};
    counter_by(p, "signal_signals_dropped_total",
               "Packets that did not reach everyone they were for, by reason.", "reason", drops,
               s->dropped, N_DROP_REASONS);
    prom_single(p, "signal_send_queue_bytes", "gauge",
                "Bytes held for every client: queued, and the rest of a frame being written "
                "(each client's share of a packet many wait for).",
                (double)s->queued_bytes);
    prom_single(p, "signal_send_memory_bytes", "gauge",
                "Memory the send queues hold, each packet counted once "
                "(bounded by SIGNAL_SEND_MEMORY_BYTES).",
                (double)s->send_memory_bytes);
    prom_single(p, "signal_slow_readers", "gauge",
                "Clients holding more than SIGNAL_SEND_QUEUE_BYTES now.", (double)n->slow.count);
    prom_single(p, "signal_slow_reader_episodes_total", "counter",
                "Times a client went above SIGNAL_SEND_QUEUE_BYTES.", (double)s->slow_episodes);
    static const char *const causes[N_SLOW_CAUSES] = {"soft", "hard", "memory", "welcome"};
    counter_by(p, "signal_slow_reader_closes_total",
               "Clients closed as too slow (4008), by cause: soft (above SIGNAL_SEND_QUEUE_BYTES "
               "for SIGNAL_SLOW_READER_S), hard, memory (the node's bound), welcome (unread).",
               "cause", causes, s->slow_closes, N_SLOW_CAUSES);
}

/* A connection's role and, with several shards, its shard (the bus's). */
static void redis_sample(struct buf *p, const char *metric, const char *name, int shard, double v)
{
    char index[16];
    snprintf(index, sizeof(index), "%d", shard);
    const char *labels[] = {"role", name, shard >= 0 ? "shard" : NULL, index, NULL};
    prom_sample(p, metric, labels, v);
}

static void redis_gauge(void *arg, const char *name, int shard, bool up, uint64_t reconnects)
{
    (void)reconnects;
    redis_sample(arg, "signal_redis_connected", name, shard, up);
}

static void redis_counter(void *arg, const char *name, int shard, bool up, uint64_t reconnects)
{
    (void)up;
    redis_sample(arg, "signal_redis_reconnects_total", name, shard, (double)reconnects);
}

/* Each shard's state, one family at a time. */
enum shard_family { SHARD_UP, SHARD_MISMATCH };
struct shard_scrape {
    struct buf *p;
    enum shard_family family;
    uint64_t peer_buffer; /* the largest over the shards */
};

static void shard_sample(void *arg, const struct bus_shard_state *st)
{
    struct shard_scrape *s = arg;
    char index[24];
    snprintf(index, sizeof(index), "%zu", st->index);
    if (st->peer_buffer > s->peer_buffer)
        s->peer_buffer = st->peer_buffer;
    if (s->family == SHARD_UP) {
        const char *labels[] = {"shard", index, "address", st->label, NULL};
        prom_sample(s->p, "signal_redis_shard_up", labels, st->down ? 0 : 1);
    } else {
        const char *labels[] = {"shard", index, NULL};
        prom_sample(s->p, "signal_redis_shard_mismatch", labels, (double)st->mismatched);
    }
}

/* The shards' families; returns the largest subscriber buffer they saw. */
static uint64_t shards(struct buf *p, struct node *n)
{
    struct shard_scrape s = {p, SHARD_UP, 0};
    if (!n->cfg.n_redis)
        return 0;
    prom_family(p, "signal_redis_shard_up", "gauge",
                "1 while the bus carries signals through this Redis shard (its rooms' signals "
                "reach the other nodes).");
    bus_each_shard(n->bus, shard_sample, &s);
    s.family = SHARD_MISMATCH;
    prom_family(p, "signal_redis_shard_mismatch", "gauge",
                "Live nodes on this shard whose SIGNAL_REDIS_URL list differs from this "
                "node's (0 when all agree).");
    bus_each_shard(n->bus, shard_sample, &s);
    return s.peer_buffer;
}

static void cluster(struct buf *p, struct node *n)
{
    const struct stats *s = &n->stats;
    prom_family(p, "signal_redis_connected", "gauge",
                "1 while the Redis connection of this role is up (bus, subscriber, membership).");
    redis_each(redis_gauge, p);
    prom_family(p, "signal_redis_reconnects_total", "counter",
                "Redis connections re-established after being lost, by role.");
    redis_each(redis_counter, p);
    uint64_t peer_buffer = shards(p, n);
    prom_single(p, "signal_bus_published_total", "counter", "Signals published to other nodes.",
                (double)s->bus_published);
    prom_single(p, "signal_bus_received_total", "counter", "Signals received from other nodes.",
                (double)s->bus_received);
    prom_single(p, "signal_bus_unechoed_bytes", "gauge",
                "Bytes this node published that have not come back through its subscription.",
                (double)s->bus_unechoed_bytes);
    prom_single(p, "signal_bus_held_bytes", "gauge",
                "Bytes of publications waiting for earlier ones to come back through Redis.",
                (double)s->bus_held_bytes);
    prom_single(p, "signal_redis_subscriber_buffer_bytes", "gauge",
                "The largest output buffer of a subscriber in Redis, as last asked while "
                "publishing.",
                (double)peer_buffer);
    prom_single(p, "signal_bus_slowdowns_total", "counter",
                "Times this node stopped reading its clients until Redis caught up with it.",
                (double)s->bus_slowdowns);
    prom_single(p, "signal_bus_dropped_total", "counter",
                "Signals the bus lost (redis_down, redis_backlog and load_backlog drops).",
                (double)(s->dropped[DROP_REDIS_DOWN] + s->dropped[DROP_REDIS_BACKLOG] +
                         s->dropped[DROP_LOAD_BACKLOG]));
    static const char *const rejects[N_REJECTS] = {
        "malformed", "invalid_packet", "unsigned", "unknown_key", "bad_mac", "stale", "replayed"};
    counter_by(p, "signal_bus_rejected_total",
               "Messages read from the room channels in Redis and dropped unused, by reason.",
               "reason", rejects, s->bus_rejected, N_REJECTS);
    prom_family(p, "signal_bus_delivery_lag_seconds", "histogram",
                "From publication on another node to delivery here (clocks of both hosts).");
    prom_histogram(p, "signal_bus_delivery_lag_seconds", &s->bus_lag);
}

/* ---- the standard process_* families ---- */

static long count_fds(void)
{
    /* Linux 6.2 and later give the count as the directory's size, at no
     * cost; listing it costs about 0.35 us per descriptor (3.5 ms with
     * 10,000 clients), which older kernels pay at each scrape. */
    struct stat st;
    if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0)
        return (long)st.st_size;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long k = 0;
    while (readdir(d))
        k++;
    closedir(d);
    return k - 3; /* ".", ".." and this DIR's own fd */
}

static void process(struct buf *p, struct node *n)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        prom_single(p, "process_cpu_seconds_total", "counter",
                    "Total user and system CPU time spent in seconds.",
                    (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                        (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    unsigned long vm_pages, rss_pages;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%lu %lu", &vm_pages, &rss_pages) == 2) {
        double page = (double)sysconf(_SC_PAGESIZE);
        prom_single(p, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                    (double)vm_pages * page);
        prom_single(p, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                    (double)rss_pages * page);
    }
    if (f)
        fclose(f);
    long fds = count_fds();
    if (fds >= 0)
        prom_single(p, "process_open_fds", "gauge", "Number of open file descriptors.",
                    (double)fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        prom_single(p, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                    rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
    prom_single(p, "process_start_time_seconds", "gauge",
                "Start time of the process since unix epoch in seconds.",
                (double)n->start_unix_ms / 1000.0);
}

static void metrics(struct buf *p, struct node *n)
{
    prom_family(p, "signal_build_info", "gauge", "The running build: always 1.");
#define STR_(x) #x
#define STR(x) STR_(x)
    const char *labels[] = {"version", SIGNAL_VERSION, "libwebsockets",
                            STR(LWS_LIBRARY_VERSION_MAJOR) "." STR(
                                LWS_LIBRARY_VERSION_MINOR) "." STR(LWS_LIBRARY_VERSION_PATCH),
                            NULL};
    prom_sample(p, "signal_build_info", labels, 1);
    prom_single(p, "signal_ready", "gauge", "1 while /readyz answers 200.",
                admin_not_ready(n) ? 0 : 1);
    prom_single(p, "signal_draining", "gauge", "1 from SIGTERM until the process exits.",
                n->draining);
    connections(p, n);
    traffic(p, n);
    if (n->cfg.redis_url || n->membership_redis)
        cluster(p, n);
    process(p, n);
}

/* With several shards, /readyz names those that are down, a line each. */
static void shard_down(void *arg, const struct bus_shard_state *st)
{
    if (st->down)
        buf_appendf(arg, "redis shard %zu (%s) down: %s\n", st->index, st->label, st->down);
}

int admin_answer(struct node *n, const char *path, struct buf *body, const char **type)
{
    buf_init(body, 4096);
    *type = "text/plain; charset=utf-8";
    if (!strcmp(path, "/healthz")) {
        buf_appendf(body, "ok\n");
        return 200;
    }
    if (!strcmp(path, "/readyz")) {
        const char *why = admin_not_ready(n);
        if (why)
            buf_appendf(body, "not ready: %s\n", why);
        else
            buf_appendf(body, "ready\n");
        if (n->cfg.n_redis > 1)
            bus_each_shard(n->bus, shard_down, body);
        return why ? 503 : 200;
    }
    *type = "text/plain; version=0.0.4; charset=utf-8";
    metrics(body, n);
    return 200;
}
