/*
 * query.c - reads of the projections (see query.h): users, one task, the
 * filtered and sorted task list, event streams, audit entries, stored
 * idempotent responses, and the retention sweep.
 *
 * Lists are written straight into the caller's buf by appending stored JSON
 * texts (tasks.json is the API object, events.json the CloudEvent as it is
 * in the log): no task is parsed or serialised again on the read path.
 *
 * The task list (T3: fast on 1,000,000 tasks) picks one of two plans:
 *
 *   index order   walk the sort's index (owner_id, completed, key, id) from
 *                 the cursor, test every filter on each row, stop after
 *                 limit + 1 matches. O(limit / density of the filters).
 *                 status=all walks the two completed values and merges them
 *                 in a compound SELECT.
 *   driven        take the rows of one selective filter (a tag's rows in
 *                 task_tags, a due range of tasks_by_due, or the FTS5 match
 *                 set), test the other filters, sort. O(rows of that filter).
 *
 * A filter with few rows (a bounded count, QUERY_DRIVER_ROWS, answers that
 * for tags and due ranges at once) drives. Otherwise the index-order plan
 * runs with a time budget (sqlite3_progress_handler interrupts it); running
 * out of it means the filters together are sparse, and the query is redone
 * driven by the smallest filter, now including full text, whose count is
 * only asked for then (counting a prefix match materialises its doclist).
 * Either way the page is the same; only the time to find it differs.
 * Full text on the index-order plan is tested per row by docket_match (db.h),
 * the same tokens FTS5 would match: user input is tokenized by FTS5's own
 * tokenizer and every token quoted, so FTS5 operators in it are plain text.
 * Known slow case: text or tags matching many tasks of other users but few
 * of this one, or filters that are each common but rarely together, on a
 * user with a very large list: no driver is small, and the walk is long.
 *
 * Cursors are base64url of a small JSON object: {"u": owner, "s": sort,
 * "d": descending, "k": key, "i": id}. A title key too long for
 * LIMIT_LIST_CURSOR_BYTES is cut and flagged "x"; walking on from a cut
 * key may repeat rows whose titles share those first bytes, never skips.
 */
#include "query.h"

#include "../base/json.h"
#include "../base/base64.h"
#include "../base/check.h"
#include "../base/clock.h"
#include "../base/err.h"
#include "../base/logger.h"
#include "../base/mem.h"
#include "../base/timefmt.h"

#include <sqlite3.h>
#include <yyjson.h>

#include <stdio.h>
#include <string.h>

/* A selective filter with fewer rows than this drives the list query at
 * once: fetching and sorting its rows costs about 1 us each, so at most
 * ~1 ms, which the index-order walk could not beat by much. */
#define QUERY_DRIVER_ROWS 1024

/* After the index-order plan ran out of budget, a driving filter with up to
 * this many rows may still be cheaper than walking the rest of the index. */
#define QUERY_FALLBACK_ROWS 16384

/* Time the index-order plan may take when a selective filter is present,
 * before the query is redone driven by its smallest filter; the clock is
 * looked at every QUERY_PROGRESS_STEPS SQLite VM instructions (~20 us).
 * Time rather than instructions or rows: one docket_match call is a single
 * instruction that may cost microseconds, and a row costs 1 us from
 * SQLite's cache but 5-10 us from the OS page cache. A thread descheduled
 * meanwhile may fall back needlessly; QUERY_FALLBACK_ROWS bounds the cost. */
#define QUERY_SCAN_BUDGET_NS (2 * 1000 * 1000)
#define QUERY_PROGRESS_STEPS 1000

/* What fetching, testing and sorting one row of a driven plan costs,
 * roughly: ~1 us when the table is in SQLite's cache, ~5 us at 1,000,000
 * tasks when rows come from the OS page cache. The larger one is used. */
#define QUERY_DRIVEN_ROW_NS 5000

/* Longest title kept whole in a cursor, bytes: with the other members and
 * base64 it stays under LIMIT_LIST_CURSOR_BYTES. */
#define QUERY_CURSOR_TITLE_BYTES 512

_Static_assert(LIMIT_TASK_QUERY_BYTES / 2 <= DB_MATCH_TOKENS_MAX,
               "every token of a q of LIMIT_TASK_QUERY_BYTES fits docket_match");

/* The plan forced by tests (query_testing_force_plan). */
static enum query_plan_override query_plan_forced = QUERY_PLAN_AUTO;

void query_testing_force_plan(enum query_plan_override plan) {
    CHECK((unsigned)plan <= QUERY_PLAN_DRIVEN);
    query_plan_forced = plan;
}

/* ---- Helpers ----------------------------------------------------------- */

static int query_fail(struct db *db, int sqlite_code, const char *what) {
    char quoted[300];
    logger_quote(sqlite3_errmsg(db_handle(db)), quoted, sizeof quoted);
    LOG_ERROR("query", "statement failed", "what=%s code=%d error=%s", what, sqlite_code, quoted);
    return db_error_code(sqlite_code);
}

static size_t query_limit(size_t limit) {
    if (limit == 0)
        return LIMIT_LIST_DEFAULT;
    return limit > LIMIT_LIST_MAX ? LIMIT_LIST_MAX : limit;
}

static void query_bind_text(sqlite3_stmt *stmt, int index, const char *text) {
    sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
}

/* Appends `text` as a JSON string (quotes, backslashes and control bytes
 * escaped; other bytes are UTF-8 already and go through as they are). */
static int query_append_string(struct buf *out, const char *text, size_t length) {
    int rc = buf_append(out, "\"", 1);
    size_t run = 0;
    for (size_t index = 0; rc == 0 && index < length; index++) {
        unsigned char c = (unsigned char)text[index];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = buf_append(out, text + run, index - run);
        if (rc == 0 && (c == '"' || c == '\\'))
            rc = buf_printf(out, "\\%c", c);
        else if (rc == 0)
            rc = buf_printf(out, "\\u%04x", c);
        run = index + 1;
    }
    if (rc == 0)
        rc = buf_append(out, text + run, length - run);
    return rc == 0 ? buf_append(out, "\"", 1) : rc;
}

static int query_append_column_string(struct buf *out, sqlite3_stmt *stmt, int column) {
    if (sqlite3_column_type(stmt, column) == SQLITE_NULL)
        return buf_append_str(out, "null");
    return query_append_string(out, (const char *)sqlite3_column_text(stmt, column),
                               (size_t)sqlite3_column_bytes(stmt, column));
}

static int query_append_time(struct buf *out, int64_t time_ns) {
    char text[TIMEFMT_TIME_BYTES];
    int length = timefmt_time_format(time_ns, text);
    return query_append_string(out, text, (size_t)length);
}

/* Copies a text column into a fixed field; ERR_RANGE if it does not fit. */
static int query_copy_column(sqlite3_stmt *stmt, int column, char *out, size_t size) {
    const char *text = (const char *)sqlite3_column_text(stmt, column);
    size_t length = (size_t)sqlite3_column_bytes(stmt, column);
    if (length >= size)
        return ERR_RANGE;
    memcpy(out, text != NULL ? text : "", length);
    out[length] = '\0';
    return 0;
}

static void query_cursor_error(struct task_errors *errors, const char *message) {
    if (errors != NULL)
        task_errors_add(errors, "cursor", message);
}

/* ---- Users ------------------------------------------------------------- */

#define QUERY_USER_COLUMNS                                                                         \
    "id, username, role, timezone, password_hash, settings, created_ns, last_sequence"

