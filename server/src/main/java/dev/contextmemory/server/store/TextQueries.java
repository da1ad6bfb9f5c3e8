package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.InvalidArgumentException;
import org.jdbi.v3.core.Handle;

/** What the stores' text filters share: full-text queries that can use their index, LIKE prefixes. */
final class TextQueries {
  private TextQueries() {}

  /**
   * Rejects a full-text query with no positive term ("-x", "the -x"): nothing about it can be
   * looked up in the GIN index, so matching it reads every row of the scope (a whole tenant for
   * SearchMessages). PostgreSQL's own parser decides (querytree is "T" for a query with no indexable
   * part); only a query with a '-' can be like that, so other queries cost no extra round trip.
   */
  static void requirePositiveTerm(Handle h, String query, String field) {
    if (query == null || query.indexOf('-') < 0) {
      return;
    }
    String tree = h.createQuery(POSITIVE_TERM).bind("q", query).mapTo(String.class).one();
    if ("T".equals(tree)) {
      throw positiveTermMissing(field);
    }
  }

  /** querytree is "T" for a full-text query with no indexable part. */
  static final String POSITIVE_TERM = "SELECT querytree(websearch_to_tsquery('english', :q))";

  static InvalidArgumentException positiveTermMissing(String field) {
    return InvalidArgumentException.of(field,
        "must hold at least one word that is not negated (-word) or a stop word; a query of exclusions only"
            + " would read every row");
  }

  /** Escapes LIKE wildcards so a user's prefix matches literally (escape char is backslash). */
  static String likePrefix(String prefix) {
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%";
  }
}
