/* Settings: one table lists every setting with its variable, flag, default and
 * parser, so that --help, the environment and the flags cannot drift apart. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "percent.h"
#include "xalloc.h"

struct setting {
    const char *env;
    const char *flag;
    const char *def;  /* NULL = unset */
    const char *help; /* ends with the default when it is not def */
    int (*parse)(struct config *c, const struct setting *s, const char *v, char *why, size_t n);
    size_t offset; /* of the field in struct config */
    long min, max; /* for integers */
};

#define FIELD(f) offsetof(struct config, f)
#define AT(c, s, type) ((type *)((char *)(c) + (s)->offset))

static int parse_string(struct config *c, const struct setting *s, const char *v, char *why,
                        size_t n)
{
    (void)why, (void)n;
    char **field = AT(c, s, char *);
    free(*field);
    *field = *v ? xstrdup(v) : NULL;
    return 0;
}

static int parse_long(struct config *c, const struct setting *s, const char *v, char *why, size_t n)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!isdigit((unsigned char)*v) || *end || errno) {
        snprintf(why, n, "expected a whole number, got \"%s\"", v);
        return -1;
    }
    if (x < s->min || x > s->max) {
        snprintf(why, n, "%ld is out of range [%ld, %ld]", x, s->min, s->max);
        return -1;
    }
    *AT(c, s, long) = x;
    return 0;
}

/* "host:port", "[ipv6]:port" or ":port" into *host (NULL = every address)
 * and *port. */
static int parse_address(const char *v, char **host_out, int *port_out, char *why, size_t n)
{
    const char *colon = strrchr(v, ':');
    const char *host = v, *host_end = colon;
    if (!colon) {
        snprintf(why, n, "expected address:port, got \"%s\"", v);
        return -1;
    }
    if (*v == '[') {
        host = v + 1;
        if (colon == v || colon[-1] != ']') {
            snprintf(why, n, "expected [ipv6]:port, got \"%s\"", v);
            return -1;
        }
        host_end = colon - 1;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!isdigit((unsigned char)colon[1]) || *end || port < 1 || port > 65535) {
        snprintf(why, n, "invalid port in \"%s\"", v);
        return -1;
    }
    size_t len = (size_t)(host_end - host);
    free(*host_out);
    *host_out = NULL;
    if (len && !(len == 7 && !strncmp(host, "0.0.0.0", 7)) &&
        !(len == 2 && !strncmp(host, "::", 2)))
        *host_out = xstrndup(host, len);
    *port_out = (int)port;
    return 0;
}

static int parse_listen(struct config *c, const struct setting *s, const char *v, char *why,
                        size_t n)
{
    (void)s;
    return parse_address(v, &c->listen_host, &c->listen_port, why, n);
}

static int parse_admin_listen(struct config *c, const struct setting *s, const char *v, char *why,
                              size_t n)
{
    (void)s;
    return parse_address(v, &c->admin_host, &c->admin_port, why, n);
}

static int parse_prefix(struct config *c, const struct setting *s, const char *v, char *why,
                        size_t n)
{
    (void)s;
    size_t len = strlen(v);
    while (len && v[len - 1] == '/')
        len--;
    if (len && (v[0] != '/' || strcspn(v, " \t?#%") < len)) {
        snprintf(why, n, "expected a path starting with /, got \"%s\"", v);
        return -1;
    }
    free(c->path_prefix);
    c->path_prefix = xstrndup(v, len);
    return 0;
}

#define REDIS_URL_FORMS                                                                            \
    "redis://[[user]:password@]host:port[/db], rediss://..., or "                                  \
    "redis+sentinel://[[user]:password@]host:port[,host:port...]/master[/db]"

/* The membership Redis: one URL into *text and *url; empty clears both. */
static int parse_membership_redis(struct config *c, const struct setting *s, const char *v,
                                  char *why, size_t n)
{
    (void)s;
    redis_url_free(&c->membership_redis);
    free(c->membership_redis_url);
    c->membership_redis_url = NULL;
    if (!*v)
        return 0;
    if (redis_url_parse(v, &c->membership_redis) < 0) {
        snprintf(why, n, "expected " REDIS_URL_FORMS ", got \"%s\"", v);
        return -1;
    }
    c->membership_redis_url = xstrdup(v);
    return 0;
}

