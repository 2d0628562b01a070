/* Unit tests: pkt-line reader/writer, side-band, push request parser,
 * and the exec command parser. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "gitsvc.h"
#include "pktline.h"
#include "receive.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

#define OLD "1111111111111111111111111111111111111111"
#define NEW "2222222222222222222222222222222222222222"
#define ZERO "0000000000000000000000000000000000000000"

static void test_reader(size_t chunk)
{
	static const char in[] = "0009hello0000" "0004" "000aworld\n";
	struct gitsvc_io io;
	struct pkt_memio m;
	struct pkt_reader *r = xmalloc(sizeof(*r));
	const char *d;
	size_t len;
	int t;

	pkt_memio_init(&io, &m, in, sizeof(in) - 1, chunk, NULL);
	pkt_reader_init(r, &io);
	t = pkt_read(r, &d, &len);
	ok(t == PKT_DATA && len == 5 && !memcmp(d, "hello", 5) && d[5] == '\0',
	   "chunk %zu: data packet", chunk);
	ok(pkt_read(r, &d, &len) == PKT_FLUSH, "chunk %zu: flush", chunk);
	t = pkt_read(r, &d, &len);
	ok(t == PKT_DATA && len == 0, "chunk %zu: empty packet 0004", chunk);
	t = pkt_read(r, &d, &len);
	ok(t == PKT_DATA && pkt_chomp(d, len) == 5 && !memcmp(d, "world", 5),
	   "chunk %zu: chomped line", chunk);
	ok(pkt_read(r, &d, &len) == PKT_EOF, "chunk %zu: clean EOF", chunk);
	free(r);
}

static int read_one(const char *in, size_t n)
{
	struct gitsvc_io io;
	struct pkt_memio m;
	struct pkt_reader *r = xmalloc(sizeof(*r));
	const char *d;
	size_t len;
	int t;

	pkt_memio_init(&io, &m, in, n, 0, NULL);
	pkt_reader_init(r, &io);
	t = pkt_read(r, &d, &len);
	free(r);
	return t;
}

static void test_bad_lengths(void)
{
	ok(read_one("0001", 4) == -1, "length 1 refused");
	ok(read_one("0003", 4) == -1, "length 3 refused");
	ok(read_one("zzzz", 4) == -1, "non-hex length refused");
	ok(read_one("fff1", 4) == -1, "length over 65520 refused");
	ok(read_one("000ahel", 7) == -1, "EOF inside a packet is an error");
	ok(strstr(error_last(), "hung up") != NULL,
	   "... saying the remote hung up");
	ok(read_one("00", 2) == -1, "EOF inside a header is an error");
}

static void test_big_packets(void)
{
	size_t n = 3 * PKT_MAX, i, off = 0;
	char *in = xmalloc(n);
	struct gitsvc_io io;
	struct pkt_memio m;
	struct pkt_reader *r = xmalloc(sizeof(*r));
	const char *d;
	size_t len;
	int good = 1;

	/* two maximal packets back to back, then raw bytes */
	for (i = 0; i < 2; i++) {
		memcpy(in + off, "fff0", 4);
		memset(in + off + 4, 'a' + (int)i, PKT_DATA_MAX);
		off += PKT_MAX;
	}
	memcpy(in + off, "PACKrest", 8);
	off += 8;
	pkt_memio_init(&io, &m, in, off, 1000, NULL);
	pkt_reader_init(r, &io);
	for (i = 0; i < 2; i++) {
		if (pkt_read(r, &d, &len) != PKT_DATA || len != PKT_DATA_MAX ||
		    d[0] != 'a' + (int)i || d[len - 1] != 'a' + (int)i)
			good = 0;
	}
	ok(good, "two maximal packets read whole through small reads");
	{
		char raw[16];
		ssize_t k, got = 0;

		while ((k = pkt_read_raw(r, raw + got,
					 sizeof(raw) - (size_t)got)) > 0)
			got += k;
		ok(got == 8 && !memcmp(raw, "PACKrest", 8) && r->raw_bytes == 8,
		   "raw bytes after the packets come through unchanged");
	}
	free(r);
	free(in);
}

