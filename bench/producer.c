/* producer: the benchmark's event producer, faster than any Python loop.
 *
 *   producer flat   DIR N [PREFIX]        create+write+close N files DIR/PREFIX%07d
 *   producer tree   DIR D F [PREFIX]      mkdir -p DIR/d%05d (D dirs), F files in each
 *   producer mktree DIR D F               D leaf dirs DIR/g%04d/d%05d (100 per group),
 *                                         F files in each (the "ready" figure's tree)
 *   producer rename SRC DST N PREFIX      rename SRC/PREFIX%07d -> DST/PREFIX%07d, N times
 *   producer churn  DIR N RATE            N x (create+write+close+unlink) over 64 names;
 *                                         RATE iterations/s (0 = as fast as possible)
 *   producer stamp  FILE                  append "<pid> <CLOCK_MONOTONIC ns>\n" to FILE
 *   producer action DIR SLEEP_MS [PATH]   an action: count itself in DIR/running (max in
 *                                         DIR/max), sleep, append "<pid> <ns> PATH\n" to
 *                                         DIR/done (PATH: the file it was run for)
 *   producer spawn  DIR SLEEP_MS N CONC SRC PREFIX
 *                                         the figure 5 floor: no watcher, runs
 *                                         "producer action DIR SLEEP_MS SRC/PREFIX%07d" for
 *                                         N files, CONC at a time (posix_spawn(3) in a new
 *                                         session, stdin and stdout /dev/null, then wait(2))
 *
 * Each created file gets one write of 64 bytes, so one file is IN_CREATE, IN_OPEN,
 * IN_MODIFY, IN_CLOSE_WRITE to a watcher of IN_ALL_EVENTS. Exit status 0, or 1 with a
 * message naming the failed call and path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char payload[64] = "fswatchd bench payload: 64 bytes of file content, no more....\n";

static void die(const char *what, const char *path) {
    fprintf(stderr, "producer: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void make_file(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("open", path);
    if (write(fd, payload, sizeof payload) != (ssize_t)sizeof payload) die("write", path);
    if (close(fd) != 0) die("close", path);
}

static void make_dir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST) die("mkdir", path);
}

static long arg_long(const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "producer: not a count: %s\n", s);
        exit(2);
    }
    return v;
}

static int cmd_flat(const char *dir, long n, const char *prefix) {
    char path[4096];
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s%07ld", dir, prefix, i);
        make_file(path);
    }
    return 0;
}

static int cmd_tree(const char *dir, long d, long f, const char *prefix) {
    char path[4096];
    for (long i = 0; i < d; i++) {
        snprintf(path, sizeof path, "%s/d%05ld", dir, i);
        make_dir(path);
        for (long j = 0; j < f; j++) {
            snprintf(path, sizeof path, "%s/d%05ld/%s%07ld", dir, i, prefix, j);
            make_file(path);
        }
    }
    return 0;
}

static int cmd_mktree(const char *dir, long d, long f) {
    char path[4096];
    for (long i = 0; i < d; i++) {
        if (i % 100 == 0) {
            snprintf(path, sizeof path, "%s/g%04ld", dir, i / 100);
            make_dir(path);
        }
        snprintf(path, sizeof path, "%s/g%04ld/d%05ld", dir, i / 100, i);
        make_dir(path);
        for (long j = 0; j < f; j++) {
            snprintf(path, sizeof path, "%s/g%04ld/d%05ld/f%03ld", dir, i / 100, i, j);
            make_file(path);
        }
    }
    return 0;
}

static int cmd_rename(const char *src, const char *dst, long n, const char *prefix) {
    char from[4096], to[4096];
    for (long i = 0; i < n; i++) {
        snprintf(from, sizeof from, "%s/%s%07ld", src, prefix, i);
        snprintf(to, sizeof to, "%s/%s%07ld", dst, prefix, i);
        if (rename(from, to) != 0) die("rename", from);
    }
    return 0;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmd_churn(const char *dir, long n, long rate) {
    char path[4096];
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/c%02ld", dir, i % 64);
        make_file(path);
        if (unlink(path) != 0) die("unlink", path);
        if (rate > 0 && i % 64 == 63) {
            /* Pace in steps of 64 iterations: sleep until this step is due. */
            long long due = start + (long long)((i + 1) * (1000000000.0 / rate));
            long long ahead = due - now_ns();
            if (ahead > 0) {
                struct timespec ts = {ahead / 1000000000LL, ahead % 1000000000LL};
                nanosleep(&ts, NULL);
            }
        }
    }
    return 0;
}