static int query_user_row(struct db *db, sqlite3_stmt *stmt, const char *key,
                          struct user_record *out) {
    CHECK(stmt != NULL && key != NULL && out != NULL);
    query_bind_text(stmt, 1, key);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return rc == SQLITE_DONE ? ERR_NOTFOUND : query_fail(db, rc, "user");
    }
    memset(out, 0, sizeof *out);
    rc = query_copy_column(stmt, 0, out->id, sizeof out->id);
    if (rc == 0)
        rc = query_copy_column(stmt, 1, out->username, sizeof out->username);
    if (rc == 0)
        rc = query_copy_column(stmt, 2, out->role, sizeof out->role);
    if (rc == 0)
        rc = query_copy_column(stmt, 3, out->timezone, sizeof out->timezone);
    if (rc == 0)
        rc = query_copy_column(stmt, 4, out->password_hash, sizeof out->password_hash);
    if (rc == 0)
        rc = query_copy_column(stmt, 5, out->settings, sizeof out->settings);
    out->created_at_ns = sqlite3_column_int64(stmt, 6);
    out->last_sequence = sqlite3_column_int64(stmt, 7);
    sqlite3_reset(stmt);
    if (rc != 0)
        LOG_ERROR("query", "user row does not fit its record", "user=%s", key);
    return rc;
}

int query_user_by_id(struct db *db, const char *id, struct user_record *out) {
    sqlite3_stmt *stmt = db_statement(db, "SELECT " QUERY_USER_COLUMNS " FROM users WHERE id = ?1");
    return stmt != NULL ? query_user_row(db, stmt, id, out) : ERR_IO;
}

int query_user_by_name(struct db *db, const char *username, struct user_record *out) {
    sqlite3_stmt *stmt =
        db_statement(db, "SELECT " QUERY_USER_COLUMNS " FROM users WHERE username = ?1");
    return stmt != NULL ? query_user_row(db, stmt, username, out) : ERR_IO;
}

int64_t query_user_count(struct db *db) {
    sqlite3_stmt *stmt = db_statement(db, "SELECT count(*) FROM users");
    if (stmt == NULL)
        return ERR_IO;
    int rc = sqlite3_step(stmt);
    int64_t count = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_reset(stmt);
    return rc == SQLITE_ROW ? count : query_fail(db, rc, "user count");
}

int query_user_list(struct db *db, struct buf *out) {
    sqlite3_stmt *stmt = db_statement(
        db, "SELECT id, username, role, timezone, created_ns FROM users ORDER BY username");
    if (stmt == NULL)
        return ERR_IO;
    int rc = buf_append_str(out, "{\"items\":[");
    int step = SQLITE_DONE;
    for (size_t row = 0; rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW; row++) {
        rc = buf_append_str(out, row == 0 ? "{\"id\":" : ",{\"id\":");
        if (rc == 0)
            rc = query_append_column_string(out, stmt, 0);
        if (rc == 0)
            rc = buf_append_str(out, ",\"username\":");
        if (rc == 0)
            rc = query_append_column_string(out, stmt, 1);
        if (rc == 0)
            rc = buf_append_str(out, ",\"role\":");
        if (rc == 0)
            rc = query_append_column_string(out, stmt, 2);
        if (rc == 0)
            rc = buf_append_str(out, ",\"timezone\":");
        if (rc == 0)
            rc = query_append_column_string(out, stmt, 3);
        if (rc == 0)
            rc = buf_append_str(out, ",\"created_at\":");
        if (rc == 0)
            rc = query_append_time(out, sqlite3_column_int64(stmt, 4));
        if (rc == 0)
            rc = buf_append_str(out, "}");
    }
    sqlite3_reset(stmt);
    if (rc == 0 && step != SQLITE_DONE)
        rc = query_fail(db, step, "user list");
    return rc == 0 ? buf_append_str(out, "],\"next_cursor\":null}") : rc;
}

int query_user_sequences(struct db *db, void (*each)(void *arg, const char *id, int64_t last),
                         void *arg) {
    CHECK(each != NULL);
    sqlite3_stmt *stmt = db_statement(db, "SELECT id, last_sequence FROM users");
    if (stmt == NULL)
        return ERR_IO;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW)
        each(arg, (const char *)sqlite3_column_text(stmt, 0), sqlite3_column_int64(stmt, 1));
    sqlite3_reset(stmt);
    return step == SQLITE_DONE ? 0 : query_fail(db, step, "user sequences");
}

/* ---- One task ---------------------------------------------------------- */

int query_task_get(struct db *db, const char *owner_id, const char *task_id, struct task *out) {
    CHECK(owner_id != NULL && task_id != NULL && out != NULL);
    sqlite3_stmt *stmt = db_statement(db, "SELECT json FROM tasks WHERE id = ?1 AND owner_id = ?2");
    if (stmt == NULL)
        return ERR_IO;
    query_bind_text(stmt, 1, task_id);
    query_bind_text(stmt, 2, owner_id);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return rc == SQLITE_DONE ? ERR_NOTFOUND : query_fail(db, rc, "task get");
    }
    yyjson_doc *doc = yyjson_read_opts((char *)sqlite3_column_text(stmt, 0),
                                       (size_t)sqlite3_column_bytes(stmt, 0), YYJSON_READ_NOFLAG,
                                       &json_allocator, NULL);
    sqlite3_reset(stmt);
    if (doc == NULL)
        return ERR_NOMEM; /* the projection wrote valid JSON */
    memset(out, 0, sizeof *out);
    rc = task_from_json(yyjson_doc_get_root(doc), out);
    yyjson_doc_free(doc);
    if (rc == ERR_NOMEM)
        return rc;
    if (rc != 0) {
        task_free(out);
        LOG_ERROR("query", "stored task does not parse", "task=%s", task_id);
        return ERR_CORRUPT;
    }
    snprintf(out->owner_id, sizeof out->owner_id, "%s", owner_id);
    return 0;
}

/* ---- Cursors ----------------------------------------------------------- */

/* A decoded cursor: the sort key and id of the last row of a page. */
struct query_cursor {
    bool text_key;                         /* key is text (title sort) */
    int64_t key;                           /* integer key */
    char text[LIMIT_TASK_TITLE_BYTES + 2]; /* text key (maybe cut, then 0xff) */
    size_t text_length;                    /* bytes of text */
    bool cut;                              /* text is a prefix of the real key */
    char id[UUID_STRING_BYTES];            /* the row's id */
};

/* Encodes the JSON document `json` as base64url and appends it quoted. */
static int query_cursor_append(struct buf *out, const struct buf *json) {
    char text[LIMIT_LIST_CURSOR_BYTES + 1];
    size_t length = 0;
    int rc = base64_encode(BASE64_URL, json->data, json->length, text, sizeof text, &length);
    if (rc != 0)
        return rc;
    rc = buf_append(out, "\"", 1);
    if (rc == 0)
        rc = buf_append(out, text, length);
    return rc == 0 ? buf_append(out, "\"", 1) : rc;
}

/* Decodes base64url(JSON object) into a parsed document (caller frees). */
/* Decodes base64url(JSON object) into *doc_out (caller frees). ERR_INVAL
 * when it is not one, ERR_NOMEM. */
static int query_cursor_document(const char *cursor, yyjson_doc **doc_out) {
    *doc_out = NULL;
    size_t length = strlen(cursor);
    if (length == 0 || length > LIMIT_LIST_CURSOR_BYTES)
        return ERR_INVAL;
    char json[LIMIT_LIST_CURSOR_BYTES];
    size_t json_length = 0;
    if (base64_decode(BASE64_URL, cursor, length, json, sizeof json, &json_length) != 0)
        return ERR_INVAL;
    yyjson_read_err error;
    yyjson_doc *doc =
        yyjson_read_opts(json, json_length, YYJSON_READ_NOFLAG, &json_allocator, &error);
    if (doc == NULL)
        return error.code == YYJSON_READ_ERROR_MEMORY_ALLOCATION ? ERR_NOMEM : ERR_INVAL;
    if (!yyjson_is_obj(yyjson_doc_get_root(doc))) {
        yyjson_doc_free(doc);
        return ERR_INVAL;
    }
    *doc_out = doc;
    return 0;
}

