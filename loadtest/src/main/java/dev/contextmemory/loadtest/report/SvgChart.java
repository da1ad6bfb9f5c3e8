package dev.contextmemory.loadtest.report;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A small line chart rendered as inline SVG: a linear x axis and a logarithmic latency axis in
 * milliseconds (latencies span decades: a 0.5 ms median and a 200 ms stall must both be visible).
 * No scripts, no external resources.
 */
final class SvgChart {
  private static final int W = 560;
  private static final int H = 260;
  private static final int LEFT = 56;
  private static final int RIGHT = 12;
  private static final int TOP = 14;
  private static final int BOTTOM = 40;

  /** A labelled x tick. */
  record Tick(double x, String label) {}

  private final String title;
  private final double xMin;
  private final double xMax;
  private final double yMinLog;
  private final double yMaxLog;
  private final List<String> body = new ArrayList<>();
  private final List<String> legend = new ArrayList<>();
  private List<Tick> xTicks = List.of();
  private String xLabel = "";

  /** @param yMinMs lowest and {@code yMaxMs} highest latency shown; rounded out to decades */
  SvgChart(String title, double xMin, double xMax, double yMinMs, double yMaxMs) {
    this.title = title;
    this.xMin = xMin;
    this.xMax = xMax > xMin ? xMax : xMin + 1;
    // Guard against empty series (min = +inf) and values beyond any sensible latency.
    double top = Double.isFinite(yMaxMs) && yMaxMs > 0 ? Math.min(yMaxMs, 1e7) : 1;
    double bottom = Double.isFinite(yMinMs) && yMinMs > 0 ? Math.min(yMinMs, top) : top / 10;
    double lo = Math.floor(Math.log10(Math.max(0.001, bottom)));
    double hi = Math.ceil(Math.log10(Math.max(top, Math.pow(10, lo + 1))));
    this.yMinLog = lo;
    this.yMaxLog = hi > lo ? hi : lo + 1;
  }

  SvgChart xAxis(String label, List<Tick> ticks) {
    this.xLabel = label;
    this.xTicks = ticks;
    return this;
  }

  private double px(double x) {
    return LEFT + (x - xMin) / (xMax - xMin) * (W - LEFT - RIGHT);
  }

  private double py(double ms) {
    double l = Math.log10(Math.max(ms, Math.pow(10, yMinLog)));
    l = Math.min(l, yMaxLog);
    return TOP + (yMaxLog - l) / (yMaxLog - yMinLog) * (H - TOP - BOTTOM);
  }

  /** A series of (x, ms) points joined by lines. */
  SvgChart line(String name, String color, List<double[]> points, boolean dashed) {
    if (points.isEmpty()) {
      return this;
    }
    StringBuilder sb = new StringBuilder();
    for (double[] p : points) {
      sb.append(String.format(Locale.ROOT, "%.1f,%.1f ", px(p[0]), py(p[1])));
    }
    body.add(String.format(Locale.ROOT,
        "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"%s\"/>", color,
        dashed ? " stroke-dasharray=\"4 3\"" : "", sb.toString().trim()));
    if (points.size() == 1) {
      double[] p = points.get(0);
      body.add(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", px(p[0]),
          py(p[1]), color));
    }
    legend.add(legendItem(name, color, dashed));
    return this;
  }

  /** A horizontal line at a latency, e.g. the target. */
  SvgChart level(String name, String color, double ms) {
    body.add(String.format(Locale.ROOT,
        "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.2\" stroke-dasharray=\"6 4\"/>",
        LEFT, W - RIGHT, py(ms), py(ms), color));
    legend.add(legendItem(name, color, true));
    return this;
  }

  private static String legendItem(String name, String color, boolean dashed) {
    return "<span class=\"key\"><svg width=\"22\" height=\"8\"><line x1=\"0\" x2=\"22\" y1=\"4\" y2=\"4\" stroke=\""
        + color + "\" stroke-width=\"2\"" + (dashed ? " stroke-dasharray=\"4 3\"" : "") + "/></svg>"
        + Html.esc(name) + "</span>";
  }

  String render() {
    StringBuilder sb = new StringBuilder();
    sb.append("<figure><figcaption>").append(Html.esc(title)).append("</figcaption>");
    sb.append(String.format(Locale.ROOT,
        "<svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">", W, H,
        W, H));
    sb.append("<g font-size=\"10\" fill=\"#555\">");
    for (int d = (int) yMinLog; d <= (int) yMaxLog; d++) {
      double ms = Math.pow(10, d);
      double y = py(ms);
      sb.append(String.format(Locale.ROOT,
          "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s ms</text>",
          LEFT, W - RIGHT, y, y, LEFT - 4, y + 3, msLabel(ms)));
      for (int k = 2; k < 10 && d < (int) yMaxLog; k++) {
        double yy = py(ms * k);
        sb.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#f2f2f2\"/>",
            LEFT, W - RIGHT, yy, yy));
      }
    }
    for (Tick t : xTicks) {
      double x = px(t.x());
      sb.append(String.format(Locale.ROOT,
          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#eee\"/><text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>",
          x, x, TOP, H - BOTTOM, x, H - BOTTOM + 14, Html.esc(t.label())));
    }
    sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>",
        (LEFT + W - RIGHT) / 2, H - 6, Html.esc(xLabel)));
    sb.append(String.format(Locale.ROOT,
        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>", LEFT, TOP,
        W - LEFT - RIGHT, H - TOP - BOTTOM));
    sb.append("</g>");
    body.forEach(sb::append);
    sb.append("</svg><div class=\"legend\">");
    legend.forEach(sb::append);
    sb.append("</div></figure>");
    return sb.toString();
  }

  private static String msLabel(double ms) {
    return ms >= 1 ? String.format(Locale.ROOT, "%,d", (long) ms) : String.format(Locale.ROOT, "%s", ms < 0.01
        ? String.format(Locale.ROOT, "%.3f", ms) : String.format(Locale.ROOT, "%.2f", ms)).replaceAll("0+$", "");
  }
}
