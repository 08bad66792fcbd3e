/*
 * db.c - Docket's SQLite connection: open with the pragmas of db.h, the
 * schema migrations (one function per PRAGMA user_version), two caches of
 * prepared statements, transactions and error mapping.
 *
 * Statement caches. db_statement() caches by the pointer of a string
 * literal: the hot paths (projection, single-row reads) prepare each
 * statement once per connection and reuse it, which saves the parse and plan
 * (tens of microseconds) on every call. List queries assemble their SQL from
 * the filters present, so db_statement_text() caches by the text itself in a
 * small least-recently-used table: the handful of filter shapes a UI uses are
 * planned once. Both caches are bounded (DB_STATEMENTS_MAX,
 * DB_TEXT_STATEMENTS_MAX below) so a bug that builds SQL without end cannot
 * grow memory.
 *
 * Schema rules. Every migration uses IF NOT EXISTS, so migrations can run
 * again after db_reset_projections dropped the projection tables (that is
 * how a rebuild recreates them at the current version). Tables other modules
 * add later go in new migration functions here.
 */
#include "db.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/mem.h"

#include <sqlite3.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Distinct SQL literals passed to db_statement. Docket's modules use a few
 * dozen; the cache is a fixed open-addressing table of this many slots (a
 * power of two), kept at most half full so probes stay short. */
#define DB_STATEMENTS_MAX 512

/* Assembled SQL texts kept prepared by db_statement_text (least recently
 * used evicted). A task list has at most a few dozen shapes in real use. */
#define DB_TEXT_STATEMENTS_MAX 48

/* Longest SQL text accepted by db_statement_text, bytes. The largest list
 * query (every filter at its maximum count) is about 6 KiB. */
#define DB_TEXT_STATEMENT_BYTES (16 * 1024)

/* One cached statement prepared from a string literal. */
struct db_cached_statement {
    const char *sql;    /* the literal's address (the key); NULL = free slot */
    sqlite3_stmt *stmt; /* prepared once, reset on each hand-out */
};

/* One cached statement prepared from assembled text. */
struct db_text_statement {
    char *sql;          /* owned copy of the text; NULL = free entry */
    size_t length;      /* bytes of sql */
    uint64_t hash;      /* FNV-1a of sql, to skip most memcmp calls */
    uint64_t last_used; /* value of db->clock at the last hand-out */
    sqlite3_stmt *stmt; /* prepared statement */
};

struct db {
    fts5_tokenizer tokenizer_api; /* unicode61's methods (FTS5's own) */
    Fts5Tokenizer *tokenizer;     /* one unicode61 instance, remove_diacritics 2 */
    sqlite3 *handle;              /* the one connection */
    struct db_cached_statement statements[DB_STATEMENTS_MAX];         /* by literal address */
    size_t statement_count;                                           /* slots used */
    struct db_text_statement text_statements[DB_TEXT_STATEMENTS_MAX]; /* by text, LRU */
    uint64_t clock;                                                   /* hand-out counter for LRU */
};

int db_error_code(int sqlite_code) {
    switch (sqlite_code & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_NOMEM:
        return ERR_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ERR_BUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return ERR_CORRUPT;
    case SQLITE_FULL:
        return ERR_NOSPC;
    case SQLITE_CONSTRAINT:
        return ERR_EXISTS;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return ERR_DENIED;
    case SQLITE_TOOBIG:
        return ERR_LIMIT;
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
        return ERR_RANGE;
    case SQLITE_NOTFOUND:
        return ERR_NOTFOUND;
    case SQLITE_INTERRUPT:
    case SQLITE_ABORT:
        return ERR_AGAIN;
    case SQLITE_MISUSE:
    case SQLITE_ERROR:
        return ERR_INVAL;
    default:
        return ERR_IO;
    }
}

/* Logs a failed SQLite call with the connection's message; returns the code. */
static int db_fail(struct db *db, int sqlite_code, const char *what) {
    char quoted[400];
    logger_quote(sqlite3_errmsg(db->handle), quoted, sizeof quoted);
    LOG_ERROR("db", "sqlite call failed", "what=%s code=%d error=%s", what, sqlite_code, quoted);
    return db_error_code(sqlite_code);
}

struct sqlite3 *db_handle(struct db *db) {
    CHECK(db != NULL);
    return db->handle;
}

