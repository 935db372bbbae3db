/**
 * Marks the emulator's login form so that `scriptedLogin` (and a test) can find it. A module of its own: scriptedLogin
 * must load without oidc-provider, which the module that renders the form needs.
 */
export const LOGIN_FORM_MARKER = 'data-local-auth0-login';
