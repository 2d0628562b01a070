/*
 * gitrepack: folds a repository's packs into one, in the background
 * after a push.  Every push adds a pack; past GITREPACK_MAX_PACKS of
 * them, every object of every pack is written into one new pack by
 * packwrite.c (bytes and deltas reused, nothing searched for) and indexed
 * by indexpack.c, then the old packs are removed.  Nothing is dropped,
 * unreachable objects included, so a push racing with the repack loses
 * nothing; readers that still have an old pack open keep their mapping,
 * and libgit2 looks again when an object is not where it was.  One
 * repack at a time per repository (objects/pack/repack.lock).
 */
#ifndef BERTH_GITREPACK_H
#define BERTH_GITREPACK_H

#define GITREPACK_MAX_PACKS 8

/* How many packs objects/pack of repo_path holds. */
int gitrepack_count(const char *repo_path);

/*
 * Repack repo_path (the bare repository) now, in this process: 0 (also
 * when another repack holds the lock), or -1 (error_last()); the old
 * packs stay on failure.
 */
int gitrepack_run(const char *repo_path);

/*
 * After a push: in a detached child (its own session, fds closed, low
 * priority; under a guarded process, procguard_fork_child() first, so
 * it signals no process), repack repo_path if it has more than
 * GITREPACK_MAX_PACKS packs, then call then(repo_path) if it is not NULL
 * (the kept clone pack, upload.h).  Returns at once; the caller never
 * waits for it.
 */
void gitrepack_after_push(const char *repo_path,
			  int (*then)(const char *repo_path));

#endif