static void test_writer(void)
{
	struct buf out = BUF_INIT;
	struct gitsvc_io io;
	struct pkt_memio m;
	char *big;
	size_t i, pkts = 0;

	pkt_memio_init(&io, &m, "", 0, 0, &out);
	ok(pkt_writef(&io, "ok %s\n", "refs/heads/main") == 0 &&
	   !strcmp(out.data, "0017ok refs/heads/main\n"), "pkt_writef");
	buf_reset(&out);
	ok(pkt_flush(&io) == 0 && !strcmp(out.data, "0000"), "pkt_flush");
	buf_reset(&out);
	ok(pkt_band(&io, 1, "", 0) == 0 && out.len == 5 &&
	   !memcmp(out.data, "0005\1", 5), "empty band-1 keepalive is 0005\\1");
	buf_reset(&out);
	ok(pkt_band(&io, 2, "hi\n", 3) == 0 && out.len == 8 &&
	   !memcmp(out.data, "0008\2hi\n", 8), "band 2 message");
	buf_reset(&out);
	big = xmalloc(PKT_BAND_MAX + 10);
	memset(big, 'x', PKT_BAND_MAX + 10);
	ok(pkt_band(&io, 1, big, PKT_BAND_MAX + 10) == 0, "big band-1 write");
	for (i = 0; i < out.len; pkts++) {
		char h[5];
		size_t n;

		memcpy(h, out.data + i, 4);
		h[4] = '\0';
		n = strtoul(h, NULL, 16);
		if (n > PKT_MAX || n < 5)
			break;
		i += n;
	}
	ok(i == out.len && pkts == 2 && out.len == PKT_BAND_MAX + 10 + 10,
	   "... split into two packets within 65520 bytes");
	buf_reset(&out);
	ok(pkt_write(&io, big, PKT_DATA_MAX + 1) == -1 && out.len == 0,
	   "a packet over the limit is refused");
	free(big);
	buf_release(&out);
}

/* Feed a request through the parser the way receive-pack reads it. */
static int parse_request(struct push_request *req, const char *in, size_t n)
{
	struct gitsvc_io io;
	struct pkt_memio m;
	struct pkt_reader *r = xmalloc(sizeof(*r));
	int ret;

	pkt_memio_init(&io, &m, in, n, 7, NULL);
	pkt_reader_init(r, &io);
	push_request_init(req);
	ret = push_request_read(req, r);
	free(r);
	return ret;
}

static void add_pkt(struct buf *b, const char *s, size_t n)
{
	pkt_buf_add(b, s, n);
}

