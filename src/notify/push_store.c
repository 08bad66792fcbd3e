/*
 * push_store.c - reads of the push_subscriptions projection and the
 * push.unsubscribed command (see push_store.h). Reads use the caller's
 * connection and its statement cache; every text column is copied into a
 * fixed field, and one that does not fit is reported as corrupt rather than
 * cut (a cut endpoint would deliver to the wrong URL).
 */
#include "push_store.h"

#include "../base/buf.h"
#include "../base/check.h"
#include "../base/err.h"
#include "../store/db.h"

#include <sqlite3.h>

#include <stdio.h>
#include <string.h>

#define PUSH_STORE_COLUMNS "id, user_id, endpoint, p256dh, auth, created_ns"

/* Copies text column `column` into `out`; false when it is NULL or too long. */
static bool push_store_text(sqlite3_stmt *stmt, int column, char *out, size_t out_size) {
    const unsigned char *text = sqlite3_column_text(stmt, column);
    int length = sqlite3_column_bytes(stmt, column);
    if (text == NULL || length < 0 || (size_t)length >= out_size) return false;
    memcpy(out, text, (size_t)length);
    out[length] = '\0';
    return true;
}

/* Fills `out` from the current row of a PUSH_STORE_COLUMNS query. */
static int push_store_row(sqlite3_stmt *stmt, struct push_subscription *out) {
    bool ok = push_store_text(stmt, 0, out->id, sizeof out->id) &&
              push_store_text(stmt, 1, out->user_id, sizeof out->user_id) &&
              push_store_text(stmt, 2, out->endpoint, sizeof out->endpoint) &&
              push_store_text(stmt, 3, out->p256dh, sizeof out->p256dh) &&
              push_store_text(stmt, 4, out->auth, sizeof out->auth);
    out->created_ns = sqlite3_column_int64(stmt, 5);
    return ok ? 0 : ERR_CORRUPT;
}

/* Runs a one-row query bound to (?1 user_id, ?2 key). */
static int push_store_one(struct db *db, const char *sql, const char *user_id, const char *key,
                          struct push_subscription *out) {
    CHECK(db != NULL && user_id != NULL && key != NULL && out != NULL);
    sqlite3_stmt *stmt = db_statement(db, sql);
    if (stmt == NULL) return ERR_IO;
    sqlite3_bind_text(stmt, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    int rc = step == SQLITE_ROW ? push_store_row(stmt, out)
             : step == SQLITE_DONE ? ERR_NOTFOUND
                                   : ERR_IO;
    sqlite3_reset(stmt);
    return rc;
}

int push_store_get(struct db *db, const char *user_id, const char *id,
                   struct push_subscription *out) {
    return push_store_one(db,
                          "SELECT " PUSH_STORE_COLUMNS " FROM push_subscriptions"
                          " WHERE user_id = ?1 AND id = ?2",
                          user_id, id, out);
}

int push_store_find_endpoint(struct db *db, const char *user_id, const char *endpoint,
                             struct push_subscription *out) {
    return push_store_one(db,
                          "SELECT " PUSH_STORE_COLUMNS " FROM push_subscriptions"
                          " WHERE user_id = ?1 AND endpoint = ?2",
                          user_id, endpoint, out);
}

int push_store_list(struct db *db, const char *user_id, struct push_subscription *out,
                    size_t capacity, size_t *count) {
    CHECK(db != NULL && user_id != NULL && count != NULL && (out != NULL || capacity == 0));
    *count = 0;
    sqlite3_stmt *stmt = db_statement(db, "SELECT " PUSH_STORE_COLUMNS " FROM push_subscriptions"
                                          " WHERE user_id = ?1 ORDER BY created_ns, id LIMIT ?2");
    if (stmt == NULL) return ERR_IO;
    sqlite3_bind_text(stmt, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, (sqlite3_int64)capacity);
    int rc = 0;
    int step = SQLITE_ROW;
    while (rc == 0 && *count < capacity && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        rc = push_store_row(stmt, &out[*count]);
        if (rc == 0) (*count)++;
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE) rc = ERR_IO;
    sqlite3_reset(stmt);
    return rc;
}

int64_t push_store_count(struct db *db, const char *user_id) {
    CHECK(db != NULL && user_id != NULL);
    sqlite3_stmt *stmt = db_statement(db, "SELECT count(*) FROM push_subscriptions"
                                          " WHERE user_id = ?1");
    if (stmt == NULL) return ERR_IO;
    sqlite3_bind_text(stmt, 1, user_id, -1, SQLITE_STATIC);
    int64_t count = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : ERR_IO;
    sqlite3_reset(stmt);
    return count;
}

void push_store_unsubscribe(struct service *service, const char *user_id, const char *id,
                            const char *actor, command_done done, void *arg) {
    CHECK(service != NULL && user_id != NULL && id != NULL && done != NULL);
    if (!uuid_is_valid(id, strlen(id))) {
        /* Ids come from the projection; anything else names no subscription. */
        struct command_result result;
        memset(&result, 0, sizeof result);
        buf_init(&result.body, 0);
        result.status = 404;
        result.detail = "No push subscription with this id exists.";
        done(arg, &result);
        return;
    }
    char body[64];
    int length = snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    CHECK(length > 0 && (size_t)length < sizeof body);
    struct command command = {
        .kind = COMMAND_EVENT_APPEND,
        .user_id = user_id,
        .actor = actor != NULL ? actor : user_id,
        .event_type = "push.unsubscribed",
        .subject = id,
        .body = body,
        .body_length = (size_t)length,
    };
    service_execute(service, &command, done, arg);
}
