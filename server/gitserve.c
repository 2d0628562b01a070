/* gitserve: see gitserve.h. */
#include "gitserve.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gitarchive.h"
#include "log.h"
#include "receive.h"
#include "upload.h"
#include "util.h"
#include "banned.h"

int gitserve_run(const struct config *cfg, enum gitsvc_service svc,
		 const char *app, const char *pusher, int version,
		 struct gitsvc_io *io)
{
	static const char *const names[] = {
		[GITSVC_RECEIVE_PACK] = "receive-pack",
		[GITSVC_UPLOAD_PACK] = "upload-pack",
		[GITSVC_UPLOAD_ARCHIVE] = "upload-archive",
	};
	int ret;

	error_clear();
	switch (svc) {
	case GITSVC_RECEIVE_PACK:
		ret = receive_pack(cfg, app, pusher, version, io,
				   upload_keep_clone_pack);
		break;
	case GITSVC_UPLOAD_PACK:
		ret = upload_pack(cfg, app, version, io);
		break;
	case GITSVC_UPLOAD_ARCHIVE:
		ret = upload_archive(cfg, app, io);
		break;
	default:
		return error_set("unknown git service");
	}
	if (ret != 0 && error_last()[0])
		log_warnx("%s %s: %s", names[svc], app, error_last());
	return ret;
}

struct fd_io {
	int in, out;
};

static ssize_t fd_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
	struct fd_io *f = ctx;
	struct pollfd pfd = { f->in, POLLIN, 0 };
	int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;
	ssize_t n;

	while (timeout_ms >= 0) {
		int64_t left = deadline - now_ms();
		int r;

		if (left < 0)
			left = 0;
		r = poll(&pfd, 1, (int)left);
		if (r > 0)
			break;
		if (r == 0)
			return error_set("timed out waiting for the client");
		if (errno != EINTR)
			return error_setsys("cannot read from the client");
	}
	do
		n = read(f->in, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		error_setsys("cannot read from the client");
	return n;
}

static int fd_write(void *ctx, const void *buf, size_t len)
{
	struct fd_io *f = ctx;

	if (write_all(f->out, buf, len) < 0)
		return error_setsys("cannot write to the client");
	return 0;
}

int gitserve_stdio_main(const struct config *cfg, const char *cmdline,
			int (*run)(const struct config *cfg,
				   enum gitsvc_service svc, const char *app,
				   const char *pusher, int version,
				   struct gitsvc_io *io))
{
	struct fd_io f = { 0, 1 };
	struct gitsvc_io io = { &f, fd_read, fd_write };
	enum gitsvc_service svc;
	char *app = NULL;
	int ret, version;

	/* a client that hangs up must turn into EPIPE, not kill us mid-push */
	signal(SIGPIPE, SIG_IGN);
	ret = gitsvc_parse_command(cmdline, &svc, &app);
	if (ret == ERR_NOTFOUND) {
		char *s = xstrndup(cmdline ? cmdline : "", 64);

		gitsvc_oneline(s);
		fprintf(stderr, "berth: not a git command '%s'\n", s);
		free(s);
		return 100;
	}
	if (ret < 0) {
		fprintf(stderr, "berth: %s\n", error_last());
		return 1;
	}
	version = gitsvc_protocol_version(getenv("GIT_PROTOCOL"));
	error_clear();
	ret = run(cfg, svc, app, "local", version, &io);
	if (ret < 0) {
		fprintf(stderr, "berth: %s\n", error_last());
		ret = 1;
	}
	free(app);
	return ret;
}
