/* Unit tests for common/auth.c: token verification with every way a token
 * can be wrong, the identity it yields, auth_new's errors, and finding the
 * token in Authorization and Cookie headers.
 *
 * Keys are generated once per run into a temporary folder (PRE_ALL hook, in
 * the runner) and the folder is handed to the test processes through the
 * environment. Time is always passed explicitly: no test sleeps. */
#define _GNU_SOURCE /* vasprintf */
#include "auth.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_DIR_ENV "TEST_AUTH_KEY_DIR"
#define SECRET "test-secret-0123456789abcdef0123"
#define NOW ((time_t)1700000000)
#define LEEWAY 60L
#define ROOM "6F9619FF-8B86-D011-B42D-00CF4FC964FF"

/* Every file the PRE_ALL hook writes, so that POST_ALL can remove them. */
static const char *const key_files[] = {
    "rsa.pem",     "rsa_pub.pem",     "rsa2.pem",      "rsa2_pub.pem", "rsa_cert.pem",
    "rsa1024.pem", "rsa1024_pub.pem", "ec.pem",        "ec_pub.pem",   "ec2.pem",
    "ec2_pub.pem", "ec384.pem",       "ec384_pub.pem", "garbage.pem",
};

static char key_dir[64];

static const char *key_path(const char *name)
{
    static char path[256];
    const char *dir = getenv(KEY_DIR_ENV);
    cr_assert_not_null(dir, "the PRE_ALL hook did not run");
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0);
    return s;
}

/* ---- key generation (runner process) ---- */

static void write_pem(const char *dir, const char *name, EVP_PKEY *key, X509 *cert, bool private)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    int ok = cert      ? PEM_write_X509(f, cert)
             : private ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
                       : PEM_write_PUBKEY(f, key);
    fclose(f);
    if (!ok)
        abort();
}

static X509 *self_signed(EVP_PKEY *key)
{
    X509 *cert = X509_new();
    X509_NAME *name = X509_get_subject_name(cert);
    if (!X509_set_version(cert, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) ||
        !X509_gmtime_adj(X509_getm_notBefore(cert), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert), 3600) || !X509_set_pubkey(cert, key) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1,
                                    0) ||
        !X509_set_issuer_name(cert, name) || !X509_sign(cert, key, EVP_sha256()))
        abort();
    return cert;
}

static void write_key_pair(const char *dir, const char *name, EVP_PKEY *key)
{
    if (!key)
        abort();
    char pub[64];
    snprintf(pub, sizeof pub, "%.40s_pub.pem", name);
    char priv[64];
    snprintf(priv, sizeof priv, "%.40s.pem", name);
    write_pem(dir, priv, key, NULL, true);
    write_pem(dir, pub, key, NULL, false);
}

