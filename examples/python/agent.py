#!/usr/bin/env python3
"""One agent turn against context-memory, in Python on grpcio.

Upserts the customer, opens their conversation, appends the turn, fetches the context, stores a
memory and searches for it. Every answer is checked; the process exits non-zero on the first
wrong one.

    python3 generate.py && python3 agent.py   # CONTEXT_MEMORY_TARGET=host:port (default localhost:50051)
                                              # CM_API_KEY=cm_... when the server requires keys

The stubs come from generate.py, which compiles the repository's proto/ into gen/.
"""
import json
import os
import random
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("CONTEXT_MEMORY_PY_STUBS", os.path.join(HERE, "gen")))

import grpc  # noqa: E402
from contextmemory.v1 import conversation_pb2 as conv  # noqa: E402
from contextmemory.v1 import conversation_pb2_grpc as conv_grpc  # noqa: E402
from contextmemory.v1 import customer_pb2 as cust  # noqa: E402
from contextmemory.v1 import customer_pb2_grpc as cust_grpc  # noqa: E402
from contextmemory.v1 import memory_pb2 as mem  # noqa: E402
from contextmemory.v1 import memory_pb2_grpc as mem_grpc  # noqa: E402

TARGET = os.environ.get("CONTEXT_MEMORY_TARGET", "localhost:50051")
# The API key (`scripts/run keys create ...`), sent as `authorization: Bearer <key>` with every
# call; none for a local server that runs with CONTEXT_MEMORY_AUTH=none.
API_KEY = os.environ.get("CM_API_KEY", "")
AUTH = (("authorization", f"Bearer {API_KEY}"),) if API_KEY else ()
DEADLINE_SECONDS = 10.0


def retried(service, methods):
    return [{"service": f"contextmemory.v1.{service}", "method": m} for m in methods]


# Retry the calls that are safe to repeat on every status that allows a retry (docs/operations.md,
# "Retries"): ABORTED and RESOURCE_EXHAUSTED mean nothing was done; UNAVAILABLE and CANCELLED leave
# the outcome unknown, which is fine here because every call below is a read, an upsert or an
# append that carries an idempotency key, so a retry can never store anything twice.
SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [{
        "name": retried("CustomerService", ["UpsertCustomer", "GetCustomer"])
        + retried("ConversationService", ["GetOrCreateOpenConversation", "AppendMessage", "ListMessages"])
        + retried("MemoryService", ["UpsertMemory", "GetMemory", "SearchMemories", "FetchContext"]),
        "retryPolicy": {
            "maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "2s", "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED", "ABORTED", "RESOURCE_EXHAUSTED"],
        },
    }],
}


class WrongAnswer(Exception):
    pass


def expect(condition, what, actual):
    if not condition:
        raise WrongAnswer(f"expected {what}, got {actual!r}")


def await_embedded(memories, memory_id, t):
    """The server embeds a memory written as text in the background (CONTEXT_MEMORY_EMBEDDER=local
    or openai-compatible): wait until its embedding is READY, which takes well under a second."""
    deadline = time.monotonic() + 30
    while True:
        m = memories.GetMemory(mem.GetMemoryRequest(memory_id=memory_id), timeout=t, metadata=AUTH).memory
        if m.embedding_state == conv.EMBEDDING_STATE_READY:
            return m
        expect(m.embedding_state == conv.EMBEDDING_STATE_PENDING and time.monotonic() < deadline,
               "an embedding on its way (a server with an embedder)", m)
        time.sleep(0.1)


