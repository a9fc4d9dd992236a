/* Self-healing hiredis async connection, in plain TCP or TLS; see redis.h. */
#include "redis.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <hiredis/hiredis_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "log.h"
#include "rand.h"
#include "sentinel.h"
#include "timer.h"
#include "xalloc.h"

/* From the TCP connect to the handshake's last reply, TLS included;
 * hiredis's own connect_timeout would end with the TCP connect. */
#define CONNECT_TIMEOUT_MS 2000
#define BACKOFF_MIN_MS 100
/* With up to 50 % jitter a node retries at least every 1.5 s, so the cluster
 * is whole again about 1.5 s after Redis comes back; a connection attempt a
 * second per node is nothing to a Redis that is starting. */
#define BACKOFF_MAX_MS 1000
#define CLOSE_TIMEOUT_MS 1000

/* hiredis reads 16 KiB per call: a wakeup reads on while the socket holds
 * more, up to this many calls (1 MiB), so that a busy subscriber keeps up
 * with Redis instead of being cut at its output buffer limit. */
#define MAX_READS_PER_WAKEUP 64

static char last_step; /* privdata of the handshake's final command, ROLE */

/* The process's TLS context, for every rediss:// connection (redis_tls_init). */
static SSL_CTX *tls_ctx;

struct redis {
    struct event_base *evb;
    struct redis_url url;
    char *name;
    int shard;  /* -1: none */
    char *host; /* where it connects: the URL's, or the master the sentinels named */
    int port;
    char addr[320];            /* for logs: "host:port", "master NAME at host:port" */
    struct sentinel *sentinel; /* redis+sentinel:// URLs: the master's watcher */
    struct sentinel_ask *ask;  /* asking the sentinels where the master is */
    redisAsyncContext *ac;
    SSL *ssl;        /* r->ac's TLS session with rediss://, freed with it; else NULL */
    bool cert_asked; /* in that session, Redis asked for a client certificate we lack */
    bool connected, ready, was_up, freeing, closing;
    bool warned;             /* about failing to connect, since it was last up */
    bool tried;              /* an attempt to connect has ended, one way or the other */
    const char *drop_reason; /* why we dropped the connection ourselves */
    int backoff_ms;
    struct event *retry, *connect_timeout, *close_timeout;
    redis_state_fn on_state;
    void *arg;
    bool ever_up;
    uint64_t reconnects;
    struct redis *prev, *next; /* in `all`, for the metrics */
};

static struct redis *all; /* every connection of the process */

/* Arms the next attempt to connect, after the backoff and a jitter of up to
 * half of it, then doubles the backoff (up to BACKOFF_MAX_MS). */
