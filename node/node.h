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

struct bus;
struct membership;
struct room;
struct conn;

/* Counters kept where the events happen; read by logs now, metrics later. */
struct stats {
    uint64_t connections_total;
    uint64_t messages_in;
    uint64_t messages_out;
    uint64_t errors_sent;
    uint64_t closed_slow;
    uint64_t closed_rate;
    uint64_t closed_too_big;
    uint64_t rejected_http;
    uint64_t bus_published; /* signals sent to Redis */
    uint64_t bus_received;  /* signals from other nodes */
    uint64_t bus_dropped;   /* signals not sent to Redis: it was away or too far behind */
};

struct node {
    struct config cfg;
    /* "<node id>:<boot id>": tells this process apart from an earlier one
     * under the same id, in connection keys and on the bus. */
    char instance[144]; /* node id (<= 128) + ":" + 8 hex digits */
    struct auth *auth;
    struct event_base *base;
    struct lws_context *lws;
    lws_retry_bo_t keepalive;
    struct bus *bus;
    struct membership *membership;
    struct room *rooms;
    struct conn *conns; /* every connection, linked through conn->all_next */
    unsigned long n_conns;
    uint64_t next_conn_id;
    bool draining;
    bool closing_all; /* the drain is over: every connection gets 1001 */
    struct event *sig_term, *sig_int, *drain_timer;
    struct stats stats;
};

/* Wall-clock milliseconds, for timestamps and token times. */
int64_t node_now_ms(void);
/* Monotonic milliseconds, for rates: immune to clock steps. */
int64_t node_mono_ms(void);
/* Called once the last connection of a draining node has gone. */
void node_drained(struct node *n);

#endif
