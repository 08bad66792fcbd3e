/*
 * uv_floor.c - the peer floor of `bench/run reminders`: libuv's own timers
 * (uv_timer_t in the loop's binary heap) holding TOTAL pending timers, of
 * which FIRING come due uniformly inside [LEAD_MS, LEAD_MS + WINDOW_MS) from
 * the start; the rest are days to a year away. Each firing timer records
 * its lateness (wall clock at the callback minus its wall-clock instant), so
 * the figure is directly comparable with Docket's reminder lateness.
 * Nothing else runs on the loop: this is the best a single-threaded libuv
 * program can do, not a server.
 *
 * Usage: uv_floor TOTAL FIRING LEAD_MS WINDOW_MS
 * Prints one JSON line: lateness percentiles (ms), timers fired, RSS before
 * and after arming every timer, and bytes per pending timer.
 */
#include <uv.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct floor_timer {
    uv_timer_t handle; /* the libuv timer */
    double at_ms;      /* wall-clock instant it is meant to fire (Unix ms) */
};

static double *lateness_ms;   /* one entry per firing timer, in firing order */
static size_t fired;          /* entries used */
static size_t firing_total;   /* timers meant to fire */
static uv_loop_t *floor_loop; /* the loop, stopped after the last firing */

static double wall_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6;
}

/* VmRSS of this process in KiB. */
static long rss_kib(void) {
    FILE *file = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (file != NULL && fgets(line, sizeof line, file) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    }
    if (file != NULL) fclose(file);
    return kib;
}

static void on_timer(uv_timer_t *handle) {
    struct floor_timer *timer = (struct floor_timer *)handle;
    if (fired < firing_total) lateness_ms[fired++] = wall_ms() - timer->at_ms;
    if (fired == firing_total) uv_stop(floor_loop);
}

static int compare_double(const void *left, const void *right) {
    double a = *(const double *)left, b = *(const double *)right;
    return (a > b) - (a < b);
}

static double percentile(const double *sorted, size_t count, double fraction) {
    if (count == 0) return 0;
    size_t index = (size_t)(fraction * (double)(count - 1) + 0.5);
    return sorted[index < count ? index : count - 1];
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: uv_floor TOTAL FIRING LEAD_MS WINDOW_MS\n");
        return 2;
    }
    size_t total = strtoul(argv[1], NULL, 10), firing = strtoul(argv[2], NULL, 10);
    double lead = strtod(argv[3], NULL), window = strtod(argv[4], NULL);
    if (firing == 0 || firing > total) return 2;
    floor_loop = uv_default_loop();
    firing_total = firing;
    lateness_ms = calloc(firing, sizeof *lateness_ms);
    long rss_before = rss_kib();
    struct floor_timer *timers = calloc(total, sizeof *timers);
    if (timers == NULL || lateness_ms == NULL) return 1;
    double start = wall_ms();
    uint64_t seed = 88172645463325252u;
    for (size_t index = 0; index < total; index++) {
        /* Every (total/firing)-th timer fires in the window, in instant order. */
        size_t stride = total / firing;
        int fires = index % stride == 0 && index / stride < firing;
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        double at = fires ? start + lead + window * (double)(index / stride) / (double)firing
                          : start + 86400e3 + (double)(seed % (364ull * 86400000ull));
        timers[index].at_ms = at;
        uv_timer_init(floor_loop, &timers[index].handle);
        uv_update_time(floor_loop);
        double delay = at - wall_ms();
        uint64_t timeout_ms = delay > 0 ? (uint64_t)(delay + 0.999) : 0;
        uv_timer_start(&timers[index].handle, on_timer, timeout_ms, 0);
    }
    double armed_s = (wall_ms() - start) / 1e3;
    long rss_after = rss_kib();
    uv_run(floor_loop, UV_RUN_DEFAULT);
    qsort(lateness_ms, fired, sizeof *lateness_ms, compare_double);
    printf("{\"total\":%zu,\"firing\":%zu,\"fired\":%zu,\"arm_seconds\":%.3f,"
           "\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,\"bytes_per_timer\":%.1f,"
           "\"struct_bytes\":%zu,\"late_ms\":{\"min\":%.3f,\"p50\":%.3f,\"p99\":%.3f,"
           "\"max\":%.3f},\"uv_version\":\"%s\"}\n",
           total, firing, fired, armed_s, rss_before, rss_after,
           (double)(rss_after - rss_before) * 1024.0 / (double)total, sizeof(uv_timer_t),
           percentile(lateness_ms, fired, 0), percentile(lateness_ms, fired, 0.5),
           percentile(lateness_ms, fired, 0.99), percentile(lateness_ms, fired, 1.0),
           uv_version_string());
    return fired == firing ? 0 : 1;
}
