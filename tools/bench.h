/* signal-bench's shared declarations: the run's options, what a worker
 * reports to the parent, the latency histogram, and the WebSocket client's
 * pieces. The parent (signal-bench.c) parses the options, forks the workers,
 * merges their results and prints the report; bench_opts.c reads the
 * options; a worker (bench_worker.c, with bench_conn.c for each connection)
 * owns a slice of the rooms and their connections; bench_ws.c speaks RFC 6455
 * and reads the packets of docs/protocol.md; bench_stats.c keeps the
 * histogram and merges results. */
#ifndef SIGNAL_BENCH_H
#define SIGNAL_BENCH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* One node to connect to: its address and the Host header naming it. */
struct bench_url {
    struct sockaddr_in addr;
    char host[280]; /* "host:port", as given */
};

struct bench_opts {
    struct bench_url *urls;
    size_t nurls;
    const char *prefix; /* the route's prefix, e.g. "/api" */
    const char *secret; /* HS256 secret */
    uint64_t connections;
    uint32_t room_size;
    uint32_t *source_ips; /* IPv4, network order; none: the kernel chooses */
    size_t nsource;
    unsigned workers;
    unsigned concurrency; /* connections being set up at once, over all workers */
    double connect_timeout_s;
    double rate; /* signals per second per member (open loop) */
    bool saturate;
    uint32_t window; /* closed loop: signals outstanding per sender */
    double duration_s;
    double drain_s;
    bool json;
    char run_id[9]; /* 8 hex digits in every account id of this run */
};

/* Reads argv into o, over the defaults. --help prints the usage and exits
 * with 0; bad usage exits through usage_error. */
void opts_parse(struct bench_opts *o, int argc, char **argv);
/* Frees what o holds. */
void opts_free(struct bench_opts *o);
/* Prints "signal-bench: " and the message on one line of stderr, and exits
 * with 2 (bad usage). */
void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A log-bucket histogram of nanoseconds, as HdrHistogram lays it out: exact
 * below 2^HIST_SUB_BITS, then HIST_HALF buckets per power of two, so any
 * value is within 1/HIST_HALF (1.6 %) of its bucket's bounds. */
#define HIST_SUB_BITS 7
#define HIST_HALF (1u << (HIST_SUB_BITS - 1))
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 2) * HIST_HALF)

struct hist {
    uint64_t count, max;
    uint64_t bucket[HIST_BUCKETS];
};

/* Adds one value. */
void hist_add(struct hist *h, uint64_t v);
/* Returns the value at percentile p (0 to 100): the upper bound of the bucket
 * holding it, never above the maximum; 0 for an empty histogram. */
uint64_t hist_percentile(const struct hist *h, double p);

/* The drain ends early once no bench signal has arrived for this many
 * seconds: what is still missing then is lost, not late. */
#define DRAIN_QUIET_S 2

/* Why a worker's drain ended, from the best to the worst, so that the
 * merged report keeps the worst. */
enum drain_end {
    DRAIN_COMPLETE, /* every expected signal arrived */
    DRAIN_QUIET,    /* none arrived for DRAIN_QUIET_S: the rest is lost */
    DRAIN_BOUND,    /* --drain was over while signals still arrived */
};

/* What one worker measured; the parent adds them up (result_merge). */
struct bench_result {
    uint64_t connections;      /* welcomed */
    uint64_t connect_failed;   /* not welcomed: refused, closed or timed out */
    uint64_t sent;             /* bench signals written */
    uint64_t unsent;           /* open loop: skipped while the socket was backed up */
    uint64_t expected;         /* deliveries due: each signal, times its room's other members */
    uint64_t delivered;        /* bench signals received, from the right room */
    uint64_t delivered_window; /* of which during the measurement window */
    uint64_t in_flight_at_end; /* expected but not delivered when the window closed */
    uint64_t reordered;        /* received at or below a sequence already seen from that sender */
    uint64_t error_packets;    /* `error` packets */
    uint64_t closes;           /* connections that ended before the run did */
    uint64_t isolation;        /* signals from another room, or a connection's own */
    uint64_t protocol;         /* frames or packets that break RFC 6455 or the contract */
    double load_cpu_s;         /* this worker's CPU time during the measurement window */
    double drain_s;            /* from the window's end to the drain's */
    enum drain_end drain_end;
    struct hist latency; /* send to receive of the signals sent in the window, nanoseconds */
};

