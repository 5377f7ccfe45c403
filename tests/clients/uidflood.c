// uidflood: many distinct uids against one binding, each from a real process. Run as root:
// every child drops its supplementary groups, takes GID as its gid and a uid of its own (uids
// need no passwd entry), and only then connects, so the daemon sees the kernel's record of
// that uid. Used by tests/audit_flood.rs and tests/unread_grants.rs.
//
//   uidflood fetch SOCKET GID FIRST_UID COUNT PARALLEL
//       COUNT children with uids FIRST_UID, FIRST_UID+1, ..., at most PARALLEL alive at once.
//       Each connects, receives the answer (closing any descriptor), and exits. Prints the
//       line `half` once COUNT/2 children have finished, and at the end
//       {"granted":G,"denied":D,"failed":F}.
//   uidflood hold SOCKET GID FIRST_UID COUNT PER_UID
//       COUNT children with uids FIRST_UID, ..., each opening PER_UID connections and reading
//       none of them. Once every answer has arrived (or 30 s have passed) each child peeks at the
//       first byte of its answers without taking them, and the parent prints
//       {"connections":C,"granted":G,"denied":D,"unanswered":U}. Then everything stays open
//       until the parent is killed (children die with it) or 120 s pass.
//
// Every wait is bounded; exit status 0 unless the helper itself could not run.
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { GRANTED = 0, DENIED = 1, FAILED = 2 };

static void die(const char *what) {
    fprintf(stderr, "uidflood: %s: %s\n", what, strerror(errno));
    exit(100);
}

// Becomes uid `uid`, gid `gid`, no supplementary groups; dies with the parent (asked for after
// the change of credentials, which clears the parent-death signal).
static void become(uid_t uid, gid_t gid, pid_t parent) {
    if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)
        _exit(FAILED);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(FAILED);
}

static int connect_to(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    struct timeval tv = {30, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        close(s);
        return -1;
    }
    return s;
}

// One fetch: the exit status of a `fetch` child.
static int fetch_once(const char *path) {
    int s = connect_to(path);
    if (s < 0) return FAILED;
    char payload[512];
    char ctl[CMSG_SPACE(255 * sizeof(int))];
    struct iovec io = {payload, sizeof payload};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    ssize_t n = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
    int fds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int *fd = (int *)CMSG_DATA(c);
            for (int i = 0; i < k; i++) close(fd[i]);
            fds += k;
        }
    }
    close(s);
    if (n <= 0) return FAILED;
    if (payload[0] == 0) return DENIED;
    return fds == (unsigned char)payload[0] ? GRANTED : FAILED;
}

static int mode_fetch(const char *path, gid_t gid, uid_t first, long count, long parallel) {
    pid_t self = getpid();
    long started = 0, finished = 0, counts[3] = {0, 0, 0};
    while (finished < count) {
        while (started < count && started - finished < parallel) {
            pid_t pid = fork();
            if (pid < 0) die("fork");
            if (pid == 0) {
                become(first + (uid_t)started, gid, self);
                _exit(fetch_once(path));
            }
            started++;
        }
        int status;
        if (wait(&status) < 0) die("wait");
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : FAILED;
        counts[code == GRANTED || code == DENIED ? code : FAILED]++;
        if (++finished == count / 2) {
            printf("half\n");
            fflush(stdout);
        }
    }
    printf("{\"granted\":%ld,\"denied\":%ld,\"failed\":%ld}\n", counts[GRANTED], counts[DENIED],
           counts[FAILED]);
    return 0;
}

// What one `hold` child reports to the parent through a pipe (one write, atomic).
struct held {
    int connections, granted, denied, unanswered;
};

static void hold_child(const char *path, int per_uid, int report, int shut) {
    int *socks = calloc(per_uid, sizeof *socks);
    struct pollfd *p = calloc(per_uid, sizeof *p);
    struct held h = {0, 0, 0, 0};
    for (int i = 0; i < per_uid; i++) {
        socks[h.connections] = connect_to(path);
        if (socks[h.connections] < 0) continue;
        // hold-shut: end our own stream as a client that has nothing to say would, and
        // still never read (the daemon's end then reports POLLHUP, though nothing is read).
        if (shut) shutdown(socks[h.connections], SHUT_WR);
        h.connections++;
    }
    // Wait (bounded) until every connection has its answer queued, without reading it.
    time_t deadline = time(NULL) + 30;
    for (;;) {
        int waiting = 0;
        for (int i = 0; i < h.connections; i++) {
            p[i] = (struct pollfd){.fd = socks[i], .events = POLLIN};
        }
        poll(p, h.connections, 0);
        for (int i = 0; i < h.connections; i++) waiting += !(p[i].revents & (POLLIN | POLLHUP));
        if (waiting == 0 || time(NULL) >= deadline) break;
        usleep(10000);
    }
    for (int i = 0; i < h.connections; i++) {
        unsigned char b;
        // No control buffer: the kernel installs no descriptor, and the grant stays unread.
        ssize_t n = recv(socks[i], &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 1 && b != 0) h.granted++;
        else if (n == 1) h.denied++;
        else h.unanswered++;
    }
    if (write(report, &h, sizeof h) != sizeof h) _exit(FAILED);
    sleep(120);
    _exit(0);
}

static int mode_hold(const char *path, gid_t gid, uid_t first, long count, int per_uid, int shut) {
    pid_t self = getpid();
    int pipefd[2];
    if (pipe(pipefd) != 0) die("pipe");
    for (long i = 0; i < count; i++) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            close(pipefd[0]);
            // Room for the held connections, taken while still root.
            struct rlimit r = {per_uid + 64, per_uid + 64};
            if (setrlimit(RLIMIT_NOFILE, &r) != 0) _exit(FAILED);
            become(first + (uid_t)i, gid, self);
            hold_child(path, per_uid, pipefd[1], shut);
        }
    }
    close(pipefd[1]);
    struct held total = {0, 0, 0, 0}, h;
    for (long i = 0; i < count; i++) {
        ssize_t n = read(pipefd[0], &h, sizeof h);
        if (n != sizeof h) break;  // a child failed before reporting
        total.connections += h.connections;
        total.granted += h.granted;
        total.denied += h.denied;
        total.unanswered += h.unanswered;
    }
    printf("{\"connections\":%d,\"granted\":%d,\"denied\":%d,\"unanswered\":%d}\n", total.connections,
           total.granted, total.denied, total.unanswered);
    fflush(stdout);
    sleep(120);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: uidflood fetch|hold|hold-shut SOCKET GID FIRST_UID COUNT PARALLEL|PER_UID\n");
        return 2;
    }
    const char *path = argv[2];
    gid_t gid = (gid_t)strtoul(argv[3], NULL, 10);
    uid_t first = (uid_t)strtoul(argv[4], NULL, 10);
    long count = strtol(argv[5], NULL, 10), last = strtol(argv[6], NULL, 10);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(argv[1], "fetch") == 0) return mode_fetch(path, gid, first, count, last);
    if (strcmp(argv[1], "hold") == 0) return mode_hold(path, gid, first, count, (int)last, 0);
    if (strcmp(argv[1], "hold-shut") == 0) return mode_hold(path, gid, first, count, (int)last, 1);
    fprintf(stderr, "uidflood: unknown mode %s\n", argv[1]);
    return 2;
}
