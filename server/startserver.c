/*
 * startserver: see startserver.h.
 *
 * The control flow follows the original's on purpose (one blocking loop:
 * start a worker, wait for a child or a signal, act), so that its
 * observable behaviour (the order of its messages, when the status file
 * changes, which signal goes where) is the same.  Signals arrive through
 * a self-pipe, one byte per delivery, so that each HUP counts as the
 * original counts it.
 */
#include "startserver.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "envdir.h"
#include "listener.h"
#include "util.h"
#include "version.h"
#include "banned.h"

extern char **environ;

/* The Server::Starter release whose behaviour this one follows. */
#define SERVER_STARTER_VERSION "0.35"

/* Options, as Getopt::Long parses them for the original. */
enum opt_id {
	OPT_AUTO_RESTART_INTERVAL, OPT_BACKLOG, OPT_DAEMONIZE, OPT_DIR,
	OPT_ENABLE_AUTO_RESTART, OPT_ENVDIR, OPT_HELP, OPT_INTERVAL,
	OPT_KILL_OLD_DELAY, OPT_LOG_FILE, OPT_PATH, OPT_PID_FILE, OPT_PORT,
	OPT_RESTART, OPT_SIGNAL_ON_HUP, OPT_SIGNAL_ON_TERM, OPT_STATUS_FILE,
	OPT_STOP, OPT_SYSTEMD, OPT_VERSION, OPT__COUNT
};

enum opt_type { T_FLAG, T_STRING, T_INT, T_LIST };

/* Alphabetical, so an ambiguous prefix lists them as the original does. */
static const struct opt_desc {
	const char *name;
	enum opt_type type;
} opt_table[OPT__COUNT] = {
	[OPT_AUTO_RESTART_INTERVAL] = { "auto-restart-interval", T_INT },
	[OPT_BACKLOG] = { "backlog", T_INT },
	[OPT_DAEMONIZE] = { "daemonize", T_FLAG },
	[OPT_DIR] = { "dir", T_STRING },
	[OPT_ENABLE_AUTO_RESTART] = { "enable-auto-restart", T_FLAG },
	[OPT_ENVDIR] = { "envdir", T_STRING },
	[OPT_HELP] = { "help", T_FLAG },
	[OPT_INTERVAL] = { "interval", T_INT },
	[OPT_KILL_OLD_DELAY] = { "kill-old-delay", T_INT },
	[OPT_LOG_FILE] = { "log-file", T_STRING },
	[OPT_PATH] = { "path", T_LIST },
	[OPT_PID_FILE] = { "pid-file", T_STRING },
	[OPT_PORT] = { "port", T_LIST },
	[OPT_RESTART] = { "restart", T_FLAG },
	[OPT_SIGNAL_ON_HUP] = { "signal-on-hup", T_STRING },
	[OPT_SIGNAL_ON_TERM] = { "signal-on-term", T_STRING },
	[OPT_STATUS_FILE] = { "status-file", T_STRING },
	[OPT_STOP] = { "stop", T_FLAG },
	[OPT_SYSTEMD] = { "systemd", T_FLAG },
	[OPT_VERSION] = { "version", T_FLAG },
};

struct opts {
	int set[OPT__COUNT];		/* given on the command line */
	const char *str[OPT__COUNT];	/* T_STRING values (borrowed) */
	long num[OPT__COUNT];		/* T_INT values */
	struct strv port, path;		/* T_LIST values */
	struct strv cmd;		/* -- COMMAND ARGS */
};

struct worker {
	pid_t pid;
	long gen;
};

struct server {
	const struct opts *o;
	struct listener ls[LISTENER_MAX];
	size_t nls;
	struct strv env;		/* what the next worker gets */
	long interval;
	int backlog;
	int sig_hup, sig_term;
	char *sig_hup_name, *sig_term_name;
	int systemd;

	long gen;
	pid_t current;
	long current_gen;
	long long last_restart;		/* monotonic seconds */
	struct worker *old;
	size_t nold, aold;

	int *queue;			/* signals received, oldest first */
	size_t nq, aq;

	int status_created;
	int pid_fd;
	int ready_fd;			/* --daemonize: tells the caller */
};

static int sig_fds[2] = { -1, -1 };

/* ---- small helpers ---- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line to stderr in one write, as the original prints its own. */
static void say(const char *fmt, ...)
{
	va_list ap;
	char *line;

	va_start(ap, fmt);
	line = xvasprintf(fmt, ap);
	va_end(ap);
	if (write_all(2, line, strlen(line)) < 0 || write_all(2, "\n", 1) < 0) {
		/* nowhere left to report it */
	}
	free(line);
}

/* The original dies with $! as its exit status when it is set. */
static int exit_errno(int e)
{
	return e > 0 && e < 256 ? e : 255;
}

static int perl_true(const char *v)
{
	return v && v[0] && strcmp(v, "0");
}

/* A string as Perl's numeric context reads it: its leading number. */
static double perl_num(const char *v)
{
	char *end;
	double d;

	if (!v)
		return 0;
	while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r' ||
	       *v == '\f' || *v == '\v')
		v++;
	/* strtod would also take hex and "inf", which Perl does not */
	if (!(*v >= '0' && *v <= '9') && *v != '.' && *v != '-' && *v != '+')
		return 0;
	if ((v[0] == '0' && (v[1] == 'x' || v[1] == 'X')))
		return 0;
	d = strtod(v, &end);
	return end == v ? 0 : d;
}

static long long mono_sec(void)
{
	return (long long)(now_ms() / 1000);
}

static const char *env_get(struct server *s, const char *key)
{
	long i = strv_env_find(&s->env, key);

	return i < 0 ? NULL : s->env.v[i] + strlen(key) + 1;
}

static void env_unset(struct strv *env, const char *key)
{
	long i = strv_env_find(env, key);

	if (i < 0)
		return;
	free(env->v[i]);
	memmove(&env->v[i], &env->v[i + 1],
		(env->n - (size_t)i) * sizeof(char *));
	env->n--;
}

/* ---- signal names, as Perl's kill takes them ---- */

