/* The Prometheus text exposition format (version 0.0.4): families with HELP
 * and TYPE, samples with fixed label sets, and histograms with cumulative
 * buckets, appended to a struct buf (buf.h), one per scrape. Label values
 * are escaped; names are the caller's literals. */
#ifndef SIGNAL_PROM_H
#define SIGNAL_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* HELP and TYPE lines; type is counter, gauge or histogram. */
void prom_family(struct buf *p, const char *name, const char *type, const char *help);
/* One sample: name{label="value",...} v. labels is NULL or a NULL-ended list
 * of name, value pairs. */
void prom_sample(struct buf *p, const char *name, const char *const *labels, double v);
/* A whole family with one unlabelled sample. */
void prom_single(struct buf *p, const char *name, const char *type, const char *help, double v);

/* A histogram of values in seconds (or any unit), kept by the caller. */
#define HISTOGRAM_MAX_BUCKETS 16
struct histogram {
    const double *bounds;                       /* ascending upper bounds, without +Inf */
    size_t n_bounds;                            /* <= HISTOGRAM_MAX_BUCKETS */
    uint64_t counts[HISTOGRAM_MAX_BUCKETS + 1]; /* per bucket, the last is +Inf */
    uint64_t count;
    double sum;
};

void histogram_observe(struct histogram *h, double v);
/* The _bucket (cumulative, le), _sum and _count lines, after the family. */
void prom_histogram(struct buf *p, const char *name, const struct histogram *h);

#endif
