// nats_load: JetStream publish load on libnats, for the side-by-side comparison
// (bench/compare/compare.sh): the NATS counterpart of `rdkafka_load produce`.
//
//   nats_load --url nats://HOST:PORT [--stream S] [--subject X] [--records N | --duration-s S]
//             [--record-bytes B] [--max-pending P] [--timeout-s T] [--label L]
//
// Creates a file-storage stream (one replica) on the subject, or reuses it if it exists,
// then publishes asynchronously (js_PublishAsync) with at most --max-pending
// unacknowledged messages: a publish that would exceed that waits in the library (its
// stall wait) until acknowledgments come back. The first 8 bytes of each message carry
// the monotonic time of its publish call, so the acknowledgment handler, which the
// library hands the original message, computes the ack latency without a lookup table.
//
// Output: text on stderr, one JSON line on stdout. Exit status 0 when every message was
// acknowledged without error, 1 otherwise, 2 on bad arguments. MB means 10^6 bytes.
#include <getopt.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "latency_histogram.h"
#include "load_client_common.h"
#include "monotonic_clock.h"

enum { record_bytes_min = 8, record_bytes_max = 1 << 20 };

typedef struct load_options {
  const char* url;
  const char* stream;
  const char* subject;
  const char* label;
  long records;  // 0 = run for duration_s
  double duration_s;
  double timeout_s;
  long record_bytes;
  long max_pending;
} load_options;

// Updated by the acknowledgment handler on the library's delivery thread and read by the
// main thread once publishing is complete.
typedef struct ack_state {
  pthread_mutex_t lock;
  latency_histogram histogram;
  uint64_t acked;
  uint64_t acked_bytes;
  uint64_t failed;
  uint64_t last_ack_ns;
  char first_error[256];
} ack_state;

static ack_state acks = {.lock = PTHREAD_MUTEX_INITIALIZER};
static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int signal_number) {
  (void)signal_number;
  stop_requested = 1;
}

static void on_ack(jsCtx* js, natsMsg* message, jsPubAck* ack, jsPubAckErr* failure,
                   void* closure) {
  (void)js;
  (void)closure;
  uint64_t now = monotonic_ns();
  uint64_t sent_ns = 0;
  int length = natsMsg_GetDataLength(message);
  if (length >= (int)sizeof sent_ns) memcpy(&sent_ns, natsMsg_GetData(message), sizeof sent_ns);
  pthread_mutex_lock(&acks.lock);
  acks.last_ack_ns = now;
  if (ack != NULL && failure == NULL) {
    latency_histogram_record(&acks.histogram, now > sent_ns ? now - sent_ns : 0);
    acks.acked++;
    acks.acked_bytes += (uint64_t)length;
  } else {
    if (acks.failed == 0) {
      snprintf(acks.first_error, sizeof acks.first_error, "%s",
               failure && failure->ErrText ? failure->ErrText
               : failure                   ? natsStatus_GetText(failure->Err)
                                           : "no acknowledgment");
    }
    acks.failed++;
  }
  pthread_mutex_unlock(&acks.lock);
  natsMsg_Destroy(message);  // the handler owns the message (nats.h, jsPubAckHandler)
}

static void usage(FILE* out) {
  fprintf(out,
          "usage: nats_load --url nats://HOST:PORT [options]\n"
          "  --stream S        stream name (default BENCH)\n"
          "  --subject X       subject (default bench.load)\n"
          "  --records N       messages to publish (0 = use --duration-s)\n"
          "  --duration-s S    publish for S seconds (default 10)\n"
          "  --record-bytes B  message size, at least 8 (default 1024)\n"
          "  --max-pending P   unacknowledged messages at most (default 1024)\n"
          "  --timeout-s T     bound on the whole run (default duration + 60)\n"
          "  --label L         name echoed in the JSON line\n");
}

static int64_t remaining_ms(uint64_t deadline_ns) {
  uint64_t now = monotonic_ns();
  return now >= deadline_ns ? 0 : (int64_t)((deadline_ns - now) / 1000000u);
}

