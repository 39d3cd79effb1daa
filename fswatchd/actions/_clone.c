/* _clone: start a program the way fswatchd starts an action's child, with
 * clone(CLONE_VM | CLONE_PIDFD | CLONE_CHILD_CLEARTID) and execve(2), and nothing else.
 *
 * The child shares the caller's memory until its execve, as a vfork(2) child does, but the
 * caller is not suspended meanwhile: spawn() returns as soon as the child exists, and the
 * event loop goes on while the child duplicates its fds, calls setsid(2) and execve(2)
 * (measured: the loop spent about 40 % of its time suspended in CLONE_VFORK's wait, while
 * a core went idle). So that nothing the child still reads can be freed or changed under
 * it, all it uses (its argv, environment, fds, signal mask and its stack) is copied into
 * one block of the caller's heap, owned by the Start object spawn() returns. The kernel
 * tells when the child is done with that memory: CLONE_CHILD_CLEARTID makes it zero a word
 * of the block and wake its futex in mm_release(), which runs when the child's execve
 * switches to the new program's memory and when the child exits, whichever comes first.
 * A Start dropped before that keeps its block, freed later, once the word is zero.
 *
 * The child runs on the caller's thread-local storage (there is no CLONE_SETTLS), so it
 * must not write errno while the caller runs: it makes raw system calls, which return
 * -errno instead of setting it, and leaves glibc alone. That needs a few lines of assembly
 * per architecture (x86_64 and aarch64 here). Elsewhere the child uses glibc's wrappers
 * and CLONE_VFORK is added, so the caller is suspended until the child has left its
 * memory, as posix_spawn(3) does.
 *
 * A step that fails in the child (dup3, setsid, execve) makes it exit 127, its errno left
 * in the block: Start.error. Every other fd stays as the caller left it: fswatchd opens
 * all fds close-on-exec.
 *
 * Signals, as glibc's posix_spawn does them: the child starts with every signal blocked,
 * and before it restores the caller's mask it sets to SIG_DFL every signal the caller
 * catches, and the ignored ones the caller names. A signal sent to the caller's process
 * group before the child's setsid(2) (Ctrl-C in a terminal) is pending in the child too;
 * unblocked with the caller's handler still in place, it would run that handler in the
 * caller's memory. At SIG_DFL it does to the child what it would do to any program. See
 * clone(2), execve(2), futex(2) (CLONE_CHILD_CLEARTID), signal(7).
 */
#define PY_SSIZE_T_CLEAN
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000 /* linux/sched.h, Linux >= 5.2 */
#endif

/* The child calls a few system calls on it: rt_sigaction, fcntl, dup3, setsid, execve. */
#define CHILD_STACK_BYTES (16 * 1024)
/* The kernel's sigset_t: 64 signals (rt_sigprocmask(2) wants its size, not glibc's). */
#define KERNEL_SIGSET_BYTES 8
/* Signals are 1 to 64 on Linux (the kernel's _NSIG). */
#define LAST_SIGNAL 64

/* ---- system calls the child can make without writing errno ---------------------------- */

/* Code the child runs: no stack protector, whose failure path calls into glibc
 * (__stack_chk_fail). Debian builds extensions with -fstack-protector-strong. The child's
 * frames hold no buffer a string is copied into. */
#if defined(__has_attribute)
#if __has_attribute(no_stack_protector)
#define CHILD_CODE __attribute__((no_stack_protector))
#endif
#endif
#ifndef CHILD_CODE
#define CHILD_CODE /* an older compiler: tests/process/test_clone.py checks the result */
#endif

#if defined(__x86_64__)
#define CONCURRENT_CHILD 1
CHILD_CODE static long
raw_syscall(long n, long a, long b, long c, long d)
{
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
#define CONCURRENT_CHILD 1
CHILD_CODE static long
raw_syscall(long n, long a, long b, long c, long d)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
}
#else
/* Another architecture: glibc's wrapper. It writes errno, so the caller is suspended
 * (CLONE_VFORK) while the child runs on its memory. */
#define CONCURRENT_CHILD 0
CHILD_CODE static long
raw_syscall(long n, long a, long b, long c, long d)
{
    long ret = syscall(n, a, b, c, d);
    return ret == -1 ? -errno : ret;
}
#endif

