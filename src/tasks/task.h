/*
 * task.h - the task model: the one in-memory shape of a task, its JSON
 * forms, validation of API request bodies, partial updates, the diff that
 * task.updated events carry, and the fold that applies an event to a task.
 *
 * Everything here is pure (no I/O, no clock, no SQLite): the command layer
 * (service.c) validates and builds events with it, the projection
 * (projection.c) folds events with it, and the events API proves that
 * folding a task's history reproduces the task. Times are Unix nanoseconds
 * in int64; a `has_` flag says whether an optional time is set.
 *
 * JSON representation (API.md "Task fields"), written by task_to_json and
 * read back by task_from_json (round trip is exact):
 *   {"id","title","description","completed","completed_at","priority",
 *    "tags","due","timezone","recurrence","reminders","parent_id",
 *    "created_at","updated_at","version"}
 * Times are RFC 3339 UTC (timefmt_time_format), null when unset;
 * `recurrence` is {"rule","from","series_start","index"} or null, the last
 * two read-only (where the series began - DTSTART, the first occurrence's
 * due - and this occurrence's index in it; COUNT counts from there);
 * reminders are {"before":"PT15M"} or {"at": time}. The owner is not part of the API object (the caller is
 * always the owner); snapshots in events carry it as the event's userid.
 *
 * Event data written by the command layer and read by task_fold:
 *   task.created      the full task object (as task_to_json)
 *   task.updated      {"changes":{"<field>":{"old":v,"new":v},...},
 *                      "version":n,"updated_at":t}
 *   task.due_changed  {"old":t|null,"new":t|null,"version":n,"updated_at":t}
 *                     (emitted after task.updated when due changed; its fold
 *                      only sets due, so folding both is harmless)
 *   task.completed    {"completed_at":t,"version":n,"updated_at":t}
 *   task.uncompleted  {"previous_completed_at":t,"version":n,"updated_at":t}
 *   task.deleted      the full task object as it was, plus "deleted_at":t
 *   recurrence.spawned the full object of the NEW occurrence (subject = its
 *                     id, parent_id = the task it was spawned from); folds
 *                     like task.created
 */
#ifndef DOCKET_TASKS_TASK_H
#define DOCKET_TASKS_TASK_H

#include "../base/limits.h"
#include "../base/uuid.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct yyjson_val;
struct yyjson_mut_doc;
struct yyjson_mut_val;

enum task_priority {
    TASK_PRIORITY_LOW = 0,
    TASK_PRIORITY_MEDIUM = 1, /* the default */
    TASK_PRIORITY_HIGH = 2,
    TASK_PRIORITY_URGENT = 3,
};

/* recurrence.from (API.md) */
enum task_recurrence_from {
    TASK_RECURRENCE_FROM_DUE = 0,
    TASK_RECURRENCE_FROM_COMPLETION = 1,
    TASK_RECURRENCE_FROM_SCHEDULE = 2,
};

enum task_reminder_kind {
    TASK_REMINDER_BEFORE = 0, /* relative: before_s seconds before due */
    TASK_REMINDER_AT = 1,     /* absolute: at_ns */
};

struct task_reminder {
    enum task_reminder_kind kind; /* which of the two is meaningful */
    int64_t before_s;             /* TASK_REMINDER_BEFORE: seconds before due, >= 0 */
    int64_t at_ns;                /* TASK_REMINDER_AT: Unix ns */
};

/* A task. Strings are owned (mem_alloc'd, NUL-terminated) and released by
 * task_free(); a zeroed struct is a valid empty task to free. */
struct task {
    char id[UUID_STRING_BYTES];        /* UUID v7, canonical lowercase */
    char owner_id[UUID_STRING_BYTES];  /* the user it belongs to */
    char *title;                       /* 1..LIMIT_TASK_TITLE_CHARACTERS characters */
    char *description;                 /* "" when none; never NULL after parse */
    bool completed;                    /* completed flag */
    bool has_completed_at;             /* completed_at is set (iff completed) */
    int64_t completed_at_ns;           /* when it was completed */
    enum task_priority priority;       /* default medium */
    char **tags;                       /* tag_count owned strings, deduplicated, in given order */
    size_t tag_count;                  /* 0..LIMIT_TASK_TAGS */
    bool has_due;                      /* due is set */
    int64_t due_ns;                    /* due date-time */
    char timezone[LIMIT_TIMEZONE_NAME_BYTES + 1]; /* IANA name; the owner's when not given */
    bool has_recurrence;               /* recurrence is set */
    char rule[LIMIT_TASK_RRULE_BYTES + 1]; /* RRULE text, normalised (uppercase keys) */
    enum task_recurrence_from recurrence_from; /* recurrence.from */
    bool has_series_start;             /* recurrence.series_start is set (a due date existed) */
    int64_t series_start_ns;           /* DTSTART of the series: the first occurrence's due */
    int64_t occurrence_index;          /* recurrence.index: this occurrence's place, 0 first */
    struct task_reminder *reminders;   /* reminder_count owned entries */
    size_t reminder_count;             /* 0..LIMIT_TASK_REMINDERS */
    char parent_id[UUID_STRING_BYTES]; /* spawned from this task; "" when none */
    int64_t created_at_ns;             /* creation time */
    int64_t updated_at_ns;             /* last change */
    int64_t version;                   /* 1 at creation, +1 per change */
};

