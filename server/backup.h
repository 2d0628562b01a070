/*
 * backup: the app's database out and back in, run by the client side
 * (the local CLI, or the SSH session for "ssh deploy ..."), never by the
 * engine, whose loop must not wait on a dump:
 *
 *   pg:backup APP [FILE|-]        pg_dump, custom format, to FILE or stdout
 *   pg:restore APP FILE|- [--force]
 *                                 pg_restore in one transaction; refused
 *                                 without --force when the database has
 *                                 tables (with --force, what the dump holds
 *                                 is dropped and made again)
 *   pg:psql APP                   psql as the app's role
 *
 * The engine answers "pg APP" (does it have a database?) and gives the
 * app's DATABASE_URL (as "config APP get" does); the PostgreSQL client
 * programs then run as "nobody" when the caller is root (the URL is the
 * app's, which its pusher can change: root never connects on its behalf),
 * with the connection in PG* variables, never on a command line.
 * Over SSH, FILE must be "-": a path on the server is not the remote
 * user's to name.
 */
#ifndef BERTH_BACKUP_H
#define BERTH_BACKUP_H

#include <sys/types.h>

struct buf;

/* Where bytes come from and go to: stdin/stdout, or an SSH channel. */
struct backup_io {
	void *ctx;
	/* Up to len bytes; 0 at the end, -1 on error (error_last()). */
	ssize_t (*read)(void *ctx, void *buf, size_t len);
	/* All of len bytes; -1 on error. */
	int (*write)(void *ctx, const void *buf, size_t len);
	/* The command's one-line error for the user (no "error: " prefix). */
	void (*error)(void *ctx, const char *msg);	/* or NULL */
	int local;		/* FILE arguments allowed (local CLI) */
	/* pg:psql: the terminal's (or channel's) fds, or -1 when psql must
	 * talk through read/write instead. */
	int in_fd, out_fd, err_fd;
	/* With a terminal that is not the caller's own (an SSH session's
	 * pseudo-terminal, whose slave is in_fd): psql gets it as its
	 * controlling terminal in a session of its own, and tty_relay runs
	 * while psql does (it returns -1 when the user went away, and psql
	 * is stopped).  term: the client's TERM, or NULL. */
	int (*tty_relay)(void *ctx);
	const char *term;
};

/*
 * All of io's input up to its end, appended to out, whose size cap (buf.h)
 * bounds it: 0; ERR_INVALID when the input passes the cap (what came is
 * dropped: out is empty); -1 on a read error (error_last()).
 */
int backup_read_all(struct backup_io *io, struct buf *out);

/* 1 if argv[0] is one of the commands above. */
int backup_is_command(const char *cmd);

/*
 * Run one of them for the state folder root.  Returns the exit status:
 * 0, 1 (failed: io->error said why, nothing changed), 100 (usage), 111
 * (the engine is not running).
 */
int backup_command(const char *root, int argc, char **argv,
		   struct backup_io *io);

/* The one-line error of a command (printf-style) through io->error, if
 * it has one (backup.c and export.c). */
void backup_say_error(struct backup_io *io, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
