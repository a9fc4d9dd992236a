/* signal-bench: a load generator for signal-node that speaks only the public
 * contract (docs/protocol.md), so that the same run can measure the Node.js
 * reference. This file is the parent process: the open-file limit, the
 * worker processes and their phases (ready, connect, load), and the merged
 * report. bench_opts.c reads the options; bench_worker.c runs a worker.
 * Exit code: 0 when the run completed, 1 when it could not run, 2 on bad
 * usage (one line on stderr). */
#define _GNU_SOURCE /* pipe2 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rand.h"
#include "xalloc.h"

/* File descriptors a worker keeps besides its connections: stdio, epoll,
 * its two pipes, and some to spare. */
#define FD_RESERVE 32
/* How long the parent waits beyond a phase's own bound before it gives up on
 * a worker that does not report. */
#define SLACK_S 30

/* Returns the connections of the biggest slice when the rooms are shared
 * among k workers (worker i takes rooms [rooms*i/k, rooms*(i+1)/k)). */
static uint64_t biggest_slice(const struct bench_opts *o, uint64_t rooms, unsigned k)
{
    uint64_t most = 0;
    for (unsigned i = 0; i < k; i++) {
        uint64_t first = rooms * i / k, end = rooms * (i + 1) / k;
        uint64_t last = end * o->room_size < o->connections ? end * o->room_size : o->connections;
        if (last - first * o->room_size > most)
            most = last - first * o->room_size;
    }
    return most;
}

/* Raises the open-file limit to the hard limit, and chooses (or checks) the
 * number of workers so that each worker's connections fit in it. */
static void plan_workers(struct bench_opts *o, uint64_t rooms)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur <= FD_RESERVE) {
        fprintf(stderr, "signal-bench: the open-file limit (%llu) is too small\n",
                (unsigned long long)rl.rlim_cur);
        exit(1);
    }
    uint64_t budget = rl.rlim_cur - FD_RESERVE;
    unsigned k = o->workers ? o->workers : 1;
    if (k > rooms)
        k = (unsigned)rooms;
    if (o->workers && biggest_slice(o, rooms, k) > budget)
        usage_error("--workers %u: %" PRIu64
                    " connections in one worker exceed its open-file limit "
                    "(%llu)",
                    o->workers, biggest_slice(o, rooms, k), (unsigned long long)rl.rlim_cur);
    /* Bounded by one room per worker, whose room size the check below
     * bounds. */
    while (biggest_slice(o, rooms, k) > budget && k < rooms && k < 1024)
        k++;
    if (biggest_slice(o, rooms, k) > budget)
        usage_error("%" PRIu64 " connections do not fit in 1024 workers of %llu files each",
                    o->connections, (unsigned long long)rl.rlim_cur);
    o->workers = k;
}

struct wproc {
    pid_t pid;
    int cmd, report; /* the parent's ends */
};

/* Kills and reaps the workers (all of them started by this process). */
static void kill_workers(struct wproc *wp, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (wp[i].pid > 0) {
            kill(wp[i].pid, SIGKILL);
            waitpid(wp[i].pid, NULL, 0);
            wp[i].pid = 0;
        }
    }
}

/* Returns the time seconds after from, in monotonic nanoseconds; a bound
 * beyond a year (only absurd options make one) is cut to a year. */
static int64_t after(int64_t from, double seconds)
{
    return from + (int64_t)((seconds < 3.2e7 ? seconds : 3.2e7) * 1e9);
}

/* Reads n bytes from each of the k workers into out (n bytes each, in
 * order), waiting until deadline_ns. Returns false, with a line on stderr,
 * when a worker ends or does not report in time. */
