/*
 * sched_cost.c - the in-process cost of Docket's reminder scheduler
 * (src/reminders/scheduler.c on src/timer/wheel.c, compiled from the tree
 * as it is) for `bench/run reminders`: TOTAL timers spread over a year are
 * put, then every other one is moved (remove + put at a new instant, what a
 * PATCH of a task's due date does per reminder), then half are removed, and
 * the rest fire in one run a year later. Times are passed in, so no clock
 * or loop is involved: the figures are the scheduler's own CPU cost.
 *
 * Usage: sched_cost TOTAL
 * Prints one JSON line: ns per put / move / remove / fire, the scheduler's
 * own bytes per timer (scheduler_bytes) and the RSS growth per timer.
 */
#include "../../src/reminders/scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define START_WALL_MS INT64_C(1790000000000)
#define YEAR_MS (INT64_C(365) * 24 * 3600 * 1000)

static size_t fired_count;           /* timers handed to on_fire */
static struct scheduler *cost_sched; /* the scheduler under test */

static double monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e9 + (double)now.tv_nsec;
}

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

/* Twenty timers per task id, like a task with 20 reminders. */
static void ids_of(size_t index, char *task, char *user) {
    size_t task_number = index / 20;
    snprintf(task, UUID_STRING_BYTES, "%08zx-0000-7000-8000-%012zx", task_number,
             task_number * 7 + 1);
    snprintf(user, UUID_STRING_BYTES, "%08zx-0000-7000-8000-%012zx", index % 97, index % 97 + 3);
}

static int64_t at_of(size_t index, int64_t salt) {
    return START_WALL_MS + 1000 + (int64_t)(((uint64_t)index * 2654435761u + (uint64_t)salt) %
                                            (uint64_t)YEAR_MS);
}

static void on_fire(void *arg, const struct scheduler_fire *fire) {
    (void)arg;
    fired_count++;
    scheduler_remove(cost_sched, fire->task_id, fire->kind, fire->at_ms);
}

int main(int argc, char **argv) {
    size_t total = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    struct scheduler_options options = {.ops = {.fire = on_fire}, .grace_ms = YEAR_MS * 2,
                                        .wall_ms = START_WALL_MS, .mono_ms = 1000};
    if (total < 2 || scheduler_open(&cost_sched, &options) != 0) return 1;
    char task[UUID_STRING_BYTES], user[UUID_STRING_BYTES];
    long rss_before = rss_kib();
    double t0 = monotonic_ns();
    for (size_t index = 0; index < total; index++) {
        ids_of(index, task, user);
        int rc = scheduler_put(cost_sched, task, user, SCHEDULER_REMINDER, at_of(index, 0));
        if (rc != 0) return 1;
    }
    double put_ns = (monotonic_ns() - t0) / (double)total;
    long rss_after = rss_kib();
    size_t bytes = scheduler_bytes(cost_sched);
    t0 = monotonic_ns();
    for (size_t index = 0; index < total; index += 2) {
        ids_of(index, task, user);
        scheduler_remove(cost_sched, task, SCHEDULER_REMINDER, at_of(index, 0));
        if (scheduler_put(cost_sched, task, user, SCHEDULER_REMINDER, at_of(index, 3600000)) != 0) {
            return 1;
        }
    }
    double move_ns = (monotonic_ns() - t0) / (double)((total + 1) / 2);
    t0 = monotonic_ns();
    for (size_t index = 1; index < total; index += 2) {
        ids_of(index, task, user);
        scheduler_remove(cost_sched, task, SCHEDULER_REMINDER, at_of(index, 0));
    }
    double remove_ns = (monotonic_ns() - t0) / (double)(total / 2);
    uint64_t pending = scheduler_stats(cost_sched)->pending;
    t0 = monotonic_ns();
    scheduler_run(cost_sched, START_WALL_MS + 2 * YEAR_MS, 1000 + 2 * YEAR_MS);
    double fire_ns = fired_count ? (monotonic_ns() - t0) / (double)fired_count : 0;
    printf("{\"total\":%zu,\"put_ns\":%.0f,\"move_ns\":%.0f,\"remove_ns\":%.0f,\"fire_ns\":%.0f,"
           "\"pending_after_removes\":%llu,\"fired\":%zu,\"scheduler_bytes_per_timer\":%.1f,"
           "\"rss_bytes_per_timer\":%.1f}\n",
           total, put_ns, move_ns, remove_ns, fire_ns, (unsigned long long)pending, fired_count,
           (double)bytes / (double)total,
           (double)(rss_after - rss_before) * 1024.0 / (double)total);
    scheduler_close(cost_sched);
    return 0;
}
