package dev.contextmemory.mcp;

import static dev.contextmemory.mcp.Schema.bool;
import static dev.contextmemory.mcp.Schema.json;
import static dev.contextmemory.mcp.Schema.object;
import static dev.contextmemory.mcp.Schema.props;
import static dev.contextmemory.mcp.Schema.string;

import dev.contextmemory.v1.AddAddressRequest;
import dev.contextmemory.v1.UpsertCustomerRequest;
import java.util.List;
import java.util.Map;

/** The customer tools: CustomerService.UpsertCustomer and AddAddress. */
final class CustomerTools {
  private CustomerTools() {}

  static final String CUSTOMER_ID = "Id of the customer (customer.id from upsert_customer_profile or fetch_context).";

  static List<Tool<?, ?>> all() {
    return List.of(upsertCustomerProfile(), addCustomerAddress());
  }

  private static Map<String, Object> customerFields() {
    return object("The profile fields to set; fields left out keep their stored values.", props(
        "display_name", string("How the person is addressed, e.g. \"Ada Lovelace\".", 200),
        "phone", string("Phone number in any common notation; stored in E.164 (+15550102030).", 64),
        "email", string("Email address; stored trimmed and lower-cased.", 254),
        "external_ref", string("The host system's id for the person (CRM id), unique per customer.", 200),
        "metadata", json("Free-form JSON object about the person; replaces the stored one when given.")));
  }

  static Tool<UpsertCustomerRequest, ?> upsertCustomerProfile() {
    return new Tool<>("upsert_customer_profile", "Upsert customer profile",
        "Finds the customer who owns a contact key (a phone number, email address or external reference) and"
            + " creates them when there is none, then sets the profile fields given. Call it at the start of a"
            + " conversation with whatever identifies the person writing in (for an SMS, their phone number), and"
            + " again whenever they tell you something that belongs in their profile (their name, a second contact"
            + " detail). Returns {customer, created}: keep customer.id, which every other tool takes. Changes stored"
            + " state; calling it again with the same arguments changes nothing more, and concurrent calls for one new"
            + " key create exactly one customer.",
        object(null, props(
            "contact_key", object("Exactly one key the person is found by.", props(
                "phone", string("A phone number in any common notation.", 64),
                "email", string("An email address.", 254),
                "external_ref", string("The host system's id for the person.", 200))),
            "customer", customerFields()),
            "contact_key"),
        Tool.Effect.IDEMPOTENT_WRITE, UpsertCustomerRequest.getDefaultInstance(),
        (calls, request) -> calls.customers().upsertCustomer(request));
  }

  static Tool<AddAddressRequest, ?> addCustomerAddress() {
    return new Tool<>("add_customer_address", "Add customer address",
        "Adds a postal address to a customer's profile, for example a delivery address the person just gave you."
            + " Setting primary makes it the customer's primary address (the previous primary one stays, no longer"
            + " primary). Returns {address} with its id. Changes stored state: give request_id (any unique string,"
            + " e.g. a UUID you make up once for this address) so that calling again after an error does not add"
            + " the address twice.",
        object(null, props(
            "customer_id", string(CUSTOMER_ID),
            "address", object("The address.", props(
                "label", string("A name for it, e.g. \"home\" or \"office\"."),
                "line1", string("Street and number. Required.", 200),
                "line2", string("Unit, floor, building.", 200),
                "city", string("City or locality.", 200),
                "region", string("State, province or region.", 200),
                "postal_code", string("Postal or ZIP code.", 32),
                "country_code", string("ISO 3166-1 alpha-2 country code, e.g. \"US\".", 2),
                "primary", bool("Whether this becomes the customer's primary address."),
                "metadata", json("Free-form JSON object about the address.")),
                "line1"),
            "request_id", string("Idempotency key: a retry with the same request_id returns the first address"
                + " instead of adding another.", 128)),
            "customer_id", "address"),
        Tool.Effect.IDEMPOTENT_WRITE, AddAddressRequest.getDefaultInstance(),
        (calls, request) -> calls.customers().addAddress(request));
  }
}