static void test_request(void)
{
	struct push_request req;
	struct buf in = BUF_INIT;
	static const char first[] = OLD " " NEW " refs/heads/main\0"
		"report-status side-band-64k atomic push-options "
		"agent=git/2.39\n";

	add_pkt(&in, first, sizeof(first) - 1);
	pkt_buf_addf(&in, "%s %s refs/heads/old\n", OLD, ZERO);
	pkt_buf_flush(&in);
	pkt_buf_addf(&in, "skip-deploy\n");
	pkt_buf_addf(&in, "clean-cache\n");
	pkt_buf_flush(&in);
	buf_add(&in, "PACK", 4);
	ok(parse_request(&req, in.data, in.len) == 0, "request parses");
	ok(req.n == 2 && !strcmp(req.cmds[0].ref, "refs/heads/main") &&
	   !strcmp(req.cmds[1].ref, "refs/heads/old"), "two commands");
	ok(req.cmds[0].old_id[0] == 0x11 && req.cmds[0].new_id[19] == 0x22 &&
	   push_id_is_zero(req.cmds[1].new_id), "ids decoded, delete seen");
	ok((req.caps & PUSH_REPORT_STATUS) && (req.caps & PUSH_SIDE_BAND_64K) &&
	   (req.caps & PUSH_ATOMIC) && (req.caps & PUSH_OPTIONS) &&
	   !(req.caps & PUSH_QUIET), "capabilities");
	ok(req.agent && !strcmp(req.agent, "git/2.39"), "agent");
	ok(req.options.n == 2 && !strcmp(req.options.v[0], "skip-deploy") &&
	   !strcmp(req.options.v[1], "clean-cache"), "push options");
	push_cmd_fail(&req.cmds[0], "deploy failed: %s", "a\nb");
	push_cmd_fail(&req.cmds[0], "second");
	ok(!strcmp(req.cmds[0].error, "deploy failed: a b"),
	   "first failure reason kept, made one line");
	push_request_release(&req);

	buf_reset(&in);
	pkt_buf_flush(&in);
	ok(parse_request(&req, in.data, in.len) == 0 && req.n == 0,
	   "a bare flush is an empty push");
	push_request_release(&req);
	ok(parse_request(&req, "", 0) == 0 && req.n == 0,
	   "EOF before any command is an empty push");
	push_request_release(&req);

	buf_reset(&in);
	pkt_buf_addf(&in, "shallow %s\n", OLD);
	pkt_buf_addf(&in, "shallow %s\n", NEW);
	add_pkt(&in, first, sizeof(first) - 1);
	pkt_buf_flush(&in);
	pkt_buf_flush(&in);
	ok(parse_request(&req, in.data, in.len) == 0 && req.n == 1 &&
	   req.n_shallow == 2 && (req.caps & PUSH_ATOMIC),
	   "shallow lines before the commands are counted");
	push_request_release(&req);

	buf_reset(&in);
	pkt_buf_addf(&in, "shallow %s\n", "xyz");
	pkt_buf_flush(&in);
	ok(parse_request(&req, in.data, in.len) == -1,
	   "malformed shallow line refused");
	push_request_release(&req);

	buf_reset(&in);
	pkt_buf_addf(&in, "%s %s\n", OLD, NEW);
	pkt_buf_flush(&in);
	ok(parse_request(&req, in.data, in.len) == -1, "missing ref refused");
	push_request_release(&req);

	buf_reset(&in);
	pkt_buf_addf(&in, "%s %s refs/heads/x\n", OLD,
		     "22222222222222222222222222222222222222ZZ");
	pkt_buf_flush(&in);
	ok(parse_request(&req, in.data, in.len) == -1, "bad hex refused");
	push_request_release(&req);

	buf_reset(&in);
	pkt_buf_addf(&in, "%s %s refs/heads/a\tb\n", OLD, NEW);
	pkt_buf_flush(&in);
	ok(parse_request(&req, in.data, in.len) == -1,
	   "control byte in ref refused");
	push_request_release(&req);

	buf_reset(&in);
	pkt_buf_addf(&in, "%s %s refs/heads/a\n", OLD, NEW);
	ok(parse_request(&req, in.data, in.len) == -1,
	   "EOF inside the command list refused");
	push_request_release(&req);

	buf_reset(&in);
	add_pkt(&in, first, sizeof(first) - 1);
	pkt_buf_flush(&in);
	pkt_buf_addf(&in, "opt\n");
	ok(parse_request(&req, in.data, in.len) == -1,
	   "EOF inside the push options refused");
	push_request_release(&req);
	buf_release(&in);
}

#define RP GITSVC_RECEIVE_PACK
#define UP GITSVC_UPLOAD_PACK

static void test_parse_command(void)
{
	static const struct {
		const char *cmd;
		int ret;
		enum gitsvc_service svc;
		const char *app;
	} cases[] = {
		{ "git-receive-pack 'myapp'", 0, RP, "myapp" },
		{ "git receive-pack 'myapp'", 0, RP, "myapp" },
		{ "git-upload-pack '/myapp.git'", 0, UP, "myapp" },
		{ "git upload-pack 'my-app.git/'", 0, UP, "my-app" },
		{ "git-receive-pack '~/app1'", 0, RP, "app1" },
		{ "git-receive-pack myapp", 0, RP, "myapp" },
		{ "git-receive-pack '../../etc'", ERR_INVALID, 0, NULL },
		{ "git-receive-pack 'a'\\''b'", ERR_INVALID, 0, NULL },
		{ "git-receive-pack 'my'\\''app", ERR_INVALID, 0, NULL },
		{ "git-receive-pack 'myapp' extra", ERR_INVALID, 0, NULL },
		{ "git-receive-pack 'MyApp'", ERR_INVALID, 0, NULL },
		{ "git-receive-pack ''", ERR_INVALID, 0, NULL },
		{ "git-receive-pack", ERR_INVALID, 0, NULL },
		{ "git-receive-pack $(id)", ERR_INVALID, 0, NULL },
		{ "git-upload-archive 'myapp'", 0, GITSVC_UPLOAD_ARCHIVE, "myapp" },
		{ "/usr/bin/git-upload-pack 'myapp'", 0, UP, "myapp" },
		{ "/usr/lib/git-core/git receive-pack myapp", 0, RP, "myapp" },
		{ "/bin/yes 'myapp'", ERR_NOTFOUND, 0, NULL },
		{ "git-receive-packx 'myapp'", ERR_NOTFOUND, 0, NULL },
		{ "logs myapp", ERR_NOTFOUND, 0, NULL },
		{ "", ERR_NOTFOUND, 0, NULL },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		enum gitsvc_service svc = 0;
		char *app = NULL;
		int ret = gitsvc_parse_command(cases[i].cmd, &svc, &app);

		ok(ret == cases[i].ret &&
		   (ret != 0 || (svc == cases[i].svc && app &&
				 !strcmp(app, cases[i].app))) &&
		   (ret == 0 || app == NULL),
		   "parse \"%s\" -> %d %s", cases[i].cmd, ret, app ? app : "");
		free(app);
	}
	{
		enum gitsvc_service svc;
		char *app = NULL;

		gitsvc_parse_command("git-receive-pack '../../etc'", &svc, &app);
		ok(strstr(error_last(),
			  "'../../etc' is not a valid app name") != NULL,
		   "bad path message names the path: %s", error_last());
	}
}

