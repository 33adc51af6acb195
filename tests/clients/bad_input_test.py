"""Bad input on the wire gets Kafka's answer, and the broker keeps serving everyone else.

Run: /usr/bin/python3 bad_input_test.py --sluice PATH [unittest args]

Everything is hand-encoded on raw sockets (no Kafka client library), so each test can
send exactly the broken bytes it means to: oversized, negative, garbage and truncated
frames; unknown APIs and versions; and Produce requests whose record batch (built here
by a small RecordBatch v2 encoder, then broken on purpose) Kafka refuses per partition.
After each case a second, healthy connection must still get an ApiVersions answer, and
for Produce cases ListOffsets must show that nothing was appended.
"""

import contextlib
import os
import random
import socket
import struct
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import running_sluice, take_sluice_arg  # noqa: E402

SLUICE = None  # set from --sluice before unittest.main()

REQUEST_BYTES_MAX = 1048576
MESSAGE_BYTES_MAX = 10000
BROKER_ARGS = ["--max-request-bytes", str(REQUEST_BYTES_MAX),
               "--max-message-bytes", str(MESSAGE_BYTES_MAX),
               "--auto-create-topics", "false",
               "--default-partitions", "1"]

READ_TIMEOUT_S = 10.0  # every socket read is bounded by this
TOPIC = "bad-input"    # created with one partition in setUpClass

# API keys and Kafka error codes (protocol.html, "Error Codes").
PRODUCE, LIST_OFFSETS, API_VERSIONS, CREATE_TOPICS = 0, 2, 18, 19
NONE, CORRUPT_MESSAGE, UNKNOWN_TOPIC_OR_PARTITION = 0, 2, 3
MESSAGE_TOO_LARGE, UNSUPPORTED_VERSION, INVALID_RECORD = 10, 35, 87


# ---- CRC32C (Castagnoli), reflected polynomial 0x82F63B78, table-driven -----------------

def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---- varints (zigzag, as RecordBatch v2 records use them) -------------------------------

def uvarint(value):
    assert value >= 0
    out = bytearray()
    while True:
        if value < 0x80:
            out.append(value)
            return bytes(out)
        out.append((value & 0x7F) | 0x80)
        value >>= 7


def varint(value):
    # Zigzag: small negative numbers stay short. Python ints are unbounded, so the
    # 64-bit form serves both varint and varlong.
    return uvarint((value << 1) ^ (value >> 63))


# ---- RecordBatch v2 -----------------------------------------------------------------------

# Byte positions in a v2 batch (docs/implementation.html).
MAGIC_POS = 16
CRC_POS = 17
CRC_COVERED_POS = 21  # attributes onward
LAST_OFFSET_DELTA_POS = 23
RECORDS_COUNT_POS = 57
RECORDS_POS = 61


def encode_record(offset_delta, key, value):
    body = (struct.pack(">b", 0) + varint(0) + varint(offset_delta)
            + (varint(-1) if key is None else varint(len(key)) + key)
            + (varint(-1) if value is None else varint(len(value)) + value)
            + varint(0))  # no headers
    return varint(len(body)) + body


def build_batch(values, magic=2, timestamp_ms=None):
    """A valid uncompressed, non-transactional RecordBatch v2 holding `values`."""
    if timestamp_ms is None:
        timestamp_ms = int(time.time() * 1000)
    records = b"".join(encode_record(i, None, v) for i, v in enumerate(values))
    after_crc = struct.pack(">hiqqqhii", 0, len(values) - 1, timestamp_ms, timestamp_ms,
                            -1, -1, -1, len(values)) + records
    crc = crc32c(after_crc)
    after_length = struct.pack(">ibI", 0, magic, crc) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


def fix_crc(batch):
    batch = bytearray(batch)
    struct.pack_into(">I", batch, CRC_POS, crc32c(bytes(batch[CRC_COVERED_POS:])))
    return bytes(batch)


# ---- request encoding ------------------------------------------------------------------------

