package dev.contextmemory.loadtest.data;

import dev.contextmemory.loadtest.dsl.Mix;
import java.util.List;
import java.util.SplittableRandom;

/**
 * English-like message and memory text from a fixed vocabulary of a home-services business (the
 * product's first users haul junk, move pianos and quote jobs). Word frequencies follow a steep
 * power law, as in real text, so full-text search sees both very common and rare words; about one
 * word in three is a stop word, which PostgreSQL's English configuration drops.
 */
public final class Texts {
  static final List<String> WORDS = List.of(
      "quote", "pickup", "price", "truck", "schedule", "tomorrow", "junk", "removal", "couch", "sofa",
      "mattress", "garage", "basement", "piano", "fridge", "appliance", "estimate", "crew", "arrive", "window",
      "morning", "afternoon", "evening", "weekend", "monday", "tuesday", "wednesday", "thursday", "friday",
      "saturday", "address", "street", "apartment", "elevator", "stairs", "parking", "driveway", "gate", "code",
      "invoice", "payment", "card", "cash", "deposit", "refund", "discount", "coupon", "review", "photo",
      "picture", "video", "load", "half", "full", "minimum", "volume", "weight", "heavy", "bulky", "furniture",
      "table", "chair", "desk", "dresser", "cabinet", "shelf", "bookcase", "bed", "frame", "boxes", "bags",
      "yard", "waste", "branches", "debris", "construction", "drywall", "carpet", "tile", "concrete", "dirt",
      "hot", "tub", "shed", "demolition", "fence", "deck", "playset", "trampoline", "grill", "tires", "bike",
      "treadmill", "elliptical", "television", "computer", "printer", "electronics", "recycling", "donation",
      "charity", "dump", "landfill", "fee", "surcharge", "permit", "hoa", "landlord", "tenant", "moving",
      "office", "warehouse", "storage", "unit", "estate", "cleanout", "hoarder", "attic", "closet", "kitchen",
      "bathroom", "bedroom", "living", "room", "porch", "patio", "lawn", "mower", "snow", "blower", "washer",
      "dryer", "dishwasher", "oven", "stove", "microwave", "freezer", "air", "conditioner", "water", "heater",
      "paint", "cans", "chemicals", "batteries", "hazardous", "metal", "scrap", "wood", "glass", "plastic",
      "call", "text", "email", "confirm", "reschedule", "cancel", "late", "early", "traffic", "delay",
      "minutes", "hours", "timeframe", "slot", "available", "booked", "urgent", "asap", "flexible", "budget",
      "cheaper", "expensive", "competitor", "match", "guarantee", "insurance", "damage", "careful", "wrap",
      "blanket", "dolly", "ramp", "team", "driver", "manager", "owner", "customer", "neighbor", "husband",
      "wife", "daughter", "son", "mother", "father", "dog", "cat", "allergic", "wheelchair", "ground",
      "floor", "second", "third", "narrow", "hallway", "doorway", "measure", "inches", "feet", "upright",
      "grand", "antique", "fragile", "mirror", "artwork", "lamp", "rug", "plants", "pots", "toys", "clothes",
      "books", "papers", "shredding", "documents", "tools", "equipment", "gym", "weights", "pool", "cue",
      "billiard", "organ", "safe", "gun", "aquarium", "crib", "stroller", "car", "seat", "boat", "trailer",
      "rv", "camper", "jet", "ski", "kayak", "canoe", "ladder", "wheelbarrow", "generator", "compressor");

  static final List<String> STOP = List.of(
      "the", "a", "to", "and", "of", "in", "is", "for", "on", "it", "we", "you", "can", "be", "at", "with",
      "this", "that", "our", "your", "will", "are", "if", "there");

  private Texts() {}

  /** A sentence of 6 to 29 words, the same for the same key. */
  public static String sentence(long key) {
    SplittableRandom r = new SplittableRandom(Mix.mix64(key));
    int n = 6 + r.nextInt(24);
    StringBuilder sb = new StringBuilder(n * 7);
    for (int i = 0; i < n; i++) {
      if (i > 0) {
        sb.append(' ');
      }
      sb.append(r.nextInt(3) == 0 ? STOP.get(r.nextInt(STOP.size())) : word(r));
    }
    return sb.append('.').toString();
  }

  /** A search query: usually one word, sometimes two (which the server ANDs). */
  public static String query(SplittableRandom r) {
    String first = queryWord(r);
    return r.nextInt(10) < 7 ? first : first + " " + queryWord(r);
  }

  /** A content word, most often from the head of the vocabulary (power law, exponent 3). */
  static String word(SplittableRandom r) {
    double u = r.nextDouble();
    return WORDS.get((int) (WORDS.size() * u * u * u));
  }

  /** Query words skip the very head: nobody searches their history for "quote". */
  private static String queryWord(SplittableRandom r) {
    double u = r.nextDouble();
    return WORDS.get(5 + (int) ((WORDS.size() - 5) * u * u));
  }
}
