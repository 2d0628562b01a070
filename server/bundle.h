/*
 * bundle: app bundles are gzipped tarballs (libarchive).
 *
 * bundle_unpack() extracts into a fresh directory and refuses, before
 * writing anything outside 'dest', every entry with an absolute path, a
 * ".." component, a symlink or hard link whose target leads outside
 * 'dest', or a type other than file, directory or symlink.  On failure
 * 'dest' is removed and error_last() names the entry.
 */
#ifndef BERTH_BUNDLE_H
#define BERTH_BUNDLE_H

/* dest must not exist; it is created (mode 0755). */
int bundle_unpack(const char *tarball, const char *dest);
/* Pack the contents of srcdir (paths relative to it) into tarball,
 * written to tarball.new and renamed into place. Symlinks kept as links. */
int bundle_pack(const char *srcdir, const char *tarball);

#endif
