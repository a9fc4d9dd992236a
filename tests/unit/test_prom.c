/* Unit tests of the Prometheus text format writer, into a struct buf. */
#include <criterion/criterion.h>
#include <math.h>

#include "prom.h"

Test(prom, families_and_samples)
{
    struct buf p;
    buf_init(&p, 4096);
    prom_family(&p, "x_total", "counter", "Things.");
    const char *labels[] = {"code", "1001", "reason", "a\"b\\c\nd", NULL};
    prom_sample(&p, "x_total", labels, 3);
    prom_single(&p, "y", "gauge", "A value.", 0.25);
    prom_single(&p, "z", "gauge", "Big.", 1e20);
    prom_single(&p, "w", "gauge", "Not a number.", NAN);
    cr_assert_str_eq(p.data, "# HELP x_total Things.\n# TYPE x_total counter\n"
                             "x_total{code=\"1001\",reason=\"a\\\"b\\\\c\\nd\"} 3\n"
                             "# HELP y A value.\n# TYPE y gauge\ny 0.25\n"
                             "# HELP z Big.\n# TYPE z gauge\nz 1e+20\n"
                             "# HELP w Not a number.\n# TYPE w gauge\nw NaN\n");
    buf_free(&p);
}

Test(prom, histogram_is_cumulative)
{
    static const double bounds[] = {0.001, 0.01, 0.1};
    struct histogram h = {.bounds = bounds, .n_bounds = 3};
    histogram_observe(&h, 0.0005);
    histogram_observe(&h, 0.001); /* le is inclusive */
    histogram_observe(&h, 0.05);
    histogram_observe(&h, 7);
    struct buf p;
    buf_init(&p, 4096);
    prom_histogram(&p, "lag_seconds", &h);
    cr_assert_str_eq(p.data, "lag_seconds_bucket{le=\"0.001\"} 2\n"
                             "lag_seconds_bucket{le=\"0.01\"} 2\n"
                             "lag_seconds_bucket{le=\"0.1\"} 3\n"
                             "lag_seconds_bucket{le=\"+Inf\"} 4\n"
                             "lag_seconds_sum 7.0515\n"
                             "lag_seconds_count 4\n");
    buf_free(&p);
}

Test(prom, grows_past_its_first_buffer)
{
    struct buf p;
    buf_init(&p, 4096);
    for (int i = 0; i < 10000; i++)
        prom_sample(&p, "a_metric_with_a_long_name", NULL, i);
    cr_assert_eq(strlen(p.data), p.len);
    cr_assert(p.len > 200000);
    buf_free(&p);
}
