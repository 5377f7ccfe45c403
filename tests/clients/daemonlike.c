// daemonlike: a C server that treats its descriptors the way long-lived daemons do, for the
// LD_PRELOAD shim tests (tests/preload_fds.rs, tests/preload_modes.rs). It runs its arguments
// as steps, in order, and reports each on stdout, one line per step:
//
//   close-loop          close(fd) for every fd from 3 to sysconf(_SC_OPEN_MAX)
//   closefrom           closefrom(3)                       (glibc 2.34+)
//   close-range         close_range(3, ~0U, 0)             (glibc 2.34+)
//   sys-close-range     syscall(SYS_close_range, 3, ~0U, 0): no libc function, no shim
//   netlink             a NETLINK_ROUTE socket, the "other" descriptor ("netlink fd N")
//   sweep               dup2 (even numbers) / dup3 (odd) of the netlink socket onto every fd,
//                       open or not, from 3 to min(soft RLIMIT_NOFILE, 1024) - 1 except the
//                       program's own sockets, as programs that place fds at fixed numbers do
//   fill                dup(netlink) until EMFILE: every free number is taken
//   socket KIND         a new current socket: tcp4, udp4, tcp6, udp6, with -nb for
//                       SOCK_NONBLOCK (tcp4-nb) ("socket tcp4 fd N")
//   bind ADDR           bind the current socket to ADDR (IPv4:PORT or [IPv6]:PORT); prints
//                       "bind ADDR: ok domain D inode I local L nonblock N" or
//                       "bind ADDR: errno E domain D" (D: SO_DOMAIN of the socket afterwards,
//                       2 AF_INET, 10 AF_INET6, 16 AF_NETLINK)
//   race ADDR           4 threads each bind 2000 new TCP sockets to ADDR (and close them)
//                       while another thread dup2s the netlink socket onto every fd from
//                       1000 to 1099, closes them and calls closefrom(1100), over and over;
//                       prints "race: N binds, G granted, O other", G counting the binds
//                       that gave the current socket's inode
//   serve-tcp           listen on the last bound TCP socket, print "listening", answer one
//                       HTTP request with "hello from daemonlike\n", print "served tcp"
//   serve-udp           print "ready udp", answer one datagram on the last bound UDP socket
//                       with "answer: " + the datagram, print "served udp"
//
// It exits 0 after the last step, 1 if a step cannot run (bad argument, no socket to serve).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int current = -1, tcp = -1, udp = -1, netlink = -1;

static int parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len) {
    char host[64];
    memset(ss, 0, sizeof *ss);
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host)
            return -1;
        memcpy(host, spec + 1, end - spec - 1);
        host[end - spec - 1] = 0;
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(atoi(end + 2));
        *len = sizeof *a;
        return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? 0 : -1;
    }
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host)
        return -1;
    memcpy(host, spec, colon - spec);
    host[colon - spec] = 0;
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(atoi(colon + 1));
    *len = sizeof *a;
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static void format_local(int fd, char *out, size_t size) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN];
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(out, size, "error%d", errno);
    } else if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(out, size, "%s:%d", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(out, size, "[%s]:%d", host, ntohs(a->sin6_port));
    } else {
        snprintf(out, size, "family%d", ss.ss_family);
    }
}

static int domain_of(int fd) {
    int d = -1;
    socklen_t len = sizeof d;
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &d, &len);
    return d;
}

static int is_own(int fd) {
    return fd == current || fd == tcp || fd == udp || fd == netlink;
}

static int step_socket(const char *kind) {
    int family = strncmp(kind + 3, "6", 1) == 0 ? AF_INET6 : AF_INET;
    int type = strncmp(kind, "udp", 3) == 0 ? SOCK_DGRAM : SOCK_STREAM;
    if (strstr(kind, "-nb"))
        type |= SOCK_NONBLOCK;
    current = socket(family, type | SOCK_CLOEXEC, 0);
    if (current < 0) {
        printf("socket %s: errno %d\n", kind, errno);
        return -1;
    }
    printf("socket %s fd %d\n", kind, current);
    return 0;
}

static int step_bind(const char *spec) {
    struct sockaddr_storage ss;
    socklen_t len;
    if (current < 0 || parse_addr(spec, &ss, &len) != 0) {
        printf("bind %s: no socket or bad address\n", spec);
        return -1;
    }
    if (bind(current, (struct sockaddr *)&ss, len) != 0) {
        printf("bind %s: errno %d domain %d\n", spec, errno, domain_of(current));
        return 0;
    }
    struct stat st;
    char local[80];
    fstat(current, &st);
    format_local(current, local, sizeof local);
    int type = 0;
    socklen_t tlen = sizeof type;
    getsockopt(current, SOL_SOCKET, SO_TYPE, &type, &tlen);
    if (type == SOCK_STREAM)
        tcp = current;
    else
        udp = current;
    printf("bind %s: ok domain %d inode %lu local %s nonblock %d\n", spec, domain_of(current),
           (unsigned long)st.st_ino, local, (fcntl(current, F_GETFL) & O_NONBLOCK) ? 1 : 0);
    return 0;
}

static int top_fd(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur < 1024 ? (int)rl.rlim_cur : 1024;
}

