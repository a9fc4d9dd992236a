/* Which shard a room lives on, among the Redis instances of SIGNAL_REDIS_URL:
 * the jump consistent hash (Lamping & Veach, 2014) of the 64-bit FNV-1a of
 * the room id. Jump hash keeps no table and, when the list grows from n to
 * n + 1 entries, moves about 1/(n + 1) of the rooms, each to the new shard
 * only. Every node must compute the same answer, so neither function may
 * ever change. See docs/cluster.md, "Sharding". */
#ifndef SIGNAL_SHARD_H
#define SIGNAL_SHARD_H

#include <stddef.h>
#include <stdint.h>

/* The 64-bit FNV-1a hash of len bytes. */
uint64_t shard_fnv1a64(const void *data, size_t len);
/* The bucket of key among n (n >= 1): in [0, n). */
uint32_t shard_jump(uint64_t key, uint32_t n);
/* The shard of a room id (a NUL-terminated string) among n (n >= 1). */
size_t shard_of(const char *room, size_t n);

#endif