ReportHook(PRE_ALL)(struct criterion_test_set *tests)
{
    (void)tests;
    snprintf(key_dir, sizeof key_dir, "/tmp/test_auth.XXXXXX");
    if (!mkdtemp(key_dir))
        abort();
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    write_key_pair(key_dir, "rsa", rsa);
    X509 *cert = self_signed(rsa);
    write_pem(key_dir, "rsa_cert.pem", NULL, cert, false);
    X509_free(cert);
    EVP_PKEY_free(rsa);

    EVP_PKEY *keys[] = {EVP_RSA_gen(2048), EVP_RSA_gen(1024), EVP_EC_gen("P-256"),
                        EVP_EC_gen("P-256"), EVP_EC_gen("P-384")};
    const char *names[] = {"rsa2", "rsa1024", "ec", "ec2", "ec384"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        write_key_pair(key_dir, names[i], keys[i]);
        EVP_PKEY_free(keys[i]);
    }

    char path[256];
    snprintf(path, sizeof path, "%s/garbage.pem", key_dir);
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fputs("-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n", f);
    fclose(f);
    setenv(KEY_DIR_ENV, key_dir, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    char path[256];
    for (size_t i = 0; i < sizeof key_files / sizeof key_files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", key_dir, key_files[i]);
        unlink(path);
    }
    rmdir(key_dir);
}

/* ---- minting ---- */

static char *read_file(const char *path, int *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    char *buf = malloc(65536);
    cr_assert_not_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    buf[n] = '\0';
    *len = (int)n;
    return buf;
}

/* Signs claims (a JSON object) with libjwt, as an issuer would. */
static char *mint_with(jwt_alg_t alg, const void *key, int key_len, const char *claims)
{
    jwt_t *jwt = NULL;
    cr_assert_eq(jwt_new(&jwt), 0);
    cr_assert_eq(jwt_add_grants_json(jwt, claims), 0, "bad test claims: %s", claims);
    cr_assert_eq(jwt_set_alg(jwt, alg, key, key_len), 0);
    char *token = jwt_encode_str(jwt);
    cr_assert_not_null(token);
    jwt_free(jwt);
    return token;
}

static char *mint_hs(jwt_alg_t alg, const char *claims)
{
    return mint_with(alg, SECRET, (int)strlen(SECRET), claims);
}

static char *mint_pem(jwt_alg_t alg, const char *key_name, const char *claims)
{
    int len;
    char *pem = read_file(key_path(key_name), &len);
    char *token = mint_with(alg, pem, len, claims);
    free(pem);
    return token;
}

static char *b64url(const void *data, size_t len)
{
    char *out = malloc(len * 4 / 3 + 4);
    cr_assert_not_null(out);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '=')
        out[--n] = '\0';
    for (char *p = out; *p; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
    return out;
}

/* Builds header.payload. from raw JSON texts, without a signature. */
static char *unsigned_part(const char *header, const char *payload)
{
    char *h = b64url(header, strlen(header));
    char *p = b64url(payload, strlen(payload));
    char *s = str_printf("%s.%s.", h, p);
    free(h);
    free(p);
    return s;
}

/* Hand-made tokens for what libjwt would not produce: any header, and a
 * correct HS256 signature with SECRET over it. */
static char *craft_hs256(const char *header, const char *payload)
{
    char *part = unsigned_part(header, payload);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    cr_assert_not_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)part,
                            strlen(part) - 1, mac, &mac_len));
    char *sig = b64url(mac, mac_len);
    char *token = str_printf("%s%s", part, sig);
    free(part);
    free(sig);
    return token;
}

/* ---- verifying ---- */

static struct auth *new_auth(const char *alg, const char *secret, const char *key_name,
                             const char *issuer, const char *audience)
{
    char err[256] = "";
    struct auth *a = auth_new(alg, secret, key_name ? key_path(key_name) : NULL, issuer, audience,
                              LEEWAY, err, sizeof err);
    cr_assert_not_null(a, "auth_new(%s): %s", alg, err);
    return a;
}

static struct auth *hs256(void)
{
    return new_auth("HS256", SECRET, NULL, NULL, NULL);
}

static void expect_reject_at(const struct auth *a, const char *token, time_t now,
                             const char *reason)
{
    struct identity id;
    const char *why = NULL;
    cr_expect_eq(auth_verify(a, token, now, &id, &why), -1, "accepted: %s",
                 token ? token : "(null)");
    cr_expect_str_eq(why, reason, "token %.80s", token ? token : "(null)");
    cr_expect_null(id.account_id);
    cr_expect_null(id.account);
    cr_expect_null(id.rooms);
}

static void expect_reject(const struct auth *a, const char *token, const char *reason)
{
    expect_reject_at(a, token, NOW, reason);
}

/* Verifies and frees the token; fills id, which the caller clears. */
static void expect_accept_at(const struct auth *a, char *token, time_t now, struct identity *id)
{
    const char *why = NULL;
    int rc = auth_verify(a, token, now, id, &why);
    cr_assert_eq(rc, 0, "rejected (%s): %s", why, token);
    free(token);
}

static void expect_accept(const struct auth *a, char *token)
{
    struct identity id;
    expect_accept_at(a, token, NOW, &id);
    cr_expect_str_eq(id.account_id, "u1");
    identity_clear(&id);
}

static void expect_account(const struct identity *id, const char *json)
{
    char *dump = json_dumps(id->account, JSON_COMPACT);
    cr_expect_str_eq(dump, json);
    free(dump);
}

/* ---- good paths and the identity ---- */

