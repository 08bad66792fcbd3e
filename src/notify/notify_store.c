/*
 * notify_store.c - the deliveries table of notify.db and the delivery state
 * machine (see notify_store.h).
 */
#include "notify_store.h"

#include "../base/check.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../consumer/retry.h"
#include "../store/db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

static const char *const notify_state_names[NOTIFY_STATE_COUNT] = {
    "pending", "sending", "sent", "retry", "dead", "failed", "skipped"};

const char *notify_state_name(enum notify_state state) {
    CHECK(state >= 0 && state < NOTIFY_STATE_COUNT);
    return notify_state_names[state];
}

int notify_state_from_name(const char *name) {
    for (int state = 0; name != NULL && state < NOTIFY_STATE_COUNT; state++) {
        if (strcmp(notify_state_names[state], name) == 0) return state;
    }
    return -1;
}

static int notify_store_fail(struct db *db, int sqlite_rc, const char *what) {
    LOG_WARN("notifier", "delivery store failed", "what=%s sqlite=%d message=%s", what, sqlite_rc,
             sqlite3_errmsg(db_handle(db)));
    return db_error_code(sqlite_rc);
}

int notify_store_create(struct db *db, const struct notify_delivery *delivery,
                        const char *event_json, size_t event_length, int64_t now_ns) {
    CHECK(db != NULL && delivery != NULL && event_json != NULL);
    CHECK(delivery->key[0] != '\0' && delivery->state == NOTIFY_PENDING);
    sqlite3_stmt *stmt = db_statement(
        db, "INSERT OR IGNORE INTO deliveries(key, reminder_key, channel, user_id, event, item,"
            " state, attempts, next_ns, error, updated_ns) VALUES(?1, ?2, ?3, ?5, ?7,"
            " json_object('channel', ?3, 'subscription_id', ?4, 'task_id', ?6, 'recorded', 0),"
            " 'pending', 0, ?8, '', ?9)");
    if (stmt == NULL) return ERR_IO;
    sqlite3_bind_text(stmt, 1, delivery->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, delivery->reminder_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, notify_channel_name(delivery->channel), -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, delivery->subscription_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, delivery->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, delivery->task_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 7, event_json, (int)event_length, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 8, delivery->next_ns);
    sqlite3_bind_int64(stmt, 9, now_ns);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) return notify_store_fail(db, rc, "create");
    return sqlite3_changes(db_handle(db)) == 1 ? 0 : ERR_EXISTS;
}

static void notify_column(sqlite3_stmt *stmt, int column, char *out, size_t out_size) {
    const char *text = (const char *)sqlite3_column_text(stmt, column);
    snprintf(out, out_size, "%s", text != NULL ? text : "");
}

int notify_store_get(struct db *db, const char *key, struct notify_delivery *out,
                     struct buf *event) {
    CHECK(db != NULL && key != NULL && out != NULL);
    sqlite3_stmt *stmt = db_statement(
        db, "SELECT key, reminder_key, channel, json_extract(item, '$.subscription_id'),"
            " user_id, json_extract(item, '$.task_id'), state, attempts, next_ns, error,"
            " json_extract(item, '$.recorded'), event, json_extract(item, '$.redrive')"
            " FROM deliveries WHERE key = ?1");
    if (stmt == NULL) return ERR_IO;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    int status = 0;
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        notify_column(stmt, 0, out->key, sizeof out->key);
        notify_column(stmt, 1, out->reminder_key, sizeof out->reminder_key);
        int channel = notify_channel_from_name((const char *)sqlite3_column_text(stmt, 2));
        int state = notify_state_from_name((const char *)sqlite3_column_text(stmt, 6));
        out->channel = channel >= 0 ? (enum notify_channel)channel : NOTIFY_WEBSOCKET;
        out->state = state >= 0 ? (enum notify_state)state : NOTIFY_FAILED;
        if (channel < 0 || state < 0) status = ERR_CORRUPT;
        notify_column(stmt, 3, out->subscription_id, sizeof out->subscription_id);
        notify_column(stmt, 4, out->user_id, sizeof out->user_id);
        notify_column(stmt, 5, out->task_id, sizeof out->task_id);
        out->attempts = sqlite3_column_int(stmt, 7);
        out->next_ns = sqlite3_column_int64(stmt, 8);
        notify_column(stmt, 9, out->error, sizeof out->error);
        out->recorded = sqlite3_column_int(stmt, 10) != 0;
        notify_column(stmt, 12, out->redrive_id, sizeof out->redrive_id);
        if (event != NULL && status == 0) {
            buf_reset(event);
            status = buf_append(event, sqlite3_column_text(stmt, 11),
                                (size_t)sqlite3_column_bytes(stmt, 11));
        }
    } else {
        status = rc == SQLITE_DONE ? ERR_NOTFOUND : notify_store_fail(db, rc, "get");
    }
    sqlite3_reset(stmt);
    return status;
}

