/* The growable buffer; see buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void buf_init(struct buf *b, size_t cap)
{
    b->cap = cap + 1;
    b->data = xmalloc(b->cap);
    b->data[0] = '\0';
    b->len = 0;
}

void buf_free(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void buf_reserve(struct buf *b, size_t more)
{
    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return;
    b->cap = b->cap * 2 > need ? b->cap * 2 : need;
    b->data = xrealloc(b->data, b->cap);
}

void *buf_extend(struct buf *b, size_t n)
{
    buf_reserve(b, n);
    char *start = b->data + b->len;
    b->len += n;
    b->data[b->len] = '\0';
    return start;
}

void buf_append(struct buf *b, const void *data, size_t n)
{
    memcpy(buf_extend(b, n), data, n);
}

void buf_appendf(struct buf *b, const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    /* Straight into the free space: a second pass only when it is short. */
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->data + b->len, room, fmt, ap);
    if (n >= 0 && (size_t)n >= room) {
        buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
    }
    if (n > 0)
        b->len += (size_t)n;
    b->data[b->len] = '\0'; /* also after an encoding error, which writes anything */
    va_end(again);
    va_end(ap);
}
