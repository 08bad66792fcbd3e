/*
 * query_test.c - reads of the projections: every task-list filter and sort,
 * cursor pagination that visits each row exactly once in order (both
 * directions, with ties, under every plan), bad cursors, full-text input
 * with FTS5 syntax in it, per-user isolation of every query, events, audit
 * with its filters and sweep, users.
 */
#include "../../../src/base/err.h"
#include "../../../src/base/mem.h"
#include "../../../src/tasks/query.h"
#include "../store/store_support.h"
#include "../test.h"

#include <yyjson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_TEST_TASKS 64
#define QUERY_TEST_DAY_NS (86400LL * 1000000000LL)

/* What the test knows about each task it created, to compute the expected
 * answer of a list query independently of SQL. */
struct query_test_task {
    char id[UUID_STRING_BYTES]; /* task id */
    char title[64];             /* title */
    char description[64];       /* description */
    bool completed;             /* completed flag */
    int priority;               /* enum task_priority */
    bool has_due;               /* due set */
    int64_t due_ns;             /* due */
    int64_t created_ns;         /* created_at */
    int64_t updated_ns;         /* updated_at */
    bool tag_even, tag_three;   /* tags "even" and "three" (all have "all") */
};

struct query_test_world {
    struct store_fixture fixture;                   /* log + db */
    char alice[UUID_STRING_BYTES];                  /* user with the tasks */
    char bob[UUID_STRING_BYTES];                    /* user with a few look-alikes */
    struct query_test_task tasks[QUERY_TEST_TASKS]; /* alice's */
    int64_t base_ns;                                /* time origin of the data */
};

static const char *const query_test_titles[] = {"alpha", "Alpha", "beta", "Gamma",
                                                "gamma", "delta", "Épée"};

static void query_test_describe(struct query_test_world *world, int index,
                                struct query_test_task *known) {
    store_id(known->id, 'b', index + 1);
    snprintf(known->title, sizeof known->title, "%s", query_test_titles[index % 7]);
    snprintf(known->description, sizeof known->description, "%s%s",
             index % 2 == 0 ? "common words here" : "other text",
             index % 10 == 3 ? " zebra crossing" : "");
    known->completed = index % 4 == 3;
    known->priority = index % 4 == 3 ? 2 : index % 3;
    known->has_due = index % 5 != 0;
    known->due_ns = world->base_ns + (index % 7) * QUERY_TEST_DAY_NS; /* ties */
    known->created_ns = world->base_ns + (index / 3) * 1000000000LL;  /* ties */
    known->updated_ns = known->created_ns + (index % 2) * 1000000000LL;
    known->tag_even = index % 2 == 0;
    known->tag_three = index % 3 == 0;
}

static int query_test_create(struct query_test_world *world, const char *owner,
                             const struct query_test_task *known) {
    struct task task;
    store_task_init(&task, known->id, known->title, known->created_ns);
    mem_free(task.description);
    task.description = mem_strdup(known->description);
    task.completed = known->completed;
    task.has_completed_at = known->completed;
    task.completed_at_ns = known->updated_ns;
    task.priority = (enum task_priority)known->priority;
    task.has_due = known->has_due;
    task.due_ns = known->has_due ? known->due_ns : 0;
    task.updated_at_ns = known->updated_ns;
    task.tags = mem_calloc(3, sizeof *task.tags);
    task.tags[task.tag_count++] = mem_strdup("all");
    if (known->tag_even)
        task.tags[task.tag_count++] = mem_strdup("even");
    if (known->tag_three)
        task.tags[task.tag_count++] = mem_strdup("three");
    int64_t offset = store_task_created(&world->fixture, owner, &task);
    task_free(&task);
    return offset < 0 ? (int)offset : 0;
}

static int query_test_world_open(struct query_test_world *world, const char *tag) {
    memset(world, 0, sizeof *world);
    int rc = store_fixture_open(&world->fixture, tag);
    if (rc != 0)
        return rc;
    world->base_ns = 1767225600000000000LL;
    store_id(world->alice, 'a', 1);
    store_id(world->bob, 'a', 2);
    if (store_user_created(&world->fixture, world->alice, "alice") < 0 ||
        store_user_created(&world->fixture, world->bob, "bob") < 0)
        return ERR_IO;
    for (int index = 0; index < QUERY_TEST_TASKS; index++) {
        query_test_describe(world, index, &world->tasks[index]);
        rc = query_test_create(world, world->alice, &world->tasks[index]);
        if (rc != 0)
            return rc;
    }
    /* Bob's tasks look like Alice's (same tags and words) but have their own ids. */
    for (int index = 0; index < 6; index++) {
        struct query_test_task known;
        query_test_describe(world, index, &known);
        store_id(known.id, 'f', index + 1);
        rc = query_test_create(world, world->bob, &known);
        if (rc != 0)
            return rc;
    }
    return store_project(&world->fixture) < 0 ? ERR_IO : 0;
}