int db_exec(struct db *db, const char *sql) {
    CHECK(db != NULL && sql != NULL);
    char *message = NULL;
    int rc = sqlite3_exec(db->handle, sql, NULL, NULL, &message);
    if (rc == SQLITE_OK)
        return 0;
    char quoted[400];
    logger_quote(message != NULL ? message : sqlite3_errstr(rc), quoted, sizeof quoted);
    LOG_ERROR("db", "sqlite exec failed", "code=%d error=%s", rc, quoted);
    sqlite3_free(message);
    return db_error_code(rc);
}

/* ---- Statement caches -------------------------------------------------- */

static size_t db_pointer_slot(const char *sql) {
    uintptr_t value = (uintptr_t)sql;
    value ^= value >> 17;
    value *= (uintptr_t)0x9e3779b97f4a7c15ULL;
    return (size_t)(value >> 7) & (DB_STATEMENTS_MAX - 1);
}

/* Prepares `sql`; on failure logs it, sets *code (if not NULL), returns NULL. */
static sqlite3_stmt *db_prepare(struct db *db, const char *sql, size_t length, int *code) {
    sqlite3_stmt *stmt = NULL;
    int rc =
        sqlite3_prepare_v3(db->handle, sql, (int)length, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
    if (rc != SQLITE_OK) {
        char quoted[200];
        logger_quote(sql, quoted, sizeof quoted);
        db_fail(db, rc, "prepare");
        LOG_ERROR("db", "statement did not prepare", "sql=%s", quoted);
        if (code != NULL)
            *code = rc;
        return NULL;
    }
    return stmt;
}

sqlite3_stmt *db_statement(struct db *db, const char *sql) {
    CHECK(db != NULL && sql != NULL);
    _Static_assert((DB_STATEMENTS_MAX & (DB_STATEMENTS_MAX - 1)) == 0, "power of two");
    size_t slot = db_pointer_slot(sql);
    for (size_t probe = 0; probe < DB_STATEMENTS_MAX; probe++) {
        struct db_cached_statement *entry = &db->statements[slot];
        if (entry->sql == sql) {
            sqlite3_reset(entry->stmt);
            sqlite3_clear_bindings(entry->stmt);
            return entry->stmt;
        }
        if (entry->sql == NULL)
            break;
        slot = (slot + 1) & (DB_STATEMENTS_MAX - 1);
    }
    if (db->statement_count >= DB_STATEMENTS_MAX / 2) {
        LOG_ERROR("db", "statement cache is full", "limit=%d", DB_STATEMENTS_MAX / 2);
        return NULL;
    }
    sqlite3_stmt *stmt = db_prepare(db, sql, strlen(sql), NULL);
    if (stmt == NULL)
        return NULL;
    CHECK(db->statements[slot].sql == NULL);
    db->statements[slot].sql = sql;
    db->statements[slot].stmt = stmt;
    db->statement_count++;
    return stmt;
}

static uint64_t db_text_hash(const char *text, size_t length) {
    uint64_t hash = 1469598103934665603ULL;
    for (size_t index = 0; index < length; index++) {
        hash ^= (unsigned char)text[index];
        hash *= 1099511628211ULL;
    }
    return hash;
}

int db_statement_text(struct db *db, const char *sql, size_t length, sqlite3_stmt **stmt_out) {
    CHECK(db != NULL && sql != NULL && stmt_out != NULL);
    *stmt_out = NULL;
    if (length > DB_TEXT_STATEMENT_BYTES)
        return ERR_LIMIT;
    uint64_t hash = db_text_hash(sql, length);
    struct db_text_statement *victim = &db->text_statements[0];
    db->clock++;
    for (size_t index = 0; index < DB_TEXT_STATEMENTS_MAX; index++) {
        struct db_text_statement *entry = &db->text_statements[index];
        if (entry->sql != NULL && entry->hash == hash && entry->length == length &&
            memcmp(entry->sql, sql, length) == 0) {
            entry->last_used = db->clock;
            sqlite3_reset(entry->stmt);
            sqlite3_clear_bindings(entry->stmt);
            *stmt_out = entry->stmt;
            return 0;
        }
        if (victim->sql != NULL && (entry->sql == NULL || entry->last_used < victim->last_used))
            victim = entry;
    }
    char *copy = mem_strndup(sql, length);
    if (copy == NULL)
        return ERR_NOMEM;
    int code = SQLITE_OK;
    sqlite3_stmt *stmt = db_prepare(db, sql, length, &code);
    if (stmt == NULL) {
        mem_free(copy);
        return db_error_code(code);
    }
    if (victim->sql != NULL) {
        sqlite3_finalize(victim->stmt);
        mem_free(victim->sql);
    }
    *victim = (struct db_text_statement){copy, length, hash, db->clock, stmt};
    *stmt_out = stmt;
    return 0;
}

static void db_statements_finalize(struct db *db) {
    for (size_t index = 0; index < DB_STATEMENTS_MAX; index++) {
        if (db->statements[index].sql != NULL)
            sqlite3_finalize(db->statements[index].stmt);
        db->statements[index] = (struct db_cached_statement){NULL, NULL};
    }
    db->statement_count = 0;
    for (size_t index = 0; index < DB_TEXT_STATEMENTS_MAX; index++) {
        struct db_text_statement *entry = &db->text_statements[index];
        if (entry->sql != NULL) {
            sqlite3_finalize(entry->stmt);
            mem_free(entry->sql);
        }
        memset(entry, 0, sizeof *entry);
    }
}

/* ---- Transactions ------------------------------------------------------ */

static int db_run_literal(struct db *db, const char *sql, const char *what) {
    sqlite3_stmt *stmt = db_statement(db, sql);
    if (stmt == NULL)
        return ERR_IO;
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : db_fail(db, rc, what);
}

int db_begin(struct db *db) {
    CHECK(sqlite3_get_autocommit(db->handle));
    return db_run_literal(db, "BEGIN IMMEDIATE", "begin");
}

int db_commit(struct db *db) {
    CHECK(!sqlite3_get_autocommit(db->handle));
    return db_run_literal(db, "COMMIT", "commit");
}

void db_rollback(struct db *db) {
    CHECK(db != NULL);
    /* After some errors (SQLITE_FULL, IOERR) SQLite has already rolled
     * back; a second ROLLBACK would only fail. */
    if (sqlite3_get_autocommit(db->handle))
        return;
    (void)db_run_literal(db, "ROLLBACK", "rollback");
}

/* ---- Schema ------------------------------------------------------------ */

/* Version 1: the projections of issue 4 and the offsets table. Sort indexes
 * end in the key the list query sorts by, then id (the keyset tie-break), and
 * start with (owner_id, completed) because every list is one user's, and
 * the default status filter is "open". */
static const char db_schema_1[] =
    "CREATE TABLE IF NOT EXISTS offsets("
    " name TEXT PRIMARY KEY,"
    " next_offset INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS users("
    " id TEXT PRIMARY KEY,"
    " username TEXT UNIQUE NOT NULL,"
    " role TEXT NOT NULL,"
    " timezone TEXT NOT NULL,"
    " password_hash TEXT NOT NULL DEFAULT '',"
    " settings TEXT NOT NULL DEFAULT '{}',"
    " created_ns INTEGER NOT NULL,"
    " last_sequence INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS tasks("
    " rowid INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " owner_id TEXT NOT NULL,"
    " title TEXT NOT NULL,"
    " description TEXT NOT NULL,"
    " completed INTEGER NOT NULL,"
    " completed_ns INTEGER,"
    " priority INTEGER NOT NULL,"
    " due_ns INTEGER,"
    " due_sort INTEGER NOT NULL,"
    " created_ns INTEGER NOT NULL,"
    " updated_ns INTEGER NOT NULL,"
    " version INTEGER NOT NULL,"
    " json TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS tasks_by_due ON tasks(owner_id, completed, due_sort, id);"
    "CREATE INDEX IF NOT EXISTS tasks_by_priority ON tasks(owner_id, completed, priority, id);"
    "CREATE INDEX IF NOT EXISTS tasks_by_created ON tasks(owner_id, completed, created_ns, id);"
    "CREATE INDEX IF NOT EXISTS tasks_by_updated ON tasks(owner_id, completed, updated_ns, id);"
    "CREATE INDEX IF NOT EXISTS tasks_by_title"
    " ON tasks(owner_id, completed, title COLLATE NOCASE, id);"
    "CREATE TABLE IF NOT EXISTS task_tags("
    " owner_id TEXT NOT NULL,"
    " tag TEXT NOT NULL,"
    " task_rowid INTEGER NOT NULL,"
    " PRIMARY KEY(owner_id, tag, task_rowid)) WITHOUT ROWID;"
    "CREATE VIRTUAL TABLE IF NOT EXISTS tasks_fts USING fts5("
    " title, description, content='tasks', content_rowid='rowid',"
    " tokenize='unicode61 remove_diacritics 2');"
    "CREATE TABLE IF NOT EXISTS events("
    " \"offset\" INTEGER PRIMARY KEY,"
    " user_id TEXT NOT NULL,"
    " sequence INTEGER NOT NULL,"
    " task_id TEXT,"
    " type TEXT NOT NULL,"
    " time_ns INTEGER NOT NULL,"
    " json TEXT NOT NULL,"
    " UNIQUE(user_id, sequence));"
    "CREATE INDEX IF NOT EXISTS events_by_task ON events(user_id, task_id, sequence)"
    " WHERE task_id IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS audit("
    " id INTEGER PRIMARY KEY,"
    " time_ns INTEGER NOT NULL,"
    " user_id TEXT NOT NULL,"
    " actor TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " task_id TEXT,"
    " payload TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS audit_by_user ON audit(user_id, time_ns);"
    "CREATE INDEX IF NOT EXISTS audit_by_time ON audit(time_ns);"
    "CREATE INDEX IF NOT EXISTS audit_by_task ON audit(task_id, time_ns)"
    " WHERE task_id IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS idempotency("
    " user_id TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " correlation_id TEXT NOT NULL,"
    " request_hash TEXT NOT NULL,"
    " status INTEGER NOT NULL,"
    " body TEXT NOT NULL,"
    " created_ns INTEGER NOT NULL,"
    " PRIMARY KEY(user_id, key));"
    "CREATE INDEX IF NOT EXISTS idempotency_by_time ON idempotency(created_ns);";

static int db_migrate_1(struct db *db) {
    return db_exec(db, db_schema_1);
}

/* Issue 6: timers (reminders and spawns of recurring tasks), the spawned
 * successor of a recurring task, and Web Push subscriptions.
 *   reminders: one row per (task, kind 0 reminder / 1 spawn, instant in Unix
 *     ms); state 0 pending, 1 fired, 2 missed, 3 cancelled, 4 done (a spawn
 *     that found the series ended); rev = the log offset of the event that
 *     last changed the row, so the scheduler reads changes by rev.
 *   tasks.next_id: the occurrence spawned from this task, "end" when its
 *     series ended, NULL before either. */
static const char db_schema_2[] =
    "CREATE TABLE IF NOT EXISTS reminders("
    " task_id TEXT NOT NULL,"
    " kind INTEGER NOT NULL,"
    " at_ms INTEGER NOT NULL,"
    " user_id TEXT NOT NULL,"
    " state INTEGER NOT NULL,"
    " rev INTEGER NOT NULL,"
    " PRIMARY KEY(task_id, kind, at_ms)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS reminders_by_rev ON reminders(rev);"
    "CREATE INDEX IF NOT EXISTS reminders_pending ON reminders(at_ms) WHERE state = 0;"
    "CREATE INDEX IF NOT EXISTS reminders_done ON reminders(at_ms) WHERE state <> 0;"
    "ALTER TABLE tasks ADD COLUMN next_id TEXT;"
    "CREATE TABLE IF NOT EXISTS push_subscriptions("
    " id TEXT PRIMARY KEY,"
    " user_id TEXT NOT NULL,"
    " endpoint TEXT NOT NULL,"
    " p256dh TEXT NOT NULL,"
    " auth TEXT NOT NULL,"
    " created_ns INTEGER NOT NULL,"
    " UNIQUE(user_id, endpoint));";

static int db_migrate_2(struct db *db) {
    return db_exec(db, db_schema_2);
}

/* Migration i brings user_version from i to i + 1. Append, never edit. */
static const db_migration_fn db_migrations[] = {
    db_migrate_1,
    db_migrate_2,
};
#define DB_SCHEMA_VERSION (sizeof db_migrations / sizeof db_migrations[0])

static int db_user_version(struct db *db, int *version_out) {
    sqlite3_stmt *stmt = db_statement(db, "PRAGMA user_version");
    if (stmt == NULL)
        return ERR_IO;
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return db_fail(db, rc, "user_version");
    }
    *version_out = sqlite3_column_int(stmt, 0);
    sqlite3_reset(stmt);
    return 0;
}

