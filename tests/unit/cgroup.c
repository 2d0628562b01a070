/*
 * cgroup: layout detection on sample files of every layout, then, as
 * root, the real thing on this host: limits written, a fork bomb capped, a
 * memory hog killed alone, setsid escapees and a fork storm killed by
 * cgroup.kill and by the v1 freezer loop.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

/* ---- samples ---- */

static const char debian12_mountinfo[] =
	"22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
	"25 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
	"28 25 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
static const char debian12_self[] = "0::/system.slice/berth.service\n";
static const char debian12_ctrl[] = "cpuset cpu io memory hugetlb pids rdma misc\n";

static const char hybrid_mountinfo[] =
	"30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
	"33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
	"34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
	"38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
	"39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	"40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
static const char hybrid_self[] =
	"9:name=systemd:/\n8:pids:/\n6:freezer:/\n"
	"4:memory:/process_api/7d03\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";

/* Debian 10 under systemd: cpu and cpuacct mounted together. */
static const char debian10_mountinfo[] =
	"25 24 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755\n"
	"26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate\n"
	"27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd\n"
	"31 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct\n"
	"32 25 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory\n"
	"33 25 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids\n"
	"35 25 0:33 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,freezer\n";
static const char debian10_self[] =
	"12:pids:/system.slice/berth.service\n"
	"9:freezer:/\n"
	"8:memory:/system.slice/berth.service\n"
	"3:cpu,cpuacct:/system.slice/berth.service\n"
	"1:name=systemd:/system.slice/berth.service\n"
	"0::/system.slice/berth.service\n";

static int idx(const struct cgroup_sys *s, unsigned feat)
{
	int i;

	for (i = 0; i < CGROUP_NFEAT; i++)
		if (feat == 1u << i)
			return s->by_feat[i];
	return -2;
}

static const char *dir_of(const struct cgroup_sys *s, unsigned feat)
{
	int i = idx(s, feat);

	return i < 0 ? "" : s->hier[i].dir;
}

