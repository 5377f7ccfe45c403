// bindtest: an unmodified-style C server for the LD_PRELOAD shim tests. It binds, in
// order, every address given as PORT (IPv4 wildcard), [v6]PORT or unix:PATH, reports the
// result of each bind on stdout ("bind 80: ok" / "bind 81: errno 13"), then, if the first
// bind succeeded, listens and answers one HTTP request on it. It also reports whether its
// first socket is close-on-exec and what LD_PRELOAD and PORTBINDER_FDS hold.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int try_bind(const char *spec) {
    int fd;
    int rc;
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        strncpy(a.sun_path, spec + 5, sizeof a.sun_path - 1);
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    } else if (spec[0] == '[') {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any};
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        a.sin6_port = htons(atoi(strchr(spec, ']') + 1));
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        a.sin_port = htons(atoi(spec));
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (rc == 0)
        printf("bind %s: ok\n", spec);
    else
        printf("bind %s: errno %d\n", spec, errno);
    return rc == 0 ? fd : -1;
}

int main(int argc, char **argv) {
    const char *pre = getenv("LD_PRELOAD"), *fds = getenv("PORTBINDER_FDS");
    printf("env LD_PRELOAD=%s PORTBINDER_FDS=%s\n", pre ? pre : "-", fds ? fds : "-");
    int first = -1;
    for (int i = 1; i < argc; i++) {
        int fd = try_bind(argv[i]);
        if (i == 1)
            first = fd;
    }
    if (first < 0)
        return 0;
    printf("cloexec %d\n", (fcntl(first, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
    if (listen(first, 16) != 0) {
        printf("listen: errno %d\n", errno);
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    int c = accept(first, NULL, NULL);
    char buf[512];
    read(c, buf, sizeof buf);
    const char reply[] = "HTTP/1.0 200 OK\r\n\r\nhello from bindtest\n";
    write(c, reply, sizeof reply - 1);
    close(c);
    return 0;
}
