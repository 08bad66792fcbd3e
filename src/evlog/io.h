/*
 * io.h - the event log's seam over the operating system (SQLite's VFS idea).
 *
 * Every file operation of the event log goes through a `struct evlog_io`, a
 * table of functions. evlog_io_posix() is the real one; tests substitute a
 * layer that injects ENOSPC and EIO at chosen calls and simulates power loss
 * by dropping whatever was not fsynced (tests/unit/evlog/fault_io.c), and the
 * fuzzer an in-memory one. Results follow err.h: 0 (or a count) on success,
 * a negative ERR_* code on failure (ENOSPC -> ERR_NOSPC, EIO -> ERR_IO).
 *
 * The commit job calls these from a worker thread while the loop thread may
 * call pread: implementations must allow that (POSIX does).
 */
#ifndef DOCKET_EVLOG_IO_H
#define DOCKET_EVLOG_IO_H

#include <stddef.h>
#include <stdint.h>

/* Flags for open: a subset of O_* spelled out so fakes need not know fcntl.h. */
enum evlog_io_open_flags {
    EVLOG_IO_READ = 0,     /* read only */
    EVLOG_IO_WRITE = 1,    /* read and write */
    EVLOG_IO_CREATE = 2,   /* create when missing (mode 0600) */
    EVLOG_IO_TRUNCATE = 4, /* empty the file on open */
};

struct evlog_io {
    /* Opens `path`; returns a descriptor >= 0 or an error. */
    int (*open)(struct evlog_io *io, const char *path, int flags);
    int (*close)(struct evlog_io *io, int fd);
    /* Reads up to `length` bytes at `position`; returns bytes read (0 at end). */
    int64_t (*pread)(struct evlog_io *io, int fd, void *data, size_t length, int64_t position);
    /* Writes all `length` bytes at `position` (looping over short writes); 0 or error. */
    int (*pwrite)(struct evlog_io *io, int fd, const void *data, size_t length, int64_t position);
    /* Makes the file's data durable (fdatasync). */
    int (*sync)(struct evlog_io *io, int fd);
    /* Makes a directory's entries durable (open + fsync of the directory). */
    int (*sync_directory)(struct evlog_io *io, const char *path);
    int (*truncate)(struct evlog_io *io, int fd, int64_t length);
    int (*size)(struct evlog_io *io, int fd, int64_t *bytes_out);
    int (*rename)(struct evlog_io *io, const char *from, const char *to);
    int (*unlink)(struct evlog_io *io, const char *path);
    /* Creates a directory (0700); ERR_EXISTS if it is there already. */
    int (*make_directory)(struct evlog_io *io, const char *path);
    /* Calls visit(arg, name) for each entry of a directory except "." and "..";
     * a non-zero return from visit stops the walk and is returned. */
    int (*list)(struct evlog_io *io, const char *path, int (*visit)(void *arg, const char *name),
                void *arg);
    /* Takes an exclusive advisory lock on `path` (created if missing) held
     * until the process exits or unlock; ERR_BUSY if another process has it.
     * Returns a handle >= 0. */
    int (*lock)(struct evlog_io *io, const char *path);
    void (*unlock)(struct evlog_io *io, int handle);
};

/* The real operating system. */
struct evlog_io *evlog_io_posix(void);

#endif
