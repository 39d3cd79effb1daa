/* _vfork: start a program the way fswatchd starts an action's child, with
 * clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD) and execve(2), and nothing else.
 *
 * os.posix_spawn (glibc's posix_spawn(3)) does the same clone, but also maps and unmaps a
 * stack for every child, checks each file action against RLIMIT_NOFILE and opens
 * /dev/null by name; the caller's thread is suspended all that time. Here the child's
 * stack is a block of the caller's own stack frame (the caller is suspended until the
 * child has called execve or _exit), the file actions are three dup2(2) of fds the caller
 * holds open, and the pidfd comes from the clone itself.
 *
 * Signals, as glibc does them: the child starts with every signal blocked, and before it
 * restores the caller's mask it sets to SIG_DFL every signal the caller catches, and the
 * ignored ones the caller names. A signal sent to the caller's process group before the
 * child's setsid(2) (Ctrl-C in a terminal) is pending in the child too; unblocked with the
 * caller's handler still in place, it would run that handler in the caller's memory (for
 * Python's, as if the caller had received it a second time). At SIG_DFL it does to the
 * child what it would do to any program. See clone(2), vfork(2), execve(2), signal(7).
 */
#define PY_SSIZE_T_CLEAN
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000 /* linux/sched.h, Linux >= 5.2 */
#endif

/* The child runs a few system calls on it: dup2, setsid, sigaction, sigprocmask, execve. */
#define CHILD_STACK_BYTES (16 * 1024)
/* The kernel's sigset_t: 64 signals (rt_sigprocmask(2) wants its size, not glibc's). */
#define KERNEL_SIGSET_BYTES 8

struct child {
    const char *path;
    char *const *argv;
    char *const *envp;
    int fds[3];             /* what becomes the child's fd 0, 1, 2 */
    uint64_t reset;         /* bit sig - 1: an ignored signal set to SIG_DFL all the same */
    sigset_t mask;          /* the caller's signal mask, the child's from execve on */
    int error;              /* errno of the step that failed, written by the child */
};

static int
block_all(sigset_t *old)
{
    sigset_t all;
    memset(&all, 0xff, sizeof all);
    return (int)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, old, KERNEL_SIGSET_BYTES);
}

static int
set_mask(const sigset_t *mask)
{
    return (int)syscall(SYS_rt_sigprocmask, SIG_SETMASK, mask, NULL, KERNEL_SIGSET_BYTES);
}

/* Signals a caller may name to reset: not SIGKILL or SIGSTOP, nor the two glibc keeps
 * for itself (32 and 33), whose sigaction(2) it refuses. By number, not by SIGRTMIN:
 * that moves up when a library reserves a real-time signal, which is then caught like
 * any other. */
static int
settable_signal(long sig)
{
    return sig >= 1 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP && sig != 32
        && sig != 33;
}

/* In the child: SIG_DFL for each caught signal, and for each ignored one in `reset`.
 * Every number is asked; glibc refuses 32 and 33, and SIGKILL and SIGSTOP cannot be
 * caught or ignored. */
static int
reset_signals(uint64_t reset)
{
    struct sigaction dfl, old;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sigaction(sig, NULL, &old) != 0)
            continue;
        if (old.sa_handler == SIG_DFL)
            continue;
        if (old.sa_handler == SIG_IGN && !(reset & (UINT64_C(1) << (sig - 1))))
            continue;
        if (sigaction(sig, &dfl, NULL) != 0)
            return -1;
    }
    return 0;
}

/* Runs in the child, on its own stack but in the caller's memory: only system calls, no
 * allocation, no lock, no return. Every signal is blocked on entry. */
static int
child_main(void *arg)
{
    struct child *c = arg;
    int fds[3];

    if (reset_signals(c->reset) != 0)
        goto fail;
    /* A source below 3 is first copied above 2, so no dup2 onto 0..2 can clobber it. */
    for (int i = 0; i < 3; i++) {
        fds[i] = c->fds[i];
        if (fds[i] < 3 && fds[i] != i) {
            fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
            if (fds[i] < 0)
                goto fail;
        }
    }
    for (int i = 0; i < 3; i++) {
        /* dup2 leaves the new fd without FD_CLOEXEC; an fd already in place gets it cleared. */
        if (fds[i] == i ? fcntl(i, F_SETFD, 0) < 0 : dup2(fds[i], i) < 0)
            goto fail;
    }
    if (setsid() < 0 || set_mask(&c->mask) != 0)
        goto fail;
    execve(c->path, c->argv, c->envp);
fail:
    c->error = errno;
    _exit(127);
}

