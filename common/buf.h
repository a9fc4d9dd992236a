/* The one growable byte buffer: appends, formatted appends and room made
 * ahead, kept NUL-terminated so that text in it reads as a string. It grows
 * by doubling, so n appends cost O(n), and running out of memory aborts
 * through xalloc.h, so no call fails. */
#ifndef SIGNAL_BUF_H
#define SIGNAL_BUF_H

#include <stddef.h>

struct buf {
    char *data;      /* len bytes, then a NUL; malloc'd: free it or buf_free */
    size_t len, cap; /* cap counts every byte allocated, the NUL's included */
};

/* Starts b empty, with room for cap bytes before it first grows. */
void buf_init(struct buf *b, size_t cap);
/* Frees what b holds and leaves it zeroed (buf_init it to use it again). */
void buf_free(struct buf *b);
/* Makes room for more bytes beyond len, so that appending them does not
 * reallocate (and pointers into data stay valid meanwhile). */
void buf_reserve(struct buf *b, size_t more);
/* Lengthens b by n bytes, left for the caller to fill; returns the first. */
void *buf_extend(struct buf *b, size_t n);
/* Appends n bytes of data. */
void buf_append(struct buf *b, const void *data, size_t n);
/* Appends printf-formatted text. */
void buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