#if CONCURRENT_CHILD
#define CLONE_FLAGS (CLONE_VM | CLONE_PIDFD | CLONE_CHILD_CLEARTID | SIGCHLD)
#else
#define CLONE_FLAGS (CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_CHILD_CLEARTID | SIGCHLD)
#endif

/* The kernel's struct sigaction: the handler first. Four words hold it on x86_64 and
 * aarch64 (handler, flags, restorer, mask); all zero is SIG_DFL with no flag. */
struct kernel_sigaction {
    unsigned long handler;
    unsigned long rest[3];
};

/* ---- the child ------------------------------------------------------------------------- */

struct child {
    const char *path;
    char *const *argv;
    char *const *envp;
    int fds[3];             /* what becomes the child's fd 0, 1, 2 */
    uint64_t reset;         /* bit sig - 1: an ignored signal set to SIG_DFL all the same */
    sigset_t mask;          /* the caller's signal mask, the child's from execve on */
    int error;              /* errno of the step that failed, written by the child */
};

/* One child's start: what it reads and its stack, in one block of the caller's heap. */
struct block {
    /* Nonzero until the child has left the caller's memory; zeroed by the kernel
     * (CLONE_CHILD_CLEARTID), read with acquire ordering. */
    uint32_t in_use;
    struct block *next_orphan;  /* in `orphans` once its Start is gone */
    struct child c;
    char *stack_top;
    /* argv and envp vectors, their strings, then the stack (growing down to them) */
};

/* SIG_DFL for each caught signal, and for each ignored one in `reset`. SIGKILL and
 * SIGSTOP cannot be caught or ignored, so they are never set. */
