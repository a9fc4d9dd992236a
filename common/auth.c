/* Owns JWT verification (docs/configuration.md, "JWT"): the pinned algorithm
 * and its key, the claim checks libjwt 1.10 does not do, the identity built
 * from the claims, and finding the token in an Authorization or Cookie header
 * (docs/protocol.md, "The token"). */
#include "auth.h"

#include <errno.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "percent.h"
#include "xalloc.h"

/* Requests may carry 16 KiB of headers (big cookies); a longer token is not
 * one we issued: refuse it before doing any work. */
#define MAX_TOKEN_BYTES 16384
/* RFC 7518 §3.3: RSA keys for RS* must be at least 2048 bits. */
#define MIN_RSA_BITS 2048

enum key_family { KEY_HMAC, KEY_RSA, KEY_EC };

struct alg_info {
    const char *name;
    jwt_alg_t alg;
    enum key_family family;
    int curve_nid;          /* KEY_EC only */
    const char *curve_name; /* KEY_EC only, for error lines */
};

static const struct alg_info algs[] = {
    {"HS256", JWT_ALG_HS256, KEY_HMAC, NID_undef, NULL},
    {"HS384", JWT_ALG_HS384, KEY_HMAC, NID_undef, NULL},
    {"HS512", JWT_ALG_HS512, KEY_HMAC, NID_undef, NULL},
    {"RS256", JWT_ALG_RS256, KEY_RSA, NID_undef, NULL},
    {"RS384", JWT_ALG_RS384, KEY_RSA, NID_undef, NULL},
    {"RS512", JWT_ALG_RS512, KEY_RSA, NID_undef, NULL},
    {"ES256", JWT_ALG_ES256, KEY_EC, NID_X9_62_prime256v1, "P-256"},
    {"ES384", JWT_ALG_ES384, KEY_EC, NID_secp384r1, "P-384"},
    {"ES512", JWT_ALG_ES512, KEY_EC, NID_secp521r1, "P-521"},
};

struct auth {
    const struct alg_info *alg;
    unsigned char *key; /* HMAC secret, or the public key as PEM for libjwt */
    size_t key_len;
    char *issuer;
    char *audience;
    long leeway_s;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const struct alg_info *find_alg(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        if (strcmp(algs[i].name, name) == 0)
            return &algs[i];
    }
    return NULL;
}

static EVP_PKEY *read_public_key(FILE *f)
{
    EVP_PKEY *pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    if (pkey)
        return pkey;
    rewind(f);
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    if (!cert)
        return NULL;
    pkey = X509_get_pubkey(cert);
    X509_free(cert);
    return pkey;
}

static int ec_curve_nid(const EVP_PKEY *pkey)
{
    char name[64];
    if (!EVP_PKEY_get_group_name(pkey, name, sizeof name, NULL))
        return NID_undef;
    return OBJ_txt2nid(name);
}

/* The key must suit the pinned algorithm, or every token would fail later
 * with nothing but "bad signature" in the logs. */
static bool key_fits(const struct alg_info *alg, const EVP_PKEY *pkey, char *err, size_t errlen)
{
    if (alg->family == KEY_RSA) {
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
            set_err(err, errlen, "SIGNAL_JWT_KEY_FILE: %s needs an RSA public key", alg->name);
            return false;
        }
        if (EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS) {
            set_err(err, errlen, "SIGNAL_JWT_KEY_FILE: %s needs an RSA key of at least %d bits",
                    alg->name, MIN_RSA_BITS);
            return false;
        }
        return true;
    }
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC || ec_curve_nid(pkey) != alg->curve_nid) {
        set_err(err, errlen, "SIGNAL_JWT_KEY_FILE: %s needs an EC %s public key", alg->name,
                alg->curve_name);
        return false;
    }
    return true;
}

/* libjwt 1.10 wants a PEM public key; writing it ourselves also turns a
 * certificate into one. Returns false when OpenSSL runs out of memory. */
static bool store_pem(struct auth *a, EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return false;
    bool ok = false;
    char *data;
    if (PEM_write_bio_PUBKEY(bio, pkey)) {
        long len = BIO_get_mem_data(bio, &data);
        a->key = xmalloc((size_t)len);
        memcpy(a->key, data, (size_t)len);
        a->key_len = (size_t)len;
        ok = true;
    }
    BIO_free(bio);
    return ok;
}

