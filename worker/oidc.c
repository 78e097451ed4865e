/*
 * oidc.c - discovery, JWKS refresh and token introspection for auth.issuer (see oidc.h).
 *
 * Design: every worker keeps its own copy of each issuer's key set and refreshes it itself,
 * with non-blocking libcurl transfers on its own event loop (the same libcurl <-> libevent
 * glue as worker/outbox.c; libcurl resolves names in its resolver thread). The request path
 * only reads the current set (a pointer, replaced between two loop iterations, never while a
 * request is being verified), so a slow or dead authorization server can delay nothing but the
 * requests that explicitly wait for a refresh: tokens with a kid the set does not hold. N
 * workers cost the authorization server N JWKS fetches per refresh interval.
 *
 * Schedule: the first discovery + fetch starts when the worker starts; the next refresh is due
 * after the JWKS response's Cache-Control max-age (or Expires - Date), bounded to
 * [auth.jwks_refresh_min, auth.jwks_refresh_max]; a failure is retried after 1, 2, 4 ... s (at
 * most auth.jwks_refresh_min) and keeps the previous set; after a failed JWKS fetch the next
 * attempt repeats discovery (the jwks_uri may have moved). A kid miss may pull the refresh
 * forward once per auth.jwks_miss_interval.
 *
 * Invariants: TLS is always verified (auth.ca_file or the system store); only https URLs are
 * fetched; responses are bounded (1 MiB); the introspection secret never reaches a log line
 * (it is set with CURLOPT_USERNAME/PASSWORD and wiped at shutdown).
 */
#include "oidc.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include <openssl/crypto.h>

#include "cfg.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"

#define OIDC_MAX_ISSUERS 8
#define OIDC_MAX_BODY    (1 << 20)
#define OIDC_MAX_WAITERS 4096

enum fetch_kind { F_DISCOVER_8414, F_DISCOVER_OIDC, F_JWKS, F_INTROSPECT };

struct waiter {
    oidc_refresh_cb cb;
    void *arg;
    struct waiter *next;
};

struct issuer {
    char url[1024];
    char jwks_uri[1024];
    char introspection[1024];
    struct jwt_keys *keys;
    bool busy;        /* a discovery/JWKS fetch is under way */
    bool rediscover;  /* the next refresh starts with discovery */
    int failures;     /* consecutive */
    double last_miss; /* monotonic s of the last refresh a kid miss started; 0 none */
    struct waiter *waiters;
    int nwaiters;
    struct event *timer;
    char label[1100];   /* issuer="..." for metrics */
    char last_why[256]; /* the failure last logged: a new reason is logged at once */
};

struct fetch {
    enum fetch_kind kind;
    int issuer;
    CURL *e;
    struct curl_slist *hdrs;
    char *body; /* POST body */
    char *buf;
    size_t len, cap;
    char err[CURL_ERROR_SIZE];
    long status;
    /* introspection */
    oidc_introspect_cb icb;
    void *iarg;
    char audience[1024];
    struct fetch *prev, *next;
};

struct sockev {
    struct event *ev;
};

static struct {
    struct event_base *base;
    const struct cfg *cfg;
    CURLM *multi;
    struct event *timer;
    struct issuer iss[OIDC_MAX_ISSUERS];
    int n;
    char *secret;
    size_t secretlen;
    struct fetch *inflight;
    void (*keys_removed)(void);
    bool curl_inited;
} O;

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int oidc_count(void)
{
    return O.n;
}

int oidc_find(const char *iss)
{
    for (int i = 0; iss && i < O.n; i++)
        if (strcmp(O.iss[i].url, iss) == 0)
            return i;
    return -1;
}

const char *oidc_issuer(int i)
{
    return i >= 0 && i < O.n ? O.iss[i].url : "";
}

const struct jwt_keys *oidc_keys(int i)
{
    return i >= 0 && i < O.n ? O.iss[i].keys : NULL;
}

bool oidc_refresh_failing(int i)
{
    return i >= 0 && i < O.n && O.iss[i].failures > 0;
}

void oidc_on_keys_removed(void (*fn)(void))
{
    O.keys_removed = fn;
}

