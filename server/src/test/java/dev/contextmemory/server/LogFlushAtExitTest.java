package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ch.qos.logback.classic.AsyncAppender;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.util.LogbackMDCAdapter;
import ch.qos.logback.core.AppenderBase;
import io.opentelemetry.instrumentation.logback.mdc.v1_0.OpenTelemetryAppender;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/**
 * The shutdown hook's last step (Main.stopLogging) writes out every line the asynchronous appender
 * still holds. The chain is the production one (logback.xml): root, the trace-id appender, the
 * asynchronous appender, then the writer, here one that is slow as stderr is on a loaded machine.
 * Stopping the LoggerContext alone returned at once and the queued lines were lost (the tail of
 * MainProcessTest's log, 'stopped' missing, in a loaded run).
 */
class LogFlushAtExitTest {
  private static final int LINES = 8;

  /** Takes 20 ms per line, as a writer falling behind does. */
  private static final class SlowWriter extends AppenderBase<ILoggingEvent> {
    final List<String> written = new CopyOnWriteArrayList<>();

    @Override
    protected void append(ILoggingEvent event) {
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      written.add(event.getFormattedMessage());
    }
  }

  @Test
  void stoppingLoggingWritesOutTheQueuedLines() {
    LoggerContext context = new LoggerContext();
    context.setMDCAdapter(new LogbackMDCAdapter());
    SlowWriter writer = new SlowWriter();
    writer.setContext(context);
    writer.start();
    AsyncAppender async = new AsyncAppender();
    async.setContext(context);
    async.setName("ASYNC");
    async.setQueueSize(64);
    async.setDiscardingThreshold(0);
    async.setNeverBlock(true);
    async.setMaxFlushTime(10_000);
    async.addAppender(writer);
    async.start();
    OpenTelemetryAppender otel = new OpenTelemetryAppender();
    otel.setContext(context);
    otel.setName("OTEL");
    otel.addAppender(async);
    otel.start();
    Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
    root.addAppender(otel);

    for (int i = 1; i <= LINES; i++) {
      root.info("line {}", i);
    }
    Main.stopLogging(context);

    assertEquals(LINES, writer.written.size(), () -> "written before the halt: " + writer.written);
  }
}