/* ---- Expected answers ---------------------------------------------------- */

static bool query_test_has_word(const struct query_test_task *task, const char *word, bool prefix) {
    const char *texts[] = {task->title, task->description};
    for (int index = 0; index < 2; index++) {
        const char *text = texts[index];
        size_t length = strlen(word);
        for (const char *at = text; (at = strstr(at, word)) != NULL; at++) {
            bool starts = at == text || at[-1] == ' ';
            bool ends = at[length] == '\0' || at[length] == ' ';
            if (starts && (prefix || ends))
                return true;
        }
    }
    return false;
}

static bool query_test_matches(const struct query_test_task *task,
                               const struct task_list_query *query, const char *word) {
    if (query->status == TASK_STATUS_OPEN && task->completed)
        return false;
    if (query->status == TASK_STATUS_COMPLETED && !task->completed)
        return false;
    for (size_t index = 0; index < query->tag_count; index++) {
        if (strcmp(query->tags[index], "even") == 0 && !task->tag_even)
            return false;
        if (strcmp(query->tags[index], "three") == 0 && !task->tag_three)
            return false;
        if (strcmp(query->tags[index], "none") == 0)
            return false;
    }
    if (query->priorities != 0 && (query->priorities & (1u << task->priority)) == 0)
        return false;
    if (query->has_due_before && !(task->has_due && task->due_ns < query->due_before_ns))
        return false;
    if (query->has_due_after && !(task->has_due && task->due_ns >= query->due_after_ns))
        return false;
    if (query->overdue && !(task->has_due && task->due_ns < query->now_ns && !task->completed))
        return false;
    return word == NULL || query_test_has_word(task, word, true);
}

static int query_test_nocase(const char *a, const char *b) {
    for (;; a++, b++) {
        int x = (unsigned char)*a, y = (unsigned char)*b;
        x = x >= 'A' && x <= 'Z' ? x + 32 : x;
        y = y >= 'A' && y <= 'Z' ? y + 32 : y;
        if (x != y || x == 0)
            return x - y;
    }
}

static const struct task_list_query *query_test_sort_query;

static int query_test_compare(const void *left, const void *right) {
    const struct query_test_task *a = *(const struct query_test_task *const *)left;
    const struct query_test_task *b = *(const struct query_test_task *const *)right;
    int order = 0;
    int64_t ka = 0, kb = 0;
    switch (query_test_sort_query->sort) {
    case TASK_SORT_DUE:
        ka = a->has_due ? a->due_ns : INT64_MAX;
        kb = b->has_due ? b->due_ns : INT64_MAX;
        break;
    case TASK_SORT_PRIORITY:
        ka = a->priority, kb = b->priority;
        break;
    case TASK_SORT_CREATED:
        ka = a->created_ns, kb = b->created_ns;
        break;
    case TASK_SORT_UPDATED:
        ka = a->updated_ns, kb = b->updated_ns;
        break;
    case TASK_SORT_TITLE:
        order = query_test_nocase(a->title, b->title);
        break;
    }
    if (order == 0)
        order = ka < kb ? -1 : ka > kb ? 1 : 0;
    if (order == 0)
        order = strcmp(a->id, b->id);
    return query_test_sort_query->descending ? -order : order;
}

/* The ids `query` must return, in order. */
static size_t query_test_expected(const struct query_test_world *world,
                                  const struct task_list_query *query, const char *word,
                                  const struct query_test_task **out) {
    size_t count = 0;
    for (int index = 0; index < QUERY_TEST_TASKS; index++) {
        if (query_test_matches(&world->tasks[index], query, word))
            out[count++] = &world->tasks[index];
    }
    query_test_sort_query = query;
    qsort(out, count, sizeof *out, query_test_compare);
    return count;
}

/* ---- Running pages ------------------------------------------------------- */

/* Pages through `query` (limit 7) and checks the concatenated ids against
 * the expected list. Returns 0, or -1 after printing what differed. */
