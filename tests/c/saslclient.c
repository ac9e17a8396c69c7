/* A minimal SASL client on the system libsasl2, driven by the tests.
 *
 *   saslclient --mech M [--user U] [--pass P] [--prompt] [--no-answer]
 *              [--fqdn HOST] [--remote ADDR;PORT] [--step HEX]...
 *
 * Prints one line per call: "start rc=N mech=M out=HEX" and
 * "step rc=N out=HEX"; libsasl2 log messages go to stderr as
 * "log[LEVEL] MESSAGE". With --prompt no user/password callbacks are
 * registered, so the mechanism must ask through interaction prompts,
 * which are answered from --user/--pass (or left empty with --no-answer).
 * --ignore-sigchld sets SIGCHLD to SIG_IGN first, as some hosts do.
 * Hostile hosts for the spawn code: --close-stdin starts with fd 0 closed;
 * --hostile-signals blocks every signal, ignores SIGCHLD and catches
 * SIGTERM/SIGUSR1; --no-close-range makes close_range(2) fail with ENOSYS
 * (a seccomp filter, inherited by every child), as on kernels before 5.9;
 * --leak-fd PATH opens PATH without O_CLOEXEC and keeps it open.
 * --setuid UID becomes UID (group UID too) right after sasl_client_init,
 * as Postfix's smtp does after loading plugins (which leaves it, and its
 * children until they exec, non-dumpable). At the
 * end it prints "fds N" (open descriptors) and "children N" (processes,
 * zombies included, whose parent is this one), so tests can spot leaks.
 */
#include <sasl/sasl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>

static const char *user, *pass;
static sasl_secret_t *secret;

static int log_cb(void *ctx, int level, const char *msg) {
    (void)ctx;
    fprintf(stderr, "log[%d] %s\n", level, msg);
    return SASL_OK;
}

static int simple_cb(void *ctx, int id, const char **result, unsigned *len) {
    (void)ctx;
    if (id != SASL_CB_AUTHNAME && id != SASL_CB_USER) return SASL_FAIL;
    *result = user;
    if (len) *len = (unsigned)strlen(user);
    return SASL_OK;
}

static int secret_cb(sasl_conn_t *conn, void *ctx, int id, sasl_secret_t **psecret) {
    (void)conn; (void)ctx; (void)id;
    *psecret = secret;
    return SASL_OK;
}

static int count_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory stream itself */
}

static int count_children(void) {
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) {
        char path[64], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        char *close_paren = strrchr(buf, ')');
        int ppid;
        char state;
        if (close_paren && sscanf(close_paren + 2, "%c %d", &state, &ppid) == 2 && ppid == getpid()) n++;
    }
    closedir(d);
    return n;
}

static void hex(const char *p, unsigned n) {
    for (unsigned i = 0; i < n; i++) printf("%02x", (unsigned char)p[i]);
}

static int unhex(const char *s, char *out) {
    size_t n = strlen(s) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (char)v;
    }
    return (int)n;
}

static int answer(sasl_interact_t *in, int no_answer) {
    for (; in->id != SASL_CB_LIST_END; in++) {
        const char *v = in->id == SASL_CB_PASS ? pass : user;
        if (!in->prompt) return -1;
        if (no_answer) { in->result = NULL; in->len = 0; continue; }
        in->result = v;
        in->len = (unsigned)strlen(v);
    }
    return 0;
}

static void on_signal(int sig) { (void)sig; }

static void hostile_signals(void) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    signal(SIGCHLD, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGUSR1, on_signal);
}

/* close_range(2) -> ENOSYS for this process and all its children. */
static void no_close_range(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_close_range, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("seccomp");
        exit(2);
    }
}

