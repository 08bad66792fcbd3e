/*
 * deadletter.c - the dead-letter queue (see deadletter.h): entries are
 * appended to the "dlq" topic as JSON records (key = consumer name) and
 * mirrored into notify.db's dlq table, which the admin API lists and
 * redrives.
 *
 * Mirroring is one path for everything: after an append is durable, and at
 * open, the records from the stored mirror offset up to the topic's end are
 * read with a cursor and inserted (INSERT OR IGNORE by id) in one
 * transaction that also moves the offset. So a crash between the append and
 * the mirror, a failed mirror write, or appends finishing out of the order
 * they were made in all end the same way: each record is copied once.
 *
 * Entry states live in the table only (dead -> redriving -> redriven or
 * failed_again; failed_again -> redriving again): the log keeps what failed,
 * the table what was done about it.
 */
#include "deadletter.h"

#include "../base/base64.h"
#include "../base/check.h"
#include "../base/clock.h"
#include "../base/err.h"
#include "../base/json.h"
#include "../base/logger.h"
#include "../base/mem.h"
#include "../base/timefmt.h"
#include "../evlog/evlog.h"
#include "../store/db.h"

#include <sqlite3.h>
#include <yyjson.h>

#include <stdio.h>
#include <string.h>

/* The offsets-table row that holds the mirror position. */
#define DEADLETTER_OFFSET_NAME "dlq"

/* Most records copied by one catch-up: far above what a DLQ holds, it only
 * bounds the loop. */
#define DEADLETTER_CATCH_UP_MAX 10000000

/* Bytes an item costs in a page besides its event, item and error text. */
#define DEADLETTER_ITEM_OVERHEAD 512

/* A consumer's redrive handler. */
struct deadletter_handler {
    char consumer[DEADLETTER_CONSUMER_NAME_BYTES + 1]; /* its name */
    deadletter_redrive_fn redrive;                     /* starts a new round */
    void *arg;                                         /* first argument of redrive */
};

struct deadletter {
    struct evlog_topic *topic;    /* the "dlq" topic */
    struct db *db;                /* notify.db, loop connection */
    struct clock *clock;          /* failed_at, redriven_at, ids */
    struct uuid_v7_generator ids; /* entry ids (time ordered) */
    struct deadletter_handler handlers[DEADLETTER_HANDLERS_MAX]; /* registered */
    size_t handler_count;         /* handlers used */
    int64_t mirror_offset;        /* next "dlq" offset the table has not copied */
    size_t puts_pending;          /* appends whose callback has not come yet */
};

/* One put waiting for its record to be durable. */
struct deadletter_put {
    struct deadletter *deadletter;  /* owner */
    deadletter_done done;           /* caller's callback, or NULL */
    void *arg;                      /* its argument */
    char id[UUID_STRING_BYTES];     /* the entry's id */
};

static const char *const deadletter_states[] = {"dead", "redriving", "redriven", "failed_again"};

bool deadletter_state_valid(const char *state) {
    if (state == NULL)
        return false;
    size_t count = sizeof deadletter_states / sizeof deadletter_states[0];
    for (size_t index = 0; index < count; index++) {
        if (strcmp(state, deadletter_states[index]) == 0)
            return true;
    }
    return false;
}

/* ---- Mirror ------------------------------------------------------------ */

static const char *deadletter_string(yyjson_val *object, const char *name) {
    return yyjson_get_str(yyjson_obj_get(object, name));
}

/* Writes a member's JSON text into owned memory (freed by the caller through
 * json_allocator). */
static char *deadletter_value_text(yyjson_val *value, size_t *length) {
    return yyjson_val_write_opts(value, YYJSON_WRITE_NOFLAG, &json_allocator, length, NULL);
}

static void deadletter_text_free(char *text) {
    if (text != NULL)
        json_allocator.free(json_allocator.ctx, text);
}

/* Binds one parsed record to the insert statement and runs it. ERR_PARSE
 * for a record without the fields every entry has. */
