/*
 * fault_io.c - see fault_io.h.
 */
#include "fault_io.h"

#include "../../../src/base/check.h"
#include "../../../src/base/err.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fault_find(struct fault_io *fault, const char *path, int create) {
    int free_slot = -1;
    for (int index = 0; index < FAULT_IO_FILES; index++) {
        if (strcmp(fault->files[index].path, path) == 0)
            return index;
        if (free_slot < 0 && fault->files[index].path[0] == '\0')
            free_slot = index;
    }
    if (!create || free_slot < 0)
        return -1;
    snprintf(fault->files[free_slot].path, sizeof fault->files[free_slot].path, "%s", path);
    return free_slot;
}

/* Counts a mutating call toward death; returns 1 if the layer is dead. */
static int fault_dying(struct fault_io *fault) {
    if (fault->dead)
        return 1;
    if (fault->die_countdown < 0)
        return 0;
    if (fault->die_countdown == 0) {
        fault->dead = 1;
        return 1;
    }
    fault->die_countdown--;
    return 0;
}

static int fault_open(struct evlog_io *io, const char *path, int flags) {
    struct fault_io *fault = (struct fault_io *)io;
    fault->opens++;
    if ((flags & EVLOG_IO_CREATE) && fault_dying(fault))
        return ERR_IO;
    int existed = access(path, F_OK) == 0;
    int fd = fault->inner->open(fault->inner, path, flags);
    if (fd < 0 || fd >= FAULT_IO_FDS)
        return fd;
    int known = fault_find(fault, path, 0);
    int index = fault_find(fault, path, 1);
    CHECK(index >= 0);
    if (known < 0 && existed && !(flags & EVLOG_IO_TRUNCATE)) {
        int64_t bytes = 0;
        fault->inner->size(fault->inner, fd, &bytes);
        fault->files[index].synced_bytes = bytes; /* was there before we watched: durable */
        fault->files[index].entry_durable = 1;
    } else if (known < 0) {
        fault->files[index].synced_bytes = 0;
        fault->files[index].entry_durable = existed;
    }
    if (flags & EVLOG_IO_TRUNCATE)
        fault->files[index].synced_bytes = 0;
    fault->fd_file[fd] = index;
    return fd;
}

static int fault_close(struct evlog_io *io, int fd) {
    struct fault_io *fault = (struct fault_io *)io;
    if (fd < FAULT_IO_FDS)
        fault->fd_file[fd] = -1;
    return fault->inner->close(fault->inner, fd);
}

static int64_t fault_pread(struct evlog_io *io, int fd, void *data, size_t length,
                           int64_t position) {
    struct fault_io *fault = (struct fault_io *)io;
    return fault->inner->pread(fault->inner, fd, data, length, position);
}

static int fault_pwrite(struct evlog_io *io, int fd, const void *data, size_t length,
                        int64_t position) {
    struct fault_io *fault = (struct fault_io *)io;
    fault->writes++;
    int was_dead = fault->dead;
    if (fault_dying(fault)) {
        /* The moment of death: half the data reaches the file. */
        if (!was_dead && length >= 2)
            fault->inner->pwrite(fault->inner, fd, data, length / 2, position);
        return ERR_IO;
    }
    if (fault->write_countdown == 0) {
        if (!fault->write_sticky)
            fault->write_countdown = -1;
        if (length >= 2)
            fault->inner->pwrite(fault->inner, fd, data, length / 3, position);
        return fault->write_error;
    }
    if (fault->write_countdown > 0)
        fault->write_countdown--;
    return fault->inner->pwrite(fault->inner, fd, data, length, position);
}

static int fault_sync(struct evlog_io *io, int fd) {
    struct fault_io *fault = (struct fault_io *)io;
    fault->syncs++;
    if (fault_dying(fault))
        return ERR_IO;
    if (fault->sync_countdown == 0) {
        if (!fault->sync_sticky)
            fault->sync_countdown = -1;
        return fault->sync_error;
    }
    if (fault->sync_countdown > 0)
        fault->sync_countdown--;
    int rc = fault->inner->sync(fault->inner, fd);
    if (rc == 0 && fd < FAULT_IO_FDS && fault->fd_file[fd] >= 0) {
        int64_t bytes = 0;
        fault->inner->size(fault->inner, fd, &bytes);
        fault->files[fault->fd_file[fd]].synced_bytes = bytes;
    }
    return rc;
}

