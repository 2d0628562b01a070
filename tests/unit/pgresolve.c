/* pgresolve.c: which hosts of a conninfo need a lookup, and the host,
 * hostaddr and port lists a lookup in a child gives ("localhost", from
 * /etc/hosts: no DNS server is asked); a cancelled lookup never calls
 * back. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "loop.h"
#include "pgresolve.h"
#include "reaper.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

static struct loop *loop;

struct got {
	int calls, result;
	char *host, *hostaddr, *port, *err;
};

static void on_sigchld(struct loop *l, int fd, unsigned events, void *arg)
{
	struct signalfd_siginfo si;

	(void)l;
	(void)events;
	(void)arg;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	reaper_reap();
}

static void on_resolved(void *arg, int result, const struct pgresolve_hosts *h)
{
	struct got *g = arg;

	g->calls++;
	g->result = result;
	if (h) {
		g->host = h->host ? xstrdup(h->host) : NULL;
		g->hostaddr = h->hostaddr ? xstrdup(h->hostaddr) : NULL;
		g->port = h->port ? xstrdup(h->port) : NULL;
	} else {
		g->err = xstrdup(error_last());
	}
	loop_stop(loop);
}

static void on_give_up(struct loop *l, void *arg)
{
	(void)arg;
	loop_stop(l);
}

static void got_release(struct got *g)
{
	free(g->host);
	free(g->hostaddr);
	free(g->port);
	free(g->err);
	memset(g, 0, sizeof(*g));
}

/* pgresolve_start(), and the loop until the answer (at most 30 s) */
static int resolve(struct got *g, const char *conninfo)
{
	struct pgresolve *r;
	uint64_t t;
	int ret;

	got_release(g);
	ret = pgresolve_start(&r, loop, conninfo, 30000, on_resolved, g);
	if (ret != 0)
		return ret;
	t = loop_add_timer(loop, 30000, on_give_up, NULL);
	loop_run(loop);
	loop_del_timer(loop, t);
	return ret;
}

/* Every item of list is one of the words of allowed. */
static int items_in(const char *list, const char *allowed)
{
	char *copy = xstrdup(list), *save = copy, *item;
	int n = 0;

	while ((item = str_token(&save, ",")) != NULL) {
		char *words = xstrdup(allowed), *ws = words, *w;
		int found = 0;

		while ((w = str_token(&ws, " ")) != NULL)
			found |= !strcmp(w, item);
		free(words);
		if (!found) {
			n = -1;
			break;
		}
		n++;
	}
	free(copy);
	return n;
}

static int ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && !strcmp(s + n - t, tail);
}

static int count(const char *list, char c)
{
	int n = 1;

	for (; *list; list++)
		n += *list == c;
	return n;
}

static void no_lookup(const char *conninfo)
{
	struct pgresolve *r = (struct pgresolve *)1;
	int ret = pgresolve_start(&r, loop, conninfo, 1000, on_resolved,
				  NULL);

	ok(ret == 1 && !r, "no lookup: %s", conninfo);
}

