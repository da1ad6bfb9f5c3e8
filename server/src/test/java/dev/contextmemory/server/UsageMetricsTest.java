package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertInvalid;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Duration;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.Durations;
import com.google.protobuf.util.Timestamps;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.UUID;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * GetUsageMetrics and GetConversationStats' handoff counts against counts computed by brute force
 * here: the test writes rows with known times over ten days (behind the API, which cannot backdate
 * conversations, memories or handoffs), keeps its own copy, and compares every bucket of the
 * answer with what a plain loop over that copy says.
 */
class UsageMetricsTest {
  private static final String[] CHANNELS = {"sms", "messenger", "web", "voice", "email", "other"};
  private static final String[] ROLES = {"user", "assistant", "system", "tool", "human_agent"};
  private static final Instant NOW = Instant.now().truncatedTo(ChronoUnit.MICROS);

  record Conv(UUID id, String channel, Instant started, Instant closed, boolean deleted, boolean embedded) {}
  record Msg(Conv conv, String role, Instant created) {}
  record Mem(Conv conv, Instant created, boolean embedded) {}
  record Hand(Conv conv, Instant requested, Instant accepted, Instant completed) {}

  private static TestServer server;
  private static ConversationServiceGrpc.ConversationServiceBlockingStub conversations;
  private static final List<Conv> convs = new ArrayList<>();
  private static final List<Msg> msgs = new ArrayList<>();
  private static final List<Mem> mems = new ArrayList<>();
  private static final List<Hand> hands = new ArrayList<>();