static bool query_string_equals(yyjson_val *value, const char *expected) {
    const char *text = yyjson_get_str(value);
    return text != NULL && strcmp(text, expected) == 0;
}

/* ---- Task list: plan pieces --------------------------------------------- */

/* Per sort: its cursor name, index and key expression. */
struct query_sort_info {
    const char *name;  /* in cursors */
    const char *index; /* the index walked in key order */
    const char *key;   /* the key expression (with its collation) */
    bool text;         /* key is text */
};

static const struct query_sort_info query_sorts[] = {
    [TASK_SORT_DUE] = {"due", "tasks_by_due", "due_sort", false},
    [TASK_SORT_PRIORITY] = {"priority", "tasks_by_priority", "priority", false},
    [TASK_SORT_CREATED] = {"created", "tasks_by_created", "created_ns", false},
    [TASK_SORT_UPDATED] = {"updated", "tasks_by_updated", "updated_ns", false},
    [TASK_SORT_TITLE] = {"title", "tasks_by_title", "title COLLATE NOCASE", true},
};

/* Bound parameters of every list statement (numbered; unused ones are
 * simply not referenced). Tags take QUERY_PARAM_TAGS + i. */
enum {
    QUERY_PARAM_OWNER = 1,
    QUERY_PARAM_CURSOR_KEY = 2,
    QUERY_PARAM_CURSOR_ID = 3,
    QUERY_PARAM_DUE_BEFORE = 4,
    QUERY_PARAM_DUE_AFTER = 5,
    QUERY_PARAM_NOW = 6,
    QUERY_PARAM_TOKENS = 7,
    QUERY_PARAM_PREFIX = 8,
    QUERY_PARAM_FTS = 9,
    QUERY_PARAM_LIMIT = 10,
    QUERY_PARAM_TAGS = 11,
};

/* Where a driven plan takes its rows from. */
enum query_driver { QUERY_DRIVER_NONE = 0, QUERY_DRIVER_TAG, QUERY_DRIVER_DUE, QUERY_DRIVER_TEXT };

/* State of one task list query. */
struct query_list {
    struct db *db;                       /* the database */
    const struct task_list_query *query; /* what was asked */
    const struct query_sort_info *sort;  /* query_sorts[query->sort] */
    size_t limit;                        /* page size */
    bool has_cursor;                     /* a cursor was given */
    struct query_cursor cursor;          /* decoded */
    bool has_text;                       /* q has tokens */
    struct buf tokens;                   /* q's tokens, space-separated */
    struct buf fts;                      /* q as an FTS5 query of quoted tokens */
    size_t token_count;                  /* tokens in q */
    int prefix;                          /* 1: last token matches as a prefix */
    struct buf sql;                      /* statement being assembled */
    struct buf next;                     /* quoted cursor after the page's last row */
    int64_t deadline_ns;                 /* monotonic end of the budget; < 0 = none */
    bool tags_in_driver;                 /* the driver checks every tag (driven by a tag) */
    size_t written;                      /* items written to the page so far */
    struct query_cursor last;            /* key and id of the last item written */
    int64_t progress_calls;              /* progress-handler calls (forced exhaustion) */
};

static int query_list_progress(void *arg) {
    struct query_list *list = arg;
    /* Forced exhaustion: stop after the first item (so the page is resumed
     * by another plan) or soon when none comes. */
    if (query_plan_forced == QUERY_PLAN_BUDGET_EXHAUSTED)
        return list->written > 0 || ++list->progress_calls > 200 ? 1 : 0;
    struct clock *clock = clock_system();
    return clock->monotonic_ns(clock) > list->deadline_ns ? 1 : 0;
}

static bool query_has_due_filter(const struct task_list_query *query) {
    return query->has_due_before || query->has_due_after || query->overdue;
}

/* The `completed` condition of the status, or NULL for all. */
static const char *query_status_condition(const struct task_list_query *query) {
    if (query->overdue || query->status == TASK_STATUS_OPEN)
        return " AND completed = 0";
    return query->status == TASK_STATUS_COMPLETED ? " AND completed = 1" : NULL;
}

/* Appends the filters shared by both plans (not owner, status, cursor). */
/* Appends the filters shared by both plans (not owner, status, cursor),
 * cheapest first: SQLite tests them in this order, and the tag checks need
 * only the rowid the index already holds, so rows failing them are never
 * read from the table; docket_match, the costliest, comes last. */
static int query_append_filters(struct query_list *list) {
    const struct task_list_query *query = list->query;
    struct buf *sql = &list->sql;
    int rc = 0;
    for (size_t index = 0; rc == 0 && !list->tags_in_driver && index < query->tag_count; index++)
        rc = buf_printf(sql,
                        " AND EXISTS(SELECT 1 FROM task_tags WHERE owner_id = ?1"
                        " AND tag = ?%d AND task_rowid = tasks.rowid)",
                        QUERY_PARAM_TAGS + (int)index);
    if (rc == 0 && query->has_due_before)
        rc = buf_append_str(sql, " AND due_sort < ?4");
    if (rc == 0 && query->has_due_after)
        rc = buf_append_str(sql, " AND due_sort >= ?5 AND due_ns IS NOT NULL");
    if (rc == 0 && query->overdue)
        rc = buf_append_str(sql, " AND due_sort < ?6 AND completed = 0");
    if (rc == 0 && query->priorities != 0) {
        rc = buf_append_str(sql, " AND priority IN (");
        for (int priority = 0, first = 1; rc == 0 && priority <= TASK_PRIORITY_URGENT; priority++) {
            if ((query->priorities & (1u << priority)) == 0)
                continue;
            rc = buf_printf(sql, first ? "%d" : ",%d", priority);
            first = 0;
        }
        if (rc == 0)
            rc = buf_append_str(sql, ")");
    }
    if (rc == 0 && list->has_text)
        rc = buf_append_str(sql, " AND docket_match(?7, ?8, title, description)");
    return rc;
}

static int query_append_cursor_condition(struct query_list *list) {
    if (!list->has_cursor)
        return 0;
    const char *key = list->sort->key;
    const char *compare = list->query->descending ? "<" : ">";
    /* The plain bound on the key lets SQLite start the index walk at the
     * cursor; the row value then breaks ties by id. */
    return buf_printf(&list->sql, " AND %s %s= ?2 AND (%s, id) %s (?2, ?3)", key, compare, key,
                      compare);
}

static int query_append_order(struct query_list *list, const char *key) {
    const char *direction = list->query->descending ? " DESC" : "";
    return buf_printf(&list->sql, " ORDER BY %s%s, id%s LIMIT ?10", key, direction, direction);
}

/* The index-order plan: one walk, or two merged for status=all. */
static int query_build_index_plan(struct query_list *list) {
    const struct query_sort_info *sort = list->sort;
    const char *status = query_status_condition(list->query);
    struct buf *sql = &list->sql;
    buf_reset(sql);
    int rc = 0;
    for (int branch = 0; rc == 0 && branch < (status == NULL ? 2 : 1); branch++) {
        if (status == NULL)
            rc =
                buf_append_str(sql, branch == 0 ? "SELECT * FROM (" : " UNION ALL SELECT * FROM (");
        if (rc == 0)
            rc = buf_printf(sql,
                            "SELECT json, %s AS sort_key, id FROM tasks INDEXED BY %s"
                            " WHERE owner_id = ?1",
                            sort->key, sort->index);
        if (rc == 0)
            rc = buf_append_str(sql, status != NULL ? status
                                     : branch == 0  ? " AND completed = 0"
                                                    : " AND completed = 1");
        if (rc == 0)
            rc = query_append_filters(list);
        if (rc == 0)
            rc = query_append_cursor_condition(list);
        if (rc == 0)
            rc = query_append_order(list, sort->key);
        if (rc == 0 && status == NULL)
            rc = buf_append_str(sql, ")");
    }
    if (rc == 0 && status == NULL)
        rc = query_append_order(list, sort->text ? "2 COLLATE NOCASE" : "2");
    return rc;
}

