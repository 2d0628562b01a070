/* control: see control.h. */
#include "control.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "banned.h"

static int word_char_plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("._,:/@+=^~-", c);
}

int control_parse_request(struct strv *argv, const char *line, size_t len)
{
	struct buf word = BUF_INIT;
	size_t i = 0;
	int ret = -1;

	if (len > CONTROL_LINE_MAX)
		return error_set("request too long");
	if (len && line[len - 1] == '\r')
		len--;
	while (i < len) {
		buf_reset(&word);
		if (line[i] == ' ') {
			error_set("empty word in request");
			goto out;
		}
		while (i < len && line[i] != ' ') {
			unsigned char c = (unsigned char)line[i];

			if (c == '%') {
				int hi, lo;

				if (i + 2 >= len) {
					error_set("bad escape in request");
					goto out;
				}
				hi = hex_value(line[i + 1]);
				lo = hex_value(line[i + 2]);
				if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
					error_set("bad escape in request");
					goto out;
				}
				c = (unsigned char)(hi << 4 | lo);
				i += 3;
			} else if (c < 0x20 || c == 0x7f) {
				error_set("control character in request");
				goto out;
			} else {
				i++;
			}
			buf_add(&word, &c, 1);
		}
		if (argv->n >= CONTROL_MAX_WORDS) {
			error_set("too many words in request");
			goto out;
		}
		strv_push(argv, word.data ? word.data : "");
		if (i < len) {
			i++;	/* the separating space */
			if (i == len) {
				error_set("trailing space in request");
				goto out;
			}
		}
	}
	if (argv->n == 0) {
		error_set("empty request");
		goto out;
	}
	ret = 0;
out:
	buf_release(&word);
	return ret;
}

void control_encode_request(struct buf *out, int argc, char *const *argv)
{
	int i;
	const unsigned char *p;

	for (i = 0; i < argc; i++) {
		if (i)
			buf_add(out, " ", 1);
		for (p = (const unsigned char *)argv[i]; *p; p++) {
			if (word_char_plain(*p))
				buf_add(out, p, 1);
			else
				buf_addf(out, "%%%02X", *p);
		}
	}
	buf_add(out, "\n", 1);
}

void control_encode_data(struct buf *out, const char *line, size_t len)
{
	if ((len == 2 && !memcmp(line, "ok", 2)) ||
	    (len >= 3 && !memcmp(line, "ok ", 3)) ||
	    (len >= 7 && !memcmp(line, "fields ", 7)) ||
	    (len >= 5 && !memcmp(line, "error", 5)) ||
	    (len >= 1 && line[0] == '\\'))
		buf_add(out, "\\", 1);
	buf_add(out, line, len);
	buf_add(out, "\n", 1);
}

void control_reader_init(struct control_reader *r)
{
	buf_init(&r->in, 0);
	r->code[0] = '\0';
}

/* "error CODE: MESSAGE": the length of CODE ([a-z]+, bounded), or 0. */
static size_t error_code_len(const char *s)
{
	size_t n = 0;

	while (s[n] >= 'a' && s[n] <= 'z' && n < CONTROL_CODE_MAX - 1)
		n++;
	return n && s[n] == ':' ? n : 0;
}

void control_reader_release(struct control_reader *r)
{
	buf_release(&r->in);
}

