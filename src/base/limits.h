/*
 * limits.h - every fixed bound in Docket, with the reason for its value.
 *
 * Nothing in Docket grows without a limit named here (ARCHITECTURE.md,
 * invariant 5). Values that operators may tune are defaults for the config
 * table (src/config/config.c); the rest are compile-time ceilings.
 */
#ifndef DOCKET_BASE_LIMITS_H
#define DOCKET_BASE_LIMITS_H

/* ---- HTTP requests ---------------------------------------------------- */

/* Request line (method + URL + version). 8 KiB is what nginx and most
 * proxies allow; a longer URL is answered 414. */
#define LIMIT_HTTP_URL_BYTES (8 * 1024)

/* All header names and values of one request together. Node's cap is
 * 16 KiB; larger headers are answered 431. */
#define LIMIT_HTTP_HEADER_BYTES (16 * 1024)

/* Number of header fields of one request; more are answered 431. */
#define LIMIT_HTTP_HEADER_COUNT 100

/* Default body limit (JSON documents of the API are small; 1 MiB is nginx's
 * default). Larger bodies are answered 413, decided from Content-Length or a
 * running count of chunked data. Configurable: http.max_body_bytes. */
#define LIMIT_HTTP_BODY_BYTES_DEFAULT (1024 * 1024)

/* Hard ceiling for the configurable body limit, so a typo cannot let one
 * request pin gigabytes. */
#define LIMIT_HTTP_BODY_BYTES_MAX (64 * 1024 * 1024)

/* Bytes read from a socket at once. One read buffer per connection; 16 KiB
 * holds a whole typical request including headers. */
#define LIMIT_HTTP_READ_BYTES (16 * 1024)

/* Requests a client may pipeline before we stop reading its socket. We answer
 * in order, one at a time, so unparsed input waiting behind the current
 * request is bounded by this many bytes; past it the socket is not read. */
#define LIMIT_HTTP_PIPELINE_BYTES (64 * 1024)

/* Default timeouts, milliseconds. The header timeout is what stops slowloris
 * (CVE-2018-12122 taught that a size cap alone is not enough). */
#define LIMIT_HTTP_HEADER_TIMEOUT_MS_DEFAULT 10000
#define LIMIT_HTTP_BODY_TIMEOUT_MS_DEFAULT 30000
#define LIMIT_HTTP_IDLE_TIMEOUT_MS_DEFAULT 60000

/* Default ceiling on open connections; past it new ones get 503 and close. */
#define LIMIT_CONNECTIONS_DEFAULT 10000

/* Upper bound for the configurable connection ceiling (file descriptors). */
#define LIMIT_CONNECTIONS_MAX 1000000

/* Graceful shutdown: how long in-flight requests may take before sockets are
 * closed regardless. */
#define LIMIT_SHUTDOWN_GRACE_MS_DEFAULT 10000

/* ---- Routing ---------------------------------------------------------- */

/* Path parameters captured by one route pattern ("{id}"). */
#define LIMIT_ROUTE_PARAMS 4

/* Path segments in a route pattern or request path considered by the router. */
#define LIMIT_ROUTE_SEGMENTS 16

/* ---- Configuration ---------------------------------------------------- */

/* One line of the config file; longer lines are an error, not truncated. */
#define LIMIT_CONFIG_LINE_BYTES 4096

/* Whole config file. */
#define LIMIT_CONFIG_FILE_BYTES (1024 * 1024)

/* ---- Event log -------------------------------------------------------- */

/* Topics in one data directory. Each topic holds an open file descriptor per
 * segment and its offsets table in memory, so the count is kept small. */
#define LIMIT_EVLOG_TOPICS 64

/* Topic name, bytes ([a-z0-9._-], not starting with '.'). It is a directory
 * name under <data_dir>/log/, so it must stay short and path-safe. */
#define LIMIT_EVLOG_TOPIC_NAME_BYTES 64

/* Record key. Keys are user ids or task ids; 1 KiB leaves room for composite
 * keys while keeping the framing's 16-bit length field far from overflow. */
#define LIMIT_EVLOG_KEY_BYTES 1024

/* Headers per record, and the size of one header's name and value. Events
 * carry a handful (CloudEvents attributes); these stop a bad producer. */
#define LIMIT_EVLOG_HEADER_COUNT 32
#define LIMIT_EVLOG_HEADER_NAME_BYTES 256
#define LIMIT_EVLOG_HEADER_VALUE_BYTES 4096

/* Record value. One event is a JSON document of at most a task snapshot; the
 * HTTP body limit (1 MiB) is the natural ceiling. */
