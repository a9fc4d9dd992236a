/* ISO-8601 UTC timestamps; see iso8601.h. */
#include "iso8601.h"

#include <stdio.h>
#include <time.h>

void iso8601_format(long long unix_ms, char out[ISO8601_LEN])
{
    /* Floor division, so that a time before the epoch keeps 0-999 ms. */
    long long secs = unix_ms / 1000, ms = unix_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm = {0}; /* stays 0 for a year gmtime_r cannot represent */
    gmtime_r(&t, &tm);
    size_t n = strftime(out, ISO8601_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, ISO8601_LEN - n, ".%03dZ", (int)ms);
}