static void free_redis_list(struct config *c)
{
    for (size_t i = 0; i < c->n_redis; i++)
        redis_url_free(&c->redis[i]);
    free(c->redis);
    c->redis = NULL;
    c->n_redis = 0;
    free(c->redis_url);
    c->redis_url = NULL;
}

/* The bus's Redis: a comma-separated list of URLs, one per shard. */
static int parse_redis(struct config *c, const struct setting *s, const char *v, char *why,
                       size_t n)
{
    (void)s;
    free_redis_list(c);
    if (!*v)
        return 0;
    if (redis_url_list_parse(v, &c->redis, &c->n_redis, why, n) < 0)
        return -1;
    c->redis_url = xstrdup(v);
    return 0;
}

/* Keys and channels are built by concatenation, and the Lua scripts split
 * them on ':' and '|', so a prefix stays printable and free of '|'. */
static int parse_redis_prefix(struct config *c, const struct setting *s, const char *v, char *why,
                              size_t n)
{
    (void)s;
    size_t len = strlen(v);
    for (size_t i = 0; i < len; i++) {
        if (!isgraph((unsigned char)v[i]) || v[i] == '|') {
            snprintf(why, n, "expected printable characters without spaces or '|', got \"%s\"", v);
            return -1;
        }
    }
    if (len > 64) {
        snprintf(why, n, "at most 64 characters, got %zu", len);
        return -1;
    }
    free(c->redis_prefix);
    c->redis_prefix = xstrdup(v);
    return 0;
}

static int parse_node_id(struct config *c, const struct setting *s, const char *v, char *why,
                         size_t n)
{
    size_t len = strlen(v);
    if (!len || len > 128 ||
        strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789._-") != len) {
        snprintf(why, n, "expected 1-128 letters, digits, '.', '_' or '-', got \"%s\"", v);
        return -1;
    }
    return parse_string(c, s, v, why, n);
}

/* A cluster secret: never echoed in an error, it may be a typo of the
 * real one. */
static int parse_cluster_secret(struct config *c, const struct setting *s, const char *v, char *why,
                                size_t n)
{
    if (strlen(v) < 16) {
        snprintf(why, n, "at least 16 bytes, got %zu (make one with openssl rand -hex 32)",
                 strlen(v));
        return -1;
    }
    return parse_string(c, s, v, why, n);
}

static int parse_alg(struct config *c, const struct setting *s, const char *v, char *why, size_t n)
{
    static const char *const algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                       "RS512", "ES256", "ES384", "ES512"};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (!strcmp(v, algs[i]))
            return parse_string(c, s, v, why, n);
    snprintf(why, n, "expected one of HS256/384/512, RS256/384/512, ES256/384/512, got \"%s\"", v);
    return -1;
}

static int parse_membership(struct config *c, const struct setting *s, const char *v, char *why,
                            size_t n)
{
    (void)s;
    if (!strcmp(v, "token"))
        c->membership = MEMBERSHIP_TOKEN;
    else if (!strcmp(v, "redis"))
        c->membership = MEMBERSHIP_REDIS;
    else {
        snprintf(why, n, "expected token or redis, got \"%s\"", v);
        return -1;
    }
    return 0;
}

static int parse_membership_key(struct config *c, const struct setting *s, const char *v, char *why,
                                size_t n)
{
    if (!strstr(v, "{room}")) {
        snprintf(why, n, "must contain {room}, got \"%s\"", v);
        return -1;
    }
    return parse_string(c, s, v, why, n);
}

static int parse_origins(struct config *c, const struct setting *s, const char *v, char *why,
                         size_t n)
{
    (void)s;
    origin_list_free(&c->allowed_origins);
    return origin_list_parse(v, &c->allowed_origins, why, n);
}

static int parse_log_level(struct config *c, const struct setting *s, const char *v, char *why,
                           size_t n)
{
    (void)s;
    if (log_level_parse(v, &c->log_level) < 0) {
        snprintf(why, n, "expected error, warn, info or debug, got \"%s\"", v);
        return -1;
    }
    return 0;
}

