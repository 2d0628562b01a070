/*
 * access: which keys may reach an app.  An app belongs to the key that
 * created it (its first push); its owner shares it with other keys
 * ("sharing APP add KEYNAME", Heroku's collaborators).  The owner, the
 * collaborators and admin keys may push, clone, and run every command on
 * it; any other key gets "no access to app 'x'".  The local CLI (root on
 * the host) is not asked.
 *
 * Kept in ROOT/access/APP (root's, 0600), written atomically:
 *   owner KEYNAME
 *   collaborator KEYNAME      (any number)
 * An app with no such file (made by "berth deploy", incoming/, or before
 * owners existed) is reachable by admin keys only, until an admin shares
 * it.  Key names are unique (keys.h), so a name is one key.
 *
 * The SSH session checks before it relays a command or serves git; it is
 * root and reads the file afresh each time.  Blocking: small file reads.
 */
#ifndef BERTH_ACCESS_H
#define BERTH_ACCESS_H

#include "util.h"

#define ACCESS_DIR "access"	/* under the state folder */

/*
 * May key 'user' (an admin if 'admin') reach 'app'?  0 yes; ERR_INVALID
 * no, with error_last() "no access to app 'APP'"; ERR_NOTFOUND if the app
 * does not exist (no repository and no access file).
 */
int access_check(const char *root, const char *app, const char *user,
		 int admin);
/* Is 'user' the app's owner (or 'admin')?  0 yes, else as access_check. */
int access_check_owner(const char *root, const char *app, const char *user,
		       int admin);

/*
 * A push (or "create", "import") is about to create 'app': make 'user'
 * its owner unless someone already is (ERR_INVALID "no access to app
 * 'APP'" then, unless it is 'user' or 'admin').  An app that exists
 * without an owner stays the admins'.  0 when user may go on.
 */
int access_claim(const char *root, const char *app, const char *user,
		 int admin);

/* The app is gone: forget who had it. */
void access_forget(const char *root, const char *app);
/* A claim made before "create" or "import" that did not make the app:
 * forget it (an app that exists keeps its owner). */
void access_unclaim(const char *root, const char *app);

/*
 * "sharing APP" (argc 2), "sharing APP add KEYNAME", "sharing APP rm
 * KEYNAME" (argc 4): the list, or a change, as lines into out.  Other
 * words are ERR_USAGE.  Adding a name that no key has, or the owner, is
 * ERR_INVALID; removing one that is not there is ERR_NOTFOUND.
 */
int access_sharing(const char *root, const char *app, int argc,
		   char *const *argv, struct buf *out);

#endif
