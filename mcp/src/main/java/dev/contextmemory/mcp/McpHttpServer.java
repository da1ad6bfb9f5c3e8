package dev.contextmemory.mcp;

import io.modelcontextprotocol.common.McpTransportContext;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.server.McpStatelessSyncServer;
import io.modelcontextprotocol.server.transport.DefaultServerTransportSecurityValidator;
import io.modelcontextprotocol.server.transport.HttpServletStatelessServerTransport;
import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.EnumSet;
import java.util.Map;
import org.eclipse.jetty.ee11.servlet.FilterHolder;
import org.eclipse.jetty.ee11.servlet.ServletContextHandler;
import org.eclipse.jetty.ee11.servlet.ServletHolder;
import org.eclipse.jetty.server.NetworkConnectionLimit;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.GracefulHandler;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/**
 * The MCP server over Streamable HTTP at {@code /mcp}: the SDK's stateless servlet transport
 * ({@link HttpServletStatelessServerTransport}) on embedded Jetty. Stateless: no session ids, no
 * server-to-client stream (these tools never need one); each POST is answered with plain JSON, so
 * the server holds nothing per client between requests. Each request's
 * {@code Authorization: Bearer <API key>} is checked here (401 without a valid one, as MCP's
 * authorization section asks) and then travels with the tool's gRPC call, where the server's own
 * authentication, scopes and per-key limits apply.
 *
 * <p>Bounded: at most {@link #MAX_CONNECTIONS} connections (further ones wait in the accept
 * backlog), so at most that many requests are in flight, on a pool of {@code threads} + 8 threads;
 * a request body is at most 4 MiB.
 */
public final class McpHttpServer implements AutoCloseable {
  /** The endpoint path. */
  public static final String ENDPOINT = "/mcp";
  /** Largest request body: the gRPC server's default message limit. */
  static final int MAX_REQUEST_BYTES = 4 * 1024 * 1024;
  /** Open connections at most; one request each at a time over HTTP/1.1. */
  static final int MAX_CONNECTIONS = 512;

  private final Server jetty;
  private final McpStatelessSyncServer mcp;
  private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

  private McpHttpServer(Server jetty, McpStatelessSyncServer mcp) {
    this.jetty = jetty;
    this.mcp = mcp;
  }

  /**
   * Decides whether an {@code Authorization} header value may use the endpoint: {@code null} when
   * it may, else the sentence the 401 answer carries.
   */
  @FunctionalInterface
  public interface KeyCheck {
    String refusal(String authorization);
  }

  /**
   * Serves on {@code host:port} (port 0: any free port). {@code keys} null lets every request in
   * (a server without authentication, which listens on loopback only).
   */
  public static McpHttpServer start(String host, int port, Backend backend, KeyCheck keys, int threads,
      String version) throws Exception {
    HttpServletStatelessServerTransport transport = HttpServletStatelessServerTransport.builder()
        .jsonMapper(McpJsonDefaults.getMapper())
        .messageEndpoint(ENDPOINT)
        .maxRequestSize(MAX_REQUEST_BYTES)
        // Browsers send Origin; MCP clients do not. Refusing every Origin keeps a web page the user
        // visits (DNS rebinding onto localhost) from calling the tools with the user's network.
        .httpHeaderValidator(DefaultServerTransportSecurityValidator.builder().build())
        .contextExtractor(McpHttpServer::context)
        .build();
    McpStatelessSyncServer mcp = ContextMemoryMcp.serve(transport, backend, version);

    // Request threads block on one gRPC call each (which the server's own request queue bounds);
    // Jetty's job queue stays unbounded, as Jetty requires, and is bounded by the connection limit.
    QueuedThreadPool pool = new QueuedThreadPool(threads + 8, Math.min(threads + 8, 8));
    pool.setName("mcp-http");
    Server jetty = new Server(pool);
    ServerConnector connector = new ServerConnector(jetty);
    jetty.addBean(new NetworkConnectionLimit(MAX_CONNECTIONS, connector));
    connector.setHost(host);
    connector.setPort(port);
    jetty.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler();
    context.setContextPath("/");
    ServletHolder servlet = new ServletHolder("mcp", transport);
    servlet.setAsyncSupported(true);
    context.addServlet(servlet, ENDPOINT);
    if (keys != null) {
      FilterHolder filter = new FilterHolder(new BearerKeys(keys));
      filter.setAsyncSupported(true);
      context.addFilter(filter, ENDPOINT, EnumSet.of(jakarta.servlet.DispatcherType.REQUEST));
    }
    // On stop, requests in flight finish (up to the stop timeout) while new ones are refused.
    GracefulHandler graceful = new GracefulHandler(context);
    jetty.setHandler(graceful);
    jetty.setStopTimeout(5_000);
    try {
      jetty.start();
    } catch (Exception e) {
      mcp.close();
      jetty.stop();
      throw e;
    }
    return new McpHttpServer(jetty, mcp);
  }

  private static McpTransportContext context(HttpServletRequest request) {
    String authorization = request.getHeader("Authorization");
    return authorization == null ? McpTransportContext.EMPTY
        : McpTransportContext.create(Map.of(Backend.AUTHORIZATION, authorization));
  }

  /** The port it listens on (the chosen one when started with 0). */
  public int port() {
    return ((ServerConnector) jetty.getConnectors()[0]).getLocalPort();
  }

  /** Closes the sessions and stops Jetty, letting requests in flight finish for up to 5 s. */
  @Override
  public void close() {
    if (closed.getAndSet(true)) {
      return;
    }
    try {
      mcp.closeGracefully();
    } finally {
      try {
        jetty.stop();
      } catch (Exception e) {
        throw new IllegalStateException("could not stop the MCP HTTP server", e);
      }
    }
  }

  /** 401 for a request without a valid API key, before the MCP transport sees it. */
  private record BearerKeys(KeyCheck keys) implements Filter {
    @Override
    public void doFilter(ServletRequest req, ServletResponse res, FilterChain chain)
        throws IOException, ServletException {
      HttpServletRequest request = (HttpServletRequest) req;
      String refusal = keys.refusal(request.getHeader("Authorization"));
      if (refusal == null) {
        chain.doFilter(req, res);
        return;
      }
      HttpServletResponse response = (HttpServletResponse) res;
      response.setStatus(HttpServletResponse.SC_UNAUTHORIZED);
      response.setHeader("WWW-Authenticate", "Bearer realm=\"context-memory\"");
      response.setContentType("application/json");
      response.setCharacterEncoding("UTF-8");
      String body = McpJsonDefaults.getMapper().writeValueAsString(Map.of("error", refusal
          + ". Send a context-memory API key as Authorization: Bearer <key>."));
      response.getOutputStream().write(body.getBytes(StandardCharsets.UTF_8));
    }
  }
}
