/* gitserve: see gitserve.h. */
#include "gitserve.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "receive.h"
#include "upload.h"
#include "util.h"

int gitserve_run(const struct config *cfg, enum gitsvc_service svc,
		 const char *app, const char *pusher, struct gitsvc_io *io)
{
	int ret;

	error_clear();
	if (svc == GITSVC_RECEIVE_PACK)
		ret = receive_pack(cfg, app, pusher, io);
	else
		ret = upload_pack(cfg, app, io);
	if (ret != 0 && error_last()[0])
		log_warnx("%s %s: %s", svc == GITSVC_RECEIVE_PACK ?
			  "receive-pack" : "upload-pack", app, error_last());
	return ret;
}

struct fd_io {
	int in, out;
};

static ssize_t fd_read(void *ctx, void *buf, size_t len)
{
	struct fd_io *f = ctx;
	ssize_t n;

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

int gitserve_stdio_main(const struct config *cfg, const char *cmdline)
{
	struct fd_io f = { 0, 1 };
	struct gitsvc_io io = { &f, fd_read, fd_write };
	enum gitsvc_service svc;
	char *app = NULL;
	int ret;

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
	ret = gitserve_run(cfg, svc, app, "local", &io);
	free(app);
	return ret;
}
