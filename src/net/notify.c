/*
 * notify.c - sd_notify(3) in thirty lines: a datagram to $NOTIFY_SOCKET, which
 * is a filesystem path or, when it starts with '@', an abstract socket name.
 */
#include "notify.h"

#include "../base/err.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int notify_send(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0') return 0;
    size_t path_length = strlen(path);
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    if ((path[0] != '/' && path[0] != '@') || path_length >= sizeof address.sun_path) {
        return ERR_CONFIG;
    }
    memcpy(address.sun_path, path, path_length);
    if (path[0] == '@') address.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return err_from_errno(errno);
    socklen_t address_length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_length);
    ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&address,
                          address_length);
    int saved = errno;
    close(fd);
    return sent < 0 ? err_from_errno(saved) : 0;
}
