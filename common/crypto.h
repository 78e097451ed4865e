/*
 * crypto.h - the project's only door to OpenSSL's primitives (OpenSSL 3 EVP APIs):
 * SHA-256, HMAC-SHA256, constant-time comparison, CSPRNG bytes, hex and base64url codecs,
 * AES-256-GCM sealing of stored secrets under a PBKDF2-SHA256 (600,000 iterations) key with a
 * fresh salt and nonce per secret, and the length + Shannon-entropy check for keys.
 *
 * Functions return 0 on success and -1 on failure unless stated; they never log the data they
 * are given.
 */
#ifndef CSMCP_CRYPTO_H
#define CSMCP_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_SHA256_LEN      32
#define CRYPTO_SHA256_HEX_LEN  65 /* 64 hex digits + NUL */
#define CRYPTO_PBKDF2_ITER     600000
#define CRYPTO_SEAL_SALT_LEN   16
#define CRYPTO_SEAL_NONCE_LEN  12
#define CRYPTO_SEAL_TAG_LEN    16
#define CRYPTO_KEY_MIN_LEN     32  /* bytes of a session / vault key */
#define CRYPTO_KEY_MIN_ENTROPY 3.0 /* Shannon bits per byte */

int crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN]);
/* Lower-case hex digest into out (65 bytes). */
int crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_SHA256_HEX_LEN]);
int crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                       uint8_t out[CRYPTO_SHA256_LEN]);
/* Constant-time equality of two n-byte buffers. */
bool crypto_ct_equal(const void *a, const void *b, size_t n);
/* Constant-time equality of two strings (time depends only on the lengths). */
bool crypto_ct_streq(const char *a, const char *b);
/* n bytes from the CSPRNG. */
int crypto_random(void *buf, size_t n);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void crypto_hex(const void *in, size_t n, char *out);

/* Unpadded base64url of n bytes into out; returns the length written, or -1 if outlen is too
 * small (needs 4*ceil(n/3)+1). */
int crypto_b64url_encode(const void *in, size_t n, char *out, size_t outlen);
/* Decodes base64url (padding optional; also accepts '+' '/' alphabet); returns the number of
 * bytes written, or -1 on invalid input or overflow. */
int crypto_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outlen);

/*
 * Encrypts plaintext under a key derived from passphrase (PBKDF2-SHA256, iter iterations, fresh
 * random salt) with AES-256-GCM (fresh random nonce). *out (caller frees) is printable text:
 * "v1$<iter>$<salt b64url>$<nonce b64url>$<ciphertext||tag b64url>". aad may be NULL; when
 * given (e.g. the secret's name) the same aad is required to open it.
 */
int crypto_seal(const char *passphrase, const char *aad, const void *plaintext, size_t len,
                int iter, char **out);
/* Reverses crypto_seal. *out (caller frees, NUL-terminated for convenience) and *outlen.
 * -1 on a wrong passphrase, a wrong aad, tampering or a malformed input. */
int crypto_open(const char *passphrase, const char *aad, const char *sealed, uint8_t **out,
                size_t *outlen);

/* Shannon entropy of the byte distribution, in bits per byte (0 .. 8). */
double crypto_shannon_entropy(const void *data, size_t len);
/*
 * Strength check for a secret key: at least min_len bytes, at least CRYPTO_KEY_MIN_ENTROPY
 * bits per byte and at least 10 distinct bytes. false with a reason in why (never quoting the
 * key itself).
 */
bool crypto_key_is_strong(const void *key, size_t len, size_t min_len, char *why, size_t whylen);

#endif