/* Appends the row source of a driver: a subquery giving task rowids. */
static int query_append_driver(struct query_list *list, enum query_driver driver, size_t tag) {
    struct buf *sql = &list->sql;
    const struct task_list_query *query = list->query;
    if (driver == QUERY_DRIVER_TAG) {
        int rc = buf_printf(sql,
                            "SELECT task_rowid FROM task_tags AS driver WHERE owner_id = ?1"
                            " AND tag = ?%d",
                            QUERY_PARAM_TAGS + (int)tag);
        /* In a driven plan the other tags are checked here, in task_tags
         * alone, so rows missing one are never fetched from tasks. */
        for (size_t other = 0; rc == 0 && list->tags_in_driver && other < query->tag_count;
             other++) {
            if (other != tag)
                rc = buf_printf(sql,
                                " AND EXISTS(SELECT 1 FROM task_tags WHERE owner_id = ?1"
                                " AND tag = ?%d AND task_rowid = driver.task_rowid)",
                                QUERY_PARAM_TAGS + (int)other);
        }
        return rc;
    }
    if (driver == QUERY_DRIVER_TEXT)
        return buf_append_str(sql, "SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH ?9");
    CHECK(driver == QUERY_DRIVER_DUE);
    const char *status = query_status_condition(query);
    int rc = buf_append_str(sql, "SELECT rowid FROM tasks INDEXED BY tasks_by_due"
                                 " WHERE owner_id = ?1");
    if (rc == 0)
        rc = buf_append_str(sql, status != NULL ? status : " AND completed IN (0, 1)");
    if (rc == 0 && query->has_due_before)
        rc = buf_append_str(sql, " AND due_sort < ?4");
    if (rc == 0 && query->has_due_after)
        rc = buf_append_str(sql, " AND due_sort >= ?5");
    if (rc == 0 && query->overdue)
        rc = buf_append_str(sql, " AND due_sort < ?6");
    return rc;
}

/* The driven plan: the driver's rows, every filter, sorted. */
static int query_build_driven_plan(struct query_list *list, enum query_driver driver, size_t tag) {
    struct buf *sql = &list->sql;
    buf_reset(sql);
    list->tags_in_driver = driver == QUERY_DRIVER_TAG;
    int rc = buf_printf(sql,
                        "SELECT json, %s AS sort_key, id FROM tasks NOT INDEXED"
                        " WHERE rowid IN (",
                        list->sort->key);
    if (rc == 0)
        rc = query_append_driver(list, driver, tag);
    if (rc == 0)
        rc = buf_append_str(sql, ") AND owner_id = ?1");
    const char *status = query_status_condition(list->query);
    if (rc == 0 && status != NULL)
        rc = buf_append_str(sql, status);
    if (rc == 0)
        rc = query_append_filters(list);
    if (rc == 0)
        rc = query_append_cursor_condition(list);
    if (rc == 0)
        rc = query_append_order(list, list->sort->key);
    list->tags_in_driver = false;
    return rc;
}

static void query_list_bind(struct query_list *list, sqlite3_stmt *stmt) {
    const struct task_list_query *query = list->query;
    int count = sqlite3_bind_parameter_count(stmt);
    /* Statements reference a subset of the numbers; binding past the
     * highest one would be SQLITE_RANGE, so stop there. */
    for (int index = 1; index <= count; index++) {
        if (index == QUERY_PARAM_OWNER)
            query_bind_text(stmt, index, query->owner_id);
        else if (index == QUERY_PARAM_CURSOR_KEY && list->has_cursor && list->cursor.text_key)
            sqlite3_bind_text(stmt, index, list->cursor.text, (int)list->cursor.text_length,
                              SQLITE_STATIC);
        else if (index == QUERY_PARAM_CURSOR_KEY && list->has_cursor)
            sqlite3_bind_int64(stmt, index, list->cursor.key);
        else if (index == QUERY_PARAM_CURSOR_ID && list->has_cursor)
            query_bind_text(stmt, index, list->cursor.id);
        else if (index == QUERY_PARAM_DUE_BEFORE)
            sqlite3_bind_int64(stmt, index, query->due_before_ns);
        else if (index == QUERY_PARAM_DUE_AFTER)
            sqlite3_bind_int64(stmt, index, query->due_after_ns);
        else if (index == QUERY_PARAM_NOW)
            sqlite3_bind_int64(stmt, index, query->now_ns);
        else if (index == QUERY_PARAM_TOKENS && list->has_text)
            sqlite3_bind_text(stmt, index, list->tokens.data, (int)list->tokens.length,
                              SQLITE_STATIC);
        else if (index == QUERY_PARAM_PREFIX)
            sqlite3_bind_int(stmt, index, list->prefix);
        else if (index == QUERY_PARAM_FTS && list->has_text)
            sqlite3_bind_text(stmt, index, list->fts.data, (int)list->fts.length, SQLITE_STATIC);
        else if (index == QUERY_PARAM_LIMIT)
            sqlite3_bind_int64(stmt, index, (int64_t)(list->limit - list->written) + 1);
        else if (index >= QUERY_PARAM_TAGS && (size_t)(index - QUERY_PARAM_TAGS) < query->tag_count)
            query_bind_text(stmt, index, query->tags[index - QUERY_PARAM_TAGS]);
    }
}

/* ---- Task list: cursors ------------------------------------------------ */

/* Appends the cursor naming the row just written (its key is in stmt). */
static int query_list_cursor(struct query_list *list, sqlite3_stmt *stmt, struct buf *out) {
    struct buf json;
    buf_init(&json, LIMIT_LIST_CURSOR_BYTES);
    int rc = buf_append_str(&json, "{\"u\":");
    if (rc == 0)
        rc = query_append_string(&json, list->query->owner_id, strlen(list->query->owner_id));
    if (rc == 0)
        rc = buf_printf(&json, ",\"s\":\"%s\",\"d\":%d,\"k\":", list->sort->name,
                        list->query->descending ? 1 : 0);
    if (rc == 0 && list->sort->text) {
        const char *title = (const char *)sqlite3_column_text(stmt, 1);
        size_t length = (size_t)sqlite3_column_bytes(stmt, 1);
        bool cut = length > QUERY_CURSOR_TITLE_BYTES;
        if (cut) {
            length = QUERY_CURSOR_TITLE_BYTES;
            while (length > 0 && ((unsigned char)title[length] & 0xc0) == 0x80)
                length--; /* cut before a character, never inside one */
        }
        rc = query_append_string(&json, title, length);
        if (rc == 0 && cut)
            rc = buf_append_str(&json, ",\"x\":1");
    } else if (rc == 0) {
        rc = buf_printf(&json, "%lld", (long long)sqlite3_column_int64(stmt, 1));
    }
    if (rc == 0)
        rc = buf_append_str(&json, ",\"i\":");
    if (rc == 0)
        rc = query_append_column_string(&json, stmt, 2);
    if (rc == 0)
        rc = buf_append_str(&json, "}");
    if (rc == 0)
        rc = query_cursor_append(out, &json);
    buf_free(&json);
    return rc;
}

