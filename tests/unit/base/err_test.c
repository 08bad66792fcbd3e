/* err_test.c - proves every code has a name and a sentence, and errno values
 * map into the table. */
#include "../../../src/base/err.h"
#include "test.h"

#include <errno.h>

TEST(err_names_every_code) {
    EXPECT_STR(err_name(ERR_NOMEM), "ERR_NOMEM");
    EXPECT_STR(err_name(ERR_SYS), "ERR_SYS");
    EXPECT_STR(err_name(0), "OK");
    EXPECT_STR(err_name(-9999), "ERR_UNKNOWN");
    EXPECT_STR(err_str(ERR_NOSPC), "no space left on device");
}

TEST(err_maps_errno) {
    EXPECT_EQ_INT(err_from_errno(ENOSPC), ERR_NOSPC);
    EXPECT_EQ_INT(err_from_errno(EIO), ERR_IO);
    EXPECT_EQ_INT(err_from_errno(ENOENT), ERR_NOTFOUND);
    EXPECT_EQ_INT(err_from_errno(0), 0);
}
