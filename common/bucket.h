/* A token bucket: the per-connection rate limit on client messages. */
#ifndef SIGNAL_BUCKET_H
#define SIGNAL_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct bucket {
    double tokens;
    int64_t refilled_ms;
};

void bucket_init(struct bucket *b, unsigned burst, int64_t now_ms);
/* Refills at rate_per_s up to burst, then takes one token if there is one. */
bool bucket_take(struct bucket *b, unsigned rate_per_s, unsigned burst, int64_t now_ms);

#endif