int main(int argc, char **argv) {
    const char *mech = NULL, *fqdn = "smtp.example.com", *remote = NULL;
    int prompt = 0, no_answer = 0, nsteps = 0, setuid_to = -1;
    const char *steps[16];
    user = "";
    pass = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mech") && i + 1 < argc) mech = argv[++i];
        else if (!strcmp(argv[i], "--user") && i + 1 < argc) user = argv[++i];
        else if (!strcmp(argv[i], "--pass") && i + 1 < argc) pass = argv[++i];
        else if (!strcmp(argv[i], "--fqdn") && i + 1 < argc) fqdn = argv[++i];
        else if (!strcmp(argv[i], "--remote") && i + 1 < argc) remote = argv[++i];
        else if (!strcmp(argv[i], "--step") && i + 1 < argc && nsteps < 16) steps[nsteps++] = argv[++i];
        else if (!strcmp(argv[i], "--prompt")) prompt = 1;
        else if (!strcmp(argv[i], "--no-answer")) no_answer = 1;
        else if (!strcmp(argv[i], "--ignore-sigchld")) signal(SIGCHLD, SIG_IGN);
        else if (!strcmp(argv[i], "--close-stdin")) close(0);
        else if (!strcmp(argv[i], "--hostile-signals")) hostile_signals();
        else if (!strcmp(argv[i], "--no-close-range")) no_close_range();
        else if (!strcmp(argv[i], "--leak-fd") && i + 1 < argc) {
            if (open(argv[++i], O_RDONLY) < 0) { perror(argv[i]); return 2; }
        }
        else if (!strcmp(argv[i], "--setuid") && i + 1 < argc) setuid_to = atoi(argv[++i]);
        else { fprintf(stderr, "usage error at %s\n", argv[i]); return 2; }
    }
    if (!mech) { fprintf(stderr, "--mech is required\n"); return 2; }
    size_t plen = strlen(pass);
    secret = malloc(sizeof(sasl_secret_t) + plen);
    secret->len = plen;
    memcpy(secret->data, pass, plen);

    sasl_callback_t with_creds[] = {
        {SASL_CB_LOG, (int (*)(void))log_cb, NULL},
        {SASL_CB_AUTHNAME, (int (*)(void))simple_cb, NULL},
        {SASL_CB_USER, (int (*)(void))simple_cb, NULL},
        {SASL_CB_PASS, (int (*)(void))secret_cb, NULL},
        {SASL_CB_LIST_END, NULL, NULL}};
    /* A callback entry with a NULL proc tells libsasl2 "ask me by prompt". */
    sasl_callback_t by_prompt[] = {
        {SASL_CB_LOG, (int (*)(void))log_cb, NULL},
        {SASL_CB_AUTHNAME, NULL, NULL},
        {SASL_CB_PASS, NULL, NULL},
        {SASL_CB_LIST_END, NULL, NULL}};
    sasl_callback_t *cbs = prompt ? by_prompt : with_creds;

    int rc = sasl_client_init(cbs);
    if (rc != SASL_OK) { printf("init rc=%d\n", rc); return 0; }
    if (setuid_to >= 0 && (setgroups(0, NULL) || setgid(setuid_to) || setuid(setuid_to))) {
        perror("setuid");
        return 2;
    }
    sasl_conn_t *conn;
    rc = sasl_client_new("smtp", fqdn, NULL, remote, cbs, 0, &conn);
    if (rc != SASL_OK) { printf("new rc=%d\n", rc); return 0; }
    sasl_security_properties_t props = {0, 256, 0, 0, NULL, NULL};
    sasl_setprop(conn, SASL_SEC_PROPS, &props);

    sasl_interact_t *interact = NULL;
    const char *out = NULL, *chosen = NULL;
    unsigned outlen = 0;
    int rounds = 0;
    do {
        rc = sasl_client_start(conn, mech, &interact, &out, &outlen, &chosen);
        if (rc == SASL_INTERACT) {
            printf("interact\n");
            if (answer(interact, no_answer) < 0) { printf("bad prompt\n"); return 0; }
        }
    } while (rc == SASL_INTERACT && ++rounds < 3);
    printf("start rc=%d mech=%s out=", rc, chosen ? chosen : "-");
    if (out) hex(out, outlen);
    printf("\n");
    fflush(stdout);
    for (int s = 0; s < nsteps && (rc == SASL_CONTINUE || rc == SASL_OK); s++) {
        char buf[4096];
        int n = unhex(steps[s], buf);
        out = NULL; outlen = 0;
        rc = sasl_client_step(conn, n > 0 ? buf : NULL, n > 0 ? (unsigned)n : 0, &interact, &out, &outlen);
        printf("step rc=%d out=", rc);
        if (out) hex(out, outlen);
        printf("%s\n", out ? "" : "(null)");
        fflush(stdout);
    }
    sasl_dispose(&conn);
    sasl_client_done();
    free(secret);
    printf("fds %d\nchildren %d\n", count_fds(), count_children());
    return 0;
}
