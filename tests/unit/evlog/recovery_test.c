/* recovery_test.c - proves recovery at open: a torn tail cut at every byte of
 * the last record, or with any byte of it flipped, is truncated to exactly
 * the last whole record and appends continue after it; a corrupt record with
 * valid records after it fails the open with ERR_CORRUPT naming the file and
 * byte, unless repair is asked for; missing or stale indexes are rebuilt. */
#include "../../../src/base/err.h"
#include "../../../src/evlog/evlog.h"
#include "evlog_support.h"
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void recovery_segment_path(const struct support_log *support, int64_t base,
                                  const char *suffix, char *out, size_t size) {
    snprintf(out, size, "%s/events/%020lld%s", support->directory, (long long)base, suffix);
}

static int64_t recovery_file_bytes(const char *path) {
    struct stat info;
    return stat(path, &info) == 0 ? (int64_t)info.st_size : -1;
}

/* Writes `count` records, one commit each; returns the segment size before
 * the last record was appended. */
static int64_t recovery_build(struct support_log *support, int count, const char *path) {
    int64_t before_last = 0;
    for (int number = 0; number < count; number++) {
        if (number == count - 1)
            before_last = recovery_file_bytes(path);
        struct support_ack ack;
        support_append(support->topic, number, 40, &ack);
        support_executor_run(&support->executor);
    }
    return before_last;
}

TEST(recovery_truncates_a_torn_tail_at_every_byte) {
    const char *root = support_directory("torn");
    struct support_log support;
    char path[512];
    EXPECT_EQ_INT(support_open(&support, root, NULL, 0), 0);
    recovery_segment_path(&support, 0, ".seg", path, sizeof path);
    int64_t before_last = recovery_build(&support, 5, path);
    int64_t full = recovery_file_bytes(path);
    support_close(&support);
    for (int64_t cut = before_last; cut < full; cut++) {
        EXPECT_EQ_INT(truncate(path, (off_t)cut), 0);
        EXPECT_EQ_INT(support_reopen(&support), 0);
        EXPECT_EQ_INT(evlog_topic_end_offset(support.topic), 4);
        EXPECT_EQ_INT(evlog_stats(support.log)->torn_tails_truncated, cut > before_last ? 1 : 0);
        EXPECT_EQ_INT(recovery_file_bytes(path), before_last);
        EXPECT_EQ_INT(support_read_all(support.topic, 0, 0), 4);
        /* The next append lands right after the cut. */
        struct support_ack ack;
        EXPECT_EQ_INT(support_append(support.topic, 4, 40, &ack), 4);
        support_executor_run(&support.executor);
        EXPECT(ack.called == 1 && ack.status == 0);
        EXPECT_EQ_INT(recovery_file_bytes(path), full);
        support_close(&support);
    }
    support_remove_tree(root);
}

static void recovery_flip(const char *path, int64_t position) {
    int fd = open(path, O_RDWR);
    uint8_t byte = 0;
    if (pread(fd, &byte, 1, position) == 1) {
        byte ^= 0x5a;
        if (pwrite(fd, &byte, 1, position) != 1)
            byte = 0;
    }
    close(fd);
}

TEST(recovery_drops_a_last_record_with_any_flipped_byte) {
    const char *root = support_directory("flip");
    struct support_log support;
    char path[512];
    EXPECT_EQ_INT(support_open(&support, root, NULL, 0), 0);
    recovery_segment_path(&support, 0, ".seg", path, sizeof path);
    int64_t before_last = recovery_build(&support, 4, path);
    int64_t full = recovery_file_bytes(path);
    support_close(&support);
    for (int64_t position = before_last; position < full; position++) {
        /* Restore the original 4 records, then damage the last one. */
        support_remove_tree(root);
        EXPECT_EQ_INT(support_open(&support, root, NULL, 0), 0);
        recovery_build(&support, 4, path);
        support_close(&support);
        recovery_flip(path, position);
        EXPECT_EQ_INT(support_reopen(&support), 0);
        EXPECT_EQ_INT(evlog_topic_end_offset(support.topic), 3);
        EXPECT_EQ_INT(support_read_all(support.topic, 0, 0), 3);
        support_close(&support);
    }
    support_remove_tree(root);
}

