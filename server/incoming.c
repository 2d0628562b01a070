/* incoming: see incoming.h. */
#include "incoming.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "app.h"
#include "engine.h"
#include "log.h"
#include "loop.h"
#include "banned.h"

static const struct incoming_handlers *handlers;

/* The app a file of incoming/ deploys: 0, ERR_INVALID for a bundle
 * whose name is no app name (name holds it, cut to len), -1 otherwise. */
static int incoming_name(const char *file, char *name, size_t len)
{
	size_t n = strlen(file), k = 0;

	if (n > 7 && !strcmp(file + n - 7, ".tar.gz"))
		k = n - 7;
	else if (n > 6 && !strcmp(file + n - 6, ".keter"))
		k = n - 6;
	if (!k)
		return -1;
	snprintf(name, len, "%.*s", (int)k, file);
	return k < len && app_name_valid(name) ? 0 : ERR_INVALID;
}

static void incoming_deploy(struct engine *e, const char *file)
{
	char name[APP_NAME_MAX + 1];
	char *path;
	struct deploy_opts o;
	struct app *a;
	int r = incoming_name(file, name, sizeof(name));

	if (r == ERR_INVALID) {
		log_warnx("incoming: ignoring '%s': invalid app name '%s' (use a-z, 0-9 and '-', at most %d characters)",
			  file, name, APP_NAME_MAX);
		return;
	}
	if (r < 0) {
		if (file[0] != '.')
			log_warnx("incoming: ignoring '%s' (want NAME.tar.gz or NAME.keter)",
				  file);
		return;
	}
	a = app_find(e, name);
	if (a && a->remove_after_deploy) {
		log_info("incoming: '%s' is back: app '%s' stays", file, name);
		a->remove_after_deploy = 0;
	}
	path = engine_path(e, "incoming/%s", file);
	memset(&o, 0, sizeof(o));
	o.bundle = path;
	o.source = "incoming";
	log_info("incoming: deploying '%s' from '%s'", name, file);
	handlers->deploy(e, name, DEPLOY_NEW, &o, NULL);
	free(path);
}

static void on_incoming(struct loop *l, int fd, unsigned events, void *arg)
{
	struct engine *e = arg;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	char *p;

	n = read(fd, buf, sizeof(buf));
	if (n <= 0)
		return;
	for (p = buf; p < buf + n;) {
		struct inotify_event *ev = (struct inotify_event *)p;
		char name[APP_NAME_MAX + 1];

		p += sizeof(*ev) + ev->len;
		if (!ev->len)
			continue;
		if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
			incoming_deploy(e, ev->name);
		} else if ((ev->mask & (IN_DELETE | IN_MOVED_FROM)) &&
			   incoming_name(ev->name, name, sizeof(name)) == 0) {
			struct app *a = app_find(e, name);

			if (a && (a->deploy || a->waiting)) {
				log_info("incoming: '%s' deleted: app '%s' goes once its deploy ends",
					 ev->name, name);
				a->remove_after_deploy = 1;
			} else if (a) {
				log_info("incoming: '%s' deleted, removing app '%s'",
					 ev->name, name);
				handlers->remove(a);
			}
		}
	}
}

void incoming_start(struct engine *e, const struct incoming_handlers *h)
{
	char *dir = engine_path(e, "incoming");
	DIR *dh;
	struct dirent *de;

	handlers = h;
	e->incoming_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (e->incoming_fd < 0 ||
	    inotify_add_watch(e->incoming_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO |
			      IN_DELETE | IN_MOVED_FROM) < 0 ||
	    loop_add_fd(e->loop, e->incoming_fd, LOOP_READ, on_incoming, e) < 0) {
		log_warn("cannot watch '%s'", dir);
		free(dir);
		return;
	}
	/* Bundles dropped while the engine was down, for apps not yet here. */
	dh = opendir(dir);
	while (dh && (de = readdir(dh))) {
		char name[APP_NAME_MAX + 1];

		if (incoming_name(de->d_name, name, sizeof(name)) == 0 &&
		    !app_find(e, name))
			incoming_deploy(e, de->d_name);
	}
	if (dh)
		closedir(dh);
	free(dir);
}
