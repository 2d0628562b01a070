/* cgroup: see cgroup.h. */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "banned.h"

#define PROCS_MAX (4 * 1024 * 1024)	/* cgroup.procs text we read */
#define SMALL_MAX 65536			/* any other cgroup file */
#define CPU_PERIOD_US 100000L
#define FREEZE_WAIT_MS 1000

/* v1 controller names and the feature each one brings. */
static const struct {
	const char *name;
	unsigned feat;
} v1_ctrls[] = {
	{ "memory", CGROUP_MEMORY },
	{ "pids", CGROUP_PIDS },
	{ "cpu", CGROUP_CPU },
	{ "cpuacct", CGROUP_CPUSTAT },
	{ "freezer", CGROUP_FREEZE },
};

const char *cgroup_layout_name(enum cgroup_layout layout)
{
	switch (layout) {
	case CGROUP_V2:
		return "cgroup v2";
	case CGROUP_HYBRID:
		return "cgroup v1 controllers with a v2 hierarchy";
	case CGROUP_V1:
		return "cgroup v1";
	default:
		return "no cgroups";
	}
}

static int feat_index(unsigned feat)
{
	int i;

	for (i = 0; i < CGROUP_NFEAT; i++)
		if (feat == 1u << i)
			return i;
	return -1;
}

/* ---- parsing ---- */

/* Is 'word' one of the comma-separated items of list[0..len)? */
static int list_has(const char *list, size_t len, const char *word)
{
	size_t wl = strlen(word);
	const char *p = list, *end = list + len;

	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);

		if (n == wl && !memcmp(p, word, n))
			return 1;
		p += n + 1;
	}
	return 0;
}

