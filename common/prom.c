/* Prometheus text format; see prom.h. */
#include "prom.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void prom_family(struct buf *p, const char *name, const char *type, const char *help)
{
    buf_appendf(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values escape backslash, double quote and newline. */
static void append_label_value(struct buf *p, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            buf_append(p, "\\", 1);
        if (*v == '\n')
            buf_append(p, "\\n", 2);
        else
            buf_append(p, v, 1);
    }
}

/* {name="value",...}, with le="..." last when given; nothing without labels. */
static void append_labels(struct buf *p, const char *const *labels, const char *le)
{
    if ((!labels || !labels[0]) && !le)
        return;
    buf_append(p, "{", 1);
    const char *sep = "";
    for (size_t i = 0; labels && labels[i]; i += 2) {
        buf_appendf(p, "%s%s=\"", sep, labels[i]);
        append_label_value(p, labels[i + 1]);
        buf_append(p, "\"", 1);
        sep = ",";
    }
    if (le)
        buf_appendf(p, "%sle=\"%s\"", sep, le);
    buf_append(p, "}", 1);
}

/* The sample's value and the line's end, as Prometheus spells NaN and infinities;
 * whole numbers without a fraction. */
static void append_value(struct buf *p, double v)
{
    if (isnan(v))
        buf_append(p, " NaN\n", 5);
    else if (isinf(v))
        buf_appendf(p, " %sInf\n", v > 0 ? "+" : "-");
    else if (v == floor(v) && fabs(v) < 1e15)
        buf_appendf(p, " %.0f\n", v);
    else
        buf_appendf(p, " %.9g\n", v);
}

void prom_sample(struct buf *p, const char *name, const char *const *labels, double v)
{
    buf_append(p, name, strlen(name));
    append_labels(p, labels, NULL);
    append_value(p, v);
}

void prom_single(struct buf *p, const char *name, const char *type, const char *help, double v)
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

void prom_histogram(struct buf *p, const char *name, const struct histogram *h)
{
    uint64_t cumulative = 0;
    char le[32];
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cumulative += h->counts[i];
        if (i < h->n_bounds)
            snprintf(le, sizeof(le), "%g", h->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        buf_appendf(p, "%s_bucket", name);
        append_labels(p, NULL, le);
        append_value(p, (double)cumulative);
    }
    buf_appendf(p, "%s_sum", name);
    append_value(p, h->sum);
    buf_appendf(p, "%s_count", name);
    append_value(p, (double)h->count);
}