int control_reader_feed(struct control_reader *r, const char *data,
			size_t len, control_line_fn fn, void *arg)
{
	char *nl;
	int ret = 0;

	buf_add(&r->in, data, len);
	while (r->in.len && (nl = memchr(r->in.data, '\n', r->in.len))) {
		size_t n = (size_t)(nl - r->in.data);
		char *line = r->in.data;

		*nl = '\0';
		r->code[0] = '\0';
		if (!strcmp(line, "ok"))
			ret = fn(arg, CONTROL_OK, "");
		else if (!strncmp(line, "ok ", 3))
			ret = fn(arg, CONTROL_OK, line + 3);
		else if (!strncmp(line, "fields ", 7))
			ret = fn(arg, CONTROL_FIELDS, line + 7);
		else if (!strncmp(line, "error ", 6) && error_code_len(line + 6)) {
			size_t k = error_code_len(line + 6);
			const char *msg = line + 6 + k + 1;

			memcpy(r->code, line + 6, k);
			r->code[k] = '\0';
			if (*msg == ' ')
				msg++;
			ret = fn(arg, CONTROL_ERROR, msg);
		} else if (!strncmp(line, "error: ", 7))
			ret = fn(arg, CONTROL_ERROR, line + 7);
		else if (!strncmp(line, "error:", 6))
			ret = fn(arg, CONTROL_ERROR, line + 6);
		else if (line[0] == '\\')
			ret = fn(arg, CONTROL_DATA, line + 1);
		else
			ret = fn(arg, CONTROL_DATA, line);
		buf_consume(&r->in, n + 1);
		if (ret)
			return ret;
	}
	if (r->in.len > CONTROL_LINE_MAX * 4)
		return error_set("response line too long");
	return 0;
}

int control_field(const char *fields, const char *key, char *out,
		  size_t size)
{
	size_t klen = strlen(key);
	const char *s = fields;

	while (s && *s) {
		const char *end = strchr(s, ' ');
		size_t len = end ? (size_t)(end - s) : strlen(s);

		if (len > klen && !strncmp(s, key, klen) && s[klen] == '=') {
			if (len - klen - 1 >= size)
				return -1;
			memcpy(out, s + klen + 1, len - klen - 1);
			out[len - klen - 1] = '\0';
			return 0;
		}
		s = end ? end + 1 : NULL;
	}
	return -1;
}

void control_field_encode(struct buf *out, const char *value)
{
	const unsigned char *p;

	for (p = (const unsigned char *)value; *p; p++) {
		if (*p <= 0x20 || *p == '%' || *p == 0x7f)
			buf_addf(out, "%%%02X", *p);
		else
			buf_add(out, p, 1);
	}
	buf_add(out, "", 0);
}

void control_field_add(struct buf *out, const char *key, const char *value)
{
	buf_addf(out, " %s=", key);
	control_field_encode(out, value && *value ? value : "-");
}

int control_field_decode(const char *fields, const char *key,
			 struct buf *out)
{
	size_t klen = strlen(key);
	const char *s = fields, *v = NULL, *end = NULL;

	buf_reset(out);
	while (s && *s && !v) {
		end = strchr(s, ' ');
		if (!strncmp(s, key, klen) && s[klen] == '=')
			v = s + klen + 1;
		else
			s = end ? end + 1 : NULL;
	}
	if (!v)
		return -1;
	if (!end)
		end = v + strlen(v);
	for (; v < end; v++) {
		unsigned char c = (unsigned char)*v;

		if (c == '%') {
			int hi = end - v >= 3 ? hex_value(v[1]) : -1;
			int lo = hi >= 0 ? hex_value(v[2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				buf_reset(out);
				return -1;
			}
			c = (unsigned char)(hi << 4 | lo);
			v += 2;
		}
		buf_add(out, &c, 1);
	}
	buf_add(out, "", 0);
	return 0;
}

long control_field_long(const char *fields, const char *key)
{
	char num[24];

	if (control_field(fields, key, num, sizeof(num)) < 0)
		return -1;
	return parse_long(num, LONG_MAX);
}

int control_error_status(const char *code)
{
	return !strcmp(code, CONTROL_ERR_USAGE) ? 100 : 1;
}

int control_connect(const char *root)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", root,
		     CONTROL_SOCKET) >= (int)sizeof(sa.sun_path))
		return error_set("state directory path too long for a socket");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_setsys("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		error_setsys("cannot reach the engine at '%s' (is 'berth serve' running?)",
			     sa.sun_path);
		close(fd);
		return -1;
	}
	return fd;
}

struct call_state {
	control_line_fn fn;
	void *arg;
	int done;	/* 1 ok, 2 error */
	char *errmsg;
	char *fields;	/* of the ok line */
};

