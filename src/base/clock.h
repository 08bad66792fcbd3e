/*
 * clock.h - the time seam.
 *
 * Domain code never calls clock_gettime() directly; it asks a `struct clock`,
 * so tests substitute a fake whose time they move by hand. Monotonic time is
 * for durations and timers, wall time for timestamps users see.
 */
#ifndef DOCKET_BASE_CLOCK_H
#define DOCKET_BASE_CLOCK_H

#include <stdint.h>

struct clock {
    int64_t (*monotonic_ns)(struct clock *clock); /* nanoseconds since an arbitrary start */
    int64_t (*wall_ns)(struct clock *clock);      /* nanoseconds since the Unix epoch (UTC) */
};

/* The process-wide real clock. */
struct clock *clock_system(void);

/* A fake clock for tests: both readings are set by hand. */
struct clock_fake {
    struct clock base;         /* must stay first: a clock_fake is a clock */
    int64_t monotonic_now_ns;  /* value returned by monotonic_ns */
    int64_t wall_now_ns;       /* value returned by wall_ns */
};

void clock_fake_init(struct clock_fake *fake, int64_t wall_ns);
void clock_fake_advance(struct clock_fake *fake, int64_t delta_ns);

static inline int64_t clock_monotonic_ms(struct clock *clock) {
    return clock->monotonic_ns(clock) / 1000000;
}

/* Formats wall time as RFC 3339 UTC with milliseconds ("2026-02-10T09:45:00.123Z").
 * `out` must hold at least 25 bytes. Returns the length written. */
int clock_format_rfc3339_ms(int64_t wall_ns, char *out, int out_size);

#endif
