/* Prometheus text format; see prom.h. */
#include "prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void prom_init(struct prom *p)
{
    p->cap = 4096;
    p->buf = xrealloc(NULL, p->cap);
    p->buf[0] = '\0';
    p->len = 0;
}

void prom_free(struct prom *p)
{
    free(p->buf);
    memset(p, 0, sizeof(*p));
}

static void reserve(struct prom *p, size_t more)
{
    if (p->len + more + 1 <= p->cap)
        return;
    while (p->len + more + 1 > p->cap)
        p->cap *= 2;
    p->buf = xrealloc(p->buf, p->cap);
}

static void append(struct prom *p, const char *s, size_t n)
{
    reserve(p, n);
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

static void appendf(struct prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(struct prom *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    reserve(p, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(p->buf + p->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    p->len += (size_t)n;
}

void prom_append(struct prom *p, const char *text)
{
    append(p, text, strlen(text));
}

void prom_family(struct prom *p, const char *name, const char *type, const char *help)
{
    appendf(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values escape backslash, double quote and newline. */
static void append_label_value(struct prom *p, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            append(p, "\\", 1);
        if (*v == '\n')
            append(p, "\\n", 2);
        else
            append(p, v, 1);
    }
}

static void append_labels(struct prom *p, const char *const *labels, const char *le)
{
    if ((!labels || !labels[0]) && !le)
        return;
    append(p, "{", 1);
    const char *sep = "";
    for (size_t i = 0; labels && labels[i]; i += 2) {
        appendf(p, "%s%s=\"", sep, labels[i]);
        append_label_value(p, labels[i + 1]);
        append(p, "\"", 1);
        sep = ",";
    }
    if (le)
        appendf(p, "%sle=\"%s\"", sep, le);
    append(p, "}", 1);
}

static void append_value(struct prom *p, double v)
{
    if (isnan(v))
        append(p, " NaN\n", 5);
    else if (isinf(v))
        appendf(p, " %sInf\n", v > 0 ? "+" : "-");
    else if (v == floor(v) && fabs(v) < 1e15)
        appendf(p, " %.0f\n", v);
    else
        appendf(p, " %.9g\n", v);
}

void prom_sample(struct prom *p, const char *name, const char *const *labels, double v)
{
    append(p, name, strlen(name));
    append_labels(p, labels, NULL);
    append_value(p, v);
}

void prom_single(struct prom *p, const char *name, const char *type, const char *help, double v)
{
    prom_family(p, name, type, help);
    prom_sample(p, name, NULL, v);
}

void histogram_observe(struct histogram *h, double v)
{
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

void prom_histogram(struct prom *p, const char *name, const struct histogram *h)
{
    uint64_t cumulative = 0;
    char le[32];
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cumulative += h->counts[i];
        if (i < h->n_bounds)
            snprintf(le, sizeof(le), "%g", h->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        appendf(p, "%s_bucket", name);
        append_labels(p, NULL, le);
        append_value(p, (double)cumulative);
    }
    appendf(p, "%s_sum", name);
    append_value(p, h->sum);
    appendf(p, "%s_count", name);
    append_value(p, (double)h->count);
}
