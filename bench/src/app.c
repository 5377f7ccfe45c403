// app: the one application every data-path and restart measurement of bench/run uses, so that
// only the way the listening socket arrives differs between the compared set-ups.
//
//   app check SOURCE   get the socket, check it is a listening TCP socket, exit 0 (else 1)
//   app serve SOURCE   a small epoll HTTP/1.1 server (keep-alive, one thread) on that socket;
//                      prints "ready" on stdout once serving. SIGTERM drains: stop accepting,
//                      answer the next request of each open connection with "Connection: close",
//                      close it, exit when none are left (or after 5 s).
//
// SOURCE is where the listening socket comes from:
//   bind:ADDR:PORT       bind(2) and listen(2) itself (SO_REUSEADDR), as a server normally does
//   reuseport:ADDR:PORT  the same with SO_REUSEPORT, so a new instance can overlap the old one
//   fd:N                 an inherited descriptor (fd:0 under s6-fdholder-retrieve)
//   listen-fds           systemd's protocol: LISTEN_PID is us, LISTEN_FDS >= 1, the socket at fd 3
//   fetch:PATH           portbinder's protocol: connect to PATH, receive count byte + SCM_RIGHTS
//
// Build: gcc -O2 -o app app.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) { fprintf(stderr, "app: %s: %s\n", what, strerror(errno)); exit(1); }
static void fail(const char *what) { fprintf(stderr, "app: %s\n", what); exit(1); }

static int bind_self(const char *spec, int reuseport) {
    char host[64];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host) fail("bind: want ADDR:PORT");
    memcpy(host, spec, colon - spec);
    host[colon - spec] = 0;
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &in.sin_addr) != 1) fail("bind: bad IPv4 address");
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (s < 0) die("socket");
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&in, sizeof in) < 0) die("bind");
    if (listen(s, 1024) < 0) die("listen");
    return s;
}

static int fetch(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) die("connect to the portbinder socket");
    char buf[401];
    char ctl[CMSG_SPACE(255 * sizeof(int))];
    struct iovec io = {buf, sizeof buf};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    ssize_t n = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
    close(s);
    if (n <= 0) fail("fetch: no answer");
    if (buf[0] == 0) { fprintf(stderr, "app: denied: %.*s\n", (int)n - 1, buf + 1); exit(1); }
    if (m.msg_flags & MSG_CTRUNC) fail("fetch: descriptors truncated");
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_type != SCM_RIGHTS) fail("fetch: no descriptors");
    int count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int), fds[255];
    memcpy(fds, CMSG_DATA(c), count * sizeof(int));
    if (count != (unsigned char)buf[0]) fail("fetch: count byte does not match the descriptors");
    for (int i = 1; i < count; i++) close(fds[i]);
    return fds[0];
}

static int get_socket(const char *src) {
    if (!strncmp(src, "bind:", 5)) return bind_self(src + 5, 0);
    if (!strncmp(src, "reuseport:", 10)) return bind_self(src + 10, 1);
    if (!strncmp(src, "fd:", 3)) return atoi(src + 3);
    if (!strncmp(src, "fetch:", 6)) return fetch(src + 6);
    if (!strcmp(src, "listen-fds")) {
        const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
        if (!pid || !fds || atoi(pid) != getpid() || atoi(fds) < 1) fail("listen-fds: no LISTEN_FDS for this process");
        return 3;
    }
    fail("unknown SOURCE (bind:ADDR:PORT, reuseport:ADDR:PORT, fd:N, listen-fds, fetch:PATH)");
    return -1;
}

static void check_listening(int s) {
    int v = 0;
    socklen_t l = sizeof v;
    if (getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l) < 0) die("not a socket");
    if (v != SOCK_STREAM) fail("not a stream socket");
    l = sizeof v;
    if (getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) < 0 || !v) fail("not listening");
}

// ---- the HTTP server ----------------------------------------------------------------------

#define BUF 8192
struct conn {
    int fd;
    size_t in_len, out_len, out_off;
    int close_after;  // close once the output is written
    char in[BUF], out[BUF];
};

static const char OK_KEEP[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nhello\n";
static const char OK_CLOSE[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nhello\n";
static int draining, live, ep;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static void drop(struct conn *c) { close(c->fd); free(c); live--; }

// Writes what is pending; returns 0 when the connection was closed.
static int flush(struct conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
            return 1;
        }
        if (n <= 0) { drop(c); return 0; }
        c->out_off += n;
    }
    c->out_off = c->out_len = 0;
    if (c->close_after) { drop(c); return 0; }
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
    return 1;
}

static void on_readable(struct conn *c) {
    for (;;) {
        if (c->in_len == BUF) { drop(c); return; }  // header too large
        ssize_t n = recv(c->fd, c->in + c->in_len, BUF - c->in_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN)) { drop(c); return; }
        if (n < 0) break;
        c->in_len += n;
    }
    // Answer every complete request (GET, no body) in the buffer.
    char *p = c->in, *end = c->in + c->in_len, *hdr_end;
    while (!c->close_after && (hdr_end = memmem(p, end - p, "\r\n\r\n", 4))) {
        int client_close = memmem(p, hdr_end - p, "Connection: close", 17) != NULL;
        int closing = client_close || draining;
        const char *r = closing ? OK_CLOSE : OK_KEEP;
        size_t rl = closing ? sizeof OK_CLOSE - 1 : sizeof OK_KEEP - 1;
        if (c->out_len + rl > BUF) break;
        memcpy(c->out + c->out_len, r, rl);
        c->out_len += rl;
        c->close_after = closing;
        p = hdr_end + 4;
    }
    memmove(c->in, p, end - p);
    c->in_len = end - p;
    if (c->out_len) flush(c);
}

static void serve(int lst) {
    int fl = fcntl(lst, F_GETFL);
    fcntl(lst, F_SETFL, fl | O_NONBLOCK);  // shared by every holder of the socket; all want it
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    ep = epoll_create1(EPOLL_CLOEXEC);
    int lst_tag = 1, sig_tag = 2;
    struct epoll_event e = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &lst_tag};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lst, &e) < 0) die("epoll_ctl");
    e = (struct epoll_event){.events = EPOLLIN, .data.ptr = &sig_tag};
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &e);
    printf("ready %d\n", getpid());
    fflush(stdout);
    double deadline = 0;
    struct epoll_event ev[64];
    for (;;) {
        if (draining && (live == 0 || now() > deadline)) break;
        int n = epoll_wait(ep, ev, 64, draining ? 50 : -1);
        for (int i = 0; i < n; i++) {
            void *tag = ev[i].data.ptr;
            if (tag == &sig_tag) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si) {}
                if (!draining) {
                    // Stop accepting: our descriptor goes; the socket lives on in other holders.
                    draining = 1;
                    deadline = now() + 5;
                    epoll_ctl(ep, EPOLL_CTL_DEL, lst, NULL);
                    close(lst);
                }
            } else if (tag == &lst_tag) {
                for (;;) {
                    int fd = accept4(lst, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *c = calloc(1, sizeof *c);
                    c->fd = fd;
                    live++;
                    struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                }
            } else {
                struct conn *c = tag;
                if (ev[i].events & EPOLLOUT && c->out_len) { if (!flush(c)) continue; }
                if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
            }
        }
    }
    exit(0);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: app check|serve SOURCE\n"); return 2; }
    int s = get_socket(argv[2]);
    check_listening(s);
    if (!strcmp(argv[1], "check")) return 0;
    if (!strcmp(argv[1], "serve")) serve(s);
    fail("first argument: check or serve");
}