/* Which fields a PATCH body names (bit per field). */
enum task_field {
    TASK_FIELD_TITLE = 1 << 0,
    TASK_FIELD_DESCRIPTION = 1 << 1,
    TASK_FIELD_PRIORITY = 1 << 2,
    TASK_FIELD_TAGS = 1 << 3,
    TASK_FIELD_DUE = 1 << 4,
    TASK_FIELD_TIMEZONE = 1 << 5,
    TASK_FIELD_RECURRENCE = 1 << 6,
    TASK_FIELD_REMINDERS = 1 << 7,
    TASK_FIELD_COMPLETED = 1 << 8, /* PATCH {"completed":true} behaves as complete */
};

/* A parsed PATCH: `fields` says which members were present; `values` holds
 * them (a present null clears: has_due = false, has_recurrence = false,
 * description "", tags none, reminders none; null title/priority/timezone
 * are 422). */
struct task_patch {
    unsigned fields;    /* enum task_field bits */
    struct task values; /* the named fields' new values (others unset) */
};

/* Nesting of arrays and objects accepted in a request body. A task body
 * needs 3 (body -> reminders -> reminder); the margin lets a client send a
 * slightly richer document and still get field errors, while a hostile
 * "[[[[..." is refused before any walk over it (a bound of our own, kept
 * here rather than in limits.h because only this parser applies it). */
#define TASK_JSON_DEPTH_MAX 8

/* Validation errors of one request body, each naming its field by dotted
 * path ("title", "tags.3", "reminders.0.before", "recurrence.rule"). */
#define TASK_ERRORS_MAX 16
struct task_error {
    char field[64];    /* dotted path */
    char message[160]; /* what is wrong, worded to follow the field name */
};
struct task_errors {
    struct task_error items[TASK_ERRORS_MAX]; /* the first TASK_ERRORS_MAX errors */
    size_t count;                             /* items used */
};

/* Defaults the caller supplies for a new task. */
struct task_defaults {
    const char *timezone; /* the owner's timezone (IANA) */
};

void task_free(struct task *task);
/* Deep copy. ERR_NOMEM. */
int task_copy(struct task *out, const struct task *from);

/* Parses a POST /api/v1/tasks body (JSON object). Unknown members are 422
 * errors ("is not a task field"); read-only members (id, version,
 * created_at, updated_at, completed_at, parent_id) are 422 too. On success
 * `out` holds the fields (id, owner, times and version are left for the
 * caller; `completed` is accepted and only sets the flag). A due date with
 * no `reminders` member gets [{"before":"PT15M"}]. `out` is overwritten, not
 * freed first; on any error it is left empty (nothing to free).
 * Returns 0; ERR_PARSE when the body is not a JSON object (400: `errors`
 * holds one entry with field "" and the parser's message); ERR_INVAL with
 * `errors` filled (422). */
int task_parse_create(const char *body, size_t length, const struct task_defaults *defaults,
                      struct task *out, struct task_errors *errors);

/* Parses a PATCH body, same rules; an empty object is valid (no change).
 * On any error `out` is left empty (fields 0), nothing to free. */
int task_parse_patch(const char *body, size_t length, struct task_patch *out,
                     struct task_errors *errors);
void task_patch_free(struct task_patch *patch);

/* `out` = `current` with the patch applied (version and times untouched).
 * ERR_NOMEM. `out` is overwritten, not freed first. TASK_FIELD_COMPLETED is
 * not applied here: completing has its own event (task.completed) and time,
 * so the caller turns it into a complete/uncomplete command. */
int task_apply_patch(const struct task *current, const struct task_patch *patch,
                     struct task *out);

/* Adds to `changes` (a JSON object) one {"old","new"} member per field that
 * differs between `before` and `after` (title, description, priority, tags,
 * due, timezone, recurrence, reminders; values in their JSON forms). Returns
 * the number of differing fields, or ERR_NOMEM. */
int task_diff(const struct task *before, const struct task *after, struct yyjson_mut_doc *doc,
              struct yyjson_mut_val *changes);

/* The API object. NULL on ERR_NOMEM. */
struct yyjson_mut_val *task_to_json(const struct task *task, struct yyjson_mut_doc *doc);

/* Serialises the API object to a malloc'd (mem_alloc) string. NULL on
 * ERR_NOMEM. */
char *task_to_json_string(const struct task *task, size_t *length_out);

/* Reads an API object (as written by task_to_json; also the data of
 * task.created / task.deleted). Lenient only in ignoring unknown members
 * ("deleted_at"). ERR_PARSE when a member is missing or mistyped. */
int task_from_json(const struct yyjson_val *object, struct task *out);

/* Applies one event of this task to `state`: task.created replaces it;
 * updated/due_changed/completed/uncompleted change fields and set version
 * and updated_at from the data; task.deleted leaves `state` as is and
 * returns 1 (the task no longer exists). Unknown types (reminder.*,
 * recurrence.spawned, ...) return 0 and change nothing. ERR_PARSE on data
 * that does not have the shape above. */
int task_fold(struct task *state, const char *type, const struct yyjson_val *data);

/* The distinct instants (Unix ms, ascending) at which the task's reminders
 * fire: due - before for relative ones (none without a due date), the
 * instant of absolute ones. Returns how many were written (<= capacity;
 * LIMIT_TASK_REMINDERS is always enough). Completion is not considered. */
size_t task_reminder_instants(const struct task *task, int64_t *out_ms, size_t capacity);

/* Text forms of the enums; parse returns -1 for an unknown name. */
const char *task_priority_name(enum task_priority priority);
int task_priority_parse(const char *text, size_t length);
const char *task_recurrence_from_name(enum task_recurrence_from from);
int task_recurrence_from_parse(const char *text, size_t length);

/* Adds an error (ignored past TASK_ERRORS_MAX; count still grows). */
void task_errors_add(struct task_errors *errors, const char *field, const char *message);

#endif