static bool load_key_file(struct auth *a, const char *path, char *err, size_t errlen)
{
    if (!path || !*path) {
        set_err(err, errlen, "SIGNAL_JWT_KEY_FILE: %s needs a PEM public key file", a->alg->name);
        return false;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(err, errlen, "SIGNAL_JWT_KEY_FILE: cannot open %s: %s", path, strerror(errno));
        return false;
    }
    EVP_PKEY *pkey = read_public_key(f);
    fclose(f);
    if (!pkey) {
        set_err(err, errlen, "SIGNAL_JWT_KEY_FILE: %s holds no PEM public key or certificate",
                path);
        return false;
    }
    bool ok = key_fits(a->alg, pkey, err, errlen);
    if (ok && !store_pem(a, pkey)) {
        set_err(err, errlen, "SIGNAL_JWT_KEY_FILE: out of memory");
        ok = false;
    }
    EVP_PKEY_free(pkey);
    return ok;
}

/* Keeps a copy of the HMAC secret as a's key. Returns false, with err set,
 * when there is none. */
static bool load_secret(struct auth *a, const char *secret, char *err, size_t errlen)
{
    if (!secret || !*secret) {
        set_err(err, errlen, "SIGNAL_JWT_SECRET: %s needs a non-empty secret", a->alg->name);
        return false;
    }
    a->key = (unsigned char *)xstrdup(secret);
    a->key_len = strlen(secret);
    return true;
}

/* A copy of src, or NULL when it is unset: an empty setting means "not set",
 * as an empty environment variable would. */
static char *copy_optional(const char *src)
{
    return src && *src ? xstrdup(src) : NULL;
}

struct auth *auth_new(const char *alg, const char *secret, const char *key_file, const char *issuer,
                      const char *audience, long leeway_s, char *err, size_t errlen)
{
    const struct alg_info *info = find_alg(alg);
    if (!info) {
        set_err(err, errlen,
                "SIGNAL_JWT_ALG: unsupported algorithm \"%s\" (use HS256/384/512, "
                "RS256/384/512 or ES256/384/512)",
                alg ? alg : "");
        return NULL;
    }
    if (leeway_s < 0) {
        set_err(err, errlen, "SIGNAL_JWT_LEEWAY_S: must not be negative");
        return NULL;
    }
    struct auth *a = xcalloc(1, sizeof *a);
    a->alg = info;
    a->leeway_s = leeway_s;
    bool ok = info->family == KEY_HMAC ? load_secret(a, secret, err, errlen)
                                       : load_key_file(a, key_file, err, errlen);
    a->issuer = copy_optional(issuer);
    a->audience = copy_optional(audience);
    if (!ok) {
        auth_free(a);
        return NULL;
    }
    return a;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    if (a->key)
        OPENSSL_cleanse(a->key, a->key_len);
    free(a->key);
    free(a->issuer);
    free(a->audience);
    free(a);
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Unpadded base64url, as JWS uses (RFC 7515 §2). */
static json_t *b64url_json(const char *s, size_t len)
{
    if (len % 4 == 1)
        return NULL;
    unsigned char *buf = xmalloc(len * 3 / 4 + 1);
    size_t n = 0;
    unsigned bits = 0;
    int nbits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0) {
            free(buf);
            return NULL;
        }
        bits = (bits << 6) | (unsigned)v;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            buf[n++] = (unsigned char)(bits >> nbits);
            bits &= (1u << nbits) - 1;
        }
    }
    /* Duplicate names are how one parser is made to read another claim
     * than the next one; refuse them. */
    json_t *json = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (json && !json_is_object(json)) {
        json_decref(json);
        return NULL;
    }
    return json;
}

/* Splits header.payload.signature; all three must be non-empty base64url
 * since "none" is never accepted. */
