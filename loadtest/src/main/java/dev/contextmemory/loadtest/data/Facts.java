package dev.contextmemory.loadtest.data;

import dev.contextmemory.loadtest.dsl.Mix;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The text-search scenarios' data (issue 15): short customer facts in a dozen categories (where
 * they live, their pet, allergies, how to reach them, ...), each a template filled from a small
 * list, so a data set of 100,000 memories holds fewer than a thousand distinct texts and the
 * server's model has to embed each distinct text only once. Each category has questions phrased
 * unlike its facts ("where does the customer live" for "Lives at 12 Elm Street"): the queries of
 * search_memories_text, whose top hit should be a fact of the question's category.
 *
 * <p>Memory {@code j}'s fact is a pure function of the seed and {@code j}, as in {@link DataSet}.
 */
public final class Facts {
  /** A kind of fact: its templates (one %s each) and what fills them. */
  record Category(String name, List<String> templates, List<String> fillers) {}

  private static final List<Category> CATEGORIES = List.of(
      new Category("address",
          List.of("Lives at %s", "Home address is %s", "Moved last year to %s", "The house is at %s"),
          List.of("12 Elm Street", "48 Oak Avenue", "7 Birch Lane", "301 Maple Drive", "95 Cedar Court",
              "16 Pine Road", "220 Willow Way", "3 Harbor View", "77 Mill Street", "150 Lakeshore Boulevard",
              "9 Station Road", "61 Orchard Close", "402 Sunset Terrace", "18 Church Street", "5 Ridge Crescent")),
      new Category("pet",
          List.of("Has a %s at home", "Owns a %s that gets nervous around strangers", "Their %s barks at the door"),
          List.of("golden retriever", "black labrador", "german shepherd", "beagle", "tabby cat", "siamese cat",
              "poodle", "border collie", "parrot", "pair of rabbits", "husky", "dachshund", "bulldog",
              "corgi", "maine coon")),
      new Category("allergy",
          List.of("Is allergic to %s", "Has a severe %s allergy", "Gets sick from %s, keep it away"),
          List.of("peanuts", "shellfish", "dust", "pollen", "latex gloves", "penicillin", "bee stings", "mold",
              "strong perfume", "cleaning sprays", "tree nuts", "wool", "eggs", "soy", "sesame")),
      new Category("contact",
          List.of("Prefers to be contacted by %s", "Only answers %s", "Asked us to reach out by %s"),
          List.of("text message", "email", "phone call in the evening", "whatsapp", "voicemail",
              "a call to the office line", "sms before noon", "email to the work address", "a call to the mobile",
              "messenger", "a text to the spouse", "phone after 6 pm", "email only, never calls", "letter",
              "the app chat")),
      new Category("schedule",
          List.of("Is only available on %s", "Wants appointments on %s", "Works nights, so book %s"),
          List.of("monday mornings", "tuesday afternoons", "wednesdays after 3", "thursday evenings",
              "friday mornings", "weekends", "saturday before noon", "sunday afternoons", "weekday lunch hours",
              "the first week of the month", "early mornings", "late afternoons", "alternate fridays",
              "holidays", "school hours")),
      new Category("payment",
          List.of("Pays with %s", "Always settles the invoice by %s", "Wants to pay by %s"),
          List.of("a visa card", "cash on pickup", "a personal check", "paypal", "bank transfer", "a mastercard",
              "american express", "apple pay", "a company card", "venmo", "a debit card", "monthly invoice",
              "a gift card", "zelle", "google pay")),
      new Category("language",
          List.of("Speaks %s at home", "Is more comfortable in %s", "Needs the crew to speak %s"),
          List.of("spanish", "french", "portuguese", "mandarin", "cantonese", "vietnamese", "korean", "arabic",
              "russian", "polish", "italian", "german", "hindi", "tagalog", "greek")),
      new Category("vehicle",
          List.of("Drives a %s", "Parks a %s in the driveway", "Owns a %s that blocks the garage"),
          List.of("red pickup truck", "blue minivan", "white sedan", "black suv", "silver hatchback",
              "green jeep", "vintage convertible", "electric hatchback", "camper van", "motorcycle",
              "grey station wagon", "yellow sports car", "delivery van", "pickup with a trailer", "small hybrid")),
      new Category("occupation",
          List.of("Works as a %s", "Is a %s by trade", "Retired after thirty years as a %s"),
          List.of("nurse", "teacher", "electrician", "lawyer", "chef", "firefighter", "accountant", "plumber",
              "dentist", "software engineer", "police officer", "pharmacist", "architect", "truck driver",
              "librarian")),
      new Category("family",
          List.of("Lives with %s", "Has %s", "Takes care of %s"),
          List.of("two young kids", "a newborn daughter", "three teenagers", "an elderly mother", "twin boys",
              "a grandson on weekends", "a disabled brother", "four children", "a stepdaughter", "their parents",
              "a college-age son", "two toddlers", "a foster child", "an aunt", "a baby on the way")),
      new Category("access",
          List.of("The gate code is %s", "Building entry code is %s", "Garage keypad code is %s"),
          List.of("1234", "4071", "9902", "5518", "2046", "7731", "3390", "8124", "6605", "1187", "4452",
              "9013", "2768", "5840", "3179")),
      new Category("birthday",
          List.of("Birthday is on %s", "Was born on %s", "Celebrates their birthday on %s"),
          List.of("january 3", "february 14", "march 22", "april 9", "may 30", "june 1", "july 17",
              "august 8", "september 25", "october 31", "november 11", "december 19", "march 5", "june 28",
              "october 2")));

