package dev.contextmemory.loadtest.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class DataSetTest {
  private static final DataSet.Sizes SIZES = new DataSet.Sizes(50, 2, 10, 2_000, 8, 768);

  @Test
  void everyItemIsAFunctionOfSeedAndIndex() {
    DataSet a = new DataSet(SIZES, 7);
    DataSet b = new DataSet(SIZES, 7);
    DataSet other = new DataSet(SIZES, 8);
    assertEquals(a.message(3, 4), b.message(3, 4));
    assertEquals(a.memory(123), b.memory(123));
    assertArrayEquals(a.embedding(5), b.embedding(5));
    assertNotEquals(a.memory(123).getEmbeddingList(), other.memory(123).getEmbeddingList());
    assertEquals("lt:3:4", a.message(3, 4).getIdempotencyKey());
    assertEquals(a.customerOfConversation(7), 3);
  }

  @Test
  void embeddingsAreUnitVectorsGroupedByCluster() {
    DataSet d = new DataSet(SIZES, 1);
    Vectors v = d.vectors();
    double same = 0;
    double other = 0;
    int nSame = 0;
    int nOther = 0;
    for (int i = 0; i < 200; i++) {
      float[] x = d.embedding(i);
      assertEquals(768, x.length);
      assertEquals(1.0, Vectors.dot(x, x), 1e-5);
      for (int j = i + 1; j < 200; j++) {
        double c = Vectors.dot(x, d.embedding(j));
        if (d.clusterOfMemory(i) == d.clusterOfMemory(j)) {
          same += c;
          nSame++;
        } else {
          other += c;
          nOther++;
        }
      }
    }
    same /= nSame;
    other /= nOther;
    assertEquals(0.67, same, 0.05, "members of one cluster: cos ~ 1 / (1 + 0.7²)");
    assertEquals(0.0, other, 0.05, "different clusters: nearly orthogonal");
    // The reserved cluster is far from every data cluster.
    float[] r = v.member(v.reservedCluster(), 99);
    for (int i = 0; i < 200; i++) {
      assertTrue(Vectors.dot(r, d.embedding(i)) < 0.3);
    }
  }

  @Test
  void memoriesAreSkewedTowardsAFewCustomers() {
    DataSet d = new DataSet(SIZES, 1);
    int[] per = new int[SIZES.customers()];
    for (int j = 0; j < SIZES.memories(); j++) {
      per[d.customerOfMemory(j)]++;
    }
    assertTrue(per[0] > 4 * per[SIZES.customers() - 1], "customer 0 " + per[0] + " vs last " + per[49]);
    assertTrue(IntStream.of(per).allMatch(n -> n > 0), "everybody has some");
  }

  @Test
  void bruteForceTopKMatchesASortAndRecallCountsTheOverlap() {
    DataSet d = new DataSet(SIZES, 3);
    String[] ids = new String[SIZES.memories()];
    for (int j = 0; j < ids.length; j++) {
      ids[j] = "m" + j;
    }
    MemoryCopy copy = new MemoryCopy(d, ids);
    float[] q = d.vectors().member(2, Long.MIN_VALUE | 77);
    for (int customer : new int[] {-1, 0, 17}) {
      List<Integer> scope = new ArrayList<>();
      for (int j = 0; j < ids.length; j++) {
        if (customer < 0 || d.customerOfMemory(j) == customer) {
          scope.add(j);
        }
      }
      scope.removeIf(j -> Vectors.dot(q, d.embedding(j)) < 0);
      scope.sort(Comparator.comparingDouble((Integer j) -> -Vectors.dot(q, d.embedding(j))));
      List<Integer> expected = scope.subList(0, Math.min(10, scope.size()));
      assertEquals(expected, copy.topK(q, customer, 10, 0), "customer " + customer);
      assertTrue(!expected.isEmpty(), "customer " + customer + " has non-negative neighbours");

      List<String> answer = new ArrayList<>(expected.stream().map(j -> ids[j]).toList());
      assertEquals(1.0, copy.recall(q, customer, answer, 10));
      answer.set(0, "unknown");
      assertEquals((expected.size() - 1.0) / expected.size(), copy.recall(q, customer, answer, 10), 1e-12);
    }
    assertEquals(0.0, copy.recall(q, -1, List.of(), 10));
    // Negative similarities are not part of the truth (min_score 0), so they cannot be missed.
    float[] far = d.vectors().member(d.vectors().reservedCluster(), 5);
    assertTrue(copy.topK(far, -1, 10, 0).size() == 10, "tenant-wide there are always 10 non-negative");
    assertEquals(20, copy.topK(far, -1, 20, -1).size());
  }

  @Test
  void textsAreDeterministicAndQueriesUseTheVocabulary() {
    assertEquals(Texts.sentence(5), Texts.sentence(5));
    assertNotEquals(Texts.sentence(5), Texts.sentence(6));
    java.util.SplittableRandom r = new java.util.SplittableRandom(1);
    for (int i = 0; i < 100; i++) {
      for (String w : Texts.query(r).split(" ")) {
        assertTrue(Texts.WORDS.contains(w), w);
      }
    }
  }
}
