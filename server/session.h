/*
 * session: one SSH connection, in its own process ("berth session",
 * started by the engine's listener, sshd.h).  The process ends with its
 * connection.
 *
 * session_main() does the key exchange, public-key authentication against
 * ROOT/keys/authorized_keys, and one exec request: git-receive-pack /
 * git-upload-pack on an app's repository, or an engine command sent over
 * the control socket.  A connection must authenticate and ask for its
 * command within cfg->ssh_login_grace_ms; a client that takes no output for
 * cfg->git_timeout_ms (git_idle_timeout) is cut.
 * Engine commands: the exec string is split by sshd_split_command() and
 * sent as one request; data lines go to the client's stdout, "error: MSG"
 * to its stderr with exit status 1 ("ok": 0; engine unreachable: 111).
 * Over SSH, "deploy" (it names a server path) is refused, "keys" is for
 * admin keys only ("keys add" without key text reads it from stdin), and
 * "rm NAME" without --force asks for the name on the channel.  When the
 * client hangs up (ctrl-c on "logs -f") the control connection is closed.
 * No shell, pty, subsystem, env or port forwarding; one channel, one exec.
 *
 * As root the process splits before it reads a byte from the client
 * (privsep.h): the host keys are loaded, then a child drops for good to
 * berth-ssh and runs libssh (key exchange, authentication, the channel)
 * and parses the exec command; the root monitor, which never touches the
 * connection nor reads a command line, answers its key lookups from
 * authorized_keys and runs the request the child parsed (checked in full,
 * privsep.h) while the child relays the channel.  The engine sees one process (the
 * monitor; the child dies with it).  Without root nothing splits.
 *
 * Everything here blocks: each half does one thing at a time.
 */
#ifndef BERTH_SESSION_H
#define BERTH_SESSION_H

struct config;
struct strv;

/* Entry point of "berth session": fd is the accepted connection, door_fd
 * the engine's socketpair for the door's counts (-1: none).
 * Returns the process exit code. */
int session_main(const struct config *cfg, int fd, int door_fd);

/*
 * The root half of a split session (privsep.h) over mux, its end of the
 * pair with the berth-ssh half, for a client at peer_ip (numeric, for
 * from=; NULL: unknown) named peer in the log: answers key questions from authorized_keys,
 * takes one request of a key it let in and runs it with the other half
 * relaying the channel.  Returns when the other half is gone, or at once
 * at the first message it must not believe (malformed, a request before
 * a key proved itself), having run nothing for it.  The caller closes mux.
 */
void session_monitor(const struct config *cfg, int mux, const char *peer,
		     const char *peer_ip);

/*
 * Split an exec command into words the way a user expects from a shell,
 * but with nothing a shell would run or expand: blanks separate words,
 * '...' is literal, "..." allows \" \\ \$ \` escapes, a backslash outside
 * quotes takes the next character as it is.  Any of ; | & $ ` < > outside
 * single quotes, control characters, empty words and unterminated quotes
 * are refused: ERR_INVALID, error_last() says which ("unsupported
 * character ';' in command").  Words are appended to out.  Pure: runs in
 * any process.
 */
int sshd_split_command(struct strv *out, const char *cmd);

#endif
