package dev.contextmemory.server;

import com.zaxxer.hikari.HikariDataSource;
import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.domain.ContactNormalizer;
import dev.contextmemory.server.grpc.CallDeadlines;
import dev.contextmemory.server.auth.KeyVerifier;
import dev.contextmemory.server.config.SecuritySettings;
import dev.contextmemory.server.grpc.AdminGrpcService;
import dev.contextmemory.server.grpc.Authentication;
import dev.contextmemory.server.grpc.CancelStatementOnCallEnd;
import dev.contextmemory.server.grpc.ConversationGrpcService;
import dev.contextmemory.server.grpc.CustomerGrpcService;
import dev.contextmemory.server.grpc.DatabaseHealth;
import dev.contextmemory.server.grpc.ExceptionInterceptor;
import dev.contextmemory.server.grpc.MalformedRequests;
import dev.contextmemory.server.grpc.MemoryGrpcService;
import dev.contextmemory.server.grpc.PoolGate;
import dev.contextmemory.server.grpc.RequestAdmission;
import dev.contextmemory.server.observability.Observability;
import dev.contextmemory.server.store.AddressStore;
import dev.contextmemory.server.store.ApiKeyStore;
import dev.contextmemory.server.grpc.PageTokens;
import dev.contextmemory.server.store.ConversationEvents;
import dev.contextmemory.server.store.ConversationStore;
import dev.contextmemory.server.watch.EventPurger;
import dev.contextmemory.server.watch.WatchHub;
import dev.contextmemory.server.store.CustomerStore;
import dev.contextmemory.server.store.ExpirySweeper;
import dev.contextmemory.server.store.MemorySearchStore;
import dev.contextmemory.server.store.MemoryStore;
import dev.contextmemory.server.store.MessageImportStore;
import dev.contextmemory.server.store.MessageSearchStore;
import dev.contextmemory.server.store.MessageStore;
import dev.contextmemory.v1.AdminServiceGrpc;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.MemoryServiceGrpc;
import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerInterceptor;
import io.grpc.ServerServiceDefinition;
import io.grpc.protobuf.services.ProtoReflectionService;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import java.io.IOException;
import java.time.Duration;
import java.time.Clock;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
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
  private final KeyVerifier keyVerifier;
  private final Observability observability;
  private final WatchHub watch;
  private final EventPurger purger;
  private final AtomicInteger closed = new AtomicInteger();
  private final List<AutoCloseable> closeLast = new java.util.concurrent.CopyOnWriteArrayList<>();

  private ContextMemoryServer(Settings settings, PoolGate pool, CancelStatementOnCallEnd canceller,
      RequestAdmission admission, CallDeadlines deadlines, Server server, DatabaseHealth health,
      ExpirySweeper sweeper, KeyVerifier keyVerifier, Observability observability, WatchHub watch,
      EventPurger purger) {
    this.watch = watch;
    this.purger = purger;
    this.settings = settings;
    this.pool = pool;
    this.statementCanceller = canceller;
    this.admission = admission;
    this.deadlines = deadlines;
    this.server = server;
    this.health = health;
    this.sweeper = sweeper;
    this.keyVerifier = keyVerifier;
    this.observability = observability;
  }

  public static ContextMemoryServer start(Settings s, ServerBuilder<?> transport) throws IOException {
    Observability obs = Observability.create(s.observability());
    DatabaseHealth health = new DatabaseHealth(s, List.of(CustomerServiceGrpc.SERVICE_NAME,
        ConversationServiceGrpc.SERVICE_NAME, MemoryServiceGrpc.SERVICE_NAME, AdminServiceGrpc.SERVICE_NAME));
    PoolGate pool;
    WatchHub watch = null;
    HikariDataSource watchPool = null;
    try {
      pool = new PoolGate(() -> Database.pool(s, obs.poolMetrics()), s.dbConnectionTimeout(), health::databaseDown,
          Duration.ofSeconds(Database.socketTimeoutSeconds(s)));
    } catch (RuntimeException e) {
      health.close();
      obs.close();
      throw e;
    }
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
      obs.instrument(jdbi);

      ContactNormalizer contacts = new ContactNormalizer(s.defaultPhoneRegion());
      // The watch machinery's reads and sequencer passes run on a small pool of their own: they
      // never wait for (or take) a request's connection, nor a request for theirs.
      watchPool = Database.pool(s, null, "context-memory-watch", WatchHub.POOL_SIZE, s.applicationName() + "-watch");
      Jdbi watchJdbi = Database.jdbi(watchPool);
      watchJdbi.addCustomizer(canceller);
      obs.instrument(watchJdbi);
      ConversationEvents events = new ConversationEvents(watchJdbi);
      ConversationStore conversations = new ConversationStore(jdbi, events);
      MemoryStore memories = new MemoryStore(jdbi);
      ApiKeyStore apiKeys = new ApiKeyStore(jdbi);
      SecuritySettings sec = s.security();
      KeyVerifier verifier = sec.auth() == SecuritySettings.AuthMode.API_KEY
          ? new KeyVerifier(apiKeys, sec.authCacheTtl(), sec.lastUsedFlushInterval(), Clock.systemUTC())
          : null;
      Authentication authentication = verifier != null
          ? Authentication.apiKeys(verifier, sec.keyRequestsPerSecond(), sec.keyBurst(), sec.tenantMaxConcurrentCalls())
          : Authentication.none(s.defaultTenant(), sec.keyRequestsPerSecond(), sec.keyBurst(),
              sec.tenantMaxConcurrentCalls());
      PageTokens tokens = PageTokens.withSecret(s.pageTokenSecret());
      watch = new WatchHub(events, s.dbUrl(), s.dbUser(), s.dbPassword(), s.applicationName(),
          s.watch().maxStreamsPerTenant(), s.watch().checkpointInterval());
      List<BindableService> services = List.of(
          new CustomerGrpcService(new CustomerStore(jdbi, events), new AddressStore(jdbi), contacts, tokens),
          new ConversationGrpcService(conversations, new MessageStore(jdbi, events), new MessageImportStore(jdbi, events),
              new MessageSearchStore(jdbi), contacts, tokens, s.embeddingDimension(), watch, s.watch().bufferEvents()),
          new MemoryGrpcService(memories, new MemorySearchStore(jdbi), conversations, tokens, s.embeddingDimension()),
          new AdminGrpcService(apiKeys, verifier, tokens));

      // Health and reflection on their own threads, API calls on the bounded request executor
      // (shed when its queue is full), see RequestAdmission.
      RequestAdmission admission = new RequestAdmission(s.requestThreads(), s.requestQueue(), s.requestQueueWait(),
          s.maxCallDeadline());
      CallDeadlines deadlines = new CallDeadlines(s.maxCallDeadline());
      admission.install(transport);
      obs.monitor(admission);
      // The RPC metrics name these methods; any other name a client sends counts as "other".
      Set<String> methods = new HashSet<>();
      services.forEach(service -> {
        ServerServiceDefinition definition = service.bindService();
        definition.getMethods().forEach(m -> methods.add(m.getMethodDescriptor().getFullMethodName()));
        transport.addService(MalformedRequests.wrap(definition));
      });
      List<BindableService> plain = new java.util.ArrayList<>(List.of(health.manager().getHealthService()));
      if (sec.reflection()) {
        plain.add(ProtoReflectionServiceV1.newInstance());
        plain.add(legacyReflection());
      }
      plain.forEach(service -> {
        ServerServiceDefinition definition = service.bindService();
        definition.getMethods().forEach(m -> methods.add(m.getMethodDescriptor().getFullMethodName()));
        transport.addService(definition);
      });
      transport.maxInboundMessageSize(s.maxInboundMessageBytes())
          .addStreamTracerFactory(obs.rpcMetrics(methods))
          // Runs last-added first: the call's span (when tracing); shed calls cost nothing more;
          // the deadline bound is set, and the caller is known, allowed and in the Context; the
          // access log sees the tenant and the mapped status; then service code runs and errors
          // are mapped.
          .intercept(new ExceptionInterceptor(obs.registry()))
          .intercept(obs.accessLog())
          .intercept(authentication)
          .intercept(deadlines)
          .intercept(admission);
      ServerInterceptor tracing = obs.tracing();
      if (tracing != null) {
        transport.intercept(tracing);
      }
      obs.serve();
      Server server = transport.build().start();
      warnAboutExposure(s);
      ExpirySweeper sweeper = new ExpirySweeper(memories, conversations, s.memorySweepInterval(), s.memorySweepBatch(),
          s.deletedConversationRetention());
      EventPurger purger = new EventPurger(events, s.watch().retention(), s.watch().purgeInterval());
      obs.monitor(health, canceller, sweeper);
      obs.monitor(watch, purger);
      health.start();
      log.info("context-memory serving on port {} ({})", server.getPort(), s);
      ContextMemoryServer started = new ContextMemoryServer(s, pool, canceller, admission, deadlines, server, health,
          sweeper, verifier, obs, watch, purger);
      started.closeOnStop(watchPool);
      return started;
    } catch (RuntimeException | IOException e) {
      if (watch != null) {
        watch.close();
      }
      if (watchPool != null) {
        watchPool.close();
      }
      health.close();
      pool.close();
      obs.close();
      throw e;
    }
  }

  private static void warnAboutExposure(Settings s) {
    SecuritySettings sec = s.security();
    if (sec.auth() == SecuritySettings.AuthMode.NONE) {
      log.warn("authentication is off ({}AUTH=none): every call acts for tenant '{}' with every scope;"
          + " listening on {}{}", Settings.PREFIX, s.defaultTenant(), s.host(),
          sec.allowInsecure() ? " because " + Settings.PREFIX + "ALLOW_INSECURE=true" : " (loopback only)");
    } else if (!sec.tls() && !SecuritySettings.isLoopback(s.host())) {
      log.warn("serving plaintext: API keys cross the network in the clear unless a proxy in front terminates"
          + " TLS (set {}TLS_CERT_FILE and {}TLS_KEY_FILE to serve TLS)", Settings.PREFIX, Settings.PREFIX);
    }
  }

  /** grpcurl and older tools still ask the v1alpha reflection service. */
  @SuppressWarnings("deprecation")
  private static BindableService legacyReflection() {
    return ProtoReflectionService.newInstance();
  }

  /** Something to close after the server has stopped (e.g. the transport's certificate watchers). */
  public void closeOnStop(AutoCloseable resource) {
    closeLast.add(resource);
  }

  public int port() {
    return server.getPort();
  }

  /** The background sweeper of expired memories (tests and operators' tooling trigger rounds). */
  public ExpirySweeper sweeper() {
    return sweeper;
  }

  /** The WatchConversations hub (tests drive its sequencer and read its head). */
  public WatchHub watch() {
    return watch;
  }

  /** The retention purge of watch events (tests trigger rounds). */
  public EventPurger eventPurger() {
    return purger;
  }

  /** The connection pool in use now (a fresh one replaces it after a database outage). */
  public HikariDataSource pool() {
    return pool.pool();
  }

  /** Admission to the request executor (tests read how many calls were shed). */
  public RequestAdmission admission() {
    return admission;
  }

  /** Metrics registry, metrics port and tracing of this server. */
  public Observability observability() {
    return observability;
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
    // Watch streams never end by themselves: end them now (UNAVAILABLE with their resume cursors)
    // so the drain below waits only for unary calls.
    watch.close();
    purger.close();
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
    if (keyVerifier != null) {
      keyVerifier.close();
    }
    statementCanceller.close();
    pool.close();
    for (AutoCloseable c : closeLast) {
      try {
        c.close();
      } catch (Exception e) {
        log.warn("could not close {}: {}", c, e.toString());
      }
    }
    log.info("stopped");
    observability.close();
  }
}
