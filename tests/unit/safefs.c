/*
 * safefs: root in a tree an app controls.  The attacks of issue #12 at
 * the module level: a Procfile that is a link to a root-only file, a link
 * swapped in and out with renameat2(RENAME_EXCHANGE) by a racing
 * unprivileged process while root chowns, removes and copies the tree,
 * and a public/ folder replaced by a link to /etc.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "safefs.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

#define NOBODY 65534

static char base[64];
static int basefd = -1;

/* base/rel in one of a few static buffers: no frees to forget */
static char *at(const char *rel)
{
	static char bufs[4][512];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", base, rel);
	return b;
}

/* no fsync: these trees are thrown away */
static void put(const char *rel, const char *text, mode_t mode)
{
	char *p = at(rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || write_all(fd, text, strlen(text)) < 0 ||
	    fchmod(fd, mode) < 0 || close(fd) < 0)
		abort();
}

static void mk(const char *rel, mode_t mode)
{
	char *p = at(rel);

	if (mkdir(p, mode) < 0 && errno != EEXIST)
		abort();
	if (chmod(p, mode) < 0)
		abort();
}

static void ln(const char *target, const char *rel)
{
	char *p = at(rel);

	unlink(p);
	if (symlink(target, p) < 0)
		abort();
}

static void own(const char *rel, uid_t uid)
{
	char *p = at(rel);

	if (lchown(p, uid, uid) < 0)
		abort();
}

static struct stat lst(const char *rel)
{
	struct stat st;
	char *p = at(rel);

	memset(&st, 0, sizeof(st));
	st.st_uid = (uid_t)-1;
	lstat(p, &st);
	return st;
}

static int exists(const char *rel)
{
	struct stat st;
	char *p = at(rel);
	int r = lstat(p, &st) == 0;

	return r;
}

static int canary_intact(void)
{
	struct stat d = lst("secret"), f = lst("secret/shadow");
	struct buf b = BUF_INIT;
	char *p = at("secret/shadow");
	int r = d.st_uid == 0 && d.st_gid == 0 && (d.st_mode & 07777) == 0755 &&
		f.st_uid == 0 && f.st_gid == 0 && (f.st_mode & 07777) == 0600 &&
		read_file(&b, p, 100) == 0 && !strcmp(b.data, "SECRET\n");

	buf_release(&b);
	return r;
}

/* ---- a racing unprivileged process ---- */

struct racer {
	pid_t pid;
	int stop[2];
	int count[2];
	int ready[2];
};

