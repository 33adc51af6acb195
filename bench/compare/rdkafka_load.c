// rdkafka_load: a Kafka load client on librdkafka, for the side-by-side comparison
// (bench/compare/compare.sh). It measures what a real, widely used client sees from any
// Kafka-compatible broker, so Sluice's figures can be set beside other systems' without
// our own client in the loop.
//
//   rdkafka_load produce --bootstrap HOST:PORT --topic T [options]
//     Sends records of --record-bytes bytes (no key) for --records N or --duration-s S,
//     spread round-robin over --partitions partitions (0 = all the topic has), with the
//     given acks, linger.ms, batch.size and compression. Latency of a record = time its
//     delivery report is served - time its rd_kafka_produce() call returned, so in a
//     throughput run it includes the wait in the client's queue, which --queue-kbytes
//     bounds (a full queue makes the loop wait, as an application would). --sync sends one
//     record at a time and waits for its delivery report: the single-request latency.
//     --rate R paces the sends at R records a second (open loop: a send late against its
//     schedule goes at once), for latency below saturation, where the queue stays short.
//     --create-partitions N first asks the broker to create the topic (CreateTopics); an
//     "already exists" or unsupported answer is reported and ignored, since a broker with
//     auto-creation creates it on the first Metadata request anyway.
//
//   rdkafka_load consume --bootstrap HOST:PORT --topic T --records N [options]
//     Reads N records from the beginning of every partition of the topic, with no consumer
//     group: the partitions are started one by one on a shared queue (librdkafka's
//     partition-assigning "simple consumer" API; assign() proper needs a group.id, which
//     would bring FindCoordinator into a measurement of fetching).
//
// Output: human-readable text on stderr, and one JSON object on a single line on stdout at
// the end. Every wait is bounded by --timeout-s (default: the duration plus 60 s). Exit
// status 0 when every record was delivered (or read) without error, 1 otherwise, 2 on bad
// arguments. MB means 10^6 bytes; bytes count record values only.
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "latency_histogram.h"
#include "load_client_common.h"
#include "monotonic_clock.h"

enum { consume_batch_max = 1024, partitions_max = 4096, record_bytes_max = 16 << 20 };

typedef struct load_options {
  const char* mode;
  const char* bootstrap;
  const char* topic;
  const char* label;
  const char* acks;
  const char* compression;
  long record_bytes;
  long records;  // 0 = run for duration_s
  double duration_s;
  double timeout_s;
  long linger_ms;
  long batch_bytes;
  long partitions;  // 0 = all partitions of the topic
  long queue_kbytes;
  long create_partitions;  // 0 = do not send CreateTopics
  double rate;             // records per second; 0 = as fast as the queue allows
  bool sync;
} load_options;

// State the delivery report callback updates; it runs on the thread that calls
// rd_kafka_poll/flush, which is the main thread, so no lock.
typedef struct produce_state {
  latency_histogram histogram;
  uint64_t delivered;
  uint64_t delivered_bytes;
  uint64_t failed;
  uint64_t last_report_ns;
  char first_error[256];
} produce_state;

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int signal_number) {
  (void)signal_number;
  stop_requested = 1;
}

static void usage(FILE* out) {
  fprintf(out,
          "usage: rdkafka_load produce|consume --bootstrap HOST:PORT --topic TOPIC [options]\n"
          "  --records N            records to send or read (produce: 0 = use --duration-s)\n"
          "  --duration-s S         produce for S seconds (default 10)\n"
          "  --record-bytes B       value size (default 1024)\n"
          "  --acks 0|1|all         (default 1)\n"
          "  --linger-ms MS         linger.ms (default 5)\n"
          "  --batch-bytes B        batch.size (default 1000000)\n"
          "  --compression C        none|gzip|snappy|lz4|zstd (default none)\n"
          "  --partitions P         spread over partitions 0..P-1 (default 0 = all)\n"
          "  --queue-kbytes K       queue.buffering.max.kbytes (default 16384)\n"
          "  --create-partitions N  send CreateTopics with N partitions first\n"
          "  --sync                 one record in flight at a time (latency run)\n"
          "  --rate R               send at most R records per second (paced)\n"
          "  --timeout-s S          bound on the whole run (default duration + 60)\n"
          "  --label L              name echoed in the JSON line\n");
}