static int parse_log_format(struct config *c, const struct setting *s, const char *v, char *why,
                            size_t n)
{
    (void)s;
    if (log_format_parse(v, &c->log_format) < 0) {
        snprintf(why, n, "expected json or text, got \"%s\"", v);
        return -1;
    }
    c->log_format_set = true;
    return 0;
}

static int parse_bool(struct config *c, const struct setting *s, const char *v, char *why, size_t n)
{
    bool *field = AT(c, s, bool);
    if (!strcmp(v, "1") || !strcmp(v, "true"))
        *field = true;
    else if (!strcmp(v, "0") || !strcmp(v, "false"))
        *field = false;
    else {
        snprintf(why, n, "expected true or false, got \"%s\"", v);
        return -1;
    }
    return 0;
}

#define LONG_SETTING(env, flag, def, help, field, min, max)                                        \
    {                                                                                              \
        env, flag, def, help, parse_long, FIELD(field), min, max                                   \
    }

static const struct setting settings[] = {
    {"SIGNAL_LISTEN", "listen", "0.0.0.0:8080", "address:port for WebSocket and HTTP", parse_listen,
     0, 0, 0},
    {"SIGNAL_ADMIN_LISTEN", "admin-listen", NULL,
     "address:port for /healthz, /readyz and /metrics only; unset = on SIGNAL_LISTEN",
     parse_admin_listen, 0, 0, 0},
    {"SIGNAL_PATH_PREFIX", "path-prefix", "/api", "prefix of the signaling route", parse_prefix, 0,
     0, 0},
    {"SIGNAL_REDIS_URL", "redis-url", NULL,
     "redis://[[user]:password@]host:port[/db], rediss://... (TLS) or "
     "redis+sentinel://[[user]:password@]host:port[,host:port...]/master[/db]; several, "
     "comma-separated, shard the rooms; empty = single node",
     parse_redis, 0, 0, 0},
    {"SIGNAL_REDIS_PREFIX", "redis-prefix", "signal:",
     "prefix of every Redis key and channel the cluster uses", parse_redis_prefix, 0, 0, 0},
    {"SIGNAL_REDIS_TLS_CA_FILE", "redis-tls-ca-file", NULL,
     "with rediss://: PEM file of the CAs that sign Redis's certificate; unset = the system's",
     parse_string, FIELD(redis_tls_ca_file), 0, 0},
    {"SIGNAL_REDIS_TLS_CERT_FILE", "redis-tls-cert-file", NULL,
     "with rediss://: PEM client certificate, for a Redis that asks for one", parse_string,
     FIELD(redis_tls_cert_file), 0, 0},
    {"SIGNAL_REDIS_TLS_KEY_FILE", "redis-tls-key-file", NULL,
     "with rediss://: the client certificate's PEM private key", parse_string,
     FIELD(redis_tls_key_file), 0, 0},
    LONG_SETTING("SIGNAL_NODE_TTL_S", "node-ttl-s", "6",
                 "heartbeat TTL: a dead node's members leave 1.5-1.75 x this later, cluster-wide",
                 node_ttl_s, 1, 3600),
    {"SIGNAL_NODE_ID", "node-id", NULL,
     "this node's id in logs, metrics and Redis (default: the hostname)", parse_node_id,
     FIELD(node_id), 0, 0},
    {"SIGNAL_CLUSTER_SECRET", "cluster-secret", NULL,
     "with Redis: the secret that authenticates what nodes send each other (HMAC); unset = not "
     "authenticated",
     parse_cluster_secret, FIELD(cluster_secret), 0, 0},
    {"SIGNAL_CLUSTER_SECRET_ACCEPT", "cluster-secret-accept", NULL,
     "while the cluster secret changes: another secret whose messages are accepted too",
     parse_cluster_secret, FIELD(cluster_secret_accept), 0, 0},
    {"SIGNAL_JWT_ALG", "jwt-alg", "HS256", "the only JWT algorithm accepted", parse_alg,
     FIELD(jwt_alg), 0, 0},
    {"SIGNAL_JWT_SECRET", "jwt-secret", NULL, "HMAC secret (HS*)", parse_string, FIELD(jwt_secret),
     0, 0},
    {"SIGNAL_JWT_KEY_FILE", "jwt-key-file", NULL, "PEM public key file (RS*/ES*)", parse_string,
     FIELD(jwt_key_file), 0, 0},
    {"SIGNAL_JWT_ISSUER", "jwt-issuer", NULL, "required iss, checked when set", parse_string,
     FIELD(jwt_issuer), 0, 0},
    {"SIGNAL_JWT_AUDIENCE", "jwt-audience", NULL, "required aud, checked when set", parse_string,
     FIELD(jwt_audience), 0, 0},
    LONG_SETTING("SIGNAL_JWT_LEEWAY_S", "jwt-leeway-s", "60", "clock skew allowed on exp/nbf",
                 jwt_leeway_s, 0, 86400),
    {"SIGNAL_ALLOWED_ORIGINS", "allowed-origins", NULL,
     "origins a page may connect from, comma-separated: https://app.example.com, "
     "https://*.example.com; others get 403; unset = any",
     parse_origins, 0, 0, 0},
    {"SIGNAL_MEMBERSHIP", "membership", "token",
     "token: the JWT's rooms claim; redis: SISMEMBER on a Redis set", parse_membership, 0, 0, 0},
    {"SIGNAL_MEMBERSHIP_KEY", "membership-key", "chat:{room}:members",
     "with redis membership: the set to ask ({room} = room id)", parse_membership_key,
     FIELD(membership_key), 0, 0},
    {"SIGNAL_MEMBERSHIP_REDIS_URL", "membership-redis-url", NULL,
     "with redis membership: the Redis to ask, when not SIGNAL_REDIS_URL", parse_membership_redis,
     0, 0, 0},
    LONG_SETTING("SIGNAL_MAX_MESSAGE_BYTES", "max-message-bytes", "65536", "largest client message",
                 max_message_bytes, 16, 16L * 1024 * 1024),
    LONG_SETTING("SIGNAL_RATE_PER_S", "rate-per-s", "50", "client messages per second", rate_per_s,
                 1, 10000000),
    LONG_SETTING("SIGNAL_RATE_BURST", "rate-burst", "200", "client message burst", rate_burst, 1,
                 10000000),
    LONG_SETTING("SIGNAL_RATE_BYTES_PER_S", "rate-bytes-per-s", "0",
                 "bytes per second a connection may send, in bursts of twice that; 0 = no limit",
                 rate_bytes_per_s, 0, 1L << 30),
    LONG_SETTING("SIGNAL_SEND_QUEUE_BYTES", "send-queue-bytes", "1048576",
                 "soft bound: a client holding more than this for SIGNAL_SLOW_READER_S is closed "
                 "as too slow (4008)",
                 send_queue_bytes, 1024, 1L << 30),
    LONG_SETTING(
        "SIGNAL_SEND_QUEUE_HARD_BYTES", "send-queue-hard-bytes", "33554432",
        "hard bound: a packet that would take a client beyond it closes it at once (4008); "
        "at least SIGNAL_SEND_QUEUE_BYTES",
        send_queue_hard_bytes, 1024, 1L << 34),
    LONG_SETTING("SIGNAL_SLOW_READER_S", "slow-reader-s", "10",
                 "seconds a client may hold more than SIGNAL_SEND_QUEUE_BYTES", slow_reader_s, 1,
                 3600),
    LONG_SETTING("SIGNAL_SEND_MEMORY_BYTES", "send-memory-bytes", "268435456",
                 "memory all send queues may hold (each packet once); beyond it the clients "
                 "longest above SIGNAL_SEND_QUEUE_BYTES are closed first",
                 send_memory_bytes, 1L << 20, 1L << 40),
    LONG_SETTING("SIGNAL_WELCOME_TIMEOUT_S", "welcome-timeout-s", "10",
                 "seconds a client has to take its welcome before it is closed (4008)",
                 welcome_timeout_s, 1, 3600),
    LONG_SETTING("SIGNAL_MAX_CONNECTIONS", "max-connections", "100000",
                 "connections per node; beyond it upgrades get 503", max_connections, 1, 10000000),
    LONG_SETTING("SIGNAL_MAX_HANDSHAKES", "max-handshakes", "1024",
                 "connections whose request is not in yet; beyond it the oldest is dropped",
                 max_handshakes, 1, 10000000),
    LONG_SETTING("SIGNAL_MAX_CONNECTIONS_PER_ACCOUNT", "max-connections-per-account", "20",
                 "connections of one account on this node; beyond it upgrades get 429",
                 max_connections_per_account, 1, 10000000),
    LONG_SETTING("SIGNAL_JOIN_RATE_PER_MIN", "join-rate-per-min", "30",
                 "upgrades one account may make per minute on this node, beyond its burst",
                 join_rate_per_min, 1, 10000000),
    LONG_SETTING("SIGNAL_JOIN_BURST", "join-burst", "20",
                 "upgrades one account may make at once on this node; beyond it 429", join_burst, 1,
                 10000000),
    LONG_SETTING("SIGNAL_DRAIN_S", "drain-s", "20",
                 "on SIGTERM: seconds of draining before remaining clients are closed", drain_s, 0,
                 3600),
    LONG_SETTING("SIGNAL_DRAIN_CLOSE_S", "drain-close-s", "5",
                 "after the drain: seconds over which the remaining clients are closed, in small "
                 "batches",
                 drain_close_s, 0, 3600),
    LONG_SETTING("SIGNAL_PING_S", "ping-s", "25",
                 "keepalive: ping after this many idle seconds, drop after twice that", ping_s, 1,
                 3600),
    {"SIGNAL_LOG_LEVEL", "log-level", "info", "error, warn, info or debug", parse_log_level, 0, 0,
     0},
    {"SIGNAL_LOG_FORMAT", "log-format", NULL,
     "json (one object per line) or text (default: json; text under --dev)", parse_log_format, 0, 0,
     0},
    {"SIGNAL_DEV", "dev", "false",
     "development mode: random secret, prints ready URLs, serves the demo page", parse_bool,
     FIELD(dev), 0, 0},
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

void config_usage(FILE *out)
{
    fprintf(out, "Usage: signal-node [--flag value | --flag=value]...\n\n"
                 "Every setting is an environment variable and a flag; flags win.\n\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        if (strstr(s->help, "(default:"))
            fprintf(out, "  --%-19s %-25s %s\n", s->flag, s->env, s->help);
        else
            fprintf(out, "  --%-19s %-25s %s (default: %s)\n", s->flag, s->env, s->help,
                    s->def ? s->def : "none");
    }
    fprintf(out, "  --%-19s %-25s %s\n", "help", "", "print this help and exit");
}

static int apply(struct config *c, const struct setting *s, const char *v, char *err, size_t n)
{
    char why[256];
    if (s->parse(c, s, v, why, sizeof(why)) == 0)
        return 0;
    snprintf(err, n, "%s: %s", s->env, why);
    return -1;
}

static const struct setting *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strlen(settings[i].flag) == len && !strncmp(settings[i].flag, name, len))
            return &settings[i];
    return NULL;
}

