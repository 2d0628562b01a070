/* pktline: see pktline.h. */
#include "pktline.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "banned.h"

void pkt_reader_init(struct pkt_reader *r, struct gitsvc_io *io)
{
	r->io = io;
	r->start = 0;
	r->end = 0;
	r->eof = 0;
	r->v2 = 0;
	r->timeout_ms = -1;
	r->raw_bytes = 0;
}

/* Make at least 'want' unread bytes available; 0 ok, 1 EOF first, -1 error. */
static int fill(struct pkt_reader *r, size_t want)
{
	while (r->end - r->start < want) {
		ssize_t n;

		if (r->eof)
			return 1;
		if (r->start > 0 && r->end + PKT_MAX > sizeof(r->buf)) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		n = r->io->read(r->io->ctx, r->buf + r->end,
				sizeof(r->buf) - r->end, r->timeout_ms);
		if (n < 0)
			return -1;
		if (n == 0) {
			r->eof = 1;
			return 1;
		}
		r->end += (size_t)n;
	}
	return 0;
}

int pkt_read(struct pkt_reader *r, const char **data, size_t *len)
{
	size_t n = 0;
	char *p;
	int i, ret;

	ret = fill(r, 4);
	if (ret < 0)
		return -1;
	if (ret > 0) {
		if (r->end == r->start)
			return PKT_EOF;
		return error_set("the remote end hung up in a packet header");
	}
	p = r->buf + r->start;
	for (i = 0; i < 4; i++) {
		int v = hex_value(p[i]);

		if (v < 0)
			return error_set("bad packet length '%.4s'", p);
		n = n * 16 + (size_t)v;
	}
	if (n == 0) {
		r->start += 4;
		return PKT_FLUSH;
	}
	if (r->v2 && (n == 1 || n == 2)) {
		r->start += 4;
		return n == 1 ? PKT_DELIM : PKT_RESPONSE_END;
	}
	if (n < 4 || n > PKT_MAX)
		return error_set("bad packet length '%.4s'", p);
	ret = fill(r, n);
	if (ret < 0)
		return -1;
	if (ret > 0)
		return error_set("the remote end hung up inside a packet");
	/*
	 * NUL-terminate the payload in place: the byte after it is the next
	 * packet's first header byte, so save nothing and instead shift the
	 * payload one byte back over its own header, which is consumed.
	 */
	p = r->buf + r->start;
	memmove(p + 3, p + 4, n - 4);
	p[3 + n - 4] = '\0';
	*data = p + 3;
	*len = n - 4;
	r->start += n;
	return PKT_DATA;
}

ssize_t pkt_read_raw(struct pkt_reader *r, void *out, size_t len)
{
	size_t have = r->end - r->start;
	ssize_t n;

	if (len == 0)
		return 0;
	if (have) {
		if (have > len)
			have = len;
		memcpy(out, r->buf + r->start, have);
		r->start += have;
		r->raw_bytes += have;
		return (ssize_t)have;
	}
	if (r->eof)
		return 0;
	n = r->io->read(r->io->ctx, out, len, r->timeout_ms);
	if (n < 0)
		return -1;
	if (n == 0)
		r->eof = 1;
	r->raw_bytes += (uint64_t)n;
	return n;
}

size_t pkt_chomp(const char *data, size_t len)
{
	if (len && data[len - 1] == '\n')
		len--;
	return len;
}

int pkt_read_line(struct pkt_reader *r, const char **data, size_t *len,
		  int eof_ok, const char *where)
{
	int t = pkt_read(r, data, len);

	if (t == PKT_EOF && !eof_ok)
		return error_set("the remote end hung up %s", where);
	if (t == PKT_DATA && *len && (*data)[*len - 1] == '\n') {
		/* the payload lives in our buffer: end the string there too */
		(*len)--;
		r->buf[(size_t)(*data - r->buf) + *len] = '\0';
	}
	return t;
}

