/* Unit tests of settings: defaults, environment, flags, errors. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static char err[512];

static enum config_result load(struct config *c, int argc, char **argv)
{
    err[0] = '\0';
    return config_load(c, argc, argv, err, sizeof(err));
}

static void expect_error(const char *env, const char *value, const char *needle)
{
    struct config c;
    setenv(env, value, 1);
    char *argv[] = {"signal-node"};
    cr_assert_eq(load(&c, 1, argv), CONFIG_ERROR, "%s=%s accepted", env, value);
    cr_assert(strstr(err, needle) != NULL, "error \"%s\" does not name %s", err, needle);
    cr_assert_null(strchr(err, '\n'), "one line");
    config_free(&c);
    unsetenv(env);
}

Test(config, defaults)
{
    struct config c;
    char *argv[] = {"signal-node"};
    cr_assert_eq(load(&c, 1, argv), CONFIG_OK, "%s", err);
    cr_assert_null(c.listen_host);
    cr_assert_eq(c.listen_port, 8080);
    cr_assert_str_eq(c.path_prefix, "/api");
    cr_assert_null(c.redis_url);
    cr_assert_not_null(c.node_id);
    cr_assert_str_eq(c.jwt_alg, "HS256");
    cr_assert_null(c.jwt_secret);
    cr_assert_eq(c.jwt_leeway_s, 60);
    cr_assert_eq(c.membership, MEMBERSHIP_TOKEN);
    cr_assert_str_eq(c.membership_key, "chat:{room}:members");
    cr_assert_eq(c.max_message_bytes, 65536);
    cr_assert_eq(c.rate_per_s, 50);
    cr_assert_eq(c.rate_burst, 200);
    cr_assert_eq(c.rate_bytes_per_s, 0);
    cr_assert_eq(c.send_queue_bytes, 1048576);
    cr_assert_eq(c.send_queue_hard_bytes, 33554432);
    cr_assert_eq(c.slow_reader_s, 10);
    cr_assert_eq(c.send_memory_bytes, 268435456);
    cr_assert_eq(c.welcome_timeout_s, 10);
    cr_assert_eq(c.max_connections, 100000);
    cr_assert_eq(c.max_connections_per_account, 20);
    cr_assert_eq(c.join_rate_per_min, 30);
    cr_assert_eq(c.join_burst, 20);
    cr_assert_eq(c.drain_s, 20);
    cr_assert_eq(c.ping_s, 25);
    cr_assert_not(c.dev);
    cr_assert_str_eq(c.redis_prefix, "signal:");
    cr_assert_eq(c.node_ttl_s, 6);
    cr_assert_null(c.membership_redis_url);
    config_free(&c);
}

Test(config, cluster_settings)
{
    struct config c;
    setenv("SIGNAL_REDIS_PREFIX", "chat-7:", 1);
    setenv("SIGNAL_MEMBERSHIP", "redis", 1);
    setenv("SIGNAL_MEMBERSHIP_REDIS_URL", "redis://:pw@10.0.0.9:6400/3", 1);
    char *argv[] = {"signal-node", "--node-ttl-s", "4"};
    cr_assert_eq(load(&c, 3, argv), CONFIG_OK, "%s", err);
    cr_assert_str_eq(c.redis_prefix, "chat-7:");
    cr_assert_eq(c.node_ttl_s, 4);
    cr_assert_null(c.redis_url, "membership has its own Redis; the bus stays in-process");
    cr_assert_str_eq(c.membership_redis.host, "10.0.0.9");
    cr_assert_eq(c.membership_redis.port, 6400);
    cr_assert_str_eq(c.membership_redis.password, "pw");
    cr_assert_eq(c.membership_redis.db, 3);
    config_free(&c);
    unsetenv("SIGNAL_REDIS_PREFIX");
    unsetenv("SIGNAL_MEMBERSHIP");
    unsetenv("SIGNAL_MEMBERSHIP_REDIS_URL");
}

Test(config, cluster_errors)
{
    expect_error("SIGNAL_REDIS_PREFIX", "a|b", "SIGNAL_REDIS_PREFIX");
    expect_error("SIGNAL_REDIS_PREFIX", "has space", "SIGNAL_REDIS_PREFIX");
    expect_error("SIGNAL_NODE_TTL_S", "0", "SIGNAL_NODE_TTL_S");
    expect_error("SIGNAL_MEMBERSHIP_REDIS_URL", "http://x", "SIGNAL_MEMBERSHIP_REDIS_URL");
    expect_error("SIGNAL_NODE_ID", "a:b", "SIGNAL_NODE_ID");
    expect_error("SIGNAL_MEMBERSHIP", "redis", "SIGNAL_MEMBERSHIP_REDIS_URL");
}

Test(config, env_then_flags_win)
{
    struct config c;
    setenv("SIGNAL_LISTEN", "127.0.0.1:9000", 1);
    setenv("SIGNAL_RATE_PER_S", "7", 1);
    setenv("SIGNAL_PATH_PREFIX", "/sphere/", 1);
    char *argv[] = {"signal-node", "--listen",  "[::1]:9001", "--rate-burst=9",
                    "--dev",       "--node-id", "n1"};
    cr_assert_eq(load(&c, 7, argv), CONFIG_OK, "%s", err);
    cr_assert_str_eq(c.listen_host, "::1");
    cr_assert_eq(c.listen_port, 9001);
    cr_assert_eq(c.rate_per_s, 7);
    cr_assert_eq(c.rate_burst, 9);
    cr_assert_str_eq(c.path_prefix, "/sphere");
    cr_assert_str_eq(c.node_id, "n1");
    cr_assert(c.dev);
    config_free(&c);
}

Test(config, help)
{
    struct config c;
    char *argv[] = {"signal-node", "--help"};
    cr_assert_eq(load(&c, 2, argv), CONFIG_HELP);
    config_free(&c);
}

Test(config, bad_values_name_the_setting)
{
    expect_error("SIGNAL_LISTEN", "8080", "SIGNAL_LISTEN");
    expect_error("SIGNAL_LISTEN", "127.0.0.1:0", "SIGNAL_LISTEN");
    expect_error("SIGNAL_LISTEN", "127.0.0.1:70000", "SIGNAL_LISTEN");
    expect_error("SIGNAL_PATH_PREFIX", "api", "SIGNAL_PATH_PREFIX");
    expect_error("SIGNAL_REDIS_URL", "http://x:1", "SIGNAL_REDIS_URL");
    expect_error("SIGNAL_REDIS_URL", "redis://host:port", "SIGNAL_REDIS_URL");
    expect_error("SIGNAL_NODE_ID", "a b", "SIGNAL_NODE_ID");
    expect_error("SIGNAL_JWT_ALG", "none", "SIGNAL_JWT_ALG");
    expect_error("SIGNAL_JWT_ALG", "hs256", "SIGNAL_JWT_ALG");
    expect_error("SIGNAL_JWT_LEEWAY_S", "-1", "SIGNAL_JWT_LEEWAY_S");
    expect_error("SIGNAL_MEMBERSHIP", "ldap", "SIGNAL_MEMBERSHIP");
    expect_error("SIGNAL_MEMBERSHIP", "redis", "SIGNAL_MEMBERSHIP"); /* needs a Redis URL */
    expect_error("SIGNAL_MEMBERSHIP_KEY", "members", "SIGNAL_MEMBERSHIP_KEY");
    expect_error("SIGNAL_MAX_MESSAGE_BYTES", "64k", "SIGNAL_MAX_MESSAGE_BYTES");
    expect_error("SIGNAL_RATE_PER_S", "0", "SIGNAL_RATE_PER_S");
}

