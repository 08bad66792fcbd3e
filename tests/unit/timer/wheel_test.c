/* wheel_test.c - the timer wheel: basics, past due times, changes made from
 * callbacks, a 100k-operation property test against a naive reference, a
 * million entries, the overflow list and jumps of years. wheel_validate()
 * runs after every operation (and inside callbacks in the property test). */
#include "../../../src/base/clock.h"
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "../../../src/timer/wheel.h"
#include "../test.h"

#include <stdio.h>

/* A record embedding an entry, as the reminder service will have. */
struct timer {
    struct wheel_entry entry; /* the wheel's part */
    int id;                   /* index in the test's array */
};

static struct timer *timer_of(struct wheel_entry *entry) {
    return (struct timer *)((char *)entry - offsetof(struct timer, entry));
}

/* ---- firing log shared by the simple tests ---------------------------- */

#define LOG_MAX 64

static int log_ids[LOG_MAX];        /* ids in firing order */
static int64_t log_now_ms[LOG_MAX]; /* the run's now for each firing */
static int log_count;               /* firings recorded */

static void log_reset(void) {
    log_count = 0;
}

static void log_fire(struct wheel *wheel, struct wheel_entry *entry, int64_t now_ms) {
    (void)wheel;
    if (log_count < LOG_MAX) {
        log_ids[log_count] = timer_of(entry)->id;
        log_now_ms[log_count] = now_ms;
    }
    log_count++;
}

static void timers_init(struct timer *timers, int count, wheel_fire_fn fire) {
    for (int index = 0; index < count; index++) {
        wheel_entry_init(&timers[index].entry, fire);
        timers[index].id = index;
    }
}

/* Entries fire once, at the first run at or after their due time, ties in
 * scheduling order; cancelled ones never; next_due is exact. */
TEST(wheel_schedule_cancel_fire) {
    static struct wheel wheel;
    struct timer timers[4];
    timers_init(timers, 4, log_fire);
    log_reset();
    wheel_init(&wheel, 0);
    EXPECT_EQ_INT(wheel_next_due(&wheel), WHEEL_NEVER);
    wheel_schedule(&wheel, &timers[0].entry, 10);
    wheel_schedule(&wheel, &timers[1].entry, 5);
    wheel_schedule(&wheel, &timers[2].entry, 5);
    wheel_schedule(&wheel, &timers[3].entry, 7000);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
    EXPECT_EQ_INT(wheel_count(&wheel), 4);
    EXPECT_EQ_INT(wheel_next_due(&wheel), 5);
    EXPECT_EQ_INT(wheel_run(&wheel, 4), 0);
    EXPECT_EQ_INT(wheel_run(&wheel, 5), 2);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
    EXPECT(log_count == 2 && log_ids[0] == 1 && log_ids[1] == 2 && log_now_ms[1] == 5);
    EXPECT(!wheel_entry_scheduled(&timers[1].entry));
    EXPECT_EQ_INT(wheel_next_due(&wheel), 10);
    wheel_cancel(&wheel, &timers[0].entry);
    wheel_cancel(&wheel, &timers[0].entry);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
    EXPECT_EQ_INT(wheel_next_due(&wheel), 7000);
    EXPECT_EQ_INT(wheel_run(&wheel, 6999), 0);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
    EXPECT_EQ_INT(wheel_run(&wheel, 7003), 1);
    EXPECT(log_count == 3 && log_ids[2] == 3 && log_now_ms[2] == 7003);
    EXPECT_EQ_INT(wheel_count(&wheel), 0);
    EXPECT_EQ_INT(wheel_next_due(&wheel), WHEEL_NEVER);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
}

/* A due time at or before the wheel's time fires at the next run, in
 * scheduling order, but not in a run whose clock went back. */
