/* The node's settings (docs/configuration.md): defaults, environment variables
 * and --flags (flags win), validation with one clear line per bad value. */
#ifndef SIGNAL_CONFIG_H
#define SIGNAL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"
#include "origin.h"

/* One server named in a Redis URL. */
struct redis_host {
    char *host;
    int port;
};

/* One entry of SIGNAL_REDIS_URL (a shard), or SIGNAL_MEMBERSHIP_REDIS_URL:
 * redis://, rediss:// (TLS) or redis+sentinel:// (docs/configuration.md,
 * "The Redis URL"). */
struct redis_url {
    char *host; /* redis://, rediss://: the server; NULL with a master name */
    int port;
    char *user;     /* NULL when absent */
    char *password; /* NULL when absent; with Sentinel, the master's */
    int db;
    bool tls;                     /* rediss:// */
    char *master;                 /* redis+sentinel://: the master's name; else NULL */
    struct redis_host *sentinels; /* redis+sentinel://: where to ask, in order */
    size_t n_sentinels;
    char *label; /* for logs, metrics and /readyz: "host:port[/db]" or
                  * "sentinel master[/db]"; never a password */
};

enum membership_kind { MEMBERSHIP_TOKEN, MEMBERSHIP_REDIS };

struct config {
    char *listen_host; /* NULL = every address */
    int listen_port;
    char *admin_host;        /* NULL = every address */
    int admin_port;          /* 0 = no admin listener: the endpoints are on listen_port */
    char *path_prefix;       /* "" or "/x[/y]", no trailing slash */
    char *redis_url;         /* as written; NULL = single node, in-process bus */
    struct redis_url *redis; /* its entries, the shards, in order */
    size_t n_redis;          /* 0 without SIGNAL_REDIS_URL */
    char *redis_tls_ca_file; /* NULL = the system's CAs */
    char *redis_tls_cert_file, *redis_tls_key_file; /* both or neither */
    char *redis_prefix;
    long node_ttl_s;
    char *node_id;
    char *cluster_secret;        /* NULL = the bus's messages are not authenticated */
    char *cluster_secret_accept; /* also accepted on receipt, never signed with */
    char *jwt_alg;
    char *jwt_secret;
    char *jwt_key_file;
    char *jwt_issuer;
    char *jwt_audience;
    long jwt_leeway_s;
    struct origin_list allowed_origins; /* no list: every Origin */
    enum membership_kind membership;
    char *membership_key;       /* contains "{room}" */
    char *membership_redis_url; /* NULL = SIGNAL_REDIS_URL */
    struct redis_url membership_redis;
    long max_message_bytes;
    long rate_per_s;
    long rate_burst;
    long rate_bytes_per_s;
    long send_queue_bytes;      /* the soft bound */
    long send_queue_hard_bytes; /* >= send_queue_bytes */
    long slow_reader_s;
    long send_memory_bytes;
    long welcome_timeout_s;
    long max_connections;
    long max_handshakes;
    long max_connections_per_account;
    long join_rate_per_min;
    long join_burst;
    long drain_s;
    long drain_close_s;
    long ping_s;
    enum log_level log_level;
    enum log_format log_format;
    bool log_format_set;
    bool dev;
};

enum config_result { CONFIG_OK, CONFIG_HELP, CONFIG_ERROR };

/* Reads environ and argv into *c. On CONFIG_ERROR, err holds one line that
 * names the setting. The caller frees *c with config_free in every case. */
enum config_result config_load(struct config *c, int argc, char **argv, char *err, size_t errlen);
void config_free(struct config *c);
void config_usage(FILE *out);

/* Parses one Redis URL of any form into *out. Returns 0, or -1 (and *out
 * empty) when it is not one. */
int redis_url_parse(const char *url, struct redis_url *out);
/* Parses a comma-separated list of Redis URLs (a Sentinel URL's own commas
 * separate its sentinels) into a new array *out of *n entries. Returns 0,
 * or -1 with nothing allocated and why (size n_why) naming the bad entry. */
int redis_url_list_parse(const char *text, struct redis_url **out, size_t *n, char *why,
                         size_t n_why);
/* A deep copy of src into *dst. */
void redis_url_copy(struct redis_url *dst, const struct redis_url *src);
void redis_url_free(struct redis_url *u);

#endif