bool oidc_introspection_enabled(void)
{
    return O.cfg && O.cfg->auth_introspection_client_id[0] && O.secret;
}

/* ---------------------------------------------------------------- HTTP */

static size_t cb_write(char *ptr, size_t size, size_t n, void *userp)
{
    struct fetch *f = userp;
    size_t add = size * n;
    if (f->len + add > OIDC_MAX_BODY)
        return 0; /* CURLE_WRITE_ERROR */
    if (f->len + add + 1 > f->cap) {
        size_t cap = (f->len + add + 1) * 2;
        char *nb = realloc(f->buf, cap);
        if (nb == NULL)
            return 0;
        f->buf = nb;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, ptr, add);
    f->len += add;
    f->buf[f->len] = '\0';
    return add;
}

static void fetch_free(struct fetch *f)
{
    if (f->e) {
        curl_multi_remove_handle(O.multi, f->e);
        curl_easy_cleanup(f->e);
    }
    curl_slist_free_all(f->hdrs);
    if (f->body) {
        OPENSSL_cleanse(f->body, strlen(f->body));
        free(f->body);
    }
    free(f->buf);
    if (f->prev)
        f->prev->next = f->next;
    else if (O.inflight == f)
        O.inflight = f->next;
    if (f->next)
        f->next->prev = f->prev;
    free(f);
}