static bool set_config(rd_kafka_conf_t* conf, const char* name, const char* value) {
  char error[512];
  if (rd_kafka_conf_set(conf, name, value, error, sizeof error) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "rdkafka_load: %s=%s: %s\n", name, value, error);
    return false;
  }
  return true;
}

static bool set_config_long(rd_kafka_conf_t* conf, const char* name, long value) {
  char text[32];
  snprintf(text, sizeof text, "%ld", value);
  return set_config(conf, name, text);
}

static void on_delivery(rd_kafka_t* client, const rd_kafka_message_t* message, void* opaque) {
  (void)client;
  produce_state* state = opaque;
  uint64_t now = monotonic_ns();
  state->last_report_ns = now;
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (state->failed == 0) {
      snprintf(state->first_error, sizeof state->first_error, "%s", rd_kafka_err2str(message->err));
    }
    state->failed++;
    return;
  }
  uint64_t sent_ns = (uint64_t)(uintptr_t)message->_private;
  latency_histogram_record(&state->histogram, now > sent_ns ? now - sent_ns : 0);
  state->delivered++;
  state->delivered_bytes += message->len;
}

static int remaining_ms(uint64_t deadline_ns) {
  uint64_t now = monotonic_ns();
  if (now >= deadline_ns) return 0;
  uint64_t left = (deadline_ns - now) / 1000000u;
  return left > 3600000u ? 3600000 : (int)left;
}

// Sends CreateTopics and waits for its answer. Never fatal: see the file comment.
static void create_topic(rd_kafka_t* client, const load_options* options, uint64_t deadline_ns) {
  char error[512];
  rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(
      options->topic, (int)options->create_partitions, 1, error, sizeof error);
  if (topic == NULL) {
    fprintf(stderr, "rdkafka_load: CreateTopics not sent: %s\n", error);
    return;
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(client);
  rd_kafka_AdminOptions_t* admin =
      rd_kafka_AdminOptions_new(client, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  int wait_ms = remaining_ms(deadline_ns);
  if (wait_ms > 30000) wait_ms = 30000;
  rd_kafka_AdminOptions_set_request_timeout(admin, wait_ms, error, sizeof error);
  rd_kafka_CreateTopics(client, &topic, 1, admin, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, wait_ms + 1000);
  if (event == NULL) {
    fprintf(stderr, "rdkafka_load: CreateTopics: no answer in %d ms\n", wait_ms);
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fprintf(stderr, "rdkafka_load: CreateTopics: %s (continuing)\n",
            rd_kafka_event_error_string(event));
  } else {
    const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event);
    size_t count = 0;
    const rd_kafka_topic_result_t** topics =
        result ? rd_kafka_CreateTopics_result_topics(result, &count) : NULL;
    for (size_t i = 0; i < count; i++) {
      rd_kafka_resp_err_t code = rd_kafka_topic_result_error(topics[i]);
      if (code == RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "rdkafka_load: created topic %s with %ld partitions\n", options->topic,
                options->create_partitions);
      } else {
        fprintf(stderr, "rdkafka_load: CreateTopics %s: %s (continuing)\n", options->topic,
                rd_kafka_err2str(code));
      }
    }
  }
  if (event) rd_kafka_event_destroy(event);
  rd_kafka_AdminOptions_destroy(admin);
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy(topic);
}