  @BeforeAll
  static void seed() throws SQLException {
    server = TestServer.start(Map.of());
    conversations = ConversationServiceGrpc.newBlockingStub(server.channel());
    Random r = new Random(14);
    try (Connection c = DriverManager.getConnection(server.dbUrl())) {
      c.setAutoCommit(false);
      for (String tenant : List.of("default", "other-tenant")) {
        UUID customer = UUID.randomUUID();
        exec(c, "INSERT INTO customers (tenant_id, id) VALUES (?, ?)", tenant, customer);
        boolean counted = tenant.equals("default");
        for (int i = 0; i < 120; i++) {
          Instant started = NOW.minus(r.nextInt(10 * 24 * 60), ChronoUnit.MINUTES);
          Instant closed = r.nextInt(3) == 0 ? started.plus(r.nextInt(600), ChronoUnit.MINUTES) : null;
          if (closed != null && closed.isAfter(NOW)) {
            closed = NOW;
          }
          Conv conv = new Conv(UUID.randomUUID(), CHANNELS[r.nextInt(CHANNELS.length)], started, closed,
              r.nextInt(10) == 0, r.nextBoolean());
          exec(c, "INSERT INTO conversations (tenant_id, id, customer_id, channel, thread_key, started_at, closed_at,"
                  + " deleted_at, summary_embedding, last_sequence, message_count)"
                  + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? THEN array_fill(0.5, ARRAY[768])::vector END, 12, 12)",
              tenant, conv.id(), customer, conv.channel(), "t" + i, sql(started), sql(closed),
              conv.deleted() ? sql(NOW) : null, conv.embedded());
          for (int s = 1; s <= 12; s++) {
            Msg m = new Msg(conv, ROLES[r.nextInt(ROLES.length)], min(started.plus(r.nextInt(3000), ChronoUnit.MINUTES)));
            exec(c, "INSERT INTO messages (tenant_id, id, conversation_id, sequence, role, content, tool_call_id,"
                    + " created_at) VALUES (?, ?, ?, ?, ?, 'x', ?, ?)",
                tenant, UUID.randomUUID(), conv.id(), s, m.role(), m.role().equals("tool") ? "call" : null, sql(m.created()));
            if (counted) {
              msgs.add(m);
            }
          }
          if (r.nextInt(3) == 0) {
            Mem mem = new Mem(r.nextBoolean() ? conv : null, NOW.minus(r.nextInt(10 * 24 * 60), ChronoUnit.MINUTES),
                r.nextBoolean());
            exec(c, "INSERT INTO memories (tenant_id, id, customer_id, conversation_id, kind, content, embedding,"
                    + " created_at) VALUES (?, ?, ?, ?, 'fact', 'm', CASE WHEN ? THEN array_fill(0.5, ARRAY[768])::vector"
                    + " END, ?)",
                tenant, UUID.randomUUID(), customer, mem.conv() == null || mem.conv().deleted() ? null : conv.id(),
                mem.embedded(), sql(mem.created()));
            if (counted) {
              // Deleting a conversation unlinks its memories (DeleteConversation does so in its transaction).
              mems.add(mem.conv() != null && mem.conv().deleted() ? new Mem(null, mem.created(), mem.embedded()) : mem);
            }
          }
          if (r.nextInt(4) == 0) {
            Instant requested = started.plus(r.nextInt(120), ChronoUnit.MINUTES);
            Instant accepted = r.nextInt(4) == 0 ? null : min(requested.plusSeconds(r.nextInt(3600)));
            Instant completed = accepted == null || r.nextBoolean() ? null : min(accepted.plusSeconds(r.nextInt(7200)));
            String state = completed != null ? "completed" : accepted != null ? "accepted" : "requested";
            exec(c, "INSERT INTO handoffs (tenant_id, id, conversation_id, customer_id, channel, state, requested_at,"
                    + " requested_by, assignee_id, accepted_at, accepted_by, completed_at, completed_by)"
                    + " VALUES (?, ?, ?, ?, ?, ?, ?, 'k', ?, ?, ?, ?, ?)",
                tenant, UUID.randomUUID(), conv.id(), customer, conv.channel(), state, sql(requested),
                accepted == null ? null : "agent", sql(accepted), accepted == null ? null : "k", sql(completed),
                completed == null ? null : "k");
            if (counted) {
              hands.add(new Hand(conv, requested, accepted, completed));
            }
          }
          if (counted) {
            convs.add(conv);
          }
        }
      }
      flush();
      c.commit();
    }
    assertTrue(server.server().usageRollup().refresh());
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  @Test
  void dailyAndHourlyBucketsEqualTheBruteForceCounts() {
    Instant start = NOW.minus(11, ChronoUnit.DAYS);
    Instant end = NOW.plus(2, ChronoUnit.HOURS); // past anything another test of this class adds
    for (UsageBucketWidth width : List.of(UsageBucketWidth.USAGE_BUCKET_WIDTH_DAY, UsageBucketWidth.USAGE_BUCKET_WIDTH_HOUR)) {
      ChronoUnit unit = width == UsageBucketWidth.USAGE_BUCKET_WIDTH_DAY ? ChronoUnit.DAYS : ChronoUnit.HOURS;
      for (boolean byChannel : List.of(false, true)) {
        GetUsageMetricsResponse r = conversations.getUsageMetrics(GetUsageMetricsRequest.newBuilder()
            .setTimeRange(TimeRange.newBuilder().setStartTime(ts(start)).setEndTime(ts(end)))
            .setBucketWidth(width).setGroupByChannel(byChannel).build());
        Map<String, Expected> expected = bruteForce(unit, byChannel, start.truncatedTo(unit));
        String label = width + (byChannel ? " by channel" : "");
        if (!byChannel) {
          long buckets = java.time.Duration.between(start.truncatedTo(unit), end.truncatedTo(unit).plus(1, unit))
              .dividedBy(java.time.Duration.of(1, unit));
          assertEquals(buckets, r.getBucketsCount(), label + ": every bucket, the empty ones too");
        }
        Map<String, Expected> actual = new TreeMap<>();
        for (UsageBucket b : r.getBucketsList()) {
          Expected e = Expected.of(b);
          if (!e.isEmpty()) {
            actual.put(Timestamps.toString(b.getStartTime()) + "|" + b.getChannel(), e);
          }
        }
        assertEquals(expected.keySet(), actual.keySet(), label);
        for (String k : expected.keySet()) {
          expected.get(k).assertMatches(actual.get(k), label + " " + k);
        }
        assertTrue(r.hasRefreshTime());
      }
    }
  }

