/*
 * tzdata.h - the IANA time-zone database built into the binary.
 *
 * Docket ships as one static binary that must also run on a bare machine
 * with no /usr/share/zoneinfo. At build time src/tasks/tzdata_embed.c turns
 * the zone files of the pinned PyPI `tzdata` wheel (vendor/pins; unpacked
 * by vendor/fetch, never committed) into a table of names and TZif bytes,
 * stored as shipped ("slim" files of RFC 8536 version 2+, about 200 KiB
 * once links share their bytes). The host's files are still preferred (the
 * OS updates them); zoneinfo_load() and timezone_is_valid() come here only
 * when the host has no file of that name.
 */
#ifndef DOCKET_TASKS_TZDATA_H
#define DOCKET_TASKS_TZDATA_H

#include <stddef.h>
#include <stdint.h>

/* Finds zone `name` (NUL-terminated, e.g. "Europe/Berlin") in the embedded
 * table by binary search. On success *bytes points at its TZif data (static,
 * never freed) and *length is its size. ERR_NOTFOUND when there is no such
 * zone, ERR_INVAL for a NULL name. */
int tzdata_find(const char *name, const uint8_t **bytes, size_t *length);

/* Number of embedded zones (Zone and Link names, links included). */
size_t tzdata_count(void);

/* Name of embedded zone `index` (< tzdata_count()); names are sorted by
 * strcmp. */
const char *tzdata_name(size_t index);

/* The IANA release the table was built from, e.g. "2026f". */
const char *tzdata_version(void);

#endif
