/* Token bucket; see bucket.h. */
#include "bucket.h"

void bucket_init(struct bucket *b, unsigned burst, int64_t now_ms)
{
    b->tokens = burst;
    b->refilled_ms = now_ms;
}

bool bucket_take(struct bucket *b, unsigned rate_per_s, unsigned burst, int64_t now_ms)
{
    if (now_ms > b->refilled_ms) {
        b->tokens += (double)(now_ms - b->refilled_ms) * rate_per_s / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
        b->refilled_ms = now_ms;
    }
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}