  /** Each category's questions, phrased unlike its facts: most share no word with them, a few share one. */
  private static final Map<String, List<String>> QUESTIONS = Map.ofEntries(
      Map.entry("address", List.of("where does the customer live", "which street is the house on",
          "where should the crew drive to")),
      Map.entry("pet", List.of("do they have any animals", "what kind of pet do they own", "is there a dog or cat")),
      Map.entry("allergy", List.of("any allergies we should know about", "what are they allergic to",
          "health sensitivities to watch for")),
      Map.entry("contact", List.of("how do they want to be reached", "best way to get in touch with them",
          "preferred communication channel")),
      Map.entry("schedule", List.of("when can we come by", "what times work for them", "which days are they free")),
      Map.entry("payment", List.of("how do they usually pay", "payment method on file", "what do they pay with")),
      Map.entry("language", List.of("what language do they speak", "do they need a translator",
          "their native tongue")),
      Map.entry("vehicle", List.of("what car do they have", "which vehicle is parked outside",
          "what do they drive")),
      Map.entry("occupation", List.of("what do they do for a living", "what is their profession",
          "what is their job")),
      Map.entry("family", List.of("do they have children", "who lives in the household",
          "what is their family situation")),
      Map.entry("access", List.of("how do we get into the building", "what is the code to open the gate",
          "door entry number")),
      Map.entry("birthday", List.of("when were they born", "date of birth", "when is their birthday")));

  /**
   * Floor of {@link #topHitShare}: the share of search_memories_text answers whose top hit is a fact
   * of the question's category. The local model (all-MiniLM-L6-v2 int8) reached about 0.9 on this
   * set (docs/search.md); the floor sits under it so only a broken search (wrong model space, the
   * vector list missing, text-only ranking) fails it.
   */
  public static final double MIN_TOP_HIT_SHARE = 0.75;

  private final long seed;
  private final List<String> texts = new ArrayList<>();
  private final List<Integer> textCategory = new ArrayList<>();
  private final Map<String, Integer> categoryOfText = new HashMap<>();
  private final int[] firstText;
  private final List<List<String>> questions = new ArrayList<>();

  public Facts(long seed) {
    this.seed = seed;
    firstText = new int[CATEGORIES.size() + 1];
    for (int c = 0; c < CATEGORIES.size(); c++) {
      Category cat = CATEGORIES.get(c);
      firstText[c] = texts.size();
      for (String t : cat.templates()) {
        for (String f : cat.fillers()) {
          String text = String.format(t, f);
          texts.add(text);
          textCategory.add(c);
          categoryOfText.put(text, c);
        }
      }
      questions.add(QUESTIONS.get(cat.name()));
    }
    firstText[CATEGORIES.size()] = texts.size();
  }

  /** The distinct fact texts, each embedded once. */
  public List<String> texts() {
    return List.copyOf(texts);
  }

  /** Every question of every category, in category order. */
  public List<String> allQuestions() {
    return questions.stream().flatMap(List::stream).toList();
  }

  public int categories() {
    return CATEGORIES.size();
  }

  public String categoryName(int category) {
    return CATEGORIES.get(category).name();
  }

  /** The index (into {@link #texts}) of memory j's fact. */
  public int textOf(int memory) {
    long h = Mix.mix64(seed ^ 0xFAC75L ^ Mix.mix64(memory));
    int c = Mix.pick(h, CATEGORIES.size());
    int n = firstText[c + 1] - firstText[c];
    return firstText[c] + Mix.pick(Mix.mix64(h), n);
  }

  public int categoryOfTextIndex(int text) {
    return textCategory.get(text);
  }

  /** The category of a stored content, or -1 for a text that is not one of the facts. */
  public int categoryOf(String content) {
    return categoryOfText.getOrDefault(content, -1);
  }

  /** The index in {@link #allQuestions} of a category's i-th question. */
  public int questionIndex(int category, int i) {
    int n = 0;
    for (int c = 0; c < category; c++) {
      n += questions.get(c).size();
    }
    return n + i;
  }

  /** The questions of a category. */
  public List<String> questions(int category) {
    return questions.get(category);
  }
}
