/* appstate: see appstate.h. */
#include "appstate.h"

#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "banned.h"

void appstate_init(struct appstate *st)
{
	memset(st, 0, sizeof(*st));
}

void appstate_release(struct appstate *st)
{
	strv_release(&st->scale);
	free(st->slots);
	free(st->result);
	free(st->reason);
	appstate_init(st);
}

static int scale_valid(const char *s)
{
	const char *eq = strchr(s, '=');
	char *type;
	int ok;

	if (!eq)
		return 0;
	type = xstrndup(s, (size_t)(eq - s));
	ok = proc_type_valid(type) && parse_long(eq + 1, 100) >= 0;
	free(type);
	return ok;
}

static int text_valid(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return 0;
	return 1;
}

/* At most 40 bytes of s for a message, anything but printable ASCII as
 * '?' (the file may hold any bytes; the message goes to terminals). */
static const char *shown(const char *s)
{
	static char out[41];
	size_t i;

	for (i = 0; s[i] && i < sizeof(out) - 1; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
	return out;
}

static int parse_line(struct appstate *st, char *line)
{
	char *val = strchr(line, ' ');
	long v;
	size_t i;

	if (!val)
		return error_set("no value in '%s'", shown(line));
	*val++ = '\0';
	v = parse_long(val, 1L << 30);
	if (!strcmp(line, "release") || !strcmp(line, "next")) {
		if (v < 0)
			return error_set("bad %s '%s'", line, shown(val));
		*(line[0] == 'r' ? &st->release : &st->next) = (int)v;
	} else if (!strcmp(line, "stopped")) {
		if (v != 0 && v != 1)
			return error_set("bad stopped '%s'", shown(val));
		st->stopped = (int)v;
	} else if (!strcmp(line, "scale")) {
		if (!scale_valid(val))
			return error_set("bad scale '%s'", shown(val));
		strv_push(&st->scale, val);
	} else if (!strcmp(line, "slot")) {
		if (v <= 0 || v > 65535)
			return error_set("bad slot '%s'", shown(val));
		for (i = 0; i < st->nslots; i++)
			if (st->slots[i] == (int)v)
				return error_set("slot %ld twice", v);
		if (st->nslots >= APPSTATE_MAX_SLOTS)
			return error_set("too many slots");
		st->slots = xrealloc(st->slots, (st->nslots + 1) * sizeof(int));
		st->slots[st->nslots++] = (int)v;
	} else if (!strcmp(line, "result") || !strcmp(line, "reason")) {
		char **slot = line[2] == 's' ? &st->result : &st->reason;

		if (!text_valid(val))
			return error_set("control character in %s", line);
		free(*slot);
		*slot = xstrdup(val);
	}
	return 0;
}

int appstate_parse(struct appstate *st, const char *buf, size_t len)
{
	char *copy = xstrndup(buf, len), *line, *nl;
	int n = 0, ret = 0;

	if (strlen(copy) != len) {
		ret = error_set("NUL byte in state");
		goto out;
	}
	for (line = copy; *line; line = nl + 1) {
		n++;
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (*line && parse_line(st, line) < 0) {
			char *why = xstrdup(error_last());

			ret = error_set("line %d: %s", n, why);
			free(why);
			goto out;
		}
		if (!nl)
			break;
	}
	if (st->nslots % 2) {
		ret = error_set("an odd number of slots (%zu)", st->nslots);
		goto out;
	}
	if (st->next < st->release)
		st->next = st->release;
out:
	if (ret < 0)
		appstate_release(st);
	free(copy);
	return ret;
}

void appstate_render(const struct appstate *st, struct buf *out)
{
	size_t i;

	buf_addf(out, "release %d\nnext %d\nstopped %d\n", st->release,
		 st->next, st->stopped);
	for (i = 0; i < st->scale.n; i++)
		buf_addf(out, "scale %s\n", st->scale.v[i]);
	for (i = 0; i < st->nslots; i++)
		buf_addf(out, "slot %d\n", st->slots[i]);
	if (st->result)
		buf_addf(out, "result %s\n", st->result);
	if (st->reason)
		buf_addf(out, "reason %s\n", st->reason);
}
