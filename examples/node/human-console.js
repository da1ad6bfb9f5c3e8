#!/usr/bin/env node
// A tiny human agent's console against context-memory: watch the handoff queue, claim the first
// waiting conversation, read it, reply as a human, and hand it back to the AI. Every answer is
// checked; the process exits non-zero on the first wrong one, or when nothing arrives in time.
//
//   node human-console.js     # CONTEXT_MEMORY_TARGET=host:port (default localhost:50051)
//                             # CM_API_KEY=cm_... (scopes read,write) when the server requires keys
//                             # CM_HANDOFF_CONVERSATION=<id>: take only that conversation's handoff
//                             # CM_CONSOLE_WAIT_MS: how long to watch the queue (default 10000)
//
// It polls ListHandoffQueue once a second; a server with the WatchConversations stream can push
// the queue instead.
'use strict';

const crypto = require('node:crypto');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const TARGET = process.env.CONTEXT_MEMORY_TARGET || 'localhost:50051';
const PROTO_DIR = process.env.CONTEXT_MEMORY_PROTO_DIR || path.resolve(__dirname, '../../proto/src/main/proto');
const ONLY = process.env.CM_HANDOFF_CONVERSATION || '';
const WAIT_MS = Number(process.env.CM_CONSOLE_WAIT_MS || 10_000);
const POLL_MS = 1_000;
const DEADLINE_MS = 10_000;
// The human agent's id in the host system (here a random one per run).
const ME = `console-${crypto.randomUUID().slice(0, 8)}`;
const auth = new grpc.Metadata();
if (process.env.CM_API_KEY) {
  auth.set('authorization', `Bearer ${process.env.CM_API_KEY}`);
}

const definition = protoLoader.loadSync(['contextmemory/v1/conversation.proto'],
  { includeDirs: [PROTO_DIR], keepCase: false, longs: String, enums: String, defaults: true, oneofs: true });
const v1 = grpc.loadPackageDefinition(definition).contextmemory.v1;
// Every call here is safe to repeat: reads, the handoff transitions (a repeat finds the handoff
// already where it would take it and replays), and an append with an idempotency key.
const serviceConfig = {
  methodConfig: [{
    name: ['ListHandoffQueue', 'AcceptHandoff', 'CompleteHandoff', 'ListMessages', 'AppendMessage', 'ListHandoffs',
      'GetConversation'].map((method) => ({ service: 'contextmemory.v1.ConversationService', method })),
    retryPolicy: {
      maxAttempts: 4, initialBackoff: '0.1s', maxBackoff: '2s', backoffMultiplier: 2,
      retryableStatusCodes: ['UNAVAILABLE', 'CANCELLED', 'ABORTED', 'RESOURCE_EXHAUSTED'],
    },
  }],
};
const conversations = new v1.ConversationService(TARGET, grpc.credentials.createInsecure(),
  { 'grpc.service_config': JSON.stringify(serviceConfig) });

function call(method, request) {
  return new Promise((resolve, reject) => {
    conversations[method](request, auth, { deadline: Date.now() + DEADLINE_MS }, (err, response) => {
      if (err) {
        const e = new Error(`${method} failed: ${grpc.status[err.code]}: ${err.details}`);
        e.code = err.code;
        reject(e);
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

const seconds = (d) => Number(d.seconds) + d.nanos / 1e9;

/** Watches the queue until a handoff (of ONLY's conversation, when set) waits, and claims it. */
async function claim() {
  const until = Date.now() + WAIT_MS;
  while (Date.now() < until) {
    const queue = await call('listHandoffQueue', { pageSize: 100 });
    for (const q of queue.handoffs) {
      if (ONLY && q.handoff.conversationId !== ONLY) {
        continue;
      }
      console.log(`queue: handoff ${q.handoff.id} (priority ${q.handoff.priority}, '${q.handoff.reason}')`
        + ` waiting ${seconds(q.waitDuration).toFixed(1)} s`);
      try {
        const accepted = await call('acceptHandoff', { handoffId: q.handoff.id, assigneeId: ME });
        return accepted.handoff;
      } catch (e) {
        // Another human was faster (HANDOFF_ALREADY_ACCEPTED): try the next one.
        if (e.code !== grpc.status.FAILED_PRECONDITION) {
          throw e;
        }
        console.log(`  taken by someone else: ${e.message}`);
      }
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error(`no handoff arrived in the queue within ${WAIT_MS} ms`);
}

async function main() {
  const handoff = await claim();
  expect(handoff.state === 'HANDOFF_STATE_ACCEPTED' && handoff.assigneeId === ME, `accepted by ${ME}`, handoff);
  console.log(`accepted handoff ${handoff.id} of conversation ${handoff.conversationId} as ${ME}`);

  // Read what was said so far, oldest first.
  const history = await call('listMessages', { conversationId: handoff.conversationId, order: 'MESSAGE_ORDER_OLDEST_FIRST' });
  for (const m of history.messages) {
    console.log(`  ${m.role.replace('MESSAGE_ROLE_', '').toLowerCase()}: ${m.content}`);
  }

  // Reply as the human agent: a role of its own, so the AI and the statistics can tell.
  const reply = await call('appendMessage', {
    conversationId: handoff.conversationId,
    message: { role: 'MESSAGE_ROLE_HUMAN_AGENT', content: `Hi, this is ${ME}. I will take it from here.`,
      idempotencyKey: crypto.randomUUID() },
  });
  expect(reply.message.role === 'MESSAGE_ROLE_HUMAN_AGENT', 'a human agent message', reply.message);
  console.log(`replied: message ${reply.message.sequence}`);

  // Hand it back to the AI.
  const done = await call('completeHandoff', { handoffId: handoff.id, assigneeId: ME, resolution: 'answered by a human' });
  expect(done.handoff.state === 'HANDOFF_STATE_COMPLETED'
    && done.conversation.handoffState === 'CONVERSATION_HANDOFF_STATE_AI'
    && done.conversation.status === 'CONVERSATION_STATUS_OPEN', 'completed, back with the AI, still open', done);
  const again = await call('completeHandoff', { handoffId: handoff.id, assigneeId: ME, resolution: 'answered by a human' });
  expect(again.replayed === true, 'a retried completion to replay', again);
  const log = await call('listHandoffs', { conversationId: handoff.conversationId });
  const h = log.handoffs.find((x) => x.id === handoff.id);
  expect(h && h.completedBy !== '' && h.acceptedBy !== '' && h.requestedBy !== '', 'the history with every actor', log);
  const wait = (Number(h.acceptTime.seconds) - Number(h.requestTime.seconds))
    + (h.acceptTime.nanos - h.requestTime.nanos) / 1e9;
  console.log(`completed handoff ${handoff.id}: requested by ${h.requestedBy}, accepted after ${wait.toFixed(2)} s,`
    + ` completed by ${h.completedBy}`);
}

main().then(
  () => {
    console.log('human console: every answer was right');
    conversations.close();
  },
  (err) => {
    console.error(`human console: ${err.message}`);
    process.exit(1);
  },
);
