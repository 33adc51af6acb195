// Compatibility of a real `sluice` broker with kafkajs 2.2 (a pure JavaScript client).
//
// Run: SLUICE_BINARY=PATH node --test kafkajs_test.mjs   (or through run.sh, which also
// installs the pinned kafkajs). The broker path may also be the first argument after the
// file name when the file is run directly: node kafkajs_test.mjs PATH.
//
// Most of what is produced here is read back with kcat (librdkafka assigning the partition
// itself, no group) and compared field by field with what was sent; the consumer-group
// test reads with kafkajs's own consumer, which always joins a group.
//
// kafkajs logs at DEBUG into a bounded ring buffer (every request it sends, with its API
// name and version); the buffer is printed only when a test fails, so a passing run stays
// quiet and a failing one shows what the client asked the broker. Set $KAFKAJS_LOG_FILE
// to keep the whole log of a run, and $SLUICE_KEEP_DATA to keep the broker's data and log
// (they are kept anyway when a test fails).

import kafkajs from 'kafkajs';
import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {after, before, describe, test} from 'node:test';

const {Kafka, logLevel, CompressionTypes, Partitioners} = kafkajs;

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 30_000;
const KCAT_TIMEOUT_MS = 60_000;
const READY_MARKER = 'listening on';
const LOG_RING_ENTRIES = 2_000;
const BROKER_LOG_TAIL_LINES = 40;
const KCAT = process.env.KCAT || '/usr/bin/kcat';
// An hour ago, to the millisecond: far enough from "now" that a broker stamping its own
// time instead of the producer's would be caught.
const BASE_TS_MS = Date.now() - 3_600_000;

function sluiceBinary() {
  const fromArgv =
      process.argv.slice(2).find((arg) => !arg.startsWith('-') && !arg.endsWith('.mjs'));
  const binary = process.env.SLUICE_BINARY || fromArgv;
  if (!binary) {
    throw new Error('set SLUICE_BINARY to the sluice binary (or pass its path as an argument)');
  }
  fs.accessSync(binary, fs.constants.X_OK);
  return path.resolve(binary);
}

// A TCP port nobody listens on right now (the kernel's choice).
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address();
      server.close(() => resolve(port));
    });
  });
}

// --- the broker process --------------------------------------------------------------

class Sluice {
  constructor(binary, port, root) {
    this.binary = binary;
    this.port = port;
    this.bootstrap = `127.0.0.1:${port}`;
    this.root = root;
    this.dataDir = path.join(root, 'data');
    this.logPath = path.join(root, 'sluice.log');
    this.child = null;
    this.exit = null;    // { code, signal } once the process ended
    this.exited = null;  // a promise of `exit`
    this.stderr = '';
  }

  async start() {
    fs.mkdirSync(this.dataDir, {recursive: true});
    // Every client suite runs on a multi-core broker unless told otherwise
    // (SLUICE_TEST_CORES, as tests/clients/sluice_harness.py reads it).
    const cores = process.env.SLUICE_TEST_CORES || '2';
    const args = ['--listen', this.bootstrap, '--data-dir', this.dataDir, '--cores', cores];
    // setpriv makes the kernel kill the broker when this test process dies (a ctest
    // timeout, ^C), so it can never outlive the test; the exit hook below covers the rest.
    const setpriv = '/usr/bin/setpriv';
    const [command, argv] = fs.existsSync(setpriv) ?
        [setpriv, ['--pdeathsig', 'KILL', '--', this.binary, ...args]] :
        [this.binary, args];
    const log = fs.openSync(this.logPath, 'a');
    this.child = spawn(command, argv, {stdio: ['ignore', log, 'pipe']});
    fs.closeSync(log);
    const child = this.child;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exit = {code, signal};
        resolve(this.exit);
      });
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      fs.appendFileSync(this.logPath, chunk);
      // Only the start-up lines are needed in memory; the file keeps everything.
      if (this.stderr.length < 1 << 20) this.stderr += chunk;
    });
    const ready = new Promise((resolve, reject) => {
      const timer = setTimeout(
          () => reject(new Error(`sluice did not log "${READY_MARKER}" within ${
              START_TIMEOUT_MS} ms\n${this.logTail()}`)),
          START_TIMEOUT_MS,
      );
      const check = () => {
        if (this.stderr.includes(READY_MARKER)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stderr.on('data', check);
      this.exited.then(({code, signal}) => {
        clearTimeout(timer);
        reject(new Error(
            `sluice exited (code ${code}, signal ${signal}) before listening\n${this.logTail()}`));
      });
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    try {
      await ready;
    } catch (err) {
      this.kill();
      throw err;
    }
  }

  running() { return this.child !== null && this.exit === null; }

  // Sends `signal` and resolves to { code, signal } once the process ended.
  async stop(signal = 'SIGTERM') {
    if (!this.running()) return this.exit;
    this.child.kill(signal);
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
          () => reject(new Error(`sluice did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}`)),
          STOP_TIMEOUT_MS);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } catch (err) {
      this.kill();
      throw new Error(`${err.message}\n${this.logTail()}`);
    } finally {
      clearTimeout(timer);
    }
  }

  kill() {
    if (this.running()) this.child.kill('SIGKILL');
  }

  logTail(lines = BROKER_LOG_TAIL_LINES) {
    let text = '';
    try {
      text = fs.readFileSync(this.logPath, 'utf8');
    } catch {
      text = this.stderr;
    }
    const all = text.split('\n');
    return `---- last ${Math.min(lines, all.length)} lines of ${this.logPath} ----\n${
        all.slice(-lines).join('\n')}`;
  }
}

