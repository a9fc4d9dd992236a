/* The node's counters: kept where their events happen (conn, relay, server,
 * the bus), read by /metrics (admin.c). The label sets are fixed here, so
 * that the number of series never depends on what clients do. */
#ifndef SIGNAL_STATS_H
#define SIGNAL_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "prom.h"

/* Why an upgrade was refused: the reason label of the refusal metric. */
enum refusal {
    REFUSED_BAD_REQUEST,  /* 400 */
    REFUSED_UNAUTHORIZED, /* 401 */
    REFUSED_FORBIDDEN,    /* 403 */
    REFUSED_NOT_FOUND,    /* 404 */
    REFUSED_METHOD,       /* 405 */
    REFUSED_FULL,         /* 503: SIGNAL_MAX_CONNECTIONS reached */
    REFUSED_DRAINING,     /* 503: stopping */
    REFUSED_ACCOUNT_CAP,  /* 429: SIGNAL_MAX_CONNECTIONS_PER_ACCOUNT reached */
    REFUSED_ACCOUNT_RATE, /* 429: the account's join budget is spent */
    REFUSED_ORIGIN,       /* 403: Origin not in SIGNAL_ALLOWED_ORIGINS */
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

/* Why a message read from a room's Redis channel was dropped unused. */
enum bus_reject {
    REJECT_MALFORMED,      /* not a well-formed message */
    REJECT_INVALID_PACKET, /* its packet or presence value is not what a node sends */
    REJECT_UNSIGNED,       /* no MAC, with SIGNAL_CLUSTER_SECRET */
    REJECT_UNKNOWN_KEY,    /* signed with a secret this node does not have */
    REJECT_BAD_MAC,        /* the MAC does not match */
    REJECT_STALE,          /* its stamp is too far from this node's clock */
    REJECT_REPLAYED,       /* its signer's sequence number was seen already */
    N_REJECTS
};

/* Why a reader was closed as too slow (4008): the cause label. */
enum slow_cause {
    SLOW_SOFT,    /* above SIGNAL_SEND_QUEUE_BYTES for SIGNAL_SLOW_READER_S */
    SLOW_HARD,    /* a packet would take it beyond SIGNAL_SEND_QUEUE_HARD_BYTES */
    SLOW_MEMORY,  /* the node's send memory was beyond SIGNAL_SEND_MEMORY_BYTES */
    SLOW_WELCOME, /* its welcome not read within SIGNAL_WELCOME_TIMEOUT_S */
    N_SLOW_CAUSES
};

/* Error packets sent, by code (docs/protocol.md, "Errors"). */
enum error_kind {
    ERR_INVALID_JSON,
    ERR_INVALID_MESSAGE,
    ERR_RATE_LIMITED,
    ERR_UNKNOWN_TARGET,
    N_ERRORS
};

/* How a lingering close ended (linger.c). */
enum linger_end {
    LINGER_PEER_CLOSED, /* the peer closed too: the clean end */
    LINGER_TIMED_OUT,   /* it kept sending, or went quiet */
    LINGER_SKIPPED,     /* closed at once: too many lingering, or descriptors short */
    N_LINGER_ENDS
};

/* Close codes counted by their own label; any other is "other". */
#define STATS_CLOSE_CODES                                                                          \
    1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1013, 4001, 4008, 4403
#define N_CLOSE_CODES 15 /* the 14 above, then "other" */

/* Counters kept where the events happen, read by /metrics. */
struct stats {
    uint64_t connections_accepted; /* WebSocket established */
    uint64_t handshakes;           /* now: accepted sockets whose request is not in yet */
    uint64_t handshakes_dropped;   /* the oldest, past SIGNAL_MAX_HANDSHAKES */
    uint64_t accept_paused;        /* now: 1 while out of file descriptors */
    uint64_t fd_exhaustions;       /* times accept() ran out of file descriptors */
    uint64_t lingering;            /* now: closed sockets still being drained */
    uint64_t linger_ends[N_LINGER_ENDS];
    uint64_t linger_resets; /* timed out with data still unsent: reset */
    uint64_t closed[N_CLOSE_CODES];
    uint64_t refused[N_REFUSALS];
    uint64_t http_malformed; /* requests refused for their HTTP, on any listener */
    uint64_t messages_in;
    uint64_t bytes_in;
    uint64_t frames_out; /* written to a socket */
    uint64_t bytes_out;
    uint64_t errors_sent[N_ERRORS];
    uint64_t dropped[N_DROP_REASONS];
    uint64_t queued_bytes;      /* now, held for every reader (each its share) */
    uint64_t send_memory_bytes; /* now, what those hold: each packet once */
    uint64_t slow_episodes;     /* times a reader went above the soft bound */
    uint64_t slow_closes[N_SLOW_CAUSES];
    uint64_t bus_published;           /* signals sent to Redis */
    uint64_t bus_received;            /* signals from other nodes */
    uint64_t bus_unechoed_bytes;      /* now: published, not yet come back (bus_flow.c) */
    uint64_t bus_held_bytes;          /* now: waiting to be published (bus_flow.c) */
    uint64_t bus_slowdowns;           /* times the relay was asked to stop reading clients */
    struct histogram bus_lag;         /* sender's stamp to delivery here, seconds */
    uint64_t bus_rejected[N_REJECTS]; /* from the room channels, dropped unused */
};

/* Index of code in STATS_CLOSE_CODES, or N_CLOSE_CODES - 1 for "other". */
size_t stats_close_index(int code);
/* The close code at index i, or 0 for "other". */
int stats_close_code(size_t i);

/* The error codes as they go on the wire and in the label, by error_kind. */
extern const char *const stats_error_names[N_ERRORS];
/* The error_kind of a wire code (an unknown one counts as invalid_message). */
enum error_kind stats_error_kind(const char *code);

#endif
