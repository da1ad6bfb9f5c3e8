package dev.contextmemory.loadtest.data;

import dev.contextmemory.loadtest.dsl.Mix;
import java.util.SplittableRandom;

/**
 * Clustered unit vectors, like real text embeddings: a fixed set of random centroids (topics);
 * each vector is a centroid plus Gaussian noise, normalised. With a noise norm of 0.7 a member's
 * cosine to its centroid is about 0.82 and two members of one cluster have about 0.67, while
 * random centroids in 768 dimensions are nearly orthogonal; finding the exact top 10 inside a
 * cluster of hundreds is the hard part an ANN index can get wrong, which is what recall measures.
 *
 * <p>One extra centroid ({@link #reservedCluster()}) is never used by the data set or by queries:
 * memories the agent-turn scenario writes during the run live there, so they cannot change which
 * memories are the true nearest neighbours of a query.
 */
public final class Vectors {
  public static final double DEFAULT_SPREAD = 0.7;

  private final int dimension;
  private final int clusters;
  private final double spread;
  private final long seed;
  private final float[][] centroids;

  public Vectors(int dimension, int clusters, long seed, double spread) {
    if (dimension < 2 || clusters < 1) {
      throw new IllegalArgumentException("dimension >= 2 and clusters >= 1 required");
    }
    this.dimension = dimension;
    this.clusters = clusters;
    this.spread = spread;
    this.seed = seed;
    this.centroids = new float[clusters + 1][];
    for (int c = 0; c <= clusters; c++) {
      centroids[c] = gaussianUnit(new SplittableRandom(Mix.mix64(seed ^ (0x5EED0000L + c))), null, 0);
    }
  }

  public int dimension() {
    return dimension;
  }

  /** Number of clusters the data set and the queries use (0 .. clusters-1). */
  public int clusters() {
    return clusters;
  }

  /** The cluster kept free of the data set and of queries. */
  public int reservedCluster() {
    return clusters;
  }

  /** A unit vector of {@code cluster}, the same for the same key. */
  public float[] member(int cluster, long key) {
    SplittableRandom r = new SplittableRandom(Mix.mix64(seed ^ Mix.mix64(key) ^ ((long) cluster << 40)));
    return gaussianUnit(r, centroids[cluster], spread);
  }

  private float[] gaussianUnit(SplittableRandom r, float[] center, double noise) {
    float[] v = new float[dimension];
    double sigma = center == null ? 1 : noise / Math.sqrt(dimension);
    double norm = 0;
    for (int i = 0; i < dimension; i++) {
      double x = r.nextGaussian() * sigma + (center == null ? 0 : center[i]);
      v[i] = (float) x;
      norm += x * x;
    }
    float inv = (float) (1 / Math.sqrt(norm));
    for (int i = 0; i < dimension; i++) {
      v[i] *= inv;
    }
    return v;
  }

  /** Cosine similarity of two unit vectors. */
  public static double dot(float[] a, float[] b) {
    double s0 = 0;
    double s1 = 0;
    int i = 0;
    for (; i + 1 < a.length; i += 2) {
      s0 += a[i] * b[i];
      s1 += a[i + 1] * b[i + 1];
    }
    if (i < a.length) {
      s0 += a[i] * b[i];
    }
    return s0 + s1;
  }
}