static int query_test_paginate(struct query_test_world *world, struct task_list_query query,
                               const char *word, const char *label) {
    const struct query_test_task *expected[QUERY_TEST_TASKS];
    size_t expected_count = query_test_expected(world, &query, word, expected);
    size_t seen = 0;
    char cursor[LIMIT_LIST_CURSOR_BYTES + 1] = "";
    query.limit = 7;
    for (int page = 0; page < 100; page++) {
        query.cursor = page == 0 ? NULL : cursor;
        struct buf out;
        buf_init(&out, 1 << 20);
        struct task_errors errors = {0};
        int rc = query_task_list(world->fixture.db, &query, &out, &errors);
        yyjson_doc *doc = rc == 0 ? yyjson_read(out.data, out.length, 0) : NULL;
        yyjson_val *items = yyjson_obj_get(yyjson_doc_get_root(doc), "items");
        yyjson_val *next = yyjson_obj_get(yyjson_doc_get_root(doc), "next_cursor");
        size_t index, count;
        yyjson_val *item;
        bool ok = doc != NULL && yyjson_is_arr(items) && yyjson_arr_size(items) <= 7;
        yyjson_arr_foreach(items, index, count, item) {
            const char *id = yyjson_get_str(yyjson_obj_get(item, "id"));
            ok = ok && seen < expected_count && id != NULL && strcmp(id, expected[seen]->id) == 0;
            seen++;
        }
        bool more = yyjson_is_str(next);
        if (more)
            snprintf(cursor, sizeof cursor, "%s", yyjson_get_str(next));
        yyjson_doc_free(doc);
        buf_free(&out);
        if (!ok) {
            fprintf(stderr, "    %s: page %d differs (rc %d, row %zu of %zu)\n", label, page, rc,
                    seen, expected_count);
            return -1;
        }
        if (!more)
            break;
    }
    if (seen != expected_count) {
        fprintf(stderr, "    %s: saw %zu rows, expected %zu\n", label, seen, expected_count);
        return -1;
    }
    return 0;
}

TEST(query_list_pages_every_row_once_in_order) {
    struct query_test_world world;
    EXPECT(query_test_world_open(&world, "query-pages") == 0);
    static const char *const plans[] = {"auto", "indexed", "exhausted", "driven"};
    int failures = 0;
    for (int plan = QUERY_PLAN_AUTO; plan <= QUERY_PLAN_DRIVEN; plan++) {
        query_testing_force_plan((enum query_plan_override)plan);
        for (int sort = TASK_SORT_DUE; sort <= TASK_SORT_TITLE; sort++) {
            for (int status = 0; status < 3; status++) {
                for (int descending = 0; descending < 2; descending++) {
                    struct task_list_query query = {.owner_id = world.alice,
                                                    .sort = (enum task_sort)sort,
                                                    .status = (enum task_status)status,
                                                    .descending = descending};
                    char label[96];
                    snprintf(label, sizeof label, "plan %s sort %d status %d desc %d", plans[plan],
                             sort, status, descending);
                    failures += query_test_paginate(&world, query, NULL, label) != 0;
                }
            }
        }
    }
    query_testing_force_plan(QUERY_PLAN_AUTO);
    EXPECT_EQ_INT(failures, 0);
    store_fixture_close(&world.fixture);
}

/* One filter set for query_list_filters_under_every_plan. */
struct query_test_filter {
    const char *name;                    /* for messages */
    const char *tags[2];                 /* up to two tags */
    unsigned priorities;                 /* bits */
    int due_before_days, due_after_days; /* -1 = unset */
    bool overdue;                        /* overdue=true */
    const char *text;                    /* q */
    const char *word;                    /* the word q means, for the expectation */
};

static const struct query_test_filter query_test_filters[] = {
    {"tag", {"even", NULL}, 0, -1, -1, false, NULL, NULL},
    {"two tags", {"even", "three"}, 0, -1, -1, false, NULL, NULL},
    {"missing tag", {"none", NULL}, 0, -1, -1, false, NULL, NULL},
    {"priorities", {NULL, NULL}, (1u << 1) | (1u << 2), -1, -1, false, NULL, NULL},
    {"due before", {NULL, NULL}, 0, 3, -1, false, NULL, NULL},
    {"due range", {"three", NULL}, 0, 6, 2, false, NULL, NULL},
    {"overdue", {NULL, NULL}, 0, -1, -1, true, NULL, NULL},
    {"word", {NULL, NULL}, 0, -1, -1, false, "COMMON", "common"},
    {"prefix", {NULL, NULL}, 0, -1, -1, false, "zeb", "zeb"},
    {"word and tag", {"three", NULL}, 1u << 0, -1, -1, false, "Common", "common"},
    {"diacritics", {NULL, NULL}, 0, -1, -1, false, "epee", "Épée"},
};