static const struct {
	const char *name;
	int sig;
} sig_names[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
	{ "ILL", SIGILL }, { "TRAP", SIGTRAP }, { "ABRT", SIGABRT },
	{ "IOT", SIGIOT }, { "BUS", SIGBUS }, { "FPE", SIGFPE },
	{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },
	{ "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM },
	{ "TERM", SIGTERM }, { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD },
	{ "CLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },
	{ "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
	{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH },
	{ "IO", SIGIO }, { "POLL", SIGPOLL }, { "PWR", SIGPWR },
	{ "SYS", SIGSYS }, { "ZERO", 0 },
};

/* "sigusr1" -> "USR1" (the original's normalisation), then its number. */
static int signal_parse(const char *arg, char **norm)
{
	char *n = xstrdup(arg), *p;
	size_t i;
	long v;

	for (p = n; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	if (!strncmp(n, "SIG", 3))
		memmove(n, n + 3, strlen(n + 3) + 1);
	*norm = n;
	for (i = 0; i < ARRAY_SIZE(sig_names); i++)
		if (!strcmp(n, sig_names[i].name))
			return sig_names[i].sig;
	v = parse_long(n, NSIG - 1);
	return v >= 0 ? (int)v : -1;
}

static const char *signal_name(int sig)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sig_names); i++)
		if (sig_names[i].sig == sig)
			return sig_names[i].name;
	return "?";
}

/* ---- the command line, as Getopt::Long reads the original's ---- */

/* Getopt::Long's integer: [-+]?_*[0-9][0-9_]* */
static int parse_perl_int(const char *s, long *out)
{
	int neg = 0, digits = 0;
	long v = 0;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	for (; *s; s++) {
		if (*s == '_')
			continue;
		if (*s < '0' || *s > '9')
			return -1;
		digits++;
		if (v < LONG_MAX / 10)
			v = v * 10 + (*s - '0');
	}
	if (!digits)
		return -1;
	*out = neg ? -v : v;
	return 0;
}

static int opt_lookup(const char *given, enum opt_id *out)
{
	size_t i, len = strlen(given), n = 0;
	enum opt_id found = OPT__COUNT;

	for (i = 0; i < OPT__COUNT; i++)
		if (!strcmp(opt_table[i].name, given)) {
			*out = (enum opt_id)i;
			return 0;
		}
	for (i = 0; i < OPT__COUNT; i++)
		if (!strncmp(opt_table[i].name, given, len)) {
			found = (enum opt_id)i;
			n++;
		}
	if (n == 1) {
		*out = found;
		return 0;
	}
	if (n == 0) {
		fprintf(stderr, "Unknown option: %s\n", given);
		return -1;
	}
	fprintf(stderr, "Option %s is ambiguous (", given);
	for (i = 0, n = 0; i < OPT__COUNT; i++)
		if (!strncmp(opt_table[i].name, given, len))
			fprintf(stderr, "%s%s", n++ ? ", " : "", opt_table[i].name);
	fprintf(stderr, ")\n");
	return -1;
}

/*
 * Long options with "--" or "-", "=VALUE" or the next argument, unique
 * prefixes, any case; other arguments are the command, wherever they are
 * (Getopt::Long's permute), and "--" ends the options.  Every error is
 * reported before failing, as Getopt::Long does.
 */
static int parse_args(struct opts *o, int argc, char **argv)
{
	int i, errors = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *value = NULL;
		char *name;
		enum opt_id id;
		size_t k;

		if (!strcmp(a, "--")) {
			for (i++; i < argc; i++)
				strv_push(&o->cmd, argv[i]);
			break;
		}
		if (a[0] != '-' || !a[1]) {
			strv_push(&o->cmd, a);
			continue;
		}
		a += a[1] == '-' ? 2 : 1;
		eq = strchr(a, '=');
		if (eq == a) {
			fprintf(stderr, "Unknown option: %s\n", a);
			errors++;
			continue;
		}
		name = eq ? xstrndup(a, (size_t)(eq - a)) : xstrdup(a);
		for (k = 0; name[k]; k++)
			if (name[k] >= 'A' && name[k] <= 'Z')
				name[k] = (char)(name[k] - 'A' + 'a');
		if (opt_lookup(name, &id) < 0) {
			free(name);
			errors++;
			continue;
		}
		free(name);
		if (opt_table[id].type == T_FLAG) {
			if (eq) {
				fprintf(stderr, "Option %s does not take an argument\n",
					opt_table[id].name);
				errors++;
				continue;
			}
			o->set[id] = 1;
			continue;
		}
		if (eq && eq[1])
			value = eq + 1;
		else if (!eq && i + 1 < argc)
			value = argv[++i];
		if (!value) {
			fprintf(stderr, "Option %s requires an argument\n",
				opt_table[id].name);
			errors++;
			continue;
		}
		switch (opt_table[id].type) {
		case T_INT:
			if (parse_perl_int(value, &o->num[id]) < 0) {
				fprintf(stderr, "Value \"%s\" invalid for option %s (number expected)\n",
					value, opt_table[id].name);
				errors++;
				continue;
			}
			break;
		case T_LIST:
			strv_push(id == OPT_PORT ? &o->port : &o->path, value);
			break;
		default:
			o->str[id] = value;
			break;
		}
		o->set[id] = 1;
	}
	return errors ? -1 : 0;
}