static int deadletter_insert(struct deadletter *deadletter, yyjson_val *root, int64_t offset) {
    const char *id = deadletter_string(root, "id");
    const char *consumer = deadletter_string(root, "consumer");
    const char *key = deadletter_string(root, "key");
    const char *error = deadletter_string(root, "error");
    const char *failed_at = deadletter_string(root, "failed_at");
    yyjson_val *attempts = yyjson_obj_get(root, "attempts");
    yyjson_val *event = yyjson_obj_get(root, "event");
    yyjson_val *item = yyjson_obj_get(root, "item");
    int64_t failed_ns = 0;
    if (id == NULL || consumer == NULL || key == NULL || error == NULL || failed_at == NULL ||
        !yyjson_is_int(attempts) || event == NULL || !yyjson_is_obj(item) ||
        timefmt_time_parse(failed_at, strlen(failed_at), &failed_ns, NULL) != 0)
        return ERR_PARSE;
    size_t event_length = 0, item_length = 0;
    char *event_text = deadletter_value_text(event, &event_length);
    char *item_text = deadletter_value_text(item, &item_length);
    int rc = event_text == NULL || item_text == NULL ? ERR_NOMEM : 0;
    static const char insert[] =
        "INSERT OR IGNORE INTO dlq(id, consumer, key, user_id, event, item, error, attempts,"
        " failed_ns, state, redriven_ns, \"offset\")"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'dead', NULL, ?10)";
    sqlite3_stmt *stmt = rc == 0 ? db_statement(deadletter->db, insert) : NULL;
    if (rc == 0 && stmt == NULL)
        rc = ERR_IO;
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, consumer, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, key, -1, SQLITE_STATIC);
        const char *user_id = deadletter_string(root, "user_id");
        if (user_id != NULL)
            sqlite3_bind_text(stmt, 4, user_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 5, event_text, (int)event_length, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 6, item_text, (int)item_length, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 7, error, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 8, yyjson_get_sint(attempts));
        sqlite3_bind_int64(stmt, 9, failed_ns);
        sqlite3_bind_int64(stmt, 10, offset);
        int code = sqlite3_step(stmt);
        rc = code == SQLITE_DONE ? 0 : db_error_code(code);
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
    }
    deadletter_text_free(event_text);
    deadletter_text_free(item_text);
    return rc;
}

/* Copies one "dlq" record into the table. A record that is not an entry is
 * skipped (logged): it must not stop the mirror for ever. */
static int deadletter_mirror_record(struct deadletter *deadletter,
                                    const struct evlog_record *record) {
    yyjson_read_err error;
    yyjson_doc *doc = yyjson_read_opts((char *)record->value, record->value_bytes,
                                       YYJSON_READ_NOFLAG, &json_allocator, &error);
    if (doc == NULL && error.code == YYJSON_READ_ERROR_MEMORY_ALLOCATION)
        return ERR_NOMEM;
    int rc = doc == NULL ? ERR_PARSE : deadletter_insert(deadletter, yyjson_doc_get_root(doc),
                                                         record->offset);
    yyjson_doc_free(doc);
    if (rc == ERR_PARSE) {
        LOG_WARN("deadletter", "skipping a dlq record that is not an entry", "offset=%lld",
                 (long long)record->offset);
        rc = 0;
    }
    return rc;
}

static int deadletter_store_offset(struct deadletter *deadletter, int64_t offset) {
    sqlite3_stmt *stmt = db_statement(deadletter->db,
                                      "INSERT INTO offsets(name, next_offset) VALUES(?1, ?2) "
                                      "ON CONFLICT(name) DO UPDATE SET next_offset = ?2");
    if (stmt == NULL)
        return ERR_IO;
    sqlite3_bind_text(stmt, 1, DEADLETTER_OFFSET_NAME, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, offset);
    int code = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return code == SQLITE_DONE ? 0 : db_error_code(code);
}

static int deadletter_load_offset(struct deadletter *deadletter) {
    sqlite3_stmt *stmt =
        db_statement(deadletter->db, "SELECT next_offset FROM offsets WHERE name = ?1");
    if (stmt == NULL)
        return ERR_IO;
    sqlite3_bind_text(stmt, 1, DEADLETTER_OFFSET_NAME, -1, SQLITE_STATIC);
    int code = sqlite3_step(stmt);
    deadletter->mirror_offset = code == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_reset(stmt);
    return code == SQLITE_ROW || code == SQLITE_DONE ? 0 : db_error_code(code);
}

/* Reads records from the mirror offset to the end into the table, in one
 * transaction with the new offset. */
