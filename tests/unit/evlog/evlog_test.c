/* evlog_test.c - proves the log's main path: appends are acknowledged only
 * after their job ran, appends made while a commit runs share the next one
 * (group commit), records read back in order from any offset, segments roll
 * by size and by age (fake clock), the sparse index finds records, and
 * everything survives a reopen. */
#include "../../../src/base/err.h"
#include "../../../src/evlog/evlog.h"
#include "evlog_support.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

TEST(evlog_append_is_acknowledged_after_commit) {
    const char *root = support_directory("ack");
    struct support_log support;
    EXPECT_EQ_INT(support_open(&support, root, NULL, 0), 0);
    struct support_ack ack;
    EXPECT_EQ_INT(support_append(support.topic, 0, 10, &ack), 0);
    EXPECT_EQ_INT(ack.called, 0); /* not durable yet */
    EXPECT_EQ_INT(evlog_topic_end_offset(support.topic), 0);
    EXPECT_EQ_INT(support_read_all(support.topic, 0, 0), 0); /* readers see only durable data */
    EXPECT_EQ_INT(support_executor_run(&support.executor), 1);
    EXPECT(ack.called == 1 && ack.status == 0 && ack.offset == 0);
    EXPECT_EQ_INT(support_read_all(support.topic, 0, 0), 1);
    EXPECT_EQ_INT(evlog_stats(support.log)->fsyncs, 2); /* new segment + the batch */
    support_close(&support);
    support_remove_tree(root);
}

TEST(evlog_group_commit_batches_appends_made_during_a_commit) {
    const char *root = support_directory("group");
    struct support_log support;
    EXPECT_EQ_INT(support_open(&support, root, NULL, 0), 0);
    static struct support_ack acks[100];
    EXPECT_EQ_INT(support_append(support.topic, 0, 10, &acks[0]), 0);
    for (int number = 1; number < 100; number++) {
        EXPECT_EQ_INT(support_append(support.topic, number, 10, &acks[number]), number);
    }
    EXPECT_EQ_INT(support.executor.count, 1); /* one job in flight, 99 waiting */
    EXPECT_EQ_INT(support_executor_step(&support.executor), 1);
    EXPECT(acks[0].called == 1 && acks[1].called == 0);
    EXPECT_EQ_INT(support.executor.count, 1); /* the 99 went out together */
    EXPECT_EQ_INT(support_executor_step(&support.executor), 1);
    for (int number = 0; number < 100; number++) {
        EXPECT(acks[number].called == 1 && acks[number].status == 0 &&
               acks[number].offset == number);
    }
    EXPECT_EQ_INT(evlog_stats(support.log)->commits, 2);
    EXPECT_EQ_INT(support_read_all(support.topic, 0, 0), 100);
    EXPECT_EQ_INT(support_read_all(support.topic, 57, 57), 43);
    support_close(&support);
    support_remove_tree(root);
}

/* Appends `count` records one commit at a time. */
static int evlog_fill(struct support_log *support, int first, int count, size_t value_bytes) {
    for (int number = first; number < first + count; number++) {
        struct support_ack ack;
        if (support_append(support->topic, number, value_bytes, &ack) < 0)
            return -1;
        support_executor_run(&support->executor);
        if (ack.called != 1 || ack.status != 0)
            return -1;
    }
    return 0;
}

TEST(evlog_segments_roll_by_size_and_survive_reopen) {
    const char *root = support_directory("roll");
    struct support_log support;
    EXPECT_EQ_INT(support_open(&support, root, NULL, 4096), 0);
    EXPECT_EQ_INT(evlog_fill(&support, 0, 100, 200), 0);
    size_t segments = evlog_topic_segment_count(support.topic);
    EXPECT(segments >= 5);
    EXPECT_EQ_INT(support_read_all(support.topic, 0, 0), 100);
    EXPECT_EQ_INT(support_read_all(support.topic, 63, 63), 37);
    support_close(&support);
    EXPECT_EQ_INT(support_reopen(&support), 0);
    EXPECT_EQ_INT(evlog_topic_segment_count(support.topic), segments);
    EXPECT_EQ_INT(evlog_stats(support.log)->indexes_rebuilt, 0); /* sealed .idx files were valid */
    EXPECT_EQ_INT(support_read_all(support.topic, 0, 0), 100);
    EXPECT_EQ_INT(evlog_fill(&support, 100, 10, 200), 0);
    EXPECT_EQ_INT(support_read_all(support.topic, 0, 0), 110);
    support_close(&support);
    support_remove_tree(root);
}

