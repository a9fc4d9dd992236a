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
#include "prom.h"

struct bus;
struct membership;
struct room;
struct conn;

/* Why an upgrade was refused: the reason label of the refusal metric. */
enum refusal {
    REFUSED_BAD_REQUEST,  /* 400 */
    REFUSED_UNAUTHORIZED, /* 401 */
    REFUSED_FORBIDDEN,    /* 403 */
    REFUSED_NOT_FOUND,    /* 404 */
    REFUSED_METHOD,       /* 405 */
    REFUSED_FULL,         /* 503: SIGNAL_MAX_CONNECTIONS reached */
    REFUSED_DRAINING,     /* 503: stopping */
    N_REFUSALS
};

/* Why a signal did not reach every member it was for. */
enum drop_reason {
    DROP_REDIS_DOWN,    /* not published: no connection to Redis */
    DROP_REDIS_BACKLOG, /* not published: too much unsent to Redis */
    DROP_LOAD_BACKLOG,  /* received while a room loaded, beyond its backlog */
    DROP_SLOW_READER,   /* queued for a reader closed as too slow */
    N_DROP_REASONS
};

/* Error packets sent, by code (contract §6). */
enum error_kind {
    ERR_INVALID_JSON,
    ERR_INVALID_MESSAGE,
    ERR_RATE_LIMITED,
    ERR_UNKNOWN_TARGET,
    N_ERRORS
};

/* Close codes counted by their own label; any other is "other". */
#define STATS_CLOSE_CODES                                                                          \
    1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1013, 4001, 4008, 4403
#define N_CLOSE_CODES 15 /* the 14 above, then "other" */

/* Counters kept where the events happen, read by /metrics. */
struct stats {
    uint64_t connections_accepted; /* WebSocket established */
    uint64_t closed[N_CLOSE_CODES];
    uint64_t refused[N_REFUSALS];
    uint64_t messages_in;
    uint64_t bytes_in;
    uint64_t frames_out; /* written to a socket */
    uint64_t bytes_out;
    uint64_t errors_sent[N_ERRORS];
    uint64_t dropped[N_DROP_REASONS];
    uint64_t queued_bytes;    /* now, in every send queue */
    uint64_t bus_published;   /* signals sent to Redis */
    uint64_t bus_received;    /* signals from other nodes */
    struct histogram bus_lag; /* sender's stamp to delivery here, seconds */
};

/* Index of code in STATS_CLOSE_CODES, or N_CLOSE_CODES - 1 for "other". */
size_t stats_close_index(int code);

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
    struct conn *conns;    /* every connection, linked through conn->all_next */
    unsigned long n_conns; /* every connection, upgrading ones included */
    unsigned long n_open;  /* established and not yet closed */
    uint64_t next_conn_id;
    bool draining;
    bool closing_all; /* the drain is over: every connection gets 1001 */
    struct event *sig_term, *sig_int, *drain_timer;
    /* The close window: close_total connections to close by close_end_ms. */
    int64_t drain_start_ms, close_start_ms, close_window_ms;
    unsigned long close_total, close_done;
    struct redis *membership_redis; /* with membership redis: its own connection */
    int64_t start_unix_ms;
    struct stats stats;
};

/* Wall-clock milliseconds, for timestamps and token times. */
int64_t node_now_ms(void);
/* Wall-clock microseconds, for the bus envelope's stamp. */
long long node_now_us(void);
/* Monotonic milliseconds, for rates: immune to clock steps. */
int64_t node_mono_ms(void);
/* Called once the last connection of a draining node has gone. */
void node_drained(struct node *n);

#endif