/* Reads the flags into values[] (one per setting), without parsing them yet. */
static enum config_result read_flags(const char **values, int argc, char **argv, char *err,
                                     size_t n)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
            return CONFIG_HELP;
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, n, "unexpected argument \"%s\" (see --help)", arg);
            return CONFIG_ERROR;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct setting *s = find_flag(name, len);
        if (!s) {
            snprintf(err, n, "unknown flag \"%.*s\" (see --help)", (int)(len + 2), arg);
            return CONFIG_ERROR;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && s->parse == parse_bool)
            value = "true";
        if (!value && i + 1 < argc)
            value = argv[++i];
        if (!value) {
            snprintf(err, n, "%s: --%s needs a value", s->env, s->flag);
            return CONFIG_ERROR;
        }
        values[s - settings] = value;
    }
    return CONFIG_OK;
}

static int check_whole(struct config *c, char *err, size_t n)
{
    if (c->membership == MEMBERSHIP_REDIS && !c->redis_url && !c->membership_redis_url) {
        snprintf(err, n,
                 "SIGNAL_MEMBERSHIP: redis needs SIGNAL_REDIS_URL or SIGNAL_MEMBERSHIP_REDIS_URL");
        return -1;
    }
    /* The platform writes its membership sets to one Redis: with several
     * shards, which one is not ours to guess. */
    if (c->membership == MEMBERSHIP_REDIS && c->n_redis > 1 && !c->membership_redis_url) {
        snprintf(err, n,
                 "SIGNAL_MEMBERSHIP: redis with %zu Redis shards needs SIGNAL_MEMBERSHIP_REDIS_URL",
                 c->n_redis);
        return -1;
    }
    if (!c->redis_tls_cert_file != !c->redis_tls_key_file) {
        snprintf(
            err, n, "%s: needs %s too",
            c->redis_tls_cert_file ? "SIGNAL_REDIS_TLS_CERT_FILE" : "SIGNAL_REDIS_TLS_KEY_FILE",
            c->redis_tls_cert_file ? "SIGNAL_REDIS_TLS_KEY_FILE" : "SIGNAL_REDIS_TLS_CERT_FILE");
        return -1;
    }
    const char *const files[][2] = {{"SIGNAL_REDIS_TLS_CA_FILE", c->redis_tls_ca_file},
                                    {"SIGNAL_REDIS_TLS_CERT_FILE", c->redis_tls_cert_file},
                                    {"SIGNAL_REDIS_TLS_KEY_FILE", c->redis_tls_key_file}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (files[i][1] && access(files[i][1], R_OK) != 0) {
            snprintf(err, n, "%s: cannot read \"%s\" (%s)", files[i][0], files[i][1],
                     strerror(errno));
            return -1;
        }
    if (c->cluster_secret_accept && !c->cluster_secret) {
        snprintf(err, n, "SIGNAL_CLUSTER_SECRET_ACCEPT: needs SIGNAL_CLUSTER_SECRET");
        return -1;
    }
    /* A soft bound raised past the hard one (set before there was one)
     * takes it along. */
    if (c->send_queue_hard_bytes < c->send_queue_bytes)
        c->send_queue_hard_bytes = c->send_queue_bytes;
    if (!c->log_format_set)
        c->log_format = c->dev ? LOG_TEXT : LOG_JSON;
    if (c->admin_port && c->admin_port == c->listen_port &&
        (!c->admin_host || !c->listen_host || !strcmp(c->admin_host, c->listen_host))) {
        snprintf(err, n, "SIGNAL_ADMIN_LISTEN: must differ from SIGNAL_LISTEN (port %d)",
                 c->admin_port);
        return -1;
    }
    if (!c->node_id) {
        char host[256];
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "signal-node");
        host[sizeof(host) - 1] = '\0';
        /* The id is part of Redis keys split on ':'; keep it to the set a
         * SIGNAL_NODE_ID may use. */
        for (char *p = host; *p; p++)
            if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
                *p = '-';
        c->node_id = xstrdup(host);
    }
    return 0;
}