/* Reads the cursor's key into list->cursor; false if it does not fit. */
static bool query_list_cursor_key(struct query_list *list, yyjson_val *root) {
    struct query_cursor *cursor = &list->cursor;
    yyjson_val *key = yyjson_obj_get(root, "k");
    cursor->text_key = list->sort->text;
    if (!list->sort->text) {
        cursor->key = yyjson_get_sint(key);
        return yyjson_is_int(key);
    }
    const char *text = yyjson_get_str(key);
    size_t length = yyjson_get_len(key);
    if (text == NULL || length > QUERY_CURSOR_TITLE_BYTES)
        return false;
    memcpy(cursor->text, text, length);
    cursor->cut = yyjson_get_sint(yyjson_obj_get(root, "x")) == 1;
    if (cursor->cut && list->query->descending) {
        /* A cut key is a prefix of the real one, so it sorts before it.
         * Walking down, bound by the prefix followed by 0xff instead (no
         * UTF-8 text has that byte): rows between may repeat, none is
         * skipped. */
        cursor->text[length++] = (char)0xff;
    }
    cursor->text[length] = '\0';
    cursor->text_length = length;
    return true;
}

static int query_list_cursor_decode(struct query_list *list, struct task_errors *errors) {
    const struct task_list_query *query = list->query;
    yyjson_doc *doc = NULL;
    int decoded = query_cursor_document(query->cursor, &doc);
    if (decoded != 0) {
        if (decoded == ERR_INVAL)
            query_cursor_error(errors, "is not a cursor from this API");
        return decoded;
    }
    yyjson_val *root = yyjson_doc_get_root(doc);
    yyjson_val *descending = yyjson_obj_get(root, "d");
    const char *id = yyjson_get_str(yyjson_obj_get(root, "i"));
    int rc = 0;
    if (!query_string_equals(yyjson_obj_get(root, "u"), query->owner_id) ||
        !query_string_equals(yyjson_obj_get(root, "s"), list->sort->name) ||
        !yyjson_is_int(descending) || (yyjson_get_sint(descending) != 0) != query->descending) {
        query_cursor_error(errors, "was made for another sort or user");
        rc = ERR_INVAL;
    } else if (id == NULL || yyjson_get_len(yyjson_obj_get(root, "i")) >= UUID_STRING_BYTES ||
               !query_list_cursor_key(list, root)) {
        query_cursor_error(errors, "is not a cursor from this API");
        rc = ERR_INVAL;
    } else {
        snprintf(list->cursor.id, sizeof list->cursor.id, "%s", id);
        list->has_cursor = true;
    }
    yyjson_doc_free(doc);
    return rc;
}

/* ---- Task list: full text ---------------------------------------------- */

static int query_list_token(void *arg, const char *token, size_t length) {
    struct query_list *list = arg;
    if (list->token_count == DB_MATCH_TOKENS_MAX)
        return ERR_LIMIT;
    bool first = list->token_count++ == 0;
    int rc = first ? 0 : buf_append(&list->tokens, " ", 1);
    if (rc == 0)
        rc = buf_append(&list->tokens, token, length);
    if (rc == 0)
        rc = buf_append_str(&list->fts, first ? "\"" : " \"");
    /* unicode61 tokens never hold '"' (it separates tokens); doubling it
     * anyway keeps the quoting right whatever the tokenizer does. */
    for (size_t index = 0; rc == 0 && index < length; index++)
        rc = token[index] == '"' ? buf_append(&list->fts, "\"\"", 2)
                                 : buf_append(&list->fts, token + index, 1);
    return rc == 0 ? buf_append(&list->fts, "\"", 1) : rc;
}

/* Turns q into tokens (docket_match) and quoted terms (FTS5 MATCH). The last
 * term matches as a prefix unless q ends in a space (a finished word). */
static int query_list_text(struct query_list *list, struct task_errors *errors) {
    const char *text = list->query->text;
    size_t length = strlen(text);
    if (length > LIMIT_TASK_QUERY_BYTES) {
        if (errors != NULL)
            task_errors_add(errors, "q", "must be at most 512 bytes");
        return ERR_INVAL;
    }
    _Static_assert(LIMIT_TASK_QUERY_BYTES == 512, "update the message above");
    int rc = db_tokenize(list->db, text, length, query_list_token, list);
    if (rc != 0)
        return rc;
    list->prefix = length > 0 && text[length - 1] != ' ' && text[length - 1] != '\t' ? 1 : 0;
    if (list->prefix && list->token_count > 0)
        rc = buf_append(&list->fts, "*", 1);
    list->has_text = true;
    return rc;
}

/* ---- Task list: running a plan ----------------------------------------- */

/* Keeps the key and id of the row just written, so an interrupted plan can
 * be resumed after it (whole key: resuming must neither repeat nor skip). */
static void query_list_remember(struct query_list *list, sqlite3_stmt *stmt) {
    struct query_cursor *last = &list->last;
    last->text_key = list->sort->text;
    if (last->text_key) {
        size_t length = (size_t)sqlite3_column_bytes(stmt, 1);
        CHECK(length <= LIMIT_TASK_TITLE_BYTES);
        memcpy(last->text, sqlite3_column_text(stmt, 1), length);
        last->text[length] = '\0';
        last->text_length = length;
    } else {
        last->key = sqlite3_column_int64(stmt, 1);
    }
    snprintf(last->id, sizeof last->id, "%s", (const char *)sqlite3_column_text(stmt, 2));
}

/* Runs the statement in list->sql, appending items until the page has
 * `limit` of them, then the page's end. ERR_AGAIN when the time budget ran
 * out: the items written so far stay, and list->cursor now points after the
 * last of them, so another plan continues the same page. */
static int query_list_run(struct query_list *list, struct buf *out) {
    sqlite3_stmt *stmt = NULL;
    int prepared = db_statement_text(list->db, list->sql.data, list->sql.length, &stmt);
    if (prepared != 0)
        return prepared;
    query_list_bind(list, stmt);
    sqlite3 *handle = db_handle(list->db);
    /* Forced exhaustion looks after every instruction, so even a query on a
     * handful of rows is interrupted. */
    int every = query_plan_forced == QUERY_PLAN_BUDGET_EXHAUSTED ? 1 : QUERY_PROGRESS_STEPS;
    if (list->deadline_ns >= 0)
        sqlite3_progress_handler(handle, every, query_list_progress, list);
    int rc = 0;
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (list->written == list->limit) {
            /* One row past the page: there is a next page, which starts
             * after the last row written. */
            rc = buf_append_str(out, "],\"next_cursor\":");
            if (rc == 0)
                rc = buf_append(out, list->next.data, list->next.length);
            break;
        }
        rc = list->written > 0 ? buf_append(out, ",", 1) : 0;
        if (rc == 0)
            rc = buf_append(out, sqlite3_column_text(stmt, 0),
                            (size_t)sqlite3_column_bytes(stmt, 0));
        list->written++;
        query_list_remember(list, stmt);
        if (rc == 0 && list->written == list->limit) {
            buf_reset(&list->next);
            rc = query_list_cursor(list, stmt, &list->next);
        }
    }
    sqlite3_progress_handler(handle, 0, NULL, NULL);
    sqlite3_reset(stmt);
    if (rc == 0 && step == SQLITE_INTERRUPT) {
        if (list->written > 0) {
            list->cursor = list->last;
            list->has_cursor = true;
        }
        return ERR_AGAIN;
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = query_fail(list->db, step, "task list");
    if (rc == 0 && step == SQLITE_DONE)
        rc = buf_append_str(out, "],\"next_cursor\":null");
    return rc == 0 ? buf_append_str(out, "}") : rc;
}

