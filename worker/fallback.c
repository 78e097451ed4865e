/*
 * fallback.c - weak default implementations of worker/auth.h, so the worker links and runs
 * before worker/auth.c exists. Any strong definition (auth.c in the same executable) replaces
 * them at link time. The fallback is fail-closed: with auth.required = true every request
 * gets 401; with auth.required = false the caller is "anonymous" with every scope.
 */
#include "auth.h"
#include "cfg.h"

#include <stdio.h>
#include <string.h>

static bool fb_required = true;

__attribute__((weak)) int auth_init(struct event_base *base, const struct cfg *cfg,
                                    struct pgpool *pg)
{
    fb_required = cfg->auth_required;
    return 0;
}

__attribute__((weak)) void auth_authenticate(const char *authorization, auth_cb cb, void *arg)
{
    struct auth_result r;
    memset(&r, 0, sizeof r);
    if (fb_required) {
        r.status = 401;
        snprintf(r.error, sizeof r.error, "invalid_token");
        snprintf(r.description, sizeof r.description, "token verification is not available");
    } else {
        snprintf(r.principal, sizeof r.principal, "anonymous");
        r.scopes = AUTH_SCOPE_READ | AUTH_SCOPE_WRITE | AUTH_SCOPE_ADMIN;
    }
    cb(&r, arg);
}

__attribute__((weak)) void auth_shutdown(void)
{
}
