/* deployout: see deployout.h. */
#include "deployout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <stdint.h>
#include <unistd.h>

#include "engine.h"
#include "log.h"
#include "banned.h"

#define META_MAX 4096
/* A follower that cannot keep up is dropped rather than growing memory. */
#define FOLLOWER_MAX_PENDING (4 * 1024 * 1024)

struct dofollower {
	struct client *c;
	struct dofollower *next;
};

struct deployout {
	struct deployout *next;		/* open_records */
	int refs;
	char *appdir;
	char *path;
	int fd;
	int keep;
	struct deployout_info info;
	long size;
	long past_cap;			/* lines that came after the cap */
	char *tail[DEPLOYOUT_TAIL];	/* the last lines past the cap */
	int tail_pos;
	struct buf partial;		/* an unfinished line */
	struct dofollower *followers;
	int sending;
};

/* The engine is one thread: the open records are a plain list. */
static struct deployout *open_records;

static char *record_path(const char *appdir, int deploy, const char *ext)
{
	return xasprintf("%s/" DEPLOYOUT_DIR "/%d%s", appdir, deploy,
			 ext ? ext : "");
}

static int meta_write(struct deployout *o)
{
	char *path = record_path(o->appdir, o->info.deploy, ".meta");
	struct buf b = BUF_INIT;
	int ret;

	buf_addf(&b, "deploy %d\nkind %s\nrelease %d\nstatus %s\ntime %s\n"
		 "commit %s\n", o->info.deploy, o->info.kind,
		 o->info.release, o->info.status, o->info.time,
		 o->info.commit[0] ? o->info.commit : "-");
	ret = write_file_atomic(path, b.data, b.len, 0600);
	if (ret < 0)
		log_warnx("%s: %s", __func__, error_last());
	buf_release(&b);
	free(path);
	return ret;
}

size_t deployout_list(const char *appdir, int **out)
{
	char *dir = xasprintf("%s/" DEPLOYOUT_DIR, appdir);
	size_t n = dir_numbers(dir, out);

	free(dir);
	return n;
}

static void copy_word(char *out, size_t len, const char *s)
{
	size_t i;

	for (i = 0; s && s[i] && s[i] != ' ' && s[i] != '\n' && i + 1 < len;
	     i++)
		out[i] = s[i];
	out[i] = '\0';
}

