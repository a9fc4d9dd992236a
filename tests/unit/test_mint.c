/* Unit tests of the one token minter (common/mint.c): what it signs,
 * common/auth.c verifies, with a secret and with private keys; what it
 * cannot sign, it refuses. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "mint.h"

#define SECRET "mint-test-secret-0123456789abcdef"
#define NOW ((time_t)1700000000)
#define ROOM "6f9619ff-8b86-d011-b42d-00cf4fc964ff"

/* The claims --dev and signal-token write, valid an hour after NOW. */
static json_t *claims(void)
{
    return json_pack("{s:s, s:s, s:[s], s:I, s:I}", "sub", "acc-1", "name", "Ann", "rooms", ROOM,
                     "iat", (json_int_t)NOW, "exp", (json_int_t)NOW + 3600);
}

/* Verifies token with a verifier for alg and checks the identity; frees it. */
static void expect_verified(char *token, const char *alg, const char *secret, const char *key_file)
{
    cr_assert_not_null(token, "%s: nothing minted", alg);
    char err[256] = "";
    struct auth *a = auth_new(alg, secret, key_file, NULL, NULL, 60, err, sizeof(err));
    cr_assert_not_null(a, "%s", err);
    struct identity id;
    const char *why = NULL;
    cr_assert_eq(auth_verify(a, token, NOW, &id, &why), 0, "%s: %s", alg, why);
    cr_expect_str_eq(id.account_id, "acc-1");
    cr_expect_str_eq(json_string_value(json_object_get(id.account, "name")), "Ann");
    cr_expect(identity_has_room(&id, ROOM));
    cr_expect_eq(id.exp, (long long)NOW + 3600);
    identity_clear(&id);
    auth_free(a);
    free(token);
}

/* The PEM private key of key (malloc'd, its size in *len), for mint_token. */
static unsigned char *private_pem(EVP_PKEY *key, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    cr_assert(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL));
    char *data;
    *len = (size_t)BIO_get_mem_data(bio, &data);
    unsigned char *pem = malloc(*len);
    memcpy(pem, data, *len);
    BIO_free(bio);
    return pem;
}

/* Writes key's public half to a new temporary file, whose path goes into
 * path (removed by the caller), for auth_new. */
static void public_pem_file(EVP_PKEY *key, char path[64])
{
    snprintf(path, 64, "/tmp/test_mint.XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    cr_assert(PEM_write_PUBKEY(f, key));
    fclose(f);
}

/* Mints with a fresh key for alg and verifies with its public half. */
static void expect_key_alg(const char *alg, EVP_PKEY *key)
{
    cr_assert_not_null(key);
    size_t len;
    unsigned char *pem = private_pem(key, &len);
    char path[64];
    public_pem_file(key, path);
    json_t *c = claims();
    expect_verified(mint_token(c, alg, pem, len), alg, NULL, path);
    json_decref(c);
    unlink(path);
    free(pem);
    EVP_PKEY_free(key);
}

Test(mint, hmac_tokens_verify)
{
    static const char *const algs[] = {"HS256", "HS384", "HS512"};
    json_t *c = claims();
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        expect_verified(mint_token(c, algs[i], (const unsigned char *)SECRET, strlen(SECRET)),
                        algs[i], SECRET, NULL);
    json_decref(c);
}

Test(mint, rsa_tokens_verify)
{
    expect_key_alg("RS256", EVP_RSA_gen(2048));
}

Test(mint, ec_tokens_verify)
{
    expect_key_alg("ES256", EVP_EC_gen("P-256"));
    expect_key_alg("ES384", EVP_EC_gen("P-384"));
}

Test(mint, another_secret_does_not_verify)
{
    json_t *c = claims();
    char *token = mint_token(c, "HS256", (const unsigned char *)"other", 5);
    cr_assert_not_null(token);
    struct auth *a = auth_new("HS256", SECRET, NULL, NULL, NULL, 60, NULL, 0);
    struct identity id;
    const char *why = NULL;
    cr_assert_eq(auth_verify(a, token, NOW, &id, &why), -1);
    cr_assert_str_eq(why, "bad signature");
    auth_free(a);
    free(token);
    json_decref(c);
}

Test(mint, refuses_what_it_cannot_sign)
{
    json_t *c = claims();
    const unsigned char *s = (const unsigned char *)SECRET;
    cr_assert_null(mint_token(c, "none", s, strlen(SECRET)));
    cr_assert_null(mint_token(c, "XS256", s, strlen(SECRET)));
    cr_assert_null(mint_token(c, NULL, s, strlen(SECRET)));
    /* A secret is no PEM private key. */
    cr_assert_null(mint_token(c, "RS256", s, strlen(SECRET)));
    json_decref(c);
}
