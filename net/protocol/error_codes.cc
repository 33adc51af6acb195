#include "net/protocol/error_codes.h"

namespace sluice::protocol {

std::string_view error_code_name(error_code code) noexcept {
  switch (code) {
#define SLUICE_KAFKA_ERROR_NAME(enumerator, number, name) \
  case error_code::enumerator: return name;
    SLUICE_KAFKA_ERROR_CODES(SLUICE_KAFKA_ERROR_NAME)
#undef SLUICE_KAFKA_ERROR_NAME
  }
  return "UNKNOWN";
}

bool is_retriable(error_code code) noexcept {
  switch (code) {
    case error_code::corrupt_message:
    case error_code::unknown_topic_or_partition:
    case error_code::leader_not_available:
    case error_code::not_leader_or_follower:
    case error_code::request_timed_out:
    case error_code::not_enough_replicas:
    case error_code::not_enough_replicas_after_append:
    case error_code::kafka_storage_error:
    case error_code::offset_not_available:
    case error_code::fenced_leader_epoch:
    case error_code::unknown_leader_epoch:
    case error_code::throttling_quota_exceeded: return true;
    default: return false;
  }
}

error_code to_error_code(errc code) noexcept {
  switch (code) {
    case errc::ok: return error_code::none;
    // A batch whose bytes are damaged (bad CRC, lengths that do not add up): Kafka's
    // CorruptRecordException, which the producer retries.
    case errc::corrupt_batch: return error_code::corrupt_message;
    // A well-framed batch that breaks a rule: Kafka's InvalidRecordException (87),
    // which is what LogValidator throws for such batches; not retriable, since resending
    // the same bytes cannot help.
    case errc::invalid_batch: return error_code::invalid_record;
    // A message format (magic) the engine does not store: Kafka answers
    // UNSUPPORTED_FOR_MESSAGE_FORMAT (43) when the format does not fit the request.
    case errc::unsupported_magic: return error_code::unsupported_for_message_format;
    // A batch larger than max.message.bytes: Kafka's log throws RecordTooLargeException,
    // which is MESSAGE_TOO_LARGE (10). RECORD_LIST_TOO_LARGE (18) is Kafka's answer for
    // a batch larger than a whole segment, a different limit.
    case errc::batch_too_large: return error_code::message_too_large;
    case errc::invalid_timestamp: return error_code::invalid_timestamp;
    case errc::offset_out_of_range: return error_code::offset_out_of_range;
    // A full disk and a failing disk are both Kafka's KafkaStorageException: the client
    // refreshes metadata and retries, possibly against another replica.
    case errc::no_space:
    case errc::io_error: return error_code::kafka_storage_error;
    // A full bounded queue. The broker should normally apply backpressure by reading
    // the connection more slowly; when an error must be returned, REQUEST_TIMED_OUT is
    // what Kafka sends when a request could not complete in time. It is retriable and
    // does not make the client believe that the leader moved (unlike
    // NOT_LEADER_OR_FOLLOWER) or that the disk failed (unlike KAFKA_STORAGE_ERROR).
    case errc::backpressure: return error_code::request_timed_out;
    // A partition (or topic) this broker does not have.
    case errc::not_found: return error_code::unknown_topic_or_partition;
    // An argument outside its valid range: the request itself is wrong.
    case errc::invalid_argument: return error_code::invalid_request;
    // A partition log that was closed (being deleted, moved, or shut down): the client
    // should refresh its metadata and find the partition's current home, which is what
    // NOT_LEADER_OR_FOLLOWER makes it do.
    case errc::closed: return error_code::not_leader_or_follower;
  }
  return error_code::unknown_server_error;
}

}  // namespace sluice::protocol
