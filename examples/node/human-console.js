#!/usr/bin/env node
// A tiny human agent's console against context-memory: watch the handoff queue, claim a waiting
// conversation, read it, reply as a human, and hand it back to the AI. Every answer is checked;
// the process exits non-zero on the first wrong one, or when nothing arrives in time.
//
//   node human-console.js     # CONTEXT_MEMORY_TARGET=host:port (default localhost:50051)
//                             # CM_API_KEY=cm_... (scopes read,write) when the server requires keys
//                             # CM_HANDOFF_CONVERSATION=<id>: take only that conversation's handoff
//                             # CM_CONSOLE_WAIT_MS: how long to wait for a handoff (default 10000)
//
// It opens WatchConversations with the handoff-queue filter (a server stream) and reads the queue
// with ListHandoffQueue for what was already waiting (again once the stream's first response shows
// it live, which closes the window while the server sets the stream up); then the stream pushes every
// handoff that is requested, and the console claims the first one it can (another human may be
// faster: FAILED_PRECONDITION, and it waits for the next). When the stream ends with UNAVAILABLE
// (a server shutting down: SERVER_SHUTTING_DOWN) or RESOURCE_EXHAUSTED (this console read too
// slowly: WATCH_CONSUMER_TOO_SLOW), it reopens it with the `resume_cursor` of the error's
// ErrorInfo, or else the cursor of the last response, so no request is missed or seen twice.
'use strict';

const crypto = require('node:crypto');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const TARGET = process.env.CONTEXT_MEMORY_TARGET || 'localhost:50051';
const PROTO_DIR = process.env.CONTEXT_MEMORY_PROTO_DIR || path.resolve(__dirname, '../../proto/src/main/proto');
const ONLY = process.env.CM_HANDOFF_CONVERSATION || '';
const WAIT_MS = Number(process.env.CM_CONSOLE_WAIT_MS || 10_000);
const DEADLINE_MS = 10_000;
// Reopening a stream that ended: backoff from 100 ms doubling up to this, until WAIT_MS is over.
const MAX_REOPEN_DELAY_MS = 5_000;
// The human agent's id in the host system (here a random one per run).
const ME = `console-${crypto.randomUUID().slice(0, 8)}`;
const auth = new grpc.Metadata();
if (process.env.CM_API_KEY) {
  auth.set('authorization', `Bearer ${process.env.CM_API_KEY}`);
}

const definition = protoLoader.loadSync(['contextmemory/v1/conversation.proto'],
  { includeDirs: [PROTO_DIR], keepCase: false, longs: String, enums: String, defaults: true, oneofs: true });
const v1 = grpc.loadPackageDefinition(definition).contextmemory.v1;
// Every unary call here is safe to repeat: reads, the handoff transitions (a repeat finds the
// handoff already where it would take it and replays), and an append with an idempotency key.
// The stream is not retried by the channel: the console reopens it itself, from its cursor.
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
// Keepalive pings on an idle stream (the server allows one every 20 s) keep proxies from cutting it.
const conversations = new v1.ConversationService(TARGET, grpc.credentials.createInsecure(),
  { 'grpc.service_config': JSON.stringify(serviceConfig), 'grpc.keepalive_time_ms': 30_000 });

// The error details (google.rpc.Status in the grpc-status-details-bin trailer), decoded with
// protobufjs: only the fields read here.
const details = protobuf.Root.fromJSON({
  nested: {
    Status: { fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 },
      details: { rule: 'repeated', type: 'Any', id: 3 } } },
    Any: { fields: { typeUrl: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
    ErrorInfo: { fields: { reason: { type: 'string', id: 1 }, domain: { type: 'string', id: 2 },
      metadata: { keyType: 'string', type: 'string', id: 3 } } },
  },
});

/** The ErrorInfo of a failed call ({reason, metadata}), or null when it carries none. */
function errorInfo(err) {
  const bin = err.metadata && err.metadata.get('grpc-status-details-bin')[0];
  if (!bin) {
    return null;
  }
  const status = details.lookupType('Status').decode(bin);
  const any = status.details.find((d) => d.typeUrl.endsWith('/google.rpc.ErrorInfo'));
  return any ? details.lookupType('ErrorInfo').decode(any.value) : null;
}

