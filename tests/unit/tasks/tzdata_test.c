/*
 * tzdata_test.c - the embedded IANA zone table (tzdata.h) and the fallback
 * to it in zoneinfo_load() and timezone_is_valid(): the table is sorted and
 * every file in it parses; its answers equal the host's zone files wherever
 * the host has them; with the host's directory hidden (an empty or missing
 * directory, or TZDIR pointing nowhere) zones still load; a host file, when
 * present, wins over the embedded copy.
 */
#include "../../../src/base/err.h"
#include "../../../src/tasks/timezone.h"
#include "../../../src/tasks/tzdata.h"
#include "../../../src/tasks/zoneinfo.h"
#include "test.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Helpers ------------------------------------------------------------ */

/* The zones compared with the host: DST north and south, half-hour and
 * 45-minute offsets, a 30-minute DST (Lord Howe), negative DST (Dublin's
 * winter GMT is its "DST"), Morocco's Ramadan switches, abolished DST
 * (Sao Paulo since 2019) and plain UTC. */
static const char *const compared_zones[] = {
    "America/New_York",  "Europe/Berlin",   "Australia/Lord_Howe",
    "Asia/Kolkata",      "Pacific/Chatham", "America/Sao_Paulo",
    "Africa/Casablanca", "Europe/Dublin",   "UTC",
};

#define COMPARED_ZONE_COUNT (sizeof compared_zones / sizeof compared_zones[0])

/* 1970-01-01 and 2038-01-01 (exclusive), Unix seconds. */
#define INSTANT_FIRST_S INT64_C(0)
#define INSTANT_END_S INT64_C(2145916800)

/* Step between compared instants: 7 hours 13 minutes, so the samples walk
 * through every hour of the day and every weekday over the years. */
#define INSTANT_STEP_S INT64_C(25980)

static int embedded_load(const char *name, struct zoneinfo *zone) {
    const uint8_t *bytes = NULL;
    size_t length = 0;
    int rc = tzdata_find(name, &bytes, &length);
    if (rc != 0)
        return rc;
    return zoneinfo_parse(bytes, length, zone);
}

/* True when both zones give the same offset at `utc_s`. The DST flag is
 * not compared: the host may build its files from the "rearguard" format,
 * where Dublin's negative DST is written the other way round. */
static bool same_offset(const struct zoneinfo *left, const struct zoneinfo *right, int64_t utc_s) {
    int32_t left_s = INT32_MIN;
    int32_t right_s = INT32_MAX;
    bool dst = false;
    if (zoneinfo_utc_offset(left, utc_s, &left_s, &dst) != 0)
        return false;
    if (zoneinfo_utc_offset(right, utc_s, &right_s, &dst) != 0)
        return false;
    if (left_s != right_s)
        fprintf(stderr, "  offset differs at %lld: %d vs %d\n", (long long)utc_s, (int)left_s,
                (int)right_s);
    return left_s == right_s;
}

/* Rules that changed after the host release this test was written on
 * (2025b): where the host is older than `release`, the zone is compared
 * only before `since_s`. */
static const struct {
    const char *zone;    /* zone name */
    const char *release; /* first IANA release with the new rule (year only) */
    int64_t since_s;     /* first instant the releases disagree */
} changed_rules[] = {
    /* Morocco stays on +00 from 2026-09-20 instead of +01 with Ramadan
     * breaks. */
    {"Africa/Casablanca", "2026", INT64_C(1789866000)},
};

/* The IANA release of the host's files ("2025b"), from the first line of
 * tzdata.zi, or "" when it cannot be read. */
static void host_release(char out[16]) {
    out[0] = '\0';
    FILE *file = fopen(TIMEZONE_DIRECTORY "/tzdata.zi", "r");
    if (file == NULL)
        return;
    if (fscanf(file, "# version %15s", out) != 1)
        out[0] = '\0';
    fclose(file);
}

/* End of the compared range for `zone` against a host of `release`. */
static int64_t compare_end(const char *zone, const char *release) {
    for (size_t index = 0; index < sizeof changed_rules / sizeof changed_rules[0]; index++) {
        if (strcmp(changed_rules[index].zone, zone) == 0 &&
            strcmp(release, changed_rules[index].release) < 0)
            return changed_rules[index].since_s;
    }
    return INSTANT_END_S;
}

