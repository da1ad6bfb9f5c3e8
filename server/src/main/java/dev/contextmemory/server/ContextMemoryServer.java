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
import dev.contextmemory.server.grpc.ConsistencyTokens;
import dev.contextmemory.server.grpc.StandbyReads;
import dev.contextmemory.server.grpc.StandbyRouter;
import dev.contextmemory.server.store.CommitLsn;
import dev.contextmemory.server.observability.Observability;
import dev.contextmemory.server.store.AddressStore;
import dev.contextmemory.server.store.ApiKeyStore;
import dev.contextmemory.server.grpc.PageTokens;
import dev.contextmemory.server.store.ConversationEvents;
import dev.contextmemory.server.store.ConversationStore;
import dev.contextmemory.server.watch.EventPurger;
import dev.contextmemory.server.watch.WatchHub;
import dev.contextmemory.server.store.HandoffStore;
import dev.contextmemory.server.store.UsageRollup;
import dev.contextmemory.server.store.UsageStore;
import dev.contextmemory.server.store.CustomerStore;
import dev.contextmemory.server.embedding.EmbeddingRuntime;
import dev.contextmemory.server.store.ExpirySweeper;
import dev.contextmemory.server.store.SweepLock;
import dev.contextmemory.server.store.MemorySearchStore;
import dev.contextmemory.server.store.MemoryBatchStore;
import dev.contextmemory.server.store.MemoryConfirmationStore;
import dev.contextmemory.server.store.MemoryHistoryStore;
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
import dev.contextmemory.server.store.PlainStatements;
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
  private final EmbeddingRuntime embedding;
  private final UsageRollup rollup;
  private final KeyVerifier keyVerifier;
  private final Observability observability;
  private final WatchHub watch;
  private final EventPurger purger;
  private final StandbyRouter standbys;
  private final AtomicInteger closed = new AtomicInteger();
  private final List<AutoCloseable> closeLast = new java.util.concurrent.CopyOnWriteArrayList<>();
  /** The MCP Streamable HTTP endpoint, when CONTEXT_MEMORY_MCP_PORT is set. */
  private volatile McpEndpoint mcp;

  private ContextMemoryServer(Settings settings, PoolGate pool, CancelStatementOnCallEnd canceller,
      RequestAdmission admission, CallDeadlines deadlines, Server server, DatabaseHealth health,
      ExpirySweeper sweeper, UsageRollup rollup, EmbeddingRuntime embedding, KeyVerifier keyVerifier,
      Observability observability, StandbyRouter standbys, WatchHub watch, EventPurger purger) {
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
    this.rollup = rollup;
    this.embedding = embedding;
    this.keyVerifier = keyVerifier;
    this.observability = observability;
    this.standbys = standbys;
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
    StandbyRouter standbys = null;
    try {
      if (s.migrateOnStart()) {
        var result = Database.migrate(s);
        log.info("schema at version {} ({} migration(s) applied)", result.targetSchemaVersion,
            result.migrationsExecuted);
      }
      // With standbys, read calls borrow from the pool their router chose, everything else from
      // the primary's, and every commit reports its WAL position for the call's consistency token.
      StandbyReads standbyReads = null;
      if (s.standbyReads().enabled()) {
        standbys = new StandbyRouter(s, obs.poolMetrics());
        standbys.bindTo(obs.registry());
        standbys.start();
        standbyReads = new StandbyReads(standbys, ConsistencyTokens.withSecret(s.pageTokenSecret()));
      }
      Jdbi jdbi = Database.jdbi(standbys != null ? StandbyReads.routing(pool) : pool);
      if (standbys != null) {
        jdbi.getConfig(CommitLsn.class).setSink(ConsistencyTokens::recordCommit);
      }
      Database.checkSessionTimeouts(jdbi, s);
      Database.checkEmbeddingDimension(jdbi, s);
      CancelStatementOnCallEnd canceller = new CancelStatementOnCallEnd();
      jdbi.addCustomizer(canceller);
      jdbi.getConfig(PlainStatements.class).addListener(canceller);
      obs.instrument(jdbi);

      ContactNormalizer contacts = new ContactNormalizer(s.defaultPhoneRegion());
      // The watch machinery's reads and sequencer passes run on a small pool of their own: they
      // never wait for (or take) a request's connection, nor a request for theirs.
      watchPool = Database.pool(s, null, "context-memory-watch", WatchHub.POOL_SIZE, s.applicationName() + "-watch");
      Jdbi watchJdbi = Database.jdbi(watchPool);
      watchJdbi.addCustomizer(canceller);
      obs.instrument(watchJdbi);
      ConversationEvents events = new ConversationEvents(watchJdbi);
      EmbeddingRuntime embedding = new EmbeddingRuntime(s.embedding(), jdbi,
          () -> Database.connectSession(s, "index-build"));
      ConversationStore conversations = new ConversationStore(jdbi, embedding.space(), events,
          s.embedding().serverEmbeds(), embedding::queued);
      UsageStore usage = new UsageStore(jdbi);
      MemoryStore memories = new MemoryStore(jdbi, s.embedding().model(), s.embedding().serverEmbeds(), embedding::queued);
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
      watch = new WatchHub(events, s.sessionDbUrl(), s.dbUser(), s.dbPassword(), s.applicationName(),
          s.watch().maxStreamsPerTenant(), s.watch().checkpointInterval());
      List<BindableService> services = List.of(
          new CustomerGrpcService(new CustomerStore(jdbi, events), new AddressStore(jdbi), contacts, tokens),
          new ConversationGrpcService(conversations, new MessageStore(jdbi, events), new MessageImportStore(jdbi, events),
              new MessageSearchStore(jdbi), new HandoffStore(jdbi, events), usage, contacts, tokens, s.embeddingDimension(),
              watch, s.watch().bufferEvents()),
          new MemoryGrpcService(memories, new MemorySearchStore(jdbi, embedding.space()), conversations,
              new MemoryBatchStore(jdbi, s.embedding().model(), s.embedding().serverEmbeds(), embedding::queued,
                  embedding::staged),
              new MemoryHistoryStore(jdbi), new MemoryConfirmationStore(jdbi), tokens, s.embedding(), embedding.queries()),
          new AdminGrpcService(apiKeys, verifier, tokens));

      // Health and reflection on their own threads, API calls on the bounded request executor
      // (shed when its queue is full), see RequestAdmission.
      RequestAdmission admission = new RequestAdmission(s.requestThreads(), s.requestQueue(), s.requestQueueWait(),
          s.maxCallDeadline());
      CallDeadlines deadlines = new CallDeadlines(s.maxCallDeadline());
      obs.monitor(admission);
      // The RPC metrics name these methods; any other name a client sends counts as "other".
      Set<String> methods = new HashSet<>();
      List<ServerServiceDefinition> api = new java.util.ArrayList<>();
      services.forEach(service -> {
        ServerServiceDefinition definition = service.bindService();
        definition.getMethods().forEach(m -> methods.add(m.getMethodDescriptor().getFullMethodName()));
        api.add(MalformedRequests.wrap(definition));
      });
      List<BindableService> plain = new java.util.ArrayList<>(List.of(health.manager().getHealthService()));
      if (sec.reflection()) {
        plain.add(ProtoReflectionServiceV1.newInstance());
        plain.add(legacyReflection());
      }
      List<ServerServiceDefinition> others = new java.util.ArrayList<>();
      plain.forEach(service -> {
        ServerServiceDefinition definition = service.bindService();
        definition.getMethods().forEach(m -> methods.add(m.getMethodDescriptor().getFullMethodName()));
        others.add(definition);
      });
      // Runs last-added first: the call's span (when tracing); shed calls cost nothing more; the
      // deadline bound is set, and the caller is known, allowed and in the Context; the access log
      // sees the tenant and the mapped status; then service code runs and errors are mapped.
      List<ServerInterceptor> interceptors = new java.util.ArrayList<>(List.of(new ExceptionInterceptor(obs.registry())));
      if (standbyReads != null) {
        // Outside the error mapping, so a failed write's trailer still carries its commits' token.
        interceptors.add(standbyReads);
      }
      interceptors.addAll(List.of(obs.accessLog(), authentication, deadlines, admission));
      ServerInterceptor tracing = obs.tracing();
      if (tracing != null) {
        interceptors.add(tracing);
      }
      var rpcMetrics = obs.rpcMetrics(methods);
      // The API as every transport serves it: the same executor choice, services, metrics and
      // interceptors, whether a call comes over the network or from the MCP endpoint in-process.
      java.util.function.Consumer<ServerBuilder<?>> apiStack = builder -> {
        admission.install(builder);
        api.forEach(builder::addService);
        builder.maxInboundMessageSize(s.maxInboundMessageBytes()).addStreamTracerFactory(rpcMetrics);
        interceptors.forEach(builder::intercept);
      };
      apiStack.accept(transport);
      others.forEach(transport::addService);
      obs.serve();
      McpEndpoint mcp = s.mcpPort() < 0 ? null : McpEndpoint.start(s, apiStack, verifier);
      Server server;
      try {
        server = transport.build().start();
      } catch (IOException | RuntimeException e) {
        if (mcp != null) {
          mcp.close();
        }
        throw e;
      }
      warnAboutExposure(s);
      ExpirySweeper sweeper = new ExpirySweeper(memories, conversations,
          new SweepLock(() -> Database.connect(s, "sweeper")), s.memorySweepInterval(), s.memorySweepBatch(),
          s.deletedConversationRetention());
      EventPurger purger = new EventPurger(events, s.watch().retention(), s.watch().purgeInterval());
      UsageRollup rollup = new UsageRollup(usage, s.usageRefreshInterval());
      obs.monitor(health, canceller, sweeper);
      obs.monitor(rollup);
      obs.monitor(watch, purger);
      embedding.monitor(obs.registry());
      embedding.start();
      health.start();
      log.info("context-memory serving on port {} ({})", server.getPort(), s);
      ContextMemoryServer started = new ContextMemoryServer(s, pool, canceller, admission, deadlines, server, health,
          sweeper, rollup, embedding, verifier, obs, standbys, watch, purger);
      started.closeOnStop(watchPool);
      started.mcp = mcp;
      return started;
    } catch (RuntimeException | IOException e) {
      if (watch != null) {
        watch.close();
      }
      if (watchPool != null) {
        watchPool.close();
      }
      health.close();
      if (standbys != null) {
        standbys.close();
      }
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

  /** The MCP endpoint's HTTP port, or -1 when CONTEXT_MEMORY_MCP_PORT is unset. */
  public int mcpPort() {
    return mcp == null ? -1 : mcp.port();
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

  /** The usage rollup's refresher (tests make GetUsageMetrics' figures current through it). */
  public UsageRollup usageRollup() {
    return rollup;
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

  /** The embedding machinery (its worker, for tests that drive the queue). */
  public EmbeddingRuntime embedding() {
    return embedding;
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
    if (mcp != null) {
      mcp.stopAccepting(); // MCP requests in flight finish on the in-process server below
    }
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
      if (mcp != null) {
        mcp.close();
      }
      admission.shutdown(5);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      server.shutdownNow();
    }
    sweeper.close();
    rollup.close();
    embedding.close();
    deadlines.close();
    admission.close();
    if (keyVerifier != null) {
      keyVerifier.close();
    }
    statementCanceller.close();
    if (standbys != null) {
      standbys.close();
    }
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