Test(auth, hs256_all_account_fields)
{
    struct auth *a = hs256();
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld,\"name\":\"Ada Lovelace\","
                              "\"nick\":\"ada\",\"profile\":{\"avatar\":\"a.png\",\"age\":36},"
                              "\"updated_at\":\"2024-01-02T03:04:05Z\",\"rooms\":[\"%s\",\"r2\"]}",
                              (long long)NOW + 3600, ROOM);
    struct identity id;
    expect_accept_at(a, mint_hs(JWT_ALG_HS256, claims), NOW, &id);
    cr_expect_str_eq(id.account_id, "u1");
    cr_expect_eq(id.exp, (long long)NOW + 3600);
    expect_account(&id, "{\"id\":\"u1\",\"name\":\"Ada Lovelace\",\"nick\":\"ada\","
                        "\"profile\":{\"age\":36,\"avatar\":\"a.png\"},"
                        "\"updatedAt\":\"2024-01-02T03:04:05Z\"}");
    cr_expect(json_is_array(id.rooms));
    cr_expect_eq(json_array_size(id.rooms), 2);
    identity_clear(&id);
    cr_expect_null(id.account_id);
    identity_clear(&id); /* clearing twice is harmless */
    free(claims);
    auth_free(a);
}

Test(auth, hs256_account_defaults)
{
    struct auth *a = hs256();
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW + 10);
    struct identity id;
    expect_accept_at(a, mint_hs(JWT_ALG_HS256, claims), NOW, &id);
    expect_account(&id, "{\"id\":\"u1\",\"name\":null,\"nick\":null,\"profile\":{},"
                        "\"updatedAt\":null}");
    cr_expect_null(id.rooms);
    identity_clear(&id);
    free(claims);
    auth_free(a);
}

Test(auth, claims_of_the_wrong_type_become_defaults)
{
    struct auth *a = hs256();
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld,\"name\":7,\"nick\":[\"x\"],"
                              "\"profile\":\"p\",\"updated_at\":1,\"rooms\":\"%s\"}",
                              (long long)NOW + 10, ROOM);
    struct identity id;
    expect_accept_at(a, mint_hs(JWT_ALG_HS256, claims), NOW, &id);
    expect_account(&id, "{\"id\":\"u1\",\"name\":null,\"nick\":null,\"profile\":{},"
                        "\"updatedAt\":null}");
    cr_expect_null(id.rooms);
    cr_expect_not(identity_has_room(&id, ROOM));
    identity_clear(&id);
    free(claims);
    auth_free(a);
}

Test(auth, every_hmac_alg)
{
    static const struct {
        const char *name;
        jwt_alg_t alg;
    } algs[] = {{"HS256", JWT_ALG_HS256}, {"HS384", JWT_ALG_HS384}, {"HS512", JWT_ALG_HS512}};
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW + 10);
    for (size_t i = 0; i < 3; i++) {
        struct auth *a = new_auth(algs[i].name, SECRET, NULL, NULL, NULL);
        expect_accept(a, mint_hs(algs[i].alg, claims));
        auth_free(a);
    }
    free(claims);
}

Test(auth, rs256_good)
{
    struct auth *a = new_auth("RS256", NULL, "rsa_pub.pem", NULL, NULL);
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld,\"name\":\"N\"}", (long long)NOW + 10);
    expect_accept(a, mint_pem(JWT_ALG_RS256, "rsa.pem", claims));
    free(claims);
    auth_free(a);
}

Test(auth, rs512_with_certificate_as_key_file)
{
    struct auth *a = new_auth("RS512", NULL, "rsa_cert.pem", NULL, NULL);
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW + 10);
    expect_accept(a, mint_pem(JWT_ALG_RS512, "rsa.pem", claims));
    free(claims);
    auth_free(a);
}

Test(auth, es256_good)
{
    struct auth *a = new_auth("ES256", NULL, "ec_pub.pem", NULL, NULL);
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW + 10);
    expect_accept(a, mint_pem(JWT_ALG_ES256, "ec.pem", claims));
    free(claims);
    auth_free(a);
}

Test(auth, es384_good)
{
    struct auth *a = new_auth("ES384", NULL, "ec384_pub.pem", NULL, NULL);
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW + 10);
    expect_accept(a, mint_pem(JWT_ALG_ES384, "ec384.pem", claims));
    free(claims);
    auth_free(a);
}

/* ---- the algorithm is pinned ---- */

