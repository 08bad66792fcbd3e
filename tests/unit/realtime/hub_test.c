/* hub_test.c - proves the realtime hub's contract (src/realtime/hub.h) with
 * real CloudEvents in a real event log and a fake projection source: events
 * reach only their owner's subscribers, in order, exactly once, from where
 * each subscriber started; resume, full queues and retention fall back to
 * catch-up without a gap or a duplicate at the seam; callbacks may detach
 * anything; limits, stalls, reminders, bad records and allocation failure
 * behave as documented. */
#include "../../../src/base/check.h"
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "hub_support.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Subscribers of one test (static: each fake carries a small record). */
static struct fake_sub subs[12];

static int64_t last_of(const struct hub_env *env, int user) {
    return env->source->users[user].visible;
}

/* 1 when the subscriber is live, error-free and has everything. */
static int complete(const struct hub_env *env, const struct fake_sub *sub) {
    return sub->handle != NULL && sub->errors == 0 && !hub_subscriber_catching_up(sub->handle) &&
           sub->expect_next == last_of(env, sub->user) + 1 &&
           hub_subscriber_sent(sub->handle) == last_of(env, sub->user);
}

TEST(hub_subscriber_is_small) {
    /* Proves per-subscriber memory stays small (100,000 connections). */
    EXPECT(hub_subscriber_bytes() <= 96);
}

TEST(hub_open_rejects_bad_options) {
    /* Proves a hub without a source or with zero limits is refused. */
    struct fake_source *source = calloc(1, sizeof *source);
    fake_source_init(source);
    struct hub_options options = {.max_connections = 1, .max_connections_per_user = 1};
    struct hub *hub = NULL;
    EXPECT_EQ_INT(hub_open(&hub, &options), ERR_INVAL);
    options.source = fake_source_hub(source);
    options.max_connections = 0;
    EXPECT_EQ_INT(hub_open(&hub, &options), ERR_INVAL);
    options.max_connections = 1;
    options.start_offset = -1;
    EXPECT_EQ_INT(hub_open(&hub, &options), ERR_INVAL);
    options.start_offset = 0;
    EXPECT_EQ_INT(hub_open(&hub, &options), 0);
    EXPECT_EQ_INT(hub_advance(hub, 10, 0), 0); /* no topic: nothing to read */
    hub_close(hub);
    free(source);
}

TEST(hub_fans_out_only_to_the_owner_in_order) {
    /* Proves isolation and order: three users with two subscribers each get
     * exactly their own user's events, 1, 2, 3, ... as bytes of the log. */
    struct hub_env env;
    EXPECT_EQ_INT(hub_env_open(&env, "fanout", 0), 0);
    EXPECT_EQ_INT(hub_env_open_hub(&env, NULL), 0);
    for (int index = 0; index < 6; index++) {
        fake_sub_init(&subs[index], env.source, index % 3);
        EXPECT_EQ_INT(fake_sub_attach(&subs[index], env.hub, -1, env.now_ms), 0);
    }
    EXPECT_EQ_INT(hub_stats(env.hub)->subscribers, 6);
    EXPECT_EQ_INT(hub_stats(env.hub)->users, 3);
    for (int round = 0; round < 20; round++) {
        hub_env_publish(&env, round % 3);
        if (round % 2 == 0)
            hub_env_publish(&env, 0);
        if (round % 4 == 0)
            EXPECT_EQ_INT(hub_env_advance(&env), 0);
    }
    hub_env_publish(&env, 3); /* a user without subscribers */
    EXPECT_EQ_INT(hub_env_advance(&env), 0);
    EXPECT_EQ_INT(hub_offset(env.hub), evlog_topic_end_offset(env.log.topic));
    for (int index = 0; index < 6; index++) {
        EXPECT(complete(&env, &subs[index]));
        EXPECT_EQ_INT(subs[index].events, last_of(&env, subs[index].user));
    }
    const struct hub_stats *stats = hub_stats(env.hub);
    EXPECT_EQ_INT(stats->events_applied, 31);
    EXPECT_EQ_INT(stats->messages_sent, 2 * (17 + 7 + 6));
    EXPECT_EQ_INT(stats->catchups_started, 0);
    for (int index = 0; index < 6; index++)
        fake_sub_detach(&subs[index]);
    EXPECT_EQ_INT(hub_stats(env.hub)->subscribers, 0);
    EXPECT_EQ_INT(hub_stats(env.hub)->users, 0);
    hub_env_close(&env);
}