def string(text):
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def compact_string(text):
    data = text.encode()
    return uvarint(len(data) + 1) + data


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def header_v1(api_key, version, correlation_id, client_id="bad-input-test"):
    return struct.pack(">hhi", api_key, version, correlation_id) + string(client_id)


def header_v2(api_key, version, correlation_id, client_id="bad-input-test"):
    return header_v1(api_key, version, correlation_id, client_id) + uvarint(0)


def api_versions_v0(correlation_id):
    return frame(header_v1(API_VERSIONS, 0, correlation_id))


def api_versions_v3(correlation_id, version=3):
    body = compact_string("bad-input-test") + compact_string("1.0") + uvarint(0)
    return frame(header_v2(API_VERSIONS, version, correlation_id) + body)


def produce_v3_body(topic, partition, records, acks=-1, timeout_ms=10000):
    return (struct.pack(">h", -1) + struct.pack(">hi", acks, timeout_ms)
            + struct.pack(">i", 1) + string(topic)
            + struct.pack(">i", 1) + struct.pack(">i", partition)
            + struct.pack(">i", len(records)) + records)


def produce_v3(correlation_id, topic, partition, records, version=3):
    # v3 to v8 share one request layout (v9 turns flexible).
    return frame(header_v1(PRODUCE, version, correlation_id)
                 + produce_v3_body(topic, partition, records))


def list_offsets_v1(correlation_id, topic, partition):
    body = (struct.pack(">i", -1) + struct.pack(">i", 1) + string(topic)
            + struct.pack(">i", 1) + struct.pack(">iq", partition, -1))  # -1: latest
    return frame(header_v1(LIST_OFFSETS, 1, correlation_id) + body)


def create_topics_v0(correlation_id, topic, partitions):
    body = (struct.pack(">i", 1) + string(topic) + struct.pack(">ih", partitions, 1)
            + struct.pack(">ii", 0, 0) + struct.pack(">i", 10000))
    return frame(header_v1(CREATE_TOPICS, 0, correlation_id) + body)


# ---- response decoding -----------------------------------------------------------------------

class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, fmt):
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    def uvarint(self):
        shift = value = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def string(self):
        length = self.take(">h")
        if length < 0:
            return None
        text = self.data[self.pos:self.pos + length].decode()
        self.pos += length
        return text

    def skip_tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.pos += self.uvarint()

    def done(self):
        return self.pos == len(self.data)


def recv_exact(sock, count):
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("connection closed after %d of %d bytes" % (len(data), count))
        data += chunk
    return bytes(data)


def read_response(sock, correlation_id):
    """The body of the next response (response header v0), its correlation id checked."""
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    payload = recv_exact(sock, size)
    got = struct.unpack_from(">i", payload)[0]
    if got != correlation_id:
        raise AssertionError("correlation id %d, expected %d" % (got, correlation_id))
    return payload[4:]


def decode_api_versions_v0(body):
    r = Reader(body)
    error = r.take(">h")
    apis = {}
    for _ in range(r.take(">i")):
        key, low, high = r.take(">hhh")
        apis[key] = (low, high)
    assert r.done(), "trailing bytes in ApiVersions v0 response"
    return error, apis


def decode_api_versions_v3(body):
    r = Reader(body)
    error = r.take(">h")
    apis = {}
    for _ in range(r.uvarint() - 1):
        key, low, high = r.take(">hhh")
        r.skip_tags()
        apis[key] = (low, high)
    r.take(">i")  # throttle_time_ms
    r.skip_tags()
    assert r.done(), "trailing bytes in ApiVersions v3 response"
    return error, apis


def decode_produce_v3(body):
    """{(topic, partition): (error_code, base_offset)}"""
    r = Reader(body)
    out = {}
    for _ in range(r.take(">i")):
        topic = r.string()
        for _ in range(r.take(">i")):
            partition, error, base_offset, _append_time = r.take(">ihqq")
            out[(topic, partition)] = (error, base_offset)
    r.take(">i")  # throttle_time_ms
    assert r.done(), "trailing bytes in Produce v3 response"
    return out


