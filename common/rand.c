/* Randomness from the kernel; see rand.h. */
#define _GNU_SOURCE /* program_invocation_short_name */
#include "rand.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void rand_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    /* More than 256 bytes may come in parts, and a signal may interrupt. */
    while (n) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            fprintf(stderr, "%s: getrandom: %s\n", program_invocation_short_name, strerror(errno));
            abort();
        }
        p += got;
        n -= (size_t)got;
    }
}

uint32_t rand_u32(void)
{
    uint32_t v;
    rand_bytes(&v, sizeof(v));
    return v;
}