/* mountinfo escapes blanks and backslashes as \ooo. */
static char *unescape(const char *s, size_t len)
{
	char *out = xmalloc(len + 1), *o = out;
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 3 < len &&
		    s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' &&
		    s[i + 3] >= '0' && s[i + 3] <= '7') {
			*o++ = (char)((s[i + 1] - '0') * 64 +
				      (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* The n-th blank-separated field of line[0..len) (0-based). */
static int field(const char *line, size_t len, int n, const char **f,
		 size_t *flen)
{
	const char *p = line, *end = line + len;
	int i = 0;

	for (;;) {
		const char *s;

		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			return -1;
		s = p;
		while (p < end && *p != ' ')
			p++;
		if (i++ == n) {
			*f = s;
			*flen = (size_t)(p - s);
			return 0;
		}
	}
}

/* In /proc/self/cgroup, the path of the hierarchy that carries the v1
 * controllers 'ctrls' (comma list), or of v2 if ctrls is NULL. */
static char *self_path(const char *self, const char *ctrls, size_t clen)
{
	const char *p = self;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		const char *c1 = memchr(p, ':', len), *c2;

		if (c1) {
			c2 = memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - p));
			if (c2) {
				const char *list = c1 + 1;
				size_t ll = (size_t)(c2 - list);
				const char *path = c2 + 1;
				size_t pl = len - (size_t)(path - p);
				int match = 0;

				if (!ctrls) {
					match = ll == 0 && c1 - p == 1 &&
						p[0] == '0';
				} else if (ll) {
					/* one shared controller is enough */
					const char *q = ctrls;
					const char *end = ctrls + clen;

					while (q < end && !match) {
						const char *cm = memchr(q, ',',
							(size_t)(end - q));
						size_t n = cm ? (size_t)(cm - q) :
							(size_t)(end - q);
						char *w = xstrndup(q, n);

						match = list_has(list, ll, w);
						free(w);
						q += n + 1;
					}
				}
				if (match && pl && path[0] == '/')
					return xstrndup(path, pl);
			}
		}
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

/* mount + (own cgroup relative to the mount's root) + "/" + parent */
static char *hier_dir(const char *mount, const char *root, const char *own,
		      const char *parent)
{
	size_t rl = strlen(root);
	const char *rel = own;

	if (strcmp(root, "/")) {
		if (strncmp(own, root, rl) || (own[rl] && own[rl] != '/'))
			return NULL;	/* our cgroup is not visible here */
		rel = own + rl;
	}
	while (*rel == '/')
		rel++;
	if (!*rel)
		return xasprintf("%s/%s", mount, parent);
	return xasprintf("%s/%s/%s", mount, rel, parent);
}

static void hier_add(struct cgroup_sys *sys, int version, unsigned feat,
		     char *mount, char *dir)
{
	struct cgroup_hier *h = &sys->hier[sys->n_hier++];

	h->version = version;
	h->feat = feat;
	h->mount = mount;
	h->dir = dir;
	h->dir_fd = -1;
}

static unsigned v2_feat(const char *controllers)
{
	unsigned feat = CGROUP_CPUSTAT | CGROUP_FREEZE | CGROUP_KILL;
	const char *p = controllers;

	while (p && *p) {
		size_t n;

		while (*p == ' ' || *p == '\n')
			p++;
		n = strcspn(p, " \n");
		if (n == 6 && !strncmp(p, "memory", 6))
			feat |= CGROUP_MEMORY;
		else if (n == 4 && !strncmp(p, "pids", 4))
			feat |= CGROUP_PIDS;
		else if (n == 3 && !strncmp(p, "cpu", 3))
			feat |= CGROUP_CPU;
		p += n;
	}
	return feat;
}

/* Which hierarchy serves what, and the layout, from the hierarchies. */
static void assign_feats(struct cgroup_sys *sys)
{
	size_t k, n1 = 0, n2 = 0;
	int i;

	sys->feat = 0;
	for (i = 0; i < CGROUP_NFEAT; i++)
		sys->by_feat[i] = -1;
	/* v1 carries the limits where it is mounted; v2 the rest. */
	for (k = 0; k < sys->n_hier; k++) {
		struct cgroup_hier *h = &sys->hier[k];

		for (i = 0; i < CGROUP_NFEAT; i++) {
			if (!(h->feat & (1u << i)))
				continue;
			if (sys->by_feat[i] < 0 ||
			    (h->version == 1 && (1u << i) & (CGROUP_MEMORY |
				CGROUP_PIDS | CGROUP_CPU)) ||
			    (h->version == 2 && (1u << i) & (CGROUP_CPUSTAT |
				CGROUP_FREEZE)))
				sys->by_feat[i] = (int)k;
		}
		sys->feat |= h->feat;
		if (h->version == 1)
			n1++;
		else
			n2++;
	}
	if (!sys->n_hier)
		sys->layout = CGROUP_NONE;
	else if (!n1)
		sys->layout = CGROUP_V2;
	else if (n2)
		sys->layout = CGROUP_HYBRID;
	else
		sys->layout = CGROUP_V1;
}

int cgroup_sys_detect(struct cgroup_sys *sys, const char *parent,
		      const char *mountinfo, const char *self_cgroup,
		      const char *v2_controllers, unsigned flags)
{
	const char *p = mountinfo;
	unsigned seen = 0;
	int v2 = -1, i;
	size_t k;

	memset(sys, 0, sizeof(*sys));
	for (i = 0; i < CGROUP_NFEAT; i++)
		sys->by_feat[i] = -1;
	sys->layout = CGROUP_NONE;
	if (!cgroup_name_valid(parent))
		return error_set("invalid cgroup parent '%s'", parent);
	sys->parent = xstrdup(parent);

	while (p && *p && sys->n_hier < CGROUP_MAX_HIER) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		const char *f, *root, *mnt, *type, *opts;
		size_t fl, rootl, mntl, typel, optsl;
		int n = 6, version = 0;
		unsigned feat = 0;

		/* Skip the optional fields up to the "-" separator. */
		if (field(p, len, 3, &root, &rootl) < 0 ||
		    field(p, len, 4, &mnt, &mntl) < 0)
			goto next;
		while (field(p, len, n, &f, &fl) == 0 &&
		       !(fl == 1 && f[0] == '-'))
			n++;
		if (field(p, len, n + 1, &type, &typel) < 0 ||
		    field(p, len, n + 3, &opts, &optsl) < 0)
			goto next;
		if (typel == 7 && !memcmp(type, "cgroup2", 7)) {
			if (v2 >= 0 || (flags & CGROUP_INIT_NO_V2))
				goto next;
			version = 2;
		} else if (typel == 6 && !memcmp(type, "cgroup", 6)) {
			version = 1;
			for (k = 0; k < ARRAY_SIZE(v1_ctrls); k++)
				if (list_has(opts, optsl, v1_ctrls[k].name))
					feat |= v1_ctrls[k].feat;
			/* the same controllers mounted twice: take the first */
			if (!(feat & ~seen))
				goto next;
		} else {
			goto next;
		}
		{
			char *mount = unescape(mnt, mntl);
			char *rootp = unescape(root, rootl);
			char *own, *dir = NULL;

			if (version == 2)
				own = self_path(self_cgroup, NULL, 0);
			else
				own = self_path(self_cgroup, opts, optsl);
			if (own)
				dir = hier_dir(mount, rootp, own, parent);
			free(own);
			free(rootp);
			if (!dir) {
				free(mount);
				goto next;
			}
			if (version == 2) {
				v2 = (int)sys->n_hier;
				feat = v2_feat(v2_controllers);
			}
			if (version == 1)
				seen |= feat;
			hier_add(sys, version, feat, mount, dir);
		}
next:
		p = nl ? nl + 1 : NULL;
	}

	assign_feats(sys);
	return 0;
}

int cgroup_parse_key(const char *text, const char *key, uint64_t *val)
{
	size_t kl = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, kl) && p[kl] == ' ') {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(p + kl + 1, &end, 10);
			if (errno || end == p + kl + 1 ||
			    (*end && *end != '\n'))
				return error_set("bad value for '%s'", key);
			*val = v;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return ERR_NOTFOUND;
}

void cgroup_format_cpu_max(char *out, size_t len, long cpu_millis)
{
	if (cpu_millis <= 0)
		snprintf(out, len, "max %ld", CPU_PERIOD_US);
	else
		snprintf(out, len, "%ld %ld", cpu_millis * CPU_PERIOD_US / 1000,
			 CPU_PERIOD_US);
}

int cgroup_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (!s || *s < '0' || *s > '9')
		goto bad;
	while (*p >= '0' && *p <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			goto bad;
		v = v * 10 + (uint64_t)(*p++ - '0');
	}
	switch (*p) {
	case 'k': case 'K':
		mult = 1ULL << 10;
		p++;
		break;
	case 'm': case 'M':
		mult = 1ULL << 20;
		p++;
		break;
	case 'g': case 'G':
		mult = 1ULL << 30;
		p++;
		break;
	case 't': case 'T':
		mult = 1ULL << 40;
		p++;
		break;
	}
	if (*p == 'B' && mult > 1)
		p++;
	if (*p || v > UINT64_MAX / mult)
		goto bad;
	v *= mult;
	if (v < (1ULL << 20)) {
		error_set("memory limit '%s' is below 1M", s);
		return ERR_INVALID;
	}
	*bytes = v;
	return 0;
