package dev.contextmemory.loadtest.scenarios;

import dev.contextmemory.loadtest.dsl.RunResult;
import dev.contextmemory.loadtest.dsl.Summary;
import dev.contextmemory.loadtest.report.Outcome;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.AppendMessageResponse;
import dev.contextmemory.v1.Channel;
import dev.contextmemory.v1.ConversationEventKind;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import dev.contextmemory.v1.WatchConversationsRequest;
import dev.contextmemory.v1.WatchConversationsResponse;
import io.grpc.Context;
import io.grpc.stub.StreamObserver;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.HdrHistogram.Histogram;

/**
 * watch_latency (issue 14): commit to event at the subscriber, with {@code subscribers}
 * WatchConversations streams open on the customer under test while AppendMessage runs open-loop at
 * {@code rate} per second over a few conversations. The commit time on the writer's side is taken
 * as the moment the AppendMessage response arrives (the commit happened before it, so this
 * understates the true latency by at most the response's trip back; an event that arrives before
 * the response counts as 0). The same events are also timed from the moment the request was sent,
 * an upper bound that includes the append itself; the report gives both, the target applies to
 * the first. Every stream must receive every acknowledged append exactly once (a lost or repeated
 * event fails the scenario). Counting is by content (unique per append): an append is expected
 * on every stream once its response arrived; one that failed on the client (a deadline, say) may
 * still have committed, and its event then arrives too: it is reported as stored despite the
 * error, not counted against the streams, and never makes the received count exceed the expected
 * one (as counting failed appends as not stored did).
 */
public final class WatchLatency {
  private static final int CONVERSATIONS = 20;

  private WatchLatency() {}

