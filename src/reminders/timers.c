/*
 * timers.c - the scheduler on the loop (see timers.h). Layers: the uv_timer
 * that runs the scheduler, reading rows from the reminders table, and the
 * commands a firing becomes.
 */
#include "timers.h"

#include "../base/check.h"
#include "../base/clock.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/mem.h"
#include "../store/db.h"
#include "../tasks/service.h"

#include <sqlite3.h>
#include <string.h>
#include <uv.h>

/* Rows read per query while catching up with the table. */
#define TIMERS_ROWS_PER_QUERY 4096
/* Waits before re-firing a timer whose append failed. */
static const int64_t timers_retry_ms[] = {1000, 5000, 25000};

static const int64_t timers_bucket_ms[TIMERS_LATENESS_BUCKETS] = {1,  2,   5,   10,   25,
                                                                  50, 100, 250, 1000, 10000};

struct timers {
    struct timers_options options; /* as given */
    struct scheduler *scheduler;   /* the wheel and its index */
    uv_timer_t timer;              /* runs the scheduler */
    int64_t next_rev;              /* rows with rev >= this are not read yet */
    bool closing;                  /* timers_close was called */
    struct timers_firing *firings; /* waiting for their command's answer (a list) */
    uint64_t runs;                 /* scheduler runs, for the debug validation */
    struct timers_stats stats;     /* lateness and failures */
};

/* One firing waiting for its command's answer. */
struct timers_firing {
    struct timers_firing *next, *previous; /* in timers->firings */
    struct timers *timers;                /* owner (NULL once closed) */
    struct command command;               /* the command (points into this struct) */
    char task_id[UUID_STRING_BYTES];      /* the timer's task */
    char user_id[UUID_STRING_BYTES];      /* its owner */
    enum scheduler_kind kind;             /* reminder or spawn */
    int64_t at_ms;                        /* its instant */
    int attempts;                         /* commands sent for it so far */
};

static int64_t timers_wall_ms(struct timers *timers) {
    return timers->options.clock->wall_ns(timers->options.clock) / 1000000;
}

static int64_t timers_mono_ms(struct timers *timers) {
    return timers->options.clock->monotonic_ns(timers->options.clock) / 1000000;
}

/* ---- Running the scheduler --------------------------------------------------- */

static void timers_on_timer(uv_timer_t *handle);

static void timers_arm(struct timers *timers, int64_t sleep_ms) {
    if (timers->closing) return;
    uv_timer_start(&timers->timer, timers_on_timer, (uint64_t)(sleep_ms > 0 ? sleep_ms : 0), 0);
}

static void timers_run(struct timers *timers) {
    int64_t sleep_ms = scheduler_run(timers->scheduler, timers_wall_ms(timers),
                                     timers_mono_ms(timers));
#ifdef DOCKET_DEBUG
    /* The wheel's validate hook: O(timers), so every 256th run. */
    if ((++timers->runs & 255) == 0) scheduler_validate(timers->scheduler);
#endif
    timers_arm(timers, sleep_ms);
}

static void timers_on_timer(uv_timer_t *handle) {
    struct timers *timers = handle->data;
    /* uv_now is cached per loop iteration; the wheel reads the real clock. */
    timers_run(timers);
}

/* ---- Firing ------------------------------------------------------------------ */

static void timers_record_lateness(struct timers *timers, int64_t late_ms) {
    size_t bucket = 0;
    while (bucket < TIMERS_LATENESS_BUCKETS && late_ms > timers_bucket_ms[bucket]) bucket++;
    timers->stats.lateness_counts[bucket]++;
    timers->stats.lateness_sum_ms += (uint64_t)late_ms;
}

static void timers_firing_unlink(struct timers_firing *firing) {
    struct timers *timers = firing->timers;
    if (timers == NULL) return;
    if (firing->previous != NULL) firing->previous->next = firing->next;
    else timers->firings = firing->next;
    if (firing->next != NULL) firing->next->previous = firing->previous;
}

static void timers_command_done(void *arg, const struct command_result *result) {
    struct timers_firing *firing = arg;
    struct timers *timers = firing->timers;
    timers_firing_unlink(firing);
    if (timers == NULL || timers->closing) {
        mem_free(firing);
        return;
    }
    if (result->status >= 500) {
        /* The log refused the append (full disk, I/O error, busy): the timer
         * stays and fires again; the command layer's checks keep it single. */
        timers->stats.commands_failed++;
        size_t step = (size_t)firing->attempts - 1;
        size_t last = sizeof timers_retry_ms / sizeof timers_retry_ms[0] - 1;
        int64_t delay = timers_retry_ms[step < last ? step : last];
        LOG_WARN("timers", "recording a timer failed; retrying", "task=%s kind=%d status=%d "
                 "retry_ms=%lld", firing->task_id, (int)firing->kind, result->status,
                 (long long)delay);
        scheduler_retry(timers->scheduler, firing->task_id, firing->kind, firing->at_ms, delay);
        timers_arm(timers, 0); /* may be inside scheduler_run (a synchronous answer) */
    } else {
        /* Recorded (201), or nothing to record (200: fired before, cancelled,
         * completed; 404: deleted; 409: another command has it). The row's
         * new state reaches the scheduler through timers_applied as well. */
        scheduler_remove(timers->scheduler, firing->task_id, firing->kind, firing->at_ms);
    }
    mem_free(firing);
}

