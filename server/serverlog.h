/*
 * serverlog: the engine's own log in ROOT/logs/berth.log, besides
 * stderr (which the journal takes under systemd).  Every log_*() line of
 * the engine process goes there, rotated by size like the apps' logs
 * (berth.log.1 .. .3, log_max_size), and "logs --server [-n N] [-f]"
 * reads and follows it.
 *
 * serverlog_open() needs ROOT/logs to exist; on failure the engine runs
 * on with stderr alone (the error is in error_last()).  One per process.
 */
#ifndef BERTH_SERVERLOG_H
#define BERTH_SERVERLOG_H

struct engine;
struct client;

int serverlog_open(struct engine *e);
/* Ends every follower; later lines go to stderr only. */
/* Engine exit, before its clients go: followers get their "ok". */
void serverlog_end_followers(void);
void serverlog_close(void);
/* The last n lines, then (follow) every new one until the client goes. */
void serverlog_cmd_logs(struct engine *e, struct client *c, long n,
			int follow);

#endif
