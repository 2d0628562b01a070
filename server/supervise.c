/* supervise: restart with back-off (see supervise.h). */
#include "supervise.h"

#include <stddef.h>

#include "loop.h"
#include "util.h"
#include "banned.h"

void backoff_init(struct restart_backoff *b, long min_ms, long max_ms,
		  long stable_ms)
{
	b->min_ms = min_ms;
	b->max_ms = max_ms;
	b->stable_ms = stable_ms;
	b->next_ms = min_ms;
}

long backoff_failed(struct restart_backoff *b)
{
	long delay = b->next_ms < b->min_ms ? b->min_ms : b->next_ms;

	b->next_ms = delay > b->max_ms / 2 ? b->max_ms : delay * 2;
	return delay;
}

long backoff_exited(struct restart_backoff *b, int64_t started_ms)
{
	if (now_ms() - started_ms >= b->stable_ms)
		b->next_ms = b->min_ms;
	return backoff_failed(b);
}

static void restart(struct loop *l, void *arg)
{
	struct supervisor *s = arg;
	long delay;

	(void)l;
	s->timer = 0;
	if (s->start(s->arg) == 0) {
		s->restarts++;
		return;
	}
	delay = backoff_failed(&s->backoff);
	if (s->on_retry)
		s->on_retry(s->arg, delay);
	if (s->loop && !s->timer)
		s->timer = loop_add_timer(s->loop, delay, restart, s);
}

void supervisor_init(struct supervisor *s, struct loop *l, long min_ms,
		     long max_ms, long stable_ms, int (*start)(void *arg),
		     void (*on_retry)(void *arg, long delay_ms), void *arg)
{
	backoff_init(&s->backoff, min_ms, max_ms, stable_ms);
	s->loop = l;
	s->started_ms = 0;
	s->timer = 0;
	s->restarts = 0;
	s->start = start;
	s->on_retry = on_retry;
	s->arg = arg;
}

void supervisor_started(struct supervisor *s)
{
	s->started_ms = now_ms();
}

long supervisor_exited(struct supervisor *s)
{
	long delay = backoff_exited(&s->backoff, s->started_ms);

	if (s->loop && !s->timer)
		s->timer = loop_add_timer(s->loop, delay, restart, s);
	return delay;
}

long supervisor_failed(struct supervisor *s)
{
	long delay = backoff_failed(&s->backoff);

	if (s->loop && !s->timer)
		s->timer = loop_add_timer(s->loop, delay, restart, s);
	return delay;
}

void supervisor_cancel(struct supervisor *s)
{
	if (s->timer)
		loop_del_timer(s->loop, s->timer);
	s->timer = 0;
}