static bool split_token(const char *token, size_t len, size_t *dot1, size_t *dot2)
{
    int dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] != '.') {
            if (b64url_value((unsigned char)token[i]) < 0)
                return false;
        } else if (++dots == 1) {
            *dot1 = i;
        } else if (dots == 2) {
            *dot2 = i;
        }
    }
    return dots == 2 && *dot1 > 0 && *dot2 > *dot1 + 1 && *dot2 + 1 < len;
}

/* libjwt 1.10 trusts the header's alg and ignores "crit", so the header is
 * judged here before libjwt sees the token. */
static const char *check_header(const struct auth *a, const char *token, size_t len)
{
    json_t *head = b64url_json(token, len);
    if (!head)
        return "malformed";
    const char *why = NULL;
    const char *alg = json_string_value(json_object_get(head, "alg"));
    const json_t *typ = json_object_get(head, "typ");
    if (!alg || strcmp(alg, a->alg->name) != 0)
        why = "wrong alg"; /* exact: libjwt also takes "hs256" or "None" */
    else if (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
        why = "unsupported typ"; /* libjwt refuses it too, but as a bad signature */
    else if (json_object_get(head, "crit"))
        why = "unsupported crit"; /* RFC 7515 §4.1.11: we understand no extension */
    json_decref(head);
    return why;
}

static const char *verify_signature(const struct auth *a, const char *token)
{
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, a->key, (int)a->key_len) != 0)
        return "bad signature";
    const char *why = jwt_get_alg(jwt) == a->alg->alg ? NULL : "wrong alg";
    jwt_free(jwt);
    return why;
}

/* A NumericDate (RFC 7519 §2), truncated to whole seconds. */
static bool claim_time(const json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (!json_is_real(v))
        return false;
    double d = json_real_value(v);
    /* Converting a double outside long long's range is undefined. */
    if (!(d > -9.0e18 && d < 9.0e18))
        return false;
    *out = (long long)d;
    return true;
}

static bool audience_matches(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    const json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return true;
    }
    return false;
}

static const char *check_claims(const struct auth *a, const json_t *claims, time_t now,
                                long long *exp)
{
    if (!claim_time(json_object_get(claims, "exp"), exp))
        return "missing exp";
    if (*exp <= (long long)now - a->leeway_s)
        return "expired";
    const json_t *nbf_json = json_object_get(claims, "nbf");
    long long nbf;
    if (nbf_json && !claim_time(nbf_json, &nbf))
        return "malformed";
    if (nbf_json && nbf > (long long)now + a->leeway_s)
        return "not yet valid";
    if (a->issuer) {
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        if (!iss || strcmp(iss, a->issuer) != 0)
            return "wrong iss";
    }
    if (a->audience && !audience_matches(json_object_get(claims, "aud"), a->audience))
        return "wrong aud";
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    if (!sub || !*sub)
        return "missing sub";
    return NULL;
}

static json_t *string_or_null(const json_t *v)
{
    return json_is_string(v) ? json_string(json_string_value(v)) : json_null();
}

/* The account object (docs/protocol.md, "The account object"), keys in the
 * documented order. */
static json_t *make_account(const json_t *claims)
{
    json_t *profile = json_object_get(claims, "profile");
    json_t *account = json_object();
    if (!account)
        return NULL;
    if (json_object_set_new(account, "id",
                            json_string(json_string_value(json_object_get(claims, "sub")))) ||
        json_object_set_new(account, "name", string_or_null(json_object_get(claims, "name"))) ||
        json_object_set_new(account, "nick", string_or_null(json_object_get(claims, "nick"))) ||
        json_object_set_new(account, "profile",
                            json_is_object(profile) ? json_deep_copy(profile) : json_object()) ||
        json_object_set_new(account, "updatedAt",
                            string_or_null(json_object_get(claims, "updated_at")))) {
        json_decref(account);
        return NULL;
    }
    return account;
}

/* Fills *out from verified claims. Returns NULL, or the reason it could not. */
static const char *fill_identity(const json_t *claims, long long exp, struct identity *out)
{
    json_t *rooms = json_object_get(claims, "rooms");
    out->account_id = xstrdup(json_string_value(json_object_get(claims, "sub")));
    out->account = make_account(claims);
    out->rooms = json_is_array(rooms) ? json_incref(rooms) : NULL;
    out->exp = exp;
    if (!out->account) { /* jansson's own allocation */
        identity_clear(out);
        return "out of memory";
    }
    return NULL;
}

