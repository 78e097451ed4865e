/*
 * spool.c - the local audit spool: group-committed write-ahead segments written by a dedicated
 * thread, and the reader for the segments of writers that are gone (spool.h).
 *
 * Invariants: frames are appended in record order and a record number is reported durable only
 * after the fdatasync that covered it returned 0; after the first write or sync error the spool
 * stops (nothing more is reported durable: the caller falls back to PostgreSQL commits) and the
 * files stay for the leftover shipper. A segment is deleted only once its last record is
 * shipped. Every segment of a living writer is flocked by it.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "metrics.h"

#define SPOOL_GROUP_MAX_EXPECT 256

static const char MAGIC[16] = "CSMCPAUDITSPOOL1";

struct seg {
    int fd;
    long long last_seq; /* highest record in it (closed segments) */
    char path[PATH_MAX];
};

static struct {
    bool active;
    char dir[3840];
    char writer[64];
    char dbid[33];
    spool_durable_fn durable_fn;
    pthread_t th;
    bool th_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* shared, under mu */
    char *pend;
    size_t plen, pcap;
    size_t pn;                /* records in pend */
    size_t expect;            /* the previous group's size: what this group may grow to */
    struct timespec first_at; /* CLOCK_MONOTONIC: the first record of the group arrived */
    long long pend_last;
    long long durable;
    long long shipped;
    bool quit, failed, fail_reported;
    int fail_errno;
    uint64_t bytes;
    double sync_s; /* duration of the last write + fdatasync */
    /* thread-owned */
    struct seg *segs; /* [0..nsegs-1], the last one is being written */
    size_t nsegs;
    long long segno;
    off_t cur_size;  /* end of the frames in the current segment */
    off_t file_size; /* zero-filled up to here (extend-ahead) */
    /* loop-owned */
    size_t last_group; /* records in the last group the writer took (copied in ev_cb) */
    int evfd;
    struct event *ev;
} SP = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .evfd = -1};

