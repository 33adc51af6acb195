// libFuzzer target: the request (and response) decoder on arbitrary bytes.
//
// A broker decodes whatever a client sends: the request header, then the body of the API
// and version the header names. Whatever the bytes, decoding must either succeed or leave
// the reader failed -- never read out of bounds, never allocate without bound, never
// crash. To reach every API and version, not only those whose headers the fuzzer happens
// to spell, the first two input bytes choose an API and version when the header's own
// API key is unknown; the body is then decoded as that message. What decodes is encoded
// again and decoded once more, which must give the same message (a codec that reads
// what it wrote).
//
// Build and run (see tests/fuzz/CMakeLists.txt):
//   CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DSLUICE_FUZZ=ON
//   ninja -C build/fuzz request_decoder_fuzz
//   build/fuzz/tests/fuzz/request_decoder_fuzz -max_total_time=30
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <type_traits>

#include "net/protocol/api_keys.h"
#include "net/protocol/generated/messages.h"
#include "net/protocol/reader.h"
#include "net/protocol/writer.h"

namespace {

using namespace sluice::protocol;

// Decodes a body as `Message` at `version`; when it decodes, checks that encoding and
// decoding again gives the same message.
template <typename Message>
void decode_body(std::span<const std::byte> body, std::int16_t version) {
  if (version < Message::min_version || version > Message::max_version) return;
  reader in(body);
  Message message;
  message.decode(in, version);
  if (!in.ok()) return;
  writer out;
  message.encode(out, version);
  if (!out.ok()) std::abort();  // Whatever decodes must encode.
  reader again(out.bytes());
  Message copy;
  copy.decode(again, version);
  if (!again.ok() || again.remaining() != 0 || !(copy == message)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto bytes = std::as_bytes(std::span(data, size));
  if (bytes.size() < 4) return 0;

  // The header as a broker reads it: key and version first, then the header version
  // they imply.
  reader peek(bytes);
  const std::int16_t key = peek.read_int16();
  const std::int16_t version = peek.read_int16();
  if (auto header_version = request_header_version(key, version)) {
    reader in(bytes);
    RequestHeader header;
    header.decode(in, *header_version);
    if (in.ok() && is_supported(key, version)) {
      visit_request_type(key, [&]<typename Request>(std::type_identity<Request>) {
        decode_body<Request>(in.rest(), version);
      });
    }
    return 0;
  }

  // An unknown key: let the first two bytes pick any API and version of the schema,
  // and whether to decode its request or its response (the broker's own client decodes
  // responses from other brokers).
  const std::uint8_t selector = static_cast<std::uint8_t>(data[0]);
  const auto& api = supported_versions[(selector >> 1) % supported_versions.size()];
  const auto chosen_version = static_cast<std::int16_t>(static_cast<std::uint8_t>(data[1]) % 20);
  auto decode = [&]<typename Message>(std::type_identity<Message>) {
    decode_body<Message>(bytes.subspan(2), chosen_version);
  };
  if (selector & 1) {
    visit_response_type(static_cast<std::int16_t>(api.key), decode);
  } else {
    visit_request_type(static_cast<std::int16_t>(api.key), decode);
  }
  return 0;
}
