/* scheduler_test.c - the reminder scheduler on a fake clock: firing at the
 * exact millisecond and in time order, idempotent puts, remove and retry,
 * the grace rule, a start with timers in the past, forward and backward wall
 * clock jumps, the sleep value, changes from the callback, 100,000 random
 * operations against a reference model, a million timers (with bytes per
 * timer and cost per operation printed, not judged) and every allocation
 * failing in turn. scheduler_verify() runs after the steps that change state. */
#include "../../../src/base/clock.h"
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "../../../src/reminders/scheduler.h"
#include "../test.h"

#include <ctype.h>
#include <stdio.h>

/* 2026-11-24T00:00:00Z, an ordinary wall clock start. */
#define START_WALL_MS INT64_C(1795478400000)
#define MINUTE_MS INT64_C(60000)
#define HOUR_MS (60 * MINUTE_MS)

/* ---- firing log ------------------------------------------------------- */

#define LOG_MAX 64

static struct scheduler_fire log_fires[LOG_MAX]; /* firings in order */
static int log_count;                            /* firings seen (may exceed LOG_MAX) */
static struct scheduler *log_remove_from;        /* if set, each firing removes itself */

static void log_reset(void) {
    log_count = 0;
    log_remove_from = NULL;
}

static void log_fire(void *arg, const struct scheduler_fire *fire) {
    (void)arg;
    if (log_count < LOG_MAX) log_fires[log_count] = *fire;
    log_count++;
    if (log_remove_from != NULL) {
        scheduler_remove(log_remove_from, fire->task_id, fire->kind, fire->at_ms);
    }
}

/* A canonical id made from a number, distinct per number. */
static void id_make(unsigned number, char out[UUID_STRING_BYTES]) {
    snprintf(out, UUID_STRING_BYTES, "%08x-0000-7000-8000-%012x", number, number * 7u + 1u);
}

static const char user_text[] = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b";

/* A fake clock pair: wall and monotonic advance together unless a test
 * jumps the wall clock. */
struct fake_time {
    int64_t wall_ms; /* the wall clock */
    int64_t mono_ms; /* the monotonic clock */
};

static struct fake_time now;                  /* the test's clocks */
static struct scheduler_options test_options; /* filled by open_scheduler */

static struct scheduler *open_scheduler(int64_t grace_ms) {
    log_reset();
    now.wall_ms = START_WALL_MS;
    now.mono_ms = 5000;
    test_options = (struct scheduler_options){
        .ops = {.fire = log_fire},
        .grace_ms = grace_ms,
        .wall_ms = now.wall_ms,
        .mono_ms = now.mono_ms,
    };
    struct scheduler *scheduler = NULL;
    if (scheduler_open(&scheduler, &test_options) != 0) return NULL;
    return scheduler;
}

/* Moves both clocks by delta_ms and runs; returns the sleep. */
static int64_t advance(struct scheduler *scheduler, int64_t delta_ms) {
    now.wall_ms += delta_ms;
    now.mono_ms += delta_ms;
    return scheduler_run(scheduler, now.wall_ms, now.mono_ms);
}

/* Moves both clocks to wall time target_ms in steps of at most a second, as
 * the server would, running at each step. */
static void advance_to(struct scheduler *scheduler, int64_t target_ms) {
    while (now.wall_ms < target_ms) {
        int64_t step_ms = target_ms - now.wall_ms;
        advance(scheduler, step_ms < 1000 ? step_ms : 1000);
    }
}

static int put(struct scheduler *scheduler, unsigned task, enum scheduler_kind kind,
               int64_t at_ms) {
    char id[UUID_STRING_BYTES];
    id_make(task, id);
    return scheduler_put(scheduler, id, user_text, kind, at_ms);
}

static void remove_timer(struct scheduler *scheduler, unsigned task, enum scheduler_kind kind,
                         int64_t at_ms) {
    char id[UUID_STRING_BYTES];
    id_make(task, id);
    scheduler_remove(scheduler, id, kind, at_ms);
}

static bool fired_task(int index, unsigned task) {
    char id[UUID_STRING_BYTES];
    id_make(task, id);
    return index < log_count && index < LOG_MAX && strcmp(log_fires[index].task_id, id) == 0;
}

/* ---- basics ------------------------------------------------------------ */

/* A timer fires at its exact millisecond and not one before, with its ids,
 * kind and instant handed back and late_ms 0. */
TEST(scheduler_fires_at_exact_ms) {
    struct scheduler *scheduler = open_scheduler(MINUTE_MS);
    EXPECT(scheduler != NULL);
    int64_t at_ms = START_WALL_MS + 500;
    EXPECT_EQ_INT(put(scheduler, 1, SCHEDULER_REMINDER, at_ms), 0);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->pending, 1);
    EXPECT_EQ_INT(advance(scheduler, 499), 1);
    EXPECT_EQ_INT(log_count, 0);
    EXPECT_EQ_INT(advance(scheduler, 1), SCHEDULER_SLEEP_MAX_MS);
    EXPECT_EQ_INT(log_count, 1);
    EXPECT(fired_task(0, 1));
    EXPECT_STR(log_fires[0].user_id, user_text);
    EXPECT_EQ_INT(log_fires[0].kind, SCHEDULER_REMINDER);
    EXPECT_EQ_INT(log_fires[0].at_ms, at_ms);
    EXPECT_EQ_INT(log_fires[0].now_ms, at_ms);
    EXPECT_EQ_INT(log_fires[0].late_ms, 0);
    EXPECT(!log_fires[0].missed);
    const struct scheduler_stats *stats = scheduler_stats(scheduler);
    EXPECT(stats->pending == 0 && stats->firing == 1 && stats->fired == 1);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    scheduler_close(scheduler);
}