enum config_result config_load(struct config *c, int argc, char **argv, char *err, size_t n)
{
    memset(c, 0, sizeof(*c));
    const char *values[N_SETTINGS] = {0};
    enum config_result r = read_flags(values, argc, argv, err, n);
    if (r != CONFIG_OK)
        return r;
    /* A flag wins over the variable, which wins over the default; only the
     * winner is parsed, so a bad value that is overridden does no harm. */
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *v = values[i] ? values[i] : getenv(settings[i].env);
        if (!v || !*v)
            v = settings[i].def;
        if (v && apply(c, &settings[i], v, err, n) < 0)
            return CONFIG_ERROR;
    }
    return check_whole(c, err, n) < 0 ? CONFIG_ERROR : CONFIG_OK;
}

void config_free(struct config *c)
{
    free(c->listen_host);
    free(c->admin_host);
    free(c->path_prefix);
    free_redis_list(c);
    free(c->redis_tls_ca_file);
    free(c->redis_tls_cert_file);
    free(c->redis_tls_key_file);
    free(c->membership_redis_url);
    redis_url_free(&c->membership_redis);
    free(c->redis_prefix);
    free(c->node_id);
    free(c->cluster_secret);
    free(c->cluster_secret_accept);
    free(c->jwt_alg);
    free(c->jwt_secret);
    free(c->jwt_key_file);
    free(c->jwt_issuer);
    free(c->jwt_audience);
    origin_list_free(&c->allowed_origins);
    free(c->membership_key);
    memset(c, 0, sizeof(*c));
}