// --- kafkajs with a log kept for failures ---------------------------------------------

const kafkajsLog = [];
let anyTestFailed = false;  // keeps the broker's data and log for a look afterwards

function logCreator() {
  return ({namespace, label, log}) => {
    const {message, timestamp, ...extra} = log;
    const line = `${timestamp} ${label} [${namespace}] ${message} ${JSON.stringify(extra)}`;
    kafkajsLog.push(line);
    // $KAFKAJS_LOG_FILE keeps the whole client log of a run, passing or not.
    if (process.env.KAFKAJS_LOG_FILE) fs.appendFileSync(process.env.KAFKAJS_LOG_FILE, `${line}\n`);
    if (kafkajsLog.length > LOG_RING_ENTRIES)
      kafkajsLog.splice(0, kafkajsLog.length - LOG_RING_ENTRIES);
  };
}

function kafkaFor(broker, clientId) {
  return new Kafka({
    clientId,
    brokers: [broker.bootstrap],
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    enforceRequestTimeout: true,
    retry: {retries: 3, initialRetryTime: 100, maxRetryTime: 1_000},
    logLevel: logLevel.DEBUG,
    logCreator,
  });
}

// Runs `body`; on failure the kafkajs log of this test and the broker's log tail are
// attached to the error, so the report names the requests that were sent.
async function withEvidence(broker, body) {
  kafkajsLog.length = 0;
  try {
    await body();
  } catch (err) {
    anyTestFailed = true;
    const detail = [
      err?.stack ?? String(err),
      err?.type ? `kafkajs error type: ${err.type}` : '',
      err?.errors ?
          `kafkajs errors: ${
              JSON.stringify(err.errors.map((e) => ({type: e.type, message: e.message})))}` :
          '',
      '---- kafkajs log (DEBUG, this test) ----',
      kafkajsLog.join('\n'),
      broker.logTail(),
    ].join('\n');
    const wrapped = new Error(detail);
    wrapped.cause = err;
    throw wrapped;
  }
}

// --- reading back with kcat ------------------------------------------------------------

// Every record of one partition, in log order: [{ offset, key, value, headers, ts, tstype }].
// `headers` is kcat's flat [name, value, name, value, ...] list.
function kcatPartition(broker, topic, partition) {
  const done = spawnSync(
      KCAT,
      [
        '-b', broker.bootstrap, '-C', '-t', topic, '-p', String(partition), '-o', 'beginning', '-e',
        '-q', '-J'
      ],
      {encoding: 'utf8', timeout: KCAT_TIMEOUT_MS, maxBuffer: 64 << 20},
  );
  if (done.error) throw done.error;
  assert.equal(
      done.status, 0,
      `kcat -C ${topic} [${partition}] failed (status ${done.status}): ${done.stderr}`);
  return done.stdout.split('\n').filter((line) => line.trim() !== '').map((line) => {
    const record = JSON.parse(line);
    assert.equal(record.topic, topic);
    assert.equal(record.partition, partition);
    return {
      offset: record.offset,
      key: record.key,
      value: record.payload,
      headers: record.headers ?? [],
      ts: record.ts,
      tstype: record.tstype,
    };
  });
}

