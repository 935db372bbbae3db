/** Who is logged in, as `/auth/user` and `bff.getUser()` tell it. Never a token. */
export interface BffUser {
  /** The user's `sub` and the ID token's other claims (all but protocol claims, or the `userClaims` option's). */
  readonly user: {
    /** The user's id at Auth0, e.g. `auth0|abc123`. */
    readonly sub: string;
    readonly [claim: string]: unknown;
  };
  /** When the session ends whatever the activity (its absolute lifetime, fixed at login), in epoch seconds. */
  readonly expiresAt: number;
  /** When the session ends without activity (the idle timeout, moved forward by activity), in epoch seconds. */
  readonly idleExpiresAt: number;
}
