/* signal-node: start-up, the one event loop, and a clean stop. */
#include <malloc.h>
#ifdef SIGNAL_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "account_limit.h"
#include "bus.h"
#include "clock.h"
#include "conn.h"
#include "dev.h"
#include "linger.h"
#include "listener.h"
#include "log.h"
#include "rand.h"
#include "timer.h"
#include "membership.h"
#include "node.h"
#include "redis.h"
#include "relay.h"
#include "server.h"

static void stop_loop(struct node *n)
{
    /* lws finishes closing on the loop; the loop ends when nothing is left:
     * no listener, and no socket lingering (on_drained gave them time). */
    listener_free(n);
    if (n->lws)
        lws_context_destroy(n->lws);
    n->lws = NULL;
    linger_free_all(n);
    event_del(n->sig_term);
    event_del(n->sig_int);
    event_del(n->trim_timer);
    event_del(n->stop_timer);
    /* Stopping already: another signal must not kill the goodbyes. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    if (n->drain_timer)
        event_del(n->drain_timer);
    /* Leaves and goodbyes already written still reach Redis. */
    bus_stop(n->bus);
    redis_close(n->membership_redis);
}

/* Stops the loop once the last connection has gone and the lingering
 * closes under way have ended, or LINGER_IDLE_S after it at most. Stopping
 * closes them: a client whose own close frame then met a closed socket got
 * a reset instead (Chromium reported 1006, not the 1001 it was sent). */
static void on_drained(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct node *n = arg;
    if (n->stopped)
        return;
    int64_t now = clock_mono_ms();
    if (!n->drained_ms) {
        n->drained_ms = now;
        if (n->drain_timer)
            event_del(n->drain_timer); /* no close window: nobody is left */
        char waits[80] = "";
        if (n->stats.lingering)
            snprintf(waits, sizeof(waits), " once %llu lingering closes end (%d s at most)",
                     (unsigned long long)n->stats.lingering, LINGER_IDLE_S);
        log_info("stop", "every connection closed, %lld ms after the signal; stopping%s",
                 (long long)(now - n->drain_start_ms), waits);
    }
    int64_t left_ms = n->drained_ms + LINGER_IDLE_S * 1000LL - now;
    if (n->stats.lingering && left_ms > 0) {
        timer_add_ms(n->stop_timer, left_ms);
        return;
    }
    n->stopped = true;
    stop_loop(n);
}

void node_drained(struct node *n)
{
    /* Called from inside an lws callback: destroy the context from the loop. */
    event_active(n->stop_timer, EV_TIMEOUT, 1);
}

void node_linger_ended(struct node *n)
{
    if (n->drained_ms && !n->stopped && !n->stats.lingering)
        event_active(n->stop_timer, EV_TIMEOUT, 1);
}

/* ---- the close window ---- */

/* The remaining connections are closed with 1001 spread evenly over
 * SIGNAL_DRAIN_CLOSE_S, a batch every CLOSE_TICK_MS, so that their clients
 * reconnect to the other nodes a few at a time instead of all at once. */
#define CLOSE_TICK_MS 50

static void close_due(struct node *n)
{
    int64_t elapsed = clock_mono_ms() - n->close_start_ms;
    /* Connection i (from 0) closes at i x window / total. */
    unsigned long due = n->close_total;
    if (n->close_window_ms > 0 && elapsed < n->close_window_ms)
        due =
            (unsigned long)((double)elapsed * (double)n->close_total / (double)n->close_window_ms) +
            1;
    if (due > n->close_total)
        due = n->close_total;
    for (struct conn *c = n->conns; c && n->close_done < due; c = c->all_next) {
        if (c->state == CONN_CLOSING || !c->wsi)
            continue; /* closing already, or still upgrading (closed once established) */
        conn_close(c, 1001, "Node shutting down");
        n->close_done++;
    }
}

static void on_close_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct node *n = arg;
    close_due(n);
    bool more = false;
    for (struct conn *c = n->conns; c && !more; c = c->all_next)
        more = c->state != CONN_CLOSING && c->wsi;
    if (more) {
        timer_add_ms(n->drain_timer, CLOSE_TICK_MS);
    }
}

