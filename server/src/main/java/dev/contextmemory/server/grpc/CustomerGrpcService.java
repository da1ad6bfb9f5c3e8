package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.AddressDraft;
import dev.contextmemory.server.domain.AddressField;
import dev.contextmemory.server.domain.ContactKey;
import dev.contextmemory.server.domain.ContactNormalizer;
import dev.contextmemory.server.domain.CustomerDraft;
import dev.contextmemory.server.domain.CustomerField;
import dev.contextmemory.server.domain.CustomerFilter;
import dev.contextmemory.server.domain.CustomerPage;
import dev.contextmemory.server.domain.ErasedCounts;
import dev.contextmemory.server.domain.MaskField;
import dev.contextmemory.server.domain.UpsertResult;
import dev.contextmemory.server.store.AddressStore;
import dev.contextmemory.server.store.CustomerStore;
import dev.contextmemory.v1.*;
import io.grpc.stub.StreamObserver;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

/**
 * CustomerService over gRPC: validate the request, call one store method, map the result. Errors
 * are thrown and become statuses in {@link ExceptionInterceptor}.
 */
public final class CustomerGrpcService extends CustomerServiceGrpc.CustomerServiceImplBase {
  static final int MAX_NAME_LENGTH = 200;
  static final int MAX_EXTERNAL_REF_LENGTH = 200;
  static final int MAX_LABEL_LENGTH = 100;
  static final int MAX_ADDRESS_LINE_LENGTH = 200;
  static final int MAX_POSTAL_CODE_LENGTH = 32;
  /** ISO 3166-1 alpha-2's officially assigned codes, as the JDK ships them (no UK, EU, XK or ZZ). */
  private static final Set<String> COUNTRY_CODES = Set.of(Locale.getISOCountries());

  private static final Map<String, CustomerField> CUSTOMER_PATHS = paths(CustomerField.values());
  private static final Map<String, AddressField> ADDRESS_PATHS = paths(AddressField.values());

  private final CustomerStore store;
  private final ContactNormalizer contacts;
  private final PageTokens tokens;
  private final AddressStore addresses;

  public CustomerGrpcService(CustomerStore store, AddressStore addresses, ContactNormalizer contacts,
      PageTokens tokens) {
    this.addresses = addresses;
    this.tokens = tokens;
    this.store = store;
    this.contacts = contacts;
  }

  @Override
  public void createCustomer(CreateCustomerRequest req, StreamObserver<CreateCustomerResponse> out) {
    Validator v = new Validator();
    CustomerDraft draft = customerDraft(v, req.getCustomer(), EnumSet.allOf(CustomerField.class), false);
    String requestId = v.requestId("request_id", req.getRequestId());
    v.throwIfInvalid();
    reply(out, CreateCustomerResponse.newBuilder()
        .setCustomer(ProtoMapping.customer(store.create(Tenants.current(), draft, requestId))).build());
  }

  @Override
  public void getCustomer(GetCustomerRequest req, StreamObserver<GetCustomerResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("customer_id", req.getCustomerId());
    v.throwIfInvalid();
    reply(out, GetCustomerResponse.newBuilder()
        .setCustomer(ProtoMapping.customer(store.get(Tenants.current(), id))).build());
  }

  @Override
  public void lookupCustomer(LookupCustomerRequest req, StreamObserver<LookupCustomerResponse> out) {
    Validator v = new Validator();
    ContactKey key = contactKey(v, req.hasContactKey() ? req.getContactKey() : null, "contact_key");
    v.throwIfInvalid();
    reply(out, LookupCustomerResponse.newBuilder()
        .setCustomer(ProtoMapping.customer(store.lookup(Tenants.current(), key))).build());
  }

  @Override
  public void upsertCustomer(UpsertCustomerRequest req, StreamObserver<UpsertCustomerResponse> out) {
    Validator v = new Validator();
    ContactKey key = contactKey(v, req.hasContactKey() ? req.getContactKey() : null, "contact_key");
    dev.contextmemory.v1.Customer c = req.getCustomer();
    // Insert writes every value given; on conflict, the mask (or, without one, the non-empty
    // fields) decides what changes. The key's own field always holds the key.
    Set<CustomerField> toWrite = v.mask(req.getUpdateMask(), CUSTOMER_PATHS, CustomerField.class,
        f -> populated(c, f));
    boolean merge = req.getUpdateMask().getPathsCount() == 0;
    CustomerDraft draft = customerDraft(v, c, toWrite, merge);
    if (key != null) {
      String given = switch (key.field()) {
        case PHONE -> draft.phone();
        case EMAIL -> draft.email();
        default -> draft.externalRef();
      };
      String field = "customer." + key.field().path();
      if (given != null && !given.equals(key.value())) {
        v.add(field, "must be empty or equal contact_key." + key.field().path());
      }
      draft = withKey(draft, key);
    }
    v.throwIfInvalid();
    UpsertResult r = store.upsert(Tenants.current(), key, draft);
    reply(out, UpsertCustomerResponse.newBuilder()
        .setCustomer(ProtoMapping.customer(r.customer())).setCreated(r.created()).build());
  }

