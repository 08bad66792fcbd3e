/* timezone_test.c - proves IANA zone names are accepted from the built-in
 * table (canonical zones and links, case-sensitively), that the table is
 * sorted for bsearch, that the zoneinfo fallback accepts only well-shaped
 * names of TZif files, and that path tricks and non-portable host files are
 * refused. */
#include "../../../src/base/err.h"
#include "../../../src/base/limits.h"
#include "../../../src/tasks/timezone.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool valid(const char *name) {
    return timezone_is_valid(name, strlen(name));
}

TEST(timezone_table_sorted_and_bounded) {
    /* Proves the table is strictly increasing by strcmp (bsearch needs it)
     * and every name fits LIMIT_TIMEZONE_NAME_BYTES and is found. */
    size_t size = timezone_table_size();
    EXPECT(size > 500);
    for (size_t index = 0; index < size; index++) {
        const char *name = timezone_table_name(index);
        EXPECT(strlen(name) <= LIMIT_TIMEZONE_NAME_BYTES);
        if (index > 0) EXPECT(strcmp(timezone_table_name(index - 1), name) < 0);
        EXPECT(timezone_is_known(name, strlen(name)));
    }
}

TEST(timezone_accepts_zones_and_links) {
    /* Proves canonical zones and the common links are valid. */
    const char *names[] = {"UTC", "Etc/UTC", "Etc/GMT+5", "GMT", "US/Eastern", "Europe/Berlin",
                           "America/Argentina/ComodRivadavia", "Asia/Kolkata", "Asia/Calcutta",
                           "America/Port-au-Prince", "Pacific/Chatham", "EST5EDT"};
    for (size_t index = 0; index < sizeof names / sizeof names[0]; index++) {
        EXPECT(valid(names[index]));
        EXPECT(timezone_is_known(names[index], strlen(names[index])));
    }
    /* Only `length` bytes count. */
    EXPECT(timezone_is_valid("UTC+garbage", 3));
}

TEST(timezone_rejects_others) {
    /* Proves unknown names, wrong case, path tricks, bad characters,
     * directories and over-long names are refused. */
    const char *names[] = {"", "Mars/Olympus_Mons", "utc", "europe/berlin", "Europe",
                           "Europe/", "/etc/passwd", "../../etc/passwd", "Europe/../UTC",
                           "Europe/Berlin ", " UTC", "Europe\\Berlin", "UTC\n", "zone.tab",
                           "tzdata.zi", "localtime", "posixrules", "posix/Europe/Berlin",
                           "right/UTC", "Etc//UTC", "iso3166.tab"};
    for (size_t index = 0; index < sizeof names / sizeof names[0]; index++) {
        if (valid(names[index])) fprintf(stderr, "  accepted \"%s\"\n", names[index]);
        EXPECT(!valid(names[index]));
    }
    EXPECT(!timezone_is_valid("UTC\0x", 5));
    char long_name[LIMIT_TIMEZONE_NAME_BYTES + 2];
    memset(long_name, 'A', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    EXPECT(!valid(long_name));
    EXPECT(!timezone_is_valid(NULL, 0));
}

/* Writes `content` to dir/name, creating one level of subdirectory. */
static void write_file(const char *dir, const char *name, const char *content) {
    char path[512];
    const char *slash = strchr(name, '/');
    if (slash != NULL) {
        snprintf(path, sizeof path, "%s/%.*s", dir, (int)(slash - name), name);
        mkdir(path, 0700);
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen(path, "wb");
    if (file == NULL) abort();
    fputs(content, file);
    fclose(file);
}

TEST(timezone_file_fallback) {
    /* Proves a name missing from the table is accepted when the zone
     * directory holds a TZif file of that name, and refused for a file
     * without the magic, a FIFO (without blocking), a missing file, a
     * refused host name and a directory; the real directory still has
     * the table's zones as TZif files. */
    char dir[] = "/tmp/docket-zoneinfo-XXXXXX";
    EXPECT(mkdtemp(dir) != NULL);
    write_file(dir, "Mars/Olympus_Mons", "TZif2 and the rest");
    write_file(dir, "Moon", "not a zone");
    write_file(dir, "localtime", "TZif");
    write_file(dir, "Short", "TZi");
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s/Fifo", dir);
    EXPECT_EQ_INT(mkfifo(fifo, 0600), 0);
    EXPECT_EQ_INT(timezone_directory_set(dir), 0);
    bool olympus = valid("Mars/Olympus_Mons");
    bool others = valid("Moon") || valid("localtime") || valid("Short") || valid("Fifo") ||
                  valid("Mars") || valid("Mars/Phobos");
    bool table = valid("Europe/Berlin");
    EXPECT_EQ_INT(timezone_directory_set(NULL), 0);
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    EXPECT_EQ_INT(system(command), 0);
    EXPECT(olympus && !others && table);
    EXPECT(!valid("Mars/Olympus_Mons"));
    EXPECT(!timezone_is_known("Mars/Olympus_Mons", 17));
    char long_dir[TIMEZONE_DIRECTORY_BYTES + 2];
    memset(long_dir, 'd', sizeof long_dir - 1);
    long_dir[sizeof long_dir - 1] = '\0';
    EXPECT_EQ_INT(timezone_directory_set(long_dir), ERR_INVAL);
    EXPECT_EQ_INT(timezone_directory_set(""), ERR_INVAL);
    if (access(TIMEZONE_DIRECTORY "/Europe/Berlin", R_OK) == 0) {
        /* The host's files agree with the table where they exist. */
        EXPECT(valid("Europe/Berlin"));
    }
}
