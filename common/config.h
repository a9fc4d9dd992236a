/* The node's settings (docs/configuration.md): defaults, environment variables
 * and --flags (flags win), validation with one clear line per bad value. */
#ifndef SIGNAL_CONFIG_H
#define SIGNAL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"
#include "origin.h"

struct redis_url {
    char *host;
    int port;
    char *user;     /* NULL when absent */
    char *password; /* NULL when absent */
    int db;
};

enum membership_kind { MEMBERSHIP_TOKEN, MEMBERSHIP_REDIS };

struct config {
    char *listen_host; /* NULL = every address */
    int listen_port;
    char *admin_host;  /* NULL = every address */
    int admin_port;    /* 0 = no admin listener: the endpoints are on listen_port */
    char *path_prefix; /* "" or "/x[/y]", no trailing slash */
    char *redis_url;   /* NULL = single node, in-process bus */
    struct redis_url redis;
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

int redis_url_parse(const char *url, struct redis_url *out);
void redis_url_free(struct redis_url *u);

#endif
