/* signal-bench's command line: the usage text, parsing and checking each
 * option, node URLs and source address ranges. See bench.h. */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: signal-bench [options]\n"
    "Opens authenticated WebSocket connections to signal-node (or any server of\n"
    "the same contract) in rooms, sends bench signals through them, and checks and\n"
    "times every delivery. Latency is receive time - send time on CLOCK_MONOTONIC.\n"
    "\n"
    "  --url ws://HOST:PORT     a node; repeatable, or a comma list (default\n"
    "                           ws://127.0.0.1:8080); member i of each room\n"
    "                           connects to URL number i % (number of URLs)\n"
    "  --path-prefix P          the route's prefix (default /api):\n"
    "                           P/chat/realtime/{room}?tk=TOKEN\n"
    "  --secret S               HS256 secret for the tokens (default:\n"
    "                           $SIGNAL_JWT_SECRET)\n"
    "  --connections N          connections to open (default 100)\n"
    "  --room-size S            members per room (default 2); the last room takes\n"
    "                           what is left\n"
    "  --source-ips LIST        source IPv4 addresses, each A or A-B, comma-separated\n"
    "                           (e.g. 127.0.0.1-127.0.0.8); connections bind them in\n"
    "                           turn, for more than one address's ports\n"
    "  --workers K              worker processes, each with a slice of the rooms\n"
    "                           (default: as few as the open-file limit allows)\n"
    "  --connect-concurrency C  connections being set up at once, over all workers\n"
    "                           (default 200)\n"
    "  --connect-timeout S      seconds from connect to welcome before a connection\n"
    "                           counts as failed (default 10)\n"
    "  --rate R                 open loop: signals per second per member (default 1;\n"
    "                           0 holds the connections idle)\n"
    "  --saturate               closed loop: every member sends as fast as its window\n"
    "                           allows\n"
    "  --window W               closed loop: signals a sender may have outstanding,\n"
    "                           sent but not yet received by every other live member\n"
    "                           of its room (default 8); a slow window only waits,\n"
    "                           but one that has not moved for the --drain bound is\n"
    "                           given up (its signals count as lost unless they\n"
    "                           arrive), and a member whose connection ends no longer\n"
    "                           holds up the others' windows\n"
    "  --duration D             seconds of load: the measurement window (default 10)\n"
    "  --drain D                after the load nothing is sent, and signals in flight\n"
    "                           may arrive until all have, none has for 2 s, or D\n"
    "                           seconds have passed (1 to 3600, default 30)\n"
    "  --json                   print one JSON object instead of the table\n"
    "  --help                   this text\n"
    "\n"
    "The report: deliveries/s counts the signals received during the window;\n"
    "latency, the signals sent during it, whenever they arrive; lost = expected -\n"
    "delivered after the drain (expected: each signal sent times its room's other\n"
    "live members), next to the deliveries in flight when the window closed, how\n"
    "long the drain took and why it ended (complete, quiet or bound: a bound drain\n"
    "means a longer --drain may find fewer lost); reordered counts signals\n"
    "received at or below a sequence already seen from their sender; errors adds\n"
    "failed connects, error packets, unexpected closes, signals from another room\n"
    "(or one's own) and protocol breaches. A member alone in its room sends\n"
    "nothing.\n"
    "\n"
    "The node's rate limit applies (SIGNAL_RATE_PER_S, 50 messages/s by default):\n"
    "raise it for --saturate or high rates, or refused signals count as error\n"
    "packets and as lost.\n"
    "\n"
    "Exit code: 0 when the run completed (losses and errors are in the report),\n"
    "1 when it could not run (no connection possible), 2 on bad usage.\n";

void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("signal-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(EXIT_USAGE);
}

/* The integer s, the value of opt, within [min, max]; dies otherwise. */
static uint64_t parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < min || v > max)
        usage_error("%s: expected an integer from %" PRIu64 " to %" PRIu64 ", got \"%s\"", opt, min,
                    max, s);
    return v;
}

/* The number s, the value of opt, within [min, max]; dies otherwise. */
static double parse_num(const char *opt, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        usage_error("%s: expected a number from %g to %g, got \"%s\"", opt, min, max, s);
    return v;
}