// What kcat must print for a message kafkajs sent: its headers flattened in insertion
// order (an array value is one header per element, as kafkajs encodes it).
function expectedHeaders(headers) {
  const flat = [];
  for (const [name, value] of Object.entries(headers ?? {})) {
    for (const one of Array.isArray(value) ? value : [value])
      flat.push(name, Buffer.isBuffer(one) ? one.toString('utf8') : one);
  }
  return flat;
}

// The `count` messages the plain-producer test sends, each distinct and independently
// checkable: text with non-ASCII characters, varied lengths, repeated header names,
// empty header values, some null keys and some null values (tombstones).
function plainMessages(count, partitions) {
  const messages = [];
  for (let i = 0; i < count; i++) {
    const headers = {seq: String(i), origin: 'kafkajs-test'};
    if (i % 5 === 0) headers.multi = ['first', `second-${i}`];
    if (i % 7 === 0) headers.empty = '';
    messages.push({
      partition: i % partitions,
      key: i % 97 === 13 ? null : `key-${i}-ü€`,
      value: i % 89 === 7 ? null : `value-${i}-${'x'.repeat(i % 53)}-ñ`,
      headers,
      timestamp: String(BASE_TS_MS + i * 3),
    });
  }
  return messages;
}

async function highWatermarks(admin, topic) {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(
      offsets.map(({partition, high, low}) => [partition, {high: Number(high), low: Number(low)}]));
}

function sorted(names) { return [...names].sort(); }

// --- the tests -------------------------------------------------------------------------

