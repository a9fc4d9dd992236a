/* Allocation that cannot fail quietly: out of memory stops the process with
 * a message, as Redis's zmalloc does. For the places where carrying the
 * error back up would only hide it (the roster's bookkeeping, say). */
#ifndef SIGNAL_XALLOC_H
#define SIGNAL_XALLOC_H

#include <stddef.h>

void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);

#endif
