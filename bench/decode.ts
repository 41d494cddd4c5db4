// CPU per Pod of reading a List page: the selective protobuf reader against JSON.parse, both projected, on the captured fixtures.
//   node dist/bench/decode.js [--iterations 40000]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { POD_FIELDS, projectPod } from '../src/collectors/projections.js';
import { decodeListPage, PROTOBUF } from '../src/kube/wire.js';
import { ROOT } from './cluster.js';

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '40000' } } });
const iterations = Number(values.iterations);
const pb = readFileSync(join(ROOT, 'test/fixtures/wire/pods.list.pb'));
const json = readFileSync(join(ROOT, 'test/fixtures/wire/pods.list.json'));
const pods = decodeListPage(pb, PROTOBUF, POD_FIELDS).items.length;

function cpuPerPodMicros(read: () => unknown): number {
  for (let i = 0; i < 2000; i++) read();
  const t0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) read();
  const c = process.cpuUsage(t0);
  return (c.user + c.system) / iterations / pods;
}

const protobuf = cpuPerPodMicros(() => decodeListPage(pb, PROTOBUF, POD_FIELDS).items.map(projectPod));
const whole = cpuPerPodMicros(() => decodeListPage(json, 'application/json', undefined).items.map(projectPod));
console.log(`protobuf, selective: ${protobuf.toFixed(2)} µs CPU per Pod, ${Math.round(pb.length / pods)} bytes per Pod`);
console.log(`JSON.parse, whole:   ${whole.toFixed(2)} µs CPU per Pod, ${Math.round(json.length / pods)} bytes per Pod`);
