/*
 * projection.h - applies the event log's "events" topic to the SQLite
 * projections (users, tasks + full-text index + tags, events, audit,
 * idempotency keys, per-user sequence), recording in the same transaction
 * the offset it reached (table `offsets`, name "projection").
 *
 * Invariants (tests pin each):
 *   - after a crash, re-applying from the stored offset converges;
 *   - applying an event twice changes nothing (each apply checks the event's
 *     offset/id and the task's version before writing);
 *   - a rebuild from offset 0 yields identical tables.
 *
 * Event types understood: task.created, task.updated, task.due_changed,
 * task.completed, task.uncompleted, task.deleted (task rows, tags, FTS),
 * user.created, user.updated, user.password_changed, user.role_changed
 * (users rows); every event (also user.login and types this version does not
 * know) is stored in `events` (its CloudEvent JSON, for the events API and
 * replay) and in `audit` (time, user, actor, type, task, payload = data).
 * Unknown types are kept, never rejected: events are immutable and newer
 * versions may add types.
 *
 * Idempotency: an event carrying `idempotencykey` stores (user, key) ->
 * request hash (record header "request-hash"), status and response body:
 * task.created 201 + the task JSON after the event, task.deleted 204 with no
 * body, other task.* 200 + the task JSON after the event.
 */
#ifndef DOCKET_TASKS_PROJECTION_H
#define DOCKET_TASKS_PROJECTION_H

#include "../evlog/evlog.h"
#include "../store/db.h"

#include <stdint.h>

struct projection;

/* Reads the stored offset (0 for a fresh database). */
int projection_open(struct projection **out, struct db *db, struct evlog_topic *topic);
void projection_close(struct projection *projection);

/* Next offset to apply. */
int64_t projection_offset(const struct projection *projection);

/* Applies up to `max_events` durable records from the stored offset in one
 * transaction and stores the new offset. Returns the number applied (0 when
 * caught up), or a negative code (nothing of the batch is kept: ERR_CORRUPT
 * for a record that is not an event, naming it in the log; ERR_RANGE when
 * retention removed records the projection has not applied; SQLite errors). */
int projection_step(struct projection *projection, size_t max_events);

/* Applies one record inside the caller's transaction (unit tests, rebuild).
 * Skips (returns 0, changes nothing) a record already applied. */
int projection_apply(struct projection *projection, const struct evlog_record *record);

/* The same step split in three, so the SQLite work can run on a worker
 * thread while the loop keeps appending. One batch at a time:
 *   projection_batch_read   (loop) copies up to max_events durable records
 *                           from the offset; *out is NULL when caught up;
 *   projection_batch_write  (any one thread; nothing else may use the
 *                           projection's db meanwhile) applies them and the
 *                           new offset in one transaction;
 *   projection_batch_finish (loop) adopts the new offset when status is 0
 *                           and frees the batch. */
struct projection_batch;
int projection_batch_read(struct projection *projection, size_t max_events,
                          struct projection_batch **out);
int projection_batch_write(struct projection *projection, struct projection_batch *batch);
void projection_batch_finish(struct projection *projection, struct projection_batch *batch,
                             int status);

/* Progress callback for projection_rebuild: applied offset of end offset. */
typedef void (*projection_progress)(void *arg, int64_t applied, int64_t end);

/* Drops the projections and re-applies the whole log from its first offset
 * (which must be 0: ERR_RANGE if retention removed events). */
int projection_rebuild(struct projection *projection, projection_progress progress, void *arg);

#endif