describe('kafkajs 2.2 against sluice', () => {
  let broker;
  let root;

  before(async () => {
    const binary = sluiceBinary();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-kafkajs-test-'));
    broker = new Sluice(binary, await freePort(), root);
    process.on('exit', () => broker?.kill());
    await broker.start();
  });

  after(async () => {
    const cleanExit = broker && !broker.running() && broker.exit?.code === 0 && !anyTestFailed;
    broker?.kill();
    if (broker?.running()) await broker.exited;
    if (cleanExit && !process.env.SLUICE_KEEP_DATA)
      fs.rmSync(root, {recursive: true, force: true});
    else if (root)
      console.error(`sluice data and log kept in ${root}`);
  });

  test(
      'admin: createTopics, listTopics, fetchTopicMetadata, existing topic, deleteTopics',
      async () => {
        await withEvidence(broker, async () => {
          const admin = kafkaFor(broker, 'kafkajs-admin').admin();
          await admin.connect();
          try {
            const topics = ['admin-a', 'admin-b'];
            const created = await admin.createTopics({
              topics: topics.map((topic) => ({topic, numPartitions: 3})),
              timeout: 10_000,
            });
            assert.equal(created, true, 'createTopics of new topics resolves to true');

            const listed = await admin.listTopics();
            for (const topic of topics)
              assert.ok(listed.includes(topic), `listTopics has ${topic}: ${listed}`);

            const {topics: metadata} = await admin.fetchTopicMetadata({topics});
            assert.deepEqual(sorted(metadata.map((t) => t.name)), sorted(topics));
            for (const t of metadata) {
              assert.deepEqual(
                  t.partitions.map((p) => p.partitionId).sort((a, b) => a - b),
                  [0, 1, 2],
                  `partitions of ${t.name}`,
              );
              for (const p of t.partitions) {
                assert.equal(p.partitionErrorCode, 0, `error code of ${t.name}[${p.partitionId}]`);
                assert.ok(p.leader >= 0, `${t.name}[${p.partitionId}] has a leader`);
                assert.deepEqual(p.replicas, [p.leader]);
                assert.deepEqual(p.isr, [p.leader]);
              }
            }

            // kafkajs turns a CreateTopics answer in which every topic failed with
            // TOPIC_ALREADY_EXISTS into `false` rather than an error (admin/index.js); any
            // other error code would reject instead.
            const again = await admin.createTopics(
                {topics: [{topic: 'admin-a', numPartitions: 3}], timeout: 10_000});
            assert.equal(again, false, 'createTopics of an existing topic resolves to false');
            // The existing topic keeps its partitions; a different count must not resize it.
            const resize = await admin.createTopics(
                {topics: [{topic: 'admin-a', numPartitions: 5}], timeout: 10_000});
            assert.equal(resize, false);
            const {topics: [aAfter]} = await admin.fetchTopicMetadata({topics: ['admin-a']});
            assert.equal(aAfter.partitions.length, 3);

            await admin.deleteTopics({topics: ['admin-b'], timeout: 10_000});
            const afterDelete = await admin.listTopics();
            assert.ok(!afterDelete.includes('admin-b'), `admin-b deleted: ${afterDelete}`);
            assert.ok(afterDelete.includes('admin-a'), `admin-a kept: ${afterDelete}`);

            // Deleting a topic that does not exist: the broker answers
            // UNKNOWN_TOPIC_OR_PARTITION, which kafkajs retries (the topic might still be
            // propagating) and then reports as "retries exceeded", caused by that error.
            await assert.rejects(
                admin.deleteTopics({topics: ['admin-never-created'], timeout: 10_000}), (err) => {
                  assert.equal(
                      err.name, 'KafkaJSNumberOfRetriesExceeded', `${err.name}: ${err.message}`);
                  assert.equal(
                      err.cause?.type, 'UNKNOWN_TOPIC_OR_PARTITION',
                      `cause: ${err.cause?.type}: ${err.cause?.message}`);
                  return true;
                });

            // A deleted name can be created again, empty.
            assert.equal(
                await admin.createTopics(
                    {topics: [{topic: 'admin-b', numPartitions: 3}], timeout: 10_000}),
                true);
            const offsets = await highWatermarks(admin, 'admin-b');
            assert.deepEqual([...offsets.keys()].sort(), [0, 1, 2]);
            for (const [partition, {high, low}] of offsets) {
              assert.equal(high, 0, `high watermark of fresh admin-b[${partition}]`);
              assert.equal(low, 0, `low watermark of fresh admin-b[${partition}]`);
            }
          } finally {
            await admin.disconnect();
          }
        });
      });

  test(
      'producer: 1,000 keyed messages with headers and timestamps, acks -1, read back with kcat',
      async () => {
        await withEvidence(broker, async () => {
          const topic = 'plain';
          const partitions = 3;
          const count = 1_000;
          const kafka = kafkaFor(broker, 'kafkajs-plain');
          const admin = kafka.admin();
          const producer = kafka.producer(
              {createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false});
          await admin.connect();
          await producer.connect();
          try {
            assert.equal(
                await admin.createTopics(
                    {topics: [{topic, numPartitions: partitions}], timeout: 10_000}),
                true);
            const messages = plainMessages(count, partitions);
            // Ten requests of 100 messages, each acknowledged before the next is sent, so the
            // order within a partition is the order of `messages`.
            const expectedBase = new Map();
            for (let start = 0; start < count; start += 100) {
              const results = await producer.send(
                  {topic, acks: -1, timeout: 10_000, messages: messages.slice(start, start + 100)});
              for (const r of results) {
                assert.equal(r.errorCode, 0, `produce result ${JSON.stringify(r)}`);
                if (!expectedBase.has(r.partition)) expectedBase.set(r.partition, []);
                expectedBase.get(r.partition).push(Number(r.baseOffset));
              }
            }

            const offsets = await highWatermarks(admin, topic);
            for (let p = 0; p < partitions; p++) {
              const sent = messages.filter((m) => m.partition === p);
              assert.deepEqual(
                  offsets.get(p), {high: sent.length, low: 0}, `watermarks of ${topic}[${p}]`);

              const read = kcatPartition(broker, topic, p);
              assert.equal(read.length, sent.length, `records in ${topic}[${p}]`);
              read.forEach((record, i) => {
                const m = sent[i];
                const where = `${topic}[${p}] offset ${record.offset}`;
                assert.equal(record.offset, i, `${where}: offsets are contiguous from 0`);
                assert.equal(record.key, m.key, `${where}: key`);
                assert.equal(record.value, m.value, `${where}: value`);
                assert.deepEqual(record.headers, expectedHeaders(m.headers), `${where}: headers`);
                assert.equal(record.tstype, 'create', `${where}: timestamp type`);
                assert.equal(record.ts, Number(m.timestamp), `${where}: timestamp`);
              });
              // Each produce response's base offset is where its first record of that
              // partition landed: the running count of earlier records in the partition.
              const perRequest = [];
              for (let start = 0, before = 0; start < count; start += 100) {
                perRequest.push(before);
                before +=
                    messages.slice(start, start + 100).filter((m) => m.partition === p).length;
              }
              assert.deepEqual(
                  expectedBase.get(p), perRequest, `base offsets answered for ${topic}[${p}]`);
              // A plain producer writes uncompressed batches without a producer id.
              for (const b of batchHeaders(broker.dataDir, topic, p)) {
                assert.equal(b.codec, 0, `codec at ${topic}[${p}] offset ${b.baseOffset}`);
                assert.equal(
                    b.producerId, -1n, `producer id at ${topic}[${p}] offset ${b.baseOffset}`);
              }
            }
          } finally {
            await producer.disconnect();
            await admin.disconnect();
          }
        });
      });

  test('idempotent producer: 1,000 messages, no duplicates, contiguous offsets', async () => {
    await withEvidence(broker, async () => {
      const topic = 'idempotent';
      const partitions = 3;
      const count = 1_000;
      const kafka = kafkaFor(broker, 'kafkajs-idempotent');
      const admin = kafka.admin();
      const producer = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: false,
      });
      await admin.connect();
      await producer.connect();
      try {
        assert.equal(
            await admin.createTopics(
                {topics: [{topic, numPartitions: partitions}], timeout: 10_000}),
            true);
        // Keys only: kafkajs's default (murmur2) partitioner spreads them; the test checks
        // that one key never lands in two partitions rather than predicting the hash.
        const messages = Array.from(
            {length: count}, (_, i) => ({key: `idem-key-${i % 250}`, value: `idem-value-${i}`}));
        // Several requests in flight from the caller's side: kafkajs must still put them
        // on the wire one at a time with consecutive sequence numbers.
        const sends = [];
        for (let start = 0; start < count; start += 50) {
          sends.push(producer.send(
              {topic, acks: -1, timeout: 10_000, messages: messages.slice(start, start + 50)}));
        }
        for (const results of await Promise.all(sends)) {
          for (const r of results)
            assert.equal(r.errorCode, 0, `produce result ${JSON.stringify(r)}`);
        }

        const offsets = await highWatermarks(admin, topic);
        const seen = new Map();  // value -> partition
        const keyPartition = new Map();
        let total = 0;
        for (let p = 0; p < partitions; p++) {
          const read = kcatPartition(broker, topic, p);
          assert.deepEqual(
              offsets.get(p), {high: read.length, low: 0}, `watermarks of ${topic}[${p}]`);
          assert.ok(read.length > 0, `the partitioner put some keys in ${topic}[${p}]`);
          read.forEach((record, i) => {
            assert.equal(record.offset, i, `${topic}[${p}]: offsets are contiguous from 0`);
            assert.ok(
                !seen.has(record.value),
                `duplicate ${record.value} in ${topic}[${p}] (also in ${seen.get(record.value)})`);
            seen.set(record.value, p);
            const known = keyPartition.get(record.key);
            assert.ok(
                known === undefined || known === p,
                `key ${record.key} in ${topic}[${known}] and [${p}]`);
            keyPartition.set(record.key, p);
          });
          // One send is one Produce request, hence one batch per partition: its records
          // of this partition are contiguous and in the order they were given.
          const seqOf = (r) => Number(r.value.slice('idem-value-'.length));
          const sendOf = (r) => Math.floor(seqOf(r) / 50);
          for (let i = 1; i < read.length; i++) {
            const [a, b] = [read[i - 1], read[i]];
            if (sendOf(a) !== sendOf(b)) {
              assert.ok(
                  !read.slice(0, i - 1).some((r) => sendOf(r) === sendOf(b)),
                  `send ${sendOf(b)} split in ${topic}[${p}]`);
            } else {
              assert.ok(seqOf(a) < seqOf(b), `${a.value} before ${b.value} in ${topic}[${p}]`);
            }
          }
          total += read.length;
        }
        assert.equal(total, count, 'every message stored exactly once');
        // Idempotence was really on: every stored batch carries the one producer id the
        // broker handed out (InitProducerId), and per partition the sequences run from 0
        // without gap or overlap, each batch's base offset matching its sequence.
        const producerIds = new Set();
        for (let p = 0; p < partitions; p++) {
          let nextSequence = 0;
          for (const b of batchHeaders(broker.dataDir, topic, p)) {
            const where = `batch at ${topic}[${p}] offset ${b.baseOffset}`;
            assert.ok(b.producerId >= 0n, `${where}: producer id ${b.producerId}`);
            assert.ok(b.producerEpoch >= 0, `${where}: producer epoch ${b.producerEpoch}`);
            producerIds.add(`${b.producerId}/${b.producerEpoch}`);
            assert.equal(b.baseSequence, nextSequence, `${where}: base sequence`);
            assert.equal(
                b.baseOffset, nextSequence,
                `${where}: base offset equals the sequence (one producer, from 0)`);
            assert.equal(b.lastOffsetDelta, b.count - 1, `${where}: last offset delta`);
            nextSequence += b.count;
          }
          assert.equal(nextSequence, offsets.get(p).high, `sequences cover ${topic}[${p}]`);
        }
        assert.equal(producerIds.size, 1, `producer id/epoch pairs: ${[...producerIds]}`);
        assert.deepEqual(sorted(seen.keys()), sorted(messages.map((m) => m.value)));
      } finally {
        await producer.disconnect();
        await admin.disconnect();
      }
    });
  });

  test('producer with GZIP compression, read back with kcat', async () => {
    await withEvidence(broker, async () => {
      const topic = 'gzip';
      const partitions = 3;
      const count = 600;
      const kafka = kafkaFor(broker, 'kafkajs-gzip');
      const admin = kafka.admin();
      const producer = kafka.producer(
          {createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false});
      await admin.connect();
      await producer.connect();
      try {
        assert.equal(
            await admin.createTopics(
                {topics: [{topic, numPartitions: partitions}], timeout: 10_000}),
            true);
        // Highly compressible values, so the stored log must be much smaller than the raw
        // bytes if the broker kept the batches compressed.
        const messages =
            Array.from({length: count}, (_, i) => ({
                                          partition: i % partitions,
                                          key: `gz-key-${i}`,
                                          value: `gz-value-${i}-${'abcdefgh'.repeat(64)}`,
                                          headers: {codec: 'gzip', seq: String(i)},
                                          timestamp: String(BASE_TS_MS + 500_000 + i),
                                        }));
        for (let start = 0; start < count; start += 200) {
          const results = await producer.send({
            topic,
            acks: -1,
            timeout: 10_000,
            compression: CompressionTypes.GZIP,
            messages: messages.slice(start, start + 200),
          });
          for (const r of results)
            assert.equal(r.errorCode, 0, `produce result ${JSON.stringify(r)}`);
        }

        const offsets = await highWatermarks(admin, topic);
        for (let p = 0; p < partitions; p++) {
          const sent = messages.filter((m) => m.partition === p);
          assert.deepEqual(
              offsets.get(p), {high: sent.length, low: 0}, `watermarks of ${topic}[${p}]`);
          const read = kcatPartition(broker, topic, p);
          assert.equal(read.length, sent.length, `records in ${topic}[${p}]`);
          read.forEach((record, i) => {
            const m = sent[i];
            const where = `${topic}[${p}] offset ${record.offset}`;
            assert.equal(record.offset, i, `${where}: offset`);
            assert.equal(record.key, m.key, `${where}: key`);
            assert.equal(record.value, m.value, `${where}: value`);
            assert.deepEqual(record.headers, expectedHeaders(m.headers), `${where}: headers`);
            assert.equal(record.ts, Number(m.timestamp), `${where}: timestamp`);
          });
        }

        // The broker stores what the producer sent: the topic's files on disk hold far
        // fewer bytes than the values alone would need uncompressed.
        const rawValueBytes = messages.reduce((sum, m) => sum + Buffer.byteLength(m.value), 0);
        const logBytes = diskBytesOfTopic(broker.dataDir, topic);
        assert.ok(logBytes > 0, `found the log files of ${topic} under ${broker.dataDir}`);
        assert.ok(
            logBytes < rawValueBytes / 4,
            `stored ${logBytes} bytes for ${rawValueBytes} bytes of values: not compressed?`);
        for (let p = 0; p < partitions; p++) {
          const batches = batchHeaders(broker.dataDir, topic, p);
          assert.ok(batches.length > 0);
          for (const b of batches)
            assert.equal(
                b.codec, 1,
                `codec of the batch at ${topic}[${p}] offset ${b.baseOffset} (1 = gzip)`);
          assert.equal(
              batches.reduce((n, b) => n + b.count, 0), offsets.get(p).high,
              `records in the batches of ${topic}[${p}]`);
        }
      } finally {
        await producer.disconnect();
        await admin.disconnect();
      }
    });
  });

  test('admin: fetchTopicOffsets watermarks follow produced counts', async () => {
    await withEvidence(broker, async () => {
      const topic = 'watermarks';
      const kafka = kafkaFor(broker, 'kafkajs-watermarks');
      const admin = kafka.admin();
      const producer = kafka.producer(
          {createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false});
      await admin.connect();
      await producer.connect();
      try {
        assert.equal(
            await admin.createTopics({topics: [{topic, numPartitions: 3}], timeout: 10_000}), true);
        // Record i of a partition carries time T + 10 i, so the offset for a time is
        // derivable: the first record at or after it.
        const timeBase = BASE_TS_MS + 1_000_000;
        const perPartition = [7, 0, 19];
        for (const [partition, n] of perPartition.entries()) {
          if (n === 0) continue;
          const messages = Array.from({length: n}, (_, i) => ({
                                                     partition,
                                                     value: `w-${partition}-${i}`,
                                                     timestamp: String(timeBase + 10 * i),
                                                   }));
          await producer.send({topic, acks: 1, messages});
        }
        const offsets = await highWatermarks(admin, topic);
        perPartition.forEach((n, partition) => {
          assert.deepEqual(
              offsets.get(partition), {high: n, low: 0}, `watermarks of ${topic}[${partition}]`);
        });

        // ListOffsets by timestamp. kafkajs replaces "no such record" (-1) by the high
        // watermark, so an empty partition and a time after every record give the high
        // watermark; a time between records 4 and 5 gives 5.
        const cases = [
          {time: 0, expect: () => 0},
          {time: timeBase + 45, expect: (n) => (n > 5 ? 5 : n)},
          {time: timeBase + 10 * 1_000, expect: (n) => n},
        ];
        for (const {time, expect} of cases) {
          const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, time);
          assert.deepEqual(
              byTime.map(({partition, offset}) => [partition, Number(offset)])
                  .sort((a, b) => a[0] - b[0]),
              perPartition.map((n, partition) => [partition, expect(n)]),
              `offsets for time ${time} of ${topic}`,
          );
        }
      } finally {
        await producer.disconnect();
        await admin.disconnect();
      }
    });
  });

  test('consumer group: consumes everything, commits, a restarted consumer resumes', async () => {
    await withEvidence(broker, async () => {
      const topic = 'kjs-group';
      const groupId = 'kjs-group-1';
      const kafka = kafkaFor(broker, 'kafkajs-group');
      const admin = kafka.admin();
      const producer = kafka.producer(
          {createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false});
      await admin.connect();
      await producer.connect();
      // Runs one consumer of the group until `want` messages arrived (and a little longer,
      // so that extra deliveries would be seen), then disconnects it (commit, leave).
      const consumeUntil = async (want) => {
        const consumer = kafka.consumer({groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000});
        const got = [];
        await consumer.connect();
        try {
          await consumer.subscribe({topics: [topic], fromBeginning: true});
          let resolveDone;
          const done = new Promise((resolve) => { resolveDone = resolve; });
          await consumer.run({
            eachMessage: async ({partition, message}) => {
              got.push({partition, offset: Number(message.offset), value: message.value.toString()});
              if (got.length >= want) resolveDone();
            },
          });
          let timer;
          const timeout = new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`only ${got.length}/${want} consumed`)), 60_000);
          });
          await Promise.race([done, timeout]).finally(() => clearTimeout(timer));
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        } finally {
          await consumer.disconnect();
        }
        return got;
      };
      try {
        assert.equal(
            await admin.createTopics({topics: [{topic, numPartitions: 3}], timeout: 10_000}), true);
        const batch = (tag, n) => [0, 1, 2].map((partition) => ({
          topic,
          messages: Array.from({length: n}, (_, i) => ({partition, value: `${tag}-${partition}-${i}`})),
        }));
        await producer.sendBatch({acks: -1, topicMessages: batch('a', 100)});

        const first = await consumeUntil(300);
        assert.equal(first.length, 300, 'messages delivered to the first consumer');
        const firstKeys = new Set(first.map(({partition, offset}) => `${partition}/${offset}`));
        assert.equal(firstKeys.size, 300, 'no duplicates in the first run');
        for (const {partition, offset, value} of first)
          assert.equal(value, `a-${partition}-${offset}`);

        const committed = await admin.fetchOffsets({groupId, topics: [topic]});
        assert.deepEqual(
            committed[0].partitions.map(({partition, offset}) => [partition, Number(offset)])
                .sort((a, b) => a[0] - b[0]),
            [[0, 100], [1, 100], [2, 100]], 'committed offsets after the first consumer');

        await producer.sendBatch({acks: -1, topicMessages: batch('b', 10)});
        const second = await consumeUntil(30);
        assert.deepEqual(
            second.map(({partition, offset, value}) => `${partition}/${offset}/${value}`).sort(),
            [0, 1, 2].flatMap((p) => Array.from({length: 10}, (_, i) => `${p}/${100 + i}/b-${p}-${i}`))
                .sort(),
            'the restarted consumer resumes from the commit');
      } finally {
        await producer.disconnect();
        await admin.disconnect();
      }
    });
  });

  test('sluice exits 0 on SIGTERM', async () => {
    assert.ok(broker.running(), `sluice still running before SIGTERM\n${broker.logTail()}`);
    const {code, signal} = await broker.stop('SIGTERM');
    assert.equal(signal, null, `sluice killed by ${signal}\n${broker.logTail()}`);
    assert.equal(code, 0, `sluice exit code on SIGTERM\n${broker.logTail()}`);
  });
});

