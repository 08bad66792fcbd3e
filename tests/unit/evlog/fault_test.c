/* fault_test.c - proves the log's behaviour under I/O faults injected at its
 * seam: ENOSPC or EIO on a write or an fdatasync fails that batch and every
 * append behind it, acknowledges nothing after the failure, keeps reads
 * working, reports the log unwritable, truncates back to the durable length
 * (through a new descriptor after an fsync error), and resumes after the retry
 * interval; and a simulated power loss at every step of a workload always
 * recovers a prefix holding every acknowledged record. */
#include "../../../src/base/err.h"
#include "../../../src/evlog/evlog.h"
#include "evlog_support.h"
#include "fault_io.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

#define FAULT_RECORDS 12

/* Appends 4 records in one commit, then 8 more queued behind the next. */
static void fault_workload(struct support_log *support, struct support_ack *acks) {
    for (int number = 0; number < 4; number++)
        support_append(support->topic, number, 30, &acks[number]);
    support_executor_run(&support->executor);
    for (int number = 4; number < FAULT_RECORDS; number++) {
        support_append(support->topic, number, 30, &acks[number]);
    }
    support_executor_run(&support->executor);
}

static int fault_check_failure(const char *tag, int fail_sync, int error) {
    const char *root = support_directory(tag);
    struct fault_io fault;
    fault_io_init(&fault);
    struct support_log support;
    struct support_ack acks[FAULT_RECORDS];
    int result = 1;
    if (support_open(&support, root, &fault.base, 0) != 0)
        return 0;
    if (fail_sync) {
        fault.sync_countdown = 3; /* new segment, [0], [1..3] succeed; the fourth fails */
        fault.sync_error = error;
    } else {
        fault.write_countdown = 3; /* header, [0], [1..3] succeed; the fourth fails */
        fault.write_error = error;
    }
    fault_workload(&support, acks);
    for (int number = 0; number < 4; number++)
        result &= acks[number].called == 1 && acks[number].status == 0;
    for (int number = 4; number < FAULT_RECORDS; number++) {
        result &= acks[number].called == 1 && acks[number].status == error;
    }
    result &= !evlog_writable(support.log);
    result &= evlog_topic_end_offset(support.topic) == 4;
    result &= support_read_all(support.topic, 0, 0) == 4; /* reads keep working */
    struct support_ack late;
    result &= support_append(support.topic, 50, 30, &late) == error; /* refused at once */
    result &= late.called == 0;
    result &= (fault.opens > 0);
    clock_fake_advance(&support.clock, LIMIT_EVLOG_RETRY_MS * 1000000LL);
    evlog_retry(support.log);
    result &= evlog_writable(support.log);
    result &= support_append(support.topic, 4, 30, &late) == 4; /* offsets continue densely */
    support_executor_run(&support.executor);
    result &= late.called == 1 && late.status == 0;
    support_close(&support);
    result &= support_open(&support, root, NULL, 0) == 0;
    result &= support_read_all(support.topic, 0, 0) == 5; /* the failed batch left no trace */
    result &= evlog_stats(support.log)->torn_tails_truncated == 0;
    support_close(&support);
    support_remove_tree(root);
    return result;
}

TEST(fault_enospc_on_write_fails_the_batch_and_everything_behind_it) {
    EXPECT(fault_check_failure("nospc-write", 0, ERR_NOSPC));
}

TEST(fault_eio_on_write_fails_the_batch_and_everything_behind_it) {
    EXPECT(fault_check_failure("eio-write", 0, ERR_IO));
}

TEST(fault_eio_on_fdatasync_is_never_retried_as_durable) {
    EXPECT(fault_check_failure("eio-sync", 1, ERR_IO));
}

TEST(fault_enospc_on_fdatasync_fails_the_batch) {
    EXPECT(fault_check_failure("nospc-sync", 1, ERR_NOSPC));
}

