/*
 * Unit tests: the requests of the fetching side (upload-pack's want list
 * and v2 fetch arguments, upload-archive's arguments), the GIT_PROTOCOL
 * version, and which submodule urls the server may fetch.
 */
#include <stdlib.h>
#include <string.h>

#include "gitarchive.h"
#include "gitsvc.h"
#include "pktline.h"
#include "submodule.h"
#include "tap.h"
#include "upload.h"
#include "util.h"
#include "banned.h"

#define ID "0123456789abcdef0123456789abcdef01234567"

/* Read pkt-lines from in as upload-pack does, into req (v0 want list). */
static int read_wants(struct upload_request *req, const char *in, size_t n)
{
	struct gitsvc_io io;
	struct pkt_memio m;
	struct pkt_reader *r = xmalloc(sizeof(*r));
	const char *d;
	size_t len;
	int t, ret = 0;

	pkt_memio_init(&io, &m, in, n, 5, NULL);
	pkt_reader_init(r, &io);
	while ((t = pkt_read_line(r, &d, &len, 1, "here")) == PKT_DATA)
		if (upload_parse_want_line(req, d, len) < 0)
			ret = -1;
	free(r);
	return t < 0 ? -1 : ret;
}

static void test_want_caps(void)
{
	/* the capabilities end the line, before its LF (dulwich's clone) */
	static const char in[] =
		"0053want " ID " side-band-64k multi_ack_detailed\n"
		"0032want " ID "\n"
		"0000";
	struct upload_request req;

	upload_request_init(&req);
	ok(read_wants(&req, in, sizeof(in) - 1) == 0 && req.wants.n == 2,
	   "two wants read");
	ok((req.caps & UPLOAD_SIDE_BAND_64K) &&
	   (req.caps & UPLOAD_MULTI_ACK_DETAILED) &&
	   !(req.caps & UPLOAD_MULTI_ACK),
	   "capabilities at the end of a want line are seen (LF and all)");
	upload_request_release(&req);
}

static void test_want_lines(void)
{
	static const struct {
		const char *line;
		int ret;
	} cases[] = {
		{ "want " ID, 0 },
		{ "want " ID " multi_ack", 0 },
		{ "want " ID "x", -1 },
		{ "want 0123", -1 },
		{ "want " "0123456789ABCDEF0123456789abcdef01234567", -1 },
		{ "shallow " ID, 0 },
		{ "shallow " ID " x", -1 },
		{ "deepen 1", 0 },
		{ "deepen 2147483647", 0 },
		{ "deepen 0", -1 },
		{ "deepen -1", -1 },
		{ "deepen 1x", -1 },
		{ "deepen ", -1 },
		{ "deepen-since 1600000000", 0 },
		{ "deepen-since never", -1 },
		{ "deepen-not refs/heads/main", 0 },
		{ "have " ID, -1 },
		{ "filter blob:none", -1 },
		{ "", -1 },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct upload_request req;
		int r;

		upload_request_init(&req);
		r = upload_parse_want_line(&req, cases[i].line,
					   strlen(cases[i].line));
		ok(r == cases[i].ret, "want list: \"%s\" -> %d", cases[i].line,
		   r);
		upload_request_release(&req);
	}
}

static void test_fetch_args(void)
{
	static const char *const good[] = {
		"want " ID, "have " ID, "done", "thin-pack", "no-progress",
		"include-tag", "ofs-delta", "wait-for-done", "shallow " ID,
		"deepen 3", "deepen-relative", "deepen-since 1600000000",
		"deepen-not v1",
	};
	static const char *const bad[] = {
		"want-ref refs/heads/main", "filter blob:none", "sideband-all",
		"packfile-uris https", "have xyz", "done ", "command=fetch",
	};
	struct upload_request req;
	size_t i;
	int all = 1;

	upload_request_init(&req);
	for (i = 0; i < ARRAY_SIZE(good); i++)
		if (upload_parse_fetch_arg(&req, good[i], strlen(good[i])) < 0)
			all = 0;
	ok(all && req.wants.n == 1 && req.haves.n == 1 && req.done &&
	   req.shallows.n == 1 && req.depth == 3 && req.deepen_since &&
	   req.deepen_not.n == 1 && (req.caps & UPLOAD_DEEPEN_RELATIVE) &&
	   (req.caps & UPLOAD_WAIT_FOR_DONE) &&
	   upload_request_is_shallow(&req),
	   "v2 fetch arguments");
	upload_request_release(&req);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		upload_request_init(&req);
		ok(upload_parse_fetch_arg(&req, bad[i], strlen(bad[i])) < 0,
		   "v2 fetch refuses \"%s\"", bad[i]);
		upload_request_release(&req);
	}
}

