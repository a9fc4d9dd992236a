/* Token bucket; see bucket.h. */
#include "bucket.h"

void bucket_init(struct bucket *b, double burst, int64_t now_ms)
{
    b->tokens = burst;
    b->refilled_ms = now_ms;
}

bool bucket_take(struct bucket *b, double cost, double rate_per_s, double burst, int64_t now_ms)
{
    if (now_ms > b->refilled_ms) {
        b->tokens += (double)(now_ms - b->refilled_ms) * rate_per_s / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
        b->refilled_ms = now_ms;
    }
    if (b->tokens < cost)
        return false;
    b->tokens -= cost;
    return true;
}
