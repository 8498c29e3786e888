/* gRPC over HTTP/2 with prior knowledge on a unix socket: just enough of
 * RFC 9113 (framing, SETTINGS, PING, flow control by a large window) and
 * RFC 7541 (HPACK: literals without Huffman on the way out; static and
 * dynamic tables and Huffman on the way in) for unary calls to containerd.
 * One call at a time per connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "init.h"

enum {
	H2_DATA = 0x0,
	H2_HEADERS = 0x1,
	H2_RST_STREAM = 0x3,
	H2_SETTINGS = 0x4,
	H2_PING = 0x6,
	H2_GOAWAY = 0x7,
	H2_WINDOW_UPDATE = 0x8,
	H2_CONTINUATION = 0x9,
};
enum { F_END_STREAM = 0x1, F_ACK = 0x1, F_END_HEADERS = 0x4, F_PADDED = 0x8, F_PRIORITY = 0x20 };

#define H2_MAX_FRAME	16384
#define H2_MAX_RESPONSE (64u << 20)
#define HPACK_TABLE_MAX 4096

struct hpack_entry {
	char *name, *value;
};

struct grpc_conn {
	int fd;
	uint32_t next_stream;
	/* A server-streaming call (grpc_stream_open): its id and the bytes of
	 * DATA received and not yet returned as messages. */
	uint32_t stream;
	uint8_t *sbuf;
	size_t slen;
	/* HPACK dynamic table, newest first. */
	struct hpack_entry *dyn;
	size_t ndyn, dyn_size, dyn_max;
};

