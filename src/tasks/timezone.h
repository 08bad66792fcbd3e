/*
 * timezone.h - deciding whether a text names an IANA time zone.
 *
 * Tasks carry the IANA name of the zone their due date and recurrence are
 * read in ("Europe/Berlin"). A name is accepted when it is in the table of
 * canonical zones and links built into the binary (generated from tzdata
 * 2025b, so a static binary needs no files), or else when the host's
 * /usr/share/zoneinfo holds a TZif file of that name (zones newer than the
 * table). Names are case-sensitive, as the database and every filesystem
 * lookup of it are.
 */
#ifndef DOCKET_TASKS_TIMEZONE_H
#define DOCKET_TASKS_TIMEZONE_H

#include <stdbool.h>
#include <stddef.h>

/* Where the host's zone files are looked up (by default). */
#define TIMEZONE_DIRECTORY "/usr/share/zoneinfo"

/* Longest directory timezone_directory_set() accepts, bytes. */
#define TIMEZONE_DIRECTORY_BYTES 256

/* True when `name` (`length` bytes, no NUL needed) is an IANA zone name:
 * at most LIMIT_TIMEZONE_NAME_BYTES bytes of [A-Za-z0-9/_+-], not starting
 * with "/", and either in the built-in table or a TZif file under
 * the zone directory. "localtime", "posixrules" and the "posix/" and
 * "right/" trees are refused: the first two differ from host to host, and
 * "right/" zones count leap seconds, which Unix time does not. */
bool timezone_is_valid(const char *name, size_t length);

/* Points the file fallback at another directory (NULL restores
 * TIMEZONE_DIRECTORY): the seam tests use to add zones the table lacks.
 * ERR_INVAL when longer than TIMEZONE_DIRECTORY_BYTES. Not thread-safe;
 * set it before serving. */
int timezone_directory_set(const char *directory);

/* The directory zone files are read from now (for zoneinfo_load). */
const char *timezone_directory_get(void);

/* True when `name` is in the built-in table (no filesystem access). */
bool timezone_is_known(const char *name, size_t length);

/* The built-in table, sorted by strcmp, for tests and listings. */
size_t timezone_table_size(void);
const char *timezone_table_name(size_t index);

#endif