/* ---- CRC-32C ------------------------------------------------------------------------------ */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t spool_crc32c(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = 0xFFFFFFFFu;
    pthread_once(&crc_once, crc_init);
    while (len >= 8) {
        uint32_t lo =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        lo ^= c;
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
            crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    return c ^ 0xFFFFFFFFu;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- files ---------------------------------------------------------------------------------- */

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        off += w;
        len -= (size_t)w;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
    return pwrite_all(fd, buf, len, 0);
}

/*
 * Extend-ahead: the segment is zero-filled SPOOL_EXTEND bytes beyond the frames, so that most
 * group commits overwrite blocks that already belong to the file and fdatasync flushes data only
 * (appending changes the file size, which fdatasync must flush too: measured on this machine's
 * ext4, p50 3.9 -> 2.6 ms per sync). A reader stops at a zero length (the end of the frames).
 */
#define SPOOL_EXTEND (1024 * 1024)

static int extend_to(int fd, off_t need)
{
    static const char zeros[64 * 1024];
    while (SP.file_size < need) {
        size_t n = sizeof zeros;
        if (pwrite_all(fd, zeros, n, SP.file_size) < 0)
            return -1;
        SP.file_size += (off_t)n;
    }
    return 0;
}

static int sync_dir(const char *dir)
{
    int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
        return -1;
    int rc = fsync(d);
    close(d);
    return rc;
}

/* A new segment: created as .tmp, header written and synced, locked, renamed, dir synced. */
static int seg_create(struct seg *s)
{
    char tmp[PATH_MAX + 8];
    unsigned char hdr[SPOOL_HEADER_BYTES];
    SP.segno++;
    snprintf(s->path, sizeof s->path, "%s/audit-%s-%06lld.spool", SP.dir, SP.writer, SP.segno);
    snprintf(tmp, sizeof tmp, "%s.tmp", s->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        goto fail;
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, MAGIC, sizeof MAGIC);
    memcpy(hdr + 16, SP.dbid, strlen(SP.dbid));
    SP.file_size = SPOOL_HEADER_BYTES;
    if (write_all(fd, hdr, sizeof hdr) < 0 ||
        extend_to(fd, SPOOL_HEADER_BYTES + SPOOL_EXTEND) < 0 || fdatasync(fd) < 0)
        goto fail;
    if (rename(tmp, s->path) < 0)
        goto fail;
    if (sync_dir(SP.dir) < 0)
        goto fail;
    s->fd = fd;
    s->last_seq = 0;
    SP.cur_size = SPOOL_HEADER_BYTES;
    return 0;
fail:;
    int e = errno;
    close(fd);
    unlink(tmp);
    errno = e;
    return -1;
}

static uint64_t total_bytes(void)
{
    uint64_t b = 0;
    for (size_t i = 0; i + 1 < SP.nsegs; i++) {
        struct stat st;
        if (fstat(SP.segs[i].fd, &st) == 0)
            b += (uint64_t)st.st_size;
    }
    return b + (uint64_t)SP.file_size;
}

/* Deletes closed segments whose last record is shipped (oldest first). */
static void drop_shipped(long long shipped)
{
    size_t k = 0;
    while (k + 1 < SP.nsegs && SP.segs[k].last_seq <= shipped) {
        unlink(SP.segs[k].path);
        close(SP.segs[k].fd);
        k++;
    }
    if (k > 0) {
        memmove(SP.segs, SP.segs + k, (SP.nsegs - k) * sizeof *SP.segs);
        SP.nsegs -= k;
    }
}

static int rotate(long long last)
{
    struct seg *n = realloc(SP.segs, (SP.nsegs + 1) * sizeof *n);
    if (n == NULL)
        return -1;
    SP.segs = n;
    SP.segs[SP.nsegs - 1].last_seq = last;
    if (seg_create(&SP.segs[SP.nsegs]) < 0)
        return -1;
    SP.nsegs++;
    return 0;
}

static void *writer_main(void *arg)
{
    char *wbuf = NULL;
    size_t wcap = 0;
    (void)arg;
    pthread_mutex_lock(&SP.mu);
    for (;;) {
        while (SP.plen == 0 && !SP.quit) {
            /* idle: closed segments may have become shipped meanwhile */
            long long shipped = SP.shipped;
            if (SP.nsegs > 1 && SP.segs[0].last_seq <= shipped) {
                pthread_mutex_unlock(&SP.mu);
                drop_shipped(shipped);
                pthread_mutex_lock(&SP.mu);
                SP.bytes = total_bytes();
                continue;
            }
            pthread_cond_wait(&SP.cv, &SP.mu);
        }
        if (SP.plen == 0 && SP.quit)
            break;
        /* Group commit: while fewer records are pending than the previous group held (the
         * callers that are likely to come back), wait for them, at most SPOOL_GROUP_WAIT_US
         * after the group's first record arrived. One caller at a time (groups of 1) never
         * waits; a larger group that does not fill up shrinks the next expectation. Fewer,
         * fuller syncs: each fdatasync costs the worker ~100 us of CPU on a VM
         * (docs/performance.md). */
        if (SP.pn < SP.expect && !SP.quit) {
            struct timespec dl = SP.first_at;
            dl.tv_nsec += SPOOL_GROUP_WAIT_US * 1000L;
            if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec += dl.tv_nsec / 1000000000L;
                dl.tv_nsec %= 1000000000L;
            }
            while (SP.pn < SP.expect && !SP.quit)
                if (pthread_cond_timedwait(&SP.cv, &SP.mu, &dl) == ETIMEDOUT)
                    break;
        }
        /* take what accumulated: the next group */
        char *t = SP.pend;
        size_t tcap = SP.pcap, len = SP.plen;
        SP.pend = wbuf;
        SP.pcap = wcap;
        SP.plen = 0;
        SP.expect = SP.pn < SPOOL_GROUP_MAX_EXPECT ? SP.pn : SPOOL_GROUP_MAX_EXPECT;
        SP.pn = 0;
        wbuf = t;
        wcap = tcap;
        long long last = SP.pend_last, shipped = SP.shipped;
        bool failed = SP.failed;
        pthread_mutex_unlock(&SP.mu);

        int err = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (!failed) {
            struct seg *cur = &SP.segs[SP.nsegs - 1];
            off_t end = SP.cur_size + (off_t)len;
            if ((end + SPOOL_EXTEND / 4 > SP.file_size &&
                 extend_to(cur->fd, end + SPOOL_EXTEND) < 0) ||
                pwrite_all(cur->fd, wbuf, len, SP.cur_size) < 0 || fdatasync(cur->fd) < 0) {
                err = errno ? errno : EIO;
            } else {
                SP.cur_size += (off_t)len;
                cur->last_seq = last;
                if (SP.cur_size >= SPOOL_SEGMENT_BYTES && rotate(last) < 0)
                    err = errno ? errno : EIO;
            }
            drop_shipped(shipped);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        pthread_mutex_lock(&SP.mu);
        SP.sync_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (err) {
            SP.failed = true;
            SP.fail_errno = err;
        } else if (!failed) {
            SP.durable = last;
        }
        SP.bytes = total_bytes();
        pthread_mutex_unlock(&SP.mu);
        uint64_t one = 1;
        ssize_t w = write(SP.evfd, &one, sizeof one);
        (void)w;
        pthread_mutex_lock(&SP.mu);
    }
    pthread_mutex_unlock(&SP.mu);
    free(wbuf);
    return NULL;
}

static void ev_cb(evutil_socket_t fd, short what, void *arg)
{
    uint64_t v;
    (void)what;
    (void)arg;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&SP.mu);
    long long d = SP.durable;
    bool failed = SP.failed && !SP.fail_reported;
    int e = SP.fail_errno;
    if (failed)
        SP.fail_reported = true;
    uint64_t bytes = SP.bytes;
    double sync_s = SP.sync_s;
    SP.last_group = SP.expect;
    pthread_mutex_unlock(&SP.mu);
    metrics_inc("csmcp_audit_spool_syncs_total", NULL, 1);
    metrics_observe("csmcp_audit_spool_sync_seconds", NULL, sync_s);
    metrics_gauge_set("csmcp_audit_spool_bytes", NULL, (double)bytes);
    if (failed) {
        log_error("audit spool %s: write failed (%s); acknowledging tool calls only once "
                  "PostgreSQL commits their records; the files stay for the leftover shipper",
                  SP.dir, strerror(e));
        metrics_inc("csmcp_audit_spool_errors_total", NULL, 1);
        SP.active = false;
    }
    if (SP.durable_fn)
        SP.durable_fn(d);
}