TEST(query_list_filters_under_every_plan) {
    struct query_test_world world;
    EXPECT(query_test_world_open(&world, "query-filters") == 0);
    int failures = 0;
    for (int plan = QUERY_PLAN_AUTO; plan <= QUERY_PLAN_DRIVEN; plan++) {
        query_testing_force_plan((enum query_plan_override)plan);
        for (size_t index = 0; index < sizeof query_test_filters / sizeof query_test_filters[0];
             index++) {
            const struct query_test_filter *filter = &query_test_filters[index];
            for (int sort = TASK_SORT_DUE; sort <= TASK_SORT_TITLE; sort += 2) {
                for (int status = 0; status < 3; status++) {
                    struct task_list_query query = {.owner_id = world.alice,
                                                    .sort = (enum task_sort)sort,
                                                    .status = (enum task_status)status,
                                                    .descending = sort == TASK_SORT_CREATED,
                                                    .priorities = filter->priorities,
                                                    .overdue = filter->overdue,
                                                    .now_ns = world.base_ns + 4 * QUERY_TEST_DAY_NS,
                                                    .text = filter->text};
                    for (int tag = 0; tag < 2 && filter->tags[tag] != NULL; tag++)
                        query.tags[query.tag_count++] = filter->tags[tag];
                    query.has_due_before = filter->due_before_days >= 0;
                    query.due_before_ns =
                        world.base_ns + filter->due_before_days * QUERY_TEST_DAY_NS;
                    query.has_due_after = filter->due_after_days >= 0;
                    query.due_after_ns = world.base_ns + filter->due_after_days * QUERY_TEST_DAY_NS;
                    char label[128];
                    snprintf(label, sizeof label, "plan %d filter %s sort %d status %d", plan,
                             filter->name, sort, status);
                    failures += query_test_paginate(&world, query, filter->word, label) != 0;
                }
            }
        }
    }
    query_testing_force_plan(QUERY_PLAN_AUTO);
    EXPECT_EQ_INT(failures, 0);
    store_fixture_close(&world.fixture);
}

/* Runs one list query and returns its rc; the body is left in *out. */
static int query_test_list(struct query_test_world *world, struct task_list_query *query,
                           struct buf *out, struct task_errors *errors) {
    buf_init(out, 1 << 20);
    memset(errors, 0, sizeof *errors);
    return query_task_list(world->fixture.db, query, out, errors);
}

TEST(query_list_rejects_bad_cursors) {
    struct query_test_world world;
    EXPECT(query_test_world_open(&world, "query-cursor") == 0);
    struct task_list_query query = {.owner_id = world.alice, .limit = 5};
    struct buf out;
    struct task_errors errors;
    EXPECT(query_test_list(&world, &query, &out, &errors) == 0);
    yyjson_doc *doc = yyjson_read(out.data, out.length, 0);
    char good[LIMIT_LIST_CURSOR_BYTES + 1];
    snprintf(good, sizeof good, "%s",
             yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(doc), "next_cursor")));
    yyjson_doc_free(doc);
    buf_free(&out);
    /* Garbage, base64url of non-objects, lengths no encoding makes. */
    static const char *const bad[] = {"",       "!!!",        "abc", "W10",
                                      "bnVsbA", "eyJ1IjoxfQ", "e30", "eyJ1Ijoi"};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        query.cursor = bad[index];
        EXPECT_EQ_INT(query_test_list(&world, &query, &out, &errors), ERR_INVAL);
        EXPECT(errors.count == 1 && strcmp(errors.items[0].field, "cursor") == 0);
        buf_free(&out);
    }
    /* A real cursor, but for another sort, direction or user. */
    query.cursor = good;
    query.sort = TASK_SORT_TITLE;
    EXPECT_EQ_INT(query_test_list(&world, &query, &out, &errors), ERR_INVAL);
    EXPECT_STR(errors.items[0].field, "cursor");
    buf_free(&out);
    query.sort = TASK_SORT_DUE;
    query.descending = true;
    EXPECT_EQ_INT(query_test_list(&world, &query, &out, &errors), ERR_INVAL);
    buf_free(&out);
    query.descending = false;
    query.owner_id = world.bob;
    EXPECT_EQ_INT(query_test_list(&world, &query, &out, &errors), ERR_INVAL);
    EXPECT_STR(errors.items[0].field, "cursor");
    buf_free(&out);
    query.owner_id = world.alice;
    EXPECT_EQ_INT(query_test_list(&world, &query, &out, &errors), 0);
    buf_free(&out);
    store_fixture_close(&world.fixture);
}

