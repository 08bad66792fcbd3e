/*
 * io.c - the POSIX implementation of the event log's I/O seam. Each function
 * retries EINTR and maps errno into the one error table.
 */
#include "io.h"

#include "../base/check.h"
#include "../base/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int io_posix_open(struct evlog_io *io, const char *path, int flags) {
    (void)io;
    CHECK(path != NULL);
    int posix_flags = O_CLOEXEC | ((flags & EVLOG_IO_WRITE) ? O_RDWR : O_RDONLY);
    if (flags & EVLOG_IO_CREATE)
        posix_flags |= O_CREAT;
    if (flags & EVLOG_IO_TRUNCATE)
        posix_flags |= O_TRUNC;
    int fd;
    do {
        fd = open(path, posix_flags, 0600);
    } while (fd < 0 && errno == EINTR);
    return fd >= 0 ? fd : err_from_errno(errno);
}

static int io_posix_close(struct evlog_io *io, int fd) {
    (void)io;
    CHECK(fd >= 0);
    return close(fd) == 0 ? 0 : err_from_errno(errno);
}

static int64_t io_posix_pread(struct evlog_io *io, int fd, void *data, size_t length,
                              int64_t position) {
    (void)io;
    CHECK(fd >= 0 && position >= 0);
    ssize_t done;
    do {
        done = pread(fd, data, length, (off_t)position);
    } while (done < 0 && errno == EINTR);
    return done >= 0 ? (int64_t)done : err_from_errno(errno);
}

static int io_posix_pwrite(struct evlog_io *io, int fd, const void *data, size_t length,
                           int64_t position) {
    (void)io;
    CHECK(fd >= 0 && position >= 0);
    const char *cursor = data;
    int attempts = 0;
    while (length > 0) {
        ssize_t done = pwrite(fd, cursor, length, (off_t)position);
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0)
            return err_from_errno(errno);
        if (done == 0 && ++attempts > 16)
            return ERR_IO; /* no progress: give up, bounded */
        cursor += done;
        length -= (size_t)done;
        position += done;
    }
    return 0;
}

static int io_posix_sync(struct evlog_io *io, int fd) {
    (void)io;
    CHECK(fd >= 0);
    int rc;
    do {
        rc = fdatasync(fd);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : err_from_errno(errno);
}

static int io_posix_sync_directory(struct evlog_io *io, const char *path) {
    (void)io;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return err_from_errno(errno);
    int rc;
    do {
        rc = fsync(fd);
    } while (rc != 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    return rc == 0 ? 0 : err_from_errno(saved);
}

static int io_posix_truncate(struct evlog_io *io, int fd, int64_t length) {
    (void)io;
    CHECK(fd >= 0 && length >= 0);
    int rc;
    do {
        rc = ftruncate(fd, (off_t)length);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : err_from_errno(errno);
}

static int io_posix_size(struct evlog_io *io, int fd, int64_t *bytes_out) {
    (void)io;
    struct stat info;
    if (fstat(fd, &info) != 0)
        return err_from_errno(errno);
    *bytes_out = (int64_t)info.st_size;
    return 0;
}

static int io_posix_rename(struct evlog_io *io, const char *from, const char *to) {
    (void)io;
    return rename(from, to) == 0 ? 0 : err_from_errno(errno);
}

static int io_posix_unlink(struct evlog_io *io, const char *path) {
    (void)io;
    return unlink(path) == 0 ? 0 : err_from_errno(errno);
}

static int io_posix_make_directory(struct evlog_io *io, const char *path) {
    (void)io;
    return mkdir(path, 0700) == 0 ? 0 : err_from_errno(errno);
}

static int io_posix_list(struct evlog_io *io, const char *path,
                         int (*visit)(void *arg, const char *name), void *arg) {
    (void)io;
    DIR *dir = opendir(path);
    if (dir == NULL)
        return err_from_errno(errno);
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.' &&
            (entry->d_name[1] == '\0' || (entry->d_name[1] == '.' && entry->d_name[2] == '\0'))) {
            continue;
        }
        rc = visit(arg, entry->d_name);
    }
    closedir(dir);
    return rc;
}

static int io_posix_lock(struct evlog_io *io, const char *path) {
    (void)io;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_from_errno(errno);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int saved = errno;
        close(fd);
        return saved == EWOULDBLOCK ? ERR_BUSY : err_from_errno(saved);
    }
    return fd;
}

static void io_posix_unlock(struct evlog_io *io, int handle) {
    (void)io;
    CHECK(handle >= 0);
    close(handle);
}

static struct evlog_io io_posix_instance = {
    .open = io_posix_open,
    .close = io_posix_close,
    .pread = io_posix_pread,
    .pwrite = io_posix_pwrite,
    .sync = io_posix_sync,
    .sync_directory = io_posix_sync_directory,
    .truncate = io_posix_truncate,
    .size = io_posix_size,
    .rename = io_posix_rename,
    .unlink = io_posix_unlink,
    .make_directory = io_posix_make_directory,
    .list = io_posix_list,
    .lock = io_posix_lock,
    .unlock = io_posix_unlock,
};

struct evlog_io *evlog_io_posix(void) {
    return &io_posix_instance;
}
