package dev.contextmemory.server;

import com.zaxxer.hikari.HikariDataSource;
import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.domain.ContactNormalizer;
import dev.contextmemory.server.grpc.CancelStatementOnCallEnd;
import dev.contextmemory.server.grpc.ConversationGrpcService;
import dev.contextmemory.server.grpc.CustomerGrpcService;
import dev.contextmemory.server.grpc.DatabaseHealth;
import dev.contextmemory.server.grpc.ExceptionInterceptor;
import dev.contextmemory.server.grpc.MalformedRequests;
import dev.contextmemory.server.grpc.MemoryGrpcService;
import dev.contextmemory.server.grpc.PageTokens;
import dev.contextmemory.server.grpc.Tenants;
import dev.contextmemory.server.store.AddressStore;
import dev.contextmemory.server.store.ConversationStore;
import dev.contextmemory.server.store.CustomerStore;
import dev.contextmemory.server.store.ExpirySweeper;
import dev.contextmemory.server.store.MemorySearchStore;
import dev.contextmemory.server.store.MemoryStore;
import dev.contextmemory.server.store.MessageImportStore;
import dev.contextmemory.server.store.MessageSearchStore;
import dev.contextmemory.server.store.MessageStore;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.MemoryServiceGrpc;
import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.protobuf.services.ProtoReflectionService;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jdbi.v3.core.Jdbi;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The assembled server. Start-up order: pool, migrate, Jdbi, services, start, health SERVING;
 * {@link #close()} reverses it. The transport is the caller's choice: Netty for {@code Main}, the
 * in-process transport for tests, so both run exactly this stack.
 */
public final class ContextMemoryServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ContextMemoryServer.class);

  private final Settings settings;
  private final HikariDataSource pool;
  private final CancelStatementOnCallEnd statementCanceller;
  private final ExecutorService requestExecutor;
  private final Server server;
  private final DatabaseHealth health;
  private final ExpirySweeper sweeper;
  private final AtomicInteger closed = new AtomicInteger();

  private ContextMemoryServer(Settings settings, HikariDataSource pool, CancelStatementOnCallEnd canceller,
      ExecutorService executor, Server server, DatabaseHealth health, ExpirySweeper sweeper) {
    this.settings = settings;
    this.pool = pool;
    this.statementCanceller = canceller;
    this.requestExecutor = executor;
    this.server = server;
    this.health = health;
    this.sweeper = sweeper;
  }

  public static ContextMemoryServer start(Settings s, ServerBuilder<?> transport) throws IOException {
    HikariDataSource pool = Database.pool(s);
    try {
      if (s.migrateOnStart()) {
        var result = Database.migrate(s);
        log.info("schema at version {} ({} migration(s) applied)", result.targetSchemaVersion,
            result.migrationsExecuted);
      }
      Jdbi jdbi = Database.jdbi(pool);
      Database.checkEmbeddingDimension(jdbi, s);
      CancelStatementOnCallEnd canceller = new CancelStatementOnCallEnd();
      jdbi.addCustomizer(canceller);

      ContactNormalizer contacts = new ContactNormalizer(s.defaultPhoneRegion());
      ConversationStore conversations = new ConversationStore(jdbi);
      MemoryStore memories = new MemoryStore(jdbi);
      PageTokens tokens = PageTokens.withSecret(s.pageTokenSecret());
      List<BindableService> services = List.of(
          new CustomerGrpcService(new CustomerStore(jdbi), new AddressStore(jdbi), contacts, tokens),
          new ConversationGrpcService(conversations, new MessageStore(jdbi), new MessageImportStore(jdbi),
              new MessageSearchStore(jdbi), contacts, tokens, s.embeddingDimension()),
          new MemoryGrpcService(memories, new MemorySearchStore(jdbi), conversations, tokens, s.embeddingDimension()));
      DatabaseHealth health = new DatabaseHealth(pool, List.of(
          CustomerServiceGrpc.SERVICE_NAME, ConversationServiceGrpc.SERVICE_NAME, MemoryServiceGrpc.SERVICE_NAME));

      // A bounded pool, not grpc-java's unbounded cached executor: threads beyond what the
      // connection pool can feed would only wait on it.
      ExecutorService executor = Executors.newFixedThreadPool(s.requestThreads(), named("grpc-request"));
      services.forEach(service -> transport.addService(MalformedRequests.wrap(service.bindService())));
      transport.addService(health.manager().getHealthService())
          .addService(ProtoReflectionServiceV1.newInstance())
          .addService(legacyReflection())
          .executor(executor)
          .maxInboundMessageSize(s.maxInboundMessageBytes())
          // Runs last-added first: the tenant is in the Context before errors are mapped.
          .intercept(new ExceptionInterceptor())
          .intercept(new Tenants(s.defaultTenant()));
      Server server = transport.build().start();
      ExpirySweeper sweeper = new ExpirySweeper(memories, conversations, s.memorySweepInterval(), s.memorySweepBatch(),
          s.deletedConversationRetention());
      health.start(s.healthCheckInterval());
      log.info("context-memory serving on port {} ({})", server.getPort(), s);
      return new ContextMemoryServer(s, pool, canceller, executor, server, health, sweeper);
    } catch (RuntimeException | IOException e) {
      pool.close();
      throw e;
    }
  }

  /** grpcurl and older tools still ask the v1alpha reflection service. */
  @SuppressWarnings("deprecation")
  private static BindableService legacyReflection() {
    return ProtoReflectionService.newInstance();
  }

  public int port() {
    return server.getPort();
  }

  /** The background sweeper of expired memories (tests and operators' tooling trigger rounds). */
  public ExpirySweeper sweeper() {
    return sweeper;
  }

  public HikariDataSource pool() {
    return pool;
  }

  public void awaitTermination() throws InterruptedException {
    server.awaitTermination();
  }

  /**
   * Graceful shutdown: report NOT_SERVING, stop accepting calls, let in-flight calls finish within
   * the grace period (then cancel the rest), and only then close the pool.
   */
  @Override
  public void close() {
    if (closed.getAndIncrement() > 0) {
      return;
    }
    log.info("shutting down: draining in-flight calls for up to {}", settings.shutdownGrace());
    health.close();
    server.shutdown();
    try {
      if (!server.awaitTermination(settings.shutdownGrace().toMillis(), TimeUnit.MILLISECONDS)) {
        log.warn("grace period over: cancelling the calls still running");
        server.shutdownNow();
        server.awaitTermination(5, TimeUnit.SECONDS);
      }
      requestExecutor.shutdown();
      requestExecutor.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      server.shutdownNow();
    }
    sweeper.close();
    statementCanceller.close();
    pool.close();
    log.info("stopped");
  }

  private static ThreadFactory named(String prefix) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }
}
