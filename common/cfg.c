/*
 * cfg.c - the configuration key table and its loader.
 *
 * Order of precedence: built-in default < file < CSMCP_<GROUP>_<KEY> environment variable.
 * Every key is declared once in cfg_keys[]; nothing else in the tree knows libconfig. Unknown
 * keys in the file are errors (a typo must not silently fall back to a default).
 */
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define OFF(f) offsetof(struct cfg, f)

static const char *const log_levels[] = {"debug", "info", "notice", "warning",
                                         "error", "crit", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const audit_failure_modes[] = {"refuse", "drop", NULL};
static const char *const tls_versions[] = {"1.2", "1.3", NULL};
static const char *const reviewer_scopes[] = {"admin", "write", NULL};

/* clang-format off */
const struct cfg_key cfg_keys[] = {
    {"server", "listen", CFG_LIST, OFF(server_listen), "127.0.0.1:8080", 0, 16, NULL, CFG_RESTART, false,
     "Addresses (\"host:port\") the MCP HTTP listener binds; ignored when systemd passes sockets (LISTEN_FDS)."},
    {"server", "workers", CFG_INT, OFF(server_workers), "4", 1, 256, NULL, CFG_RELOADABLE, false,
     "Number of worker processes."},
    {"server", "worker_timeout", CFG_INT, OFF(server_worker_timeout), "10", 2, 3600, NULL, CFG_RELOADABLE, false,
     "Seconds without a heartbeat after which a worker is considered stuck (SIGABRT, then SIGKILL, then restart)."},
    {"server", "drain_timeout", CFG_INT, OFF(server_drain_timeout), "30", 1, 3600, NULL, CFG_RELOADABLE, false,
     "Seconds a draining worker may take to finish in-flight requests before it is stopped."},
    {"server", "kill_grace", CFG_INT, OFF(server_kill_grace), "5", 1, 60, NULL, CFG_RELOADABLE, false,
     "Seconds between SIGABRT/SIGTERM and SIGKILL when a worker must be stopped."},
    {"server", "heartbeat_ms", CFG_INT, OFF(server_heartbeat_ms), "1000", 50, 60000, NULL, CFG_RELOADABLE, false,
     "Interval of worker heartbeats (with a metrics snapshot) in milliseconds."},
    {"server", "backoff_min_ms", CFG_INT, OFF(server_backoff_min_ms), "100", 10, 60000, NULL, CFG_RELOADABLE, false,
     "First restart delay after a worker crash, in milliseconds; doubles per consecutive crash (with 20% jitter)."},
    {"server", "backoff_max_ms", CFG_INT, OFF(server_backoff_max_ms), "30000", 100, 600000, NULL, CFG_RELOADABLE, false,
     "Upper bound of the restart delay in milliseconds."},
    {"server", "stable_after", CFG_INT, OFF(server_stable_after), "60", 1, 3600, NULL, CFG_RELOADABLE, false,
     "Seconds a worker must stay READY before its crash backoff resets."},
    {"server", "crash_limit", CFG_INT, OFF(server_crash_limit), "10", 1, 1000, NULL, CFG_RELOADABLE, false,
     "Crashes within crash_window that are reported as a crash loop."},
    {"server", "crash_window", CFG_INT, OFF(server_crash_window), "60", 1, 3600, NULL, CFG_RELOADABLE, false,
     "Window in seconds for crash-loop detection."},
    {"server", "ready_timeout", CFG_INT, OFF(server_ready_timeout), "30", 1, 600, NULL, CFG_RELOADABLE, false,
     "Seconds a new worker may take to report READY; a reload whose workers miss it is rolled back."},
    {"server", "max_connections", CFG_INT, OFF(server_max_connections), "20000", 16, 1000000, NULL, CFG_RELOADABLE, false,
     "Open client connections per worker; beyond it the worker stops accepting until one closes."},
    {"server", "backlog", CFG_INT, OFF(server_backlog), "4096", 16, 65535, NULL, CFG_RESTART, false,
     "listen(2) backlog of the MCP listening sockets."},
    {"server", "worker_binary", CFG_STR, OFF(server_worker_binary), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "Path of csmcp-worker; empty uses the build tree's worker when run from the build directory, else the installed one."},

    {"http", "max_header_size", CFG_INT, OFF(http_max_header_size), "16384", 1024, 1048576, NULL, CFG_RELOADABLE, false,
     "Largest request head (request line and headers) in bytes; larger gets 431."},
    {"http", "max_body_size", CFG_INT, OFF(http_max_body_size), "4194304", 1024, 268435456, NULL, CFG_RELOADABLE, false,
     "Largest request body in bytes; larger gets 413."},
    {"http", "read_timeout", CFG_INT, OFF(http_read_timeout), "30", 1, 3600, NULL, CFG_RELOADABLE, false,
     "Seconds a client may take to send a whole request once it has started (slowloris bound)."},
    {"http", "idle_timeout", CFG_INT, OFF(http_idle_timeout), "75", 1, 86400, NULL, CFG_RELOADABLE, false,
     "Seconds an idle keep-alive connection is kept open."},
    {"http", "max_json_depth", CFG_INT, OFF(http_max_json_depth), "64", 4, 1024, NULL, CFG_RELOADABLE, false,
     "Deepest nesting accepted in a JSON request body."},
    {"http", "max_string_length", CFG_INT, OFF(http_max_string_length), "1048576", 64, 268435456, NULL, CFG_RELOADABLE, false,
     "Longest JSON string accepted in a request body, in bytes."},

    {"tls", "enabled", CFG_BOOL, OFF(tls_enabled), "false", 0, 0, NULL, CFG_RELOADABLE, false,
     "Serve TLS on server.listen (certificates are re-read on reload)."},
    {"tls", "cert_file", CFG_STR, OFF(tls_cert_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "PEM certificate chain."},
    {"tls", "key_file", CFG_STR, OFF(tls_key_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "PEM private key."},
    {"tls", "min_version", CFG_STR, OFF(tls_min_version), "1.2", 0, 8, tls_versions, CFG_RELOADABLE, false,
     "Lowest TLS version accepted."},

    {"admin", "listen", CFG_STR, OFF(admin_listen), "127.0.0.1:9090", 0, 256, NULL, CFG_RESTART, false,
     "Address of the supervisor's admin listener (/metrics, /health, /ready); empty disables it."},
    {"control", "socket", CFG_STR, OFF(control_socket), "csmcp.sock", 1, 107, NULL, CFG_RESTART, false,
     "Path of the Unix control socket csmcpctl talks to."},

    {"database", "url", CFG_STR, OFF(database_url), "postgresql:///csmcp", 1, 4096, NULL, CFG_RELOADABLE, true,
     "libpq connection URI of the system of record. Put no password here: use database.password_file or PGPASSWORD/credentials."},
    {"database", "password_file", CFG_STR, OFF(database_password_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "File holding the database password (a name relative to $CREDENTIALS_DIRECTORY works under systemd)."},
    {"database", "pool_size", CFG_INT, OFF(database_pool_size), "4", 1, 256, NULL, CFG_RELOADABLE, false,
     "PostgreSQL connections per worker (workers x pool_size must fit the database's connection budget)."},
    {"database", "max_lifetime", CFG_INT, OFF(database_max_lifetime), "3600", 10, 604800, NULL, CFG_RELOADABLE, false,
     "Seconds after which an idle pooled connection is replaced."},
    {"database", "connect_timeout", CFG_INT, OFF(database_connect_timeout), "5", 1, 300, NULL, CFG_RELOADABLE, false,
     "Seconds to establish a database connection."},
    {"database", "queue_timeout_ms", CFG_INT, OFF(database_queue_timeout_ms), "5000", 1, 600000, NULL, CFG_RELOADABLE, false,
     "Milliseconds a query may wait for a free pooled connection before it fails (retryable)."},
    {"database", "statement_timeout_ms", CFG_INT, OFF(database_statement_timeout_ms), "15000", 0, 3600000, NULL, CFG_RELOADABLE, false,
     "PostgreSQL statement_timeout for tool queries (0 = none)."},
    {"database", "read_url", CFG_STR, OFF(database_read_url), "", 0, 4096, NULL, CFG_RELOADABLE, true,
     "libpq connection URI of a streaming replica for the tools marked \"replica_ok\" (read-only portfolio analytics); empty runs everything on database.url. Same password as database.url; pool of database.pool_size read-only connections. Writes and read-your-writes paths always use database.url."},
    {"database", "max_replica_lag", CFG_INT, OFF(database_max_replica_lag), "5", 1, 3600, NULL, CFG_RELOADABLE, false,
     "Seconds of replay lag (measured with pg_last_xact_replay_timestamp() about every second) beyond which replica_ok tools run on the primary instead; a replica not checked within 3 s counts as lagging."},

    {"redis", "url", CFG_STR, OFF(redis_url), "redis://127.0.0.1:6379/0", 1, 4096, NULL, CFG_RELOADABLE, true,
     "Redis holding sessions, rate-limit buckets, pub/sub and the SSE event store (redis://[:password@]host:port/db or unix:///path)."},
    {"redis", "password_file", CFG_STR, OFF(redis_password_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "File holding the Redis password."},
    {"redis", "timeout_ms", CFG_INT, OFF(redis_timeout_ms), "2000", 10, 60000, NULL, CFG_RELOADABLE, false,
     "Milliseconds a Redis command may take before the request fails."},
    {"redis", "sentinels", CFG_LIST, OFF(redis_sentinels), "", 0, 16, NULL, CFG_RELOADABLE, false,
     "Redis Sentinels (\"host:port\") to ask for the primary of redis.master_name; empty uses the host of redis.url. With Sentinels, redis.url still gives the password and database number, each connection checks ROLE is master, and a failover (+switch-master, a lost connection, READONLY) moves both connections and resubscribes (docs/operations/scale-out.md)."},
    {"redis", "master_name", CFG_STR, OFF(redis_master_name), "", 0, 255, NULL, CFG_RELOADABLE, false,
     "Name of the Sentinel-monitored primary (sentinel monitor <name> ...); required when redis.sentinels is set."},

    {"auth", "required", CFG_BOOL, OFF(auth_required), "true", 0, 0, NULL, CFG_RELOADABLE, false,
     "Require a Bearer token (API key or JWT) on every /mcp request."},
    {"auth", "jwks_file", CFG_STR, OFF(auth_jwks_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "JWKS file with the identity provider's RS256/ES256 keys; empty disables JWT access tokens."},
    {"auth", "jwt_issuer", CFG_STR, OFF(auth_jwt_issuer), "", 0, 1024, NULL, CFG_RELOADABLE, false,
     "Required iss of JWT access tokens."},
    {"auth", "jwt_audience", CFG_STR, OFF(auth_jwt_audience), "", 0, 1024, NULL, CFG_RELOADABLE, false,
     "Required aud of JWT access tokens."},
    {"auth", "resource_url", CFG_STR, OFF(auth_resource_url), "", 0, 1024, NULL, CFG_RELOADABLE, false,
     "Public URL of /mcp for RFC 9728 metadata; empty derives it from the Host header."},
    {"auth", "issuer", CFG_LIST, OFF(auth_issuer), "", 0, 8, NULL, CFG_RELOADABLE, false,
     "Issuer URLs (https) of the trusted OAuth 2.1 authorization servers. Each one's metadata is discovered (RFC 8414, then OpenID Connect discovery) and its JWKS fetched and refreshed in the background; a JWT whose iss is one of them is verified against that issuer's keys. Also listed as authorization_servers in the RFC 9728 metadata."},
    {"auth", "ca_file", CFG_STR, OFF(auth_ca_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "PEM CA bundle that verifies the authorization servers' TLS certificates (discovery, JWKS, introspection); empty uses the system store. Verification is never switched off."},
    {"auth", "jwks_refresh_min", CFG_INT, OFF(auth_jwks_refresh_min), "60", 1, 86400, NULL, CFG_RELOADABLE, false,
     "Shortest interval in seconds between background refreshes of an issuer's JWKS, whatever its Cache-Control max-age or Expires says."},
    {"auth", "jwks_refresh_max", CFG_INT, OFF(auth_jwks_refresh_max), "3600", 1, 604800, NULL, CFG_RELOADABLE, false,
     "Longest interval in seconds between background refreshes of an issuer's JWKS (also the interval when it sends no caching headers)."},
    {"auth", "jwks_miss_interval", CFG_INT, OFF(auth_jwks_miss_interval), "10", 1, 3600, NULL, CFG_RELOADABLE, false,
     "A token signed with a kid the worker does not know triggers one JWKS refresh (the request waits for it); further refreshes for unknown kids wait this many seconds, meanwhile such tokens get 401."},
    {"auth", "fetch_timeout_ms", CFG_INT, OFF(auth_fetch_timeout_ms), "5000", 100, 60000, NULL, CFG_RELOADABLE, false,
     "Milliseconds one HTTPS request to an authorization server (discovery, JWKS, introspection) may take."},
    {"auth", "scope_claim", CFG_STR, OFF(auth_scope_claim), "scope", 1, 64, NULL, CFG_RELOADABLE, false,
     "JWT claim holding the granted scopes (space-separated string or array); \"scope\" also falls back to \"scp\". Values read, write, admin (optionally prefixed csmcp: or csmcp.) map to the tool scopes; admin implies write implies read."},
    {"auth", "clock_skew", CFG_INT, OFF(auth_clock_skew), "60", 0, 600, NULL, CFG_RELOADABLE, false,
     "Seconds of clock difference tolerated on a JWT's exp, nbf and iat."},
    {"auth", "introspection_endpoint", CFG_STR, OFF(auth_introspection_endpoint), "", 0, 1024, NULL, CFG_RELOADABLE, false,
     "RFC 7662 token introspection URL (https); empty uses the one the issuer's metadata names. Introspection is on when auth.introspection_client_id is set: every OAuth token (JWT or opaque) must then be active there."},
    {"auth", "introspection_client_id", CFG_STR, OFF(auth_introspection_client_id), "", 0, 256, NULL, CFG_RELOADABLE, false,
     "Client id csmcp authenticates with at the introspection endpoint (HTTP Basic); empty disables introspection."},
    {"auth", "introspection_secret_file", CFG_STR, OFF(auth_introspection_secret_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "File holding the introspection client secret (or CSMCP_INTROSPECTION_SECRET, or the systemd credential auth.introspection); never logged."},
    {"auth", "introspection_cache_ttl", CFG_INT, OFF(auth_introspection_cache_ttl), "10", 1, 300, NULL, CFG_RELOADABLE, false,
     "Seconds an introspection answer is reused for the same token on one worker: a revoked token stops working within this."},
    {"auth", "failed_per_minute", CFG_INT, OFF(auth_failed_per_minute), "60", 1, 1000000, NULL, CFG_RELOADABLE, false,
     "Credential checks per minute per client address for credentials not seen valid before (token bucket in Redis, a minute of burst); beyond it the address gets 429 with Retry-After. Bounds the database lookups a flood of made-up keys causes."},
    {"auth", "max_lookups_in_flight", CFG_INT, OFF(auth_max_lookups_in_flight), "64", 1, 100000, NULL, CFG_RELOADABLE, false,
     "API-key lookups one worker may have waiting for the database; more are refused at once (503, Retry-After: 1), never queued."},

    {"ratelimit", "enabled", CFG_BOOL, OFF(ratelimit_enabled), "true", 0, 0, NULL, CFG_RELOADABLE, false,
     "Enforce token-bucket rate limits (kept in Redis, exact across workers and hosts)."},
    {"ratelimit", "key_per_minute", CFG_INT, OFF(ratelimit_key_per_minute), "6000", 1, 10000000, NULL, CFG_RELOADABLE, false,
     "Requests per minute per API key."},
    {"ratelimit", "tool_per_minute", CFG_INT, OFF(ratelimit_tool_per_minute), "1200", 1, 10000000, NULL, CFG_RELOADABLE, false,
     "Calls per minute per API key and read tool."},
    {"ratelimit", "write_per_minute", CFG_INT, OFF(ratelimit_write_per_minute), "300", 1, 10000000, NULL, CFG_RELOADABLE, false,
     "Calls per minute per API key and write tool."},
    {"ratelimit", "lease_max", CFG_INT, OFF(ratelimit_lease_max), "100", 1, 10000, NULL, CFG_RELOADABLE, false,
     "Most tokens a worker takes from a Redis bucket at once and spends locally (1 = one Redis call per request); a lease never exceeds 1 % of a bucket's capacity divided among the workers."},
    {"ratelimit", "fail_open", CFG_BOOL, OFF(ratelimit_fail_open), "true", 0, 0, NULL, CFG_RELOADABLE, false,
     "When Redis is unavailable: true = fall back to a local per-worker limiter, false = refuse requests (503)."},

    {"mcp", "allowed_hosts", CFG_LIST, OFF(mcp_allowed_hosts), "localhost,127.0.0.1,[::1]", 0, 64, NULL, CFG_RELOADABLE, false,
     "Host header names (port ignored) accepted on /mcp (DNS-rebinding protection)."},
    {"mcp", "allowed_origins", CFG_LIST, OFF(mcp_allowed_origins), "", 0, 64, NULL, CFG_RELOADABLE, false,
     "Origin values accepted on /mcp besides http(s)://<allowed host>[:port]; a request with any other Origin gets 403."},
    {"mcp", "conformance_fixtures", CFG_BOOL, OFF(mcp_conformance_fixtures), "false", 0, 0, NULL, CFG_RELOADABLE, false,
     "Expose the official conformance suite's fixture tools, resources and prompts."},
    {"mcp", "read_only", CFG_BOOL, OFF(mcp_read_only), "false", 0, 0, NULL, CFG_RELOADABLE, false,
     "Serve only reads: tools/list omits every tool with no read call, and a call needing the write or admin scope is refused before it runs (-32602, data.read_only = true)."},
    {"mcp", "session_ttl", CFG_INT, OFF(mcp_session_ttl), "3600", 10, 2592000, NULL, CFG_RELOADABLE, false,
     "Seconds of inactivity after which a session expires (404)."},
    {"mcp", "max_sessions_per_principal", CFG_INT, OFF(mcp_max_sessions_per_principal), "100000", 0, 10000000, NULL, CFG_RELOADABLE, false,
     "Open sessions one principal (API key or JWT subject) may hold, all workers together (counted in Redis); initialize beyond it gets 429. 0 = no cap."},
    {"mcp", "max_streams_per_principal", CFG_INT, OFF(mcp_max_streams_per_principal), "1000", 0, 1000000, NULL, CFG_RELOADABLE, false,
     "Open GET event streams one principal may hold on one worker; more get 429. 0 = no cap."},
    {"mcp", "session_cache_ms", CFG_INT, OFF(mcp_session_cache_ms), "1000", 0, 5000, NULL, CFG_RELOADABLE, false,
     "Milliseconds a worker trusts a session it checked in Redis before checking again (0 = every request); a DELETE or logging/setLevel on any worker invalidates it at once over Redis pub/sub."},
    {"mcp", "session_secret_file", CFG_STR, OFF(mcp_session_secret_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "File with the HMAC key that signs Mcp-Session-Id (shared by all workers and hosts); also CSMCP_SESSION_SECRET."},
    {"mcp", "page_size", CFG_INT, OFF(mcp_page_size), "50", 1, 1000, NULL, CFG_RELOADABLE, false,
     "Items per page of tools/list, resources/list and prompts/list."},
    {"mcp", "call_timeout", CFG_INT, OFF(mcp_call_timeout), "60", 1, 3600, NULL, CFG_RELOADABLE, false,
     "Seconds a tool call (including sampling/elicitation round trips) may take."},

    {"secrets", "vault_key_file", CFG_STR, OFF(secrets_vault_key_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "File with the passphrase that encrypts stored integration credentials; also CSMCP_VAULT_KEY."},
    {"audit", "enabled", CFG_BOOL, OFF(audit_enabled), "true", 0, 0, NULL, CFG_RELOADABLE, false,
     "Write a hash-chained audit record for every tool call."},
    {"audit", "on_failure", CFG_STR, OFF(audit_on_failure), "refuse", 0, 8, audit_failure_modes, CFG_RELOADABLE, false,
     "refuse: a tool call is answered only once its audit record is durable (fsynced in the local spool, audit.spool_dir, or committed in PostgreSQL); while the backlog is full (audit.max_pending) new calls are refused (503) before they run, and records are retried until written, never dropped. drop: answer at once and drop records that cannot be written (counted; a gap in audit verify)."},
    {"audit", "max_pending", CFG_INT, OFF(audit_max_pending), "50000", 100, 10000000, NULL, CFG_RELOADABLE, false,
     "Audit records one worker may hold waiting for the database; with on_failure = refuse, tool calls beyond it are refused before they run."},
    {"audit", "spool_dir", CFG_STR, OFF(audit_spool_dir), "audit-spool", 0, 3800, NULL, CFG_RELOADABLE, false,
     "Directory of the local audit spool (relative to the working directory; /var/lib/csmcp under systemd). With on_failure = refuse every worker appends each audit record to its own write-ahead file here, fsynced by a writer thread every few milliseconds, and a tool call is answered once its record is fsynced here or committed in PostgreSQL (while at most max_pending / 2 records wait for PostgreSQL); the records then move into the hash chain in order, and the files a killed worker leaves are shipped by the other workers (idempotent by writer and seq). Empty: no spool, calls wait for the PostgreSQL commit. Only servers with the same database.url ship each other's files."},

    {"monitor", "enabled", CFG_BOOL, OFF(monitor_enabled), "false", 0, 0, NULL, CFG_RELOADABLE, false,
     "Run the csmcp-monitor process (the autonomous monitors and outbox delivery, docs/monitors.md) as an extra supervised slot. The shipped etc/csmcp.conf enables it."},
    {"monitor", "tick_ms", CFG_INT, OFF(monitor_tick_ms), "1000", 100, 60000, NULL, CFG_RELOADABLE, false,
     "How often the monitor process tries to lead, heartbeats, claims due runs and polls the outbox, in milliseconds."},
    {"monitor", "failover_timeout", CFG_INT, OFF(monitor_failover_timeout), "15", 3, 600, NULL, CFG_RELOADABLE, false,
     "Seconds after which a leader whose host or session went silent loses the leader lock (PostgreSQL idle_session_timeout, TCP keepalives and tcp_user_timeout of its session); another host takes over within it plus tick_ms."},
    {"monitor", "host_id", CFG_STR, OFF(monitor_host_id), "", 0, 200, NULL, CFG_RELOADABLE, false,
     "Name of this host in the leader row and monitor_runs; empty uses the hostname."},

    {"integrations", "max_attempts", CFG_INT, OFF(integrations_max_attempts), "8", 1, 100, NULL, CFG_RELOADABLE, false,
     "Delivery attempts of one outbox message before it is dead-lettered (state dead)."},
    {"integrations", "backoff_base_ms", CFG_INT, OFF(integrations_backoff_base_ms), "1000", 10, 600000, NULL, CFG_RELOADABLE, false,
     "First retry delay of a failed delivery in milliseconds; doubles per attempt, with jitter (a random value in [d/2, d])."},
    {"integrations", "backoff_max_ms", CFG_INT, OFF(integrations_backoff_max_ms), "300000", 100, 86400000, NULL, CFG_RELOADABLE, false,
     "Upper bound of the retry delay in milliseconds (a longer Retry-After from the provider is honoured, up to one hour)."},
    {"integrations", "timeout_ms", CFG_INT, OFF(integrations_timeout_ms), "10000", 100, 120000, NULL, CFG_RELOADABLE, false,
     "Timeout of one delivery HTTP request in milliseconds (connect included)."},
    {"integrations", "max_in_flight", CFG_INT, OFF(integrations_max_in_flight), "32", 1, 1000, NULL, CFG_RELOADABLE, false,
     "Delivery requests one monitor process has in flight at once, all channels together."},
    {"integrations", "breaker_failures", CFG_INT, OFF(integrations_breaker_failures), "5", 1, 1000, NULL, CFG_RELOADABLE, false,
     "Consecutive failed deliveries of one channel that open its circuit breaker."},
    {"integrations", "breaker_open_seconds", CFG_INT, OFF(integrations_breaker_open_seconds), "60", 1, 3600, NULL, CFG_RELOADABLE, false,
     "Seconds an open breaker holds a channel's deliveries; then one probe request decides (success closes it, failure reopens it)."},
    {"integrations", "sendgrid_url", CFG_STR, OFF(integrations_sendgrid_url), "https://api.sendgrid.com", 0, 1024, NULL, CFG_RELOADABLE, false,
     "Base URL of the SendGrid API (https; http only to a loopback address, for tests)."},
    {"integrations", "sendgrid_key_file", CFG_STR, OFF(integrations_sendgrid_key_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "File holding the SendGrid API key (mode 0600; or the systemd credential integrations.sendgrid). Empty: SendGrid messages are not delivered by this host."},
    {"integrations", "intercom_url", CFG_STR, OFF(integrations_intercom_url), "https://api.intercom.io", 0, 1024, NULL, CFG_RELOADABLE, false,
     "Base URL of the Intercom API."},
    {"integrations", "intercom_token_file", CFG_STR, OFF(integrations_intercom_token_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "File holding the Intercom access token (or the systemd credential integrations.intercom)."},
    {"integrations", "zendesk_url", CFG_STR, OFF(integrations_zendesk_url), "", 0, 1024, NULL, CFG_RELOADABLE, false,
     "Base URL of the Zendesk account, e.g. https://acme.zendesk.com."},
    {"integrations", "zendesk_credential_file", CFG_STR, OFF(integrations_zendesk_credential_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "File holding \"email/token:API_TOKEN\" for Zendesk basic authentication (or the systemd credential integrations.zendesk)."},
    {"integrations", "slack_webhook_file", CFG_STR, OFF(integrations_slack_webhook_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "File holding the Slack incoming-webhook URL, which is a secret (or the systemd credential integrations.slack)."},
    {"integrations", "webhook_url", CFG_STR, OFF(integrations_webhook_url), "", 0, 1024, NULL, CFG_RELOADABLE, false,
     "URL the generic webhook channel POSTs to."},
    {"integrations", "webhook_secret_file", CFG_STR, OFF(integrations_webhook_secret_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "File holding the generic webhook's HMAC-SHA256 signing secret (or the systemd credential integrations.webhook)."},
    {"integrations", "sendgrid_webhook_public_key_file", CFG_STR, OFF(integrations_sendgrid_webhook_public_key_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "File holding SendGrid's Signed Event Webhook verification key (the base64 DER public key SendGrid shows, or PEM; ECDSA P-256) for POST /hooks/sendgrid: requests must carry X-Twilio-Email-Event-Webhook-Signature (ECDSA over timestamp + body) and X-Twilio-Email-Event-Webhook-Timestamp. Empty: the route answers 404."},
    {"integrations", "sendgrid_webhook_max_age_s", CFG_INT, OFF(integrations_sendgrid_webhook_max_age_s), "300", 10, 86400, NULL, CFG_RELOADABLE, false,
     "Replay window of POST /hooks/sendgrid: a request whose X-Twilio-Email-Event-Webhook-Timestamp is more than this many seconds away from the server's clock is refused (401)."},

    {"integrations", "mixpanel_export_url", CFG_STR, OFF(integrations_mixpanel_export_url), "https://data.mixpanel.com/api/2.0/export", 0, 1024, NULL, CFG_RELOADABLE, false,
     "Mixpanel-compatible raw export endpoint the leading monitor pulls usage from (GET ?from_date=&to_date=, NDJSON)."},
    {"integrations", "mixpanel_secret_file", CFG_STR, OFF(integrations_mixpanel_secret_file), "", 0, 4096, NULL, CFG_RELOADABLE, false,
     "File holding the Mixpanel API secret (basic-auth user) or \"service_account:secret\" (or the systemd credential integrations.mixpanel). Empty: no pull."},
    {"integrations", "mixpanel_interval_s", CFG_INT, OFF(integrations_mixpanel_interval_s), "0", 0, 604800, NULL, CFG_RELOADABLE, false,
     "Seconds between Mixpanel export pulls by the leading monitor; 0 turns the pull off."},
    {"integrations", "mixpanel_client_property", CFG_STR, OFF(integrations_mixpanel_client_property), "client_id", 1, 100, NULL, CFG_RELOADABLE, false,
     "Event property holding the csmcp account id (client_id) in the Mixpanel export."},
    {"integrations", "mixpanel_backfill_days", CFG_INT, OFF(integrations_mixpanel_backfill_days), "1", 0, 365, NULL, CFG_RELOADABLE, false,
     "Days before today the first pull starts at (later pulls start at the last pull's end date)."},
    {"integrations", "mixpanel_max_bytes", CFG_INT, OFF(integrations_mixpanel_max_bytes), "67108864", 1024, 1073741824, NULL, CFG_RELOADABLE, false,
     "Largest export body one pull accepts; a larger one fails the pull (shorten mixpanel_interval_s)."},

    {"delivery", "reviewer_scope", CFG_STR, OFF(delivery_reviewer_scope), "admin", 0, 8, reviewer_scopes, CFG_RELOADABLE, false,
     "Scope that may approve, reject or edit outbound messages awaiting approval (review_outbound_messages): admin, or write. Which channels require approval is a database setting: integrations.settings.require_approval (docs/operations/scorecards.md)."},

    {"log", "level", CFG_STR, OFF(log_level), "info", 0, 16, log_levels, CFG_RELOADABLE, false,
     "Lowest level logged: debug, info, notice, warning, error, crit."},
    {"log", "format", CFG_STR, OFF(log_format), "text", 0, 8, log_formats, CFG_RELOADABLE, false,
     "text, or json (one JSON object per line)."},
};
/* clang-format on */
const size_t cfg_nkeys = sizeof(cfg_keys) / sizeof(cfg_keys[0]);

const struct cfg_key *cfg_find_key(const char *group, const char *name)
{
    for (size_t i = 0; i < cfg_nkeys; i++)
        if (strcmp(cfg_keys[i].group, group) == 0 && strcmp(cfg_keys[i].name, name) == 0)
            return &cfg_keys[i];
    return NULL;
}

static void list_free(struct cfg_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL) {
        fputs("out of memory\n", stderr);
        abort();
    }
    return d;
}

static void list_push(struct cfg_list *l, const char *s)
{
    char **v = realloc(l->v, sizeof(char *) * (size_t)(l->n + 1));
    if (v == NULL)
        abort();
    l->v = v;
    l->v[l->n++] = xstrdup(s);
}

static int errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Checks a value already stored for key k; where = "FILE:LINE" or "environment X". */
static int check_value(const struct cfg_key *k, struct cfg *c, const char *where, char *err,
                       size_t errlen)
{
    char *base = (char *)c;

    switch (k->type) {
    case CFG_INT: {
        int v = *(int *)(base + k->offset);
        if (v < k->min || v > k->max)
            return errf(err, errlen, "%s: %s.%s: %d is out of range [%ld, %ld]", where, k->group,
                        k->name, v, k->min, k->max);
        break;
    }
    case CFG_STR: {
        const char *v = *(char **)(base + k->offset);
        if ((long)strlen(v) < k->min)
            return errf(err, errlen, "%s: %s.%s: must not be empty", where, k->group, k->name);
        if ((long)strlen(v) > k->max)
            return errf(err, errlen, "%s: %s.%s: longer than %ld characters", where, k->group,
                        k->name, k->max);
        if (k->choices) {
            int ok = 0;
            for (const char *const *ch = k->choices; *ch; ch++)
                ok |= strcmp(*ch, v) == 0;
            if (!ok)
                return errf(err, errlen, "%s: %s.%s: \"%s\" is not one of the allowed values",
                            where, k->group, k->name, v);
        }
        break;
    }
    case CFG_LIST: {
        struct cfg_list *l = (struct cfg_list *)(base + k->offset);
        if (l->n > k->max)
            return errf(err, errlen, "%s: %s.%s: more than %ld items", where, k->group, k->name,
                        k->max);
        break;
    }
    case CFG_BOOL:
        break;
    }
    return 0;
}

/* Stores the textual value s (default or environment syntax) into c for key k. */
static int set_from_string(const struct cfg_key *k, struct cfg *c, const char *s, const char *where,
                           char *err, size_t errlen)
{
    char *base = (char *)c;

    switch (k->type) {
    case CFG_INT: {
        char *end;
        long v;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end != '\0' || v < INT_MIN || v > INT_MAX)
            return errf(err, errlen, "%s: %s.%s: \"%s\" is not an integer", where, k->group,
                        k->name, s);
        *(int *)(base + k->offset) = (int)v;
        break;
    }
    case CFG_BOOL: {
        bool *b = (bool *)(base + k->offset);
        if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes") ||
            !strcasecmp(s, "on"))
            *b = true;
        else if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no") ||
                 !strcasecmp(s, "off"))
            *b = false;
        else
            return errf(err, errlen, "%s: %s.%s: \"%s\" is not a boolean (true/false)", where,
                        k->group, k->name, s);
        break;
    }
    case CFG_STR: {
        char **p = (char **)(base + k->offset);
        free(*p);
        *p = xstrdup(s);
        break;
    }
    case CFG_LIST: {
        struct cfg_list *l = (struct cfg_list *)(base + k->offset);
        char *copy = xstrdup(s), *save = NULL, *tok;
        list_free(l);
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (isspace((unsigned char)*tok))
                tok++;
            size_t n = strlen(tok);
            while (n && isspace((unsigned char)tok[n - 1]))
                tok[--n] = '\0';
            if (n)
                list_push(l, tok);
        }
        free(copy);
        break;
    }
    }
    return 0;
}

static int set_from_setting(const struct cfg_key *k, struct cfg *c, config_setting_t *st,
                            const char *where, char *err, size_t errlen)
{
    char *base = (char *)c;
    int t = config_setting_type(st);

    switch (k->type) {
    case CFG_INT:
        if (t == CONFIG_TYPE_INT64) {
            long long v = config_setting_get_int64(st);
            if (v < INT_MIN || v > INT_MAX)
                return errf(err, errlen, "%s: %s.%s: %lld is out of range", where, k->group,
                            k->name, v);
            *(int *)(base + k->offset) = (int)v;
        } else if (t == CONFIG_TYPE_INT) {
            *(int *)(base + k->offset) = config_setting_get_int(st);
        } else {
            return errf(err, errlen, "%s: %s.%s: expected an integer", where, k->group, k->name);
        }
        break;
    case CFG_BOOL:
        if (t != CONFIG_TYPE_BOOL)
            return errf(err, errlen, "%s: %s.%s: expected true or false", where, k->group, k->name);
        *(bool *)(base + k->offset) = config_setting_get_bool(st) != 0;
        break;
    case CFG_STR: {
        char **p = (char **)(base + k->offset);
        if (t != CONFIG_TYPE_STRING)
            return errf(err, errlen, "%s: %s.%s: expected a string", where, k->group, k->name);
        free(*p);
        *p = xstrdup(config_setting_get_string(st));
        break;
    }
    case CFG_LIST: {
        struct cfg_list *l = (struct cfg_list *)(base + k->offset);
        if (t == CONFIG_TYPE_STRING) {
            list_free(l);
            list_push(l, config_setting_get_string(st));
            break;
        }
        if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
            return errf(err, errlen, "%s: %s.%s: expected a list of strings", where, k->group,
                        k->name);
        list_free(l);
        for (int i = 0; i < config_setting_length(st); i++) {
            config_setting_t *e = config_setting_get_elem(st, (unsigned)i);
            if (config_setting_type(e) != CONFIG_TYPE_STRING)
                return errf(err, errlen, "%s: %s.%s: item %d is not a string", where, k->group,
                            k->name, i);
            list_push(l, config_setting_get_string(e));
        }
        break;
    }
    }
    return 0;
}

static int load_file(const char *path, struct cfg *c, char *err, size_t errlen)
{
    config_t lc;
    config_setting_t *root;
    char where[4200];
    int rc = -1;

    config_init(&lc);
    if (config_read_file(&lc, path) != CONFIG_TRUE) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            errf(err, errlen, "%s: cannot read file: %s", path, strerror(errno));
        else
            errf(err, errlen, "%s:%d: syntax error: %s",
                 config_error_file(&lc) ? config_error_file(&lc) : path, config_error_line(&lc),
                 config_error_text(&lc));
        goto out;
    }
    root = config_root_setting(&lc);
    for (int i = 0; i < config_setting_length(root); i++) {
        config_setting_t *grp = config_setting_get_elem(root, (unsigned)i);
        const char *gname = config_setting_name(grp);
        if (config_setting_type(grp) != CONFIG_TYPE_GROUP) {
            errf(err, errlen, "%s:%d: %s: expected a group (%s = { ... })", path,
                 config_setting_source_line(grp), gname, gname);
            goto out;
        }
        for (int j = 0; j < config_setting_length(grp); j++) {
            config_setting_t *st = config_setting_get_elem(grp, (unsigned)j);
            const char *kname = config_setting_name(st);
            const struct cfg_key *k = cfg_find_key(gname, kname);
            snprintf(where, sizeof(where), "%s:%d", path, config_setting_source_line(st));
            if (k == NULL) {
                errf(err, errlen, "%s: %s.%s: unknown setting", where, gname, kname);
                goto out;
            }
            if (set_from_setting(k, c, st, where, err, errlen) < 0 ||
                check_value(k, c, where, err, errlen) < 0)
                goto out;
        }
    }
    rc = 0;
out:
    config_destroy(&lc);
    return rc;
}

static void env_name(const struct cfg_key *k, char *buf, size_t len)
{
    size_t p = (size_t)snprintf(buf, len, "CSMCP_%s_%s", k->group, k->name);
    for (size_t i = 0; i < p && i < len; i++)
        buf[i] = (char)toupper((unsigned char)buf[i]);
}

int cfg_load(const char *path, struct cfg *out, char *err, size_t errlen)
{
    struct cfg c;
    char where[128], name[96];

    memset(&c, 0, sizeof(c));
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        if (k->type == CFG_STR)
            *(char **)((char *)&c + k->offset) = xstrdup("");
        if (set_from_string(k, &c, k->def, "default", err, errlen) < 0)
            goto fail;
    }
    if (path && load_file(path, &c, err, errlen) < 0)
        goto fail;
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        const char *v;
        env_name(k, name, sizeof(name));
        v = getenv(name);
        if (v == NULL)
            continue;
        snprintf(where, sizeof(where), "environment %s", name);
        if (set_from_string(k, &c, v, where, err, errlen) < 0 ||
            check_value(k, &c, where, err, errlen) < 0)
            goto fail;
    }
    /* cross-key rules */
    if (c.server_backoff_min_ms > c.server_backoff_max_ms) {
        errf(err, errlen, "%s: server.backoff_min_ms: greater than server.backoff_max_ms",
             path ? path : "config");
        goto fail;
    }
    if (c.server_listen.n == 0 && getenv("LISTEN_FDS") == NULL) {
        errf(err, errlen, "%s: server.listen: no address to listen on", path ? path : "config");
        goto fail;
    }
    if (c.redis_sentinels.n > 0 && !c.redis_master_name[0]) {
        errf(err, errlen, "%s: redis.master_name: required when redis.sentinels is set",
             path ? path : "config");
        goto fail;
    }
    for (int i = 0; i < c.redis_sentinels.n; i++) {
        const char *v = c.redis_sentinels.v[i], *colon = strrchr(v, ':');
        if (colon == NULL || colon == v || !colon[1] ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
            errf(err, errlen, "%s: redis.sentinels: \"%s\": want host:port", path ? path : "config",
                 v);
            goto fail;
        }
    }
    if (c.tls_enabled && (!c.tls_cert_file[0] || !c.tls_key_file[0])) {
        errf(err, errlen, "%s: tls.enabled: needs tls.cert_file and tls.key_file",
             path ? path : "config");
        goto fail;
    }
    for (int i = 0; i < c.auth_issuer.n; i++) {
        const char *u = c.auth_issuer.v[i];
        if (strncmp(u, "https://", 8) != 0 || strlen(u) < 9 || strpbrk(u, "\"\\ ?#")) {
            errf(err, errlen,
                 "%s: auth.issuer: \"%s\" is not an https URL without query or fragment",
                 path ? path : "config", u);
            goto fail;
        }
    }
    if (c.auth_introspection_endpoint[0] &&
        strncmp(c.auth_introspection_endpoint, "https://", 8) != 0) {
        errf(err, errlen, "%s: auth.introspection_endpoint: must be an https URL",
             path ? path : "config");
        goto fail;
    }
    if ((c.auth_issuer.n > 0 || c.auth_introspection_client_id[0]) && !c.auth_jwt_audience[0] &&
        !c.auth_resource_url[0]) {
        errf(err, errlen,
             "%s: auth.issuer: needs auth.resource_url (or auth.jwt_audience), the audience "
             "tokens must be issued for (RFC 8707)",
             path ? path : "config");
        goto fail;
    }
    if (c.auth_jwks_refresh_min > c.auth_jwks_refresh_max) {
        errf(err, errlen, "%s: auth.jwks_refresh_min: greater than auth.jwks_refresh_max",
             path ? path : "config");
        goto fail;
    }
    c.path = path ? xstrdup(path) : NULL;
    *out = c;
    return 0;
fail:
    cfg_free(&c);
    return -1;
}

void cfg_free(struct cfg *c)
{
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        if (k->type == CFG_STR) {
            char **p = (char **)((char *)c + k->offset);
            free(*p);
            *p = NULL;
        } else if (k->type == CFG_LIST) {
            list_free((struct cfg_list *)((char *)c + k->offset));
        }
    }
    free(c->path);
    c->path = NULL;
}

static bool key_equal(const struct cfg_key *k, const struct cfg *a, const struct cfg *b)
{
    const char *pa = (const char *)a + k->offset, *pb = (const char *)b + k->offset;

    switch (k->type) {
    case CFG_INT:
        return *(const int *)pa == *(const int *)pb;
    case CFG_BOOL:
        return *(const bool *)pa == *(const bool *)pb;
    case CFG_STR:
        return strcmp(*(char *const *)pa, *(char *const *)pb) == 0;
    case CFG_LIST: {
        const struct cfg_list *la = (const void *)pa, *lb = (const void *)pb;
        if (la->n != lb->n)
            return false;
        for (int i = 0; i < la->n; i++)
            if (strcmp(la->v[i], lb->v[i]) != 0)
                return false;
        return true;
    }
    }
    return true;
}

int cfg_restart_diff(const struct cfg *a, const struct cfg *b, char *buf, size_t buflen)
{
    int n = 0;
    size_t pos = 0;

    if (buflen)
        buf[0] = '\0';
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        if (k->reload != CFG_RESTART || key_equal(k, a, b))
            continue;
        if (pos < buflen)
            pos += (size_t)snprintf(buf + pos, buflen - pos, "%s%s.%s", n ? ", " : "", k->group,
                                    k->name);
        n++;
    }
    return n;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t cfg_hash(const struct cfg *c)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < cfg_nkeys; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        const char *p = (const char *)c + k->offset;
        switch (k->type) {
        case CFG_INT:
            h = fnv(h, p, sizeof(int));
            break;
        case CFG_BOOL: {
            unsigned char b = *(const bool *)p;
            h = fnv(h, &b, 1);
            break;
        }
        case CFG_STR: {
            const char *s = *(char *const *)p;
            h = fnv(h, s, strlen(s) + 1);
            break;
        }
        case CFG_LIST: {
            const struct cfg_list *l = (const void *)p;
            for (int j = 0; j < l->n; j++)
                h = fnv(h, l->v[j], strlen(l->v[j]) + 1);
            h = fnv(h, "\x1e", 1);
            break;
        }
        }
    }
    return h;
}

static void print_value(FILE *f, const struct cfg_key *k, const struct cfg *c)
{
    const char *p = (const char *)c + k->offset;

    if (k->secret) {
        fputs("\"(secret)\"", f);
        return;
    }
    switch (k->type) {
    case CFG_INT:
        fprintf(f, "%d", *(const int *)p);
        break;
    case CFG_BOOL:
        fputs(*(const bool *)p ? "true" : "false", f);
        break;
    case CFG_STR:
        fprintf(f, "\"%s\"", *(char *const *)p);
        break;
    case CFG_LIST: {
        const struct cfg_list *l = (const void *)p;
        fputc('[', f);
        for (int j = 0; j < l->n; j++)
            fprintf(f, "%s\"%s\"", j ? ", " : "", l->v[j]);
        fputc(']', f);
        break;
    }
    }
}

void cfg_print(FILE *f, const struct cfg *c)
{
    for (size_t i = 0; i < cfg_nkeys; i++) {
        fprintf(f, "%s.%s = ", cfg_keys[i].group, cfg_keys[i].name);
        print_value(f, &cfg_keys[i], c);
        fputc('\n', f);
    }
}

void cfg_print_reference(FILE *f)
{
    static const char *tn[] = {"integer", "boolean", "string", "list"};
    char name[96];

    fputs("| key | type | default | bounds | reload | environment | meaning |\n"
          "|---|---|---|---|---|---|---|\n",
          f);
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        env_name(k, name, sizeof(name));
        fprintf(f, "| `%s.%s` | %s | `%s` | ", k->group, k->name, tn[k->type], k->def);
        if (k->type == CFG_INT)
            fprintf(f, "%ld..%ld", k->min, k->max);
        else if (k->choices) {
            for (const char *const *ch = k->choices; *ch; ch++)
                fprintf(f, "%s%s", ch == k->choices ? "" : ", ", *ch);
        } else if (k->type == CFG_LIST)
            fprintf(f, "≤ %ld items", k->max);
        else if (k->type == CFG_STR)
            fprintf(f, "≤ %ld chars", k->max);
        fprintf(f, " | %s | `%s` | %s |\n", k->reload == CFG_RESTART ? "restart" : "reload", name,
                k->doc);
    }
}
