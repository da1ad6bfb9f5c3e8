package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.server.testing.Watcher;
import dev.contextmemory.v1.*;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The resumability proof: writers append concurrently to a few conversations (so commits of one
 * conversation queue on its row lock and commit in an order other than the one their transactions
 * began in) while one reader drops its stream at random points and reopens it with the last cursor
 * it processed, discarding whatever had arrived after that (as a crashed client would). Over more
 * than 10,000 events: every message arrives exactly once, and each conversation's messages arrive
 * in sequence order with no gap.
 */
class WatchResumeTest {
  private static final int CONVERSATIONS = 12;
  private static final int WRITERS = 6;
  private static final int BATCHES_PER_WRITER = 50;
  private static final int BATCH = 34;

  @Test
  void aReaderThatReconnectsAtRandomLosesAndRepeatsNothing() throws Exception {
    try (TestServer server = TestServer.start(Map.of("DB_POOL_SIZE", "8", "REQUEST_THREADS", "16"))) {
      var customers = CustomerServiceGrpc.newBlockingStub(server.channel());
      var conversations = ConversationServiceGrpc.newBlockingStub(server.channel());
      String customer = customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(
          Customer.newBuilder().setDisplayName("Load").setExternalRef("resume")).build()).getCustomer().getId();
      List<String> ids = new ArrayList<>();
      for (int i = 0; i < CONVERSATIONS; i++) {
        ids.add(conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
            .setCustomerId(customer).setChannel(Channel.CHANNEL_WEB).setThreadKey("c" + i).build())
            .getConversation().getId());
      }
      int expected = WRITERS * BATCHES_PER_WRITER * BATCH;
      WatchConversationsRequest request = WatchConversationsRequest.newBuilder().setCustomerId(customer).build();
      Watcher first = new Watcher(server.channel(), request, true, 0);
      Watcher.awaitStreams(server.server().watch(), 1, first); // from here on, every write reaches it

      long started = System.nanoTime();
      java.util.concurrent.atomic.AtomicLong writesDone = new java.util.concurrent.atomic.AtomicLong();
      ExecutorService writers = Executors.newFixedThreadPool(WRITERS);
      List<Future<?>> done = new ArrayList<>();
      for (int w = 0; w < WRITERS; w++) {
        int writer = w;
        done.add(writers.submit(() -> {
          Random random = new Random(writer);
          for (int b = 0; b < BATCHES_PER_WRITER; b++) {
            String conversation = ids.get(random.nextInt(CONVERSATIONS));
            if (b % 25 == 0) {
              // Single appends too: a different statement (APPEND_ONE) records their events.
              for (int i = 0; i < BATCH; i++) {
                conversations.appendMessage(AppendMessageRequest.newBuilder().setConversationId(conversation)
                    .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("w" + writer))
                    .build());
              }
            } else {
              AppendMessagesRequest.Builder r = AppendMessagesRequest.newBuilder().setConversationId(conversation);
              for (int i = 0; i < BATCH; i++) {
                r.addMessages(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("w" + writer));
              }
              conversations.appendMessages(r.build());
            }
          }
          writesDone.accumulateAndGet(System.nanoTime(), Math::max);
          return null;
        }));
      }

      Map<String, Long> lastSequence = new HashMap<>();
      Set<String> seenIds = new HashSet<>();
      int duplicates = 0;
      int outOfOrder = 0;
      int reconnects = 0;
      int ended = 0;
      Random random = new Random(42);
      Watcher current = first;
      String cursor = null;
      int untilDrop = 200 + random.nextInt(1500);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
      while (seenIds.size() < expected && System.nanoTime() < deadline) {
        WatchConversationsResponse r = current.received.poll(100, TimeUnit.MILLISECONDS);
        if (r == null) {
          if (current.end.isDone() && current.received.isEmpty()) {
            // The server ended the stream (RESOURCE_EXHAUSTED when this reader fell a buffer
            // behind the burst): a client resumes from the last event it processed.
            ended++;
            current = new Watcher(server.channel(), cursor == null ? request
                : request.toBuilder().setResumeCursor(cursor).build(), true, 0);
          }
          continue;
        }
        cursor = r.getCursor();
        if (r.getKind() != ConversationEventKind.CONVERSATION_EVENT_KIND_MESSAGE_APPENDED) {
          continue;
        }
        Message m = r.getMessage();
        if (!seenIds.add(m.getId())) {
          duplicates++;
        }
        long previous = lastSequence.getOrDefault(m.getConversationId(), 0L);
        if (m.getSequence() != previous + 1) {
          outOfOrder++;
        }
        lastSequence.put(m.getConversationId(), m.getSequence());
        if (--untilDrop == 0) {
          // Drop the stream and everything it has buffered; resume from the last event processed.
          current.close();
          current = new Watcher(server.channel(), request.toBuilder().setResumeCursor(cursor).build(), true, 0);
          reconnects++;
          untilDrop = 1 + random.nextInt(random.nextBoolean() ? 50 : 1500);
        }
      }
      long readDone = System.nanoTime();
      current.close();
      for (Future<?> f : done) {
        f.get(10, TimeUnit.SECONDS);
      }
      writers.shutdown();

      long stored = 0;
      for (String id : ids) {
        stored += conversations.getConversation(GetConversationRequest.newBuilder().setConversationId(id).build())
            .getConversation().getMessageCount();
      }
      assertEquals(expected, stored);
      assertEquals(0, duplicates, "duplicated events");
      assertEquals(0, outOfOrder, "events out of per-conversation order (or a gap)");
      assertEquals(expected, seenIds.size(), "lost events");
      assertTrue(reconnects >= 5, "the reader reconnected only " + reconnects + " times");
      System.out.printf("WatchResumeTest: %d events, %d reconnects at random points, %d after the server ended the"
          + " stream, 0 lost, 0 duplicated, 0 out of order; writes took %d ms, the reader was done after %d ms%n",
          expected, reconnects, ended, (writesDone.get() - started) / 1_000_000, (readDone - started) / 1_000_000);
    }
  }
}