#define LIMIT_EVLOG_VALUE_BYTES (1024 * 1024)

/* A whole framed record, the largest the decoder ever accepts: value + key +
 * every header at its maximum + framing, rounded up. A length field above it
 * is corruption, not a reason to allocate. */
#define LIMIT_EVLOG_RECORD_BYTES (LIMIT_EVLOG_VALUE_BYTES + 512 * 1024)

/* Segment size at which the active segment rolls. 64 MiB keeps recovery of the
 * active segment (a full CRC scan at open) well under a second and retention
 * granular. Tests use tiny segments through the options. */
#define LIMIT_EVLOG_SEGMENT_BYTES_DEFAULT (64 * 1024 * 1024)

/* Segment size ceiling: index entries store 32-bit positions. */
#define LIMIT_EVLOG_SEGMENT_BYTES_MAX (1024LL * 1024 * 1024)

/* Segment age at which the active segment rolls (milliseconds since its first
 * record), so age-based retention can drop old data even on quiet topics. */
#define LIMIT_EVLOG_SEGMENT_AGE_MS_DEFAULT (24LL * 3600 * 1000)

/* Segments per topic. Each costs a file descriptor and its index in memory
 * (about 1/256 of its bytes), so a topic of 1 TiB at the default size fits. */
#define LIMIT_EVLOG_SEGMENTS 16384

/* Bytes of segment data between two sparse index entries. Kafka uses 4 KiB:
 * a lookup reads at most this much past the entry it finds. */
#define LIMIT_EVLOG_INDEX_INTERVAL_BYTES 4096

/* Records and bytes waiting for the next group commit (appended while the
 * previous fsync runs). Past either, append fails with ERR_AGAIN: the caller
 * is producing faster than the disk commits and must slow down. 8 MiB is
 * several fsyncs' worth at full disk bandwidth. */
#define LIMIT_EVLOG_PENDING_RECORDS 65536
#define LIMIT_EVLOG_PENDING_BYTES (8 * 1024 * 1024)

/* Segments deleted by retention in one roll; the rest wait for the next. It
 * bounds the work (and the list) carried by one commit job. */
#define LIMIT_EVLOG_RETENTION_SEGMENTS_PER_ROLL 16

/* In-process consumers woken when records become durable, per topic. */
#define LIMIT_EVLOG_SUBSCRIBERS 64

/* Named consumers with a stored offset, per topic, and their name length.
 * The whole table is rewritten atomically on each commit, so it stays small. */
#define LIMIT_EVLOG_CONSUMERS 64
#define LIMIT_EVLOG_CONSUMER_NAME_BYTES 64

/* After a write or fsync failure (ENOSPC, EIO) the topic refuses appends for
 * this long before trying again, so a full disk is probed at most twice a
 * second instead of once per request. Writes resume within this time after
 * space returns. */
#define LIMIT_EVLOG_RETRY_MS 500

/* Bytes read from a segment at once by readers and recovery. A record larger
 * than this is read whole into a buffer grown up to LIMIT_EVLOG_RECORD_BYTES. */
#define LIMIT_EVLOG_READ_BYTES (64 * 1024)

/* Paths under the data directory (data_dir/log/topic/base.seg.tmp). */
#define LIMIT_EVLOG_PATH_BYTES 4096

/* `docket log append|bench`: concurrent logical writers, and records per run
 * (each keeps a 4-byte latency sample, so 20 M records cost 80 MB). */
#define LIMIT_CLI_LOG_WRITERS 4096
#define LIMIT_CLI_LOG_RECORDS 20000000

/* `docket log tail --follow`: how often the log is looked at again. */
#define LIMIT_CLI_LOG_FOLLOW_MS 200

/* ---- Logging ---------------------------------------------------------- */

/* One structured log line; longer lines are truncated with a marker. */
#define LIMIT_LOG_LINE_BYTES 2048

/* ---- Auth ------------------------------------------------------------- */
/* (src/auth/jwt.c, src/auth/password.c; durations in src/base/timefmt.c) */

/* A whole bearer token, bytes. Ours are about 300 bytes; 8 KiB matches the
 * request-line limit, so a token also fits in `?token=` on the WebSocket URL.
 * Longer tokens are rejected before any decoding or allocation. */
#define LIMIT_JWT_TOKEN_BYTES (8 * 1024)

/* Nesting of arrays and objects in a token's header or payload. Our claims
 * are flat (aud may be an array: depth 2); deeper documents are an attack. */
#define LIMIT_JWT_JSON_DEPTH 8

/* Members of the header or payload object. Bounds the duplicate-name check
 * (quadratic in this number) and the work spent on a hostile token. */
