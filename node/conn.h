/* One client connection: its identity, state, send queue, receive buffer,
 * rate limit and timers. Closing is asynchronous: conn_close records the code
 * and asks libwebsockets for a writeable callback, where the close happens. */
#ifndef SIGNAL_CONN_H
#define SIGNAL_CONN_H

#include <jansson.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "bucket.h"
#include "deadline.h"
#include "log.h"
#include "packet.h"
#include "protocol.h"

struct lws;
struct node;
struct room;
struct membership_req;

enum conn_state {
    CONN_UPGRADING, /* accepted at HTTP, WebSocket not yet established */
    CONN_PENDING,   /* established, waiting for the membership answer */
    CONN_JOINED,
    CONN_CLOSING,
};

/* Where a connection stands in its room. */
enum conn_place {
    PLACE_OUTSIDE,  /* in no room: before its membership answer, or after leaving */
    PLACE_WAITING,  /* in room->waiting until the room's presence is known */
    PLACE_ENTERING, /* in room->waiting while the bus writes its presence */
    PLACE_MEMBER,   /* in room->members, welcomed */
};

struct conn {
    struct node *node;
    struct lws *wsi;
    uint64_t id;
    char *key;         /* "<instance>:<conn id>", unique in the cluster; malloc'd */
    struct room *room; /* set unless PLACE_OUTSIDE */
    enum conn_place place;
    enum conn_state state;
    struct identity ident;
    /* "senderAccountId":..,"senderInfo":.. for the signals it sends, made
     * at its first (protocol_sender); NULL until then. */
    char *sender;
    size_t sender_len;

    struct packet **queue; /* ring of queued frames */
    size_t q_head, q_len, q_cap, queued_bytes;
    /* The rest of a frame the socket took only part of: lws holds a copy
     * and sends it before anything else (conn.c, write_queue). */
    size_t in_lws;
    uint64_t out_bytes;        /* of its frames, written to the socket */
    size_t welcome_end;        /* out_bytes once its first frame, the welcome, is written */
    struct deadline slow_dl;   /* on node->slow while above SIGNAL_SEND_QUEUE_BYTES */
    struct deadline unread_dl; /* on node->unwelcomed until its welcome is known to be read */

    unsigned char *rx; /* the message being reassembled from fragments */
    size_t rx_len, rx_cap;

    struct bucket bucket;      /* messages */
    struct bucket byte_bucket; /* the bytes they carry */
    unsigned limited_in_a_row;
    int close_code; /* ours, or the peer's once it sent a close frame */
    const char *close_reason;
    struct event *expiry;
    /* Keepalive, then the close grace: one timer on a libevent common
     * timeout, so that arming it costs the same with 10 or 100,000
     * connections (lws keeps its timers in a sorted list). */
    struct event *timer;
    struct membership_req *check;
    int64_t opened_ms; /* monotonic, when established */

    struct conn *flush_prev, *flush_next; /* on node->flush while flushing */
    struct conn *held_prev, *held_next;
    struct conn *room_prev, *room_next;
    struct conn *all_prev, *all_next;

    char room_id[PROTOCOL_GUID_LEN + 1];
    char joined_at[PROTOCOL_TIMESTAMP_LEN];
    bool heard;        /* a frame or a pong arrived since the last tick */
    bool ping_sent;    /* a ping is out and no answer came yet */
    bool ping_pending; /* the next WRITEABLE sends a ping first */
    bool held;         /* input paused while the bus is slow: on node->held */
    bool flushing;     /* its queue is written out at the end of this wakeup */
    bool peer_closed;  /* the client sent a close frame first */
    bool welcomed;     /* its first packet has been queued */
    bool unread;       /* closed for not reading its welcome: reset at the end */
};

/* Seconds a closing connection has to take its close frame. */
#define CONN_CLOSE_GRACE_S 5

struct config;
/* The byte burst a connection may send: twice SIGNAL_RATE_BYTES_PER_S, and
 * at least one message of the largest size. */
double conn_byte_burst(const struct config *cfg);

/* Takes ownership of *ident (cleared). */
struct conn *conn_new(struct node *n, struct identity *ident, const char *room_id);
void conn_free(struct conn *c);

/* Queues p for c. A reader that would hold more than the hard bound, or the
 * node's send memory beyond its bound, is closed with 4008 instead. */
void conn_send(struct conn *c, struct packet *p);
void conn_send_json(struct conn *c, json_t *j);
void conn_send_error(struct conn *c, const char *code, const char *message);
void conn_close(struct conn *c, int code, const char *reason);

/* The node's flush event (node->flush_ev): writes what this wakeup queued
 * for each connection on node->flush. arg is the node. */
void conn_flush_all(evutil_socket_t fd, short what, void *arg);

/* The node's slow-reader lists and their one timer: made at start, freed at
 * exit. */
void conn_watch_init(struct node *n);
void conn_watch_free(struct node *n);

/* Stops (true) or resumes reading the client's input. */
void conn_pause_input(struct conn *c, bool pause);
/* Whether the client has gone away: hung up, or shut its side down. */
bool conn_peer_gone(struct conn *c);

/* libwebsockets events; a negative return closes the connection. */
/* The WebSocket is up: returns 0 when the connection is to be admitted
 * into its room, 1 when it is being closed (the drain is over). */
int conn_on_established(struct conn *c, struct lws *wsi);
/* Returns 1 with *msg, *len and *binary set when a whole message has
 * arrived (valid until conn_rx_done, which must follow), 0 when more is to
 * come. */
int conn_on_receive(struct conn *c, const void *in, size_t in_len, const char **msg, size_t *len,
                    bool *binary);
/* The message conn_on_receive returned has been handled: frees what held it. */
void conn_rx_done(struct conn *c);
int conn_on_writeable(struct conn *c);
/* A pong arrived. */
void conn_on_pong(struct conn *c);
/* The peer sent a close frame with this payload: returns 0 to let lws echo
 * it, -1 when it is malformed (a close of ours, 1002 or 1007, goes instead). */
int conn_on_peer_close(struct conn *c, const void *in, size_t len);
/* The connection is gone: counts and logs its close, with the code of the
 * close frame the node sent (its own or libwebsockets') or got, or 1006
 * when there was none. */
void conn_on_closed(struct conn *c);
/* Log fields naming the connection. */
struct log_fields conn_log_fields(const struct conn *c);

#endif