/* Timers put in any order fire in time order within one run. */
TEST(scheduler_fire_order_by_time) {
    struct scheduler *scheduler = open_scheduler(HOUR_MS);
    EXPECT(scheduler != NULL);
    static const int64_t offsets[] = {900, 100, 500, 300, 700};
    for (unsigned index = 0; index < 5; index++) {
        EXPECT_EQ_INT(put(scheduler, index, SCHEDULER_SPAWN, START_WALL_MS + offsets[index]), 0);
    }
    advance(scheduler, 1000);
    EXPECT_EQ_INT(log_count, 5);
    EXPECT(fired_task(0, 1) && fired_task(1, 3) && fired_task(2, 2) && fired_task(3, 4));
    EXPECT(fired_task(4, 0));
    for (int index = 1; index < 5; index++) {
        EXPECT(log_fires[index - 1].at_ms < log_fires[index].at_ms);
    }
    EXPECT_EQ_INT(log_fires[0].late_ms, 900);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    scheduler_close(scheduler);
}

/* The same key put twice (even with another owner or in upper case) is one
 * timer and one firing; another kind or instant is another timer. */
TEST(scheduler_put_twice_fires_once) {
    struct scheduler *scheduler = open_scheduler(HOUR_MS);
    EXPECT(scheduler != NULL);
    int64_t at_ms = START_WALL_MS + 10;
    char id[UUID_STRING_BYTES];
    id_make(0xabcdef, id);
    char upper[UUID_STRING_BYTES];
    for (size_t index = 0; index < sizeof upper; index++) {
        upper[index] = (char)toupper((unsigned char)id[index]);
    }
    EXPECT(strcmp(upper, id) != 0);
    EXPECT_EQ_INT(scheduler_put(scheduler, id, user_text, SCHEDULER_REMINDER, at_ms), 0);
    EXPECT_EQ_INT(scheduler_put(scheduler, id, id, SCHEDULER_REMINDER, at_ms), 0);
    EXPECT_EQ_INT(scheduler_put(scheduler, upper, user_text, SCHEDULER_REMINDER, at_ms), 0);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->pending, 1);
    EXPECT_EQ_INT(scheduler_put(scheduler, id, user_text, SCHEDULER_SPAWN, at_ms), 0);
    EXPECT_EQ_INT(scheduler_put(scheduler, id, user_text, SCHEDULER_REMINDER, at_ms + 1), 0);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->pending, 3);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    advance(scheduler, 100);
    EXPECT_EQ_INT(log_count, 3);
    EXPECT_STR(log_fires[0].task_id, id);
    EXPECT_STR(log_fires[0].user_id, user_text);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->fired, 3);
    scheduler_close(scheduler);
}

/* A removed pending timer never fires; removing an unknown key is harmless. */
TEST(scheduler_remove_pending_never_fires) {
    struct scheduler *scheduler = open_scheduler(HOUR_MS);
    EXPECT(scheduler != NULL);
    EXPECT_EQ_INT(put(scheduler, 1, SCHEDULER_REMINDER, START_WALL_MS + 50), 0);
    EXPECT_EQ_INT(put(scheduler, 2, SCHEDULER_REMINDER, START_WALL_MS + 60), 0);
    remove_timer(scheduler, 1, SCHEDULER_REMINDER, START_WALL_MS + 50);
    remove_timer(scheduler, 1, SCHEDULER_REMINDER, START_WALL_MS + 50);
    remove_timer(scheduler, 3, SCHEDULER_SPAWN, START_WALL_MS + 50);
    scheduler_remove(scheduler, "not-an-id", SCHEDULER_SPAWN, START_WALL_MS + 50);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->pending, 1);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    advance(scheduler, HOUR_MS / 1000); /* 3.6 s, no jump */
    EXPECT_EQ_INT(log_count, 1);
    EXPECT(fired_task(0, 2));
    scheduler_close(scheduler);
}

/* A firing timer stays until removed; once removed it is forgotten, so the
 * same key can be put (a new pending row) and fires again. */
TEST(scheduler_remove_after_firing) {
    struct scheduler *scheduler = open_scheduler(HOUR_MS);
    EXPECT(scheduler != NULL);
    int64_t at_ms = START_WALL_MS + 20;
    EXPECT_EQ_INT(put(scheduler, 7, SCHEDULER_SPAWN, at_ms), 0);
    advance(scheduler, 20);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->firing, 1);
    remove_timer(scheduler, 7, SCHEDULER_SPAWN, at_ms);
    const struct scheduler_stats *stats = scheduler_stats(scheduler);
    EXPECT(stats->firing == 0 && stats->pending == 0 && stats->fired == 1);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    EXPECT_EQ_INT(put(scheduler, 7, SCHEDULER_SPAWN, at_ms), 0);
    EXPECT_EQ_INT(advance(scheduler, 1), SCHEDULER_SLEEP_MAX_MS);
    EXPECT_EQ_INT(log_count, 2);
    EXPECT_EQ_INT(log_fires[1].late_ms, 1);
    scheduler_close(scheduler);
}