static void start_close_window(struct node *n)
{
    n->closing_all = true;
    n->close_start_ms = clock_mono_ms();
    n->close_window_ms = n->cfg.drain_close_s * 1000;
    n->close_total = n->n_open;
    n->close_done = 0;
    log_info("drain_close", "closing %lu remaining connections with 1001 over %ld s",
             n->close_total, n->cfg.drain_close_s);
    if (!n->n_conns) {
        node_drained(n);
        return;
    }
    event_assign(n->drain_timer, n->evb, -1, 0, on_close_tick, n);
    on_close_tick(-1, 0, n);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    start_close_window(arg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct node *n = arg;
    if (n->draining) {
        /* Whoever sends a second signal wants the process gone now; the
         * other nodes forget this one's members after its heartbeat lapses. */
        log_warn("exit_now",
                 "signal %d again during the drain: exiting at once, %lu connections "
                 "dropped",
                 (int)sig, n->n_open);
        _exit(1);
    }
    n->draining = true;
    n->drain_start_ms = clock_mono_ms();
    log_info("drain_start",
             "signal %d: readiness off, new upgrades refused; %lu connections carry on for %ld s, "
             "then close over %ld s",
             (int)sig, n->n_open, n->cfg.drain_s, n->cfg.drain_close_s);
    if (!n->n_conns) {
        node_drained(n);
        return;
    }
    n->drain_timer = evtimer_new(n->evb, on_drain_timeout, n);
    timer_add_ms(n->drain_timer, n->cfg.drain_s * 1000);
}

/* ---- giving memory back ---- */

/* An allocator keeps freed memory for reuse, so after a mass disconnect RSS
 * stayed at its high-water mark (+520 MiB after 50,000 clients left). Every
 * TRIM_EVERY_MS, when a quarter of the connections seen since the last
 * check have gone, the free pages go back to the system: jemalloc purges
 * every arena (it would only do so on later allocations, and an idle node
 * makes none); glibc's malloc, in sanitizer builds, trims its heap. */
#define TRIM_EVERY_MS 10000

static void give_memory_back(void)
{
#ifdef SIGNAL_JEMALLOC
    char purge_all[64];
    snprintf(purge_all, sizeof(purge_all), "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
    mallctl(purge_all, NULL, NULL, NULL, 0);
#else
    malloc_trim(0);
#endif
}

static void on_trim(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct node *n = arg;
    if (n->n_open < n->trim_high - n->trim_high / 4)
        give_memory_back();
    n->trim_high = n->n_open;
}

/* Every connection is a file descriptor: take all the process may have, and
 * say so when that is fewer than SIGNAL_MAX_CONNECTIONS. */
static void raise_fd_limit(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)cfg->max_connections + 64)
        log_warn("fd_limit",
                 "open-file limit %llu leaves no room for SIGNAL_MAX_CONNECTIONS %ld plus the "
                 "node's own 64: raise it (ulimit -n)",
                 (unsigned long long)rl.rlim_cur, cfg->max_connections);
}

static void make_instance(struct node *n)
{
    unsigned char boot[4];
    rand_bytes(boot, sizeof(boot));
    snprintf(n->instance, sizeof(n->instance), "%s:%02x%02x%02x%02x", n->cfg.node_id, boot[0],
             boot[1], boot[2], boot[3]);
}

/* True when a Redis URL of the node, a shard's or membership's, is rediss://. */
static bool wants_tls(const struct config *c)
{
    for (size_t i = 0; i < c->n_redis; i++)
        if (c->redis[i].tls)
            return true;
    return c->membership_redis_url && c->membership_redis.tls;
}

static void setup_bus(struct node *n)
{
    const struct bus_handler h = {
        relay_deliver, relay_room_ready, relay_joined, relay_present, relay_absent, relay_slow, n};
    if (n->cfg.n_redis > 1)
        n->bus = bus_shard_new(n->evb, &n->cfg, n->instance, &n->stats, &h);
    else if (n->cfg.n_redis == 1)
        n->bus = bus_redis_new(n->evb, &n->cfg, 0, n->instance, &n->stats, &h);
    else
        n->bus = bus_local_new(&h);
}

/* Membership `redis` has a connection of its own, so that its questions
 * never wait behind the bus's traffic and its timeout never drops the bus. */
static void setup_membership(struct node *n)
{
    if (n->cfg.membership == MEMBERSHIP_TOKEN) {
        n->membership = membership_token_new();
        return;
    }
    const struct redis_url *url =
        n->cfg.membership_redis_url ? &n->cfg.membership_redis : &n->cfg.redis[0];
    n->membership_redis = redis_new(n->evb, url, "membership", NULL, NULL);
    n->membership = membership_redis_new(n->evb, n->membership_redis, n->cfg.membership_key);
}

