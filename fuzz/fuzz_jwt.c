/* Fuzzes JWT verification (common/auth.c, auth_verify) with an HS256, an
 * RS256 and an ES256 verifier, each with and without a required issuer and
 * audience. The first byte of an input picks the verifier and the mode:
 * - raw: the rest is the token as a client sends it (the seeds are tokens
 *   minted with the HS256 test secret below);
 * - signed: the rest is a header, a newline, then claims: the harness
 *   base64url-encodes both and signs them with the verifier's key (its own
 *   OpenSSL code, not libjwt), so that any header and claims reach the
 *   checks that come after the signature.
 * What it checks is the rules of docs/configuration.md ("JWT"), decided
 * here from the token by code of its own:
 * - a token accepted has three base64url parts; a header that is a JSON
 *   object without duplicate names, with alg exactly the verifier's, typ JWT
 *   if any, and no crit; claims that are an object too; a signature that
 *   OpenSSL verifies with the key; exp, nbf, iss, aud and sub as documented;
 * - its identity is the claims' (docs/protocol.md, "The account object");
 * - a token the harness signed that meets every rule is accepted. */
#include <jansson.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth.h"
#include "buf.h"
#include "fuzz.h"

#define SECRET "fuzz-secret-0123456789abcdef0123"
#define NOW ((time_t)1700000000)
#define LEEWAY 60
#define ISSUER "https://issuer.test"
#define AUDIENCE "signal"
#define MAX_TOKEN 16384
#define ES256_SIG 64  /* bytes: r then s, 32 each */
#define ES256_HALF 32 /* bytes of r, and of s */

enum alg { HS256, RS256, ES256, ALGS };
static const char *const alg_names[ALGS] = {"HS256", "RS256", "ES256"};
static EVP_PKEY *keys[ALGS];            /* RS256 and ES256: made at start */
static struct auth *verifiers[ALGS][2]; /* [alg][with issuer and audience] */

/* ---- base64url (RFC 7515 §2), unpadded ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64url_append(struct buf *b, const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        size_t chars = len - i >= 3 ? 4 : len - i + 1;
        for (size_t k = 0; k < chars; k++)
            buf_append(b, &b64_alphabet[(v >> (18 - 6 * k)) & 63], 1);
    }
}

/* Decodes s[0..len) into a new buffer of *n bytes; NULL when it is not
 * base64url (a character outside the alphabet, or a length that no
 * encoding has). */
static unsigned char *b64url_decode(const char *s, size_t len, size_t *n)
{
    if (len % 4 == 1)
        return NULL;
    unsigned char *out = xmalloc(len * 3 / 4 + 1);
    unsigned bits = 0;
    int nbits = 0;
    *n = 0;
    for (size_t i = 0; i < len; i++) {
        const char *c = s[i] ? strchr(b64_alphabet, s[i]) : NULL;
        if (!c) {
            free(out);
            return NULL;
        }
        bits = (bits << 6 | (unsigned)(c - b64_alphabet)) & 0xFFF;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            out[(*n)++] = (unsigned char)(bits >> nbits);
        }
    }
    return out;
}

/* ---- signing and verifying with OpenSSL ---- */

/* Signs in[0..len) with alg's key into out (256 bytes at least); returns
 * the signature's length. */
static size_t sign(enum alg alg, const unsigned char *in, size_t len, unsigned char *out)
{
    if (alg == HS256) {
        unsigned n = 0;
        if (!HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), in, len, out, &n))
            abort();
        return n;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char der[256];
    size_t n = sizeof(der);
    if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, keys[alg]) != 1 ||
        EVP_DigestSign(ctx, der, &n, in, len) != 1)
        abort();
    EVP_MD_CTX_free(ctx);
    if (alg == RS256) {
        memcpy(out, der, n);
        return n;
    }
    /* JWS wants r and s side by side (RFC 7518 §3.4), not DER. */
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)n);
    if (!sig || BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, ES256_HALF) != ES256_HALF ||
        BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + ES256_HALF, ES256_HALF) != ES256_HALF)
        abort();
    ECDSA_SIG_free(sig);
    return ES256_SIG;
}

/* Whether sig[0..sig_len) is alg's key's signature of in[0..len). */
static bool signature_ok(enum alg alg, const unsigned char *in, size_t len,
                         const unsigned char *sig, size_t sig_len)
{
    if (alg == HS256) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        size_t n = sign(HS256, in, len, mac);
        return sig_len == n && !CRYPTO_memcmp(sig, mac, n);
    }
    unsigned char der[256];
    const unsigned char *s = sig;
    size_t n = sig_len;
    if (alg == ES256) {
        if (sig_len != ES256_SIG)
            return false;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, ES256_HALF, NULL),
               *ss = BN_bin2bn(sig + ES256_HALF, ES256_HALF, NULL);
        if (!es || !r || !ss || !ECDSA_SIG_set0(es, r, ss))
            abort();
        unsigned char *p = der;
        int dn = i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);
        if (dn <= 0)
            abort();
        s = der;
        n = (size_t)dn;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, keys[alg]) != 1)
        abort();
    int ok = EVP_DigestVerify(ctx, s, n, in, len);
    EVP_MD_CTX_free(ctx);
    return ok == 1;
}

