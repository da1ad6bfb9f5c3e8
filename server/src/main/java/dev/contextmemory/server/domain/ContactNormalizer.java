package dev.contextmemory.server.domain;

import com.google.i18n.phonenumbers.NumberParseException;
import com.google.i18n.phonenumbers.PhoneNumberUtil;
import com.google.i18n.phonenumbers.Phonenumber.PhoneNumber;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Normalizes contact values so that one person's number or address always compares equal:
 * phones to E.164 ("+15551234567") with Google's libphonenumber, emails trimmed and lower-cased.
 * Each method returns the normalized value, or throws {@link InvalidArgumentException} naming
 * {@code field}.
 */
public final class ContactNormalizer {
  public static final int MAX_EMAIL_LENGTH = 254;
  public static final int MAX_PHONE_INPUT_LENGTH = 64;
  private static final Pattern EMAIL = Pattern.compile("^[^@\\s]+@[^@\\s]+$");
  private static final Pattern PHONE_PREFIX_NOISE = Pattern.compile("[\\s().\\-]");
  private static final Pattern PHONE_PREFIX = Pattern.compile("^\\+?[0-9]{0,15}$");

  private final PhoneNumberUtil phones = PhoneNumberUtil.getInstance();
  private final String defaultRegion;

  public ContactNormalizer(String defaultRegion) {
    if (!phones.getSupportedRegions().contains(defaultRegion)) {
      throw new IllegalArgumentException("unknown phone region: " + defaultRegion);
    }
    this.defaultRegion = defaultRegion;
  }

  /**
   * A number that can't be a phone number anywhere (too short, too long, letters) is refused;
   * numbers merely unassigned today are accepted, since agents meet test and new ranges.
   */
  public String phone(String raw, String field) {
    String s = raw.strip();
    if (s.length() > MAX_PHONE_INPUT_LENGTH) {
      throw InvalidArgumentException.of(field, "must be at most " + MAX_PHONE_INPUT_LENGTH + " characters");
    }
    try {
      PhoneNumber n = phones.parse(s, defaultRegion);
      if (n.hasExtension() || !phones.isPossibleNumber(n)) {
        throw InvalidArgumentException.of(field, "'" + s + "' cannot be a phone number");
      }
      return phones.format(n, PhoneNumberUtil.PhoneNumberFormat.E164);
    } catch (NumberParseException e) {
      throw InvalidArgumentException.of(field, "'" + s + "' cannot be a phone number: " + e.getMessage());
    }
  }

  public String email(String raw, String field) {
    String s = raw.strip().toLowerCase(Locale.ROOT);
    if (s.length() > MAX_EMAIL_LENGTH) {
      throw InvalidArgumentException.of(field, "must be at most " + MAX_EMAIL_LENGTH + " characters");
    }
    if (!EMAIL.matcher(s).matches()) {
      throw InvalidArgumentException.of(field, "must be an email address like name@example.com");
    }
    return s;
  }

  /** A phone prefix for listing: "+1 (555" becomes "+1555". */
  public String phonePrefix(String raw, String field) {
    String s = PHONE_PREFIX_NOISE.matcher(raw).replaceAll("");
    if (!PHONE_PREFIX.matcher(s).matches()) {
      throw InvalidArgumentException.of(field, "must be a '+' followed by up to 15 digits");
    }
    return s.startsWith("+") ? s : "+" + s;
  }
}