/* A put of a firing key does not schedule it again. */
TEST(scheduler_firing_key_not_reput) {
    struct scheduler *scheduler = open_scheduler(HOUR_MS);
    EXPECT(scheduler != NULL);
    int64_t at_ms = START_WALL_MS + 20;
    EXPECT_EQ_INT(put(scheduler, 7, SCHEDULER_REMINDER, at_ms), 0);
    advance(scheduler, 20);
    EXPECT_EQ_INT(log_count, 1);
    EXPECT_EQ_INT(put(scheduler, 7, SCHEDULER_REMINDER, at_ms), 0);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->pending, 0);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->firing, 1);
    EXPECT_EQ_INT(advance(scheduler, 10), SCHEDULER_SLEEP_MAX_MS);
    advance(scheduler, 1000);
    EXPECT_EQ_INT(log_count, 1);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    scheduler_close(scheduler);
}

/* A retried timer fires again exactly `delay` after the run that fired it
 * (with late_ms measured from its instant), a put meanwhile is a no-op, and
 * a retry of a key that is not firing does nothing. */
TEST(scheduler_retry_fires_again_after_delay) {
    struct scheduler *scheduler = open_scheduler(HOUR_MS);
    EXPECT(scheduler != NULL);
    int64_t at_ms = START_WALL_MS + 100;
    char id[UUID_STRING_BYTES];
    id_make(9, id);
    EXPECT_EQ_INT(put(scheduler, 9, SCHEDULER_REMINDER, at_ms), 0);
    scheduler_retry(scheduler, id, SCHEDULER_REMINDER, at_ms, 10); /* pending: no-op */
    EXPECT_EQ_INT(scheduler_stats(scheduler)->retried, 0);
    advance(scheduler, 100);
    EXPECT_EQ_INT(log_count, 1);
    scheduler_retry(scheduler, id, SCHEDULER_REMINDER, at_ms, 3000);
    const struct scheduler_stats *stats = scheduler_stats(scheduler);
    EXPECT(stats->retried == 1 && stats->pending == 1 && stats->firing == 0);
    EXPECT_EQ_INT(put(scheduler, 9, SCHEDULER_REMINDER, at_ms), 0);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->pending, 1);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    EXPECT_EQ_INT(advance(scheduler, 1999), 1000);
    EXPECT_EQ_INT(advance(scheduler, 1000), 1);
    EXPECT_EQ_INT(log_count, 1);
    advance(scheduler, 1);
    EXPECT_EQ_INT(log_count, 2);
    EXPECT_EQ_INT(log_fires[1].late_ms, 3000);
    EXPECT_EQ_INT(log_fires[1].at_ms, at_ms);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->fired, 2);
    remove_timer(scheduler, 9, SCHEDULER_REMINDER, at_ms);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->firing, 0);
    scheduler_close(scheduler);
}

/* Reminders later than grace_ms are missed (exactly grace_ms is not);
 * spawns are never missed however late; lateness_ms_max counts only the
 * ones not missed. */
TEST(scheduler_grace_decides_missed) {
    struct scheduler *scheduler = open_scheduler(MINUTE_MS);
    EXPECT(scheduler != NULL);
    EXPECT_EQ_INT(put(scheduler, 1, SCHEDULER_REMINDER, START_WALL_MS - MINUTE_MS), 0);
    EXPECT_EQ_INT(put(scheduler, 2, SCHEDULER_REMINDER, START_WALL_MS - MINUTE_MS - 1), 0);
    EXPECT_EQ_INT(put(scheduler, 3, SCHEDULER_SPAWN, START_WALL_MS - 10 * HOUR_MS), 0);
    advance(scheduler, 0);
    EXPECT_EQ_INT(log_count, 3);
    EXPECT(fired_task(0, 1) && !log_fires[0].missed && log_fires[0].late_ms == MINUTE_MS);
    EXPECT(fired_task(1, 2) && log_fires[1].missed && log_fires[1].late_ms == MINUTE_MS + 1);
    EXPECT(fired_task(2, 3) && !log_fires[2].missed && log_fires[2].late_ms == 10 * HOUR_MS);
    const struct scheduler_stats *stats = scheduler_stats(scheduler);
    EXPECT_EQ_INT(stats->missed, 1);
    EXPECT_EQ_INT(stats->lateness_ms_max, 10 * HOUR_MS);
    scheduler_close(scheduler);
}

/* At start, timers whose instants passed while the server was down all
 * fire on the first run, each with late_ms = that run's wall - at_ms. */