TEST(query_list_text_with_fts_syntax_is_plain_text) {
    struct query_test_world world;
    EXPECT(query_test_world_open(&world, "query-fts") == 0);
    /* A task whose text holds what FTS5 would read as operators. */
    char id[37];
    store_id(id, 'd', 1);
    struct task task;
    store_task_init(&task, id, "Salt AND pepper OR NOT \"quoted\" - col:x NEAR(a b) ^start",
                    world.base_ns);
    EXPECT(store_task_created(&world.fixture, world.alice, &task) >= 0);
    task_free(&task);
    EXPECT(store_project(&world.fixture) == 1);
    static const char *const inputs[] = {
        "\"",     "AND",        "*",           "-", "\"foo", "foo\"bar", "NEAR(a b)", "col:x",
        "^start", "a OR b",     "(",           ")", "+",     "{x y}",    "x*y",       "NOT",
        "\"\"",   "pepper AND", "' OR 1=1 --", "%", "\\",    "salt*",    "*salt",     ":"};
    for (int plan = QUERY_PLAN_AUTO; plan <= QUERY_PLAN_DRIVEN; plan++) {
        query_testing_force_plan((enum query_plan_override)plan);
        for (size_t index = 0; index < sizeof inputs / sizeof inputs[0]; index++) {
            struct task_list_query query = {.owner_id = world.alice, .text = inputs[index]};
            struct buf out;
            struct task_errors errors;
            int rc = query_test_list(&world, &query, &out, &errors);
            if (rc != 0)
                fprintf(stderr, "    input %s: rc %d\n", inputs[index], rc);
            EXPECT_EQ_INT(rc, 0);
            buf_free(&out);
        }
        /* Operator words are ordinary tokens; the last one is a prefix. */
        static const char *const finds[] = {"and",   "AND",    "salt pep", "NEAR",
                                            "col x", "quoted", "OR NOT",   "\"pepper\""};
        for (size_t index = 0; index < sizeof finds / sizeof finds[0]; index++) {
            struct task_list_query query = {.owner_id = world.alice, .text = finds[index]};
            struct buf out;
            struct task_errors errors;
            EXPECT_EQ_INT(query_test_list(&world, &query, &out, &errors), 0);
            EXPECT(strstr(out.data, id) != NULL);
            buf_free(&out);
        }
        /* A finished word (trailing space) is not a prefix any more. */
        struct task_list_query query = {.owner_id = world.alice, .text = "pep "};
        struct buf out;
        struct task_errors errors;
        EXPECT_EQ_INT(query_test_list(&world, &query, &out, &errors), 0);
        EXPECT(strstr(out.data, id) == NULL);
        buf_free(&out);
        /* Input without a single token matches nothing, as in FTS5. */
        query.text = "*-\"";
        EXPECT_EQ_INT(query_test_list(&world, &query, &out, &errors), 0);
        EXPECT_STR(out.data, "{\"items\":[],\"next_cursor\":null}");
        buf_free(&out);
    }
    query_testing_force_plan(QUERY_PLAN_AUTO);
    char long_text[LIMIT_TASK_QUERY_BYTES + 2];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    struct task_list_query query = {.owner_id = world.alice, .text = long_text};
    struct buf out;
    struct task_errors errors;
    EXPECT_EQ_INT(query_test_list(&world, &query, &out, &errors), ERR_INVAL);
    EXPECT_STR(errors.items[0].field, "q");
    buf_free(&out);
    store_fixture_close(&world.fixture);
}

