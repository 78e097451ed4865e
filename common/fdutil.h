/*
 * fdutil.h - file-descriptor helpers: CLOEXEC/NONBLOCK flags, listening and connecting sockets
 * (TCP "host:port" and Unix paths), counting open fds. Every fd returned is born
 * CLOEXEC|NONBLOCK unless the prototype says otherwise.
 */
#ifndef CSMCP_FDUTIL_H
#define CSMCP_FDUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

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

#define FD_PASS_MAX 253 /* SCM_MAX_FD: most fds one Unix-socket message may carry */

/*
 * One sendmsg(MSG_DONTWAIT | MSG_NOSIGNAL, retried on EINTR) of buf with n fds (1..FD_PASS_MAX)
 * attached as SCM_RIGHTS. The caller keeps its fds (the receiver gets duplicates). Returns what
 * sendmsg returns (errno set on -1: EAGAIN/ETOOMANYREFS mean "try later").
 */
ssize_t fd_send_fds(int sock, const void *buf, size_t len, const int *fds, int n);

/*
 * One recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC) of a message into buf and of up to max fds from
 * its SCM_RIGHTS data into fds (*nfds of them, all CLOEXEC, owned by the caller; fds beyond max
 * are closed). *trunc is set when the kernel cut the control data (the receiver's fd limit):
 * those fds are lost. Returns what recvmsg returns.
 */
ssize_t fd_recv_fds(int sock, void *buf, size_t cap, int *fds, int max, int *nfds, bool *trunc);

#endif
