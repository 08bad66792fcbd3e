/*
 * db.h - Docket's SQLite database (<data_dir>/docket.db): opening it with the
 * pragmas Docket relies on, the schema and its migrations, cached prepared
 * statements and transactions.
 *
 * The database holds projections of the event log only (ARCHITECTURE.md
 * invariant 1): everything in it can be rebuilt from the log, which is why it
 * runs in WAL mode with synchronous=NORMAL. A commit that a power loss rolls
 * back also rolls back the projection offset stored in the same transaction,
 * so the projection simply re-applies those events at the next start.
 *
 * Threading: one connection, used only from the loop thread (and by CLI
 * commands that run without a loop).
 */
#ifndef DOCKET_STORE_DB_H
#define DOCKET_STORE_DB_H

#include <stddef.h>
#include <stdint.h>

struct db;
struct sqlite3;
struct sqlite3_stmt;

/* Why db_open failed, for people. */
struct db_error {
    char message[512];
};

/* Opens (creating) the database file at `path`, applies pragmas
 * (journal_mode=WAL, synchronous=NORMAL, foreign_keys=ON, busy_timeout,
 * temp_store=MEMORY, a bounded cache) and migrates the schema to the current
 * version (PRAGMA user_version). ERR_BUSY if the file is locked by another
 * writer, ERR_CORRUPT when SQLite says so, ERR_IO otherwise. */
int db_open(struct db **db_out, const char *path, struct db_error *error);
void db_close(struct db *db);

/* One schema migration: brings PRAGMA user_version from i to i + 1 (it runs
 * inside the transaction that bumps the version). */
typedef int (*db_migration_fn)(struct db *db);

/* As db_open, for a database with another schema than docket.db (e.g. the
 * notifier's notify.db): same pragmas, same migration rules, `migrations[i]`
 * brings user_version from i to i + 1 (append, never edit). */
int db_open_schema(struct db **db_out, const char *path, const db_migration_fn *migrations,
                   size_t migration_count, struct db_error *error);

struct sqlite3 *db_handle(struct db *db);

/* A prepared statement for `sql`, cached by the pointer value of `sql` (pass
 * string literals); reset and with bindings cleared. NULL on error (logged). */
struct sqlite3_stmt *db_statement(struct db *db, const char *sql);

/* A prepared statement for assembled SQL of `length` bytes (list queries
 * whose text depends on the filters), cached by its text in a small LRU
 * table; reset and with bindings cleared. It stays valid until
 * DB_TEXT_STATEMENTS_MAX other texts were asked for, so use it before asking
 * for another. 0 with *stmt_out set; ERR_NOMEM, ERR_LIMIT for text over
 * 16 KiB, or the prepare error (logged). */
int db_statement_text(struct db *db, const char *sql, size_t length,
                      struct sqlite3_stmt **stmt_out);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. 0 or a negative code. */
int db_begin(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);

/* Runs one or more statements without results (schema, maintenance). */
int db_exec(struct db *db, const char *sql);

/* ---- Full-text tokens ---------------------------------------------------
 *
 * The tasks_fts index uses FTS5's unicode61 tokenizer with
 * remove_diacritics 2. db_tokenize runs that same tokenizer, so callers can
 * turn user input into exactly the tokens the index holds (the list query
 * quotes each one, which makes FTS5 operators in user input plain text).
 *
 * SQL function docket_match(tokens, prefix, title, description): 1 when
 * every token of `tokens` (tokens separated by single spaces, at most
 * DB_MATCH_TOKENS_MAX) occurs in title or description, the last one as a
 * prefix when `prefix` is 1; the same rows as tasks_fts MATCH
 * '"t1" "t2" "t3"*'. The list query uses it to test candidate rows it
 * reaches through a sort index, where probing the FTS index row by row
 * costs ~60 us instead of ~1 us. */
#define DB_MATCH_TOKENS_MAX 256

/* Calls `each` for every token of `text` (folded as the index folds it);
 * `each` returns 0 to go on or a nonzero value, which stops the walk and is
 * returned. 0, that value, or ERR_NOMEM. */
int db_tokenize(struct db *db, const char *text, size_t length,
                int (*each)(void *arg, const char *token, size_t length), void *arg);

/* Drops every projection table and recreates the schema (docket rebuild). */
int db_reset_projections(struct db *db);

/* Maps a SQLite result code to the err.h table. */
int db_error_code(int sqlite_code);

#endif