#define LIMIT_JWT_JSON_MEMBERS 64

/* Keys in the HMAC key ring (current key plus ones being rotated out). */
#define LIMIT_JWT_KEYS 8

/* Key id ("kid") length, bytes. */
#define LIMIT_JWT_KEY_ID_BYTES 64

/* HMAC secret length, bytes. RFC 7518 section 3.2 requires a key at least as
 * long as the hash output (32 bytes for HS256); keys longer than the hash
 * block (128 bytes for HS512) are hashed down by HMAC and gain nothing. */
#define LIMIT_JWT_SECRET_BYTES_MIN 32
#define LIMIT_JWT_SECRET_BYTES_MAX 128

/* Claim string lengths, bytes. A subject is a user id (a 36-byte UUID);
 * roles are "user" or "admin"; token ids are UUIDs. Issuer and audience are
 * URLs or names given in the configuration. */
#define LIMIT_JWT_SUBJECT_BYTES 64
#define LIMIT_JWT_ROLE_BYTES 16
#define LIMIT_JWT_TOKEN_ID_BYTES 64
#define LIMIT_JWT_ISSUER_BYTES 256
#define LIMIT_JWT_AUDIENCE_BYTES 256

/* Entries of an "aud" array that are examined. */
#define LIMIT_JWT_AUDIENCES 16

/* Clock skew tolerated on exp, nbf and iat, seconds. 60 s is the common
 * default (PyJWT, jose); the ceiling stops a configuration from quietly
 * extending every token's life by hours. */
#define LIMIT_JWT_LEEWAY_S_DEFAULT 60
#define LIMIT_JWT_LEEWAY_S_MAX 300

/* Password length. At least 8 characters (OWASP ASVS 5.0 V6.2.1; counted in
 * Unicode code points), at most 1024 bytes: long passphrases are welcome
 * (ASVS V6.2.9 asks for >= 64), but PBKDF2 hashes the password once per
 * iteration block, so the bound keeps one login's cost fixed. */
#define LIMIT_PASSWORD_CHARACTERS_MIN 8
#define LIMIT_PASSWORD_BYTES_MAX 1024

/* PBKDF2-HMAC-SHA256 iterations. 600,000 is OWASP's Password Storage Cheat
 * Sheet minimum; hashing may be configured upward. The ceiling applies to
 * configured and to stored values, so a corrupt or hostile stored hash
 * cannot pin a core for minutes. */
#define LIMIT_PASSWORD_ITERATIONS_MIN 600000
#define LIMIT_PASSWORD_ITERATIONS_MAX 5000000

/* Longest ISO 8601 duration accepted (reminder offsets and the like): ten
 * years of days, including up to three leap days, in seconds. */
#define LIMIT_DURATION_S_MAX (3653LL * 24 * 3600)

/* ---- Tasks (src/tasks/) ----------------------------------------------- */

/* Task title, in characters (API.md: 1..500), and its byte ceiling (UTF-8
 * takes at most 4 bytes per character). */
#define LIMIT_TASK_TITLE_CHARACTERS 500
#define LIMIT_TASK_TITLE_BYTES (4 * LIMIT_TASK_TITLE_CHARACTERS)

/* Task description, bytes. 64 KiB holds a long note; longer text belongs in
 * a document, not a todo item, and keeps one event well under the log's
 * record limit even as a task.deleted snapshot with old/new values. */
#define LIMIT_TASK_DESCRIPTION_BYTES (64 * 1024)

/* Tags per task and bytes per tag. Tags are labels; 50 x 64 B bounds the
 * tag index rows of one task. */
#define LIMIT_TASK_TAGS 50
#define LIMIT_TASK_TAG_BYTES 64

/* Reminders per task. Each becomes a timer-wheel entry. */
#define LIMIT_TASK_REMINDERS 20

/* RRULE text, bytes. The supported subset never needs more than ~120. */
#define LIMIT_TASK_RRULE_BYTES 256

/* IANA timezone name, bytes ("America/Argentina/ComodRivadavia" is 32). */
#define LIMIT_TIMEZONE_NAME_BYTES 64

/* Username, bytes: [A-Za-z0-9._-], 3..64. */
#define LIMIT_USERNAME_BYTES_MIN 3
#define LIMIT_USERNAME_BYTES_MAX 64

/* Idempotency-Key header, bytes (Stripe allows 255). */
#define LIMIT_IDEMPOTENCY_KEY_BYTES 255

/* Full-text query `q`, bytes. */
#define LIMIT_TASK_QUERY_BYTES 512