int deployout_open(struct deployout **out, const char *appdir,
		   const char *kind, const char *commit, int keep)
{
	char *dir = xasprintf("%s/" DEPLOYOUT_DIR, appdir);
	struct deployout *o = NULL;
	int *nums = NULL, next, fd = -1, tries;
	size_t n;

	*out = NULL;
	if (mkdir_p(dir, 0700) < 0 || chmod(dir, 0700) < 0) {
		error_setsys("cannot make '%s'", dir);
		free(dir);
		return -1;
	}
	free(dir);
	o = xcalloc(1, sizeof(*o));
	o->appdir = xstrdup(appdir);
	n = deployout_list(appdir, &nums);
	next = n ? nums[n - 1] + 1 : 1;
	free(nums);
	/* another record may take a number meanwhile: O_EXCL decides */
	for (tries = 0; tries < 100; tries++, next++) {
		o->path = record_path(appdir, next, NULL);
		fd = open(o->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND |
			  O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
		FREE_AND_NULL(o->path);
	}
	if (fd < 0) {
		error_setsys("cannot make '%s'", o->path ? o->path : appdir);
		free(o->path);
		free(o->appdir);
		free(o);
		return -1;
	}
	o->fd = fd;
	o->refs = 1;
	o->keep = keep;
	o->info.deploy = next;
	copy_word(o->info.kind, sizeof(o->info.kind), kind ? kind : "cli");
	snprintf(o->info.status, sizeof(o->info.status), "running");
	time_iso(o->info.time, sizeof(o->info.time), time(NULL));
	copy_word(o->info.commit, sizeof(o->info.commit), commit);
	buf_init(&o->partial, 0);
	meta_write(o);
	o->next = open_records;
	open_records = o;
	*out = o;
	return 0;
}

void deployout_ref(struct deployout *o)
{
	if (o)
		o->refs++;
}

static void send_followers(struct deployout *o, const char *line)
{
	struct dofollower *f, **pf;

	/* A write can close a follower (see logger.c): we drop those
	 * after the walk. */
	o->sending++;
	for (pf = &o->followers; (f = *pf);) {
		if (!client_gone(f->c) &&
		    client_pending(f->c) > FOLLOWER_MAX_PENDING)
			client_error(f->c, "output follower fell behind");
		else if (line)
			client_data(f->c, "%s", line);
		else
			client_ok(f->c);
		if (line && !client_gone(f->c) &&
		    client_pending(f->c) <= FOLLOWER_MAX_PENDING) {
			pf = &f->next;
			continue;
		}
		*pf = f->next;
		client_on_close(f->c, NULL, NULL);
		client_unref(f->c);
		free(f);
	}
	o->sending--;
}

/* One line to the file and the followers. */
static void write_line(struct deployout *o, const char *line, size_t len)
{
	struct buf b = BUF_INIT;

	buf_add(&b, line, len);
	buf_add(&b, "\n", 1);
	if (o->fd >= 0 && write_all(o->fd, b.data, b.len) < 0)
		log_warn("cannot write '%s'", o->path);
	o->size += (long)b.len;
	b.data[--b.len] = '\0';
	send_followers(o, b.data);
	buf_release(&b);
}

static void add_line(struct deployout *o, const char *line, size_t len)
{
	char cut[DEPLOYOUT_LINE_MAX + 1];
	size_t i, k = 0;

	/* control characters would let a build redraw what a reader sees */
	for (i = 0; i < len && k < DEPLOYOUT_LINE_MAX; i++) {
		unsigned char ch = (unsigned char)line[i];

		if (ch == '\r' && i + 1 == len)
			break;
		cut[k++] = (ch < 0x20 && ch != '\t') || ch == 0x7f ? '?' :
			   (char)ch;
	}
	cut[k] = '\0';
	/* once one line went past the cap, every later one does: the
	 * order stays as it was */
	if (!o->past_cap && o->size + (long)k + 1 <= DEPLOYOUT_MAX) {
		write_line(o, cut, k);
		return;
	}
	/* past the cap: only the last lines, written when the record ends */
	free(o->tail[o->tail_pos]);
	o->past_cap++;
	o->tail[o->tail_pos] = xstrdup(cut);
	o->tail_pos = (o->tail_pos + 1) % DEPLOYOUT_TAIL;
}

void deployout_add(struct deployout *o, const char *text, size_t len)
{
	const char *nl;

	if (!o)
		return;
	buf_add(&o->partial, text, len);
	while ((nl = memchr(o->partial.data, '\n', o->partial.len))) {
		add_line(o, o->partial.data,
			 (size_t)(nl - o->partial.data));
		buf_consume(&o->partial, (size_t)(nl - o->partial.data) + 1);
	}
	if (o->partial.len > DEPLOYOUT_LINE_MAX) {
		add_line(o, o->partial.data, o->partial.len);
		buf_reset(&o->partial);
	}
}

void deployout_addf(struct deployout *o, const char *fmt, ...)
{
	va_list ap;
	char *p;

	if (!o)
		return;
	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	deployout_add(o, p, strlen(p));
	deployout_add(o, "\n", 1);
	free(p);
}

void deployout_set_release(struct deployout *o, int release)
{
	if (!o || o->info.release == release)
		return;
	o->info.release = release;
	meta_write(o);
}

void deployout_set_status(struct deployout *o, const char *status)
{
	if (!o || !strcmp(o->info.status, status))
		return;
	copy_word(o->info.status, sizeof(o->info.status), status);
	meta_write(o);
}

void deployout_set_commit(struct deployout *o, const char *commit)
{
	if (!o || !commit)
		return;
	copy_word(o->info.commit, sizeof(o->info.commit), commit);
	meta_write(o);
}

int deployout_number(const struct deployout *o)
{
	return o ? o->info.deploy : 0;
}

static void end_record(struct deployout *o)
{
	struct deployout **po;
	int i, k;

	if (o->partial.len)
		add_line(o, o->partial.data, o->partial.len);
	if (o->past_cap) {
		char note[160];
		long kept = o->past_cap < DEPLOYOUT_TAIL ? o->past_cap :
			    DEPLOYOUT_TAIL;
		long dropped = o->past_cap - kept;

		snprintf(note, sizeof(note), " !     output truncated: %ld "
			 "line%s left out after the first %ld KiB; the last "
			 "%ld follow", dropped, dropped == 1 ? "" : "s",
			 DEPLOYOUT_MAX / 1024, kept);
		write_line(o, note, strlen(note));
		for (i = 0; i < DEPLOYOUT_TAIL; i++) {
			k = (o->tail_pos + i) % DEPLOYOUT_TAIL;
			if (!o->tail[k])
				continue;
			write_line(o, o->tail[k], strlen(o->tail[k]));
			FREE_AND_NULL(o->tail[k]);
		}
	}
	if (!strcmp(o->info.status, "running"))
		snprintf(o->info.status, sizeof(o->info.status), "failed");
	meta_write(o);
	if (o->fd >= 0 && (fsync(o->fd) < 0 || close(o->fd) < 0))
		log_warn("cannot write '%s'", o->path);
	o->fd = -1;
	send_followers(o, NULL);
	for (po = &open_records; *po; po = &(*po)->next) {
		if (*po == o) {
			*po = o->next;
			break;
		}
	}
	deployout_prune(o->appdir, o->keep);
	buf_release(&o->partial);
	free(o->appdir);
	free(o->path);
	free(o);
}

void deployout_unref(struct deployout *o)
{
	if (!o || --o->refs > 0)
		return;
	end_record(o);
}

struct deployout *deployout_find_open(const char *appdir, int deploy)
{
	struct deployout *o;

	for (o = open_records; o; o = o->next)
		if (o->info.deploy == deploy && !strcmp(o->appdir, appdir))
			return o;
	return NULL;
}

static void follower_closed(struct client *c, void *arg)
{
	struct deployout *o = arg;
	struct dofollower *f, **pf;

	if (o->sending)
		return;		/* send_followers() drops it */
	for (pf = &o->followers; (f = *pf); pf = &f->next) {
		if (f->c == c) {
			*pf = f->next;
			client_unref(c);
			free(f);
			return;
		}
	}
}

void deployout_follow(struct deployout *o, struct client *c)
{
	struct dofollower *f = xcalloc(1, sizeof(*f));

	client_ref(c);
	f->c = c;
	f->next = o->followers;
	o->followers = f;
	client_on_close(c, follower_closed, o);
}

static const char *meta_field(const char *text, const char *key)
{
	size_t k = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, k) && p[k] == ' ')
			return p + k + 1;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

