/* The inside of a signal-bench worker, shared by its two files:
 * bench_conn.c carries each connection (connect, upgrade, frames in and out,
 * on the worker's epoll), bench_worker.c runs the phases, the load and the
 * checks over all of them. */
#ifndef SIGNAL_BENCH_WORKER_H
#define SIGNAL_BENCH_WORKER_H

#include "bench.h"

/* One read's worth: far more than a turn's packets for one connection. */
#define SCRATCH_BYTES ((size_t)256 * 1024)

/* A connection's life: each state follows the one before, or M_ENDED. */
enum mstate { M_IDLE, M_CONNECTING, M_HANDSHAKE, M_WELCOME, M_JOINED, M_ENDED };

/* One connection: a member of a room. */
struct member {
    int fd;
    enum mstate state;
    uint32_t events; /* what epoll watches for it */
    bool dirty;      /* on the worker's list of output to write */
    bool fragmented; /* a fragmented message is being reassembled in msg */
    uint32_t room;   /* index in the worker's rooms */
    uint32_t index;  /* in its room: the s of its signals */
    uint32_t seq;    /* the last q it sent */
    uint32_t acked;  /* closed loop: the highest q every other live member has seen */
    int64_t started_ns;
    int64_t moved_ns; /* closed loop: when its window last moved */
    char *path;       /* the request's path and token, until the request is written */
    char key[25];
    struct buf in, out, msg;
    struct member *next_dirty;
};

struct room {
    uint64_t global; /* the r of its signals */
    uint32_t size, live;
    char id[37];
    struct member *members;
    uint32_t *hi; /* hi[receiver * size + sender]: the highest q seen */
};

enum phase { P_READY, P_CONNECT, P_CONNECTED, P_LOAD, P_DRAIN, P_DONE };

struct worker {
    const struct bench_opts *o;
    unsigned index, concurrency;
    int cmd_fd, report_fd, ep;
    enum phase phase;
    bool failed; /* the parent went away, or the loop failed: exit code 1 */
    struct room *rooms;
    size_t nrooms;
    struct member *members;
    size_t nmembers;
    size_t next_start, oldest; /* connect phase: the next to start, the oldest unfinished */
    unsigned in_flight;
    int64_t connect_done_ns;
    char first_failure[200], first_error[200];
    int64_t load_start, load_end, drain_end;
    int64_t last_delivery_ns; /* when the last bench signal arrived */
    bool load_begun;
    double cpu_at_start;
    int64_t stall_check_ns; /* closed loop: when stalled senders were last looked for */
    size_t cursor;          /* open loop: the next member to send */
    uint64_t cycle;         /* open loop: its round */
    struct member *dirty;
    uint64_t rng;
    char *scratch; /* SCRATCH_BYTES */
    struct bench_result res;
};

/* ---- bench_conn.c ---- */

/* Starts m's connection (its request path is ready in m->path): to URL
 * m->index % nurls, from the next source address in turn, if any. */
void conn_start(struct worker *w, struct member *m, int64_t now);
/* Handles epoll's events for m at now. */
void conn_event(struct worker *w, struct member *m, uint32_t events, int64_t now);
/* Queues one frame for m, written at the end of the loop's turn. */
void conn_frame(struct worker *w, struct member *m, int opcode, const void *payload, size_t len);
/* Writes what every member has queued this turn. Members queued meanwhile
 * (a failed write can make a room's senders send) wait for the next turn. */
void conn_flush_all(struct worker *w);
/* Closes m's socket, after a close frame (1000) if it was welcomed: one
 * attempt, without waiting for the answer, as the run is over. */
void conn_close(struct worker *w, struct member *m);

/* ---- bench_worker.c ---- */

/* Ends m for why: a failed connect before the welcome; after it, a close or
 * (protocol) a broken frame or packet, counted as an error. The room's other
 * senders then stop waiting for m (closed loop). */
void member_end(struct worker *w, struct member *m, bool protocol, const char *why);
/* Counts one error in *counter and keeps the first one's description. */
void note_error(struct worker *w, uint64_t *counter, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Handles a complete message m received at now: the welcome, then packets. */
void on_message(struct worker *w, struct member *m, const char *p, size_t n, int64_t now);

#endif
