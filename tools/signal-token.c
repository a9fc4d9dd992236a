/* signal-token: mints JWTs for development and tests, with the claims the
 * node reads (docs/protocol.md, "The account object") and the ones it checks
 * (exp, nbf, iss, aud: docs/configuration.md, "JWT").
 * Prints the token on stdout. Bad usage: one line on stderr, exit 2. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mint.h"
#include "xalloc.h"

#define EXIT_USAGE 2
/* Far more than any PEM private key; stops a wrong path from being slurped. */
#define MAX_KEY_BYTES (1 << 20)

static const char usage_text[] =
    "usage: signal-token [options] --sub ID\n"
    "Mints a JWT for signal-node and prints it on stdout.\n"
    "\n"
    "  --alg ALG            HS256 (default), HS384, HS512, RS256, RS384, RS512,\n"
    "                       ES256, ES384 or ES512\n"
    "  --secret S           HMAC secret for HS*; default: $SIGNAL_JWT_SECRET\n"
    "  --key PRIVATE.pem    PEM private key for RS*/ES*\n"
    "  --sub ID             account id (required)\n"
    "  --name N             \"name\" claim\n"
    "  --nick N             \"nick\" claim\n"
    "  --rooms ID[,ID...]   \"rooms\" claim, an array of room ids (\"\" = [])\n"
    "  --ttl SECONDS        exp = now + SECONDS (default 3600; negative = expired)\n"
    "  --exp UNIX           exp at this time instead\n"
    "  --no-exp             no exp claim\n"
    "  --nbf UNIX           \"nbf\" claim\n"
    "  --iss I              \"iss\" claim\n"
    "  --aud A              \"aud\" claim\n"
    "  --profile JSON       \"profile\" claim, a JSON object\n"
    "  --updated-at S       \"updated_at\" claim\n"
    "  --claim NAME=JSON    any claim, a JSON value; repeatable; applied last, so it\n"
    "                       overrides the options above\n"
    "  --help               this text\n";

struct options {
    const char *alg;
    const char *secret;
    const char *key_file;
    long long ttl;
    long long exp;
    bool has_exp;
    bool no_exp;
    json_t *claims; /* everything but iat and exp, in the order given */
    json_t *extra;  /* --claim values, applied over the rest */
};

/* Prints one usage line on stderr and exits with EXIT_USAGE. */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("signal-token: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(EXIT_USAGE);
}

/* The integer s, the value of option opt; dies when it is not one. */
static long long parse_int(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        die("%s: not an integer: %s", opt, s);
    return v;
}

/* Sets claim name to value (stolen); a NULL value is jansson out of memory. */
static void set_claim(json_t *claims, const char *name, json_t *value)
{
    if (!value || json_object_set_new(claims, name, value))
        die("out of memory");
}

/* The JSON value text, the value of option opt; dies when it is not JSON. */
static json_t *parse_json(const char *opt, const char *text)
{
    json_error_t error;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &error);
    if (!v)
        die("%s: invalid JSON: %s", opt, error.text);
    return v;
}

/* "id,id,..." as a JSON array of strings; dies on an empty id. */
static json_t *parse_rooms(const char *list)
{
    json_t *rooms = json_array();
    if (!rooms)
        die("out of memory");
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || (p[len] == ',' && p[len + 1] == '\0'))
            die("--rooms: empty room id in \"%s\"", list);
        if (json_array_append_new(rooms, json_stringn(p, len)))
            die("out of memory");
        p += p[len] == ',' ? len + 1 : len;
    }
    return rooms;
}

/* Adds --claim NAME=JSON to extra; dies when arg is not of that form. */
static void add_extra(json_t *extra, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        die("--claim: expected NAME=JSON_VALUE, got \"%s\"", arg);
    char *name = xstrndup(arg, (size_t)(eq - arg));
    set_claim(extra, name, parse_json("--claim", eq + 1));
    free(name);
}

enum {
    OPT_ALG = 256,
    OPT_SECRET,
    OPT_KEY,
    OPT_SUB,
    OPT_NAME,
    OPT_NICK,
    OPT_ROOMS,
    OPT_TTL,
    OPT_EXP,
    OPT_NO_EXP,
    OPT_NBF,
    OPT_ISS,
    OPT_AUD,
    OPT_PROFILE,
    OPT_UPDATED_AT,
    OPT_CLAIM,
    OPT_HELP,
};