Test(config, empty_env_means_default)
{
    struct config c;
    setenv("SIGNAL_RATE_BURST", "", 1);
    char *argv[] = {"signal-node"};
    cr_assert_eq(load(&c, 1, argv), CONFIG_OK);
    cr_assert_eq(c.rate_burst, 200);
    config_free(&c);
}

Test(config, bad_flags)
{
    struct config c;
    char *a1[] = {"signal-node", "--no-such-flag", "1"};
    cr_assert_eq(load(&c, 3, a1), CONFIG_ERROR);
    cr_assert(strstr(err, "--no-such-flag"));
    config_free(&c);
    char *a2[] = {"signal-node", "--drain-s"};
    cr_assert_eq(load(&c, 2, a2), CONFIG_ERROR);
    cr_assert(strstr(err, "SIGNAL_DRAIN_S"));
    config_free(&c);
    char *a3[] = {"signal-node", "--send-queue-bytes", "12"};
    cr_assert_eq(load(&c, 3, a3), CONFIG_ERROR);
    cr_assert(strstr(err, "SIGNAL_SEND_QUEUE_BYTES"));
    config_free(&c);
}

Test(config, hard_bound_at_least_the_soft_one)
{
    struct config c;
    char *argv[] = {"signal-node", "--send-queue-hard-bytes", "2048", "--send-queue-bytes", "4096"};
    cr_assert_eq(load(&c, 5, argv), CONFIG_OK, "%s", err);
    cr_assert_eq(c.send_queue_hard_bytes, 4096);
    config_free(&c);
    char *big[] = {"signal-node", "--send-queue-bytes", "67108864"};
    cr_assert_eq(load(&c, 3, big), CONFIG_OK, "%s", err);
    cr_assert_eq(c.send_queue_hard_bytes, 67108864);
    config_free(&c);
}

