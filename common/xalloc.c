/* Allocation that aborts on failure; see xalloc.h. */
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *checked(void *p, size_t size)
{
    if (!p && size) {
        fprintf(stderr, "signal-node: out of memory allocating %zu bytes\n", size);
        abort();
    }
    return p;
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