TEST(wheel_past_due_fires_next_run) {
    static struct wheel wheel;
    struct timer timers[4];
    timers_init(timers, 4, log_fire);
    log_reset();
    wheel_init(&wheel, 1000);
    wheel_schedule(&wheel, &timers[0].entry, 10);
    wheel_schedule(&wheel, &timers[1].entry, -5);
    wheel_schedule(&wheel, &timers[2].entry, 1000);
    wheel_schedule(&wheel, &timers[3].entry, 1001);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
    EXPECT_EQ_INT(wheel_next_due(&wheel), 1000);
    EXPECT_EQ_INT(wheel_run(&wheel, 999), 0);
    EXPECT_EQ_INT(wheel_count(&wheel), 4);
    EXPECT_EQ_INT(wheel_run(&wheel, 1000), 3);
    EXPECT(log_ids[0] == 0 && log_ids[1] == 1 && log_ids[2] == 2);
    EXPECT_EQ_INT(wheel_next_due(&wheel), 1001);
    EXPECT_EQ_INT(wheel_run(&wheel, 5000), 1);
    wheel_schedule(&wheel, &timers[0].entry, 4000);
    EXPECT_EQ_INT(wheel_run(&wheel, 10), 0);
    EXPECT_EQ_INT(wheel.now_ms, 5000);
    EXPECT_EQ_INT(wheel_run(&wheel, 5000), 1);
    EXPECT(log_count == 5 && log_ids[4] == 0 && log_now_ms[4] == 5000);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
}

/* ---- changes from inside callbacks ------------------------------------ */

static struct timer callback_timers[4]; /* timers the callbacks below act on */
static int64_t callback_reschedule_ms;  /* offset from the wheel's time, or 0 */
static int callback_reschedules_left;   /* how many times to reschedule */

/* Cancels itself (already idle: a no-op) and timers 1 and 2. */
static void cancel_fire(struct wheel *wheel, struct wheel_entry *entry, int64_t now_ms) {
    log_fire(wheel, entry, now_ms);
    wheel_cancel(wheel, entry);
    wheel_cancel(wheel, &callback_timers[1].entry);
    wheel_cancel(wheel, &callback_timers[2].entry);
}

/* Entries due at the same ms or later may be cancelled by an earlier
 * callback of the same run, and cancelling oneself is harmless. */
TEST(wheel_cancel_from_callback) {
    static struct wheel wheel;
    timers_init(callback_timers, 4, log_fire);
    wheel_entry_init(&callback_timers[0].entry, cancel_fire);
    log_reset();
    wheel_init(&wheel, 0);
    wheel_schedule(&wheel, &callback_timers[0].entry, 100);
    wheel_schedule(&wheel, &callback_timers[1].entry, 100);
    wheel_schedule(&wheel, &callback_timers[2].entry, 150);
    wheel_schedule(&wheel, &callback_timers[3].entry, 100);
    EXPECT_EQ_INT(wheel_run(&wheel, 1000), 2);
    EXPECT(log_count == 2 && log_ids[0] == 0 && log_ids[1] == 3);
    EXPECT_EQ_INT(wheel_count(&wheel), 0);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
}

/* Reschedules itself callback_reschedule_ms after the wheel's time. */
static void reschedule_fire(struct wheel *wheel, struct wheel_entry *entry, int64_t now_ms) {
    log_fire(wheel, entry, now_ms);
    if (wheel_validate(wheel) != 0)
        log_count = LOG_MAX + 1000;
    if (callback_reschedules_left-- > 0) {
        wheel_schedule(wheel, entry, wheel->now_ms + callback_reschedule_ms);
    }
}

/* A callback rescheduling itself into the future fires again in the same run
 * while due; into the past (or now) it waits for the next run. */
TEST(wheel_reschedule_from_callback) {
    static struct wheel wheel;
    timers_init(callback_timers, 1, reschedule_fire);
    log_reset();
    wheel_init(&wheel, 0);
    callback_reschedule_ms = 300;
    callback_reschedules_left = 3;
    wheel_schedule(&wheel, &callback_timers[0].entry, 100);
    EXPECT_EQ_INT(wheel_run(&wheel, 800), 3);
    EXPECT_EQ_INT(wheel.now_ms, 800);
    EXPECT_EQ_INT(wheel_next_due(&wheel), 1000);
    EXPECT_EQ_INT(wheel_run(&wheel, 5000), 1);
    EXPECT_EQ_INT(log_count, 4);
    callback_reschedule_ms = -10;
    callback_reschedules_left = 5;
    wheel_schedule(&wheel, &callback_timers[0].entry, 6000);
    EXPECT_EQ_INT(wheel_run(&wheel, 7000), 1);
    EXPECT_EQ_INT(wheel_next_due(&wheel), 7000);
    EXPECT_EQ_INT(wheel_run(&wheel, 7000), 1);
    EXPECT_EQ_INT(wheel_run(&wheel, 7001), 1);
    EXPECT_EQ_INT(log_count, 7);
    EXPECT_EQ_INT(wheel_count(&wheel), 1);
    wheel_cancel(&wheel, &callback_timers[0].entry);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
}

/* ---- property test against a naive reference --------------------------- */

