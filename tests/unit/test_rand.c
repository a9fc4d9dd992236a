/* Unit tests of the one source of randomness (common/rand.c). Randomness
 * cannot be proved by a test; these catch the mistakes that matter: bytes
 * left unwritten, and the same numbers at every call. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <string.h>

#include "rand.h"

Test(rand, fills_every_byte)
{
    /* More than getrandom's 256-byte single read, in an odd size. */
    static unsigned char a[4099], b[4099];
    rand_bytes(a, sizeof(a));
    rand_bytes(b, sizeof(b));
    cr_assert(memcmp(a, b, sizeof(a)) != 0);
    /* Over 4 KiB, every byte value turns up with near certainty; a zero tail
     * would show as a long run. */
    size_t zeros = 0;
    for (size_t i = sizeof(a) - 64; i < sizeof(a); i++)
        zeros += a[i] == 0;
    cr_assert_lt(zeros, 16);
}

Test(rand, u32_varies)
{
    uint32_t first = rand_u32();
    bool differs = false;
    for (int i = 0; i < 8 && !differs; i++)
        differs = rand_u32() != first;
    cr_assert(differs);
}

Test(rand, zero_bytes_is_nothing)
{
    unsigned char c = 0x5a;
    rand_bytes(&c, 0);
    cr_assert_eq(c, 0x5a);
}