/* Adds r into into. */
void result_merge(struct bench_result *into, const struct bench_result *r);

/* The worker's report at the end of its connect phase. */
struct bench_connected {
    int64_t done_ns; /* CLOCK_MONOTONIC when its last connection was welcomed (or failed) */
    uint64_t ok, failed;
};

/* Runs worker index (of o->workers) over global rooms [room_first,
 * room_end), taking commands from cmd_fd and reporting to report_fd:
 * it sends one byte when ready, then on a start time (int64_t, monotonic ns)
 * connects and reports a struct bench_connected, then on a second start
 * time runs the load and reports a struct bench_result. A 0 or the end of
 * cmd_fd stops it. Returns the process's exit code. */
int worker_main(const struct bench_opts *o, unsigned index, uint64_t room_first, uint64_t room_end,
                unsigned concurrency, int cmd_fd, int report_fd);

/* Returns CLOCK_MONOTONIC in nanoseconds: the clock every process of the run
 * shares, which the signals' t fields carry. */
int64_t now_ns(void);

/* ---- WebSocket (bench_ws.c) ---- */

enum ws_opcode {
    WS_CONT = 0x0,
    WS_TEXT = 0x1,
    WS_BINARY = 0x2,
    WS_CLOSE = 0x8,
    WS_PING = 0x9,
    WS_PONG = 0xA,
};

struct ws_frame {
    int opcode;
    bool fin;
    const char *payload;
    size_t len;
};

/* Writes into key the Sec-WebSocket-Key (24 characters and a NUL) for the
 * 16-byte nonce made of a and b. */
void ws_make_key(uint64_t a, uint64_t b, char key[25]);
/* Appends an upgrade request for path on host (the Host header) with key. */
void ws_append_request(struct buf *out, const char *host, const char *path, const char *key);
/* Checks the response head (up to its blank line) to the upgrade sent with
 * key. Returns NULL for a good 101, else why not (the status line, or what is
 * wrong), in why. */
const char *ws_check_response(const char *head, size_t len, const char *key, char *why,
                              size_t why_len);
/* Appends one unfragmented frame of opcode, masked with mask as a client's
 * must be. */
void ws_append_frame(struct buf *out, int opcode, const void *payload, size_t len, uint32_t mask);
/* Reads the server frame at p (n bytes). Returns the bytes it takes, with f
 * filled; 0 when more bytes are needed; -1 when it breaks RFC 6455 for a
 * server (masked, RSV bits set) or is larger than a signaling packet can be. */
long ws_parse_frame(const char *p, size_t n, struct ws_frame *f);

/* ---- Packets (bench_ws.c) ---- */

enum pkt_kind {
    PKT_INVALID, /* not a JSON object with a string type, or a malformed bench signal */
    PKT_WELCOME, /* type webrtc */
    PKT_BENCH,   /* a webrtc.signal of type bench */
    PKT_SIGNAL,  /* any other webrtc.signal (user-joined, user-left) */
    PKT_ERROR,   /* type error */
    PKT_OTHER,   /* any other type */
};

struct pkt {
    enum pkt_kind kind;
    uint64_t r, s, q, t; /* a bench signal's fields */
};

/* Reads a packet's kind and, for a bench signal, its fields. Tolerates any
 * key order and whitespace, so it reads the reference server's packets as
 * well as the node's, without building a tree for each one. */
void scan_packet(const char *p, size_t n, struct pkt *out);

#endif
