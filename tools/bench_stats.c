/* signal-bench's numbers: the monotonic clock, the latency histogram and
 * adding up the workers' results. See bench.h. */
#include "bench.h"

#include <time.h>

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Returns the bucket of v: v itself below 2^HIST_SUB_BITS, then, for each
 * further power of two, HIST_HALF buckets of equal width. */
static unsigned bucket_of(uint64_t v)
{
    if (v < (1u << HIST_SUB_BITS))
        return (unsigned)v;
    unsigned shift = (unsigned)(63 - __builtin_clzll(v)) - (HIST_SUB_BITS - 1);
    return (shift + 1) * HIST_HALF + (unsigned)(v >> shift) - HIST_HALF;
}

/* Returns the largest value that falls in bucket b. */
static uint64_t bucket_top(unsigned b)
{
    if (b < (1u << HIST_SUB_BITS))
        return b;
    unsigned shift = b / HIST_HALF - 1;
    uint64_t sub = b % HIST_HALF + HIST_HALF;
    /* For the very last bucket, (sub + 1) << shift wraps to 0, and the
     * subtraction wraps back to UINT64_MAX: its right top. */
    return ((sub + 1) << shift) - 1;
}

void hist_add(struct hist *h, uint64_t v)
{
    h->bucket[bucket_of(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
    if (h->count == 0)
        return 0;
    /* The rank of the value at p, counted from 1, as HdrHistogram does. */
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += h->bucket[b];
        if (seen >= rank) {
            uint64_t top = bucket_top(b);
            return top < h->max ? top : h->max;
        }
    }
    return h->max;
}

void result_merge(struct bench_result *into, const struct bench_result *r)
{
    into->connections += r->connections;
    into->connect_failed += r->connect_failed;
    into->sent += r->sent;
    into->unsent += r->unsent;
    into->expected += r->expected;
    into->delivered += r->delivered;
    into->delivered_window += r->delivered_window;
    into->in_flight_at_end += r->in_flight_at_end;
    into->reordered += r->reordered;
    into->error_packets += r->error_packets;
    into->closes += r->closes;
    into->isolation += r->isolation;
    into->protocol += r->protocol;
    into->load_cpu_s += r->load_cpu_s;
    /* The workers drain at the same time: the run's drain is the longest. */
    if (r->drain_s > into->drain_s)
        into->drain_s = r->drain_s;
    if (r->drain_end > into->drain_end)
        into->drain_end = r->drain_end;
    into->latency.count += r->latency.count;
    if (r->latency.max > into->latency.max)
        into->latency.max = r->latency.max;
    for (unsigned b = 0; b < HIST_BUCKETS; b++)
        into->latency.bucket[b] += r->latency.bucket[b];
}