TEST(fault_fsync_error_reopens_the_segment_before_truncating) {
    const char *root = support_directory("reopen");
    struct fault_io fault;
    fault_io_init(&fault);
    struct support_log support;
    struct support_ack acks[FAULT_RECORDS];
    EXPECT_EQ_INT(support_open(&support, root, &fault.base, 0), 0);
    fault.sync_countdown = 3;
    fault.sync_error = ERR_IO;
    long opens_before = fault.opens;
    fault_workload(&support, acks);
    /* One open created the segment; the other is the repair's fresh descriptor. */
    EXPECT_EQ_INT(fault.opens, opens_before + 2);
    support_close(&support);
    support_remove_tree(root);
}

TEST(fault_a_full_disk_keeps_failing_until_space_returns) {
    const char *root = support_directory("full");
    struct fault_io fault;
    fault_io_init(&fault);
    struct support_log support;
    EXPECT_EQ_INT(support_open(&support, root, &fault.base, 0), 0);
    struct support_ack ack;
    fault.write_countdown = 2;
    fault.write_error = ERR_NOSPC;
    fault.write_sticky = 1;
    for (int round = 0; round < 5; round++) {
        support_append(support.topic, round, 30, &ack);
        support_executor_run(&support.executor);
        clock_fake_advance(&support.clock, LIMIT_EVLOG_RETRY_MS * 1000000LL);
    }
    EXPECT_EQ_INT(evlog_topic_end_offset(support.topic), 1);
    EXPECT_EQ_INT(ack.status, ERR_NOSPC);
    fault.write_countdown = -1; /* space returns */
    evlog_retry(support.log);
    EXPECT_EQ_INT(support_append(support.topic, 1, 30, &ack), 1);
    support_executor_run(&support.executor);
    EXPECT(ack.called == 1 && ack.status == 0);
    support_close(&support);
    support_remove_tree(root);
}

/* One power-loss run: the fault layer dies at mutating call `die_at`, the log
 * is closed, unsynced data is dropped, and the reopened log must hold every
 * acknowledged record in a dense prefix. Returns 1 when it does. */
static int fault_power_loss_round(const char *root, long die_at, int *acknowledged_out) {
    struct fault_io fault;
    fault_io_init(&fault);
    struct support_log support;
    static struct support_ack acks[200];
    if (support_open(&support, root, &fault.base, 600) != 0)
        return 0;
    fault.die_countdown = die_at;
    int next = 0;
    for (int round = 0; round < 40 && next < 200; round++) {
        for (int writer = 0; writer < 1 + round % 5 && next < 200; writer++) {
            if (support_append(support.topic, next, 20 + (next * 7) % 90, &acks[next]) < 0)
                break;
            next++;
        }
        support_executor_step(&support.executor);
    }
    support_close(&support);
    fault_io_crash(&fault);
    int acknowledged = 0;
    int64_t highest = -1;
    for (int number = 0; number < next; number++) {
        if (acks[number].called == 1 && acks[number].status == 0) {
            acknowledged++;
            if (acks[number].offset > highest)
                highest = acks[number].offset;
        }
    }
    *acknowledged_out = acknowledged;
    if (support_open(&support, root, NULL, 600) != 0)
        return 0;
    int64_t end = evlog_topic_end_offset(support.topic);
    int ok = end >= highest + 1 && support_read_all(support.topic, 0, 0) == end;
    struct support_ack after;
    ok &= support_append(support.topic, (int)end, 10, &after) == end;
    support_executor_run(&support.executor);
    ok &= after.status == 0 && after.called == 1;
    support_close(&support);
    return ok;
}

TEST(fault_power_loss_at_every_step_keeps_every_acknowledged_record) {
    int total_acknowledged = 0;
    for (long die_at = 0; die_at < 160; die_at++) {
        const char *root = support_directory("power");
        int acknowledged = 0;
        int ok = fault_power_loss_round(root, die_at, &acknowledged);
        if (!ok)
            fprintf(stderr, "    power loss at mutating call %ld lost data\n", die_at);
        EXPECT(ok);
        total_acknowledged += acknowledged;
        support_remove_tree(root);
    }
    EXPECT(total_acknowledged > 1000); /* the crashes happened with real work acknowledged */
}
