// OpenSSL 3 libcrypto, as used by KerberosCrypto: EVP ciphers (AES-CBC, AES-CBC-CTS, AES-ECB),
// EVP_MAC (HMAC), PBKDF2, constant-time compare, cleanse and the DRBG.
#ifndef MIGAUTH_CLIBCRYPTO_SHIM_H
#define MIGAUTH_CLIBCRYPTO_SHIM_H

#include <openssl/opensslv.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/err.h>

#if OPENSSL_VERSION_MAJOR < 3
#error "KerberosCrypto needs OpenSSL 3 (AES-CBC-CTS with the CS3 variant, EVP_MAC)"
#endif

/// Initialises `ctx` for AES-CBC-CTS in the CS3 variant (RFC 3962's ciphertext stealing: the last
/// two blocks are always swapped). OSSL_PARAM keeps pointers, so the strings must be static.
static inline int migauth_cts3_init(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher,
                                    const unsigned char *key, const unsigned char *iv, int enc) {
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_CIPHER_PARAM_CTS_MODE, (char *)"CS3", 0),
        OSSL_PARAM_construct_end()
    };
    return EVP_CipherInit_ex2(ctx, cipher, key, iv, enc, params);
}

/// Initialises an HMAC `EVP_MAC_CTX` with `key` and the digest named `digest` ("SHA1", "SHA256"…).
static inline int migauth_hmac_init(EVP_MAC_CTX *ctx, const unsigned char *key, size_t keylen,
                                    const char *digest) {
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0),
        OSSL_PARAM_construct_end()
    };
    return EVP_MAC_init(ctx, key, keylen, params);
}

#endif