function call(method, request) {
  return new Promise((resolve, reject) => {
    conversations[method](request, auth, { deadline: Date.now() + DEADLINE_MS }, (err, response) => {
      if (err) {
        const info = errorInfo(err);
        const e = new Error(`${method} failed: ${grpc.status[err.code]}${info ? ` ${info.reason}` : ''}: ${err.details}`);
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

/**
 * Claims one handoff: from the queue as it stands, or from the watch stream as requests arrive.
 * Resolves with the accepted handoff and how it was found; rejects after WAIT_MS.
 */
function claim() {
  return new Promise((resolve, reject) => {
    let stream = null;
    let cursor = ''; // of the last response received: where a reopened stream resumes
    let reopens = 0;
    let done = false;
    const tried = new Set(); // handoff ids seen in the queue and on the stream: each is tried once
    let work = Promise.resolve(); // claims run one at a time, in the order they were found

    const finish = (err, value) => {
      if (done) {
        return;
      }
      done = true;
      clearTimeout(timer);
      if (stream) {
        stream.cancel(); // ends with CANCELLED, which the error handler below ignores
      }
      if (err) {
        reject(err);
      } else {
        resolve(value);
      }
    };
    const timer = setTimeout(() => finish(new Error(`no handoff could be claimed within ${WAIT_MS} ms`)), WAIT_MS);

    const consider = (handoffId, conversationId, via, what) => {
      if (done || tried.has(handoffId) || (ONLY && conversationId !== ONLY)) {
        return;
      }
      tried.add(handoffId);
      work = work.then(async () => {
        if (done) {
          return;
        }
        console.log(`${via}: handoff ${handoffId} of conversation ${conversationId} ${what}`);
        try {
          const accepted = await call('acceptHandoff', { handoffId, assigneeId: ME });
          finish(null, { handoff: accepted.handoff, via });
        } catch (e) {
          // Another human was faster (HANDOFF_ALREADY_ACCEPTED), or it was cancelled meanwhile:
          // wait for the next one.
          if (e.code !== grpc.status.FAILED_PRECONDITION) {
            throw e;
          }
          console.log(`  not ours: ${e.message}`);
        }
      }).catch((e) => finish(e));
    };

    const open = () => {
      stream = conversations.watchConversations({ handoffQueue: true, conversationId: ONLY, resumeCursor: cursor }, auth);
      // A stream without a cursor starts when the server has subscribed it, which the client does
      // not see: a request committed while it was being set up and after the queue was read would
      // be in neither. Its first response proves it live, so the queue is read once more then.
      let confirmLive = !cursor;
      stream.on('data', (event) => {
        reopens = 0;
        cursor = event.cursor;
        if (confirmLive) {
          confirmLive = false;
          readQueue();
        }
        if (event.kind === 'CONVERSATION_EVENT_KIND_HANDOFF_CHANGED' && event.handoff.state === 'HANDOFF_STATE_REQUESTED') {
          consider(event.handoff.handoffId, event.conversationId, 'watch stream',
            `requested (priority ${event.handoff.details.fields.priority?.numberValue ?? '?'})`);
        }
      });
      stream.on('error', (err) => {
        if (done) {
          return; // our own cancel
        }
        const info = errorInfo(err);
        const resumable = err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.RESOURCE_EXHAUSTED;
        reopens += 1;
        if (!resumable) {
          finish(new Error(`WatchConversations failed: ${grpc.status[err.code]}${info ? ` ${info.reason}` : ''}: ${err.details}`));
          return;
        }
        // The server's resume point, or else the last cursor received (a transport failure has no
        // details); with neither, the stream restarts from now and the queue is read again.
        const from = (info && info.metadata.resume_cursor) || cursor;
        console.log(`watch stream ended (${grpc.status[err.code]}${info ? ` ${info.reason}` : ''}); reopening`
          + ` ${from ? 'from its cursor' : 'from now'}`);
        const relist = !from;
        cursor = from;
        setTimeout(() => {
          if (!done) {
            open();
            if (relist) {
              readQueue();
            }
          }
        }, Math.min(MAX_REOPEN_DELAY_MS, 100 * 2 ** (reopens - 1)));
      });
    };

    const readQueue = () => {
      call('listHandoffQueue', { pageSize: 100 }).then((queue) => {
        for (const q of queue.handoffs) {
          consider(q.handoff.id, q.handoff.conversationId, 'queue',
            `waiting ${seconds(q.waitDuration).toFixed(1)} s (priority ${q.handoff.priority})`);
        }
      }).catch((e) => finish(e));
    };

    // The stream first, then the queue: a handoff requested in between shows on both and is tried
    // once; one already waiting shows only in the queue.
    open();
    readQueue();
    console.log(`watching the handoff queue as ${ME}${ONLY ? ` (conversation ${ONLY} only)` : ''}`);
  });
}

async function main() {
  const { handoff, via } = await claim();
  expect(handoff.state === 'HANDOFF_STATE_ACCEPTED' && handoff.assigneeId === ME, `accepted by ${ME}`, handoff);
  console.log(`accepted handoff ${handoff.id} of conversation ${handoff.conversationId} as ${ME} (found on the ${via})`);

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