static void usage(void)
{
	printf("Usage:\n"
	       "    start_server [options] -- server-prog server-arg1 server-arg2 ...\n"
	       "    berth start-server [options] -- server-prog server-arg1 ...\n"
	       "\n"
	       "    # Plack's Starlet on TCP port 8000\n"
	       "    start_server --port=8000 -- plackup -s Starlet --max-workers=100 index.psgi\n"
	       "\n"
	       "Binds the sockets, runs the server program with them in SERVER_STARTER_PORT,\n"
	       "and on SIGHUP starts a new generation, then signals the old one.\n"
	       "\n"
	       "Options:\n"
	       "  --port=(port|host:port|[v6addr]:port)[=fd]\n"
	       "                           TCP port to listen to (repeatable; no host: 0.0.0.0;\n"
	       "                           \"u\" before the port number: UDP; =fd: at that fd)\n"
	       "  --path=path              unix socket to listen to (repeatable)\n"
	       "  --dir=path               working directory of the server program\n"
	       "  --interval=seconds       a new worker must stay up this long (default: 1)\n"
	       "  --signal-on-hup=SIGNAL   sent to old workers after a SIGHUP (default: TERM)\n"
	       "  --signal-on-term=SIGNAL  sent to the workers on SIGTERM (default: TERM)\n"
	       "  --pid-file=filename      write the superdaemon's pid there (locked)\n"
	       "  --status-file=filename   write generation:pid lines there\n"
	       "  --envdir=ENVDIR          files there set variables (read at each restart)\n"
	       "  --log-file=file, --log-file=\"| cmd args...\"\n"
	       "                           send stdout and stderr there\n"
	       "  --daemonize              detach (needs --log-file)\n"
	       "  --enable-auto-restart    restart on a timer (or $ENABLE_AUTO_RESTART)\n"
	       "  --auto-restart-interval=seconds  (default: 360)\n"
	       "  --kill-old-delay=seconds wait before signalling the old workers\n"
	       "                           (default: 5 with auto-restart, else 0)\n"
	       "  --backlog=size           listen backlog (default: SOMAXCONN)\n"
	       "  --systemd                also pass the sockets as systemd does: at fd 3\n"
	       "                           and up, with LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES\n"
	       "  --restart                HUP the superdaemon in --pid-file and wait until\n"
	       "                           only the new generation is in --status-file\n"
	       "  --stop                   TERM the superdaemon in --pid-file and wait until\n"
	       "                           it has exited\n"
	       "  --help                   this text\n"
	       "  --version                the version\n"
	       "\n"
	       "See docs/start-server.md in berth, and start_server(1).\n");
}

/* ---- the client commands: --restart and --stop ---- */

/*
 * A pid file's first line into line, and the pid in it (Perl's numeric
 * reading of it), or 0.  -1 with errno if it cannot be read.
 */