#define PROP_IDS 512
#define PROP_OPERATIONS 100000
#define PROP_FIRED_MAX (PROP_IDS * 4)

/* What the reference knows of one id: at most one pending firing. */
struct reference_timer {
    bool scheduled;        /* pending */
    int64_t key_ms;        /* max(due, the wheel's time when scheduled) */
    uint64_t sequence;     /* scheduling order */
    uint64_t deferred_run; /* run in which it may not fire (scheduled already due
                              from a callback of that run), or 0 */
};

/* The whole property-test state, so callbacks reach it through one pointer. */
struct prop {
    struct wheel wheel;                         /* the wheel under test */
    struct timer timers[PROP_IDS];              /* its entries */
    struct reference_timer model[PROP_IDS];     /* the reference */
    int64_t model_now_ms;                       /* the reference's time */
    uint64_t model_sequence;                    /* last scheduling number */
    uint64_t model_run;                         /* current or last run number */
    uint64_t wheel_fire_number;                 /* firings seen by wheel callbacks */
    uint64_t model_fire_number;                 /* firings made by the reference */
    int wheel_fired_ids[PROP_FIRED_MAX];        /* this run's firings by the wheel */
    int64_t wheel_fired_now_ms[PROP_FIRED_MAX]; /* and the now each got */
    int wheel_fired;                            /* count of the two arrays */
    int model_fired_ids[PROP_FIRED_MAX];        /* this run's firings by the reference */
    int model_fired;                            /* count of that array */
    int callback_invalid;                       /* validate failures inside callbacks */
};

static struct prop *prop_state;

static uint64_t prng_next(uint64_t *state) {
    uint64_t value = (*state += 0x9e3779b97f4a7c15ull);
    value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ull;
    value = (value ^ (value >> 27)) * 0x94d049bb133111ebull;
    return value ^ (value >> 31);
}

/* What a callback does, decided from the firing number alone so the wheel's
 * callbacks and the reference take the same action when their orders agree. */
struct prop_action {
    int kind;       /* 0 nothing, 1 reschedule self, 2 cancel target, 3 schedule target */
    int target;     /* id acted on */
    int64_t due_ms; /* for 1 and 3 */
};

static struct prop_action prop_decide(uint64_t fire_number, int id, int64_t now_ms) {
    uint64_t state = fire_number * 7919 + 17;
    uint64_t random = prng_next(&state);
    struct prop_action action = {(int)(random % 4), (int)((random >> 8) % PROP_IDS), 0};
    if (action.kind == 1)
        action.target = id;
    action.due_ms = now_ms - 50 + (int64_t)((random >> 20) % 300);
    return action;
}

static void model_schedule(struct prop *prop, int id, int64_t due_ms, int64_t current_ms,
                           bool in_run) {
    struct reference_timer *model = &prop->model[id];
    model->scheduled = true;
    model->key_ms = due_ms > current_ms ? due_ms : current_ms;
    model->sequence = ++prop->model_sequence;
    model->deferred_run = in_run && due_ms <= current_ms ? prop->model_run : 0;
}

static void prop_fire(struct wheel *wheel, struct wheel_entry *entry, int64_t now_ms) {
    struct prop *prop = prop_state;
    int id = timer_of(entry)->id;
    if (wheel_validate(wheel) != 0)
        prop->callback_invalid++;
    if (prop->wheel_fired < PROP_FIRED_MAX) {
        prop->wheel_fired_ids[prop->wheel_fired] = id;
        prop->wheel_fired_now_ms[prop->wheel_fired] = now_ms;
    }
    prop->wheel_fired++;
    struct prop_action action = prop_decide(++prop->wheel_fire_number, id, now_ms);
    struct wheel_entry *target = &prop->timers[action.target].entry;
    if (action.kind == 1 || action.kind == 3)
        wheel_schedule(wheel, target, action.due_ms);
    if (action.kind == 2)
        wheel_cancel(wheel, target);
}

/* The reference run: repeatedly the pending firing with the smallest
 * (key, sequence) that is due and not deferred. */
