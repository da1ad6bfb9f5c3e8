package dev.contextmemory.loadtest.dsl;

import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The state of one run of a scenario's steps: the values its feeders put in and the values earlier
 * steps saved from their responses (Gatling's session). Steps run one after another, each started
 * from the completion of the one before, so a session is never touched by two threads at once.
 */
public final class Session {
  private final long index;
  private final SplittableRandom random;
  private final Map<String, Object> values = new HashMap<>();

  public Session(long index, long seed) {
    this.index = index;
    this.random = new SplittableRandom(Mix.mix64(seed ^ Mix.mix64(index)));
  }

  /** 0-based number of this session within its run. */
  public long index() {
    return index;
  }

  /** A random source of this session only, reproducible from the run's seed and the index. */
  public SplittableRandom random() {
    return random;
  }

  public Session put(String key, Object value) {
    values.put(key, value);
    return this;
  }

  /** The value under {@code key}; fails loudly when a feeder or step forgot to put it. */
  @SuppressWarnings("unchecked")
  public <T> T get(String key) {
    Object v = values.get(key);
    if (v == null && !values.containsKey(key)) {
      throw new IllegalStateException("session has no '" + key + "' (keys: " + values.keySet() + ")");
    }
    return (T) v;
  }

  public boolean has(String key) {
    return values.containsKey(key);
  }
}