CHILD_CODE static long
reset_signals(uint64_t reset)
{
    /* Field by field, not memset: no library call in the child, whatever the compiler's
     * optimisation level. */
    struct kernel_sigaction dfl, old;
    dfl.handler = (unsigned long)SIG_DFL;
    dfl.rest[0] = dfl.rest[1] = dfl.rest[2] = 0;
    for (long sig = 1; sig <= LAST_SIGNAL; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        old.handler = (unsigned long)SIG_DFL;
        long ret = raw_syscall(SYS_rt_sigaction, sig, 0, (long)&old, KERNEL_SIGSET_BYTES);
        if (ret < 0)
            return ret;
        if (old.handler == (unsigned long)SIG_DFL)
            continue;
        if (old.handler == (unsigned long)SIG_IGN && !(reset & (UINT64_C(1) << (sig - 1))))
            continue;
        ret = raw_syscall(SYS_rt_sigaction, sig, (long)&dfl, 0, KERNEL_SIGSET_BYTES);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* Runs in the child, on the block's stack, in the caller's memory while the caller runs
 * on: only raw system calls, no allocation, no lock, no errno, no return. Every signal is
 * blocked on entry. */
CHILD_CODE static int
child_main(void *arg)
{
    struct child *c = arg;
    long fds[3], ret;

    ret = reset_signals(c->reset);
    if (ret < 0)
        goto fail;
    /* A source below 3 is first copied above 2, so no dup3 onto 0..2 can clobber it. */
    for (int i = 0; i < 3; i++) {
        fds[i] = c->fds[i];
        if (fds[i] < 3 && fds[i] != i) {
            fds[i] = raw_syscall(SYS_fcntl, fds[i], F_DUPFD_CLOEXEC, 3, 0);
            if (fds[i] < 0) {
                ret = fds[i];
                goto fail;
            }
        }
    }
    for (int i = 0; i < 3; i++) {
        /* dup3 leaves the new fd without FD_CLOEXEC; an fd already in place gets it cleared. */
        ret = fds[i] == i ? raw_syscall(SYS_fcntl, i, F_SETFD, 0, 0)
                          : raw_syscall(SYS_dup3, fds[i], i, 0, 0);
        if (ret < 0)
            goto fail;
    }
    ret = raw_syscall(SYS_setsid, 0, 0, 0, 0);
    if (ret < 0)
        goto fail;
    ret = raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&c->mask, 0, KERNEL_SIGSET_BYTES);
    if (ret < 0)
        goto fail;
    ret = raw_syscall(SYS_execve, (long)c->path, (long)c->argv, (long)c->envp, 0);
fail:
    c->error = (int)-ret;
    raw_syscall(SYS_exit_group, 127, 0, 0, 0);
    return 127; /* not reached; were it, glibc's clone(2) stub would exit(2) with it */
}

/* ---- blocks and the Start object ----------------------------------------------------- */

static int
block_in_use(struct block *b)
{
    return __atomic_load_n(&b->in_use, __ATOMIC_ACQUIRE) != 0;
}

/* Blocks whose Start went while their child was still on them; freed once it has left. */
static struct block *orphans;

static void
free_left_orphans(void)
{
    struct block **link = &orphans;
    while (*link != NULL) {
        struct block *b = *link;
        if (block_in_use(b)) {
            link = &b->next_orphan;
        }
        else {
            *link = b->next_orphan;
            PyMem_RawFree(b);
        }
    }
}

typedef struct {
    PyObject_HEAD
    struct block *block;
} StartObject;

static void
start_dealloc(StartObject *self)
{
    struct block *b = self->block;
    if (b != NULL) {  /* an orphan, freed at once unless its child is still on it */
        b->next_orphan = orphans;
        orphans = b;
    }
    free_left_orphans();
    PyObject *type = (PyObject *)Py_TYPE(self);
    PyObject_Free(self);
    Py_DECREF(type);
}

static PyObject *
start_get_released(StartObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(!block_in_use(self->block));
}

static PyObject *
start_get_error(StartObject *self, void *closure)
{
    (void)closure;
    if (block_in_use(self->block))
        Py_RETURN_NONE;
    return PyLong_FromLong(self->block->c.error);
}

static PyGetSetDef start_getset[] = {
    {"released", (getter)start_get_released, NULL,
     "True once the child has left the caller's memory: its execve(2) succeeded or it "
     "exited (the kernel zeroed the block's CLONE_CHILD_CLEARTID word).", NULL},
    {"error", (getter)start_get_error, NULL,
     "None until released; then 0 if the child's execve(2) succeeded, or the errno of the "
     "step that failed in it (dup3, setsid, execve), after which it exited 127.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(start_doc,
"A started child's hold on the block of memory it reads until its execve(2); made by\n\
spawn() only. Keep it until the child is reaped: its error tells whether the execve\n\
succeeded.");

static PyType_Slot start_slots[] = {
    {Py_tp_dealloc, start_dealloc},
    {Py_tp_getset, start_getset},
    {Py_tp_doc, (void *)start_doc},
    {0, NULL},
};

static PyType_Spec start_spec = {
    .name = "fswatchd.actions._clone.Start",
    .basicsize = sizeof(StartObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = start_slots,
};

static PyTypeObject *start_type;

/* ---- copying the child's arguments into its block ------------------------------------- */

/* The bytes of seq (a tuple), checked: non-empty, bytes, no null byte; their total size
 * with terminators in *text. Returns 0, or -1 with an exception set. */
static int
check_argv(PyObject *seq, Py_ssize_t *text)
{
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "argv must not be empty");
        return -1;
    }
    *text = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(seq, i);
        if (!PyBytes_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "argv: items must be bytes");
            return -1;
        }
        Py_ssize_t len = PyBytes_GET_SIZE(item);
        if ((Py_ssize_t)strlen(PyBytes_AS_STRING(item)) != len) {
            PyErr_SetString(PyExc_ValueError, "argv: embedded null byte");
            return -1;
        }
        *text += len + 1;
    }
    return 0;
}

/* env (a dict of bytes to bytes) checked, its "KEY=VALUE\0" size in *text. */
static int
check_env(PyObject *env, Py_ssize_t *text)
{
    if (!PyDict_Check(env)) {
        PyErr_SetString(PyExc_TypeError, "env must be a dict of bytes to bytes");
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    *text = 0;
    while (PyDict_Next(env, &pos, &key, &value)) {
        if (!PyBytes_Check(key) || !PyBytes_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "env must be a dict of bytes to bytes");
            return -1;
        }
        const char *k = PyBytes_AS_STRING(key), *v = PyBytes_AS_STRING(value);
        Py_ssize_t klen = PyBytes_GET_SIZE(key), vlen = PyBytes_GET_SIZE(value);
        if (klen == 0 || memchr(k, '=', klen) != NULL) {
            PyErr_SetString(PyExc_ValueError, "illegal environment variable name");
            return -1;
        }
        if ((Py_ssize_t)strlen(k) != klen || (Py_ssize_t)strlen(v) != vlen) {
            PyErr_SetString(PyExc_ValueError, "env: embedded null byte");
            return -1;
        }
        *text += klen + vlen + 2;
    }
    return 0;
}

