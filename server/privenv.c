/* privenv: see privenv.h. */
#include "privenv.h"

#include <stdlib.h>
#include <string.h>
#include "banned.h"

/* An allow-list, not a deny-list: a variable nobody thought of when this
 * was written (a new loader knob, a new interpreter) stays out. */
static const char *const allowed[] = {
	"BERTH_APP",
	"BERTH_BUILD_DIR",
	"BERTH_CACHE_DIR",
	"BERTH_COMMIT",
	"BERTH_PUSHER",
	"BERTH_RELEASE",
	"BERTH_STEP",
	"SOURCE_VERSION",
	"STACK",
};

int privenv_name_allowed(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(allowed); i++)
		if (!strcmp(name, allowed[i]))
			return 1;
	return 0;
}

void privenv_build(struct strv *out, char *const *from)
{
	size_t i;

	strv_release(out);
	for (i = 0; from && from[i]; i++) {
		const char *eq = strchr(from[i], '=');
		char *name;

		if (!eq || strchr(eq, '\n'))
			continue;
		name = xstrndup(from[i], (size_t)(eq - from[i]));
		if (privenv_name_allowed(name))
			strv_env_set(out, name, eq + 1);
		free(name);
	}
	/* Last, so nothing above could have set them. */
	strv_env_set(out, "PATH", PRIVENV_PATH);
	strv_env_set(out, "HOME", PRIVENV_HOME);
	strv_env_set(out, "LANG", PRIVENV_LANG);
	strv_env_set(out, "SHELL", PRIVENV_SHELL);
	strv_env_set(out, "USER", "root");
	strv_env_set(out, "LOGNAME", "root");
}

int privenv_hook_listed(const char *list, const char *step, const char *name)
{
	size_t sl = strlen(step), nl = strlen(name);
	const char *w = list;

	while (w && *w) {
		size_t len;

		w += strspn(w, " ,\t");
		len = strcspn(w, " ,\t");
		if (len == sl + 3 + nl && !strncmp(w, step, sl) &&
		    !strncmp(w + sl, ".d/", 3) && !strncmp(w + sl + 3, name, nl))
			return 1;
		w += len;
	}
	return 0;
}