def run(channel):
    customers = cust_grpc.CustomerServiceStub(channel)
    conversations = conv_grpc.ConversationServiceStub(channel)
    memories = mem_grpc.MemoryServiceStub(channel)
    t = DEADLINE_SECONDS

    # 1. The person writes in by SMS: upsert them by phone number. A fresh number per run.
    phone = f"+1555{2000000 + random.randrange(7999999)}"
    upsert = cust.UpsertCustomerRequest(contact_key=cust.ContactKey(phone=phone),
                                        customer=cust.Customer(display_name="Ada Lovelace"))
    first = customers.UpsertCustomer(upsert, timeout=t, metadata=AUTH)
    expect(first.created and first.customer.phone == phone, f"a new customer with phone {phone}", first)
    again = customers.UpsertCustomer(upsert, timeout=t, metadata=AUTH)
    expect(not again.created and again.customer.id == first.customer.id, "the same customer again", again)
    customer = first.customer
    print(f"customer {customer.id} ({customer.display_name}, {customer.phone})")

    # 2. Open (or find) the conversation for this thread.
    open_request = conv.GetOrCreateOpenConversationRequest(customer_id=customer.id, channel=conv.CHANNEL_SMS,
                                                           thread_key=phone)
    opened = conversations.GetOrCreateOpenConversation(open_request, timeout=t, metadata=AUTH)
    expect(opened.created and opened.conversation.status == conv.CONVERSATION_STATUS_OPEN,
           "a new open conversation", opened)
    reopened = conversations.GetOrCreateOpenConversation(open_request, timeout=t, metadata=AUTH)
    expect(reopened.conversation.id == opened.conversation.id and not reopened.created, "the same conversation",
           reopened)
    conversation = opened.conversation
    print(f"conversation {conversation.id}")

    # 3. Append the turn: the customer's message, then the agent's reply. The idempotency key makes
    #    a retry (ours, or gRPC's) return the stored message instead of storing it twice.
    user_turn = conv.AppendMessageRequest(conversation_id=conversation.id, message=conv.Message(
        role=conv.MESSAGE_ROLE_USER, content="Hi! Please text me rather than call, I am at work all day.",
        idempotency_key=str(uuid.uuid4())))
    stored = conversations.AppendMessage(user_turn, timeout=t, metadata=AUTH)
    expect(not stored.replayed and stored.message.sequence == 1, "message 1, newly stored", stored)
    replay = conversations.AppendMessage(user_turn, timeout=t, metadata=AUTH)
    expect(replay.replayed and replay.message.id == stored.message.id, "a replay of message 1", replay)
    reply = conversations.AppendMessage(conv.AppendMessageRequest(conversation_id=conversation.id, message=conv.Message(
        role=conv.MESSAGE_ROLE_ASSISTANT, content="Noted, I will text you.", idempotency_key=str(uuid.uuid4()))),
        timeout=t, metadata=AUTH)
    expect(reply.message.sequence == 2, "message 2", reply)
    print(f"appended messages {stored.message.id} and {reply.message.id}")

    # 4. Before answering next time, fetch the context in one call.
    context = memories.FetchContext(mem.FetchContextRequest(customer_id=customer.id), timeout=t, metadata=AUTH)
    expect(context.customer.id == customer.id, "the customer", context.customer)
    expect(context.HasField("conversation") and context.conversation.id == conversation.id, "the open conversation",
           context.conversation)
    expect([m.content for m in context.recent_messages] == [user_turn.message.content, "Noted, I will text you."],
           "both messages, oldest first", context.recent_messages)
    print(f"context: {len(context.recent_messages)} recent messages, {len(context.memories)} memories")

    # 5. Remember what was learned, under a key so a later upsert replaces it. Text alone: the
    #    server stores it at once and embeds it in the background.
    note = "Prefers text messages over phone calls"
    memory = memories.UpsertMemory(mem.UpsertMemoryRequest(customer_id=customer.id, memory=mem.Memory(
        key="preferred_contact_channel", kind=mem.MEMORY_KIND_PREFERENCE, content=note,
        source="example-agent-python", conversation_id=conversation.id)), timeout=t, metadata=AUTH)
    expect(memory.created, "a new memory", memory)
    embedded = await_embedded(memories, memory.memory.id, t)
    print(f"memory {memory.memory.id}: {memory.memory.content} (embedded by {embedded.embedding_model})")

    # 6. Search it by text alone: the server embeds the query and searches by words and by meaning
    #    (hybrid, the default when the deployment has an embedder).
    query = "text messages"
    found = memories.SearchMemories(mem.SearchMemoriesRequest(customer_id=customer.id, query_text=query, top_k=5),
                                    timeout=t, metadata=AUTH)
    expect(found.mode == mem.MEMORY_SEARCH_MODE_HYBRID, "hybrid search", found.mode)
    expect(len(found.hits) == 1 and found.hits[0].memory.id == memory.memory.id
           and found.hits[0].vector_rank == 1 and found.hits[0].text_rank == 1,
           "the memory, first in both lists", found.hits)
    print(f"search '{query}': {found.hits[0].memory.content} (score {found.hits[0].score:.4f})")

    # The next turn's context now ranks the memory, and says why.
    nxt = memories.FetchContext(mem.FetchContextRequest(customer_id=customer.id, query_text=query), timeout=t,
                                metadata=AUTH)
    expect(len(nxt.memories) == 1 and nxt.memories[0].memory.id == memory.memory.id
           and nxt.memories[0].breakdown.relevance > 0 and nxt.memories[0].breakdown.vector_similarity > 0,
           "the memory, relevant to the query by words and by meaning", nxt.memories)
    print(f"context memory score {nxt.memories[0].breakdown.final_score:.3f}")


def main():
    options = [("grpc.service_config", json.dumps(SERVICE_CONFIG)), ("grpc.enable_retries", 1),
               ("grpc.keepalive_time_ms", 30000)]
    try:
        with grpc.insecure_channel(TARGET, options=options) as channel:
            run(channel)
    except WrongAnswer as e:
        print(f"python example: wrong answer: {e}", file=sys.stderr)
        return 1
    except grpc.RpcError as e:
        print(f"python example: call failed: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    print("python example: every answer was right")
    return 0


if __name__ == "__main__":
    sys.exit(main())
