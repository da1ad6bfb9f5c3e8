package dev.contextmemory.client;

import dev.contextmemory.server.testing.Scrape;
import dev.contextmemory.v1.AppendMessageRequest;
import dev.contextmemory.v1.Channel;
import dev.contextmemory.v1.ContactKey;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.ConversationServiceGrpc.ConversationServiceBlockingStub;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.ListMessagesRequest;
import dev.contextmemory.v1.Message;
import dev.contextmemory.v1.MessageRole;
import dev.contextmemory.v1.UpsertCustomerRequest;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * On demand (docs/scaling.md "Reads on standbys", "Measured"): read latency through a running
 * server, with and without a consistency token, while other callers append, and where the reads
 * went (the server's {@code contextmemory_db_reads_total}). Not a test: it prints figures.
 *
 * <pre>
 * scripts/test -pl client-stub -am -Dtest=StandbyReadMeasurement -Dsurefire.failIfNoSpecifiedTests=false \
 *   -Dmeasure.standby.target=127.0.0.1:55703 -Dmeasure.standby.metrics=55713 \
 *   -Dmeasure.standby.primary='jdbc:postgresql://127.0.0.1:55660/postgres?user=postgres' [-Dmeasure.standby.seconds=15]
 * </pre>
 *
 * Phases, each {@code seconds} long, with 4 appenders writing all the time (no token):
 * <ol>
 *   <li>no token: 4 readers list the newest 20 messages of a conversation (ListMessages), no token;
 *   <li>token: 4 sessions (a client each) append, then at once list their conversation with the
 *       append's token (read-your-writes): the read's latency is reported.
 * </ol>
 */
@EnabledIfSystemProperty(named = "measure.standby.target", matches = ".+")
class StandbyReadMeasurement {
  private static final int THREADS = 4;

  @Test
  void measure() throws Exception {
    String target = System.getProperty("measure.standby.target");
    int metrics = Integer.parseInt(System.getProperty("measure.standby.metrics", "0"));
    String primary = System.getProperty("measure.standby.primary", "");
    long seconds = Long.parseLong(System.getProperty("measure.standby.seconds", "15"));
    ManagedChannel raw = ManagedChannelBuilder.forTarget(target).usePlaintext().build();
    try (ContextMemoryClient setup = ContextMemoryClient.newBuilder(target).build()) {
      List<String> conversations = new ArrayList<>();
      for (int i = 0; i < 2 * THREADS; i++) {
        String customer = setup.customers().upsertCustomer(UpsertCustomerRequest.newBuilder()
            .setContactKey(ContactKey.newBuilder().setExternalRef("standby-measure-" + i)).build()).getCustomer().getId();
        conversations.add(setup.conversations().getOrCreateOpenConversation(GetOrCreateOpenConversationRequest
            .newBuilder().setCustomerId(customer).setChannel(Channel.CHANNEL_WEB).setThreadKey("m").build())
            .getConversation().getId());
      }
      ConversationServiceBlockingStub plain = ConversationServiceGrpc.newBlockingStub(raw);
      AtomicBoolean stop = new AtomicBoolean();
      ExecutorService pool = Executors.newFixedThreadPool(2 * THREADS + 1);
      List<Future<?>> appenders = new ArrayList<>();
      for (int t = 0; t < THREADS; t++) {
        String c = conversations.get(THREADS + t);
        appenders.add(pool.submit(() -> {
          int i = 0;
          while (!stop.get()) {
            plain.withDeadlineAfter(10, TimeUnit.SECONDS).appendMessage(append(c, "load " + i++));
          }
          return null;
        }));
      }
      List<Long> lagBytes = new java.util.concurrent.CopyOnWriteArrayList<>();
      List<Double> lagMs = new java.util.concurrent.CopyOnWriteArrayList<>();
      if (!primary.isEmpty()) {
        pool.submit(() -> {
          try (Connection db = DriverManager.getConnection(primary); Statement st = db.createStatement()) {
            while (!stop.get()) {
              try (ResultSet r = st.executeQuery("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn),"
                  + " extract(epoch FROM replay_lag) * 1000 FROM pg_stat_replication")) {
                while (r.next()) {
                  lagBytes.add(r.getLong(1));
                  lagMs.add(r.getDouble(2));
                }
              }
              Thread.sleep(100);
            }
          }
          return null;
        });
      }
      Thread.sleep(2_000); // the appenders get going

      Scrape before = metrics > 0 ? Scrape.of(metrics) : null;
      long[] noToken = run(pool, seconds, t -> {
        String c = conversations.get(t);
        return () -> {
          long t0 = System.nanoTime();
          plain.withDeadlineAfter(10, TimeUnit.SECONDS).listMessages(list(c));
          return System.nanoTime() - t0;
        };
      });
      Scrape middle = metrics > 0 ? Scrape.of(metrics) : null;
      List<ContextMemoryClient> sessions = new ArrayList<>();
      for (int t = 0; t < THREADS; t++) {
        sessions.add(ContextMemoryClient.newBuilder(target).build());
      }
      long[] token = run(pool, seconds, t -> {
        String c = conversations.get(t);
        ContextMemoryClient s = sessions.get(t);
        int[] i = {0};
        return () -> {
          s.conversations().appendMessage(append(c, "turn " + i[0]++));
          long t0 = System.nanoTime();
          s.conversations().listMessages(list(c));
          return System.nanoTime() - t0;
        };
      });
      Scrape after = metrics > 0 ? Scrape.of(metrics) : null;
      sessions.forEach(ContextMemoryClient::close);
      stop.set(true);
      for (Future<?> f : appenders) {
        f.get(30, TimeUnit.SECONDS);
      }
      pool.shutdown();
      pool.awaitTermination(30, TimeUnit.SECONDS);

      System.out.printf(Locale.ROOT, "standby-measure target %s, %d s per phase, %d appenders%n", target, seconds, THREADS);
      System.out.println("standby-measure no-token reads: " + summary(noToken) + reads(before, middle));
      System.out.println("standby-measure token reads:    " + summary(token) + reads(middle, after));
      if (!lagBytes.isEmpty()) {
        long[] b = lagBytes.stream().mapToLong(Long::longValue).sorted().toArray();
        double[] m = lagMs.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        System.out.printf(Locale.ROOT, "standby-measure replay lag: bytes p50 %d p99 %d max %d; replay_lag ms p50 %.1f"
            + " p99 %.1f max %.1f (%d samples)%n", b[b.length / 2], b[(int) (b.length * 0.99)], b[b.length - 1],
            m[m.length / 2], m[(int) (m.length * 0.99)], m[m.length - 1], b.length);
      }
    } finally {
      raw.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private interface Op {
    long call() throws Exception;
  }

  /** THREADS loops of {@code op(t)} for {@code seconds}; the latencies in ns, sorted. */
  private static long[] run(ExecutorService pool, long seconds, java.util.function.IntFunction<Op> op) throws Exception {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    List<Future<List<Long>>> fs = new ArrayList<>();
    for (int t = 0; t < THREADS; t++) {
      Op o = op.apply(t);
      fs.add(pool.submit(() -> {
        List<Long> l = new ArrayList<>();
        while (System.nanoTime() < end) {
          l.add(o.call());
        }
        return l;
      }));
    }
    List<Long> all = new ArrayList<>();
    for (Future<List<Long>> f : fs) {
      all.addAll(f.get());
    }
    long[] a = all.stream().mapToLong(Long::longValue).toArray();
    Arrays.sort(a);
    return a;
  }

  private static String summary(long[] ns) {
    return String.format(Locale.ROOT, "%d reads, p50 %.2f ms, p99 %.2f ms", ns.length, ns[ns.length / 2] / 1e6,
        ns[(int) (ns.length * 0.99)] / 1e6);
  }

  private static String reads(Scrape a, Scrape b) {
    if (a == null) {
      return "";
    }
    StringBuilder s = new StringBuilder("; reads by target/reason:");
    for (String target : List.of("standby", "primary")) {
      for (String reason : List.of("fresh", "token_replayed", "stale", "token_wait", "unverified_token", "no_standby")) {
        double d = b.sum("contextmemory_db_reads_total", "target", target, "reason", reason)
            - a.sum("contextmemory_db_reads_total", "target", target, "reason", reason);
        if (d > 0) {
          s.append(' ').append(target).append('/').append(reason).append('=').append((long) d);
        }
      }
    }
    return s.toString();
  }

  private static AppendMessageRequest append(String conversation, String text) {
    return AppendMessageRequest.newBuilder().setConversationId(conversation)
        .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent(text)).build();
  }

  private static ListMessagesRequest list(String conversation) {
    return ListMessagesRequest.newBuilder().setConversationId(conversation).setPageSize(20).build();
  }
}