/* Fills *out with pointers into the bytes objects of seq (a NULL-terminated char *[]).
 * Returns a new reference to a tuple of seq's items, which holds those bytes objects while
 * the GIL is released (a list could be changed by another thread meanwhile), or NULL with
 * an exception set. */
static PyObject *
bytes_vector(PyObject *seq, const char *what, char ***out)
{
    PyObject *fast = PySequence_Tuple(seq);
    if (fast == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(fast);
    if (n == 0) {
        PyErr_Format(PyExc_ValueError, "%s must not be empty", what);
        Py_DECREF(fast);
        return NULL;
    }
    char **vec = PyMem_New(char *, n + 1);
    if (vec == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(fast, i);
        if (!PyBytes_Check(item)) {
            PyErr_Format(PyExc_TypeError, "%s: items must be bytes", what);
            goto error;
        }
        vec[i] = PyBytes_AS_STRING(item);
        if ((Py_ssize_t)strlen(vec[i]) != PyBytes_GET_SIZE(item)) {
            PyErr_Format(PyExc_ValueError, "%s: embedded null byte", what);
            goto error;
        }
    }
    vec[n] = NULL;
    *out = vec;
    return fast;
error:
    PyMem_Free(vec);
    Py_DECREF(fast);
    return NULL;
}

/* "KEY=VALUE" strings of env (a dict of bytes to bytes), in one allocation. */
static char **
env_vector(PyObject *env)
{
    if (!PyDict_Check(env)) {
        PyErr_SetString(PyExc_TypeError, "env must be a dict of bytes to bytes");
        return NULL;
    }
    Py_ssize_t n = PyDict_GET_SIZE(env), pos = 0, text = 0;
    PyObject *key, *value;
    while (PyDict_Next(env, &pos, &key, &value)) {
        if (!PyBytes_Check(key) || !PyBytes_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "env must be a dict of bytes to bytes");
            return NULL;
        }
        const char *k = PyBytes_AS_STRING(key), *v = PyBytes_AS_STRING(value);
        Py_ssize_t klen = PyBytes_GET_SIZE(key), vlen = PyBytes_GET_SIZE(value);
        if (klen == 0 || memchr(k, '=', klen) != NULL) {
            PyErr_SetString(PyExc_ValueError, "illegal environment variable name");
            return NULL;
        }
        if ((Py_ssize_t)strlen(k) != klen || (Py_ssize_t)strlen(v) != vlen) {
            PyErr_SetString(PyExc_ValueError, "env: embedded null byte");
            return NULL;
        }
        text += klen + vlen + 2;
    }
    char **vec = PyMem_Malloc((n + 1) * sizeof(char *) + text);
    if (vec == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    char *p = (char *)(vec + n + 1);
    Py_ssize_t i = 0;
    pos = 0;
    while (PyDict_Next(env, &pos, &key, &value)) {
        Py_ssize_t klen = PyBytes_GET_SIZE(key), vlen = PyBytes_GET_SIZE(value);
        vec[i++] = p;
        memcpy(p, PyBytes_AS_STRING(key), klen);
        p[klen] = '=';
        memcpy(p + klen + 1, PyBytes_AS_STRING(value), vlen + 1);
        p += klen + vlen + 2;
    }
    vec[i] = NULL;
    return vec;
}

/* Wait for the child (killed first with `sig` unless 0) and close its pidfd. It may be
 * held by a tracer a while: other threads run meanwhile. */
static void
reap(pid_t pid, int pidfd, int sig)
{
    int status;
    Py_BEGIN_ALLOW_THREADS
    if (sig != 0)
        kill(pid, sig);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    Py_END_ALLOW_THREADS
    close(pidfd);
}

PyDoc_STRVAR(spawn_doc,
"spawn(path, argv, env, fds, reset_signals, /) -> (pid, pidfd)\n\
\n\
Start path (bytes) with argv (a non-empty sequence of bytes) and env (a dict of bytes to\n\
bytes) in a new session (setsid), the fds of the tuple fds (three ints) duplicated onto\n\
its fd 0, 1 and 2, every signal the caller catches at SIG_DFL, and so the signals of\n\
reset_signals (a sequence of ints) even when ignored; the caller's signal mask. Every\n\
other fd is left to FD_CLOEXEC. Returns the child's pid and a pidfd for it\n\
(close-on-exec).\n\
\n\
Raises OSError with the errno of the step that failed and path as its filename\n\
(clone(2) in the caller; dup2, setsid or execve(2) in the child, which is then reaped);\n\
TypeError or ValueError for arguments of the wrong type, holding a null byte, an empty\n\
argv, an environment name that is empty or holds '=', or a signal whose disposition\n\
cannot be set (SIGKILL, SIGSTOP, 32, 33, out of range).");

static PyObject *
vfork_spawn(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "spawn expected 5 arguments, got %zd", nargs);
        return NULL;
    }
    PyObject *path = args[0], *argv_fast = NULL, *sigs = NULL, *result = NULL;
    char **argv = NULL, **envp = NULL;
    struct child c;
    memset(&c, 0, sizeof c);

    if (!PyBytes_Check(path) || (Py_ssize_t)strlen(PyBytes_AS_STRING(path)) != PyBytes_GET_SIZE(path)) {
        PyErr_SetString(PyExc_ValueError, "path must be bytes without a null byte");
        return NULL;
    }
    c.path = PyBytes_AS_STRING(path);
    if (!PyTuple_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "fds must be a tuple of three ints");
        return NULL;
    }
    if (!PyArg_ParseTuple(args[3], "iii;fds must be a tuple of three ints", &c.fds[0],
                          &c.fds[1], &c.fds[2]))
        return NULL;
    /* A tuple of its own: converting an item may run code that changes a list. */
    sigs = PySequence_Tuple(args[4]);
    if (sigs == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(sigs); i++) {
        long sig = PyLong_AsLong(PyTuple_GET_ITEM(sigs, i));
        if (sig == -1 && PyErr_Occurred())
            goto done;
        if (!settable_signal(sig)) {
            PyErr_Format(PyExc_ValueError, "cannot reset the disposition of signal %ld", sig);
            goto done;
        }
        c.reset |= UINT64_C(1) << (sig - 1);
    }
    argv_fast = bytes_vector(args[1], "argv", &argv);
    if (argv_fast == NULL)
        goto done;
    envp = env_vector(args[2]);
    if (envp == NULL)
        goto done;
    c.argv = argv;
    c.envp = envp;

    pid_t pid;
    int pidfd = -1, clone_error = 0;
    {
        /* In this frame, above clone()'s: the child grows down into it while this thread
         * is suspended. */
        char stack[CHILD_STACK_BYTES] __attribute__((aligned(16)));
        Py_BEGIN_ALLOW_THREADS
        /* Blocked in the child until its handlers are reset: a signal caught before execve
         * would run the daemon's handler in the daemon's memory. */
        if (block_all(&c.mask) != 0) {
            pid = -1;
            clone_error = errno;
        }
        else {
            pid = clone(child_main, stack + sizeof stack,
                        CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &c, &pidfd);
            clone_error = errno;
            set_mask(&c.mask);
        }
        Py_END_ALLOW_THREADS
    }
    if (pid < 0) {
        errno = clone_error;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        goto done;
    }
    if (c.error != 0) {
        reap(pid, pidfd, 0);
        errno = c.error;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        goto done;
    }
    result = Py_BuildValue("(ii)", (int)pid, pidfd);
    if (result == NULL)  /* MemoryError: no one would watch or reap the child */
        reap(pid, pidfd, SIGKILL);
done:
    PyMem_Free(envp);
    PyMem_Free(argv);
    Py_XDECREF(argv_fast);
    Py_XDECREF(sigs);
    return result;
}

static PyMethodDef methods[] = {
    {"spawn", (PyCFunction)(void (*)(void))vfork_spawn, METH_FASTCALL, spawn_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_vfork",
    .m_doc = "clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD) + execve(2) for fswatchd's children.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__vfork(void)
{
    return PyModule_Create(&module);
}