static void schedule_retry(struct redis *r)
{
    if (r->freeing || r->closing)
        return;
    /* Each node draws its own jitter, so that they do not all come back to
     * Redis at the same instant (the modulo's bias is below 1e-6). */
    int jitter = (int)(rand_u32() % (uint32_t)(r->backoff_ms / 2 + 1));
    timer_add_ms(r->retry, r->backoff_ms + jitter);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void went_down(struct redis *r, const char *why)
{
    r->ready = false;
    if (!r->tried) { /* the first attempt failed: waiting on it is over */
        r->tried = true;
        if (r->on_state)
            r->on_state(r->arg, false);
    }
    if (r->was_up) {
        r->was_up = false;
        log_warn("redis_down", "redis %s: connection to %s lost (%s); reconnecting", r->name,
                 r->addr, why);
        if (r->on_state)
            r->on_state(r->arg, false);
    } else if (!r->warned) {
        r->warned = true;
        log_warn("redis_connect_failed", "redis %s: cannot connect to %s (%s); retrying", r->name,
                 r->addr, why);
    } else {
        log_debug("redis_connect_failed", "redis %s: cannot connect to %s (%s)", r->name, r->addr,
                  why);
    }
    schedule_retry(r);
}

/* Why r's TLS session ssl failed, in buf (size n): the certificate
 * check's verdict, or else OpenSSL's reason, or else what hiredis said (it
 * reports a failed TLS read or write as a bare I/O error). A Redis that
 * requires a client certificate and got none resets the connection after
 * the handshake, before its alert can be read: that gets a hint. */
static const char *tls_failure(const struct redis *r, const SSL *ssl, const char *said, char *buf,
                               size_t n)
{
    long verify = SSL_get_verify_result(ssl);
    const char *reason = ERR_reason_error_string(ERR_peek_last_error());
    const char *hint = r->cert_asked ? "; Redis asked for a client certificate, and "
                                       "SIGNAL_REDIS_TLS_CERT_FILE is unset"
                                     : "";
    if (verify != X509_V_OK)
        snprintf(buf, n, "TLS: certificate refused: %s", X509_verify_cert_error_string(verify));
    else if (reason)
        snprintf(buf, n, "TLS: %s%s", reason, hint);
    else
        snprintf(buf, n, "%s%s", said, hint);
    ERR_clear_error();
    return buf;
}

/* Why ac failed, for the logs: hiredis's text, or with TLS tls_failure's. */
static const char *failure(const struct redis *r, const redisAsyncContext *ac, char *buf, size_t n)
{
    return r->ssl ? tls_failure(r, r->ssl, ac->errstr, buf, n) : ac->errstr;
}

static void on_handshake(redisAsyncContext *ac, void *reply_, void *last)
{
    struct redis *r = ac->data;
    redisReply *reply = reply_;
    /* No reply: the connection is gone, and on_disconnect says why. */
    if (r->freeing || r->closing || !reply)
        return;
    /* A ROLE refused by an ACL of an earlier release is let pass, except
     * with Sentinel, where a failover makes it matter. */
    bool role_refused = last && !r->sentinel && reply->type == REDIS_REPLY_ERROR;
    if (reply->type == REDIS_REPLY_ERROR && !role_refused) {
        if (!r->warned)
            log_error("redis_handshake_failed", "redis %s: %s; retrying", r->name, reply->str);
        else
            log_debug("redis_handshake_failed", "redis %s: %s", r->name, reply->str);
        r->warned = true;
        redisAsyncDisconnect(ac);
        return;
    }
    if (!last)
        return;
    const char *role = reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                               reply->element[0]->type == REDIS_REPLY_STRING
                           ? reply->element[0]->str
                           : NULL;
    if (role && strcmp(role, "master") != 0) { /* never write to a replica: a demoted master */
        if (!r->warned)
            log_warn("redis_not_master", "redis %s: %s is a %s, not the master; retrying", r->name,
                     r->addr, role);
        r->warned = true;
        r->drop_reason = "not the master";
        redisAsyncDisconnect(ac);
        return;
    }
    evtimer_del(r->connect_timeout);
    r->ready = true;
    r->tried = true;
    r->warned = false;
    r->backoff_ms = BACKOFF_MIN_MS;
    if (!r->was_up) {
        r->was_up = true;
        r->reconnects += r->ever_up;
        r->ever_up = true;
        log_info("redis_up", "redis %s: connected to %s", r->name, r->addr);
        if (r->on_state)
            r->on_state(r->arg, true);
    }
}

static void on_connect(redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    if (status != REDIS_OK) {
        evtimer_del(r->connect_timeout);
        char buf[256];
        const char *why = failure(r, ac, buf, sizeof(buf));
        r->ac = NULL; /* hiredis frees it after this callback */
        went_down(r, why);
        return;
    }
    r->connected = true; /* the timeout runs on until AUTH/SELECT are done */
    bool select = r->url.db != 0;
    if (r->url.password) {
        if (r->url.user)
            redisAsyncCommand(ac, on_handshake, NULL, "AUTH %s %s", r->url.user, r->url.password);
        else
            redisAsyncCommand(ac, on_handshake, NULL, "AUTH %s", r->url.password);
    }
    if (select)
        redisAsyncCommand(ac, on_handshake, NULL, "SELECT %d", r->url.db);
    redisAsyncCommand(ac, on_handshake, &last_step, "ROLE");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    r->ac = NULL; /* hiredis frees it after this callback */
    r->connected = false;
    r->ready = false;
    evtimer_del(r->connect_timeout);
    evtimer_del(r->close_timeout);
    if (r->freeing || r->closing)
        return;
    char buf[256];
    const char *why = r->drop_reason       ? r->drop_reason
                      : status == REDIS_OK ? "closed"
                                           : failure(r, ac, buf, sizeof(buf));
    r->drop_reason = NULL;
    went_down(r, why);
}

void redis_drop(struct redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    if (!ac)
        return;
    if (r->connected) {
        /* Pending callbacks get NULL, then on_disconnect takes over. */
        r->drop_reason = why;
        redisAsyncFree(ac);
        return;
    }
    r->ac = NULL;
    evtimer_del(r->connect_timeout);
    redisAsyncFree(ac); /* not connected: no disconnect callback */
    went_down(r, why);
}

/* ---- the adapter between hiredis and the loop ---- */

/* As hiredis's own libevent adapter, less its timer (the node sets none of
 * hiredis's timeouts), with two differences: a read wakeup
 * drains the socket (up to MAX_READS_PER_WAKEUP), and Redis's events have
 * the loop's first priority (main.c sets up two), so that when the node is
 * saturated it reads Redis before its clients and Redis never has to cut
 * it off. Priorities only order what one wakeup found, though, and a
 * saturated node finds thousands of clients at once: redis_read_now lets
 * it read Redis between them too. */
struct loop_events {
    redisAsyncContext *ac;
    struct redis *r;
    struct event *rev, *wev;
};

/* True when there is more to read on r->ac: in the socket, or with TLS,
 * already decrypted in OpenSSL's buffer, where the socket no longer shows
 * it (its read-ahead stays off, so that nothing waits there undecrypted). */
static bool has_input(const struct redis *r)
{
    int queued = 0;
    if (r->ssl && SSL_pending(r->ssl) > 0)
        return true;
    return ioctl(r->ac->c.fd, FIONREAD, &queued) == 0 && queued > 0;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct loop_events *e = arg;
    struct redis *r = e->r;
    redisAsyncContext *ac = e->ac;
    for (int i = 0; i < MAX_READS_PER_WAKEUP; i++) {
        /* OpenSSL reads its error queue to tell a failure from a want-read,
         * and other OpenSSL users of the thread (libjwt) may leave errors there. */
        if (r->ssl)
            ERR_clear_error();
        redisAsyncHandleRead(ac);
        /* The context is gone (and e with it) once the connection dropped. */
        if (r->ac != ac || !has_input(r))
            return;
    }
    /* More to read: the socket wakes the loop again, but for bytes that
     * OpenSSL holds it would not until Redis sends more. */
    if (r->ssl && SSL_pending(r->ssl) > 0)
        event_active(e->rev, EV_READ, 0);
}

void redis_read_now(struct redis *r)
{
    if (r->connected && r->ac && has_input(r))
        on_readable(r->ac->c.fd, EV_READ, r->ac->ev.data);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct loop_events *e = arg;
    if (e->r->ssl)
        ERR_clear_error(); /* as in on_readable */
    redisAsyncHandleWrite(e->ac);
}

static void add_read(void *arg)
{
    event_add(((struct loop_events *)arg)->rev, NULL);
}

static void del_read(void *arg)
{
    event_del(((struct loop_events *)arg)->rev);
}

static void add_write(void *arg)
{
    event_add(((struct loop_events *)arg)->wev, NULL);
}

static void del_write(void *arg)
{
    event_del(((struct loop_events *)arg)->wev);
}

static void cleanup(void *arg)
{
    struct loop_events *e = arg;
    event_free(e->rev);
    event_free(e->wev);
    free(e);
}

static void attach(struct redis *r, redisAsyncContext *ac)
{
    struct loop_events *e = xcalloc(1, sizeof(*e));
    e->ac = ac;
    e->r = r;
    e->rev = event_new(r->evb, ac->c.fd, EV_READ, on_readable, e);
    e->wev = event_new(r->evb, ac->c.fd, EV_WRITE, on_writable, e);
    event_priority_set(e->rev, 0);
    event_priority_set(e->wev, 0);
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = e;
    event_add(e->rev, NULL);
    event_add(e->wev, NULL);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    redis_drop(arg, "connect timeout");
}

/* OpenSSL asks when Redis requests a client certificate and none is set:
 * none is sent, and a failure that follows says why (tls_failure). */
static int on_cert_request(SSL *ssl, X509 **cert, EVP_PKEY **key)
{
    (void)cert, (void)key;
    struct redis *r = SSL_get_app_data(ssl);
    r->cert_asked = true;
    return 0;
}

/* Puts ac in TLS with a session of tls_ctx that checks the certificate's
 * name against the URL's host: hiredis's own TLS context would only send
 * the name (SNI), never check it. Returns the session, or NULL with why
 * (size n). */
static SSL *start_tls(struct redis *r, redisAsyncContext *ac, char *why, size_t n)
{
    SSL *ssl = SSL_new(tls_ctx);
    if (!ssl) {
        snprintf(why, n, "TLS: out of memory");
        return NULL;
    }
    r->cert_asked = false;
    SSL_set_app_data(ssl, r); /* for on_cert_request */
    const char *host = r->url.host;
    unsigned char addr[16];
    bool literal = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    /* An IP address is checked against the certificate's IP entries, and
     * is never sent as SNI (RFC 6066). */
    bool ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1
                      : SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
    if (!ok) {
        snprintf(why, n, "TLS: cannot set the server name %s", host);
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    ERR_clear_error();
    /* This starts the handshake, which may end here on a fast network. */
    if (redisInitiateSSL(&ac->c, ssl) != REDIS_OK) { /* ssl is still ours */
        tls_failure(r, ssl, ac->c.errstr, why, n);
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

static void start_connect(struct redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    char why[256];
    if (!ac || ac->err) { /* a name that does not resolve, say */
        snprintf(why, sizeof(why), "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        went_down(r, why);
        return;
    }
    r->ssl = NULL;
    if (r->url.tls && !(r->ssl = start_tls(r, ac, why, sizeof(why)))) {
        redisAsyncFree(ac);
        went_down(r, why);
        return;
    }
    ac->data = r;
    attach(r, ac);
    redisAsyncSetConnectCallbackNC(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    timer_add_ms(r->connect_timeout, CONNECT_TIMEOUT_MS);
}

/* ---- Sentinel ---- */

static void on_master_found(void *arg, const char *host, int port, const char *why)
{
    struct redis *r = arg;
    r->ask = NULL;
    if (!host) {
        went_down(r, why);
        return;
    }
    free(r->host);
    r->host = xstrdup(host);
    r->port = port;
    snprintf(r->addr, sizeof(r->addr), "master %s at %s:%d", r->url.master, host, port);
    start_connect(r);
}

/* An attempt to connect: to the URL's server, or where the sentinels say
 * the master is. */
static void start_attempt(struct redis *r)
{
    if (r->sentinel)
        r->ask = sentinel_ask(r->sentinel, on_master_found, r);
    else
        start_connect(r);
}

/* The sentinels moved the master: a connection elsewhere goes at once, and
 * one waiting to retry tries now. */
static void on_master_switched(void *arg, const char *host, int port)
{
    struct redis *r = arg;
    if (r->freeing || r->closing)
        return;
    r->backoff_ms = BACKOFF_MIN_MS;
    if (r->ac && (strcmp(r->host, host) != 0 || r->port != port)) {
        redis_drop(r, "the sentinels moved the master");
    } else if (evtimer_pending(r->retry, NULL)) {
        evtimer_del(r->retry);
        schedule_retry(r);
    }
}

static void on_close_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct redis *r = arg;
    if (r->ac)
        redisAsyncFree(r->ac); /* pending callbacks get NULL; on_disconnect runs */
}

void redis_close(struct redis *r)
{
    if (!r || r->closing)
        return;
    r->closing = true;
    r->ready = false;
    sentinel_ask_cancel(r->ask);
    r->ask = NULL;
    sentinel_detach(r->sentinel, r); /* the last one ends the watch: the loop may end */
    r->sentinel = NULL;
    evtimer_del(r->retry);
    evtimer_del(r->connect_timeout);
    if (!r->ac)
        return;
    if (!r->connected) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac);
        return;
    }
    /* Armed first: with no reply due, the disconnect (and on_disconnect,
     * which disarms it) happens at once. */
    timer_add_ms(r->close_timeout, CLOSE_TIMEOUT_MS);
    redisAsyncDisconnect(r->ac); /* after the replies still due */
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    start_attempt(arg);
}

struct redis *redis_new(struct event_base *evb, const struct redis_url *url, const char *name,
                        redis_state_fn on_state, void *arg)
{
    struct redis *r = xcalloc(1, sizeof(*r));
    r->evb = evb;
    redis_url_copy(&r->url, url);
    r->name = xstrdup(name);
    r->shard = -1;
    r->on_state = on_state;
    r->arg = arg;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->retry = evtimer_new(evb, on_retry, r);
    r->connect_timeout = evtimer_new(evb, on_connect_timeout, r);
    r->close_timeout = evtimer_new(evb, on_close_timeout, r);
    if (url->master) {
        r->sentinel = sentinel_attach(evb, url, on_master_switched, r);
        snprintf(r->addr, sizeof(r->addr), "master %s", url->master);
    } else {
        r->host = xstrdup(url->host);
        r->port = url->port;
        snprintf(r->addr, sizeof(r->addr), "%s:%d", url->host, url->port);
    }
    r->next = all;
    if (all)
        all->prev = r;
    all = r;
    start_attempt(r);
    return r;
}

void redis_free(struct redis *r)
{
    if (!r)
        return;
    r->freeing = true;
    sentinel_ask_cancel(r->ask);
    sentinel_detach(r->sentinel, r);
    if (r->ac)
        redisAsyncFree(r->ac);
    if (r->prev)
        r->prev->next = r->next;
    else
        all = r->next;
    if (r->next)
        r->next->prev = r->prev;
    event_free(r->retry);
    event_free(r->connect_timeout);
    event_free(r->close_timeout);
    redis_url_free(&r->url);
    free(r->host);
    free(r->name);
    free(r);
}

void redis_each(redis_each_fn fn, void *arg)
{
    for (const struct redis *r = all; r; r = r->next)
        fn(arg, r->name, r->shard, r->ready, r->reconnects);
}

void redis_set_shard(struct redis *r, int shard)
{
    r->shard = shard;
}

bool redis_ready(const struct redis *r)
{
    return r->ready;
}

bool redis_connecting(const struct redis *r)
{
    return !r->tried && !r->closing;
}

int redis_command(struct redis *r, redisCallbackFn *fn, void *privdata, const char *fmt, ...)
{
    if (!r->ready || !r->ac)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(r->ac, fn, privdata, fmt, ap);
    va_end(ap);
    return rc == REDIS_OK ? 0 : -1;
}

int redis_formatted(struct redis *r, redisCallbackFn *fn, void *privdata, const char *cmd,
                    size_t len)
{
    if (!r->ready || !r->ac)
        return -1;
    return redisAsyncFormattedCommand(r->ac, fn, privdata, cmd, len) == REDIS_OK ? 0 : -1;
}

size_t redis_unsent_bytes(const struct redis *r)
{
    return r->ac ? sdslen(r->ac->c.obuf) : 0;
}

/* ---- TLS ---- */

/* What OpenSSL says about its last error, for a start-up message. */
static const char *tls_error(void)
{
    const char *reason = ERR_reason_error_string(ERR_peek_last_error());
    return reason ? reason : "unknown error";
}

/* Gives OpenSSL no passphrase for an encrypted key file, which then fails
 * to load: by default OpenSSL would ask on the terminal, and the node
 * would wait there at start. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf, (void)size, (void)rwflag, (void)arg;
    return 0;
}

int redis_tls_init(const struct config *c, char *why, size_t n)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(why, n, "TLS: %s", tls_error());
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_client_cert_cb(ctx, on_cert_request);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (c->redis_tls_ca_file ? SSL_CTX_load_verify_locations(ctx, c->redis_tls_ca_file, NULL) != 1
                             : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(why, n, "SIGNAL_REDIS_TLS_CA_FILE: cannot load %s: %s",
                 c->redis_tls_ca_file ? c->redis_tls_ca_file : "the system's CAs", tls_error());
        goto fail;
    }
    if (c->redis_tls_cert_file &&
        SSL_CTX_use_certificate_chain_file(ctx, c->redis_tls_cert_file) != 1) {
        snprintf(why, n, "SIGNAL_REDIS_TLS_CERT_FILE: cannot load %s: %s", c->redis_tls_cert_file,
                 tls_error());
        goto fail;
    }
    if (c->redis_tls_key_file &&
        (SSL_CTX_use_PrivateKey_file(ctx, c->redis_tls_key_file, SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(ctx) != 1)) {
        snprintf(why, n,
                 "SIGNAL_REDIS_TLS_KEY_FILE: cannot use %s (expected the unencrypted PEM key of "
                 "SIGNAL_REDIS_TLS_CERT_FILE's certificate): %s",
                 c->redis_tls_key_file, tls_error());
        goto fail;
    }
    ERR_clear_error();
    tls_ctx = ctx;
    return 0;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return -1;
}

void redis_tls_free(void)
{
    SSL_CTX_free(tls_ctx);
    tls_ctx = NULL;
}