def decode_produce_v8(body):
    """{(topic, partition): (error_code, base_offset, [(batch_index, message)], message)}"""
    r = Reader(body)
    out = {}
    for _ in range(r.take(">i")):
        topic = r.string()
        for _ in range(r.take(">i")):
            partition, error, base_offset, _append_time, _start = r.take(">ihqqq")
            record_errors = []
            for _ in range(r.take(">i")):
                index = r.take(">i")
                record_errors.append((index, r.string()))
            out[(topic, partition)] = (error, base_offset, record_errors, r.string())
    r.take(">i")  # throttle_time_ms
    assert r.done(), "trailing bytes in Produce v8 response"
    return out


def decode_list_offsets_v1(body):
    """{(topic, partition): (error_code, offset)}"""
    r = Reader(body)
    out = {}
    for _ in range(r.take(">i")):
        topic = r.string()
        for _ in range(r.take(">i")):
            partition, error, _timestamp, offset = r.take(">ihqq")
            out[(topic, partition)] = (error, offset)
    assert r.done(), "trailing bytes in ListOffsets v1 response"
    return out


# ---- the tests -------------------------------------------------------------------------------

class BadInputTest(unittest.TestCase):
    broker = None
    _stack = None
    _correlation = 0

    @classmethod
    def setUpClass(cls):
        cls._stack = contextlib.ExitStack()
        cls.broker = cls._stack.enter_context(running_sluice(SLUICE, extra_args=BROKER_ARGS))
        try:
            with cls.connect() as sock:
                cid = cls.next_id()
                sock.sendall(create_topics_v0(cid, TOPIC, 1))
                r = Reader(read_response(sock, cid))
                assert r.take(">i") == 1
                name, error = r.string(), r.take(">h")
                assert (name, error) == (TOPIC, NONE), "CreateTopics answered %r" % ((name, error),)
        except BaseException:
            cls._stack.__exit__(*sys.exc_info())
            raise

    @classmethod
    def tearDownClass(cls):
        # Stops the broker with SIGTERM; the harness raises unless it exits 0.
        cls._stack.close()

    @classmethod
    def next_id(cls):
        cls._correlation += 1
        return cls._correlation

    @classmethod
    def connect(cls):
        sock = socket.create_connection((cls.broker.host, cls.broker.port), timeout=READ_TIMEOUT_S)
        sock.settimeout(READ_TIMEOUT_S)
        return sock

    # --- checks --------------------------------------------------------------------------------

    def assert_serving(self):
        """A fresh connection still gets a well-formed ApiVersions v3 answer."""
        self.assertTrue(self.broker.running(), "sluice exited\n" + self.broker.log_tail())
        with self.connect() as sock:
            cid = self.next_id()
            sock.sendall(api_versions_v3(cid))
            error, apis = decode_api_versions_v3(read_response(sock, cid))
        self.assertEqual(error, NONE)
        self.assertIn(PRODUCE, apis)
        self.assertIn(API_VERSIONS, apis)

    def assert_closed(self, sock, what):
        """The broker closes `sock` (EOF or reset) without answering, within the timeout."""
        deadline = time.monotonic() + READ_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return
            except socket.timeout:
                break
            if not data:
                return
            self.fail("%s: the broker answered %r instead of closing" % (what, data[:64]))
        self.fail("%s: connection still open after %.0f s" % (what, READ_TIMEOUT_S))

    def send_and_expect_close(self, data, what):
        with self.connect() as sock:
            try:
                sock.sendall(data)
            except (ConnectionResetError, BrokenPipeError):
                pass  # already closed while we were still sending: fine
            self.assert_closed(sock, what)
        self.assert_serving()

    def log_end_offset(self, topic=TOPIC, partition=0):
        with self.connect() as sock:
            cid = self.next_id()
            sock.sendall(list_offsets_v1(cid, topic, partition))
            answer = decode_list_offsets_v1(read_response(sock, cid))
        self.assertIn((topic, partition), answer)
        return answer[(topic, partition)]

    def produce(self, records, topic=TOPIC, partition=0):
        with self.connect() as sock:
            cid = self.next_id()
            sock.sendall(produce_v3(cid, topic, partition, records))
            answer = decode_produce_v3(read_response(sock, cid))
        self.assertEqual(list(answer), [(topic, partition)], "Produce answered %r" % answer)
        return answer[(topic, partition)]

    def assert_refused(self, records, expected_error, topic=TOPIC, partition=0):
        error, end_before = self.log_end_offset()
        self.assertEqual(error, NONE)
        got, _ = self.produce(records, topic, partition)
        self.assertEqual(got, expected_error,
                         "Produce answered error %d, Kafka answers %d" % (got, expected_error))
        self.assertEqual(self.log_end_offset(), (NONE, end_before), "something was appended")
        self.assert_serving()

    # --- the encoders themselves ----------------------------------------------------------------

    def test_crc32c_published_vector(self):
        # RFC 3720 B.4 / the common "123456789" check value of CRC-32C.
        self.assertEqual(crc32c(b"123456789"), 0xE3069283)
        self.assertEqual(crc32c(bytes(32)), 0x8A9136AA)  # RFC 3720 B.4: 32 bytes of zeros

    def test_valid_batch_is_accepted(self):
        error, end_before = self.log_end_offset()
        self.assertEqual(error, NONE)
        values = [b"one", b"two", b"three"]
        error, base_offset = self.produce(build_batch(values))
        self.assertEqual(error, NONE)
        self.assertEqual(base_offset, end_before)
        self.assertEqual(self.log_end_offset(), (NONE, end_before + len(values)))
        self.assert_serving()

    # --- frames ----------------------------------------------------------------------------------

    def test_frame_over_max_request_bytes_closes(self):
        data = struct.pack(">i", 2 * 1024 * 1024) + bytes(1000)
        self.send_and_expect_close(data, "a 2 MiB frame size")

    def test_negative_frame_size_closes(self):
        self.send_and_expect_close(struct.pack(">i", -5) + bytes(16), "a negative frame size")

    def test_garbage_frame_closes(self):
        rng = random.Random(20261125)
        known = {PRODUCE, 1, LIST_OFFSETS, 3, API_VERSIONS, CREATE_TOPICS}
        while True:
            garbage = bytes(rng.randrange(256) for _ in range(64))
            if struct.unpack_from(">h", garbage)[0] not in known:
                break
        self.send_and_expect_close(frame(garbage), "a frame of random bytes")

    def test_truncated_frame_waits_and_others_are_served(self):
        with self.connect() as stalled:
            stalled.sendall(struct.pack(">i", 100) + bytes(50))
            stalled.settimeout(1.0)
            with self.assertRaises(socket.timeout, msg="the broker should wait for the rest"):
                data = stalled.recv(1)
                self.fail("the broker answered %r or closed a frame still arriving" % data)
            self.assert_serving()
            self.assertEqual(self.log_end_offset()[0], NONE)
        self.assert_serving()

    # --- headers -------------------------------------------------------------------------------

    def test_unknown_api_key_closes(self):
        self.send_and_expect_close(frame(header_v1(9999, 0, self.next_id())),
                                   "API key 9999")

    def test_api_versions_unsupported_version_answers_v0(self):
        with self.connect() as sock:
            cid = self.next_id()
            sock.sendall(api_versions_v3(cid, version=99))
            error, apis = decode_api_versions_v0(read_response(sock, cid))
        self.assertEqual(error, UNSUPPORTED_VERSION)
        self.assertIn(API_VERSIONS, apis)
        self.assertIn(PRODUCE, apis)
        low, high = apis[API_VERSIONS]
        self.assertLessEqual(low, 0)
        self.assertGreaterEqual(high, 3)
        self.assert_serving()

    def test_truncated_produce_body_closes(self):
        payload = header_v1(PRODUCE, 3, self.next_id()) + produce_v3_body(
            TOPIC, 0, build_batch([b"cut"]))
        cut = len(header_v1(PRODUCE, 3, 0)) + 12  # inside the topics array
        error, end_before = self.log_end_offset()
        self.send_and_expect_close(frame(payload[:cut]), "a Produce body cut short")
        self.assertEqual(self.log_end_offset(), (error, end_before))

    # --- record batches -------------------------------------------------------------------------

    def test_flipped_byte_is_corrupt_message(self):
        batch = bytearray(build_batch([b"payload-one", b"payload-two"]))
        batch[-5] ^= 0x01  # inside the last record's value, well within the CRC's cover
        self.assert_refused(bytes(batch), CORRUPT_MESSAGE)

    def test_records_count_mismatch_is_invalid_record(self):
        batch = bytearray(build_batch([b"a", b"b", b"c"]))
        # last_offset_delta stays 2; the count says 2: Kafka's LogValidator refuses it.
        struct.pack_into(">i", batch, RECORDS_COUNT_POS, 2)
        self.assert_refused(fix_crc(batch), INVALID_RECORD)

    def test_malformed_record_gets_a_record_level_error(self):
        # Record 2 of 4 says its key is longer than the record: the batch's CRC is right
        # (fixed after the damage), so only walking the records finds it.
        values = [b"zero", b"one", b"two", b"three"]
        records = [encode_record(i, None, v) for i, v in enumerate(values)]
        broken = bytearray(records[2])
        # Layout: length varint (1 byte), attributes, timestamp delta, offset delta, key
        # length. Claim a 60-byte key in a record far shorter than that.
        broken[4] = varint(60)[0]
        records[2] = bytes(broken)
        body = b"".join(records)
        timestamp_ms = int(time.time() * 1000)
        after_crc = struct.pack(">hiqqqhii", 0, len(values) - 1, timestamp_ms, timestamp_ms,
                                -1, -1, -1, len(values)) + body
        after_length = struct.pack(">ibI", 0, 2, 0) + after_crc
        batch = fix_crc(struct.pack(">qi", 0, len(after_length)) + after_length)
        error_before, end_before = self.log_end_offset()
        self.assertEqual(error_before, NONE)
        with self.connect() as sock:
            cid = self.next_id()
            sock.sendall(produce_v3(cid, TOPIC, 0, batch, version=8))
            answer = decode_produce_v8(read_response(sock, cid))
        error, _, record_errors, _ = answer[(TOPIC, 0)]
        self.assertEqual(error, INVALID_RECORD)
        self.assertEqual([index for index, _ in record_errors], [2],
                         "record_errors should name record 2: %r" % (record_errors,))
        self.assertEqual(self.log_end_offset(), (NONE, end_before), "something was appended")
        self.assert_serving()

    def test_magic_1_batch_is_invalid_record(self):
        # Kafka's ProduceRequest.validateRecords: Produce v3+ "are only allowed to contain
        # record batches with magic version 2" (InvalidRecordException, per partition).
        batch = bytearray(build_batch([b"old"]))
        batch[MAGIC_POS] = 1
        self.assert_refused(fix_crc(batch), INVALID_RECORD)

    def test_batch_over_max_message_bytes_is_message_too_large(self):
        batch = build_batch([bytes(20000)])
        self.assertGreater(len(batch), MESSAGE_BYTES_MAX)
        self.assert_refused(batch, MESSAGE_TOO_LARGE)

    def test_unknown_topic_is_unknown_topic_or_partition(self):
        self.assert_refused(build_batch([b"x"]), UNKNOWN_TOPIC_OR_PARTITION,
                            topic="no-such-topic")
        # Not auto-created by the attempt either.
        self.assertEqual(self.log_end_offset("no-such-topic", 0)[0], UNKNOWN_TOPIC_OR_PARTITION)

    def test_unknown_partition_is_unknown_topic_or_partition(self):
        self.assert_refused(build_batch([b"x"]), UNKNOWN_TOPIC_OR_PARTITION, partition=7)
        self.assertEqual(self.log_end_offset(TOPIC, 7)[0], UNKNOWN_TOPIC_OR_PARTITION)


if __name__ == "__main__":
    SLUICE = take_sluice_arg(sys.argv)
    unittest.main()
