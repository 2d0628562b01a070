/* sshcmd: how an SSH exec command becomes words for the engine. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

/* split cmd and compare with the expected words, joined by '|' */
static int words_are(const char *cmd, const char *want)
{
	struct strv w = STRV_INIT;
	struct buf got = BUF_INIT;
	size_t i;
	int same;

	if (sshd_split_command(&w, cmd) < 0) {
		printf("# '%s': %s\n", cmd, error_last());
		return 0;
	}
	for (i = 0; i < w.n; i++) {
		if (i)
			buf_addstr(&got, "|");
		buf_addstr(&got, w.v[i]);
	}
	same = !strcmp(got.data ? got.data : "", want);
	if (!same)
		printf("# '%s' gave '%s'\n", cmd, got.data ? got.data : "");
	strv_release(&w);
	buf_release(&got);
	return same;
}

static int refused(const char *cmd, const char *msg)
{
	struct strv w = STRV_INIT;
	int r = sshd_split_command(&w, cmd);

	strv_release(&w);
	if (r != ERR_INVALID || strcmp(error_last(), msg)) {
		printf("# '%s': %d '%s'\n", cmd, r, error_last());
		return 0;
	}
	return 1;
}

int main(void)
{
	char big[10000];

	ok(words_are("version", "version"), "one word");
	ok(words_are("  logs   myapp\t-n 100 ", "logs|myapp|-n|100"),
	   "blanks separate, extra blanks ignored");
	ok(words_are("", ""), "empty command has no words");
	ok(words_are("config app set 'A=b c;d|e$f'", "config|app|set|A=b c;d|e$f"),
	   "single quotes keep everything");
	ok(words_are("config app set \"A=b \\\"c\\\" \\\\ \\$ \\`\"",
		     "config|app|set|A=b \"c\" \\ $ `"),
	   "double quotes with escapes");
	ok(words_are("\"a\\nb\"", "a\\nb"), "other backslashes stay in double quotes");
	ok(words_are("a\\ b c\\;d \\$x", "a b|c;d|$x"), "backslash outside quotes");
	ok(words_are("pre'mid dle'\"post\"", "premid dlepost"),
	   "quoted parts join a word");
	ok(words_are("git-receive-pack 'my-app'", "git-receive-pack|my-app"),
	   "git's quoting");
	ok(words_are("a # b", "a|#|b"), "# is not a comment");

	ok(refused("logs; id", "unsupported character ';' in command"), ";");
	ok(refused("logs | id", "unsupported character '|' in command"), "|");
	ok(refused("logs & id", "unsupported character '&' in command"), "&");
	ok(refused("logs $(id)", "unsupported character '$' in command"), "$");
	ok(refused("logs `id`", "unsupported character '`' in command"), "`");
	ok(refused("logs > x", "unsupported character '>' in command"), ">");
	ok(refused("logs < x", "unsupported character '<' in command"), "<");
	ok(refused("logs \"$HOME\"", "unsupported character '$' in command"),
	   "$ inside double quotes");
	ok(refused("logs \"`id`\"", "unsupported character '`' in command"),
	   "` inside double quotes");
	ok(refused("logs\nid", "unsupported character '\\n' in command"),
	   "newline");
	ok(refused("logs '\x1b[2J'", "unsupported character '\\x1b' in command"),
	   "control character even in quotes");
	ok(refused("logs 'x", "unterminated quote in command"), "open '");
	ok(refused("logs \"x", "unterminated quote in command"), "open \"");
	ok(refused("logs x\\", "trailing backslash in command"), "trailing \\");
	ok(refused("rm '' x", "empty argument in command"), "empty word");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ok(refused(big, "command too long"), "long command");
	return tap_done();
}