TEST(query_every_read_is_isolated_per_user) {
    struct query_test_world world;
    EXPECT(query_test_world_open(&world, "query-isolation") == 0);
    struct db *db = world.fixture.db;
    const char *alice_task = world.tasks[0].id;
    struct task task;
    EXPECT(query_task_get(db, world.alice, alice_task, &task) == 0);
    EXPECT_STR(task.owner_id, world.alice);
    EXPECT_STR(task.title, "alpha");
    task_free(&task);
    EXPECT_EQ_INT(query_task_get(db, world.bob, alice_task, &task), ERR_NOTFOUND);
    /* Bob's list, whatever the filters, holds only his six tasks. */
    for (int plan = QUERY_PLAN_AUTO; plan <= QUERY_PLAN_DRIVEN; plan++) {
        query_testing_force_plan((enum query_plan_override)plan);
        struct task_list_query query = {
            .owner_id = world.bob, .status = TASK_STATUS_ALL, .text = "common", .limit = 500};
        query.tags[query.tag_count++] = "all";
        struct buf out;
        struct task_errors errors;
        EXPECT(query_test_list(&world, &query, &out, &errors) == 0);
        EXPECT(strstr(out.data, "\"id\":\"b") == NULL);
        EXPECT(strstr(out.data, "\"id\":\"f") != NULL);
        buf_free(&out);
    }
    query_testing_force_plan(QUERY_PLAN_AUTO);
    struct buf out;
    buf_init(&out, 1 << 20);
    EXPECT(query_events_since(db, world.bob, 0, 500, &out) == 0);
    EXPECT(strstr(out.data, world.alice) == NULL && strstr(out.data, world.bob) != NULL);
    buf_free(&out);
    struct task_errors errors = {0};
    EXPECT_EQ_INT(query_task_events(db, world.bob, alice_task, 50, NULL, &out, &errors),
                  ERR_NOTFOUND);
    buf_free(&out);
    struct audit_query audit = {.user_id = world.bob, .limit = 500};
    EXPECT(query_audit(db, &audit, &out, &errors) == 0);
    EXPECT(strstr(out.data, world.alice) == NULL && strstr(out.data, world.bob) != NULL);
    buf_free(&out);
    struct idempotency_record record;
    EXPECT_EQ_INT(query_idempotency(db, world.bob, "anything", &record), ERR_NOTFOUND);
    store_fixture_close(&world.fixture);
}

/* Collects the "sequence" of each item of an events page. */
static size_t query_test_sequences(const char *json, int64_t *out, size_t capacity, char *next,
                                   size_t next_size) {
    yyjson_doc *doc = yyjson_read(json, strlen(json), 0);
    yyjson_val *root = yyjson_doc_get_root(doc);
    size_t index, count, used = 0;
    yyjson_val *item;
    yyjson_arr_foreach(yyjson_obj_get(root, "items"), index, count, item) {
        if (used < capacity)
            out[used++] = yyjson_get_sint(yyjson_obj_get(item, "sequence"));
    }
    const char *cursor = yyjson_get_str(yyjson_obj_get(root, "next_cursor"));
    snprintf(next, next_size, "%s", cursor != NULL ? cursor : "");
    yyjson_doc_free(doc);
    return used;
}

TEST(query_events_page_by_sequence) {
    struct query_test_world world;
    EXPECT(query_test_world_open(&world, "query-events") == 0);
    struct db *db = world.fixture.db;
    struct buf out;
    buf_init(&out, 1 << 20);
    int64_t sequences[64];
    char next[32];
    /* Alice has 65 events: user.created then 64 task.created. */
    EXPECT(query_events_since(db, world.alice, 60, 3, &out) == 0);
    EXPECT_EQ_INT(query_test_sequences(out.data, sequences, 64, next, sizeof next), 3);
    EXPECT(sequences[0] == 61 && sequences[2] == 63);
    EXPECT_STR(next, "63");
    buf_reset(&out);
    EXPECT(query_events_since(db, world.alice, 63, 3, &out) == 0);
    EXPECT_EQ_INT(query_test_sequences(out.data, sequences, 64, next, sizeof next), 2);
    EXPECT_STR(next, "");
    buf_reset(&out);
    /* One task's history, paged, then its cursor validated. */
    const char *task = world.tasks[5].id;
    char changes[256];
    snprintf(changes, sizeof changes,
             "{\"changes\":{\"title\":{\"old\":\"Alpha\",\"new\":\"Renamed\"}},"
             "\"version\":2,\"updated_at\":\"%s\"}",
             store_time(world.base_ns));
    struct store_event update = {
        .type = "task.updated", .user_id = world.alice, .subject = task, .data = changes};
    EXPECT(store_append(&world.fixture, &update) >= 0);
    EXPECT(store_project(&world.fixture) == 1);
    struct task_errors errors = {0};
    EXPECT(query_task_events(db, world.alice, task, 1, NULL, &out, &errors) == 0);
    EXPECT_EQ_INT(query_test_sequences(out.data, sequences, 64, next, sizeof next), 1);
    EXPECT(strstr(out.data, "task.created") != NULL);
    buf_reset(&out);
    EXPECT(query_task_events(db, world.alice, task, 5, next, &out, &errors) == 0);
    EXPECT_EQ_INT(query_test_sequences(out.data, sequences, 64, next, sizeof next), 1);
    EXPECT(strstr(out.data, "task.updated") != NULL && strstr(out.data, "Renamed") != NULL);
    EXPECT_STR(next, "");
    buf_reset(&out);
    EXPECT_EQ_INT(query_task_events(db, world.alice, task, 5, "-1", &out, &errors), ERR_INVAL);
    EXPECT_STR(errors.items[0].field, "cursor");
    EXPECT_EQ_INT(query_task_events(db, world.alice, "b0000000-0000-7000-8000-0000000000ff", 5,
                                    NULL, &out, &errors),
                  ERR_NOTFOUND);
    buf_free(&out);
    store_fixture_close(&world.fixture);
}