static int step_sweep(void) {
    int top = top_fd(), n = 0;
    for (int fd = 3; fd < top; fd++) {
        if (is_own(fd))
            continue;
        int rc = fd % 2 ? dup3(netlink, fd, O_CLOEXEC) : dup2(netlink, fd);
        if (rc != fd) {
            printf("sweep: dup onto %d: errno %d\n", fd, errno);
            return -1;
        }
        n++;
    }
    printf("sweep: %d descriptors from 3 to %d\n", n, top - 1);
    return 0;
}

static struct sockaddr_storage race_addr;
static socklen_t race_len;
static ino_t race_inode;
static int race_granted, race_other;
static volatile int race_stop;
static pthread_mutex_t race_lock = PTHREAD_MUTEX_INITIALIZER;

static void *race_binder(void *unused) {
    (void)unused;
    for (int i = 0; i < 2000; i++) {
        int s = socket(race_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct stat st = {0};
        int ok = s >= 0 && bind(s, (struct sockaddr *)&race_addr, race_len) == 0 &&
                 fstat(s, &st) == 0 && st.st_ino == race_inode;
        pthread_mutex_lock(&race_lock);
        if (ok)
            race_granted++;
        else
            race_other++;
        pthread_mutex_unlock(&race_lock);
        close(s);
    }
    return NULL;
}

static void *race_juggler(void *unused) {
    (void)unused;
    while (!race_stop) {
        for (int fd = 1000; fd < 1100; fd++)
            dup2(netlink, fd);
        for (int fd = 1000; fd < 1100; fd++)
            close(fd);
        closefrom(1100);
    }
    return NULL;
}

static int step_race(const char *spec) {
    struct stat st;
    if (current < 0 || netlink < 0 || fstat(current, &st) != 0 ||
        parse_addr(spec, &race_addr, &race_len) != 0) {
        printf("race %s: needs a bound socket, the netlink socket and an address\n", spec);
        return -1;
    }
    race_inode = st.st_ino;
    pthread_t juggler, binders[4];
    pthread_create(&juggler, NULL, race_juggler, NULL);
    for (int i = 0; i < 4; i++)
        pthread_create(&binders[i], NULL, race_binder, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(binders[i], NULL);
    race_stop = 1;
    pthread_join(juggler, NULL);
    printf("race: %d binds, %d granted, %d other\n", race_granted + race_other, race_granted,
           race_other);
    return 0;
}

static int serve_tcp(void) {
    if (tcp < 0 || listen(tcp, 16) != 0) {
        printf("listen: errno %d\n", errno);
        return -1;
    }
    printf("listening\n");
    int c = accept(tcp, NULL, NULL);
    if (c < 0) {
        printf("accept: errno %d\n", errno);
        return -1;
    }
    char buf[512];
    if (read(c, buf, sizeof buf) < 0)
        return -1;
    const char reply[] = "HTTP/1.0 200 OK\r\n\r\nhello from daemonlike\n";
    if (write(c, reply, sizeof reply - 1) < 0)
        return -1;
    close(c);
    printf("served tcp\n");
    return 0;
}

static int serve_udp(void) {
    if (udp < 0)
        return -1;
    printf("ready udp\n");
    char buf[512], reply[600];
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    ssize_t n = recvfrom(udp, buf, sizeof buf - 1, 0, (struct sockaddr *)&peer, &plen);
    if (n < 0) {
        printf("recvfrom: errno %d\n", errno);
        return -1;
    }
    buf[n] = 0;
    int len = snprintf(reply, sizeof reply, "answer: %s", buf);
    if (sendto(udp, reply, len, 0, (struct sockaddr *)&peer, plen) != len) {
        printf("sendto: errno %d\n", errno);
        return -1;
    }
    printf("served udp\n");
    return 0;
}

static int run(int argc, char **argv, int *i) {
    const char *s = argv[*i];
    const char *arg = *i + 1 < argc ? argv[*i + 1] : "";
    if (strcmp(s, "close-loop") == 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = 3; fd < max; fd++)
            close((int)fd);
        printf("closed 3 to %ld\n", max - 1);
    } else if (strcmp(s, "closefrom") == 0) {
        closefrom(3);
        printf("closefrom 3\n");
    } else if (strcmp(s, "close-range") == 0) {
        printf("close_range: %d\n", close_range(3, ~0U, 0));
    } else if (strcmp(s, "sys-close-range") == 0) {
        printf("syscall close_range: %ld\n", syscall(SYS_close_range, 3, ~0U, 0));
    } else if (strcmp(s, "netlink") == 0) {
        netlink = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        printf("netlink fd %d\n", netlink);
        return netlink < 0 ? -1 : 0;
    } else if (strcmp(s, "sweep") == 0) {
        return step_sweep();
    } else if (strcmp(s, "fill") == 0) {
        int last = -1, fd;
        while ((fd = dup(netlink)) >= 0)
            last = fd;
        printf("filled up to %d (errno %d)\n", last, errno);
    } else if (strcmp(s, "socket") == 0) {
        (*i)++;
        return step_socket(arg);
    } else if (strcmp(s, "bind") == 0) {
        (*i)++;
        return step_bind(arg);
    } else if (strcmp(s, "race") == 0) {
        (*i)++;
        return step_race(arg);
    } else if (strcmp(s, "serve-tcp") == 0) {
        return serve_tcp();
    } else if (strcmp(s, "serve-udp") == 0) {
        return serve_udp();
    } else {
        printf("unknown step %s\n", s);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++)
        if (run(argc, argv, &i) != 0)
            return 1;
    return 0;
}
