/*
 * bundle: app bundles are gzipped tarballs (libarchive).
 *
 * bundle_unpack() extracts into a fresh directory and refuses, before
 * writing anything outside 'dest', every entry with an absolute path, a
 * ".." component, a symlink or hard link whose target leads outside
 * 'dest', or a type other than file, directory or symlink, and every
 * write through a symlink (libarchive's secure-symlinks check).  A leading
 * "./" is stripped.  File modes are kept (exec bits; no setuid/setgid/
 * sticky, no write access for group or others; the owner can always read
 * and write), ownership is not: files
 * belong to the caller.  On failure 'dest' is removed and error_last()
 * names the entry.
 */
#ifndef BERTH_BUNDLE_H
#define BERTH_BUNDLE_H

#include <stddef.h>

/* dest must not exist; it is created (mode 0755). */
int bundle_unpack(const char *tarball, const char *dest);
/* Pack the contents of srcdir (paths relative to it) into tarball,
 * written to tarball.new and renamed into place. Symlinks kept as links.
 * pax restricted format, entries sorted by name, owner 0.  Sockets and
 * fifos in srcdir are skipped. */
int bundle_pack(const char *srcdir, const char *tarball);

/* Caps on what one bundle may unpack to. */
#define BUNDLE_MAX_BYTES (4LL << 30)	/* total of all file sizes */
#define BUNDLE_MAX_ENTRIES 200000
#define BUNDLE_PATH_MAX 4096

/*
 * The lexical checks bundle_unpack() applies (exposed for tests and
 * fuzzing).  bundle_entry_path_ok(): 'name' (an archive entry name) is
 * relative and has no ".." component; its cleaned form (no "./", no empty
 * components, "" for the bundle root) goes to out.  bundle_symlink_ok():
 * a symlink at the cleaned entry path 'path' with 'target' stays inside
 * the bundle: relative, and any ".." only at the start and no more of
 * them than the link's directory is deep (so "x/.." through another
 * link can never climb out).  Both return 0, or -1 with error_last()
 * like "bundle entry '../x' leaves the bundle".
 */
int bundle_entry_path_ok(const char *name, char *out, size_t outlen);
int bundle_symlink_ok(const char *path, const char *target);

#endif
