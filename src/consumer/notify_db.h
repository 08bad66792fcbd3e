/*
 * notify_db.h - <data_dir>/notify.db, the database of the consumers that
 * deliver things (the dead-letter queue's mirror and the notifier's
 * deliveries). It is a separate file from docket.db so that writes made on
 * the loop never wait for the projection's transactions on another thread.
 *
 * Schema (version 1, PRAGMA user_version):
 *   offsets(name, next_offset): mirror positions in event-log topics
 *     ("dlq": the next "dlq"-topic offset the dlq table has not copied).
 *   dlq: one row per dead-letter entry (deadletter.h); id is a UUID v7, so
 *     id order is time order; state dead|redriving|redriven|failed_again;
 *     failed_ns/redriven_ns are Unix ns; offset is the record's "dlq" offset.
 *   deliveries: the notifier's outbound deliveries, one per key (the
 *     notifier owns the rows; this file owns the schema): state, attempts
 *     made, next_ns (Unix ns of the next attempt, or NULL), the last error,
 *     the CloudEvent and a consumer-specific item as JSON text.
 */
#ifndef DOCKET_CONSUMER_NOTIFY_DB_H
#define DOCKET_CONSUMER_NOTIFY_DB_H

struct db;
struct db_error;

/* db_open_schema with notify.db's migrations. Same errors as db_open. */
int notify_db_open(struct db **db_out, const char *path, struct db_error *error);

#endif
