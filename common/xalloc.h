/* Allocation that cannot fail quietly: out of memory stops the process with
 * a message, as Redis's zmalloc does. This is the policy of the whole code
 * base (common/, node/, tools/): carrying the error back up would only hide
 * it, and a process that cannot allocate cannot do its work anyway. Memory
 * that libraries allocate themselves (jansson, libjwt, libevent) is theirs
 * to report. */
#ifndef SIGNAL_XALLOC_H
#define SIGNAL_XALLOC_H

#include <stddef.h>

/* Each is its libc namesake that never returns NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