// The RecordBatch v2 headers of one partition's segment files (sluice keeps Kafka's
// on-disk layout: a directory TOPIC-PARTITION of *.log segments holding the batches as
// sent), read with the field layout of the protocol's implementation notes. Only the
// fixed header is decoded: enough to see the codec, the producer id and the sequences
// the client put on the wire.
const BATCH_HEADER_BYTES = 61;
const BATCHES_MAX = 100_000;

function batchHeaders(dataDir, topic, partition) {
  const dir = path.join(dataDir, `${topic}-${partition}`);
  const segments = fs.readdirSync(dir).filter((name) => name.endsWith('.log')).sort();
  assert.ok(segments.length > 0, `no segment files in ${dir}`);
  const batches = [];
  for (const name of segments) {
    const bytes = fs.readFileSync(path.join(dir, name));
    let at = 0;
    while (at + BATCH_HEADER_BYTES <= bytes.length && batches.length < BATCHES_MAX) {
      const batchLength = bytes.readInt32BE(at + 8);
      assert.ok(
          batchLength >= BATCH_HEADER_BYTES - 12,
          `${dir}/${name}: batch length ${batchLength} at byte ${at}`);
      assert.equal(bytes.readInt8(at + 16), 2, `${dir}/${name}: magic at byte ${at}`);
      batches.push({
        baseOffset: Number(bytes.readBigInt64BE(at)),
        codec: bytes.readInt16BE(at + 21) & 0x7,
        lastOffsetDelta: bytes.readInt32BE(at + 23),
        producerId: bytes.readBigInt64BE(at + 43),
        producerEpoch: bytes.readInt16BE(at + 51),
        baseSequence: bytes.readInt32BE(at + 53),
        count: bytes.readInt32BE(at + 57),
      });
      at += 12 + batchLength;
    }
    assert.equal(at, bytes.length, `${dir}/${name}: batches end exactly at the end of the file`);
  }
  return batches;
}

// The bytes of every file in the data directory whose path names `topic` (the partition
// directories are named after their topic); 0 when there is none.
function diskBytesOfTopic(dataDir, topic) {
  let total = 0;
  const walk = (dir, inTopic) => {
    for (const entry of fs.readdirSync(dir, {withFileTypes: true})) {
      const full = path.join(dir, entry.name);
      const matches = inTopic || entry.name === topic || entry.name.startsWith(`${topic}-`);
      if (entry.isDirectory())
        walk(full, matches);
      else if (
          matches && entry.isFile() && (entry.name.endsWith('.log') || !entry.name.includes('.')))
        total += fs.statSync(full).size;
    }
  };
  walk(dataDir, false);
  return total;
}
