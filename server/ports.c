/* ports: see ports.h. */
#include "ports.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"
#include "banned.h"

void ports_init(struct ports *p, int min, int max)
{
	if (max < min)
		max = min;
	p->min = min;
	p->max = max;
	p->used = xcalloc((size_t)(max - min + 1), 1);
}

void ports_release(struct ports *p)
{
	FREE_AND_NULL(p->used);
}

int port_bindable(int port)
{
	struct sockaddr_in sa;
	int fd, one = 1, ok;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	/* SO_REUSEADDR: a port in TIME_WAIT is fine for the app too. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

int ports_take(struct ports *p)
{
	int span = p->max - p->min + 1, i, start;

	/* Start from a moving point so freed ports are not reused at once. */
	start = (int)(now_ms() % span);
	for (i = 0; i < span; i++) {
		int port = p->min + (start + i) % span;

		if (p->used[port - p->min])
			continue;
		if (!port_bindable(port))
			continue;
		p->used[port - p->min] = 1;
		return port;
	}
	return error_set("no free port in %d-%d", p->min, p->max);
}

void ports_mark(struct ports *p, int port)
{
	if (port >= p->min && port <= p->max)
		p->used[port - p->min] = 1;
}

void ports_put(struct ports *p, int port)
{
	if (port >= p->min && port <= p->max)
		p->used[port - p->min] = 0;
}
