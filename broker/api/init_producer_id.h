// InitProducerId v0-v5 (key 22): a producer id and epoch for an idempotent producer.
//
// As Kafka's TransactionCoordinator.handleInitProducerId for a null transactional id: a
// new producer id from the allocator, epoch 0, whatever ProducerId/ProducerEpoch (v3+,
// KIP-360) the request carries -- an idempotent producer that bumps its epoch does so
// itself (librdkafka) or asks for a new id (the Java client). A request that sets only one
// of ProducerId and ProducerEpoch is INVALID_REQUEST, as in Kafka's KafkaApis.
//
// Transactions are not supported: an empty transactional id is INVALID_REQUEST (Kafka's
// answer too); any other gets COORDINATOR_NOT_AVAILABLE, what Kafka answers while no
// transaction coordinator is available -- retriable, so a transactional producer's
// initTransactions() ends in its own timeout with that reason. (Clients find the
// coordinator with FindCoordinator first, which Sluice does not serve, so this is rare.)
//
// When the allocator cannot persist a new block of ids, the answer is
// COORDINATOR_LOAD_IN_PROGRESS, which producers retry (Kafka's answer while its id block
// is not yet available).
#pragma once

#include <cstdint>

#include "broker/api/request_context.h"
#include "broker/producer_id_allocator.h"
#include "net/protocol/generated/init_producer_id.h"

namespace sluice {

// The response to `request` (decoded at `version`), drawing an id from `ids` when one is
// due.
protocol::InitProducerIdResponse init_producer_id_response(
    const protocol::InitProducerIdRequest& request, std::int16_t version,
    producer_id_allocator& ids);

// The handler of api_table.h: answers at once, with the id from
// ctx.broker.producer_ids().
handler_status handle_init_producer_id(request_context& ctx, protocol::reader& body);

}  // namespace sluice