int spool_open(struct event_base *base, const char *dir, const char *writer, const char *dbid,
               spool_durable_fn durable_fn)
{
    if (dir == NULL || dir[0] == '\0')
        return -1;
    snprintf(SP.dir, sizeof SP.dir, "%s", dir);
    snprintf(SP.writer, sizeof SP.writer, "%s", writer);
    snprintf(SP.dbid, sizeof SP.dbid, "%s", dbid);
    SP.durable_fn = durable_fn;
    static bool cv_monotonic;
    if (!cv_monotonic) {
        /* the group-commit wait uses absolute CLOCK_MONOTONIC deadlines */
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_destroy(&SP.cv);
        pthread_cond_init(&SP.cv, &ca);
        pthread_condattr_destroy(&ca);
        cv_monotonic = true;
    }
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        log_error("audit spool %s: cannot create the directory: %s", dir, strerror(errno));
        return -1;
    }
    SP.segs = calloc(1, sizeof *SP.segs);
    if (SP.segs == NULL)
        return -1;
    if (seg_create(&SP.segs[0]) < 0) {
        log_error("audit spool %s: cannot create a segment: %s", dir, strerror(errno));
        free(SP.segs);
        SP.segs = NULL;
        return -1;
    }
    SP.nsegs = 1;
    SP.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (SP.evfd < 0)
        goto fail;
    SP.ev = event_new(base, SP.evfd, EV_READ | EV_PERSIST, ev_cb, NULL);
    if (SP.ev == NULL || event_add(SP.ev, NULL) < 0)
        goto fail;
    if (pthread_create(&SP.th, NULL, writer_main, NULL) != 0)
        goto fail;
    SP.th_started = true;
    SP.active = true;
    SP.bytes = (uint64_t)SP.cur_size;
    metrics_gauge_set("csmcp_audit_spool_bytes", NULL, (double)SP.bytes);
    metrics_inc("csmcp_audit_spool_errors_total", NULL, 0);
    metrics_inc("csmcp_audit_spool_syncs_total", NULL, 0);
    return 0;
