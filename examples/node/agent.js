#!/usr/bin/env node
// One agent turn against context-memory, in JavaScript on @grpc/grpc-js: upsert the customer,
// open their conversation, append the turn, fetch the context, store a memory and search for it,
// then hand the conversation to a human (human-console.js takes it from the queue).
// Every answer is checked; the process exits non-zero on the first wrong one.
//
//   npm ci && node agent.js        # CONTEXT_MEMORY_TARGET=host:port (default localhost:50051)
//                                  # CM_API_KEY=cm_... when the server requires keys
//
// The stubs are built at run time by @grpc/proto-loader from the repository's proto/ directory
// (CONTEXT_MEMORY_PROTO_DIR overrides it), so they always match the server's .proto files.
'use strict';

const crypto = require('node:crypto');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const TARGET = process.env.CONTEXT_MEMORY_TARGET || 'localhost:50051';
const PROTO_DIR = process.env.CONTEXT_MEMORY_PROTO_DIR || path.resolve(__dirname, '../../proto/src/main/proto');
// Must equal the server's CONTEXT_MEMORY_EMBEDDING_DIMENSION.
const DIMENSION = Number(process.env.CONTEXT_MEMORY_EMBEDDING_DIMENSION || 768);
const DEADLINE_MS = 10_000;
// The API key (`scripts/run keys create ...`), sent as `authorization: Bearer <key>` with every
// call; none for a local server that runs with CONTEXT_MEMORY_AUTH=none. Per-call metadata
// rather than call credentials, which grpc-js sends only over TLS.
const auth = new grpc.Metadata();
if (process.env.CM_API_KEY) {
  auth.set('authorization', `Bearer ${process.env.CM_API_KEY}`);
}

// Field names in lowerCamelCase, int64 as strings, enums as their names, unset fields as defaults.
const definition = protoLoader.loadSync(
  ['contextmemory/v1/customer.proto', 'contextmemory/v1/conversation.proto', 'contextmemory/v1/memory.proto'],
  { includeDirs: [PROTO_DIR], keepCase: false, longs: String, enums: String, defaults: true, oneofs: true },
);
const v1 = grpc.loadPackageDefinition(definition).contextmemory.v1;

// Retry the calls that are safe to repeat on every status that allows a retry (docs/operations.md,
// "Retries"): ABORTED and RESOURCE_EXHAUSTED mean nothing was done; UNAVAILABLE and CANCELLED leave
// the outcome unknown, which is fine here because every call below is a read, an upsert or an
// append that carries an idempotency key, so a retry can never store anything twice.
const retried = (service, methods) => methods.map((method) => ({ service: `contextmemory.v1.${service}`, method }));
const serviceConfig = {
  loadBalancingConfig: [{ round_robin: {} }],
  methodConfig: [{
    name: [
      ...retried('CustomerService', ['UpsertCustomer', 'GetCustomer']),
      ...retried('ConversationService', ['GetOrCreateOpenConversation', 'AppendMessage', 'ListMessages',
        'RequestHandoff', 'GetConversation']),
      ...retried('MemoryService', ['UpsertMemory', 'SearchMemories', 'FetchContext']),
    ],
    retryPolicy: {
      maxAttempts: 4, initialBackoff: '0.1s', maxBackoff: '2s', backoffMultiplier: 2,
      retryableStatusCodes: ['UNAVAILABLE', 'CANCELLED', 'ABORTED', 'RESOURCE_EXHAUSTED'],
    },
  }],
};
const options = { 'grpc.service_config': JSON.stringify(serviceConfig), 'grpc.keepalive_time_ms': 30_000 };
const credentials = grpc.credentials.createInsecure();
const customers = new v1.CustomerService(TARGET, credentials, options);
const conversations = new v1.ConversationService(TARGET, credentials, options);
const memories = new v1.MemoryService(TARGET, credentials, options);

/** Calls a unary RPC with a deadline; resolves with the response. */
function call(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, auth, { deadline: Date.now() + DEADLINE_MS }, (err, response) => {
      if (err) {
        reject(new Error(`${method} failed: ${grpc.status[err.code]}: ${err.details}`));
      } else {
        resolve(response);
      }
    });
  });
}

function expect(condition, what, actual) {
  if (!condition) {
    throw new Error(`wrong answer: expected ${what}, got ${JSON.stringify(actual)}`);
  }
}

/**
 * A stand-in for a real embedding model, so the example needs no model: each word adds +-1 at a
 * position chosen by its SHA-256, and the vector is scaled to length 1. Texts that share words
 * point the same way. The Python example computes the very same vectors.
 */
function embed(text) {
  const v = new Array(DIMENSION).fill(0);
  for (const word of text.toLowerCase().match(/[a-z0-9]+/g) || []) {
    const h = crypto.createHash('sha256').update(word, 'utf8').digest();
    v[h.readUInt32BE(0) % DIMENSION] += h[4] % 2 === 0 ? 1 : -1;
  }
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
  return v.map((x) => x / norm);
}

