/*
 * db_test.c - the SQLite connection: pragmas after open, schema version and
 * refusal of a newer one, failed opens that name the file, statement
 * caches, transactions, error mapping, the tokenizer and docket_match, and
 * resetting the projections.
 */
#include "../../../src/base/err.h"
#include "../../../src/base/logger.h"
#include "../../../src/store/db.h"
#include "../evlog/evlog_support.h"
#include "../test.h"

#include <sqlite3.h>

#include <stdio.h>
#include <string.h>

static int64_t db_test_int(struct db *db, const char *sql) {
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db_handle(db), sql, -1, &stmt, NULL) != SQLITE_OK)
        return -999;
    int64_t value = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -999;
    sqlite3_finalize(stmt);
    return value;
}

/* The scratch path of a test database; also silences the logger, since
 * these tests provoke errors on purpose. */
static void db_test_path(char *out, size_t size, const char *root, const char *name) {
    static FILE *quiet = NULL;
    if (quiet == NULL)
        quiet = fopen("/dev/null", "w");
    logger_set_stream(quiet);
    snprintf(out, size, "%s/%s", root, name);
}

TEST(db_open_sets_pragmas_and_schema) {
    const char *root = support_directory("db-open");
    char path[300];
    db_test_path(path, sizeof path, root, "docket.db");
    struct db *db = NULL;
    struct db_error error;
    EXPECT(db_open(&db, path, &error) == 0);
    sqlite3_stmt *stmt = NULL;
    EXPECT(sqlite3_prepare_v2(db_handle(db), "PRAGMA journal_mode", -1, &stmt, NULL) == 0);
    EXPECT(sqlite3_step(stmt) == SQLITE_ROW);
    EXPECT_STR((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);
    EXPECT_EQ_INT(db_test_int(db, "PRAGMA synchronous"), 1); /* NORMAL */
    EXPECT_EQ_INT(db_test_int(db, "PRAGMA foreign_keys"), 1);
    EXPECT_EQ_INT(db_test_int(db, "PRAGMA busy_timeout"), 5000);
    EXPECT_EQ_INT(db_test_int(db, "PRAGMA cache_size"), -65536);
    EXPECT_EQ_INT(db_test_int(db, "PRAGMA mmap_size"), 0);
    EXPECT_EQ_INT(db_test_int(db, "PRAGMA temp_store"), 2); /* MEMORY */
    EXPECT_EQ_INT(db_test_int(db, "PRAGMA user_version"), 2);
    static const char *const tables[] = {"offsets",   "users",  "tasks", "task_tags",
                                         "tasks_fts", "events", "audit", "idempotency",
                                         "reminders", "push_subscriptions"};
    for (size_t index = 0; index < sizeof tables / sizeof tables[0]; index++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_schema WHERE name = '%s'",
                 tables[index]);
        EXPECT_EQ_INT(db_test_int(db, sql), 1);
    }
    EXPECT(db_exec(db, "INSERT INTO offsets VALUES('someone', 7)") == 0);
    db_close(db);
    /* Reopening migrates nothing and keeps the data. */
    EXPECT(db_open(&db, path, &error) == 0);
    EXPECT_EQ_INT(db_test_int(db, "SELECT next_offset FROM offsets WHERE name = 'someone'"), 7);
    EXPECT_EQ_INT(db_test_int(db, "PRAGMA user_version"), 2);
    db_close(db);
    support_remove_tree(root);
}

TEST(db_open_failures_name_the_file) {
    const char *root = support_directory("db-fail");
    char path[300];
    struct db *db = NULL;
    struct db_error error;
    /* A directory that does not exist. */
    db_test_path(path, sizeof path, root, "missing/docket.db");
    EXPECT_EQ_INT(db_open(&db, path, &error), ERR_IO);
    EXPECT(db == NULL);
    EXPECT(strstr(error.message, path) != NULL);
    /* A file that is not a database. */
    db_test_path(path, sizeof path, root, "garbage.db");
    FILE *file = fopen(path, "w");
    EXPECT(file != NULL);
    for (int index = 0; index < 512; index++)
        fputs("not a database, just text. ", file);
    fclose(file);
    EXPECT_EQ_INT(db_open(&db, path, &error), ERR_CORRUPT);
    EXPECT(strstr(error.message, path) != NULL);
    EXPECT(strstr(error.message, "not a database") != NULL);
    /* A schema newer than this build knows. */
    db_test_path(path, sizeof path, root, "newer.db");
    EXPECT(db_open(&db, path, &error) == 0);
    EXPECT(db_exec(db, "PRAGMA user_version = 99") == 0);
    db_close(db);
    EXPECT_EQ_INT(db_open(&db, path, &error), ERR_UNSUPPORTED);
    EXPECT(strstr(error.message, "99") != NULL && strstr(error.message, path) != NULL);
    support_remove_tree(root);
}

