/*
 * timezone.h - deciding whether a text names an IANA time zone.
 *
 * Tasks carry the IANA name of the zone their due date and recurrence are
 * read in ("Europe/Berlin"). A name is accepted when it is in the table of
 * canonical zones and links built into the binary (generated from tzdata
 * 2025b, so a static binary needs no files), or else when the host's zone
 * directory ($TZDIR, by default /usr/share/zoneinfo) holds a TZif file of
 * that name or the embedded tzdata (tzdata.h) has it (zones newer than the
 * table). Names are case-sensitive, as the database and every filesystem
 * lookup of it are.
 */
#ifndef DOCKET_TASKS_TIMEZONE_H
#define DOCKET_TASKS_TIMEZONE_H

#include <stdbool.h>
#include <stddef.h>

/* Where the host's zone files are looked up when TZDIR is not set. */
#define TIMEZONE_DIRECTORY "/usr/share/zoneinfo"

/* Longest directory timezone_directory_set() accepts, bytes. */
#define TIMEZONE_DIRECTORY_BYTES 256

/* True when `name` (`length` bytes, no NUL needed) is an IANA zone name:
 * at most LIMIT_TIMEZONE_NAME_BYTES bytes of [A-Za-z0-9/_+-], not starting
 * with "/", and either in the built-in table, a TZif file under
 * the zone directory or a zone of the embedded tzdata. "localtime",
 * "posixrules" and the "posix/" and "right/" trees are refused: the first
 * two differ from host to host, and "right/" zones count leap seconds,
 * which Unix time does not. */
bool timezone_is_valid(const char *name, size_t length);

/* Points the file lookup at another directory (NULL restores the default:
 * the TZDIR environment variable when set, not empty and at most
 * TIMEZONE_DIRECTORY_BYTES long, else TIMEZONE_DIRECTORY): the seam tests
 * use to add zones the table lacks or to hide the host's files. ERR_INVAL
 * when longer than TIMEZONE_DIRECTORY_BYTES. Not thread-safe; set it
 * before serving. */
int timezone_directory_set(const char *directory);

/* The directory zone files are read from now (for zoneinfo_load); the
 * default is chosen on the first call. */
const char *timezone_directory_get(void);

/* True when that directory exists (it may still lack a given zone). */
bool timezone_directory_present(void);

/* Writes where zone data comes from into `out`: "system zoneinfo at DIR"
 * when the directory exists, else "embedded tzdata VERSION". ERR_LIMIT
 * when it does not fit (`out` then holds a truncated text). */
int timezone_source_describe(char *out, size_t size);

/* Logs that description once per process (info, component "timezone");
 * later calls do nothing. Called at the first validation, so a server
 * logs it with its first request that names a zone; startup code may call
 * it earlier. */
void timezone_source_log(void);

/* True when `name` is in the built-in table (no filesystem access). */
bool timezone_is_known(const char *name, size_t length);

/* The built-in table, sorted by strcmp, for tests and listings. */
size_t timezone_table_size(void);
const char *timezone_table_name(size_t index);

#endif
