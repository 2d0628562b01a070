/*
 * pktline: git's pkt-line framing (gitprotocol-common), side-band
 * multiplexing, and a buffered reader that can switch from packets to the
 * raw pack stream that follows them.
 *
 * A packet is 4 hex digits giving its whole length (header included),
 * then the payload; "0000" is a flush.  Lengths 0001-0003 are invalid in
 * protocol v0 (no delim/response-end packets), and no packet is longer
 * than PKT_MAX.
 *
 * The reader owns no fd: it reads through the caller's struct gitsvc_io and
 * keeps at most 2 * PKT_MAX bytes of look-ahead.  Data pointers it hands
 * out are borrowed and valid until the next call on the reader.
 */
#ifndef BERTH_PKTLINE_H
#define BERTH_PKTLINE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gitsvc.h"
#include "util.h"

#define PKT_MAX 65520			/* whole packet, header included */
#define PKT_DATA_MAX (PKT_MAX - 4)	/* payload of one packet */
#define PKT_BAND_MAX (PKT_MAX - 5)	/* payload of one side-band packet */

enum pkt_type {
	PKT_FLUSH = 0,	/* "0000" */
	PKT_DATA = 1,	/* a payload (possibly empty: "0004") */
	PKT_EOF = 2,	/* the stream ended cleanly between packets */
	PKT_DELIM = 3,	/* "0001", protocol v2 only */
	PKT_RESPONSE_END = 4,	/* "0002", protocol v2 only */
};

struct pkt_reader {
	struct gitsvc_io *io;
	char buf[2 * PKT_MAX];
	size_t start, end;	/* unread bytes are buf[start..end) */
	int eof;
	int v2;			/* accept delim and response-end packets */
	int timeout_ms;		/* idle limit per read, < 0: none (default) */
	uint64_t raw_bytes;	/* bytes handed out by pkt_read_raw() */
};

void pkt_reader_init(struct pkt_reader *r, struct gitsvc_io *io);

/*
 * Read one packet.  Returns PKT_DATA (data and len set; the payload is
 * NUL-terminated in place for convenience), PKT_FLUSH, PKT_EOF, with
 * r->v2 also PKT_DELIM and PKT_RESPONSE_END, or -1 on a malformed length,
 * EOF inside a packet, a transport error or an idle timeout (error_last()).
 */
int pkt_read(struct pkt_reader *r, const char **data, size_t *len);

/*
 * Read raw bytes after the last packet (the pack stream): first what is
 * buffered, then straight from the transport.  Returns the count, 0 at
 * EOF, -1 on error.
 */
ssize_t pkt_read_raw(struct pkt_reader *r, void *out, size_t len);

/* Drop one trailing LF from a payload (git sends "line\n"). */
size_t pkt_chomp(const char *data, size_t len);

/*
 * Read one line of a flush-terminated packet list: pkt_read() with the
 * payload chomped (one trailing LF dropped, the NUL moved with it).
 * Returns PKT_DATA, PKT_FLUSH, PKT_EOF only if eof_ok (the client may end
 * the stream here), or -1: pkt_read()'s errors, and an EOF that is not ok
 * as "the remote end hung up WHERE" (where: "in the want list").
 */
int pkt_read_line(struct pkt_reader *r, const char **data, size_t *len,
		  int eof_ok, const char *where);

/*
 * Append one packet (len <= PKT_DATA_MAX), a formatted one, or a flush to
 * a buffer, so a whole advertisement or report goes out in one write.
 */
int pkt_buf_add(struct buf *b, const void *data, size_t len);
int pkt_buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int pkt_buf_flush(struct buf *b);
int pkt_buf_delim(struct buf *b);	/* "0001", protocol v2 */

/* Write one packet / a formatted packet / a flush to the transport. */
int pkt_write(struct gitsvc_io *io, const void *data, size_t len);
int pkt_writef(struct gitsvc_io *io, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int pkt_flush(struct gitsvc_io *io);

/*
 * Send data on side-band channel band (1 data, 2 progress, 3 fatal
 * error), split into packets of at most PKT_BAND_MAX bytes.  len 0 sends
 * one empty packet (on band 1: the keepalive "0005\1").
 */
int pkt_band(struct gitsvc_io *io, int band, const void *data, size_t len);

/*
 * Writes for a session that stops writing once the client is gone: the
 * first failed write sets *dead, and while *dead is set nothing more is
 * written and these return -1.  pkt_send() writes raw bytes (a prepared
 * advertisement, a bare pack, a flush); pkt_send_band() is pkt_band();
 * pkt_send_vbandf() formats first and returns -1 without touching *dead
 * if it cannot (out of memory: the message is dropped).
 */
int pkt_send(struct gitsvc_io *io, int *dead, const void *data, size_t len);
int pkt_send_band(struct gitsvc_io *io, int *dead, int band,
		  const void *data, size_t len);
int pkt_send_vbandf(struct gitsvc_io *io, int *dead, int band,
		    const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

/*
 * A gitsvc_io over a memory buffer (reads) and a struct buf (writes), for
 * tests and fuzzing.  'chunk' limits each read to exercise refills
 * (0: no limit).
 */
struct pkt_memio {
	const unsigned char *data;
	size_t len, off, chunk;
	struct buf *out;
};
void pkt_memio_init(struct gitsvc_io *io, struct pkt_memio *m,
		    const void *data, size_t len, size_t chunk,
		    struct buf *out);

#endif