int pkt_buf_add(struct buf *b, const void *data, size_t len)
{
	char hdr[5];

	if (len > PKT_DATA_MAX)
		return error_set("packet too long (%zu bytes)", len);
	snprintf(hdr, sizeof(hdr), "%04zx", len + 4);
	if (buf_add(b, hdr, 4) < 0 || buf_add(b, data, len) < 0)
		return -1;
	return 0;
}

/* Append one formatted packet to b; pkt_buf_addf() and pkt_writef(). */
static int pkt_buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	char *p;
	int n, ret;

	n = vasprintf(&p, fmt, ap);
	if (n < 0)
		return error_set("out of memory");
	ret = pkt_buf_add(b, p, (size_t)n);
	free(p);
	return ret;
}

int pkt_buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = pkt_buf_vaddf(b, fmt, ap);
	va_end(ap);
	return ret;
}

int pkt_buf_flush(struct buf *b)
{
	return buf_add(b, "0000", 4);
}

int pkt_buf_delim(struct buf *b)
{
	return buf_add(b, "0001", 4);
}

/* Write what a packet builder made (ret its result) in one write. */
static int write_built(struct gitsvc_io *io, struct buf *b, int ret)
{
	if (ret == 0)
		ret = io->write(io->ctx, b->data, b->len);
	buf_release(b);
	return ret;
}

int pkt_write(struct gitsvc_io *io, const void *data, size_t len)
{
	struct buf b = BUF_INIT;

	return write_built(io, &b, pkt_buf_add(&b, data, len));
}

int pkt_writef(struct gitsvc_io *io, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = pkt_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	return write_built(io, &b, ret);
}

int pkt_flush(struct gitsvc_io *io)
{
	return io->write(io->ctx, "0000", 4);
}

int pkt_band(struct gitsvc_io *io, int band, const void *data, size_t len)
{
	/* header, band byte, payload: one write per packet (single-threaded) */
	static char pkt[PKT_MAX];
	const char *p = data;

	do {
		size_t n = len > PKT_BAND_MAX ? PKT_BAND_MAX : len;
		char hdr[5];

		snprintf(hdr, sizeof(hdr), "%04zx", n + 5);
		memcpy(pkt, hdr, 4);
		pkt[4] = (char)band;
		if (n)
			memcpy(pkt + 5, p, n);
		if (io->write(io->ctx, pkt, n + 5) < 0)
			return -1;
		p += n;
		len -= n;
	} while (len > 0);
	return 0;
}

int pkt_send(struct gitsvc_io *io, int *dead, const void *data, size_t len)
{
	if (*dead)
		return -1;
	if (io->write(io->ctx, data, len) < 0) {
		*dead = 1;
		return -1;
	}
	return 0;
}

int pkt_send_band(struct gitsvc_io *io, int *dead, int band,
		  const void *data, size_t len)
{
	if (*dead)
		return -1;
	if (pkt_band(io, band, data, len) < 0) {
		*dead = 1;
		return -1;
	}
	return 0;
}

int pkt_send_vbandf(struct gitsvc_io *io, int *dead, int band,
		    const char *fmt, va_list ap)
{
	char *p;
	int n, ret;

	if (*dead)
		return -1;
	n = vasprintf(&p, fmt, ap);
	if (n < 0)
		return -1;
	ret = pkt_send_band(io, dead, band, p, (size_t)n);
	free(p);
	return ret;
}

static ssize_t memio_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
	struct pkt_memio *m = ctx;
	size_t n = m->len - m->off;

	if (n > len)
		n = len;
	if (m->chunk && n > m->chunk)
		n = m->chunk;
	memcpy(buf, m->data + m->off, n);
	m->off += n;
	return (ssize_t)n;
}

static int memio_write(void *ctx, const void *buf, size_t len)
{
	struct pkt_memio *m = ctx;

	if (!m->out)
		return 0;
	return buf_add(m->out, buf, len);
}

void pkt_memio_init(struct gitsvc_io *io, struct pkt_memio *m,
		    const void *data, size_t len, size_t chunk,
		    struct buf *out)
{
	m->data = data;
	m->len = len;
	m->off = 0;
	m->chunk = chunk;
	m->out = out;
	io->ctx = m;
	io->read = memio_read;
	io->write = memio_write;
}