static int deadletter_catch_up(struct deadletter *deadletter) {
    int64_t end = evlog_topic_end_offset(deadletter->topic);
    int64_t start = evlog_topic_start_offset(deadletter->topic);
    if (deadletter->mirror_offset >= end)
        return 0;
    int64_t from = deadletter->mirror_offset;
    if (from < start) {
        LOG_WARN("deadletter", "dlq records were removed before being mirrored",
                 "from=%lld start=%lld", (long long)from, (long long)start);
        from = start;
    }
    struct evlog_cursor cursor;
    int rc = evlog_cursor_open(&cursor, deadletter->topic, from);
    if (rc != 0)
        return rc;
    rc = db_begin(deadletter->db);
    int64_t next = from;
    for (int count = 0; rc == 0 && next < end && count < DEADLETTER_CATCH_UP_MAX; count++) {
        struct evlog_record record;
        rc = evlog_cursor_next(&cursor, &record);
        if (rc == ERR_AGAIN) {
            rc = 0;
            break;
        }
        if (rc == 0)
            rc = deadletter_mirror_record(deadletter, &record);
        if (rc == 0)
            next = record.offset + 1;
    }
    evlog_cursor_close(&cursor);
    if (rc == 0)
        rc = deadletter_store_offset(deadletter, next);
    if (rc == 0)
        rc = db_commit(deadletter->db);
    if (rc != 0) {
        db_rollback(deadletter->db);
        return rc;
    }
    deadletter->mirror_offset = next;
    return 0;
}

/* ---- Open, close, register ------------------------------------------- */

int deadletter_open(struct deadletter **out, struct evlog_topic *topic, struct db *db,
                    struct clock *clock) {
    CHECK(out != NULL && topic != NULL && db != NULL);
    *out = NULL;
    struct deadletter *deadletter = mem_calloc(1, sizeof *deadletter);
    if (deadletter == NULL)
        return ERR_NOMEM;
    deadletter->topic = topic;
    deadletter->db = db;
    deadletter->clock = clock != NULL ? clock : clock_system();
    uuid_v7_generator_init(&deadletter->ids);
    int rc = deadletter_load_offset(deadletter);
    int64_t end = evlog_topic_end_offset(topic);
    if (rc == 0 && deadletter->mirror_offset > end) {
        /* The log is older than notify.db (restored from a backup, or a new
         * log directory): the offsets to come must not count as mirrored. */
        LOG_WARN("deadletter", "dlq mirror offset is past the end of the topic; following the log",
                 "mirror_offset=%lld end=%lld", (long long)deadletter->mirror_offset,
                 (long long)end);
        deadletter->mirror_offset = end;
        rc = deadletter_store_offset(deadletter, end);
    }
    if (rc == 0)
        rc = deadletter_catch_up(deadletter);
    if (rc != 0) {
        LOG_ERROR("deadletter", "cannot mirror the dlq topic", "error=%s", err_name(rc));
        mem_free(deadletter);
        return rc;
    }
    *out = deadletter;
    return 0;
}

void deadletter_close(struct deadletter *deadletter) {
    if (deadletter == NULL)
        return;
    CHECK(deadletter->puts_pending == 0); /* the log's callbacks still point here */
    mem_free(deadletter);
}

int deadletter_register(struct deadletter *deadletter, const char *consumer,
                        deadletter_redrive_fn redrive, void *arg) {
    CHECK(deadletter != NULL && consumer != NULL && redrive != NULL);
    size_t length = strlen(consumer);
    if (length == 0 || length > DEADLETTER_CONSUMER_NAME_BYTES)
        return ERR_INVAL;
    for (size_t index = 0; index < deadletter->handler_count; index++) {
        if (strcmp(deadletter->handlers[index].consumer, consumer) == 0)
            return ERR_EXISTS;
    }
    if (deadletter->handler_count == DEADLETTER_HANDLERS_MAX)
        return ERR_LIMIT;
    struct deadletter_handler *handler = &deadletter->handlers[deadletter->handler_count++];
    memcpy(handler->consumer, consumer, length + 1);
    handler->redrive = redrive;
    handler->arg = arg;
    return 0;
}

/* ---- Put ----------------------------------------------------------------- */

