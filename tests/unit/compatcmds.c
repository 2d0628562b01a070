/* The words of "run APP CMD..." as the shell command a one-off runs
 * (oneoff.h), and the host name rules of domains:add (domains.h). */
#include <stdlib.h>
#include <string.h>

#include "domains.h"
#include "oneoff.h"
#include "util.h"
#include "tap.h"
#include "banned.h"

static void cmd_is(int argc, char **argv, const char *want)
{
	char *got = oneoff_command(argc, argv);

	ok(got && !strcmp(got, want), "command [%s]: got [%s]", want,
	   got ? got : error_last());
	free(got);
}

static void test_oneoff(void)
{
	char *one[] = { "rake db:migrate && echo done" };
	char *many[] = { "sh", "-c", "echo $X it's" };
	char *bad[] = { "echo", "" };
	char *ctl[] = { "echo", "a\nb" };
	char *got;

	cmd_is(1, one, "rake db:migrate && echo done");
	cmd_is(3, many, "'sh' '-c' 'echo $X it'\\''s'");
	got = oneoff_command(0, NULL);
	ok(!got, "no words refused");
	got = oneoff_command(2, bad);
	ok(!got && strstr(error_last(), "empty word"), "an empty word refused");
	got = oneoff_command(2, ctl);
	ok(!got && strstr(error_last(), "\\x0a"), "a new line refused");
}

static void test_term(void)
{
	char long_term[80];

	ok(oneoff_term_valid("xterm-256color"), "TERM xterm-256color");
	ok(oneoff_term_valid("screen.xterm-256color"), "TERM with a dot");
	ok(oneoff_term_valid("Eterm"), "TERM with a capital");
	ok(!oneoff_term_valid(""), "empty TERM refused");
	ok(!oneoff_term_valid(NULL), "no TERM refused");
	ok(!oneoff_term_valid("xterm;rm -rf /"), "TERM with ; and spaces refused");
	ok(!oneoff_term_valid("xterm\n"), "TERM with a new line refused");
	memset(long_term, 'x', 64);
	long_term[64] = '\0';
	ok(!oneoff_term_valid(long_term), "a TERM of 64 bytes refused");
	long_term[63] = '\0';
	ok(oneoff_term_valid(long_term), "a TERM of 63 bytes taken");
}

static void host_is(const char *in, const char *want)
{
	char out[DOMAIN_HOST_MAX + 1];
	int r = domain_norm(in, out);

	if (want)
		ok(r == 0 && !strcmp(out, want), "host '%s' -> '%s'", in,
		   r == 0 ? out : error_last());
	else
		ok(r == ERR_INVALID && strstr(error_last(), "invalid host"),
		   "host '%s' refused", in);
}

static void test_hosts(void)
{
	char long_label[80], long_host[300];
	int i;

	host_is("www.Example.COM", "www.example.com");
	host_is("*.example.com", "*.example.com");
	host_is("a-b.c0.io", "a-b.c0.io");
	host_is("xn--bcher-kva.example", "xn--bcher-kva.example");
	host_is("localhost", NULL);
	host_is("", NULL);
	host_is("a_b.example.com", NULL);
	host_is("-a.example.com", NULL);
	host_is("a-.example.com", NULL);
	host_is("a..example.com", NULL);
	host_is("example.com.", NULL);
	host_is("example.com:80", NULL);
	host_is("*.", NULL);
	host_is("a.*.example.com", NULL);
	host_is("b\xc3\xbc" "cher.example", NULL);
	memset(long_label, 'a', 64);
	memcpy(long_label + 64, ".example", 9);
	host_is(long_label, NULL);
	for (i = 0; i < 260; i += 2) {
		long_host[i] = 'a';
		long_host[i + 1] = '.';
	}
	memcpy(long_host + 260, "io", 3);
	host_is(long_host, NULL);
}

int main(void)
{
	test_oneoff();
	test_term();
	test_hosts();
	return tap_done();
}
