/* notify_db_test.c - notify.db through db_open_schema: a fresh file gets
 * schema version 1 with the offsets, dlq and deliveries tables (and their
 * indexes) and none of docket.db's tables; reopening changes nothing; a file
 * from a newer version is refused, naming the versions; docket.db still
 * opens with its own schema beside it. */
#include "../../../src/base/err.h"
#include "../../../src/consumer/notify_db.h"
#include "../../../src/store/db.h"
#include "../evlog/evlog_support.h"
#include "../test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* The integer result of a one-value query, or -1. */
static long long notify_db_scalar(struct db *db, const char *sql) {
    sqlite3_stmt *stmt = NULL;
    long long value = -1;
    if (sqlite3_prepare_v2(db_handle(db), sql, -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

/* A fresh notify.db has version 1 and exactly its own tables and indexes,
 * with the columns the DLQ and the notifier use; reopening keeps it as is. */
TEST(notify_db_fresh_schema) {
    const char *root = support_directory("notify-db");
    char path[400];
    snprintf(path, sizeof path, "%s/notify.db", root);
    struct db *db = NULL;
    struct db_error error;
    EXPECT_EQ_INT(notify_db_open(&db, path, &error), 0);
    EXPECT_EQ_INT(notify_db_scalar(db, "PRAGMA user_version"), 1);
    EXPECT_EQ_INT(notify_db_scalar(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                                       " AND name IN ('offsets', 'dlq', 'deliveries')"),
                  3);
    EXPECT_EQ_INT(notify_db_scalar(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"),
                  3);
    EXPECT_EQ_INT(notify_db_scalar(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
                                       " AND name IN ('dlq_by_state', 'deliveries_due')"),
                  2);
    EXPECT_EQ_INT(notify_db_scalar(db, "SELECT count(*) FROM pragma_table_info('dlq') WHERE name"
                                       " IN ('id', 'consumer', 'key', 'user_id', 'event', 'item',"
                                       " 'error', 'attempts', 'failed_ns', 'state', 'redriven_ns',"
                                       " 'offset')"),
                  12);
    EXPECT_EQ_INT(notify_db_scalar(db, "SELECT count(*) FROM pragma_table_info('deliveries')"
                                       " WHERE name IN ('key', 'user_id', 'channel', 'reminder_key',"
                                       " 'state', 'attempts', 'next_ns', 'error', 'event', 'item',"
                                       " 'updated_ns')"),
                  11);
    EXPECT_EQ_INT(db_exec(db, "INSERT INTO offsets VALUES('dlq', 7)"), 0);
    db_close(db);
    EXPECT_EQ_INT(notify_db_open(&db, path, &error), 0);
    EXPECT_EQ_INT(notify_db_scalar(db, "SELECT next_offset FROM offsets WHERE name = 'dlq'"), 7);
    EXPECT_EQ_INT(notify_db_scalar(db, "PRAGMA user_version"), 1);
    db_close(db);
    support_remove_tree(root);
}

/* A notify.db from a newer Docket is refused with both versions named, and
 * docket.db opens beside it with its own, different schema. */
TEST(notify_db_newer_version_refused) {
    const char *root = support_directory("notify-db-newer");
    char path[400], docket_path[400];
    snprintf(path, sizeof path, "%s/notify.db", root);
    snprintf(docket_path, sizeof docket_path, "%s/docket.db", root);
    struct db *db = NULL;
    struct db_error error;
    EXPECT_EQ_INT(notify_db_open(&db, path, &error), 0);
    EXPECT_EQ_INT(db_exec(db, "PRAGMA user_version = 9"), 0);
    db_close(db);
    EXPECT_EQ_INT(notify_db_open(&db, path, &error), ERR_UNSUPPORTED);
    EXPECT(db == NULL);
    EXPECT(strstr(error.message, "schema version 9 is newer than this Docket's 1") != NULL);
    EXPECT_EQ_INT(db_open(&db, docket_path, &error), 0);
    EXPECT(notify_db_scalar(db, "PRAGMA user_version") >= 2);
    EXPECT_EQ_INT(notify_db_scalar(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'dlq'"), 0);
    EXPECT_EQ_INT(notify_db_scalar(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'tasks'"),
                  1);
    db_close(db);
    support_remove_tree(root);
}
