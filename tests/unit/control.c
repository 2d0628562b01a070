/* control.c: the typed last line of a response, and data lines that
 * would read as one. */
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

struct seen {
	enum control_kind kind;
	char text[256];
};

static int remember(void *arg, enum control_kind kind, const char *text)
{
	struct seen *s = arg;

	s->kind = kind;
	snprintf(s->text, sizeof(s->text), "%s", text);
	return 0;
}

static void feed(struct control_reader *r, const char *line, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	control_reader_feed(r, line, strlen(line), remember, s);
}

int main(void)
{
	struct control_reader r;
	struct seen s;
	struct buf b = BUF_INIT;

	control_reader_init(&r);
	feed(&r, "ok\n", &s);
	ok(s.kind == CONTROL_OK && !strcmp(s.text, ""), "plain ok");
	feed(&r, "ok release=5\n", &s);
	ok(s.kind == CONTROL_OK && !strcmp(s.text, "release=5"),
	   "ok with fields: '%s'", s.text);
	feed(&r, "error notfound: app 'x' does not exist\n", &s);
	ok(s.kind == CONTROL_ERROR &&
	   !strcmp(s.text, "app 'x' does not exist") &&
	   !strcmp(r.code, "notfound"), "error with a code: '%s' '%s'",
	   s.text, r.code);
	feed(&r, "error: usage: ps NAME\n", &s);
	ok(s.kind == CONTROL_ERROR && !strcmp(s.text, "usage: ps NAME") &&
	   !strcmp(r.code, ""), "error without a code");
	ok(control_error_status(r.code) == 1,
	   "without a code, status 1, whatever the message says");
	feed(&r, "error usage: usage: ps NAME\n", &s);
	ok(s.kind == CONTROL_ERROR && !strcmp(s.text, "usage: ps NAME") &&
	   !strcmp(r.code, CONTROL_ERR_USAGE), "a usage error: '%s' '%s'",
	   s.text, r.code);
	ok(control_error_status(r.code) == 100, "a usage error: status 100");
	ok(control_error_status(CONTROL_ERR_NOTFOUND) == 1,
	   "another code: status 1");
	feed(&r, "error in the data\n", &s);
	ok(s.kind == CONTROL_DATA, "no colon after the word: not an error line");

	control_encode_data(&b, "ok release=9", 12);
	control_encode_data(&b, "error nope: x", 13);
	control_encode_data(&b, "okay", 4);
	ok(!strcmp(b.data, "\\ok release=9\n\\error nope: x\nokay\n"),
	   "data that reads as a last line is escaped: '%s'", b.data);
	feed(&r, "\\ok release=9\n", &s);
	ok(s.kind == CONTROL_DATA && !strcmp(s.text, "ok release=9"),
	   "and read back as data");

	feed(&r, "fields release=7\n", &s);
	ok(s.kind == CONTROL_FIELDS && !strcmp(s.text, "release=7"),
	   "a fields line before the end: '%s'", s.text);
	buf_reset(&b);
	control_encode_data(&b, "fields release=8", 16);
	ok(!strcmp(b.data, "\\fields release=8\n"),
	   "data that reads as fields is escaped: '%s'", b.data);
	feed(&r, b.data, &s);
	ok(s.kind == CONTROL_DATA && !strcmp(s.text, "fields release=8"),
	   "and read back as data");

	ok(control_field_long("release=5", "release") == 5, "one field");
	ok(control_field_long("a=1 release=12 b=x", "release") == 12,
	   "among others");
	ok(control_field_long("releases=3", "release") == -1, "whole key only");
	ok(control_field_long("", "release") == -1, "none");
	ok(control_field_long("release=x", "release") == -1, "not a number");

	buf_reset(&b);
	control_field_encode(&b, "K=a b%c\n\x7f\xc3\xa9");
	ok(!strcmp(b.data, "K=a%20b%25c%0A%7F\xc3\xa9"),
	   "a value encoded holds no space or newline: '%s'", b.data);
	{
		struct buf v = BUF_INIT;
		char *line = xasprintf("x=1 var=%s y=2", b.data);

		ok(control_field_decode(line, "var", &v) == 0 &&
		   !strcmp(v.data, "K=a b%c\n\x7f\xc3\xa9"),
		   "and decoded as it was");
		ok(control_field_decode(line, "y", &v) == 0 &&
		   !strcmp(v.data, "2"), "a plain field decodes as itself");
		ok(control_field_decode("var=%2", "var", &v) == -1 &&
		   control_field_decode("var=%zz", "var", &v) == -1 &&
		   control_field_decode("var=%00", "var", &v) == -1,
		   "a cut, bad or NUL escape is refused");
		ok(control_field_decode("vars=1", "var", &v) == -1,
		   "whole key only");
		buf_reset(&b);
		buf_addstr(&b, "release=3");
		control_field_add(&b, "time", "2026-11-30 17:00");
		control_field_add(&b, "buildpack", NULL);
		control_field_add(&b, "source", "");
		ok(!strcmp(b.data, "release=3 time=2026-11-30%2017:00 buildpack=- source=-"),
		   "fields added encoded, none as '-': '%s'", b.data);
		ok(control_field_decode(b.data, "time", &v) == 0 &&
		   !strcmp(v.data, "2026-11-30 17:00"), "and read back");
		free(line);
		buf_release(&v);
	}

	buf_release(&b);
	control_reader_release(&r);
	return tap_done();
}