/* Runs the migrations still missing, each in its own transaction with the
 * version bump, so a crash between two leaves a consistent version. */
static int db_migrate(struct db *db, const db_migration_fn *migrations, int migration_count,
                      char *message, size_t message_size) {
    for (int step = 0; step <= migration_count; step++) {
        int rc = db_begin(db);
        int version = 0;
        if (rc == 0)
            rc = db_user_version(db, &version);
        if (rc == 0 && (version < 0 || version > migration_count)) {
            snprintf(message, message_size,
                     "schema version %d is newer than this Docket's %d (downgrade?)", version,
                     migration_count);
            rc = ERR_UNSUPPORTED;
        }
        if (rc == 0 && version == migration_count) {
            db_rollback(db);
            return 0;
        }
        if (rc == 0)
            rc = migrations[version](db);
        char pragma[48];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version + 1);
        if (rc == 0)
            rc = db_exec(db, pragma);
        if (rc == 0)
            rc = db_commit(db);
        if (rc != 0) {
            db_rollback(db);
            if (message[0] == '\0')
                snprintf(message, message_size, "migration to schema version %d failed: %s",
                         version + 1, sqlite3_errmsg(db->handle));
            return rc;
        }
    }
    CHECK(!"unreachable: migrations did not converge");
    return ERR_IO;
}

