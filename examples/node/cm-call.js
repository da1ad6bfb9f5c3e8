#!/usr/bin/env node
// A tiny grpcurl stand-in for the context-memory API, for demos on machines without grpcurl (Debian
// 12 packages none): one call, its request as JSON, its response printed as JSON. Like grpcurl it
// learns the API from the server's reflection service (grpc.reflection.v1, through
// grpc-js-reflection-client), so it needs no .proto files; CM_CALL_PROTO_FILES=1 loads them from
// the repository instead (@grpc/proto-loader). A server-streaming method prints one line per
// response as it arrives, prefixed with the local time, until the stream ends or the process is
// stopped.
//
//   node cm-call.js ConversationService/RequestHandoff '{"conversation_id":"...","priority":50}'
//   node cm-call.js ConversationService/WatchConversations '{"handoff_queue":true}'
//
// CONTEXT_MEMORY_TARGET=host:port (default localhost:50051), CM_API_KEY=cm_... (sent as
// `authorization: Bearer`, reflection included). Field names are the .proto's (snake_case, as the
// reflected descriptors name them; lowerCamelCase with CM_CALL_PROTO_FILES=1), enums their names,
// int64 strings, Timestamps RFC 3339. A failed call prints its status, message and
// ErrorInfo, and exits 1.
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const { GrpcReflection } = require('grpc-js-reflection-client');

const TARGET = process.env.CONTEXT_MEMORY_TARGET || 'localhost:50051';
const PROTO_DIR = process.env.CONTEXT_MEMORY_PROTO_DIR || path.resolve(__dirname, '../../proto/src/main/proto');
const LOAD_OPTIONS = { keepCase: false, longs: String, enums: String, defaults: false, oneofs: true };
const [method, json] = process.argv.slice(2);
if (!method || !method.includes('/')) {
  console.error('usage: node cm-call.js <Service>/<Method> [<request JSON>]');
  process.exit(2);
}
const [serviceName, methodName] = method.split('/');
const auth = new grpc.Metadata();
if (process.env.CM_API_KEY) {
  auth.set('authorization', `Bearer ${process.env.CM_API_KEY}`);
}

/** The service's stub constructor, from the server's reflection service or the .proto files. */
async function loadService() {
  const symbol = `contextmemory.v1.${serviceName}`;
  if (process.env.CM_CALL_PROTO_FILES === '1') {
    const definition = protoLoader.loadSync(
      ['contextmemory/v1/customer.proto', 'contextmemory/v1/conversation.proto', 'contextmemory/v1/memory.proto',
        'contextmemory/v1/admin.proto'],
      { includeDirs: [PROTO_DIR], ...LOAD_OPTIONS },
    );
    return grpc.loadPackageDefinition(definition).contextmemory.v1[serviceName];
  }
  const reflection = new GrpcReflection(TARGET, grpc.credentials.createInsecure(), {}, 'v1');
  const services = await reflection.listServices('', auth);
  if (!services.includes(symbol)) {
    return undefined;
  }
  const descriptor = await reflection.getDescriptorBySymbol(symbol, auth);
  return descriptor.getPackageObject(LOAD_OPTIONS).contextmemory.v1[serviceName];
}

// Timestamps, Durations and Structs as grpcurl prints them (proto-loader gives their fields).
function plain(v) {
  if (v.kind === 'structValue') return Object.fromEntries(Object.entries(v.structValue.fields || {}).map(([k, x]) => [k, plain(x)]));
  if (v.kind === 'listValue') return (v.listValue.values || []).map(plain);
  return v.kind === 'nullValue' ? null : v[v.kind];
}
// Reflected descriptors keep the .proto's names: a Struct's map arrives as [{key, value}] and a
// Value's kind as `string_value`, ...; both are turned into the plain JSON grpcurl prints.
function reflectedPlain(v) {
  if (v.kind === 'struct_value') return reflectedStruct(v.struct_value);
  if (v.kind === 'list_value') return (v.list_value.values || []).map(reflectedPlain);
  return v.kind === 'null_value' ? null : v[v.kind];
}
function reflectedStruct(struct) {
  return Object.fromEntries((struct.fields || []).map((e) => [e.key, reflectedPlain(e.value)]));
}
function readable(key, value) {
  if (value && typeof value === 'object' && Array.isArray(value.fields) && Object.keys(value).length === 1
      && value.fields.every((e) => e && typeof e === 'object' && 'key' in e && e.value && 'kind' in e.value)) {
    return reflectedStruct(value);
  }
  if (value && typeof value === 'object' && Object.keys(value).length === 1 && value.fields
      && Object.values(value.fields).every((f) => f && typeof f === 'object' && 'kind' in f)) {
    return plain({ kind: 'structValue', structValue: value });
  }
  if (value && typeof value === 'object' && 'seconds' in value && 'nanos' in value && Object.keys(value).length === 2) {
    const ms = Number(value.seconds) * 1000 + Math.floor(value.nanos / 1e6);
    return /time$/i.test(key) ? new Date(ms).toISOString() : `${(ms / 1000).toFixed(3)}s`;
  }
  return value;
}
const show = (message) => JSON.stringify(message, readable);

const details = protobuf.Root.fromJSON({
  nested: {
    Status: { fields: { details: { rule: 'repeated', type: 'Any', id: 3 } } },
    Any: { fields: { typeUrl: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
    ErrorInfo: { fields: { reason: { type: 'string', id: 1 }, domain: { type: 'string', id: 2 },
      metadata: { keyType: 'string', type: 'string', id: 3 } } },
  },
});

function fail(err) {
  let info = '';
  const bin = err.metadata && err.metadata.get('grpc-status-details-bin')[0];
  if (bin) {
    const any = details.lookupType('Status').decode(bin).details
      .find((d) => d.typeUrl.endsWith('/google.rpc.ErrorInfo'));
    if (any) {
      const e = details.lookupType('ErrorInfo').decode(any.value);
      info = ` ErrorInfo{reason: ${e.reason}, metadata: ${JSON.stringify(e.metadata)}}`;
    }
  }
  console.log(`ERROR: ${grpc.status[err.code]}: ${err.details}${info}`);
  process.exitCode = 1;
}

async function main() {
  const Service = await loadService();
  if (!Service) {
    console.error(`no service contextmemory.v1.${serviceName}`);
    process.exit(2);
  }
  const rpc = Service.service[methodName];
  if (!rpc) {
    console.error(`no method ${methodName} in ${serviceName}`);
    process.exit(2);
  }
  const client = new Service(TARGET, grpc.credentials.createInsecure());
  const request = json ? JSON.parse(json) : {};
  const name = rpc.originalName; // the stub's lowerCamelCase method
  if (rpc.responseStream) {
    const stream = client[name](request, auth);
    stream.on('data', (r) => console.log(`${new Date().toISOString().slice(11, 23)} ${show(r)}`));
    stream.on('error', (err) => {
      if (err.code !== grpc.status.CANCELLED) {
        fail(err);
      }
      client.close();
    });
    stream.on('end', () => client.close());
    for (const signal of ['SIGINT', 'SIGTERM']) {
      process.on(signal, () => stream.cancel());
    }
  } else {
    client[name](request, auth, { deadline: Date.now() + 10_000 }, (err, response) => {
      if (err) {
        fail(err);
      } else {
        console.log(JSON.stringify(response, readable, 2));
      }
      client.close();
    });
  }
}

main().catch((err) => {
  if (err && typeof err.code === 'number') {
    fail(err);
  } else {
    console.error(`cm-call: ${err && err.message ? err.message : err}`);
    process.exitCode = 1;
  }
});