TEST(hub_live_starts_at_the_last_sequence) {
    /* Proves a subscriber attached without since gets only events after the
     * user's last sequence at attach time, even though the hub then reads
     * the older records too. */
    struct hub_env env;
    EXPECT_EQ_INT(hub_env_open(&env, "live", 0), 0);
    EXPECT_EQ_INT(hub_env_open_hub(&env, NULL), 0);
    for (int index = 0; index < 5; index++)
        hub_env_publish(&env, 0);
    fake_sub_init(&subs[0], env.source, 0);
    EXPECT_EQ_INT(fake_sub_attach(&subs[0], env.hub, -1, env.now_ms), 0);
    EXPECT_EQ_INT(hub_subscriber_sent(subs[0].handle), 5);
    EXPECT(!hub_subscriber_catching_up(subs[0].handle));
    for (int index = 0; index < 3; index++)
        hub_env_publish(&env, 0);
    EXPECT_EQ_INT(hub_env_advance(&env), 0);
    EXPECT(complete(&env, &subs[0]));
    EXPECT_EQ_INT(subs[0].events, 3);
    EXPECT_EQ_INT(env.source->reads, 0); /* no catch-up was needed */
    /* A live subscriber that meets a gap (here: it started from a source
     * that lagged the log) catches up instead of skipping events. */
    fake_sub_init(&subs[1], env.source, 0);
    env.source->users[0].visible = 6;
    EXPECT_EQ_INT(fake_sub_attach(&subs[1], env.hub, -1, env.now_ms), 0);
    env.source->users[0].visible = 8;
    hub_env_publish(&env, 0);
    EXPECT_EQ_INT(hub_env_advance(&env), 0);
    EXPECT(complete(&env, &subs[0]));
    EXPECT(complete(&env, &subs[1]));
    EXPECT_EQ_INT(subs[1].events, 3);
    EXPECT_EQ_INT(hub_stats(env.hub)->catchups_started, 1);
    fake_sub_detach(&subs[0]);
    fake_sub_detach(&subs[1]);
    hub_env_close(&env);
}

TEST(hub_resume_from_n_has_no_gap_or_duplicate_at_the_seam) {
    /* Proves attach with since=N sends N+1.. from the source (more than two
     * pages) before returning, then the same events read from the log are
     * not sent again, and newer ones arrive live. Also hub_resume on a live
     * subscriber and since ahead (ERR_RANGE, nothing attached or changed). */
    struct hub_env env;
    EXPECT_EQ_INT(hub_env_open(&env, "resume", 0), 0);
    EXPECT_EQ_INT(hub_env_open_hub(&env, NULL), 0);
    for (int index = 0; index < 300; index++)
        hub_env_publish(&env, 1);
    fake_sub_init(&subs[0], env.source, 1);
    EXPECT_EQ_INT(fake_sub_attach(&subs[0], env.hub, 300 + 1, env.now_ms), ERR_RANGE);
    EXPECT_EQ_INT(hub_stats(env.hub)->subscribers, 0);
    EXPECT_EQ_INT(fake_sub_attach(&subs[0], env.hub, 100, env.now_ms), 0);
    EXPECT_EQ_INT(subs[0].events, 200);
    EXPECT(complete(&env, &subs[0]));
    EXPECT_EQ_INT(hub_stats(env.hub)->catchups_started, 1);
    EXPECT_EQ_INT(hub_stats(env.hub)->catchup_events_read, 200);
    for (int index = 0; index < 5; index++)
        hub_env_publish(&env, 1);
    EXPECT_EQ_INT(hub_env_advance(&env), 0);
    EXPECT(complete(&env, &subs[0]));
    EXPECT_EQ_INT(subs[0].events, 205);
    EXPECT_EQ_INT(hub_resume(subs[0].handle, 306, env.now_ms), ERR_RANGE);
    EXPECT_EQ_INT(hub_resume(subs[0].handle, -1, env.now_ms), ERR_INVAL);
    EXPECT_EQ_INT(hub_subscriber_sent(subs[0].handle), 305);
    subs[0].expect_next = 301;
    EXPECT_EQ_INT(hub_resume(subs[0].handle, 300, env.now_ms), 0);
    EXPECT(complete(&env, &subs[0]));
    EXPECT_EQ_INT(subs[0].events, 210);
    fake_sub_detach(&subs[0]);
    hub_env_close(&env);
}

