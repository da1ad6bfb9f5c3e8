package dev.contextmemory.server.observability;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import java.sql.SQLException;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import dev.contextmemory.server.store.PlainStatements;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.SqlLogger;
import org.jdbi.v3.core.statement.SqlStatements;
import org.jdbi.v3.core.statement.StatementContext;
import org.jdbi.v3.core.statement.StatementContextListener;

/**
 * A child span for every SQL round trip made inside a traced call, named after the store method
 * that runs it ({@code MessageStore.append}), with the SQL text as written (named placeholders,
 * never the bound values), the rows mapped and, on failure, the SQLSTATE. Statements outside a
 * sampled span (start-up, the sweeper, tracing off) cost one check and make no span.
 */
public final class SqlSpans implements StatementContextListener, SqlLogger, PlainStatements.Listener {
  static final AttributeKey<String> SYSTEM = AttributeKey.stringKey("db.system.name");
  static final AttributeKey<String> OPERATION = AttributeKey.stringKey("db.operation.name");
  static final AttributeKey<String> TEXT = AttributeKey.stringKey("db.query.text");
  static final AttributeKey<Long> ROWS = AttributeKey.longKey("db.response.returned_rows");
  static final AttributeKey<String> SQLSTATE = AttributeKey.stringKey("db.response.status_code");
  /** Our statements are constants of a few KiB at most; the cut only bounds a span's size. */
  private static final int MAX_TEXT = 4096;
  private static final String STORE_PACKAGE = "dev.contextmemory.server.store.";
  private static final StackWalker STACK = StackWalker.getInstance(StackWalker.Option.RETAIN_CLASS_REFERENCE);

  private final Tracer tracer;
  /** Spans of statements in flight, so a failure can be recorded on its statement's span. */
  private final Map<StatementContext, Span> open = new ConcurrentHashMap<>();

  private SqlSpans(OpenTelemetry otel) {
    this.tracer = otel.getTracer("dev.contextmemory.server.sql");
  }

  /** Adds the spans to every statement {@code jdbi} runs. */
  public static void install(Jdbi jdbi, OpenTelemetry otel) {
    SqlSpans spans = new SqlSpans(otel);
    SqlStatements config = jdbi.getConfig(SqlStatements.class);
    config.addContextListener(spans);
    config.setSqlLogger(spans);
    jdbi.getConfig(PlainStatements.class).addListener(spans);
  }

  /** The same span for the stores' plain JDBC statements (Store.query). */
  @Override
  public PlainStatements.Finish started(java.sql.PreparedStatement st, String sql) {
    if (!Span.current().isRecording()) {
      return null;
    }
    Span span = tracer.spanBuilder(caller()).setSpanKind(SpanKind.CLIENT)
        .setAttribute(SYSTEM, "postgresql").startSpan();
    span.setAttribute(OPERATION, verb(sql));
    span.setAttribute(TEXT, sql.length() > MAX_TEXT ? sql.substring(0, MAX_TEXT) : sql);
    return (rows, failure) -> {
      span.setAttribute(ROWS, rows);
      if (failure != null) {
        span.setStatus(StatusCode.ERROR);
        if (failure.getSQLState() != null) {
          span.setAttribute(SQLSTATE, failure.getSQLState());
        }
      }
      span.end();
    };
  }

  @Override
  public void contextCreated(StatementContext ctx) {
    if (!Span.current().isRecording()) {
      return;
    }
    Span span = tracer.spanBuilder(caller()).setSpanKind(SpanKind.CLIENT)
        .setAttribute(SYSTEM, "postgresql").startSpan();
    open.put(ctx, span);
    ctx.addCleanable(() -> {
      open.remove(ctx);
      String sql = ctx.getRenderedSql();
      if (sql != null) {
        span.setAttribute(OPERATION, verb(sql));
        span.setAttribute(TEXT, sql.length() > MAX_TEXT ? sql.substring(0, MAX_TEXT) : sql);
      }
      span.setAttribute(ROWS, ctx.getMappedRows());
      span.end();
    });
  }

  @Override
  public void logException(StatementContext ctx, SQLException ex) {
    Span span = open.get(ctx);
    if (span != null) {
      span.setStatus(StatusCode.ERROR);
      if (ex.getSQLState() != null) {
        span.setAttribute(SQLSTATE, ex.getSQLState());
      }
    }
  }

  /** The store method (outside lambdas' synthetic names) whose code created the statement. */
  private static String caller() {
    Optional<StackWalker.StackFrame> frame = STACK.walk(s -> s
        .filter(f -> f.getClassName().startsWith(STORE_PACKAGE) && !f.getClassName().endsWith(".Store"))
        .findFirst());
    return frame.map(f -> f.getDeclaringClass().getSimpleName() + "." + method(f.getMethodName())).orElse("sql");
  }

  private static String method(String name) {
    // lambda$append$3 -> append
    if (name.startsWith("lambda$")) {
      int end = name.indexOf('$', 7);
      return end > 7 ? name.substring(7, end) : name;
    }
    return name;
  }

  /** The statement's first keyword (WITH for a CTE). */
  static String verb(String sql) {
    String s = sql.stripLeading();
    int end = 0;
    while (end < s.length() && Character.isLetter(s.charAt(end))) {
      end++;
    }
    return end == 0 ? "SQL" : s.substring(0, end).toUpperCase(java.util.Locale.ROOT);
  }
}
