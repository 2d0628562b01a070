/* loop: see loop.h.  Timers live in a small unsorted array: an engine has
 * tens of them, and a scan is cheaper than keeping a heap correct. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "util.h"
#include "banned.h"

struct loop_fd {
	loop_fd_fn fn;
	void *arg;
	unsigned events;
	int active;
};

struct loop_timer {
	uint64_t id;
	int64_t due;
	loop_timer_fn fn;
	void *arg;
};

struct loop {
	int epfd;
	int stop;
	struct loop_fd *fds;
	size_t nfds;
	struct loop_timer *timers;
	size_t ntimers, atimers;
	uint64_t next_id;
};

struct loop *loop_new(void)
{
	struct loop *l = xcalloc(1, sizeof(*l));

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		error_setsys("epoll_create1");
		return NULL;
	}
	l->next_id = 1;
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l->fds);
	free(l->timers);
	free(l);
}

static uint32_t to_epoll(unsigned events)
{
	uint32_t e = 0;

	if (events & LOOP_READ)
		e |= EPOLLIN;
	if (events & LOOP_WRITE)
		e |= EPOLLOUT;
	return e;
}

int loop_add_fd(struct loop *l, int fd, unsigned events, loop_fd_fn fn,
		void *arg)
{
	struct epoll_event ev;

	if (fd < 0)
		return error_set("bad fd");
	if ((size_t)fd >= l->nfds) {
		size_t n = (size_t)fd + 64;

		l->fds = xrealloc(l->fds, n * sizeof(*l->fds));
		memset(l->fds + l->nfds, 0, (n - l->nfds) * sizeof(*l->fds));
		l->nfds = n;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = to_epoll(events);
	ev.data.fd = fd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return error_setsys("epoll_ctl add");
	l->fds[fd].fn = fn;
	l->fds[fd].arg = arg;
	l->fds[fd].events = events;
	l->fds[fd].active = 1;
	return 0;
}

int loop_mod_fd(struct loop *l, int fd, unsigned events)
{
	struct epoll_event ev;

	if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].active)
		return error_set("fd %d not watched", fd);
	memset(&ev, 0, sizeof(ev));
	ev.events = to_epoll(events);
	ev.data.fd = fd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return error_setsys("epoll_ctl mod");
	l->fds[fd].events = events;
	return 0;
}

void loop_del_fd(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].active)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&l->fds[fd], 0, sizeof(l->fds[fd]));
}

uint64_t loop_add_timer(struct loop *l, long ms, loop_timer_fn fn, void *arg)
{
	struct loop_timer *t;

	if (l->ntimers == l->atimers) {
		l->atimers = l->atimers ? l->atimers * 2 : 16;
		l->timers = xrealloc(l->timers, l->atimers * sizeof(*l->timers));
	}
	t = &l->timers[l->ntimers++];
	t->id = l->next_id++;
	t->due = now_ms() + (ms > 0 ? ms : 0);
	t->fn = fn;
	t->arg = arg;
	return t->id;
}

void loop_del_timer(struct loop *l, uint64_t id)
{
	size_t i;

	if (!id)
		return;
	for (i = 0; i < l->ntimers; i++) {
		if (l->timers[i].id == id) {
			l->timers[i] = l->timers[--l->ntimers];
			return;
		}
	}
}

void loop_stop(struct loop *l)
{
	l->stop = 1;
}

static int next_timeout(struct loop *l)
{
	int64_t now = now_ms(), best = -1;
	size_t i;

	for (i = 0; i < l->ntimers; i++) {
		int64_t d = l->timers[i].due - now;

		if (d < 0)
			d = 0;
		if (best < 0 || d < best)
			best = d;
	}
	if (best > 60000 || best < 0)
		return best < 0 ? -1 : 60000;
	return (int)best;
}

/* Fire due timers, one at a time: a callback may change the array. */
static void run_timers(struct loop *l)
{
	int64_t now = now_ms();
	uint64_t limit = l->next_id;
	size_t i;

	for (;;) {
		struct loop_timer t;

		for (i = 0; i < l->ntimers; i++)
			if (l->timers[i].due <= now && l->timers[i].id < limit)
				break;
		if (i == l->ntimers)
			return;
		t = l->timers[i];
		l->timers[i] = l->timers[--l->ntimers];
		t.fn(l, t.arg);
		if (l->stop)
			return;
	}
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[64];
	int i, n;

	l->stop = 0;
	while (!l->stop) {
		n = epoll_wait(l->epfd, evs, 64, next_timeout(l));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return error_setsys("epoll_wait");
		}
		for (i = 0; i < n && !l->stop; i++) {
			int fd = evs[i].data.fd;
			unsigned ev = 0;
			struct loop_fd *f;

			if ((size_t)fd >= l->nfds || !l->fds[fd].active)
				continue;
			f = &l->fds[fd];
			if (evs[i].events & EPOLLIN)
				ev |= LOOP_READ;
			if (evs[i].events & EPOLLOUT)
				ev |= LOOP_WRITE;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				ev |= LOOP_ERROR | (f->events & LOOP_READ);
			f->fn(l, fd, ev, f->arg);
		}
		if (!l->stop)
			run_timers(l);
	}
	return 0;
}