Test(auth, alg_none_rejected)
{
    static const char *const headers[] = {"{\"alg\":\"none\"}", "{\"alg\":\"None\"}",
                                          "{\"alg\":\"NONE\",\"typ\":\"JWT\"}"};
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW + 10);
    struct auth *hs = hs256();
    struct auth *rs = new_auth("RS256", NULL, "rsa_pub.pem", NULL, NULL);
    for (size_t i = 0; i < 3; i++) {
        char *token = unsigned_part(headers[i], claims);
        /* Without a signature the token does not even have three parts. */
        expect_reject(hs, token, "malformed");
        expect_reject(rs, token, "malformed");
        char *signed_token = str_printf("%sc2ln", token);
        expect_reject(hs, signed_token, "wrong alg");
        expect_reject(rs, signed_token, "wrong alg");
        free(signed_token);
        free(token);
    }
    free(claims);
    auth_free(hs);
    auth_free(rs);
}

/* The classic attack: sign HS256 with the server's RSA public key as the
 * HMAC secret. libjwt alone accepts it; auth_verify must not. */
Test(auth, hs256_signed_with_public_key_rejected_for_rs256)
{
    int len;
    char *pem = read_file(key_path("rsa_pub.pem"), &len);
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW + 10);
    char *token = mint_with(JWT_ALG_HS256, pem, len, claims);

    jwt_t *naive = NULL;
    cr_expect_eq(jwt_decode(&naive, token, (unsigned char *)pem, len), 0,
                 "libjwt should fall for it, or this test proves nothing");
    jwt_free(naive);

    struct auth *a = new_auth("RS256", NULL, "rsa_pub.pem", NULL, NULL);
    expect_reject(a, token, "wrong alg");
    auth_free(a);
    free(token);
    free(claims);
    free(pem);
}

Test(auth, other_alg_than_pinned_rejected)
{
    struct auth *a = hs256();
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW + 10);
    char *hs384 = mint_hs(JWT_ALG_HS384, claims);
    expect_reject(a, hs384, "wrong alg");
    char *es256 = mint_pem(JWT_ALG_ES256, "ec.pem", claims);
    expect_reject(a, es256, "wrong alg");

    struct auth *rs = new_auth("RS256", NULL, "rsa_pub.pem", NULL, NULL);
    char *rs512 = mint_pem(JWT_ALG_RS512, "rsa.pem", claims);
    expect_reject(rs, rs512, "wrong alg");

    /* libjwt reads the alg case-insensitively; the pin does not. */
    char *lower = craft_hs256("{\"alg\":\"hs256\"}", claims);
    expect_reject(a, lower, "wrong alg");
    char *no_alg = craft_hs256("{\"typ\":\"JWT\"}", claims);
    expect_reject(a, no_alg, "wrong alg");
    char *alg_num = craft_hs256("{\"alg\":256}", claims);
    expect_reject(a, alg_num, "wrong alg");

    free(hs384);
    free(es256);
    free(rs512);
    free(lower);
    free(no_alg);
    free(alg_num);
    free(claims);
    auth_free(a);
    auth_free(rs);
}

Test(auth, header_checks)
{
    struct auth *a = hs256();
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW + 10);
    char *plain = craft_hs256("{\"alg\":\"HS256\"}", claims);
    expect_accept(a, plain);
    char *typ = craft_hs256("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", claims);
    expect_accept(a, typ);
    char *other_typ = craft_hs256("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", claims);
    expect_reject(a, other_typ, "unsupported typ");
    char *crit = craft_hs256("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", claims);
    expect_reject(a, crit, "unsupported crit");
    char *dup = craft_hs256("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", claims);
    expect_reject(a, dup, "malformed");
    char *array = craft_hs256("[\"HS256\"]", claims);
    expect_reject(a, array, "malformed");
    free(other_typ);
    free(crit);
    free(dup);
    free(array);
    free(claims);
    auth_free(a);
}

/* ---- time ---- */

Test(auth, expiry_and_leeway)
{
    struct auth *a = hs256();
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW);
    char *token = mint_hs(JWT_ALG_HS256, claims);
    struct identity id;
    /* Expired 59 s ago: within the 60 s leeway. */
    expect_accept_at(a, strdup(token), NOW + LEEWAY - 1, &id);
    cr_expect_eq(id.exp, (long long)NOW);
    identity_clear(&id);
    expect_reject_at(a, token, NOW + LEEWAY, "expired");
    expect_reject_at(a, token, NOW + 3600, "expired");
    free(token);
    free(claims);
    auth_free(a);
}