static void model_run(struct prop *prop, int64_t now_ms) {
    if (now_ms < prop->model_now_ms)
        return;
    prop->model_run++;
    int64_t start_ms = prop->model_now_ms;
    for (;;) {
        int best = -1;
        for (int id = 0; id < PROP_IDS; id++) {
            const struct reference_timer *model = &prop->model[id];
            if (!model->scheduled || model->key_ms > now_ms)
                continue;
            if (model->deferred_run == prop->model_run)
                continue;
            if (best < 0 || model->key_ms < prop->model[best].key_ms ||
                (model->key_ms == prop->model[best].key_ms &&
                 model->sequence < prop->model[best].sequence)) {
                best = id;
            }
        }
        if (best < 0)
            break;
        int64_t current_ms =
            prop->model[best].key_ms > start_ms ? prop->model[best].key_ms : start_ms;
        prop->model[best].scheduled = false;
        if (prop->model_fired < PROP_FIRED_MAX)
            prop->model_fired_ids[prop->model_fired] = best;
        prop->model_fired++;
        struct prop_action action = prop_decide(++prop->model_fire_number, best, now_ms);
        if (action.kind == 1 || action.kind == 3) {
            model_schedule(prop, action.target, action.due_ms, current_ms, true);
        }
        if (action.kind == 2)
            prop->model[action.target].scheduled = false;
    }
    prop->model_now_ms = now_ms;
}

/* A random offset: past, this block, seconds, hours, months, beyond the top level. */
static int64_t prop_offset(uint64_t *seed) {
    uint64_t random = prng_next(seed);
    static const int64_t ranges[] = {1, 64, 5000, 10000000, (int64_t)1 << 34, (int64_t)1 << 38};
    int64_t range = ranges[random % 6];
    return (int64_t)((random >> 8) % (uint64_t)range);
}

/* Sometimes rounds a time down to a block or turn boundary, where the
 * wheel changes level: the edge cases random offsets rarely hit. */
static int64_t prop_align(int64_t time_ms, uint64_t random) {
    if ((random >> 40) % 3 != 0 || time_ms < 0)
        return time_ms;
    int shift = (int)((random >> 44) % (WHEEL_LEVELS + 1)) * WHEEL_SLOT_BITS;
    return (int64_t)(((uint64_t)time_ms >> shift) << shift);
}

/* Checks count, validity and next_due against the reference. */
static bool prop_consistent(struct prop *prop) {
    size_t count = 0;
    int64_t earliest_ms = WHEEL_NEVER;
    for (int id = 0; id < PROP_IDS; id++) {
        if (!prop->model[id].scheduled)
            continue;
        count++;
        /* A ready entry's key may be before the wheel's time; it is due now. */
        int64_t key_ms = prop->model[id].key_ms;
        if (key_ms < prop->model_now_ms)
            key_ms = prop->model_now_ms;
        if (key_ms < earliest_ms)
            earliest_ms = key_ms;
        if (!wheel_entry_scheduled(&prop->timers[id].entry))
            return false;
    }
    int64_t next_ms = wheel_next_due(&prop->wheel);
    if (count == 0)
        return next_ms == WHEEL_NEVER && wheel_count(&prop->wheel) == 0;
    return wheel_validate(&prop->wheel) == 0 && wheel_count(&prop->wheel) == count &&
           prop->wheel.now_ms == prop->model_now_ms && next_ms <= earliest_ms &&
           next_ms >= prop->model_now_ms;
}

/* One random operation on both the wheel and the reference. */
static bool prop_step(struct prop *prop, uint64_t *seed) {
    uint64_t random = prng_next(seed);
    int id = (int)((random >> 8) % PROP_IDS);
    int choice = (int)(random % 10);
    if (choice < 4) {
        int64_t due_ms = prop->model_now_ms + prop_offset(seed);
        if (choice == 0)
            due_ms = prop->model_now_ms - prop_offset(seed) % 1000;
        due_ms = prop_align(due_ms, random);
        wheel_schedule(&prop->wheel, &prop->timers[id].entry, due_ms);
        model_schedule(prop, id, due_ms, prop->model_now_ms, false);
        return true;
    }
    if (choice < 6) {
        wheel_cancel(&prop->wheel, &prop->timers[id].entry);
        prop->model[id].scheduled = false;
        return true;
    }
    int64_t now_ms = prop->model_now_ms + prop_offset(seed);
    if (choice == 6)
        now_ms = prop->model_now_ms - prop_offset(seed) % 100000;
    if (choice >= 8)
        now_ms = prop_align(now_ms, random);
    if (choice == 7)
        now_ms = wheel_next_due(&prop->wheel);
    if (now_ms == WHEEL_NEVER)
        now_ms = prop->model_now_ms + 1;
    prop->wheel_fired = 0;
    prop->model_fired = 0;
    size_t fired = wheel_run(&prop->wheel, now_ms);
    model_run(prop, now_ms);
    if ((int)fired != prop->wheel_fired || prop->wheel_fired != prop->model_fired)
        return false;
    for (int index = 0; index < prop->wheel_fired && index < PROP_FIRED_MAX; index++) {
        if (prop->wheel_fired_ids[index] != prop->model_fired_ids[index])
            return false;
        if (prop->wheel_fired_now_ms[index] != now_ms)
            return false;
    }
    return true;
}