bad:
	error_set("bad memory size '%.40s' (use e.g. 256M or 1G)", s ? s : "");
	return ERR_INVALID;
}

int cgroup_parse_cpu(const char *s, long *millis)
{
	long whole = 0, frac = 0, scale = 100;
	const char *p = s;

	if (!s || *s < '0' || *s > '9')
		goto bad;
	while (*p >= '0' && *p <= '9') {
		whole = whole * 10 + (*p++ - '0');
		if (whole > 1024)
			goto bad;
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			goto bad;
		while (*p >= '0' && *p <= '9') {
			if (!scale)
				goto bad;	/* finer than a thousandth */
			frac += (*p++ - '0') * scale;
			scale /= 10;
		}
	}
	if (*p)
		goto bad;
	*millis = whole * 1000 + frac;
	if (*millis < 10 || *millis > 1024 * 1000)
		goto bad;
	return 0;
bad:
	error_set("bad cpu share '%.40s' (a number of cores from 0.01, e.g. 0.5)",
		  s ? s : "");
	return ERR_INVALID;
}

int cgroup_name_valid(const char *name)
{
	size_t i;

	if (!name || !name[0] || strlen(name) > CGROUP_NAME_MAX ||
	    strstr(name, ".."))
		return 0;
	if (!((name[0] >= 'a' && name[0] <= 'z') ||
	      (name[0] >= '0' && name[0] <= '9')))
		return 0;
	for (i = 0; name[i]; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* ---- small file operations under a cgroup folder ---- */

static int read_at(int dfd, const char *name, struct buf *out, size_t max)
{
	char chunk[4096];
	ssize_t n;
	int fd;

	buf_reset(out);
	out->max = max;
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		error_set("no '%s' here", name);
		return ERR_NOTFOUND;
	}
	if (fd < 0)
		return error_setsys("cannot read '%s'", name);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return error_setsys("cannot read '%s'", name);
		}
		if (n == 0)
			break;
		if (buf_add(out, chunk, (size_t)n) < 0) {
			close(fd);
			return error_set("'%s' is too long", name);
		}
	}
	close(fd);
	buf_add(out, "", 0);
	return 0;
}

static int write_at(int dfd, const char *name, const char *text)
{
	size_t len = strlen(text);
	ssize_t n;
	int fd;

	fd = openat(dfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		error_set("no '%s' here", name);
		return ERR_NOTFOUND;
	}
	if (fd < 0)
		return error_setsys("cannot open '%s'", name);
	do
		n = write(fd, text, len);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return error_setsys("cannot write '%s' to '%s'", text, name);
	}
	close(fd);
	return 0;
}

static int read_key_at(int dfd, const char *file, const char *key,
		       uint64_t *val)
{
	struct buf b = BUF_INIT;
	int r = read_at(dfd, file, &b, SMALL_MAX);

	if (r == 0)
		r = cgroup_parse_key(b.data, key, val);
	buf_release(&b);
	return r;
}

