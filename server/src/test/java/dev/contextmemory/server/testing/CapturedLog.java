package dev.contextmemory.server.testing;

import ch.qos.logback.classic.AsyncAppender;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.Appender;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.OutputStreamAppender;
import ch.qos.logback.core.spi.AppenderAttachable;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the server's log writes, captured in the test JVM: an appender beside the production
 * stderr appender (server/src/main/resources/logback.xml), behind the same trace-id appender and
 * with the very same JSON encoder instance, so the captured lines are the lines an operator would
 * read.
 */
public final class CapturedLog implements AutoCloseable {
  private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
  private final AppenderAttachable<ILoggingEvent> parent;
  private final OutputStreamAppender<ILoggingEvent> appender = new OutputStreamAppender<>();

  @SuppressWarnings("unchecked")
  private CapturedLog() {
    LoggerContext ctx = (LoggerContext) LoggerFactory.getILoggerFactory();
    Appender<ILoggingEvent> otel = ctx.getLogger(Logger.ROOT_LOGGER_NAME).getAppender("OTEL");
    AsyncAppender async = (AsyncAppender) ((AppenderAttachable<ILoggingEvent>) otel).getAppender("ASYNC");
    ConsoleAppender<ILoggingEvent> stderr = (ConsoleAppender<ILoggingEvent>) async.getAppender("STDERR");
    appender.setContext(ctx);
    appender.setName("CAPTURE");
    appender.setEncoder(stderr.getEncoder());
    appender.setOutputStream(bytes);
    appender.start();
    // Beside the async appender (which takes one appender only), behind the trace-id appender.
    parent = (AppenderAttachable<ILoggingEvent>) otel;
    parent.addAppender(appender);
  }

  public static CapturedLog attach() {
    return new CapturedLog();
  }

  public String text() {
    synchronized (bytes) {
      return bytes.toString(StandardCharsets.UTF_8);
    }
  }

  public List<String> lines() {
    return text().lines().toList();
  }

  /** Waits until some line matches (the call's access line is written as the call closes). */
  public String await(Predicate<String> line, Duration timeout) throws InterruptedException {
    long end = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < end) {
      for (String l : lines()) {
        if (line.test(l)) {
          return l;
        }
      }
      Thread.sleep(20);
    }
    throw new AssertionError("no matching log line within " + timeout + ":\n" + text());
  }

  @Override
  public void close() {
    parent.detachAppender(appender);
    appender.stop();
  }
}