fail:
    log_error("audit spool %s: cannot start the writer: %s", dir, strerror(errno));
    if (SP.ev)
        event_free(SP.ev);
    SP.ev = NULL;
    if (SP.evfd >= 0)
        close(SP.evfd);
    SP.evfd = -1;
    unlink(SP.segs[0].path);
    close(SP.segs[0].fd);
    free(SP.segs);
    SP.segs = NULL;
    SP.nsegs = 0;
    return -1;
}

bool spool_active(void)
{
    return SP.active;
}

size_t spool_last_group(void)
{
    return SP.last_group;
}

void spool_append(const char *rec, size_t len, long long seq)
{
    unsigned char hdr[8];
    struct timespec now;
    if (!SP.th_started)
        return;
    put32(hdr, (uint32_t)len);
    put32(hdr + 4, spool_crc32c(rec, len));
    pthread_mutex_lock(&SP.mu);
    if (SP.plen + len + 8 > SP.pcap) {
        size_t cap = SP.pcap ? SP.pcap : 64 * 1024;
        while (cap < SP.plen + len + 8)
            cap *= 2;
        char *n = realloc(SP.pend, cap);
        if (n == NULL)
            abort();
        SP.pend = n;
        SP.pcap = cap;
    }
    if (SP.plen == 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        SP.first_at = now;
    }
    memcpy(SP.pend + SP.plen, hdr, 8);
    memcpy(SP.pend + SP.plen + 8, rec, len);
    SP.plen += len + 8;
    SP.pn++;
    SP.pend_last = seq;
    /* the writer waits for the group's first record, then (bounded) for the expected ones */
    if (SP.pn == 1 || SP.pn >= SP.expect)
        pthread_cond_signal(&SP.cv);
    pthread_mutex_unlock(&SP.mu);
}

void spool_shipped(long long seq)
{
    if (!SP.th_started)
        return;
    pthread_mutex_lock(&SP.mu);
    if (seq > SP.shipped) {
        SP.shipped = seq;
        if (SP.plen == 0)
            pthread_cond_signal(&SP.cv);
    }
    pthread_mutex_unlock(&SP.mu);
}

long long spool_durable(void)
{
    long long d;
    pthread_mutex_lock(&SP.mu);
    d = SP.durable;
    pthread_mutex_unlock(&SP.mu);
    return d;
}

uint64_t spool_bytes(void)
{
    uint64_t b;
    pthread_mutex_lock(&SP.mu);
    b = SP.bytes;
    pthread_mutex_unlock(&SP.mu);
    return b;
}

