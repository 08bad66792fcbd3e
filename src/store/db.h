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

struct sqlite3 *db_handle(struct db *db);

/* A prepared statement for `sql`, cached by the pointer value of `sql` (pass
 * string literals); reset and with bindings cleared. NULL on error (logged). */
struct sqlite3_stmt *db_statement(struct db *db, const char *sql);

/* A prepared statement for assembled SQL of `length` bytes (list queries
 * whose text depends on the filters), cached by its text in a small LRU
 * table; reset and with bindings cleared. It stays valid until
 * DB_TEXT_STATEMENTS_MAX other texts were asked for, so use it before asking
 * for another. NULL on error (logged) or for text over 16 KiB. */
struct sqlite3_stmt *db_statement_text(struct db *db, const char *sql, size_t length);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. 0 or a negative code. */
int db_begin(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);

/* Runs one or more statements without results (schema, maintenance). */
int db_exec(struct db *db, const char *sql);

/* Drops every projection table and recreates the schema (docket rebuild). */
int db_reset_projections(struct db *db);

/* Maps a SQLite result code to the err.h table. */
int db_error_code(int sqlite_code);

#endif
