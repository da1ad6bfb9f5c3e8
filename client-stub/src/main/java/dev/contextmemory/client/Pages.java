package dev.contextmemory.client;

import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.function.BiFunction;
import java.util.function.Function;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/** Walks a paged list RPC: fetches a page when the previous one is used up, until the token is empty. */
final class Pages<Req, Resp, T> implements Iterator<T> {
  private final Function<Req, Resp> call;
  private final Function<Resp, List<T>> items;
  private final Function<Resp, String> nextToken;
  private final BiFunction<Req, String, Req> withToken;
  private Req next;
  private Iterator<T> page = List.<T>of().iterator();

  private Pages(Req first, Function<Req, Resp> call, Function<Resp, List<T>> items,
      Function<Resp, String> nextToken, BiFunction<Req, String, Req> withToken) {
    this.next = first;
    this.call = call;
    this.items = items;
    this.nextToken = nextToken;
    this.withToken = withToken;
  }

  /** A lazy, sequential stream over every item of every page, starting with {@code first}. */
  static <Req, Resp, T> Stream<T> stream(Req first, Function<Req, Resp> call, Function<Resp, List<T>> items,
      Function<Resp, String> nextToken, BiFunction<Req, String, Req> withToken) {
    Pages<Req, Resp, T> it = new Pages<>(first, call, items, nextToken, withToken);
    return StreamSupport.stream(Spliterators.spliteratorUnknownSize(it, Spliterator.ORDERED | Spliterator.NONNULL),
        false);
  }

  @Override
  public boolean hasNext() {
    // A page may be empty while a token still follows (the server may cut a page short).
    while (!page.hasNext() && next != null) {
      Resp resp = call.apply(next);
      page = items.apply(resp).iterator();
      String token = nextToken.apply(resp);
      next = token.isEmpty() ? null : withToken.apply(next, token);
    }
    return page.hasNext();
  }

  @Override
  public T next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    return page.next();
  }
}