static bool gather(struct wproc *wp, unsigned k, void *out, size_t n, int64_t deadline_ns,
                   const char *what)
{
    size_t *got = xcalloc(k, sizeof(*got));
    struct pollfd *pfd = xcalloc(k, sizeof(*pfd));
    unsigned done = 0;
    bool ok = true;
    while (ok && done < k) {
        int64_t left = deadline_ns - now_ns();
        unsigned np = 0;
        for (unsigned i = 0; i < k; i++)
            if (got[i] < n)
                pfd[np++] = (struct pollfd){.fd = wp[i].report, .events = POLLIN};
        /* At most a second at a time: the deadline may be far off. */
        int r = left > 0 ? poll(pfd, np, left < 1000000000 ? (int)(left / 1000000) + 1 : 1000) : 0;
        if (r == 0 && now_ns() < deadline_ns)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "signal-bench: the workers did not report %s in time\n", what);
            ok = false;
            break;
        }
        for (unsigned i = 0, j = 0; i < k && ok; i++) {
            if (got[i] >= n)
                continue;
            if (pfd[j++].revents == 0)
                continue;
            ssize_t m = read(wp[i].report, (char *)out + i * n + got[i], n - got[i]);
            if (m <= 0 && !(m < 0 && errno == EINTR)) {
                fprintf(stderr, "signal-bench: worker %u ended before it reported %s\n", i, what);
                ok = false;
            } else if (m > 0 && (got[i] += (size_t)m) == n) {
                done++;
            }
        }
    }
    free(got);
    free(pfd);
    return ok;
}

/* Sends the command t (a start time, or 0 to stop) to every worker. */
static void command(struct wproc *wp, unsigned k, int64_t t)
{
    for (unsigned i = 0; i < k; i++)
        if (write(wp[i].cmd, &t, sizeof(t)) != (ssize_t)sizeof(t))
            fprintf(stderr, "signal-bench: worker %u: cannot send a command\n", i);
}

/* Forks the workers, each with its slice of the rooms; returns false when
 * a fork fails (the ones started are killed). */