static void timers_fire(void *arg, const struct scheduler_fire *fire) {
    struct timers *timers = arg;
    struct timers_firing *firing = mem_calloc(1, sizeof *firing);
    if (firing == NULL) {
        scheduler_retry(timers->scheduler, fire->task_id, fire->kind, fire->at_ms, 1000);
        return;
    }
    if (fire->kind == SCHEDULER_REMINDER && !fire->missed) {
        timers_record_lateness(timers, fire->late_ms);
    }
    firing->timers = timers;
    firing->next = timers->firings;
    if (timers->firings != NULL) timers->firings->previous = firing;
    timers->firings = firing;
    memcpy(firing->task_id, fire->task_id, UUID_STRING_BYTES);
    memcpy(firing->user_id, fire->user_id, UUID_STRING_BYTES);
    firing->kind = fire->kind;
    firing->at_ms = fire->at_ms;
    firing->attempts = 1;
    firing->command = (struct command){
        .kind = fire->kind == SCHEDULER_SPAWN ? COMMAND_TASK_SPAWN : COMMAND_REMINDER_FIRE,
        .user_id = firing->user_id,
        .actor = "docket",
        .task_id = firing->task_id,
        .at_ms = fire->at_ms,
        .missed = fire->missed,
    };
    service_execute(timers->options.service, &firing->command, timers_command_done, firing);
}

/* ---- Rows -------------------------------------------------------------------- */

/* Puts or removes one row. */
static void timers_row(struct timers *timers, sqlite3_stmt *stmt) {
    const char *task_id = (const char *)sqlite3_column_text(stmt, 0);
    int kind = sqlite3_column_int(stmt, 1);
    int64_t at_ms = sqlite3_column_int64(stmt, 2);
    const char *user_id = (const char *)sqlite3_column_text(stmt, 3);
    int state = sqlite3_column_int(stmt, 4);
    if (task_id == NULL || user_id == NULL || (kind != 0 && kind != 1)) return;
    enum scheduler_kind which = kind == 0 ? SCHEDULER_REMINDER : SCHEDULER_SPAWN;
    timers->stats.rows_read++;
    if (state != 0) {
        scheduler_remove(timers->scheduler, task_id, which, at_ms);
        return;
    }
    int rc = scheduler_put(timers->scheduler, task_id, user_id, which, at_ms);
    if (rc != 0) {
        LOG_ERROR("timers", "cannot schedule a timer", "task=%s error=%s", task_id, err_name(rc));
    }
}

/* Reads rows changed at or after next_rev. Returns 0 or a negative code. */
static int timers_read_changes(struct timers *timers, int64_t applied_end) {
    for (int round = 0; round < 1000000; round++) {
        sqlite3_stmt *stmt = db_statement(
            timers->options.db, "SELECT task_id, kind, at_ms, user_id, state, rev FROM reminders"
                                " WHERE rev >= ?1 ORDER BY rev LIMIT ?2");
        if (stmt == NULL) return ERR_IO;
        sqlite3_bind_int64(stmt, 1, timers->next_rev);
        sqlite3_bind_int(stmt, 2, TIMERS_ROWS_PER_QUERY);
        int rows = 0;
        int rc;
        int64_t last_rev = timers->next_rev - 1;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            timers_row(timers, stmt);
            last_rev = sqlite3_column_int64(stmt, 5);
            rows++;
        }
        sqlite3_reset(stmt);
        if (rc != SQLITE_DONE) return ERR_IO;
        if (rows < TIMERS_ROWS_PER_QUERY) break;
        /* A full page may end inside one rev (one event changes up to ~21
         * rows); re-reading that rev is harmless (put and remove are
         * idempotent) and guarantees progress only if the page ends past
         * it, so step to the last rev seen. */
        timers->next_rev = last_rev > timers->next_rev ? last_rev : timers->next_rev + 1;
    }
    if (applied_end > timers->next_rev) timers->next_rev = applied_end;
    return 0;
}

/* Every pending row, at start. */
static int timers_load(struct timers *timers) {
    sqlite3_stmt *stmt = db_statement(
        timers->options.db,
        "SELECT task_id, kind, at_ms, user_id, state, rev FROM reminders WHERE state = 0");
    if (stmt == NULL) return ERR_IO;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) timers_row(timers, stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : ERR_IO;
}

/* ---- Lifecycle ----------------------------------------------------------------- */