TEST(scheduler_start_fires_past_timers) {
    struct scheduler *scheduler = open_scheduler(HOUR_MS);
    EXPECT(scheduler != NULL);
    static const int64_t ago_ms[] = {1, 5 * MINUTE_MS, 3 * 24 * HOUR_MS, START_WALL_MS};
    for (unsigned index = 0; index < 4; index++) {
        EXPECT_EQ_INT(put(scheduler, index, SCHEDULER_REMINDER, START_WALL_MS - ago_ms[index]), 0);
    }
    EXPECT_EQ_INT(put(scheduler, 9, SCHEDULER_REMINDER, START_WALL_MS + 1), 0);
    EXPECT_EQ_INT(advance(scheduler, 0), 1);
    EXPECT_EQ_INT(log_count, 4);
    for (unsigned index = 0; index < 4; index++) {
        EXPECT(fired_task((int)index, index));
        EXPECT_EQ_INT(log_fires[index].late_ms, ago_ms[index]);
        EXPECT_EQ_INT(log_fires[index].now_ms, START_WALL_MS);
        EXPECT(log_fires[index].missed == (ago_ms[index] > HOUR_MS));
    }
    EXPECT_EQ_INT(scheduler_stats(scheduler)->missed, 2);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    scheduler_close(scheduler);
}

/* ---- clock jumps ------------------------------------------------------- */

/* Wall +1 h while monotonic +1 s is a forward jump: due timers fire with
 * their real lateness, later ones wait, the jump is counted. */
TEST(scheduler_forward_jump) {
    struct scheduler *scheduler = open_scheduler(10 * MINUTE_MS);
    EXPECT(scheduler != NULL);
    EXPECT_EQ_INT(put(scheduler, 1, SCHEDULER_REMINDER, START_WALL_MS + 30 * MINUTE_MS), 0);
    EXPECT_EQ_INT(put(scheduler, 2, SCHEDULER_REMINDER, START_WALL_MS + 55 * MINUTE_MS), 0);
    EXPECT_EQ_INT(put(scheduler, 3, SCHEDULER_REMINDER, START_WALL_MS + 2 * HOUR_MS), 0);
    advance(scheduler, 500);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->jumps_forward, 0);
    now.wall_ms += HOUR_MS;
    now.mono_ms += 1000;
    EXPECT_EQ_INT(scheduler_run(scheduler, now.wall_ms, now.mono_ms), SCHEDULER_SLEEP_MAX_MS);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->jumps_forward, 1);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->jumps_backward, 0);
    EXPECT_EQ_INT(log_count, 2);
    EXPECT(fired_task(0, 1) && log_fires[0].missed);
    EXPECT_EQ_INT(log_fires[0].late_ms, now.wall_ms - (START_WALL_MS + 30 * MINUTE_MS));
    EXPECT(fired_task(1, 2) && !log_fires[1].missed);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->pending, 1);
    advance(scheduler, 1000);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->jumps_forward, 1);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    scheduler_close(scheduler);
}

/* Wall -1 h is a backward jump: nothing fires early, nothing is lost. A
 * timer at old wall + 5 min fires when the wall reaches it again; a timer
 * put after the jump at new wall + 1 min fires then, not at once; a firing
 * timer stays firing. */
TEST(scheduler_backward_jump) {
    struct scheduler *scheduler = open_scheduler(HOUR_MS);
    EXPECT(scheduler != NULL);
    log_remove_from = NULL;
    int64_t old_at_ms = START_WALL_MS + 5 * MINUTE_MS;
    EXPECT_EQ_INT(put(scheduler, 1, SCHEDULER_REMINDER, old_at_ms), 0);
    EXPECT_EQ_INT(put(scheduler, 2, SCHEDULER_SPAWN, START_WALL_MS + 100), 0);
    advance(scheduler, 100);
    EXPECT_EQ_INT(log_count, 1); /* timer 2 is firing now */
    now.wall_ms -= HOUR_MS;
    now.mono_ms += 1000;
    EXPECT_EQ_INT(scheduler_run(scheduler, now.wall_ms, now.mono_ms), SCHEDULER_SLEEP_MAX_MS);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->jumps_backward, 1);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->firing, 1);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    int64_t new_at_ms = now.wall_ms + MINUTE_MS;
    EXPECT_EQ_INT(put(scheduler, 3, SCHEDULER_REMINDER, new_at_ms), 0);
    EXPECT_EQ_INT(advance(scheduler, 1), SCHEDULER_SLEEP_MAX_MS);
    EXPECT_EQ_INT(log_count, 1);
    advance_to(scheduler, new_at_ms - 1);
    EXPECT_EQ_INT(log_count, 1);
    EXPECT_EQ_INT(advance(scheduler, 1), SCHEDULER_SLEEP_MAX_MS);
    EXPECT_EQ_INT(log_count, 2);
    EXPECT(fired_task(1, 3) && log_fires[1].late_ms == 0);
    advance_to(scheduler, old_at_ms - 1000);
    EXPECT_EQ_INT(log_count, 2);
    EXPECT_EQ_INT(advance(scheduler, old_at_ms - 1 - now.wall_ms), 1);
    EXPECT_EQ_INT(log_count, 2);
    advance(scheduler, 1);
    EXPECT_EQ_INT(log_count, 3);
    EXPECT(fired_task(2, 1) && log_fires[2].late_ms == 0 && log_fires[2].now_ms == old_at_ms);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->jumps_backward, 1);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    scheduler_close(scheduler);
}

