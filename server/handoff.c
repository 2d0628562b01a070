/* handoff: see handoff.h. */
#include "handoff.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "banned.h"

/* nginx is the only client; a deep queue rides out a slow start. */
#define HANDOFF_BACKLOG 1024

static const char *const handoff_vars[] = {
	"SERVER_STARTER_PORT", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID",
};

int handoff_open(int port, int *fd_out, int *bound_port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, one = 1, ret = -1;

	*fd_out = -1;
	*bound_port = 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_setsys("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		error_setsys("setsockopt");
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		error_setsys("cannot bind 127.0.0.1:%d", port);
		goto out;
	}
	if (listen(fd, HANDOFF_BACKLOG) < 0) {
		error_setsys("cannot listen on 127.0.0.1:%d", port);
		goto out;
	}
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		error_setsys("getsockname");
		goto out;
	}
	*bound_port = ntohs(sa.sin_port);
	*fd_out = fd;
	fd = -1;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static void env_remove(struct strv *env, const char *key)
{
	long i;

	while ((i = strv_env_find(env, key)) >= 0) {
		free(env->v[i]);
		memmove(&env->v[i], &env->v[i + 1],
			(env->n - (size_t)i) * sizeof(char *));
		env->n--;
	}
}

void handoff_env_clear(struct strv *env)
{
	size_t i;

	for (i = 0; i < sizeof(handoff_vars) / sizeof(*handoff_vars); i++)
		env_remove(env, handoff_vars[i]);
}

void handoff_env(struct strv *env, int bound_port, const char *name)
{
	char v[64];

	handoff_env_clear(env);
	snprintf(v, sizeof(v), "127.0.0.1:%d=3", bound_port);
	strv_env_set(env, "SERVER_STARTER_PORT", v);
	strv_env_set(env, "LISTEN_FDS", "1");
	strv_env_set(env, "LISTEN_FDNAMES", name);
}