Test(config, redis_urls)
{
    struct redis_url u;
    cr_assert_eq(redis_url_parse("redis://127.0.0.1:6391", &u), 0);
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_eq(u.port, 6391);
    cr_assert_null(u.user);
    cr_assert_null(u.password);
    cr_assert_eq(u.db, 0);
    redis_url_free(&u);

    cr_assert_eq(redis_url_parse("redis://:s%40cret@redis:6379/3", &u), 0);
    cr_assert_null(u.user);
    cr_assert_str_eq(u.password, "s@cret");
    cr_assert_str_eq(u.host, "redis");
    cr_assert_eq(u.db, 3);
    redis_url_free(&u);

    cr_assert_eq(redis_url_parse("redis://app:pw@[::1]:7000/", &u), 0);
    cr_assert_str_eq(u.user, "app");
    cr_assert_str_eq(u.password, "pw");
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 7000);
    redis_url_free(&u);

    cr_assert_eq(redis_url_parse("redis://localhost", &u), 0);
    cr_assert_eq(u.port, 6379);
    redis_url_free(&u);

    cr_assert_eq(redis_url_parse("redis://user@host:1", &u), -1);
    cr_assert_eq(redis_url_parse("redis://host:1/x", &u), -1);
    cr_assert_eq(redis_url_parse("redis://:1", &u), -1);
    cr_assert_eq(redis_url_parse("http://host:1", &u), -1);
    cr_assert_eq(redis_url_parse("redis://127.0.0.1:6379/abc", &u), -1, "a bad db, host freed");
    cr_assert_null(u.host);
    cr_assert_eq(redis_url_parse("redis://[::1:7000", &u), -1);
}

Test(config, redis_url_labels)
{
    struct redis_url u;
    cr_assert_eq(redis_url_parse("redis://:pw@10.0.0.5:6380/2", &u), 0);
    cr_assert_str_eq(u.label, "10.0.0.5:6380/2", "no password in a label");
    cr_assert_not(u.tls);
    cr_assert_null(u.master);
    redis_url_free(&u);
    cr_assert_eq(redis_url_parse("redis://[::1]:7000", &u), 0);
    cr_assert_str_eq(u.label, "[::1]:7000");
    redis_url_free(&u);
}

Test(config, rediss_urls)
{
    struct redis_url u;
    cr_assert_eq(redis_url_parse("rediss://default:pw@cache.example.com:6380/1", &u), 0);
    cr_assert(u.tls);
    cr_assert_str_eq(u.host, "cache.example.com");
    cr_assert_eq(u.port, 6380);
    cr_assert_str_eq(u.user, "default");
    cr_assert_eq(u.db, 1);
    redis_url_free(&u);
    cr_assert_eq(redis_url_parse("rediss://cache", &u), 0);
    cr_assert_eq(u.port, 6379);
    redis_url_free(&u);
}

Test(config, sentinel_urls)
{
    struct redis_url u;
    cr_assert_eq(redis_url_parse("redis+sentinel://:p%40ss@s1:26380,[::1],s3:1/mymaster/4", &u), 0);
    cr_assert_null(u.host, "the master is found through the sentinels");
    cr_assert_str_eq(u.password, "p@ss");
    cr_assert_str_eq(u.master, "mymaster");
    cr_assert_eq(u.db, 4);
    cr_assert_eq(u.n_sentinels, 3);
    cr_assert_str_eq(u.sentinels[0].host, "s1");
    cr_assert_eq(u.sentinels[0].port, 26380);
    cr_assert_str_eq(u.sentinels[1].host, "::1");
    cr_assert_eq(u.sentinels[1].port, 26379, "the default sentinel port");
    cr_assert_eq(u.sentinels[2].port, 1);
    cr_assert_str_eq(u.label, "sentinel mymaster/4");
    struct redis_url copy;
    redis_url_copy(&copy, &u);
    redis_url_free(&u);
    cr_assert_str_eq(copy.sentinels[1].host, "::1");
    cr_assert_str_eq(copy.master, "mymaster");
    redis_url_free(&copy);

    cr_assert_eq(redis_url_parse("redis+sentinel://s1/m", &u), 0);
    cr_assert_eq(u.db, 0);
    redis_url_free(&u);
    cr_assert_eq(redis_url_parse("redis+sentinel://s1", &u), -1, "no master name");
    cr_assert_eq(redis_url_parse("redis+sentinel://s1/", &u), -1);
    cr_assert_eq(redis_url_parse("redis+sentinel://s1,/m", &u), -1);
    cr_assert_eq(redis_url_parse("redis+sentinel:///m", &u), -1);
    cr_assert_eq(redis_url_parse("redis+sentinel://s1/m/x", &u), -1);
    cr_assert_eq(redis_url_parse("redis+sentinel://s1/m x", &u), -1);
}