static void test_detect(void)
{
	struct cgroup_sys s;
	char *mi;

	ok(cgroup_sys_detect(&s, "berth", debian12_mountinfo, debian12_self,
			     debian12_ctrl, 0) == 0 && s.layout == CGROUP_V2 &&
	   s.n_hier == 1, "debian 12: pure v2");
	ok(!strcmp(s.hier[0].dir,
		   "/sys/fs/cgroup/system.slice/berth.service/berth"),
	   "debian 12: under our own cgroup (%s)", s.hier[0].dir);
	ok(s.feat == (CGROUP_MEMORY | CGROUP_PIDS | CGROUP_CPU |
		      CGROUP_CPUSTAT | CGROUP_FREEZE | CGROUP_KILL) &&
	   idx(&s, CGROUP_MEMORY) == 0 && idx(&s, CGROUP_KILL) == 0,
	   "debian 12: everything from v2");
	cgroup_sys_release(&s);

	ok(cgroup_sys_detect(&s, "berth", debian12_mountinfo, debian12_self,
			     "cpu io\n", 0) == 0 && s.layout == CGROUP_V2 &&
	   !(s.feat & CGROUP_MEMORY) && !(s.feat & CGROUP_PIDS) &&
	   (s.feat & CGROUP_CPU), "v2 without delegated memory, pids");
	cgroup_sys_release(&s);

	ok(cgroup_sys_detect(&s, "berth", debian12_mountinfo, "0::/\n",
			     debian12_ctrl, 0) == 0 &&
	   !strcmp(s.hier[0].dir, "/sys/fs/cgroup/berth"),
	   "v2 at the root (a container's namespace)");
	cgroup_sys_release(&s);

	ok(cgroup_sys_detect(&s, "berth", hybrid_mountinfo, hybrid_self, "",
			     0) == 0 && s.layout == CGROUP_HYBRID &&
	   s.n_hier == 6, "this host's layout: hybrid, 6 hierarchies (%zu)",
	   s.n_hier);
	ok(!strcmp(dir_of(&s, CGROUP_MEMORY),
		   "/sys/fs/cgroup/memory/process_api/7d03/berth") &&
	   !strcmp(dir_of(&s, CGROUP_PIDS), "/sys/fs/cgroup/pids/berth") &&
	   !strcmp(dir_of(&s, CGROUP_CPU), "/sys/fs/cgroup/cpu/berth"),
	   "hybrid: limits from v1, each under our own cgroup");
	ok(!strcmp(dir_of(&s, CGROUP_KILL), "/sys/fs/cgroup/unified/berth") &&
	   !strcmp(dir_of(&s, CGROUP_CPUSTAT), "/sys/fs/cgroup/unified/berth") &&
	   !strcmp(dir_of(&s, CGROUP_FREEZE), "/sys/fs/cgroup/unified/berth"),
	   "hybrid: kill, freeze and cpu use from v2");
	cgroup_sys_release(&s);

	ok(cgroup_sys_detect(&s, "berth", hybrid_mountinfo, hybrid_self, "",
			     CGROUP_INIT_NO_V2) == 0 && s.layout == CGROUP_V1 &&
	   !(s.feat & CGROUP_KILL) &&
	   !strcmp(dir_of(&s, CGROUP_FREEZE), "/sys/fs/cgroup/freezer/berth") &&
	   !strcmp(dir_of(&s, CGROUP_CPUSTAT), "/sys/fs/cgroup/cpuacct/berth"),
	   "v1 only: freezer and cpuacct");
	cgroup_sys_release(&s);

	ok(cgroup_sys_detect(&s, "berth", debian10_mountinfo, debian10_self,
			     "", 0) == 0 && s.layout == CGROUP_HYBRID &&
	   (s.hier[idx(&s, CGROUP_CPU)].feat & CGROUP_CPUSTAT) &&
	   !strcmp(dir_of(&s, CGROUP_CPU),
		   "/sys/fs/cgroup/cpu,cpuacct/system.slice/berth.service/berth") &&
	   !strcmp(dir_of(&s, CGROUP_FREEZE),
		   "/sys/fs/cgroup/unified/system.slice/berth.service/berth"),
	   "debian 10: combined cpu,cpuacct mount (%s)",
	   dir_of(&s, CGROUP_CPU));
	cgroup_sys_release(&s);

	/* A bind-mounted subtree (docker without a cgroup namespace). */
	mi = "40 30 0:37 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
	ok(cgroup_sys_detect(&s, "berth", mi, "0::/docker/abc/sub\n",
			     "memory pids cpu", 0) == 0 &&
	   s.n_hier == 1 && !strcmp(s.hier[0].dir, "/sys/fs/cgroup/sub/berth"),
	   "mount root below the hierarchy's root");
	cgroup_sys_release(&s);
	ok(cgroup_sys_detect(&s, "berth", mi, "0::/elsewhere\n", "memory", 0) ==
	   0 && s.layout == CGROUP_NONE, "our cgroup not visible: none");
	cgroup_sys_release(&s);

	mi = "40 30 0:37 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n";
	ok(cgroup_sys_detect(&s, "berth", mi, "0::/\n", "memory", 0) == 0 &&
	   !strcmp(s.hier[0].dir, "/mnt/my cgroups/berth"),
	   "escaped blanks in the mount point");
	cgroup_sys_release(&s);

	ok(cgroup_sys_detect(&s, "berth", "22 1 259:1 / / rw - ext4 /dev/x rw\n",
			     "0::/\n", NULL, 0) == 0 && s.layout == CGROUP_NONE,
	   "nothing mounted: none");
	cgroup_sys_release(&s);
	ok(cgroup_sys_detect(&s, "../x", debian12_mountinfo, debian12_self,
			     NULL, 0) < 0, "bad parent refused");
	cgroup_sys_release(&s);
}

