package dev.contextmemory.loadtest.report;

import dev.contextmemory.loadtest.data.Setup;
import dev.contextmemory.loadtest.dsl.Stats;
import dev.contextmemory.loadtest.dsl.Summary;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.HdrHistogram.HistogramIterationValue;

/**
 * {@code report.html}: one self-contained page (inline CSS and SVG, no scripts, no network) with
 * the summary table and, per scenario, its percentile curve and its latency over time against the
 * target, so an operator sees a regression at a glance; for the capacity search, p99 against the
 * arrival rate.
 */
public final class Html {
  private static final String P50 = "#1f77b4";
  private static final String P99 = "#ff7f0e";
  private static final String MAX = "#999999";
  private static final String TARGET = "#d62728";
  private static final String FLOOR = "#2ca02c";

  private Html() {}

  public static String render(RunReport r) {
    StringBuilder sb = new StringBuilder(64 * 1024);
    sb.append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>context-memory load test: ")
        .append(esc(r.profile())).append("</title><style>")
        .append("body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}")
        .append("table{border-collapse:collapse;margin:8px 0 16px}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}")
        .append("td:first-child,th:first-child{text-align:left}.PASSED{color:#18794e;font-weight:600}")
        .append(".FAILED{color:#c62828;font-weight:700}.SKIPPED{color:#777}")
        .append("section{border-top:2px solid #eee;margin-top:20px;padding-top:8px}")
        .append("figure{display:inline-block;margin:0 16px 8px 0;vertical-align:top}figcaption{font-weight:600;margin-bottom:4px}")
        .append(".legend{font-size:12px}.key{margin-right:12px;white-space:nowrap}.key svg{vertical-align:middle;margin-right:3px}")
        .append("code{background:#f5f5f5;padding:1px 3px}.adj{color:#c62828;font-weight:700}")
        .append("</style></head><body>");
    sb.append("<h1>context-memory load test: profile ").append(esc(r.profile())).append("</h1>");
    sb.append("<p>Started ").append(esc(r.startedAt().toString())).append(String.format(Locale.ROOT,
        ", %.0f s in all. Result: <span class=\"%s\">%s</span></p>", r.totalSeconds(),
        r.passed() ? "PASSED" : "FAILED", r.passed() ? "PASSED" : "FAILED"));
    sb.append("<p>Server: ").append(esc(r.server())).append("<br>Data: ").append(esc(r.dataSet()))
        .append("<br>Targets (p99 ms): ").append(esc(r.targets()))
        .append(r.targetsAdjusted() ? " <span class=\"adj\">adjusted on the command line</span>" : "")
        .append(r.transportFloor() == null ? "" : "<br>Floor: " + esc(r.transportFloor())).append("</p>");
    setup(sb, r);
    summary(sb, r);
    for (Outcome o : r.outcomes()) {
      scenario(sb, o);
      serverSide(sb, o, r.serverLatency().getOrDefault(o.name(), List.of()));
    }
    sb.append("<p style=\"color:#777\">Latencies of open-model runs are measured from each request's intended start"
        + " time (no coordinated omission); percentiles over successful calls, HdrHistogram with 3 significant"
        + " digits.</p></body></html>\n");
    return sb.toString();
  }