// Asks for the topic's metadata until it has partitions, all with a leader (a broker that
// auto-creates the topic may answer the first request with LEADER_NOT_AVAILABLE). Returns
// the partition count, or 0 when the deadline passed first.
static int topic_partition_count(rd_kafka_t* client, rd_kafka_topic_t* topic,
                                 uint64_t deadline_ns) {
  for (int attempt = 0; attempt < 1000 && remaining_ms(deadline_ns) > 0; attempt++) {
    const struct rd_kafka_metadata* metadata = NULL;
    int wait_ms = remaining_ms(deadline_ns);
    if (wait_ms > 5000) wait_ms = 5000;
    rd_kafka_resp_err_t code = rd_kafka_metadata(client, 0, topic, &metadata, wait_ms);
    int count = 0;
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR && metadata->topic_cnt == 1 &&
        metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const struct rd_kafka_metadata_topic* found = &metadata->topics[0];
      count = found->partition_cnt;
      for (int p = 0; p < found->partition_cnt; p++) {
        if (found->partitions[p].leader < 0) count = 0;
      }
    } else if (attempt == 0 || attempt % 20 == 19) {
      fprintf(stderr, "rdkafka_load: metadata for %s: %s (retrying)\n", rd_kafka_topic_name(topic),
              code != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(code)
              : metadata->topic_cnt == 1         ? rd_kafka_err2str(metadata->topics[0].err)
                                                 : "topic missing");
    }
    if (metadata) rd_kafka_metadata_destroy(metadata);
    if (count > 0) return count > partitions_max ? partitions_max : count;
    usleep(100000);
  }
  return 0;
}

static void print_json_head(const load_options* options) {
  printf("{\"tool\": \"rdkafka_load\", \"mode\": \"%s\", \"label\": \"%s\", \"topic\": \"%s\", ",
         options->mode, options->label, options->topic);
}