/* 100k random schedules, cancels and runs (time jumping forward by up to
 * 2^38 ms, backward, or to next_due), callbacks rescheduling and cancelling:
 * the wheel fires exactly what the reference fires, in the same order. */
TEST(wheel_matches_reference) {
    struct prop *prop = mem_calloc(1, sizeof *prop);
    EXPECT(prop != NULL);
    prop_state = prop;
    wheel_init(&prop->wheel, 12345);
    prop->model_now_ms = 12345;
    for (int id = 0; id < PROP_IDS; id++) {
        wheel_entry_init(&prop->timers[id].entry, prop_fire);
        prop->timers[id].id = id;
    }
    uint64_t seed = 20261124;
    int step = 0;
    for (; step < PROP_OPERATIONS; step++) {
        if (!prop_step(prop, &seed) || !prop_consistent(prop))
            break;
    }
    size_t total = prop->wheel_fire_number;
    int invalid = prop->callback_invalid;
    mem_free(prop);
    if (step != PROP_OPERATIONS)
        fprintf(stderr, "    wheel diverged at step %d\n", step);
    EXPECT_EQ_INT(step, PROP_OPERATIONS);
    EXPECT_EQ_INT(invalid, 0);
    EXPECT(total > 10000);
}

/* ---- scale, overflow, long jumps -------------------------------------- */

static int64_t order_last_due_ms; /* due time of the previous firing */
static int order_last_id;         /* id of the previous firing */
static size_t order_fired;        /* firings so far */
static size_t order_wrong;        /* firings out of (due, id) order */

static void order_fire(struct wheel *wheel, struct wheel_entry *entry, int64_t now_ms) {
    (void)wheel;
    (void)now_ms;
    int id = timer_of(entry)->id;
    if (entry->due_ms < order_last_due_ms ||
        (entry->due_ms == order_last_due_ms && id < order_last_id)) {
        order_wrong++;
    }
    order_last_due_ms = entry->due_ms;
    order_last_id = id;
    order_fired++;
}

static void order_reset(void) {
    order_last_due_ms = INT64_MIN;
    order_last_id = -1;
    order_fired = 0;
    order_wrong = 0;
}

static double elapsed_ms(int64_t start_ns) {
    return (double)(clock_system()->monotonic_ns(clock_system()) - start_ns) / 1e6;
}

/* A million entries over 2^37 ms (some in the overflow) all fire, in due
 * order with ties in scheduling order. Timings are printed, not judged. */
TEST(wheel_million_entries) {
    enum { ENTRIES = 1000000 };
    static struct wheel wheel;
    struct timer *timers = mem_calloc(ENTRIES, sizeof *timers);
    EXPECT(timers != NULL);
    uint64_t seed = 99;
    wheel_init(&wheel, 0);
    order_reset();
    int64_t start_ns = clock_system()->monotonic_ns(clock_system());
    for (int index = 0; index < ENTRIES; index++) {
        timers[index].id = index;
        wheel_entry_init(&timers[index].entry, order_fire);
        int64_t due_ms = (int64_t)(prng_next(&seed) % ((uint64_t)1 << 37));
        if (index % 10 == 0)
            due_ms = (int64_t)(prng_next(&seed) % 100000);
        wheel_schedule(&wheel, &timers[index].entry, due_ms);
    }
    double schedule_ms = elapsed_ms(start_ns);
    int valid = wheel_validate(&wheel);
    start_ns = clock_system()->monotonic_ns(clock_system());
    size_t fired = wheel_run(&wheel, (int64_t)1 << 37);
    double run_ms = elapsed_ms(start_ns);
    fprintf(stderr, "    wheel: 1M entries scheduled in %.1f ms, fired in %.1f ms\n", schedule_ms,
            run_ms);
    mem_free(timers);
    EXPECT_EQ_INT(valid, 0);
    EXPECT_EQ_INT(fired, ENTRIES);
    EXPECT_EQ_INT(order_fired, ENTRIES);
    EXPECT_EQ_INT(order_wrong, 0);
    EXPECT_EQ_INT(wheel_count(&wheel), 0);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
}