/* Compares the two zones at the samples and one second either side of
 * every transition of `host` in 1970..end; returns the instants checked,
 * or -1 at the first difference. */
static long compare_zones(const struct zoneinfo *host, const struct zoneinfo *embedded,
                          int64_t end_s) {
    long checked = 0;
    for (int64_t at_s = INSTANT_FIRST_S; at_s < end_s; at_s += INSTANT_STEP_S, checked++) {
        if (!same_offset(host, embedded, at_s))
            return -1;
    }
    for (size_t index = 0; index < host->transition_count; index++) {
        int64_t edge_s = host->transitions[index].at_s;
        if (edge_s < INSTANT_FIRST_S || edge_s + 1 >= end_s)
            continue;
        for (int64_t delta_s = -1; delta_s <= 1; delta_s++, checked++) {
            if (!same_offset(host, embedded, edge_s + delta_s))
                return -1;
        }
    }
    return checked;
}

/* Removes the temporary directory `dir` and what is in it. */
static void remove_tree(const char *dir) {
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (system(command) != 0)
        abort();
}

static void write_bytes(const char *dir, const char *name, const uint8_t *bytes, size_t length) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0700);
    *slash = '/';
    FILE *file = fopen(path, "wb");
    if (file == NULL)
        abort();
    fwrite(bytes, 1, length, file);
    fclose(file);
}

static int32_t offset_of(const char *name, int64_t utc_s) {
    struct zoneinfo zone;
    if (zoneinfo_load(name, &zone) != 0)
        return INT32_MIN;
    int32_t offset_s = INT32_MIN;
    bool dst = false;
    if (zoneinfo_utc_offset(&zone, utc_s, &offset_s, &dst) != 0)
        offset_s = INT32_MIN;
    zoneinfo_free(&zone);
    return offset_s;
}

/* ---- The table ------------------------------------------------------------ */

TEST(tzdata_table_parses) {
    /* Proves the table is sorted and duplicate-free (binary search depends
     * on it), every name is found by tzdata_find(), and every embedded file
     * is a TZif file zoneinfo_parse() accepts. */
    size_t count = tzdata_count();
    EXPECT(count >= 590);
    for (size_t index = 0; index < count; index++) {
        const char *name = tzdata_name(index);
        if (index > 0)
            EXPECT(strcmp(tzdata_name(index - 1), name) < 0);
        const uint8_t *bytes = NULL;
        size_t length = 0;
        EXPECT_EQ_INT(tzdata_find(name, &bytes, &length), 0);
        EXPECT(length > 44 && memcmp(bytes, "TZif", 4) == 0);
        struct zoneinfo zone;
        int rc = zoneinfo_parse(bytes, length, &zone);
        if (rc != 0)
            fprintf(stderr, "  %s: %s\n", name, err_name(rc));
        EXPECT_EQ_INT(rc, 0);
        EXPECT(zone.type_count >= 1);
        zoneinfo_free(&zone);
    }
}

TEST(tzdata_find_misses) {
    /* Proves lookups of names that are not zones fail cleanly: unknown and
     * near-miss names, the data files of the tree that are not TZif, and
     * NULL; and that the version looks like an IANA release ("2026f"). */
    const uint8_t *bytes = NULL;
    size_t length = 0;
    static const char *const misses[] = {
        "",
        "Europe",
        "Europe/",
        "europe/berlin",
        "Europe/Berlin/",
        "Mars/Olympus_Mons",
        "tzdata.zi",
        "zone.tab",
        "leapseconds",
        "iso3166.tab",
        "A",
        "~",
    };
    for (size_t index = 0; index < sizeof misses / sizeof misses[0]; index++)
        EXPECT_EQ_INT(tzdata_find(misses[index], &bytes, &length), ERR_NOTFOUND);
    EXPECT_EQ_INT(tzdata_find(NULL, &bytes, &length), ERR_INVAL);
    EXPECT_EQ_INT(tzdata_find(tzdata_name(0), &bytes, &length), 0);
    EXPECT_EQ_INT(tzdata_find(tzdata_name(tzdata_count() - 1), &bytes, &length), 0);
    const char *version = tzdata_version();
    EXPECT(strlen(version) == 5 && version[0] == '2' && version[4] >= 'a' && version[4] <= 'z');
}