static const char *verify(const struct auth *a, const char *token, time_t now, struct identity *out)
{
    if (!token)
        return "malformed";
    size_t len = strnlen(token, MAX_TOKEN_BYTES + 1);
    if (len > MAX_TOKEN_BYTES)
        return "too long";
    size_t dot1 = 0, dot2 = 0;
    if (!split_token(token, len, &dot1, &dot2))
        return "malformed";
    const char *why = check_header(a, token, dot1);
    if (why)
        return why;
    /* Parsed here rather than taken from libjwt, so that duplicate claim
     * names are refused as in the header. */
    json_t *claims = b64url_json(token + dot1 + 1, dot2 - dot1 - 1);
    if (!claims)
        return "malformed";
    long long exp;
    why = verify_signature(a, token);
    if (!why)
        why = check_claims(a, claims, now, &exp);
    if (!why)
        why = fill_identity(claims, exp, out);
    json_decref(claims);
    return why;
}

int auth_verify(const struct auth *a, const char *token, time_t now, struct identity *out,
                const char **why)
{
    memset(out, 0, sizeof *out);
    const char *reason = verify(a, token, now, out);
    if (why)
        *why = reason ? reason : "ok";
    return reason ? -1 : 0;
}

void identity_clear(struct identity *id)
{
    if (!id)
        return;
    free(id->account_id);
    json_decref(id->account);
    json_decref(id->rooms);
    memset(id, 0, sizeof *id);
}

bool identity_has_room(const struct identity *id, const char *room)
{
    if (!id || !room)
        return false;
    size_t i;
    const json_t *v;
    json_array_foreach(id->rooms, i, v)
    {
        if (json_is_string(v) && strcasecmp(json_string_value(v), room) == 0)
            return true;
    }
    return false;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Copies s[0..len) without surrounding spaces; NULL when nothing is left. */
static char *trimmed_copy(const char *s, size_t len)
{
    while (len > 0 && is_space(*s)) {
        s++;
        len--;
    }
    while (len > 0 && is_space(s[len - 1]))
        len--;
    return len > 0 ? xstrndup(s, len) : NULL;
}

char *auth_token_from_bearer(const char *authorization)
{
    static const char scheme[] = "Bearer";
    if (!authorization)
        return NULL;
    const char *p = authorization;
    while (is_space(*p))
        p++;
    if (strncasecmp(p, scheme, sizeof scheme - 1) != 0 || !is_space(p[sizeof scheme - 1]))
        return NULL;
    char *token = trimmed_copy(p + sizeof scheme, strlen(p + sizeof scheme));
    /* A space inside means this is not one b64token (RFC 6750 §2.1). */
    if (token && strpbrk(token, " \t")) {
        free(token);
        return NULL;
    }
    return token;
}

/* The cookie's value value[0..len): trimmed, unquoted and %-decoded into a
 * new string; NULL when that leaves nothing, or when it holds a NUL byte. */
static char *cookie_value(const char *value, size_t len)
{
    char *v = trimmed_copy(value, len);
    if (!v)
        return NULL;
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        memmove(v, v + 1, n - 2);
        v[n - 2] = '\0';
    }
    size_t decoded = percent_decode(v, v, strlen(v));
    /* A %00 would cut the token short: refuse it rather than verify a part. */
    if (!decoded || strlen(v) != decoded) {
        free(v);
        return NULL;
    }
    return v;
}

char *auth_token_from_cookie(const char *cookie)
{
    static const char name[] = "AuthToken";
    if (!cookie)
        return NULL;
    const char *p = cookie;
    while (*p) {
        size_t len = strcspn(p, ";");
        const char *end = p + len;
        while (p < end && is_space(*p))
            p++;
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq) {
            size_t name_len = (size_t)(eq - p);
            while (name_len > 0 && is_space(p[name_len - 1]))
                name_len--;
            if (name_len == sizeof name - 1 && memcmp(p, name, name_len) == 0)
                return cookie_value(eq + 1, (size_t)(end - eq - 1));
        }
        p = *end ? end + 1 : end;
    }
    return NULL;
}