/* Repeatable list filters (tag=, priority=, type=) accepted per request. */
#define LIMIT_LIST_FILTER_VALUES 20

/* List page size: API.md default 50, max 500. */
#define LIMIT_LIST_DEFAULT 50
#define LIMIT_LIST_MAX 500

/* Opaque list cursor, bytes of its base64url text. */
#define LIMIT_LIST_CURSOR_BYTES 1024

/* Commands accepted but not yet durable and applied (HTTP requests waiting
 * for the log). Past it writes get 503 with Retry-After instead of queueing
 * without bound. */
#define LIMIT_COMMANDS_PENDING 65536

/* Events applied by the projection in one SQLite transaction. Bounds the
 * time one apply step holds the loop. */
#define LIMIT_PROJECTION_BATCH_EVENTS 4096

/* Concurrent password hashes (signup, login, password change) on the
 * thread pool; more wait in a bounded queue, and past that get 503. Each
 * hash costs ~0.5-1.5 s of CPU at 600k PBKDF2 iterations. */
#define LIMIT_PASSWORD_HASHES_RUNNING 2
#define LIMIT_PASSWORD_HASHES_QUEUED 64

/* Login throttling: failures per username and per client address within
 * the window before further attempts get 429 with Retry-After. */
#define LIMIT_LOGIN_FAILURES_PER_USER 5
#define LIMIT_LOGIN_FAILURES_PER_ADDRESS 20
#define LIMIT_LOGIN_WINDOW_S 900
#define LIMIT_LOGIN_THROTTLE_ENTRIES 65536

/* Audit retention default, days (PRODUCT.md A2), and the sweep period. */
#define LIMIT_AUDIT_RETENTION_DAYS_DEFAULT 90
#define LIMIT_AUDIT_SWEEP_MS 60000

/* Token lifetime default, seconds (24 h) and ceiling (30 days). */
#define LIMIT_TOKEN_TTL_S_DEFAULT (24 * 3600)
#define LIMIT_TOKEN_TTL_S_MAX (30 * 24 * 3600)

/* ---- WebSockets (issue 5) --------------------------------------------------- */

/* WebSocket connections in all (ws.max_connections); max_connections counts
 * them too, so the default matches it. An idle one costs about 4 KiB of
 * user space (the HTTP connection it was, its session and its hub entry;
 * wslay's 8 KiB context is dropped while idle), so 100,000 (set both
 * settings, and the file-descriptor limit) fit in well under 1 GiB. Past
 * it the upgrade is closed with 1013. */
#define LIMIT_WS_CONNECTIONS_DEFAULT LIMIT_CONNECTIONS_DEFAULT

/* Connections of one user (ws.max_connections_per_user): laptops, phones
 * and tabs are a handful; 64 leaves room and stops one account from
 * holding the server's sockets. Past it: close 1008. */
#define LIMIT_WS_CONNECTIONS_PER_USER_DEFAULT 64

/* Largest message a client may send (ws.max_message_bytes). Clients only
 * send resume and ping, a few dozen bytes; 64 KiB leaves room for later
 * message types and is far below wslay's own 2^31 default. 1009 beyond. */
#define LIMIT_WS_MESSAGE_BYTES_DEFAULT (64 * 1024)
#define LIMIT_WS_MESSAGE_BYTES_MAX (16 * 1024 * 1024)

/* Client messages per second (ws.messages_per_second), burst of one
 * second. A client needs a few; a flood gets 1008. */
#define LIMIT_WS_MESSAGES_PER_SECOND_DEFAULT 50

/* Keepalive (ws.ping_interval_ms, ws.pong_timeout_ms): a ping after 30 s of
 * silence keeps NAT and proxy state alive (most drop idle flows after 60 s
 * or more); a peer silent for 45 s in all is dead and its socket is freed. */
#define LIMIT_WS_PING_INTERVAL_MS_DEFAULT 30000
#define LIMIT_WS_PONG_TIMEOUT_MS_DEFAULT 15000

/* Bytes queued to one client before live events stop being queued for it
 * (ws.send_queue_bytes): it switches to catch-up from the projection, so a
 * client that stops reading costs at most this much user space (plus what
 * its kernel socket buffer took). 256 KiB is ~250 events, a burst no
 * healthy client lags behind by. */
#define LIMIT_WS_SEND_QUEUE_BYTES_DEFAULT (256 * 1024)

/* A client whose queue made no progress for this long (ws.stall_timeout_ms)
 * is closed with 4008 and resumes when it reconnects. */
#define LIMIT_WS_STALL_TIMEOUT_MS_DEFAULT 60000

#endif
