package dev.contextmemory.loadtest.report;

import dev.contextmemory.loadtest.dsl.Summary;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.Locale;

/**
 * {@code report.json}, in exactly the shape the load-test issue fixes so CI and other tools can
 * read it, keys in this order:
 *
 * <pre>
 * {"profile": "ci", "started_at": "2026-11-23T10:00:00Z", "scenarios": [{"name": "append_message",
 *  "requests": 0, "errors": 0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0,
 *  "throughput_rps": 0.0, "target_p99_ms": 10.0, "passed": true, "recall_at_10": null,
 *  "baseline_p50_ms": 0.0, "baseline_p99_ms": 0.0, "p99_over_floor_ms": 0.0, "same_statement_p50_ms": 0.0,
 *  "same_statement_p99_ms": 0.0, "own_p50_ms": 0.0, "capacity_rps": null,
 *  "same_statement_capacity_rps": null, "baseline_recall_at_10": null, "bare_table_p50_ms": null,
 *  "bare_table_p99_ms": null, "first_run": null}]}
 * </pre>
 *
 * From p99_over_floor_ms on, the keys came with issue 13: the p99 minus the transport floor's p99, the same-statement
 * SQL floor (the server's own statements over a pool at the scenario's rate; {@code baseline_*} is
 * then the physical floor, the bare SQL), the server's own share of the p50 (server p50 − transport
 * floor p50 − SQL floor p50, the same-statement one where measured), {@code capacity_rps} and
 * {@code same_statement_capacity_rps}: the capacity search's results (profile full; null
 * elsewhere), the last arrival rate whose p99 held the target, for the server and for its own
 * statement over JDBC; {@code bare_table_*}: the same rows into an unindexed copy of the table
 * (append_messages_100 only, else null); and, when the first measured run missed a target and the
 * scenario was measured once more, that first run ({@code requests, errors, p50_ms, p95_ms, p99_ms,
 * max_ms, recall_at_10, passed: false, missed}); {@code passed} is then the second run's verdict.
 *
 * Every scenario of the issue is listed, in its order. {@code passed} is null for a scenario that
 * was skipped (its service is not implemented yet; counts and latencies are then 0);
 * {@code recall_at_10} is null except for the memory searches; {@code baseline_*} are null where
 * no SQL floor applies (fetch_context, agent_turn) or none was measured; {@code baseline_recall_at_10}
 * is the recall@10 of the bare k-NN's own answers (the memory searches only), so the server's
 * recall and latency can be set beside the bare HNSW query's.
 */
public final class JsonReport {
  private JsonReport() {}

  public static String render(RunReport r) {
    StringBuilder sb = new StringBuilder(4096);
    sb.append("{\n");
    sb.append("  \"profile\": ").append(str(r.profile())).append(",\n");
    sb.append("  \"started_at\": ")
        .append(str(DateTimeFormatter.ISO_INSTANT.format(r.startedAt().truncatedTo(ChronoUnit.MILLIS)))).append(",\n");
    sb.append("  \"scenarios\": [");
    for (int i = 0; i < r.outcomes().size(); i++) {
      Outcome o = r.outcomes().get(i);
      Summary s = o.summary();
      boolean ran = o.status() != Outcome.Status.SKIPPED && s != null;
      sb.append(i == 0 ? "\n" : ",\n").append("    {");
      sb.append("\"name\": ").append(str(o.name()));
      sb.append(", \"requests\": ").append(ran ? s.requests() : 0);
      sb.append(", \"errors\": ").append(ran ? s.errors() : 0);
      sb.append(", \"p50_ms\": ").append(num(ran ? s.p50Ms() : 0.0));
      sb.append(", \"p95_ms\": ").append(num(ran ? s.p95Ms() : 0.0));
      sb.append(", \"p99_ms\": ").append(num(ran ? s.p99Ms() : 0.0));
      sb.append(", \"max_ms\": ").append(num(ran ? s.maxMs() : 0.0));
      sb.append(", \"throughput_rps\": ").append(num(ran ? s.throughput() : 0.0));
      sb.append(", \"target_p99_ms\": ").append(num(o.targetP99Ms()));
      sb.append(", \"passed\": ").append(switch (o.status()) {
        case PASSED -> "true";
        case FAILED -> "false";
        case SKIPPED -> "null";
      });
      sb.append(", \"recall_at_10\": ").append(num(ran ? o.recallAt10() : null));
      sb.append(", \"baseline_p50_ms\": ").append(num(o.baseline() == null ? null : o.baseline().p50Ms()));
      sb.append(", \"baseline_p99_ms\": ").append(num(o.baseline() == null ? null : o.baseline().p99Ms()));
      sb.append(", \"p99_over_floor_ms\": ").append(num(ran ? r.p99OverFloorMs(s.p99Ms()) : null));
      var same = r.sameStatement().get(o.name());
      sb.append(", \"same_statement_p50_ms\": ").append(num(same == null ? null : same.p50Ms()));
      sb.append(", \"same_statement_p99_ms\": ").append(num(same == null ? null : same.p99Ms()));
      sb.append(", \"own_p50_ms\": ").append(num(ran ? ConsoleReport.own(r, o.name(), s, o.baseline()) : null));
      var cap = o.capacity();
      sb.append(", \"capacity_rps\": ").append(num(cap == null ? null : cap.lastGoodRate()));
      sb.append(", \"same_statement_capacity_rps\": ").append(num(cap == null || cap.sameStatement() == null ? null
          : cap.sameStatement().lastGoodRate()));
      sb.append(", \"baseline_recall_at_10\": ").append(num(o.baseline() == null ? null : o.baseline().recallAt10()));
      var bare = r.bareTable().get(o.name());
      sb.append(", \"bare_table_p50_ms\": ").append(num(bare == null ? null : bare.p50Ms()));
      sb.append(", \"bare_table_p99_ms\": ").append(num(bare == null ? null : bare.p99Ms()));
      sb.append(", \"first_run\": ");
      Outcome first = o.firstRun();
      if (first == null || first.summary() == null) {
        sb.append("null");
      } else {
        Summary f = first.summary();
        sb.append("{\"requests\": ").append(f.requests())
            .append(", \"errors\": ").append(f.errors())
            .append(", \"p50_ms\": ").append(num(f.p50Ms()))
            .append(", \"p95_ms\": ").append(num(f.p95Ms()))
            .append(", \"p99_ms\": ").append(num(f.p99Ms()))
            .append(", \"max_ms\": ").append(num(f.maxMs()))
            .append(", \"recall_at_10\": ").append(num(first.recallAt10()))
            .append(", \"passed\": false, \"missed\": ").append(str(first.missed())).append('}');
      }
      sb.append('}');
    }
    sb.append(r.outcomes().isEmpty() ? "]\n" : "\n  ]\n");
    sb.append("}\n");
    return sb.toString();
  }

  /** A JSON number with a decimal point (3 decimals, trailing zeros trimmed to one), or null. */
  static String num(Double v) {
    if (v == null) {
      return "null";
    }
    if (v.isNaN() || v.isInfinite()) {
      return "null";
    }
    String s = String.format(Locale.ROOT, "%.3f", v);
    while (s.endsWith("0") && !s.endsWith(".0")) {
      s = s.substring(0, s.length() - 1);
    }
    return s;
  }

  static String str(String s) {
    StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> {
          if (c < 0x20) {
            sb.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
        }
      }
    }
    return sb.append('"').toString();
  }
}