  @Override
  public void updateCustomer(UpdateCustomerRequest req, StreamObserver<UpdateCustomerResponse> out) {
    Validator v = new Validator();
    dev.contextmemory.v1.Customer c = req.getCustomer();
    UUID id = v.id("customer.id", c.getId());
    Set<CustomerField> fields = v.mask(req.getUpdateMask(), CUSTOMER_PATHS, CustomerField.class, f -> populated(c, f));
    CustomerDraft draft = customerDraft(v, c, fields, false);
    v.throwIfInvalid();
    reply(out, UpdateCustomerResponse.newBuilder()
        .setCustomer(ProtoMapping.customer(store.update(Tenants.current(), id, draft))).build());
  }

  @Override
  public void listCustomers(ListCustomersRequest req, StreamObserver<ListCustomersResponse> out) {
    Validator v = new Validator();
    int pageSize = v.pageSize("page_size", req.getPageSize());
    String name = v.text("display_name_prefix", req.getDisplayNamePrefix(), MAX_NAME_LENGTH);
    String phone = req.getPhonePrefix().isBlank() ? null
        : v.check(() -> contacts.phonePrefix(req.getPhonePrefix(), "phone_prefix"));
    String email = v.text("email_prefix", req.getEmailPrefix(), ContactNormalizer.MAX_EMAIL_LENGTH);
    CustomerFilter filter = new CustomerFilter(name, phone, email == null ? null : email.toLowerCase(Locale.ROOT));
    String filterKey = "customers|" + filter;
    CustomerPage.Cursor after = v.ok() ? v.check(() -> tokens.decode(Tenants.current(), req.getPageToken(), filterKey,
        "page_token", 2, p -> new CustomerPage.Cursor(PageTokens.instant(p[0]), PageTokens.uuid(p[1])))) : null;
    v.throwIfInvalid();
    CustomerPage page = store.list(Tenants.current(), filter, after, pageSize);
    ListCustomersResponse.Builder b = ListCustomersResponse.newBuilder();
    page.customers().forEach(c -> b.addCustomers(ProtoMapping.customer(c)));
    if (page.next() != null) {
      b.setNextPageToken(tokens.encode(Tenants.current(), filterKey, PageTokens.micros(page.next().createdAt()),
          page.next().id().toString()));
    }
    reply(out, b.build());
  }

  @Override
  public void deleteCustomer(DeleteCustomerRequest req, StreamObserver<DeleteCustomerResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("customer_id", req.getCustomerId());
    v.throwIfInvalid();
    ErasedCounts n = store.delete(Tenants.current(), Tenants.caller().actor(), id, req.getErase());
    reply(out, DeleteCustomerResponse.newBuilder()
        .setAddressesDeleted(n.addresses())
        .setConversationsDeleted(n.conversations())
        .setMessagesDeleted(n.messages())
        .setMemoriesDeleted(n.memories())
        .setMemoryHistoryDeleted(n.memoryHistory())
        .build());
  }

  @Override
  public void addAddress(AddAddressRequest req, StreamObserver<AddAddressResponse> out) {
    Validator v = new Validator();
    UUID customerId = v.id("customer_id", req.getCustomerId());
    AddressDraft draft = addressDraft(v, req.getAddress(), EnumSet.allOf(AddressField.class));
    String requestId = v.requestId("request_id", req.getRequestId());
    v.throwIfInvalid();
    reply(out, AddAddressResponse.newBuilder()
        .setAddress(ProtoMapping.address(addresses.addAddress(Tenants.current(), customerId, draft, requestId))).build());
  }

  @Override
  public void listAddresses(ListAddressesRequest req, StreamObserver<ListAddressesResponse> out) {
    Validator v = new Validator();
    UUID customerId = v.id("customer_id", req.getCustomerId());
    v.throwIfInvalid();
    ListAddressesResponse.Builder b = ListAddressesResponse.newBuilder();
    addresses.listAddresses(Tenants.current(), customerId).forEach(a -> b.addAddresses(ProtoMapping.address(a)));
    reply(out, b.build());
  }

  @Override
  public void updateAddress(UpdateAddressRequest req, StreamObserver<UpdateAddressResponse> out) {
    Validator v = new Validator();
    dev.contextmemory.v1.Address a = req.getAddress();
    UUID id = v.id("address.id", a.getId());
    Set<AddressField> fields = v.mask(req.getUpdateMask(), ADDRESS_PATHS, AddressField.class, f -> populated(a, f));
    AddressDraft draft = addressDraft(v, a, fields);
    v.throwIfInvalid();
    reply(out, UpdateAddressResponse.newBuilder()
        .setAddress(ProtoMapping.address(addresses.updateAddress(Tenants.current(), id, draft))).build());
  }

  @Override
  public void removeAddress(RemoveAddressRequest req, StreamObserver<RemoveAddressResponse> out) {
    Validator v = new Validator();
    UUID id = v.id("address_id", req.getAddressId());
    v.throwIfInvalid();
    addresses.removeAddress(Tenants.current(), Tenants.caller().actor(), id);
    reply(out, RemoveAddressResponse.getDefaultInstance());
  }