int timers_open(struct timers **out, const struct timers_options *options) {
    CHECK(out != NULL && options != NULL && options->loop != NULL && options->service != NULL);
    struct timers *timers = mem_calloc(1, sizeof *timers);
    if (timers == NULL) return ERR_NOMEM;
    timers->options = *options;
    timers->next_rev = options->applied_offset;
    struct scheduler_options scheduler_options = {
        .ops = {timers_fire},
        .arg = timers,
        .grace_ms = options->grace_ms,
        .wall_ms = timers_wall_ms(timers),
        .mono_ms = timers_mono_ms(timers),
    };
    int rc = scheduler_open(&timers->scheduler, &scheduler_options);
    if (rc == 0) rc = timers_load(timers);
    if (rc != 0) {
        if (timers->scheduler != NULL) scheduler_close(timers->scheduler);
        mem_free(timers);
        return rc;
    }
    uv_timer_init(options->loop, &timers->timer);
    timers->timer.data = timers;
    const struct scheduler_stats *stats = scheduler_stats(timers->scheduler);
    LOG_INFO("timers", "scheduled", "pending=%llu", (unsigned long long)stats->pending);
    timers_arm(timers, 0);
    *out = timers;
    return 0;
}

static void timers_on_closed(uv_handle_t *handle) {
    struct timers *timers = handle->data;
    scheduler_close(timers->scheduler);
    mem_free(timers);
}

void timers_close(struct timers *timers) {
    if (timers == NULL) return;
    timers->closing = true;
    uv_timer_stop(&timers->timer);
    for (struct timers_firing *firing = timers->firings; firing != NULL; firing = firing->next) {
        firing->timers = NULL; /* answered later by service_close; freed then */
    }
    timers->firings = NULL;
    /* Firings still waiting for their command are answered by
     * service_close (503) after this: they check `closing` and only free
     * themselves. The struct lives until the handle is closed. */
    uv_close((uv_handle_t *)&timers->timer, timers_on_closed);
}

void timers_applied(struct timers *timers, int64_t applied_end) {
    if (timers == NULL || timers->closing) return;
    int rc = timers_read_changes(timers, applied_end);
    if (rc != 0) LOG_WARN("timers", "cannot read timer changes", "error=%s", err_name(rc));
    timers_arm(timers, 0);
}

const struct scheduler_stats *timers_scheduler_stats(const struct timers *timers) {
    return scheduler_stats(timers->scheduler);
}

const struct timers_stats *timers_stats(const struct timers *timers) {
    return &timers->stats;
}

void timers_write_metrics(const struct timers *timers, struct buf *out) {
    const struct scheduler_stats *stats = scheduler_stats(timers->scheduler);
    buf_printf(out,
               "# HELP docket_reminder_timers Timers (reminders and spawns) waiting in the wheel.\n"
               "# TYPE docket_reminder_timers gauge\ndocket_reminder_timers %llu\n"
               "# HELP docket_reminder_firings_total Timers handed to the command layer.\n"
               "# TYPE docket_reminder_firings_total counter\n"
               "docket_reminder_firings_total %llu\n"
               "# HELP docket_reminder_missed_total Reminders later than reminders.grace_ms.\n"
               "# TYPE docket_reminder_missed_total counter\ndocket_reminder_missed_total %llu\n"
               "# HELP docket_reminder_clock_jumps_total Wall clock jumps detected.\n"
               "# TYPE docket_reminder_clock_jumps_total counter\n"
               "docket_reminder_clock_jumps_total{direction=\"forward\"} %llu\n"
               "docket_reminder_clock_jumps_total{direction=\"backward\"} %llu\n",
               (unsigned long long)stats->pending, (unsigned long long)stats->fired,
               (unsigned long long)stats->missed, (unsigned long long)stats->jumps_forward,
               (unsigned long long)stats->jumps_backward);
    buf_printf(out, "# HELP docket_reminder_lateness_ms Wall time from a reminder's instant to "
                    "its firing.\n# TYPE docket_reminder_lateness_ms histogram\n");
    uint64_t cumulative = 0;
    for (size_t bucket = 0; bucket < TIMERS_LATENESS_BUCKETS; bucket++) {
        cumulative += timers->stats.lateness_counts[bucket];
        buf_printf(out, "docket_reminder_lateness_ms_bucket{le=\"%lld\"} %llu\n",
                   (long long)timers_bucket_ms[bucket], (unsigned long long)cumulative);
    }
    cumulative += timers->stats.lateness_counts[TIMERS_LATENESS_BUCKETS];
    buf_printf(out,
               "docket_reminder_lateness_ms_bucket{le=\"+Inf\"} %llu\n"
               "docket_reminder_lateness_ms_sum %llu\ndocket_reminder_lateness_ms_count %llu\n",
               (unsigned long long)cumulative, (unsigned long long)timers->stats.lateness_sum_ms,
               (unsigned long long)cumulative);
}
