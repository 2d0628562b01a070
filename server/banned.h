#ifndef BERTH_BANNED_H
#define BERTH_BANNED_H

/*
 * banned.h: calls that have no place in berth's C become compile errors
 * (git's banned.h).  Every .c includes it after all its other headers, so
 * the system's own declarations are read first.  The error names the call:
 * "sorry_strcpy_is_a_banned_function".
 *
 * Why each one goes:
 *  - sprintf, vsprintf, strcpy, strcat: no bound on the destination; use
 *    snprintf (and check for truncation), xasprintf or struct buf.
 *  - strncpy, strncat: a bound, but no NUL when it hits, and strncpy pads;
 *    use snprintf or memcpy with an explicit length.
 *  - strtok, strtok_r: hidden state, and it cannot tell an empty field;
 *    use str_token (util.h) with its explicit cursor.
 *  - atoi, atol, atoll: no error on garbage or overflow; use parse_long or
 *    strtol with its end pointer and errno.
 *  - system, popen: a shell and an interpolated string; spawn an argv
 *    (spawn.h).
 *  - gets: no bound at all.
 *  - asctime, ctime, gmtime, localtime: static result buffers; use the
 *    _r forms.
 *  - tmpnam, tempnam, mktemp: race for the name; use mkstemp or mkdtemp.
 */

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef strtok_r
#define strtok_r(x, y, z) BANNED(strtok_r)
#undef atoi
#define atoi(x) BANNED(atoi)
#undef atol
#define atol(x) BANNED(atol)
#undef atoll
#define atoll(x) BANNED(atoll)
#undef system
#define system(x) BANNED(system)
#undef popen
#define popen(x, y) BANNED(popen)
#undef gets
#define gets(x) BANNED(gets)
#undef asctime
#define asctime(t) BANNED(asctime)
#undef ctime
#define ctime(t) BANNED(ctime)
#undef gmtime
#define gmtime(t) BANNED(gmtime)
#undef localtime
#define localtime(t) BANNED(localtime)
#undef tmpnam
#define tmpnam(s) BANNED(tmpnam)
#undef tempnam
#define tempnam(d, p) BANNED(tempnam)
#undef mktemp
#define mktemp(t) BANNED(mktemp)

#endif