/* Parses `text` (NULL = `fallback`) into `doc`'s tree. ERR_INVAL when it is
 * not JSON, or not an object when `object` is set. */
static int deadletter_copy_json(yyjson_mut_doc *doc, const char *text, bool object,
                                yyjson_mut_val **out) {
    yyjson_read_err error;
    yyjson_doc *parsed = yyjson_read_opts((char *)text, strlen(text), YYJSON_READ_NOFLAG,
                                          &json_allocator, &error);
    if (parsed == NULL)
        return error.code == YYJSON_READ_ERROR_MEMORY_ALLOCATION ? ERR_NOMEM : ERR_INVAL;
    yyjson_val *root = yyjson_doc_get_root(parsed);
    int rc = object && !yyjson_is_obj(root) ? ERR_INVAL : 0;
    if (rc == 0) {
        *out = yyjson_val_mut_copy(doc, root);
        rc = *out == NULL ? ERR_NOMEM : 0;
    }
    yyjson_doc_free(parsed);
    return rc;
}

/* The record's JSON text (owned, free with deadletter_text_free). */
static int deadletter_record_text(const struct deadletter_entry *entry, const char *id,
                                  int64_t failed_ns, char **text, size_t *length) {
    yyjson_mut_doc *doc = yyjson_mut_doc_new(&json_allocator);
    if (doc == NULL)
        return ERR_NOMEM;
    yyjson_mut_val *root = yyjson_mut_obj(doc);
    yyjson_mut_val *event = NULL, *item = NULL;
    int rc = root == NULL ? ERR_NOMEM : 0;
    if (rc == 0)
        rc = deadletter_copy_json(doc, entry->event_json, false, &event);
    if (rc == 0)
        rc = deadletter_copy_json(doc, entry->item_json != NULL ? entry->item_json : "{}", true,
                                  &item);
    char failed_at[TIMEFMT_TIME_BYTES];
    timefmt_time_format(failed_ns, failed_at);
    if (rc == 0) {
        yyjson_mut_doc_set_root(doc, root);
        bool ok = yyjson_mut_obj_add_strcpy(doc, root, "id", id) &&
                  yyjson_mut_obj_add_strcpy(doc, root, "consumer", entry->consumer) &&
                  yyjson_mut_obj_add_strcpy(doc, root, "key", entry->key) &&
                  (entry->user_id != NULL
                       ? yyjson_mut_obj_add_strcpy(doc, root, "user_id", entry->user_id)
                       : yyjson_mut_obj_add_null(doc, root, "user_id")) &&
                  yyjson_mut_obj_add_val(doc, root, "event", event) &&
                  yyjson_mut_obj_add_val(doc, root, "item", item) &&
                  yyjson_mut_obj_add_strcpy(doc, root, "error",
                                            entry->error != NULL ? entry->error : "") &&
                  yyjson_mut_obj_add_int(doc, root, "attempts", entry->attempts) &&
                  yyjson_mut_obj_add_strcpy(doc, root, "failed_at", failed_at) &&
                  yyjson_mut_obj_add_str(doc, root, "state", "dead") &&
                  yyjson_mut_obj_add_null(doc, root, "redriven_at");
        *text = ok ? yyjson_mut_write_opts(doc, YYJSON_WRITE_NOFLAG, &json_allocator, length, NULL)
                   : NULL;
        rc = *text == NULL ? ERR_NOMEM : 0;
    }
    yyjson_mut_doc_free(doc);
    return rc;
}

static void deadletter_on_durable(void *arg, int status, int64_t offset) {
    struct deadletter_put *put = arg;
    struct deadletter *deadletter = put->deadletter;
    CHECK(deadletter->puts_pending > 0);
    deadletter->puts_pending--;
    (void)offset;
    if (status == 0)
        status = deadletter_catch_up(deadletter);
    if (status != 0) {
        LOG_ERROR("deadletter", "dead-letter entry not stored", "id=%s error=%s", put->id,
                  err_name(status));
    }
    if (put->done != NULL)
        put->done(put->arg, status, put->id);
    mem_free(put);
}

static int deadletter_entry_check(const struct deadletter_entry *entry) {
    if (entry->consumer == NULL || entry->key == NULL || entry->event_json == NULL)
        return ERR_INVAL;
    size_t length = strlen(entry->consumer);
    if (length == 0 || length > DEADLETTER_CONSUMER_NAME_BYTES || entry->attempts < 0)
        return ERR_INVAL;
    return 0;
}