static natsStatus create_stream(jsCtx* js, const load_options* options) {
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  const char* subjects[1] = {options->subject};
  config.Name = options->stream;
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  config.Storage = js_FileStorage;
  config.Replicas = 1;
  jsStreamInfo* info = NULL;
  jsErrCode code = 0;
  natsStatus status = js_AddStream(&info, js, &config, NULL, &code);
  if (status == NATS_OK) {
    jsStreamInfo_Destroy(info);
  } else if (code == JSStreamNameExistErr) {
    fprintf(stderr, "nats_load: stream %s exists, reusing it\n", options->stream);
    status = NATS_OK;
  } else {
    fprintf(stderr, "nats_load: creating stream %s: %s (jetstream error %d)\n", options->stream,
            natsStatus_GetText(status), (int)code);
  }
  return status;
}

static int run(const load_options* options) {
  uint64_t start_ns = monotonic_ns();
  uint64_t deadline_ns = start_ns + (uint64_t)(options->timeout_s * 1e9);
  latency_histogram_reset(&acks.histogram);

  natsConnection* connection = NULL;
  jsCtx* js = NULL;
  natsStatus status = natsConnection_ConnectTo(&connection, options->url);
  if (status != NATS_OK) {
    fprintf(stderr, "nats_load: connect %s: %s\n", options->url, natsStatus_GetText(status));
    return 1;
  }
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.PublishAsync.MaxPending = options->max_pending;
  js_options.PublishAsync.AckHandler = on_ack;
  js_options.PublishAsync.StallWait = 1000;
  status = natsConnection_JetStream(&js, connection, &js_options);
  if (status == NATS_OK) status = create_stream(js, options);
  if (status != NATS_OK) {
    fprintf(stderr, "nats_load: jetstream: %s\n", natsStatus_GetText(status));
    jsCtx_Destroy(js);
    natsConnection_Destroy(connection);
    return 1;
  }

  char* payload = malloc((size_t)options->record_bytes);
  if (payload == NULL) return 1;
  uint64_t seed = 0x9e3779b97f4a7c15u;
  for (long i = 0; i < options->record_bytes; i++) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    payload[i] = (char)(seed >> 56);
  }

  jsPubOptions publish_options;
  jsPubOptions_Init(&publish_options);
  publish_options.MaxWait = (int64_t)(options->timeout_s * 1000);
  uint64_t load_start_ns = monotonic_ns();
  uint64_t load_end_ns =
      options->records > 0 ? deadline_ns : load_start_ns + (uint64_t)(options->duration_s * 1e9);
  if (load_end_ns > deadline_ns) load_end_ns = deadline_ns;
  uint64_t sent = 0;
  uint64_t stalls = 0;
  bool publish_failed = false;
  while (!stop_requested && (options->records == 0 || sent < (uint64_t)options->records)) {
    if (monotonic_ns() >= load_end_ns) break;
    uint64_t now = monotonic_ns();
    memcpy(payload, &now, sizeof now);  // js_PublishAsync copies the data into its message
    status = js_PublishAsync(js, options->subject, payload, (int)options->record_bytes,
                             &publish_options);
    if (status == NATS_TIMEOUT) {  // max pending reached for longer than the stall wait
      stalls++;
      continue;
    }
    if (status != NATS_OK) {
      fprintf(stderr, "nats_load: publish: %s\n", natsStatus_GetText(status));
      publish_failed = true;
      break;
    }
    sent++;
  }
  uint64_t sending_end_ns = monotonic_ns();
  jsPubOptions complete_options;
  jsPubOptions_Init(&complete_options);
  int64_t wait_ms = remaining_ms(deadline_ns);
  complete_options.MaxWait = wait_ms > 0 ? wait_ms : 1;
  status = js_PublishAsyncComplete(js, &complete_options);
  if (status != NATS_OK) {
    fprintf(stderr, "nats_load: waiting for acknowledgments: %s\n", natsStatus_GetText(status));
  }

  pthread_mutex_lock(&acks.lock);
  uint64_t acked = acks.acked, acked_bytes = acks.acked_bytes, failed = acks.failed;
  uint64_t end_ns = acks.last_ack_ns > load_start_ns ? acks.last_ack_ns : sending_end_ns;
  latency_histogram* histogram = &acks.histogram;
  pthread_mutex_unlock(&acks.lock);
  double seconds = (double)(end_ns - load_start_ns) / 1e9;
  double records_per_second = seconds > 0 ? (double)acked / seconds : 0;
  double mb_per_second = seconds > 0 ? (double)acked_bytes / seconds / 1e6 : 0;
  fprintf(stderr,
          "nats_load %s: %" PRIu64
          " messages of %ld bytes acknowledged in %.2f s: %.0f msgs/s,"
          " %.1f MB/s (max pending %ld, %" PRIu64 " stalls)\n",
          options->stream, acked, options->record_bytes, seconds, records_per_second, mb_per_second,
          options->max_pending, stalls);
  // The handler can no longer run for messages already counted; late acks after the
  // deadline would only touch counters we have copied.
  pthread_mutex_lock(&acks.lock);
  latency_histogram_print_text(histogram, "ack", stderr);
  if (failed)
    fprintf(stderr, "nats_load: %" PRIu64 " failed, first: %s\n", failed, acks.first_error);
  printf(
      "{\"tool\": \"nats_load\", \"mode\": \"publish\", \"label\": \"%s\", \"stream\": \"%s\", "
      "\"max_pending\": %ld, \"record_bytes\": %ld, \"sent\": %" PRIu64 ", \"records\": %" PRIu64
      ", \"bytes\": %" PRIu64 ", \"failed\": %" PRIu64 ", \"stalls\": %" PRIu64
      ", \"seconds\": %.6f, \"records_per_second\": %.1f, \"mb_per_second\": %.3f, ",
      options->label, options->stream, options->max_pending, options->record_bytes, sent, acked,
      acked_bytes, failed, stalls, seconds, records_per_second, mb_per_second);
  printf("\"client_cpu_seconds\": %.2f, ", client_cpu_seconds());
  latency_histogram_print_json(histogram, stdout);
  printf("}\n");
  pthread_mutex_unlock(&acks.lock);
  fflush(stdout);

  free(payload);
  jsCtx_Destroy(js);
  natsConnection_Destroy(connection);
  nats_CloseAndWait(5000);
  return (!publish_failed && acked > 0 && acked == sent && failed == 0) ? 0 : 1;
}

