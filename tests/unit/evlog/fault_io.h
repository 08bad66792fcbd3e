/*
 * fault_io.h - a fault-injecting layer over the POSIX I/O seam, after
 * SQLite's test6.c: it fails chosen writes or fsyncs with ENOSPC or EIO, can
 * "die" at the N-th mutating call (a partial write, then every call fails),
 * and simulates power loss: it remembers how much of each file was synced
 * and whether its directory entry was, and fault_io_crash() truncates every
 * file to its synced length and deletes files whose creation was never made
 * durable by a directory fsync. Single-threaded (use the manual executor).
 */
#ifndef DOCKET_TEST_FAULT_IO_H
#define DOCKET_TEST_FAULT_IO_H

#include "../../../src/evlog/io.h"

#define FAULT_IO_FILES 256
#define FAULT_IO_FDS 1024

/* What the layer knows about one path. */
struct fault_file {
    char path[512];       /* full path; empty = unused slot */
    int64_t synced_bytes; /* length made durable by the last sync */
    int entry_durable;    /* its directory entry survived a directory fsync */
};

struct fault_io {
    struct evlog_io base;                    /* must stay first */
    struct evlog_io *inner;                  /* the real operations */
    long write_countdown;                    /* pwrites left before failing; <0 = never */
    int write_error;                         /* error for failing pwrites */
    int write_sticky;                        /* keep failing pwrites after the first */
    long sync_countdown;                     /* file syncs left before failing; <0 = never */
    int sync_error;                          /* error for failing syncs */
    int sync_sticky;                         /* keep failing syncs after the first */
    long die_countdown;                      /* mutating calls left before dying; <0 = never */
    int dead;                                /* every call now fails with ERR_IO */
    long writes;                             /* pwrite calls seen */
    long syncs;                              /* sync calls seen */
    long opens;                              /* open calls seen */
    struct fault_file files[FAULT_IO_FILES]; /* tracked paths */
    int fd_file[FAULT_IO_FDS];               /* fd -> files[] index, -1 unknown */
};

void fault_io_init(struct fault_io *fault);

/* Power loss: drops unsynced data and unsynced directory entries. */
void fault_io_crash(struct fault_io *fault);

#endif