/* A wall clock drifting from the monotonic one by less than
 * SCHEDULER_JUMP_MS is not a jump. */
TEST(scheduler_small_skew_is_not_a_jump) {
    struct scheduler *scheduler = open_scheduler(HOUR_MS);
    EXPECT(scheduler != NULL);
    now.wall_ms += 1000 + SCHEDULER_JUMP_MS;
    now.mono_ms += 1000;
    scheduler_run(scheduler, now.wall_ms, now.mono_ms);
    now.wall_ms += 1000 - SCHEDULER_JUMP_MS;
    now.mono_ms += 1000;
    scheduler_run(scheduler, now.wall_ms, now.mono_ms);
    const struct scheduler_stats *stats = scheduler_stats(scheduler);
    EXPECT(stats->jumps_forward == 0 && stats->jumps_backward == 0);
    now.mono_ms += 1000;
    now.wall_ms += 1000 + SCHEDULER_JUMP_MS + 1;
    scheduler_run(scheduler, now.wall_ms, now.mono_ms);
    EXPECT_EQ_INT(stats->jumps_forward, 1);
    scheduler_close(scheduler);
}

/* ---- sleep, limits, bad input ------------------------------------------ */

/* The sleep is the time to the next timer, capped at SCHEDULER_SLEEP_MAX_MS,
 * 0 when something is already due, the cap when nothing waits. */
TEST(scheduler_sleep_bounded_and_correct) {
    struct scheduler *scheduler = open_scheduler(HOUR_MS);
    EXPECT(scheduler != NULL);
    EXPECT_EQ_INT(advance(scheduler, 0), SCHEDULER_SLEEP_MAX_MS);
    EXPECT_EQ_INT(put(scheduler, 1, SCHEDULER_REMINDER, now.wall_ms + 5000), 0);
    EXPECT_EQ_INT(advance(scheduler, 0), SCHEDULER_SLEEP_MAX_MS);
    EXPECT_EQ_INT(advance(scheduler, 4000), 1000);
    EXPECT_EQ_INT(advance(scheduler, 1), 999);
    EXPECT_EQ_INT(put(scheduler, 2, SCHEDULER_REMINDER, now.wall_ms + 300), 0);
    EXPECT_EQ_INT(advance(scheduler, 0), 300);
    EXPECT_EQ_INT(put(scheduler, 3, SCHEDULER_REMINDER, now.wall_ms - 10), 0);
    EXPECT_EQ_INT(put(scheduler, 4, SCHEDULER_REMINDER, now.wall_ms), 0);
    EXPECT_EQ_INT(advance(scheduler, 0), 300);
    EXPECT_EQ_INT(log_count, 2);
    EXPECT_EQ_INT(put(scheduler, 5, SCHEDULER_REMINDER, now.wall_ms + 1), 0);
    EXPECT_EQ_INT(advance(scheduler, 0), 1);
    for (int step = 0; step < 20; step++) {
        int64_t sleep_ms = advance(scheduler, 997);
        EXPECT(sleep_ms >= 0 && sleep_ms <= SCHEDULER_SLEEP_MAX_MS);
    }
    EXPECT_EQ_INT(log_count, 5);
    scheduler_close(scheduler);
}

/* Puts beyond timers_max are refused with ERR_LIMIT (an existing key is
 * still a no-op); bad ids, kinds and instants with ERR_INVAL. */
TEST(scheduler_put_limit_and_bad_input) {
    log_reset();
    struct scheduler_options options = {
        .ops = {.fire = log_fire}, .grace_ms = 0, .wall_ms = START_WALL_MS, .timers_max = 3};
    struct scheduler *scheduler = NULL;
    EXPECT_EQ_INT(scheduler_open(&scheduler, &options), 0);
    for (unsigned index = 0; index < 3; index++) {
        EXPECT_EQ_INT(put(scheduler, index, SCHEDULER_SPAWN, START_WALL_MS + 1), 0);
    }
    EXPECT_EQ_INT(put(scheduler, 3, SCHEDULER_SPAWN, START_WALL_MS + 1), ERR_LIMIT);
    EXPECT_EQ_INT(put(scheduler, 0, SCHEDULER_SPAWN, START_WALL_MS + 1), 0);
    remove_timer(scheduler, 0, SCHEDULER_SPAWN, START_WALL_MS + 1);
    EXPECT_EQ_INT(put(scheduler, 3, SCHEDULER_SPAWN, START_WALL_MS + 1), 0);
    char id[UUID_STRING_BYTES];
    id_make(5, id);
    EXPECT_EQ_INT(scheduler_put(scheduler, "x", user_text, SCHEDULER_SPAWN, 1), ERR_INVAL);
    EXPECT_EQ_INT(scheduler_put(scheduler, NULL, user_text, SCHEDULER_SPAWN, 1), ERR_INVAL);
    const char *braced = "{0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2}";
    const int64_t too_late_ms = SCHEDULER_AT_MS_MAX + 1;
    EXPECT_EQ_INT(scheduler_put(scheduler, id, braced, SCHEDULER_SPAWN, 1), ERR_INVAL);
    EXPECT_EQ_INT(scheduler_put(scheduler, id, user_text, (enum scheduler_kind)7, 1), ERR_INVAL);
    EXPECT_EQ_INT(scheduler_put(scheduler, id, user_text, SCHEDULER_SPAWN, -1), ERR_INVAL);
    EXPECT_EQ_INT(scheduler_put(scheduler, id, user_text, SCHEDULER_SPAWN, too_late_ms), ERR_INVAL);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->pending, 3);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    scheduler_close(scheduler);
    struct scheduler_options bad = options;
    bad.ops.fire = NULL;
    EXPECT_EQ_INT(scheduler_open(&scheduler, &bad), ERR_INVAL);
    EXPECT(scheduler == NULL);
}