TEST(db_statements_are_cached) {
    const char *root = support_directory("db-cache");
    char path[300];
    db_test_path(path, sizeof path, root, "docket.db");
    struct db *db = NULL;
    struct db_error error;
    EXPECT(db_open(&db, path, &error) == 0);
    static const char sql[] = "SELECT ?1 + 1";
    sqlite3_stmt *first = db_statement(db, sql);
    EXPECT(first != NULL);
    sqlite3_bind_int(first, 1, 41);
    EXPECT(sqlite3_step(first) == SQLITE_ROW && sqlite3_column_int(first, 0) == 42);
    /* The same literal gives the same statement, reset and unbound. */
    sqlite3_stmt *again = db_statement(db, sql);
    EXPECT(again == first);
    EXPECT(sqlite3_step(again) == SQLITE_ROW && sqlite3_column_type(again, 0) == SQLITE_NULL);
    sqlite3_reset(again);
    EXPECT(db_statement(db, "SELECT * FROM no_such_table") == NULL);
    /* Text statements: found again by content, evicted least recently used. */
    char text[64];
    snprintf(text, sizeof text, "SELECT %d", 0);
    sqlite3_stmt *zero = NULL;
    EXPECT(db_statement_text(db, text, strlen(text), &zero) == 0 && zero != NULL);
    char copy[64];
    snprintf(copy, sizeof copy, "SELECT %d", 0);
    sqlite3_stmt *same = NULL;
    EXPECT(db_statement_text(db, copy, strlen(copy), &same) == 0 && same == zero);
    for (int index = 1; index <= 200; index++) {
        snprintf(text, sizeof text, "SELECT %d", index);
        sqlite3_stmt *stmt = NULL;
        EXPECT(db_statement_text(db, text, strlen(text), &stmt) == 0);
        EXPECT(sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_int(stmt, 0) == index);
        sqlite3_reset(stmt);
    }
    snprintf(text, sizeof text, "SELECT %d", 200);
    sqlite3_stmt *recent = NULL;
    EXPECT(db_statement_text(db, text, strlen(text), &recent) == 0);
    EXPECT(sqlite3_step(recent) == SQLITE_ROW);
    sqlite3_reset(recent);
    sqlite3_stmt *bad = NULL;
    EXPECT_EQ_INT(db_statement_text(db, "SELEC", 5, &bad), ERR_INVAL);
    EXPECT(bad == NULL);
    db_close(db);
    support_remove_tree(root);
}

TEST(db_transactions_commit_and_roll_back) {
    const char *root = support_directory("db-tx");
    char path[300];
    db_test_path(path, sizeof path, root, "docket.db");
    struct db *db = NULL;
    struct db_error error;
    EXPECT(db_open(&db, path, &error) == 0);
    EXPECT(db_begin(db) == 0);
    EXPECT(db_exec(db, "INSERT INTO offsets VALUES('a', 1)") == 0);
    db_rollback(db);
    EXPECT_EQ_INT(db_test_int(db, "SELECT count(*) FROM offsets"), 0);
    EXPECT(db_begin(db) == 0);
    EXPECT(db_exec(db, "INSERT INTO offsets VALUES('a', 1)") == 0);
    EXPECT(db_commit(db) == 0);
    EXPECT_EQ_INT(db_test_int(db, "SELECT count(*) FROM offsets"), 1);
    db_rollback(db); /* outside a transaction: nothing to do */
    EXPECT_EQ_INT(db_exec(db, "INSERT INTO offsets VALUES('a', 2)"), ERR_EXISTS);
    EXPECT_EQ_INT(db_exec(db, "SELEC nonsense"), ERR_INVAL);
    db_close(db);
    support_remove_tree(root);
}