TEST(recovery_refuses_corruption_inside_the_log) {
    const char *root = support_directory("mid");
    struct support_log support;
    char path[512];
    EXPECT_EQ_INT(support_open(&support, root, NULL, 0), 0);
    recovery_segment_path(&support, 0, ".seg", path, sizeof path);
    recovery_build(&support, 6, path);
    support_close(&support);
    int64_t bad = 32 + 20; /* inside the first record */
    recovery_flip(path, bad);
    EXPECT_EQ_INT(support_reopen(&support), ERR_CORRUPT);
    EXPECT(strstr(support.error.message, "00000000000000000000.seg at byte 32") != NULL);
    EXPECT(strstr(support.error.message, "valid records follow") != NULL);
    EXPECT_EQ_INT(recovery_file_bytes(path) > 32 + 6 * 40, 1); /* nothing was cut */
    /* With repair the log is cut at the bad record and opens. */
    support.options.repair = 1;
    EXPECT_EQ_INT(support_reopen(&support), 0);
    EXPECT_EQ_INT(evlog_topic_end_offset(support.topic), 0);
    EXPECT_EQ_INT(evlog_stats(support.log)->corruptions_repaired, 1);
    support_close(&support);
    support_remove_tree(root);
}

TEST(recovery_refuses_corruption_in_a_sealed_segment) {
    const char *root = support_directory("sealed");
    struct support_log support;
    char path[512];
    char index_path[512];
    EXPECT_EQ_INT(support_open(&support, root, NULL, 1024), 0);
    recovery_segment_path(&support, 0, ".seg", path, sizeof path);
    recovery_segment_path(&support, 0, ".idx", index_path, sizeof index_path);
    recovery_build(&support, 40, path);
    EXPECT(evlog_topic_segment_count(support.topic) > 2);
    support_close(&support);
    /* Index missing: rebuilt at open, same answers. */
    EXPECT_EQ_INT(unlink(index_path), 0);
    EXPECT_EQ_INT(support_reopen(&support), 0);
    EXPECT_EQ_INT(evlog_stats(support.log)->indexes_rebuilt, 1);
    EXPECT_EQ_INT(support_read_all(support.topic, 0, 0), 40);
    support_close(&support);
    EXPECT(recovery_file_bytes(index_path) > 0);
    /* Damaged sealed segment, index stale: the rebuild finds the corruption. */
    recovery_flip(path, 100);
    EXPECT_EQ_INT(unlink(index_path), 0);
    EXPECT_EQ_INT(support_reopen(&support), ERR_CORRUPT);
    EXPECT(strstr(support.error.message, "00000000000000000000.seg") != NULL);
    support_remove_tree(root);
}

TEST(recovery_verify_finds_corruption_behind_a_valid_index) {
    const char *root = support_directory("verify");
    struct support_log support;
    char path[512];
    EXPECT_EQ_INT(support_open(&support, root, NULL, 1024), 0);
    recovery_segment_path(&support, 0, ".seg", path, sizeof path);
    recovery_build(&support, 40, path);
    int64_t torn = -1;
    struct evlog_error error;
    int rc = evlog_verify(support.log, NULL, NULL, &torn, &error);
    if (rc != 0)
        fprintf(stderr, "%s\n", error.message);
    EXPECT_EQ_INT(rc, 0);
    EXPECT_EQ_INT(torn, 0);
    support_close(&support);
    recovery_flip(path, 200); /* the .idx still matches the size, so open trusts it */
    EXPECT_EQ_INT(support_reopen(&support), 0);
    EXPECT_EQ_INT(evlog_verify(support.log, NULL, NULL, &torn, &error), ERR_CORRUPT);
    EXPECT(strstr(error.message, "00000000000000000000.seg at byte") != NULL);
    support_close(&support);
    support_remove_tree(root);
}