/* ---- changes from inside the callback ---------------------------------- */

static struct scheduler *reentry_scheduler; /* the scheduler the callback acts on */

/* Timer 1 removes timer 2 (due in the same run), retries itself with no
 * delay and puts timer 4 in the past; the others are just logged. */
static void reentry_fire(void *arg, const struct scheduler_fire *fire) {
    log_fire(arg, fire);
    char id[UUID_STRING_BYTES];
    id_make(1, id);
    if (strcmp(fire->task_id, id) != 0 || log_count > 1) return;
    remove_timer(reentry_scheduler, 2, SCHEDULER_REMINDER, START_WALL_MS + 20);
    scheduler_retry(reentry_scheduler, id, fire->kind, fire->at_ms, 0);
    EXPECT_EQ_INT(put(reentry_scheduler, 4, SCHEDULER_REMINDER, START_WALL_MS - 1), 0);
}

/* A callback may remove a timer due in the same run (it never fires),
 * retry itself with no delay (it fires again at the run's time, after the
 * timers already due then, and cannot loop) and put new ones (one in the
 * past fires at the next run). */
TEST(scheduler_callback_reentry) {
    struct scheduler *scheduler = open_scheduler(HOUR_MS);
    EXPECT(scheduler != NULL);
    reentry_scheduler = scheduler;
    test_options.ops.fire = reentry_fire;
    scheduler_close(scheduler);
    EXPECT_EQ_INT(scheduler_open(&scheduler, &test_options), 0);
    reentry_scheduler = scheduler;
    EXPECT_EQ_INT(put(scheduler, 1, SCHEDULER_REMINDER, START_WALL_MS + 10), 0);
    EXPECT_EQ_INT(put(scheduler, 2, SCHEDULER_REMINDER, START_WALL_MS + 20), 0);
    EXPECT_EQ_INT(put(scheduler, 3, SCHEDULER_REMINDER, START_WALL_MS + 30), 0);
    EXPECT_EQ_INT(advance(scheduler, 30), 0);
    EXPECT_EQ_INT(log_count, 3);
    EXPECT(fired_task(0, 1) && fired_task(1, 3) && fired_task(2, 1));
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    advance(scheduler, 1);
    EXPECT_EQ_INT(log_count, 4);
    EXPECT(fired_task(3, 4));
    EXPECT_EQ_INT(scheduler_stats(scheduler)->firing, 3);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    scheduler_close(scheduler);
}

/* ---- random operations against a reference model ---------------------- */

enum { MODEL_TASKS = 16, MODEL_INSTANTS = 64, MODEL_KEYS = MODEL_TASKS * 2 * MODEL_INSTANTS };

/* What the reference expects of one key. */
struct model_timer {
    int state;      /* 0 absent, 1 waiting, 2 firing */
    int64_t due_ms; /* when it waits for (at_ms, or the retry time) */
};

static struct model_timer model[MODEL_KEYS]; /* indexed by model_key */
static int64_t model_wall_ms;                /* the wall time of the run under way */
static int model_wrong;                      /* firings the model did not expect */
static int64_t model_last_due_ms;            /* due time of the run's previous firing */
static int64_t model_previous_wall_ms;       /* the wall time of the run before */

static int64_t model_at_ms(int key) {
    return START_WALL_MS - 30000 + (int64_t)(key % MODEL_INSTANTS) * 1500;
}

static enum scheduler_kind model_kind(int key) {
    return (enum scheduler_kind)(key / MODEL_INSTANTS % 2);
}

static unsigned model_task(int key) {
    return (unsigned)(key / (2 * MODEL_INSTANTS));
}

static int model_key_of(const struct scheduler_fire *fire) {
    for (int key = 0; key < MODEL_KEYS; key++) {
        char id[UUID_STRING_BYTES];
        if (model_kind(key) != fire->kind || model_at_ms(key) != fire->at_ms) continue;
        id_make(model_task(key), id);
        if (strcmp(id, fire->task_id) == 0) return key;
    }
    return -1;
}

/* Whether a firing of `key` in the run under way is in order: keys due
 * after the previous run's time fire in due order, after every key that was
 * already due then (those fire first, in the order they were scheduled). */
static bool model_in_order(int key) {
    if (model[key].due_ms <= model_previous_wall_ms) return model_last_due_ms == INT64_MIN;
    if (model[key].due_ms < model_last_due_ms) return false;
    model_last_due_ms = model[key].due_ms;
    return true;
}

/* Each firing must be a waiting key due by now, in order, with the right
 * lateness (0 for a retry that comes due before its instant, after the clock
 * went back); it becomes firing in the model. */