int deadletter_put(struct deadletter *deadletter, const struct deadletter_entry *entry,
                   deadletter_done done, void *arg) {
    CHECK(deadletter != NULL && entry != NULL);
    int rc = deadletter_entry_check(entry);
    if (rc != 0)
        return rc;
    struct deadletter_put *put = mem_calloc(1, sizeof *put);
    if (put == NULL)
        return ERR_NOMEM;
    put->deadletter = deadletter;
    put->done = done;
    put->arg = arg;
    int64_t now_ns = deadletter->clock->wall_ns(deadletter->clock);
    rc = uuid_v7_generate(&deadletter->ids, now_ns / 1000000, put->id);
    char *text = NULL;
    size_t length = 0;
    if (rc == 0)
        rc = deadletter_record_text(entry, put->id, now_ns, &text, &length);
    if (rc == 0) {
        struct evlog_record record = {.key = (const uint8_t *)entry->consumer,
                                      .key_bytes = strlen(entry->consumer),
                                      .value = (const uint8_t *)text,
                                      .value_bytes = length};
        int64_t offset = evlog_append(deadletter->topic, &record, deadletter_on_durable, put);
        rc = offset < 0 ? (int)offset : 0;
    }
    deadletter_text_free(text);
    if (rc != 0) {
        mem_free(put);
        return rc;
    }
    deadletter->puts_pending++;
    return 0;
}

/* ---- Rendering ----------------------------------------------------------- */

/* The columns every entry read selects, in this order. */
#define DEADLETTER_COLUMNS                                                                    \
    "id, consumer, key, user_id, event, item, error, attempts, failed_ns, state, redriven_ns"

static const char *deadletter_column(sqlite3_stmt *stmt, int column) {
    return (const char *)sqlite3_column_text(stmt, column);
}

/* An entry object built from a row of DEADLETTER_COLUMNS (event and item are
 * JSON text this module wrote, copied in raw). */
static yyjson_mut_val *deadletter_row_json(yyjson_mut_doc *doc, sqlite3_stmt *stmt) {
    yyjson_mut_val *object = yyjson_mut_obj(doc);
    if (object == NULL)
        return NULL;
    char failed_at[TIMEFMT_TIME_BYTES], redriven_at[TIMEFMT_TIME_BYTES];
    timefmt_time_format(sqlite3_column_int64(stmt, 8), failed_at);
    bool redriven = sqlite3_column_type(stmt, 10) != SQLITE_NULL;
    if (redriven)
        timefmt_time_format(sqlite3_column_int64(stmt, 10), redriven_at);
    const char *user_id = deadletter_column(stmt, 3);
    bool ok =
        yyjson_mut_obj_add_strcpy(doc, object, "id", deadletter_column(stmt, 0)) &&
        yyjson_mut_obj_add_strcpy(doc, object, "consumer", deadletter_column(stmt, 1)) &&
        yyjson_mut_obj_add_strcpy(doc, object, "key", deadletter_column(stmt, 2)) &&
        (user_id != NULL ? yyjson_mut_obj_add_strcpy(doc, object, "user_id", user_id)
                         : yyjson_mut_obj_add_null(doc, object, "user_id")) &&
        yyjson_mut_obj_add_val(doc, object, "event",
                               yyjson_mut_rawncpy(doc, deadletter_column(stmt, 4),
                                                  (size_t)sqlite3_column_bytes(stmt, 4))) &&
        yyjson_mut_obj_add_val(doc, object, "item",
                               yyjson_mut_rawncpy(doc, deadletter_column(stmt, 5),
                                                  (size_t)sqlite3_column_bytes(stmt, 5))) &&
        yyjson_mut_obj_add_strcpy(doc, object, "error", deadletter_column(stmt, 6)) &&
        yyjson_mut_obj_add_int(doc, object, "attempts", sqlite3_column_int64(stmt, 7)) &&
        yyjson_mut_obj_add_strcpy(doc, object, "failed_at", failed_at) &&
        yyjson_mut_obj_add_strcpy(doc, object, "state", deadletter_column(stmt, 9)) &&
        (redriven ? yyjson_mut_obj_add_strcpy(doc, object, "redriven_at", redriven_at)
                  : yyjson_mut_obj_add_null(doc, object, "redriven_at"));
    return ok ? object : NULL;
}

