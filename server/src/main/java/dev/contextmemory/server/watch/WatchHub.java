package dev.contextmemory.server.watch;

import dev.contextmemory.server.domain.ConversationEvent;
import dev.contextmemory.server.domain.FailedPreconditionException;
import dev.contextmemory.server.domain.ResourceExhaustedException;
import dev.contextmemory.server.store.ConversationEvents;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's side of WatchConversations, without gRPC types: it has committed events numbered
 * ({@link EventSequencer}), reads new ones once for every subscriber (the poller) and hands each subscriber the
 * events its filter matches; a subscriber that resumes from an older cursor first catches up with
 * reads of its own, page by page as its buffer empties, and then joins the live feed.
 *
 * <p>Threads: {@code watch-sequencer} (EventSequencer's), {@code watch-poll} (after every NOTIFY, local
 * pass and every second, while a stream is open; also the checkpoints), {@code watch-listen} (the LISTEN connection) and two
 * {@code watch-catchup} threads. No subscriber holds a request thread or a request's pool slot while
 * it waits: each read borrows a pool connection for one statement.
 *
 * <p>Exactly once: every subscriber has a position, {@code scanned}, through which it has been
 * offered every event. The poller reads (head, new head] and offers a live subscriber only events
 * past its own position; a catching-up subscriber reads (scanned, scanned + window] and becomes
 * live, under the dispatch lock, once its position reaches the poller's head. Positions are
 * prefix-closed (ConversationEvents), so "read through p" means "seen every event ≤ p".
 */