static void test_parse(void)
{
	uint64_t v = 99;
	long m = 0;
	char out[64];

	ok(cgroup_parse_key("low 0\nhigh 0\nmax 12\noom 2\noom_kill 3\noom_group_kill 0\n",
			    "oom_kill", &v) == 0 && v == 3,
	   "v2 memory.events oom_kill");
	ok(cgroup_parse_key("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n",
			    "oom_kill", &v) == 0 && v == 5,
	   "v1 memory.oom_control: oom_kill, not oom_kill_disable");
	ok(cgroup_parse_key("usage_usec 530828000\nuser_usec 1\n", "usage_usec",
			    &v) == 0 && v == 530828000ULL, "cpu.stat usage_usec");
	ok(cgroup_parse_key("populated 0\nfrozen 1\n", "frozen", &v) == 0 &&
	   v == 1, "cgroup.events frozen");
	ok(cgroup_parse_key("a 1\n", "oom_kill", &v) == ERR_NOTFOUND,
	   "missing key");
	ok(cgroup_parse_key("oom_kill x\n", "oom_kill", &v) == -1,
	   "bad value");

	cgroup_format_cpu_max(out, sizeof(out), 500);
	ok(!strcmp(out, "50000 100000"), "cpu.max for half a core");
	cgroup_format_cpu_max(out, sizeof(out), 2000);
	ok(!strcmp(out, "200000 100000"), "cpu.max for two cores");
	cgroup_format_cpu_max(out, sizeof(out), 0);
	ok(!strcmp(out, "max 100000"), "cpu.max without a limit");

	ok(cgroup_parse_size("256M", &v) == 0 && v == 256ULL << 20, "256M");
	ok(cgroup_parse_size("1G", &v) == 0 && v == 1ULL << 30, "1G");
	ok(cgroup_parse_size("2048k", &v) == 0 && v == 2ULL << 20, "2048k");
	ok(cgroup_parse_size("512MB", &v) == 0 && v == 512ULL << 20, "512MB");
	ok(cgroup_parse_size("1048576", &v) == 0 && v == 1048576, "bytes");
	ok(cgroup_parse_size("100", &v) == ERR_INVALID &&
	   strstr(error_last(), "below 1M"), "too small: %s", error_last());
	ok(cgroup_parse_size("1.5G", &v) == ERR_INVALID &&
	   cgroup_parse_size("-1M", &v) == ERR_INVALID &&
	   cgroup_parse_size("", &v) == ERR_INVALID &&
	   cgroup_parse_size("99999999999999999999", &v) == ERR_INVALID &&
	   cgroup_parse_size("20000000000T", &v) == ERR_INVALID &&
	   cgroup_parse_size("12Q", &v) == ERR_INVALID, "bad sizes refused");

	ok(cgroup_parse_cpu("0.5", &m) == 0 && m == 500, "cpu 0.5");
	ok(cgroup_parse_cpu("2", &m) == 0 && m == 2000, "cpu 2");
	ok(cgroup_parse_cpu("1.25", &m) == 0 && m == 1250, "cpu 1.25");
	ok(cgroup_parse_cpu("0.01", &m) == 0 && m == 10, "cpu 0.01");
	ok(cgroup_parse_cpu("0", &m) == ERR_INVALID &&
	   cgroup_parse_cpu("0.001", &m) == ERR_INVALID &&
	   cgroup_parse_cpu("0.0005", &m) == ERR_INVALID &&
	   cgroup_parse_cpu("1.", &m) == ERR_INVALID &&
	   cgroup_parse_cpu(".5", &m) == ERR_INVALID &&
	   cgroup_parse_cpu("5000", &m) == ERR_INVALID &&
	   cgroup_parse_cpu("1e3", &m) == ERR_INVALID, "bad cpu refused");

	ok(cgroup_name_valid("app-myapp") && cgroup_name_valid("build-x.1_2"),
	   "names");
	ok(!cgroup_name_valid("") && !cgroup_name_valid("../x") &&
	   !cgroup_name_valid("a/b") && !cgroup_name_valid("-x") &&
	   !cgroup_name_valid(".x") && !cgroup_name_valid("A") &&
	   !cgroup_name_valid("a..b"), "bad names refused");
}

/* ---- the real thing ---- */

static int read_dir_file(const char *dir, const char *name, char *out,
			 size_t len)
{
	struct buf b = BUF_INIT;
	char *path = xasprintf("%s/%s", dir, name);
	int r = read_file(&b, path, 65536);

	out[0] = '\0';
	if (r == 0)
		snprintf(out, len, "%.*s", (int)strcspn(b.data, "\n"), b.data);
	buf_release(&b);
	free(path);
	return r;
}

static char *group_dir(const struct cgroup_sys *s, unsigned feat,
		       const char *name)
{
	return xasprintf("%s/%s", dir_of(s, feat), name);
}

static void reap_all(void)
{
	int st;

	while (waitpid(-1, &st, WNOHANG | __WALL) > 0)
		;
}

static pid_t start_in(const struct cgroup *cg, void (*fn)(int), int arg)
{
	pid_t pid = fork();

	if (pid == 0) {
		/* whatever happens to the test, nothing it starts outlives
		 * it by more than a minute */
		alarm(60);
		if (cgroup_enter(cg) < 0)
			_exit(120);
		fn(arg);
		_exit(0);
	}
	return pid;
}

