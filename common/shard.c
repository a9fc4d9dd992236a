/* Room to shard; see shard.h. */
#include "shard.h"

#include <string.h>

#define FNV64_OFFSET 0xcbf29ce484222325ULL
#define FNV64_PRIME 0x100000001b3ULL

uint64_t shard_fnv1a64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = FNV64_OFFSET;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV64_PRIME;
    }
    return h;
}

/* The paper's code: a linear congruential step draws, for the bucket the key
 * is in, the next bucket count at which it jumps; it stops past n. */
uint32_t shard_jump(uint64_t key, uint32_t n)
{
    int64_t b = -1, j = 0;
    while (j < (int64_t)n) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = (int64_t)((double)(b + 1) * ((double)(1LL << 31) / (double)((key >> 33) + 1)));
    }
    return (uint32_t)b;
}

size_t shard_of(const char *room, size_t n)
{
    return shard_jump(shard_fnv1a64(room, strlen(room)), (uint32_t)n);
}
