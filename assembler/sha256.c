#include "sha256.h"

#include <openssl/evp.h>
#include <string.h>

#include "util.h"

void sha256_init(struct sha256 *h)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		oom();
	h->md = c;
}

void sha256_update(struct sha256 *h, const void *data, size_t len)
{
	if (len && EVP_DigestUpdate(h->md, data, len) != 1)
		oom();
}

void sha256_final_raw(struct sha256 *h, unsigned char out[32])
{
	unsigned int n = 32;
	EVP_DigestFinal_ex(h->md, out, &n);
	EVP_MD_CTX_free(h->md);
	h->md = NULL;
}

void sha256_final_digest(struct sha256 *h, char out[DIGEST_STRLEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[32];
	sha256_final_raw(h, raw);
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[raw[i] >> 4];
		out[7 + 2 * i + 1] = hex[raw[i] & 15];
	}
	out[DIGEST_STRLEN - 1] = '\0';
}

void sha256_abort(struct sha256 *h)
{
	EVP_MD_CTX_free(h->md);
	h->md = NULL;
}

void sha256_digest(const void *data, size_t len, char out[DIGEST_STRLEN])
{
	struct sha256 h;
	sha256_init(&h);
	sha256_update(&h, data, len);
	sha256_final_digest(&h, out);
}

bool digest_is_valid(const char *s)
{
	if (s == NULL || strncmp(s, "sha256:", 7) != 0 || strlen(s) != DIGEST_STRLEN - 1)
		return false;
	for (const char *p = s + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}