TEST(db_error_codes_map_to_the_table) {
    EXPECT_EQ_INT(db_error_code(SQLITE_OK), 0);
    EXPECT_EQ_INT(db_error_code(SQLITE_DONE), 0);
    EXPECT_EQ_INT(db_error_code(SQLITE_BUSY), ERR_BUSY);
    EXPECT_EQ_INT(db_error_code(SQLITE_BUSY_SNAPSHOT), ERR_BUSY);
    EXPECT_EQ_INT(db_error_code(SQLITE_LOCKED), ERR_BUSY);
    EXPECT_EQ_INT(db_error_code(SQLITE_CORRUPT), ERR_CORRUPT);
    EXPECT_EQ_INT(db_error_code(SQLITE_NOTADB), ERR_CORRUPT);
    EXPECT_EQ_INT(db_error_code(SQLITE_FULL), ERR_NOSPC);
    EXPECT_EQ_INT(db_error_code(SQLITE_NOMEM), ERR_NOMEM);
    EXPECT_EQ_INT(db_error_code(SQLITE_CONSTRAINT_UNIQUE), ERR_EXISTS);
    EXPECT_EQ_INT(db_error_code(SQLITE_READONLY), ERR_DENIED);
    EXPECT_EQ_INT(db_error_code(SQLITE_IOERR_FSYNC), ERR_IO);
    EXPECT_EQ_INT(db_error_code(SQLITE_CANTOPEN), ERR_IO);
    EXPECT_EQ_INT(db_error_code(SQLITE_TOOBIG), ERR_LIMIT);
    EXPECT_EQ_INT(db_error_code(SQLITE_INTERRUPT), ERR_AGAIN);
}

/* Collects tokens as "a|b|c|". */
static int db_test_collect(void *arg, const char *token, size_t length) {
    char *out = arg;
    size_t used = strlen(out);
    if (used + length + 2 > 256)
        return ERR_LIMIT;
    memcpy(out + used, token, length);
    out[used + length] = '|';
    out[used + length + 1] = '\0';
    return 0;
}

static int db_test_stop_after_one(void *arg, const char *token, size_t length) {
    (void)token;
    (void)length;
    int *count = arg;
    return ++*count == 1 ? 42 : 0;
}

TEST(db_tokenize_folds_like_the_index) {
    const char *root = support_directory("db-tokens");
    char path[300];
    db_test_path(path, sizeof path, root, "docket.db");
    struct db *db = NULL;
    struct db_error error;
    EXPECT(db_open(&db, path, &error) == 0);
    char tokens[256] = "";
    const char *text = "Ünïcode CAFÉ, \"quoted\" AND x*y-z NEAR(a b)";
    EXPECT(db_tokenize(db, text, strlen(text), db_test_collect, tokens) == 0);
    EXPECT_STR(tokens, "unicode|cafe|quoted|and|x|y|z|near|a|b|");
    int count = 0;
    EXPECT_EQ_INT(db_tokenize(db, "one two three", 13, db_test_stop_after_one, &count), 42);
    EXPECT_EQ_INT(count, 1);
    /* docket_match agrees with the FTS index it stands in for. */
    EXPECT_EQ_INT(db_test_int(db, "SELECT docket_match('cafe au', 1, 'Café', 'Au lait')"), 1);
    EXPECT_EQ_INT(db_test_int(db, "SELECT docket_match('cafe au', 0, 'Café', 'Aux')"), 0);
    EXPECT_EQ_INT(db_test_int(db, "SELECT docket_match('cafe au', 1, 'Café', 'Aux')"), 1);
    EXPECT_EQ_INT(db_test_int(db, "SELECT docket_match('milk', 1, 'Buy', 'no')"), 0);
    EXPECT_EQ_INT(db_test_int(db, "SELECT docket_match('', 1, 'Buy', 'no')"), 0);
    EXPECT_EQ_INT(db_test_int(db, "SELECT docket_match('buy', 0, NULL, NULL)"), 0);
    db_close(db);
    support_remove_tree(root);
}

TEST(db_reset_projections_keeps_other_offsets) {
    const char *root = support_directory("db-reset");
    char path[300];
    db_test_path(path, sizeof path, root, "docket.db");
    struct db *db = NULL;
    struct db_error error;
    EXPECT(db_open(&db, path, &error) == 0);
    EXPECT(db_exec(db, "INSERT INTO offsets VALUES('projection', 9), ('kafka', 4);"
                       "INSERT INTO users(id, username, role, timezone, created_ns)"
                       " VALUES('u', 'alice', 'user', 'UTC', 1);") == 0);
    sqlite3_stmt *cached = db_statement(db, "SELECT count(*) FROM users");
    EXPECT(cached != NULL);
    EXPECT(db_reset_projections(db) == 0);
    EXPECT_EQ_INT(db_test_int(db, "SELECT count(*) FROM users"), 0);
    EXPECT_EQ_INT(db_test_int(db, "SELECT count(*) FROM offsets WHERE name = 'projection'"), 0);
    EXPECT_EQ_INT(db_test_int(db, "SELECT next_offset FROM offsets WHERE name = 'kafka'"), 4);
    EXPECT_EQ_INT(db_test_int(db, "PRAGMA user_version"), 2);
    sqlite3_stmt *fresh = db_statement(db, "SELECT count(*) FROM users");
    EXPECT(fresh != NULL && sqlite3_step(fresh) == SQLITE_ROW);
    sqlite3_reset(fresh);
    db_close(db);
    support_remove_tree(root);
}