  private static void setup(StringBuilder sb, RunReport r) {
    sb.append("<table><tr><th>set-up phase</th><th>items</th><th>written</th><th>seconds</th></tr>");
    for (Setup.Phase p : r.setup()) {
      sb.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%,d</td><td>%,d</td><td>%.1f</td></tr>", esc(p.name()),
          p.items(), p.written(), p.seconds()));
    }
    if (r.vacuumSeconds() != null) {
      sb.append(String.format(Locale.ROOT, "<tr><td>VACUUM ANALYZE + CHECKPOINT</td><td></td><td></td><td>%.1f</td></tr>",
          r.vacuumSeconds()));
    }
    sb.append("</table>");
  }

  private static void summary(StringBuilder sb, RunReport r) {
    sb.append("<table><tr><th>scenario</th><th>load</th><th>requests</th><th>errors</th><th>p50</th><th>p95</th>")
        .append("<th>p99</th><th>p99 &minus; floor p99</th><th>max</th><th>req/s</th><th>target p99</th><th>stmt SQL p50</th>")
        .append("<th>stmt SQL p99</th><th>phys SQL p50</th><th>phys SQL p99</th><th>p99 / phys p99</th><th>own p50</th><th>recall@10</th><th>result</th></tr>");
    for (Outcome o : r.outcomes()) {
      Summary s = o.summary();
      var b = o.baseline();
      Outcome first = o.firstRun();
      if (first != null && first.summary() != null) {
        Summary f = first.summary();
        sb.append("<tr><td>").append(esc(o.name())).append(" (run 1)</td><td>").append(esc(o.run().injection()))
            .append("</td>");
        cells(sb, r, f);
        sb.append("<td>").append(ConsoleReport.ms(o.targetP99Ms())).append("</td><td colspan=\"6\"></td><td>")
            .append(first.recallAt10() == null ? "" : String.format(Locale.ROOT, "%.3f", first.recallAt10()))
            .append("</td><td class=\"FAILED\">MISSED: ").append(esc(first.missed()))
            .append("; measured once more</td></tr>");
      }
      sb.append("<tr><td><a href=\"#").append(esc(o.name())).append("\">").append(esc(o.name()))
          .append(first == null ? "" : " (run 2)").append("</a></td>");
      sb.append("<td>").append(o.run() == null ? "" : esc(o.run().injection())).append("</td>");
      if (s == null) {
        sb.append("<td colspan=\"8\"></td>");
      } else {
        cells(sb, r, s);
      }
      sb.append("<td>").append(ConsoleReport.ms(o.targetP99Ms())).append("</td>");
      var same = r.sameStatement().get(o.name());
      sb.append("<td>").append(same == null ? "" : ConsoleReport.ms(same.p50Ms())).append("</td>");
      sb.append("<td>").append(same == null ? "" : ConsoleReport.ms(same.p99Ms())).append("</td>");
      sb.append("<td>").append(b == null ? "" : ConsoleReport.ms(b.p50Ms())).append("</td>");
      sb.append("<td>").append(b == null ? "" : ConsoleReport.ms(b.p99Ms())).append("</td>");
      sb.append("<td>").append(s == null || b == null ? "" : ConsoleReport.ratio(s.p99Ms(), b.p99Ms())).append("</td>");
      Double own = ConsoleReport.own(r, o.name(), s, b);
      sb.append("<td>").append(own == null ? "" : ConsoleReport.signed(own)).append("</td>");
      sb.append("<td>").append(o.recallAt10() == null ? "" : String.format(Locale.ROOT, "%.3f", o.recallAt10()))
          .append("</td>");
      sb.append("<td class=\"").append(o.status()).append("\">").append(o.status()).append("</td></tr>");
    }
    sb.append("</table>");
    for (String line : ConsoleReport.bareTableLines(r)) {
      sb.append("<p>").append(esc(line)).append("</p>");
    }
  }

  /** requests, errors, p50, p95, p99, p99 − floor p99, max, req/s of one run. */
  private static void cells(StringBuilder sb, RunReport r, Summary s) {
    sb.append(String.format(Locale.ROOT,
        "<td>%,d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%.1f</td>",
        s.requests(), s.errors(), ConsoleReport.ms(s.p50Ms()), ConsoleReport.ms(s.p95Ms()),
        ConsoleReport.ms(s.p99Ms()), ConsoleReport.signed(r.p99OverFloorMs(s.p99Ms())), ConsoleReport.ms(s.maxMs()),
        s.throughput()));
  }

  private static void scenario(StringBuilder sb, Outcome o) {
    sb.append("<section id=\"").append(esc(o.name())).append("\"><h2>").append(esc(o.name()))
        .append(" <span class=\"").append(o.status()).append("\">").append(o.status()).append("</span></h2>");
    if (!o.note().isEmpty()) {
      sb.append("<p>").append(esc(o.note())).append("</p>");
    }
    if (o.firstRun() != null) {
      sb.append("<p>The first measured run missed (").append(esc(o.firstRun().missed()))
          .append("); the scenario was measured once more right away, and the charts below are that second run's.")
          .append(o.status() == Outcome.Status.PASSED ? " It passed: a pass on the second run." : " It missed too.")
          .append("</p>");
    }
    for (Outcome.Verdict v : o.verdicts()) {
      sb.append("<div>").append(v.holds() ? "&#10003; " : "&#10007; ").append(esc(v.measured()))
          .append(" (want ").append(esc(v.condition())).append(")</div>");
    }
    Summary s = o.summary();
    if (s != null && s.histogram().getTotalCount() > 0) {
      sb.append("<div>");
      sb.append(percentileChart(s, o).render());
      sb.append(timelineChart(s, o).render());
      sb.append("</div>");
      if (o.run().steps().size() > 1) {
        sb.append("<table><tr><th>step</th><th>calls</th><th>errors</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>");
        for (Summary st : o.run().steps()) {
          sb.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%,d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>",
              esc(st.name()), st.requests(), st.errors(), ConsoleReport.ms(st.p50Ms()), ConsoleReport.ms(st.p95Ms()),
              ConsoleReport.ms(st.p99Ms()), ConsoleReport.ms(st.maxMs())));
        }
        sb.append("</table>");
      }
      if (s.errors() > 0) {
        sb.append("<p>Errors by code: ").append(esc(s.errorsByCode().toString())).append("<br>")
            .append(esc(String.join(" | ", s.errorSamples()))).append("</p>");
      }
    }
    if (o.capacity() != null) {
      capacity(sb, o);
    }
    sb.append("</section>");
  }

  /**
   * The server's own histogram of each RPC of the scenario over the same measured run, beside the
   * client-side figures, with links to the two scrapes it was computed from.
   */
  private static void serverSide(StringBuilder sb, Outcome o, List<ServerLatency> latencies) {
    if (latencies.isEmpty()) {
      return;
    }
    sb.append("<section><h3>Server side: ").append(esc(o.name())).append("</h3><p>From the server's own histogram")
        .append(" (<code>contextmemory_rpc_server_duration_seconds</code>, calls that answered OK), scraped before and")
        .append(" after the measured run; quantiles interpolated within its buckets. The difference from the figures")
        .append(" above is the network, the client and HTTP/2.</p>");
    sb.append("<table><tr><th>RPC</th><th>calls</th><th>server p50</th><th>server p99</th><th>histogram</th></tr>");
    for (ServerLatency l : latencies) {
      String file = "server-metrics/" + o.name() + ".";
      sb.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%,d</td><td>%s</td><td>%s</td>", esc(l.method()),
          l.calls(), ConsoleReport.ms(Double.isNaN(l.p50Ms()) ? null : l.p50Ms()),
          ConsoleReport.ms(Double.isNaN(l.p99Ms()) ? null : l.p99Ms())));
      sb.append("<td><a href=\"").append(esc(file)).append("before.prom\">before</a> / <a href=\"").append(esc(file))
          .append("after.prom\">after</a></td></tr>");
    }
    sb.append("</table></section>");
  }

  /** Latency by percentile, x = log10(1 / (1 − p)) so the tail gets the room. */
  static SvgChart percentileChart(Summary s, Outcome o) {
    double xMax = Math.max(2, Math.min(5, Math.ceil(Math.log10(Math.max(10, s.histogram().getTotalCount())))));
    List<double[]> pts = new ArrayList<>();
    for (HistogramIterationValue v : s.histogram().percentiles(5)) {
      double p = v.getPercentileLevelIteratedTo() / 100.0;
      double x = p >= 1 ? xMax : Math.min(xMax, -Math.log10(1 - p));
      pts.add(new double[] {x, v.getValueIteratedTo() / 1000.0});
    }
    List<SvgChart.Tick> ticks = new ArrayList<>();
    String[] labels = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"};
    for (int i = 0; i <= (int) xMax; i++) {
      ticks.add(new SvgChart.Tick(i, labels[i]));
    }
    double hi = Math.max(s.maxMs(), o.targetP99Ms() == null ? 0 : o.targetP99Ms());
    SvgChart c = new SvgChart("Latency by percentile", 0, xMax, Math.min(s.minMs(), floor(o)), hi)
        .xAxis("percentile", ticks)
        .line("latency", P99, pts, false);
    addLevels(c, o);
    return c;
  }

  /** p50, p99 and max of each second of the measured run. */
  static SvgChart timelineChart(Summary s, Outcome o) {
    List<Stats.Point> tl = s.timeline();
    List<double[]> p50 = new ArrayList<>();
    List<double[]> p99 = new ArrayList<>();
    List<double[]> max = new ArrayList<>();
    double lo = Double.MAX_VALUE;
    for (Stats.Point p : tl) {
      if (p.ok() == 0) {
        continue;
      }
      p50.add(new double[] {p.atSeconds(), p.p50Ms()});
      p99.add(new double[] {p.atSeconds(), p.p99Ms()});
      max.add(new double[] {p.atSeconds(), p.maxMs()});
      lo = Math.min(lo, p.p50Ms());
    }
    double end = tl.isEmpty() ? 1 : Math.ceil(tl.get(tl.size() - 1).atSeconds());
    List<SvgChart.Tick> ticks = new ArrayList<>();
    int step = (int) Math.max(1, Math.ceil(end / 10));
    for (int t = 0; t <= end; t += step) {
      ticks.add(new SvgChart.Tick(t, t + "s"));
    }
    double hi = Math.max(s.maxMs(), o.targetP99Ms() == null ? 0 : o.targetP99Ms());
    SvgChart c = new SvgChart("Latency over time (per second)", 0, end, Math.min(lo, floor(o)), hi)
        .xAxis("seconds into the measured run", ticks)
        .line("max", MAX, max, false)
        .line("p99", P99, p99, false)
        .line("p50", P50, p50, false);
    addLevels(c, o);
    return c;
  }

  private static double floor(Outcome o) {
    return o.baseline() == null ? Double.MAX_VALUE : o.baseline().p50Ms();
  }

  private static void addLevels(SvgChart c, Outcome o) {
    if (o.targetP99Ms() != null) {
      c.level("target p99", TARGET, o.targetP99Ms());
    }
    if (o.baseline() != null) {
      c.level("SQL floor p99", FLOOR, o.baseline().p99Ms());
    }
  }

  private static void capacity(StringBuilder sb, Outcome o) {
    var cap = o.capacity();
    sb.append("<h3>Capacity: ").append(cap.lastGoodRate() == null ? "below the first step"
        : ConsoleReport.rate(cap.lastGoodRate()) + "/s").append("</h3><p>").append(esc(cap.stoppedBecause())).append("</p>");
    List<double[]> p99 = new ArrayList<>();
    List<double[]> p50 = new ArrayList<>();
    double lo = Double.MAX_VALUE;
    double hi = o.targetP99Ms() == null ? 1 : o.targetP99Ms();
    double maxRate = 1;
    sb.append("<table><tr><th>rate/s</th><th>p50</th><th>p99</th><th>max</th><th>errors</th><th></th></tr>");
    for (var step : cap.steps()) {
      Summary s = step.summary();
      p50.add(new double[] {step.rate(), s.p50Ms()});
      p99.add(new double[] {step.rate(), s.p99Ms()});
      lo = Math.min(lo, Math.max(0.001, s.p50Ms()));
      hi = Math.max(hi, s.p99Ms());
      maxRate = Math.max(maxRate, step.rate());
      sb.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d/%d</td><td>%s</td></tr>",
          ConsoleReport.rate(step.rate()), ConsoleReport.ms(s.p50Ms()), ConsoleReport.ms(s.p99Ms()),
          ConsoleReport.ms(s.maxMs()), s.errors(), s.requests(), step.held() ? "held" : "broke: " + esc(step.why())));
    }
    sb.append("</table>");
    List<SvgChart.Tick> ticks = new ArrayList<>();
    for (var step : cap.steps()) {
      ticks.add(new SvgChart.Tick(step.rate(), ConsoleReport.rate(step.rate())));
    }
    SvgChart c = new SvgChart("p50 and p99 by arrival rate", 0, maxRate * 1.05, lo, hi)
        .xAxis("arrival rate (per second)", ticks)
        .line("p99", P99, p99, false)
        .line("p50", P50, p50, false);
    if (o.targetP99Ms() != null) {
      c.level("target p99", TARGET, o.targetP99Ms());
    }
    sb.append(c.render());
    if (cap.sameStatement() != null) {
      var jdbc = cap.sameStatement();
      sb.append("<p>The same statement over JDBC (same search, same database, a pool as large as the server's):"
          + " capacity ").append(jdbc.lastGoodRate() == null ? "below the first step"
          : ConsoleReport.rate(jdbc.lastGoodRate()) + "/s").append(" (").append(esc(jdbc.stoppedBecause()))
          .append("); server / same statement: ").append(cap.ratioToSameStatement() == null ? "-"
          : String.format(Locale.ROOT, "%.2f", cap.ratioToSameStatement())).append("</p>");
    }
  }

  static String esc(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
  }
}