static void model_fire(void *arg, const struct scheduler_fire *fire) {
    (void)arg;
    int key = model_key_of(fire);
    if (key < 0 || model[key].state != 1 || model[key].due_ms > model_wall_ms ||
        !model_in_order(key) || fire->now_ms != model_wall_ms ||
        fire->late_ms != (model_wall_ms > fire->at_ms ? model_wall_ms - fire->at_ms : 0)) {
        model_wrong++;
        return;
    }
    model[key].state = 2;
}

/* splitmix64: successive outputs are independent in their low bits too (a
 * bare xorshift's are not, which would tie the operation to the key). */
static uint64_t model_random(uint64_t *state) {
    uint64_t value = (*state += 0x9e3779b97f4a7c15ULL);
    value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
    value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
    return value ^ (value >> 31);
}

/* Moves the clocks (small steps, forward jumps, backward jumps beyond
 * SCHEDULER_JUMP_MS) and runs; afterwards nothing waiting is due. */
static int model_run(struct scheduler *scheduler, uint64_t *seed) {
    uint64_t choice = model_random(seed) % 10;
    int64_t mono_step_ms = (int64_t)(model_random(seed) % 1000);
    int64_t wall_step_ms = mono_step_ms;
    if (choice == 0) wall_step_ms += 3000 + (int64_t)(model_random(seed) % 60000);
    if (choice == 1 || now.wall_ms > START_WALL_MS + 90000) {
        /* Back to somewhere in the instants' range, by more than a jump. */
        int64_t target_ms = START_WALL_MS - 40000 + (int64_t)(model_random(seed) % 80000);
        wall_step_ms = target_ms - now.wall_ms;
        if (wall_step_ms - mono_step_ms >= -SCHEDULER_JUMP_MS) {
            wall_step_ms = mono_step_ms - SCHEDULER_JUMP_MS - 1000;
        }
    }
    model_previous_wall_ms = now.wall_ms;
    now.wall_ms += wall_step_ms;
    now.mono_ms += mono_step_ms;
    model_wall_ms = now.wall_ms;
    model_last_due_ms = INT64_MIN;
    scheduler_run(scheduler, now.wall_ms, now.mono_ms);
    int late = 0;
    for (int key = 0; key < MODEL_KEYS; key++) {
        if (model[key].state == 1 && model[key].due_ms <= now.wall_ms) late++;
    }
    return late;
}

/* 100,000 random puts, removes, retries and runs (with forward and backward
 * clock jumps) agree with a reference model: every firing is a waiting key
 * already due, in due order, with the right lateness; after each run nothing
 * due is left waiting; the counters match; the scheduler verifies. */
TEST(scheduler_random_operations_match_model) {
    struct scheduler *scheduler = open_scheduler(HOUR_MS);
    EXPECT(scheduler != NULL);
    test_options.ops.fire = model_fire;
    scheduler_close(scheduler);
    EXPECT_EQ_INT(scheduler_open(&scheduler, &test_options), 0);
    memset(model, 0, sizeof model);
    model_wrong = 0;
    model_wall_ms = now.wall_ms;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    int problems = 0;
    for (int step = 0; step < 100000; step++) {
        int key = (int)(model_random(&seed) % MODEL_KEYS);
        char id[UUID_STRING_BYTES];
        id_make(model_task(key), id);
        uint64_t choice = model_random(&seed) % 8;
        if (choice < 3) {
            int result = scheduler_put(scheduler, id, user_text, model_kind(key), model_at_ms(key));
            if (result != 0) problems++;
            if (model[key].state == 0) model[key] = (struct model_timer){1, model_at_ms(key)};
        } else if (choice < 5) {
            scheduler_remove(scheduler, id, model_kind(key), model_at_ms(key));
            model[key].state = 0;
        } else if (choice < 6) {
            int64_t delay_ms = (int64_t)(model_random(&seed) % 5000);
            scheduler_retry(scheduler, id, model_kind(key), model_at_ms(key), delay_ms);
            if (model[key].state == 2) model[key] = (struct model_timer){1, now.wall_ms + delay_ms};
        } else {
            problems += model_run(scheduler, &seed);
        }
        if (step % 64 == 0 && scheduler_verify(scheduler) != 0) problems++;
    }
    uint64_t waiting = 0;
    uint64_t firing = 0;
    for (int key = 0; key < MODEL_KEYS; key++) {
        waiting += model[key].state == 1;
        firing += model[key].state == 2;
    }
    const struct scheduler_stats *stats = scheduler_stats(scheduler);
    EXPECT_EQ_INT(model_wrong, 0);
    EXPECT_EQ_INT(problems, 0);
    EXPECT(stats->pending == waiting && stats->firing == firing);
    EXPECT(stats->jumps_forward > 1000 && stats->jumps_backward > 1000);
    EXPECT(stats->fired > 5000 && stats->retried > 1000 && stats->missed == 0);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    scheduler_close(scheduler);
}

/* ---- a million timers -------------------------------------------------- */

static int64_t million_last_at_ms; /* instant of the previous firing */
static int million_out_of_order;   /* firings earlier than the previous one */
static long million_fired;         /* firings seen */
static struct scheduler *million_scheduler;