TEST(evlog_segments_roll_by_age) {
    const char *root = support_directory("age");
    struct support_log support;
    EXPECT_EQ_INT(support_open(&support, root, NULL, 0), 0);
    support_close(&support);
    support.options.segment_age_ms_max = 1000;
    EXPECT_EQ_INT(support_reopen(&support), 0);
    EXPECT_EQ_INT(evlog_fill(&support, 0, 3, 10), 0);
    clock_fake_advance(&support.clock, 999 * 1000000LL);
    EXPECT_EQ_INT(evlog_fill(&support, 3, 1, 10), 0);
    EXPECT_EQ_INT(evlog_topic_segment_count(support.topic), 1);
    clock_fake_advance(&support.clock, 2 * 1000000LL);
    EXPECT_EQ_INT(evlog_fill(&support, 4, 1, 10), 0);
    EXPECT_EQ_INT(evlog_topic_segment_count(support.topic), 2);
    EXPECT_EQ_INT(support_read_all(support.topic, 0, 0), 5);
    support_close(&support);
    support_remove_tree(root);
}

TEST(evlog_index_finds_offsets_and_times) {
    const char *root = support_directory("index");
    struct support_log support;
    EXPECT_EQ_INT(support_open(&support, root, NULL, 0), 0);
    int64_t start_ns = support.clock.wall_now_ns;
    for (int number = 0; number < 2000; number++) {
        struct support_ack ack;
        EXPECT_EQ_INT(support_append(support.topic, number, 100, &ack), number);
        if (number % 50 == 49)
            support_executor_run(&support.executor);
        clock_fake_advance(&support.clock, 1000000); /* 1 ms per record */
    }
    support_executor_run(&support.executor);
    EXPECT_EQ_INT(evlog_topic_segment_count(support.topic), 1);
    for (int from = 0; from < 2000; from += 333) {
        EXPECT_EQ_INT(support_read_all(support.topic, from, from), 2000 - from);
    }
    int64_t offset = -1;
    EXPECT_EQ_INT(evlog_offset_for_time(support.topic, start_ns + 1234 * 1000000LL, &offset), 0);
    EXPECT_EQ_INT(offset, 1234);
    EXPECT_EQ_INT(evlog_offset_for_time(support.topic, start_ns - 5, &offset), 0);
    EXPECT_EQ_INT(offset, 0);
    EXPECT_EQ_INT(evlog_offset_for_time(support.topic, start_ns + 3000 * 1000000LL, &offset), 0);
    EXPECT_EQ_INT(offset, 2000);
    struct evlog_cursor cursor;
    EXPECT_EQ_INT(evlog_cursor_open(&cursor, support.topic, 2001), ERR_RANGE);
    support_close(&support);
    support_remove_tree(root);
}

static int evlog_wakes = 0;         /* wake callbacks seen */
static int64_t evlog_woken_end = 0; /* end offset they reported */

static void evlog_on_wake(void *arg, struct evlog_topic *topic, int64_t end_offset) {
    (void)arg;
    (void)topic;
    evlog_wakes++;
    evlog_woken_end = end_offset;
}

TEST(evlog_subscribers_are_woken_by_durable_records) {
    const char *root = support_directory("wake");
    struct support_log support;
    EXPECT_EQ_INT(support_open(&support, root, NULL, 0), 0);
    evlog_wakes = 0;
    EXPECT_EQ_INT(evlog_subscribe(support.topic, evlog_on_wake, NULL), 0);
    struct support_ack acks[3];
    for (int number = 0; number < 3; number++)
        support_append(support.topic, number, 5, &acks[number]);
    EXPECT_EQ_INT(evlog_wakes, 0);
    support_executor_run(&support.executor);
    EXPECT_EQ_INT(evlog_wakes, 2); /* one per commit: [0] then [1, 2] */
    EXPECT_EQ_INT(evlog_woken_end, 3);
    evlog_unsubscribe(support.topic, evlog_on_wake, NULL);
    EXPECT_EQ_INT(evlog_fill(&support, 3, 1, 5), 0);
    EXPECT_EQ_INT(evlog_wakes, 2);
    support_close(&support);
    support_remove_tree(root);
}

TEST(evlog_rejects_bad_topics_and_records) {
    const char *root = support_directory("bad");
    struct support_log support;
    EXPECT_EQ_INT(support_open(&support, root, NULL, 0), 0);
    struct evlog_topic *topic = NULL;
    EXPECT_EQ_INT(evlog_topic_open(support.log, "../etc", &topic), ERR_INVAL);
    EXPECT_EQ_INT(evlog_topic_open(support.log, "", &topic), ERR_INVAL);
    EXPECT_EQ_INT(evlog_topic_open(support.log, "Upper", &topic), ERR_INVAL);
    static uint8_t big[LIMIT_EVLOG_VALUE_BYTES + 1];
    struct evlog_record record = {.value = big, .value_bytes = sizeof big};
    struct support_ack ack;
    EXPECT_EQ_INT(evlog_append(support.topic, &record, support_on_append, &ack), ERR_LIMIT);
    /* A second writer of the same directory is refused. */
    struct evlog *second = NULL;
    struct evlog_error error;
    EXPECT_EQ_INT(evlog_open(&second, &support.options, &error), ERR_BUSY);
    support_close(&support);
    support_remove_tree(root);
}