static void do_bomb(int fd)
{
	char msg[64];
	int n = 0, e, len;

	for (;;) {
		pid_t p = fork();

		if (p == 0) {
			alarm(60);
			pause();
			_exit(0);
		}
		if (p < 0)
			break;
		n++;
	}
	e = errno;
	len = snprintf(msg, sizeof(msg), "%d %d", n, e);
	if (write(fd, msg, (size_t)len) < 0)
		_exit(1);
	for (;;)
		pause();
}

static void do_hog(int fd)
{
	int i;

	(void)fd;
	for (i = 0; i < 512; i++) {
		char *p = malloc(1 << 20);

		if (!p)
			_exit(3);
		memset(p, i, 1 << 20);
	}
	_exit(0);
}

static void do_sleep(int fd)
{
	char c = 'r';

	if (fd >= 0 && write(fd, &c, 1) < 0)
		_exit(1);
	for (;;)
		pause();
}

/* setsid in a grandchild, then tell the test its pid */
static void do_escape(int fd)
{
	pid_t p = fork();

	if (p == 0) {
		pid_t q;

		setsid();
		q = fork();
		if (q == 0) {
			pid_t me = getpid();

			alarm(60);
			if (write(fd, &me, sizeof(me)) < 0)
				_exit(1);
			for (;;)
				pause();
		}
		_exit(0);
	}
	waitpid(p, NULL, 0);
	_exit(0);
}

/* every process forks and setsids as fast as it can */
static void do_storm(int fd)
{
	char c = 's';

	if (write(fd, &c, 1) < 0)
		_exit(1);
	for (;;) {
		pid_t p = fork();

		if (p == 0) {
			alarm(60);
			setsid();
		}
	}
}

/* Burn 150 ms of CPU time (not of wall time: a busy machine would give
 * less), within 60 s. */
static void do_burn(int fd)
{
	int64_t until = now_ms() + 60000;
	volatile unsigned long x = 0;
	struct timespec ts;

	(void)fd;
	do {
		for (x = 0; x < 100000; x++)
			;
		if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0)
			_exit(1);
	} while ((ts.tv_sec > 0 ? 1000 : ts.tv_nsec / 1000000) < 150 &&
		 now_ms() < until);
	_exit(0);
}

static void test_kills(const struct cgroup_sys *s, const char *label)
{
	struct cgroup cg;
	struct cgroup_limits lim = { 0, 0, 50 };
	int pfd[2], st = 0, r;
	pid_t pid, esc = 0, got;
	pid_t *pids = NULL;
	size_t n = 0;
	char c;

	ok(cgroup_open(&cg, s, "app-escape", 1) == 0, "%s: open", label);
	ok(pipe(pfd) == 0, "pipe");
	pid = start_in(&cg, do_escape, pfd[1]);
	ok(read(pfd[0], &esc, sizeof(esc)) == sizeof(esc) && esc > 0,
	   "%s: a setsid grandchild %ld runs", label, (long)esc);
	waitpid(pid, NULL, 0);
	ok(kill(esc, 0) == 0 && getsid(esc) != getsid(0),
	   "%s: it outlived its parent in a session of its own", label);
	ok(cgroup_pids(&cg, &pids, &n) == 0 && n == 1 && pids[0] == esc,
	   "%s: the group lists it", label);
	FREE_AND_NULL(pids);
	r = cgroup_kill(&cg, 10000);
	ok(r == 0, "%s: killed%s%s", label, r ? ": " : "", r ? error_last() : "");
	got = waitpid(esc, &st, 0);
	ok(got == esc && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	   "%s: the escapee died of SIGKILL", label);

	/* a storm of forking, setsid-ing processes under a process cap */
	r = cgroup_set_limits(&cg, &lim);
	ok(r == 0, "%s: cap 50 processes%s%s", label, r ? ": " : "",
	   r ? error_last() : "");
	pid = start_in(&cg, do_storm, pfd[1]);
	ok(read(pfd[0], &c, 1) == 1, "%s: storm started", label);
	/* wait until it fills its cap, on the condition itself */
	{
		int64_t until = now_ms() + 10000;

		do {
			free(pids);
			pids = NULL;
			cgroup_pids(&cg, &pids, &n);
			reap_all();
		} while (n < 45 && now_ms() < until);
		free(pids);
		pids = NULL;
	}
	ok(n >= 45, "%s: storm reached %zu processes", label, n);
	r = cgroup_kill(&cg, 10000);
	ok(r == 0, "%s: storm killed%s%s", label, r ? ": " : "",
	   r ? error_last() : "");
	reap_all();
	ok(cgroup_pids(&cg, &pids, &n) == 0 && n == 0, "%s: nothing left",
	   label);
	free(pids);
	(void)pid;
	r = cgroup_remove(&cg);
	ok(r == 0, "%s: removed%s%s", label, r ? ": " : "", r ? error_last() : "");
	close(pfd[0]);
	close(pfd[1]);
}