  @Test
  void figuresAreAsFreshAsTheLastRefresh() {
    GetUsageMetricsRequest req = GetUsageMetricsRequest.newBuilder()
        .setTimeRange(TimeRange.newBuilder().setStartTime(ts(NOW.minus(1, ChronoUnit.DAYS)))
            .setEndTime(ts(NOW.plus(1, ChronoUnit.DAYS))))
        .setBucketWidth(UsageBucketWidth.USAGE_BUCKET_WIDTH_DAY).build();
    GetUsageMetricsResponse before = conversations.getUsageMetrics(req);
    // A new conversation and message through the API: not counted until the next refresh.
    CustomerServiceGrpc.CustomerServiceBlockingStub customers = CustomerServiceGrpc.newBlockingStub(server.channel());
    String customerId = customers.createCustomer(CreateCustomerRequest.newBuilder()
        .setCustomer(Customer.newBuilder().setDisplayName("Fresh")).build()).getCustomer().getId();
    Conversation made = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(customerId).setChannel(Channel.CHANNEL_WEB).setThreadKey("fresh").build()).getConversation();
    Message said = conversations.appendMessage(AppendMessageRequest.newBuilder().setConversationId(made.getId())
        .setMessage(Message.newBuilder().setRole(MessageRole.MESSAGE_ROLE_USER).setContent("hi")).build()).getMessage();
    // The brute-force copy gets them too, for the other tests of this class.
    Conv fresh = new Conv(UUID.fromString(made.getId()), "web", instant(made.getStartTime()), null, false, false);
    convs.add(fresh);
    msgs.add(new Msg(fresh, "user", instant(said.getCreateTime())));
    assertEquals(before, conversations.getUsageMetrics(req));

