/* libFuzzer target for the registry client's parsers of untrusted text:
 * WWW-Authenticate challenges, credentials files, Retry-After,
 * Content-Range, host names, platforms and base64.  No crash, no leak,
 * and base64 round-trips. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	struct auth_challenge ch;
	if (auth_challenge_parse(s, &ch) == 0) {
		if (ch.scheme != AUTH_BASIC && ch.scheme != AUTH_BEARER)
			abort();
		auth_challenge_release(&ch);
	}
	struct registry_credentials c = {0};
	struct kiln_error *err = NULL;
	const char *domains[] = {"docker.io", "127.0.0.1:5000", "r.example"};
	for (size_t i = 0; i < ARRAY_SIZE(domains); i++) {
		int r = registry_credentials_from_json((const char *)data, size, "fuzz", domains[i],
						       &c, &err);
		if (r == 1 && (c.username == NULL || c.password == NULL))
			abort();
		if (r < 0 && (err == NULL || err->msg == NULL))
			abort();
		registry_credentials_release(&c);
		kiln_error_release(&err);
	}
	(void)retry_after_parse(s, 1700000000);
	uint64_t a, z;
	if (content_range_parse(s, &a, &z) == 0 && z < a)
		abort();
	(void)host_is_loopback(s);
	if (size > 0 && size < 256) {
		char *os, *arch, *variant;
		platform_split(s, &os, &arch, &variant);
		free(os);
		free(arch);
		free(variant);
	}
	size_t n;
	char *dec = base64_decode(s, &n);
	free(dec);
	char *enc = base64_encode(data, size);
	dec = base64_decode(enc, &n);
	if (dec == NULL || n != size || memcmp(dec, data, size) != 0)
		abort();
	free(dec);
	free(enc);
	free(s);
	return 0;
}