/* Adds the node URL text (len bytes, ws://HOST[:PORT]) to o; dies when it is
 * not one or its host does not resolve to an IPv4 address. */
static void add_url(struct bench_opts *o, const char *text, size_t len)
{
    char *url = xstrndup(text, len);
    if (strncmp(url, "ws://", 5) != 0)
        usage_error("--url: expected ws://HOST:PORT, got \"%s\"", url);
    char *authority = url + 5;
    size_t alen = strcspn(authority, "/?#");
    if (authority[alen] && strcmp(authority + alen, "/") != 0)
        usage_error("--url: \"%s\" has a path: give the prefix with --path-prefix", url);
    authority[alen] = '\0';
    if (!alen || alen >= sizeof(o->urls[0].host) || *authority == '[')
        usage_error("--url: \"%s\": expected an IPv4 address or host name and a port", url);
    char host[sizeof(o->urls[0].host)];
    snprintf(host, sizeof(host), "%s", authority);
    char *colon = strrchr(host, ':');
    uint64_t port = 80;
    if (colon) {
        *colon = '\0';
        port = parse_uint("--url port", colon + 1, 1, 65535);
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0)
        usage_error("--url: cannot resolve %s: %s", host, gai_strerror(rc));
    o->urls = xrealloc(o->urls, (o->nurls + 1) * sizeof(*o->urls));
    struct bench_url *u = &o->urls[o->nurls++];
    memcpy(&u->addr, res->ai_addr, sizeof(u->addr));
    u->addr.sin_port = htons((uint16_t)port);
    snprintf(u->host, sizeof(u->host), "%s", authority);
    freeaddrinfo(res);
    free(url);
}

/* Adds each URL of the comma list to o. */
static void add_urls(struct bench_opts *o, const char *list)
{
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0)
            usage_error("--url: empty URL in \"%s\"", list);
        add_url(o, p, len);
        p += p[len] ? len + 1 : len;
    }
}

/* The IPv4 address in text (len bytes), in host order; dies on anything
 * else. */
static uint32_t parse_ipv4(const char *text, size_t len)
{
    char ip[INET_ADDRSTRLEN];
    struct in_addr a;
    if (len >= sizeof(ip))
        usage_error("--source-ips: not an IPv4 address: %.*s", (int)len, text);
    memcpy(ip, text, len);
    ip[len] = '\0';
    if (inet_pton(AF_INET, ip, &a) != 1)
        usage_error("--source-ips: not an IPv4 address: %s", ip);
    return ntohl(a.s_addr);
}

/* Adds the addresses of the list (A or A-B, comma-separated) to o. */
static void add_source_ips(struct bench_opts *o, const char *list)
{
    /* Far more than anyone binds from, and it bounds the table. */
    const uint64_t max = 1u << 16;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        const char *dash = memchr(p, '-', len);
        uint32_t first = parse_ipv4(p, dash ? (size_t)(dash - p) : len);
        uint32_t last = dash ? parse_ipv4(dash + 1, len - (size_t)(dash - p) - 1) : first;
        if (last < first)
            usage_error("--source-ips: empty range %.*s", (int)len, p);
        if (o->nsource + (uint64_t)(last - first) + 1 > max)
            usage_error("--source-ips: more than %" PRIu64 " addresses", max);
        o->source_ips =
            xrealloc(o->source_ips, (o->nsource + (last - first) + 1) * sizeof(uint32_t));
        for (uint64_t a = first; a <= last; a++)
            o->source_ips[o->nsource++] = htonl((uint32_t)a);
        p += p[len] ? len + 1 : len;
    }
}

enum {
    OPT_URL = 256,
    OPT_PREFIX,
    OPT_SECRET,
    OPT_CONNECTIONS,
    OPT_ROOM_SIZE,
    OPT_SOURCE_IPS,
    OPT_WORKERS,
    OPT_CONCURRENCY,
    OPT_CONNECT_TIMEOUT,
    OPT_RATE,
    OPT_SATURATE,
    OPT_WINDOW,
    OPT_DURATION,
    OPT_DRAIN,
    OPT_JSON,
    OPT_HELP,
};