/* Writes `doc` into `out` (replacing its contents). */
static int deadletter_write(yyjson_mut_doc *doc, struct buf *out) {
    size_t length = 0;
    char *text = yyjson_mut_write_opts(doc, YYJSON_WRITE_NOFLAG, &json_allocator, &length, NULL);
    if (text == NULL)
        return ERR_NOMEM;
    buf_reset(out);
    int rc = buf_append(out, text, length);
    deadletter_text_free(text);
    return rc;
}

/* ---- List ---------------------------------------------------------------- */

/* A cursor is the base64url of the last id of the previous page. */
static int deadletter_cursor_decode(const char *cursor, char id[UUID_STRING_BYTES]) {
    char decoded[64];
    size_t length = 0;
    size_t text_length = strlen(cursor);
    if (text_length == 0 || text_length > 64 ||
        base64_decode(BASE64_URL, cursor, text_length, decoded, sizeof decoded, &length) != 0)
        return ERR_INVAL;
    return uuid_parse(decoded, length, id) == 0 ? 0 : ERR_INVAL;
}

static int deadletter_cursor_encode(const char *id, char *out, size_t out_size) {
    size_t written = 0;
    return base64_encode(BASE64_URL, id, strlen(id), out, out_size, &written) == 0 ? 0 : ERR_LIMIT;
}

/* Appends up to `limit` rows to `items`; *last_id gets the id of the last
 * row added when more remain (the next page's cursor), else stays empty. */
static int deadletter_list_rows(yyjson_mut_doc *doc, yyjson_mut_val *items, sqlite3_stmt *stmt,
                                size_t limit, char last_id[UUID_STRING_BYTES]) {
    size_t bytes = 0;
    size_t count = 0;
    char previous[UUID_STRING_BYTES] = "";
    last_id[0] = '\0';
    for (;;) {
        int code = sqlite3_step(stmt);
        if (code == SQLITE_DONE)
            return 0;
        if (code != SQLITE_ROW)
            return db_error_code(code);
        if (count == limit || (count > 0 && bytes > DEADLETTER_LIST_BYTES_MAX)) {
            memcpy(last_id, previous, UUID_STRING_BYTES); /* more remain: the cursor */
            return 0;
        }
        yyjson_mut_val *object = deadletter_row_json(doc, stmt);
        if (object == NULL || !yyjson_mut_arr_append(items, object))
            return ERR_NOMEM;
        bytes += DEADLETTER_ITEM_OVERHEAD + (size_t)sqlite3_column_bytes(stmt, 4) +
                 (size_t)sqlite3_column_bytes(stmt, 5) + (size_t)sqlite3_column_bytes(stmt, 6);
        snprintf(previous, sizeof previous, "%s", deadletter_column(stmt, 0));
        count++;
    }
}

int deadletter_list_json(struct deadletter *deadletter, const char *state, size_t limit,
                         const char *cursor, struct buf *out) {
    CHECK(deadletter != NULL && out != NULL);
    if (state != NULL && !deadletter_state_valid(state))
        return ERR_INVAL;
    if (limit == 0 || limit > DEADLETTER_LIST_LIMIT_MAX)
        return ERR_INVAL;
    char after[UUID_STRING_BYTES] = "";
    if (cursor != NULL && deadletter_cursor_decode(cursor, after) != 0)
        return ERR_INVAL;
    sqlite3_stmt *stmt = db_statement(
        deadletter->db, "SELECT " DEADLETTER_COLUMNS " FROM dlq"
                        " WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR id < ?2)"
                        " ORDER BY id DESC LIMIT ?3");
    if (stmt == NULL)
        return ERR_IO;
    if (state != NULL)
        sqlite3_bind_text(stmt, 1, state, -1, SQLITE_STATIC);
    if (after[0] != '\0')
        sqlite3_bind_text(stmt, 2, after, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, (int64_t)limit + 1);
    yyjson_mut_doc *doc = yyjson_mut_doc_new(&json_allocator);
    yyjson_mut_val *root = doc != NULL ? yyjson_mut_obj(doc) : NULL;
    yyjson_mut_val *items = root != NULL ? yyjson_mut_obj_add_arr(doc, root, "items") : NULL;
    char last_id[UUID_STRING_BYTES];
    int rc = items == NULL ? ERR_NOMEM : deadletter_list_rows(doc, items, stmt, limit, last_id);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    char next[96];
    if (rc == 0 && last_id[0] != '\0')
        rc = deadletter_cursor_encode(last_id, next, sizeof next);
    if (rc == 0) {
        yyjson_mut_doc_set_root(doc, root);
        bool ok = last_id[0] != '\0' ? yyjson_mut_obj_add_strcpy(doc, root, "next_cursor", next)
                                     : yyjson_mut_obj_add_null(doc, root, "next_cursor");
        rc = ok ? deadletter_write(doc, out) : ERR_NOMEM;
    }
    yyjson_mut_doc_free(doc);
    return rc;
}

