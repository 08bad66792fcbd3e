/*
 * err.h - the one table of error codes used across Docket.
 *
 * Every fallible function returns 0 on success or a negative code from this
 * table (the libuv convention). Codes are stable within a build; err_name()
 * gives the symbolic name for logs and err_str() a sentence for people.
 */
#ifndef DOCKET_BASE_ERR_H
#define DOCKET_BASE_ERR_H

#define ERR_TABLE(X)                                                                 \
    X(ERR_NOMEM, -1, "out of memory")                                                \
    X(ERR_INVAL, -2, "invalid argument")                                             \
    X(ERR_IO, -3, "input/output error")                                              \
    X(ERR_NOSPC, -4, "no space left on device")                                      \
    X(ERR_NOTFOUND, -5, "not found")                                                 \
    X(ERR_EXISTS, -6, "already exists")                                              \
    X(ERR_LIMIT, -7, "a configured limit was exceeded")                              \
    X(ERR_PARSE, -8, "malformed input")                                              \
    X(ERR_CORRUPT, -9, "stored data is corrupt")                                     \
    X(ERR_CLOSED, -10, "already closed")                                             \
    X(ERR_AGAIN, -11, "try again later")                                             \
    X(ERR_CONFIG, -12, "invalid configuration")                                      \
    X(ERR_TLS, -13, "TLS failure")                                                   \
    X(ERR_BUSY, -14, "resource busy")                                                \
    X(ERR_CONFLICT, -15, "version conflict")                                         \
    X(ERR_DENIED, -16, "permission denied")                                          \
    X(ERR_UNSUPPORTED, -17, "not supported")                                         \
    X(ERR_RANGE, -18, "value out of range")                                          \
    X(ERR_TIMEOUT, -19, "timed out")                                                 \
    X(ERR_SYS, -20, "system call failed")

enum err_code {
#define ERR_ENUM(name, value, text) name = value,
    ERR_TABLE(ERR_ENUM)
#undef ERR_ENUM
};

/* Symbolic name of a code ("ERR_NOMEM"), or "ERR_UNKNOWN". */
const char *err_name(int code);

/* Human sentence for a code, or "unknown error". */
const char *err_str(int code);

/* Map a positive errno value to the closest code of this table. */
int err_from_errno(int errno_value);

#endif