static void test_protocol_version(void)
{
	ok(gitsvc_protocol_version(NULL) == 0, "no GIT_PROTOCOL: v0");
	ok(gitsvc_protocol_version("version=2") == 2, "version=2");
	ok(gitsvc_protocol_version("version=1") == 1, "version=1");
	ok(gitsvc_protocol_version("foo=bar:version=2:x") == 2,
	   "among other keys");
	ok(gitsvc_protocol_version("version=1:version=2") == 2,
	   "the highest we speak");
	ok(gitsvc_protocol_version("version=3") == 0 &&
	   gitsvc_protocol_version("version=22") == 0 &&
	   gitsvc_protocol_version("version=") == 0,
	   "versions we do not speak: v0");
}

static void test_archive_args(void)
{
	struct archive_request req;
	char *args[] = { "--format=zip", "--prefix=app/", "-9", "-v", "main",
			 "src", "lib/" };
	char *bad[][2] = {
		{ "--format=7z", "main" },
		{ "--remote=x", "main" },
		{ "--exec=/bin/sh", "main" },
		{ "--output=/etc/passwd", "main" },
		{ "main", "../etc" },
		{ "--prefix=../", "main" },
	};
	size_t i;

	archive_request_init(&req);
	ok(archive_request_parse(&req, args, ARRAY_SIZE(args)) == 0 &&
	   !strcmp(req.format, "zip") && !strcmp(req.prefix, "app/") &&
	   !strcmp(req.treeish, "main") && req.paths.n == 2,
	   "archive arguments");
	archive_request_release(&req);
	archive_request_init(&req);
	ok(archive_request_parse(&req, args + 4, 1) == 0 &&
	   !strcmp(req.format, "tar") && !strcmp(req.prefix, ""),
	   "tar and no prefix by default");
	archive_request_release(&req);
	archive_request_init(&req);
	ok(archive_request_parse(&req, args, 2) < 0 &&
	   strstr(error_last(), "tree-ish"), "a tree-ish is needed");
	archive_request_release(&req);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		archive_request_init(&req);
		ok(archive_request_parse(&req, bad[i], 2) < 0,
		   "archive refuses %s %s (%s)", bad[i][0], bad[i][1],
		   error_last());
		archive_request_release(&req);
	}
}

static void test_submodule_urls(void)
{
	static const struct {
		const char *url;
		int ok;
	} cases[] = {
		{ "/srv/git/lib.git", 1 },
		{ "file:///srv/git/lib.git", 1 },
		{ "https://example.com/lib.git", 1 },
		{ "ssh://git@example.com/lib.git", 1 },
		{ "git://example.com/lib.git", 1 },
		{ "git@example.com:team/lib.git", 1 },
		{ "../lib.git", 0 },
		{ "./lib", 0 },
		{ "-oProxyCommand=x", 0 },
		{ "ext::sh -c id", 0 },
		{ "fd::3", 0 },
		{ "lib.git", 0 },
		{ "https://example.com/a b", 0 },
		{ "", 0 },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		ok((submodule_url_check(cases[i].url) == 0) == cases[i].ok,
		   "submodule url \"%s\" %s", cases[i].url,
		   cases[i].ok ? "fetched" : "refused");
}

int main(void)
{
	test_want_caps();
	test_want_lines();
	test_fetch_args();
	test_protocol_version();
	test_archive_args();
	test_submodule_urls();
	return tap_done();
}
