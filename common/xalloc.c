/* Allocation that aborts on failure; see xalloc.h. */
#define _GNU_SOURCE /* program_invocation_short_name */
#include "xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns p, or stops the process when an allocation of size bytes gave
 * none. The message names the program: signal-node and signal-token share
 * this code. */
static void *checked(void *p, size_t size)
{
    if (!p && size) {
        fprintf(stderr, "%s: out of memory allocating %zu bytes\n", program_invocation_short_name,
                size);
        abort();
    }
    return p;
}

void *xmalloc(size_t size)
{
    return checked(malloc(size), size);
}

void *xcalloc(size_t n, size_t size)
{
    return checked(calloc(n, size), n * size);
}

void *xrealloc(void *p, size_t size)
{
    return checked(realloc(p, size), size);
}

char *xstrdup(const char *s)
{
    return checked(strdup(s), strlen(s) + 1);
}

char *xstrndup(const char *s, size_t n)
{
    return checked(strndup(s, n), strnlen(s, n) + 1);
}