Test(config, redis_url_lists)
{
    struct redis_url *v;
    size_t n;
    char why[256];
    cr_assert_eq(redis_url_list_parse("redis://a:1, rediss://b:2,redis+sentinel://s1,s2:7/m/3,"
                                      "redis://c",
                                      &v, &n, why, sizeof(why)),
                 0, "%s", why);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(v[0].label, "a:1");
    cr_assert(v[1].tls);
    cr_assert_eq(v[2].n_sentinels, 2, "a Sentinel URL's commas separate its sentinels");
    cr_assert_str_eq(v[2].label, "sentinel m/3");
    cr_assert_str_eq(v[3].label, "c:6379");
    for (size_t i = 0; i < n; i++)
        redis_url_free(&v[i]);
    free(v);

    cr_assert_eq(redis_url_list_parse("redis://a:1,redis://a:1/0", &v, &n, why, sizeof(why)), -1);
    cr_assert_str_eq(why, "entries 1 and 2 are the same Redis (a:1)");
    cr_assert_null(v);
    cr_assert_eq(n, 0);
    cr_assert_eq(redis_url_list_parse("redis://a:1,redis://b:x", &v, &n, why, sizeof(why)), -1);
    cr_assert(strstr(why, "entry 2: expected"), "%s", why);
    cr_assert_eq(redis_url_list_parse("redis://a:1,", &v, &n, why, sizeof(why)), -1);
    cr_assert_eq(redis_url_list_parse("redis://a:1,b:2", &v, &n, why, sizeof(why)), -1,
                 "only a Sentinel URL lists hosts");
}

Test(config, redis_shards_and_tls_settings)
{
    struct config c;
    setenv("SIGNAL_REDIS_URL", "redis://a:1,redis://b:2", 1);
    setenv("SIGNAL_MEMBERSHIP", "redis", 1);
    char *argv[] = {"signal-node"};
    cr_assert_eq(load(&c, 1, argv), CONFIG_ERROR);
    cr_assert_str_eq(
        err, "SIGNAL_MEMBERSHIP: redis with 2 Redis shards needs SIGNAL_MEMBERSHIP_REDIS_URL");
    config_free(&c);
    setenv("SIGNAL_MEMBERSHIP_REDIS_URL", "rediss://m:3", 1);
    cr_assert_eq(load(&c, 1, argv), CONFIG_OK, "%s", err);
    cr_assert_eq(c.n_redis, 2);
    cr_assert_str_eq(c.redis[1].host, "b");
    cr_assert(c.membership_redis.tls);
    config_free(&c);

    char *half[] = {"signal-node", "--redis-tls-cert-file", "/etc/hostname"};
    cr_assert_eq(load(&c, 3, half), CONFIG_ERROR);
    cr_assert_str_eq(err, "SIGNAL_REDIS_TLS_CERT_FILE: needs SIGNAL_REDIS_TLS_KEY_FILE too");
    config_free(&c);
    char *missing[] = {"signal-node", "--redis-tls-ca-file", "/nonexistent/ca.pem"};
    cr_assert_eq(load(&c, 3, missing), CONFIG_ERROR);
    cr_assert_str_eq(err, "SIGNAL_REDIS_TLS_CA_FILE: cannot read \"/nonexistent/ca.pem\" (No "
                          "such file or directory)");
    config_free(&c);
    unsetenv("SIGNAL_REDIS_URL");
    unsetenv("SIGNAL_MEMBERSHIP");
    unsetenv("SIGNAL_MEMBERSHIP_REDIS_URL");
}

