import type { Duplex } from 'node:stream';
import { PING_TIMEOUT } from '../events/reporter.js';
import { WebSocketCloseCode } from './close-codes.js';
import { FrameTracker, closeFrame, pingFrame } from './frames.js';

/** How long a closing connection may take to finish its current frame and say goodbye before it is cut. */
const CLOSE_GRACE_MS = 2_000;

/** An empty ping toward the browser (RFC 6455 5.5.2): unmasked, as every frame toward a client is. */
const PING_TO_BROWSER = pingFrame(false);
const pingToBrowser = () => PING_TO_BROWSER;
/** Toward the upstream: masked, with a key of its own each time (RFC 6455 5.3). */
const pingToUpstream = () => pingFrame(true);

/** What the tunnel knows of one side's liveness since its last check. */
interface Liveness {
  /** Bytes came from that side. */
  heard: boolean;
  /** A ping went to it, with nothing heard from it since. */
  pinged: boolean;
}

/** What an upstream that left the BFF's ping unanswered over a quiet interval is reported with (the event's `cause`). */
export class UpstreamSilentError extends Error {
  readonly code = PING_TIMEOUT;
  constructor() {
    super('The API answered no ping over a quiet interval: it is gone, or its connection is.');
    this.name = 'UpstreamSilentError';
  }
}

/**
 * One direction of a tunnel: bytes from `from` are written to `to` unchanged, pausing `from` while `to` cannot take
 * more (backpressure), while a FrameTracker follows the frame boundaries. When the tunnel closes, the frame under
 * way is finished and a close frame of the BFF's own follows it.
 */
class Direction {
  readonly frames = new FrameTracker();
  /** The close frame to send at the next boundary, then stop forwarding. */
  private pendingClose: Buffer | undefined;
  /** The BFF's close frame went out (or the direction ended): nothing more is forwarded. */
  done = false;
  /** `from` is paused until `to` drains: only that drain may resume it. */
  private waitingForDrain = false;

  constructor(
    private readonly from: Duplex,
    private readonly to: Duplex,
    /** Frames toward a server are masked (RFC 6455 5.3): true toward the upstream. */
    private readonly towardServer: boolean,
  ) {}

  forward(chunk: Buffer): void {
    if (this.done) return;
    if (this.pendingClose) {
      const end = this.frames.scan(chunk, true);
      // The rest of the frame under way may be large (a frame can announce 2^63 bytes): only as fast as `to` takes it.
      if (end > 0) this.write(chunk.subarray(0, end));
      if (this.frames.atBoundary) this.sendClose();
      return;
    }
    this.frames.scan(chunk);
    this.write(chunk);
  }

  /** Whether data frames went to `to` since the last `tookData`, without forgetting it. */
  get tookDataLately(): boolean {
    return this.frames.carriedData;
  }

  /**
   * Whether data frames went to `to` since the last call: pings and pongs alone leave a connection quiet, so that the
   * other endpoint's answer to a ping of the BFF's own does not count as traffic that a ping may wait behind.
   */
  tookData(): boolean {
    const moved = this.frames.carriedData;
    this.frames.carriedData = false;
    return moved;
  }

  /** Writes to `to`, pausing `from` until `to` drains when `to` cannot take more. */
  private write(bytes: Buffer): void {
    if (this.to.write(bytes) || this.waitingForDrain) return;
    this.waitingForDrain = true;
    this.from.pause();
    this.to.once('drain', () => {
      this.waitingForDrain = false;
      this.from.resume();
    });
  }

  /**
   * Sends a close frame at the next frame boundary (now, if at one), then ends the writing side. None when the
   * endpoint already sent its own: nothing may follow a close frame (RFC 6455 5.5.1), and the other endpoint's reply
   * or the grace period ends the connection.
   */
  close(code: number, reason: string): void {
    if (this.done || this.pendingClose || this.frames.sawClose) return;
    this.pendingClose = closeFrame(code, reason, this.towardServer);
    if (this.frames.atBoundary) this.sendClose();
    // Keep reading, to find the boundary or see the other side's goodbye; but a `from` held back for a `to` that
    // does not read stays held back (the drain resumes it), else the rest of the frame would pile up in memory.
    else if (!this.waitingForDrain) this.from.resume();
  }

  private sendClose(): void {
    this.done = true;
    if (this.to.writable) this.to.end(this.pendingClose);
    this.from.resume();
  }

  /** `from` is held back until `to` drains: nothing it sends is read meanwhile. */
  get holdingBack(): boolean {
    return this.waitingForDrain;
  }

  /**
   * Writes a control frame of the BFF's own between two frames, when `to` takes bytes now; false (nothing written)
   * in the middle of a frame, while `to` does not read, or once closing.
   */
  insert(frame: Buffer): boolean {
    if (this.done || this.pendingClose || this.waitingForDrain || this.frames.sawClose || !this.frames.atBoundary) return false;
    this.write(frame);
    return true;
  }

  /** Forwards nothing more: the receiving side is gone. */
  stop(): void {
    this.done = true;
  }

