/*
 * cfg.h - configuration: one declarative key table (cfg.c: cfg_keys[]) drives parsing of the
 * libconfig file, defaults, bounds, CSMCP_<GROUP>_<KEY> environment overrides, the reload class,
 * `csmcpd -t`, and the documented key reference (csmcpd --print-keys).
 *
 * A loaded struct cfg is immutable and owned by its caller (cfg_free). libconfig handles never
 * leave cfg_load().
 */
#ifndef CSMCP_CFG_H
#define CSMCP_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cfg_list {
    int n;
    char **v;
};

struct cfg {
    char *path; /* file it was loaded from, or NULL */

    /* server: the prefork process model */
    struct cfg_list server_listen;
    int server_workers;
    int server_worker_timeout;  /* s without heartbeat before a worker is killed */
    int server_drain_timeout;   /* s a draining worker may take */
    int server_kill_grace;      /* s between SIGABRT/SIGTERM and SIGKILL */
    int server_heartbeat_ms;    /* worker heartbeat interval */
    int server_backoff_min_ms;  /* first respawn delay after a crash */
    int server_backoff_max_ms;  /* respawn delay cap */
    int server_stable_after;    /* s READY before the backoff resets */
    int server_crash_limit;     /* crashes in crash_window that make a crash loop */
    int server_crash_window;    /* s */
    int server_ready_timeout;   /* s a new worker may take to become READY */
    int server_max_connections; /* per worker */
    int server_backlog;
    char *server_worker_binary; /* empty: built-in default */

    /* http: limits on client input */
    int http_max_header_size;
    int http_max_body_size;
    int http_read_timeout; /* s to receive a whole request once it started */
    int http_idle_timeout; /* s a keep-alive connection may stay idle */
    int http_max_json_depth;
    int http_max_string_length;

    /* tls */
    bool tls_enabled;
    char *tls_cert_file;
    char *tls_key_file;
    char *tls_min_version;

    /* admin and control */
    char *admin_listen;
    char *control_socket;

    /* database */
    char *database_url;
    char *database_password_file;
    int database_pool_size;
    int database_max_lifetime;    /* s */
    int database_connect_timeout; /* s */
    int database_queue_timeout_ms;
    int database_statement_timeout_ms;
    char *database_read_url;      /* streaming replica for replica_ok tools; empty: none */
    int database_max_replica_lag; /* s */

    /* redis */
    char *redis_url;
    char *redis_password_file;
    int redis_timeout_ms;
    struct cfg_list redis_sentinels; /* "host:port" of each Sentinel; empty: redis.url's host */
    char *redis_master_name;

    /* auth */
    bool auth_required;
    char *auth_jwks_file;
    char *auth_jwt_issuer;
    char *auth_jwt_audience;
    char *auth_resource_url;
    int auth_failed_per_minute;
    int auth_max_lookups_in_flight;
    struct cfg_list auth_issuer;
    char *auth_ca_file;
    int auth_jwks_refresh_min;
    int auth_jwks_refresh_max;
    int auth_jwks_miss_interval;
    int auth_fetch_timeout_ms;
    char *auth_scope_claim;
    int auth_clock_skew;
    char *auth_introspection_endpoint;
    char *auth_introspection_client_id;
    char *auth_introspection_secret_file;
    int auth_introspection_cache_ttl;

    /* rate limits */
    bool ratelimit_enabled;
    int ratelimit_key_per_minute;
    int ratelimit_tool_per_minute;
    int ratelimit_write_per_minute;
    bool ratelimit_fail_open;
    int ratelimit_lease_max; /* tokens a worker leases from a Redis bucket at once */

    /* mcp */
    struct cfg_list mcp_allowed_hosts;
    struct cfg_list mcp_allowed_origins;
    bool mcp_conformance_fixtures;
    bool mcp_read_only;  /* serve only calls needing the read scope */
    int mcp_session_ttl; /* s idle before a session expires */
    int mcp_max_sessions_per_principal;
    int mcp_max_streams_per_principal;
    int mcp_session_cache_ms; /* ms a checked session is trusted locally */
    char *mcp_session_secret_file;
    int mcp_page_size;
    int mcp_call_timeout; /* s a tool call may run */

    /* secrets */
    char *secrets_vault_key_file;

    /* audit */
    bool audit_enabled;
    char *audit_on_failure; /* "refuse" | "drop" */
    int audit_max_pending;
    char *audit_spool_dir;

    /* monitor */
    bool monitor_enabled;
    int monitor_tick_ms;
    int monitor_failover_timeout; /* s */
    char *monitor_host_id;

    /* integrations (outbox delivery) */
    int integrations_max_attempts;
    int integrations_backoff_base_ms;
    int integrations_backoff_max_ms;
    int integrations_timeout_ms;
    int integrations_max_in_flight;
    int integrations_breaker_failures;
    int integrations_breaker_open_seconds;
    char *integrations_sendgrid_url;
    char *integrations_sendgrid_key_file;
    char *integrations_intercom_url;
    char *integrations_intercom_token_file;
    char *integrations_zendesk_url;
    char *integrations_zendesk_credential_file;
    char *integrations_slack_webhook_file;
    char *integrations_webhook_url;
    char *integrations_webhook_secret_file;
    char *integrations_sendgrid_webhook_public_key_file;
    int integrations_sendgrid_webhook_max_age_s;
    char *integrations_mixpanel_export_url;
    char *integrations_mixpanel_secret_file;
    int integrations_mixpanel_interval_s;
    char *integrations_mixpanel_client_property;
    int integrations_mixpanel_backfill_days;
    int integrations_mixpanel_max_bytes;

    /* delivery */
    char *delivery_reviewer_scope; /* "admin" or "write": who may review outbound messages */

    /* log */
    char *log_level;
    char *log_format;
};

enum cfg_type {
    CFG_INT,
    CFG_BOOL,
    CFG_STR,
    CFG_LIST,
};

enum cfg_reload {
    CFG_RELOADABLE, /* a reload (new worker generation) applies it */
    CFG_RESTART,    /* needs a supervisor restart; a reload that changes it is refused */
};

struct cfg_key {
    const char *group;
    const char *name;
    enum cfg_type type;
    size_t offset;
    const char *def;            /* default in the env-override syntax */
    long min, max;              /* CFG_INT bounds; CFG_STR/CFG_LIST: max length / max items */
    const char *const *choices; /* CFG_STR: allowed values, NULL-terminated, or NULL */
    enum cfg_reload reload;
    bool secret; /* never printed */
    const char *doc;
};

extern const struct cfg_key cfg_keys[];
extern const size_t cfg_nkeys;

/*
 * Loads defaults, then FILE (may be NULL: defaults only), then CSMCP_* environment overrides,
 * then validates. On error returns -1 and writes "FILE:LINE: group.key: reason" (or
 * "environment CSMCP_X: group.key: reason") into err. Caller owns *out (cfg_free).
 */
int cfg_load(const char *path, struct cfg *out, char *err, size_t errlen);
void cfg_free(struct cfg *c);

/* Names of restart-class keys whose values differ, comma-separated, into buf; returns count. */
int cfg_restart_diff(const struct cfg *a, const struct cfg *b, char *buf, size_t buflen);

/* Stable 64-bit hash over every value: the config generation id workers must agree on. */
uint64_t cfg_hash(const struct cfg *c);

/* Prints every key with its current value (secrets masked). */
void cfg_print(FILE *f, const struct cfg *c);
/* Prints the key reference as Markdown (docs/configuration.md is generated from it). */
void cfg_print_reference(FILE *f);

const struct cfg_key *cfg_find_key(const char *group, const char *name);

#endif
