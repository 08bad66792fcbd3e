/*
 * timefmt.h - the API's time and duration texts: RFC 3339 date-times and the
 * ISO 8601 durations Docket accepts.
 *
 * Times.
 *   Parsed: RFC 3339 section 5.6 "date-time", exactly:
 *     YYYY-MM-DD "T" hh:mm:ss [ "." 1*9DIGIT ] ( "Z" / ("+" / "-") hh:mm )
 *   "t" and "z" may be lowercase (section 5.6 note). A numeric offset is
 *   subtracted to give UTC; "-00:00" means UTC. Calendar rules are exact
 *   (Gregorian leap years, no February 30, hour 00..23). Leap seconds (":60")
 *   are rejected, since Unix time cannot represent them. The result is Unix
 *   nanoseconds in an int64; accepted are TIMEFMT_TIME_NS_MIN
 *   (1677-09-21T00:12:44Z) to INT64_MAX (2262-04-11T23:47:16.854775807Z),
 *   others are ERR_RANGE. The lower end is the first whole second of the
 *   int64 range, so every accepted time still parses after formatting.
 *   No space for "T", no missing seconds, no surrounding whitespace.
 *   Formatted: always UTC with "Z". Whole seconds print without a fraction
 *   ("2026-02-10T09:45:00Z"); otherwise milliseconds, truncated toward the
 *   past ("2026-02-10T09:45:00.123Z"). A value whose millisecond part is zero
 *   prints without a fraction, so format(t) == format(t rounded down to ms).
 *
 * Durations.
 *   Parsed: "P" nW, or "P" [nD] ["T" [nH] [nM] [nS]] with at least one part,
 *   parts in that order, each a whole number of ASCII digits; designators are
 *   uppercase. Examples: PT15M, P1D, P1DT2H, P2W, PT0S, PT90M. Years and
 *   months are rejected because their length in seconds depends on the date;
 *   fractions, signs and weeks combined with other parts are rejected too.
 *   The result is whole seconds, at most LIMIT_DURATION_S_MAX (ten years).
 *   Formatted: days and the time part, no weeks, zero parts left out
 *   ("P1DT2H", "PT15M", "P7D"); zero is "PT0S".
 *
 * Parse functions return 0, ERR_PARSE (malformed) or ERR_RANGE (well formed
 * but out of range) and, on error, point `*message` (if not NULL) at a
 * static sentence fit for an API field error, worded to follow the field
 * name: {"field": "due", "message": "must be an RFC 3339 time, e.g. ..."}.
 */
#ifndef DOCKET_BASE_TIMEFMT_H
#define DOCKET_BASE_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Earliest time accepted by timefmt_time_parse(), Unix nanoseconds. */
#define TIMEFMT_TIME_NS_MIN (-INT64_C(9223372036) * INT64_C(1000000000))

/* Largest formatted time plus NUL: "2026-02-10T09:45:00.123Z". */
#define TIMEFMT_TIME_BYTES 25

/* Largest formatted duration plus NUL, with room to spare. */
#define TIMEFMT_DURATION_BYTES 32

/* Parses an RFC 3339 date-time of `length` bytes into Unix nanoseconds (UTC). */
int timefmt_time_parse(const char *text, size_t length, int64_t *unix_ns, const char **message);

/* Writes `unix_ns` (any int64) as RFC 3339 UTC (see above). Returns the
 * length written. */
int timefmt_time_format(int64_t unix_ns, char out[TIMEFMT_TIME_BYTES]);

/* Parses an ISO 8601 duration of `length` bytes into whole seconds. */
int timefmt_duration_parse(const char *text, size_t length, int64_t *seconds,
                           const char **message);

/* Writes `seconds` (0..LIMIT_DURATION_S_MAX) as an ISO 8601 duration.
 * Returns the length written. */
int timefmt_duration_format(int64_t seconds, char out[TIMEFMT_DURATION_BYTES]);

/* Days since 1970-01-01 of a proleptic Gregorian date (any year), and
 * back (Howard Hinnant's era algorithm: 400-year eras from 0000-03-01). */
int64_t timefmt_days_from_civil(int64_t year, int month, int day);
void timefmt_civil_from_days(int64_t days, int64_t *year, int *month, int *day);

#endif
