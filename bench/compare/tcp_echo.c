// tcp_echo: the loopback round-trip reference for the side-by-side comparison
// (bench/compare/compare.sh). One message of --bytes bytes goes to an echo server and
// back, one at a time, for --duration-s seconds (or --round-trips N): the time of each
// round trip is the floor under any request/response latency a broker on this machine can
// show, since a broker's single produce request costs at least one such round trip.
//
//   tcp_echo [--bytes B] [--duration-s S | --round-trips N] [--timeout-s T] [--label L]
//
// The server is a child process (fork) on 127.0.0.1, a port the kernel picks: a second
// process, so each round trip crosses processes and wakes another task as a client talking
// to a broker does. Both ends set TCP_NODELAY and use blocking read/write. The child exits
// when the client closes the connection, and in any case after the timeout (alarm).
//
// Output: text on stderr, one JSON line on stdout; exit status 0 on success.
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "latency_histogram.h"
#include "monotonic_clock.h"

enum { message_bytes_max = 1 << 20 };

static bool write_all(int fd, const char* data, size_t length) {
  for (size_t done = 0; done < length;) {
    ssize_t n = write(fd, data + done, length - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += (size_t)n;
  }
  return true;
}

static bool read_all(int fd, char* data, size_t length) {
  for (size_t done = 0; done < length;) {
    ssize_t n = read(fd, data + done, length - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += (size_t)n;
  }
  return true;
}

static void set_no_delay(int fd) {
  int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

// The child: accept one connection and echo whatever arrives until it closes.
static int serve(int listener, unsigned timeout_s) {
  alarm(timeout_s);  // default action of SIGALRM ends the process: a bound on a lost client
  int fd = accept(listener, NULL, NULL);
  close(listener);
  if (fd < 0) return 1;
  set_no_delay(fd);
  static char buffer[64 * 1024];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!write_all(fd, buffer, (size_t)n)) break;
  }
  close(fd);
  return 0;
}

int main(int argc, char** argv) {
  long message_bytes = 1024;
  double duration_s = 10;
  double timeout_s = 0;
  long round_trips_max = 0;
  const char* label = "";
  static const struct option long_options[] = {
      {"bytes", required_argument, NULL, 'b'},       {"duration-s", required_argument, NULL, 'd'},
      {"round-trips", required_argument, NULL, 'n'}, {"timeout-s", required_argument, NULL, 't'},
      {"label", required_argument, NULL, 'l'},       {NULL, 0, NULL, 0},
  };
  int choice;
  while ((choice = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
    char* end = NULL;
    switch (choice) {
      case 'b': message_bytes = strtol(optarg, &end, 10); break;
      case 'd': duration_s = strtod(optarg, &end); break;
      case 'n': round_trips_max = strtol(optarg, &end, 10); break;
      case 't': timeout_s = strtod(optarg, &end); break;
      case 'l': label = optarg; break;
      default:
        fprintf(stderr,
                "usage: tcp_echo [--bytes B] [--duration-s S | --round-trips N] "
                "[--timeout-s T] [--label L]\n");
        return 2;
    }
    if (choice != 'l' && (end == optarg || *end != '\0')) {
      fprintf(stderr, "tcp_echo: bad number '%s'\n", optarg);
      return 2;
    }
  }
  if (message_bytes < 1 || message_bytes > message_bytes_max || !(duration_s > 0) ||
      duration_s > 86400 || round_trips_max < 0 || timeout_s < 0 || timeout_s > 86400 ||
      optind != argc) {
    fprintf(stderr, "tcp_echo: bad arguments\n");
    return 2;
  }
  if (timeout_s == 0) timeout_s = duration_s + 30;

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t address_bytes = sizeof address;
  if (listener < 0 || bind(listener, (struct sockaddr*)&address, sizeof address) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, (struct sockaddr*)&address, &address_bytes) != 0) {
    fprintf(stderr, "tcp_echo: listen on 127.0.0.1: %s\n", strerror(errno));
    return 1;
  }
  pid_t server = fork();
  if (server < 0) {
    fprintf(stderr, "tcp_echo: fork: %s\n", strerror(errno));
    return 1;
  }
  if (server == 0) _exit(serve(listener, (unsigned)timeout_s + 5));
  close(listener);

  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&address, sizeof address) != 0) {
    fprintf(stderr, "tcp_echo: connect: %s\n", strerror(errno));
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    return 1;
  }
  set_no_delay(fd);
  char* sent = malloc((size_t)message_bytes);
  char* received = malloc((size_t)message_bytes);
  static latency_histogram histogram;
  latency_histogram_reset(&histogram);
  bool ok = sent != NULL && received != NULL;
  if (ok) memset(sent, 'x', (size_t)message_bytes);

  // A few untimed round trips first, so the connection's first-use costs stay out.
  for (int i = 0; ok && i < 100; i++) {
    ok =
        write_all(fd, sent, (size_t)message_bytes) && read_all(fd, received, (size_t)message_bytes);
  }
  uint64_t start_ns = monotonic_ns();
  uint64_t end_limit_ns = start_ns + (uint64_t)(duration_s * 1e9);
  uint64_t deadline_ns = start_ns + (uint64_t)(timeout_s * 1e9);
  if (round_trips_max > 0) end_limit_ns = deadline_ns;
  uint64_t round_trips = 0;
  uint64_t now = start_ns;
  while (ok && now < end_limit_ns &&
         (round_trips_max == 0 || round_trips < (uint64_t)round_trips_max)) {
    uint64_t before = monotonic_ns();
    ok =
        write_all(fd, sent, (size_t)message_bytes) && read_all(fd, received, (size_t)message_bytes);
    now = monotonic_ns();
    if (ok) {
      latency_histogram_record(&histogram, now - before);
      round_trips++;
    }
  }
  close(fd);
  int child_status = 0;
  waitpid(server, &child_status, 0);
  double seconds = (double)(now - start_ns) / 1e9;
  double per_second = seconds > 0 ? (double)round_trips / seconds : 0;
  if (!ok)
    fprintf(stderr, "tcp_echo: connection failed after %" PRIu64 " round trips\n", round_trips);
  fprintf(stderr, "tcp_echo: %" PRIu64 " round trips of %ld bytes in %.2f s: %.0f per second\n",
          round_trips, message_bytes, seconds, per_second);
  latency_histogram_print_text(&histogram, "round trip", stderr);
  printf("{\"tool\": \"tcp_echo\", \"label\": \"%s\", \"message_bytes\": %ld, \"records\": %" PRIu64
         ", \"seconds\": %.6f, \"records_per_second\": %.1f, \"mb_per_second\": %.3f, ",
         label, message_bytes, round_trips, seconds, per_second,
         seconds > 0 ? (double)round_trips * (double)message_bytes / seconds / 1e6 : 0.0);
  latency_histogram_print_json(&histogram, stdout);
  printf("}\n");
  free(sent);
  free(received);
  return ok && round_trips > 0 ? 0 : 1;
}