static int fault_sync_directory(struct evlog_io *io, const char *path) {
    struct fault_io *fault = (struct fault_io *)io;
    if (fault_dying(fault))
        return ERR_IO;
    int rc = fault->inner->sync_directory(fault->inner, path);
    if (rc != 0)
        return rc;
    size_t length = strlen(path);
    for (int index = 0; index < FAULT_IO_FILES; index++) {
        const char *file = fault->files[index].path;
        if (strncmp(file, path, length) == 0 && file[length] == '/' &&
            strchr(file + length + 1, '/') == NULL) {
            fault->files[index].entry_durable = 1;
        }
    }
    return 0;
}

static int fault_truncate(struct evlog_io *io, int fd, int64_t length) {
    struct fault_io *fault = (struct fault_io *)io;
    if (fault_dying(fault))
        return ERR_IO;
    int rc = fault->inner->truncate(fault->inner, fd, length);
    if (rc == 0 && fd < FAULT_IO_FDS && fault->fd_file[fd] >= 0) {
        struct fault_file *file = &fault->files[fault->fd_file[fd]];
        if (file->synced_bytes > length)
            file->synced_bytes = length;
    }
    return rc;
}

static int fault_size(struct evlog_io *io, int fd, int64_t *bytes_out) {
    struct fault_io *fault = (struct fault_io *)io;
    return fault->inner->size(fault->inner, fd, bytes_out);
}

static int fault_rename(struct evlog_io *io, const char *from, const char *to) {
    struct fault_io *fault = (struct fault_io *)io;
    if (fault_dying(fault))
        return ERR_IO;
    int rc = fault->inner->rename(fault->inner, from, to);
    if (rc != 0)
        return rc;
    int source = fault_find(fault, from, 0);
    int target = fault_find(fault, to, 0);
    if (target >= 0)
        fault->files[target].path[0] = '\0';
    if (source >= 0) {
        snprintf(fault->files[source].path, sizeof fault->files[source].path, "%s", to);
        fault->files[source].entry_durable = 0;
    }
    return 0;
}

static int fault_unlink(struct evlog_io *io, const char *path) {
    struct fault_io *fault = (struct fault_io *)io;
    if (fault_dying(fault))
        return ERR_IO;
    int index = fault_find(fault, path, 0);
    if (index >= 0)
        fault->files[index].path[0] = '\0';
    return fault->inner->unlink(fault->inner, path);
}

static int fault_make_directory(struct evlog_io *io, const char *path) {
    struct fault_io *fault = (struct fault_io *)io;
    if (fault_dying(fault))
        return ERR_IO;
    return fault->inner->make_directory(fault->inner, path);
}

static int fault_list(struct evlog_io *io, const char *path,
                      int (*visit)(void *arg, const char *name), void *arg) {
    struct fault_io *fault = (struct fault_io *)io;
    return fault->inner->list(fault->inner, path, visit, arg);
}

static int fault_lock(struct evlog_io *io, const char *path) {
    struct fault_io *fault = (struct fault_io *)io;
    return fault->inner->lock(fault->inner, path);
}

static void fault_unlock(struct evlog_io *io, int handle) {
    struct fault_io *fault = (struct fault_io *)io;
    fault->inner->unlock(fault->inner, handle);
}

void fault_io_init(struct fault_io *fault) {
    memset(fault, 0, sizeof *fault);
    fault->base = (struct evlog_io){
        .open = fault_open,
        .close = fault_close,
        .pread = fault_pread,
        .pwrite = fault_pwrite,
        .sync = fault_sync,
        .sync_directory = fault_sync_directory,
        .truncate = fault_truncate,
        .size = fault_size,
        .rename = fault_rename,
        .unlink = fault_unlink,
        .make_directory = fault_make_directory,
        .list = fault_list,
        .lock = fault_lock,
        .unlock = fault_unlock,
    };
    fault->inner = evlog_io_posix();
    fault->write_countdown = -1;
    fault->sync_countdown = -1;
    fault->die_countdown = -1;
    for (int index = 0; index < FAULT_IO_FDS; index++)
        fault->fd_file[index] = -1;
}

void fault_io_crash(struct fault_io *fault) {
    for (int index = 0; index < FAULT_IO_FILES; index++) {
        struct fault_file *file = &fault->files[index];
        if (file->path[0] == '\0')
            continue;
        if (!file->entry_durable) {
            unlink(file->path);
        } else {
            CHECK(truncate(file->path, (off_t)file->synced_bytes) == 0);
        }
        file->path[0] = '\0';
    }
    fault->dead = 0;
    fault->die_countdown = -1;
}
