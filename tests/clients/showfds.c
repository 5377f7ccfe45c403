// showfds: what a program started by portbinder exec (or portbinder-exec) was given, printed on
// one line each: the LISTEN_* and preload variables (whether LISTEN_PID is its own pid rather
// than the pid), then which of fds 3 to 6 are open and whether each is a socket. Compiled
// static by the tests, so that the LD_PRELOAD shim, which hides its variables from the
// program it is loaded into, is never loaded here and the variables show as exec set them.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *var(const char *name) {
    const char *v = getenv(name);
    return v ? v : "-";
}

int main(void) {
    const char *pid = getenv("LISTEN_PID");
    printf("LISTEN_FDS=%s LISTEN_FDNAMES=%s LISTEN_PID=%s\n", var("LISTEN_FDS"), var("LISTEN_FDNAMES"),
           pid ? (atol(pid) == (long)getpid() ? "own" : "other") : "-");
    printf("LD_PRELOAD=%s PORTBINDER_FDS=%s PORTBINDER_PRELOAD_ANY_ADDRESS=%s\n", var("LD_PRELOAD"),
           var("PORTBINDER_FDS"), var("PORTBINDER_PRELOAD_ANY_ADDRESS"));
    for (int fd = 3; fd <= 6; fd++) {
        struct stat st;
        printf("fd %d: %s\n", fd, fstat(fd, &st) != 0 ? "closed" : S_ISSOCK(st.st_mode) ? "socket" : "other");
    }
    return 0;
}
