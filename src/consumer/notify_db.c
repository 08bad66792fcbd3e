/*
 * notify_db.c - notify.db's schema and its migrations (see notify_db.h). Like
 * docket.db's, every statement uses IF NOT EXISTS and the list is only ever
 * appended to.
 */
#include "notify_db.h"

#include "../base/check.h"
#include "../store/db.h"

/* Version 1: the DLQ mirror with its offset row, and the notifier's
 * deliveries. dlq_by_state serves the admin list filtered by state, newest
 * first (id descending); deliveries_due finds the next deliveries to try. */
static const char notify_db_schema_1[] =
    "CREATE TABLE IF NOT EXISTS offsets("
    " name TEXT PRIMARY KEY,"
    " next_offset INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS dlq("
    " id TEXT PRIMARY KEY,"
    " consumer TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " user_id TEXT,"
    " event TEXT NOT NULL,"
    " item TEXT NOT NULL,"
    " error TEXT NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " failed_ns INTEGER NOT NULL,"
    " state TEXT NOT NULL,"
    " redriven_ns INTEGER,"
    " \"offset\" INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS dlq_by_state ON dlq(state, id);"
    "CREATE TABLE IF NOT EXISTS deliveries("
    " key TEXT PRIMARY KEY,"
    " user_id TEXT NOT NULL,"
    " channel TEXT NOT NULL,"
    " reminder_key TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " next_ns INTEGER,"
    " error TEXT,"
    " event TEXT NOT NULL,"
    " item TEXT NOT NULL,"
    " updated_ns INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_ns);";

static int notify_db_migrate_1(struct db *db) {
    return db_exec(db, notify_db_schema_1);
}

/* Migration i brings user_version from i to i + 1. Append, never edit. */
static const db_migration_fn notify_db_migrations[] = {
    notify_db_migrate_1,
};

int notify_db_open(struct db **db_out, const char *path, struct db_error *error) {
    CHECK(db_out != NULL && path != NULL && error != NULL);
    return db_open_schema(db_out, path, notify_db_migrations,
                          sizeof notify_db_migrations / sizeof notify_db_migrations[0], error);
}
