/*
 * hostkeys: the SSH host key files under the state directory.  The
 * listener (sshd.c) makes them before it listens; each session (session.c)
 * loads them before it reads a byte from its client.
 */
#ifndef BERTH_HOSTKEYS_H
#define BERTH_HOSTKEYS_H

#include <libssh/libssh.h>

/* under the state directory: ed25519, and ECDSA P-256 for clients
 * without ed25519 (JSch in JGit and Eclipse) */
static const struct {
	const char *path;
	enum ssh_keytypes_e type;
	int bits;
} host_keys[] = {
	{ "host/ssh_host_ed25519_key", SSH_KEYTYPE_ED25519, 0 },
	{ "host/ssh_host_ecdsa_key", SSH_KEYTYPE_ECDSA_P256, 256 },
};

#endif
