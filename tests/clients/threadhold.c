/* threadhold SOCKET MODE: fetches a portbinder binding's first socket, then holds it where a
 * scan of /proc/PID/fd does not show it, in a second thread that sleeps:
 *
 *   exit-main  the main thread exits (pthread_exit): /proc/PID/fd of a process whose main
 *              thread is gone lists nothing, though the other thread still holds every fd;
 *   unshare    the second thread unshares its descriptor table (unshare(CLONE_FILES)) and the
 *              main thread then closes the socket in its own: only /proc/PID/task/TID/fd
 *              shows it.
 *
 * Prints "ready PID" once the socket is held so (in exit-main mode, from the second thread once
 * it sees the main thread a zombie, which has released its table: /proc/PID/fd is empty from
 * then on), then holds it for at most 120 seconds; it dies with its parent (the test). Exit 1
 * (with a message) if the fetch is not granted. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int unshare_files;
static int ready_pipe[2];
static pid_t main_tid;

/* Whether thread TID of this process is a zombie: it has exited and released its files. */
static int is_zombie(pid_t tid) {
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = 0;
    /* The state follows the command name, which is in parentheses and may hold spaces. */
    char *end = strrchr(stat, ')');
    return end != NULL && end[1] == ' ' && end[2] == 'Z';
}

static void *holder(void *arg) {
    (void)arg;
    /* The parent-death signal is per thread: this one outlives the main thread. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (unshare_files && unshare(CLONE_FILES) != 0) {
        perror("unshare(CLONE_FILES)");
        _exit(1);
    }
    char byte = 1;
    if (write(ready_pipe[1], &byte, 1) != 1)
        _exit(1);
    if (!unshare_files) {
        /* Ready only once the main thread is gone (it exits right after reading the pipe). */
        for (int tries = 0; !is_zombie(main_tid); tries++) {
            if (tries == 100000) {
                fprintf(stderr, "the main thread did not exit\n");
                _exit(1);
            }
            usleep(1000);
        }
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
    }
    sleep(120);
    _exit(0);
}

/* The first descriptor of a grant on binding socket PATH, or -1. */
static int fetch(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("connect");
        return -1;
    }
    char byte = 0;
    char control[CMSG_SPACE(sizeof(int) * 16)];
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control, .msg_controllen = sizeof control};
    ssize_t n;
    do
        n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (n <= 0 || byte == 0 || c == NULL || c->cmsg_type != SCM_RIGHTS) {
        fprintf(stderr, "not granted\n");
        return -1;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    close(s);
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[2], "exit-main") != 0 && strcmp(argv[2], "unshare") != 0)) {
        fprintf(stderr, "usage: threadhold SOCKET exit-main|unshare\n");
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() == 1)
        return 1;
    unshare_files = strcmp(argv[2], "unshare") == 0;
    main_tid = getpid();
    int fd = fetch(argv[1]);
    if (fd < 0 || pipe(ready_pipe) != 0)
        return 1;
    pthread_t thread;
    if (pthread_create(&thread, NULL, holder, NULL) != 0)
        return 1;
    char byte;
    if (read(ready_pipe[0], &byte, 1) != 1)
        return 1;
    if (!unshare_files)
        pthread_exit(NULL);
    close(fd);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    sleep(120);
    return 0;
}
