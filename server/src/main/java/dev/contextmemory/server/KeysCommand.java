package dev.contextmemory.server;

import com.zaxxer.hikari.HikariDataSource;
import dev.contextmemory.server.auth.ApiKeySecrets;
import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.domain.ApiKey;
import dev.contextmemory.server.domain.NotFoundException;
import dev.contextmemory.server.store.ApiKeyStore;
import dev.contextmemory.server.store.AuditLog;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code keys create|list|revoke}: API key management for an operator with database access, no
 * running server needed (AdminService does the same over gRPC for a key with the admin scope).
 * The secret is printed once, on standard output, alone on its line, so a script can capture it;
 * everything else goes to standard error. Creations and revocations are audited with actor "cli".
 */
@Command(name = "keys", description = "Create, list and revoke API keys.",
    subcommands = {KeysCommand.Create.class, KeysCommand.ListKeys.class, KeysCommand.Revoke.class})
final class KeysCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    spec.commandLine().usage(System.err);
    return Main.USAGE;
  }

  /** Runs {@code work} against the configured database, migrated first when MIGRATE_ON_START. */
  static <T> T withStore(Function<ApiKeyStore, T> work) {
    Settings s = Main.settings();
    if (s.migrateOnStart()) {
      Database.migrate(s);
    }
    try (HikariDataSource pool = Database.pool(s)) {
      return work.apply(new ApiKeyStore(Database.jdbi(pool)));
    }
  }

  @Command(name = "create", description = "Create a key and print it (once) on standard output.")
  static final class Create implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--tenant", required = true, description = "The tenant the key acts for.")
    String tenant;

    @Option(names = "--name", required = true, description = "Who uses the key, e.g. 'support-agent prod'.")
    String name;

    @Option(names = "--scopes", required = true, split = ",",
        description = "Comma-separated: read, write, erase, admin.")
    List<String> scopes;

    @Option(names = "--expires", description = "Lifetime: 90d, 12h, 30m, or an ISO-8601 duration (P90D). Default: never.")
    String expires;

    @Override
    public Integer call() {
      if (tenant.isBlank() || tenant.length() > 200) {
        throw new ParameterException(spec.commandLine(), "--tenant must be 1 to 200 characters");
      }
      if (name.isBlank() || name.strip().length() > 200) {
        throw new ParameterException(spec.commandLine(), "--name must be 1 to 200 characters");
      }
      Set<Scope> parsed = EnumSet.noneOf(Scope.class);
      for (String s : scopes) {
        Scope scope = Scope.parse(s);
        if (scope == null) {
          throw new ParameterException(spec.commandLine(),
              "unknown scope '" + s + "' (use read, write, erase, admin)");
        }
        parsed.add(scope);
      }
      Instant expiresAt = expires == null ? null : Instant.now().plus(lifetime(spec, expires));
      ApiKeyStore.Created created = withStore(store ->
          store.create(tenant.strip(), name.strip(), parsed, expiresAt, AuditLog.CLI_ACTOR));
      System.out.println(created.key());
      System.err.println("created key " + created.apiKey().prefix() + " for tenant '" + created.apiKey().tenant()
          + "', scopes " + scopeList(created.apiKey()) + ", expires "
          + (expiresAt == null ? "never" : expiresAt) + ". The key above is shown only this once.");
      return 0;
    }
  }

  @Command(name = "list", description = "List keys (never their secrets).")
  static final class ListKeys implements Callable<Integer> {
    @Option(names = "--tenant", description = "Only this tenant's keys.")
    String tenant;

    @Override
    public Integer call() {
      List<ApiKey> keys = withStore(store -> store.listForOperator(tenant, 10_000));
      System.out.printf("%-10s  %-20s  %-24s  %-22s  %-20s  %-20s  %-20s  %s%n", "PREFIX", "TENANT", "NAME",
          "SCOPES", "CREATED", "EXPIRES", "REVOKED", "LAST USED");
      for (ApiKey k : keys) {
        System.out.printf("%-10s  %-20s  %-24s  %-22s  %-20s  %-20s  %-20s  %s%n", k.prefix(), k.tenant(), k.name(),
            scopeList(k), time(k.createdAt()), time(k.expiresAt()), time(k.revokedAt()), time(k.lastUsedAt()));
      }
      return 0;
    }
  }

  @Command(name = "revoke", description = "Revoke a key by its prefix (the 10 characters after cm_).")
  static final class Revoke implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "PREFIX")
    String prefix;

    @Override
    public Integer call() {
      if (!ApiKeySecrets.isPrefix(prefix)) {
        throw new ParameterException(spec.commandLine(), "'" + prefix + "' is not a key prefix (10 characters a-z, 2-7)");
      }
      try {
        ApiKey k = withStore(store -> store.revoke(null, prefix, AuditLog.CLI_ACTOR));
        System.err.println("revoked key " + k.prefix() + " of tenant '" + k.tenant() + "' at " + k.revokedAt()
            + "; servers stop accepting it within their key cache TTL (CONTEXT_MEMORY_AUTH_CACHE_TTL_MS)");
        return 0;
      } catch (NotFoundException e) {
        System.err.println("context-memory: no key with prefix " + prefix);
        return 1;
      }
    }
  }

  private static final Pattern SHORT_DURATION = Pattern.compile("^(\\d{1,6})([dhm])$");

  static Duration lifetime(CommandSpec spec, String text) {
    Matcher m = SHORT_DURATION.matcher(text.strip().toLowerCase(Locale.ROOT));
    Duration d;
    if (m.matches()) {
      long n = Long.parseLong(m.group(1));
      d = switch (m.group(2)) {
        case "d" -> Duration.ofDays(n);
        case "h" -> Duration.ofHours(n);
        default -> Duration.ofMinutes(n);
      };
    } else {
      try {
        d = Duration.parse(text.strip().toUpperCase(Locale.ROOT));
      } catch (DateTimeParseException e) {
        throw new ParameterException(spec.commandLine(), "--expires '" + text + "' is not 90d, 12h, 30m or P90D");
      }
    }
    if (d.isZero() || d.isNegative() || d.compareTo(Duration.ofDays(3650)) > 0) {
      throw new ParameterException(spec.commandLine(), "--expires must be positive and at most 3650 days");
    }
    return d;
  }

  private static String scopeList(ApiKey k) {
    return k.scopes().stream().sorted().map(Scope::wireName).collect(Collectors.joining(","));
  }

  private static String time(Instant i) {
    return i == null ? "-" : i.truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString();
  }
}