Test(auth, exp_as_real_number)
{
    struct auth *a = hs256();
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld.5}", (long long)NOW + 10);
    expect_accept(a, mint_hs(JWT_ALG_HS256, claims));
    free(claims);
    char *huge = mint_hs(JWT_ALG_HS256, "{\"sub\":\"u1\",\"exp\":1e300}");
    expect_reject(a, huge, "missing exp");
    free(huge);
    auth_free(a);
}

Test(auth, missing_or_bad_exp_rejected)
{
    struct auth *a = hs256();
    static const char *const claims[] = {
        "{\"sub\":\"u1\"}",
        "{\"sub\":\"u1\",\"exp\":\"4102444800\"}",
        "{\"sub\":\"u1\",\"exp\":null}",
        "{\"sub\":\"u1\",\"exp\":true}",
    };
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
        char *token = mint_hs(JWT_ALG_HS256, claims[i]);
        expect_reject(a, token, "missing exp");
        free(token);
    }
    auth_free(a);
}

Test(auth, not_before)
{
    struct auth *a = hs256();
    char *later = str_printf("{\"sub\":\"u1\",\"exp\":%lld,\"nbf\":%lld}", (long long)NOW + 3600,
                             (long long)NOW + LEEWAY + 1);
    char *token = mint_hs(JWT_ALG_HS256, later);
    expect_reject(a, token, "not yet valid");
    free(token);
    char *soon = str_printf("{\"sub\":\"u1\",\"exp\":%lld,\"nbf\":%lld}", (long long)NOW + 3600,
                            (long long)NOW + LEEWAY);
    expect_accept(a, mint_hs(JWT_ALG_HS256, soon));
    char *bad = str_printf("{\"sub\":\"u1\",\"exp\":%lld,\"nbf\":\"now\"}", (long long)NOW + 3600);
    token = mint_hs(JWT_ALG_HS256, bad);
    expect_reject(a, token, "malformed");
    free(token);
    free(later);
    free(soon);
    free(bad);
    auth_free(a);
}

/* ---- issuer and audience ---- */

Test(auth, issuer)
{
    struct auth *a = new_auth("HS256", SECRET, NULL, "https://id.example", NULL);
    static const char *const wrong[] = {"", ",\"iss\":\"https://evil.example\"",
                                        ",\"iss\":\"https://id.example/\"", ",\"iss\":[\"x\"]"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld%s}", (long long)NOW + 10, wrong[i]);
        char *token = mint_hs(JWT_ALG_HS256, claims);
        expect_reject(a, token, "wrong iss");
        free(token);
        free(claims);
    }
    char *right = str_printf("{\"sub\":\"u1\",\"exp\":%lld,\"iss\":\"https://id.example\"}",
                             (long long)NOW + 10);
    expect_accept(a, mint_hs(JWT_ALG_HS256, right));
    free(right);
    auth_free(a);
}

Test(auth, audience)
{
    struct auth *a = new_auth("HS256", SECRET, NULL, NULL, "signal");
    static const char *const wrong[] = {"", ",\"aud\":\"other\"", ",\"aud\":[\"a\",\"b\"]",
                                        ",\"aud\":[]", ",\"aud\":{\"signal\":1}"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld%s}", (long long)NOW + 10, wrong[i]);
        char *token = mint_hs(JWT_ALG_HS256, claims);
        expect_reject(a, token, "wrong aud");
        free(token);
        free(claims);
    }
    static const char *const right[] = {",\"aud\":\"signal\"", ",\"aud\":[\"web\",\"signal\"]"};
    for (size_t i = 0; i < sizeof right / sizeof right[0]; i++) {
        char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld%s}", (long long)NOW + 10, right[i]);
        expect_accept(a, mint_hs(JWT_ALG_HS256, claims));
        free(claims);
    }
    auth_free(a);
}

Test(auth, unset_issuer_and_audience_are_not_checked)
{
    struct auth *a = new_auth("HS256", SECRET, NULL, "", "");
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld,\"iss\":\"x\",\"aud\":\"y\"}",
                              (long long)NOW + 10);
    expect_accept(a, mint_hs(JWT_ALG_HS256, claims));
    free(claims);
    auth_free(a);
}