static const struct option long_options[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"path-prefix", required_argument, NULL, OPT_PREFIX},
    {"secret", required_argument, NULL, OPT_SECRET},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"room-size", required_argument, NULL, OPT_ROOM_SIZE},
    {"source-ips", required_argument, NULL, OPT_SOURCE_IPS},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"connect-concurrency", required_argument, NULL, OPT_CONCURRENCY},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"rate", required_argument, NULL, OPT_RATE},
    {"saturate", no_argument, NULL, OPT_SATURATE},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* What the command line set beyond o itself, for the checks between
 * options. */
struct given {
    bool rate, window;
};

/* Records one option and its argument in o; --help prints and exits. */
static void apply_option(struct bench_opts *o, struct given *g, int opt, const char *arg)
{
    switch (opt) {
    case OPT_URL:
        add_urls(o, arg);
        break;
    case OPT_PREFIX:
        if ((*arg && *arg != '/') || (*arg && arg[strlen(arg) - 1] == '/'))
            usage_error(
                "--path-prefix: expected \"\" or /NAME without a trailing slash, got \"%s\"", arg);
        o->prefix = arg;
        break;
    case OPT_SECRET:
        o->secret = arg;
        break;
    case OPT_CONNECTIONS:
        o->connections = parse_uint("--connections", arg, 1, 10000000);
        break;
    case OPT_ROOM_SIZE:
        o->room_size = (uint32_t)parse_uint("--room-size", arg, 1, 10000);
        break;
    case OPT_SOURCE_IPS:
        add_source_ips(o, arg);
        break;
    case OPT_WORKERS:
        o->workers = (unsigned)parse_uint("--workers", arg, 1, 1024);
        break;
    case OPT_CONCURRENCY:
        o->concurrency = (unsigned)parse_uint("--connect-concurrency", arg, 1, 1000000);
        break;
    case OPT_CONNECT_TIMEOUT:
        o->connect_timeout_s = parse_num("--connect-timeout", arg, 0.001, 3600);
        break;
    case OPT_RATE:
        o->rate = parse_num("--rate", arg, 0, 1e6);
        g->rate = true;
        break;
    case OPT_SATURATE:
        o->saturate = true;
        break;
    case OPT_WINDOW:
        o->window = (uint32_t)parse_uint("--window", arg, 1, 1000000);
        g->window = true;
        break;
    case OPT_DURATION:
        o->duration_s = parse_num("--duration", arg, 0.001, 86400);
        break;
    case OPT_DRAIN:
        o->drain_s = parse_num("--drain", arg, 1, 3600);
        break;
    case OPT_JSON:
        o->json = true;
        break;
    case OPT_HELP:
        fputs(usage_text, stdout);
        exit(0);
    default:
        usage_error("bad usage; see --help");
    }
}

void opts_parse(struct bench_opts *o, int argc, char **argv)
{
    *o = (struct bench_opts){
        .prefix = "/api",
        .connections = 100,
        .room_size = 2,
        .concurrency = 200,
        .connect_timeout_s = 10,
        .rate = 1,
        .window = 8,
        .duration_s = 10,
        .drain_s = 30,
    };
    struct given g = {false, false};
    int opt;
    opterr = 0; /* getopt's own message would make a second line */
    while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        if (opt == '?')
            usage_error("unknown option or missing value: %s; see --help", argv[optind - 1]);
        apply_option(o, &g, opt, optarg);
    }
    if (optind < argc)
        usage_error("unexpected argument: %s; see --help", argv[optind]);
    if (o->saturate && g.rate)
        usage_error("--rate and --saturate exclude each other");
    if (g.window && !o->saturate)
        usage_error("--window is for --saturate");
    if (!o->secret)
        o->secret = getenv("SIGNAL_JWT_SECRET");
    if (!o->secret || !*o->secret)
        usage_error("no secret: give --secret or set SIGNAL_JWT_SECRET");
    if (!o->nurls)
        add_urls(o, "ws://127.0.0.1:8080");
}

void opts_free(struct bench_opts *o)
{
    free(o->urls);
    free(o->source_ips);
    o->urls = NULL;
    o->source_ips = NULL;
}
