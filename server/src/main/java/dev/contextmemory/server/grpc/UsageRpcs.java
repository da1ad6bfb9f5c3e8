package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.Conversation;
import dev.contextmemory.server.domain.Usage;
import dev.contextmemory.server.store.UsageStore;
import dev.contextmemory.v1.*;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.UUID;

/**
 * GetConversationStats and GetUsageMetrics of ConversationService (ConversationGrpcService
 * delegates to them): validate, call {@link UsageStore}, map.
 */
final class UsageRpcs {
  static final int DEFAULT_STATS_DAYS = 30;
  static final int MAX_STATS_DAYS = 3_650;
  static final int MAX_HOURLY_BUCKETS = 744;
  static final int MAX_DAILY_BUCKETS = 400;

  private final UsageStore usage;

  UsageRpcs(UsageStore usage) {
    this.usage = usage;
  }

  void stats(GetConversationStatsRequest req, StreamObserver<GetConversationStatsResponse> out) {
    Validator v = new Validator();
    UUID customerId = req.getCustomerId().isEmpty() ? null : v.id("customer_id", req.getCustomerId());
    int days = req.getDays() == 0 ? DEFAULT_STATS_DAYS : req.getDays();
    if (days < 1 || days > MAX_STATS_DAYS) {
      v.add("days", "must be within 1.." + MAX_STATS_DAYS + " (0 means " + DEFAULT_STATS_DAYS + ")");
    }
    v.throwIfInvalid();
    Conversation.Stats s = usage.stats(Tenants.current(), customerId, days);
    reply(out, GetConversationStatsResponse.newBuilder()
        .setWindowStartTime(ProtoMapping.timestamp(s.windowStart()))
        .setWindowEndTime(ProtoMapping.timestamp(s.windowEnd()))
        .setConversationsTotal(s.total())
        .setConversationsOpen(s.open())
        .setConversationsClosed(s.closed())
        .setConversationsWithSummaryEmbedding(s.withSummaryEmbedding())
        .setMessagesTotal(s.messagesUser() + s.messagesAssistant() + s.messagesSystem() + s.messagesTool()
            + s.messagesHumanAgent())
        .setMessagesByRole(roles(s.messagesUser(), s.messagesAssistant(), s.messagesSystem(), s.messagesTool(),
            s.messagesHumanAgent()))
        .setAverageConversationsPerDay((double) s.total() / days)
        .setHandoffsRequested(s.handoffsRequested())
        .setHandoffsAccepted(s.handoffsAccepted())
        .setHandoffsCompleted(s.handoffsCompleted())
        .setConversationsHandoffComplete(s.conversationsHandoffComplete())
        .build());
  }

  void usage(GetUsageMetricsRequest req, StreamObserver<GetUsageMetricsResponse> out) {
    Validator v = new Validator();
    Duration width = switch (req.getBucketWidth()) {
      case USAGE_BUCKET_WIDTH_HOUR -> Duration.ofHours(1);
      case USAGE_BUCKET_WIDTH_DAY -> Duration.ofDays(1);
      case USAGE_BUCKET_WIDTH_UNSPECIFIED, UNRECOGNIZED -> {
        v.add("bucket_width", "is required: USAGE_BUCKET_WIDTH_HOUR or USAGE_BUCKET_WIDTH_DAY");
        yield null;
      }
    };
    TimeRange range = req.getTimeRange();
    Instant start = v.timestamp("time_range.start_time", range.hasStartTime(), range.getStartTime());
    Instant end = v.timestamp("time_range.end_time", range.hasEndTime(), range.getEndTime());
    if (!range.hasStartTime()) {
      v.add("time_range.start_time", "is required");
    }
    if (!range.hasEndTime()) {
      v.add("time_range.end_time", "is required");
    }
    if (start != null && end != null && !start.isBefore(end)) {
      v.add("time_range", "start_time must be before end_time");
      start = null;
    }
    if (width != null && start != null && end != null) {
      ChronoUnit unit = width.equals(Duration.ofDays(1)) ? ChronoUnit.DAYS : ChronoUnit.HOURS;
      start = start.truncatedTo(unit);
      Instant endDown = end.truncatedTo(unit);
      end = endDown.equals(end) ? end : endDown.plus(width);
      long buckets = Duration.between(start, end).dividedBy(width);
      int max = unit == ChronoUnit.DAYS ? MAX_DAILY_BUCKETS : MAX_HOURLY_BUCKETS;
      if (buckets > max) {
        v.add("time_range", "spans " + buckets + " buckets; at most " + max + " of this width");
      }
    }
    v.throwIfInvalid();
    Usage u = usage.usage(Tenants.current(), new Usage.Query(start, end, width, req.getGroupByChannel()));
    GetUsageMetricsResponse.Builder b = GetUsageMetricsResponse.newBuilder();
    for (Usage.Bucket x : u.buckets()) {
      UsageBucket.Builder ub = UsageBucket.newBuilder()
          .setStartTime(ProtoMapping.timestamp(x.start()))
          .setChannel(x.channel().isEmpty() ? Channel.CHANNEL_UNSPECIFIED : ConversationMapping.channel(x.channel()))
          .setConversationsStarted(x.conversationsStarted())
          .setConversationsClosed(x.conversationsClosed())
          .setMessagesByRole(roles(x.messagesUser(), x.messagesAssistant(), x.messagesSystem(), x.messagesTool(),
              x.messagesHumanAgent()))
          .setHandoffsRequested(x.handoffsRequested())
          .setHandoffsAccepted(x.handoffsAccepted())
          .setHandoffsCompleted(x.handoffsCompleted())
          .setMemoriesCreated(x.memoriesCreated())
          .setConversationsWithEmbeddingShare(share(x.conversationsWithEmbedding(), x.conversationsStarted()))
          .setMemoriesWithEmbeddingShare(share(x.memoriesWithEmbedding(), x.memoriesCreated()));
      if (x.medianWaitToAccept() != null) {
        ub.setMedianWaitToAccept(HandoffMapping.duration(x.medianWaitToAccept()))
            .setP90WaitToAccept(HandoffMapping.duration(x.p90WaitToAccept()));
      }
      b.addBuckets(ub);
    }
    if (u.refreshedAt() != null) {
      b.setRefreshTime(ProtoMapping.timestamp(u.refreshedAt()));
    }
    reply(out, b.build());
  }

  private static MessageRoleCounts roles(long user, long assistant, long system, long tool, long humanAgent) {
    return MessageRoleCounts.newBuilder().setUser(user).setAssistant(assistant).setSystem(system).setTool(tool)
        .setHumanAgent(humanAgent).build();
  }

  private static double share(long part, long whole) {
    return whole == 0 ? 0 : (double) part / whole;
  }

  private static <T> void reply(StreamObserver<T> out, T response) {
    out.onNext(response);
    out.onCompleted();
  }
}
