/* util.c's str_token (the tokenizer that replaces strtok_r) and the
 * buffer's promise that its data is always a string. */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "util.h"
#include "banned.h"

int main(void)
{
	char a[] = "\n\none\ntwo\n\nthree\n";
	char b[] = "x, y,,z";
	char c[] = "";
	char outer[] = "a=1,2 b=3";
	char *cur, *t, *in, *icur;
	int n = 0;
	struct buf e = BUF_INIT, f;

	cur = a;
	ok((t = str_token(&cur, "\n")) && !strcmp(t, "one"), "leading delimiters skipped");
	ok((t = str_token(&cur, "\n")) && !strcmp(t, "two"), "second token");
	ok((t = str_token(&cur, "\n")) && !strcmp(t, "three"), "a run of delimiters is one");
	ok(!str_token(&cur, "\n"), "NULL at the end");
	ok(!str_token(&cur, "\n"), "and NULL again after it");

	cur = b;
	ok((t = str_token(&cur, " ,")) && !strcmp(t, "x"), "any byte of the set delimits");
	ok((t = str_token(&cur, " ,")) && !strcmp(t, "y"), "mixed delimiters");
	ok((t = str_token(&cur, " ,")) && !strcmp(t, "z"), "last token without delimiter");
	ok(!str_token(&cur, " ,"), "then NULL");

	cur = c;
	ok(!str_token(&cur, "\n"), "empty string: no token");
	cur = NULL;
	ok(!str_token(&cur, "\n"), "NULL cursor: no token");

	/* loops nest: the state is the caller's */
	for (cur = outer, t = str_token(&cur, " "); t; t = str_token(&cur, " "))
		for (icur = t, in = str_token(&icur, "=,"); in;
		     in = str_token(&icur, "=,"))
			n++;
	ok(n == 5, "nested loops see every token (%d)", n);
	/* a buffer is a string from the start, and after every call */
	ok(e.data && !strcmp(e.data, "") && e.len == 0, "BUF_INIT: data is \"\"");
	buf_init(&f, 0);
	ok(f.data && !strcmp(f.data, ""), "buf_init: data is \"\"");
	buf_reset(&e);
	buf_consume(&e, 3);
	ok(e.data && !*e.data, "reset and consume on an empty buffer");
	buf_addstr(&e, "abc");
	buf_consume(&e, 1);
	ok(!strcmp(e.data, "bc"), "append then consume");
	buf_release(&e);
	ok(e.data && !strcmp(e.data, "") && e.len == 0, "released: data is \"\" again");
	t = buf_detach(&f);
	ok(t && !*t, "detach of an empty buffer: a fresh \"\"");
	free(t);
	ok(f.data && !*f.data, "detached: data is \"\"");
	buf_addstr(&f, "x");
	t = buf_detach(&f);
	ok(t && !strcmp(t, "x"), "detach hands the string");
	free(t);
	return tap_done();
}
