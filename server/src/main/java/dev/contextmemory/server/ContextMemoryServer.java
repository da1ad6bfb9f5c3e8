package dev.contextmemory.server;

import com.zaxxer.hikari.HikariDataSource;
import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.domain.ContactNormalizer;
import dev.contextmemory.server.grpc.CallDeadlines;
import dev.contextmemory.server.grpc.CancelStatementOnCallEnd;
import dev.contextmemory.server.grpc.ConversationGrpcService;
import dev.contextmemory.server.grpc.CustomerGrpcService;
import dev.contextmemory.server.grpc.DatabaseHealth;
import dev.contextmemory.server.grpc.ExceptionInterceptor;
import dev.contextmemory.server.grpc.MalformedRequests;
import dev.contextmemory.server.grpc.MemoryGrpcService;
import dev.contextmemory.server.grpc.PoolGate;
import dev.contextmemory.server.grpc.RequestAdmission;
import dev.contextmemory.server.grpc.Tenants;
import dev.contextmemory.server.store.ConversationStore;
import dev.contextmemory.server.store.CustomerStore;
import dev.contextmemory.server.store.ExpirySweeper;
import dev.contextmemory.server.store.MemorySearchStore;
import dev.contextmemory.server.store.MemoryStore;
import dev.contextmemory.server.store.MessageImportStore;
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
import java.time.Duration;
import java.util.List;
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
  private final PoolGate pool;
  private final CancelStatementOnCallEnd statementCanceller;
  private final RequestAdmission admission;
  private final CallDeadlines deadlines;
  private final Server server;
  private final DatabaseHealth health;
  private final ExpirySweeper sweeper;
  private final AtomicInteger closed = new AtomicInteger();

  private ContextMemoryServer(Settings settings, PoolGate pool, CancelStatementOnCallEnd canceller,
      RequestAdmission admission, CallDeadlines deadlines, Server server, DatabaseHealth health,
      ExpirySweeper sweeper) {
    this.settings = settings;
    this.pool = pool;
    this.statementCanceller = canceller;
    this.admission = admission;
    this.deadlines = deadlines;
    this.server = server;
    this.health = health;
    this.sweeper = sweeper;
  }

  public static ContextMemoryServer start(Settings s, ServerBuilder<?> transport) throws IOException {
    DatabaseHealth health = new DatabaseHealth(s, List.of(
        CustomerServiceGrpc.SERVICE_NAME, ConversationServiceGrpc.SERVICE_NAME, MemoryServiceGrpc.SERVICE_NAME));
    PoolGate pool = new PoolGate(() -> Database.pool(s), s.dbConnectionTimeout(), health::databaseDown,
        Duration.ofSeconds(Database.socketTimeoutSeconds(s)));
    health.onRecovery(pool::refresh);
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
      List<BindableService> services = List.of(
          new CustomerGrpcService(new CustomerStore(jdbi), contacts),
          new ConversationGrpcService(conversations, new MessageStore(jdbi), new MessageImportStore(jdbi), contacts,
              s.embeddingDimension()),
          new MemoryGrpcService(memories, new MemorySearchStore(jdbi), conversations, s.embeddingDimension()));

      // Health and reflection on their own threads, API calls on the bounded request executor
      // (shed when its queue is full), see RequestAdmission.
      RequestAdmission admission = new RequestAdmission(s.requestThreads(), s.requestQueue(), s.requestQueueWait());
      CallDeadlines deadlines = new CallDeadlines(s.maxCallDeadline());
      admission.install(transport);
      services.forEach(service -> transport.addService(MalformedRequests.wrap(service.bindService())));
      transport.addService(health.manager().getHealthService())
          .addService(ProtoReflectionServiceV1.newInstance())
          .addService(legacyReflection())
          .maxInboundMessageSize(s.maxInboundMessageBytes())
          // Runs last-added first: shed calls cost nothing more; the deadline bound and the tenant
          // are in the Context before errors are mapped.
          .intercept(new ExceptionInterceptor())
          .intercept(new Tenants(s.defaultTenant()))
          .intercept(deadlines)
          .intercept(admission);
      Server server = transport.build().start();
      ExpirySweeper sweeper = new ExpirySweeper(memories, s.memorySweepInterval(), s.memorySweepBatch());
      health.start();
      log.info("context-memory serving on port {} ({})", server.getPort(), s);
      return new ContextMemoryServer(s, pool, canceller, admission, deadlines, server, health, sweeper);
    } catch (RuntimeException | IOException e) {
      health.close();
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

  /** The connection pool in use now (a fresh one replaces it after a database outage). */
  public HikariDataSource pool() {
    return pool.pool();
  }

  /** Admission to the request executor (tests read how many calls were shed). */
  public RequestAdmission admission() {
    return admission;
  }

  /** The database health prober. */
  public DatabaseHealth health() {
    return health;
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
      admission.shutdown(5);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      server.shutdownNow();
    }
    sweeper.close();
    deadlines.close();
    admission.close();
    statementCanceller.close();
    pool.close();
    log.info("stopped");
  }
}