static bool start_workers(const struct bench_opts *o, struct wproc *wp, uint64_t rooms,
                          void (*child_cleanup)(void))
{
    unsigned k = o->workers;
    unsigned share = o->concurrency / k ? o->concurrency / k : 1;
    for (unsigned i = 0; i < k; i++) {
        int cmd[2], rep[2];
        if (pipe2(cmd, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0) {
            perror("signal-bench: pipe");
            kill_workers(wp, i);
            return false;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("signal-bench: fork");
            kill_workers(wp, i);
            return false;
        }
        if (pid == 0) {
            /* The child keeps only its own pipe ends. */
            for (unsigned j = 0; j < i; j++) {
                close(wp[j].cmd);
                close(wp[j].report);
            }
            close(cmd[1]);
            close(rep[0]);
            int rc = worker_main(o, i, rooms * i / k, rooms * (i + 1) / k, share, cmd[0], rep[1]);
            child_cleanup();
            exit(rc);
        }
        close(cmd[0]);
        close(rep[1]);
        wp[i] = (struct wproc){pid, cmd[1], rep[0]};
    }
    return true;
}

/* Reaps the workers; returns the CPU seconds they used, all phases. */
static double reap_workers(struct wproc *wp, unsigned k)
{
    for (unsigned i = 0; i < k; i++) {
        int status = 0;
        if (waitpid(wp[i].pid, &status, 0) == wp[i].pid &&
            !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            fprintf(stderr, "signal-bench: worker %u ended with status %d\n", i, status);
        wp[i].pid = 0;
        close(wp[i].cmd);
        close(wp[i].report);
    }
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The whole run's figures, for the report. */
struct summary {
    uint64_t rooms, lost, errors;
    double connect_s, deliveries_per_s, cpu_s;
    double lat_ms[5]; /* p50, p90, p99, p99.9, max */
};

/* How each drain_end reads in the report. */
static const char *const drain_end_name[] = {"complete", "quiet", "bound"};

/* Prints the report as one JSON object. */
static void print_json(const struct bench_opts *o, const struct bench_result *r,
                       const struct summary *s)
{
    printf("{\"connections\":%" PRIu64 ",\"connect_failed\":%" PRIu64 ",\"connect_s\":%.3f,"
           "\"workers\":%u,\"urls\":%zu,\"room_size\":%" PRIu32 ",\"rooms\":%" PRIu64 ",",
           r->connections, r->connect_failed, s->connect_s, o->workers, o->nurls, o->room_size,
           s->rooms);
    if (o->saturate)
        printf("\"mode\":\"saturate\",\"window\":%" PRIu32 ",", o->window);
    else
        printf("\"mode\":\"rate\",\"rate\":%g,", o->rate);
    printf("\"duration_s\":%.3f,\"sent\":%" PRIu64 ",\"unsent\":%" PRIu64 ",\"expected\":%" PRIu64
           ",\"delivered\":%" PRIu64 ",\"deliveries_per_s\":%.1f,",
           o->duration_s, r->sent, r->unsent, r->expected, r->delivered, s->deliveries_per_s);
    printf("\"in_flight_at_end\":%" PRIu64 ",\"drain_s\":%.3f,\"drain_end\":\"%s\",",
           r->in_flight_at_end, r->drain_s, drain_end_name[r->drain_end]);
    printf("\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},",
           s->lat_ms[0], s->lat_ms[1], s->lat_ms[2], s->lat_ms[3], s->lat_ms[4]);
    printf("\"lost\":%" PRIu64 ",\"reordered\":%" PRIu64 ",\"errors\":%" PRIu64
           ",\"error_detail\":{\"connect_failed\":%" PRIu64 ",\"error_packets\":%" PRIu64
           ",\"closes\":%" PRIu64 ",\"isolation\":%" PRIu64 ",\"protocol\":%" PRIu64 "},",
           s->lost, r->reordered, s->errors, r->connect_failed, r->error_packets, r->closes,
           r->isolation, r->protocol);
    printf("\"bench_cpu_s\":%.3f,\"bench_load_cpu_s\":%.3f}\n", s->cpu_s, r->load_cpu_s);
}

/* Prints the report as a table for people. */
static void print_table(const struct bench_opts *o, const struct bench_result *r,
                        const struct summary *s)
{
    printf("connections    %" PRIu64 " (%" PRIu64 " failed), %zu URL(s), %u worker(s)\n",
           r->connections, r->connect_failed, o->nurls, o->workers);
    printf("rooms          %" PRIu64 " of %" PRIu32 "\n", s->rooms, o->room_size);
    printf("connect        %.3f s\n", s->connect_s);
    if (o->saturate)
        printf("load           saturate, window %" PRIu32 ", %.3f s\n", o->window, o->duration_s);
    else
        printf("load           %g signals/s per member, %.3f s\n", o->rate, o->duration_s);
    printf("sent           %" PRIu64 " (%" PRIu64 " skipped while backed up)\n", r->sent,
           r->unsent);
    printf("delivered      %" PRIu64 " of %" PRIu64 " expected\n", r->delivered, r->expected);
    printf("deliveries/s   %.1f\n", s->deliveries_per_s);
    char why[64];
    if (r->drain_end == DRAIN_COMPLETE)
        snprintf(why, sizeof(why), "every signal arrived");
    else if (r->drain_end == DRAIN_QUIET)
        snprintf(why, sizeof(why), "none arrived for %d s", DRAIN_QUIET_S);
    else
        snprintf(why, sizeof(why), "the --drain bound, %g s", o->drain_s);
    printf("drain          %.3f s (%s); %" PRIu64 " in flight when the window closed\n", r->drain_s,
           why, r->in_flight_at_end);
    printf("latency ms     p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", s->lat_ms[0],
           s->lat_ms[1], s->lat_ms[2], s->lat_ms[3], s->lat_ms[4]);
    printf("lost           %" PRIu64 "\n", s->lost);
    printf("reordered      %" PRIu64 "\n", r->reordered);
    printf("errors         %" PRIu64 " (connect %" PRIu64 ", error packets %" PRIu64
           ", closes %" PRIu64 ", isolation %" PRIu64 ", protocol %" PRIu64 ")\n",
           s->errors, r->connect_failed, r->error_packets, r->closes, r->isolation, r->protocol);
    printf("bench CPU      %.3f s in all, %.3f s during the load\n", s->cpu_s, r->load_cpu_s);
}

/* Options of the run, global so that a forked worker can free them before
 * it exits. */
static struct bench_opts opts;

/* Frees what the options hold (in the parent, and in a worker that ends). */
static void free_opts(void)
{
    opts_free(&opts);
}

/* Runs the phases with the workers started; returns the exit code. */
static int run(struct wproc *wp, uint64_t rooms)
{
    const struct bench_opts *o = &opts;
    unsigned k = o->workers;
    char *ready = xcalloc(k, 1);
    bool ok = gather(wp, k, ready, 1, after(now_ns(), 60 + (double)o->connections / 1000), "ready");
    free(ready);
    if (!ok) {
        kill_workers(wp, k);
        return 1;
    }
    int64_t go = now_ns();
    command(wp, k, go);
    /* A worker's connect phase takes at most one timeout per wave of its
     * concurrency. */
    unsigned share = o->concurrency / k ? o->concurrency / k : 1;
    double waves = ceil((double)biggest_slice(o, rooms, k) / share);
    struct bench_connected *c = xcalloc(k, sizeof(*c));
    ok = gather(wp, k, c, sizeof(*c), after(go, waves * o->connect_timeout_s + SLACK_S),
                "connections");
    struct bench_result *total = xcalloc(1, sizeof(*total));
    struct summary s = {.rooms = rooms};
    int64_t done = go;
    for (unsigned i = 0; ok && i < k; i++) {
        total->connections += c[i].ok;
        if (c[i].done_ns > done)
            done = c[i].done_ns;
    }
    free(c);
    s.connect_s = (double)(done - go) / 1e9;
    if (ok && total->connections == 0) {
        fputs("signal-bench: no connection could be made\n", stderr);
        command(wp, k, 0);
        reap_workers(wp, k);
        free(total);
        return 1;
    }
    /* A moment ahead, so that every worker starts at the same time. */
    int64_t start = now_ns() + 20000000;
    if (ok)
        command(wp, k, start);
    struct bench_result *r = xcalloc(k, sizeof(*r));
    ok = ok && gather(wp, k, r, sizeof(*r), after(start, o->duration_s + o->drain_s + SLACK_S),
                      "results");
    if (!ok) {
        kill_workers(wp, k);
        free(r);
        free(total);
        return 1;
    }
    memset(total, 0, sizeof(*total));
    for (unsigned i = 0; i < k; i++)
        result_merge(total, &r[i]);
    free(r);
    s.cpu_s = reap_workers(wp, k);
    s.lost = total->expected > total->delivered ? total->expected - total->delivered : 0;
    s.errors = total->connect_failed + total->error_packets + total->closes + total->isolation +
               total->protocol;
    s.deliveries_per_s = (double)total->delivered_window / o->duration_s;
    static const double pct[4] = {50, 90, 99, 99.9};
    for (int i = 0; i < 4; i++)
        s.lat_ms[i] = (double)hist_percentile(&total->latency, pct[i]) / 1e6;
    s.lat_ms[4] = (double)total->latency.max / 1e6;
    if (o->json)
        print_json(o, total, &s);
    else
        print_table(o, total, &s);
    free(total);
    return 0;
}

int main(int argc, char **argv)
{
    opts_parse(&opts, argc, argv);
    uint64_t rooms = (opts.connections + opts.room_size - 1) / opts.room_size;
    plan_workers(&opts, rooms);
    snprintf(opts.run_id, sizeof(opts.run_id), "%08x", rand_u32());
    /* Writes to a socket the server has closed must fail, not kill. */
    signal(SIGPIPE, SIG_IGN);
    /* Nothing buffered may be copied into the workers. */
    fflush(NULL);
    struct wproc *wp = xcalloc(opts.workers, sizeof(*wp));
    int rc = start_workers(&opts, wp, rooms, free_opts) ? run(wp, rooms) : 1;
    free(wp);
    free_opts();
    return rc;
}
