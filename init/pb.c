/* Protocol buffers by hand: the few wire types containerd's API uses. */
#include <stdlib.h>
#include <string.h>

#include "init.h"

static void pb_reserve(struct pb_buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	size_t cap = b->cap ? b->cap * 2 : 256;
	while (cap < b->len + more)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

static void pb_put_raw(struct pb_buf *b, const void *data, size_t len)
{
	pb_reserve(b, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
}

void pb_put_varint(struct pb_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	do {
		tmp[n] = v & 0x7f;
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	pb_put_raw(b, tmp, n);
}

static void pb_put_key(struct pb_buf *b, int field, int wire)
{
	pb_put_varint(b, ((uint64_t)field << 3) | (uint64_t)wire);
}

void pb_put_bytes(struct pb_buf *b, int field, const void *data, size_t len)
{
	pb_put_key(b, field, 2);
	pb_put_varint(b, len);
	pb_put_raw(b, data, len);
}

void pb_put_string(struct pb_buf *b, int field, const char *s)
{
	if (s == NULL || *s == '\0')
		return;
	pb_put_bytes(b, field, s, strlen(s));
}

void pb_put_uint(struct pb_buf *b, int field, uint64_t v)
{
	if (v == 0)
		return;
	pb_put_key(b, field, 0);
	pb_put_varint(b, v);
}

void pb_put_bool(struct pb_buf *b, int field, bool v)
{
	if (v)
		pb_put_uint(b, field, 1);
}

void pb_put_message(struct pb_buf *b, int field, const struct pb_buf *sub)
{
	pb_put_bytes(b, field, sub->data, sub->len);
}

void pb_buf_release(struct pb_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static int pb_get_varint(struct pb_reader *r, uint64_t *v)
{
	uint64_t out = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return -1;
		uint8_t byte = *r->p++;
		out |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80)) {
			*v = out;
			return 0;
		}
	}
	return -1;
}

int pb_next(struct pb_reader *r, struct pb_field *f, struct kiln_error **err)
{
	if (r->p >= r->end)
		return 0;
	uint64_t key;
	if (pb_get_varint(r, &key) < 0)
		return kiln_error_make(err, 0, "protobuf: truncated field key");
	memset(f, 0, sizeof *f);
	f->number = (int)(key >> 3);
	f->wire = (int)(key & 7);
	switch (f->wire) {
	case 0:
		if (pb_get_varint(r, &f->varint) < 0)
			return kiln_error_make(err, 0, "protobuf: truncated varint");
		return 1;
	case 1:
	case 5: {
		size_t n = f->wire == 1 ? 8 : 4;
		if ((size_t)(r->end - r->p) < n)
			return kiln_error_make(err, 0, "protobuf: truncated fixed field");
		for (size_t i = 0; i < n; i++)
			f->varint |= (uint64_t)r->p[i] << (8 * i);
		r->p += n;
		return 1;
	}
	case 2: {
		uint64_t len;
		if (pb_get_varint(r, &len) < 0 || len > (uint64_t)(r->end - r->p))
			return kiln_error_make(err, 0,
					       "protobuf: truncated length-delimited field");
		f->data = r->p;
		f->len = (size_t)len;
		r->p += len;
		return 1;
	}
	default:
		return kiln_error_make(err, 0, "protobuf: unsupported wire type %d", f->wire);
	}
}

char *pb_field_strdup(const struct pb_field *f)
{
	return xstrndup((const char *)f->data, f->len);
}

bool pb_path(const uint8_t *data, size_t len, const int *path, struct pb_field *out)
{
	struct pb_reader r = {data, data + len};
	struct pb_field f;
	bool found = false;
	while (pb_next(&r, &f, NULL) > 0) {
		if (f.number != path[0])
			continue;
		if (path[1] == 0) {
			*out = f;
			found = true;
		} else if (f.wire == 2) {
			found = pb_path(f.data, f.len, path + 1, out) || found;
		}
	}
	return found;
}
