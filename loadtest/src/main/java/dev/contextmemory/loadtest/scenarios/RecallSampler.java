package dev.contextmemory.loadtest.scenarios;

import dev.contextmemory.loadtest.data.MemoryCopy;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Keeps a uniform sample (reservoir) of a memory search's answers during the run, and afterwards
 * scores them against the harness's brute-force top 10, off the measured path.
 */
public final class RecallSampler {
  /** One answer: the query, its scope (customer index, or -1 for the tenant) and the ids returned. */
  record Answer(float[] query, int customer, List<String> ids) {}

  private final int capacity;
  private final List<Answer> kept = new ArrayList<>();
  private long seen;

  public RecallSampler(int capacity) {
    this.capacity = capacity;
  }

  public synchronized void offer(float[] query, int customer, List<String> ids) {
    seen++;
    if (kept.size() < capacity) {
      kept.add(new Answer(query, customer, List.copyOf(ids)));
    } else {
      long r = ThreadLocalRandom.current().nextLong(seen);
      if (r < capacity) {
        kept.set((int) r, new Answer(query, customer, List.copyOf(ids)));
      }
    }
  }

  public synchronized int size() {
    return kept.size();
  }

  /** Mean recall@k of the kept answers, or null when none were kept. Uses all cores. */
  public Double recallAt(int k, MemoryCopy copy) {
    List<Answer> answers;
    synchronized (this) {
      answers = List.copyOf(kept);
    }
    if (answers.isEmpty()) {
      return null;
    }
    return answers.parallelStream().mapToDouble(a -> copy.recall(a.query(), a.customer(), a.ids(), k))
        .average().orElseThrow();
  }

  public synchronized void clear() {
    kept.clear();
    seen = 0;
  }
}