/* Counts the rows of a driver, stopping at `cap`. */
static int64_t query_list_probe(struct query_list *list, enum query_driver driver, size_t tag,
                                int64_t cap) {
    buf_reset(&list->sql);
    int rc = buf_append_str(&list->sql, "SELECT count(*) FROM (");
    if (rc == 0)
        rc = query_append_driver(list, driver, tag);
    if (rc == 0)
        rc = buf_printf(&list->sql, " LIMIT %lld)", (long long)cap);
    if (rc != 0)
        return rc;
    sqlite3_stmt *stmt = NULL;
    int prepared = db_statement_text(list->db, list->sql.data, list->sql.length, &stmt);
    if (prepared != 0)
        return prepared;
    query_list_bind(list, stmt);
    int step = sqlite3_step(stmt);
    int64_t count = step == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_reset(stmt);
    return step == SQLITE_ROW ? count : query_fail(list->db, step, "task list probe");
}

/* The driver with the fewest rows under `cap` (QUERY_DRIVER_NONE if every
 * one has at least `cap`). Full text is counted only when `with_text`. */
static int query_list_best_driver(struct query_list *list, int64_t cap, bool with_text,
                                  enum query_driver *driver_out, size_t *tag_out) {
    const struct task_list_query *query = list->query;
    int64_t best = cap;
    *driver_out = QUERY_DRIVER_NONE;
    for (size_t tag = 0; tag <= query->tag_count; tag++) {
        enum query_driver driver = tag < query->tag_count ? QUERY_DRIVER_TAG : QUERY_DRIVER_DUE;
        if (driver == QUERY_DRIVER_DUE &&
            (!query_has_due_filter(query) || query->sort == TASK_SORT_DUE))
            continue;
        int64_t count = query_list_probe(list, driver, tag, best);
        if (count < 0)
            return (int)count;
        if (count < best) {
            best = count;
            *driver_out = driver;
            *tag_out = tag;
        }
    }
    if (with_text && list->has_text) {
        int64_t count = query_list_probe(list, QUERY_DRIVER_TEXT, 0, best);
        if (count < 0)
            return (int)count;
        if (count < best)
            *driver_out = QUERY_DRIVER_TEXT;
    }
    return 0;
}

static int query_list_driven(struct query_list *list, enum query_driver driver, size_t tag,
                             struct buf *out) {
    int rc = query_build_driven_plan(list, driver, tag);
    list->deadline_ns = -1;
    return rc == 0 ? query_list_run(list, out) : rc;
}

/* The index-order plan, within `budget_ns` (< 0: no budget). */
static int query_list_indexed(struct query_list *list, int64_t budget_ns, struct buf *out) {
    int rc = query_build_index_plan(list);
    struct clock *clock = clock_system();
    list->deadline_ns = budget_ns < 0 ? -1 : clock->monotonic_ns(clock) + budget_ns;
    return rc == 0 ? query_list_run(list, out) : rc;
}

/* Plan choice for a query with a selective filter (see the top of file). */
static int query_list_selective(struct query_list *list, struct buf *out) {
    enum query_driver driver = QUERY_DRIVER_NONE;
    size_t tag = 0;
    int rc = 0;
    if (query_plan_forced == QUERY_PLAN_DRIVEN) {
        rc = query_list_best_driver(list, INT64_MAX, true, &driver, &tag);
        if (rc == 0 && driver != QUERY_DRIVER_NONE)
            return query_list_driven(list, driver, tag, out);
        return rc == 0 ? query_list_indexed(list, -1, out) : rc;
    }
    bool exhaust = query_plan_forced == QUERY_PLAN_BUDGET_EXHAUSTED;
    if (!exhaust)
        rc = query_list_best_driver(list, QUERY_DRIVER_ROWS, false, &driver, &tag);
    if (rc != 0)
        return rc;
    if (driver != QUERY_DRIVER_NONE)
        return query_list_driven(list, driver, tag, out);
    rc = query_list_indexed(list, exhaust ? 0 : QUERY_SCAN_BUDGET_NS, out);
    if (rc != ERR_AGAIN)
        return rc;
    /* Matches found so far tell how long the walk would still take; a
     * driver is worth it only if fetching its rows is quicker. */
    int64_t cap = QUERY_FALLBACK_ROWS;
    size_t found = list->written;
    if (found > 0 && !exhaust) {
        int64_t remaining_ns =
            QUERY_SCAN_BUDGET_NS * (int64_t)(list->limit + 1 - found) / (int64_t)found;
        cap = remaining_ns / QUERY_DRIVEN_ROW_NS < cap ? remaining_ns / QUERY_DRIVEN_ROW_NS : cap;
    }
    rc = cap > 0 ? query_list_best_driver(list, cap, true, &driver, &tag) : 0;
    if (rc != 0)
        return rc;
    if (driver != QUERY_DRIVER_NONE)
        return query_list_driven(list, driver, tag, out);
    return query_list_indexed(list, -1, out);
}

static void query_list_free(struct query_list *list) {
    buf_free(&list->tokens);
    buf_free(&list->fts);
    buf_free(&list->sql);
    buf_free(&list->next);
}

static int query_list_init(struct query_list *list, struct db *db,
                           const struct task_list_query *query, struct task_errors *errors) {
    CHECK(query->owner_id != NULL && query->tag_count <= LIMIT_LIST_FILTER_VALUES);
    CHECK((unsigned)query->sort <= TASK_SORT_TITLE && query->priorities < 16);
    memset(list, 0, sizeof *list);
    list->db = db;
    list->query = query;
    list->sort = &query_sorts[query->sort];
    list->limit = query_limit(query->limit);
    list->deadline_ns = -1;
    buf_init(&list->tokens, 2 * LIMIT_TASK_QUERY_BYTES);
    buf_init(&list->fts, 8 * LIMIT_TASK_QUERY_BYTES);
    buf_init(&list->sql, 16 * 1024);
    buf_init(&list->next, LIMIT_LIST_CURSOR_BYTES + 2);
    int rc = 0;
    if (query->cursor != NULL)
        rc = query_list_cursor_decode(list, errors);
    if (rc == 0 && query->text != NULL && query->text[0] != '\0')
        rc = query_list_text(list, errors);
    return rc;
}

int query_task_list(struct db *db, const struct task_list_query *query, struct buf *out,
                    struct task_errors *errors) {
    CHECK(db != NULL && query != NULL && out != NULL);
    struct query_list list;
    int rc = query_list_init(&list, db, query, errors);
    if (rc == 0)
        rc = buf_append_str(out, "{\"items\":[");
    bool empty = (list.has_text && list.token_count == 0) ||
                 (query->overdue && query->status == TASK_STATUS_COMPLETED);
    bool selective = query->tag_count > 0 || list.has_text ||
                     (query_has_due_filter(query) && query->sort != TASK_SORT_DUE);
    if (rc == 0 && empty)
        rc = buf_append_str(out, "],\"next_cursor\":null}"); /* FTS5 too matches nothing */
    else if (rc == 0 && selective && query_plan_forced != QUERY_PLAN_INDEXED)
        rc = query_list_selective(&list, out);
    else if (rc == 0)
        rc = query_list_indexed(&list, -1, out);
    query_list_free(&list);
    return rc;
}

/* ---- Events ------------------------------------------------------------ */

/* Appends the rows of a (sequence, json) statement as a page; the cursor
 * is the last sequence written. */
static int query_event_page(struct db *db, sqlite3_stmt *stmt, size_t limit, struct buf *out,
                            size_t *rows_out) {
    int rc = buf_append_str(out, "{\"items\":[");
    int step = SQLITE_DONE;
    size_t rows = 0;
    int64_t last = 0;
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (rows == limit)
            break;
        rc = rows > 0 ? buf_append(out, ",", 1) : 0;
        if (rc == 0)
            rc = buf_append(out, sqlite3_column_text(stmt, 1),
                            (size_t)sqlite3_column_bytes(stmt, 1));
        last = sqlite3_column_int64(stmt, 0);
        rows++;
    }
    sqlite3_reset(stmt);
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = query_fail(db, step, "events");
    if (rc == 0 && step == SQLITE_ROW)
        rc = buf_printf(out, "],\"next_cursor\":\"%lld\"}", (long long)last);
    else if (rc == 0)
        rc = buf_append_str(out, "],\"next_cursor\":null}");
    *rows_out = rows;
    return rc;
}

