package dev.contextmemory.loadtest.scenarios;

import dev.contextmemory.loadtest.data.Facts;
import dev.contextmemory.loadtest.dsl.Calls;
import dev.contextmemory.loadtest.dsl.RunResult;
import dev.contextmemory.loadtest.dsl.Summary;
import dev.contextmemory.loadtest.report.Outcome;
import dev.contextmemory.v1.ContactKey;
import dev.contextmemory.v1.CreateMemoryRequest;
import dev.contextmemory.v1.CreateMemoryResponse;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.EmbeddingState;
import dev.contextmemory.v1.ListMemoriesRequest;
import dev.contextmemory.v1.ListMemoriesResponse;
import dev.contextmemory.v1.Memory;
import dev.contextmemory.v1.MemoryKind;
import dev.contextmemory.v1.MemoryServiceGrpc;
import dev.contextmemory.v1.UpsertCustomerRequest;
import io.grpc.Channel;
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
 * Issue 15's write → searchable: memories created as text only (CreateMemory, no vector) at a
 * fixed rate on a server with the local model; each is searchable by vector once the server's
 * worker has embedded it ({@code embedding_state} READY). The latency is from sending the
 * CreateMemory to the first poll that sees it READY.
 *
 * <p>Polling: one poller lists the newest memories of the scenario's own customer every
 * {@link #POLL} (ListMemories, newest first, a page just large enough to reach the oldest memory
 * still pending), instead of one GetMemory per memory per poll, which at 50 writes/s would be
 * hundreds of calls a second competing with the worker for the same 2 cores. The figures are
 * therefore high by up to one poll interval plus a ListMemories call. A memory not READY within
 * {@link #GIVE_UP} counts as an error, as does a FAILED one.
 */
public final class WriteSearchable {
  static final Duration POLL = Duration.ofMillis(25);
  static final Duration GIVE_UP = Duration.ofSeconds(10);
  private static final Duration TIMEOUT = Duration.ofSeconds(10);

  private WriteSearchable() {}

  /** A write waiting to be seen READY: when it was sent, and its place in the order of acknowledgements. */
  private record Pending(long sentNanos, long ackSeq, boolean measured) {}

  public static Outcome run(Channel channel, double rate, Duration warmUp, Duration measure, double targetP99Ms,
      long seed, PrintStream log) throws InterruptedException {
    String customer = Calls.blocking(channel, CustomerServiceGrpc.getUpsertCustomerMethod(),
        UpsertCustomerRequest.newBuilder().setContactKey(ContactKey.newBuilder().setExternalRef("lt-write-searchable"))
            .setCustomer(Customer.newBuilder().setDisplayName("Load test write -> searchable")).build(), TIMEOUT)
        .getCustomer().getId();
    Facts facts = new Facts(seed);
    List<String> texts = facts.texts();
    Map<String, Pending> pending = new ConcurrentHashMap<>();
    AtomicLong acks = new AtomicLong();
    AtomicLong sent = new AtomicLong();
    AtomicLong writeErrors = new AtomicLong();
    AtomicLong answered = new AtomicLong();
    Map<String, Long> writeCodes = new ConcurrentHashMap<>();
    AtomicLong notEmbedding = new AtomicLong();
    AtomicLong failed = new AtomicLong();
    AtomicLong givenUp = new AtomicLong();
    AtomicLong seen = new AtomicLong();
    Histogram latency = new Histogram(60_000_000L, 3); // microseconds
    Histogram write = new Histogram(60_000_000L, 3);
    long start = System.nanoTime();
    long measureFrom = start + warmUp.toNanos();
    long stopAt = measureFrom + measure.toNanos();
    ScheduledExecutorService ticks = Executors.newSingleThreadScheduledExecutor();
    long periodNanos = (long) (1e9 / rate);
    ticks.scheduleAtFixedRate(() -> {
      long now = System.nanoTime();
      if (now >= stopAt) {
        return;
      }
      long n = sent.getAndIncrement();
      boolean measured = now >= measureFrom;
      // A fact text made unique, so no two rows share a text (the worker embeds each row anyway).
      String content = texts.get((int) Math.floorMod(n * 7919L + seed, texts.size())) + ", noted on visit "
          + (n + 1);
      var req = CreateMemoryRequest.newBuilder().setCustomerId(customer)
          .setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT).setContent(content)
              .setSource("loadtest-write-searchable"))
          .setRequestId(UUID.randomUUID().toString()).build();
      Calls.unary(channel, MemoryServiceGrpc.getCreateMemoryMethod(), req, TIMEOUT)
          .whenComplete((CreateMemoryResponse r, Throwable t) -> {
            answered.incrementAndGet();
            if (t != null) {
              if (measured) {
                writeErrors.incrementAndGet();
                writeCodes.merge("WRITE_" + Calls.asStatus(t).getStatus().getCode(), 1L, Long::sum);
              }
              return;
            }
            if (measured) {
              synchronized (write) {
                write.recordValue(Math.max(1, (System.nanoTime() - now) / 1_000));
              }
            }
            if (r.getMemory().getEmbeddingState() == EmbeddingState.EMBEDDING_STATE_NONE) {
              notEmbedding.incrementAndGet(); // the server has no embedder
              return;
            }
            pending.put(r.getMemory().getId(), new Pending(now, acks.incrementAndGet(), measured));
          });
    }, 0, periodNanos, TimeUnit.NANOSECONDS);

    long polls = 0;
    long pollErrors = 0;
    // Poll until every write has been seen (or given up on), a bounded time after the last one.
    long endBy = stopAt + GIVE_UP.toNanos() + TIMEOUT.toNanos();
    while (System.nanoTime() < endBy && (System.nanoTime() < stopAt || !pending.isEmpty()
        || sent.get() > answered.get())) {
      Thread.sleep(POLL.toMillis());
      if (pending.isEmpty()) {
        continue;
      }
      long oldest = pending.values().stream().mapToLong(Pending::ackSeq).min().orElse(acks.get());
      // Writes acknowledged since the oldest pending one, and a margin for those still in flight.
      int page = (int) Math.min(1_000, acks.get() - oldest + 1 + 64);
      ListMemoriesResponse r;
      try {
        polls++;
        r = Calls.blocking(channel, MemoryServiceGrpc.getListMemoriesMethod(),
            ListMemoriesRequest.newBuilder().setCustomerId(customer).setPageSize(page).build(), TIMEOUT);
      } catch (io.grpc.StatusRuntimeException e) {
        pollErrors++;
        continue;
      }
      long now = System.nanoTime();
      for (Memory m : r.getMemoriesList()) {
        if (m.getEmbeddingState() == EmbeddingState.EMBEDDING_STATE_PENDING) {
          continue;
        }
        Pending p = pending.remove(m.getId());
        if (p == null) {
          continue;
        }
        if (!p.measured()) {
          continue;
        }
        if (m.getEmbeddingState() == EmbeddingState.EMBEDDING_STATE_READY) {
          seen.incrementAndGet();
          latency.recordValue(Math.max(1, (now - p.sentNanos()) / 1_000));
        } else {
          failed.incrementAndGet();
        }
      }
      pending.values().removeIf(p -> {
        if (now - p.sentNanos() > GIVE_UP.toNanos()) {
          if (p.measured()) {
            givenUp.incrementAndGet();
          }
          return true;
        }
        return false;
      });
    }
    ticks.shutdownNow();
    if (notEmbedding.get() > 0) {
      return Outcome.skipped("write_searchable", targetP99Ms, "the server does not embed (a text-only memory's"
          + " embedding_state is NONE); run it on a server with CONTEXT_MEMORY_EMBEDDER=local");
    }
    long stillPending = pending.values().stream().filter(Pending::measured).count();
    givenUp.addAndGet(stillPending);

    double seconds = measure.toNanos() / 1e9;
    long errors = writeErrors.get() + failed.get() + givenUp.get();
    Map<String, Long> byCode = new java.util.LinkedHashMap<>();
    byCode.putAll(new java.util.TreeMap<>(writeCodes));
    if (failed.get() > 0) {
      byCode.put("EMBEDDING_FAILED", failed.get());
    }
    if (givenUp.get() > 0) {
      byCode.put("NOT_READY_IN_" + GIVE_UP.toSeconds() + "S", givenUp.get());
    }
    Summary summary = new Summary("write_searchable", seen.get() + errors, errors, ms(latency.getMinValue()),
        ms(latency.getValueAtPercentile(50)), ms(latency.getValueAtPercentile(75)),
        ms(latency.getValueAtPercentile(95)), ms(latency.getValueAtPercentile(99)),
        ms(latency.getValueAtPercentile(99.9)), ms(latency.getMaxValue()), latency.getMean() / 1000.0,
        seen.get() / seconds, seconds, byCode, List.of(), List.of(), latency.copy());
    List<Outcome.Verdict> verdicts = new ArrayList<>();
    verdicts.add(new Outcome.Verdict(String.format(Locale.ROOT, "p99 < %.0f ms (CreateMemory sent -> seen READY)",
        targetP99Ms), String.format(Locale.ROOT, "p99 = %.1f ms", summary.p99Ms()), summary.p99Ms() < targetP99Ms));
    verdicts.add(new Outcome.Verdict("every acknowledged write embedded within " + GIVE_UP.toSeconds() + " s",
        String.format(Locale.ROOT, "%,d READY, %d FAILED, %d not READY in time, %d writes failed", seen.get(),
            failed.get(), givenUp.get(), writeErrors.get()), errors == 0));
    String note = String.format(Locale.ROOT, "CreateMemory itself: p50 %.2f ms, p99 %.2f ms; %d ListMemories polls"
        + " every %d ms (%d failed), so the figures are high by up to one poll", ms(write.getValueAtPercentile(50)),
        ms(write.getValueAtPercentile(99)), polls, POLL.toMillis(), pollErrors);
    log.printf(Locale.ROOT, "write_searchable: %,d memories at %.0f/s: write -> READY p50 %.1f ms, p99 %.1f ms, max %.1f"
        + " ms; %s%n", seen.get(), rate, summary.p50Ms(), summary.p99Ms(), summary.maxMs(), note);
    boolean ok = verdicts.stream().allMatch(Outcome.Verdict::holds);
    RunResult run = new RunResult("write_searchable", String.format(Locale.ROOT, "%.0f memories/s as text", rate),
        summary, List.of(summary), java.util.Optional.empty(), 0);
    return new Outcome("write_searchable", ok ? Outcome.Status.PASSED : Outcome.Status.FAILED, note, targetP99Ms, run,
        verdicts, null, null, null);
  }

  private static double ms(long micros) {
    return micros / 1000.0;
  }
}