/* ---- the rules ---- */

/* A base64url part of the token decoded and read as a JSON object without
 * duplicate names, or NULL. */
static json_t *json_part(const char *s, size_t len)
{
    size_t n;
    unsigned char *bytes = b64url_decode(s, len, &n);
    /* RFC 8259 allows no NUL byte anywhere (jansson lets one through after
     * a number, and libjwt reads the text only up to it). */
    if (!bytes || memchr(bytes, '\0', n)) {
        free(bytes);
        return NULL;
    }
    json_t *j = json_loadb((const char *)bytes, n, JSON_REJECT_DUPLICATES, NULL);
    free(bytes);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* A NumericDate in whole seconds (a fraction is dropped, as auth.c's
 * comment says); false when v is not a number that fits 64 bits. */
static bool seconds(const json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    double d = json_real_value(v);
    if (!json_is_real(v) || !(fabs(d) < 9.0e18))
        return false;
    *out = (long long)trunc(d);
    return true;
}

static bool has_audience(const json_t *aud)
{
    if (json_is_string(aud))
        return !strcmp(json_string_value(aud), AUDIENCE);
    for (size_t i = 0; i < json_array_size(aud); i++) {
        const char *s = json_string_value(json_array_get(aud, i));
        if (s && !strcmp(s, AUDIENCE))
            return true;
    }
    return false;
}

/* The first rule token breaks, or NULL when it meets them all; *claims
 * gets the claims when they could be read. */
static const char *rule_broken(enum alg alg, bool strict, const char *token, json_t **claims)
{
    *claims = NULL;
    size_t len = strlen(token);
    if (len > MAX_TOKEN)
        return "length";
    const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2 || strchr(dot2 + 1, '.') || dot1 == token || dot2 == dot1 + 1 || !dot2[1])
        return "three parts";
    json_t *head = json_part(token, (size_t)(dot1 - token));
    if (!head)
        return "header";
    const char *alg_text = json_string_value(json_object_get(head, "alg"));
    const json_t *typ = json_object_get(head, "typ");
    bool head_ok = alg_text && !strcmp(alg_text, alg_names[alg]) &&
                   (!typ || (json_is_string(typ) && !strcasecmp(json_string_value(typ), "JWT"))) &&
                   !json_object_get(head, "crit");
    json_decref(head);
    if (!head_ok)
        return "alg, typ or crit";
    *claims = json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!*claims)
        return "claims";
    size_t sig_len;
    unsigned char *sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig_len);
    bool sig_ok = sig && signature_ok(alg, (const unsigned char *)token, (size_t)(dot2 - token),
                                      sig, sig_len);
    free(sig);
    if (!sig_ok)
        return "signature";
    long long exp, nbf;
    const json_t *nbf_json = json_object_get(*claims, "nbf");
    if (!seconds(json_object_get(*claims, "exp"), &exp) || !(NOW < exp + LEEWAY))
        return "exp";
    if (nbf_json && (!seconds(nbf_json, &nbf) || !(nbf <= NOW + LEEWAY)))
        return "nbf";
    const char *iss = json_string_value(json_object_get(*claims, "iss"));
    if (strict && (!iss || strcmp(iss, ISSUER) != 0))
        return "iss";
    if (strict && !has_audience(json_object_get(*claims, "aud")))
        return "aud";
    const char *sub = json_string_value(json_object_get(*claims, "sub"));
    if (!sub || !*sub)
        return "sub";
    return NULL;
}

/* ---- the identity ---- */

/* What the account object holds for a claim read as a string or null. */
static void check_string_or_null(const json_t *got, const json_t *claim, const char *key)
{
    if (json_is_string(claim))
        FUZZ_CHECK(json_equal(got, claim), "account %s differs from the claim", key);
    else
        FUZZ_CHECK(json_is_null(got), "account %s is not null", key);
}