/* Projection tables, dropped by db_reset_projections. The offsets table
 * stays: other consumers keep their positions in it. */
static const char db_drop_projections[] = "DROP TABLE IF EXISTS tasks_fts;"
                                          "DROP TABLE IF EXISTS task_tags;"
                                          "DROP TABLE IF EXISTS tasks;"
                                          "DROP TABLE IF EXISTS users;"
                                          "DROP TABLE IF EXISTS events;"
                                          "DROP TABLE IF EXISTS audit;"
                                          "DROP TABLE IF EXISTS idempotency;"
                                          "DROP TABLE IF EXISTS reminders;"
                                          "DROP TABLE IF EXISTS push_subscriptions;"
                                          "DELETE FROM offsets WHERE name = 'projection';"
                                          "PRAGMA user_version = 0;";

int db_reset_projections(struct db *db) {
    CHECK(db != NULL);
    /* Cached statements refer to the tables about to be dropped; SQLite would
     * re-prepare them, but dropping them keeps the caches honest. */
    db_statements_finalize(db);
    int rc = db_begin(db);
    if (rc == 0)
        rc = db_exec(db, db_drop_projections);
    if (rc == 0)
        rc = db_commit(db);
    if (rc != 0) {
        db_rollback(db);
        return rc;
    }
    char message[256] = "";
    return db_migrate(db, db_migrations, (int)DB_SCHEMA_VERSION, message, sizeof message);
}