public final class WatchHub implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(WatchHub.class);
  /** Events the poller and a sequencer pass handle per round trip. */
  static final int BATCH = 1000;
  /** How many positions one catch-up read spans at most, whatever its filter rejects. */
  static final int CATCH_UP_WINDOW = 5000;
  private static final Duration FALLBACK_INTERVAL = Duration.ofSeconds(1);
  /**
   * Connections of the watch pool: the sequencer, the poller and the two catch-up threads each
   * hold at most one; the purge and a subscribing request thread wait briefly when all are busy.
   */
  public static final int POOL_SIZE = 4;

  /** Where a subscription's events go; implemented by the gRPC stream. */
  /**
   * A stream opened after shutdown began (a client reopening the stream that shutdown just ended,
   * before the server stopped taking calls): the edge answers UNAVAILABLE, as for open streams.
   */
  public static final class Stopping extends RuntimeException {
    Stopping() {
      super("the server is stopping", null, false, false);
    }
  }

  public interface Sink {
    /** Queues one event; false when the sink's buffer was full and it has ended the stream. */
    boolean deliver(ConversationEvent e);

    /** Free room in the buffer: a catch-up read fetches at most this many events. */
    int room();

    /** Every event through {@code position} has been offered (the checkpoint and resume position). */
    void scannedThrough(long position);

    /** Sends a checkpoint if the stream has been quiet since the last one. */
    void checkpoint();

    /** Ends the stream because the server is stopping (UNAVAILABLE with the resume cursor). */
    void shutdown();

    /** Ends the stream with a failure found while catching up (e.g. the cursor expired). */
    void fail(RuntimeException e);
  }

  /** One open stream. */
  public final class Subscription {
    final String tenant;
    final ConversationEvent.Filter filter;
    final Sink sink;
    private final long start;
    volatile long scanned;
    volatile boolean live;
    volatile boolean closed;
    private final AtomicBoolean closing = new AtomicBoolean();
    private final AtomicBoolean catchUpScheduled = new AtomicBoolean();

    private Subscription(String tenant, ConversationEvent.Filter filter, Sink sink, long scanned) {
      this.tenant = tenant;
      this.filter = filter;
      this.sink = sink;
      this.scanned = scanned;
      this.start = scanned;
    }

    /** The position the subscription started after (the resume cursor's, or the head's). */
    public long startPosition() {
      return start;
    }

    /** The sink has room again: continue catching up if this subscription is behind. */
    public void resume() {
      if (!live && !closed) {
        scheduleCatchUp(this);
      }
    }

    /** The stream ended (client cancel, error, or the sink's own end): forget it. */
    public void close() {
      if (closing.compareAndSet(false, true)) {
        closed = true;
        Set<Subscription> set = byTenant.get(tenant);
        if (set != null) {
          set.remove(this);
        }
        streams.decrementAndGet();
        release(tenant);
      }
    }
  }

  private final ConversationEvents events;
  private final int maxStreamsPerTenant;
  private final Duration checkpointInterval;
  private final Map<String, Set<Subscription>> byTenant = new ConcurrentHashMap<>();
  private final Map<String, AtomicInteger> perTenant = new ConcurrentHashMap<>();
  private final AtomicInteger streams = new AtomicInteger();
  private final ReentrantLock dispatch = new ReentrantLock();
  private final EventSequencer sequencer;
  private final ScheduledExecutorService poller;
  private final ExecutorService catchUp;
  private final AtomicBoolean pollPending = new AtomicBoolean();
  private final AtomicLong delivered = new AtomicLong();
  private final AtomicLong failures = new AtomicLong();
  private final EventListener listener;
  /** Every event through here has been offered to every live subscriber. Written by the poller only. */
  private volatile long head;
  private volatile boolean stopping;

  public WatchHub(ConversationEvents events, String dbUrl, String dbUser, String dbPassword, String applicationName,
      int maxStreamsPerTenant, Duration checkpointInterval) {
    this.events = events;
    this.maxStreamsPerTenant = maxStreamsPerTenant;
    this.checkpointInterval = checkpointInterval;
    this.poller = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(daemon("watch-poll"));
    // Bounded: at most one pending catch-up task per subscription (catchUpScheduled).
    this.catchUp = new ThreadPoolExecutor(2, 2, 0, TimeUnit.MILLISECONDS, new LinkedBlockingQueue<>(),
        daemon("watch-catchup"));
    this.head = events.head();
    this.sequencer = new EventSequencer(events, this::wakePoller, failures);
    events.onCommit(sequencer::wake);
    poller.scheduleWithFixedDelay(this::wakePoller, FALLBACK_INTERVAL.toMillis(), FALLBACK_INTERVAL.toMillis(),
        TimeUnit.MILLISECONDS);
    poller.scheduleWithFixedDelay(this::checkpoints, checkpointInterval.toMillis(), checkpointInterval.toMillis(),
        TimeUnit.MILLISECONDS);
    this.listener = new EventListener(dbUrl, dbUser, dbPassword, applicationName, ConversationEvents.CHANNEL,
        this::wakePoller);
  }

  static java.util.concurrent.ThreadFactory daemon(String name) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, n.getAndIncrement() == 0 ? name : name + "-" + n.get());
      t.setDaemon(true);
      return t;
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Subscribing

  /**
   * Opens a subscription for {@code tenant}. {@code after} null starts at the newest committed
   * event; otherwise every event after that position is delivered, unless the retention purge has
   * already deleted some (FAILED_PRECONDITION CURSOR_EXPIRED). Past the tenant's cap of streams:
   * RESOURCE_EXHAUSTED TOO_MANY_WATCH_STREAMS.
   */
  public Subscription subscribe(String tenant, ConversationEvent.Filter filter, Long after, Sink sink) {
    if (stopping) {
      throw new Stopping();
    }
    AtomicBoolean admitted = new AtomicBoolean();
    perTenant.compute(tenant, (t, n) -> {
      AtomicInteger count = n == null ? new AtomicInteger() : n;
      if (maxStreamsPerTenant <= 0 || count.get() < maxStreamsPerTenant) {
        count.incrementAndGet();
        admitted.set(true);
      }
      return count.get() == 0 ? null : count;
    });
    if (!admitted.get()) {
      throw new ResourceExhaustedException("TOO_MANY_WATCH_STREAMS", "this tenant has " + maxStreamsPerTenant
          + " WatchConversations streams open, its limit; close one or retry later", Duration.ofSeconds(1));
    }
    long start;
    try {
      if (after == null) {
        // Number what has committed so far first, so "from now" means after every write that
        // committed before this call, not after whatever the sequencer happened to reach.
        while (events.sequence(BATCH) == BATCH) {
          // a backlog: keep numbering
        }
        start = events.head();
      } else {
        long purged = events.purgedThrough();
        if (after < purged) {
          throw cursorExpired();
        }
        start = after;
      }
    } catch (RuntimeException e) {
      release(tenant);
      throw e;
    }
    Subscription sub = new Subscription(tenant, filter, sink, start);
    advanceIdleHead(after == null ? start : null);
    streams.incrementAndGet();
    byTenant.computeIfAbsent(tenant, t -> ConcurrentHashMap.newKeySet()).add(sub);
    if (!tryGoLive(sub)) {
      scheduleCatchUp(sub);
    }
    return sub;
  }

  private void release(String tenant) {
    perTenant.computeIfPresent(tenant, (t, n) -> n.decrementAndGet() <= 0 ? null : n);
  }

  static FailedPreconditionException cursorExpired() {
    return new FailedPreconditionException("CURSOR_EXPIRED", "the resume cursor is older than the event retention;"
        + " events after it were purged: resync (read the conversations' state, e.g. ListMessages) and watch again"
        + " without a cursor", Map.of());
  }

  /**
   * While no stream is open the poller does not read, so its head stays where the last stream
   * left it; the first new stream moves it to the committed head first, or the poller would read
   * everything since then, 1,000 events per round trip. A subscriber starts at or past the head it
   * read itself, or catches up by its own reads, so it skips nothing. {@code committedHead}: the
   * head the subscriber just read, or null (one is read here).
   */
  private void advanceIdleHead(Long committedHead) {
    if (streams.get() != 0) {
      return;
    }
    long h = committedHead != null ? committedHead : events.head();
    dispatch.lock();
    try {
      if (streams.get() == 0 && h > head) {
        head = h;
      }
    } finally {
      dispatch.unlock();
    }
  }

  private boolean tryGoLive(Subscription sub) {
    dispatch.lock();
    try {
      if (sub.scanned >= head) {
        sub.live = true;
        return true;
      }
      return false;
    } finally {
      dispatch.unlock();
    }
  }

  private void scheduleCatchUp(Subscription sub) {
    if (sub.catchUpScheduled.compareAndSet(false, true)) {
      try {
        catchUp.execute(() -> {
          sub.catchUpScheduled.set(false);
          catchUpOnce(sub);
        });
      } catch (java.util.concurrent.RejectedExecutionException stopped) {
        sub.catchUpScheduled.set(false);
      }
    }
  }

  /**
   * One catch-up page: read, offer, then go live, read again, or wait for room. Serialized per
   * subscription: a resume() while a page is read queues the next page, never a parallel one.
   */
  private void catchUpOnce(Subscription sub) {
    synchronized (sub) {
      catchUpLocked(sub);
    }
  }

  private void catchUpLocked(Subscription sub) {
    if (sub.closed || sub.live) {
      return;
    }
    int room = sub.sink.room();
    if (room <= 0) {
      return; // the sink calls resume() when it has drained
    }
    try {
      long from = sub.scanned;
      if (from < events.purgedThrough()) {
        sub.close();
        sub.sink.fail(cursorExpired());
        return;
      }
      // Never below from: a cursor from another replica may be ahead of this server's head.
      long upto = Math.max(from, Math.min(head, from + CATCH_UP_WINDOW));
      int limit = Math.min(room, BATCH);
      List<ConversationEvent> page = events.readTenant(sub.tenant, sub.filter, from, upto, limit);
      for (ConversationEvent e : page) {
        if (!sub.sink.deliver(e)) {
          sub.close();
          return;
        }
        delivered.incrementAndGet();
      }
      sub.scanned = page.size() == limit ? page.get(page.size() - 1).position() : upto;
      sub.sink.scannedThrough(sub.scanned);
    } catch (RuntimeException e) {
      failures.incrementAndGet();
      log.warn("watch catch-up read failed: {}", e.toString());
      // The poller's interval retries it (it wakes every subscriber that is still behind).
      return;
    }
    if (!tryGoLive(sub)) {
      scheduleCatchUp(sub);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Sequencing and the live feed

  /** A local write committed events: number them soon (tests call it to skip the fallback wait). */
  public void wakeSequencer() {
    sequencer.wake();
  }

  /** New events may be numbered: read them soon (coalesced). */
  public void wakePoller() {
    if (pollPending.compareAndSet(false, true)) {
      try {
        poller.execute(this::pollPass);
      } catch (java.util.concurrent.RejectedExecutionException stopped) {
        pollPending.set(false);
      }
    }
  }

  private void pollPass() {
    pollPending.set(false);
    try {
      if (streams.get() == 0) {
        // Nobody listens here: nothing to read. The head moves when the next stream subscribes
        // (advanceIdleHead); reading it on every wake cost two statements per append.
        return;
      }
      List<ConversationEvent> batch;
      do {
        long from = head;
        batch = events.readAll(from, Long.MAX_VALUE, BATCH);
        if (batch.isEmpty()) {
          break;
        }
        offer(batch, batch.get(batch.size() - 1).position());
      } while (batch.size() == BATCH && !stopping);
      // Subscribers still catching up get another chance (a failed read is retried here).
      for (Set<Subscription> set : byTenant.values()) {
        for (Subscription sub : set) {
          if (!sub.live) {
            sub.resume();
          }
        }
      }
    } catch (RuntimeException e) {
      failures.incrementAndGet();
      log.warn("watch poll failed (retried within a second): {}", e.toString());
    }
  }

  /**
   * Offers a batch to the live subscribers and moves the head to {@code through}. The read lists
   * only events with content (an erased message's event is dropped), so the head comes from the
   * last row read, not from the events offered.
   */
  private void offer(List<ConversationEvent> batch, long through) {
    dispatch.lock();
    try {
      for (Set<Subscription> set : byTenant.values()) {
        for (Subscription sub : set) {
          if (!sub.live || sub.closed) {
            continue;
          }
          boolean open = true;
          for (ConversationEvent e : batch) {
            if (e.position() > sub.scanned && e.tenant().equals(sub.tenant) && sub.filter.matches(e)) {
              if (!sub.sink.deliver(e)) {
                sub.close();
                open = false;
                break;
              }
              delivered.incrementAndGet();
            }
          }
          if (open && through > sub.scanned) {
            sub.scanned = through;
            sub.sink.scannedThrough(through);
          }
        }
      }
      head = Math.max(head, through);
    } finally {
      dispatch.unlock();
    }
  }

  private void checkpoints() {
    for (Set<Subscription> set : byTenant.values()) {
      for (Subscription sub : set) {
        if (!sub.closed) {
          sub.sink.checkpoint();
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------------

  /** Open streams (metrics). */
  public int streams() {
    return streams.get();
  }

  /** Events handed to streams since start (metrics). */
  public long deliveredTotal() {
    return delivered.get();
  }

  /** Failed sequencer passes, polls and catch-up reads since start (metrics). */
  public long failuresTotal() {
    return failures.get();
  }

  /** Sequencer passes since start, empty ones included (metrics). */
  public long sequencerPasses() {
    return sequencer.passes();
  }

  /** Times the LISTEN connection was lost (metrics). */
  public long listenerReconnects() {
    return listener.reconnects();
  }

  /** The LISTEN connection's backend pid, -1 while it is down (tests terminate it). */
  public int listenerBackendPid() {
    return listener.backendPid();
  }

  /** The position through which every live subscriber has been offered every event. */
  public long head() {
    return head;
  }

  /**
   * Ends every stream with UNAVAILABLE and its resume cursor, then stops the threads. Called
   * before the gRPC server drains, so streams do not hold the shutdown for its whole grace.
   */
  @Override
  public void close() {
    stopping = true;
    for (Set<Subscription> set : byTenant.values()) {
      for (Subscription sub : set) {
        sub.close();
        sub.sink.shutdown();
      }
    }
    listener.close();
    sequencer.close();
    poller.shutdownNow();
    catchUp.shutdownNow();
    try {
      poller.awaitTermination(5, TimeUnit.SECONDS);
      catchUp.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