Test(config, flag_overrides_a_bad_variable)
{
    struct config c;
    setenv("SIGNAL_LISTEN", "garbage", 1);
    char *argv[] = {"signal-node", "--listen", "127.0.0.1:9000"};
    cr_assert_eq(load(&c, 3, argv), CONFIG_OK, "%s", err);
    cr_assert_eq(c.listen_port, 9000);
    config_free(&c);
}

Test(config, operations_settings)
{
    struct config c;
    char *argv[] = {"signal-node"};
    cr_assert_eq(load(&c, 1, argv), CONFIG_OK, "%s", err);
    cr_assert_eq(c.admin_port, 0);
    cr_assert_eq(c.drain_close_s, 5);
    cr_assert_eq(c.log_format, LOG_JSON);
    config_free(&c);
    char *dev[] = {"signal-node", "--dev"};
    cr_assert_eq(load(&c, 2, dev), CONFIG_OK, "%s", err);
    cr_assert_eq(c.log_format, LOG_TEXT, "text under --dev");
    config_free(&c);
    char *json_dev[] = {"signal-node",    "--dev",          "--log-format",    "json",
                        "--admin-listen", "127.0.0.1:9090", "--drain-close-s", "0"};
    cr_assert_eq(load(&c, 8, json_dev), CONFIG_OK, "%s", err);
    cr_assert_eq(c.log_format, LOG_JSON);
    cr_assert_str_eq(c.admin_host, "127.0.0.1");
    cr_assert_eq(c.admin_port, 9090);
    cr_assert_eq(c.drain_close_s, 0);
    config_free(&c);
    expect_error("SIGNAL_LOG_FORMAT", "xml", "SIGNAL_LOG_FORMAT");
    expect_error("SIGNAL_ADMIN_LISTEN", "nope", "SIGNAL_ADMIN_LISTEN");
    expect_error("SIGNAL_ADMIN_LISTEN", "0.0.0.0:8080", "SIGNAL_ADMIN_LISTEN");
    expect_error("SIGNAL_DRAIN_CLOSE_S", "-1", "SIGNAL_DRAIN_CLOSE_S");
}

Test(config, allowed_origins)
{
    struct config c;
    char *argv[] = {"signal-node"};
    cr_assert_eq(load(&c, 1, argv), CONFIG_OK, "%s", err);
    cr_assert_eq(c.allowed_origins.n, 0, "unset: no list");
    config_free(&c);
    char *flags[] = {"signal-node", "--allowed-origins", "https://app.example.com, *.example.net"};
    cr_assert_eq(load(&c, 3, flags), CONFIG_OK, "%s", err);
    cr_assert_eq(c.allowed_origins.n, 2);
    cr_assert(origin_allowed(&c.allowed_origins, "http://a.example.net", 20));
    cr_assert_not(origin_allowed(&c.allowed_origins, "https://evil.test", 17));
    config_free(&c);
    expect_error("SIGNAL_ALLOWED_ORIGINS", "https://app.example.com/", "SIGNAL_ALLOWED_ORIGINS");
    expect_error("SIGNAL_ALLOWED_ORIGINS", "*", "SIGNAL_ALLOWED_ORIGINS");
}

Test(config, cluster_secret)
{
    struct config c;
    char *argv[] = {"signal-node"};
    cr_assert_eq(load(&c, 1, argv), CONFIG_OK, "%s", err);
    cr_assert_null(c.cluster_secret, "not authenticated by default");
    config_free(&c);
    setenv("SIGNAL_CLUSTER_SECRET", "0123456789abcdef", 1);
    setenv("SIGNAL_CLUSTER_SECRET_ACCEPT", "fedcba9876543210", 1);
    cr_assert_eq(load(&c, 1, argv), CONFIG_OK, "%s", err);
    cr_assert_str_eq(c.cluster_secret, "0123456789abcdef");
    cr_assert_str_eq(c.cluster_secret_accept, "fedcba9876543210");
    config_free(&c);
    unsetenv("SIGNAL_CLUSTER_SECRET");
    expect_error("SIGNAL_CLUSTER_SECRET_ACCEPT", "fedcba9876543210", "needs SIGNAL_CLUSTER_SECRET");
    expect_error("SIGNAL_CLUSTER_SECRET", "short-secret", "SIGNAL_CLUSTER_SECRET: at least 16");
    cr_assert_null(strstr(err, "short-secret"), "the secret is never echoed: %s", err);
}