/* A part of a URL's userinfo, %-decoded into a new string. */
static char *decode_part(const char *s, size_t len)
{
    char *out = xmalloc(len + 1);
    percent_decode(out, s, len);
    return out;
}

/* "host[:port]" or "[v6]:port" in [p, end) into *h, the port defaulting
 * to def. Returns 0, or -1 with nothing allocated. */
static int parse_host(const char *p, const char *end, int def, struct redis_host *h)
{
    const char *colon = NULL;
    for (const char *q = end; q > p && q[-1] != ']'; q--)
        if (q[-1] == ':') {
            colon = q - 1;
            break;
        }
    const char *name_end = colon ? colon : end;
    if (name_end == p)
        return -1;
    h->port = def;
    if (colon) {
        char *num_end;
        long port = strtol(colon + 1, &num_end, 10);
        if (!isdigit((unsigned char)colon[1]) || num_end != end || port < 1 || port > 65535)
            return -1;
        h->port = (int)port;
    }
    bool bracketed = *p == '[' && name_end[-1] == ']';
    size_t len = (size_t)(name_end - p);
    /* A comma here is a second host where only a Sentinel URL may list
     * several. */
    if (bracketed ? len < 3 : memchr(p, '[', len) != NULL)
        return -1;
    for (const char *q = p; q < name_end; q++)
        if (!isgraph((unsigned char)*q) || strchr(",/@", *q))
            return -1;
    h->host = bracketed ? xstrndup(p + 1, (size_t)(name_end - p - 2))
                        : xstrndup(p, (size_t)(name_end - p));
    return 0;
}

