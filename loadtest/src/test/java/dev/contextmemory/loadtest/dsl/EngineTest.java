package dev.contextmemory.loadtest.dsl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.GetConversationRequest;
import dev.contextmemory.v1.GetConversationResponse;
import dev.contextmemory.v1.ListMessagesRequest;
import dev.contextmemory.v1.ListMessagesResponse;
import dev.contextmemory.v1.MemoryServiceGrpc;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.SearchMemoriesRequest;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The engine against a stand-in ConversationService on the in-process transport: what is under
 * test here is the harness's measuring, not the server. Timing assertions are lower bounds only
 * (a slower machine can only make the measured latencies larger).
 */
class EngineTest {
  private Server server;
  private ManagedChannel channel;
  private final AtomicInteger concurrent = new AtomicInteger();
  private final AtomicInteger maxConcurrent = new AtomicInteger();
  private final ConcurrentLinkedQueue<String> seen = new ConcurrentLinkedQueue<>();
  private volatile long serviceMillis;

  @BeforeEach
  void start() throws Exception {
    String name = "engine-test-" + UUID.randomUUID();
    server = InProcessServerBuilder.forName(name).directExecutor()
        .addService(new ConversationServiceGrpc.ConversationServiceImplBase() {
          @Override
          public void listMessages(ListMessagesRequest req, StreamObserver<ListMessagesResponse> out) {
            int now = concurrent.incrementAndGet();
            maxConcurrent.accumulateAndGet(now, Math::max);
            seen.add(req.getConversationId());
            Runnable answer = () -> {
              concurrent.decrementAndGet();
              out.onNext(ListMessagesResponse.newBuilder()
                  .addMessages(Message.newBuilder().setId("m-" + req.getConversationId())).build());
              out.onCompleted();
            };
            if (serviceMillis == 0) {
              answer.run();
            } else {
              Thread.ofVirtual().start(() -> {
                sleep(serviceMillis);
                answer.run();
              });
            }
          }

          @Override
          public void getConversation(GetConversationRequest req, StreamObserver<GetConversationResponse> out) {
            seen.add("get:" + req.getConversationId());
            out.onNext(GetConversationResponse.getDefaultInstance());
            out.onCompleted();
          }
        })
        .build().start();
    channel = InProcessChannelBuilder.forName(name).directExecutor().build();
  }

  @AfterEach
  void stop() {
    channel.shutdownNow();
    server.shutdownNow();
  }

  private static Step<ListMessagesRequest, ListMessagesResponse> list(java.util.function.Function<Session, String> id) {
    return Step.call(ConversationServiceGrpc.getListMessagesMethod(),
        s -> ListMessagesRequest.newBuilder().setConversationId(id.apply(s)).build());
  }

  @Test
  void openModelMeasuresFromTheIntendedStartSoAHarnessStallIsNotHidden() {
    // Session 0's request takes 300 ms to build, on the scheduler thread (as a GC pause would):
    // sessions 1..59 are due during the stall and go out late, in a burst. Measured from when
    // they were sent they would look instant; measured from when they were due, each carries its
    // wait: session i (due at 5·i ms) waits >= 300 − 5·i ms.
    AtomicBoolean stalled = new AtomicBoolean();
    Scenario s = Scenario.named("stall")
        .exec(list(x -> {
          if (stalled.compareAndSet(false, true)) {
            sleep(300);
          }
          return "c" + x.index();
        }))
        .inject(Injection.constantRate(200, Duration.ofSeconds(1)))
        .build();
    try (Engine e = new Engine(channel, Duration.ofSeconds(5), 10_000, 1)) {
      Summary sum = e.run(s).summary();
      assertEquals(200, sum.requests());
      assertEquals(0, sum.errors());
      assertTrue(sum.maxMs() >= 299, "the stalled session itself: " + sum.maxMs());
      long waitedOver100ms = sum.histogram().getCountBetweenValues(99_000, sum.histogram().getMaxValue());
      assertTrue(waitedOver100ms >= 41, "sessions 0..40 were due >= 100 ms before they could start: " + waitedOver100ms);
    }
  }

