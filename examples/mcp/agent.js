#!/usr/bin/env node
// One agent turn against context-memory's MCP tools, with the official MCP TypeScript SDK
// (@modelcontextprotocol/sdk): upsert the customer, open their conversation, append their message
// (and again, to see it replayed), remember a preference, fetch the context with the memory ranked
// in it, and confirm the memory. Every result is checked; the process exits non-zero on the first
// wrong one. It runs the turn over each transport it is given:
//
//   CONTEXT_MEMORY_MCP_URL=http://127.0.0.1:8931/mcp CM_API_KEY=cm_... node agent.js
//       Streamable HTTP, served by the server when CONTEXT_MEMORY_MCP_PORT is set; the API key goes
//       as Authorization: Bearer <key>
//   CONTEXT_MEMORY_MCP_COMMAND=../../scripts/mcp CONTEXT_MEMORY_TARGET=host:port CM_API_KEY=cm_... node agent.js
//       stdio: the command is launched as a subprocess, as an agent host does
'use strict';

const crypto = require('node:crypto');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');

const KEY = process.env.CM_API_KEY || '';

function expect(condition, what, actual) {
  if (!condition) {
    throw new Error(`wrong answer: expected ${what}, got ${JSON.stringify(actual)}`);
  }
}

/** Calls a tool; returns its structured result, failing on a tool error. */
async function call(client, name, args) {
  const result = await client.callTool({ name, arguments: args });
  expect(!result.isError, `${name} to succeed`, result.content);
  console.log(`  ${name} -> ${JSON.stringify(result.structuredContent).slice(0, 160)}`);
  return result.structuredContent;
}

async function agentTurn(client) {
  const tools = (await client.listTools()).tools.map((t) => t.name);
  for (const name of ['upsert_customer_profile', 'open_conversation', 'append_messages', 'fetch_context',
    'remember', 'confirm_memories']) {
    expect(tools.includes(name), `the tool ${name}`, tools);
  }

  const phone = `+1555${2000000 + crypto.randomInt(7999999)}`;
  const upserted = await call(client, 'upsert_customer_profile',
    { contact_key: { phone }, customer: { display_name: 'Ada Lovelace' } });
  expect(upserted.created === true && upserted.customer.phone === phone, `a new customer with phone ${phone}`, upserted);
  const customerId = upserted.customer.id;

  const opened = await call(client, 'open_conversation',
    { customer_id: customerId, channel: 'CHANNEL_SMS', thread_key: phone });
  expect(opened.created === true, 'a new conversation', opened);
  const conversationId = opened.conversation.id;

  const append = {
    conversation_id: conversationId,
    messages: [{ role: 'MESSAGE_ROLE_USER', idempotency_key: 'sms-1',
      content: 'Please leave my parcels with the neighbour at number 12 from now on' }],
  };
  const appended = await call(client, 'append_messages', append);
  expect(appended.created_count === 1, 'one message stored', appended);
  const replayed = await call(client, 'append_messages', append);
  expect(replayed.results[0].replayed === true && replayed.results[0].message_id === appended.results[0].message_id,
    'the same message, replayed', replayed);

  const remembered = await call(client, 'remember', {
    customer_id: customerId,
    memory: { key: 'delivery_preference', kind: 'MEMORY_KIND_PREFERENCE', conversation_id: conversationId,
      content: 'Wants parcels left with the neighbour at number 12.' },
  });
  expect(remembered.created === true, 'a new memory', remembered);
  const memoryId = remembered.memory.id;

  const context = await call(client, 'fetch_context', { customer_id: customerId, query_text: 'parcels neighbour' });
  expect(context.customer.id === customerId && context.conversation.id === conversationId, 'the customer and conversation', context);
  expect(context.recent_messages.length === 1 && context.recent_messages[0].content.includes('neighbour'),
    'the appended message', context.recent_messages);
  expect(context.memories[0].memory.id === memoryId && context.memories[0].breakdown.relevance > 0,
    'the memory ranked first, by its words', context.memories);

  const confirmed = await call(client, 'confirm_memories',
    { confirmations: [{ memory_id: memoryId, outcome: 'CONFIRMATION_OUTCOME_CONFIRMED' }] });
  expect(confirmed.results[0].effect === 'CONFIRMATION_EFFECT_CONFIRMED' && confirmed.results[0].memory.confirm_count === 1,
    'the memory confirmed once', confirmed);

  // A refused argument comes back as a tool error a model can act on.
  const bad = await client.callTool({ name: 'append_messages',
    arguments: { conversation_id: 'not-a-uuid', messages: [{ role: 'MESSAGE_ROLE_USER', content: 'x' }] } });
  expect(bad.isError === true && bad.content[0].text.includes('`conversation_id`'), 'a tool error naming conversation_id', bad);
  console.log(`  append_messages (bad id) -> error: ${bad.content[0].text}`);
}

async function run(label, transport) {
  const client = new Client({ name: 'context-memory-example', version: '1.0.0' });
  await client.connect(transport);
  try {
    console.log(`${label}: ${client.getServerVersion().name} ${client.getServerVersion().version}`);
    await agentTurn(client);
  } finally {
    await client.close();
  }
}

async function main() {
  const url = process.env.CONTEXT_MEMORY_MCP_URL;
  const command = process.env.CONTEXT_MEMORY_MCP_COMMAND;
  if (!url && !command) {
    throw new Error('set CONTEXT_MEMORY_MCP_URL (Streamable HTTP) and/or CONTEXT_MEMORY_MCP_COMMAND (stdio)');
  }
  if (url) {
    const headers = KEY ? { Authorization: `Bearer ${KEY}` } : {};
    await run(`streamable http ${url}`, new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  }
  if (command) {
    const env = { ...process.env, CONTEXT_MEMORY_API_KEY: KEY };
    await run(`stdio ${command}`, new StdioClientTransport({ command, args: [], env, stderr: 'inherit' }));
  }
  console.log('agent turn ok');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
