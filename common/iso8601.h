/* Time as ISO-8601 UTC with milliseconds, e.g. 2026-01-02T03:04:05.678Z:
 * the one formatter behind the log lines' time and the wire's timestamps. */
#ifndef SIGNAL_ISO8601_H
#define SIGNAL_ISO8601_H

/* Room for any year a long long of milliseconds can reach, and the NUL. */
#define ISO8601_LEN 32

/* Writes unix_ms (milliseconds since the epoch, UTC) into out. */
void iso8601_format(long long unix_ms, char out[ISO8601_LEN]);

#endif