static int read_u64_at(int dfd, const char *file, uint64_t *val)
{
	struct buf b = BUF_INIT;
	char *end;
	int r = read_at(dfd, file, &b, SMALL_MAX);

	if (r == 0) {
		errno = 0;
		*val = strtoull(b.data, &end, 10);
		if (errno || end == b.data || (*end && *end != '\n'))
			r = error_set("bad number in '%s'", file);
	}
	buf_release(&b);
	return r;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- the system ---- */

static int read_proc(const char *path, struct buf *b)
{
	buf_init(b, 0);
	return read_file(b, path, SMALL_MAX * 16);
}

/* The v2 mount's path for our cgroup, to read its cgroup.controllers
 * before detection proper. */
static char *v2_own_dir(const char *mountinfo, const char *self)
{
	struct cgroup_sys tmp;
	char *dir = NULL;
	size_t i;

	if (cgroup_sys_detect(&tmp, "x", mountinfo, self, NULL, 0) < 0)
		return NULL;
	for (i = 0; i < tmp.n_hier; i++)
		if (tmp.hier[i].version == 2) {
			size_t n = strlen(tmp.hier[i].dir);

			dir = xstrndup(tmp.hier[i].dir, n - 2);	/* "/x" */
		}
	cgroup_sys_release(&tmp);
	return dir;
}

/* Enable memory, pids and cpu for the children of the v2 folder dfd. */
static int v2_enable(int dfd, unsigned feat)
{
	static const struct {
		unsigned feat;
		const char *word;
	} c[] = {
		{ CGROUP_MEMORY, "+memory" },
		{ CGROUP_PIDS, "+pids" },
		{ CGROUP_CPU, "+cpu" },
	};
	size_t i;
	int r;

	for (i = 0; i < ARRAY_SIZE(c); i++) {
		if (!(feat & c[i].feat))
			continue;
		r = write_at(dfd, "cgroup.subtree_control", c[i].word);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Pure v2: our own cgroup may hold no process once its children get
 * controllers, so we move into a leaf beside the parent first. */
static int v2_prepare_own(struct cgroup_sys *sys, struct cgroup_hier *h)
{
	char *own = xstrndup(h->dir, strlen(h->dir) - strlen(sys->parent) - 1);
	char *leaf = NULL;
	char pid[32];
	int ofd = -1, lfd = -1, ret = -1, r;
	unsigned want = h->feat & (CGROUP_MEMORY | CGROUP_PIDS | CGROUP_CPU);

	if (!want) {
		ret = 0;
		goto out;
	}
	ofd = open(own, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ofd < 0) {
		error_setsys("cannot open cgroup '%s'", own);
		goto out;
	}
	r = v2_enable(ofd, want);
	if (r == 0 || errno != EBUSY) {
		ret = r;
		goto out;
	}
	leaf = xasprintf("%s.engine", sys->parent);
	if (mkdirat(ofd, leaf, 0755) < 0 && errno != EEXIST) {
		error_setsys("cannot make cgroup '%s/%s'", own, leaf);
		goto out;
	}
	lfd = openat(ofd, leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	if (lfd < 0 || write_at(lfd, "cgroup.procs", pid) < 0) {
		error_setsys("cannot move into cgroup '%s/%s'", own, leaf);
		goto out;
	}
	sys->v2_leaf = xasprintf("%s/%s", own, leaf);
	if (v2_enable(ofd, want) < 0) {
		error_set("cgroup '%s' holds other processes: give berth a cgroup of its own (systemd: Delegate=yes)",
			  own);
		goto out;
	}
	ret = 0;
out:
	if (ofd >= 0)
		close(ofd);
	if (lfd >= 0)
		close(lfd);
	free(leaf);
	free(own);
	return ret;
}

/* A v2 folder's cgroup.kill (5.14) and cgroup.freeze (5.2). */
static void v2_check_files(struct cgroup_hier *h)
{
	if (faccessat(h->dir_fd, "cgroup.kill", F_OK, 0) < 0)
		h->feat &= ~(unsigned)CGROUP_KILL;
	if (faccessat(h->dir_fd, "cgroup.freeze", F_OK, 0) < 0)
		h->feat &= ~(unsigned)CGROUP_FREEZE;
}

/* The checks of the files may have taken features away. */
static void recheck_feats(struct cgroup_sys *sys)
{
	int i;

	sys->feat = 0;
	for (i = 0; i < CGROUP_NFEAT; i++) {
		int k = sys->by_feat[i];

		if (k >= 0 && !(sys->hier[k].feat & (1u << i))) {
			size_t j;

			sys->by_feat[i] = -1;
			for (j = 0; j < sys->n_hier; j++)
				if (sys->hier[j].feat & (1u << i))
					sys->by_feat[i] = (int)j;
		}
		if (sys->by_feat[i] >= 0)
			sys->feat |= 1u << i;
	}
}

int cgroup_sys_init(struct cgroup_sys *sys, const char *parent,
		    unsigned flags)
{
	struct buf mi = BUF_INIT, self = BUF_INIT, ctl = BUF_INIT;
	char *v2dir = NULL, *path = NULL;
	int made[CGROUP_MAX_HIER] = { 0 };
	size_t i;
	int ret = -1;

	memset(sys, 0, sizeof(*sys));
	for (i = 0; i < CGROUP_NFEAT; i++)
		sys->by_feat[i] = -1;
	if (geteuid() != 0 && !(flags & CGROUP_INIT_ANY_USER)) {
		sys->layout = CGROUP_NONE;
		return 0;
	}
	if (read_proc("/proc/self/mountinfo", &mi) < 0 ||
	    read_proc("/proc/self/cgroup", &self) < 0)
		goto out;
	if (!(flags & CGROUP_INIT_NO_V2)) {
		v2dir = v2_own_dir(mi.data, self.data);
		if (v2dir) {
			path = xasprintf("%s/cgroup.controllers", v2dir);
			buf_init(&ctl, 0);
			if (read_file(&ctl, path, SMALL_MAX) < 0)
				buf_reset(&ctl);
		}
	}
	if (cgroup_sys_detect(sys, parent, mi.data, self.data, ctl.data,
			      flags) < 0)
		goto out;

	for (i = 0; i < sys->n_hier; i++) {
		struct cgroup_hier *h = &sys->hier[i];

		if (h->version == 2 && v2_prepare_own(sys, h) < 0)
			goto fail;
		if (mkdir(h->dir, 0755) == 0)
			made[i] = 1;
		else if (errno != EEXIST) {
			error_setsys("cannot make cgroup '%s'", h->dir);
			goto fail;
		}
		h->dir_fd = open(h->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (h->dir_fd < 0) {
			error_setsys("cannot open cgroup '%s'", h->dir);
			goto fail;
		}
		if (h->version != 2)
			continue;
		if (v2_enable(h->dir_fd, h->feat & (CGROUP_MEMORY |
				CGROUP_PIDS | CGROUP_CPU)) < 0)
			goto fail;
		v2_check_files(h);
	}
	recheck_feats(sys);
	ret = 0;
	goto out;
fail:
	for (i = 0; i < sys->n_hier; i++)
		if (made[i])
			rmdir(sys->hier[i].dir);
	cgroup_sys_release(sys);
out:
	free(v2dir);
	free(path);
	buf_release(&mi);
	buf_release(&self);
	buf_release(&ctl);
	return ret;
}

/* The folder of 'dirs' (lines) on mount 'mount', or NULL. */
static char *listed_on(const char *dirs, const char *mount)
{
	size_t ml = strlen(mount);
	const char *p = dirs;

	while (p && *p) {
		size_t len = strcspn(p, "\n");

		if (len > ml + 1 && !strncmp(p, mount, ml) && p[ml] == '/' &&
		    !memchr(p + ml, '\0', len - ml))
			return xstrndup(p, len);
		p += len;
		if (*p)
			p++;
	}
	return NULL;
}

int cgroup_sys_join(struct cgroup_sys *sys, const char *dirs)
{
	struct buf mi = BUF_INIT, self = BUF_INIT, ctl = BUF_INIT;
	struct cgroup_sys found;
	char *first = NULL, *v2dir = NULL, *slash;
	size_t i, len;
	int ret = -1;

	memset(sys, 0, sizeof(*sys));
	memset(&found, 0, sizeof(found));
	for (i = 0; i < CGROUP_NFEAT; i++)
		sys->by_feat[i] = found.by_feat[i] = -1;
	len = dirs ? strcspn(dirs, "\n") : 0;
	if (geteuid() != 0 || !len)
		return 0;
	first = xstrndup(dirs, len);
	slash = strrchr(first, '/');
	if (first[0] != '/' || !slash || !cgroup_name_valid(slash + 1)) {
		error_set("invalid cgroup folder '%.200s'", first);
		goto out;
	}
	if (read_proc("/proc/self/mountinfo", &mi) < 0 ||
	    read_proc("/proc/self/cgroup", &self) < 0)
		goto out;
	/* the mounts first, then what the listed v2 folder hands down */
	if (cgroup_sys_detect(&found, slash + 1, mi.data, self.data, NULL,
			      0) < 0)
		goto out;
	for (i = 0; i < found.n_hier && !v2dir; i++)
		if (found.hier[i].version == 2)
			v2dir = listed_on(dirs, found.hier[i].mount);
	if (v2dir) {
		char *path = xasprintf("%s/cgroup.subtree_control", v2dir);

		buf_init(&ctl, 0);
		if (read_file(&ctl, path, SMALL_MAX) < 0)
			buf_reset(&ctl);
		free(path);
		cgroup_sys_release(&found);
		if (cgroup_sys_detect(&found, slash + 1, mi.data, self.data,
				      ctl.data, 0) < 0)
			goto out;
	}
	sys->parent = xstrdup(slash + 1);
	for (i = 0; i < found.n_hier; i++) {
		struct cgroup_hier *f = &found.hier[i];
		char *dir = listed_on(dirs, f->mount);
		struct cgroup_hier *h;

		if (!dir)
			continue;	/* a hierarchy the engine does not use */
		hier_add(sys, f->version, f->feat, xstrdup(f->mount), dir);
		h = &sys->hier[sys->n_hier - 1];
		h->dir_fd = open(h->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
				 O_CLOEXEC);
		if (h->dir_fd < 0) {
			error_setsys("cannot open cgroup '%s'", h->dir);
			cgroup_sys_release(sys);
			goto out;
		}
		if (h->version == 2)
			v2_check_files(h);
	}
	assign_feats(sys);
	recheck_feats(sys);
	ret = 0;
out:
	cgroup_sys_release(&found);
	free(first);
	free(v2dir);
	buf_release(&mi);
	buf_release(&self);
	buf_release(&ctl);
	return ret;
}

void cgroup_sys_release(struct cgroup_sys *sys)
{
	size_t i;

	for (i = 0; i < sys->n_hier; i++) {
		if (sys->hier[i].dir_fd >= 0)
			close(sys->hier[i].dir_fd);
		free(sys->hier[i].mount);
		free(sys->hier[i].dir);
	}
	free(sys->parent);
	free(sys->v2_leaf);
	memset(sys, 0, sizeof(*sys));
	for (i = 0; i < CGROUP_NFEAT; i++)
		sys->by_feat[i] = -1;
	sys->layout = CGROUP_NONE;
}

/* ---- one group ---- */

static void cg_reset(struct cgroup *cg)
{
	size_t i;

	for (i = 0; i < CGROUP_MAX_HIER; i++)
		cg->dir_fd[i] = cg->procs_fd[i] = -1;
}

void cgroup_close(struct cgroup *cg)
{
	size_t i;

	if (!cg->sys)
		return;
	for (i = 0; i < CGROUP_MAX_HIER; i++) {
		if (cg->dir_fd[i] >= 0)
			close(cg->dir_fd[i]);
		if (cg->procs_fd[i] >= 0)
			close(cg->procs_fd[i]);
	}
	cg_reset(cg);
	cg->sys = NULL;
}

int cgroup_open(struct cgroup *cg, const struct cgroup_sys *sys,
		const char *name, int create)
{
	size_t i;

	memset(cg, 0, sizeof(*cg));
	cg_reset(cg);
	if (sys->layout == CGROUP_NONE || !sys->n_hier) {
		error_set("no cgroups on this host");
		return ERR_NOTFOUND;
	}
	if (!cgroup_name_valid(name)) {
		error_set("invalid cgroup name '%.80s'", name);
		return ERR_INVALID;
	}
	memcpy(cg->name, name, strlen(name) + 1);
	cg->sys = sys;
	for (i = 0; i < sys->n_hier; i++) {
		int dfd = sys->hier[i].dir_fd;

		if (create && mkdirat(dfd, name, 0755) < 0 && errno != EEXIST) {
			error_setsys("cannot make cgroup '%s'", name);
			goto fail;
		}
		cg->dir_fd[i] = openat(dfd, name, O_RDONLY | O_DIRECTORY |
				       O_NOFOLLOW | O_CLOEXEC);
		if (cg->dir_fd[i] < 0) {
			int e = errno;

			cgroup_close(cg);
			if (e == ENOENT) {
				error_set("no cgroup '%s'", name);
				return ERR_NOTFOUND;
			}
			errno = e;
			return error_setsys("cannot open cgroup '%s'", name);
		}
		cg->procs_fd[i] = openat(cg->dir_fd[i], "cgroup.procs",
					 O_WRONLY | O_CLOEXEC);
		if (cg->procs_fd[i] < 0) {
			error_setsys("cannot open cgroup '%s'", name);
			goto fail;
		}
	}
	return 0;
fail:
	cgroup_close(cg);
	return -1;
}

static int hier_of(const struct cgroup *cg, unsigned feat)
{
	int i = feat_index(feat);

	return i < 0 ? -1 : cg->sys->by_feat[i];
}

static int set_memory(const struct cgroup *cg, uint64_t bytes)
{
	int h = hier_of(cg, CGROUP_MEMORY), dfd, r;
	char v[32];

	if (h < 0) {
		error_set("no memory controller on this host");
		return ERR_NOTFOUND;
	}
	dfd = cg->dir_fd[h];
	if (cg->sys->hier[h].version == 2) {
		if (bytes)
			snprintf(v, sizeof(v), "%llu", (unsigned long long)bytes);
		else
			snprintf(v, sizeof(v), "max");
		r = write_at(dfd, "memory.max", v);
		if (r < 0)
			return r;
		/* the limit is RAM and swap together, as on v1 below */
		r = write_at(dfd, "memory.swap.max", bytes ? "0" : "max");
		return r == ERR_NOTFOUND ? 0 : r;
	}
	if (bytes)
		snprintf(v, sizeof(v), "%llu", (unsigned long long)bytes);
	else
		snprintf(v, sizeof(v), "-1");
	/* memsw must stay >= the limit: raise it first when the limit grows
	 * past it, lower it after the limit otherwise. */
	r = write_at(dfd, "memory.limit_in_bytes", v);
	if (r < 0 && errno == EINVAL) {
		r = write_at(dfd, "memory.memsw.limit_in_bytes", v);
		if (r < 0)
			return r;
		return write_at(dfd, "memory.limit_in_bytes", v);
	}
	if (r < 0)
		return r;
	r = write_at(dfd, "memory.memsw.limit_in_bytes", v);
	return r == ERR_NOTFOUND ? 0 : r;	/* no swap accounting */
}

static int set_cpu(const struct cgroup *cg, long millis)
{
	int h = hier_of(cg, CGROUP_CPU), dfd, r;
	char v[64];

	if (h < 0) {
		error_set("no cpu controller on this host");
		return ERR_NOTFOUND;
	}
	if (millis && (millis < 10 || millis > 1024 * 1000)) {
		error_set("cpu limit out of range");
		return ERR_INVALID;
	}
	dfd = cg->dir_fd[h];
	if (cg->sys->hier[h].version == 2) {
		cgroup_format_cpu_max(v, sizeof(v), millis);
		return write_at(dfd, "cpu.max", v);
	}
	snprintf(v, sizeof(v), "%ld", CPU_PERIOD_US);
	r = write_at(dfd, "cpu.cfs_period_us", v);
	if (r < 0)
		return r;
	if (millis)
		snprintf(v, sizeof(v), "%ld", millis * CPU_PERIOD_US / 1000);
	else
		snprintf(v, sizeof(v), "-1");
	return write_at(dfd, "cpu.cfs_quota_us", v);
}

static int set_pids(const struct cgroup *cg, long n)
{
	int h = hier_of(cg, CGROUP_PIDS);
	char v[32];

	if (h < 0) {
		error_set("no pids controller on this host");
		return ERR_NOTFOUND;
	}
	if (n < 0) {
		error_set("process limit out of range");
		return ERR_INVALID;
	}
	if (n)
		snprintf(v, sizeof(v), "%ld", n);
	else
		snprintf(v, sizeof(v), "max");
	return write_at(cg->dir_fd[h], "pids.max", v);
}

/* May the v1 cpu hierarchy h be left out when there is no CPU limit? */
static int cpu_hier_optional(const struct cgroup *cg, int h)
{
	const struct cgroup_hier *hi = &cg->sys->hier[h];
	unsigned f;
	int i;

	if (hi->version != 1)
		return 0;
	for (f = 1, i = 0; i < CGROUP_NFEAT; f <<= 1, i++)
		if (f != CGROUP_CPU && (hi->feat & f) &&
		    cg->sys->by_feat[i] == h)
			return 0;
	return 1;
}

int cgroup_set_limits(struct cgroup *cg, const struct cgroup_limits *lim)
{
	int ret = 0, r, h;
	char *first = NULL;

	if (!cg->sys)
		return error_set("cgroup not open");
	h = hier_of(cg, CGROUP_CPU);
	if (h >= 0) {
		if (!lim->cpu_millis && cpu_hier_optional(cg, h))
			cg->skip |= 1u << h;
		else
			cg->skip &= ~(1u << h);
	}
	/* Lifting a limit the host cannot set is no error. */
	r = set_memory(cg, lim->memory);
	if (r < 0 && !(r == ERR_NOTFOUND && !lim->memory)) {
		ret = r;
		first = xstrdup(error_last());
	}
	r = set_cpu(cg, lim->cpu_millis);
	if (r < 0 && !(r == ERR_NOTFOUND && !lim->cpu_millis) && !ret) {
		ret = r;
		first = xstrdup(error_last());
	}
	r = set_pids(cg, lim->processes);
	if (r < 0 && !(r == ERR_NOTFOUND && !lim->processes) && !ret) {
		ret = r;
		first = xstrdup(error_last());
	}
	if (first) {
		error_set("cgroup '%s': %s", cg->name, first);
		free(first);
	}
	return ret;
}

int cgroup_enter(const struct cgroup *cg)
{
	size_t i;

	for (i = 0; i < CGROUP_MAX_HIER; i++) {
		if (cg->procs_fd[i] < 0 || (cg->skip & (1u << i)))
			continue;
		/* "0" is the writer itself, in v1 and v2 alike */
		if (write(cg->procs_fd[i], "0", 1) != 1)
			return -1;
	}
	return 0;
}

int cgroup_attach(const struct cgroup *cg, pid_t pid)
{
	char v[32];
	size_t i, len;

	if (!cg->sys)
		return error_set("cgroup not open");
	len = (size_t)snprintf(v, sizeof(v), "%ld", (long)pid);
	for (i = 0; i < CGROUP_MAX_HIER; i++) {
		if (cg->procs_fd[i] < 0 || (cg->skip & (1u << i)))
			continue;
		if (write(cg->procs_fd[i], v, len) != (ssize_t)len)
			return error_setsys("cannot move %ld into cgroup '%s'",
					    (long)pid, cg->name);
	}
	return 0;
}

/* The hierarchy whose membership we trust for listing and waiting: the
 * one that kills or freezes, else the first. */
static int member_hier(const struct cgroup *cg)
{
	int h = hier_of(cg, CGROUP_KILL);

	if (h < 0)
		h = hier_of(cg, CGROUP_FREEZE);
	return h < 0 ? 0 : h;
}

static int pids_in(const struct cgroup *cg, int h, pid_t **pids, size_t *n)
{
	struct buf b = BUF_INIT;
	size_t alloc = 0;
	const char *p;
	int r;

	*pids = NULL;
	*n = 0;
	r = read_at(cg->dir_fd[h], "cgroup.procs", &b, PROCS_MAX);
	if (r < 0) {
		buf_release(&b);
		return r;
	}
	for (p = b.data; p && *p;) {
		char *end;
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		if (*n == alloc) {
			alloc = alloc ? alloc * 2 : 16;
			*pids = xrealloc(*pids, alloc * sizeof(**pids));
		}
		(*pids)[(*n)++] = (pid_t)v;
		p = end;
		while (*p == '\n')
			p++;
	}
	buf_release(&b);
	return 0;
}

int cgroup_pids(const struct cgroup *cg, pid_t **pids, size_t *n)
{
	if (!cg->sys)
		return error_set("cgroup not open");
	return pids_in(cg, member_hier(cg), pids, n);
}

/* 1 if empty, 0 if not, <0 on error. */
static int is_empty(const struct cgroup *cg)
{
	int h = member_hier(cg);
	uint64_t populated;
	pid_t *pids;
	size_t n;
	int r;

	if (cg->sys->hier[h].version == 2) {
		r = read_key_at(cg->dir_fd[h], "cgroup.events", "populated",
				&populated);
		if (r == 0)
			return populated == 0;
	}
	r = pids_in(cg, h, &pids, &n);
	free(pids);
	return r < 0 ? r : n == 0;
}

int cgroup_wait_empty(const struct cgroup *cg, long timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	long pause = 1;
	int r;

	if (!cg->sys)
		return error_set("cgroup not open");
	for (;;) {
		r = is_empty(cg);
		if (r < 0)
			return r;
		if (r)
			return 0;
		if (now_ms() >= deadline) {
			error_set("cgroup '%s' still has processes", cg->name);
			return ERR_BUSY;
		}
		sleep_ms(pause);
		if (pause < 50)
			pause *= 2;
	}
}

static void kill_listed(const struct cgroup *cg, int h)
{
	pid_t *pids;
	size_t n, i;

	if (pids_in(cg, h, &pids, &n) < 0)
		return;
	for (i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
	free(pids);
}

/* Freeze (v1 freezer.state or v2 cgroup.freeze); 1 once frozen. */
static int set_frozen(const struct cgroup *cg, int h, int on)
{
	int dfd = cg->dir_fd[h];

	if (cg->sys->hier[h].version == 2)
		return write_at(dfd, "cgroup.freeze", on ? "1" : "0");
	return write_at(dfd, "freezer.state", on ? "FROZEN" : "THAWED");
}

static int is_frozen(const struct cgroup *cg, int h)
{
	struct buf b = BUF_INIT;
	uint64_t v = 0;
	int r, dfd = cg->dir_fd[h];

	if (cg->sys->hier[h].version == 2)
		return read_key_at(dfd, "cgroup.events", "frozen", &v) == 0 &&
		       v == 1;
	r = read_at(dfd, "freezer.state", &b, SMALL_MAX);
	r = r == 0 && !strncmp(b.data, "FROZEN", 6);
	buf_release(&b);
	return r;
}

int cgroup_kill(const struct cgroup *cg, long timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int h, r;

	if (!cg->sys)
		return error_set("cgroup not open");
	h = hier_of(cg, CGROUP_KILL);
	if (h >= 0) {
		r = write_at(cg->dir_fd[h], "cgroup.kill", "1");
		if (r < 0)
			return r;
		return cgroup_wait_empty(cg, timeout_ms);
	}
	h = hier_of(cg, CGROUP_FREEZE);
	/* Frozen, nobody can fork: the list is complete when we read it,
	 * and a SIGKILLed task dies as soon as it is thawed. */
	for (;;) {
		int64_t left;

		r = is_empty(cg);
		if (r < 0)
			return r;
		if (r)
			return 0;
		if (h >= 0) {
			int64_t until = now_ms() + FREEZE_WAIT_MS;
			long pause = 1;

			if (set_frozen(cg, h, 1) < 0)
				return -1;
			/* A task stuck in the kernel can hold FREEZING; we
			 * kill what we see then, and go round again. */
			while (!is_frozen(cg, h) && now_ms() < until &&
			       now_ms() < deadline) {
				sleep_ms(pause);
				if (pause < 20)
					pause *= 2;
			}
		}
		kill_listed(cg, h >= 0 ? h : member_hier(cg));
		if (h >= 0 && set_frozen(cg, h, 0) < 0)
			return -1;
		left = deadline - now_ms();
		if (left <= 0)
			return cgroup_wait_empty(cg, 0);
		r = cgroup_wait_empty(cg, left < 100 ? left : 100);
		if (r != ERR_BUSY)
			return r;
	}
}

int cgroup_remove(struct cgroup *cg)
{
	const struct cgroup_sys *sys = cg->sys;
	char name[CGROUP_NAME_MAX + 1];
	size_t i;
	int r, ret = 0;

	if (!sys)
		return error_set("cgroup not open");
	r = is_empty(cg);
	if (r < 0)
		return r;
	if (!r) {
		error_set("cgroup '%s' still has processes", cg->name);
		return ERR_BUSY;
	}
	memcpy(name, cg->name, sizeof(name));
	cgroup_close(cg);
	for (i = 0; i < sys->n_hier; i++) {
		if (unlinkat(sys->hier[i].dir_fd, name, AT_REMOVEDIR) < 0 &&
		    errno != ENOENT && !ret) {
			ret = errno == EBUSY ? ERR_BUSY : -1;
			error_setsys("cannot remove cgroup '%s'", name);
		}
	}
	return ret;
}

int cgroup_usage(const struct cgroup *cg, struct cgroup_usage *u)
{
	int h, r;
	pid_t *pids;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (!cg->sys)
		return error_set("cgroup not open");
	h = hier_of(cg, CGROUP_MEMORY);
	if (h >= 0) {
		int v2 = cg->sys->hier[h].version == 2;

		r = read_u64_at(cg->dir_fd[h], v2 ? "memory.current" :
				"memory.usage_in_bytes", &u->memory);
		if (r < 0)
			return r;
		r = read_key_at(cg->dir_fd[h], v2 ? "memory.events" :
				"memory.oom_control", "oom_kill", &u->oom_kills);
		if (r < 0 && r != ERR_NOTFOUND)
			return r;
		u->have |= CGROUP_MEMORY;
	}
	h = hier_of(cg, CGROUP_CPUSTAT);
	if (h >= 0) {
		if (cg->sys->hier[h].version == 2) {
			r = read_key_at(cg->dir_fd[h], "cpu.stat", "usage_usec",
					&u->cpu_usec);
		} else {
			r = read_u64_at(cg->dir_fd[h], "cpuacct.usage",
					&u->cpu_usec);
			u->cpu_usec /= 1000;	/* ns */
		}
		if (r < 0)
			return r;
		u->have |= CGROUP_CPUSTAT;
	}
	/* "max N": forks refused at pids.max (v1 and v2 alike) */
	h = hier_of(cg, CGROUP_PIDS);
	if (h >= 0 && read_key_at(cg->dir_fd[h], "pids.events", "max",
				  &u->pids_refused) == 0)
		u->have |= CGROUP_PIDS;
	r = pids_in(cg, member_hier(cg), &pids, &n);
	if (r < 0)
		return r;
	free(pids);
	u->processes = n;
	return 0;
}

int cgroup_pid_usage(pid_t pid, uint64_t *rss, uint64_t *cpu_usec)
{
	struct buf b = BUF_INIT;
	char path[64];
	unsigned long long size, res, ut, st;
	const char *p;
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	int i, ret = -1;

	snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pid);
	if (read_file(&b, path, 4096) < 0)
		goto out;
	if (sscanf(b.data, "%llu %llu", &size, &res) != 2) {
		error_set("bad '%s'", path);
		goto out;
	}
	*rss = (uint64_t)res * (uint64_t)page;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	buf_reset(&b);
	if (read_file(&b, path, 4096) < 0)
		goto out;
	/* the name may hold blanks and ')': fields start after the last ')' */
	p = strrchr(b.data, ')');
	/* state is field 3, utime 14, stime 15 */
	for (i = 0; p && i < 12; i++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %llu %llu", &ut, &st) != 2 || ticks <= 0) {
		error_set("bad '%s'", path);
		goto out;
	}
	*cpu_usec = (uint64_t)(ut + st) * 1000000ULL / (uint64_t)ticks;
	ret = 0;
out:
	buf_release(&b);
	return ret;
}