/* ---- signatures ---- */

Test(auth, tampered_token_rejected)
{
    struct auth *a = hs256();
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW + 10);
    char *token = mint_hs(JWT_ALG_HS256, claims);
    char *admin = str_printf("{\"sub\":\"admin\",\"exp\":%lld}", (long long)NOW + 10);
    char *other = mint_hs(JWT_ALG_HS256, admin);

    /* Swap in the payload of another token, keeping the signature. */
    char *dot1 = strchr(token, '.');
    char *dot2 = strchr(dot1 + 1, '.');
    char *other_dot1 = strchr(other, '.');
    char *other_dot2 = strchr(other_dot1 + 1, '.');
    *other_dot2 = '\0';
    char *swapped = str_printf("%.*s%s%s", (int)(dot1 - token), token, other_dot1, dot2);
    expect_reject(a, swapped, "bad signature");

    /* Flip one signature character. */
    char *flipped = strdup(token);
    char *last = flipped + strlen(flipped) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    expect_reject(a, flipped, "bad signature");

    /* Drop the last character of the signature. */
    token[strlen(token) - 1] = '\0';
    expect_reject(a, token, "bad signature");

    free(flipped);
    free(swapped);
    free(other);
    free(admin);
    free(token);
    free(claims);
    auth_free(a);
}

Test(auth, wrong_secret_or_key_rejected)
{
    char *claims = str_printf("{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW + 10);
    struct auth *hs = new_auth("HS256", "another-secret", NULL, NULL, NULL);
    char *hs_token = mint_hs(JWT_ALG_HS256, claims);
    expect_reject(hs, hs_token, "bad signature");

    struct auth *rs = new_auth("RS256", NULL, "rsa_pub.pem", NULL, NULL);
    char *rs_token = mint_pem(JWT_ALG_RS256, "rsa2.pem", claims);
    expect_reject(rs, rs_token, "bad signature");

    struct auth *es = new_auth("ES256", NULL, "ec_pub.pem", NULL, NULL);
    char *es_token = mint_pem(JWT_ALG_ES256, "ec2.pem", claims);
    expect_reject(es, es_token, "bad signature");

    free(hs_token);
    free(rs_token);
    free(es_token);
    free(claims);
    auth_free(hs);
    auth_free(rs);
    auth_free(es);
}

/* ---- sub ---- */

Test(auth, missing_empty_or_non_string_sub_rejected)
{
    struct auth *a = hs256();
    static const char *const subs[] = {"", ",\"sub\":\"\"", ",\"sub\":42", ",\"sub\":null",
                                       ",\"sub\":[\"u1\"]"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char *claims = str_printf("{\"exp\":%lld%s}", (long long)NOW + 10, subs[i]);
        char *token = mint_hs(JWT_ALG_HS256, claims);
        expect_reject(a, token, "missing sub");
        free(token);
        free(claims);
    }
    auth_free(a);
}

Test(auth, duplicate_claims_rejected)
{
    struct auth *a = hs256();
    char *claims =
        str_printf("{\"sub\":\"u1\",\"sub\":\"admin\",\"exp\":%lld}", (long long)NOW + 10);
    char *token = craft_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims);
    expect_reject(a, token, "malformed");
    free(token);
    free(claims);
    auth_free(a);
}

/* ---- garbage ---- */