  public static Outcome run(io.grpc.Channel channel, double rate, int subscribers, Duration warmUp,
      Duration measure, double targetP99Ms, PrintStream log) throws InterruptedException {
    var customers = CustomerServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
    var blocking = ConversationServiceGrpc.newBlockingStub(channel);
    String customer = customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
        .setDisplayName("watch").setExternalRef("watch-latency-" + UUID.randomUUID())).build()).getCustomer().getId();
    List<String> conversations = new ArrayList<>();
    for (int i = 0; i < CONVERSATIONS; i++) {
      conversations.add(blocking.withDeadlineAfter(10, TimeUnit.SECONDS).getOrCreateOpenConversation(
          GetOrCreateOpenConversationRequest.newBuilder().setCustomerId(customer).setChannel(Channel.CHANNEL_WEB)
              .setThreadKey("watch-" + i).build()).getConversation().getId());
    }
    Map<String, long[]> times = new ConcurrentHashMap<>(); // content -> {sent, response} (nanos)
    Histogram fromResponse = new Histogram(60_000_000L, 3); // microseconds
    Histogram fromSend = new Histogram(60_000_000L, 3);
    AtomicLong received = new AtomicLong(); // first deliveries of measured appends, over all streams
    AtomicLong duplicates = new AtomicLong();
    java.util.Set<String> acked = ConcurrentHashMap.newKeySet();
    java.util.Set<String> failed = ConcurrentHashMap.newKeySet();
    List<java.util.Set<String>> seenByStream = java.util.Collections.synchronizedList(new ArrayList<>());
    AtomicLong measuring = new AtomicLong(Long.MAX_VALUE); // first sequence number measured
    List<Context.CancellableContext> streams = java.util.Collections.synchronizedList(new ArrayList<>());
    AtomicLong reopened = new AtomicLong();
    // Why appends failed and why streams ended, by status code: the figures mean little without it.
    Map<String, Long> appendFailures = new java.util.concurrent.ConcurrentSkipListMap<>();
    Map<String, Long> streamEnds = new java.util.concurrent.ConcurrentSkipListMap<>();
    var async = ConversationServiceGrpc.newStub(channel);
    ScheduledExecutorService reopen = Executors.newSingleThreadScheduledExecutor();
    WatchConversationsRequest request = WatchConversationsRequest.newBuilder().setCustomerId(customer).build();
    for (int s = 0; s < subscribers; s++) {
      new Object() {
        String cursor = "";
        final java.util.Set<String> seen = register(seenByStream);

        private static java.util.Set<String> register(List<java.util.Set<String>> all) {
          java.util.Set<String> set = ConcurrentHashMap.newKeySet();
          all.add(set);
          return set;
        }

        void open() {
          Context.CancellableContext ctx = Context.current().withCancellation();
          streams.add(ctx);
          ctx.run(() -> async.watchConversations(request.toBuilder().setResumeCursor(cursor).build(),
              new StreamObserver<>() {
                @Override
                public void onNext(WatchConversationsResponse r) {
                  long now = System.nanoTime();
                  cursor = r.getCursor();
                  if (r.getKind() != ConversationEventKind.CONVERSATION_EVENT_KIND_MESSAGE_APPENDED) {
                    return;
                  }
                  String content = r.getMessage().getContent();
                  long[] t = times.get(content);
                  if (t == null || Long.parseLong(content.substring(2)) < measuring.get()) {
                    return; // warm-up
                  }
                  if (!seen.add(content)) {
                    duplicates.incrementAndGet(); // a resumed stream must not repeat an event
                    return;
                  }
                  received.incrementAndGet();
                  synchronized (fromSend) {
                    fromSend.recordValue(Math.max(0, (now - t[0]) / 1000));
                    long response = t[1];
                    fromResponse.recordValue(response == 0 ? 0 : Math.max(0, (now - response) / 1000));
                  }
                }

                @Override
                public void onError(Throwable t) {
                  if (t instanceof io.grpc.StatusRuntimeException e
                      && e.getStatus().getCode() == io.grpc.Status.Code.CANCELLED) {
                    return;
                  }
                  // What a client does: reopen from the last cursor (a burst of 50 opens can be
                  // shed by the server's request queue; a slow stream ends RESOURCE_EXHAUSTED).
                  reopened.incrementAndGet();
                  streamEnds.merge(io.grpc.Status.fromThrowable(t).getCode().name(), 1L, Long::sum);
                  reopen.schedule(() -> open(), 50 + (long) (Math.random() * 100), TimeUnit.MILLISECONDS);
                }

                @Override
                public void onCompleted() {}
              }));
        }
      }.open();
    }
    Thread.sleep(2000); // every stream registered (some after a reopen) before the first append
    ScheduledExecutorService pacer = Executors.newSingleThreadScheduledExecutor();
    AtomicLong next = new AtomicLong();
    AtomicLong appendErrors = new AtomicLong();
    long periodNanos = (long) (1e9 / rate);
    var appendStub = ConversationServiceGrpc.newStub(channel);
    pacer.scheduleAtFixedRate(() -> {
      long n = next.getAndIncrement();
      String content = "w-" + n;
      long[] t = {System.nanoTime(), 0};
      times.put(content, t);
      appendStub.withDeadlineAfter(10, TimeUnit.SECONDS).appendMessage(AppendMessageRequest.newBuilder()
          .setConversationId(conversations.get((int) (n % CONVERSATIONS)))
          .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent(content)).build(),
          new StreamObserver<AppendMessageResponse>() {
            @Override
            public void onNext(AppendMessageResponse value) {
              t[1] = System.nanoTime();
              acked.add(content);
            }

            @Override
            public void onError(Throwable e) {
              appendErrors.incrementAndGet();
              failed.add(content);
              appendFailures.merge(io.grpc.Status.fromThrowable(e).getCode().name(), 1L, Long::sum);
            }

            @Override
            public void onCompleted() {}
          });
    }, 0, periodNanos, TimeUnit.NANOSECONDS);
    Thread.sleep(warmUp.toMillis());
    long first = next.get();
    measuring.set(first);
    long start = System.nanoTime();
    Thread.sleep(measure.toMillis());
    pacer.shutdown();
    pacer.awaitTermination(5, TimeUnit.SECONDS);
    long sent = next.get() - first;
    double seconds = (System.nanoTime() - start) / 1e9;
    // Wait for the appends still in flight to be answered, then for every stream to deliver them.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    java.util.function.LongPredicate measured = n -> n >= first;
    while (System.nanoTime() < deadline) {
      long answered = acked.stream().filter(c -> measured.test(Long.parseLong(c.substring(2)))).count()
          + failed.stream().filter(c -> measured.test(Long.parseLong(c.substring(2)))).count();
      if (answered >= sent) {
        break;
      }
      Thread.sleep(20);
    }
    List<String> expectedContents = acked.stream().filter(c -> measured.test(Long.parseLong(c.substring(2)))).toList();
    long failedMeasured = failed.stream().filter(c -> measured.test(Long.parseLong(c.substring(2)))).count();
    long expected = (long) expectedContents.size() * subscribers;
    while (missing(seenByStream, expectedContents) > 0 && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    reopen.shutdownNow();
    synchronized (streams) {
      streams.forEach(c -> c.cancel(null));
    }
    long lost = missing(seenByStream, expectedContents);
    // Failed on the client but committed: their events arrived on some stream.
    long storedDespiteError;
    synchronized (seenByStream) {
      storedDespiteError = failed.stream().filter(c -> measured.test(Long.parseLong(c.substring(2))))
          .filter(c -> seenByStream.stream().anyMatch(set -> set.contains(c))).count();
    }
    long receivedExpected = expected - lost;

    Summary summary;
    List<Outcome.Verdict> verdicts = new ArrayList<>();
    synchronized (fromSend) {
      summary = new Summary("watch_latency", receivedExpected + lost, lost,
          ms(fromResponse.getMinValue()), ms(fromResponse.getValueAtPercentile(50)),
          ms(fromResponse.getValueAtPercentile(75)), ms(fromResponse.getValueAtPercentile(95)),
          ms(fromResponse.getValueAtPercentile(99)), ms(fromResponse.getValueAtPercentile(99.9)),
          ms(fromResponse.getMaxValue()), fromResponse.getMean() / 1000.0, received.get() / seconds, seconds,
          lost + duplicates.get() > 0 ? Map.of("LOST", lost, "DUPLICATE", duplicates.get()) : Map.of(), List.of(),
          List.of(), fromResponse.copy());
      double p99 = summary.p99Ms();
      verdicts.add(new Outcome.Verdict(String.format(Locale.ROOT, "p99 < %.0f ms (commit = AppendMessage response)",
          targetP99Ms), String.format(Locale.ROOT, "p99 = %.2f ms", p99), p99 < targetP99Ms));
      verdicts.add(new Outcome.Verdict("every stream receives every acknowledged append exactly once",
          String.format(Locale.ROOT, "%,d of %,d events received, %d repeated (%d appends failed, %d of them"
              + " stored nonetheless)", receivedExpected, expected, duplicates.get(), failedMeasured,
              storedDespiteError), lost == 0 && duplicates.get() == 0));
      log.printf(Locale.ROOT, "watch_latency: %,d appends at %.0f/s, %d streams: commit->event p50 %.2f ms, p99 %.2f ms,"
              + " max %.2f ms; send->event (upper bound) p50 %.2f ms, p99 %.2f ms; %d lost, %d repeated;"
              + " %d appends failed (%d stored nonetheless; all appends' failures by status %s); %d stream reopens"
              + " (streams ended by %s)%n", sent,
          rate, subscribers, summary.p50Ms(), summary.p99Ms(), summary.maxMs(), ms(fromSend.getValueAtPercentile(50)),
          ms(fromSend.getValueAtPercentile(99)), lost, duplicates.get(), failedMeasured, storedDespiteError,
          appendFailures, reopened.get(), streamEnds);
    }
    boolean ok = verdicts.stream().allMatch(Outcome.Verdict::holds);
    String injection = String.format(Locale.ROOT, "%.0f appends/s, %d streams", rate, subscribers);
    RunResult run = new RunResult("watch_latency", injection, summary, List.of(summary), java.util.Optional.empty(), 0);
    return new Outcome("watch_latency", ok ? Outcome.Status.PASSED : Outcome.Status.FAILED,
        String.format(Locale.ROOT, "send->event upper bound: p99 %.2f ms; %d stream reopens",
            ms(fromSend.getValueAtPercentile(99)), reopened.get()),
        targetP99Ms, run, verdicts, null, null, null);
  }

  /** Acknowledged appends not yet delivered, summed over the streams. */
  private static long missing(List<java.util.Set<String>> seenByStream, List<String> expected) {
    long n = 0;
    synchronized (seenByStream) {
      for (java.util.Set<String> seen : seenByStream) {
        for (String c : expected) {
          if (!seen.contains(c)) {
            n++;
          }
        }
      }
    }
    return n;
  }

  private static double ms(long micros) {
    return micros / 1000.0;
  }
}