/* ---- Full-text tokens and docket_match --------------------------------- */

/* Adapts FTS5's token callback to db_tokenize's. */
struct db_token_walk {
    int (*each)(void *arg, const char *token, size_t length); /* caller's callback */
    void *arg;                                                /* its argument */
    int stopped;                                              /* its nonzero result */
};

static int db_token_walk_step(void *context, int flags, const char *token, int length, int start,
                              int end) {
    (void)flags;
    (void)start;
    (void)end;
    struct db_token_walk *walk = context;
    walk->stopped = walk->each(walk->arg, token, (size_t)length);
    return walk->stopped != 0 ? SQLITE_DONE : SQLITE_OK;
}

static int db_tokenize_flags(struct db *db, int flags, const char *text, size_t length,
                             int (*each)(void *arg, const char *token, size_t length), void *arg) {
    CHECK(db->tokenizer != NULL && length <= INT32_MAX);
    struct db_token_walk walk = {each, arg, 0};
    int rc = db->tokenizer_api.xTokenize(db->tokenizer, &walk, flags, text, (int)length,
                                         db_token_walk_step);
    if (walk.stopped != 0)
        return walk.stopped;
    return rc == SQLITE_OK ? 0 : db_error_code(rc);
}

int db_tokenize(struct db *db, const char *text, size_t length,
                int (*each)(void *arg, const char *token, size_t length), void *arg) {
    CHECK(db != NULL && (text != NULL || length == 0) && each != NULL);
    return db_tokenize_flags(db, FTS5_TOKENIZE_QUERY, text, length, each, arg);
}

