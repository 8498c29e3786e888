/* SHA-256 through OpenSSL libcrypto.  Digests are written as OCI digest
 * strings "sha256:<64 hex>" (DIGEST_STRLEN bytes with the NUL). */
#ifndef KILN_SHA256_H
#define KILN_SHA256_H

#include <stdbool.h>
#include <stddef.h>

#define SHA256_HEXLEN 64
#define DIGEST_STRLEN (7 + SHA256_HEXLEN + 1)

struct sha256 {
	void *md; /* EVP_MD_CTX */
};

void sha256_init(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
/* Writes "sha256:<hex>" into OUT and frees the context. */
void sha256_final_digest(struct sha256 *h, char out[DIGEST_STRLEN]);
/* Writes the raw 32 bytes into OUT and frees the context. */
void sha256_final_raw(struct sha256 *h, unsigned char out[32]);
/* Frees a context that will not be finalised. */
void sha256_abort(struct sha256 *h);

/* One-shot: "sha256:<hex>" of DATA. */
void sha256_digest(const void *data, size_t len, char out[DIGEST_STRLEN]);

/* true when S is "sha256:" followed by exactly 64 lowercase hex digits. */
bool digest_is_valid(const char *s);

#endif