static void check_identity(const struct identity *id, const json_t *claims)
{
    static const char *const order[] = {"id", "name", "nick", "profile", "updatedAt"};
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    FUZZ_CHECK(id->account_id && !strcmp(id->account_id, sub), "account_id is not sub");
    long long exp;
    FUZZ_CHECK(seconds(json_object_get(claims, "exp"), &exp) && id->exp == exp, "exp %lld",
               id->exp);
    FUZZ_CHECK(json_object_size(id->account) == 5, "account has %zu keys",
               json_object_size(id->account));
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(id->account, key, v)
    {
        FUZZ_CHECK(!strcmp(key, order[k]), "account key %zu is %s", k, key);
        k++;
    }
    FUZZ_CHECK(!strcmp(json_string_value(json_object_get(id->account, "id")), sub), "id");
    check_string_or_null(json_object_get(id->account, "name"), json_object_get(claims, "name"),
                         "name");
    check_string_or_null(json_object_get(id->account, "nick"), json_object_get(claims, "nick"),
                         "nick");
    check_string_or_null(json_object_get(id->account, "updatedAt"),
                         json_object_get(claims, "updated_at"), "updatedAt");
    const json_t *profile = json_object_get(claims, "profile");
    const json_t *got_profile = json_object_get(id->account, "profile");
    FUZZ_CHECK(json_is_object(got_profile) &&
                   (json_is_object(profile) ? json_equal(got_profile, profile)
                                            : json_object_size(got_profile) == 0),
               "profile");
    const json_t *rooms = json_object_get(claims, "rooms");
    FUZZ_CHECK(json_is_array(rooms) ? json_equal(id->rooms, rooms) : !id->rooms, "rooms");
    for (size_t i = 0; i < json_array_size(rooms); i++) {
        const char *room = json_string_value(json_array_get(rooms, i));
        FUZZ_CHECK(!room || identity_has_room(id, room), "room %zu not found", i);
    }
}

/* ---- the harness ---- */

/* Writes key's public half to a temporary PEM file, for auth_new. */
static struct auth *pem_verifier(enum alg alg, bool strict)
{
    char path[] = "/tmp/fuzz_jwt.XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || !PEM_write_PUBKEY(f, keys[alg]))
        abort();
    fclose(f);
    char err[256];
    struct auth *a = auth_new(alg_names[alg], NULL, path, strict ? ISSUER : NULL,
                              strict ? AUDIENCE : NULL, LEEWAY, err, sizeof(err));
    unlink(path);
    return a;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    keys[RS256] = EVP_RSA_gen(2048);
    keys[ES256] = EVP_EC_gen("P-256");
    for (int strict = 0; strict < 2; strict++) {
        char err[256];
        verifiers[HS256][strict] = auth_new("HS256", SECRET, NULL, strict ? ISSUER : NULL,
                                            strict ? AUDIENCE : NULL, LEEWAY, err, sizeof(err));
        verifiers[RS256][strict] = pem_verifier(RS256, strict);
        verifiers[ES256][strict] = pem_verifier(ES256, strict);
        for (int alg = 0; alg < ALGS; alg++)
            if (!verifiers[alg][strict])
                abort();
    }
    return 0;
}

/* The token for header "\n" claims (from rest[0..len)), signed with alg's
 * key; malloc'd. */
static char *signed_token(enum alg alg, const uint8_t *rest, size_t len)
{
    const uint8_t *nl = memchr(rest, '\n', len);
    size_t head_len = nl ? (size_t)(nl - rest) : len;
    const uint8_t *claims = nl ? nl + 1 : rest + len;
    struct buf b;
    buf_init(&b, len * 2 + 400);
    b64url_append(&b, rest, head_len);
    buf_append(&b, ".", 1);
    b64url_append(&b, claims, (size_t)(rest + len - claims));
    unsigned char sig[512];
    size_t sig_len = sign(alg, (const unsigned char *)b.data, b.len, sig);
    buf_append(&b, ".", 1);
    b64url_append(&b, sig, sig_len);
    return b.data;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum alg alg = (enum alg)(data[0] % ALGS);
    bool strict = data[0] / ALGS % 2, signed_mode = data[0] / ALGS / 2 % 2;
    char *token =
        signed_mode ? signed_token(alg, data + 1, size - 1) : fuzz_cstring(data + 1, size - 1);
    struct identity id;
    const char *why;
    int rc = auth_verify(verifiers[alg][strict], token, NOW, &id, &why);
    json_t *claims;
    const char *broken = rule_broken(alg, strict, token, &claims);
    FUZZ_CHECK(rc != 0 || !broken, "%s accepted a token that breaks the rule on %s", alg_names[alg],
               broken);
    /* A token the harness signed is one an issuer could have made. */
    FUZZ_CHECK(rc == 0 || broken || !signed_mode, "%s refused a good token: %s", alg_names[alg],
               why);
    if (rc == 0)
        check_identity(&id, claims);
    identity_clear(&id);
    json_decref(claims);
    free(token);
    return 0;
}
