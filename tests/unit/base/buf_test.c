/* buf_test.c - proves the byte buffer grows, stays NUL-terminated, and refuses
 * to grow past its limit or when allocation fails. */
#include "../../../src/base/buf.h"
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "test.h"

TEST(buf_appends_and_terminates) {
    struct buf buf;
    buf_init(&buf, 1024);
    EXPECT_EQ_INT(buf_append_str(&buf, "hello"), 0);
    EXPECT_EQ_INT(buf_printf(&buf, " %d", 42), 0);
    EXPECT_STR(buf.data, "hello 42");
    EXPECT_EQ_INT(buf.length, 8);
    buf_consume(&buf, 6);
    EXPECT_STR(buf.data, "42");
    buf_free(&buf);
}

TEST(buf_refuses_to_pass_its_limit) {
    struct buf buf;
    buf_init(&buf, 8);
    EXPECT_EQ_INT(buf_append(&buf, "12345678", 8), 0);
    EXPECT_EQ_INT(buf_append(&buf, "9", 1), ERR_LIMIT);
    EXPECT_EQ_INT(buf.length, 8);
    buf_free(&buf);
}

TEST(buf_reports_allocation_failure) {
    struct buf buf;
    buf_init(&buf, 1 << 20);
    mem_fail_after(0);
    int rc = buf_append_str(&buf, "x");
    mem_fail_after(-1);
    EXPECT_EQ_INT(rc, ERR_NOMEM);
    EXPECT_EQ_INT(buf.length, 0);
    buf_free(&buf);
}