/* Entries beyond the levels' 2^36 ms span wait in the overflow, next_due
 * still names them exactly, and each fires at its own time. */
TEST(wheel_overflow_beyond_top_level) {
    static struct wheel wheel;
    struct timer timers[3];
    timers_init(timers, 3, log_fire);
    log_reset();
    int64_t span_ms = (int64_t)1 << (WHEEL_SLOT_BITS * WHEEL_LEVELS);
    wheel_init(&wheel, 1000);
    wheel_schedule(&wheel, &timers[0].entry, 5 * span_ms + 77);
    wheel_schedule(&wheel, &timers[1].entry, 2 * span_ms + 3);
    wheel_schedule(&wheel, &timers[2].entry, span_ms - 1);
    EXPECT_EQ_INT(timers[0].entry.place, WHEEL_PLACE_OVERFLOW);
    EXPECT_EQ_INT(timers[1].entry.place, WHEEL_PLACE_OVERFLOW);
    EXPECT_EQ_INT(timers[2].entry.place, WHEEL_LEVELS - 1);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
    EXPECT_EQ_INT(wheel_next_due(&wheel), span_ms - 1);
    EXPECT_EQ_INT(wheel_run(&wheel, span_ms - 2), 0);
    EXPECT_EQ_INT(wheel_run(&wheel, span_ms - 1), 1);
    EXPECT_EQ_INT(wheel_next_due(&wheel), 2 * span_ms + 3);
    EXPECT_EQ_INT(wheel_run(&wheel, 2 * span_ms + 2), 0);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
    EXPECT_EQ_INT(timers[0].entry.place, WHEEL_PLACE_OVERFLOW);
    EXPECT_EQ_INT(timers[1].entry.place, 0);
    EXPECT_EQ_INT(wheel_run(&wheel, 2 * span_ms + 3), 1);
    EXPECT_EQ_INT(wheel_next_due(&wheel), 5 * span_ms + 77);
    EXPECT_EQ_INT(wheel_run(&wheel, 5 * span_ms + 100), 1);
    EXPECT(log_count == 3 && log_ids[0] == 2 && log_ids[1] == 1 && log_ids[2] == 0);
    EXPECT_EQ_INT(log_now_ms[2], 5 * span_ms + 100);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
    /* Due exactly when a turn begins: the overflow opens at that very ms. */
    wheel_schedule(&wheel, &timers[0].entry, 7 * span_ms);
    wheel_schedule(&wheel, &timers[1].entry, 7 * span_ms + 1);
    EXPECT_EQ_INT(wheel_run(&wheel, 7 * span_ms), 1);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
    EXPECT_EQ_INT(timers[1].entry.place, 0);
    EXPECT_EQ_INT(wheel_run(&wheel, 7 * span_ms + 1), 1);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
}

/* A run whose now is years (and then 2^62 ms) ahead fires everything in due
 * order and returns promptly: the cost follows the entries, not the time. */
TEST(wheel_jump_years_ahead) {
    enum { ENTRIES = 2000 };
    static struct wheel wheel;
    static struct timer timers[ENTRIES];
    const int64_t year_ms = 365LL * 24 * 3600 * 1000;
    uint64_t seed = 5;
    wheel_init(&wheel, 1700000000000LL);
    order_reset();
    for (int index = 0; index < ENTRIES; index++) {
        timers[index].id = index;
        wheel_entry_init(&timers[index].entry, order_fire);
        int64_t due_ms = wheel.now_ms + (int64_t)(prng_next(&seed) % (uint64_t)(50 * year_ms));
        if (index % 100 == 0)
            due_ms = wheel.now_ms + (int64_t)(prng_next(&seed) % 1000);
        wheel_schedule(&wheel, &timers[index].entry, due_ms);
    }
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
    EXPECT_EQ_INT(wheel_run(&wheel, wheel.now_ms + 60 * year_ms), ENTRIES);
    EXPECT_EQ_INT(order_wrong, 0);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
    wheel_schedule(&wheel, &timers[0].entry, wheel.now_ms + 3 * year_ms);
    wheel_schedule(&wheel, &timers[1].entry, wheel.now_ms + 5);
    EXPECT_EQ_INT(wheel_run(&wheel, (int64_t)1 << 62), 2);
    EXPECT_EQ_INT(wheel.now_ms, (int64_t)1 << 62);
    EXPECT_EQ_INT(wheel_count(&wheel), 0);
    EXPECT_EQ_INT(wheel_validate(&wheel), 0);
}
