/*
 * clock.c - the real clock (CLOCK_MONOTONIC / CLOCK_REALTIME) and the fake
 * used by tests, plus RFC 3339 formatting shared by logs and events.
 */
#include "clock.h"

#include "check.h"

#include <stdio.h>
#include <time.h>

static int64_t clock_system_read(clockid_t id) {
    struct timespec now;
    int rc = clock_gettime(id, &now);
    CHECK(rc == 0);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int64_t clock_system_monotonic_ns(struct clock *clock) {
    (void)clock;
    return clock_system_read(CLOCK_MONOTONIC);
}

static int64_t clock_system_wall_ns(struct clock *clock) {
    (void)clock;
    return clock_system_read(CLOCK_REALTIME);
}

static struct clock clock_system_instance = {
    .monotonic_ns = clock_system_monotonic_ns,
    .wall_ns = clock_system_wall_ns,
};

struct clock *clock_system(void) {
    return &clock_system_instance;
}

static int64_t clock_fake_monotonic_ns(struct clock *clock) {
    return ((struct clock_fake *)clock)->monotonic_now_ns;
}

static int64_t clock_fake_wall_ns(struct clock *clock) {
    return ((struct clock_fake *)clock)->wall_now_ns;
}

void clock_fake_init(struct clock_fake *fake, int64_t wall_ns) {
    fake->base.monotonic_ns = clock_fake_monotonic_ns;
    fake->base.wall_ns = clock_fake_wall_ns;
    fake->monotonic_now_ns = 1000000000;
    fake->wall_now_ns = wall_ns;
}

void clock_fake_advance(struct clock_fake *fake, int64_t delta_ns) {
    CHECK(delta_ns >= 0);
    fake->monotonic_now_ns += delta_ns;
    fake->wall_now_ns += delta_ns;
}

int clock_format_rfc3339_ms(int64_t wall_ns, char *out, int out_size) {
    CHECK(out_size >= 25);
    time_t seconds = (time_t)(wall_ns / 1000000000);
    int milliseconds = (int)((wall_ns / 1000000) % 1000);
    if (milliseconds < 0) milliseconds += 1000;
    struct tm utc;
    gmtime_r(&seconds, &utc);
    return snprintf(out, (size_t)out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                    utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                    utc.tm_sec, milliseconds);
}