TEST(tzdata_covers_name_table) {
    /* Proves every name timezone_is_valid() accepts from its built-in table
     * can also be loaded from the embedded data, so a name the API accepts
     * never fails to load on a host without zone files. */
    for (size_t index = 0; index < timezone_table_size(); index++) {
        const uint8_t *bytes = NULL;
        size_t length = 0;
        int rc = tzdata_find(timezone_table_name(index), &bytes, &length);
        if (rc != 0)
            fprintf(stderr, "  %s missing from tzdata\n", timezone_table_name(index));
        EXPECT_EQ_INT(rc, 0);
    }
}

/* ---- Agreement with the host ------------------------------------------------ */

TEST(tzdata_matches_host_files) {
    /* Proves the embedded zones give the same UTC offset as the host's own
     * files (read straight from TIMEZONE_DIRECTORY) at 60,000 to 82,000
     * instants per zone over 1970-2037 and one second either side of each transition
     * (up to a rule change the host's older release cannot know, see
     * changed_rules). Zones the host lacks are skipped; on a host without
     * tzdata only the known offsets of the next test are checked. */
    char release[16];
    host_release(release);
    for (size_t index = 0; index < COMPARED_ZONE_COUNT; index++) {
        const char *name = compared_zones[index];
        struct zoneinfo embedded;
        EXPECT_EQ_INT(embedded_load(name, &embedded), 0);
        struct zoneinfo host;
        int rc = zoneinfo_load_at(TIMEZONE_DIRECTORY, name, &host);
        if (rc == ERR_NOTFOUND) {
            zoneinfo_free(&embedded);
            continue;
        }
        EXPECT_EQ_INT(rc, 0);
        long checked = compare_zones(&host, &embedded, compare_end(name, release));
        if (checked < 0)
            fprintf(stderr, "  %s: embedded and host differ\n", name);
        zoneinfo_free(&host);
        zoneinfo_free(&embedded);
        EXPECT(checked > 60000);
    }
}

TEST(tzdata_known_offsets) {
    /* Proves the embedded data by facts written down here, independent of
     * the host: summer and winter offsets of the compared zones in 2026. */
    static const struct {
        const char *name; /* zone */
        int64_t utc_s;    /* instant */
        int32_t offset_s; /* expected offset */
    } facts[] = {
        {"America/New_York", 1784548800, -4 * 3600},  /* 2026-07-20T12:00Z, EDT */
        {"America/New_York", 1768910400, -5 * 3600},  /* 2026-01-20T12:00Z, EST */
        {"Europe/Berlin", 1784548800, 2 * 3600},      /* CEST */
        {"Europe/Berlin", 1768910400, 1 * 3600},      /* CET */
        {"Australia/Lord_Howe", 1784548800, 37800},   /* +10:30 in the southern winter */
        {"Australia/Lord_Howe", 1768910400, 39600},   /* +11 with its 30-minute DST */
        {"Asia/Kolkata", 1784548800, 19800},          /* +05:30 all year */
        {"Pacific/Chatham", 1784548800, 45900},       /* +12:45 */
        {"Pacific/Chatham", 1768910400, 49500},       /* +13:45 */
        {"America/Sao_Paulo", 1768910400, -3 * 3600}, /* no DST since 2019 */
        {"Europe/Dublin", 1784548800, 3600},          /* IST, standard time */
        {"Europe/Dublin", 1768910400, 0},             /* GMT, negative DST */
        {"UTC", 1784548800, 0},
    };
    char dir[] = "/tmp/docket-tzdata-known-XXXXXX";
    EXPECT(mkdtemp(dir) != NULL);
    EXPECT_EQ_INT(timezone_directory_set(dir), 0);
    int failures = 0;
    for (size_t index = 0; index < sizeof facts / sizeof facts[0]; index++) {
        int32_t offset_s = offset_of(facts[index].name, facts[index].utc_s);
        if (offset_s != facts[index].offset_s) {
            fprintf(stderr, "  %s at %lld: %d\n", facts[index].name, (long long)facts[index].utc_s,
                    (int)offset_s);
            failures++;
        }
    }
    EXPECT_EQ_INT(timezone_directory_set(NULL), 0);
    remove_tree(dir);
    EXPECT_EQ_INT(failures, 0);
}

/* ---- Fallback ---------------------------------------------------------------- */