int notify_store_update(struct db *db, const struct notify_delivery *delivery, int64_t now_ns) {
    CHECK(db != NULL && delivery != NULL && delivery->attempts >= 0);
    sqlite3_stmt *stmt = db_statement(
        db, "UPDATE deliveries SET state = ?2, attempts = ?3, next_ns = ?4, error = ?5,"
            " item = json_set(item, '$.recorded', ?6, '$.redrive', ?8), updated_ns = ?7"
            " WHERE key = ?1");
    if (stmt == NULL) return ERR_IO;
    sqlite3_bind_text(stmt, 1, delivery->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, notify_state_name(delivery->state), -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 3, delivery->attempts);
    sqlite3_bind_int64(stmt, 4, delivery->next_ns);
    sqlite3_bind_text(stmt, 5, delivery->error, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 6, delivery->recorded ? 1 : 0);
    sqlite3_bind_int64(stmt, 7, now_ns);
    sqlite3_bind_text(stmt, 8, delivery->redrive_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) return notify_store_fail(db, rc, "update");
    return sqlite3_changes(db_handle(db)) == 1 ? 0 : ERR_NOTFOUND;
}

/* Runs a key-listing statement; keys are copied before `each` runs, so
 * `each` may use the database. */
static int notify_store_keys(struct db *db, sqlite3_stmt *stmt, size_t limit,
                             void (*each)(void *arg, const char *key), void *arg) {
    enum { BATCH = 64 };
    char keys[BATCH][NOTIFY_DELIVERY_KEY_BYTES];
    size_t count = 0;
    int rc;
    while (count < BATCH && count < limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        notify_column(stmt, 0, keys[count], sizeof keys[count]);
        count++;
    }
    if (count < BATCH && count < limit && rc != SQLITE_DONE) {
        sqlite3_reset(stmt);
        return notify_store_fail(db, rc, "list");
    }
    sqlite3_reset(stmt);
    for (size_t index = 0; index < count; index++) each(arg, keys[index]);
    return (int)count;
}

int notify_store_due(struct db *db, int64_t now_ns, size_t limit,
                     void (*each)(void *arg, const char *key), void *arg) {
    CHECK(db != NULL && each != NULL);
    sqlite3_stmt *stmt =
        db_statement(db, "SELECT key FROM deliveries WHERE state IN ('pending', 'retry')"
                         " AND next_ns <= ?1 ORDER BY next_ns, key LIMIT ?2");
    if (stmt == NULL) return ERR_IO;
    sqlite3_bind_int64(stmt, 1, now_ns);
    sqlite3_bind_int64(stmt, 2, (int64_t)limit);
    return notify_store_keys(db, stmt, limit, each, arg);
}

int64_t notify_store_next_due(struct db *db) {
    sqlite3_stmt *stmt = db_statement(
        db, "SELECT min(coalesce(next_ns, 0)) FROM deliveries"
            " WHERE state IN ('pending', 'retry')");
    if (stmt == NULL) return INT64_MAX;
    int rc = sqlite3_step(stmt);
    int64_t next = rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL
                       ? sqlite3_column_int64(stmt, 0)
                       : INT64_MAX;
    sqlite3_reset(stmt);
    return next;
}

int64_t notify_store_count(struct db *db, enum notify_state state) {
    sqlite3_stmt *stmt = db_statement(db, "SELECT count(*) FROM deliveries WHERE state = ?1");
    if (stmt == NULL) return ERR_IO;
    sqlite3_bind_text(stmt, 1, notify_state_name(state), -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    int64_t count = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_reset(stmt);
    return rc == SQLITE_ROW ? count : notify_store_fail(db, rc, "count");
}

int64_t notify_store_abandon_sending(struct db *db, int64_t now_ns) {
    sqlite3_stmt *stmt =
        db_statement(db, "UPDATE deliveries SET state = 'failed', error = ?1,"
                         " item = json_set(item, '$.recorded', 0), updated_ns = ?2"
                         " WHERE state = 'sending'");
    if (stmt == NULL) return ERR_IO;
    sqlite3_bind_text(stmt, 1, NOTIFY_OUTCOME_UNKNOWN, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, now_ns);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) return notify_store_fail(db, rc, "abandon");
    return sqlite3_changes(db_handle(db));
}

int notify_store_unrecorded(struct db *db, size_t limit,
                            void (*each)(void *arg, const char *key), void *arg) {
    sqlite3_stmt *stmt = db_statement(
        db, "SELECT key FROM deliveries WHERE state IN ('sent', 'dead', 'failed')"
            " AND json_extract(item, '$.recorded') = 0 ORDER BY updated_ns, key LIMIT ?1");
    if (stmt == NULL) return ERR_IO;
    sqlite3_bind_int64(stmt, 1, (int64_t)limit);
    return notify_store_keys(db, stmt, limit, each, arg);
}

void notify_delivery_failed(struct notify_delivery *delivery, const struct retry_policy *policy,
                            bool permanent, const char *error, int64_t now_ns) {
    CHECK(delivery != NULL && policy != NULL && delivery->attempts >= 1);
    snprintf(delivery->error, sizeof delivery->error, "%s", error != NULL ? error : "failed");
    int64_t delay_ms = permanent ? -1 : retry_policy_delay_ms(policy, delivery->attempts);
    if (delay_ms >= 0) {
        delivery->state = NOTIFY_RETRY;
        delivery->next_ns = now_ns + delay_ms * 1000000;
    } else {
        delivery->state = permanent ? NOTIFY_FAILED : NOTIFY_DEAD;
        delivery->next_ns = 0;
    }
}
