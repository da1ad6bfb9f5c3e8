package dev.contextmemory.loadtest.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The harness's own copy of the data set's memory embeddings and the ids the server gave them,
 * for exact nearest neighbours by brute force: the ground truth recall@10 is measured against.
 * Memories the run itself writes (agent turns) are not here; they live in a cluster no query
 * comes near (see {@link Vectors}), so they cannot be true neighbours.
 */
public final class MemoryCopy {
  private final float[][] vectors;
  private final int[] customerOf;
  private final int[][] byCustomer;
  private final String[] ids;

  /** Copies the data set's memories; {@code ids[j]} is the server's id of memory j. */
  public MemoryCopy(DataSet data, String[] ids) {
    int n = data.sizes().memories();
    if (ids.length != n) {
      throw new IllegalArgumentException("expected " + n + " ids, got " + ids.length);
    }
    this.ids = ids.clone();
    this.vectors = new float[n][];
    this.customerOf = new int[n];
    int[] counts = new int[data.sizes().customers()];
    for (int j = 0; j < n; j++) {
      vectors[j] = data.embedding(j);
      customerOf[j] = data.customerOfMemory(j);
      counts[customerOf[j]]++;
    }
    this.byCustomer = new int[counts.length][];
    for (int c = 0; c < counts.length; c++) {
      byCustomer[c] = new int[counts[c]];
    }
    int[] fill = new int[counts.length];
    for (int j = 0; j < n; j++) {
      byCustomer[customerOf[j]][fill[customerOf[j]]++] = j;
    }
  }

  public int size() {
    return vectors.length;
  }

  /** Memory indexes of a customer, ascending. */
  public int[] memoriesOf(int customer) {
    return byCustomer[customer];
  }

  public String id(int memory) {
    return ids[memory];
  }

  /**
   * The exact top {@code k} by cosine similarity among those with a similarity of at least
   * {@code minSimilarity}: over one customer's memories, or over all of them when {@code customer}
   * is negative. Best first.
   */
  public List<Integer> topK(float[] query, int customer, int k, double minSimilarity) {
    int[] scope = customer >= 0 ? byCustomer[customer] : null;
    int n = scope == null ? vectors.length : scope.length;
    int[] best = new int[Math.min(k, n)];
    double[] score = new double[best.length];
    int filled = 0;
    for (int x = 0; x < n; x++) {
      int j = scope == null ? x : scope[x];
      double s = Vectors.dot(query, vectors[j]);
      if (s < minSimilarity) {
        continue;
      }
      if (filled < best.length) {
        insert(best, score, filled++, j, s);
      } else if (s > score[filled - 1]) {
        insert(best, score, filled - 1, j, s);
      }
    }
    List<Integer> out = new ArrayList<>(filled);
    for (int i = 0; i < filled; i++) {
      out.add(best[i]);
    }
    return out;
  }

  /** Inserts (j, s) into the sorted prefix best[0..pos], dropping what was at pos. */
  private static void insert(int[] best, double[] score, int pos, int j, double s) {
    int i = pos;
    while (i > 0 && score[i - 1] < s) {
      best[i] = best[i - 1];
      score[i] = score[i - 1];
      i--;
    }
    best[i] = j;
    score[i] = s;
  }

  /**
   * Recall@k of one answer: the share of the exact top k that the server returned. The truth is
   * what the same request asks for: SearchMemories with the default {@code min_score} of 0 keeps
   * only non-negative similarities, so a scope with fewer than k such memories has a shorter
   * truth (an empty one is recalled perfectly). Ids the harness does not know count as misses.
   */
  public double recall(float[] query, int customer, Collection<String> returnedIds, int k) {
    List<Integer> truth = topK(query, customer, k, 0);
    if (truth.isEmpty()) {
      return 1;
    }
    Set<String> returned = new HashSet<>(returnedIds);
    long hits = truth.stream().filter(j -> returned.contains(ids[j])).count();
    return (double) hits / truth.size();
  }

  @Override
  public String toString() {
    return "MemoryCopy[" + vectors.length + " memories, " + byCustomer.length + " customers, ids "
        + (Arrays.stream(ids).allMatch(i -> i != null) ? "complete" : "incomplete") + "]";
  }
}
