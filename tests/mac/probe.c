/* A stand-in for a compromised process, run by tests/mac in the MAC domain
 * (SELinux) or profile (AppArmor) of Postfix's smtp or of the refresh
 * helper, to show that the policy refuses what it promises to refuse.
 * Static, so it needs no library the domain might not be allowed to map.
 *
 *   probe write FILE | unlink FILE | read FILE | rename FROM TO
 *   probe create FILE (new, mode 0600) | list DIR (open + read entries)
 *   probe connect PORT (127.0.0.1) | exec PATH [ARG...]
 *
 * Prints one line; exits 0 when the operation worked, 13 when it was
 * refused with EACCES or EPERM, 1 on any other error. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int done(const char *op, int r) {
  if (r >= 0) {
    printf("probe %s: allowed\n", op);
    return 0;
  }
  int e = errno;
  printf("probe %s: %s\n", op, strerror(e));
  return (e == EACCES || e == EPERM) ? 13 : 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc < 3) {
    fprintf(stderr, "usage: probe write|unlink|read|create|list|rename|connect|exec ARG...\n");
    return 2;
  }
  const char *op = argv[1], *arg = argv[2];
  if (!strcmp(op, "write")) return done(op, open(arg, O_WRONLY | O_APPEND));
  if (!strcmp(op, "unlink")) return done(op, unlink(arg));
  if (!strcmp(op, "read")) {
    int fd = open(arg, O_RDONLY);
    char b[16];
    return done(op, fd < 0 ? fd : (int)read(fd, b, sizeof b));
  }
  if (!strcmp(op, "create")) return done(op, open(arg, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!strcmp(op, "list")) {
    DIR *d = opendir(arg);
    if (!d) return done(op, -1);
    errno = 0;
    while (readdir(d)) {
    }
    int r = errno ? -1 : 0;
    closedir(d);
    return done(op, r);
  }
  if (!strcmp(op, "rename") && argc > 3) return done(op, rename(arg, argv[3]));
  if (!strcmp(op, "connect")) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(arg))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) return done("socket", s);
    return done(op, connect(s, (struct sockaddr *)&a, sizeof a));
  }
  if (!strcmp(op, "exec")) {
    execv(arg, argv + 2);
    return done(op, -1);
  }
  fprintf(stderr, "probe: unknown operation %s\n", op);
  return 2;
}
