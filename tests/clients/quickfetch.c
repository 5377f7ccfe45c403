/* quickfetch SOCKET: connects to a portbinder binding, prints its pid, waits for the answer
 * and exits the moment it has it, without closing anything. Run on the daemon's CPU at a
 * higher priority, it is woken by the daemon's sendmsg and gone before the daemon runs on:
 * only a daemon that read its name before answering can name it. Exit 0 after a grant. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <errno.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: quickfetch SOCKET\n");
        return 2;
    }
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
    if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("connect");
        return 1;
    }
    printf("%d\n", (int)getpid());
    fflush(stdout);
    char byte;
    char control[CMSG_SPACE(sizeof(int) * 253)];
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control, .msg_controllen = sizeof control};
    ssize_t n;
    do
        n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    _exit(n > 0 && byte != 0 ? 0 : 1);
}