  /** Ends the writing side: as it is when the frames say the endpoints closed; else with a close frame, if one still fits. */
  finish(code: number, reason: string): void {
    if (this.done) return;
    if (this.frames.sawClose) {
      this.done = true;
      if (this.to.writable) this.to.end();
    } else if (this.frames.atBoundary) {
      this.pendingClose = closeFrame(code, reason, this.towardServer);
      this.sendClose();
    } else {
      // Cut mid-frame: no frame of ours can follow, only a broken connection tells the truth.
      this.done = true;
      this.to.destroy();
    }
  }
}

export interface TunnelEvents {
  /** The browser sent a data frame (text, binary, continuation): activity of the user's page. */
  onBrowserData(): void;
  /** Both connections are closed. */
  onClosed(): void;
  /**
   * The upstream ended or broke its connection without a close frame from either endpoint, while the browser was
   * still there and the BFF had not closed the tunnel (`error`: what broke it, when something did). At most once.
   */
  onUpstreamBroke(error: unknown): void;
}

/**
 * A WebSocket connection between the browser and the upstream after both handshakes: the TCP streams are joined,
 * frames pass unchanged both ways, and the BFF can close both ends with a code of its own (`close`).
 *
 * A browser that vanished without a word (a laptop put to sleep, a phone that changed networks) sends no FIN: with
 * `pingIntervalMs`, a socket on which no message passed either way for that long gets a ping of the BFF's own toward
 * the browser, and a browser that still sent nothing over the next quiet interval is gone: its connection is cut and
 * the upstream is told (1001 browser_gone), as at a FIN. Its pong goes on to the upstream, as an unsolicited pong may
 * (RFC 6455 5.5.3). A tunnel whose upstream is sending to the browser is never cut so: the ping may wait behind what
 * is on its way, on a slow link for longer than an interval. There, a browser that vanished is found by TCP itself
 * (data it never acknowledges).
 *
 * An upstream that vanished (its host lost, a network path gone, no FIN) is found the same way, from its side: it is
 * pinged after a quiet interval (a masked ping, as toward any server), and one that sent nothing over the next is
 * gone: its connection is cut, the browser gets 1014 upstream_unavailable, and `onUpstreamBroke` tells of it. Its
 * pong goes on to the browser, which ignores it as an unsolicited pong. Not while the browser is sending to it, nor
 * while either side is held back for the other. Neither side is pinged once a close frame went by either way: a
 * closing endpoint need not answer, and the close handshake (or the grace period after a FIN) ends the tunnel.
 */
export class Tunnel {
  private readonly up: Direction;
  private readonly down: Direction;
  private closed = false;
  /** The browser's side ended or broke first: whatever the upstream does after that is no failure of its own. */
  private browserGone = false;
  private upstreamBroke = false;
  /** Set once closing began: cuts whatever has not closed by then. */
  private graceTimer: NodeJS.Timeout | undefined;
  private open = 2;
  private readonly browserSide: Liveness = { heard: true, pinged: false };
  private readonly upstreamSide: Liveness = { heard: true, pinged: false };
  private pinger: NodeJS.Timeout | undefined;

  constructor(
    private readonly browser: Duplex,
    private readonly upstream: Duplex,
    private readonly events: TunnelEvents,
    /** How long the socket may stay quiet before the browser is pinged (0: never; then it may vanish unnoticed). */
    private readonly pingIntervalMs = 0,
    /** Whether the upstream is pinged too, as often. */
    private readonly pingUpstream = true,
  ) {
    this.up = new Direction(browser, upstream, true);
    this.down = new Direction(upstream, browser, false);
  }