static int call_line(void *arg, enum control_kind kind, const char *text)
{
	struct call_state *cs = arg;
	int ret = 0;

	if (cs->fn)
		ret = cs->fn(cs->arg, kind, text);
	if (kind == CONTROL_OK) {
		cs->done = 1;
		cs->fields = xstrdup(text);
		return 1;
	}
	if (kind == CONTROL_ERROR) {
		cs->done = 2;
		cs->errmsg = xstrdup(text);
		return 1;
	}
	return ret;
}

int control_send_request(int fd, int argc, char *const *argv,
			 const int *fds, size_t nfds)
{
	struct buf req = BUF_INIT;
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * 3)];
	} ctl;
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cm;
	ssize_t n;
	int ret = -1;

	control_encode_request(&req, argc, argv);
	if (req.len > CONTROL_LINE_MAX + 1) {
		error_set("request too long");
		goto out;
	}
	if (nfds > 3) {
		error_set("too many descriptors for one request");
		goto out;
	}
	if (!nfds) {
		if (write_all(fd, req.data, req.len) < 0) {
			error_setsys("cannot send request");
			goto out;
		}
		ret = 0;
		goto out;
	}
	/* the descriptors ride on the request's first byte */
	memset(&msg, 0, sizeof(msg));
	memset(&ctl, 0, sizeof(ctl));
	iov.iov_base = req.data;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.space;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	do {
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n != 1 || write_all(fd, req.data + 1, req.len - 1) < 0) {
		error_setsys("cannot send request");
		goto out;
	}
	ret = 0;
out:
	buf_release(&req);
	return ret;
}

static int call_fds(const char *root, int argc, char *const *argv,
		    const int *fds, size_t nfds, control_line_fn fn,
		    void *arg, char **errmsg, struct control_result *res);

int control_call(const char *root, int argc, char *const *argv,
		 control_line_fn fn, void *arg, char **errmsg)
{
	return call_fds(root, argc, argv, NULL, 0, fn, arg, errmsg, NULL);
}

int control_call_fds(const char *root, int argc, char *const *argv,
		     const int *fds, size_t nfds, control_line_fn fn,
		     void *arg, struct control_result *res)
{
	memset(res, 0, sizeof(*res));
	return call_fds(root, argc, argv, fds, nfds, fn, arg, NULL, res);
}

int control_call_result(const char *root, int argc, char *const *argv,
			control_line_fn fn, void *arg,
			struct control_result *res)
{
	memset(res, 0, sizeof(*res));
	return call_fds(root, argc, argv, NULL, 0, fn, arg, NULL, res);
}

void control_result_release(struct control_result *res)
{
	free(res->fields);
	free(res->message);
	memset(res, 0, sizeof(*res));
}

static int call_fds(const char *root, int argc, char *const *argv,
		    const int *fds, size_t nfds, control_line_fn fn,
		    void *arg, char **errmsg, struct control_result *res)
{
	struct control_reader rd;
	struct call_state cs = { fn, arg, 0, NULL, NULL };
	char chunk[8192];
	int fd, ret = -1, r;
	ssize_t n;

	control_reader_init(&rd);
	fd = control_connect(root);
	if (fd < 0)
		goto out;
	if (control_send_request(fd, argc, argv, fds, nfds) < 0)
		goto out;
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_setsys("cannot read from the engine");
			goto out;
		}
		if (n == 0) {
			error_set("the engine closed the connection early");
			goto out;
		}
		r = control_reader_feed(&rd, chunk, (size_t)n, call_line, &cs);
		if (cs.done)
			break;
		if (r) {
			if (r < 0)
				goto out;
			/* the caller asked to stop early */
			error_set("stopped");
			goto out;
		}
	}
	if (cs.done == 1) {
		ret = 0;
		if (res) {
			res->fields = cs.fields;
			cs.fields = NULL;
		}
	} else {
		ret = 1;
		if (res) {
			memcpy(res->code, rd.code, sizeof(res->code));
			res->message = cs.errmsg;
			cs.errmsg = NULL;
		}
		if (errmsg) {
			*errmsg = cs.errmsg;
			cs.errmsg = NULL;
		}
	}
out:
	free(cs.errmsg);
	free(cs.fields);
	if (fd >= 0)
		close(fd);
	control_reader_release(&rd);
	return ret;
}
