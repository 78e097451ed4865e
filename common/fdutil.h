/*
 * fdutil.h - file-descriptor helpers: CLOEXEC/NONBLOCK flags, listening and connecting sockets
 * (TCP "host:port" and Unix paths), counting open fds. Every fd returned is born
 * CLOEXEC|NONBLOCK unless the prototype says otherwise.
 */
#ifndef CSMCP_FDUTIL_H
#define CSMCP_FDUTIL_H

#include <stdbool.h>
#include <stddef.h>

int fd_set_cloexec(int fd, bool on);
int fd_set_nonblock(int fd, bool on);

/*
 * Splits "host:port", "[v6]:port" or ":port" (host empty = any) into host and port buffers.
 * Returns 0 or -1.
 */
int fd_split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen);

/*
 * Binds and listens on "host:port" with SO_REUSEADDR. Returns the fd (caller owns), or -1 with
 * a reason in err ("bind(127.0.0.1:8080): Address already in use").
 */
int fd_listen_tcp(const char *hostport, int backlog, char *err, size_t errlen);

/*
 * Binds a Unix stream socket at path with the given permission bits. A stale socket file (no
 * one answers on it) is removed first; a live one is an error. Returns the fd or -1 + err.
 */
int fd_listen_unix(const char *path, int backlog, unsigned mode, char *err, size_t errlen);

/* Connects to a Unix stream socket; the fd is CLOEXEC and blocking. Returns fd or -1 (errno). */
int fd_connect_unix(const char *path);

/* Number of open fds of this process (/proc/self/fd), or -1. */
int fd_count_open(void);

#endif