/* A "/db" suffix, or nothing, in [p, end) into *db. */
static int parse_db(const char *p, const char *end, int *db)
{
    if (p == end || p + 1 == end)
        return 0;
    char *num_end;
    long v = strtol(p + 1, &num_end, 10);
    if (*p != '/' || !isdigit((unsigned char)p[1]) || num_end != end || v < 0 || v > INT_MAX)
        return -1;
    *db = (int)v;
    return 0;
}

/* The label: "host:port[/db]" ("[v6]:port" for IPv6) or, when sentinel,
 * "sentinel master[/db]" (name is the host or the master). */
static void make_label(struct redis_url *u, const char *name, bool sentinel)
{
    char db[16] = "";
    if (u->db)
        snprintf(db, sizeof(db), "/%d", u->db);
    size_t size = strlen(name) + 48;
    u->label = xmalloc(size);
    if (sentinel)
        snprintf(u->label, size, "sentinel %s%s", name, db);
    else if (strchr(name, ':'))
        snprintf(u->label, size, "[%s]:%d%s", name, u->port, db);
    else
        snprintf(u->label, size, "%s:%d%s", name, u->port, db);
}

static const char *const SCHEMES[] = {"redis://", "rediss://", "redis+sentinel://"};

/* The length of the scheme url starts with, or 0. */
static size_t scheme_len(const char *url, size_t *which)
{
    for (size_t i = 0; i < sizeof(SCHEMES) / sizeof(SCHEMES[0]); i++)
        if (!strncmp(url, SCHEMES[i], strlen(SCHEMES[i]))) {
            *which = i;
            return strlen(SCHEMES[i]);
        }
    return 0;
}