static int start(struct node *n, int argc, char **argv)
{
    char err[512];
    switch (config_load(&n->cfg, argc, argv, err, sizeof(err))) {
    case CONFIG_HELP:
        config_usage(stdout);
        return 0;
    case CONFIG_ERROR:
        fprintf(stderr, "signal-node: %s\n", err);
        return 2;
    case CONFIG_OK:
        break;
    }
    log_init(n->cfg.log_level, n->cfg.log_format, n->cfg.node_id);
    /* The port is bound below, well before the loop can handle a SIGTERM:
     * one that comes meanwhile (an orchestrator that stops a pod as it
     * starts) waits, blocked, for the loop instead of killing the node
     * without its goodbye. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, NULL);
    if (server_check_listen(n, err, sizeof(err)) < 0) {
        fprintf(stderr, "signal-node: %s\n", err);
        return 2;
    }
    /* A file that is readable but not PEM, or a key that does not match
     * its certificate, stops the node here rather than at each connect. */
    if (wants_tls(&n->cfg) && redis_tls_init(&n->cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "signal-node: %s\n", err);
        return 2;
    }
    if (n->cfg.dev && !n->cfg.jwt_secret && !n->cfg.jwt_key_file) {
        dev_prepare(&n->cfg);
        log_warn("dev_mode",
                 "--dev: signing and checking tokens with a random secret; never in production");
    }
    n->auth = auth_new(n->cfg.jwt_alg, n->cfg.jwt_secret, n->cfg.jwt_key_file, n->cfg.jwt_issuer,
                       n->cfg.jwt_audience, n->cfg.jwt_leeway_s, err, sizeof(err));
    if (!n->auth) {
        fprintf(stderr, "signal-node: %s\n", err);
        return 2;
    }
    n->start_unix_ms = clock_now_ms();
    static const double lag_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    n->stats.bus_lag.bounds = lag_bounds;
    n->stats.bus_lag.n_bounds = sizeof(lag_bounds) / sizeof(lag_bounds[0]);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(&n->cfg);
    n->evb = event_base_new();
    /* Two priorities: Redis's events first (redis.c), everything else after. */
    if (!n->evb || event_base_priority_init(n->evb, 2) != 0)
        return 1;
    make_instance(n);
    setup_bus(n);
    setup_membership(n);
    n->accounts = account_limit_new(&n->cfg);
    if (server_start(n, err, sizeof(err)) < 0) {
        fprintf(stderr, "signal-node: %s\n", err);
        return 1;
    }
    n->sig_term = evsignal_new(n->evb, SIGTERM, on_signal, n);
    n->sig_int = evsignal_new(n->evb, SIGINT, on_signal, n);
    evsignal_add(n->sig_term, NULL);
    evsignal_add(n->sig_int, NULL);
    sigprocmask(SIG_UNBLOCK, &stop_signals, NULL);
    /* Active events of one priority run in order, and this one is made
     * active after the events that queue frames: it runs last. */
    n->flush_ev = event_new(n->evb, -1, 0, conn_flush_all, n);
    conn_watch_init(n);
    n->trim_timer = event_new(n->evb, -1, EV_PERSIST, on_trim, n);
    n->stop_timer = evtimer_new(n->evb, on_drained, n);
    timer_add_ms(n->trim_timer, TRIM_EVERY_MS);
    char admin[300] = "";
    if (n->cfg.admin_port)
        snprintf(admin, sizeof(admin), ", admin on %s:%d",
                 n->cfg.admin_host ? n->cfg.admin_host : "*", n->cfg.admin_port);
    char bus[64] = "in-process";
    if (n->cfg.n_redis > 1)
        snprintf(bus, sizeof(bus), "redis, %zu shards", n->cfg.n_redis);
    else if (n->cfg.n_redis == 1)
        snprintf(bus, sizeof(bus), "redis");
    log_info("listening",
             "listening on %s:%d%s/chat/realtime/{chatId}%s (instance %s, jwt %s, membership %s, "
             "bus %s)",
             n->cfg.listen_host ? n->cfg.listen_host : "*", n->cfg.listen_port, n->cfg.path_prefix,
             admin, n->instance, n->cfg.jwt_alg,
             n->cfg.membership == MEMBERSHIP_TOKEN ? "token" : "redis", bus);
    if (n->cfg.dev && dev_print_urls(&n->cfg) < 0)
        return 1;
    event_base_dispatch(n->evb);
    return 0;
}

int main(int argc, char **argv)
{
    struct node n;
    memset(&n, 0, sizeof(n));
    int rc = start(&n, argc, argv);
    listener_free(&n);
    if (n.lws)
        lws_context_destroy(n.lws);
    linger_free_all(&n);
    accounts_free(n.accounts); /* after the last close gave its slot back */
    /* The Redis connections go first: their callbacks still due run now. */
    redis_free(n.membership_redis);
    if (n.bus)
        bus_free(n.bus);
    redis_tls_free(); /* after the last connection that used it */
    if (n.membership)
        n.membership->ops->free(n.membership);
    if (n.sig_term)
        event_free(n.sig_term);
    if (n.sig_int)
        event_free(n.sig_int);
    if (n.drain_timer)
        event_free(n.drain_timer);
    if (n.trim_timer)
        event_free(n.trim_timer);
    if (n.stop_timer)
        event_free(n.stop_timer);
    if (n.flush_ev)
        event_free(n.flush_ev);
    conn_watch_free(&n);
    if (n.evb)
        event_base_free(n.evb);
    auth_free(n.auth);
    config_free(&n.cfg);
    return rc;
}