static void racer_start(struct racer *r, const char *a, const char *b)
{
	char *pa = at(a), *pb = at(b);

	if (pipe(r->stop) < 0 || pipe(r->count) < 0 || pipe(r->ready) < 0)
		abort();
	r->pid = fork();
	if (r->pid == 0) {
		long n = 0, i;

		close(r->stop[1]);
		close(r->ready[0]);
		alarm(120);
		if (setgroups(0, NULL) < 0 ||
		    setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(2);
		for (i = 0;; i++) {
			if (renameat2(AT_FDCWD, pa, AT_FDCWD, pb,
				      RENAME_EXCHANGE) == 0)
				n++;
			/* the walk under test starts only once the racer
			 * has really swapped: on a busy machine it could
			 * otherwise finish before the racer ran at all */
			if (n == 1 && r->ready[1] >= 0) {
				if (write(r->ready[1], "r", 1) < 0)
					_exit(1);
				close(r->ready[1]);
				r->ready[1] = -1;
			}
			if (!(i & 63)) {
				struct pollfd p = { r->stop[0], POLLIN, 0 };

				if (poll(&p, 1, 0) > 0)
					break;
			}
		}
		if (write(r->count[1], &n, sizeof(n)) < 0)
			_exit(1);
		_exit(0);
	}
	close(r->stop[0]);
	close(r->count[1]);
	close(r->ready[1]);
	{
		char c;

		if (read(r->ready[0], &c, 1) != 1)
			abort();
	}
	close(r->ready[0]);
}

static long racer_stop(struct racer *r)
{
	long n = -1;

	close(r->stop[1]);
	if (read(r->count[0], &n, sizeof(n)) != sizeof(n))
		n = -1;
	close(r->count[0]);
	waitpid(r->pid, NULL, 0);
	return n;
}

/* ---- reading ---- */

static void test_read(const char *mode)
{
	struct buf b = BUF_INIT;
	int r, fd;
	int64_t t0;

	r = safefs_read(&b, basefd, "tree/Procfile.ok", 4096);
	ok(r == 0 && !strcmp(b.data, "web: ./run\n"), "%s: a plain file reads",
	   mode);
	r = safefs_read(&b, basefd, "tree/Procfile", 4096);
	ok(r == ERR_INVALID &&
	   !strcmp(error_last(), "'tree/Procfile' is a symbolic link") &&
	   b.len == 0, "%s: Procfile linked to the shadow file refused: %s",
	   mode, error_last());
	r = safefs_read(&b, basefd, "tree/rel", 4096);
	ok(r == ERR_INVALID && strstr(error_last(), "symbolic link"),
	   "%s: relative link out refused", mode);
	r = safefs_read(&b, basefd, "tree/app/shadow", 4096);
	ok(r == ERR_INVALID &&
	   !strcmp(error_last(), "'tree/app' is a symbolic link"),
	   "%s: a linked folder on the way refused: %s", mode, error_last());
	r = safefs_read(&b, basefd, "tree/inner/link", 4096);
	ok(r == ERR_INVALID, "%s: even a link that stays inside", mode);
	ok(safefs_read(&b, basefd, "tree/../secret/shadow", 4096) ==
	   ERR_INVALID && strstr(error_last(), "not a path inside"),
	   "%s: '..' refused", mode);
	ok(safefs_read(&b, basefd, "/etc/shadow", 4096) == ERR_INVALID,
	   "%s: absolute path refused", mode);
	ok(safefs_read(&b, basefd, "tree//Procfile.ok", 4096) == ERR_INVALID &&
	   safefs_read(&b, basefd, "tree/", 4096) == ERR_INVALID &&
	   safefs_read(&b, basefd, "./tree/x", 4096) == ERR_INVALID &&
	   safefs_read(&b, basefd, "", 4096) == ERR_INVALID,
	   "%s: odd paths refused", mode);
	ok(safefs_read(&b, basefd, "tree/missing", 4096) == ERR_NOTFOUND &&
	   !strcmp(error_last(), "no 'tree/missing'"), "%s: missing", mode);
	t0 = now_ms();
	r = safefs_read(&b, basefd, "tree/fifo", 4096);
	ok(r == ERR_INVALID && strstr(error_last(), "not a regular file") &&
	   now_ms() - t0 < 5000, "%s: a fifo is refused, not waited on",
	   mode);
	ok(safefs_read(&b, basefd, "tree/inner", 4096) == ERR_INVALID,
	   "%s: a folder is not a file", mode);
	r = safefs_read(&b, basefd, "tree/big", 1 << 20);
	ok(r == ERR_TOOBIG && strstr(error_last(), "larger than 1048576") &&
	   b.len == 0, "%s: size cap: %s", mode, error_last());
	r = safefs_read(&b, basefd, "tree/mnt/x", 4096);
	ok(r == ERR_INVALID && strstr(error_last(), "mount point"),
	   "%s: a mount point on the way refused: %s", mode, error_last());

	fd = safefs_openat(basefd, "tree/Procfile", O_PATH, 0);
	ok(fd == ERR_INVALID, "%s: O_PATH does not hand out the link", mode);
	fd = safefs_openat(basefd, "tree/new", O_WRONLY | O_CREAT | O_EXCL,
			   0600);
	ok(fd >= 0, "%s: create beneath", mode);
	if (fd >= 0)
		close(fd);
	own("tree/new", 0);
	unlink(at("tree/new"));
	fd = safefs_openat(basefd, "tree/dangling", O_WRONLY | O_CREAT, 0600);
	ok(fd == ERR_INVALID && !exists("secret/created"),
	   "%s: O_CREAT through a dangling link refused", mode);
	fd = safefs_openat(basefd, ".", O_RDONLY | O_DIRECTORY, 0);
	ok(fd >= 0, "%s: '.' is the folder itself", mode);
	if (fd >= 0)
		close(fd);
	buf_release(&b);
}

/* ---- chown ---- */

static void test_chown(void)
{
	struct racer rc;
	long swaps, runs = 0, fails = 0;
	int64_t until;
	int r, i;

	mk("c", 0755);
	mk("c/d", 0755);
	mk("c/d/e", 0700);
	put("c/d/e/f", "x\n", 0644);
	put("c/suid", "#!/bin/sh\n", 04755);
	ln("../secret", "c/l");
	ln("/", "c/root");
	mkfifo(at("c/fifo"), 0600);
	r = safefs_chown_tree(basefd, "c", NOBODY, NOBODY);
	ok(r == 0, "chown a tree%s%s", r ? ": " : "", r ? error_last() : "");
	ok(lst("c").st_uid == NOBODY && lst("c/d/e").st_uid == NOBODY &&
	   lst("c/d/e/f").st_gid == NOBODY && lst("c/fifo").st_uid == NOBODY,
	   "every folder, file and fifo given");
	ok(lst("c/l").st_uid == NOBODY && canary_intact() &&
	   lst("/").st_uid == 0, "links given themselves, targets untouched");
	ok((lst("c/suid").st_mode & 07777) == 0755,
	   "set-user-ID dropped on the way");

	/* a hard link to a root file, and a device */
	{
		char *p = at("secret/shadow"), *q = at("c/hard");

		ok(link(p, q) == 0, "hard link to the secret made (as root)");
		r = safefs_chown_tree(basefd, "c", NOBODY, NOBODY);
		ok(r == ERR_INVALID &&
		   !strcmp(error_last(), "'c/hard' has other hard links") &&
		   canary_intact(), "hard link refused: %s", error_last());
		unlink(q);
	}
	{
		char *q = at("c/null");

		ok(mknod(q, S_IFCHR | 0666, makedev(1, 3)) == 0,
		   "a device node in the tree");
		r = safefs_chown_tree(basefd, "c", NOBODY, NOBODY);
		ok(r == ERR_INVALID &&
		   !strcmp(error_last(), "'c/null' is a device") &&
		   lst("c/null").st_uid == 0, "device refused: %s",
		   error_last());
		unlink(q);
	}
	ok(safefs_chown_tree(basefd, "tree/app", NOBODY, NOBODY) ==
	   ERR_INVALID && canary_intact(), "a linked top refused");
	ok(safefs_chown_tree(basefd, "tree", NOBODY, NOBODY) == ERR_INVALID &&
	   strstr(error_last(), "'tree/mnt' is a mount point"),
	   "a mount point refused: %s", error_last());

	/* the race: d and l trade places while root walks */
	mk("race", 0755);
	own("race", NOBODY);
	mk("race/d", 0755);
	for (i = 0; i < 20; i++) {
		char n[32];

		snprintf(n, sizeof(n), "race/d/f%d", i);
		put(n, "x\n", 0644);
	}
	mk("race/d/sub", 0755);
	put("race/d/sub/g", "y\n", 0644);
	put("race/file", "z\n", 0644);
	ln("../secret", "race/l");
	ln("../secret/shadow", "race/lf");
	ok(safefs_chown_tree(basefd, "race", NOBODY, NOBODY) == 0,
	   "race tree given to nobody");
	racer_start(&rc, "race/d", "race/l");
	{
		struct racer rc2;

		racer_start(&rc2, "race/file", "race/lf");
		until = now_ms() + 1500;
		while (now_ms() < until || runs < 50) {
			if (safefs_chown_tree(basefd, "race", NOBODY,
					      NOBODY) < 0)
				fails++;
			runs++;
			if (!canary_intact() || runs > 100000)
				break;
		}
		swaps = racer_stop(&rc2);
		ok(swaps > 0, "the file racer swapped %ld times", swaps);
	}
	swaps = racer_stop(&rc);
	ok(swaps > 0, "the folder racer swapped %ld times", swaps);
	ok(canary_intact() && lst("/").st_uid == 0,
	   "%ld chown walks during the swaps (%ld refused): nothing outside given away",
	   runs, fails);
}

/* ---- remove ---- */

static void fill_rm(void)
{
	int i;

	mk("rm", 0755);
	own("rm", NOBODY);
	mk("rm/d", 0755);
	own("rm/d", NOBODY);
	for (i = 0; i < 30; i++) {
		char n[32];

		snprintf(n, sizeof(n), "rm/d/f%d", i);
		put(n, "x\n", 0644);
	}
	ln("../secret", "rm/l");
	own("rm/l", NOBODY);
}

static void test_remove(void)
{
	struct racer rc;
	int i, r, bad = 0, failed = 0, fd;
	long swaps = 0;
	char name[32];

	ok(safefs_remove_tree(basefd, "nothing-here") == 0, "missing is fine");
	fill_rm();
	ok(safefs_remove_tree(basefd, "rm/l") == 0 && canary_intact() &&
	   !exists("rm/l"), "a link is removed, never followed");
	ln("../secret", "rm/l");
	ok(safefs_remove_tree(basefd, "rm") == 0 && !exists("rm") &&
	   canary_intact(), "a tree with a link to outside removed");

	for (i = 0; i < 40 && !bad; i++) {
		fill_rm();
		racer_start(&rc, "rm/d", "rm/l");
		r = safefs_remove_tree(basefd, "rm");
		swaps += racer_stop(&rc);
		if (r < 0) {
			failed++;
			safefs_remove_tree(basefd, "rm");
		}
		if (!canary_intact())
			bad = 1;
	}
	ok(!bad && swaps > 0,
	   "40 removals during %ld swaps (%d refused): the secret stays",
	   swaps, failed);

	/* deeper than any walk goes */
	mk("deep", 0755);
	fd = open(at("deep"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (i = 0; i < 3 * SAFEFS_DEPTH_MAX && fd >= 0; i++) {
		int nfd;

		snprintf(name, sizeof(name), "d%d", i);
		if (mkdirat(fd, name, 0755) < 0)
			break;
		nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		fd = nfd;
		if (i == 100 && fd >= 0)
			symlinkat("/etc", fd, "etc");
	}
	if (fd >= 0)
		close(fd);
	ok(i == 3 * SAFEFS_DEPTH_MAX, "a tree %d folders deep", i);
	r = safefs_remove_tree(basefd, "deep");
	ok(r == 0 && !exists("deep") && access("/etc/passwd", F_OK) == 0,
	   "removed however deep%s%s", r ? ": " : "", r ? error_last() : "");

	mk("keep", 0755);
	put("keep/a", "a", 0644);
	mk("keep/b", 0755);
	fd = open(at("keep"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ok(safefs_remove_tree(fd, ".") == 0 && exists("keep") &&
	   !exists("keep/a") && !exists("keep/b"), "'.' empties the folder");
	close(fd);
	ok(safefs_remove_tree(basefd, "tree/mnt") == ERR_INVALID ||
	   exists("tree/mnt"), "a mount point is not removed");
}

/* ---- copy ---- */

static int find_secret(const struct safefs_entry *e, void *arg)
{
	int *found = arg;
	char buf[16];
	ssize_t n;

	if (strstr(e->path, "shadow"))
		*found = 1;
	if (e->fd >= 0) {
		n = read(e->fd, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			if (strstr(buf, "SECRET"))
				*found = 1;
		}
	}
	return 0;
}

static void test_copy(void)
{
	struct safefs_limits lim = { 0, 0 };
	struct racer rc;
	struct buf b = BUF_INIT;
	struct stat s1, s2;
	int r, i, found = 0, copied = 0, refused = 0;
	long swaps;

	mk("public", 0777);
	put("public/index.html", "<h1>hi</h1>\n", 0666);
	mk("public/css", 0700);
	put("public/css/site.css", "body{}\n", 0755);
	mk("www", 0755);
	r = safefs_copy_tree(basefd, "public", basefd, "www/site", NULL);
	ok(r == 0, "copy a site%s%s", r ? ": " : "", r ? error_last() : "");
	ok(read_file(&b, at("www/site/css/site.css"), 100) == 0 &&
	   !strcmp(b.data, "body{}\n"), "content copied");
	s1 = lst("public/index.html");
	s2 = lst("www/site/index.html");
	ok(s2.st_uid == 0 && (s2.st_mode & 07777) == 0644 &&
	   (lst("www/site/css").st_mode & 07777) == 0755 &&
	   (lst("www/site/css/site.css").st_mode & 07777) == 0644 &&
	   (lst("www/site").st_mode & 07777) == 0755,
	   "root's, folders 0755, files 0644");
	ok(s1.st_mtim.tv_sec == s2.st_mtim.tv_sec &&
	   s1.st_mtim.tv_nsec == s2.st_mtim.tv_nsec, "times kept");
	ok(safefs_copy_tree(basefd, "public", basefd, "www/site", NULL) < 0,
	   "an existing destination refused");

	ln("/etc", "public-link");
	r = safefs_copy_tree(basefd, "public-link", basefd, "www/x", NULL);
	ok(r == ERR_INVALID &&
	   !strcmp(error_last(), "'public-link' is a symbolic link") &&
	   !exists("www/x"), "public/ replaced by a link to /etc: refused");
	ln("/etc", "public/etc");
	r = safefs_copy_tree(basefd, "public", basefd, "www/x", NULL);
	ok(r == ERR_INVALID &&
	   !strcmp(error_last(), "'public/etc' is a symbolic link") &&
	   !exists("www/x"), "a link inside: refused, nothing left: %s",
	   error_last());
	unlink(at("public/etc"));
	mkfifo(at("public/fifo"), 0666);
	r = safefs_copy_tree(basefd, "public", basefd, "www/x", NULL);
	ok(r == ERR_INVALID && strstr(error_last(), "'public/fifo' is not") &&
	   !exists("www/x"), "a fifo refused");
	unlink(at("public/fifo"));
	lim.max_files = 2;
	r = safefs_copy_tree(basefd, "public", basefd, "www/x", &lim);
	ok(r == ERR_INVALID && strstr(error_last(), "more than 2 files") &&
	   !exists("www/x"), "file limit");
	lim.max_files = 0;
	lim.max_bytes = 10;
	r = safefs_copy_tree(basefd, "public", basefd, "www/x", &lim);
	ok(r == ERR_INVALID && strstr(error_last(), "more than 10 bytes") &&
	   !exists("www/x"), "byte limit");

	/* the race: a folder and a link to the secret trade places */
	mk("pub3", 0755);
	own("pub3", NOBODY);
	mk("pub3/sub", 0755);
	put("pub3/sub/ok.html", "ok\n", 0644);
	ln("../secret", "pub3/l");
	racer_start(&rc, "pub3/sub", "pub3/l");
	for (i = 0; i < 200 && !found; i++) {
		int fd;

		r = safefs_copy_tree(basefd, "pub3", basefd, "www/race", NULL);
		if (r == 0) {
			copied++;
			fd = open(at("www/race"), O_RDONLY | O_DIRECTORY |
				  O_CLOEXEC);
			safefs_walk(fd, ".", find_secret, &found);
			close(fd);
			safefs_remove_tree(basefd, "www/race");
		} else {
			refused++;
		}
	}
	swaps = racer_stop(&rc);
	ok(!found && swaps > 0 && !exists("www/race"),
	   "200 copies during %ld swaps (%d made, %d refused): no secret",
	   swaps, copied, refused);
	buf_release(&b);
}

/* ---- walk ---- */

struct seen {
	struct buf list;
};

static int record(const struct safefs_entry *e, void *arg)
{
	struct seen *s = arg;
	char buf[64] = "";
	ssize_t n;

	if (e->fd >= 0) {
		n = read(e->fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
	}
	buf_addf(&s->list, "%s%s%s%s%s%s;", e->path,
		 S_ISDIR(e->st.st_mode) ? "/" : "", e->link ? "->" : "",
		 e->link ? e->link : "", *buf ? "=" : "", buf);
	return 0;
}

static int stop_at_b(const struct safefs_entry *e, void *arg)
{
	(void)arg;
	return strcmp(e->path, "b") ? 0 : -42;
}

static void test_walk(void)
{
	struct seen s;

	mk("w", 0755);
	mk("w/b", 0755);
	put("w/b/c", "C\n", 0644);
	put("w/a", "A\n", 0644);
	ln("/etc/shadow", "w/z");
	buf_init(&s.list, 0);
	ok(safefs_walk(basefd, "w", record, &s) == 0 &&
	   !strcmp(s.list.data, "a=A;b/;b/c=C;z->/etc/shadow;"),
	   "walk: sorted, folders first, links not followed (%s)",
	   s.list.data);
	ok(safefs_walk(basefd, "w", stop_at_b, NULL) == -42,
	   "walk: the callback stops it");
	ok(safefs_walk(basefd, "w/z", record, &s) == ERR_INVALID,
	   "walk: a linked top refused");
	buf_release(&s.list);
}

int main(void)
{
	char tmpl[] = "/tmp/berth-safefs-XXXXXX";
	int was;

	if (geteuid() != 0) {
		skip("not root: the attacks need a second user");
		return tap_done();
	}
	/* our own mount namespace, for the tmpfs mounted into the tree */
	ok(unshare(CLONE_NEWNS) == 0 &&
	   mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0,
	   "private mount namespace");
	if (!mkdtemp(tmpl))
		abort();
	snprintf(base, sizeof(base), "%s", tmpl);
	chmod(base, 0755);
	basefd = safefs_open_top(base);
	ok(basefd >= 0, "open the top");

	mk("secret", 0755);
	put("secret/shadow", "SECRET\n", 0600);
	mk("tree", 0755);
	put("tree/Procfile.ok", "web: ./run\n", 0644);
	ln(at("secret/shadow"), "tree/Procfile");
	ln("../secret/shadow", "tree/rel");
	ln(at("secret"), "tree/app");
	ln(at("secret/created"), "tree/dangling");
	mk("tree/inner", 0755);
	ln("../Procfile.ok", "tree/inner/link");
	mkfifo(at("tree/fifo"), 0644);
	{
		char *big = xcalloc(1, (2 << 20) + 1);

		memset(big, 'x', 2 << 20);
		put("tree/big", big, 0644);
		free(big);
	}
	mk("tree/mnt", 0755);
	ok(mount("tmpfs", at("tree/mnt"), "tmpfs", 0, "size=1m") == 0,
	   "a tmpfs mounted inside the tree");
	put("tree/mnt/x", "x", 0644);

	test_read("openat2");
	was = safefs_set_openat2(0);
	ok(was == 1, "openat2 in use on this kernel");
	test_read("walk");
	safefs_set_openat2(1);
	test_chown();
	test_remove();
	test_copy();
	test_walk();

	umount(at("tree/mnt"));
	close(basefd);
	rm_rf(base);
	return tap_done();
}
