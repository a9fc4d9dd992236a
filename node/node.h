/* The node: everything one process owns, reached from every callback. One
 * thread, one libevent loop: nothing here is locked. */
#ifndef SIGNAL_NODE_H
#define SIGNAL_NODE_H

#include <event2/event.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "deadline.h"
#include "stats.h"

struct accounts;
struct bus;
struct membership;
struct room;
struct conn;
struct listeners;
struct lingering;

struct node {
    struct config cfg;
    /* "<node id>:<boot id>": tells this process apart from an earlier one
     * under the same id, in connection keys and on the bus. */
    char instance[144]; /* node id (<= 128) + ":" + 8 hex digits */
    struct auth *auth;
    struct event_base *evb; /* the one loop */
    struct lws_context *lws;
    struct listeners *listeners; /* listener.c: the sockets it accepts on, the handshakes */
    struct lingering *lingering; /* linger.c: closed sockets still drained */
    lws_retry_bo_t no_validity;  /* lws's own keepalive, off: conn.c keeps it */
    /* libevent common timeouts: SIGNAL_PING_S, and the close grace. */
    const struct timeval *ping_tv, *grace_tv, *linger_tv;
    struct bus *bus;
    struct membership *membership;
    struct accounts *accounts; /* joins and connections per account (account_limit.c) */
    struct room *rooms;
    struct conn *conns;    /* every connection, linked through conn->all_next */
    unsigned long n_conns; /* every connection, upgrading ones included */
    unsigned long n_open;  /* established and not yet closed */
    uint64_t next_conn_id;
    bool draining;
    bool bus_slow;                /* the bus asked to stop reading clients (bus_handler.slow) */
    unsigned messages_since_poll; /* client messages since the last bus_poll */
    struct conn *flush;           /* connections with frames to write: conn_flush_all */
    struct event *flush_ev;       /* made active when the first one is added */
    struct conn *held;            /* members whose input is paused for it, via conn->held_next */
    /* Readers above SIGNAL_SEND_QUEUE_BYTES, and connections whose welcome
     * is not written yet, each list in the order they got there: one timer
     * closes those past their time (conn.c). */
    struct deadline_list slow, unwelcomed;
    struct event *slow_timer;
    int64_t slow_timer_at; /* monotonic ms it fires at; 0 = not armed */
    bool closing_all;      /* the drain is over: every connection gets 1001 */
    struct event *sig_term, *sig_int, *drain_timer, *trim_timer;
    /* Once the last connection has gone (drained_ms), the stop waits for
     * the lingering closes under way to end, LINGER_IDLE_S at most. */
    struct event *stop_timer;
    int64_t drained_ms;      /* 0: not drained yet */
    bool stopped;            /* stop_loop has run */
    unsigned long trim_high; /* most connections open since the last trim */
    /* The close window: close_total connections to close by close_end_ms. */
    int64_t drain_start_ms, close_start_ms, close_window_ms;
    unsigned long close_total, close_done;
    struct redis *membership_redis; /* with membership redis: its own connection */
    int64_t start_unix_ms;
    struct stats stats;
};

/* Called once the last connection of a draining node has gone. */
void node_drained(struct node *n);
/* Called by linger.c when a lingering close has ended. */
void node_linger_ended(struct node *n);

#endif