bool spool_close(bool all_shipped)
{
    if (!SP.th_started)
        return true;
    pthread_mutex_lock(&SP.mu);
    SP.quit = true;
    pthread_cond_signal(&SP.cv);
    pthread_mutex_unlock(&SP.mu);
    pthread_join(SP.th, NULL);
    SP.th_started = false;
    SP.active = false;
    bool ok = !SP.failed;
    for (size_t i = 0; i < SP.nsegs; i++) {
        if (all_shipped && ok)
            unlink(SP.segs[i].path);
        close(SP.segs[i].fd);
    }
    free(SP.segs);
    SP.segs = NULL;
    SP.nsegs = 0;
    if (SP.ev)
        event_free(SP.ev);
    SP.ev = NULL;
    if (SP.evfd >= 0)
        close(SP.evfd);
    SP.evfd = -1;
    free(SP.pend);
    SP.pend = NULL;
    SP.plen = SP.pcap = 0;
    return ok;
}

/* ---- leftovers ------------------------------------------------------------------------------ */

struct spool_leftover {
    int fd;
    off_t pos, prev_pos;
    char path[PATH_MAX];
};

const char *spool_leftover_path(const struct spool_leftover *l)
{
    return l->path;
}

/* "audit-<writer>-<segno>.spool" -> writer (without the segment) into w. */
static bool parse_name(const char *name, char *w, size_t wlen, long long *segno)
{
    size_t n = strlen(name);
    if (n < 6 + 7 + 6 || strncmp(name, "audit-", 6) != 0 || strcmp(name + n - 6, ".spool") != 0)
        return false;
    const char *dash = NULL;
    for (const char *p = name + n - 7; p > name + 6; p--) {
        if (*p == '-') {
            dash = p;
            break;
        }
    }
    if (dash == NULL || (size_t)(dash - (name + 6)) >= wlen)
        return false;
    memcpy(w, name + 6, (size_t)(dash - (name + 6)));
    w[dash - (name + 6)] = '\0';
    *segno = atoll(dash + 1);
    return *segno > 0;
}

struct spool_leftover *spool_claim_leftover(const char *dir, const char *own_writer,
                                            const char *dbid)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return NULL;
    /* the oldest segment of each writer is its only candidate (segments ship in order) */
    struct cand {
        char writer[64];
        long long segno;
        char name[256];
    } *c = NULL;
    size_t nc = 0, capc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char w[64];
        long long segno;
        if (!parse_name(de->d_name, w, sizeof w, &segno) || strcmp(w, own_writer) == 0 ||
            strlen(de->d_name) >= sizeof c->name)
            continue;
        size_t i;
        for (i = 0; i < nc; i++)
            if (strcmp(c[i].writer, w) == 0)
                break;
        if (i < nc) {
            if (segno < c[i].segno) {
                c[i].segno = segno;
                snprintf(c[i].name, sizeof c[i].name, "%s", de->d_name);
            }
            continue;
        }
        if (nc == capc) {
            size_t cap = capc ? capc * 2 : 8;
            struct cand *n = realloc(c, cap * sizeof *n);
            if (n == NULL)
                break;
            c = n;
            capc = cap;
        }
        snprintf(c[nc].writer, sizeof c[nc].writer, "%s", w);
        c[nc].segno = segno;
        snprintf(c[nc].name, sizeof c[nc].name, "%s", de->d_name);
        nc++;
    }
    closedir(d);
    struct spool_leftover *l = NULL;
    for (size_t i = 0; i < nc && l == NULL; i++) {
        char path[PATH_MAX];
        unsigned char hdr[SPOOL_HEADER_BYTES];
        snprintf(path, sizeof path, "%s/%s", dir, c[i].name);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            close(fd); /* its writer lives, or another process ships it */
            continue;
        }
        struct stat st;
        /* unlinked between readdir and flock (shipped by another process): not ours */
        if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
            close(fd);
            continue;
        }
        ssize_t r = pread(fd, hdr, sizeof hdr, 0);
        if (r == (ssize_t)sizeof hdr && memcmp(hdr, MAGIC, sizeof MAGIC) != 0) {
            log_error("audit spool: %s is not a spool segment (bad magic); left alone", path);
            close(fd);
            continue;
        }
        if (r == (ssize_t)sizeof hdr && strncmp((const char *)hdr + 16, dbid, 32) != 0) {
            close(fd); /* written for another database (database.url): not ours to ship */
            continue;
        }
        l = calloc(1, sizeof *l);
        if (l == NULL) {
            close(fd);
            break;
        }
        l->fd = fd;
        /* a header torn by a crash during creation: no records (the file was never renamed
         * before its header was synced, so this is only a truncated copy) */
        l->pos = r == (ssize_t)sizeof hdr ? SPOOL_HEADER_BYTES : st.st_size;
        l->prev_pos = l->pos;
        snprintf(l->path, sizeof l->path, "%s", path);
    }
    free(c);
    return l;
}

