/*
 * sshd: berth's own SSH endpoint (libssh).
 *
 * Engine side: sshd_start() binds cfg->ssh_listen, makes the host keys
 * (ed25519, and ECDSA P-256 for clients without ed25519) under ROOT/host
 * on first start, and watches the listening socket in the engine's loop.
 * Each accepted connection is handed (as fd 3) to a
 * fresh session process, "berth session", started through spawn once its
 * client has sent something (or after a second of silence), with a
 * socketpair to the engine as fd 4 (the door's counts).  The door is
 * OpenSSH's: unauthenticated connections are capped by
 * cfg->ssh_max_startups (START:RATE:FULL, random early drop) and
 * cfg->ssh_per_source_max_startups, the oldest connection that has not
 * finished its key exchange being closed to make room before a new one is
 * dropped; authenticated sessions by cfg->max_sessions and "logs -f"
 * followers apart by cfg->ssh_max_followers (the limits are read live,
 * SIGHUP changes them).  The engine never parses SSH traffic itself.
 *
 * Session side: session_main() does the key exchange, public-key
 * authentication against ROOT/keys/authorized_keys, and one exec request:
 * git-receive-pack / git-upload-pack on an app's repository, or an engine
 * command sent over the control socket.  It exits when the connection ends.
 * A connection must authenticate and ask for its command within
 * cfg->ssh_login_grace_ms; a client that takes no output for
 * cfg->git_timeout_ms (git_idle_timeout) is cut.
 * Engine commands: the exec string is split by sshd_split_command() and
 * sent as one request; data lines go to the client's stdout, "error: MSG"
 * to its stderr with exit status 1 ("ok": 0; engine unreachable: 111).
 * Over SSH, "deploy" (it names a server path) is refused, "keys" is for
 * admin keys only ("keys add" without key text reads it from stdin), and
 * "rm NAME" without --force asks for the name on the channel.  When the
 * client hangs up (ctrl-c on "logs -f") the control connection is closed.
 * No shell, pty, subsystem, env or port forwarding; one channel, one exec.
 */
#ifndef BERTH_SSHD_H
#define BERTH_SSHD_H

struct config;
struct loop;
struct sshd;

/* self_exe: path of the berth binary, for starting session processes. */
int sshd_start(struct sshd **out, const struct config *cfg, struct loop *l,
	       const char *self_exe);
/* Close the listening socket; running sessions finish on their own. */
void sshd_stop(struct sshd *s);

/* Entry point of "berth session": fd is the accepted connection, door_fd
 * the engine's socketpair for the door's counts (-1: none).
 * Returns the process exit code. */
int session_main(const struct config *cfg, int fd, int door_fd);

struct strv;
/*
 * Split an exec command into words the way a user expects from a shell,
 * but with nothing a shell would run or expand: blanks separate words,
 * '...' is literal, "..." allows \" \\ \$ \` escapes, a backslash outside
 * quotes takes the next character as it is.  Any of ; | & $ ` < > outside
 * single quotes, control characters, empty words and unterminated quotes
 * are refused: ERR_INVALID, error_last() says which ("unsupported
 * character ';' in command").  Words are appended to out.
 */
int sshd_split_command(struct strv *out, const char *cmd);

#endif
