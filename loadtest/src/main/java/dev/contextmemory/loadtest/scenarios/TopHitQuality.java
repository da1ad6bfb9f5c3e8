package dev.contextmemory.loadtest.scenarios;

import java.util.Locale;

/**
 * The quality sanity check of search_memories_text: of the answers seen during the measured run,
 * the share whose top hit is a fact of the question's category (a question asked for a customer
 * who has at least one such fact). Counted on every answer, off nothing but two counters.
 */
public final class TopHitQuality {
  private final double floor;
  private long answers;
  private long right;

  public TopHitQuality(double floor) {
    this.floor = floor;
  }

  /** One answer: the question's category and the top hit's (-1 when nothing or a foreign text came back). */
  public synchronized void offer(int expected, int topHit) {
    answers++;
    if (expected == topHit) {
      right++;
    }
  }

  public synchronized void clear() {
    answers = 0;
    right = 0;
  }

  /** The share, or null when no answer was seen. */
  public synchronized Double share() {
    return answers == 0 ? null : (double) right / answers;
  }

  public double floor() {
    return floor;
  }

  public String describe() {
    return String.format(Locale.ROOT, "top hit in the question's category >= %.2f", floor);
  }

  public synchronized String measured() {
    return String.format(Locale.ROOT, "%d of %d answers = %.3f", right, answers, answers == 0 ? 0 : (double) right / answers);
  }
}
