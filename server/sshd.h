/*
 * sshd: berth's SSH listener, in the engine (libssh is used here only to
 * make the host keys; the engine never parses SSH traffic itself).
 *
 * sshd_start() binds cfg->ssh_listen, makes the host keys (ed25519, and
 * ECDSA P-256 for clients without ed25519) under ROOT/host on first start
 * (hostkeys.h), and watches the listening socket in the engine's loop.
 * Each accepted connection is handed (as fd 3) to a fresh session process,
 * "berth session" (session.h), started through spawn once its client has
 * sent something (or after a second of silence), with a socketpair to the
 * engine as fd 4 (the door's counts).  The door is OpenSSH's:
 * unauthenticated connections are capped by cfg->ssh_max_startups
 * (START:RATE:FULL, random early drop) and cfg->ssh_per_source_max_startups,
 * the oldest connection that has not finished its key exchange being
 * closed to make room before a new one is dropped; authenticated sessions
 * by cfg->max_sessions and "logs -f" followers apart by
 * cfg->ssh_max_followers (the limits are read live, SIGHUP changes them).
 *
 * The door's socketpair carries single bytes: the session sends 'k' once
 * the key exchange is done, then 'a' (a session) or 'f' (a follower) once
 * authenticated with its command, and the engine answers 'y' or 'n'.
 *
 * Everything here runs in the engine's process and never blocks: accept,
 * spawn and the door's reads are driven by the loop.
 */
#ifndef BERTH_SSHD_H
#define BERTH_SSHD_H

struct config;
struct loop;
struct sshd;

/* self_exe: path of the berth binary, for starting session processes.
 * Errors (a host key that cannot be made or read, an address that cannot
 * be bound): -1, error_last() says which; nothing is left listening. */
int sshd_start(struct sshd **out, const struct config *cfg, struct loop *l,
	       const char *self_exe);
/* Close the listening socket; running sessions finish on their own. */
void sshd_stop(struct sshd *s);

#endif
