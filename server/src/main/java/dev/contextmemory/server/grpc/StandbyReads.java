package dev.contextmemory.server.grpc;

import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.MemoryServiceGrpc;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ForwardingServerCall.SimpleForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import javax.sql.DataSource;

/**
 * Read-your-writes across the primary and its standbys, as an interceptor and the data source Jdbi
 * borrows through. Reads (the lists, searches, FetchContext and statistics in {@link #READS}) get
 * their connections where {@link StandbyRouter} sends them, judged by the request's
 * {@value ConsistencyTokens#HEADER} header; every other call uses the primary, and a call that
 * committed gets a token of its last commit in that trailer (on errors too: ImportMessages may
 * have committed chunks before it failed). Used only when standbys are configured.
 */
public final class StandbyReads implements ServerInterceptor {
  /** The RPCs that only read, and may therefore be served by a standby. */
  static final Set<String> READS = Set.copyOf(Stream.of(
      CustomerServiceGrpc.getListCustomersMethod(), CustomerServiceGrpc.getListAddressesMethod(),
      ConversationServiceGrpc.getListConversationsMethod(), ConversationServiceGrpc.getListMessagesMethod(),
      ConversationServiceGrpc.getSearchMessagesMethod(), ConversationServiceGrpc.getGetConversationStatsMethod(),
      MemoryServiceGrpc.getListMemoriesMethod(), MemoryServiceGrpc.getSearchMemoriesMethod(),
      MemoryServiceGrpc.getSearchConversationsMethod(), MemoryServiceGrpc.getFetchContextMethod())
      .map(MethodDescriptor::getFullMethodName).toList());

  private final StandbyRouter router;
  private final ConsistencyTokens tokens;

  public StandbyReads(StandbyRouter router, ConsistencyTokens tokens) {
    this.router = router;
    this.tokens = tokens;
  }

  @Override
  public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(ServerCall<ReqT, RespT> call, Metadata headers,
      ServerCallHandler<ReqT, RespT> next) {
    if (READS.contains(call.getMethodDescriptor().getFullMethodName())) {
      String token = headers.get(ConsistencyTokens.KEY);
      DataSource target = router.route(token == null || token.isEmpty() ? 0 : tokens.decode(token));
      if (target == null) {
        return next.startCall(call, headers);
      }
      return Contexts.interceptCall(Context.current().withValue(StandbyRouter.ROUTE, target), call, headers, next);
    }
    AtomicLong commits = new AtomicLong();
    ServerCall<ReqT, RespT> tokened = new SimpleForwardingServerCall<>(call) {
      @Override
      public void close(Status status, Metadata trailers) {
        long lsn = commits.get();
        if (lsn > 0) {
          trailers.put(ConsistencyTokens.KEY, tokens.encode(lsn));
        }
        super.close(status, trailers);
      }
    };
    return Contexts.interceptCall(Context.current().withValue(ConsistencyTokens.COMMITS, commits), tokened,
        headers, next);
  }

  /** The data source Jdbi borrows through: the call's routed standby, else the primary. */
  public static DataSource routing(DataSource primary) {
    return new DataSource() {
      private DataSource target() {
        DataSource routed = StandbyRouter.ROUTE.get();
        return routed != null ? routed : primary;
      }

      @Override
      public Connection getConnection() throws SQLException {
        return target().getConnection();
      }

      @Override
      public Connection getConnection(String username, String password) throws SQLException {
        return target().getConnection(username, password);
      }

      @Override
      public PrintWriter getLogWriter() throws SQLException {
        return primary.getLogWriter();
      }

      @Override
      public void setLogWriter(PrintWriter out) throws SQLException {
        primary.setLogWriter(out);
      }

      @Override
      public void setLoginTimeout(int seconds) throws SQLException {
        primary.setLoginTimeout(seconds);
      }

      @Override
      public int getLoginTimeout() throws SQLException {
        return primary.getLoginTimeout();
      }

      @Override
      public java.util.logging.Logger getParentLogger() throws SQLFeatureNotSupportedException {
        return primary.getParentLogger();
      }

      @Override
      public <T> T unwrap(Class<T> iface) throws SQLException {
        return primary.unwrap(iface);
      }

      @Override
      public boolean isWrapperFor(Class<?> iface) throws SQLException {
        return primary.isWrapperFor(iface);
      }
    };
  }
}
