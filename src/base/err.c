/*
 * err.c - names and sentences for the codes of err.h, and the errno mapping
 * that keeps operating-system failures inside the one table.
 */
#include "err.h"

#include <errno.h>

const char *err_name(int code) {
    switch (code) {
#define ERR_NAME(name, value, text)                                                      \
    case value:                                                                          \
        return #name;
        ERR_TABLE(ERR_NAME)
#undef ERR_NAME
    case 0:
        return "OK";
    default:
        return "ERR_UNKNOWN";
    }
}

const char *err_str(int code) {
    switch (code) {
#define ERR_TEXT(name, value, text)                                                      \
    case value:                                                                          \
        return text;
        ERR_TABLE(ERR_TEXT)
#undef ERR_TEXT
    case 0:
        return "success";
    default:
        return "unknown error";
    }
}

int err_from_errno(int errno_value) {
    switch (errno_value) {
    case 0:
        return 0;
    case ENOMEM:
        return ERR_NOMEM;
    case ENOSPC:
    case EDQUOT:
        return ERR_NOSPC;
    case ENOENT:
        return ERR_NOTFOUND;
    case EEXIST:
        return ERR_EXISTS;
    case EINVAL:
        return ERR_INVAL;
    case EACCES:
    case EPERM:
    case EROFS:
        return ERR_DENIED;
    case EAGAIN:
        return ERR_AGAIN;
    case EBUSY:
        return ERR_BUSY;
    case EIO:
        return ERR_IO;
    default:
        return ERR_SYS;
    }
}
