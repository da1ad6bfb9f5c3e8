package dev.contextmemory.server.grpc;

import com.google.protobuf.Any;
import com.google.protobuf.Duration;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import com.google.rpc.PreconditionFailure;
import com.google.rpc.ResourceInfo;
import com.google.rpc.RetryInfo;
import com.google.rpc.Status;
import dev.contextmemory.server.domain.AlreadyExistsException;
import dev.contextmemory.server.domain.DomainException;
import dev.contextmemory.server.domain.FailedPreconditionException;
import dev.contextmemory.server.domain.FieldViolation;
import dev.contextmemory.server.domain.InvalidArgumentException;
import dev.contextmemory.server.domain.NotFoundException;
import dev.contextmemory.server.domain.PermissionDeniedException;
import dev.contextmemory.server.domain.ResourceExhaustedException;
import dev.contextmemory.server.domain.UnavailableException;
import dev.contextmemory.server.domain.UnauthenticatedException;
import io.grpc.Context;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.sql.SQLException;
import java.sql.SQLTransientConnectionException;
import java.util.Map;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place where failures become gRPC statuses: a google.rpc.Status with an ErrorInfo (reason
 * in UPPER_SNAKE, domain {@value #DOMAIN}) and, where it helps the caller, BadRequest,
 * ResourceInfo, PreconditionFailure or RetryInfo. A caller's mistake is never INTERNAL; an
 * unexpected failure is INTERNAL with an error id that is also logged, never a stack trace.
 */
public final class ErrorMapper {
  public static final String DOMAIN = "contextmemory.dev";
  private static final Logger log = LoggerFactory.getLogger(ErrorMapper.class);
  /** Budget of the BadRequest detail: with the message (at most 1,000 characters) well under 8 KiB. */
  static final int MAX_FIELD_VIOLATIONS = 50;
  static final int MAX_FIELD_VIOLATION_BYTES = 3_000;
  private static final int MAX_VIOLATION_TEXT = 200;

  private ErrorMapper() {}

  public static StatusRuntimeException toException(Throwable t) {
    if (t instanceof StatusRuntimeException sre) {
      return sre;
    }
    return StatusProto.toStatusRuntimeException(toStatus(t));
  }

  /** A request whose bytes could not be parsed: no field can be named, the message was unreadable. */
  static StatusRuntimeException malformedRequest() {
    return StatusProto.toStatusRuntimeException(status(Code.INVALID_ARGUMENT,
        "the request bytes are not a valid protobuf message of this method's request type"
            + " (truncated, wrong wire types, or a string field that is not UTF-8)",
        errorInfo("MALFORMED_REQUEST", Map.of())));
  }

  /** A call shed before it ran: every request thread busy and the request queue full. */
  static StatusRuntimeException overloaded() {
    return StatusProto.toStatusRuntimeException(retryable(Code.RESOURCE_EXHAUSTED,
        "the server is overloaded (every request thread busy, the request queue full); nothing was done;"
            + " retry with backoff", "SERVER_OVERLOADED"));
  }

  /** A call whose deadline passed while it waited for a thread: it was not run. */
  static StatusRuntimeException deadlinePassedBeforeStart() {
    return StatusProto.toStatusRuntimeException(status(Code.DEADLINE_EXCEEDED,
        "the call's deadline passed before it started; nothing was done",
        errorInfo("DEADLINE_EXCEEDED", Map.of())));
  }

  static Status toStatus(Throwable t) {
    if (t instanceof DomainException d) {
      return domain(d);
    }
    SQLException sql = findSqlException(t);
    if (sql != null) {
      Status s = database(sql);
      if (s != null) {
        return s;
      }
    }
    String errorId = UUID.randomUUID().toString();
    log.error("internal error {}", errorId, t);
    return status(Code.INTERNAL, "internal error; quote error id " + errorId + " when reporting it",
        errorInfo("INTERNAL", Map.of("error_id", errorId)));
  }

  private static Status domain(DomainException d) {
    ErrorInfo info = errorInfo(d.reason(), d.metadata());
    return switch (d) {
      case InvalidArgumentException e -> {
        BadRequest br = badRequest(e);
        int omitted = e.violations().size() - br.getFieldViolationsCount();
        if (omitted > 0) {
          info = info.toBuilder().putMetadata("field_violations_omitted", Integer.toString(omitted)).build();
        }
        yield status(Code.INVALID_ARGUMENT, e.getMessage(), info, br);
      }
      case NotFoundException e -> status(Code.NOT_FOUND, e.getMessage(), info,
          ResourceInfo.newBuilder().setResourceType(e.resourceType()).setResourceName(e.resourceName())
              .setDescription(e.getMessage()).build());
      case AlreadyExistsException e -> status(Code.ALREADY_EXISTS, e.getMessage(), info,
          BadRequest.newBuilder().addFieldViolations(BadRequest.FieldViolation.newBuilder()
              .setField(e.field()).setDescription(e.getMessage())).build());
      case FailedPreconditionException e -> status(Code.FAILED_PRECONDITION, e.getMessage(), info,
          PreconditionFailure.newBuilder().addViolations(PreconditionFailure.Violation.newBuilder()
              .setType(e.reason()).setDescription(e.getMessage())).build());
      case UnauthenticatedException e -> status(Code.UNAUTHENTICATED, e.getMessage(), info);
      case PermissionDeniedException e -> status(Code.PERMISSION_DENIED, e.getMessage(), info);
      case ResourceExhaustedException e -> status(Code.RESOURCE_EXHAUSTED, e.getMessage(), info,
          RetryInfo.newBuilder().setRetryDelay(duration(e.retryAfter())).build());
      case UnavailableException e -> status(Code.UNAVAILABLE, e.getMessage(), info,
          RetryInfo.newBuilder().setRetryDelay(duration(e.retryAfter())).build());
    };
  }

  /**
   * The field violations that fit the budget. The status travels base64-encoded in the
   * grpc-status-details-bin trailer and grpc-java clients refuse trailers over 8 KiB (their
   * maxInboundMetadataSize), which the client then sees as INTERNAL; 2,000 violations of a bad
   * 1,000-item batch made 320 KB. ErrorInfo's field_violations_omitted says how many were left out.
   */
  private static BadRequest badRequest(InvalidArgumentException e) {
    BadRequest.Builder br = BadRequest.newBuilder();
    int bytes = 0;
    for (FieldViolation v : e.violations()) {
      BadRequest.FieldViolation fv = BadRequest.FieldViolation.newBuilder()
          .setField(clip(v.field())).setDescription(clip(v.description())).build();
      bytes += fv.getSerializedSize() + 3;
      if (br.getFieldViolationsCount() == MAX_FIELD_VIOLATIONS || bytes > MAX_FIELD_VIOLATION_BYTES) {
        break;
      }
      br.addFieldViolations(fv);
    }
    return br.build();
  }

  private static String clip(String s) {
    return s.length() <= MAX_VIOLATION_TEXT ? s : s.substring(0, MAX_VIOLATION_TEXT - 1) + "…";
  }

  /** SQL failures that are not bugs of ours: the database's state, load, or the call's deadline. */
  private static Status database(SQLException e) {
    if (e instanceof SQLTransientConnectionException) {
      // HikariCP's "connection is not available": with a cause, connecting failed (database down);
      // without one, every connection was busy for the whole connection timeout (saturated).
      return e.getCause() != null
          ? retryable(Code.UNAVAILABLE, "the database is unavailable; retry with backoff", "DATABASE_UNAVAILABLE")
          : retryable(Code.RESOURCE_EXHAUSTED, "all database connections are busy; retry with backoff",
              "DATABASE_POOL_EXHAUSTED");
    }
    String state = e.getSQLState() == null ? "" : e.getSQLState();
    if (state.equals("57014")) { // query_canceled: our deadline listener, or statement_timeout
      Context ctx = Context.current();
      if (ctx.getDeadline() != null && ctx.getDeadline().isExpired()) {
        return status(Code.DEADLINE_EXCEEDED, "the call's deadline passed; its SQL statement was cancelled",
            errorInfo("DEADLINE_EXCEEDED", Map.of()));
      }
      if (ctx.isCancelled()) {
        return status(Code.CANCELLED, "the call was cancelled; its SQL statement was cancelled",
            errorInfo("CANCELLED", Map.of()));
      }
      return status(Code.DEADLINE_EXCEEDED, "the statement ran past the server's statement timeout",
          errorInfo("STATEMENT_TIMEOUT", Map.of()));
    }
    if (state.startsWith("08") || state.equals("57P01") || state.equals("57P02") || state.equals("57P03")
        || state.equals("3D000")) {
      return retryable(Code.UNAVAILABLE, "the database is unavailable; retry with backoff", "DATABASE_UNAVAILABLE");
    }
    if (state.startsWith("53")) {
      return retryable(Code.RESOURCE_EXHAUSTED, "the database is out of resources; retry with backoff",
          "DATABASE_RESOURCE_EXHAUSTED");
    }
    if (state.equals("40001") || state.equals("40P01")) {
      return retryable(Code.ABORTED, "the transaction conflicted with another; retry", "TRANSACTION_CONFLICT");
    }
    if (state.equals("55P03")) {
      // lock_timeout: another transaction held a row this call must change. The statement rolled
      // back, so nothing was done, and the holder usually finishes soon: ABORTED (a concurrency
      // conflict, AIP-193), retryable, rather than UNAVAILABLE, which would read as an outage.
      return retryable(Code.ABORTED, "another transaction held a lock this call needed for longer than the lock"
          + " timeout; nothing was done; retry", "LOCK_TIMEOUT");
    }
    if (state.equals("25006")) {
      // read_only_sql_transaction: a standby after a failover, or default_transaction_read_only.
      // A failover ends; the write did not happen.
      return retryable(Code.UNAVAILABLE, "the database accepts no writes right now (read-only: a failover in"
          + " progress?); nothing was done; retry with backoff", "DATABASE_READ_ONLY");
    }
    if (state.equals("42501")) {
      // insufficient_privilege: the server's database role misses a grant. No retry helps; the
      // operator must fix the grant, so the log says which privilege (the database's message names
      // the object, never a value).
      String errorId = UUID.randomUUID().toString();
      log.error("internal error {}: the database role lacks a privilege (SQLSTATE 42501): {}; grant it"
          + " (docs/operations.md, Configuration)", errorId, e.getMessage());
      return status(Code.INTERNAL, "the server's database role lacks a privilege; quote error id " + errorId
          + " when reporting it", errorInfo("DATABASE_PERMISSION_DENIED", Map.of("error_id", errorId)));
    }
    if (state.startsWith("22") || state.equals("23514")) {
      // Input validation should have caught it; if the database did, it is still the input.
      return status(Code.INVALID_ARGUMENT, "the database rejected a value of the request",
          errorInfo("INVALID_VALUE", Map.of("sqlstate", state)));
    }
    return null;
  }

  static SQLException findSqlException(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof SQLException s) {
        return s;
      }
    }
    return null;
  }

  private static Status retryable(Code code, String message, String reason) {
    return status(code, message, errorInfo(reason, Map.of()),
        RetryInfo.newBuilder().setRetryDelay(Duration.newBuilder().setNanos(200_000_000)).build());
  }

  private static Duration duration(java.time.Duration d) {
    return Duration.newBuilder().setSeconds(d.getSeconds()).setNanos(d.getNano()).build();
  }

  private static ErrorInfo errorInfo(String reason, Map<String, String> metadata) {
    return ErrorInfo.newBuilder().setReason(reason).setDomain(DOMAIN).putAllMetadata(metadata).build();
  }

  private static Status status(Code code, String message, com.google.protobuf.Message... details) {
    Status.Builder s = Status.newBuilder().setCode(code.getNumber()).setMessage(message);
    for (com.google.protobuf.Message d : details) {
      s.addDetails(Any.pack(d));
    }
    return s.build();
  }
}