TEST(hub_full_queue_catches_up_when_writable) {
    /* Proves a refused send switches to catch-up (nothing buffered), events
     * applied meanwhile are skipped live but come from the source, and each
     * hub_writable continues until the stream is complete and live again;
     * a second subscriber of the same user is unaffected. */
    struct hub_env env;
    EXPECT_EQ_INT(hub_env_open(&env, "full", 0), 0);
    EXPECT_EQ_INT(hub_env_open_hub(&env, NULL), 0);
    for (int index = 0; index < 300; index++)
        hub_env_publish(&env, 0);
    fake_sub_init(&subs[0], env.source, 0);
    fake_sub_init(&subs[1], env.source, 0);
    subs[0].capacity = 50;
    EXPECT_EQ_INT(fake_sub_attach(&subs[0], env.hub, 0, env.now_ms), 0);
    EXPECT_EQ_INT(fake_sub_attach(&subs[1], env.hub, -1, env.now_ms), 0);
    EXPECT_EQ_INT(subs[0].events, 50);
    EXPECT(hub_subscriber_catching_up(subs[0].handle));
    for (int index = 0; index < 20; index++)
        hub_env_publish(&env, 0);
    EXPECT_EQ_INT(hub_env_advance(&env), 0);
    EXPECT_EQ_INT(subs[0].events, 50);
    EXPECT(complete(&env, &subs[1]));
    int drains = 0;
    while (!complete(&env, &subs[0]) && drains < 100) {
        fake_sub_drain(&subs[0], env.now_ms);
        drains++;
    }
    EXPECT(complete(&env, &subs[0]));
    EXPECT_EQ_INT(drains, 6); /* 270 more events, 50 per drain */
    /* Live again: a refusal now switches it back (counted) and a drain completes it. */
    subs[0].queued = 0;
    subs[0].refuse_next = 1;
    hub_env_publish(&env, 0);
    EXPECT_EQ_INT(hub_env_advance(&env), 0);
    EXPECT(hub_subscriber_catching_up(subs[0].handle));
    EXPECT_EQ_INT(hub_stats(env.hub)->catchups_started, 2);
    hub_env_publish(&env, 0);
    EXPECT_EQ_INT(hub_env_advance(&env), 0);
    fake_sub_drain(&subs[0], env.now_ms);
    EXPECT(complete(&env, &subs[0]));
    EXPECT(complete(&env, &subs[1]));
    fake_sub_detach(&subs[0]);
    fake_sub_detach(&subs[1]);
    hub_env_close(&env);
}

