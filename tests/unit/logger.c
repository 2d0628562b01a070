/* logger: a tail says where it ended (logger_tail_at()), and
 * logger_read_after() reads exactly the lines written after that place,
 * whole lines a call, across rotations, without blocking on a FIFO. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logger.h"
#include "util.h"
#include "tap.h"
#include "banned.h"

static long next_line = 1;

static void write_lines(struct logger *lg, long n)
{
	long i;

	for (i = 0; i < n; i++)
		logger_linef(lg, "web.1", "line %ld", next_line++);
}

/* The number in "STAMP web.1 line N" (one line, at s). */
static long line_no(const char *s)
{
	const char *p = strstr(s, " line ");

	return p ? strtol(p + 6, NULL, 10) : -1;
}

/*
 * Read after *pos until the end, max bytes a call: each call's part
 * ends a line.  The numbers of the lines read: the first in *first, the
 * count in *count; 1 if they run on without a gap, ending at last.
 */
static int catch_up(struct logger *lg, struct logger_pos *pos, size_t max,
		    long last, long *first, long *count, int *whole)
{
	struct buf out = BUF_INIT;
	long prev = -1, n = 0;
	int r = 0, calls, run_on = 1;
	char *line, *save;

	*first = -1;
	*whole = 1;
	for (calls = 0; calls < 10000 && r == 0; calls++) {
		size_t before = out.len;

		r = logger_read_after(lg, pos, max, &out);
		if (out.len > before && out.data[out.len - 1] != '\n')
			*whole = 0;
	}
	for (save = out.data, line = out.len ? str_token(&save, "\n") : NULL;
	     line; line = str_token(&save, "\n")) {
		long k = line_no(line);

		if (*first < 0)
			*first = k;
		if (prev >= 0 && k != prev + 1)
			run_on = 0;
		prev = k;
		n++;
	}
	*count = n;
	buf_release(&out);
	return r == 1 && run_on && (!n || prev == last);
}

int main(void)
{
	char tmpl[] = "/tmp/berth-logger-XXXXXX";
	char *dir = mkdtemp(tmpl), *path, *fifo;
	struct logger *lg;
	struct logger_pos pos;
	struct buf tail = BUF_INIT;
	struct stat st;
	long first, count;
	int whole;

	if (!dir)
		return 1;
	path = xasprintf("%s/app.log", dir);
	fifo = xasprintf("%s/app.log.3", dir);
	lg = logger_open(dir, 1000);
	ok(lg != NULL, "a log");

	write_lines(lg, 10);
	ok(logger_tail_at(dir, 5, &tail, &pos) == 0, "a tail");
	ok(stat(path, &st) == 0 && pos.dev == st.st_dev &&
	   pos.ino == st.st_ino && pos.off == st.st_size,
	   "it ends at the end of the current file");
	ok(line_no(tail.data) == 6, "the tail holds the last 5 lines");

	ok(catch_up(lg, &pos, 100, 10, &first, &count, &whole) &&
	   count == 0, "nothing written since: at the end at once");

	/* 50 lines of about 36 bytes: a rotation or two */
	write_lines(lg, 50);
	ok(catch_up(lg, &pos, 100, 60, &first, &count, &whole) &&
	   first == 11 && count == 50,
	   "the lines written since, across rotations, each once");
	ok(whole, "whole lines a call");
	ok(catch_up(lg, &pos, 100, 60, &first, &count, &whole) &&
	   count == 0, "then nothing more");

	/* more rotations than the kept files: the oldest kept one on */
	buf_reset(&tail);
	ok(logger_tail_at(dir, 1, &tail, &pos) == 0, "another tail");
	write_lines(lg, 200);
	ok(catch_up(lg, &pos, 4096, 260, &first, &count, &whole) &&
	   first > 61 && count == 260 - first + 1,
	   "a file rotated out: from the start of the oldest kept one");

	/* a FIFO among the kept files does not hold the reader up */
	ok(unlink(fifo) == 0 && mkfifo(fifo, 0600) == 0, "a FIFO as app.log.3");
	memset(&pos, 0, sizeof(pos));
	ok(catch_up(lg, &pos, 4096, 260, &first, &count, &whole) &&
	   count > 0, "a place in no file: the oldest kept regular file on");

	logger_free(lg);
	unlink(fifo);
	rm_rf(dir);
	buf_release(&tail);
	free(path);
	free(fifo);
	return tap_done();
}
