// addrserver: the server inside the test containers (tests/containers.rs). The tests compile it
// with `cc -static`, so the container's root filesystem needs no libc. It takes its listening
// sockets from systemd's protocol (LISTEN_FDS, LISTEN_PID: what portbinder-exec sets) and
// answers each HTTP request with the peer's address as accept() reported it.
//
//   addrserver check            the sockets are there: print "ok fds=N pid=P uid=U gid=G", exit 0
//   addrserver serve N [PORT]   also bind 0.0.0.0:PORT itself (in its own network namespace) if
//                               given; print one "serving ..." line (pid, uid, gid, the network
//                               namespace, the entries of /), answer N requests, exit 0
//
// Each answer is "HTTP/1.0 200 OK" with the body "client=ADDR port=PORT local=ADDR:PORT uid=U\n".
// Errors go to stderr with exit code 3.
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 16

static void die(const char *what) {
    fprintf(stderr, "addrserver: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(3);
}

// The sockets of LISTEN_FDS, checked: meant for this process, and listening.
static int listen_fds(int *fds) {
    const char *pid = getenv("LISTEN_PID"), *count = getenv("LISTEN_FDS");
    errno = 0;
    if (!pid || !count) die("LISTEN_PID and LISTEN_FDS must be set");
    if (atol(pid) != (long)getpid()) die("LISTEN_PID is not this process");
    int n = atoi(count);
    if (n < 1 || n > MAX_FDS - 1) die("LISTEN_FDS is out of range");
    for (int i = 0; i < n; i++) {
        int listening = 0;
        socklen_t len = sizeof listening;
        if (getsockopt(3 + i, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) die("getsockopt(SO_ACCEPTCONN)");
        errno = 0;
        if (!listening) die("an inherited socket is not listening");
        fds[i] = 3 + i;
    }
    return n;
}

static void print_addr(char *out, size_t size, const struct sockaddr_storage *a) {
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const void *)a;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        port = ntohs(v4->sin_port);
    } else if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const void *)a;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        port = ntohs(v6->sin6_port);
    }
    snprintf(out, size, "%s port=%d", host, port);
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// The entries of / (sorted, comma-separated): what this root filesystem holds.
static void root_entries(char *out, size_t size) {
    char *names[64];
    int n = 0;
    DIR *d = opendir("/");
    if (!d) die("opendir /");
    for (struct dirent *e; (e = readdir(d)) && n < 64;) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        if (i) strncat(out, ",", size - strlen(out) - 1);
        strncat(out, names[i], size - strlen(out) - 1);
        free(names[i]);
    }
}

static void answer(int conn) {
    char request[4096];
    size_t got = 0;
    // The request head, up to its blank line (or 4 KiB).
    while (got < sizeof request - 1) {
        ssize_t r = read(conn, request + got, sizeof request - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        request[got] = 0;
        if (strstr(request, "\r\n\r\n")) break;
    }
    struct sockaddr_storage peer, local;
    socklen_t plen = sizeof peer, llen = sizeof local;
    if (getpeername(conn, (struct sockaddr *)&peer, &plen) != 0) die("getpeername");
    if (getsockname(conn, (struct sockaddr *)&local, &llen) != 0) die("getsockname");
    char p[80], l[80], reply[512];
    print_addr(p, sizeof p, &peer);
    print_addr(l, sizeof l, &local);
    char *space = strchr(l, ' ');  // "ADDR port=PORT" -> "ADDR:PORT"
    if (space) {
        memmove(space + 1, space + 6, strlen(space + 6) + 1);
        *space = ':';
    }
    char body[256];
    snprintf(body, sizeof body, "client=%s local=%s uid=%d\n", p, l, (int)getuid());
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     strlen(body), body);
    if (write(conn, reply, (size_t)n) != n) die("write");
}

int main(int argc, char **argv) {
    int fds[MAX_FDS];
    if (argc < 2) {
        fprintf(stderr, "usage: addrserver check | serve N [PORT]\n");
        return 2;
    }
    int n = listen_fds(fds);
    if (strcmp(argv[1], "check") == 0) {
        printf("ok fds=%d pid=%d uid=%d gid=%d\n", n, (int)getpid(), (int)getuid(), (int)getgid());
        return 0;
    }
    if (strcmp(argv[1], "serve") != 0 || argc < 3) {
        fprintf(stderr, "usage: addrserver check | serve N [PORT]\n");
        return 2;
    }
    long requests = atol(argv[2]);
    if (argc > 3) {  // a socket of its own, in its own network namespace (behind a forwarder)
        int own = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
        setsockopt(own, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (own < 0 || bind(own, (struct sockaddr *)&a, sizeof a) != 0 || listen(own, 64) != 0) die("bind own port");
        fds[n++] = own;
    }
    char netns[64] = "?", root[1024];
    ssize_t len = readlink("/proc/self/ns/net", netns, sizeof netns - 1);
    netns[len > 0 ? len : 1] = 0;
    root_entries(root, sizeof root);
    printf("serving fds=%d pid=%d uid=%d gid=%d netns=%s root=%s\n", n, (int)getpid(), (int)getuid(), (int)getgid(),
           netns, root);
    fflush(stdout);
    struct pollfd pfds[MAX_FDS];
    for (int i = 0; i < n; i++) pfds[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    while (requests > 0) {
        if (poll(pfds, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        for (int i = 0; i < n && requests > 0; i++) {
            if (!(pfds[i].revents & POLLIN)) continue;
            int conn = accept(pfds[i].fd, NULL, NULL);
            if (conn < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                die("accept");
            }
            answer(conn);
            close(conn);
            requests--;
        }
    }
    return 0;
}