static char *
copy_bytes(char *p, PyObject *bytes)
{
    Py_ssize_t len = PyBytes_GET_SIZE(bytes);
    memcpy(p, PyBytes_AS_STRING(bytes), len + 1);
    return p + len + 1;
}

/* A block holding path, argv (a checked tuple), env (a checked dict, not changed since:
 * the GIL is held throughout) and a stack; NULL with MemoryError set. */
static struct block *
new_block(PyObject *path, PyObject *argv, Py_ssize_t argv_text, PyObject *env,
          Py_ssize_t env_text)
{
    Py_ssize_t argc = PyTuple_GET_SIZE(argv), envc = PyDict_GET_SIZE(env);
    size_t size = sizeof(struct block) + (argc + 1 + envc + 1) * sizeof(char *)
        + PyBytes_GET_SIZE(path) + 1 + argv_text + env_text + 16 + CHILD_STACK_BYTES;
    struct block *b = PyMem_RawCalloc(1, size);
    if (b == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    char **argv_vec = (char **)(b + 1), **env_vec = argv_vec + argc + 1;
    char *p = (char *)(env_vec + envc + 1);
    b->c.path = p;
    p = copy_bytes(p, path);
    for (Py_ssize_t i = 0; i < argc; i++) {
        argv_vec[i] = p;
        p = copy_bytes(p, PyTuple_GET_ITEM(argv, i));
    }
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    while (PyDict_Next(env, &pos, &key, &value)) {
        env_vec[i++] = p;
        Py_ssize_t klen = PyBytes_GET_SIZE(key);
        memcpy(p, PyBytes_AS_STRING(key), klen);
        p[klen] = '=';
        p = copy_bytes(p + klen + 1, value);
    }
    b->c.argv = argv_vec;
    b->c.envp = env_vec;
    b->stack_top = (char *)(((uintptr_t)b + size) & ~(uintptr_t)15);
    b->in_use = 1;
    return b;
}

/* ---- spawn ----------------------------------------------------------------------------- */

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
 * for itself (32 and 33). By number, not by SIGRTMIN: that moves up when a library
 * reserves a real-time signal, which is then caught like any other. */
static int
settable_signal(long sig)
{
    return sig >= 1 && sig <= LAST_SIGNAL && sig != SIGKILL && sig != SIGSTOP && sig != 32
        && sig != 33;
}

/* The bit set of reset_signals (a sequence of ints); -1 with an exception set. */
static int
signal_bits(PyObject *seq, uint64_t *bits)
{
    /* A tuple of its own: converting an item may run code that changes a list. */
    PyObject *sigs = PySequence_Tuple(seq);
    if (sigs == NULL)
        return -1;
    *bits = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(sigs); i++) {
        long sig = PyLong_AsLong(PyTuple_GET_ITEM(sigs, i));
        if (sig == -1 && PyErr_Occurred())
            goto error;
        if (!settable_signal(sig)) {
            PyErr_Format(PyExc_ValueError, "cannot reset the disposition of signal %ld", sig);
            goto error;
        }
        *bits |= UINT64_C(1) << (sig - 1);
    }
    Py_DECREF(sigs);
    return 0;
error:
    Py_DECREF(sigs);
    return -1;
}