  // ---------------------------------------------------------------------------------------------

  private CustomerDraft customerDraft(Validator v, dev.contextmemory.v1.Customer c, Set<CustomerField> fields,
      boolean mergeMetadata) {
    String name = v.text("customer.display_name", c.getDisplayName(), MAX_NAME_LENGTH);
    String phone = c.getPhone().isBlank() ? null : v.check(() -> contacts.phone(c.getPhone(), "customer.phone"));
    String email = c.getEmail().isBlank() ? null : v.check(() -> contacts.email(c.getEmail(), "customer.email"));
    String ref = v.text("customer.external_ref", c.getExternalRef(), MAX_EXTERNAL_REF_LENGTH);
    String metadata = v.metadata("customer.metadata", c.getMetadata());
    return new CustomerDraft(name, phone, email, ref, metadata, fields, mergeMetadata);
  }

  private static CustomerDraft withKey(CustomerDraft d, ContactKey key) {
    return new CustomerDraft(d.displayName(),
        key.field() == CustomerField.PHONE ? key.value() : d.phone(),
        key.field() == CustomerField.EMAIL ? key.value() : d.email(),
        key.field() == CustomerField.EXTERNAL_REF ? key.value() : d.externalRef(),
        d.metadataJson(), d.fields(), d.mergeMetadata());
  }

  private ContactKey contactKey(Validator v, dev.contextmemory.v1.ContactKey k, String field) {
    if (k == null || k.getKeyCase() == dev.contextmemory.v1.ContactKey.KeyCase.KEY_NOT_SET) {
      v.add(field, "is required: set one of phone, email or external_ref");
      return null;
    }
    return switch (k.getKeyCase()) {
      case PHONE -> {
        String p = v.check(() -> contacts.phone(k.getPhone(), field + ".phone"));
        yield p == null ? null : new ContactKey(CustomerField.PHONE, p);
      }
      case EMAIL -> {
        String e = v.check(() -> contacts.email(k.getEmail(), field + ".email"));
        yield e == null ? null : new ContactKey(CustomerField.EMAIL, e);
      }
      default -> {
        String r = v.requiredText(field + ".external_ref", k.getExternalRef(), MAX_EXTERNAL_REF_LENGTH);
        yield r == null ? null : new ContactKey(CustomerField.EXTERNAL_REF, r);
      }
    };
  }

  private static AddressDraft addressDraft(Validator v, dev.contextmemory.v1.Address a, Set<AddressField> fields) {
    String line1 = fields.contains(AddressField.LINE1)
        ? v.requiredText("address.line1", a.getLine1(), MAX_ADDRESS_LINE_LENGTH)
        : null;
    String country = v.text("address.country_code", a.getCountryCode(), 2);
    if (country != null) {
      country = country.toUpperCase(Locale.ROOT);
      if (!COUNTRY_CODES.contains(country)) {
        v.add("address.country_code", "must be an assigned ISO 3166-1 alpha-2 code like US or GB");
      }
    }
    return new AddressDraft(
        v.text("address.label", a.getLabel(), MAX_LABEL_LENGTH),
        line1,
        v.text("address.line2", a.getLine2(), MAX_ADDRESS_LINE_LENGTH),
        v.text("address.city", a.getCity(), MAX_ADDRESS_LINE_LENGTH),
        v.text("address.region", a.getRegion(), MAX_ADDRESS_LINE_LENGTH),
        v.text("address.postal_code", a.getPostalCode(), MAX_POSTAL_CODE_LENGTH),
        country,
        a.getPrimary(),
        v.metadata("address.metadata", a.getMetadata()),
        fields);
  }

  private static boolean populated(dev.contextmemory.v1.Customer c, CustomerField f) {
    return switch (f) {
      case DISPLAY_NAME -> !c.getDisplayName().isBlank();
      case PHONE -> !c.getPhone().isBlank();
      case EMAIL -> !c.getEmail().isBlank();
      case EXTERNAL_REF -> !c.getExternalRef().isBlank();
      case METADATA -> c.getMetadata().getFieldsCount() > 0;
    };
  }

  private static boolean populated(dev.contextmemory.v1.Address a, AddressField f) {
    return switch (f) {
      case LABEL -> !a.getLabel().isBlank();
      case LINE1 -> !a.getLine1().isBlank();
      case LINE2 -> !a.getLine2().isBlank();
      case CITY -> !a.getCity().isBlank();
      case REGION -> !a.getRegion().isBlank();
      case POSTAL_CODE -> !a.getPostalCode().isBlank();
      case COUNTRY_CODE -> !a.getCountryCode().isBlank();
      case PRIMARY -> a.getPrimary();
      case METADATA -> a.getMetadata().getFieldsCount() > 0;
    };
  }

  private static <F extends Enum<F> & MaskField> Map<String, F> paths(F[] values) {
    Map<String, F> m = new LinkedHashMap<>();
    for (F f : values) {
      m.put(f.path(), f);
    }
    return Collections.unmodifiableMap(m);
  }

  private static <T> void reply(StreamObserver<T> out, T response) {
    out.onNext(response);
    out.onCompleted();
  }
}
