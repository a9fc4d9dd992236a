/* The node's clocks: wall-clock time for timestamps, token times and the
 * bus's lag stamp, monotonic time for rates and durations (immune to clock
 * steps). */
#ifndef SIGNAL_CLOCK_H
#define SIGNAL_CLOCK_H

#include <stdint.h>

/* Wall-clock milliseconds since the epoch. */
int64_t clock_now_ms(void);
/* Wall-clock microseconds since the epoch. */
long long clock_now_us(void);
/* Monotonic milliseconds. */
int64_t clock_mono_ms(void);

#endif
