/* consumer_test.c - proves named consumer offsets are durable (they survive a
 * reopen), can be fetched, listed with lag, rewound to an offset or a time,
 * and that retention deletes only whole old segments and never one holding
 * records a required consumer has not consumed. */
#include "../../../src/base/err.h"
#include "../../../src/evlog/evlog.h"
#include "evlog_support.h"
#include "test.h"

#include <string.h>

static int consumer_fill(struct support_log *support, int first, int count) {
    for (int number = first; number < first + count; number++) {
        struct support_ack ack;
        if (support_append(support->topic, number, 200, &ack) < 0)
            return -1;
        support_executor_run(&support->executor);
        if (ack.status != 0 || ack.called != 1)
            return -1;
        clock_fake_advance(&support->clock, 1000000000LL); /* one second per record */
    }
    return 0;
}

TEST(consumer_offsets_commit_fetch_list_and_survive_reopen) {
    const char *root = support_directory("offsets");
    struct support_log support;
    EXPECT_EQ_INT(support_open(&support, root, NULL, 0), 0);
    EXPECT_EQ_INT(consumer_fill(&support, 0, 10), 0);
    struct evlog_consumer_info info;
    EXPECT_EQ_INT(evlog_consumer_fetch(support.topic, "projection", &info), ERR_NOTFOUND);
    EXPECT_EQ_INT(evlog_consumer_commit(support.topic, "projection", 7), 0);
    EXPECT_EQ_INT(evlog_consumer_commit(support.topic, "kafka", 3), 0);
    EXPECT_EQ_INT(evlog_consumer_set_required(support.topic, "kafka", 1), 0);
    EXPECT_EQ_INT(evlog_consumer_commit(support.topic, "bad name", 3), ERR_INVAL);
    EXPECT_EQ_INT(evlog_consumer_commit(support.topic, "projection", 11), ERR_RANGE);
    support_close(&support);
    EXPECT_EQ_INT(support_reopen(&support), 0);
    EXPECT_EQ_INT(evlog_consumer_fetch(support.topic, "projection", &info), 0);
    EXPECT(info.offset == 7 && info.lag == 3 && info.required == 0);
    struct evlog_consumer_info list[4];
    EXPECT_EQ_INT(evlog_consumer_list(support.topic, list, 4), 2);
    EXPECT(strcmp(list[1].name, "kafka") == 0 && list[1].offset == 3 && list[1].lag == 7);
    EXPECT_EQ_INT(list[1].required, 1);
    /* Rewind by offset, then by time (record n was appended at start + n s). */
    EXPECT_EQ_INT(evlog_consumer_commit(support.topic, "projection", 2), 0);
    EXPECT_EQ_INT(evlog_consumer_fetch(support.topic, "projection", &info), 0);
    EXPECT_EQ_INT(info.offset, 2);
    EXPECT_EQ_INT(evlog_consumer_rewind_time(support.topic, "projection",
                                             1700000000000000000LL + 5500000000LL),
                  0);
    EXPECT_EQ_INT(evlog_consumer_fetch(support.topic, "projection", &info), 0);
    EXPECT_EQ_INT(info.offset, 6);
    support_close(&support);
    support_remove_tree(root);
}

TEST(consumer_retention_never_passes_a_required_consumer) {
    const char *root = support_directory("retention");
    struct support_log support;
    EXPECT_EQ_INT(support_open(&support, root, NULL, 0), 0);
    support_close(&support);
    support.options.segment_bytes_max = 1024;
    support.options.retention_bytes_max = 3000;
    EXPECT_EQ_INT(support_reopen(&support), 0);
    EXPECT_EQ_INT(evlog_consumer_set_required(support.topic, "audit", 1), 0);
    EXPECT_EQ_INT(consumer_fill(&support, 0, 60), 0);
    /* The required consumer sits at 0: nothing may go. */
    EXPECT_EQ_INT(evlog_topic_start_offset(support.topic), 0);
    EXPECT(evlog_topic_bytes(support.topic) > 3000);
    EXPECT_EQ_INT(evlog_consumer_commit(support.topic, "audit", 30), 0);
    EXPECT_EQ_INT(consumer_fill(&support, 60, 10), 0);
    int64_t start = evlog_topic_start_offset(support.topic);
    EXPECT(start > 0 && start <= 30); /* whole segments up to the consumer, no further */
    EXPECT(evlog_stats(support.log)->segments_deleted > 0);
    EXPECT_EQ_INT(support_read_all(support.topic, start, (int)start), 70 - start);
    struct evlog_cursor cursor;
    EXPECT_EQ_INT(evlog_cursor_open(&cursor, support.topic, 0), ERR_RANGE);
    /* Not required any more: size retention applies fully. */
    EXPECT_EQ_INT(evlog_consumer_set_required(support.topic, "audit", 0), 0);
    EXPECT_EQ_INT(consumer_fill(&support, 70, 10), 0);
    EXPECT(evlog_topic_bytes(support.topic) <= 3000 + 1024);
    support_close(&support);
    EXPECT_EQ_INT(support_reopen(&support), 0); /* deletions left a consistent log */
    EXPECT_EQ_INT(evlog_topic_end_offset(support.topic), 80);
    support_close(&support);
    support_remove_tree(root);
}

TEST(consumer_retention_by_age) {
    const char *root = support_directory("age-retention");
    struct support_log support;
    EXPECT_EQ_INT(support_open(&support, root, NULL, 0), 0);
    support_close(&support);
    support.options.segment_bytes_max = 1024;
    support.options.retention_age_ms_max = 20000; /* 20 s; records are 1 s apart */
    EXPECT_EQ_INT(support_reopen(&support), 0);
    EXPECT_EQ_INT(consumer_fill(&support, 0, 60), 0);
    int64_t start = evlog_topic_start_offset(support.topic);
    EXPECT(start >= 60 - 20 - 10 && start <= 60 - 20); /* older than 20 s is gone, by segment */
    support_close(&support);
    support_remove_tree(root);
}
