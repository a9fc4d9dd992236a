/* A token bucket: the per-connection rate limits on client messages and
 * on the bytes they carry. */
#ifndef SIGNAL_BUCKET_H
#define SIGNAL_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct bucket {
    double tokens;
    int64_t refilled_ms;
};

void bucket_init(struct bucket *b, double burst, int64_t now_ms);
/* Refills at rate_per_s up to burst, then takes cost tokens if there are
 * that many. now_ms must come from a monotonic clock. */
bool bucket_take(struct bucket *b, double cost, double rate_per_s, double burst, int64_t now_ms);

#endif