int main(int argc, char** argv) {
  load_options options = {
      .stream = "BENCH",
      .subject = "bench.load",
      .label = "",
      .duration_s = 10,
      .record_bytes = 1024,
      .max_pending = 1024,
  };
  enum {
    opt_url = 1,
    opt_stream,
    opt_subject,
    opt_records,
    opt_duration,
    opt_record_bytes,
    opt_max_pending,
    opt_timeout,
    opt_label,
    opt_help,
  };
  static const struct option long_options[] = {
      {"url", required_argument, NULL, opt_url},
      {"stream", required_argument, NULL, opt_stream},
      {"subject", required_argument, NULL, opt_subject},
      {"records", required_argument, NULL, opt_records},
      {"duration-s", required_argument, NULL, opt_duration},
      {"record-bytes", required_argument, NULL, opt_record_bytes},
      {"max-pending", required_argument, NULL, opt_max_pending},
      {"timeout-s", required_argument, NULL, opt_timeout},
      {"label", required_argument, NULL, opt_label},
      {"help", no_argument, NULL, opt_help},
      {NULL, 0, NULL, 0},
  };
  int choice;
  bool valid = true;
  while (valid && (choice = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
    switch (choice) {
      case opt_url: options.url = optarg; break;
      case opt_stream: options.stream = optarg; break;
      case opt_subject: options.subject = optarg; break;
      case opt_records: valid = parse_long(optarg, 0, 1000000000000L, &options.records); break;
      case opt_duration: valid = parse_double(optarg, 0.001, 86400, &options.duration_s); break;
      case opt_record_bytes:
        valid = parse_long(optarg, record_bytes_min, record_bytes_max, &options.record_bytes);
        break;
      case opt_max_pending: valid = parse_long(optarg, 1, 1 << 20, &options.max_pending); break;
      case opt_timeout: valid = parse_double(optarg, 0.001, 86400, &options.timeout_s); break;
      case opt_label: options.label = optarg; break;
      case opt_help: usage(stdout); return 0;
      default: valid = false; break;
    }
  }
  if (!valid || optind != argc || options.url == NULL) {
    usage(stderr);
    return 2;
  }
  if (options.timeout_s == 0) options.timeout_s = options.duration_s + 60;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  return run(&options);
}