int main(void)
{
	struct got g;
	struct pgresolve *r;
	const char *services = "[mine]\nhost=localhost\nport=5999\n"
			       "[numeric]\nhost=127.0.0.1\n";
	char svc[64];
	sigset_t set;
	uint64_t t;
	int n;

	memset(&g, 0, sizeof(g));
	unsetenv("PGHOST");
	unsetenv("PGHOSTADDR");
	unsetenv("PGPORT");
	unsetenv("PGSERVICE");
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	loop = loop_new();
	loop_add_fd(loop, signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC),
		    LOOP_READ, on_sigchld, NULL);

	no_lookup("host=/run/postgresql port=5432 dbname=x");
	no_lookup("host=@abstract");
	no_lookup("host=127.0.0.1 port=5432");
	no_lookup("host=::1");
	no_lookup("postgresql://127.0.0.1:5433,[::1]:5434/db");
	no_lookup("hostaddr=10.0.0.1");
	no_lookup("host=db.example.com hostaddr=10.0.0.1");
	no_lookup("dbname=x user=y");
	no_lookup("");
	/* libpq refuses these itself, before any lookup */
	no_lookup("host=a.example.com,b.example.com hostaddr=10.0.0.1");
	no_lookup("host=a.example.com,b.example.com,c.example.com port=1,2");

	r = (struct pgresolve *)1;
	ok(pgresolve_start(&r, loop, "host='unterminated", 1000, on_resolved,
			   NULL) == -1 && !r &&
	   !strncmp(error_last(), "bad conninfo: ", 14) &&
	   !strchr(error_last(), '\n'),
	   "a bad conninfo: -1, one line (%s)", error_last());

	ok(resolve(&g, "host=localhost port=5433 dbname=x") == 0 &&
	   g.calls == 1 && g.result == 0,
	   "a name: looked up in a child (%s)", g.err ? g.err : "ok");
	n = g.host ? items_in(g.host, "localhost") : -1;
	ok(n >= 1 && items_in(g.hostaddr, "127.0.0.1 ::1") == n && !g.port,
	   "one host per address, named: host=%s hostaddr=%s port=%s",
	   g.host, g.hostaddr, g.port ? g.port : "(as it was)");

	ok(resolve(&g, "host=localhost,/tmp,10.1.2.3 port=1,2,3") == 0 &&
	   g.result == 0, "a name among others (%s)", g.err ? g.err : "ok");
	n = g.host ? count(g.host, ',') - 2 : 0;
	ok(n >= 1 && g.hostaddr && g.port &&
	   ends_with(g.host, ",/tmp,10.1.2.3") &&
	   ends_with(g.hostaddr, ",,10.1.2.3") &&
	   count(g.hostaddr, ',') == n + 2 && count(g.port, ',') == n + 2 &&
	   ends_with(g.port, ",2,3") && !strncmp(g.port, "1", 1),
	   "the others stay, the ports follow their hosts: host=%s "
	   "hostaddr=%s port=%s", g.host, g.hostaddr, g.port);

	ok(resolve(&g, "host=,localhost port=1,2") == 0 && g.result == 0 &&
	   g.host && g.host[0] == ',' && g.hostaddr[0] == ',' &&
	   !strncmp(g.port, "1,2", 3) &&
	   count(g.host, ',') == count(g.hostaddr, ',') &&
	   count(g.host, ',') == count(g.port, ','),
	   "an empty host first (the default socket) keeps its place: "
	   "host=%s hostaddr=%s port=%s", g.host, g.hostaddr, g.port);

	ok(resolve(&g, "postgresql://u@localhost:6000/db") == 0 &&
	   g.result == 0 && g.host && items_in(g.host, "localhost") >= 1 &&
	   !g.port, "a URI's host (%s)", g.host ? g.host : g.err);

	setenv("PGHOST", "localhost", 1);
	ok(resolve(&g, "dbname=x") == 0 && g.result == 0 && g.host &&
	   items_in(g.host, "localhost") >= 1,
	   "PGHOST when the conninfo names no host");
	unsetenv("PGHOST");

	/* a service: the child reads its file (PGSERVICEFILE here) */
	snprintf(svc, sizeof(svc), "/tmp/pgresolve-unit-%d.conf",
		 (int)getpid());
	ok(write_file_atomic(svc, services, strlen(services), 0600) == 0,
	   "a service file");
	setenv("PGSERVICEFILE", svc, 1);
	ok(resolve(&g, "service=mine dbname=x") == 0 && g.result == 0 &&
	   g.host && items_in(g.host, "localhost") >= 1 &&
	   items_in(g.hostaddr, "127.0.0.1 ::1") == items_in(g.host,
							     "localhost") &&
	   !g.port, "a service's host name, looked up: host=%s hostaddr=%s",
	   g.host ? g.host : "-", g.hostaddr ? g.hostaddr : "-");
	ok(resolve(&g, "service=mine host=/tmp") == 0 && g.result == 0 &&
	   !g.host && !g.hostaddr && !g.port,
	   "the conninfo's host wins over the service's: nothing to look up");
	ok(resolve(&g, "service=numeric") == 0 && g.result == 0 && !g.host,
	   "a service's address: nothing to look up");
	setenv("PGSERVICE", "mine", 1);
	ok(resolve(&g, "dbname=x") == 0 && g.result == 0 && g.host &&
	   items_in(g.host, "localhost") >= 1, "PGSERVICE");
	unsetenv("PGSERVICE");
	ok(resolve(&g, "service=nosuch") == 0 && g.result == 0 && !g.host,
	   "an unknown service: connected as it is (libpq says why)");
	unlink(svc);
	unsetenv("PGSERVICEFILE");

	got_release(&g);
	ok(pgresolve_start(&r, loop, "host=localhost", 30000, on_resolved,
			   &g) == 0 && r, "a lookup started");
	pgresolve_cancel(r);
	t = loop_add_timer(loop, 300, on_give_up, NULL);
	loop_run(loop);
	loop_del_timer(loop, t);
	ok(g.calls == 0, "a cancelled lookup never calls back");
	pgresolve_cancel(NULL);

	got_release(&g);
	loop_free(loop);
	return tap_done();
}
