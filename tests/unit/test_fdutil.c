/* test_fdutil.c - host:port parsing, listeners born CLOEXEC|NONBLOCK, the control socket's
 * stale-file and live-owner handling, open-fd counting. */
#include <check.h>

#include "unit.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fdutil.h"

START_TEST(split_hostport)
{
    char h[64], p[16];
    ck_assert_int_eq(fd_split_hostport("127.0.0.1:8080", h, sizeof(h), p, sizeof(p)), 0);
    ck_assert_str_eq(h, "127.0.0.1");
    ck_assert_str_eq(p, "8080");
    ck_assert_int_eq(fd_split_hostport("[::1]:443", h, sizeof(h), p, sizeof(p)), 0);
    ck_assert_str_eq(h, "::1");
    ck_assert_str_eq(p, "443");
    ck_assert_int_eq(fd_split_hostport(":9090", h, sizeof(h), p, sizeof(p)), 0);
    ck_assert_str_eq(h, "");
    ck_assert_int_eq(fd_split_hostport("localhost", h, sizeof(h), p, sizeof(p)), -1);
    ck_assert_int_eq(fd_split_hostport("[::1]443", h, sizeof(h), p, sizeof(p)), -1);
    ck_assert_int_eq(fd_split_hostport("host:", h, sizeof(h), p, sizeof(p)), -1);
    ck_assert_int_eq(fd_split_hostport("averyveryverylonghostname:1", h, 8, p, sizeof(p)), -1);
}
END_TEST

START_TEST(listen_tcp_flags_and_errors)
{
    char err[256];
    int fd = fd_listen_tcp("127.0.0.1:0", 16, err, sizeof(err)), fd2;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char addr[64];

    ck_assert_int_ge(fd, 0);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(((struct sockaddr_in *)&ss)->sin_port));
    fd2 = fd_listen_tcp(addr, 16, err, sizeof(err));
    ck_assert_int_eq(fd2, -1);
    ck_assert_ptr_nonnull(strstr(err, "Address already in use"));
    ck_assert_int_eq(fd_listen_tcp("nonsense", 16, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "host:port"));
    ck_assert_int_eq(fd_set_cloexec(fd, false), 0);
    ck_assert(!(fcntl(fd, F_GETFD) & FD_CLOEXEC));
    close(fd);
}
END_TEST

START_TEST(unix_socket_stale_and_live)
{
    char dir[] = "/tmp/csmcp-fdutil-XXXXXX", path[128], err[256];
    int fd, fd2, c, n0;
    struct stat st;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/ctl.sock", dir);
    n0 = fd_count_open();
    fd = fd_listen_unix(path, 8, 0660, err, sizeof(err));
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fd_count_open(), n0 + 1);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0660);
    /* someone serves it: refused */
    fd2 = fd_listen_unix(path, 8, 0660, err, sizeof(err));
    ck_assert_int_eq(fd2, -1);
    ck_assert_ptr_nonnull(strstr(err, "another process"));
    c = fd_connect_unix(path);
    ck_assert_int_ge(c, 0);
    close(c);
    /* owner gone, file left behind: taken over */
    close(fd);
    ck_assert_int_eq(stat(path, &st), 0);
    fd = fd_listen_unix(path, 8, 0600, err, sizeof(err));
    ck_assert_int_ge(fd, 0);
    close(fd);
    unlink(path);
    rmdir(dir);
    ck_assert_int_eq(fd_connect_unix("/nonexistent/x.sock"), -1);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("fdutil");
    TCase *tc = tcase_create("fdutil");

    tcase_add_test(tc, split_hostport);
    tcase_add_test(tc, listen_tcp_flags_and_errors);
    tcase_add_test(tc, unix_socket_stale_and_live);
    suite_add_tcase(s, tc);
    return s;
}
