/**
 * The end of the user's session at an enterprise identity provider, as Auth0 passes it on: the ID token claim
 * `session_expiry` (epoch seconds; from SAML `SessionNotOnOrAfter`, for example). Returned in epoch
 * milliseconds; undefined when the claim is absent or not a positive number of seconds.
 *
 * The BFF session never outlives it: at login it caps the absolute lifetime, and a later ID token (from an
 * exchange) that names an earlier end moves the absolute lifetime earlier. A later end never extends it: the
 * absolute lifetime is fixed at login and only ever shrinks.
 */
export function sessionExpiryOf(claims: Readonly<Record<string, unknown>> | undefined): number | undefined {
  const value = claims?.session_expiry;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return undefined;
  return Math.floor(value * 1000);
}