int redis_url_parse(const char *url, struct redis_url *out)
{
    memset(out, 0, sizeof(*out));
    size_t which, sl = scheme_len(url, &which);
    if (!sl)
        return -1;
    out->tls = which == 1;
    bool sentinel = which == 2;
    const char *p = url + sl, *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            return -1; /* docs/configuration.md, "The Redis URL": [user]:password@ */
        if (colon > p)
            out->user = decode_part(p, (size_t)(colon - p));
        out->password = decode_part(colon + 1, (size_t)(at - colon - 1));
        p = at + 1;
    }
    const char *slash = strchr(p, '/'), *end = p + strlen(p);
    const char *hosts_end = slash ? slash : end;
    if (!sentinel) {
        struct redis_host h;
        if (parse_host(p, hosts_end, 6379, &h) < 0)
            goto bad;
        out->host = h.host; /* owned by out from here, freed with it */
        out->port = h.port;
        if (parse_db(hosts_end, end, &out->db) < 0)
            goto bad;
        make_label(out, h.host, false);
        return 0;
    }
    /* host:port,host:port/master[/db] */
    for (const char *q = p; q < hosts_end;) {
        const char *comma = memchr(q, ',', (size_t)(hosts_end - q));
        const char *h_end = comma ? comma : hosts_end;
        struct redis_host h;
        if (parse_host(q, h_end, 26379, &h) < 0)
            goto bad;
        out->sentinels = xrealloc(out->sentinels, (out->n_sentinels + 1) * sizeof(h));
        out->sentinels[out->n_sentinels++] = h;
        q = comma ? comma + 1 : hosts_end;
        if (comma && q == hosts_end)
            goto bad; /* a trailing comma */
    }
    if (!out->n_sentinels || !slash)
        goto bad;
    const char *m = slash + 1, *m_end = strchr(m, '/');
    if (!m_end)
        m_end = end;
    if (m_end == m)
        goto bad;
    for (const char *q = m; q < m_end; q++)
        if (!isgraph((unsigned char)*q))
            goto bad;
    out->master = xstrndup(m, (size_t)(m_end - m));
    if (parse_db(m_end, end, &out->db) < 0)
        goto bad;
    make_label(out, out->master, true);
    return 0;
bad:
    redis_url_free(out);
    return -1;
}

int redis_url_list_parse(const char *text, struct redis_url **out, size_t *n, char *why,
                         size_t n_why)
{
    *out = NULL;
    *n = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        /* The entry runs to the next comma that starts another URL: the
         * commas between a Sentinel URL's hosts do not. */
        const char *e = p;
        size_t which;
        for (;;) {
            e += strcspn(e, ",");
            if (!*e)
                break;
            const char *next = e + 1;
            while (*next == ' ')
                next++;
            if (scheme_len(next, &which))
                break;
            e++;
        }
        size_t len = (size_t)(e - p);
        while (len && p[len - 1] == ' ')
            len--;
        char *one = xstrndup(p, len);
        struct redis_url u;
        if (redis_url_parse(one, &u) < 0) {
            snprintf(why, n_why, "entry %zu: expected " REDIS_URL_FORMS ", got \"%s\"", *n + 1,
                     one);
            free(one);
            goto bad;
        }
        free(one);
        for (size_t i = 0; i < *n; i++)
            if (!strcmp((*out)[i].label, u.label)) {
                snprintf(why, n_why, "entries %zu and %zu are the same Redis (%s)", i + 1, *n + 1,
                         u.label);
                redis_url_free(&u);
                goto bad;
            }
        *out = xrealloc(*out, (*n + 1) * sizeof(u));
        (*out)[(*n)++] = u;
        p = *e ? e + 1 : e;
        if (*e && !*p) {
            snprintf(why, n_why, "a comma ends the list");
            goto bad;
        }
    }
    if (*n)
        return 0;
    snprintf(why, n_why, "expected " REDIS_URL_FORMS ", got \"%s\"", text);
bad:
    for (size_t i = 0; i < *n; i++)
        redis_url_free(&(*out)[i]);
    free(*out);
    *out = NULL;
    *n = 0;
    return -1;
}

void redis_url_copy(struct redis_url *dst, const struct redis_url *src)
{
    *dst = *src;
    dst->host = src->host ? xstrdup(src->host) : NULL;
    dst->user = src->user ? xstrdup(src->user) : NULL;
    dst->password = src->password ? xstrdup(src->password) : NULL;
    dst->master = src->master ? xstrdup(src->master) : NULL;
    dst->sentinels = src->n_sentinels ? xmalloc(src->n_sentinels * sizeof(*src->sentinels)) : NULL;
    for (size_t i = 0; i < src->n_sentinels; i++) {
        dst->sentinels[i].host = xstrdup(src->sentinels[i].host);
        dst->sentinels[i].port = src->sentinels[i].port;
    }
    dst->label = xstrdup(src->label);
}

void redis_url_free(struct redis_url *u)
{
    free(u->host);
    free(u->user);
    free(u->password);
    free(u->master);
    for (size_t i = 0; i < u->n_sentinels; i++)
        free(u->sentinels[i].host);
    free(u->sentinels);
    free(u->label);
    memset(u, 0, sizeof(*u));
}