  @Test
  void openModelKeepsTheArrivalRateWhileTheServerIsSlow() {
    // 20 ms per call at 200/s: a closed loop of one user would make 50 calls per second; the open
    // model keeps sending, so several calls are in flight at once.
    serviceMillis = 20;
    Scenario s = Scenario.named("slow").exec(list(x -> "c" + x.index()))
        .inject(Injection.constantRate(200, Duration.ofMillis(500))).build();
    try (Engine e = new Engine(channel, Duration.ofSeconds(5), 10_000, 1)) {
      Summary sum = e.run(s).summary();
      assertEquals(100, sum.requests());
      assertTrue(sum.p50Ms() >= 20, "every call takes the service time: " + sum.p50Ms());
      assertTrue(maxConcurrent.get() >= 2, "calls overlapped: " + maxConcurrent.get());
    }
  }

  @Test
  void closedModelNeverHasMoreSessionsInFlightThanUsers() {
    serviceMillis = 5;
    Scenario s = Scenario.named("closed").exec(list(x -> "c" + x.index()))
        .inject(Injection.users(3, Duration.ofMillis(400))).build();
    try (Engine e = new Engine(channel, Duration.ofSeconds(5), 10_000, 1)) {
      Summary sum = e.run(s).summary();
      assertTrue(sum.requests() >= 3, "each user made at least one call: " + sum.requests());
      assertEquals(0, sum.errors());
      assertTrue(maxConcurrent.get() <= 3, "at most one call per user at a time: " + maxConcurrent.get());
    }
  }

  @Test
  void stepsRunInOrderShareTheSessionAndHonourTheirCondition() {
    Scenario s = Scenario.named("two-steps")
        .feed("n", x -> x.index())
        .exec(list(x -> "first-" + x.<Long>get("n"))
            .saving((x, r) -> x.put("seen", r.getMessages(0).getId())))
        .exec(Step.call(ConversationServiceGrpc.getGetConversationMethod(),
                (Session x) -> GetConversationRequest.newBuilder().setConversationId(x.get("seen")).build())
            .when(x -> x.<Long>get("n") % 2 == 0))
        .inject(Injection.constantRate(100, Duration.ofMillis(100)))
        .build();
    try (Engine e = new Engine(channel, Duration.ofSeconds(5), 10_000, 1)) {
      RunResult r = e.run(s);
      assertEquals(10, r.summary().requests());
      assertEquals(List.of("ListMessages", "GetConversation"), r.steps().stream().map(Summary::name).toList());
      assertEquals(10, r.steps().get(0).requests());
      assertEquals(5, r.steps().get(1).requests(), "only even sessions make the second call");
      assertTrue(seen.contains("get:m-first-0") && seen.contains("get:m-first-8"), "saved values reach the next step");
      assertFalse(seen.contains("get:m-first-1"));
    }
  }

  @Test
  void anUnimplementedMethodStopsTheRunAndIsNamed() {
    Scenario s = Scenario.named("memory")
        .exec(Step.call(MemoryServiceGrpc.getSearchMemoriesMethod(), x -> SearchMemoriesRequest.getDefaultInstance()))
        .inject(Injection.constantRate(100, Duration.ofSeconds(2)))
        .build();
    try (Engine e = new Engine(channel, Duration.ofSeconds(5), 10_000, 1)) {
      RunResult r = e.run(s);
      assertEquals("contextmemory.v1.MemoryService/SearchMemories", r.unimplemented().orElseThrow());
      assertTrue(r.summary().requests() < 200, "the run stopped early: " + r.summary().requests());
      assertEquals(r.summary().requests(), r.summary().errorsByCode().get(Status.Code.UNIMPLEMENTED.name()));
    }
  }

  @Test
  void failuresAreCountedByCodeAndKeptOutOfTheLatencies() {
    Scenario s = Scenario.named("bad-request")
        .exec(list(x -> {
          throw new IllegalStateException("no conversation for " + x.index());
        }))
        .inject(Injection.constantRate(100, Duration.ofMillis(100)))
        .build();
    try (Engine e = new Engine(channel, Duration.ofSeconds(5), 10_000, 1)) {
      Summary sum = e.run(s).summary();
      assertEquals(10, sum.requests());
      assertEquals(10, sum.errors());
      assertEquals(1.0, sum.errorRate());
      assertEquals(0, sum.histogram().getTotalCount());
      assertTrue(sum.errorSamples().get(0).contains("no conversation for"), sum.errorSamples().toString());
    }
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