static int run_produce(const load_options* options) {
  uint64_t start_ns = monotonic_ns();
  uint64_t deadline_ns = start_ns + (uint64_t)(options->timeout_s * 1e9);
  static produce_state state;
  latency_histogram_reset(&state.histogram);

  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  bool configured = set_config(conf, "bootstrap.servers", options->bootstrap) &&
                    set_config(conf, "acks", options->acks) &&
                    set_config_long(conf, "linger.ms", options->sync ? 0 : options->linger_ms) &&
                    set_config_long(conf, "batch.size", options->batch_bytes) &&
                    set_config(conf, "compression.codec", options->compression) &&
                    set_config_long(conf, "queue.buffering.max.kbytes", options->queue_kbytes) &&
                    set_config(conf, "queue.buffering.max.messages", "10000000") &&
                    set_config(conf, "enable.idempotence", "false") &&
                    set_config(conf, "allow.auto.create.topics", "true") &&
                    set_config_long(conf, "message.timeout.ms", (long)(options->timeout_s * 1000));
  if (!configured) {
    rd_kafka_conf_destroy(conf);
    return 2;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, &state);
  rd_kafka_t* client = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (client == NULL) {
    fprintf(stderr, "rdkafka_load: producer: %s\n", error);
    return 1;
  }
  if (options->create_partitions > 0) create_topic(client, options, deadline_ns);
  rd_kafka_topic_t* topic = rd_kafka_topic_new(client, options->topic, NULL);
  int partitions = topic_partition_count(client, topic, deadline_ns);
  if (partitions == 0) {
    fprintf(stderr, "rdkafka_load: topic %s has no usable partitions\n", options->topic);
    rd_kafka_topic_destroy(topic);
    rd_kafka_destroy(client);
    return 1;
  }
  if (options->partitions > 0 && options->partitions < partitions) {
    partitions = (int)options->partitions;
  } else if (options->partitions > partitions) {
    fprintf(stderr, "rdkafka_load: topic has %d partitions, not %ld: using %d\n", partitions,
            options->partitions, partitions);
  }

  // Incompressible-looking bytes, so that compression, when asked for, does honest work.
  char* payload = malloc((size_t)options->record_bytes);
  if (payload == NULL) {
    rd_kafka_topic_destroy(topic);
    rd_kafka_destroy(client);
    return 1;
  }
  uint64_t seed = 0x9e3779b97f4a7c15u;
  for (long i = 0; i < options->record_bytes; i++) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    payload[i] = (char)(seed >> 56);
  }

  uint64_t load_start_ns = monotonic_ns();
  uint64_t load_end_ns =
      options->records > 0 ? deadline_ns : load_start_ns + (uint64_t)(options->duration_s * 1e9);
  if (load_end_ns > deadline_ns) load_end_ns = deadline_ns;
  uint64_t sent = 0;
  uint64_t queue_full_waits = 0;
  bool send_failed = false;
  while (!stop_requested && (options->records == 0 || sent < (uint64_t)options->records)) {
    uint64_t now = monotonic_ns();
    if (now >= load_end_ns) break;
    if (options->rate > 0) {
      uint64_t due_ns = load_start_ns + (uint64_t)((double)sent * 1e9 / options->rate);
      if (due_ns > now) {
        uint64_t wait_ns = due_ns - now;
        struct timespec pause = {.tv_sec = (time_t)(wait_ns / 1000000000u),
                                 .tv_nsec = (long)(wait_ns % 1000000000u)};
        nanosleep(&pause, NULL);
        rd_kafka_poll(client, 0);
        continue;
      }
    }
    int partition = (int)(sent % (uint64_t)partitions);
    // The payload outlives the producer, so no copy (flags 0): the client's CPU is shared
    // with the broker's on a small machine.
    if (rd_kafka_produce(topic, partition, 0, payload, (size_t)options->record_bytes, NULL, 0,
                         (void*)(uintptr_t)monotonic_ns()) != 0) {
      rd_kafka_resp_err_t code = rd_kafka_last_error();
      if (code == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        queue_full_waits++;
        rd_kafka_poll(client, 1);
        continue;
      }
      fprintf(stderr, "rdkafka_load: produce: %s\n", rd_kafka_err2str(code));
      send_failed = true;
      break;
    }
    sent++;
    if (options->sync) {
      for (int turn = 0; state.delivered + state.failed < sent && turn < 100000; turn++) {
        if (remaining_ms(deadline_ns) == 0 || stop_requested) break;
        rd_kafka_poll(client, 100);
      }
      if (state.delivered + state.failed < sent) break;
    } else if ((sent & 255) == 0 || options->rate > 0) {
      rd_kafka_poll(client, 0);
    }
  }
  uint64_t sending_end_ns = monotonic_ns();
  rd_kafka_resp_err_t flushed = rd_kafka_flush(client, remaining_ms(deadline_ns));
  if (flushed != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fprintf(stderr, "rdkafka_load: flush: %s (%d records not delivered)\n",
            rd_kafka_err2str(flushed), rd_kafka_outq_len(client));
  }
  uint64_t end_ns = state.last_report_ns > load_start_ns ? state.last_report_ns : sending_end_ns;
  double seconds = (double)(end_ns - load_start_ns) / 1e9;
  double records_per_second = seconds > 0 ? (double)state.delivered / seconds : 0;
  double mb_per_second = seconds > 0 ? (double)state.delivered_bytes / seconds / 1e6 : 0;

  fprintf(stderr,
          "rdkafka_load produce %s: %" PRIu64
          " records of %ld bytes over %d partitions in %.2f s:"
          " %.0f records/s, %.1f MB/s (acks=%s linger.ms=%ld batch.size=%ld compression=%s%s)\n",
          options->topic, state.delivered, options->record_bytes, partitions, seconds,
          records_per_second, mb_per_second, options->acks, options->sync ? 0 : options->linger_ms,
          options->batch_bytes, options->compression, options->sync ? " sync" : "");
  latency_histogram_print_text(&state.histogram, "delivery", stderr);
  if (state.failed) {
    fprintf(stderr, "rdkafka_load: %" PRIu64 " records failed, first: %s\n", state.failed,
            state.first_error);
  }

  print_json_head(options);
  printf(
      "\"rate\": %.1f, \"acks\": \"%s\", \"linger_ms\": %ld, \"batch_bytes\": %ld, "
      "\"compression\": \"%s\", "
      "\"sync\": %s, \"partitions\": %d, \"record_bytes\": %ld, \"sent\": %" PRIu64
      ", \"records\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"failed\": %" PRIu64
      ", \"queue_full_waits\": %" PRIu64
      ", \"seconds\": %.6f, \"records_per_second\": %.1f, \"mb_per_second\": %.3f, ",
      options->rate, options->acks, options->sync ? 0 : options->linger_ms, options->batch_bytes,
      options->compression, options->sync ? "true" : "false", partitions, options->record_bytes,
      sent, state.delivered, state.delivered_bytes, state.failed, queue_full_waits, seconds,
      records_per_second, mb_per_second);
  printf("\"client_cpu_seconds\": %.2f, ", client_cpu_seconds());
  latency_histogram_print_json(&state.histogram, stdout);
  printf("}\n");
  fflush(stdout);

  free(payload);
  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(client);
  bool complete = state.delivered > 0 && state.delivered == sent && state.failed == 0;
  return (complete && !send_failed) ? 0 : 1;
}