/* docket_match's first argument, parsed once per statement run and kept as
 * SQLite auxiliary data while the bound value stays the same. */
struct db_match_query {
    size_t count;                            /* tokens */
    const char *tokens[DB_MATCH_TOKENS_MAX]; /* into text */
    size_t lengths[DB_MATCH_TOKENS_MAX];     /* bytes of each */
    char text[];                             /* copy of the argument */
};

/* One row's progress: which tokens were seen so far. */
struct db_match_row {
    const struct db_match_query *query; /* what to look for */
    int prefix;                         /* last token matches as a prefix */
    size_t remaining;                   /* tokens not seen yet */
    bool seen[DB_MATCH_TOKENS_MAX];     /* per token */
};

/* Splits docket_match's first argument. NULL with *too_many set when it
 * has more than DB_MATCH_TOKENS_MAX tokens, NULL alone when out of memory. */
static struct db_match_query *db_match_parse(const char *text, size_t length, bool *too_many) {
    *too_many = false;
    struct db_match_query *query = mem_alloc(sizeof *query + length + 1);
    if (query == NULL)
        return NULL;
    memcpy(query->text, text, length);
    query->text[length] = '\0';
    query->count = 0;
    size_t start = 0;
    for (size_t index = 0; index <= length; index++) {
        if (index < length && query->text[index] != ' ')
            continue;
        if (index > start) {
            if (query->count == DB_MATCH_TOKENS_MAX) {
                *too_many = true;
                mem_free(query);
                return NULL;
            }
            query->tokens[query->count] = query->text + start;
            query->lengths[query->count++] = index - start;
        }
        start = index + 1;
    }
    return query;
}

static int db_match_token(void *arg, const char *token, size_t length) {
    struct db_match_row *row = arg;
    const struct db_match_query *query = row->query;
    for (size_t index = 0; index < query->count; index++) {
        if (row->seen[index])
            continue;
        bool prefix = row->prefix && index + 1 == query->count;
        size_t want = query->lengths[index];
        if ((prefix ? length >= want : length == want) &&
            memcmp(token, query->tokens[index], want) == 0) {
            row->seen[index] = true;
            row->remaining--;
        }
    }
    return row->remaining == 0 ? 1 : 0;
}

static void db_match_function(sqlite3_context *context, int argc, sqlite3_value **argv) {
    CHECK(argc == 4);
    struct db *db = sqlite3_user_data(context);
    struct db_match_query *query = sqlite3_get_auxdata(context, 0);
    if (query == NULL) {
        const char *text = (const char *)sqlite3_value_text(argv[0]);
        bool too_many = false;
        query = db_match_parse(text != NULL ? text : "", (size_t)sqlite3_value_bytes(argv[0]),
                               &too_many);
        if (query == NULL && too_many) {
            sqlite3_result_error(context, "docket_match: too many tokens", -1);
            return;
        }
        if (query == NULL) {
            sqlite3_result_error_nomem(context);
            return;
        }
        sqlite3_set_auxdata(context, 0, query, mem_free);
        query = sqlite3_get_auxdata(context, 0);
        if (query == NULL) {
            sqlite3_result_error_nomem(context);
            return;
        }
    }
    struct db_match_row row = {.query = query, .prefix = sqlite3_value_int(argv[1])};
    row.remaining = query->count;
    /* FTS5 matches nothing for a query without tokens; so does this. */
    for (int column = 2; column < 4 && row.remaining > 0 && query->count > 0; column++) {
        const char *text = (const char *)sqlite3_value_text(argv[column]);
        int rc = db_tokenize_flags(db, FTS5_TOKENIZE_DOCUMENT, text != NULL ? text : "",
                                   (size_t)sqlite3_value_bytes(argv[column]), db_match_token, &row);
        if (rc < 0) {
            sqlite3_result_error_code(context, SQLITE_NOMEM);
            return;
        }
    }
    sqlite3_result_int(context, query->count > 0 && row.remaining == 0);
}