    assertTrue(server.server().usageRollup().refresh());
    GetUsageMetricsResponse after = conversations.getUsageMetrics(req);
    assertTrue(Timestamps.compare(after.getRefreshTime(), before.getRefreshTime()) > 0);
    assertEquals(total(before, UsageBucket::getConversationsStarted) + 1, total(after, UsageBucket::getConversationsStarted));
    assertEquals(total(before, b -> b.getMessagesByRole().getUser()) + 1,
        total(after, b -> b.getMessagesByRole().getUser()));
  }

  @Test
  void statsCountHandoffs() {
    GetConversationStatsResponse s = conversations.getConversationStats(GetConversationStatsRequest.newBuilder()
        .setDays(30).build());
    List<Hand> live = hands.stream().filter(h -> !h.conv().deleted()).toList();
    // Other tests of this class add no handoffs; the window covers the seeded ten days.
    assertEquals(live.size(), s.getHandoffsRequested());
    assertEquals(live.stream().filter(h -> h.accepted() != null).count(), s.getHandoffsAccepted());
    assertEquals(live.stream().filter(h -> h.completed() != null).count(), s.getHandoffsCompleted());
    assertEquals(live.stream().filter(h -> h.completed() != null).map(Hand::conv).distinct().count(),
        s.getConversationsHandoffComplete());
    assertEquals(msgs.stream().filter(m -> !m.conv().deleted() && m.role().equals("human_agent")).count(),
        s.getMessagesByRole().getHumanAgent());
  }

  @Test
  void badRangesNameTheField() {
    TimeRange ok = TimeRange.newBuilder().setStartTime(ts(NOW.minus(1, ChronoUnit.DAYS))).setEndTime(ts(NOW)).build();
    assertInvalid("bucket_width", () -> conversations.getUsageMetrics(GetUsageMetricsRequest.newBuilder()
        .setTimeRange(ok).build()));
    assertInvalid("time_range.start_time", () -> conversations.getUsageMetrics(GetUsageMetricsRequest.newBuilder()
        .setTimeRange(ok.toBuilder().clearStartTime()).setBucketWidth(UsageBucketWidth.USAGE_BUCKET_WIDTH_DAY).build()));
    assertInvalid("time_range.end_time", () -> conversations.getUsageMetrics(GetUsageMetricsRequest.newBuilder()
        .setTimeRange(ok.toBuilder().clearEndTime()).setBucketWidth(UsageBucketWidth.USAGE_BUCKET_WIDTH_DAY).build()));
    assertInvalid("time_range", () -> conversations.getUsageMetrics(GetUsageMetricsRequest.newBuilder()
        .setTimeRange(TimeRange.newBuilder().setStartTime(ok.getEndTime()).setEndTime(ok.getStartTime()))
        .setBucketWidth(UsageBucketWidth.USAGE_BUCKET_WIDTH_DAY).build()));
    assertInvalid("time_range", () -> conversations.getUsageMetrics(GetUsageMetricsRequest.newBuilder()
        .setTimeRange(ok.toBuilder().setStartTime(ts(NOW.minus(32, ChronoUnit.DAYS))))
        .setBucketWidth(UsageBucketWidth.USAGE_BUCKET_WIDTH_HOUR).build()));
    assertInvalid("time_range", () -> conversations.getUsageMetrics(GetUsageMetricsRequest.newBuilder()
        .setTimeRange(ok.toBuilder().setStartTime(ts(NOW.minus(401, ChronoUnit.DAYS))))
        .setBucketWidth(UsageBucketWidth.USAGE_BUCKET_WIDTH_DAY).build()));
    assertInvalid("time_range.start_time", () -> conversations.getUsageMetrics(GetUsageMetricsRequest.newBuilder()
        .setTimeRange(ok.toBuilder().setStartTime(Timestamp.newBuilder().setSeconds(Long.MAX_VALUE)))
        .setBucketWidth(UsageBucketWidth.USAGE_BUCKET_WIDTH_DAY).build()));
    // 90 daily buckets, the documented use, is fine.
    assertEquals(90, conversations.getUsageMetrics(GetUsageMetricsRequest.newBuilder()
        .setTimeRange(TimeRange.newBuilder().setStartTime(ts(NOW.truncatedTo(ChronoUnit.DAYS).minus(90, ChronoUnit.DAYS)))
            .setEndTime(ts(NOW.truncatedTo(ChronoUnit.DAYS))))
        .setBucketWidth(UsageBucketWidth.USAGE_BUCKET_WIDTH_DAY).build()).getBucketsCount());
  }

  /** Expected figures per "bucket start|channel" from the seeded rows, only buckets with activity. */
  private static Map<String, Expected> bruteForce(ChronoUnit unit, boolean byChannel, Instant from) {
    Map<String, Expected> out = new TreeMap<>();
    Function<Conv, Channel> ch = c -> byChannel && c != null ? channel(c.channel()) : Channel.CHANNEL_UNSPECIFIED;
    for (Conv c : convs) {
      if (c.deleted()) {
        continue;
      }
      at(out, unit, from, c.started(), ch.apply(c)).started++;
      if (c.embedded()) {
        at(out, unit, from, c.started(), ch.apply(c)).startedWithEmbedding++;
      }
      if (c.closed() != null) {
        at(out, unit, from, c.closed(), ch.apply(c)).closed++;
      }
    }
    for (Msg m : msgs) {
      if (!m.conv().deleted()) {
        at(out, unit, from, m.created(), ch.apply(m.conv())).roles.merge(m.role(), 1L, Long::sum);
      }
    }
    for (Mem m : mems) {
      Expected e = at(out, unit, from, m.created(), ch.apply(m.conv()));
      e.memories++;
      e.memoriesWithEmbedding += m.embedded() ? 1 : 0;
    }
    for (Hand h : hands) {
      if (h.conv().deleted()) {
        continue;
      }
      at(out, unit, from, h.requested(), ch.apply(h.conv())).requested++;
      if (h.accepted() != null) {
        Expected e = at(out, unit, from, h.accepted(), ch.apply(h.conv()));
        e.accepted++;
        e.waits.add(java.time.Duration.between(h.requested(), h.accepted()).toNanos() / 1e9);
      }
      if (h.completed() != null) {
        at(out, unit, from, h.completed(), ch.apply(h.conv())).completed++;
      }
    }
    out.values().removeIf(Expected::isEmpty);
    return out;
  }

  private static Expected at(Map<String, Expected> out, ChronoUnit unit, Instant from, Instant t, Channel channel) {
    Instant bucket = t.truncatedTo(unit);
    if (bucket.isBefore(from)) {
      return new Expected(); // outside the range: counted nowhere
    }
    return out.computeIfAbsent(Timestamps.toString(ts(bucket)) + "|" + channel, k -> new Expected());
  }

  /** One bucket's figures; waits in seconds. */
  static final class Expected {
    long started;
    long startedWithEmbedding;
    long closed;
    long memories;
    long memoriesWithEmbedding;
    long requested;
    long accepted;
    long completed;
    Map<String, Long> roles = new TreeMap<>();
    List<Double> waits = new ArrayList<>();
    Duration median;
    Duration p90;
    double conversationShare;
    double memoryShare;

    static Expected of(UsageBucket b) {
      Expected e = new Expected();
      e.started = b.getConversationsStarted();
      e.closed = b.getConversationsClosed();
      e.memories = b.getMemoriesCreated();
      e.requested = b.getHandoffsRequested();
      e.accepted = b.getHandoffsAccepted();
      e.completed = b.getHandoffsCompleted();
      MessageRoleCounts r = b.getMessagesByRole();
      long[] counts = {r.getUser(), r.getAssistant(), r.getSystem(), r.getTool(), r.getHumanAgent()};
      for (int i = 0; i < ROLES.length; i++) {
        if (counts[i] > 0) {
          e.roles.put(ROLES[i], counts[i]);
        }
      }
      e.median = b.hasMedianWaitToAccept() ? b.getMedianWaitToAccept() : null;
      e.p90 = b.hasP90WaitToAccept() ? b.getP90WaitToAccept() : null;
      e.conversationShare = b.getConversationsWithEmbeddingShare();
      e.memoryShare = b.getMemoriesWithEmbeddingShare();
      return e;
    }

    boolean isEmpty() {
      return started == 0 && closed == 0 && memories == 0 && requested == 0 && accepted == 0 && completed == 0
          && roles.isEmpty();
    }

    void assertMatches(Expected actual, String label) {
      assertEquals(started, actual.started, label + " conversations_started");
      assertEquals(closed, actual.closed, label + " conversations_closed");
      assertEquals(roles, actual.roles, label + " messages_by_role");
      assertEquals(memories, actual.memories, label + " memories_created");
      assertEquals(requested, actual.requested, label + " handoffs_requested");
      assertEquals(accepted, actual.accepted, label + " handoffs_accepted");
      assertEquals(completed, actual.completed, label + " handoffs_completed");
      assertEquals(started == 0 ? 0 : (double) startedWithEmbedding / started, actual.conversationShare, 1e-12,
          label + " conversations_with_embedding_share");
      assertEquals(memories == 0 ? 0 : (double) memoriesWithEmbedding / memories, actual.memoryShare, 1e-12,
          label + " memories_with_embedding_share");
      if (waits.isEmpty()) {
        assertEquals(null, actual.median, label + " median wait");
        assertEquals(null, actual.p90, label + " p90 wait");
      } else {
        assertEquals(percentile(waits, 0.5), Durations.toNanos(actual.median) / 1e9, 1e-6, label + " median wait");
        assertEquals(percentile(waits, 0.9), Durations.toNanos(actual.p90) / 1e9, 1e-6, label + " p90 wait");
      }
    }
  }

  /** PostgreSQL's percentile_cont: linear interpolation between the closest ranks. */
  static double percentile(List<Double> values, double p) {
    List<Double> v = values.stream().sorted(Comparator.naturalOrder()).toList();
    double pos = p * (v.size() - 1);
    int lo = (int) Math.floor(pos);
    int hi = (int) Math.ceil(pos);
    return v.get(lo) + (pos - lo) * (v.get(hi) - v.get(lo));
  }

  private static long total(GetUsageMetricsResponse r, java.util.function.ToLongFunction<UsageBucket> f) {
    return r.getBucketsList().stream().mapToLong(f).sum();
  }

  private static Channel channel(String stored) {
    return Channel.valueOf("CHANNEL_" + stored.toUpperCase(java.util.Locale.ROOT));
  }

  private static Instant instant(Timestamp t) {
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
  }

  private static Instant min(Instant t) {
    return t.isAfter(NOW) ? NOW : t;
  }

  private static Timestamp ts(Instant t) {
    return Timestamps.fromNanos(t.getEpochSecond() * 1_000_000_000L + t.getNano());
  }

  private static java.sql.Timestamp sql(Instant t) {
    return t == null ? null : java.sql.Timestamp.from(t);
  }

  /** Batched per statement, run in order of first use (which is foreign-key order) by {@link #flush}. */
  private static final Map<String, PreparedStatement> batches = new java.util.LinkedHashMap<>();

  private static void exec(Connection c, String sql, Object... args) throws SQLException {
    PreparedStatement ps = batches.get(sql);
    if (ps == null) {
      ps = c.prepareStatement(sql);
      batches.put(sql, ps);
    }
    for (int i = 0; i < args.length; i++) {
      ps.setObject(i + 1, args[i]);
    }
    ps.addBatch();
  }

  private static void flush() throws SQLException {
    for (PreparedStatement ps : batches.values()) {
      ps.executeBatch();
      ps.close();
    }
    batches.clear();
  }
}