TEST(tzdata_fallback_without_host_files) {
    /* Proves zoneinfo_load() and timezone_is_valid() work from the embedded
     * data when the zone directory is empty and when it does not exist,
     * that unknown names still fail, and that the source is described as
     * the embedded release in the second case. */
    char dir[] = "/tmp/docket-tzdata-empty-XXXXXX";
    EXPECT(mkdtemp(dir) != NULL);
    EXPECT_EQ_INT(timezone_directory_set(dir), 0);
    int32_t winter_s = offset_of("Europe/Berlin", 1768910400);
    int32_t summer_s = offset_of("Europe/Berlin", 1784548800);
    bool valid = timezone_is_valid("Europe/Berlin", 13) && timezone_is_valid("Asia/Tokyo", 10);
    struct zoneinfo zone;
    int unknown = zoneinfo_load("Mars/Olympus_Mons", &zone);
    char missing[sizeof dir + 16];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    EXPECT_EQ_INT(timezone_directory_set(missing), 0);
    int32_t tokyo_s = offset_of("Asia/Tokyo", 1784548800);
    char source[128];
    int described = timezone_source_describe(source, sizeof source);
    bool present = timezone_directory_present();
    EXPECT_EQ_INT(timezone_directory_set(NULL), 0);
    remove_tree(dir);
    EXPECT_EQ_INT(winter_s, 3600);
    EXPECT_EQ_INT(summer_s, 7200);
    EXPECT(valid);
    EXPECT_EQ_INT(unknown, ERR_INVAL);
    EXPECT_EQ_INT(tokyo_s, 9 * 3600);
    EXPECT_EQ_INT(described, 0);
    EXPECT(!present);
    char expected[64];
    snprintf(expected, sizeof expected, "embedded tzdata %s", tzdata_version());
    EXPECT_STR(source, expected);
}

TEST(tzdata_host_file_wins) {
    /* Proves a host file is preferred to the embedded copy: a directory
     * whose "Europe/Berlin" holds UTC's bytes makes Berlin's offset 0, while
     * a zone the directory lacks still comes from the embedded data. */
    const uint8_t *utc = NULL;
    size_t utc_length = 0;
    EXPECT_EQ_INT(tzdata_find("UTC", &utc, &utc_length), 0);
    char dir[] = "/tmp/docket-tzdata-host-XXXXXX";
    EXPECT(mkdtemp(dir) != NULL);
    write_bytes(dir, "Europe/Berlin", utc, utc_length);
    EXPECT_EQ_INT(timezone_directory_set(dir), 0);
    int32_t berlin_s = offset_of("Europe/Berlin", 1784548800);
    int32_t paris_s = offset_of("Europe/Paris", 1784548800);
    char source[128];
    int described = timezone_source_describe(source, sizeof source);
    EXPECT_EQ_INT(timezone_directory_set(NULL), 0);
    remove_tree(dir);
    EXPECT_EQ_INT(berlin_s, 0);
    EXPECT_EQ_INT(paris_s, 7200);
    EXPECT_EQ_INT(described, 0);
    EXPECT(strncmp(source, "system zoneinfo at /tmp/docket-tzdata-host-", 43) == 0);
}

TEST(tzdata_tzdir_variable) {
    /* Proves the default directory is the TZDIR environment variable when
     * it is set and not empty (and /usr/share/zoneinfo otherwise), and that
     * with TZDIR naming a missing directory zones load from the embedded
     * data. */
    EXPECT_EQ_INT(setenv("TZDIR", "/nonexistent/zoneinfo", 1), 0);
    EXPECT_EQ_INT(timezone_directory_set(NULL), 0);
    bool from_variable = strcmp(timezone_directory_get(), "/nonexistent/zoneinfo") == 0;
    int32_t york_s = offset_of("America/New_York", 1768910400);
    EXPECT_EQ_INT(setenv("TZDIR", "", 1), 0);
    EXPECT_EQ_INT(timezone_directory_set(NULL), 0);
    bool empty_ignored = strcmp(timezone_directory_get(), TIMEZONE_DIRECTORY) == 0;
    EXPECT_EQ_INT(unsetenv("TZDIR"), 0);
    EXPECT_EQ_INT(timezone_directory_set(NULL), 0);
    EXPECT(from_variable);
    EXPECT(empty_ignored);
    EXPECT_STR(timezone_directory_get(), TIMEZONE_DIRECTORY);
    EXPECT_EQ_INT(york_s, -5 * 3600);
}