static int run_consume(const load_options* options) {
  uint64_t start_ns = monotonic_ns();
  uint64_t deadline_ns = start_ns + (uint64_t)(options->timeout_s * 1e9);
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  bool configured = set_config(conf, "bootstrap.servers", options->bootstrap) &&
                    set_config(conf, "enable.partition.eof", "false") &&
                    set_config(conf, "fetch.wait.max.ms", "100") &&
                    set_config(conf, "allow.auto.create.topics", "false");
  if (!configured) {
    rd_kafka_conf_destroy(conf);
    return 2;
  }
  rd_kafka_t* client = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof error);
  if (client == NULL) {
    fprintf(stderr, "rdkafka_load: consumer: %s\n", error);
    return 1;
  }
  rd_kafka_topic_t* topic = rd_kafka_topic_new(client, options->topic, NULL);
  int partitions = topic_partition_count(client, topic, deadline_ns);
  if (partitions == 0) {
    fprintf(stderr, "rdkafka_load: topic %s has no usable partitions\n", options->topic);
    rd_kafka_topic_destroy(topic);
    rd_kafka_destroy(client);
    return 1;
  }
  if (options->partitions > 0 && options->partitions < partitions) {
    partitions = (int)options->partitions;
  }

  rd_kafka_queue_t* queue = rd_kafka_queue_new(client);
  uint64_t load_start_ns = monotonic_ns();
  int started = 0;
  for (int p = 0; p < partitions; p++) {
    if (rd_kafka_consume_start_queue(topic, p, RD_KAFKA_OFFSET_BEGINNING, queue) != 0) {
      fprintf(stderr, "rdkafka_load: start partition %d: %s\n", p,
              rd_kafka_err2str(rd_kafka_last_error()));
      break;
    }
    started++;
  }
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;
  uint64_t last_record_ns = load_start_ns;
  static rd_kafka_message_t* batch[consume_batch_max];
  while (started == partitions && !stop_requested && records < (uint64_t)options->records) {
    int wait_ms = remaining_ms(deadline_ns);
    if (wait_ms == 0) break;
    if (wait_ms > 100) wait_ms = 100;
    ssize_t count = rd_kafka_consume_batch_queue(queue, wait_ms, batch, consume_batch_max);
    if (count < 0) {
      fprintf(stderr, "rdkafka_load: consume: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
      errors++;
      break;
    }
    for (ssize_t i = 0; i < count; i++) {
      rd_kafka_message_t* message = batch[i];
      if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        records++;
        bytes += message->len;
      } else if (message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (errors < 5) {
          fprintf(stderr, "rdkafka_load: partition %d: %s\n", (int)message->partition,
                  rd_kafka_message_errstr(message));
        }
        errors++;
      }
      rd_kafka_message_destroy(message);
    }
    if (count > 0) last_record_ns = monotonic_ns();
  }
  for (int p = 0; p < started; p++) rd_kafka_consume_stop(topic, p);
  double seconds = (double)(last_record_ns - load_start_ns) / 1e9;
  double records_per_second = seconds > 0 ? (double)records / seconds : 0;
  double mb_per_second = seconds > 0 ? (double)bytes / seconds / 1e6 : 0;
  fprintf(stderr,
          "rdkafka_load consume %s: %" PRIu64 " of %ld records (%" PRIu64
          " bytes) from %d partitions in %.2f s: %.0f records/s, %.1f MB/s, %" PRIu64 " errors\n",
          options->topic, records, options->records, bytes, partitions, seconds, records_per_second,
          mb_per_second, errors);
  print_json_head(options);
  printf("\"partitions\": %d, \"wanted\": %ld, \"records\": %" PRIu64 ", \"bytes\": %" PRIu64
         ", \"errors\": %" PRIu64
         ", \"seconds\": %.6f, \"records_per_second\": %.1f, \"mb_per_second\": %.3f, "
         "\"client_cpu_seconds\": %.2f}\n",
         partitions, options->records, records, bytes, errors, seconds, records_per_second,
         mb_per_second, client_cpu_seconds());
  fflush(stdout);

  rd_kafka_queue_destroy(queue);
  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(client);
  return records >= (uint64_t)options->records && errors == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  load_options options = {
      .label = "",
      .acks = "1",
      .compression = "none",
      .record_bytes = 1024,
      .duration_s = 10,
      .timeout_s = 0,
      .linger_ms = 5,
      .batch_bytes = 1000000,
      .queue_kbytes = 16384,
  };
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  options.mode = argv[1];
  enum {
    opt_bootstrap = 1,
    opt_topic,
    opt_records,
    opt_duration,
    opt_record_bytes,
    opt_acks,
    opt_linger,
    opt_batch,
    opt_compression,
    opt_partitions,
    opt_queue,
    opt_create,
    opt_sync,
    opt_timeout,
    opt_label,
    opt_rate,
  };
  static const struct option long_options[] = {
      {"bootstrap", required_argument, NULL, opt_bootstrap},
      {"topic", required_argument, NULL, opt_topic},
      {"records", required_argument, NULL, opt_records},
      {"duration-s", required_argument, NULL, opt_duration},
      {"record-bytes", required_argument, NULL, opt_record_bytes},
      {"acks", required_argument, NULL, opt_acks},
      {"linger-ms", required_argument, NULL, opt_linger},
      {"batch-bytes", required_argument, NULL, opt_batch},
      {"compression", required_argument, NULL, opt_compression},
      {"partitions", required_argument, NULL, opt_partitions},
      {"queue-kbytes", required_argument, NULL, opt_queue},
      {"create-partitions", required_argument, NULL, opt_create},
      {"sync", no_argument, NULL, opt_sync},
      {"rate", required_argument, NULL, opt_rate},
      {"timeout-s", required_argument, NULL, opt_timeout},
      {"label", required_argument, NULL, opt_label},
      {NULL, 0, NULL, 0},
  };
  optind = 2;
  int choice;
  bool valid = true;
  while (valid && (choice = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
    switch (choice) {
      case opt_bootstrap: options.bootstrap = optarg; break;
      case opt_topic: options.topic = optarg; break;
      case opt_records: valid = parse_long(optarg, 0, 1000000000000L, &options.records); break;
      case opt_duration: valid = parse_double(optarg, 0.001, 86400, &options.duration_s); break;
      case opt_record_bytes:
        valid = parse_long(optarg, 1, record_bytes_max, &options.record_bytes);
        break;
      case opt_acks: options.acks = optarg; break;
      case opt_linger: valid = parse_long(optarg, 0, 900000, &options.linger_ms); break;
      case opt_batch: valid = parse_long(optarg, 1, 1 << 30, &options.batch_bytes); break;
      case opt_compression: options.compression = optarg; break;
      case opt_partitions:
        valid = parse_long(optarg, 0, partitions_max, &options.partitions);
        break;
      case opt_queue: valid = parse_long(optarg, 1, 1 << 21, &options.queue_kbytes); break;
      case opt_create:
        valid = parse_long(optarg, 1, partitions_max, &options.create_partitions);
        break;
      case opt_sync: options.sync = true; break;
      case opt_rate: valid = parse_double(optarg, 0, 1e9, &options.rate); break;
      case opt_timeout: valid = parse_double(optarg, 0.001, 86400, &options.timeout_s); break;
      case opt_label: options.label = optarg; break;
      default: valid = false; break;
    }
    if (!valid && choice != '?') fprintf(stderr, "rdkafka_load: bad value for an option\n");
  }
  bool produce = strcmp(options.mode, "produce") == 0;
  bool consume = strcmp(options.mode, "consume") == 0;
  if (!valid || optind != argc || options.bootstrap == NULL || options.topic == NULL ||
      !(produce || consume) || (consume && options.records == 0)) {
    usage(stderr);
    return 2;
  }
  if (options.timeout_s == 0) options.timeout_s = options.duration_s + 60;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  return produce ? run_produce(&options) : run_consume(&options);
}