size_t deadletter_count(const struct deadletter *deadletter, const char *state) {
    CHECK(deadletter != NULL && state != NULL);
    sqlite3_stmt *stmt = db_statement(deadletter->db, "SELECT count(*) FROM dlq WHERE state = ?1");
    if (stmt == NULL)
        return 0;
    sqlite3_bind_text(stmt, 1, state, -1, SQLITE_STATIC);
    size_t count = sqlite3_step(stmt) == SQLITE_ROW ? (size_t)sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return count;
}

/* ---- Redrive --------------------------------------------------------------- */

/* Renders entry `id` into `out`. ERR_NOTFOUND when there is none. */
static int deadletter_entry_write(struct deadletter *deadletter, const char *id, struct buf *out) {
    sqlite3_stmt *stmt =
        db_statement(deadletter->db, "SELECT " DEADLETTER_COLUMNS " FROM dlq WHERE id = ?1");
    if (stmt == NULL)
        return ERR_IO;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    int code = sqlite3_step(stmt);
    int rc = code == SQLITE_ROW ? 0 : code == SQLITE_DONE ? ERR_NOTFOUND : db_error_code(code);
    yyjson_mut_doc *doc = rc == 0 ? yyjson_mut_doc_new(&json_allocator) : NULL;
    if (rc == 0 && doc == NULL)
        rc = ERR_NOMEM;
    yyjson_mut_val *object = rc == 0 ? deadletter_row_json(doc, stmt) : NULL;
    if (rc == 0 && object == NULL)
        rc = ERR_NOMEM;
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc == 0) {
        yyjson_mut_doc_set_root(doc, object);
        rc = deadletter_write(doc, out);
    }
    yyjson_mut_doc_free(doc);
    return rc;
}

/* A copy of one row, handed to a redrive handler (which may use the
 * database, so nothing may point into a statement). */
struct deadletter_row {
    struct deadletter_entry entry;  /* points into `storage` */
    char state[16];                 /* state before the redrive */
    int64_t redriven_ns;            /* previous redriven_ns, or -1 for NULL */
    char *storage;                  /* owned copies of the strings */
};

