// spawnbench: whole-process wall time of several commands, interleaved, for bench/run item 3.
//
//   spawnbench ROUNDS MAX_SECONDS NAME CMD ARGS... [';;' NAME CMD ARGS...]...
//
// Each round runs every command once (posix_spawn + waitpid, stdout to /dev/null), starting
// at a different command each round so none always runs first. One warm-up round is not
// counted. Stops after ROUNDS rounds or MAX_SECONDS, whichever comes first. Prints one line per
// command: name=.. runs=.. failures=.. p10_us=.. median_us=.. p90_us=.. mean_us=..
// A command that exits non-zero counts as a failure (its time is not counted).
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct cmd {
    const char *name;
    char **argv;
    double *t;
    long n, failures;
};

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static int cmp(const void *x, const void *y) { double a = *(double *)x, b = *(double *)y; return a < b ? -1 : a > b; }

static int run(struct cmd *c, posix_spawn_file_actions_t *fa, double *elapsed) {
    pid_t pid;
    int st;
    double t0 = now();
    if (posix_spawnp(&pid, c->argv[0], fa, NULL, c->argv, environ) != 0) return -1;
    if (waitpid(pid, &st, 0) < 0) return -1;
    *elapsed = now() - t0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: spawnbench ROUNDS MAX_SECONDS NAME CMD... [;; NAME CMD...]...\n"); return 2; }
    long rounds = atol(argv[1]);
    double max_s = atof(argv[2]);
    struct cmd cmds[32];
    int n = 0;
    for (int i = 3; i < argc && n < 32;) {
        struct cmd *c = &cmds[n++];
        memset(c, 0, sizeof *c);
        c->name = argv[i++];
        c->argv = &argv[i];
        while (i < argc && strcmp(argv[i], ";;")) i++;
        if (i < argc) argv[i++] = NULL;  // terminate this argv at the separator
        c->t = calloc(rounds, sizeof(double));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    double e, start = now();
    for (int k = 0; k < n; k++)
        if (run(&cmds[k], &fa, &e) < 0) fprintf(stderr, "spawnbench: warm-up of %s failed\n", cmds[k].name);
    for (long r = 0; r < rounds && now() - start < max_s; r++) {
        for (int j = 0; j < n; j++) {
            struct cmd *c = &cmds[(r + j) % n];
            if (run(c, &fa, &e) < 0) c->failures++;
            else c->t[c->n++] = e;
        }
    }
    for (int k = 0; k < n; k++) {
        struct cmd *c = &cmds[k];
        double sum = 0;
        for (long i = 0; i < c->n; i++) sum += c->t[i];
        qsort(c->t, c->n, sizeof(double), cmp);
        if (!c->n) { printf("name=%s runs=0 failures=%ld\n", c->name, c->failures); continue; }
        printf("name=%s runs=%ld failures=%ld p10_us=%.1f median_us=%.1f p90_us=%.1f mean_us=%.1f\n", c->name, c->n,
               c->failures, c->t[c->n / 10] * 1e6, c->t[c->n / 2] * 1e6, c->t[c->n * 9 / 10] * 1e6, sum / c->n * 1e6);
    }
    return 0;
}