  /** Starts relaying; `browserHead` and `upstreamHead` are bytes each side sent right after its handshake. */
  start(browserHead: Buffer, upstreamHead: Buffer): void {
    const { browser, upstream } = this;
    for (const socket of [browser, upstream]) {
      (socket as { setNoDelay?(v: boolean): void }).setNoDelay?.(true);
      (socket as { setTimeout?(ms: number): void }).setTimeout?.(0);
      socket.once('close', this.onSocketClose);
    }
    browser.on('data', (chunk: Buffer) => {
      this.browserSide.heard = true;
      this.up.forward(chunk);
      if (this.up.frames.sawData) {
        this.up.frames.sawData = false;
        this.events.onBrowserData();
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      this.upstreamSide.heard = true;
      this.down.forward(chunk);
    });
    // A side that ends or breaks: the other is told (with a close frame when the endpoints did not exchange one).
    // After a FIN the other side has the grace period to finish: one that never answers would hold both connections.
    browser.on('end', () => {
      this.stopPinging();
      this.browserGone = true;
      this.up.finish(WebSocketCloseCode.GOING_AWAY, 'browser_gone');
      this.cutLater();
    });
    upstream.on('end', () => {
      this.stopPinging();
      this.noteUpstreamBroke(undefined);
      this.down.finish(WebSocketCloseCode.UPSTREAM_FAILED, 'upstream_unavailable');
      this.cutLater();
    });
    browser.on('error', () => {
      this.browserGone = true;
      this.up.finish(WebSocketCloseCode.GOING_AWAY, 'browser_gone');
      browser.destroy();
    });
    upstream.on('error', (error: unknown) => {
      this.noteUpstreamBroke(error);
      this.down.finish(WebSocketCloseCode.UPSTREAM_FAILED, 'upstream_unavailable');
      upstream.destroy();
    });
    if (upstreamHead.length > 0) this.down.forward(upstreamHead);
    if (browserHead.length > 0) this.up.forward(browserHead);
    if (this.pingIntervalMs > 0) this.pinger = setInterval(this.check, this.pingIntervalMs).unref();
  }

  /** Every `pingIntervalMs`: each side is looked at, the browser first (a browser gone is what the upstream is told). */
  private readonly check = (): void => {
    if (this.closing()) return this.stopPinging();
    this.checkSide(this.browserSide, this.down, this.browser, pingToBrowser, this.cutSilentBrowser);
    if (this.pingUpstream) this.checkSide(this.upstreamSide, this.up, this.upstream, pingToUpstream, this.cutSilentUpstream);
  };

  /** A close frame went by, either way: the endpoints are saying goodbye. */
  private closing(): boolean {
    return this.up.frames.sawClose || this.down.frames.sawClose;
  }

  /**
   * A side heard from is there; else it is pinged through `toward` (the direction that writes to it), or cut when it
   * left the last ping unanswered over a quiet interval (see `mayBeGone`). Quiet: no data frames went toward it
   * since the last check.
   */
  private checkSide(side: Liveness, toward: Direction, socket: Duplex, ping: () => Buffer, cut: () => void): void {
    const sending = toward.tookData();
    if (side.heard) {
      side.heard = false;
      side.pinged = false;
    } else if (!side.pinged) {
      // Only after a quiet interval, so that the ping is not behind what was just sent; not in the middle of a frame
      // toward it, or while it does not read: tried again next time.
      if (!sending) side.pinged = toward.insert(ping());
    } else if (!sending && this.mayBeGone(socket)) {
      // After what the event loop has still to read: a process that was busy past the interval has the pong unread.
      setImmediate(cut);
    }
  }

  /** Whether `side` is still silent when its cut comes (the event loop read what it had meanwhile). */
  private stillSilent(side: Liveness, toward: Direction, socket: Duplex): boolean {
    return !side.heard && !toward.tookDataLately && this.mayBeGone(socket) && this.pinger !== undefined && !this.closing();
  }

  /**
   * Whether the ping can have reached `side` and its pong been read: not while bytes wait for `side` (the ping may be
   * behind them), nor while the BFF holds either side back for the other (a pong behind what the BFF does not read
   * yet, or a side that does not read what it is sent).
   */
  private mayBeGone(side: Duplex): boolean {
    return !this.up.holdingBack && !this.down.holdingBack && side.writableLength === 0;
  }

  private readonly cutSilentBrowser = (): void => {
    if (!this.stillSilent(this.browserSide, this.down, this.browser)) return;
    this.stopPinging();
    this.browserGone = true;
    this.up.finish(WebSocketCloseCode.GOING_AWAY, 'browser_gone');
    this.browser.destroy();
    this.cutLater();
  };

  private readonly cutSilentUpstream = (): void => {
    if (!this.stillSilent(this.upstreamSide, this.up, this.upstream)) return;
    this.stopPinging();
    this.noteUpstreamBroke(new UpstreamSilentError());
    this.down.finish(WebSocketCloseCode.UPSTREAM_FAILED, 'upstream_unavailable');
    this.upstream.destroy();
    this.cutLater();
  };

  private stopPinging(): void {
    if (this.pinger === undefined) return;
    clearInterval(this.pinger);
    this.pinger = undefined;
  }

  /** Closes both ends with `code`: each gets a close frame after the frame under way, then its connection ends. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.stopPinging();
    this.down.close(code, reason);
    this.up.close(code, reason);
    this.cutLater();
  }

  /** Whatever has not closed within the grace period is cut then. */
  private cutLater(): void {
    this.graceTimer ??= setTimeout(() => {
      this.browser.destroy();
      this.upstream.destroy();
    }, CLOSE_GRACE_MS).unref();
  }

  /** Tells of an upstream that went away on its own (see `TunnelEvents.onUpstreamBroke`). */
  private noteUpstreamBroke(error: unknown): void {
    if (this.upstreamBroke || this.closed || this.browserGone || this.browser.destroyed) return;
    if (this.down.frames.sawClose || this.up.frames.sawClose) return;
    this.upstreamBroke = true;
    this.events.onUpstreamBroke(error);
  }

  private readonly onSocketClose = (): void => {
    this.stopPinging();
    // A connection that closed takes the other one with it: half a tunnel is of no use.
    if (this.upstream.destroyed) {
      this.noteUpstreamBroke(undefined);
      this.down.finish(WebSocketCloseCode.UPSTREAM_FAILED, 'upstream_unavailable');
      this.up.stop();
    }
    if (this.browser.destroyed) {
      this.up.finish(WebSocketCloseCode.GOING_AWAY, 'browser_gone');
      this.down.stop();
    }
    if (--this.open > 0) {
      // The other connection gets a moment to flush its close frame.
      this.cutLater();
      return;
    }
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.events.onClosed();
  };
}
