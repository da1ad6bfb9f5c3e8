#!/usr/bin/env node
// A tiny grpcurl stand-in for the context-memory API, for demos on machines without grpcurl:
// one call, its request as JSON, its response printed as JSON. Reflection-free: the stubs come
// from the repository's .proto files (@grpc/proto-loader), not from the server's reflection
// service. A server-streaming method prints one line per response as it arrives, prefixed with
// the local time, until the stream ends or the process is stopped.
//
//   node cm-call.js ConversationService/RequestHandoff '{"conversationId":"...","priority":50}'
//   node cm-call.js ConversationService/WatchConversations '{"handoffQueue":true}'
//
// CONTEXT_MEMORY_TARGET=host:port (default localhost:50051), CM_API_KEY=cm_... (sent as
// `authorization: Bearer`). Field names are lowerCamelCase, enums their names, int64 strings,
// Timestamps RFC 3339. A failed call prints its status, message and ErrorInfo, and exits 1.
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const TARGET = process.env.CONTEXT_MEMORY_TARGET || 'localhost:50051';
const PROTO_DIR = process.env.CONTEXT_MEMORY_PROTO_DIR || path.resolve(__dirname, '../../proto/src/main/proto');
const [method, json] = process.argv.slice(2);
if (!method || !method.includes('/')) {
  console.error('usage: node cm-call.js <Service>/<Method> [<request JSON>]');
  process.exit(2);
}
const [serviceName, methodName] = method.split('/');

const definition = protoLoader.loadSync(
  ['contextmemory/v1/customer.proto', 'contextmemory/v1/conversation.proto', 'contextmemory/v1/memory.proto',
    'contextmemory/v1/admin.proto'],
  { includeDirs: [PROTO_DIR], keepCase: false, longs: String, enums: String, defaults: false, oneofs: true },
);
const Service = grpc.loadPackageDefinition(definition).contextmemory.v1[serviceName];
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
const auth = new grpc.Metadata();
if (process.env.CM_API_KEY) {
  auth.set('authorization', `Bearer ${process.env.CM_API_KEY}`);
}
const request = json ? JSON.parse(json) : {};

// Timestamps, Durations and Structs as grpcurl prints them (proto-loader gives their fields).
function plain(v) {
  if (v.kind === 'structValue') return Object.fromEntries(Object.entries(v.structValue.fields || {}).map(([k, x]) => [k, plain(x)]));
  if (v.kind === 'listValue') return (v.listValue.values || []).map(plain);
  return v.kind === 'nullValue' ? null : v[v.kind];
}
function readable(key, value) {
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
