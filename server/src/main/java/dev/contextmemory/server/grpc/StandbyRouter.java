package dev.contextmemory.server.grpc;

import com.zaxxer.hikari.metrics.MetricsTrackerFactory;
import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.store.CommitLsn;
import io.grpc.Context;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Chooses, per read call, a streaming-replication standby or the primary, from what a background
 * probe knows about each standby (docs/scaling.md "Reads on standbys").
 *
 * <p>Every {@value Settings.StandbyReads#PROBE_INTERVAL_MS} ms the probe reads the primary's WAL
 * insert position P (at time t) and each standby's replay position R, on connections of its own. A
 * standby with R >= P has replayed every commit that finished before t, so it is at most now - t
 * behind: its freshness is the newest such t, an upper bound on its staleness that costs no clock
 * comparison between hosts and stays true when the primary is idle. A read without a token goes to
 * a standby at most {@code maxStaleness} behind; a read with a token to one whose R is at or past
 * it (and within the staleness bound), waiting up to {@code tokenWait} while the probe runs every
 * {@value #FAST_PROBE_MS} ms; otherwise to the primary, which is never behind. Standbys that qualify
 * take turns.
 */
public final class StandbyRouter implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StandbyRouter.class);
  /** The probe's pace while a read waits for a standby to reach its token. */
  static final long FAST_PROBE_MS = 2;
  /** Bounds the primary positions kept for the freshness lookup. */
  private static final int MAX_SAMPLES = 4096;

  /** The data source of the current call's reads, when it is a read routed by this class. */
  static final Context.Key<DataSource> ROUTE = Context.key("cm-read-route");

  /** Why a read went where it went (the {@code reason} tag of {@code contextmemory.db.reads}). */
  enum Reason { FRESH, TOKEN_REPLAYED, STALE, TOKEN_WAIT, UNVERIFIED_TOKEN, NO_STANDBY }

  private final Settings settings;
  private final Duration maxStaleness;
  private final Duration tokenWait;
  private final List<Standby> standbys = new ArrayList<>();
  private final Object lock = new Object();
  private final ArrayDeque<long[]> samples = new ArrayDeque<>(); // {nanoTime, primary LSN}, oldest first
  private final AtomicInteger turn = new AtomicInteger();
  private final Map<String, Counter> counters = new ConcurrentHashMap<>();
  private final Thread prober;
  private MeterRegistry registry;
  private Connection primaryProbe;
  private int waiters;
  private volatile boolean closed;

  /** One standby: its pool and what the probe last found. */
  private static final class Standby {
    final String name;
    final String url;
    final PoolGate pool;
    Connection probe;
    volatile boolean up;
    volatile long replayLsn;
    volatile long freshAsOfNanos = Long.MIN_VALUE;

    Standby(String name, String url, PoolGate pool) {
      this.name = name;
      this.url = url;
      this.pool = pool;
    }
  }

  public StandbyRouter(Settings s, MetricsTrackerFactory poolMetrics) {
    this.settings = s;
    this.maxStaleness = s.standbyReads().maxStaleness();
    this.tokenWait = s.standbyReads().tokenWait();
    List<String> urls = s.standbyReads().urls();
    for (int i = 0; i < urls.size(); i++) {
      String name = "standby-" + (i + 1);
      String url = urls.get(i);
      Standby[] self = new Standby[1];
      PoolGate pool = new PoolGate(() -> Database.standbyPool(s, url, "context-memory-" + name, poolMetrics),
          s.dbConnectionTimeout(), () -> !self[0].up, Duration.ofSeconds(Database.socketTimeoutSeconds(s)));
      self[0] = new Standby(name, url, pool);
      standbys.add(self[0]);
    }
    prober = new Thread(this::probeLoop, "standby-probe");
    prober.setDaemon(true);
  }

  /** Probes once (so the first reads know where to go), then keeps probing in the background. */
  public void start() {
    probe();
    prober.start();
  }

  /** Reads per target and reason, and each standby's state. */
  public void bindTo(MeterRegistry registry) {
    this.registry = registry;
    for (Standby s : standbys) {
      Gauge.builder("contextmemory.db.standby.up", s, x -> x.up ? 1 : 0).tag("standby", s.name)
          .description("Whether the standby answered the last probe as a standby in recovery").register(registry);
      Gauge.builder("contextmemory.db.standby.staleness", s, x -> stalenessSeconds(x)).tag("standby", s.name)
          .baseUnit("seconds").description("Upper bound of how far the standby is behind the primary")
          .register(registry);
    }
  }

  /** Where a read goes: a standby's pool, or null for the primary. {@code tokenLsn} 0 means no token. */
  DataSource route(long tokenLsn) {
    if (tokenLsn == ConsistencyTokens.UNVERIFIED) {
      return primary(Reason.UNVERIFIED_TOKEN);
    }
    long now = System.nanoTime();
    Predicate<Standby> fresh = x -> x.up && now - x.freshAsOfNanos <= maxStaleness.toNanos();
    if (tokenLsn == 0) {
      Standby s = pick(fresh);
      return s != null ? standby(s, Reason.FRESH) : primary(anyUp() ? Reason.STALE : Reason.NO_STANDBY);
    }
    Predicate<Standby> replayed = x -> fresh.test(x) && x.replayLsn >= tokenLsn;
    Standby s = pick(replayed);
    if (s == null && anyUp() && !tokenWait.isZero()) {
      s = await(replayed, now + tokenWait.toNanos());
    }
    return s != null ? standby(s, Reason.TOKEN_REPLAYED) : primary(anyUp() ? Reason.TOKEN_WAIT : Reason.NO_STANDBY);
  }

  private Standby await(Predicate<Standby> ok, long deadline) {
    synchronized (lock) {
      waiters++;
      lock.notifyAll(); // the probe runs now, and then at the fast pace
      try {
        while (true) {
          Standby s = pick(ok);
          long left = deadline - System.nanoTime();
          if (s != null || left <= 0 || closed) {
            return s;
          }
          lock.wait(Math.max(1, left / 1_000_000));
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return null;
      } finally {
        waiters--;
      }
    }
  }

  private Standby pick(Predicate<Standby> ok) {
    int n = standbys.size();
    int start = Math.floorMod(turn.getAndIncrement(), n);
    for (int i = 0; i < n; i++) {
      Standby s = standbys.get((start + i) % n);
      if (ok.test(s)) {
        return s;
      }
    }
    return null;
  }

  private boolean anyUp() {
    return standbys.stream().anyMatch(s -> s.up);
  }

  private DataSource standby(Standby s, Reason reason) {
    count("standby", reason);
    return s.pool;
  }

  private DataSource primary(Reason reason) {
    count("primary", reason);
    return null;
  }

  private void count(String target, Reason reason) {
    MeterRegistry r = registry;
    if (r != null) {
      counters.computeIfAbsent(target + reason, k -> Counter.builder("contextmemory.db.reads")
          .description("Read calls by the database that served them (standby or primary) and why")
          .tag("target", target).tag("reason", reason.name().toLowerCase(java.util.Locale.ROOT))
          .register(r)).increment();
    }
  }

  private double stalenessSeconds(Standby s) {
    long fresh = s.freshAsOfNanos;
    return !s.up || fresh == Long.MIN_VALUE ? Double.NaN : (System.nanoTime() - fresh) / 1e9;
  }

  // ------------------------------------------------------------------------------------- probe

  private void probeLoop() {
    while (!closed) {
      synchronized (lock) {
        try {
          lock.wait(waiters > 0 ? FAST_PROBE_MS : Settings.StandbyReads.PROBE_INTERVAL_MS);
        } catch (InterruptedException e) {
          return;
        }
      }
      if (!closed) {
        probe();
      }
    }
  }

  private void probe() {
    long t = System.nanoTime();
    try {
      primaryProbe = open(primaryProbe, settings.dbUrl(), "primary");
      long p = lsn(primaryProbe, "SELECT pg_current_wal_insert_lsn()::text");
      synchronized (samples) {
        samples.addLast(new long[] {t, p});
        while (samples.size() > MAX_SAMPLES
            || samples.size() > 1 && t - samples.peekFirst()[0] > 2 * maxStaleness.toNanos() + 1_000_000_000L) {
          samples.removeFirst();
        }
      }
    } catch (SQLException e) {
      primaryProbe = closeQuietly(primaryProbe);
      // No new sample: the standbys' freshness ages, so reads move to the primary pool, which
      // reports the outage itself.
    }
    for (Standby s : standbys) {
      probe(s);
    }
    synchronized (lock) {
      lock.notifyAll();
    }
  }

  private void probe(Standby s) {
    try {
      s.probe = open(s.probe, s.url, s.name);
      long r;
      try (Statement st = s.probe.createStatement();
          ResultSet rs = st.executeQuery("SELECT pg_last_wal_replay_lsn()::text")) {
        rs.next();
        String text = rs.getString(1);
        if (text == null) {
          throw new SQLException("not a standby in recovery (promoted, or a primary)");
        }
        r = CommitLsn.parse(text);
      }
      s.replayLsn = r;
      synchronized (samples) {
        var it = samples.descendingIterator();
        while (it.hasNext()) {
          long[] sample = it.next();
          if (sample[1] <= r) {
            s.freshAsOfNanos = Math.max(s.freshAsOfNanos, sample[0]);
            break;
          }
        }
      }
      if (!s.up) {
        log.info("{} answers as a standby: reads may go there", s.name);
        s.up = true;
      }
    } catch (SQLException | RuntimeException e) {
      s.probe = closeQuietly(s.probe);
      if (s.up) {
        log.warn("{} failed its probe ({}): reads go elsewhere until it answers", s.name, e.getMessage());
        s.up = false;
      }
    }
  }

  private static long lsn(Connection c, String sql) throws SQLException {
    try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
      rs.next();
      return CommitLsn.parse(rs.getString(1));
    }
  }

  private Connection open(Connection c, String url, String name) throws SQLException {
    if (c != null) {
      return c;
    }
    Properties p = new Properties();
    if (!settings.dbUser().isEmpty()) {
      p.setProperty("user", settings.dbUser());
    }
    if (!settings.dbPassword().isEmpty()) {
      p.setProperty("password", settings.dbPassword());
    }
    p.setProperty("ApplicationName", settings.applicationName() + " standby probe " + name);
    // A frozen host holds the probe at most this long; meanwhile freshness ages and reads go to
    // the primary.
    p.setProperty("connectTimeout", "2");
    p.setProperty("loginTimeout", "2");
    p.setProperty("socketTimeout", "2");
    return DriverManager.getConnection(url, p);
  }

  private static Connection closeQuietly(Connection c) {
    if (c != null) {
      try {
        c.close();
      } catch (SQLException ignored) {
        // broken anyway
      }
    }
    return null;
  }

  @Override
  public void close() {
    closed = true;
    synchronized (lock) {
      lock.notifyAll();
    }
    try {
      prober.join(3000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    primaryProbe = closeQuietly(primaryProbe);
    for (Standby s : standbys) {
      s.probe = closeQuietly(s.probe);
      s.pool.close();
    }
  }
}