static void test_real(void)
{
	struct cgroup_sys s, s1;
	struct cgroup a, hog, b, burn;
	struct cgroup_limits lim = { 64ULL << 20, 500, 20 };
	struct cgroup_usage u;
	char parent[64], parent1[64], v[128], *dir, msg[64];
	int pfd[2], st, r, n = -1, e = 0;
	pid_t pid, sleeper, sib;
	uint64_t rss = 0, cpu = 0;
	size_t i;
	ssize_t k;

	snprintf(parent, sizeof(parent), "berth-test-%ld", (long)getpid());
	snprintf(parent1, sizeof(parent1), "berth-test-%ld-v1",
		 (long)getpid());
	r = cgroup_sys_init(&s, parent, 0);
	ok(r == 0 && s.layout != CGROUP_NONE, "init: %s (%s)",
	   cgroup_layout_name(s.layout), r ? error_last() : "ok");
	if (r < 0 || s.layout == CGROUP_NONE)
		return;
	printf("# layout: %s, features %#x\n", cgroup_layout_name(s.layout),
	       s.feat);
	for (i = 0; i < s.n_hier; i++)
		printf("#   v%d %s (%#x)\n", s.hier[i].version, s.hier[i].dir,
		       s.hier[i].feat);
	ok((s.feat & (CGROUP_MEMORY | CGROUP_PIDS | CGROUP_CPU)) ==
	   (CGROUP_MEMORY | CGROUP_PIDS | CGROUP_CPU), "memory, pids, cpu here");

	/* a build's session finds the same folders from the engine's list */
	{
		struct cgroup_sys j;
		struct buf list = BUF_INIT;
		int same;

		for (i = 0; i < s.n_hier; i++)
			buf_addf(&list, "%s\n", s.hier[i].dir);
		r = cgroup_sys_join(&j, list.data);
		same = r == 0 && j.layout == s.layout && j.feat == s.feat &&
		       j.n_hier == s.n_hier;
		for (i = 0; same && i < s.n_hier; i++)
			same = !strcmp(j.hier[i].dir, s.hier[i].dir) &&
			       j.hier[i].version == s.hier[i].version &&
			       j.hier[i].dir_fd >= 0;
		ok(same, "join: the engine's folders, layout and features "
		   "(%s)", r ? error_last() : cgroup_layout_name(j.layout));
		cgroup_sys_release(&j);
		ok(cgroup_sys_join(&j, "") == 0 && j.layout == CGROUP_NONE,
		   "join: nothing listed, no cgroups");
		cgroup_sys_release(&j);
		ok(cgroup_sys_join(&j, "relative/berth\n") < 0,
		   "join: a relative folder is refused");
		cgroup_sys_release(&j);
		buf_release(&list);
	}

	/* limits land in the files */
	ok(cgroup_open(&a, &s, "app-a", 0) == ERR_NOTFOUND,
	   "open without create: not found");
	ok(cgroup_open(&a, &s, "app-a", 1) == 0, "create app-a");
	ok(cgroup_open(&b, &s, "../x", 1) == ERR_INVALID, "bad name refused");
	r = cgroup_set_limits(&a, &lim);
	ok(r == 0, "set limits%s%s", r ? ": " : "", r ? error_last() : "");
	dir = group_dir(&s, CGROUP_PIDS, "app-a");
	ok(read_dir_file(dir, "pids.max", v, sizeof(v)) == 0 &&
	   !strcmp(v, "20"), "pids.max 20 (%s)", v);
	free(dir);
	dir = group_dir(&s, CGROUP_MEMORY, "app-a");
	if (s.hier[idx(&s, CGROUP_MEMORY)].version == 1) {
		ok(read_dir_file(dir, "memory.limit_in_bytes", v, sizeof(v)) ==
		   0 && !strcmp(v, "67108864"), "memory limit 64M (%s)", v);
		ok(read_dir_file(dir, "memory.memsw.limit_in_bytes", v,
				 sizeof(v)) != 0 || !strcmp(v, "67108864"),
		   "swap counted in it (%s)", v);
	} else {
		ok(read_dir_file(dir, "memory.max", v, sizeof(v)) == 0 &&
		   !strcmp(v, "67108864"), "memory.max 64M (%s)", v);
		ok(1, "v2");
	}
	free(dir);
	dir = group_dir(&s, CGROUP_CPU, "app-a");
	if (s.hier[idx(&s, CGROUP_CPU)].version == 1)
		ok(read_dir_file(dir, "cpu.cfs_quota_us", v, sizeof(v)) == 0 &&
		   !strcmp(v, "50000"), "cpu quota half a core (%s)", v);
	else
		ok(read_dir_file(dir, "cpu.max", v, sizeof(v)) == 0 &&
		   !strcmp(v, "50000 100000"), "cpu.max (%s)", v);
	free(dir);
	/* raise past the old swap limit, then lift everything */
	lim.memory = 128ULL << 20;
	r = cgroup_set_limits(&a, &lim);
	ok(r == 0, "raise memory past the swap limit%s%s", r ? ": " : "",
	   r ? error_last() : "");
	lim.memory = 0;
	lim.cpu_millis = 0;
	lim.processes = 0;
	r = cgroup_set_limits(&a, &lim);
	ok(r == 0, "lift every limit%s%s", r ? ": " : "", r ? error_last() : "");
	{
		int hc = idx(&s, CGROUP_CPU);
		int alone = hc >= 0 && s.hier[hc].version == 1 &&
			idx(&s, CGROUP_CPUSTAT) != hc;

		ok(!!(a.skip & (1u << (hc < 0 ? 0 : hc))) == alone,
		   "no cpu limit: %s", alone ?
		   "the v1 cpu group is not joined (one process's weight)" :
		   "the cpu group is the one counting");
	}
	dir = group_dir(&s, CGROUP_PIDS, "app-a");
	ok(read_dir_file(dir, "pids.max", v, sizeof(v)) == 0 &&
	   !strcmp(v, "max"), "pids.max back to max");
	free(dir);
	lim.processes = 20;

	/* fork bomb */
	ok(cgroup_set_limits(&a, &lim) == 0, "cap 20 processes");
	ok(pipe(pfd) == 0, "pipe");
	pid = start_in(&a, do_bomb, pfd[1]);
	k = read(pfd[0], msg, sizeof(msg) - 1);
	if (k > 0) {
		msg[k] = '\0';
		sscanf(msg, "%d %d", &n, &e);
	}
	ok(n >= 10 && n < 20 && e == EAGAIN,
	   "fork bomb stopped at %d children (EAGAIN)", n);
	ok(cgroup_usage(&a, &u) == 0 && u.processes == (size_t)n + 1,
	   "usage counts %zu processes", u.processes);
	ok(cgroup_remove(&a) == ERR_BUSY, "remove refused while in use");
	r = cgroup_kill(&a, 10000);
	ok(r == 0, "bomb killed%s%s", r ? ": " : "", r ? error_last() : "");
	waitpid(pid, &st, 0);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "bomb died of SIGKILL");
	reap_all();
	close(pfd[0]);
	close(pfd[1]);

	/* memory hog: killed alone, its sibling and another app live on */
	ok(cgroup_open(&hog, &s, "app-hog", 1) == 0 &&
	   cgroup_open(&b, &s, "app-b", 1) == 0, "create app-hog, app-b");
	lim.memory = 32ULL << 20;
	lim.processes = 0;
	r = cgroup_set_limits(&hog, &lim);
	ok(r == 0, "hog capped at 32M%s%s", r ? ": " : "", r ? error_last() : "");
	ok(pipe(pfd) == 0, "pipe");
	sleeper = start_in(&b, do_sleep, pfd[1]);
	sib = start_in(&hog, do_sleep, pfd[1]);
	ok(read(pfd[0], msg, 1) == 1 && read(pfd[0], msg, 1) == 1,
	   "a sleeper in each group");
	pid = start_in(&hog, do_hog, -1);
	waitpid(pid, &st, 0);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	   "hog killed by the OOM killer (%s)",
	   WIFEXITED(st) ? "it exited" : "signal");
	ok(cgroup_usage(&hog, &u) == 0 && u.oom_kills >= 1 &&
	   (u.have & CGROUP_MEMORY),
	   "the OOM kill is noticed (oom_kill %llu)",
	   (unsigned long long)u.oom_kills);
	ok(waitpid(sib, &st, WNOHANG) == 0 && kill(sib, 0) == 0,
	   "the hog's sibling lives on");
	ok(waitpid(sleeper, &st, WNOHANG) == 0 && kill(sleeper, 0) == 0,
	   "the other app lives on");
	ok(cgroup_usage(&b, &u) == 0 && u.oom_kills == 0 && u.processes == 1,
	   "the other app saw no OOM kill");
	ok(cgroup_kill(&hog, 10000) == 0 && cgroup_kill(&b, 10000) == 0,
	   "both killed");
	reap_all();
	close(pfd[0]);
	close(pfd[1]);

	/* use */
	ok(cgroup_open(&burn, &s, "app-burn", 1) == 0, "create app-burn");
	pid = start_in(&burn, do_burn, -1);
	waitpid(pid, &st, 0);
	ok(cgroup_usage(&burn, &u) == 0 && (u.have & CGROUP_CPUSTAT) &&
	   u.cpu_usec >= 100000, "cpu use counted (%llu us)",
	   (unsigned long long)u.cpu_usec);
	ok(cgroup_pid_usage(getpid(), &rss, &cpu) == 0 && rss > 0,
	   "a process's memory (%llu kB) and cpu (%llu us)",
	   (unsigned long long)(rss >> 10), (unsigned long long)cpu);
	ok(cgroup_pid_usage(999999999, &rss, &cpu) < 0, "no such process");

	test_kills(&s, s.feat & CGROUP_KILL ? "cgroup.kill" : "freeze");

	/* the v1 freezer path, on the same host */
	r = cgroup_sys_init(&s1, parent1, CGROUP_INIT_NO_V2);
	if (r == 0 && (s1.feat & CGROUP_FREEZE) && !(s1.feat & CGROUP_KILL) &&
	    s.layout != CGROUP_V2) {
		ok(s1.layout == CGROUP_V1, "v1 only: %s",
		   cgroup_layout_name(s1.layout));
		test_kills(&s1, "v1 freezer");
	} else {
		skip("no v1 freezer on this host");
	}

	r = cgroup_remove(&a) | cgroup_remove(&hog) | cgroup_remove(&b) |
	    cgroup_remove(&burn);
	ok(r == 0, "groups removed%s%s", r ? ": " : "", r ? error_last() : "");
	ok(cgroup_remove(&a) == -1, "a closed group is refused");
	dir = group_dir(&s, CGROUP_PIDS, "app-a");
	ok(access(dir, F_OK) < 0 && errno == ENOENT, "its folder is gone");
	free(dir);
	for (i = 0; i < s.n_hier; i++)
		rmdir(s.hier[i].dir);
	for (i = 0; i < s1.n_hier; i++)
		rmdir(s1.hier[i].dir);
	cgroup_sys_release(&s);
	cgroup_sys_release(&s1);
}

int main(void)
{
	struct cgroup_sys s;

	test_detect();
	test_parse();
	if (geteuid() != 0) {
		ok(cgroup_sys_init(&s, "berth", 0) == 0 &&
		   s.layout == CGROUP_NONE, "not root: no cgroups");
		skip("not root: no real cgroups");
		return tap_done();
	}
	/* an unprivileged process gets no cgroups, and no error */
	{
		pid_t pid = fork();
		int st = -1;

		if (pid == 0) {
			if (setgroups(0, NULL) < 0 ||
			    setresgid(65534, 65534, 65534) < 0 ||
			    setresuid(65534, 65534, 65534) < 0)
				_exit(2);
			_exit(cgroup_sys_init(&s, "berth", 0) == 0 &&
			      s.layout == CGROUP_NONE ? 0 : 1);
		}
		waitpid(pid, &st, 0);
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		   "as nobody: no cgroups, no error");
	}
	/* orphans of the escape tests come back to us to be reaped */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	test_real();
	return tap_done();
}