/* pkt_read_line(): chomped lines, and where an early end is allowed. */
static void test_read_line(void)
{
	static const char in[] = "000bhave 1\n" "0000" "0008done";
	struct gitsvc_io io;
	struct pkt_memio m;
	struct pkt_reader *r = xmalloc(sizeof(*r));
	const char *d;
	size_t len;

	pkt_memio_init(&io, &m, in, sizeof(in) - 1, 3, NULL);
	pkt_reader_init(r, &io);
	ok(pkt_read_line(r, &d, &len, 0, "x") == PKT_DATA && len == 6 &&
	   !memcmp(d, "have 1", 6), "pkt_read_line chomps the LF");
	ok(pkt_read_line(r, &d, &len, 0, "x") == PKT_FLUSH, "... a flush");
	ok(pkt_read_line(r, &d, &len, 0, "x") == PKT_DATA && len == 4 &&
	   !memcmp(d, "done", 4), "... a line without LF stays whole");
	ok(pkt_read_line(r, &d, &len, 1, "x") == PKT_EOF,
	   "... end of stream where it is allowed");
	pkt_reader_init(r, &io);
	ok(pkt_read_line(r, &d, &len, 0, "in the want list") == -1 &&
	   !strcmp(error_last(), "the remote end hung up in the want list"),
	   "... where it is not: %s", error_last());
	free(r);
}

struct failing_io {
	int writes;		/* write calls seen */
	int fail_from;		/* the call that fails first (1-based) */
	struct buf out;
};

static int failing_write(void *ctx, const void *buf, size_t len)
{
	struct failing_io *f = ctx;

	if (++f->writes >= f->fail_from)
		return -1;
	return buf_add(&f->out, buf, len);
}

static int send_bandf(struct gitsvc_io *io, int *dead, int band,
		      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int send_bandf(struct gitsvc_io *io, int *dead, int band,
		      const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = pkt_send_vbandf(io, dead, band, fmt, ap);
	va_end(ap);
	return ret;
}

/* pkt_send*(): once a write fails, nothing more is written. */
static void test_send(void)
{
	struct failing_io f = { 0, 3, BUF_INIT };
	struct gitsvc_io io = { &f, NULL, failing_write };
	int dead = 0;

	ok(pkt_send(&io, &dead, "0000", 4) == 0 && !dead &&
	   !strcmp(f.out.data, "0000"), "pkt_send writes raw bytes");
	ok(send_bandf(&io, &dead, 2, "n=%d\n", 7) == 0 && !dead &&
	   f.out.len == 4 + 9 && !memcmp(f.out.data + 4, "0009\2n=7\n", 9),
	   "pkt_send_vbandf formats one band-2 packet");
	ok(pkt_send_band(&io, &dead, 1, "x", 1) == -1 && dead == 1,
	   "a failed write marks the client gone");
	ok(pkt_send(&io, &dead, "0000", 4) == -1 &&
	   pkt_send_band(&io, &dead, 1, "", 0) == -1 &&
	   send_bandf(&io, &dead, 2, "%s", "y") == -1 && f.writes == 3 &&
	   f.out.len == 13, "... and nothing is written after that");
	buf_release(&f.out);
}

int main(void)
{
	test_reader(0);
	test_reader(1);
	test_bad_lengths();
	test_big_packets();
	test_writer();
	test_read_line();
	test_send();
	test_request();
	test_parse_command();
	return tap_done();
}