static pid_t read_pid(int fd, char *line, size_t len)
{
	ssize_t n;
	double d;

	do
		n = read(fd, line, len - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	d = perl_num(line);
	return d >= 1 && d <= INT_MAX ? (pid_t)d : 0;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

/* The generations in a status file, sorted and unique; -1 if unreadable. */
static int read_generations(const char *path, long *gens, size_t max,
			    size_t *n)
{
	char line[256];
	FILE *f = fopen(path, "re");
	size_t i, k;

	*n = 0;
	if (!f) {
		say("failed to open file:%s:%s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) && *n < max) {
		const char *p = line;
		long v = 0;

		while (*p >= '0' && *p <= '9') {
			if (v < LONG_MAX / 10)
				v = v * 10 + (*p - '0');
			p++;
		}
		if (p > line && *p == ':')
			gens[(*n)++] = v;
	}
	fclose(f);
	qsort(gens, *n, sizeof(long), cmp_long);
	for (i = k = 0; i < *n; i++)
		if (!k || gens[k - 1] != gens[i])
			gens[k++] = gens[i];
	*n = k;
	return 0;
}

static int cmd_restart(const struct opts *o)
{
	const char *pidf = o->str[OPT_PID_FILE];
	const char *statf = o->str[OPT_STATUS_FILE];
	long gens[1024], wait_for;
	char line[256];
	size_t n;
	pid_t pid;
	int fd;

	if (!pidf || !statf) {
		fprintf(stderr, "--restart option requires --pid-file and --status-file to be set as well\n");
		return 255;
	}
	fd = open(pidf, O_RDONLY | O_CLOEXEC);
	pid = fd < 0 ? -1 : read_pid(fd, line, sizeof(line));
	if (pid < 0) {
		int e = errno;

		say("failed to open file:%s:%s", pidf, strerror(e));
		if (fd >= 0)
			close(fd);
		return exit_errno(e);
	}
	close(fd);
	if (read_generations(statf, gens, ARRAY_SIZE(gens), &n) < 0)
		return exit_errno(errno);
	if (!n) {
		say("no active process found in the status file");
		return 255;
	}
	wait_for = gens[n - 1] + 1;
	if (pid <= 0 || kill(pid, SIGHUP) < 0) {
		int e = pid <= 0 ? ESRCH : errno;

		say("failed to send SIGHUP to the server process:%s", strerror(e));
		return exit_errno(e);
	}
	/* The original looks once a second; a tenth is kinder to scripts. */
	for (;;) {
		if (read_generations(statf, gens, ARRAY_SIZE(gens), &n) < 0)
			return exit_errno(errno);
		if (n == 1 && gens[0] == wait_for)
			return 0;
		poll(NULL, 0, 100);
	}
}

static int cmd_stop(const struct opts *o)
{
	const char *pidf = o->str[OPT_PID_FILE];
	char line[256];
	pid_t pid;
	int fd;

	if (!pidf) {
		fprintf(stderr, "--stop option requires --pid-file to be set as well\n");
		return 255;
	}
	fd = open(pidf, O_RDONLY | O_CLOEXEC);
	pid = fd < 0 ? -1 : read_pid(fd, line, sizeof(line));
	if (pid < 0) {
		int e = errno;

		say("failed to open file:%s:%s", pidf, strerror(e));
		if (fd >= 0)
			close(fd);
		return exit_errno(e);
	}
	say("stop_server (pid:%d) stopping now (pid:%s)...", (int)getpid(), line);
	if (pid <= 0 || kill(pid, SIGTERM) < 0) {
		int e = pid <= 0 ? ESRCH : errno;

		say("failed to send SIGTERM to the server process:%s", strerror(e));
		close(fd);
		return exit_errno(e);
	}
	/* The superdaemon holds this lock until it has finished. */
	while (flock(fd, LOCK_EX) < 0) {
		int e = errno;

		if (e == EINTR)
			continue;
		say("flock failed(%s): %s", pidf, strerror(e));
		close(fd);
		return exit_errno(e);
	}
	close(fd);
	return 0;
}

/* ---- signals ---- */

static void on_signal(int sig)
{
	int e = errno;
	unsigned char c = (unsigned char)sig;

	if (write(sig_fds[1], &c, 1) < 0) {
		/* a full pipe already holds enough wake-ups */
	}
	errno = e;
}

static const int caught[] = { SIGINT, SIGTERM, SIGHUP, SIGALRM, SIGCHLD };

static int signals_setup(void)
{
	struct sigaction sa;
	size_t i;

	if (pipe2(sig_fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (i = 0; i < ARRAY_SIZE(caught); i++)
		if (sigaction(caught[i], &sa, NULL) < 0)
			return -1;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void signals_default(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(caught); i++)
		signal(caught[i], SIG_DFL);
}

/* Move what the pipe holds into the queue; how many signals (not
 * SIGCHLD) came. */
static int drain_signals(struct server *s)
{
	unsigned char b[256];
	ssize_t n, i;
	int added = 0;

	while ((n = read(sig_fds[0], b, sizeof(b))) > 0) {
		for (i = 0; i < n; i++) {
			if (b[i] == SIGCHLD)
				continue;
			if (s->nq == s->aq) {
				s->aq = s->aq ? s->aq * 2 : 16;
				s->queue = xrealloc(s->queue,
						    s->aq * sizeof(int));
			}
			s->queue[s->nq++] = b[i];
			added++;
		}
	}
	return added;
}

static int queue_pop(struct server *s)
{
	int sig = s->queue[0];

	memmove(s->queue, s->queue + 1, (s->nq - 1) * sizeof(int));
	s->nq--;
	return sig;
}

/* INT or TERM waiting: a stop cuts a worker's start-up short. */
static int stop_pending(const struct server *s)
{
	size_t i;

	for (i = 0; i < s->nq; i++)
		if (s->queue[i] != SIGHUP && s->queue[i] != SIGALRM)
			return 1;
	return 0;
}

/* Sleep until the pipe says something or ms pass (ms < 0: no limit). */
static int wait_pipe(struct server *s, long ms)
{
	struct pollfd p = { .fd = sig_fds[0], .events = POLLIN };

	if (poll(&p, 1, ms < 0 ? -1 : (int)(ms > INT_MAX ? INT_MAX : ms)) < 0 &&
	    errno != EINTR)
		return -1;
	return drain_signals(s);
}

/*
 * Reap one child: its pid and wait status, or 0.  With block, wait for a
 * child to end, a signal to arrive or timeout_ms to pass (< 0: forever);
 * -1 when there is no child left to wait for.
 */
static pid_t reap_one(struct server *s, int block, long timeout_ms,
		      int *status)
{
	int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
	pid_t pid;

	for (;;) {
		if (drain_signals(s) && block)
			return 0;
		pid = waitpid(-1, status, WNOHANG);
		if (pid > 0)
			return pid;
		if (pid < 0 && errno == ECHILD && block)
			return -1;
		if (!block)
			return 0;
		if (deadline >= 0 && now_ms() >= deadline)
			return 0;
		if (wait_pipe(s, deadline >= 0 ?
				 (long)(deadline - now_ms()) : -1) > 0)
			return 0;
	}
}

/* Let seconds pass; signals wait in the queue. */
static void sleep_queued(struct server *s, long long secs)
{
	int64_t deadline = now_ms() + secs * 1000;

	while (now_ms() < deadline)
		wait_pipe(s, (long)(deadline - now_ms()));
}

/* ---- the environment, with --envdir laid over it ---- */

static void envdir_warn(void *arg, const char *msg)
{
	say("%s", msg);
}

/*
 * Lay the envdir's variables over the environment.  With saved, remember
 * what each replaced ("KEY=old", or "KEY" if it was unset) so that
 * env_restore() can undo it, as the original's "local %ENV" does.
 */
static void env_overlay(struct server *s, struct strv *saved)
{
	struct strv vars = STRV_INIT;
	const char *dir = env_get(s, "ENVDIR");
	size_t i;

	if (!dir)
		return;
	envdir_read(&vars, dir, envdir_warn, NULL);
	for (i = 0; i < vars.n; i++) {
		char *eq = strchr(vars.v[i], '=');
		char *key = xstrndup(vars.v[i], (size_t)(eq - vars.v[i]));

		if (saved) {
			const char *old = env_get(s, key);

			if (old)
				strv_pushf(saved, "%s=%s", key, old);
			else
				strv_push(saved, key);
		}
		strv_env_set(&s->env, key, eq + 1);
		free(key);
	}
	strv_release(&vars);
}

static void env_restore(struct server *s, struct strv *saved)
{
	size_t i = saved->n;

	while (i-- > 0) {
		char *eq = strchr(saved->v[i], '=');

		if (eq) {
			*eq = '\0';
			strv_env_set(&s->env, saved->v[i], eq + 1);
		} else {
			env_unset(&s->env, saved->v[i]);
		}
	}
	strv_release(saved);
}

/* ---- workers ---- */

static int cmp_pid_text(const void *a, const void *b)
{
	char x[24], y[24];

	snprintf(x, sizeof(x), "%d", (int)((const struct worker *)a)->pid);
	snprintf(y, sizeof(y), "%d", (int)((const struct worker *)b)->pid);
	return strcmp(x, y);
}

/* The old workers' pids in the original's order (sorted as text). */
static void old_sorted(struct server *s)
{
	if (s->nold)
		qsort(s->old, s->nold, sizeof(*s->old), cmp_pid_text);
}

static void old_list(struct server *s, struct buf *out)
{
	size_t i;

	old_sorted(s);
	for (i = 0; i < s->nold; i++)
		buf_addf(out, "%s%d", i ? "," : "", (int)s->old[i].pid);
}

static void old_add(struct server *s, pid_t pid, long gen)
{
	size_t i;

	for (i = 0; i < s->nold; i++)
		if (s->old[i].pid == pid) {
			s->old[i].gen = gen;
			return;
		}
	if (s->nold == s->aold) {
		s->aold = s->aold ? s->aold * 2 : 8;
		s->old = xrealloc(s->old, s->aold * sizeof(*s->old));
	}
	s->old[s->nold].pid = pid;
	s->old[s->nold].gen = gen;
	s->nold++;
}

static void old_remove(struct server *s, pid_t pid)
{
	size_t i;

	for (i = 0; i < s->nold; i++)
		if (s->old[i].pid == pid) {
			s->old[i] = s->old[--s->nold];
			return;
		}
}

static void old_signal(struct server *s, int sig)
{
	size_t i;

	old_sorted(s);
	for (i = 0; i < s->nold; i++)
		kill(s->old[i].pid, sig);
}

static int cmp_gen_text(const void *a, const void *b)
{
	char x[24], y[24];

	snprintf(x, sizeof(x), "%ld", ((const struct worker *)a)->gen);
	snprintf(y, sizeof(y), "%ld", ((const struct worker *)b)->gen);
	return strcmp(x, y);
}

/*
 * "generation:pid" lines, sorted as text (as the original sorts them),
 * written to a temporary name and renamed.  The original dies when it
 * cannot; this one says so and keeps the workers serving.
 */
static void status_update(struct server *s)
{
	const char *path = s->o->str[OPT_STATUS_FILE];
	struct worker *w;
	struct buf text = BUF_INIT;
	char *tmp;
	size_t i, n = 0;
	int fd;

	if (!path)
		return;
	w = xcalloc(s->nold + 1, sizeof(*w));
	if (s->current > 0) {
		w[n].pid = s->current;
		w[n++].gen = s->current_gen;
	}
	for (i = 0; i < s->nold; i++)
		w[n++] = s->old[i];
	qsort(w, n, sizeof(*w), cmp_gen_text);
	for (i = 0; i < n; i++)
		if (!i || w[i].gen != w[i - 1].gen)
			buf_addf(&text, "%ld:%d\n", w[i].gen, (int)w[i].pid);
	free(w);
	tmp = xasprintf("%s.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0) {
		say("failed to create temporary file:%s:%s", tmp, strerror(errno));
		goto out;
	}
	s->status_created = 1;
	if (write_all(fd, text.data ? text.data : "", text.len) < 0) {
		say("failed to write temporary file:%s:%s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		say("failed to rename %s to %s:%s", tmp, path, strerror(errno));
		unlink(tmp);
	}
out:
	free(tmp);
	buf_release(&text);
}

/* In the child: a message without stdio (async-signal-safe). */
static void child_say(const char *a, const char *b, const char *c,
		      const char *d)
{
	const char *parts[4] = { a, b, c, d };
	size_t i;

	for (i = 0; i < 4; i++)
		if (parts[i] && write(2, parts[i], strlen(parts[i])) < 0)
			return;
	if (write(2, "\n", 1) < 0)
		return;
}

/*
 * execvp() with the worker's own PATH (glibc's looks at ours): each
 * directory in turn, a script without "#!" through /bin/sh.  Returns
 * only on failure, with errno.
 */
static void child_exec(char **argv, char **envp, const char *path,
		       char **sh_argv)
{
	char full[PATH_MAX];
	const char *p, *colon;
	size_t flen = strlen(argv[0]), dlen;
	int eacces = 0;

	if (strchr(argv[0], '/')) {
		execve(argv[0], argv, envp);
		if (errno == ENOEXEC) {
			sh_argv[1] = argv[0];
			execve("/bin/sh", sh_argv, envp);
		}
		return;
	}
	for (p = path ? path : "/bin:/usr/bin"; ; p = colon + 1) {
		colon = strchr(p, ':');
		dlen = colon ? (size_t)(colon - p) : strlen(p);
		if (dlen + flen + 2 <= sizeof(full)) {
			memcpy(full, p, dlen);
			if (dlen)
				full[dlen++] = '/';
			memcpy(full + dlen, argv[0], flen + 1);
			execve(full, argv, envp);
			if (errno == ENOEXEC) {
				sh_argv[1] = full;
				execve("/bin/sh", sh_argv, envp);
				return;
			}
			if (errno == EACCES)
				eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR &&
				 errno != ESTALE && errno != ENODEV &&
				 errno != ETIMEDOUT)
				return;
		}
		if (!colon)
			break;
	}
	errno = eacces ? EACCES : ENOENT;
}

/*
 * Fork and exec one worker with the environment as it is now.  Not
 * through spawn.c: the sockets must keep the numbers SERVER_STARTER_PORT
 * names (or sit at 3 and up with the child's own LISTEN_PID), PATH is the
 * worker's, and an exec that fails is a worker that failed to start (exit
 * 255, retried), as under the original, not an error of the caller.
 */
static pid_t worker_spawn(struct server *s)
{
	char pid_var[LISTENER_PID_VAR_LEN];
	int fds[LISTENER_MAX];
	const struct opts *o = s->o;
	const char *path = env_get(s, "PATH");
	char **envp, **sh_argv;
	sigset_t all, old;
	size_t i, n = 0;
	pid_t pid;

	envp = xcalloc(s->env.n + 2, sizeof(char *));
	for (i = 0; i < s->env.n; i++)
		envp[n++] = s->env.v[i];
	if (s->systemd)
		envp[n++] = pid_var;
	sh_argv = xcalloc(o->cmd.n + 2, sizeof(char *));
	sh_argv[0] = "/bin/sh";
	for (i = 1; i < o->cmd.n; i++)
		sh_argv[i + 1] = o->cmd.v[i];
	for (i = 0; i < s->nls; i++)
		fds[i] = s->ls[i].fd;

	/* No handler of ours may run in the child before exec. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		sigset_t none;
		int e;

		signals_default();
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* SIGPIPE stays ignored in the worker, as under the
		 * original. */
		if (s->systemd) {
			if (listener_child_place(fds, s->nls, 3) < 0) {
				child_say("failed to pass the sockets:",
					  strerror(errno), NULL, NULL);
				_exit(255);
			}
			listener_pid_var(pid_var, getpid());
		}
		if (o->str[OPT_DIR] && chdir(o->str[OPT_DIR]) < 0) {
			e = errno;
			child_say("failed to chdir:", o->str[OPT_DIR], ":",
				  strerror(e));
			_exit(exit_errno(e));
		}
		child_exec(o->cmd.v, envp, path, sh_argv);
		e = errno;
		child_say("failed to exec ", o->cmd.v[0], ": ", strerror(e));
		_exit(255);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	free(envp);
	free(sh_argv);
	return pid;
}

/*
 * Start the next generation, again and again until one stays up for
 * --interval seconds (or INT/TERM comes).  Unlike the original, a HUP
 * that arrives meanwhile does not cut the wait short: it waits its turn.
 */
static void worker_start(struct server *s)
{
	pid_t pid;
	int status;

	for (;;) {
		char gen[24];
		int64_t deadline;

		s->gen++;
		snprintf(gen, sizeof(gen), "%ld", s->gen);
		strv_env_set(&s->env, "SERVER_STARTER_GENERATION", gen);
		pid = worker_spawn(s);
		if (pid < 0)
			say("fork(2) failed:%s", strerror(errno));
		else
			say("starting new worker %d", (int)pid);
		deadline = now_ms() + s->interval * 1000;
		while (!stop_pending(s) && now_ms() < deadline)
			wait_pipe(s, (long)(deadline - now_ms()));
		if (pid > 0 && (stop_pending(s) ||
				waitpid(pid, &status, WNOHANG) <= 0))
			break;
		if (pid > 0)
			say("new worker %d seems to have failed to start, exit status:%d",
			    (int)pid, status);
		else if (stop_pending(s))
			break;
	}
	s->current = pid;
	s->current_gen = s->gen;
	s->last_restart = mono_sec();
	status_update(s);
}

/* INT or TERM: signal every worker, wait for all of them, and return. */
static void shut_down(struct server *s, int sig)
{
	int term = sig == SIGTERM ? s->sig_term : SIGTERM;
	const char *term_name = sig == SIGTERM ? s->sig_term_name : "TERM";
	struct buf list = BUF_INIT;
	int status;
	pid_t pid;

	if (s->current > 0)
		old_add(s, s->current, s->current_gen);
	s->current = 0;
	old_list(s, &list);
	say("received %s, sending %s to all workers:%s", signal_name(sig),
	    term_name, list.data ? list.data : "");
	buf_release(&list);
	old_signal(s, term);
	while (s->nold) {
		pid = reap_one(s, 1, -1, &status);
		s->nq = 0;	/* more signals change nothing now */
		if (pid < 0)
			break;
		if (pid == 0)
			continue;
		say("worker %d died, status:%d", (int)pid, status);
		old_remove(s, pid);
		status_update(s);
	}
	say("exiting");
}

/* HUP or the timer: a new generation, then the old ones are signalled. */
static void restart_generation(struct server *s)
{
	struct buf list = BUF_INIT;
	const char *kod;
	double delay;

	if (s->current > 0)
		old_add(s, s->current, s->current_gen);
	worker_start(s);
	old_list(s, &list);
	say("new worker is now running, sending %s to old workers:%s",
	    s->sig_hup_name, list.len ? list.data : "none");
	buf_release(&list);
	kod = env_get(s, "KILL_OLD_DELAY");
	if (!kod)
		kod = perl_true(env_get(s, "ENABLE_AUTO_RESTART")) ? "5" : "0";
	delay = perl_num(kod);
	if (delay != 0) {
		say("sleeping %s secs before killing old workers", kod);
		if (delay >= 1)
			sleep_queued(s, (long long)delay);
	}
	say("killing old workers");
	old_signal(s, s->sig_hup);
}

static void main_loop(struct server *s)
{
	for (;;) {
		struct strv saved = STRV_INIT;
		int block = s->nq == 0, status, again = 0;
		long timeout = -1;
		pid_t died;

		if (block && perl_true(env_get(s, "ENABLE_AUTO_RESTART")))
			timeout = 1000;
		died = reap_one(s, block, timeout, &status);
		if (died < 0)	/* no child at all: wait for a signal */
			wait_pipe(s, timeout);
		env_overlay(s, &saved);
		if (perl_true(env_get(s, "ENABLE_AUTO_RESTART")) &&
		    !perl_true(env_get(s, "AUTO_RESTART_INTERVAL")))
			strv_env_set(&s->env, "AUTO_RESTART_INTERVAL", "360");
		if (died > 0 && died == s->current) {
			say("worker %d died unexpectedly with status:%d, restarting",
			    (int)died, status);
			worker_start(s);
		} else if (died > 0) {
			say("old worker %d died, status:%d", (int)died, status);
			old_remove(s, died);
			status_update(s);
		}
		while (s->nq) {
			int sig = queue_pop(s);

			if (sig == SIGHUP) {
				say("received HUP, spawning a new worker");
				again = 1;
				break;
			}
			if (sig == SIGALRM)
				continue;
			shut_down(s, sig);
			env_restore(s, &saved);
			return;
		}
		if (!again && perl_true(env_get(s, "ENABLE_AUTO_RESTART"))) {
			const char *ari = env_get(s, "AUTO_RESTART_INTERVAL");
			double interval = perl_num(ari);
			long long elapsed = mono_sec() - s->last_restart;

			if (elapsed >= interval && !s->nold) {
				say("autorestart triggered (interval=%s)", ari);
				again = 1;
			} else if (elapsed >= interval * 2) {
				say("autorestart triggered (forced, interval=%s)", ari);
				again = 1;
			}
		}
		if (again)
			restart_generation(s);
		env_restore(s, &saved);
	}
}

/* ---- setting up ---- */

/*
 * --log-file: a file opened for appending, or "| command" run by
 * /bin/sh -c (the option's documented meaning) with a pipe on its stdin.
 * The descriptor ends at the lowest free number, where the original's is.
 */
static int log_open(const char *spec, int *out)
{
	const char *p = spec;
	char *cmd;
	int fds[2], fd;
	pid_t pid;

	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' ||
	       *p == '\f' || *p == '\v')
		p++;
	if (*p != '|') {
		fd = open(spec, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
			  0666);
		if (fd < 0) {
			int e = errno;

			say("failed to open log file:%s: %s", spec, strerror(e));
			return exit_errno(e);
		}
		*out = fd;
		return 0;
	}
	for (p++; *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' ||
	     *p == '\f' || *p == '\v'; p++)
		;
	if (pipe2(fds, O_CLOEXEC) < 0)
		goto fail;
	cmd = xstrdup(p);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		free(cmd);
		goto fail;
	}
	if (pid == 0) {
		char *argv[] = { "sh", "-c", cmd, NULL };

		if (dup2(fds[0], 0) < 0)
			_exit(127);
		execve("/bin/sh", argv, environ);
		_exit(127);
	}
	free(cmd);
	close(fds[0]);
	fd = fcntl(fds[1], F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		close(fds[1]);
		goto fail;
	}
	close(fds[1]);
	*out = fd;
	return 0;
fail:
	{
		int e = errno;

		say("failed to open pipe:%s: %s", spec, strerror(e));
		return exit_errno(e);
	}
}

/* Bind every --port and --path, in the original's order. */
static int listeners_open(struct server *s)
{
	const struct opts *o = s->o;
	size_t i;

	if (o->port.n + o->path.n > LISTENER_MAX) {
		say("too many sockets (at most %d)", LISTENER_MAX);
		return 255;
	}
	for (i = 0; i < o->port.n + o->path.n; i++) {
		struct listener *l = &s->ls[s->nls];
		const char *spec = i < o->port.n ? o->port.v[i] :
				   o->path.v[i - o->port.n];
		int replaced = 0, rc, e;

		listener_init(l);
		if (i < o->port.n && listener_parse_port(l, spec) < 0) {
			say("invalid ``port'' value:%s", spec);
			return 255;
		}
		if (i >= o->port.n && listener_parse_path(l, spec) < 0) {
			e = spec[0] ? ENAMETOOLONG : ENOENT;
			say("failed to listen to file %s:%s", spec, strerror(e));
			return exit_errno(e);
		}
		s->nls++;
		if (s->systemd && l->want_fd >= 0) {
			say("--systemd passes the sockets at fd 3 and up: drop \"=%d\" from --port=%s",
			    l->want_fd, spec);
			return 255;
		}
		rc = listener_open(l, s->backlog, &replaced);
		e = errno;
		if (replaced || rc == LISTENER_ERR_STALE)
			say("removing existing socket file:%s", spec);
		switch (rc) {
		case 0:
			break;
		case LISTENER_ERR_RESOLVE:
			say("failed to resolve host:%s:%s", l->host,
			    l->resolve_why);
			return 255;
		case LISTENER_ERR_STALE:
			say("failed to remove existing socket file:%s:%s",
			    spec, strerror(e));
			return exit_errno(e);
		case LISTENER_ERR_BIND:
			if (l->kind == LISTENER_UNIX)
				say("failed to listen to file %s:%s", spec,
				    strerror(e));
			else
				say("failed to bind to %s:%s", l->name,
				    strerror(e));
			return exit_errno(e);
		case LISTENER_ERR_LISTEN:
			if (l->kind == LISTENER_UNIX)
				say("failed to listen to file %s:%s", spec,
				    strerror(e));
			else
				say("listen(2) failed:%s", strerror(e));
			return exit_errno(e);
		default:
			say("failed to create socket:%s", strerror(e));
			return exit_errno(e);
		}
		if (s->systemd)
			continue;	/* placed in each worker instead */
		if (listener_set_inherit(l, 1) < 0) {
			e = errno;
			say("fcntl(F_SETFD, 0) failed:%s", strerror(e));
			return exit_errno(e);
		}
		if (l->want_fd >= 0) {
			if (listener_move_to(l, l->want_fd) < 0) {
				e = errno;
				say("dup2(2) failed(%d): %s", l->want_fd,
				    strerror(e));
				return exit_errno(e);
			}
			say("socket is duplicated to file descriptor %d",
			    l->want_fd);
		}
	}
	return 0;
}

/* fork, setsid, fork; the caller returns once the pid file is written. */
static int daemonize(struct server *s)
{
	int ready[2];
	ssize_t n;
	size_t i;
	pid_t pid;
	char c;

	if (pipe2(ready, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		int e = errno;

		say("fork failed:%s", strerror(e));
		return exit_errno(e);
	}
	if (pid > 0) {
		signals_default();
		close(ready[1]);
		do
			n = read(ready[0], &c, 1);
		while (n < 0 && errno == EINTR);
		/* nothing to clean: the daemon owns the sockets now */
		_exit(n == 1 ? 0 : 1);
	}
	close(ready[0]);
	setsid();
	pid = fork();
	if (pid < 0) {
		int e = errno;

		say("fork failed:%s", strerror(e));
		_exit(exit_errno(e));
	}
	if (pid > 0)
		_exit(0);
	s->ready_fd = ready[1];
	for (i = 0; i < s->nls; i++)
		if (s->ls[i].fd == 0)
			return 0;
	{
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0 || dup2(fd, 0) < 0) {
			int e = errno;

			say("reopen failed: %s", strerror(e));
			return exit_errno(e);
		}
		close(fd);
	}
	return 0;
}

/* Write our pid, locked for as long as we run (--stop waits on it). */
static int pid_file_write(struct server *s)
{
	const char *path = s->o->str[OPT_PID_FILE];
	char line[24];
	int fd, e;

	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0) {
		e = errno;
		say("failed to open file:%s: %s", path, strerror(e));
		return exit_errno(e);
	}
	/* Truncated only once locked: a second superdaemon waiting here
	 * does not wipe the first one's pid. */
	while (flock(fd, LOCK_EX) < 0) {
		e = errno;
		if (e == EINTR)
			continue;
		say("flock failed(%s): %s", path, strerror(e));
		close(fd);
		return exit_errno(e);
	}
	snprintf(line, sizeof(line), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || write_all(fd, line, strlen(line)) < 0) {
		e = errno;
		say("failed to write file:%s: %s", path, strerror(e));
		close(fd);
		return exit_errno(e);
	}
	s->pid_fd = fd;
	return 0;
}

/* On the way out: files gone and sockets closed before the pid file's
 * lock goes, so that a --stop that returns leaves the ports free. */
static void finish(struct server *s)
{
	const char *pidf = s->o->str[OPT_PID_FILE];
	size_t i;

	if (s->status_created)
		unlink(s->o->str[OPT_STATUS_FILE]);
	for (i = 0; i < s->nls; i++) {
		struct stat st;

		if (s->ls[i].kind == LISTENER_UNIX &&
		    lstat(s->ls[i].path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(s->ls[i].path);
		listener_release(&s->ls[i]);
	}
	s->nls = 0;
	if (s->pid_fd >= 0) {
		if (unlink(pidf) < 0)
			say("failed to unlink file:%s:%s", pidf, strerror(errno));
		close(s->pid_fd);
		s->pid_fd = -1;
	}
}

static void server_env_setup(struct server *s)
{
	const struct opts *o = s->o;
	struct buf v = BUF_INIT;
	char **e;

	for (e = environ; e && *e; e++)
		strv_push(&s->env, *e);
	if (o->set[OPT_ENVDIR])
		strv_env_set(&s->env, "ENVDIR", o->str[OPT_ENVDIR]);
	if (o->set[OPT_ENABLE_AUTO_RESTART])
		strv_env_set(&s->env, "ENABLE_AUTO_RESTART", "1");
	if (o->set[OPT_KILL_OLD_DELAY]) {
		buf_addf(&v, "%ld", o->num[OPT_KILL_OLD_DELAY]);
		strv_env_set(&s->env, "KILL_OLD_DELAY", v.data);
		buf_reset(&v);
	}
	if (o->set[OPT_AUTO_RESTART_INTERVAL]) {
		buf_addf(&v, "%ld", o->num[OPT_AUTO_RESTART_INTERVAL]);
		strv_env_set(&s->env, "AUTO_RESTART_INTERVAL", v.data);
		buf_reset(&v);
	}
	buf_release(&v);
	/* The environment of the superdaemon gets the envdir too. */
	env_overlay(s, NULL);
}

static void server_env_sockets(struct server *s)
{
	struct buf v = BUF_INIT;

	listener_format_server_starter(&v, s->ls, s->nls, s->systemd ? 3 : -1);
	strv_env_set(&s->env, "SERVER_STARTER_PORT", v.data ? v.data : "");
	strv_env_set(&s->env, "SERVER_STARTER_GENERATION", "0");
	if (s->systemd) {
		buf_reset(&v);
		buf_addf(&v, "%zu", s->nls);
		strv_env_set(&s->env, "LISTEN_FDS", v.data);
		buf_reset(&v);
		listener_format_fdnames(&v, s->ls, s->nls);
		strv_env_set(&s->env, "LISTEN_FDNAMES", v.data ? v.data : "");
		/* each worker gets its own LISTEN_PID */
		env_unset(&s->env, "LISTEN_PID");
	}
	buf_release(&v);
}

static int run_server(const struct opts *o)
{
	struct server s;
	int ret = 0, log_fd = -1, reserved;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.pid_fd = -1;
	s.ready_fd = -1;
	s.interval = o->set[OPT_INTERVAL] ? o->num[OPT_INTERVAL] : 1;
	s.backlog = o->set[OPT_BACKLOG] && o->num[OPT_BACKLOG] ?
		    (int)o->num[OPT_BACKLOG] : SOMAXCONN;
	s.systemd = o->set[OPT_SYSTEMD];
	s.sig_hup = signal_parse(o->str[OPT_SIGNAL_ON_HUP] ?
				 o->str[OPT_SIGNAL_ON_HUP] : "TERM",
				 &s.sig_hup_name);
	s.sig_term = signal_parse(o->str[OPT_SIGNAL_ON_TERM] ?
				  o->str[OPT_SIGNAL_ON_TERM] : "TERM",
				  &s.sig_term_name);
	if (s.sig_hup < 0 || s.sig_term < 0) {
		/* the original finds out at the first HUP, and dies then */
		fprintf(stderr, "Unrecognized signal name \"%s\"\n",
			s.sig_hup < 0 ? s.sig_hup_name : s.sig_term_name);
		ret = 255;
		goto out;
	}
	/* The original's script holds the lowest free descriptor (fd 3,
	 * its DATA handle); keeping it too gives workers the same numbers. */
	reserved = open("/dev/null", O_RDONLY | O_CLOEXEC);
	server_env_setup(&s);
	if (o->str[OPT_LOG_FILE]) {
		ret = log_open(o->str[OPT_LOG_FILE], &log_fd);
		if (ret)
			goto out;
	}
	say("start_server (pid:%d) starting now...", (int)getpid());
	ret = listeners_open(&s);
	if (ret)
		goto out;
	server_env_sockets(&s);
	if (signals_setup() < 0) {
		int e = errno;

		say("cannot set up signal handling: %s", strerror(e));
		ret = exit_errno(e);
		goto out;
	}
	if (log_fd >= 0) {
		fflush(stdout);
		fflush(stderr);
		if (dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0) {
			int e = errno;

			say("failed to dup STDOUT to file: %s", strerror(e));
			ret = exit_errno(e);
			goto out;
		}
		close(log_fd);
		log_fd = -1;
	}
	if (o->set[OPT_DAEMONIZE]) {
		ret = daemonize(&s);
		if (ret)
			goto out;
	}
	if (o->str[OPT_PID_FILE]) {
		ret = pid_file_write(&s);
		if (ret)
			goto out;
	}
	if (s.ready_fd >= 0) {
		if (write(s.ready_fd, "r", 1) < 0) {
			/* the caller is gone: nobody to tell */
		}
		close(s.ready_fd);
		s.ready_fd = -1;
	}
	worker_start(&s);
	main_loop(&s);
out:
	finish(&s);
	if (log_fd >= 0)
		close(log_fd);
	(void)reserved;
	strv_release(&s.env);
	free(s.old);
	free(s.queue);
	free(s.sig_hup_name);
	free(s.sig_term_name);
	return ret;
}

int startserver_main(int argc, char **argv)
{
	struct opts o;
	int ret;

	memset(&o, 0, sizeof(o));
	if (parse_args(&o, argc, argv) < 0) {
		ret = 1;
		goto out;
	}
	if (o.set[OPT_HELP]) {
		usage();
		ret = 0;
	} else if (o.set[OPT_VERSION]) {
		printf("%s (berth start-server %s)\n", SERVER_STARTER_VERSION,
		       BERTH_VERSION);
		ret = 0;
	} else if (o.set[OPT_RESTART]) {
		ret = cmd_restart(&o);
	} else if (o.set[OPT_STOP]) {
		ret = cmd_stop(&o);
	} else if (o.set[OPT_DAEMONIZE] && !o.str[OPT_LOG_FILE]) {
		fprintf(stderr, "Usage: --log-file option must be specified together with --deamonize\n");
		ret = 255;
	} else if (!o.cmd.n) {
		fprintf(stderr, "server program not specified\n");
		ret = 255;
	} else {
		ret = run_server(&o);
	}
out:
	strv_release(&o.port);
	strv_release(&o.path);
	strv_release(&o.cmd);
	return ret;
}
