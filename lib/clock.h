/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * clock.h - the monotonic clock every moat program measures time with:
 * deadlines, durations, rates.  CLOCK_MONOTONIC never jumps with the wall
 * clock, so a timeout or a "compiled in N ms" survives an NTP step.  Header
 * only: the functions are a clock_gettime() and a multiplication, and the
 * SMTP engine reads the clock on every event-loop turn.
 */
#ifndef MOAT_CLOCK_H
#define MOAT_CLOCK_H

#include <stdint.h>
#include <time.h>

/* moat_clock_ns - CLOCK_MONOTONIC in nanoseconds */
static inline uint64_t moat_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* moat_clock_ms - CLOCK_MONOTONIC in whole milliseconds (deadlines) */
static inline int64_t moat_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* moat_clock_ms_f - CLOCK_MONOTONIC in milliseconds with the fraction
 * (durations shorter than a millisecond, as metrics report them) */
static inline double moat_clock_ms_f(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif /* MOAT_CLOCK_H */
