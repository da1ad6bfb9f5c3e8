package dev.contextmemory.server;

import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.core.spi.AppenderAttachable;
import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.config.Settings;
import java.util.concurrent.Callable;
import org.slf4j.LoggerFactory;
import org.slf4j.bridge.SLF4JBridgeHandler;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Command line: {@code serve} (the default) runs the gRPC server until SIGTERM/SIGINT;
 * {@code migrate} applies pending schema migrations and exits; {@code keys create|list|revoke}
 * manages API keys in the database. Configuration comes from CONTEXT_MEMORY_* environment
 * variables (README.md lists them); a bad value exits with status 2 before anything starts.
 */
@Command(name = "context-memory", mixinStandardHelpOptions = true,
    description = "The context-memory gRPC server.",
    subcommands = {Main.Serve.class, Main.Migrate.class, KeysCommand.class})
public final class Main implements Callable<Integer> {
  /** Exit status for a configuration or usage error. */
  static final int USAGE = 2;

  public static void main(String[] args) {
    // grpc-java and the JDK log through java.util.logging: into the same JSON lines as the rest.
    SLF4JBridgeHandler.removeHandlersForRootLogger();
    SLF4JBridgeHandler.install();
    CommandLine cli = new CommandLine(new Main())
        .setParameterExceptionHandler((e, a) -> {
          System.err.println("context-memory: " + e.getMessage());
          e.getCommandLine().usage(System.err);
          return USAGE;
        })
        .setExecutionExceptionHandler((e, cmd, parsed) -> {
          if (e instanceof IllegalArgumentException) { // a bad CONTEXT_MEMORY_* value
            System.err.println("context-memory: " + e.getMessage());
            return USAGE;
          }
          throw e;
        });
    int status = cli.execute(args.length == 0 ? new String[] {"serve"} : args);
    if (status != 0) {
      System.exit(status);
    }
  }

  @Override
  public Integer call() {
    return new Serve().call();
  }

  /** The settings from the environment; IllegalArgumentException (exit 2) names a bad variable. */
  static Settings settings() {
    return Settings.fromEnvironment();
  }

  @Command(name = "serve", description = "Serve the gRPC API until SIGTERM/SIGINT (the default).")
  static final class Serve implements Callable<Integer> {
    @Override
    public Integer call() {
      Settings s = settings();
      try {
        ContextMemoryServer server = NettyTransport.serve(s);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
          server.close();
          if (LoggerFactory.getILoggerFactory() instanceof LoggerContext logback) {
            stopLogging(logback);
          }
        }, "shutdown"));
        server.awaitTermination();
        return 0;
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return 1;
      }
    }
  }

  /**
   * Writes out every queued log line, then stops logging: the last step before the JVM halts. The
   * appender that writes is asynchronous (logback.xml), behind the trace-id appender. Stopping the
   * LoggerContext stops the root logger's appenders only, and the trace-id appender does not stop
   * the ones attached to it: the asynchronous appender was never stopped, so never flushed, and the
   * lines still queued at the halt were lost (on a loaded machine, the shutdown's last lines). So
   * each of the root's appenders first stops what is attached to it (the asynchronous appender
   * writes its queue out, up to its maxFlushTime).
   */
  static void stopLogging(LoggerContext logback) {
    var appenders = logback.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME).iteratorForAppenders();
    while (appenders.hasNext()) {
      if (appenders.next() instanceof AppenderAttachable<?> parent) {
        parent.detachAndStopAllAppenders();
      }
    }
    logback.stop();
  }

  @Command(name = "migrate", description = "Apply pending schema migrations and exit.")
  static final class Migrate implements Callable<Integer> {
    @Override
    public Integer call() {
      var result = Database.migrate(settings());
      System.out.println("schema at version " + result.targetSchemaVersion + "; "
          + result.migrationsExecuted + " migration(s) applied");
      return 0;
    }
  }
}
