package dev.contextmemory.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.Status;
import io.grpc.protobuf.StatusProto;
import java.util.List;
import java.util.Optional;

/**
 * Reads the rich error details the server puts in every failed call's trailers (a
 * google.rpc.Status): the ErrorInfo {@code reason} to switch on ({@code "CUSTOMER_NOT_FOUND"}), and
 * the BadRequest field violations of INVALID_ARGUMENT and ALREADY_EXISTS answers.
 *
 * <pre>{@code
 * try {
 *   client.customers().getCustomer(request);
 * } catch (StatusRuntimeException e) {
 *   if (ApiErrors.reason(e).equals("CUSTOMER_NOT_FOUND")) { ... }
 * }
 * }</pre>
 */
public final class ApiErrors {
  /** The ErrorInfo domain of this server's errors. */
  public static final String DOMAIN = "contextmemory.dev";

  private ApiErrors() {}

  /** The google.rpc.Status of a StatusRuntimeException or StatusException, if the server sent one. */
  public static Optional<Status> status(Throwable t) {
    return Optional.ofNullable(StatusProto.fromThrowable(t));
  }

  /** The ErrorInfo detail, if any. */
  public static Optional<ErrorInfo> errorInfo(Throwable t) {
    return status(t).flatMap(s -> detail(s, ErrorInfo.class));
  }

  /** The ErrorInfo reason (UPPER_SNAKE), or "" when the error carries none (e.g. a transport error). */
  public static String reason(Throwable t) {
    return errorInfo(t).map(ErrorInfo::getReason).orElse("");
  }

  /** The BadRequest field violations, each naming a field by its path in the request. */
  public static List<BadRequest.FieldViolation> fieldViolations(Throwable t) {
    return status(t).flatMap(s -> detail(s, BadRequest.class))
        .map(BadRequest::getFieldViolationsList).orElse(List.of());
  }

  /** The first detail of {@code type} in {@code status}. */
  public static <T extends Message> Optional<T> detail(Status status, Class<T> type) {
    for (Any any : status.getDetailsList()) {
      if (any.is(type)) {
        try {
          return Optional.of(any.unpack(type));
        } catch (InvalidProtocolBufferException e) {
          return Optional.empty();
        }
      }
    }
    return Optional.empty();
  }
}