static int cmd_stamp(const char *file) {
    char line[64];
    long long t = now_ns();
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) die("open", file);
    int len = snprintf(line, sizeof line, "%d %lld\n", (int)getpid(), t);
    /* One O_APPEND write of a short line is atomic with respect to other appenders. */
    if (write(fd, line, len) != len) die("write", file);
    return close(fd) == 0 ? 0 : 1;
}

/* Adds delta to the counter in DIR/running under an flock; keeps the maximum in DIR/max. */
static void count_running(const char *dir, int delta) {
    char path[4096], buf[32];
    snprintf(path, sizeof path, "%s/lock", dir);
    int lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) die("flock", path);
    long vals[2] = {0, 0};
    const char *names[2] = {"running", "max"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        FILE *fp = fopen(path, "r");
        if (fp) {
            if (fscanf(fp, "%ld", &vals[k]) != 1) vals[k] = 0;
            fclose(fp);
        }
    }
    vals[0] += delta;
    if (vals[0] > vals[1]) vals[1] = vals[0];
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        FILE *fp = fopen(path, "w");
        if (!fp) die("fopen", path);
        snprintf(buf, sizeof buf, "%ld\n", vals[k]);
        fputs(buf, fp);
        fclose(fp);
    }
    close(lock); /* releases the flock */
}

static int cmd_action(const char *dir, long sleep_ms, const char *file) {
    char path[4096], line[4200];
    count_running(dir, +1);
    if (sleep_ms > 0) {
        struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    count_running(dir, -1);
    snprintf(path, sizeof path, "%s/done", dir);
    long long t = now_ns();
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) die("open", path);
    int len = snprintf(line, sizeof line, "%d %lld %s\n", (int)getpid(), t, file);
    if (len >= (int)sizeof line) len = (int)sizeof line - 1; /* a cut name fails the check */
    /* One O_APPEND write: lines of concurrent actions never interleave. */
    if (write(fd, line, len) != len) die("write", path);
    return close(fd) == 0 ? 0 : 1;
}

extern char **environ;

/* Starts one action for SRC/PREFIX%07d the way fswatchd starts a run: action (no shell). */
static pid_t spawn_action(const char *dir, const char *ms, const char *src, const char *prefix,
                          long i) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%07ld", src, prefix, i);
    char *av[] = {"producer", "action", (char *)dir, (char *)ms, path, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    if (posix_spawn_file_actions_init(&fa) || posix_spawnattr_init(&attr)) die("init", path);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
    pid_t pid;
    errno = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, av, environ);
    if (errno) die("posix_spawn", path);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return pid;
}

static int cmd_spawn(const char *dir, const char *ms, long n, long conc, const char *src,
                     const char *prefix) {
    long started = 0, running = 0;
    int failed = 0, status;
    while (started < n || running > 0) {
        for (; running < conc && started < n; running++, started++)
            spawn_action(dir, ms, src, prefix, started);
        if (wait(&status) < 0) die("wait", dir);
        running--;
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    return failed;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "flat") && (argc == 4 || argc == 5))
        return cmd_flat(argv[2], arg_long(argv[3]), argc == 5 ? argv[4] : "f");
    if (!strcmp(cmd, "tree") && (argc == 5 || argc == 6))
        return cmd_tree(argv[2], arg_long(argv[3]), arg_long(argv[4]), argc == 6 ? argv[5] : "f");
    if (!strcmp(cmd, "mktree") && argc == 5)
        return cmd_mktree(argv[2], arg_long(argv[3]), arg_long(argv[4]));
    if (!strcmp(cmd, "rename") && argc == 6)
        return cmd_rename(argv[2], argv[3], arg_long(argv[4]), argv[5]);
    if (!strcmp(cmd, "churn") && argc == 5)
        return cmd_churn(argv[2], arg_long(argv[3]), arg_long(argv[4]));
    if (!strcmp(cmd, "stamp") && argc == 3)
        return cmd_stamp(argv[2]);
    if (!strcmp(cmd, "action") && (argc == 4 || argc == 5))
        return cmd_action(argv[2], arg_long(argv[3]), argc == 5 ? argv[4] : "-");
    if (!strcmp(cmd, "spawn") && argc == 8)
        return cmd_spawn(argv[2], argv[3], arg_long(argv[4]), arg_long(argv[5]), argv[6],
                         argv[7]);
    fprintf(stderr, "usage: see the comment at the top of bench/producer.c\n");
    return 2;
}