int query_events_since(struct db *db, const char *user_id, int64_t since, size_t limit,
                       struct buf *out) {
    CHECK(db != NULL && user_id != NULL && out != NULL);
    limit = query_limit(limit);
    sqlite3_stmt *stmt = db_statement(db, "SELECT sequence, json FROM events WHERE user_id = ?1"
                                          " AND sequence > ?2 ORDER BY sequence LIMIT ?3");
    if (stmt == NULL)
        return ERR_IO;
    query_bind_text(stmt, 1, user_id);
    sqlite3_bind_int64(stmt, 2, since);
    sqlite3_bind_int64(stmt, 3, (int64_t)limit + 1);
    size_t rows = 0;
    return query_event_page(db, stmt, limit, out, &rows);
}

int query_events_each(struct db *db, const char *user_id, int64_t after, size_t limit,
                      query_event_callback each, void *arg) {
    CHECK(db != NULL && user_id != NULL && each != NULL);
    sqlite3_stmt *stmt = db_statement(db, "SELECT sequence, json FROM events WHERE user_id = ?1"
                                          " AND sequence > ?2 ORDER BY sequence LIMIT ?3");
    if (stmt == NULL)
        return ERR_IO;
    query_bind_text(stmt, 1, user_id);
    sqlite3_bind_int64(stmt, 2, after);
    sqlite3_bind_int64(stmt, 3, (int64_t)limit);
    int count = 0;
    int step = SQLITE_DONE;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *json = (const char *)sqlite3_column_text(stmt, 1);
        size_t length = (size_t)sqlite3_column_bytes(stmt, 1);
        count++;
        if (each(arg, sqlite3_column_int64(stmt, 0), json != NULL ? json : "", length) != 0) {
            step = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(stmt);
    if (step != SQLITE_DONE)
        return query_fail(db, step, "events each");
    return count;
}

/* A sequence cursor: decimal digits, no sign, at most 18 of them. */
static int query_sequence_cursor(const char *cursor, int64_t *out) {
    size_t length = strlen(cursor);
    if (length == 0 || length > 18)
        return ERR_INVAL;
    int64_t value = 0;
    for (size_t index = 0; index < length; index++) {
        if (cursor[index] < '0' || cursor[index] > '9')
            return ERR_INVAL;
        value = value * 10 + (cursor[index] - '0');
    }
    *out = value;
    return 0;
}

static int query_task_seen(struct db *db, const char *user_id, const char *task_id) {
    sqlite3_stmt *stmt =
        db_statement(db, "SELECT 1 FROM events WHERE user_id = ?1 AND task_id = ?2 LIMIT 1");
    if (stmt == NULL)
        return ERR_IO;
    query_bind_text(stmt, 1, user_id);
    query_bind_text(stmt, 2, task_id);
    int step = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (step == SQLITE_ROW)
        return 0;
    return step == SQLITE_DONE ? ERR_NOTFOUND : query_fail(db, step, "task seen");
}

int query_task_events(struct db *db, const char *user_id, const char *task_id, size_t limit,
                      const char *cursor, struct buf *out, struct task_errors *errors) {
    CHECK(db != NULL && user_id != NULL && task_id != NULL && out != NULL);
    int64_t since = 0;
    if (cursor != NULL && query_sequence_cursor(cursor, &since) != 0) {
        query_cursor_error(errors, "is not a cursor from this API");
        return ERR_INVAL;
    }
    int rc = query_task_seen(db, user_id, task_id);
    if (rc != 0)
        return rc;
    limit = query_limit(limit);
    sqlite3_stmt *stmt = db_statement(db, "SELECT sequence, json FROM events WHERE user_id = ?1"
                                          " AND task_id = ?2 AND sequence > ?3"
                                          " ORDER BY sequence LIMIT ?4");
    if (stmt == NULL)
        return ERR_IO;
    query_bind_text(stmt, 1, user_id);
    query_bind_text(stmt, 2, task_id);
    sqlite3_bind_int64(stmt, 3, since);
    sqlite3_bind_int64(stmt, 4, (int64_t)limit + 1);
    size_t rows = 0;
    return query_event_page(db, stmt, limit, out, &rows);
}

/* ---- Audit ------------------------------------------------------------- */

/* Who a cursor of an audit query is for: the user, or "*" for everyone. */
static const char *query_audit_scope(const struct audit_query *query) {
    return query->user_id != NULL ? query->user_id : "*";
}

static int query_audit_cursor_decode(const struct audit_query *query, int64_t *time_ns, int64_t *id,
                                     struct task_errors *errors) {
    yyjson_doc *doc = NULL;
    int decoded = query_cursor_document(query->cursor, &doc);
    if (decoded == ERR_NOMEM)
        return decoded;
    yyjson_val *root = doc != NULL ? yyjson_doc_get_root(doc) : NULL;
    yyjson_val *time_value = yyjson_obj_get(root, "t");
    yyjson_val *id_value = yyjson_obj_get(root, "i");
    int rc = 0;
    if (doc == NULL || !yyjson_is_int(time_value) || !yyjson_is_int(id_value)) {
        query_cursor_error(errors, "is not a cursor from this API");
        rc = ERR_INVAL;
    } else if (!query_string_equals(yyjson_obj_get(root, "a"), query_audit_scope(query))) {
        query_cursor_error(errors, "was made for another user");
        rc = ERR_INVAL;
    } else {
        *time_ns = yyjson_get_sint(time_value);
        *id = yyjson_get_sint(id_value);
    }
    yyjson_doc_free(doc);
    return rc;
}

static int query_audit_sql(struct buf *sql, const struct audit_query *query, bool has_cursor) {
    int rc = buf_append_str(sql, "SELECT id, time_ns, user_id, actor, type, task_id, payload"
                                 " FROM audit WHERE 1 = 1");
    if (rc == 0 && query->user_id != NULL)
        rc = buf_append_str(sql, " AND user_id = ?1");
    if (rc == 0 && query->has_from)
        rc = buf_append_str(sql, " AND time_ns >= ?2");
    if (rc == 0 && query->has_to)
        rc = buf_append_str(sql, " AND time_ns < ?3");
    if (rc == 0 && query->task_id != NULL)
        rc = buf_append_str(sql, " AND task_id = ?4");
    if (rc == 0 && has_cursor)
        rc = buf_append_str(sql, " AND time_ns >= ?5 AND (time_ns, id) > (?5, ?6)");
    for (size_t index = 0; rc == 0 && index < query->type_count; index++)
        rc = buf_printf(sql, index == 0 ? " AND type IN (?%d" : ", ?%d", 10 + (int)index);
    if (rc == 0 && query->type_count > 0)
        rc = buf_append_str(sql, ")");
    return rc == 0 ? buf_append_str(sql, " ORDER BY time_ns, id LIMIT ?7") : rc;
}

static void query_audit_bind(sqlite3_stmt *stmt, const struct audit_query *query, int64_t time_ns,
                             int64_t id, size_t limit) {
    int count = sqlite3_bind_parameter_count(stmt);
    for (int index = 1; index <= count; index++) {
        if (index == 1 && query->user_id != NULL)
            query_bind_text(stmt, index, query->user_id);
        else if (index == 2)
            sqlite3_bind_int64(stmt, index, query->from_ns);
        else if (index == 3)
            sqlite3_bind_int64(stmt, index, query->to_ns);
        else if (index == 4 && query->task_id != NULL)
            query_bind_text(stmt, index, query->task_id);
        else if (index == 5)
            sqlite3_bind_int64(stmt, index, time_ns);
        else if (index == 6)
            sqlite3_bind_int64(stmt, index, id);
        else if (index == 7)
            sqlite3_bind_int64(stmt, index, (int64_t)limit + 1);
        else if (index >= 10 && (size_t)(index - 10) < query->type_count)
            query_bind_text(stmt, index, query->types[index - 10]);
    }
}

static int query_audit_item(struct buf *out, sqlite3_stmt *stmt, bool first) {
    int rc = buf_printf(out, "%s{\"id\":%lld,\"time\":", first ? "" : ",",
                        (long long)sqlite3_column_int64(stmt, 0));
    if (rc == 0)
        rc = query_append_time(out, sqlite3_column_int64(stmt, 1));
    static const char *const names[] = {
        ",\"user_id\":", ",\"actor\":", ",\"type\":", ",\"task_id\":"};
    for (int column = 2; rc == 0 && column <= 5; column++) {
        rc = buf_append_str(out, names[column - 2]);
        if (rc == 0)
            rc = query_append_column_string(out, stmt, column);
    }
    if (rc == 0)
        rc = buf_append_str(out, ",\"payload\":");
    if (rc == 0)
        rc = buf_append(out, sqlite3_column_text(stmt, 6), (size_t)sqlite3_column_bytes(stmt, 6));
    return rc == 0 ? buf_append(out, "}", 1) : rc;
}

static int query_audit_next_cursor(struct buf *out, const struct audit_query *query,
                                   int64_t time_ns, int64_t id) {
    struct buf json;
    buf_init(&json, LIMIT_LIST_CURSOR_BYTES);
    int rc = buf_append_str(&json, "{\"a\":");
    if (rc == 0)
        rc = query_append_string(&json, query_audit_scope(query), strlen(query_audit_scope(query)));
    if (rc == 0)
        rc = buf_printf(&json, ",\"t\":%lld,\"i\":%lld}", (long long)time_ns, (long long)id);
    if (rc == 0)
        rc = query_cursor_append(out, &json);
    buf_free(&json);
    return rc;
}

int query_audit(struct db *db, const struct audit_query *query, struct buf *out,
                struct task_errors *errors) {
    CHECK(db != NULL && query != NULL && out != NULL);
    CHECK(query->type_count <= LIMIT_LIST_FILTER_VALUES);
    int64_t cursor_time = 0, cursor_id = 0;
    int rc = 0;
    if (query->cursor != NULL)
        rc = query_audit_cursor_decode(query, &cursor_time, &cursor_id, errors);
    struct buf sql;
    buf_init(&sql, 4096);
    if (rc == 0)
        rc = query_audit_sql(&sql, query, query->cursor != NULL);
    sqlite3_stmt *stmt = NULL;
    if (rc == 0)
        rc = db_statement_text(db, sql.data, sql.length, &stmt);
    size_t limit = query_limit(query->limit);
    if (rc == 0) {
        query_audit_bind(stmt, query, cursor_time, cursor_id, limit);
        rc = buf_append_str(out, "{\"items\":[");
    }
    int step = SQLITE_DONE;
    size_t rows = 0;
    int64_t last_time = 0, last_id = 0;
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW && rows < limit) {
        rc = query_audit_item(out, stmt, rows == 0);
        last_id = sqlite3_column_int64(stmt, 0);
        last_time = sqlite3_column_int64(stmt, 1);
        rows++;
    }
    if (stmt != NULL)
        sqlite3_reset(stmt);
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = query_fail(db, step, "audit");
    if (rc == 0)
        rc = buf_append_str(out, "],\"next_cursor\":");
    if (rc == 0)
        rc = step == SQLITE_ROW ? query_audit_next_cursor(out, query, last_time, last_id)
                                : buf_append_str(out, "null");
    if (rc == 0)
        rc = buf_append(out, "}", 1);
    buf_free(&sql);
    return rc;
}

