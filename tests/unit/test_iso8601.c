/* Unit tests of the one ISO-8601 formatter (common/iso8601.c), and of the
 * two places that use it: the wire's timestamps and the log lines. */
#include <criterion/criterion.h>
#include <string.h>

#include "iso8601.h"
#include "log.h"
#include "protocol.h"

/* Formats unix_ms and checks the text. */
static void expect(long long unix_ms, const char *want)
{
    char ts[ISO8601_LEN];
    iso8601_format(unix_ms, ts);
    cr_expect_str_eq(ts, want, "%lld", unix_ms);
}

Test(iso8601, formats_utc_with_milliseconds)
{
    expect(0, "1970-01-01T00:00:00.000Z");
    expect(1767225600123LL, "2026-01-01T00:00:00.123Z");
    expect(1795964494567LL, "2026-11-29T15:01:34.567Z");
    expect(951782400999LL, "2000-02-29T00:00:00.999Z");
    expect(253402300799999LL, "9999-12-31T23:59:59.999Z");
}

Test(iso8601, before_the_epoch_keeps_positive_milliseconds)
{
    expect(-1, "1969-12-31T23:59:59.999Z");
    expect(-1000, "1969-12-31T23:59:59.000Z");
}

Test(iso8601, protocol_and_log_use_it)
{
    char ts[PROTOCOL_TIMESTAMP_LEN], want[ISO8601_LEN], line[256];
    protocol_timestamp(1795964494567LL, ts);
    iso8601_format(1795964494567LL, want);
    cr_assert_str_eq(ts, want);
    log_format_line(line, sizeof(line), LOG_TEXT, 1795964494567LL, LOG_INFO, "n", "e", NULL, "m");
    cr_assert(strncmp(line, want, strlen(want)) == 0, "%s", line);
}