/* Counts the items of an audit page and returns its next cursor. */
static size_t query_test_audit_page(struct db *db, struct audit_query *query, char *next,
                                    size_t next_size, int64_t *first_id) {
    struct buf out;
    buf_init(&out, 1 << 20);
    struct task_errors errors = {0};
    size_t used = 0;
    next[0] = '\0';
    if (query_audit(db, query, &out, &errors) == 0) {
        yyjson_doc *doc = yyjson_read(out.data, out.length, 0);
        yyjson_val *root = yyjson_doc_get_root(doc);
        yyjson_val *items = yyjson_obj_get(root, "items");
        used = yyjson_arr_size(items);
        *first_id = yyjson_get_sint(yyjson_obj_get(yyjson_arr_get_first(items), "id"));
        const char *cursor = yyjson_get_str(yyjson_obj_get(root, "next_cursor"));
        snprintf(next, next_size, "%s", cursor != NULL ? cursor : "");
        yyjson_doc_free(doc);
    }
    buf_free(&out);
    return used;
}

TEST(query_audit_filters_pages_and_sweeps) {
    struct query_test_world world;
    EXPECT(query_test_world_open(&world, "query-audit") == 0);
    struct db *db = world.fixture.db;
    char next[LIMIT_LIST_CURSOR_BYTES + 1];
    int64_t first = 0;
    /* 72 events: 2 users, 64 + 6 tasks, 1 ms apart from base_ns. */
    struct audit_query everyone = {.limit = 500};
    EXPECT_EQ_INT(query_test_audit_page(db, &everyone, next, sizeof next, &first), 72);
    struct audit_query alice = {.user_id = world.alice, .limit = 500};
    EXPECT_EQ_INT(query_test_audit_page(db, &alice, next, sizeof next, &first), 65);
    alice.types[alice.type_count++] = "user.created";
    EXPECT_EQ_INT(query_test_audit_page(db, &alice, next, sizeof next, &first), 1);
    alice.types[alice.type_count++] = "task.created";
    EXPECT_EQ_INT(query_test_audit_page(db, &alice, next, sizeof next, &first), 65);
    alice.type_count = 0;
    alice.task_id = world.tasks[3].id;
    EXPECT_EQ_INT(query_test_audit_page(db, &alice, next, sizeof next, &first), 1);
    alice.task_id = NULL;
    alice.has_from = true;
    alice.from_ns = world.base_ns + 10 * 1000000LL; /* events 10.. */
    alice.has_to = true;
    alice.to_ns = world.base_ns + 20 * 1000000LL;
    EXPECT_EQ_INT(query_test_audit_page(db, &alice, next, sizeof next, &first), 10);
    /* Pages of 4 in time order, each starting after the last. */
    alice.limit = 4;
    size_t total = 0;
    int64_t previous = -1;
    char cursor[LIMIT_LIST_CURSOR_BYTES + 1];
    for (int page = 0; page < 10; page++) {
        total += query_test_audit_page(db, &alice, next, sizeof next, &first);
        EXPECT(first > previous);
        previous = first;
        if (next[0] == '\0')
            break;
        memcpy(cursor, next, sizeof cursor);
        alice.cursor = cursor;
    }
    EXPECT_EQ_INT(total, 10);
    /* A cursor is bound to whom it was made for. */
    alice.cursor = NULL;
    EXPECT_EQ_INT(query_test_audit_page(db, &alice, next, sizeof next, &first), 4);
    struct audit_query bob = {.user_id = world.bob, .cursor = next, .limit = 10};
    struct buf out;
    buf_init(&out, 1 << 16);
    struct task_errors errors = {0};
    EXPECT_EQ_INT(query_audit(db, &bob, &out, &errors), ERR_INVAL);
    EXPECT_STR(errors.items[0].field, "cursor");
    buf_free(&out);
    /* The sweep removes old entries, at most max_rows per call. */
    int64_t cut = world.base_ns + 30 * 1000000LL;
    EXPECT_EQ_INT(query_sweep(db, cut, 0, 25), 25);
    EXPECT_EQ_INT(query_sweep(db, cut, 0, 25), 5);
    EXPECT_EQ_INT(query_sweep(db, cut, 0, 25), 0);
    EXPECT_EQ_INT(query_test_audit_page(db, &everyone, next, sizeof next, &first), 42);
    EXPECT_EQ_INT(first, 30);
    /* Finished timer rows older than the key cut go too; pending ones and
     * recent finished ones stay (instants in ms, the cut in ns). */
    EXPECT(db_exec(db, "INSERT INTO reminders VALUES"
                       "('t1', 0, 1000, 'u', 1, 5), ('t2', 0, 1000, 'u', 3, 5),"
                       "('t3', 0, 1000, 'u', 0, 5), ('t4', 1, 9000, 'u', 1, 5)") == 0);
    EXPECT_EQ_INT(query_sweep(db, 0, 5000 * 1000000LL, 25), 2);
    EXPECT_EQ_INT(query_sweep(db, 0, 5000 * 1000000LL, 25), 0);
    store_fixture_close(&world.fixture);
}