static void million_fire(void *arg, const struct scheduler_fire *fire) {
    (void)arg;
    if (fire->at_ms < million_last_at_ms) million_out_of_order++;
    million_last_at_ms = fire->at_ms;
    million_fired++;
    scheduler_remove(million_scheduler, fire->task_id, fire->kind, fire->at_ms);
}

static int64_t monotonic_ns(void) {
    return clock_system()->monotonic_ns(clock_system());
}

/* A million timers spread over 30 days: all put, half removed, the rest fire
 * in time order and are removed from the callback; the index and the wheel
 * agree at every checkpoint, and nothing is left. Bytes per timer and the
 * cost per put and remove are printed, not judged. */
TEST(scheduler_million_timers) {
    enum { TIMERS = 1000000 };
    const int64_t span_ms = 30 * 24 * HOUR_MS;
    struct scheduler *scheduler = open_scheduler(HOUR_MS);
    EXPECT(scheduler != NULL);
    test_options.ops.fire = million_fire;
    scheduler_close(scheduler);
    EXPECT_EQ_INT(scheduler_open(&scheduler, &test_options), 0);
    million_scheduler = scheduler;
    million_last_at_ms = 0;
    million_out_of_order = 0;
    million_fired = 0;
    int64_t start_ns = monotonic_ns();
    int failures = 0;
    for (unsigned index = 0; index < TIMERS; index++) {
        int64_t at_ms = START_WALL_MS + 1 + (int64_t)((index * 2654435761u) % (uint64_t)span_ms);
        if (put(scheduler, index, (enum scheduler_kind)(index & 1), at_ms) != 0) failures++;
    }
    double put_ns = (double)(monotonic_ns() - start_ns) / TIMERS;
    EXPECT_EQ_INT(failures, 0);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->pending, TIMERS);
    double bytes_per_timer = (double)scheduler_bytes(scheduler) / TIMERS;
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    start_ns = monotonic_ns();
    for (unsigned index = 0; index < TIMERS; index += 2) {
        int64_t at_ms = START_WALL_MS + 1 + (int64_t)((index * 2654435761u) % (uint64_t)span_ms);
        remove_timer(scheduler, index, SCHEDULER_REMINDER, at_ms);
    }
    double remove_ns = (double)(monotonic_ns() - start_ns) / (TIMERS / 2);
    EXPECT_EQ_INT(scheduler_stats(scheduler)->pending, TIMERS / 2);
    EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    fprintf(stderr,
            "    scheduler: 1M timers, %.1f bytes/timer (+ allocator overhead), put %.0f ns/op, "
            "remove %.0f ns/op\n",
            bytes_per_timer, put_ns, remove_ns);
    for (int day = 1; day <= 30; day++) {
        now.wall_ms = START_WALL_MS + day * 24 * HOUR_MS;
        now.mono_ms += 1000; /* a forward jump of a day each time: just runs */
        scheduler_run(scheduler, now.wall_ms, now.mono_ms);
        if (day % 10 == 0) EXPECT_EQ_INT(scheduler_verify(scheduler), 0);
    }
    EXPECT_EQ_INT(million_fired, TIMERS / 2);
    EXPECT_EQ_INT(million_out_of_order, 0);
    const struct scheduler_stats *stats = scheduler_stats(scheduler);
    EXPECT(stats->pending == 0 && stats->firing == 0 && stats->fired == TIMERS / 2);
    EXPECT_EQ_INT(stats->jumps_forward, 30);
    scheduler_close(scheduler);
}

/* ---- allocation failures ---------------------------------------------- */

/* Opens, puts 200 timers (growing the index twice), fires some and puts
 * again; returns the first error or 0. The scheduler stays consistent. */
static int nomem_scenario(int *verify_result) {
    struct scheduler *scheduler = NULL;
    log_reset();
    struct scheduler_options options = {.ops = {.fire = log_fire}, .wall_ms = START_WALL_MS};
    int result = scheduler_open(&scheduler, &options);
    *verify_result = 0;
    if (result < 0) return result;
    for (unsigned index = 0; index < 200 && result == 0; index++) {
        result = put(scheduler, index, SCHEDULER_SPAWN, START_WALL_MS + index);
    }
    if (result == 0) scheduler_run(scheduler, START_WALL_MS + 100, 100);
    for (unsigned index = 200; index < 260 && result == 0; index++) {
        result = put(scheduler, index, SCHEDULER_REMINDER, START_WALL_MS + index);
    }
    *verify_result = scheduler_verify(scheduler);
    scheduler_close(scheduler);
    return result;
}

/* Every allocation failing in turn makes the call report ERR_NOMEM, leaves
 * the scheduler consistent, and never crashes or leaks (under ASan). */
TEST(scheduler_allocation_failures) {
    int verify_result = 0;
    int budget = 0;
    for (; budget < 1000; budget++) {
        mem_fail_after(budget);
        int result = nomem_scenario(&verify_result);
        mem_fail_after(-1);
        EXPECT_EQ_INT(verify_result, 0);
        if (result == 0) break;
        EXPECT_EQ_INT(result, ERR_NOMEM);
    }
    EXPECT(budget > 200 && budget < 1000);
}