static bool all_zero(int fd, off_t from, off_t to)
{
    char buf[64 * 1024];
    while (from < to) {
        size_t n = (size_t)(to - from < (off_t)sizeof buf ? to - from : (off_t)sizeof buf);
        ssize_t r = pread(fd, buf, n, from);
        if (r <= 0)
            return false;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i])
                return false;
        from += r;
    }
    return true;
}

int spool_leftover_read(struct spool_leftover *l, size_t max, char **out, size_t *n,
                        uint64_t *torn_bytes)
{
    struct stat st;
    *out = NULL;
    *n = 0;
    *torn_bytes = 0;
    l->prev_pos = l->pos;
    if (fstat(l->fd, &st) < 0)
        return -1;
    size_t cap = 64 * 1024, len = 1;
    char *buf = malloc(cap);
    char *rec = NULL;
    size_t reccap = 0;
    if (buf == NULL)
        return -1;
    buf[0] = '[';
    while (*n < max && l->pos < st.st_size) {
        unsigned char h[8];
        off_t left = st.st_size - l->pos;
        if (left < 8 || pread(l->fd, h, 8, l->pos) != 8) {
            *torn_bytes = (uint64_t)left;
            break;
        }
        uint32_t flen = get32(h), crc = get32(h + 4);
        if (flen == 0 && crc == 0) {
            /* the end of the frames: the rest is the zero-filled extension - unless a torn
             * write left something there */
            if (!all_zero(l->fd, l->pos, st.st_size))
                *torn_bytes = (uint64_t)left;
            l->pos = st.st_size;
            break;
        }
        if (flen == 0 || flen > SPOOL_FRAME_MAX || (off_t)flen > left - 8) {
            *torn_bytes = (uint64_t)left;
            break;
        }
        if (flen > reccap) {
            char *nr = realloc(rec, flen);
            if (nr == NULL) {
                free(rec);
                free(buf);
                return -1;
            }
            rec = nr;
            reccap = flen;
        }
        if (pread(l->fd, rec, flen, l->pos + 8) != (ssize_t)flen) {
            free(rec);
            free(buf);
            return -1;
        }
        if (spool_crc32c(rec, flen) != crc) {
            *torn_bytes = (uint64_t)left;
            break;
        }
        if (len + flen + 3 > cap) {
            while (len + flen + 3 > cap)
                cap *= 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(rec);
                free(buf);
                return -1;
            }
            buf = nb;
        }
        if (*n > 0)
            buf[len++] = ',';
        memcpy(buf + len, rec, flen);
        len += flen;
        (*n)++;
        l->pos += 8 + (off_t)flen;
    }
    free(rec);
    if (*torn_bytes > 0)
        l->pos = st.st_size; /* the rest is a torn tail: the end of this segment */
    if (*n == 0) {
        free(buf);
        return 0;
    }
    buf[len++] = ']';
    buf[len] = '\0';
    *out = buf;
    return 1;
}

void spool_leftover_rewind(struct spool_leftover *l)
{
    l->pos = l->prev_pos;
}

void spool_leftover_finish(struct spool_leftover *l, bool unlink_it)
{
    if (l == NULL)
        return;
    if (unlink_it)
        unlink(l->path);
    close(l->fd);
    free(l);
}