PyDoc_STRVAR(spawn_doc,
"spawn(path, argv, env, fds, reset_signals, /) -> (pid, pidfd, start)\n\
\n\
Start path (bytes) with argv (a non-empty sequence of bytes) and env (a dict of bytes to\n\
bytes) in a new session (setsid), the fds of the tuple fds (three ints) duplicated onto\n\
its fd 0, 1 and 2, every signal the caller catches at SIG_DFL, and so the signals of\n\
reset_signals (a sequence of ints) even when ignored; the caller's signal mask. Every\n\
other fd is left to FD_CLOEXEC. Returns at once, without waiting for the child's\n\
execve(2): the child's pid, a pidfd for it (close-on-exec) and a Start, whose error tells,\n\
once the child has exited, whether a step in it failed (it then exits 127).\n\
\n\
Until the child's setsid(2), its process group does not exist yet: killpg(2) of its pid\n\
fails with ESRCH, and kill(2) of the pid reaches it (it is alone: it has run nothing).\n\
\n\
Raises OSError with the errno of clone(2) and path as its filename (no child then);\n\
MemoryError; TypeError or ValueError for arguments of the wrong type, holding a null\n\
byte, an empty argv, an environment name that is empty or holds '=', or a signal whose\n\
disposition cannot be set (SIGKILL, SIGSTOP, 32, 33, out of range).");

static PyObject *
clone_spawn(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "spawn expected 5 arguments, got %zd", nargs);
        return NULL;
    }
    PyObject *path = args[0], *argv = NULL, *result = NULL;
    StartObject *start = NULL;
    int fds[3];
    uint64_t reset;
    Py_ssize_t argv_text, env_text;

    if (!PyBytes_Check(path)
        || (Py_ssize_t)strlen(PyBytes_AS_STRING(path)) != PyBytes_GET_SIZE(path)) {
        PyErr_SetString(PyExc_ValueError, "path must be bytes without a null byte");
        return NULL;
    }
    if (!PyTuple_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "fds must be a tuple of three ints");
        return NULL;
    }
    if (!PyArg_ParseTuple(args[3], "iii;fds must be a tuple of three ints", &fds[0], &fds[1],
                          &fds[2]))
        return NULL;
    if (signal_bits(args[4], &reset) != 0)
        return NULL;
    /* A tuple of its own: a list could be changed while its items are converted. */
    argv = PySequence_Tuple(args[1]);
    if (argv == NULL)
        return NULL;
    if (check_argv(argv, &argv_text) != 0 || check_env(args[2], &env_text) != 0)
        goto done;
    start = PyObject_New(StartObject, start_type);
    if (start == NULL)
        goto done;
    start->block = new_block(path, argv, argv_text, args[2], env_text);
    if (start->block == NULL)
        goto done;
    free_left_orphans();

    struct block *b = start->block;
    memcpy(b->c.fds, fds, sizeof fds);
    b->c.reset = reset;
    pid_t pid;
    int pidfd = -1, clone_error = 0;
    Py_BEGIN_ALLOW_THREADS
    /* Blocked in the child until its handlers are reset: a signal caught before execve
     * would run the caller's handler in the caller's memory. */
    if (block_all(&b->c.mask) != 0) {
        pid = -1;
        clone_error = errno;
    }
    else {
        pid = clone(child_main, b->stack_top, CLONE_FLAGS, &b->c, &pidfd, NULL, &b->in_use);
        clone_error = errno;
        set_mask(&b->c.mask);
    }
    Py_END_ALLOW_THREADS
    if (pid < 0) {
        b->in_use = 0;  /* no child: nothing uses the block */
        errno = clone_error;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        goto done;
    }
    result = Py_BuildValue("(iiO)", (int)pid, pidfd, (PyObject *)start);
    if (result == NULL) {  /* MemoryError: no one would watch or reap the child */
        Py_BEGIN_ALLOW_THREADS
        int status;
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        Py_END_ALLOW_THREADS
        close(pidfd);
    }
done:
    Py_XDECREF(start);
    Py_DECREF(argv);
    return result;
}

static PyMethodDef methods[] = {
    {"spawn", (PyCFunction)(void (*)(void))clone_spawn, METH_FASTCALL, spawn_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_clone",
    .m_doc = "clone(CLONE_VM | CLONE_PIDFD | CLONE_CHILD_CLEARTID) + execve(2) for "
             "fswatchd's children, the caller not suspended meanwhile.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__clone(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    start_type = (PyTypeObject *)PyType_FromSpec(&start_spec);
    if (start_type == NULL || PyModule_AddObjectRef(m, "Start", (PyObject *)start_type) < 0
        || PyModule_AddIntConstant(m, "CONCURRENT", CONCURRENT_CHILD) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