static void query_test_each_sequence(void *arg, const char *id, int64_t last) {
    (void)id;
    int64_t *sum = arg;
    *sum += last;
}

TEST(query_users_by_id_name_count_list) {
    struct query_test_world world;
    EXPECT(query_test_world_open(&world, "query-users") == 0);
    struct db *db = world.fixture.db;
    EXPECT_EQ_INT(query_user_count(db), 2);
    struct user_record user;
    EXPECT(query_user_by_name(db, "alice", &user) == 0);
    EXPECT_STR(user.id, world.alice);
    EXPECT_STR(user.role, "user");
    EXPECT_STR(user.settings, "{\"email\":true}");
    EXPECT_EQ_INT(user.last_sequence, 65);
    EXPECT_EQ_INT(query_user_by_name(db, "ALICE", &user), ERR_NOTFOUND);
    EXPECT_EQ_INT(query_user_by_id(db, "nobody", &user), ERR_NOTFOUND);
    struct buf out;
    buf_init(&out, 1 << 16);
    EXPECT(query_user_list(db, &out) == 0);
    EXPECT(strstr(out.data, "\"username\":\"alice\"") < strstr(out.data, "\"username\":\"bob\""));
    EXPECT(strstr(out.data, "password") == NULL);
    EXPECT(strstr(out.data, "\"created_at\":\"2026-01-01T00:00:00Z\"") != NULL);
    buf_free(&out);
    int64_t sum = 0;
    EXPECT(query_user_sequences(db, query_test_each_sequence, &sum) == 0);
    EXPECT_EQ_INT(sum, 65 + 7);
    store_fixture_close(&world.fixture);
}

TEST(query_list_survives_allocation_failures) {
    struct query_test_world world;
    EXPECT(query_test_world_open(&world, "query-nomem") == 0);
    /* Every plan, with text, tags and a cursor: a failed allocation is
     * ERR_NOMEM (never a crash or a leak), and the query then works. */
    for (int plan = QUERY_PLAN_AUTO; plan <= QUERY_PLAN_DRIVEN; plan++) {
        query_testing_force_plan((enum query_plan_override)plan);
        struct task_list_query query = {
            .owner_id = world.alice, .text = "common wor", .sort = TASK_SORT_TITLE, .limit = 3};
        query.tags[query.tag_count++] = "even";
        struct buf out;
        struct task_errors errors;
        EXPECT(query_test_list(&world, &query, &out, &errors) == 0);
        yyjson_doc *doc = yyjson_read(out.data, out.length, 0);
        char cursor[LIMIT_LIST_CURSOR_BYTES + 1];
        snprintf(cursor, sizeof cursor, "%s",
                 yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(doc), "next_cursor")));
        yyjson_doc_free(doc);
        buf_free(&out);
        query.cursor = cursor;
        int succeeded = 0;
        for (long budget = 0; budget < 1000 && !succeeded; budget++) {
            mem_fail_after(budget);
            int rc = query_test_list(&world, &query, &out, &errors);
            mem_fail_after(-1);
            buf_free(&out);
            if (rc != 0 && rc != ERR_NOMEM)
                fprintf(stderr, "    plan %d budget %ld: rc %d\n", plan, budget, rc);
            EXPECT(rc == 0 || rc == ERR_NOMEM);
            succeeded = rc == 0;
        }
        EXPECT(succeeded);
    }
    query_testing_force_plan(QUERY_PLAN_AUTO);
    store_fixture_close(&world.fixture);
}