/* RFC 7541 Appendix A. */
static const char *const hpack_static[61][2] = {
    {":authority", ""},
    {":method", "GET"},
    {":method", "POST"},
    {":path", "/"},
    {":path", "/index.html"},
    {":scheme", "http"},
    {":scheme", "https"},
    {":status", "200"},
    {":status", "204"},
    {":status", "206"},
    {":status", "304"},
    {":status", "400"},
    {":status", "404"},
    {":status", "500"},
    {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"},
    {"accept-language", ""},
    {"accept-ranges", ""},
    {"accept", ""},
    {"access-control-allow-origin", ""},
    {"age", ""},
    {"allow", ""},
    {"authorization", ""},
    {"cache-control", ""},
    {"content-disposition", ""},
    {"content-encoding", ""},
    {"content-language", ""},
    {"content-length", ""},
    {"content-location", ""},
    {"content-range", ""},
    {"content-type", ""},
    {"cookie", ""},
    {"date", ""},
    {"etag", ""},
    {"expect", ""},
    {"expires", ""},
    {"from", ""},
    {"host", ""},
    {"if-match", ""},
    {"if-modified-since", ""},
    {"if-none-match", ""},
    {"if-range", ""},
    {"if-unmodified-since", ""},
    {"last-modified", ""},
    {"link", ""},
    {"location", ""},
    {"max-forwards", ""},
    {"proxy-authenticate", ""},
    {"proxy-authorization", ""},
    {"range", ""},
    {"referer", ""},
    {"refresh", ""},
    {"retry-after", ""},
    {"server", ""},
    {"set-cookie", ""},
    {"strict-transport-security", ""},
    {"transfer-encoding", ""},
    {"user-agent", ""},
    {"vary", ""},
    {"via", ""},
    {"www-authenticate", ""},
};

/* RFC 7541 Appendix B: the code length of each symbol (256 = EOS).  The code
 * is canonical (codes of one length are consecutive in symbol order, shorter
 * lengths first), so the lengths determine the codes. */
static const uint8_t huffman_len[257] = {
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6,	10, 10, 12, 13, 6,  8,	11, 10, 10, 8,	11, 8,	6,  6,	6,
    5,	5,  5,	6,  6,	6,  6,	6,  6,	6,  7,	8,  15, 6,  12, 10, 13, 6,  7,	7,  7,	7,  7,	7,
    7,	7,  7,	7,  7,	7,  7,	7,  7,	7,  7,	7,  7,	7,  7,	7,  8,	7,  8,	13, 19, 13, 14, 6,
    15, 5,  6,	5,  6,	5,  6,	6,  6,	5,  7,	7,  6,	6,  6,	5,  6,	7,  6,	5,  5,	6,  7,	7,
    7,	7,  7,	15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21,
    23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24,
    21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
};

char *hpack_huffman_decode(const uint8_t *in, size_t len)
{
	/* Canonical decoding tables: per length, the first code, the number of
	 * codes and where its symbols start in the (length, symbol) order. */
	uint16_t sorted[257];
	uint32_t first_code[31] = {0};
	uint16_t count[31] = {0}, first_index[31] = {0};
	size_t n = 0;
	for (int l = 1; l <= 30; l++) {
		first_index[l] = (uint16_t)n;
		for (int s = 0; s < 257; s++)
			if (huffman_len[s] == l)
				sorted[n++] = (uint16_t)s;
		count[l] = (uint16_t)(n - first_index[l]);
	}
	uint32_t code = 0;
	for (int l = 1; l <= 30; l++) {
		first_code[l] = code;
		code = (code + count[l]) << 1;
	}
	char *out = xmalloc(len * 8 / 5 + 1);
	size_t o = 0;
	uint32_t cur = 0;
	int curlen = 0;
	for (size_t i = 0; i < len; i++) {
		for (int b = 7; b >= 0; b--) {
			cur = (cur << 1) | ((in[i] >> b) & 1);
			curlen++;
			if (curlen > 30)
				goto bad;
			if (cur - first_code[curlen] < count[curlen]) {
				uint16_t sym =
				    sorted[first_index[curlen] + (cur - first_code[curlen])];
				if (sym == 256)
					goto bad; /* EOS must not appear */
				out[o++] = (char)sym;
				cur = 0;
				curlen = 0;
			}
		}
	}
	/* Padding: fewer than 8 bits, all ones (a prefix of EOS). */
	if (curlen >= 8 || cur != (1u << curlen) - 1)
		goto bad;
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

static int h2_write(struct grpc_conn *c, const void *buf, size_t len, struct kiln_error **err)
{
	if (write_all(c->fd, buf, len, err) < 0)
		return kiln_error_wrap(err, "containerd socket");
	return 0;
}

static int h2_frame(struct grpc_conn *c, int type, int flags, uint32_t stream, const void *payload,
		    size_t len, struct kiln_error **err)
{
	uint8_t hdr[9] = {(uint8_t)(len >> 16),	   (uint8_t)(len >> 8),	   (uint8_t)len,
			  (uint8_t)type,	   (uint8_t)flags,	   (uint8_t)(stream >> 24),
			  (uint8_t)(stream >> 16), (uint8_t)(stream >> 8), (uint8_t)stream};
	/* One write per frame keeps the peer from seeing a header without its payload
	 * for long; small frames are copied together. */
	if (len <= 4096) {
		uint8_t buf[9 + 4096];
		memcpy(buf, hdr, 9);
		if (len)
			memcpy(buf + 9, payload, len);
		return h2_write(c, buf, 9 + len, err);
	}
	if (h2_write(c, hdr, 9, err) < 0)
		return -1;
	return h2_write(c, payload, len, err);
}

static int h2_read_full(struct grpc_conn *c, void *buf, size_t len, struct kiln_error **err)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = read(c->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_error_make(err, errno, "read from containerd socket");
		if (n == 0)
			return kiln_error_make(err, 0, "containerd closed the connection");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads one frame; *PAYLOAD is heap (caller frees). */
static int h2_read_frame(struct grpc_conn *c, int *type, int *flags, uint32_t *stream,
			 uint8_t **payload, size_t *len, struct kiln_error **err)
{
	uint8_t hdr[9];
	if (h2_read_full(c, hdr, 9, err) < 0)
		return -1;
	*len = ((size_t)hdr[0] << 16) | ((size_t)hdr[1] << 8) | hdr[2];
	*type = hdr[3];
	*flags = hdr[4];
	*stream = (((uint32_t)hdr[5] << 24) | ((uint32_t)hdr[6] << 16) | ((uint32_t)hdr[7] << 8) |
		   hdr[8]) &
		  0x7fffffff;
	if (*len > H2_MAX_FRAME)
		return kiln_error_make(err, 0, "HTTP/2 frame of %zu bytes exceeds the maximum",
				       *len);
	*payload = xmalloc(*len + 1);
	if (h2_read_full(c, *payload, *len, err) < 0) {
		free(*payload);
		*payload = NULL;
		return -1;
	}
	return 0;
}

struct grpc_conn *grpc_connect(const char *path, struct kiln_error **err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path) {
		kiln_error_make(err, 0, "socket path `%s` too long", path);
		return NULL;
	}
	strcpy(sa.sun_path, path);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		kiln_error_make(err, errno, "socket");
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		kiln_error_make(err, errno, "connect to `%s`", path);
		return NULL;
	}
	struct grpc_conn *c = xcalloc(1, sizeof *c);
	c->fd = steal_fd(&fd);
	c->next_stream = 1;
	c->dyn_max = HPACK_TABLE_MAX;
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	/* SETTINGS: ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 1 GiB; and a connection window
	 * as large, so responses never wait for a WINDOW_UPDATE from us. */
	static const uint8_t settings[] = {0, 2, 0, 0, 0, 0, 0, 4, 0x40, 0, 0, 0};
	static const uint8_t window[] = {0x3f, 0xff, 0x00, 0x00};
	if (h2_write(c, preface, sizeof preface - 1, err) < 0 ||
	    h2_frame(c, H2_SETTINGS, 0, 0, settings, sizeof settings, err) < 0 ||
	    h2_frame(c, H2_WINDOW_UPDATE, 0, 0, window, sizeof window, err) < 0) {
		grpc_close(c);
		return NULL;
	}
	return c;
}

static void hpack_evict(struct grpc_conn *c)
{
	while (c->ndyn > 0 && c->dyn_size > c->dyn_max) {
		struct hpack_entry *e = &c->dyn[c->ndyn - 1];
		c->dyn_size -= strlen(e->name) + strlen(e->value) + 32;
		free(e->name);
		free(e->value);
		c->ndyn--;
	}
}

void grpc_close(struct grpc_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	c->dyn_max = 0;
	hpack_evict(c);
	free(c->dyn);
	free(c->sbuf);
	free(c);
}

static void hpack_add(struct grpc_conn *c, const char *name, const char *value)
{
	size_t size = strlen(name) + strlen(value) + 32;
	c->dyn_size += size;
	c->dyn = xrealloc(c->dyn, (c->ndyn + 1) * sizeof *c->dyn);
	memmove(c->dyn + 1, c->dyn, c->ndyn * sizeof *c->dyn);
	c->dyn[0] = (struct hpack_entry){xstrdup(name), xstrdup(value)};
	c->ndyn++;
	hpack_evict(c); /* an entry larger than the table empties it (and itself) */
}

static int hpack_int(const uint8_t **p, const uint8_t *end, int prefix, uint64_t *out)
{
	if (*p >= end)
		return -1;
	uint64_t max = (1u << prefix) - 1;
	uint64_t v = **p & max;
	(*p)++;
	if (v < max) {
		*out = v;
		return 0;
	}
	for (int shift = 0; shift < 56; shift += 7) {
		if (*p >= end)
			return -1;
		uint8_t b = *(*p)++;
		v += (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

static char *hpack_string(const uint8_t **p, const uint8_t *end)
{
	if (*p >= end)
		return NULL;
	bool huffman = **p & 0x80;
	uint64_t len;
	if (hpack_int(p, end, 7, &len) < 0 || len > (uint64_t)(end - *p))
		return NULL;
	const uint8_t *s = *p;
	*p += len;
	if (huffman)
		return hpack_huffman_decode(s, (size_t)len);
	return xstrndup((const char *)s, (size_t)len);
}

static int hpack_lookup(struct grpc_conn *c, uint64_t index, const char **name, const char **value)
{
	if (index == 0)
		return -1;
	if (index <= 61) {
		*name = hpack_static[index - 1][0];
		*value = hpack_static[index - 1][1];
		return 0;
	}
	index -= 62;
	if (index >= c->ndyn)
		return -1;
	*name = c->dyn[index].name;
	*value = c->dyn[index].value;
	return 0;
}

struct grpc_result {
	int http_status;
	int grpc_status; /* -1 until seen */
	char *grpc_message;
};

static void grpc_result_header(struct grpc_result *r, const char *name, const char *value)
{
	if (strcmp(name, ":status") == 0) {
		r->http_status = atoi(value);
	} else if (strcmp(name, "grpc-status") == 0) {
		r->grpc_status = atoi(value);
	} else if (strcmp(name, "grpc-message") == 0) {
		free(r->grpc_message);
		/* Percent-decoded (gRPC's encoding of the message). */
		r->grpc_message = percent_decode(value, strlen(value), false);
	}
}

static int hpack_decode(struct grpc_conn *c, const uint8_t *p, size_t len, struct grpc_result *r,
			struct kiln_error **err)
{
	const uint8_t *end = p + len;
	while (p < end) {
		uint8_t b = *p;
		uint64_t index;
		if (b & 0x80) {
			const char *name, *value;
			if (hpack_int(&p, end, 7, &index) < 0 ||
			    hpack_lookup(c, index, &name, &value) < 0)
				return kiln_error_make(err, 0, "HPACK: bad indexed field");
			grpc_result_header(r, name, value);
			continue;
		}
		if ((b & 0xe0) == 0x20) {
			if (hpack_int(&p, end, 5, &index) < 0 || index > HPACK_TABLE_MAX)
				return kiln_error_make(err, 0, "HPACK: bad table size update");
			c->dyn_max = (size_t)index;
			hpack_evict(c);
			continue;
		}
		bool indexing = (b & 0xc0) == 0x40;
		if (hpack_int(&p, end, indexing ? 6 : 4, &index) < 0)
			return kiln_error_make(err, 0, "HPACK: truncated literal");
		cleanup_free char *name = NULL;
		if (index == 0) {
			name = hpack_string(&p, end);
		} else {
			const char *n, *v;
			if (hpack_lookup(c, index, &n, &v) == 0)
				name = xstrdup(n);
		}
		cleanup_free char *value = hpack_string(&p, end);
		if (name == NULL || value == NULL)
			return kiln_error_make(err, 0, "HPACK: bad literal field");
		grpc_result_header(r, name, value);
		if (indexing)
			hpack_add(c, name, value);
	}
	return 0;
}

/* A literal header field without indexing, new name, no Huffman. */
static void hpack_put_literal(struct pb_buf *b, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	/* Lengths are 7-bit-prefix integers (RFC 7541 §5.1) with the H bit clear. */
	b->data = xrealloc(b->data, b->len + nl + vl + 16);
	b->data[b->len++] = 0;
	for (int i = 0; i < 2; i++) {
		size_t l = i == 0 ? nl : vl;
		const char *s = i == 0 ? name : value;
		if (l < 127) {
			b->data[b->len++] = (uint8_t)l;
		} else {
			b->data[b->len++] = 127;
			size_t rest = l - 127;
			while (rest >= 128) {
				b->data[b->len++] = (uint8_t)(0x80 | (rest & 0x7f));
				rest >>= 7;
			}
			b->data[b->len++] = (uint8_t)rest;
		}
		memcpy(b->data + b->len, s, l);
		b->len += l;
	}
	b->cap = b->len;
}

/* Opens a stream and sends METHOD's request (headers, then one message). */
static int grpc_send_request(struct grpc_conn *c, const char *namespace, const char *method,
			     const struct pb_buf *req, struct kiln_error **err)
{
	uint32_t sid = c->next_stream;
	c->next_stream += 2;

	cleanup_pb_buf struct pb_buf hb = {0};
	hpack_put_literal(&hb, ":method", "POST");
	hpack_put_literal(&hb, ":scheme", "http");
	hpack_put_literal(&hb, ":path", method);
	hpack_put_literal(&hb, ":authority", "containerd");
	hpack_put_literal(&hb, "content-type", "application/grpc");
	hpack_put_literal(&hb, "te", "trailers");
	if (namespace)
		hpack_put_literal(&hb, "containerd-namespace", namespace);
	if (hb.len > H2_MAX_FRAME)
		return kiln_error_make(err, 0, "gRPC %s: request headers too large", method);
	if (h2_frame(c, H2_HEADERS, F_END_HEADERS, sid, hb.data, hb.len, err) < 0)
		return kiln_error_wrap(err, "gRPC %s", method);

	size_t mlen = req ? req->len : 0;
	cleanup_free uint8_t *body = xmalloc(5 + mlen);
	body[0] = 0;
	body[1] = (uint8_t)(mlen >> 24);
	body[2] = (uint8_t)(mlen >> 16);
	body[3] = (uint8_t)(mlen >> 8);
	body[4] = (uint8_t)mlen;
	if (mlen)
		memcpy(body + 5, req->data, mlen);
	size_t off = 0, total = 5 + mlen;
	while (off < total) {
		size_t chunk = total - off > H2_MAX_FRAME ? H2_MAX_FRAME : total - off;
		int flags = off + chunk == total ? F_END_STREAM : 0;
		if (h2_frame(c, H2_DATA, flags, sid, body + off, chunk, err) < 0)
			return kiln_error_wrap(err, "gRPC %s", method);
		off += chunk;
	}
	return 0;
}

int grpc_call(struct grpc_conn *c, const char *namespace, const char *method,
	      const struct pb_buf *req, uint8_t **resp, size_t *resp_len, int *grpc_status,
	      struct kiln_error **err)
{
	if (grpc_status)
		*grpc_status = -1;
	*resp = NULL;
	*resp_len = 0;
	uint32_t sid = c->next_stream;
	if (grpc_send_request(c, namespace, method, req, err) < 0)
		return -1;

	struct grpc_result r = {0, -1, NULL};
	cleanup_free uint8_t *data = NULL;
	size_t data_len = 0;
	cleanup_free uint8_t *block = NULL;
	size_t block_len = 0;
	bool in_headers = false, headers_end_stream = false, done = false;
	int rc = 0;
	while (!done) {
		int type, flags;
		uint32_t stream;
		cleanup_free uint8_t *pl = NULL;
		size_t len;
		if (h2_read_frame(c, &type, &flags, &stream, &pl, &len, err) < 0) {
			rc = kiln_error_wrap(err, "gRPC %s", method);
			goto out;
		}
		if (in_headers && type != H2_CONTINUATION) {
			rc = kiln_error_make(
			    err, 0, "gRPC %s: HTTP/2 protocol error (expected CONTINUATION)",
			    method);
			goto out;
		}
		const uint8_t *p = pl;
		size_t n = len;
		if ((type == H2_DATA || type == H2_HEADERS) && (flags & F_PADDED)) {
			if (n < 1 || p[0] >= n) {
				rc = kiln_error_make(err, 0, "gRPC %s: bad padding", method);
				goto out;
			}
			n -= 1 + p[0];
			p++;
		}
		switch (type) {
		case H2_SETTINGS:
			if (!(flags & F_ACK) &&
			    h2_frame(c, H2_SETTINGS, F_ACK, 0, NULL, 0, err) < 0) {
				rc = kiln_error_wrap(err, "gRPC %s", method);
				goto out;
			}
			break;
		case H2_PING:
			if (!(flags & F_ACK) && h2_frame(c, H2_PING, F_ACK, 0, pl, len, err) < 0) {
				rc = kiln_error_wrap(err, "gRPC %s", method);
				goto out;
			}
			break;
		case H2_GOAWAY: {
			uint32_t code = len >= 8 ? ((uint32_t)pl[4] << 24 | (uint32_t)pl[5] << 16 |
						    (uint32_t)pl[6] << 8 | pl[7])
						 : 0;
			rc = kiln_error_make(err, 0, "gRPC %s: containerd sent GOAWAY (code %u)",
					     method, code);
			goto out;
		}
		case H2_RST_STREAM:
			if (stream == sid) {
				uint32_t code =
				    len >= 4 ? ((uint32_t)pl[0] << 24 | (uint32_t)pl[1] << 16 |
						(uint32_t)pl[2] << 8 | pl[3])
					     : 0;
				rc = kiln_error_make(err, 0, "gRPC %s: stream reset (code %u)",
						     method, code);
				goto out;
			}
			break;
		case H2_DATA:
			if (stream != sid)
				break;
			if (data_len + n > H2_MAX_RESPONSE) {
				rc = kiln_error_make(err, 0, "gRPC %s: response too large", method);
				goto out;
			}
			data = xrealloc(data, data_len + n + 1);
			memcpy(data + data_len, p, n);
			data_len += n;
			if (flags & F_END_STREAM)
				done = true;
			break;
		case H2_HEADERS:
		case H2_CONTINUATION:
			if (type == H2_HEADERS) {
				if (flags & F_PRIORITY) {
					if (n < 5) {
						rc = kiln_error_make(err, 0, "gRPC %s: bad HEADERS",
								     method);
						goto out;
					}
					p += 5;
					n -= 5;
				}
				headers_end_stream = flags & F_END_STREAM;
				block_len = 0;
			}
			block = xrealloc(block, block_len + n + 1);
			memcpy(block + block_len, p, n);
			block_len += n;
			in_headers = !(flags & F_END_HEADERS);
			if (!in_headers) {
				/* Decoded whatever the stream: the dynamic table is per connection.
				 */
				struct grpc_result other = {0, -1, NULL};
				if (hpack_decode(c, block, block_len, stream == sid ? &r : &other,
						 err) < 0) {
					free(other.grpc_message);
					rc = kiln_error_wrap(err, "gRPC %s", method);
					goto out;
				}
				free(other.grpc_message);
				if (stream == sid && headers_end_stream)
					done = true;
			}
			break;
		default:
			break; /* WINDOW_UPDATE, PRIORITY, unknown: nothing to do */
		}
	}
	if (grpc_status)
		*grpc_status = r.grpc_status;
	if (r.grpc_status < 0) {
		rc = kiln_error_make(err, 0, "gRPC %s: no grpc-status (HTTP status %d)", method,
				     r.http_status);
		goto out;
	}
	if (r.grpc_status != 0) {
		rc = kiln_error_make(err, 0, "%s (gRPC status %d)",
				     r.grpc_message ? r.grpc_message : "error", r.grpc_status);
		goto out;
	}
	if (data_len > 0) {
		if (data_len < 5) {
			rc = kiln_error_make(err, 0, "gRPC %s: truncated message", method);
			goto out;
		}
		if (data[0] != 0) {
			rc = kiln_error_make(err, 0, "gRPC %s: compressed response", method);
			goto out;
		}
		size_t ml = ((size_t)data[1] << 24) | ((size_t)data[2] << 16) |
			    ((size_t)data[3] << 8) | data[4];
		if (ml > data_len - 5) {
			rc = kiln_error_make(err, 0, "gRPC %s: truncated message", method);
			goto out;
		}
		*resp = xmalloc(ml + 1);
		memcpy(*resp, data + 5, ml);
		*resp_len = ml;
	} else {
		*resp = xmalloc(1);
	}
out:
	free(r.grpc_message);
	return rc;
}

int grpc_stream_open(struct grpc_conn *c, const char *namespace, const char *method,
		     const struct pb_buf *req, struct kiln_error **err)
{
	c->stream = c->next_stream;
	c->slen = 0;
	return grpc_send_request(c, namespace, method, req, err);
}

int grpc_conn_fd(const struct grpc_conn *c)
{
	return c->fd;
}

int grpc_stream_pump(struct grpc_conn *c, grpc_message_fn fn, void *opaque, struct kiln_error **err)
{
	int type, flags;
	uint32_t stream;
	cleanup_free uint8_t *pl = NULL;
	size_t len;
	if (h2_read_frame(c, &type, &flags, &stream, &pl, &len, err) < 0)
		return -1;
	const uint8_t *p = pl;
	size_t n = len;
	if ((type == H2_DATA || type == H2_HEADERS) && (flags & F_PADDED)) {
		if (n < 1 || p[0] >= n)
			return kiln_error_make(err, 0, "HTTP/2: bad padding");
		n -= 1 + p[0];
		p++;
	}
	switch (type) {
	case H2_SETTINGS:
		if (!(flags & F_ACK))
			return h2_frame(c, H2_SETTINGS, F_ACK, 0, NULL, 0, err);
		return 0;
	case H2_PING:
		if (!(flags & F_ACK))
			return h2_frame(c, H2_PING, F_ACK, 0, pl, len, err);
		return 0;
	case H2_GOAWAY:
		return kiln_error_make(err, 0, "containerd sent GOAWAY");
	case H2_RST_STREAM:
		if (stream == c->stream)
			return kiln_error_make(err, 0, "stream reset by containerd");
		return 0;
	case H2_HEADERS:
	case H2_CONTINUATION: {
		if (!(flags & F_END_HEADERS))
			return kiln_error_make(err, 0,
					       "HTTP/2: CONTINUATION not supported on streams");
		if (type == H2_HEADERS && (flags & F_PRIORITY)) {
			if (n < 5)
				return kiln_error_make(err, 0, "HTTP/2: bad HEADERS");
			p += 5;
			n -= 5;
		}
		struct grpc_result r = {0, -1, NULL};
		int rc = hpack_decode(c, p, n, &r, err);
		if (rc == 0 && stream == c->stream && (flags & F_END_STREAM))
			rc = kiln_error_make(err, 0, "stream ended (grpc-status %d%s%s)",
					     r.grpc_status, r.grpc_message ? ": " : "",
					     r.grpc_message ? r.grpc_message : "");
		free(r.grpc_message);
		return rc;
	}
	case H2_DATA:
		if (stream != c->stream)
			return 0;
		if (c->slen + n > H2_MAX_RESPONSE)
			return kiln_error_make(err, 0, "stream message too large");
		c->sbuf = xrealloc(c->sbuf, c->slen + n + 1);
		memcpy(c->sbuf + c->slen, p, n);
		c->slen += n;
		while (c->slen >= 5) {
			size_t ml = ((size_t)c->sbuf[1] << 24) | ((size_t)c->sbuf[2] << 16) |
				    ((size_t)c->sbuf[3] << 8) | c->sbuf[4];
			if (c->slen < 5 + ml)
				break;
			fn(opaque, c->sbuf + 5, ml);
			memmove(c->sbuf, c->sbuf + 5 + ml, c->slen - 5 - ml);
			c->slen -= 5 + ml;
		}
		if (flags & F_END_STREAM)
			return kiln_error_make(err, 0, "stream ended");
		return 0;
	default:
		return 0;
	}
}