/* Deletes up to `max_rows` rows chosen by `sql` (?1 = time, ?2 = count). */
static int64_t query_sweep_table(struct db *db, const char *sql, int64_t before_ns,
                                 int64_t max_rows) {
    if (max_rows <= 0)
        return 0;
    sqlite3_stmt *stmt = db_statement(db, sql);
    if (stmt == NULL)
        return ERR_IO;
    sqlite3_bind_int64(stmt, 1, before_ns);
    sqlite3_bind_int64(stmt, 2, max_rows);
    int step = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (step != SQLITE_DONE)
        return query_fail(db, step, "sweep");
    return sqlite3_changes64(db_handle(db));
}

int64_t query_sweep(struct db *db, int64_t before_ns, int64_t idempotency_before_ns,
                    int64_t max_rows) {
    CHECK(db != NULL && max_rows >= 0);
    int64_t audit = query_sweep_table(db,
                                      "DELETE FROM audit WHERE id IN (SELECT id FROM audit"
                                      " WHERE time_ns < ?1 ORDER BY time_ns LIMIT ?2)",
                                      before_ns, max_rows);
    if (audit < 0)
        return audit;
    int64_t keys = query_sweep_table(db,
                                     "DELETE FROM idempotency WHERE rowid IN (SELECT rowid"
                                     " FROM idempotency WHERE created_ns < ?1"
                                     " ORDER BY created_ns LIMIT ?2)",
                                     idempotency_before_ns, max_rows - audit);
    if (keys < 0)
        return keys;
    /* Timer rows that fired, were missed, cancelled or done, and whose
     * instant is as old as the oldest idempotency key: no event can bring
     * them back (the projection only schedules instants after an event's
     * own time), so they are history the events already hold. */
    int64_t timers = query_sweep_table(db,
                                       "DELETE FROM reminders WHERE (task_id, kind, at_ms) IN"
                                       " (SELECT task_id, kind, at_ms FROM reminders"
                                       " WHERE state <> 0 AND at_ms < ?1 / 1000000"
                                       " ORDER BY at_ms LIMIT ?2)",
                                       idempotency_before_ns, max_rows - audit - keys);
    return timers < 0 ? timers : audit + keys + timers;
}

/* ---- Idempotency ------------------------------------------------------- */

int query_idempotency(struct db *db, const char *user_id, const char *key,
                      struct idempotency_record *out) {
    CHECK(db != NULL && user_id != NULL && key != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    sqlite3_stmt *stmt = db_statement(db, "SELECT request_hash, status, body FROM idempotency"
                                          " WHERE user_id = ?1 AND key = ?2");
    if (stmt == NULL)
        return ERR_IO;
    query_bind_text(stmt, 1, user_id);
    query_bind_text(stmt, 2, key);
    int step = sqlite3_step(stmt);
    if (step != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return step == SQLITE_DONE ? ERR_NOTFOUND : query_fail(db, step, "idempotency");
    }
    int rc = query_copy_column(stmt, 0, out->request_hash, sizeof out->request_hash);
    out->status = sqlite3_column_int(stmt, 1);
    out->body_length = (size_t)sqlite3_column_bytes(stmt, 2);
    const char *body = (const char *)sqlite3_column_text(stmt, 2);
    if (rc == 0) {
        out->body = mem_strndup(body != NULL ? body : "", out->body_length);
        rc = out->body != NULL ? 0 : ERR_NOMEM;
    }
    sqlite3_reset(stmt);
    return rc;
}

void idempotency_record_free(struct idempotency_record *record) {
    if (record == NULL)
        return;
    mem_free(record->body);
    record->body = NULL;
    record->body_length = 0;
}