static uint64_t prng_next(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* One random step of the property test. */
static void property_step(struct hub_env *env, uint64_t *prng, size_t count) {
    uint64_t roll = prng_next(prng) % 100;
    struct fake_sub *sub = &subs[prng_next(prng) % count];
    if (roll < 40) {
        hub_env_publish(env, (int)(prng_next(prng) % 3));
    } else if (roll < 60) {
        CHECK(hub_env_advance(env) == 0);
    } else if (roll < 82) {
        fake_sub_drain(sub, env->now_ms);
    } else if (roll < 87 && sub->handle != NULL) {
        int64_t since =
            (int64_t)(prng_next(prng) % (uint64_t)(hub_subscriber_sent(sub->handle) + 1));
        sub->expect_next = since + 1;
        CHECK(hub_resume(sub->handle, since, env->now_ms) == 0);
    } else if (roll < 91) {
        /* Reconnect: resume from what it has, or live. */
        int64_t since = prng_next(prng) % 2 ? sub->expect_next - 1 : -1;
        fake_sub_detach(sub);
        sub->queued = 0;
        CHECK(fake_sub_attach(sub, env->hub, since, env->now_ms) == 0);
    } else if (roll < 95) {
        hub_send_user(env->hub, env->source->users[sub->user].id, "{\"type\":\"reminder\"}", 19);
    } else {
        env->now_ms += 10;
        hub_tick(env->hub, env->now_ms);
    }
}

TEST(hub_random_refusals_give_the_dense_sequence) {
    /* Proves the one rule under random schedules: publishes, batched
     * advances, refusals (queue capacity and random), drains, resumes and
     * reconnects over thousands of events; every subscriber sees exactly
     * expect_next each time (no gap, no duplicate, no other user's event),
     * and once everything drains all are live with the user's last event. */
    for (uint64_t seed = 1; seed <= 3; seed++) {
        uint64_t prng = 0x9e3779b97f4a7c15ull * seed;
        struct hub_env env;
        EXPECT_EQ_INT(hub_env_open(&env, "property", 64 * 1024), 0);
        EXPECT_EQ_INT(hub_env_open_hub(&env, NULL), 0);
        const size_t count = 8;
        for (size_t index = 0; index < count; index++) {
            fake_sub_init(&subs[index], env.source, (int)(index % 3));
            subs[index].capacity = 1 + prng_next(&prng) % 8;
            subs[index].refuse_mask = index % 2 ? 7 : 0;
            subs[index].prng = &prng;
            EXPECT_EQ_INT(fake_sub_attach(&subs[index], env.hub, -1, env.now_ms), 0);
        }
        for (int step = 0; step < 6000; step++)
            property_step(&env, &prng, count);
        EXPECT_EQ_INT(hub_env_advance(&env), 0);
        for (int round = 0; round < 10000; round++) {
            int done = 1;
            for (size_t index = 0; index < count; index++) {
                subs[index].refuse_mask = 0;
                if (!complete(&env, &subs[index])) {
                    done = 0;
                    fake_sub_drain(&subs[index], env.now_ms);
                }
            }
            if (done)
                break;
        }
        int64_t events = 0;
        for (size_t index = 0; index < count; index++) {
            EXPECT_EQ_INT(subs[index].errors, 0);
            EXPECT(complete(&env, &subs[index]));
            EXPECT_EQ_INT(subs[index].closed, 0);
            events += subs[index].events;
        }
        EXPECT(last_of(&env, 0) + last_of(&env, 1) + last_of(&env, 2) > 2000);
        EXPECT(events > 2000);
        EXPECT(hub_stats(env.hub)->catchups_started > 100);
        for (size_t index = 0; index < count; index++)
            fake_sub_detach(&subs[index]);
        hub_env_close(&env);
    }
}

TEST(hub_callbacks_may_detach_anyone) {
    /* Proves detach from inside send (itself, or another subscriber of the
     * same user further down the list) and from inside close (after a broken
     * send, 1011) leaves the hub consistent: detached subscribers are never
     * called again and the others still get every event. */
    struct hub_env env;
    EXPECT_EQ_INT(hub_env_open(&env, "detach", 0), 0);
    EXPECT_EQ_INT(hub_env_open_hub(&env, NULL), 0);
    for (int index = 0; index < 5; index++) {
        fake_sub_init(&subs[index], env.source, 0);
        EXPECT_EQ_INT(fake_sub_attach(&subs[index], env.hub, -1, env.now_ms), 0);
    }
    subs[0].detach_on_send = 1;
    subs[1].detach_other = &subs[2];
    subs[3].fail_with = ERR_IO;
    subs[3].detach_on_close = 1;
    hub_env_publish(&env, 0);
    hub_env_publish(&env, 0);
    EXPECT_EQ_INT(hub_env_advance(&env), 0);
    EXPECT(subs[0].handle == NULL && subs[0].events == 1);
    EXPECT(subs[2].handle == NULL && subs[2].sends == 0);
    EXPECT(subs[3].handle == NULL && subs[3].closed == 1 && subs[3].close_code == 1011);
    EXPECT(complete(&env, &subs[1]));
    EXPECT(complete(&env, &subs[4]));
    EXPECT_EQ_INT(hub_stats(env.hub)->subscribers, 2);
    /* Detach during catch-up, from inside the pump's send. */
    for (int index = 0; index < 300; index++)
        hub_env_publish(&env, 0);
    fake_sub_init(&subs[5], env.source, 0);
    subs[5].capacity = 10;
    EXPECT_EQ_INT(fake_sub_attach(&subs[5], env.hub, 0, env.now_ms), 0);
    subs[5].queued = 0;
    subs[5].detach_on_send = 1;
    hub_writable(subs[5].handle, env.now_ms);
    EXPECT(subs[5].handle == NULL && subs[5].events == 11);
    /* A broken subscriber that is detached later is not called again. */
    subs[4].fail_with = ERR_IO;
    EXPECT_EQ_INT(hub_env_advance(&env), 0);
    EXPECT(subs[4].closed == 1 && subs[4].handle != NULL);
    uint64_t sends = subs[4].sends;
    hub_env_publish(&env, 0);
    EXPECT_EQ_INT(hub_env_advance(&env), 0);
    EXPECT_EQ_INT(hub_send_user(env.hub, env.source->users[0].id, "x", 1), 1);
    EXPECT_EQ_INT(subs[4].sends, sends);
    EXPECT_EQ_INT(hub_resume(subs[4].handle, 0, env.now_ms), ERR_CLOSED);
    EXPECT(complete(&env, &subs[1]));
    fake_sub_detach(&subs[1]);
    fake_sub_detach(&subs[4]);
    EXPECT_EQ_INT(hub_stats(env.hub)->subscribers, 0);
    hub_env_close(&env);
}

TEST(hub_limits) {
    /* Proves ERR_LIMIT past max_connections, ERR_BUSY past the per-user
     * limit, and that detaching frees the slots. */
    struct hub_env env;
    EXPECT_EQ_INT(hub_env_open(&env, "limits", 0), 0);
    struct hub_options options = {.max_connections = 3, .max_connections_per_user = 2};
    EXPECT_EQ_INT(hub_env_open_hub(&env, &options), 0);
    for (int index = 0; index < 5; index++)
        fake_sub_init(&subs[index], env.source, index < 3 ? 0 : 1);
    EXPECT_EQ_INT(fake_sub_attach(&subs[0], env.hub, -1, env.now_ms), 0);
    EXPECT_EQ_INT(fake_sub_attach(&subs[1], env.hub, -1, env.now_ms), 0);
    EXPECT_EQ_INT(fake_sub_attach(&subs[2], env.hub, -1, env.now_ms), ERR_BUSY);
    EXPECT_EQ_INT(fake_sub_attach(&subs[3], env.hub, -1, env.now_ms), 0);
    EXPECT_EQ_INT(fake_sub_attach(&subs[4], env.hub, -1, env.now_ms), ERR_LIMIT);
    fake_sub_detach(&subs[0]);
    EXPECT_EQ_INT(fake_sub_attach(&subs[4], env.hub, -1, env.now_ms), 0);
    EXPECT_EQ_INT(fake_sub_attach(&subs[2], env.hub, -1, env.now_ms), ERR_LIMIT);
    EXPECT_EQ_INT(hub_stats(env.hub)->subscribers, 3);
    EXPECT_EQ_INT(hub_stats(env.hub)->users, 2);
    struct hub_subscriber *handle = NULL;
    EXPECT_EQ_INT(hub_attach(env.hub, "", -1, &fake_sub_ops, &subs[2], 0, &handle), ERR_INVAL);
    env.source->fail_last = ERR_IO;
    fake_sub_detach(&subs[1]);
    EXPECT_EQ_INT(fake_sub_attach(&subs[2], env.hub, -1, env.now_ms), ERR_IO);
    env.source->fail_last = 0;
    fake_sub_detach(&subs[3]);
    fake_sub_detach(&subs[4]);
    hub_env_close(&env);
}

TEST(hub_stalled_subscriber_is_closed_with_4008) {
    /* Proves a queue that makes no progress for stall_timeout_ms is closed
     * with 4008 (the reason names where to resume) by hub_tick, a queue that
     * drains in time is not, and a failing source read closes with 1011. */
    struct hub_env env;
    EXPECT_EQ_INT(hub_env_open(&env, "stall", 0), 0);
    EXPECT_EQ_INT(hub_env_open_hub(&env, NULL), 0);
    for (int index = 0; index < 10; index++)
        hub_env_publish(&env, 0);
    for (int index = 0; index < 3; index++) {
        fake_sub_init(&subs[index], env.source, 0);
        subs[index].capacity = 1;
    }
    subs[0].detach_on_close = 1;
    EXPECT_EQ_INT(fake_sub_attach(&subs[0], env.hub, 0, 1000), 0);
    EXPECT_EQ_INT(fake_sub_attach(&subs[1], env.hub, 0, 1000), 0);
    hub_tick(env.hub, 30000);
    fake_sub_drain(&subs[1], 30000); /* progress: its stall clock restarts */
    hub_tick(env.hub, 60999);
    EXPECT(subs[0].closed == 0 && subs[1].closed == 0);
    hub_tick(env.hub, 61000);
    EXPECT(subs[0].closed == 1 && subs[0].close_code == 4008 && subs[0].handle == NULL);
    EXPECT(strstr(subs[0].close_reason, "since=1") != NULL);
    EXPECT(subs[1].closed == 0);
    EXPECT_EQ_INT(hub_stats(env.hub)->stalls_closed, 1);
    hub_tick(env.hub, 90000);
    EXPECT(subs[1].closed == 1 && subs[1].close_code == 4008);
    EXPECT(strstr(subs[1].close_reason, "since=2") != NULL);
    hub_writable(subs[1].handle, 90001); /* after close: ignored */
    EXPECT_EQ_INT(subs[1].events, 2);
    fake_sub_detach(&subs[1]);
    env.source->fail_read = ERR_IO;
    EXPECT_EQ_INT(fake_sub_attach(&subs[2], env.hub, 0, 90000), 0);
    EXPECT(subs[2].closed == 1 && subs[2].close_code == 1011);
    fake_sub_detach(&subs[2]);
    EXPECT_EQ_INT(hub_stats(env.hub)->stalls_closed, 2);
    hub_env_close(&env);
}

TEST(hub_send_user_reaches_the_users_subscribers) {
    /* Proves reminders go as given to each subscriber of that user whose
     * queue takes them (full ones miss it and stay live), and to no one
     * else. */
    struct hub_env env;
    EXPECT_EQ_INT(hub_env_open(&env, "remind", 0), 0);
    EXPECT_EQ_INT(hub_env_open_hub(&env, NULL), 0);
    for (int index = 0; index < 3; index++) {
        fake_sub_init(&subs[index], env.source, index < 2 ? 0 : 1);
        EXPECT_EQ_INT(fake_sub_attach(&subs[index], env.hub, -1, env.now_ms), 0);
    }
    subs[1].refuse_next = 1;
    const char text[] = "{\"type\":\"reminder\",\"task\":{},\"reminder\":{}}";
    EXPECT_EQ_INT(hub_send_user(env.hub, env.source->users[0].id, text, sizeof text - 1), 1);
    EXPECT_EQ_INT(hub_send_user(env.hub, env.source->users[3].id, text, sizeof text - 1), 0);
    EXPECT_STR(subs[0].last_other, text);
    EXPECT(subs[1].others == 0 && !hub_subscriber_catching_up(subs[1].handle));
    EXPECT(subs[2].others == 0);
    EXPECT_EQ_INT(hub_stats(env.hub)->messages_sent, 1);
    for (int index = 0; index < 3; index++)
        fake_sub_detach(&subs[index]);
    hub_env_close(&env);
}

TEST(hub_skips_records_that_are_not_events) {
    /* Proves records of a subscribed key that are not CloudEvents, or whose
     * userid is another user, are skipped and counted (never sent), records
     * of keys without subscribers are not parsed, and the stream goes on. */
    struct hub_env env;
    EXPECT_EQ_INT(hub_env_open(&env, "skip", 0), 0);
    EXPECT_EQ_INT(hub_env_open_hub(&env, NULL), 0);
    fake_sub_init(&subs[0], env.source, 0);
    EXPECT_EQ_INT(fake_sub_attach(&subs[0], env.hub, -1, env.now_ms), 0);
    const char *user0 = env.source->users[0].id;
    EXPECT_EQ_INT(hub_env_append(&env, user0, "not json"), 0);
    EXPECT_EQ_INT(hub_env_append(&env, user0, "{\"type\":\"event\"}"), 0);
    EXPECT_EQ_INT(hub_env_append(&env, "nobody", "not json"), 0);
    EXPECT_EQ_INT(hub_env_append(&env, "", "not json"), 0);
    fake_source_build(env.source, 1); /* user 1's event under user 0's key */
    EXPECT_EQ_INT(hub_env_append(&env, user0, env.source->users[1].events[0]), 0);
    hub_env_publish(&env, 0);
    EXPECT_EQ_INT(hub_env_advance(&env), 0);
    EXPECT_EQ_INT(hub_stats(env.hub)->records_skipped, 3);
    EXPECT_EQ_INT(hub_stats(env.hub)->events_applied, 6);
    EXPECT(complete(&env, &subs[0]));
    EXPECT_EQ_INT(subs[0].events, 1);
    fake_sub_detach(&subs[0]);
    hub_env_close(&env);
}

TEST(hub_retention_passing_the_hub_falls_back_to_catch_up) {
    /* Proves that when retention removed records the hub had not read (both
     * before its first read and under an open cursor), the hub jumps to the
     * topic's start and subscribers catch up from the source: still dense. */
    struct hub_env env;
    EXPECT_EQ_INT(hub_env_open(&env, "retention", 4096), 0);
    support_close(&env.log);
    env.log.options.retention_bytes_max = 8192;
    EXPECT_EQ_INT(support_reopen(&env.log), 0);
    EXPECT_EQ_INT(hub_env_open_hub(&env, NULL), 0);
    fake_sub_init(&subs[0], env.source, 0);
    fake_sub_init(&subs[1], env.source, 1);
    EXPECT_EQ_INT(fake_sub_attach(&subs[0], env.hub, -1, env.now_ms), 0);
    EXPECT_EQ_INT(fake_sub_attach(&subs[1], env.hub, -1, env.now_ms), 0);
    for (int round = 0; round < 2; round++) {
        /* All of user 0's records are gone by the time the hub reads: only
         * the jump's switch to catch-up can tell its subscriber. */
        for (int index = 0; index < 200; index++)
            hub_env_publish(&env, index < 100 ? 0 : 1);
        EXPECT(evlog_topic_start_offset(env.log.topic) > hub_offset(env.hub));
        EXPECT_EQ_INT(hub_env_advance(&env), 0);
        EXPECT_EQ_INT(hub_offset(env.hub), evlog_topic_end_offset(env.log.topic));
        EXPECT(complete(&env, &subs[0]));
        EXPECT(complete(&env, &subs[1]));
        EXPECT_EQ_INT(hub_stats(env.hub)->catchups_started, 2 * (round + 1));
    }
    EXPECT_EQ_INT(subs[0].events, 200);
    fake_sub_detach(&subs[0]);
    fake_sub_detach(&subs[1]);
    hub_env_close(&env);
}

/* Outcome of one allocation-failure run. */
struct allocation_outcome {
    int exhausted; /* the budget ran out during the run */
    int degraded;  /* an error was returned or a subscriber closed */
};

/* One run of the allocation-failure scenario with allocations failing
 * after `budget`. Events 1..5 of user 0 are applied, 6..10 are in the log
 * but applied only during the run. */
static struct allocation_outcome allocation_run(struct hub_env *env, long budget) {
    struct hub_options options = {.max_connections = 8,
                                  .max_connections_per_user = 8,
                                  .stall_timeout_ms = 100,
                                  .start_offset = 5};
    struct allocation_outcome outcome = {1, 1};
    fake_sub_init(&subs[0], env->source, 0);
    fake_sub_init(&subs[1], env->source, 0);
    env->source->users[0].visible = 5;
    mem_fail_after(budget);
    int rc = hub_env_open_hub(env, &options);
    if (rc != 0) {
        mem_fail_after(-1);
        CHECK(rc == ERR_NOMEM && env->hub == NULL);
        return outcome;
    }
    outcome.degraded = 0;
    if (fake_sub_attach(&subs[0], env->hub, -1, env->now_ms) != 0)
        outcome.degraded = 1;
    if (fake_sub_attach(&subs[1], env->hub, 2, env->now_ms) != 0)
        outcome.degraded = 1;
    env->source->users[0].visible = 10;
    if (hub_env_advance(env) != 0)
        outcome.degraded = 1;
    if (subs[0].handle != NULL) {
        int64_t expected = subs[0].expect_next;
        subs[0].expect_next = 8; /* before: the pump sends from inside hub_resume */
        if (hub_resume(subs[0].handle, 7, env->now_ms) != 0)
            subs[0].expect_next = expected;
    }
    hub_send_user(env->hub, env->source->users[0].id, "{}", 2);
    hub_tick(env->hub, env->now_ms + 1000);
    void *probe = mem_alloc(1); /* NULL: the budget ran out somewhere above */
    outcome.exhausted = probe == NULL;
    mem_free(probe);
    mem_fail_after(-1);
    /* With memory back, a retried advance must complete every open stream. */
    CHECK(hub_env_advance(env) == 0);
    for (int index = 0; index < 2; index++) {
        struct fake_sub *sub = &subs[index];
        CHECK(sub->errors == 0);
        if (sub->closed)
            outcome.degraded = 1;
        if (sub->handle != NULL && !sub->closed)
            CHECK(complete(env, sub));
        fake_sub_detach(sub);
    }
    hub_close(env->hub);
    env->hub = NULL;
    return outcome;
}

TEST(hub_survives_every_allocation_failure) {
    /* Proves each allocation failing in turn (hub, user, subscriber, map,
     * cursor window, event parse, message buffer), up to the first run that
     * needs no more than its budget, ends in an error return, a 1011 close
     * or a catch-up, never a crash, a leak (sanitizer build), a gap or a
     * duplicate; after memory returns a retried advance completes the
     * streams that stayed open, and the first run with enough memory is
     * clean. */
    struct hub_env env;
    EXPECT_EQ_INT(hub_env_open(&env, "nomem", 0), 0);
    for (int index = 0; index < 10; index++)
        hub_env_publish(&env, 0);
    long budget = 0;
    int degraded = 0;
    struct allocation_outcome outcome = {1, 1};
    for (; budget < 400 && outcome.exhausted; budget++) {
        outcome = allocation_run(&env, budget);
        degraded += outcome.degraded;
    }
    EXPECT(!outcome.exhausted && !outcome.degraded);
    EXPECT(budget > 10);
    EXPECT(degraded > 5);
    hub_env_close(&env);
}