async function main() {
  // 1. The person writes in by SMS: upsert them by phone number. A fresh number per run.
  const phone = `+1555${2000000 + crypto.randomInt(7999999)}`;
  const upsert = { contactKey: { phone }, customer: { displayName: 'Ada Lovelace' } };
  const first = await call(customers, 'upsertCustomer', upsert);
  expect(first.created === true && first.customer.phone === phone, `a new customer with phone ${phone}`, first);
  const again = await call(customers, 'upsertCustomer', upsert);
  expect(again.created === false && again.customer.id === first.customer.id, 'the same customer again', again);
  const customer = first.customer;
  console.log(`customer ${customer.id} (${customer.displayName}, ${customer.phone})`);

  // 2. Open (or find) the conversation for this thread.
  const open = { customerId: customer.id, channel: 'CHANNEL_SMS', threadKey: phone };
  const opened = await call(conversations, 'getOrCreateOpenConversation', open);
  expect(opened.created === true && opened.conversation.status === 'CONVERSATION_STATUS_OPEN', 'a new open conversation', opened);
  const reopened = await call(conversations, 'getOrCreateOpenConversation', open);
  expect(reopened.conversation.id === opened.conversation.id && reopened.created === false, 'the same conversation', reopened);
  const conversation = opened.conversation;
  console.log(`conversation ${conversation.id}`);

  // 3. Append the turn: the customer's message, then the agent's reply. The idempotency key makes
  //    a retry (ours, or gRPC's) return the stored message instead of storing it twice.
  const userTurn = {
    conversationId: conversation.id,
    message: {
      role: 'MESSAGE_ROLE_USER',
      content: 'Hi! Please text me rather than call, I am at work all day.',
      idempotencyKey: crypto.randomUUID(),
    },
  };
  const stored = await call(conversations, 'appendMessage', userTurn);
  expect(stored.replayed === false && stored.message.sequence === '1', 'message 1, newly stored', stored);
  const replay = await call(conversations, 'appendMessage', userTurn);
  expect(replay.replayed === true && replay.message.id === stored.message.id, 'a replay of message 1', replay);
  const reply = await call(conversations, 'appendMessage', {
    conversationId: conversation.id,
    message: { role: 'MESSAGE_ROLE_ASSISTANT', content: 'Noted, I will text you.', idempotencyKey: crypto.randomUUID() },
  });
  expect(reply.message.sequence === '2', 'message 2', reply);
  console.log(`appended messages ${stored.message.id} and ${reply.message.id}`);

  // 4. Before answering next time, fetch the context in one call.
  const context = await call(memories, 'fetchContext', { customerId: customer.id });
  expect(context.customer.id === customer.id, 'the customer', context.customer);
  expect(context.conversation && context.conversation.id === conversation.id, 'the open conversation', context.conversation);
  expect(JSON.stringify(context.recentMessages.map((m) => m.content))
    === JSON.stringify([userTurn.message.content, 'Noted, I will text you.']), 'both messages, oldest first',
  context.recentMessages);
  console.log(`context: ${context.recentMessages.length} recent messages, ${context.memories.length} memories`);

  // 5. Remember what was learned, under a key so a later upsert replaces it.
  const note = 'Prefers text messages over phone calls';
  const memory = await call(memories, 'upsertMemory', {
    customerId: customer.id,
    memory: {
      key: 'preferred_contact_channel', kind: 'MEMORY_KIND_PREFERENCE', content: note,
      embedding: embed(note), source: 'example-agent-node', conversationId: conversation.id,
    },
  });
  expect(memory.created === true && memory.memory.hasEmbedding === true, 'a new memory with an embedding', memory);
  console.log(`memory ${memory.memory.id}: ${memory.memory.content}`);

  // 6. Search it by words and by meaning (hybrid).
  const query = 'text messages';
  const found = await call(memories, 'searchMemories', {
    customerId: customer.id, queryText: query, queryEmbedding: embed(query), topK: 5,
  });
  expect(found.mode === 'MEMORY_SEARCH_MODE_HYBRID', 'hybrid search', found.mode);
  const hit = found.hits[0];
  expect(found.hits.length === 1 && hit.memory.id === memory.memory.id && hit.vectorRank === 1 && hit.textRank === 1,
    'the memory, first in both lists', found.hits);
  console.log(`search '${query}': ${hit.memory.content} (score ${hit.score.toFixed(4)})`);

  // The next turn's context now ranks the memory, and says why.
  const next = await call(memories, 'fetchContext', { customerId: customer.id, queryText: query, queryEmbedding: embed(query) });
  expect(next.memories.length === 1 && next.memories[0].memory.id === memory.memory.id
    && next.memories[0].breakdown.relevance > 0, 'the memory, relevant to the query', next.memories);
  console.log(`context memory score ${next.memories[0].breakdown.finalScore.toFixed(3)}`);

  // 7. The customer asks for a person: hand the conversation to a human agent. The request_id
  //    makes a retry return this handoff instead of failing on the one it already made.
  const handoff = await call(conversations, 'requestHandoff', {
    conversationId: conversation.id, reason: 'customer asks for a person', priority: 50,
    requestId: crypto.randomUUID(),
  });
  expect(handoff.handoff.state === 'HANDOFF_STATE_REQUESTED' && handoff.replayed === false, 'a requested handoff', handoff);
  // Until a human hands it back, the AI stays silent in this conversation.
  const now = await call(conversations, 'getConversation', { conversationId: conversation.id });
  expect(now.conversation.handoffState === 'CONVERSATION_HANDOFF_STATE_REQUESTED', 'the handoff state REQUESTED',
    now.conversation.handoffState);
  console.log(`handoff ${handoff.handoff.id} requested for conversation ${conversation.id}`);
}

main().then(
  () => {
    console.log('node example: every answer was right');
    for (const c of [customers, conversations, memories]) c.close();
  },
  (err) => {
    console.error(`node example: ${err.message}`);
    process.exit(1);
  },
);
