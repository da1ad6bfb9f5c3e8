package dev.contextmemory.loadtest.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class FactsTest {
  @Test
  void aBoundedSetOfDistinctFactsEveryCategoryUsedAndAskedFor() {
    Facts f = new Facts(42);
    List<String> texts = f.texts();
    assertEquals(texts.size(), new HashSet<>(texts).size(), "fact texts are distinct");
    assertTrue(texts.size() < 1_000, "embedding each distinct text once must stay cheap: " + texts.size());
    int[] perCategory = new int[f.categories()];
    Set<Integer> used = new HashSet<>();
    for (int j = 0; j < 20_000; j++) {
      int t = f.textOf(j);
      assertEquals(t, f.textOf(j), "a pure function of the seed and the index");
      used.add(t);
      perCategory[f.categoryOfTextIndex(t)]++;
      assertEquals(f.categoryOfTextIndex(t), f.categoryOf(texts.get(t)));
    }
    for (int c = 0; c < f.categories(); c++) {
      assertTrue(perCategory[c] > 20_000 / f.categories() / 2, f.categoryName(c) + ": " + perCategory[c]);
      assertTrue(f.questions(c).size() >= 3, f.categoryName(c));
    }
    assertTrue(used.size() > texts.size() * 9 / 10, "most texts are used: " + used.size());
    assertEquals(-1, f.categoryOf("not a fact"));
    int q = 0;
    for (int c = 0; c < f.categories(); c++) {
      for (int i = 0; i < f.questions(c).size(); i++) {
        assertEquals(f.questions(c).get(i), f.allQuestions().get(f.questionIndex(c, i)));
        q++;
      }
    }
    assertEquals(q, f.allQuestions().size());
  }
}