static int deadletter_row_load(struct deadletter *deadletter, const char *id,
                               struct deadletter_row *row) {
    sqlite3_stmt *stmt =
        db_statement(deadletter->db, "SELECT " DEADLETTER_COLUMNS " FROM dlq WHERE id = ?1");
    if (stmt == NULL)
        return ERR_IO;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    int code = sqlite3_step(stmt);
    int rc = code == SQLITE_ROW ? 0 : code == SQLITE_DONE ? ERR_NOTFOUND : db_error_code(code);
    static const int columns[] = {0, 1, 2, 3, 4, 5, 6};
    size_t total = 0;
    for (size_t index = 0; rc == 0 && index < 7; index++)
        total += (size_t)sqlite3_column_bytes(stmt, columns[index]) + 1;
    row->storage = rc == 0 ? mem_alloc(total) : NULL;
    if (rc == 0 && row->storage == NULL)
        rc = ERR_NOMEM;
    const char *copies[7] = {0};
    char *at = row->storage;
    for (size_t index = 0; rc == 0 && index < 7; index++) {
        const char *text = deadletter_column(stmt, columns[index]);
        if (text == NULL)
            continue; /* user_id may be NULL */
        size_t length = (size_t)sqlite3_column_bytes(stmt, columns[index]);
        memcpy(at, text, length + 1);
        copies[index] = at;
        at += length + 1;
    }
    if (rc == 0) {
        row->entry = (struct deadletter_entry){copies[0], copies[1], copies[2], copies[3],
                                               copies[4], copies[5], copies[6],
                                               sqlite3_column_int(stmt, 7)};
        snprintf(row->state, sizeof row->state, "%s", deadletter_column(stmt, 9));
        row->redriven_ns = sqlite3_column_type(stmt, 10) == SQLITE_NULL
                               ? -1
                               : sqlite3_column_int64(stmt, 10);
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return rc;
}

/* Sets an entry's state (and redriven_ns; -1 = NULL) if it is in `from`
 * (NULL = any). ERR_CONFLICT when no row changed. */
static int deadletter_set_state(struct deadletter *deadletter, const char *id, const char *state,
                                int64_t redriven_ns, const char *from) {
    sqlite3_stmt *stmt = db_statement(deadletter->db,
                                      "UPDATE dlq SET state = ?2, redriven_ns = ?3"
                                      " WHERE id = ?1 AND (?4 IS NULL OR state = ?4)");
    if (stmt == NULL)
        return ERR_IO;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, state, -1, SQLITE_STATIC);
    if (redriven_ns >= 0)
        sqlite3_bind_int64(stmt, 3, redriven_ns);
    if (from != NULL)
        sqlite3_bind_text(stmt, 4, from, -1, SQLITE_STATIC);
    int code = sqlite3_step(stmt);
    int changed = sqlite3_changes(db_handle(deadletter->db));
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (code != SQLITE_DONE)
        return db_error_code(code);
    return changed == 1 ? 0 : ERR_CONFLICT;
}

static const struct deadletter_handler *deadletter_handler_find(const struct deadletter *deadletter,
                                                                const char *consumer) {
    for (size_t index = 0; index < deadletter->handler_count; index++) {
        if (strcmp(deadletter->handlers[index].consumer, consumer) == 0)
            return &deadletter->handlers[index];
    }
    return NULL;
}

int deadletter_redrive(struct deadletter *deadletter, const char *id, struct buf *out) {
    CHECK(deadletter != NULL && id != NULL && out != NULL);
    struct deadletter_row row = {0};
    int rc = deadletter_row_load(deadletter, id, &row);
    if (rc == 0 && (strcmp(row.state, "redriving") == 0 || strcmp(row.state, "redriven") == 0))
        rc = ERR_CONFLICT;
    const struct deadletter_handler *handler =
        rc == 0 ? deadletter_handler_find(deadletter, row.entry.consumer) : NULL;
    if (rc == 0 && handler == NULL)
        rc = ERR_UNSUPPORTED;
    /* "redriving" and the answer first: a handler may resolve before it
     * returns, and once it started, nothing may fail any more. */
    int64_t now_ns = deadletter->clock->wall_ns(deadletter->clock);
    if (rc == 0)
        rc = deadletter_set_state(deadletter, id, "redriving", now_ns, row.state);
    if (rc == 0) {
        rc = deadletter_entry_write(deadletter, id, out);
        if (rc == 0)
            rc = handler->redrive(handler->arg, &row.entry);
        if (rc != 0) {
            LOG_WARN("deadletter", "redrive not started", "id=%s error=%s", id, err_name(rc));
            (void)deadletter_set_state(deadletter, id, row.state, row.redriven_ns, "redriving");
            buf_reset(out);
        }
    }
    mem_free(row.storage);
    return rc;
}

int deadletter_resolve(struct deadletter *deadletter, const char *id, bool succeeded) {
    CHECK(deadletter != NULL && id != NULL);
    sqlite3_stmt *stmt = db_statement(deadletter->db, "SELECT redriven_ns FROM dlq WHERE id = ?1");
    if (stmt == NULL)
        return ERR_IO;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    int code = sqlite3_step(stmt);
    int64_t redriven_ns = code == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL
                              ? sqlite3_column_int64(stmt, 0)
                              : -1;
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (code == SQLITE_DONE)
        return ERR_NOTFOUND;
    if (code != SQLITE_ROW)
        return db_error_code(code);
    return deadletter_set_state(deadletter, id, succeeded ? "redriven" : "failed_again",
                                redriven_ns, "redriving");
}
