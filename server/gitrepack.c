/* gitrepack: see gitrepack.h. */
#include "gitrepack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "indexpack.h"
#include "log.h"
#include "packwrite.h"
#include "procguard.h"
#include "util.h"
#include "banned.h"

#define STALE_LOCK_S 3600	/* a lock this old is a dead repack's */

/* The pack-*.idx names in dir (without ".idx"). */
static void list_packs(const char *dir, struct strv *out)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l > 9 && !strncmp(de->d_name, "pack-", 5) &&
		    !strcmp(de->d_name + l - 4, ".idx"))
			strv_pushf(out, "%.*s", (int)(l - 4), de->d_name);
	}
	closedir(d);
}

int gitrepack_count(const char *repo_path)
{
	struct strv names = { NULL, 0, 0 };
	char *dir = xasprintf("%s/objects/pack", repo_path);
	int n;

	list_packs(dir, &names);
	n = (int)names.n;
	strv_release(&names);
	free(dir);
	return n;
}

static int feed_indexer(void *arg, const void *data, size_t len)
{
	struct indexpack *ip = arg;
	const unsigned char *p = data;

	while (len) {
		ssize_t n = indexpack_feed(ip, p, len);

		if (n <= 0)
			return n < 0 ? -1 : error_set("pack ended early");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int gitrepack_run(const char *repo_path)
{
	struct strv names = { NULL, 0, 0 };
	struct packwrite_opts po;
	struct indexpack_opts io;
	struct packwrite *pw = NULL;
	struct indexpack *ip = NULL;
	struct stat st;
	char *dir = xasprintf("%s/objects/pack", repo_path);
	char *lock = xasprintf("%s/repack.lock", dir), hex[41];
	size_t i, k;
	int fd = -1, ret = -1;

	fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EEXIST && stat(lock, &st) == 0 &&
	    time(NULL) - st.st_mtime > STALE_LOCK_S) {
		unlink(lock);
		fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	}
	if (fd < 0) {
		ret = errno == EEXIST ? 0 : error_setsys("cannot create '%s'",
							 lock);
		free(lock);
		lock = NULL;	/* not ours to remove */
		goto out;
	}
	list_packs(dir, &names);
	if (names.n < 2) {
		ret = 0;
		goto out;
	}
	memset(&io, 0, sizeof(io));
	io.dir = dir;
	io.max_object = (uint64_t)1 << 32;
	if (indexpack_new(&ip, &io) < 0)
		goto out;
	memset(&po, 0, sizeof(po));
	po.pack_dir = dir;
	po.ofs_delta = 1;
	po.write = feed_indexer;
	po.arg = ip;
	if (packwrite_new(&pw, &po) < 0)
		goto out;
	/* every object of the packs listed: packwrite opened the same
	 * ones (a pack added since is not listed and stays) */
	for (k = 0; k < names.n; k++) {
		char *base = xasprintf("%s/%s", dir, names.v[k]);
		struct pack_reader *r;

		if (pack_reader_open(&r, base) < 0) {
			free(base);
			goto out;
		}
		for (i = 0; i < r->n; i++)
			packwrite_add(pw, r->ids + i * PACK_ID_LEN);
		pack_reader_free(r);
		free(base);
	}
	if (packwrite_send(pw) < 0 || indexpack_finish(ip, hex) < 0)
		goto out;
	/* the new pack is in place: the old ones go, index first */
	for (k = 0; k < names.n; k++) {
		char *p;

		if (!strcmp(names.v[k] + 5, hex))
			continue;
		p = xasprintf("%s/%s.idx", dir, names.v[k]);
		unlink(p);
		free(p);
		p = xasprintf("%s/%s.pack", dir, names.v[k]);
		unlink(p);
		free(p);
	}
	ret = 0;
out:
	packwrite_free(pw);
	indexpack_free(ip);
	if (fd >= 0)
		close(fd);
	if (lock)
		unlink(lock);
	strv_release(&names);
	free(lock);
	free(dir);
	return ret;
}

void gitrepack_after_push(const char *repo_path,
			  int (*then)(const char *repo_path))
{
	int repack = gitrepack_count(repo_path) > GITREPACK_MAX_PACKS;
	pid_t pid;
	int null;

	if (!repack && !then)
		return;
	pid = fork();
	if (pid != 0) {
		if (pid < 0)
			log_warn("%s: fork", __func__);
		return;
	}
	/* the child: under a guarded git child, a filter of its own pid
	 * stacked on the parent's, so it signals no process (the parent
	 * may end first and its pid go to another session's process) */
	if (procguard_fork_child() < 0) {
		log_warnx("repack of '%s': %s", repo_path, error_last());
		_exit(1);
	}
	/* off the connection, out of the session's way */
	setsid();
	signal(SIGPIPE, SIG_IGN);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		/* stderr too: a client reading it would wait for us */
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	close_range(3, ~0u, 0);
	if (setpriority(PRIO_PROCESS, 0, 10) < 0)
		log_debug("cannot lower the repack's priority");
	if (repack && gitrepack_run(repo_path) < 0)
		log_warnx("repack of '%s': %s", repo_path, error_last());
	if (then && then(repo_path) < 0)
		log_warnx("clone pack of '%s': %s", repo_path, error_last());
	_exit(0);
}