static const struct option long_options[] = {
    {"alg", required_argument, NULL, OPT_ALG},
    {"secret", required_argument, NULL, OPT_SECRET},
    {"key", required_argument, NULL, OPT_KEY},
    {"sub", required_argument, NULL, OPT_SUB},
    {"name", required_argument, NULL, OPT_NAME},
    {"nick", required_argument, NULL, OPT_NICK},
    {"rooms", required_argument, NULL, OPT_ROOMS},
    {"ttl", required_argument, NULL, OPT_TTL},
    {"exp", required_argument, NULL, OPT_EXP},
    {"no-exp", no_argument, NULL, OPT_NO_EXP},
    {"nbf", required_argument, NULL, OPT_NBF},
    {"iss", required_argument, NULL, OPT_ISS},
    {"aud", required_argument, NULL, OPT_AUD},
    {"profile", required_argument, NULL, OPT_PROFILE},
    {"updated-at", required_argument, NULL, OPT_UPDATED_AT},
    {"claim", required_argument, NULL, OPT_CLAIM},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Records one option and its argument in o; --help prints and exits. */
static void apply_option(struct options *o, int opt, const char *arg)
{
    switch (opt) {
    case OPT_ALG:
        o->alg = arg;
        break;
    case OPT_SECRET:
        o->secret = arg;
        break;
    case OPT_KEY:
        o->key_file = arg;
        break;
    case OPT_SUB:
        set_claim(o->claims, "sub", json_string(arg));
        break;
    case OPT_NAME:
        set_claim(o->claims, "name", json_string(arg));
        break;
    case OPT_NICK:
        set_claim(o->claims, "nick", json_string(arg));
        break;
    case OPT_ROOMS:
        set_claim(o->claims, "rooms", parse_rooms(arg));
        break;
    case OPT_TTL:
        o->ttl = parse_int("--ttl", arg);
        break;
    case OPT_EXP:
        o->exp = parse_int("--exp", arg);
        o->has_exp = true;
        break;
    case OPT_NO_EXP:
        o->no_exp = true;
        break;
    case OPT_NBF:
        set_claim(o->claims, "nbf", json_integer(parse_int("--nbf", arg)));
        break;
    case OPT_ISS:
        set_claim(o->claims, "iss", json_string(arg));
        break;
    case OPT_AUD:
        set_claim(o->claims, "aud", json_string(arg));
        break;
    case OPT_PROFILE: {
        json_t *profile = parse_json("--profile", arg);
        if (!json_is_object(profile))
            die("--profile: expected a JSON object");
        set_claim(o->claims, "profile", profile);
        break;
    }
    case OPT_UPDATED_AT:
        set_claim(o->claims, "updated_at", json_string(arg));
        break;
    case OPT_CLAIM:
        add_extra(o->extra, arg);
        break;
    case OPT_HELP:
        fputs(usage_text, stdout);
        exit(0);
    default:
        die("bad usage; see --help");
    }
}

/* Reads argv into o; dies on bad usage. */
static void parse_args(struct options *o, int argc, char **argv)
{
    int opt;
    opterr = 0; /* getopt's own message would make a second line */
    while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        if (opt == '?')
            die("unknown option or missing value: %s; see --help", argv[optind - 1]);
        apply_option(o, opt, optarg);
    }
    if (optind < argc)
        die("unexpected argument: %s; see --help", argv[optind]);
    if (!json_object_get(o->claims, "sub"))
        die("--sub is required; see --help");
    if (o->no_exp && o->has_exp)
        die("--exp and --no-exp exclude each other");
}

/* The contents of the key file at path (malloc'd), its size in *len; dies
 * when it cannot be read or is empty or too big to be a key. */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("--key: cannot open %s: %s", path, strerror(errno));
    unsigned char *buf = xmalloc(MAX_KEY_BYTES);
    size_t n = fread(buf, 1, MAX_KEY_BYTES, f);
    bool failed = ferror(f) || n == 0 || n == MAX_KEY_BYTES;
    fclose(f);
    if (failed)
        die("--key: cannot read a key from %s", path);
    *len = n;
    return buf;
}

/* Returns the signing key: the secret for HS*, the PEM private key otherwise. */
static unsigned char *signing_key(const struct options *o, jwt_alg_t alg, size_t *len)
{
    bool hmac = alg == JWT_ALG_HS256 || alg == JWT_ALG_HS384 || alg == JWT_ALG_HS512;
    if (!hmac) {
        if (!o->key_file)
            die("%s signs with --key PRIVATE.pem", o->alg);
        if (o->secret)
            die("--secret is for HS* only; %s signs with --key", o->alg);
        return read_file(o->key_file, len);
    }
    if (o->key_file)
        die("--key is for RS*/ES* only; %s signs with --secret", o->alg);
    const char *secret = o->secret ? o->secret : getenv("SIGNAL_JWT_SECRET");
    if (!secret || !*secret)
        die("%s needs --secret or SIGNAL_JWT_SECRET", o->alg);
    if (strlen(secret) > INT_MAX)
        die("--secret: too long");
    *len = strlen(secret);
    return (unsigned char *)xstrdup(secret);
}

/* The token for o's claims, signed with o's key (common/mint.c), or NULL
 * when libjwt cannot sign with it. */
static char *mint(const struct options *o, jwt_alg_t alg)
{
    size_t key_len;
    unsigned char *key = signing_key(o, alg, &key_len);
    char *token = mint_token(o->claims, o->alg, key, key_len);
    free(key);
    return token;
}

int main(int argc, char **argv)
{
    struct options o = {.alg = "HS256", .ttl = 3600};
    o.claims = json_object();
    o.extra = json_object();
    if (!o.claims || !o.extra)
        die("out of memory");
    parse_args(&o, argc, argv);

    jwt_alg_t alg = jwt_str_alg(o.alg);
    if (alg == JWT_ALG_INVAL || alg == JWT_ALG_NONE || strcmp(jwt_alg_str(alg), o.alg) != 0)
        die("--alg: unsupported algorithm %s; see --help", o.alg);

    long long now = (long long)time(NULL);
    long long exp = o.exp;
    if (!o.has_exp && __builtin_add_overflow(now, o.ttl, &exp))
        die("--ttl: out of range");
    set_claim(o.claims, "iat", json_integer(now));
    if (!o.no_exp)
        set_claim(o.claims, "exp", json_integer(exp));
    if (json_object_update(o.claims, o.extra))
        die("out of memory");

    char *token = mint(&o, alg);
    if (!token && o.key_file)
        die("cannot sign %s with %s: is it a PEM %s private key?", o.alg, o.key_file,
            o.alg[0] == 'R' ? "RSA" : "EC");
    if (!token)
        die("cannot sign: out of memory");
    printf("%s\n", token);
    free(token);
    json_decref(o.claims);
    json_decref(o.extra);
    return 0;
}