/* Starts a GET (body NULL) or form POST of url; the result arrives in fetch_done. */
static struct fetch *fetch_start(enum fetch_kind kind, int issuer, const char *url,
                                 const char *body)
{
    struct fetch *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->kind = kind;
    f->issuer = issuer;
    f->e = curl_easy_init();
    if (f->e == NULL) {
        free(f);
        return NULL;
    }
    f->next = O.inflight;
    if (O.inflight)
        O.inflight->prev = f;
    O.inflight = f;
    curl_easy_setopt(f->e, CURLOPT_URL, url);
    curl_easy_setopt(f->e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(f->e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(f->e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(f->e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (O.cfg->auth_ca_file[0])
        curl_easy_setopt(f->e, CURLOPT_CAINFO, O.cfg->auth_ca_file);
    curl_easy_setopt(f->e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(f->e, CURLOPT_TIMEOUT_MS, (long)O.cfg->auth_fetch_timeout_ms);
    curl_easy_setopt(f->e, CURLOPT_CONNECTTIMEOUT_MS, (long)O.cfg->auth_fetch_timeout_ms);
    curl_easy_setopt(f->e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(f->e, CURLOPT_USERAGENT, "csmcp-worker");
    curl_easy_setopt(f->e, CURLOPT_WRITEFUNCTION, cb_write);
    curl_easy_setopt(f->e, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(f->e, CURLOPT_ERRORBUFFER, f->err);
    curl_easy_setopt(f->e, CURLOPT_PRIVATE, f);
    f->hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (body) {
        f->body = strdup(body);
        if (f->body == NULL) {
            fetch_free(f);
            return NULL;
        }
        curl_easy_setopt(f->e, CURLOPT_POSTFIELDS, f->body);
        f->hdrs = curl_slist_append(f->hdrs, "Content-Type: application/x-www-form-urlencoded");
    }
    curl_easy_setopt(f->e, CURLOPT_HTTPHEADER, f->hdrs);
    if (curl_multi_add_handle(O.multi, f->e) != CURLM_OK) {
        fetch_free(f);
        return NULL;
    }
    return f;
}

static const char *jstr(yajl_val obj, const char *name)
{
    const char *path[] = {name, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_string);
    return v ? YAJL_GET_STRING(v) : NULL;
}

static yajl_val parse_body(struct fetch *f)
{
    char eb[128];
    if (f->buf == NULL || f->len == 0)
        return NULL;
    yajl_val v = yajl_tree_parse(f->buf, eb, sizeof eb);
    if (v && !YAJL_IS_OBJECT(v)) {
        yajl_tree_free(v);
        return NULL;
    }
    return v;
}

/* ---------------------------------------------------------------- refresh schedule */

static void refresh_start(int i);

static void issuer_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    refresh_start((int)(intptr_t)arg);
}

static void schedule(int i, double seconds)
{
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    evtimer_add(O.iss[i].timer, &tv);
}

/* Seconds the JWKS response may be cached: Cache-Control max-age / s-maxage, else Expires -
 * Date; -1 when the response says nothing (no-store / no-cache count as 0). */
static double cache_lifetime(CURL *e)
{
    struct curl_header *h;
    if (curl_easy_header(e, "Cache-Control", 0, CURLH_HEADER, -1, &h) == CURLHE_OK) {
        const char *v = h->value, *p;
        if (strcasestr(v, "no-store") || strcasestr(v, "no-cache"))
            return 0;
        if ((p = strcasestr(v, "max-age=")) != NULL)
            return atof(p + 8);
    }
    if (curl_easy_header(e, "Expires", 0, CURLH_HEADER, -1, &h) == CURLHE_OK) {
        time_t exp = curl_getdate(h->value, NULL), date = time(NULL);
        struct curl_header *d;
        if (curl_easy_header(e, "Date", 0, CURLH_HEADER, -1, &d) == CURLHE_OK) {
            time_t t = curl_getdate(d->value, NULL);
            if (t > 0)
                date = t;
        }
        if (exp <= 0)
            return 0; /* "Expires: 0" and invalid dates mean already expired */
        return exp > date ? (double)(exp - date) : 0;
    }
    return -1;
}

static void wake_waiters(int i)
{
    struct issuer *is = &O.iss[i];
    struct waiter *w = is->waiters;
    is->waiters = NULL;
    is->nwaiters = 0;
    while (w) {
        struct waiter *next = w->next;
        w->cb(w->arg);
        free(w);
        w = next;
    }
}

static void refresh_failed(int i, const char *what, const char *why)
{
    struct issuer *is = &O.iss[i];
    is->busy = false;
    is->failures++;
    double retry = (double)(1 << (is->failures < 10 ? is->failures - 1 : 9));
    if (retry > O.cfg->auth_jwks_refresh_min)
        retry = O.cfg->auth_jwks_refresh_min;
    char labels[1200];
    snprintf(labels, sizeof labels, "%s,step=\"%s\",result=\"error\"", is->label, what);
    metrics_inc("csmcp_auth_jwks_fetch_total", labels, 1);
    char reason[256];
    snprintf(reason, sizeof reason, "%s: %s", what, why);
    if (is->failures == 1 || is->failures % 10 == 0 || strcmp(reason, is->last_why) != 0) {
        log_warn("auth: issuer %s: %s failed (%s); %d cached keys kept, retry in %.0f s "
                 "(failure %d)",
                 is->url, what, why, jwt_keys_count(is->keys), retry, is->failures);
        memcpy(is->last_why, reason, sizeof reason);
    }
    schedule(i, retry);
    wake_waiters(i);
}

static void jwks_fetched(int i, struct fetch *f)
{
    struct issuer *is = &O.iss[i];
    struct jwt_keys *nk = NULL;
    char err[256];

    if (jwt_keys_parse(f->buf ? f->buf : "", f->len, &nk, err, sizeof err) < 0) {
        is->rediscover = true;
        refresh_failed(i, "jwks", err);
        return;
    }
    /* Did the new set drop a key of the old one? */
    bool removed = false;
    for (int k = 0; is->keys && k < jwt_keys_count(is->keys); k++)
        if (!jwt_keys_has_kid(nk, jwt_keys_kid(is->keys, k)))
            removed = true;
    bool changed = removed || jwt_keys_count(nk) != jwt_keys_count(is->keys);
    for (int k = 0; !changed && k < jwt_keys_count(nk); k++)
        if (!jwt_keys_has_kid(is->keys, jwt_keys_kid(nk, k)))
            changed = true;
    jwt_keys_free(is->keys);
    is->keys = nk;
    double life = cache_lifetime(f->e);
    double next = life < 0 ? O.cfg->auth_jwks_refresh_max : life;
    if (next < O.cfg->auth_jwks_refresh_min)
        next = O.cfg->auth_jwks_refresh_min;
    if (next > O.cfg->auth_jwks_refresh_max)
        next = O.cfg->auth_jwks_refresh_max;
    is->busy = false;
    if (is->failures > 0)
        log_info("auth: issuer %s: JWKS fetched again after %d failures", is->url, is->failures);
    is->failures = 0;
    is->last_why[0] = '\0';
    char labels[1200];
    snprintf(labels, sizeof labels, "%s,step=\"jwks\",result=\"ok\"", is->label);
    metrics_inc("csmcp_auth_jwks_fetch_total", labels, 1);
    metrics_gauge_set("csmcp_auth_jwks_keys", is->label, jwt_keys_count(nk));
    if (changed) {
        char kids[512];
        size_t p = 0;
        kids[0] = '\0';
        for (int k = 0; k < jwt_keys_count(nk) && p < sizeof kids - 1; k++)
            p += (size_t)snprintf(kids + p, sizeof kids - p, "%s%s", k ? "," : "",
                                  jwt_keys_kid(nk, k));
        log_info("auth: issuer %s: %d signing keys (kid %s)%s; next refresh in %.0f s", is->url,
                 jwt_keys_count(nk), kids, removed ? ", earlier keys removed" : "", next);
    }
    schedule(i, next);
    if (removed && O.keys_removed)
        O.keys_removed();
    wake_waiters(i);
}

/* https://h/p -> https://h/.well-known/oauth-authorization-server/p (RFC 8414 3.1), or
 * https://h/p/.well-known/openid-configuration (OpenID Connect Discovery 4). */
static void well_known(const char *issuer, bool oidc, char *out, size_t len)
{
    const char *host = issuer + 8, *path = strchr(host, '/');
    size_t plen = path ? strlen(path) : 0;
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    if (oidc)
        snprintf(out, len, "%.*s%.*s/.well-known/openid-configuration",
                 (int)(path ? (size_t)(path - issuer) : strlen(issuer)), issuer, (int)plen,
                 path ? path : "");
    else
        snprintf(out, len, "%.*s/.well-known/oauth-authorization-server%.*s",
                 (int)(path ? (size_t)(path - issuer) : strlen(issuer)), issuer, (int)plen,
                 path ? path : "");
}

static void discovered(int i, struct fetch *f)
{
    struct issuer *is = &O.iss[i];
    char why[CURL_ERROR_SIZE + 64];
    yajl_val md = f->status == 200 ? parse_body(f) : NULL;
    const char *iss = md ? jstr(md, "issuer") : NULL, *ju = md ? jstr(md, "jwks_uri") : NULL;
    const char *ie = md ? jstr(md, "introspection_endpoint") : NULL;

    if (md == NULL || iss == NULL || strcmp(iss, is->url) != 0 || ju == NULL ||
        strncmp(ju, "https://", 8) != 0 || strlen(ju) >= sizeof is->jwks_uri) {
        if (md == NULL)
            snprintf(why, sizeof why, "HTTP %ld%s%s", f->status, f->err[0] ? ": " : "", f->err);
        else if (iss == NULL || strcmp(iss, is->url) != 0)
            snprintf(why, sizeof why, "metadata names another issuer (RFC 8414 3.3)");
        else
            snprintf(why, sizeof why, "metadata has no https jwks_uri");
        yajl_tree_free(md);
        if (f->kind == F_DISCOVER_8414) {
            char url[1200];
            well_known(is->url, true, url, sizeof url);
            if (fetch_start(F_DISCOVER_OIDC, i, url, NULL) == NULL)
                refresh_failed(i, "discovery", "out of memory");
            return;
        }
        refresh_failed(i, "discovery", why);
        return;
    }
    snprintf(is->jwks_uri, sizeof is->jwks_uri, "%s", ju);
    is->introspection[0] = '\0';
    if (ie && strncmp(ie, "https://", 8) == 0)
        snprintf(is->introspection, sizeof is->introspection, "%s", ie);
    yajl_tree_free(md);
    is->rediscover = false;
    if (fetch_start(F_JWKS, i, is->jwks_uri, NULL) == NULL)
        refresh_failed(i, "jwks", "out of memory");
}

static void refresh_start(int i)
{
    struct issuer *is = &O.iss[i];
    char url[1200];
    if (is->busy)
        return;
    is->busy = true;
    evtimer_del(is->timer);
    if (is->rediscover || is->jwks_uri[0] == '\0') {
        well_known(is->url, false, url, sizeof url);
        if (fetch_start(F_DISCOVER_8414, i, url, NULL) == NULL)
            refresh_failed(i, "discovery", "out of memory");
    } else if (fetch_start(F_JWKS, i, is->jwks_uri, NULL) == NULL) {
        refresh_failed(i, "jwks", "out of memory");
    }
}

int oidc_refresh_for_kid(int i, oidc_refresh_cb cb, void *arg)
{
    if (i < 0 || i >= O.n)
        return 0;
    struct issuer *is = &O.iss[i];
    if (is->nwaiters >= OIDC_MAX_WAITERS)
        return 0;
    if (!is->busy) {
        double now = now_mono();
        if (is->last_miss > 0 && now - is->last_miss < O.cfg->auth_jwks_miss_interval)
            return 0;
        is->last_miss = now;
        /* The authorization server's last fetch failed: pull the retry forward, but fail this
         * request closed now rather than hold it for a fetch that will most likely fail too. */
        if (is->failures > 0) {
            refresh_start(i);
            return 0;
        }
    } else if (is->failures > 0) {
        return 0;
    }
    struct waiter *w = calloc(1, sizeof *w);
    if (w == NULL)
        return 0;
    w->cb = cb;
    w->arg = arg;
    w->next = is->waiters;
    is->waiters = w;
    is->nwaiters++;
    refresh_start(i); /* no-op when one is under way */
    return 1;
}

/* ---------------------------------------------------------------- introspection */

/* application/x-www-form-urlencoded: unreserved characters as they are, the rest %XX. */
static char *form_encode(const char *s, size_t n)
{
    static const char hx[] = "0123456789ABCDEF";
    char *out = malloc(n * 3 + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hx[c >> 4];
            *o++ = hx[c & 15];
        }
    }
    *o = '\0';
    return out;
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void introspected(struct fetch *f, CURLcode cc)
{
    struct oidc_introspection r;
    memset(&r, 0, sizeof r);
    yajl_val v = cc == CURLE_OK && f->status == 200 ? parse_body(f) : NULL;
    if (v == NULL) {
        r.status = 503;
        snprintf(r.error, sizeof r.error, "token introspection failed (%s)",
                 cc != CURLE_OK ? curl_easy_strerror(cc) : "unexpected answer");
        metrics_inc("csmcp_auth_introspection_total", "result=\"error\"", 1);
        if (cc != CURLE_OK || f->status != 200)
            log_warn("auth: introspection: %s (HTTP %ld)",
                     cc != CURLE_OK ? (f->err[0] ? f->err : curl_easy_strerror(cc)) : "answer",
                     f->status);
        f->icb(&r, f->iarg);
        return;
    }
    const char *pa[] = {"active", NULL}, *pe[] = {"exp", NULL}, *pau[] = {"aud", NULL};
    yajl_val a = yajl_tree_get(v, pa, yajl_t_any);
    r.active = a && YAJL_IS_TRUE(a);
    const char *s = jstr(v, "sub");
    snprintf(r.sub, sizeof r.sub, "%s", s ? s : "");
    s = jstr(v, "scope");
    snprintf(r.scope, sizeof r.scope, "%s", s ? s : "");
    yajl_val e = yajl_tree_get(v, pe, yajl_t_number);
    if (e)
        r.exp = YAJL_IS_INTEGER(e) ? (long)YAJL_GET_INTEGER(e) : (long)YAJL_GET_DOUBLE(e);
    yajl_val au = yajl_tree_get(v, pau, yajl_t_any);
    if (au && YAJL_IS_STRING(au))
        r.aud_ok = strcmp(au->u.string, f->audience) == 0;
    else if (au && YAJL_IS_ARRAY(au))
        for (size_t k = 0; k < au->u.array.len; k++)
            if (YAJL_IS_STRING(au->u.array.values[k]) &&
                strcmp(au->u.array.values[k]->u.string, f->audience) == 0)
                r.aud_ok = true;
    if (f->issuer >= 0 && r.active) {
        const char *iss = jstr(v, "iss");
        if (iss && strcmp(iss, O.iss[f->issuer].url) != 0) {
            r.active = false;
            snprintf(r.error, sizeof r.error, "introspection names another issuer");
        }
    }
    if (!r.active && r.error[0] == '\0')
        snprintf(r.error, sizeof r.error, "token is not active (revoked or expired)");
    yajl_tree_free(v);
    metrics_inc("csmcp_auth_introspection_total",
                r.active ? "result=\"active\"" : "result=\"inactive\"", 1);
    f->icb(&r, f->iarg);
}

void oidc_introspect(int i, const char *token, const char *audience, oidc_introspect_cb cb,
                     void *arg)
{
    struct oidc_introspection r;
    const char *url = O.cfg ? O.cfg->auth_introspection_endpoint : "";
    memset(&r, 0, sizeof r);
    if (url == NULL || url[0] == '\0')
        url = O.iss[i >= 0 && i < O.n ? i : 0].introspection;
    if (!oidc_introspection_enabled() || url[0] == '\0') {
        r.status = 503;
        snprintf(r.error, sizeof r.error,
                 "token introspection endpoint not known yet (discovery pending)");
        metrics_inc("csmcp_auth_introspection_total", "result=\"error\"", 1);
        cb(&r, arg);
        return;
    }
    char *esc = form_encode(token, strlen(token));
    size_t blen = esc ? strlen(esc) + 64 : 0;
    char *body = esc ? malloc(blen) : NULL;
    struct fetch *f = NULL;
    if (body) {
        snprintf(body, blen, "token=%s&token_type_hint=access_token", esc);
        f = fetch_start(F_INTROSPECT, i >= 0 && i < O.n ? i : -1, url, body);
        OPENSSL_cleanse(body, strlen(body));
        free(body);
    }
    wipe_free(esc);
    if (f == NULL) {
        r.status = 503;
        snprintf(r.error, sizeof r.error, "token introspection: out of memory");
        cb(&r, arg);
        return;
    }
    f->icb = cb;
    f->iarg = arg;
    snprintf(f->audience, sizeof f->audience, "%s", audience ? audience : "");
    /* RFC 7662 2.1 + RFC 6749 2.3.1: client_secret_basic, both parts form-urlencoded */
    char *uid = form_encode(O.cfg->auth_introspection_client_id,
                            strlen(O.cfg->auth_introspection_client_id));
    char *pw = form_encode(O.secret, O.secretlen);
    curl_easy_setopt(f->e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(f->e, CURLOPT_USERNAME, uid ? uid : "");
    curl_easy_setopt(f->e, CURLOPT_PASSWORD, pw ? pw : "");
    wipe_free(pw);
    free(uid);
}

/* ---------------------------------------------------------------- libcurl <-> libevent */

static void check_done(void)
{
    CURLMsg *cm;
    int left;
    while ((cm = curl_multi_info_read(O.multi, &left))) {
        if (cm->msg != CURLMSG_DONE)
            continue;
        struct fetch *f = NULL;
        CURLcode cc = cm->data.result;
        curl_easy_getinfo(cm->easy_handle, CURLINFO_PRIVATE, (char **)&f);
        curl_easy_getinfo(cm->easy_handle, CURLINFO_RESPONSE_CODE, &f->status);
        switch (f->kind) {
        case F_DISCOVER_8414:
        case F_DISCOVER_OIDC:
            if (cc != CURLE_OK)
                f->status = 0;
            discovered(f->issuer, f);
            break;
        case F_JWKS:
            if (cc != CURLE_OK || f->status != 200) {
                char why[CURL_ERROR_SIZE + 64];
                snprintf(why, sizeof why, "%s",
                         cc != CURLE_OK ? (f->err[0] ? f->err : curl_easy_strerror(cc)) : "");
                if (cc == CURLE_OK)
                    snprintf(why, sizeof why, "HTTP %ld", f->status);
                O.iss[f->issuer].rediscover = true;
                refresh_failed(f->issuer, "jwks", why);
            } else {
                jwks_fetched(f->issuer, f);
            }
            break;
        case F_INTROSPECT:
            introspected(f, cc);
            break;
        }
        fetch_free(f);
    }
}

static void ev_sock(evutil_socket_t fd, short what, void *arg)
{
    int running,
        flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    (void)arg;
    curl_multi_socket_action(O.multi, fd, flags, &running);
    check_done();
}

static void ev_timer(evutil_socket_t fd, short what, void *arg)
{
    int running;
    (void)fd, (void)what, (void)arg;
    curl_multi_socket_action(O.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done();
}

static int cb_socket(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
    struct sockev *se = sockp;
    (void)e, (void)userp;
    if (what == CURL_POLL_REMOVE) {
        if (se) {
            event_free(se->ev);
            free(se);
            curl_multi_assign(O.multi, s, NULL);
        }
        return 0;
    }
    short kind =
        EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!se) {
        se = calloc(1, sizeof *se);
        if (!se)
            return -1;
        curl_multi_assign(O.multi, s, se);
    } else {
        event_free(se->ev);
    }
    se->ev = event_new(O.base, s, kind, ev_sock, NULL);
    if (!se->ev || event_add(se->ev, NULL) < 0)
        return -1;
    return 0;
}

static int cb_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi, (void)userp;
    if (timeout_ms < 0) {
        evtimer_del(O.timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(O.timer, &tv);
    return 0;
}

/* ---------------------------------------------------------------- life cycle */

int oidc_init(struct event_base *base, const struct cfg *cfg, const char *secret, size_t secretlen)
{
    memset(&O, 0, sizeof O);
    O.base = base;
    O.cfg = cfg;
    if (cfg->auth_issuer.n == 0 && !cfg->auth_introspection_client_id[0])
        return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("auth: curl_global_init failed");
        return -1;
    }
    O.curl_inited = true;
    O.multi = curl_multi_init();
    O.timer = evtimer_new(base, ev_timer, NULL);
    if (O.multi == NULL || O.timer == NULL) {
        log_error("auth: out of memory");
        return -1;
    }
    curl_multi_setopt(O.multi, CURLMOPT_SOCKETFUNCTION, cb_socket);
    curl_multi_setopt(O.multi, CURLMOPT_TIMERFUNCTION, cb_timer);
    if (secret && secretlen) {
        O.secret = malloc(secretlen + 1);
        if (O.secret == NULL)
            return -1;
        memcpy(O.secret, secret, secretlen);
        O.secret[secretlen] = '\0';
        O.secretlen = secretlen;
    }
    for (int i = 0; i < cfg->auth_issuer.n && i < OIDC_MAX_ISSUERS; i++) {
        struct issuer *is = &O.iss[i];
        const char *u = cfg->auth_issuer.v[i];
        size_t ul = strlen(u) < sizeof is->url - 1 ? strlen(u) : sizeof is->url - 1;
        memcpy(is->url, u, ul);
        is->url[ul] = '\0';
        snprintf(is->label, sizeof is->label, "issuer=\"%s\"", u);
        is->timer = evtimer_new(base, issuer_timer, (void *)(intptr_t)i);
        if (is->timer == NULL)
            return -1;
        O.n++;
        schedule(i, 0); /* first discovery from the loop, right after start-up */
    }
    if (cfg->auth_issuer.n > OIDC_MAX_ISSUERS)
        log_warn("auth: only the first %d of auth.issuer are used", OIDC_MAX_ISSUERS);
    return 0;
}

void oidc_shutdown(void)
{
    while (O.inflight)
        fetch_free(O.inflight);
    for (int i = 0; i < O.n; i++) {
        struct waiter *w = O.iss[i].waiters;
        while (w) {
            struct waiter *next = w->next;
            free(w);
            w = next;
        }
        if (O.iss[i].timer)
            event_free(O.iss[i].timer);
        jwt_keys_free(O.iss[i].keys);
    }
    if (O.multi)
        curl_multi_cleanup(O.multi);
    if (O.timer)
        event_free(O.timer);
    if (O.secret) {
        OPENSSL_cleanse(O.secret, O.secretlen);
        free(O.secret);
    }
    if (O.curl_inited)
        curl_global_cleanup();
    memset(&O, 0, sizeof O);
}
