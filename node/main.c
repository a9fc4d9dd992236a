/* signal-node: start-up, the one event loop, and a clean stop. */
#include <signal.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "conn.h"
#include "dev.h"
#include "log.h"
#include "membership.h"
#include "node.h"
#include "redis.h"
#include "relay.h"
#include "server.h"

static struct redis *membership_redis;

int64_t node_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t node_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void stop_loop(struct node *n)
{
    /* lws finishes closing on the loop; the loop ends when nothing is left. */
    if (n->lws)
        lws_context_destroy(n->lws);
    n->lws = NULL;
    event_del(n->sig_term);
    event_del(n->sig_int);
    /* Stopping already: another signal must not kill the goodbyes. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    if (n->drain_timer)
        event_del(n->drain_timer);
    /* Leaves and goodbyes already written still reach Redis. */
    bus_stop(n->bus);
    redis_close(membership_redis);
}

static void on_drained(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    log_info("all connections closed; stopping");
    stop_loop(arg);
}

void node_drained(struct node *n)
{
    /* Called from inside an lws callback: destroy the context from the loop. */
    static const struct timeval now = {0, 0};
    event_base_once(n->base, -1, EV_TIMEOUT, on_drained, n, &now);
}

static void close_all(struct node *n)
{
    log_info("closing %lu remaining connections", n->n_conns);
    n->closing_all = true;
    for (struct conn *c = n->conns; c; c = c->all_next)
        conn_close(c, 1001, "Node shutting down");
    if (!n->n_conns)
        node_drained(n);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    close_all(arg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct node *n = arg;
    if (n->draining) {
        log_info("signal %d again: closing now", (int)sig);
        close_all(n);
        return;
    }
    n->draining = true;
    log_info("signal %d: draining %lu connections for up to %ld s", (int)sig, n->n_conns,
             n->cfg.drain_s);
    if (!n->n_conns) {
        node_drained(n);
        return;
    }
    struct timeval tv = {n->cfg.drain_s, 0};
    n->drain_timer = evtimer_new(n->base, on_drain_timeout, n);
    evtimer_add(n->drain_timer, &tv);
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
        log_warn("open-file limit %llu leaves no room for SIGNAL_MAX_CONNECTIONS %ld plus the "
                 "node's own 64: raise it (ulimit -n)",
                 (unsigned long long)rl.rlim_cur, cfg->max_connections);
}

static int make_instance(struct node *n)
{
    unsigned char boot[4];
    if (getrandom(boot, sizeof(boot), 0) != sizeof(boot))
        return -1;
    snprintf(n->instance, sizeof(n->instance), "%s:%02x%02x%02x%02x", n->cfg.node_id, boot[0],
             boot[1], boot[2], boot[3]);
    return 0;
}

static int setup_bus(struct node *n)
{
    const struct bus_handler h = {relay_deliver, relay_room_ready, relay_joined,
                                  relay_present, relay_absent,     n};
    if (n->cfg.redis_url)
        n->bus = bus_redis_new(n->base, &n->cfg, n->instance, &n->rooms, &n->stats, &h);
    else
        n->bus = bus_local_new(&h);
    return n->bus ? 0 : -1;
}

/* Membership `redis` has a connection of its own, so that its questions
 * never wait behind the bus's traffic and its timeout never drops the bus. */
static int setup_membership(struct node *n)
{
    if (n->cfg.membership == MEMBERSHIP_TOKEN) {
        n->membership = membership_token_new();
        return n->membership ? 0 : -1;
    }
    const struct redis_url *url =
        n->cfg.membership_redis_url ? &n->cfg.membership_redis : &n->cfg.redis;
    membership_redis = redis_new(n->base, url, "membership", NULL, NULL);
    n->membership = membership_redis_new(n->base, membership_redis, n->cfg.membership_key);
    return membership_redis && n->membership ? 0 : -1;
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
    log_init(n->cfg.log_level, n->cfg.node_id);
    if (server_check_listen(n, err, sizeof(err)) < 0) {
        fprintf(stderr, "signal-node: %s\n", err);
        return 2;
    }
    if (n->cfg.dev && !n->cfg.jwt_secret && !n->cfg.jwt_key_file) {
        if (dev_prepare(&n->cfg) < 0) {
            fprintf(stderr, "signal-node: --dev: cannot make a random secret\n");
            return 1;
        }
        log_warn("--dev: signing and checking tokens with a random secret; never in production");
    }
    n->auth = auth_new(n->cfg.jwt_alg, n->cfg.jwt_secret, n->cfg.jwt_key_file, n->cfg.jwt_issuer,
                       n->cfg.jwt_audience, n->cfg.jwt_leeway_s, err, sizeof(err));
    if (!n->auth) {
        fprintf(stderr, "signal-node: %s\n", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(&n->cfg);
    n->base = event_base_new();
    if (!n->base || make_instance(n) < 0 || setup_bus(n) < 0 || setup_membership(n) < 0)
        return 1;
    if (server_start(n, err, sizeof(err)) < 0) {
        fprintf(stderr, "signal-node: %s\n", err);
        return 1;
    }
    n->sig_term = evsignal_new(n->base, SIGTERM, on_signal, n);
    n->sig_int = evsignal_new(n->base, SIGINT, on_signal, n);
    evsignal_add(n->sig_term, NULL);
    evsignal_add(n->sig_int, NULL);
    log_info("listening on %s:%d%s/chat/realtime/{chatId} (instance %s, jwt %s, membership %s, "
             "bus %s)",
             n->cfg.listen_host ? n->cfg.listen_host : "*", n->cfg.listen_port, n->cfg.path_prefix,
             n->instance, n->cfg.jwt_alg, n->cfg.membership == MEMBERSHIP_TOKEN ? "token" : "redis",
             n->cfg.redis_url ? "redis" : "in-process");
    if (n->cfg.dev && dev_print_urls(&n->cfg) < 0)
        return 1;
    event_base_dispatch(n->base);
    return 0;
}

int main(int argc, char **argv)
{
    struct node n;
    memset(&n, 0, sizeof(n));
    int rc = start(&n, argc, argv);
    if (n.lws)
        lws_context_destroy(n.lws);
    /* The Redis connections go first: their callbacks still due run now. */
    redis_free(membership_redis);
    if (n.bus)
        bus_free(n.bus);
    if (n.membership)
        n.membership->ops->free(n.membership);
    if (n.sig_term)
        event_free(n.sig_term);
    if (n.sig_int)
        event_free(n.sig_int);
    if (n.drain_timer)
        event_free(n.drain_timer);
    if (n.base)
        event_base_free(n.base);
    auth_free(n.auth);
    config_free(&n.cfg);
    return rc;
}
