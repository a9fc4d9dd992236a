/* Signing JWTs with libjwt; see mint.h. */
#include "mint.h"

#include <jwt.h>
#include <limits.h>
#include <stdlib.h>

char *mint_token(const json_t *claims, const char *alg, const unsigned char *key, size_t key_len)
{
    jwt_alg_t a = jwt_str_alg(alg);
    /* libjwt takes the key's length as an int. */
    if (a == JWT_ALG_INVAL || a == JWT_ALG_NONE || key_len > INT_MAX)
        return NULL;
    char *grants = json_dumps(claims, JSON_COMPACT);
    jwt_t *jwt = NULL;
    char *token = NULL;
    if (grants && jwt_new(&jwt) == 0 && jwt_add_grants_json(jwt, grants) == 0 &&
        jwt_set_alg(jwt, a, key, (int)key_len) == 0)
        token = jwt_encode_str(jwt);
    jwt_free(jwt);
    free(grants);
    return token;
}
