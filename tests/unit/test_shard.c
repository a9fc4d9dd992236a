/* Unit tests of the room-to-shard mapping: FNV-1a 64 and jump consistent
 * hash against published values, and the properties sharding relies on. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "shard.h"

static uint64_t fnv(const char *s)
{
    return shard_fnv1a64(s, strlen(s));
}

/* The FNV test suite's values (Fowler, Noll, Vo). */
Test(shard, fnv1a64_known_values)
{
    cr_assert_eq(fnv(""), 0xcbf29ce484222325ULL);
    cr_assert_eq(fnv("a"), 0xaf63dc4c8601ec8cULL);
    cr_assert_eq(fnv("foobar"), 0x85944171f73967e8ULL);
}

/* The values other implementations agree on (Google's paper's code, as
 * ClickHouse's jumpConsistentHash tests it). */
Test(shard, jump_known_values)
{
    cr_assert_eq(shard_jump(1, 1), 0);
    cr_assert_eq(shard_jump(42, 57), 43);
    cr_assert_eq(shard_jump(256, 1024), 520);
    cr_assert_eq(shard_jump(0xDEAD10CCULL, 1), 0);
    cr_assert_eq(shard_jump(0xDEAD10CCULL, 666), 361);
    cr_assert_eq(shard_jump(16045690984833335023ULL, 255), 237);
}

/* A room id as the route makes them: a lower case GUID. */
static void room_id(char out[37], unsigned i)
{
    snprintf(out, 37, "%08x-%04x-4%03x-8%03x-%012x", i * 2654435761u, i & 0xffff, i % 4096,
             (i / 7) % 4096, i);
}

#define IDS 100000

/* From n to n + 1 shards, about 1/(n + 1) of the rooms move, and each only
 * to the new shard: no room moves between the old ones. */
Test(shard, growing_moves_a_share_and_only_to_the_new_shard)
{
    for (size_t n = 1; n <= 8; n++) {
        unsigned moved = 0;
        for (unsigned i = 0; i < IDS; i++) {
            char id[37];
            room_id(id, i);
            size_t before = shard_of(id, n), after = shard_of(id, n + 1);
            cr_assert_lt(before, n);
            cr_assert_lt(after, n + 1);
            if (before != after) {
                cr_assert_eq(after, n, "%s moved from %zu to %zu, not to the new shard %zu", id,
                             before, after, n);
                moved++;
            }
        }
        double share = (double)moved / IDS, want = 1.0 / (double)(n + 1);
        cr_assert(share > want * 0.95 && share < want * 1.05,
                  "%zu -> %zu shards moved %.4f of the rooms, expected about %.4f", n, n + 1, share,
                  want);
    }
}

/* Rooms spread evenly: each of 3 shards within 3 % of a third. */
Test(shard, spread_over_three)
{
    unsigned count[3] = {0};
    for (unsigned i = 0; i < IDS; i++) {
        char id[37];
        room_id(id, i);
        count[shard_of(id, 3)]++;
    }
    for (size_t s = 0; s < 3; s++)
        cr_assert(count[s] > IDS / 3 * 0.97 && count[s] < IDS / 3 * 1.03,
                  "shard %zu holds %u of %u rooms", s, count[s], IDS);
}

/* The example of docs/cluster.md, which tests/integration computes too. */
Test(shard, a_room_id)
{
    const char *room = "0b7f3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
    cr_assert_eq(fnv(room), 0x1f0898aca2466b1bULL);
    cr_assert_eq(shard_of(room, 1), 0);
    cr_assert_eq(shard_of(room, 2), 0);
    cr_assert_eq(shard_of(room, 3), 2);
    cr_assert_eq(shard_of(room, 4), 2);
}