/* Finds FTS5's unicode61 tokenizer (through the fts5_api pointer SQLite
 * hands out to `SELECT fts5(?)`) and registers docket_match. */
static int db_text_setup(struct db *db) {
    fts5_api *api = NULL;
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db->handle, "SELECT fts5(?1)", -1, &stmt, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_pointer(stmt, 1, (void *)&api, "fts5_api_ptr", NULL);
        rc = sqlite3_step(stmt);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW || api == NULL)
        return rc == SQLITE_ROW ? ERR_UNSUPPORTED : db_error_code(rc);
    void *user_data = NULL;
    rc = api->xFindTokenizer(api, "unicode61", &user_data, &db->tokenizer_api);
    const char *arguments[] = {"remove_diacritics", "2"};
    if (rc == SQLITE_OK)
        rc = db->tokenizer_api.xCreate(user_data, arguments, 2, &db->tokenizer);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function_v2(db->handle, "docket_match", 4,
                                        SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, db,
                                        db_match_function, NULL, NULL, NULL);
    return db_error_code(rc);
}

/* ---- Open and close ---------------------------------------------------- */

/* WAL + synchronous=NORMAL: commits do not fsync (a power loss may lose the
 * last ones, which the projection re-applies from the log, see db.h). The
 * page cache is bounded at 64 MiB; mmap is off so an I/O error is an error
 * code, not a SIGBUS. */
static const char db_pragmas[] = "PRAGMA synchronous = NORMAL;"
                                 "PRAGMA foreign_keys = ON;"
                                 "PRAGMA cache_size = -65536;"
                                 "PRAGMA mmap_size = 0;"
                                 "PRAGMA temp_store = MEMORY;";

static int db_set_wal(struct db *db) {
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db->handle, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    int ok = rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(stmt, 0), "wal") == 0;
    sqlite3_finalize(stmt);
    if (ok)
        return 0;
    return rc == SQLITE_ROW ? ERR_UNSUPPORTED : db_error_code(rc);
}

int db_open(struct db **db_out, const char *path, struct db_error *error) {
    return db_open_schema(db_out, path, db_migrations, DB_SCHEMA_VERSION, error);
}

int db_open_schema(struct db **db_out, const char *path, const db_migration_fn *migrations,
                   size_t migration_count, struct db_error *error) {
    CHECK(db_out != NULL && path != NULL && error != NULL);
    CHECK(migrations != NULL && migration_count > 0 && migration_count < 1000);
    *db_out = NULL;
    error->message[0] = '\0';
    char detail[400] = "";
    struct db *db = mem_calloc(1, sizeof *db);
    if (db == NULL) {
        snprintf(error->message, sizeof error->message, "%s: out of memory", path);
        return ERR_NOMEM;
    }
    int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    int code = sqlite3_open_v2(path, &db->handle, flags, NULL);
    int rc = db_error_code(code);
    if (rc == 0)
        rc = db_error_code(sqlite3_busy_timeout(db->handle, 5000));
    if (rc == 0)
        rc = db_set_wal(db);
    if (rc == 0)
        rc = db_exec(db, db_pragmas);
    if (rc == 0)
        rc = db_text_setup(db);
    if (rc == 0)
        rc = db_migrate(db, migrations, (int)migration_count, detail, sizeof detail);
    if (rc != 0)
        goto fail;
    *db_out = db;
    return 0;
fail:
    if (rc == ERR_INVAL)
        rc = ERR_IO; /* SQLITE_ERROR while opening is a file problem (db.h) */
    snprintf(error->message, sizeof error->message, "cannot open database %s: %s", path,
             detail[0] != '\0'    ? detail
             : db->handle != NULL ? sqlite3_errmsg(db->handle)
                                  : sqlite3_errstr(code));
    db_close(db);
    return rc;
}

void db_close(struct db *db) {
    if (db == NULL)
        return;
    db_statements_finalize(db);
    if (db->tokenizer != NULL)
        db->tokenizer_api.xDelete(db->tokenizer);
    if (db->handle != NULL) {
        int rc = sqlite3_close(db->handle);
        CHECK(rc == SQLITE_OK); /* every statement is ours and finalized above */
    }
    mem_free(db);
}