int deployout_info_read(const char *appdir, int deploy,
			struct deployout_info *out)
{
	char *path = record_path(appdir, deploy, ".meta");
	struct buf b = BUF_INIT;
	const char *v;
	int r;

	memset(out, 0, sizeof(*out));
	r = path_exists(path) ? read_file(&b, path, META_MAX) : ERR_NOTFOUND;
	free(path);
	if (r < 0) {
		buf_release(&b);
		return r;
	}
	out->deploy = deploy;
	v = meta_field(b.data, "release");
	out->release = v ? (int)strtol(v, NULL, 10) : 0;
	if (out->release < 0)
		out->release = 0;
	copy_word(out->kind, sizeof(out->kind), meta_field(b.data, "kind"));
	copy_word(out->status, sizeof(out->status),
		  meta_field(b.data, "status"));
	copy_word(out->time, sizeof(out->time), meta_field(b.data, "time"));
	copy_word(out->commit, sizeof(out->commit),
		  meta_field(b.data, "commit"));
	if (!strcmp(out->commit, "-"))
		out->commit[0] = '\0';
	buf_release(&b);
	return 0;
}

int deployout_find(const char *appdir, int release, int *deploy)
{
	int *nums;
	size_t n = deployout_list(appdir, &nums), i;
	int ret = ERR_NOTFOUND;

	*deploy = 0;
	if (!release && n) {
		*deploy = nums[n - 1];
		ret = 0;
	}
	for (i = 0; release && i < n; i++) {
		struct deployout_info in;

		if (deployout_info_read(appdir, nums[i], &in) < 0 ||
		    in.release != release || !strcmp(in.kind, "restart"))
			continue;
		*deploy = nums[i];
		ret = 0;
		break;
	}
	free(nums);
	return ret;
}

int deployout_read(const char *appdir, int deploy, struct buf *out)
{
	char *path = record_path(appdir, deploy, NULL);
	int r = ERR_NOTFOUND;

	if (path_exists(path))
		r = read_file(out, path, DEPLOYOUT_MAX +
			      (DEPLOYOUT_TAIL + 1) * (DEPLOYOUT_LINE_MAX + 1));
	free(path);
	return r;
}

int deployout_mark_interrupted(const char *appdir)
{
	static const char line[] = " !     the engine stopped before this "
				   "deploy ended\n";
	int *nums, marked = 0, fd;
	size_t n = deployout_list(appdir, &nums), i;

	for (i = 0; i < n; i++) {
		struct deployout o;
		char *path;

		if (deployout_find_open(appdir, nums[i]) ||
		    deployout_info_read(appdir, nums[i], &o.info) < 0 ||
		    strcmp(o.info.status, "running"))
			continue;
		path = record_path(appdir, nums[i], NULL);
		fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || write_all(fd, line, sizeof(line) - 1) < 0)
			log_warn("cannot write '%s'", path);
		if (fd >= 0)
			close(fd);
		free(path);
		o.appdir = (char *)(uintptr_t)appdir;
		snprintf(o.info.status, sizeof(o.info.status), "interrupted");
		meta_write(&o);
		marked++;
	}
	free(nums);
	return marked;
}

static int release_on_disk(const char *appdir, int release)
{
	char *dir = xasprintf("%s/releases/%d", appdir, release);
	int r = path_exists(dir);

	free(dir);
	return r;
}

void deployout_prune(const char *appdir, int keep)
{
	int *nums;
	size_t n = deployout_list(appdir, &nums), i;
	int others = 0;

	if (keep < 1)
		keep = 1;
	for (i = n; i-- > 0;) {
		struct deployout_info in;
		char *p;

		if (deployout_find_open(appdir, nums[i]))
			continue;
		if (deployout_info_read(appdir, nums[i], &in) == 0 &&
		    in.release > 0 && strcmp(in.kind, "restart") &&
		    release_on_disk(appdir, in.release))
			continue;
		if (others++ < keep)
			continue;
		p = record_path(appdir, nums[i], ".meta");
		unlink(p);
		free(p);
		p = record_path(appdir, nums[i], NULL);
		unlink(p);
		free(p);
	}
	free(nums);
}
