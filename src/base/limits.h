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

/* ---- Logging ---------------------------------------------------------- */

/* One structured log line; longer lines are truncated with a marker. */
#define LIMIT_LOG_LINE_BYTES 2048

#endif
