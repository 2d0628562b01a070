/* serverlog: see serverlog.h. */
#include "serverlog.h"

#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "log.h"
#include "logger.h"
#include "util.h"
#include "banned.h"

static struct logger *server_log;

static void write_line(void *arg, const char *source, const char *line)
{
	logger_line(arg, source, line, strlen(line));
}

int serverlog_open(struct engine *e)
{
	char *path = engine_path(e, "logs/berth.log");

	server_log = logger_open_file(path, e->cfg->log_max_bytes);
	free(path);
	if (!server_log)
		return -1;
	log_set_sink(write_line, server_log);
	return 0;
}

void serverlog_end_followers(void)
{
	logger_end_followers(server_log);
}

void serverlog_close(void)
{
	log_set_sink(NULL, NULL);
	logger_free(server_log);
	server_log = NULL;
}

void serverlog_cmd_logs(struct engine *e, struct client *c, long n,
			int follow)
{
	char *path = engine_path(e, "logs/berth.log");
	struct buf out = BUF_INIT;
	char *line, *save = NULL;

	if (logger_tail_file(path, n, &out) < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	if (out.len)
		for (save = out.data, line = str_token(&save, "\n"); line;
		     line = str_token(&save, "\n"))
			client_data(c, "%s", line);
	if (follow && server_log)
		logger_follow(server_log, c, NULL);
	else
		client_ok(c);
out:
	buf_release(&out);
	free(path);
}