Test(auth, garbage_rejected)
{
    struct auth *a = hs256();
    static const char *const garbage[] = {
        "",
        "a",
        "a.b",
        "a.b.c",
        "...",
        "a..c",
        ".b.c",
        "a.b.",
        "a.b.c.d",
        "a b.c.d",
        "eyJhbGciOiJIUzI1NiJ9.e30.sig=",
        "eyJhbGciOiJIUzI1NiJ9.e30.s/g",
        "e.e30.c2ln",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
        expect_reject(a, garbage[i], "malformed");
    expect_reject(a, NULL, "malformed");

    /* A signed payload that is not a JSON object. */
    char *array = craft_hs256("{\"alg\":\"HS256\"}", "[1]");
    expect_reject(a, array, "malformed");
    char *text = craft_hs256("{\"alg\":\"HS256\"}", "not json");
    expect_reject(a, text, "malformed");
    free(array);
    free(text);
    auth_free(a);
}

Test(auth, huge_token_rejected_early)
{
    struct auth *a = hs256();
    char *pad = malloc(17000);
    memset(pad, 'A', 16999);
    pad[16999] = '\0';
    char *claims =
        str_printf("{\"sub\":\"u1\",\"exp\":%lld,\"pad\":\"%s\"}", (long long)NOW + 10, pad);
    char *token = mint_hs(JWT_ALG_HS256, claims);
    expect_reject(a, token, "too long");
    expect_reject(a, pad, "too long");

    /* Just under the limit still works. */
    char *small =
        str_printf("{\"sub\":\"u1\",\"exp\":%lld,\"pad\":\"%.12000s\"}", (long long)NOW + 10, pad);
    char *fits = mint_hs(JWT_ALG_HS256, small);
    cr_assert_leq(strlen(fits), 16384);
    expect_accept(a, fits);
    free(small);
    free(token);
    free(claims);
    free(pad);
    auth_free(a);
}

/* ---- rooms ---- */

Test(auth, identity_has_room_ignores_case)
{
    struct auth *a = hs256();
    char *claims =
        str_printf("{\"sub\":\"u1\",\"exp\":%lld,\"rooms\":[7,\"%s\"]}", (long long)NOW + 10, ROOM);
    struct identity id;
    expect_accept_at(a, mint_hs(JWT_ALG_HS256, claims), NOW, &id);
    cr_expect(identity_has_room(&id, ROOM));
    cr_expect(identity_has_room(&id, "6f9619ff-8b86-d011-b42d-00cf4fc964ff"));
    cr_expect_not(identity_has_room(&id, "6f9619ff-8b86-d011-b42d-00cf4fc964f0"));
    cr_expect_not(identity_has_room(&id, "7"));
    cr_expect_not(identity_has_room(&id, NULL));
    identity_clear(&id);
    cr_expect_not(identity_has_room(&id, ROOM));
    free(claims);
    auth_free(a);
}

/* ---- auth_new errors ---- */

static void expect_new_error(const char *alg, const char *secret, const char *key_name, long leeway,
                             const char *setting)
{
    char err[256] = "";
    const char *key_file = key_name && key_name[0] == '/' ? key_name
                           : key_name                     ? key_path(key_name)
                                                          : NULL;
    struct auth *a = auth_new(alg, secret, key_file, NULL, NULL, leeway, err, sizeof err);
    cr_expect_null(a, "auth_new(%s, %s) succeeded", alg ? alg : "NULL", key_name ? key_name : "");
    auth_free(a);
    cr_expect_eq(strncmp(err, setting, strlen(setting)), 0, "error line: %s", err);
    cr_expect_null(strchr(err, '\n'), "error line: %s", err);
}

Test(auth, new_rejects_bad_alg)
{
    static const char *const bad[] = {"none", "hs256", "HS257", "PS256", "", " HS256"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_new_error(bad[i], SECRET, NULL, LEEWAY, "SIGNAL_JWT_ALG:");
    expect_new_error(NULL, SECRET, NULL, LEEWAY, "SIGNAL_JWT_ALG:");
}

Test(auth, new_rejects_missing_secret)
{
    expect_new_error("HS256", NULL, NULL, LEEWAY, "SIGNAL_JWT_SECRET:");
    expect_new_error("HS512", "", NULL, LEEWAY, "SIGNAL_JWT_SECRET:");
}

Test(auth, new_rejects_negative_leeway)
{
    expect_new_error("HS256", SECRET, NULL, -1, "SIGNAL_JWT_LEEWAY_S:");
}

Test(auth, new_rejects_bad_key_files)
{
    const char *key = "SIGNAL_JWT_KEY_FILE:";
    expect_new_error("RS256", SECRET, NULL, LEEWAY, key);
    expect_new_error("RS256", NULL, "/nonexistent/key.pem", LEEWAY, key);
    expect_new_error("ES256", NULL, "garbage.pem", LEEWAY, key);
    expect_new_error("RS256", NULL, "rsa.pem", LEEWAY, key); /* private, not public */
    expect_new_error("RS256", NULL, "ec_pub.pem", LEEWAY, key);
    expect_new_error("RS256", NULL, "rsa1024_pub.pem", LEEWAY, key);
    expect_new_error("ES256", NULL, "rsa_pub.pem", LEEWAY, key);
    expect_new_error("ES256", NULL, "ec384_pub.pem", LEEWAY, key);
    expect_new_error("ES512", NULL, "ec384_pub.pem", LEEWAY, key);
    expect_new_error("ES384", NULL, "ec_pub.pem", LEEWAY, key);
}

Test(auth, new_error_names_the_problem)
{
    char err[256];
    cr_assert_null(auth_new("RS256", NULL, key_path("ec_pub.pem"), NULL, NULL, 0, err, sizeof err));
    cr_expect_str_eq(err, "SIGNAL_JWT_KEY_FILE: RS256 needs an RSA public key");
    cr_assert_null(
        auth_new("ES256", NULL, key_path("ec384_pub.pem"), NULL, NULL, 0, err, sizeof err));
    cr_expect_str_eq(err, "SIGNAL_JWT_KEY_FILE: ES256 needs an EC P-256 public key");
    /* A NULL or short err buffer is allowed. */
    cr_expect_null(auth_new("HS256", NULL, NULL, NULL, NULL, 0, NULL, 0));
    char tiny[8];
    cr_expect_null(auth_new("HS256", NULL, NULL, NULL, NULL, 0, tiny, sizeof tiny));
    cr_expect_str_eq(tiny, "SIGNAL_");
}

/* ---- token sources ---- */

static void expect_token(char *got, const char *want)
{
    if (want)
        cr_expect_str_eq(got, want);
    else
        cr_expect_null(got, "got \"%s\"", got);
    free(got);
}

Test(auth, bearer)
{
    expect_token(auth_token_from_bearer("Bearer abc.def.ghi"), "abc.def.ghi");
    expect_token(auth_token_from_bearer("bearer abc"), "abc");
    expect_token(auth_token_from_bearer("BEARER    abc   "), "abc");
    expect_token(auth_token_from_bearer("  Bearer\tabc"), "abc");
    expect_token(auth_token_from_bearer("Bearer"), NULL);
    expect_token(auth_token_from_bearer("Bearer    "), NULL);
    expect_token(auth_token_from_bearer("Bearerabc"), NULL);
    expect_token(auth_token_from_bearer("Bearer a b"), NULL);
    expect_token(auth_token_from_bearer("Basic dXNlcjpwYXNz"), NULL);
    expect_token(auth_token_from_bearer(""), NULL);
    expect_token(auth_token_from_bearer(NULL), NULL);
}

Test(auth, cookie)
{
    expect_token(auth_token_from_cookie("AuthToken=abc.def.ghi"), "abc.def.ghi");
    expect_token(auth_token_from_cookie("theme=dark; AuthToken=abc; lang=en"), "abc");
    expect_token(auth_token_from_cookie("theme=dark;AuthToken=abc;lang=en"), "abc");
    expect_token(auth_token_from_cookie("  AuthToken =  abc  ;"), "abc");
    expect_token(auth_token_from_cookie("AuthToken=\"abc.def\""), "abc.def");
    expect_token(auth_token_from_cookie("AuthToken=abc%2Edef%2eghi%3D"), "abc.def.ghi=");
    expect_token(auth_token_from_cookie("AuthToken=\"a%2Bb\""), "a+b");
    expect_token(auth_token_from_cookie("AuthToken=100%;x"), "100%");
    expect_token(auth_token_from_cookie("AuthTokenX=abc; XAuthToken=def"), NULL);
    expect_token(auth_token_from_cookie("AuthTokenX=abc; AuthToken=good"), "good");
    expect_token(auth_token_from_cookie("authtoken=abc"), NULL);
    expect_token(auth_token_from_cookie("AuthToken"), NULL);
    expect_token(auth_token_from_cookie("AuthToken="), NULL);
    expect_token(auth_token_from_cookie("AuthToken=\"\""), NULL);
    expect_token(auth_token_from_cookie("AuthToken=a%00b"), NULL);
    expect_token(auth_token_from_cookie("a=1; b=2"), NULL);
    expect_token(auth_token_from_cookie(""), NULL);
    expect_token(auth_token_from_cookie(NULL), NULL);
}
